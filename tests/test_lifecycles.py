"""Lifecycles that end: pollers freed with their last watch, a dead poll task never leaves a wait
hanging, and a deleted batch's counts shown as last known."""

from __future__ import annotations

import asyncio
import gc
import logging
import tracemalloc

import pytest

from batch_widget import BatchClient, BatchWidgetError, NotFoundError
from batch_widget.account_poller import AccountPoller
from batch_widget.poller import BatchPoller, Schedule
from batch_widget.simulator import Simulator
from batch_widget.widget import BatchWidget, summary_html, summary_text

from .conftest import PROMPT, SECRET_KEY, VirtualTime, delete_while_watched, requests_for

SLOW = Schedule(min_interval=30, max_interval=60)


async def create(client: BatchClient, n: int) -> str:
    return (await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(n))).batch_id


def live(kind: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, kind))


async def until(condition: object, tries: int = 500) -> None:
    for _ in range(tries):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met in time")


async def test_five_clients_leave_no_account_poller_behind(client: BatchClient, sim: Simulator) -> None:
    """Regression: each account poller held its client, so its weak-keyed entry never went away."""
    batch_id = await create(client, 20)
    before = live(AccountPoller), live(BatchClient)
    for _ in range(5):
        async with BatchClient(SECRET_KEY, base_url=sim.base_url, clock=VirtualTime(sim)) as c:
            poller = BatchPoller.shared(c, batch_id)
            poller.acquire()
            await until(lambda p=poller: p.polls > 0)  # type: ignore[misc]
            poller.release()
            await until(lambda c=c: not AccountPoller.of(c).running)  # type: ignore[misc]
        del c, poller
    assert (live(AccountPoller), live(BatchClient)) == before


async def test_a_thousand_clients_in_turn_leave_pollers_and_memory_where_they_were(
    client: BatchClient, sim: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    batch_id = await create(client, 20)
    for name in ("batch_widget", "httpx", "httpcore"):  # captured debug records would count as growth
        caplog.set_level(logging.WARNING, logger=name)

    async def one() -> None:
        async with BatchClient(SECRET_KEY, base_url=sim.base_url, clock=VirtualTime(sim)) as c:
            w = BatchWidget(batch_id, c, schedule=SLOW)
            await until(lambda: w.poller.polls > 0)
            w.close()
            await until(lambda: not AccountPoller.of(c).running)

    for _ in range(20):  # warm up: imports, caches, the first connections
        await one()
    counts = (live(AccountPoller), live(BatchPoller), live(BatchClient), live(BatchWidget))
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(1000):
            await one()
        await asyncio.sleep(0)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert (live(AccountPoller), live(BatchPoller), live(BatchClient), live(BatchWidget)) == counts
    assert grown < 1_000_000  # bytes, for 1,000 clients: under 1 KB each, far less than one leaked client


def test_wait_blocking_leaks_no_cloned_client(sim: Simulator) -> None:
    """Regression: every wait_blocking() left its cloned client (and its account poller) alive."""
    client = BatchClient(sim.api_key, base_url=sim.base_url)

    async def setup() -> str:
        async with client.clone() as c:
            return await create(c, 3)

    batch_id = asyncio.run(setup())
    sim.clock.advance(3600)
    BatchPoller(client, batch_id).wait_blocking()  # warm up
    before = live(BatchClient), live(AccountPoller)
    for _ in range(3):
        assert BatchPoller(client, batch_id).wait_blocking().is_terminal
    assert (live(BatchClient), live(AccountPoller)) == before


async def test_a_cancelled_poll_task_ends_every_wait(real_client: BatchClient, sim: Simulator) -> None:
    """Regression: cancelling the account poll task left every watch running and every wait() hanging."""
    ids = [await create(real_client, 100), await create(real_client, 100)]
    pollers = [BatchPoller(real_client, batch_id, schedule=SLOW) for batch_id in ids]
    for p in pollers:
        p.start()
    await until(lambda: all(p.polls for p in pollers))
    tasks = [t for t in asyncio.all_tasks() if t.get_name().startswith("batch_widget account poll")]
    assert len(tasks) == 1
    tasks[0].cancel()
    for p in pollers:
        with pytest.raises(BatchWidgetError, match="polling stopped"):
            await asyncio.wait_for(p.wait(), 5)
        assert p.update.state == "error" and "polling stopped" in p.update.error
    assert not AccountPoller.of(real_client).running


async def test_a_crashed_poll_task_ends_every_wait(
    real_client: BatchClient, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [await create(real_client, 100), await create(real_client, 100)]
    pollers = [BatchPoller(real_client, batch_id, schedule=SLOW) for batch_id in ids]

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the cycle")

    monkeypatch.setattr(AccountPoller, "_cycle", broken)
    for p in pollers:
        p.start()
    for p in pollers:
        with pytest.raises(RuntimeError, match="a bug in the cycle"):
            await asyncio.wait_for(p.wait(), 5)
        assert p.update.state == "error"


async def test_a_deleted_batch_shows_its_counts_as_last_known(real_client: BatchClient, sim: Simulator) -> None:
    """Regression: a batch deleted before its final poll kept "pending · 1 queued" as if current."""
    batch_id = await create(real_client, 1)
    w = BatchWidget(batch_id, real_client, schedule=SLOW)
    await until(lambda: w.poller.polls > 0)
    assert w.status == "pending" and not w.last_known and not w.poller.update.last_known
    await delete_while_watched(real_client, sim, w.poller)
    update = w.poller.update
    assert update.last_known and update.batch is not None and update.batch.status.value == "pending"
    assert w.last_known and w.watch_state == "error"
    text = summary_text(update)
    assert "last known" in text and "Batch not found" in text
    assert "last known" in summary_html(update)
    w.close()


async def test_a_finished_batch_is_current_not_last_known(client: BatchClient, sim: Simulator) -> None:
    batch_id = await create(client, 5)
    poller = BatchPoller(client, batch_id)
    final = await asyncio.wait_for(poller.wait(), 30)
    assert final.is_terminal and not poller.update.last_known
    assert "last known" not in summary_text(poller.update)


async def test_a_watch_of_a_missing_batch_ends_on_its_404(client: BatchClient, sim: Simulator) -> None:
    poller = BatchPoller(client, "0" * 24)
    with pytest.raises(NotFoundError):
        await asyncio.wait_for(poller.wait(), 10)
    assert not poller.update.last_known  # nothing was known
