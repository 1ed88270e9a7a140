"""Shared fixtures: a simulator on 127.0.0.1 with a manual clock, and a client talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from batch_widget import BatchClient, RetryPolicy
from batch_widget.simulator import ManualClock, Simulator

# recognisable, so a leak is easy to find in any text
SECRET_KEY = "tlk_SECRET_do_not_leak_8f2c1d4e"

PROMPT = {"prompt": {"input_text": "Summarise the video."}}


def asset(i: int) -> str:
    return f"{i:024x}"


def requests_for(n: int, prefix: str = "item") -> list[dict[str, object]]:
    return [
        {"video": {"type": "asset_id", "asset_id": asset(i + 1)}, "custom_id": f"{prefix}-{i:04d}"}
        for i in range(n)
    ]


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(api_key=SECRET_KEY, seed=7, clock=ManualClock()) as s:
        yield s


class FakeSleep:
    """Records requested sleeps and returns at once (so retry tests take no real time)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def fake_sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
async def client(sim: Simulator, fake_sleep: FakeSleep) -> AsyncIterator[BatchClient]:
    async with BatchClient(
        SECRET_KEY, base_url=sim.base_url, timeout=5.0, sleep=fake_sleep,
        retry=RetryPolicy(max_attempts=6, base_delay=0.5, max_delay=20, budget=120),
    ) as c:  # fmt: skip
        yield c


@pytest.fixture(autouse=True)
def _no_key_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test, fault tests included, runs with debug logs captured: the key is never in one."""
    import logging

    for name in ("batch_widget", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield
    records = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert SECRET_KEY not in records and SECRET_KEY not in caplog.text
