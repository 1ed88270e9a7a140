"""Shared fixtures: a simulator on 127.0.0.1 with a manual clock, and a client talking to it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from batch_widget import BatchClient, RetryPolicy
from batch_widget.clock import Clock
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


class VirtualTime(Clock):
    """A client's clock driven by the simulator's manual clock.

    Every sleep advances the clock (hours of a batch pass in a second) and is recorded in
    ``slept``; the account's active-batch count is sampled around each one in ``active``. Pass
    it as ``BatchClient(clock=...)``: the pollers and job schedulers of that client follow it.
    """

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.slept: list[float] = []
        self.active: list[int] = []

    async def sleep(self, seconds: float) -> None:
        self.active.append(self.sim.engine.active_count())
        self.slept.append(seconds)
        self.sim.clock.advance(seconds)
        self.active.append(self.sim.engine.active_count())
        await asyncio.sleep(0)

    def monotonic(self) -> float:
        return self.sim.clock.now()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.sim.clock.now(), timezone.utc)


def virtual_client(sim: Simulator, **kw: Any) -> BatchClient:
    """A client of ``sim`` whose clock is a fresh :class:`VirtualTime` (``client.clock``)."""
    return BatchClient(SECRET_KEY, base_url=sim.base_url, clock=VirtualTime(sim), **kw)


def vt_of(client: BatchClient) -> VirtualTime:
    """The virtual clock of a client made by :func:`virtual_client`."""
    assert isinstance(client.clock, VirtualTime), "this client was not made with a VirtualTime clock"
    return client.clock


async def delete_while_watched(client: BatchClient, sim: Simulator, poller: Any) -> None:
    """Delete a watched batch for real (cancel, let it end, delete), refresh its watch: it ends on the 404."""
    from batch_widget import NotFoundError

    await client.cancel(poller.batch_id)
    sim.clock.advance(2 * 3600)
    await client.delete(poller.batch_id)
    poller.refresh()
    with pytest.raises(NotFoundError):
        await asyncio.wait_for(poller.wait(), 10)
    assert poller.update.state == "error" and poller.update.error.startswith("Batch not found")
    assert poller.update.batch is not None  # the last snapshot is kept


def run_notebook(path: Path, workdir: Path, env: dict[str, str]) -> Any:
    """Run a notebook in a real kernel (nbclient) with ``env`` set and no API key: the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    backup = dict(os.environ)
    os.environ.update(env)
    os.environ.pop("TWELVELABS_API_KEY", None)
    try:
        NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(backup)
    return nb


class Displays:
    """Stands in for IPython.display.display: records bundles and display-id updates."""

    def __init__(self) -> None:
        self.shown: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []

    def __call__(self, data: dict[str, Any], **kw: Any) -> Any:
        self.shown.append(data)
        if kw.get("display_id"):
            outer = self

            class Handle:
                def update(self, bundle: dict[str, Any], raw: bool = False) -> None:
                    outer.updates.append(bundle)

            return Handle()
        return None


@pytest.fixture
def displays(monkeypatch: pytest.MonkeyPatch) -> Displays:
    import IPython.display

    d = Displays()
    monkeypatch.setattr(IPython.display, "display", d)
    return d


class FakeClock(Clock):
    """The real clock, except that sleeps are recorded and return at once (retry tests take no time)."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[BatchClient]:
    """A client of ``sim`` on virtual time (``vt_of(client)``): its retries and pollers move the clock."""
    async with BatchClient(
        SECRET_KEY, base_url=sim.base_url, timeout=5.0, clock=VirtualTime(sim),
        retry=RetryPolicy(max_attempts=6, base_delay=0.5, max_delay=20, budget=120),
    ) as c:  # fmt: skip
        yield c


@pytest.fixture
async def real_client(sim: Simulator) -> AsyncIterator[BatchClient]:
    """A client on the real clock, for the tests about waking and stopping in real time."""
    async with BatchClient(SECRET_KEY, base_url=sim.base_url, timeout=5.0) as c:
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


def upload_sim(**overrides: Any) -> Simulator:
    """A simulator for upload jobs: manual clock, small multipart chunks, a URL with ``broken`` fails."""
    opts: dict[str, Any] = {
        "api_key": SECRET_KEY, "seed": 11, "clock": ManualClock(), "chunk_size": 1000,
        "asset_processing_seconds": (20, 200), "failed_uploads": ["broken"], "fail_rate": 0.0,
    }  # fmt: skip
    return Simulator(**{**opts, **overrides})


@pytest.fixture
async def uclient(usim: Simulator) -> AsyncIterator[BatchClient]:
    """A virtual-time client of the module's ``usim`` fixture (an ``upload_sim``); files over 2,000 bytes
    go up in multipart uploads."""
    async with virtual_client(usim, timeout=10.0) as c:
        c.direct_upload_limit = 2000
        yield c


@pytest.fixture
def fresh_jobs() -> Iterator[None]:
    """No live job from another test; the jobs a test leaves are closed (their manifests let go)."""
    import batch_widget.jobs as jobs

    jobs.live_jobs.clear()
    yield
    for job in jobs.live_jobs.values():
        job.close()
    jobs.live_jobs.clear()


class Kernel:
    """Runs cells in a real kernel and collects their output, like a minimal front end."""

    def __init__(self, kc: Any) -> None:
        self.kc = kc

    def run(self, code: str, timeout: float = 60) -> str:
        msg_id = self.kc.execute(code)
        stdout, error = "", None
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                stdout += content["text"]
            elif kind == "error":
                error = "\n".join(content["traceback"])
            elif kind == "status" and content["execution_state"] == "idle":
                break
        reply = self.kc.get_shell_msg(timeout=timeout)
        if error or reply["content"]["status"] != "ok":
            raise AssertionError(f"cell failed: {error or reply['content']}")
        return stdout


@contextlib.contextmanager
def kernels(count: int, cwd: Path) -> Iterator[list[tuple[Any, Any, Kernel]]]:
    """``count`` real ipykernels (no TwelveLabs variables in their environment): (manager, client, Kernel)."""
    from jupyter_client.manager import KernelManager

    env = {k: v for k, v in os.environ.items() if not k.startswith("TWELVELABS_")}
    started: list[tuple[Any, Any, Kernel]] = []
    try:
        for _ in range(count):
            km = KernelManager(kernel_name="python3")
            km.start_kernel(cwd=str(cwd), env=env, extra_arguments=[])
            kc = km.client()
            kc.start_channels()
            kc.wait_for_ready(timeout=60)
            started.append((km, kc, Kernel(kc)))
        yield started
    finally:
        for km, kc, _ in started:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
