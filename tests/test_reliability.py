"""The fault matrix (docs/reliability.md): each fault injected by the simulator while a widget
watches a batch and while its results are fetched. For each: what the user sees (in words),
whether the watch goes on, that it recovers by itself, and that the final DataFrame has exactly
one row per item. Plus the soak and load tests (marker ``slow``; `.ci/run` runs them too).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

import batch_widget as bw
from batch_widget.poller import BatchPoller, PollUpdate, Schedule
from batch_widget.simulator import Fault, ManualClock, Simulator
from batch_widget.widget import BatchWidget

from .conftest import PROMPT, SECRET_KEY, requests_for, virtual_client, vt_of

N = 40


@dataclass
class Watch:
    widget: BatchWidget
    updates: list[PollUpdate] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [u.error for u in self.updates if u.error]

    @property
    def states(self) -> list[str]:
        return [u.state for u in self.updates]


async def start_watch(
    client: bw.BatchClient, sim: Simulator, *, on_update: Callable[[PollUpdate, Watch], None] | None = None
) -> Watch:
    created = await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(N))
    poller = BatchPoller(client, created.batch_id)
    widget = BatchWidget(created.batch_id, client, poller=poller, created_items=created.items)
    watch = Watch(widget)

    def listen(update: PollUpdate) -> None:
        watch.updates.append(update)
        if on_update is not None:
            on_update(update, watch)

    poller.add_listener(listen)
    return watch


async def finish(watch: Watch) -> bw.Batch:
    return await asyncio.wait_for(watch.widget.wait(), 60)


async def one_row_per_item(watch: Watch) -> None:
    frame = await watch.widget.to_pandas()
    assert len(frame) == N
    assert frame["task_id"].is_unique and frame["task_id"].notna().all()
    assert frame["status"].notna().all()


# -- while watching ------------------------------------------------------------------------------


@pytest.mark.parametrize("burst", [1, 5, 30])
async def test_5xx_burst(client: bw.BatchClient, sim: Simulator, burst: int) -> None:
    sim.add_fault(Fault(kind="status", endpoint="get", status=503, times=burst, after=2))
    watch = await start_watch(client, sim)
    final = await finish(watch)
    assert final.is_terminal and watch.widget.watch_state == "done" and watch.widget.error == ""
    retrying = [u for u in watch.updates if u.state == "retrying"]
    assert len(retrying) == burst
    assert "Server error 503" in retrying[0].error and "retrying in" in retrying[0].error
    assert max(u.interval_s for u in retrying) <= Schedule().max_interval
    await one_row_per_item(watch)


@pytest.mark.parametrize("http_date", [False, True])
async def test_429_with_retry_after(client: bw.BatchClient, sim: Simulator, http_date: bool) -> None:
    sim.add_fault(Fault(kind="rate_limit", endpoint="get", retry_after=40, http_date=http_date, times=2, after=1))
    watch = await start_watch(client, sim)
    await finish(watch)
    retrying = [u for u in watch.updates if u.state == "retrying"]
    assert len(retrying) == 2 and all("Rate limited" in u.error for u in retrying)
    assert all(u.interval_s >= 39 for u in retrying)  # Retry-After honoured, date form too
    await one_row_per_item(watch)


async def test_connection_refused_then_back(client: bw.BatchClient, sim: Simulator) -> None:
    def on_update(update: PollUpdate, watch: Watch) -> None:
        if len(watch.updates) == 3:
            sim.stop()
        if update.state == "retrying" and sum(u.state == "retrying" for u in watch.updates) == 4:
            sim.start()

    watch = await start_watch(client, sim, on_update=on_update)
    await finish(watch)
    assert sum(u.state == "retrying" for u in watch.updates) == 4
    assert all("Could not reach the server" in e for e in watch.errors)
    assert watch.states[-1] == "done"
    await one_row_per_item(watch)


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (Fault(kind="drop_mid_response", endpoint="get", times=3, after=2), "Could not reach the server"),
        (Fault(kind="drop", endpoint="get", times=3, after=2), "Could not reach the server"),
        (Fault(kind="proxy_502", endpoint="get", times=3, after=2), "Server error 502: non-JSON response"),
        (Fault(kind="empty_body_429", endpoint="get", retry_after=5, times=3, after=2), "Rate limited"),
        (Fault(kind="flat_error", endpoint="get", status=500, code="oops", times=3, after=2), "Server error 500"),
    ],
)
async def test_transient_faults_are_named_and_recovered(
    client: bw.BatchClient, sim: Simulator, fault: Fault, words: str
) -> None:
    sim.add_fault(fault)
    watch = await start_watch(client, sim)
    await finish(watch)
    assert len(watch.errors) == 3 and all(words in e for e in watch.errors), watch.errors
    assert watch.widget.error == "" and watch.widget.watch_state == "done"
    await one_row_per_item(watch)


async def test_read_timeouts(sim: Simulator) -> None:
    async with virtual_client(sim, timeout=0.2) as client:
        sim.add_fault(Fault(kind="slow", endpoint="get", seconds=0.6, times=2, after=2))
        watch = await start_watch(client, sim)
        await finish(watch)
        assert len(watch.errors) == 2 and all("did not answer in time" in e for e in watch.errors)
        await one_row_per_item(watch)


async def test_unknown_status_is_shown_and_watching_goes_on(client: bw.BatchClient, sim: Simulator) -> None:
    sim.add_fault(Fault(kind="patch_batch", endpoint="get", patch={"status": "paused"}, times=4, after=2))
    watch = await start_watch(client, sim)
    seen: list[str] = []
    watch.widget.observe(lambda change: seen.append(change["new"]), names="status")
    await finish(watch)
    assert "paused" in seen and seen[-1] == "completed"
    assert not watch.errors
    await one_row_per_item(watch)


async def test_counts_that_do_not_add_up(client: bw.BatchClient, sim: Simulator) -> None:
    sim.add_fault(Fault(kind="patch_batch", endpoint="get", patch={"ready_items": 999, "queued_items": -3},
                        times=2, after=3))  # fmt: skip
    watch = await start_watch(client, sim)
    ready: list[int] = []
    watch.widget.observe(lambda change: ready.append(change["new"]), names="ready")
    final = await finish(watch)
    assert 999 in ready and ready[-1] == final.ready_items
    assert all(u.rate_per_min is None or u.rate_per_min >= 0 for u in watch.updates)
    assert all(u.eta_s is None or u.eta_s >= 0 for u in watch.updates)
    await one_row_per_item(watch)


async def test_batch_deleted_while_watched(client: bw.BatchClient, sim: Simulator) -> None:
    def on_update(update: PollUpdate, watch: Watch) -> None:
        if len(watch.updates) == 3:
            sim.add_fault(Fault(kind="status", endpoint="any", status=404, code="resource_not_exist", times=None))

    watch = await start_watch(client, sim, on_update=on_update)
    with pytest.raises(bw.NotFoundError):
        await finish(watch)
    assert watch.widget.watch_state == "error" and watch.widget.error.startswith("Batch not found")
    assert watch.widget.batch is not None and watch.widget.total == N  # the last snapshot is kept


async def test_revoked_key(client: bw.BatchClient, sim: Simulator) -> None:
    def on_update(update: PollUpdate, watch: Watch) -> None:
        if len(watch.updates) == 3:
            sim.add_fault(Fault(kind="status", endpoint="get", status=401, code="api_key_invalid", times=None))

    watch = await start_watch(client, sim, on_update=on_update)
    with pytest.raises(bw.AuthenticationError):
        await finish(watch)
    assert watch.widget.error.startswith("The API key was refused")
    assert SECRET_KEY not in watch.widget.error


# -- while fetching results ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault(kind="cut_stream", endpoint="results", lines=13, times=1),
        Fault(kind="malformed_line", endpoint="results", lines=7, line="{broken", times=1),
        Fault(kind="malformed_line", endpoint="results", lines=7, line="{broken", replace=True, times=1),
        Fault(kind="status", endpoint="results", status=503, times=3),
        Fault(kind="drop_mid_response", endpoint="results", times=1),
        Fault(kind="proxy_502", endpoint="results", times=2),
    ],
    ids=["cut", "malformed-inserted", "malformed-replacing", "503x3", "dropped", "proxy502"],
)
async def test_results_faults_still_give_one_row_per_item(
    client: bw.BatchClient, sim: Simulator, fault: Fault
) -> None:
    watch = await start_watch(client, sim)
    await finish(watch)
    rule = sim.add_fault(fault)
    await one_row_per_item(watch)
    assert rule.fired >= 1  # the fault really hit the fetch the frame came from


async def test_results_mid_run_then_final(client: bw.BatchClient, sim: Simulator) -> None:
    watch = await start_watch(client, sim)
    watch.widget.poller.start()
    while watch.widget.status in ("", "pending"):
        await asyncio.sleep(0.01)
    partial = await watch.widget.to_pandas()
    assert len(partial) == N and set(partial["status"].astype(str)) & {"queued", "processing"}
    await finish(watch)
    await one_row_per_item(watch)


async def test_a_persistent_malformed_line_is_kept_visible(client: bw.BatchClient, sim: Simulator) -> None:
    watch = await start_watch(client, sim)
    await finish(watch)
    rule = sim.add_fault(Fault(kind="malformed_line", endpoint="results", lines=7, line="{broken", times=None))
    frame = await watch.widget.to_pandas()
    assert rule.fired == 2  # fetched, then fetched once more, still unreadable
    real = frame[frame["task_id"].notna()]
    assert len(real) == N and real["status"].notna().all()
    garbage = frame[frame["task_id"].isna()]
    assert len(garbage) == 1 and "{broken" in str(garbage["note"].iloc[0])


# -- soak and load -------------------------------------------------------------------------------


@pytest.mark.slow
async def test_soak_a_24_hour_batch_of_1000_items(caplog: pytest.LogCaptureFixture) -> None:
    """A simulated day of polling: bounded memory, and no more requests than the schedule allows."""
    # the suite keeps every debug record to check it for the key; httpcore's ~10 per request
    # would be the test's own memory growth here, not the widget's
    for name in ("httpx", "httpcore"):
        caplog.set_level(logging.WARNING, logger=name)
    clock = ManualClock()
    with Simulator(api_key=SECRET_KEY, seed=11, clock=clock, item_seconds=(600, 1000), items_at_once=10) as sim:
        async with virtual_client(sim) as client:
            created = await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(1000))
            slept = vt_of(client).slept
            poller = BatchPoller(client, created.batch_id)
            widget = BatchWidget(created.batch_id, client, poller=poller)
            # warm up, then measure the growth over the rest of the day
            for _ in range(50):
                await asyncio.sleep(0)
            gc.collect()
            tracemalloc.start()
            start, _ = tracemalloc.get_traced_memory()
            final = await asyncio.wait_for(widget.wait(), 600)
            gc.collect()
            end, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            widget.close()
    assert final.is_terminal
    simulated = sum(slept)
    assert simulated >= 20 * 3600 or final.status is bw.BatchStatus.EXPIRED
    growth = end - start
    assert growth < 5 * 1024 * 1024, f"memory grew by {growth / 1e6:.1f} MB"
    # the schedule: never more often than min_interval, so requests <= simulated time / min_interval
    requests = sim.stats["requests"]["get"]
    print(f"soak: {requests} status requests over {simulated / 3600:.1f} simulated h, memory +{growth / 1e6:.2f} MB")
    assert requests == poller.polls
    assert requests <= simulated / Schedule().min_interval + 2
    assert requests < 24 * 3600 / 5 / 3  # and far fewer than fixed 5 s polling


@pytest.mark.slow
async def test_load_100_batches_through_one_client() -> None:
    with Simulator(api_key=SECRET_KEY, seed=5, speed=100.0, item_seconds=(30, 120),
                   max_active=100) as sim:  # fmt: skip
        async with bw.BatchClient(SECRET_KEY, base_url=sim.base_url) as client:
            ids = [
                (await client.create(analysis_mode="general", defaults=PROMPT,
                                     requests=requests_for(10, prefix=f"b{i}"))).batch_id
                for i in range(100)
            ]  # fmt: skip
            sim.reset_stats()
            fast = Schedule(min_interval=0.2, max_interval=1.0, tail_interval=0.2)
            widgets = [BatchWidget(batch_id, client, schedule=fast) for batch_id in ids]
            finals = await asyncio.wait_for(asyncio.gather(*(w.wait() for w in widgets)), 240)
            for w, final in zip(widgets, finals, strict=True):
                assert final.is_terminal and w.status == final.status.value == "completed"
                assert w.ready + w.failed + w.canceled == w.total == 10
                assert w.summary_text().startswith(f"Batch {final.batch_id} completed")
                w.close()
            stats = sim.stats
    gets, lists = stats["requests"].get("get", 0), stats["requests"]["list"]
    print(f"100 batches: {lists} list requests (2 pages a cycle while over 50 are active), {gets} gets")
    # one account poller: each cycle is one list (two pages of 50) for all 100 watches; an ended
    # batch is seen ended in that list, so no get confirms it (only a watch left alone polls by get)
    assert gets <= 10 and lists >= 4
    # one pool for all 100 watches: connections are reused, not opened per request
    assert stats["connections"] <= 20 and stats["connections"] * 5 < gets + lists
