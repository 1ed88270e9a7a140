"""BatchPoller against the simulator on a virtual clock: hours of batch life in a second."""

from __future__ import annotations

import asyncio

import pytest

from batch_widget import AuthenticationError, BatchClient, BatchStatus, NotFoundError
from batch_widget.models import Batch
from batch_widget.poller import BatchPoller, PollUpdate, Schedule, ThroughputEstimator
from batch_widget.simulator import Fault, Simulator

from .conftest import PROMPT, delete_while_watched, requests_for, vt_of

HOUR = 3600.0


def make_poller(client: BatchClient, batch_id: str, **kw: object) -> tuple[BatchPoller, list[float]]:
    """A poller on the client's virtual clock, and the list of the sleeps it takes."""
    slept = vt_of(client).slept
    slept.clear()
    return BatchPoller(client, batch_id, **kw), slept  # type: ignore[arg-type]


async def create(client: BatchClient, n: int) -> str:
    created = await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(n))
    return created.batch_id


async def test_watches_a_batch_to_completion(client: BatchClient, sim: Simulator) -> None:
    batch_id = await create(client, 200)
    poller, slept = make_poller(client, batch_id)
    updates: list[PollUpdate] = []
    poller.add_listener(updates.append)
    final = await asyncio.wait_for(poller.wait(), 30)
    assert final.status is BatchStatus.COMPLETED and final.done_items == 200
    states = [u.state for u in updates]
    assert states[-1] == "done" and set(states) <= {"watching", "done"}
    statuses = [u.batch.status for u in updates if u.batch]
    assert statuses[0] is BatchStatus.PENDING and BatchStatus.PROCESSING in statuses
    # counts never go down in this run, and every update carries a wall time
    done = [u.batch.done_items for u in updates if u.batch]
    assert done == sorted(done) and all(u.updated_at for u in updates)
    # the schedule stays within its bounds and ends on its own
    schedule = poller.schedule
    assert all(schedule.min_interval <= s <= schedule.max_interval for s in slept)
    assert not poller.running and poller.polls == len(updates)
    # rate and ETA were known while it ran
    mid = [u for u in updates if u.state == "watching" and u.rate_per_min]
    assert mid and all(u.eta_s is not None and u.eta_s >= 0 for u in mid)
    assert len(updates[-1].history) <= 40


async def test_async_iterator_yields_until_the_end(client: BatchClient, sim: Simulator) -> None:
    batch_id = await create(client, 10)
    poller, _ = make_poller(client, batch_id)
    poller.start()
    seen = [u async for u in poller.updates()]
    assert seen[-1].state == "done" and seen[-1].batch is not None and seen[-1].batch.is_terminal
    # a late subscriber gets the final update and ends at once
    late = [u async for u in poller.updates()]
    assert len(late) == 1 and late[0].state == "done"


async def test_transient_errors_are_retried_and_shown(client: BatchClient, sim: Simulator) -> None:
    batch_id = await create(client, 20)
    poller, _slept = make_poller(client, batch_id)
    updates: list[PollUpdate] = []
    poller.add_listener(updates.append)
    sim.add_fault(Fault(kind="status", endpoint="get", status=503, times=5, after=2))
    final = await asyncio.wait_for(poller.wait(), 30)
    assert final.is_terminal
    retrying = [u for u in updates if u.state == "retrying"]
    assert len(retrying) == 5
    assert "Server error 503" in retrying[0].error and "retrying in" in retrying[0].error
    assert retrying[0].batch is not None  # the last good snapshot is kept while retrying
    assert updates[-1].error == ""


async def test_retry_after_is_honoured(client: BatchClient, sim: Simulator) -> None:
    batch_id = await create(client, 5)
    poller, slept = make_poller(client, batch_id)
    sim.add_fault(Fault(kind="rate_limit", endpoint="get", retry_after=45, times=1, after=1))
    await asyncio.wait_for(poller.wait(), 30)
    assert 45 in [round(s) for s in slept]


@pytest.mark.parametrize(
    ("fault", "exc", "words"),
    [
        (Fault(kind="status", endpoint="get", status=404, code="resource_not_exist", times=None, after=1),
         NotFoundError, "Batch not found"),
        (Fault(kind="status", endpoint="get", status=401, code="api_key_invalid", times=None, after=1),
         AuthenticationError, "API key was refused"),
    ],
)
async def test_fatal_errors_end_the_watch(
    client: BatchClient, sim: Simulator, fault: Fault, exc: type[Exception], words: str
) -> None:
    batch_id = await create(client, 20)
    poller, _ = make_poller(client, batch_id)
    sim.add_fault(fault)
    with pytest.raises(exc):
        await asyncio.wait_for(poller.wait(), 30)
    assert poller.update.state == "error" and words in poller.update.error
    assert poller.update.batch is not None  # what was fetched before is kept
    assert not poller.running


async def test_deleted_while_watched(real_client: BatchClient, sim: Simulator) -> None:
    """A real deletion (cancel, let it end, delete) between two polls: the next poll's 404 ends the watch."""
    batch_id = await create(real_client, 30)
    poller = BatchPoller(real_client, batch_id, schedule=Schedule(min_interval=30, max_interval=60))
    poller.start()
    for _ in range(200):
        await asyncio.sleep(0.01)
        if poller.polls:
            break
    assert poller.update.state == "watching"
    await delete_while_watched(real_client, sim, poller)
    assert poller.update.batch is not None and poller.update.batch.total_items == 30


async def test_shared_poller_and_release(real_client: BatchClient, sim: Simulator) -> None:
    batch_id = await create(real_client, 50)
    a = BatchPoller.shared(real_client, batch_id)
    b = BatchPoller.shared(real_client, batch_id)
    assert a is b
    a.acquire()
    b.acquire()
    assert a.running
    a.release()
    assert a.running
    b.release()
    await asyncio.sleep(0)
    assert not a.running and a.update.state == "stopped"
    c = BatchPoller.shared(real_client, batch_id)
    assert c is not a  # a stopped poller is replaced by a fresh one
    c.stop()


async def test_refresh_wakes_the_poller(real_client: BatchClient, sim: Simulator) -> None:
    batch_id = await create(real_client, 50)
    poller = BatchPoller(real_client, batch_id, schedule=Schedule(min_interval=30, max_interval=60))
    poller.start()
    for _ in range(100):
        await asyncio.sleep(0.02)
        if poller.polls:
            break
    assert poller.polls == 1
    poller.refresh()
    for _ in range(100):
        await asyncio.sleep(0.02)
        if poller.polls == 2:
            break
    assert poller.polls == 2  # well before the 30 s interval
    poller.stop()
    assert (await poller.wait()).batch_id == batch_id  # stop: wait returns the last snapshot


async def test_cancel_mid_run_is_followed_to_canceled(client: BatchClient, sim: Simulator) -> None:
    batch_id = await create(client, 300)
    poller, _ = make_poller(client, batch_id)
    updates: list[PollUpdate] = []

    def on_update(u: PollUpdate) -> None:
        updates.append(u)
        if len(updates) == 5:
            asyncio.get_running_loop().create_task(client.cancel(batch_id))

    poller.add_listener(on_update)
    final = await asyncio.wait_for(poller.wait(), 30)
    assert final.status is BatchStatus.CANCELED and final.canceled_items > 0
    assert BatchStatus.CANCELING in [u.batch.status for u in updates if u.batch]


def test_blocking_wait_outside_a_loop(sim: Simulator) -> None:
    sim.clock.advance(0)
    client = BatchClient(sim.api_key, base_url=sim.base_url)

    async def setup() -> str:
        async with client.clone() as c:
            return await create(c, 3)

    batch_id = asyncio.run(setup())
    sim.clock.advance(HOUR)
    poller = BatchPoller(client, batch_id)
    final = poller.wait_blocking()
    assert final.is_terminal


async def test_blocking_wait_in_a_notebook_says_the_display_pauses(real_client: BatchClient, sim: Simulator) -> None:
    batch_id = await create(real_client, 3)
    sim.clock.advance(HOUR)
    poller = BatchPoller(real_client, batch_id)
    with pytest.warns(UserWarning, match="live widgets pause until the batch ends"):
        final = poller.wait_blocking()  # under a running loop, as in a kernel
    assert final.is_terminal


# -- the schedule and the estimator, as units -----------------------------------------------------


def snapshot(queued: int, processing: int, done: int, status: str = "processing") -> Batch:
    return Batch.from_dict({
        "batch_id": "6a1f0c2e9b3d4e5f60718293", "status": status,
        "total_items": queued + processing + done, "queued_items": queued,
        "processing_items": processing, "ready_items": done,
    })  # fmt: skip


def test_schedule_backs_off_while_nothing_changes_and_tightens_near_the_end() -> None:
    s = Schedule(min_interval=2, max_interval=60)
    batch = snapshot(100, 8, 10)
    interval = 2.0
    seen = []
    for _ in range(12):
        interval = s.next_interval(previous=interval, changed=False, age=300, batch=batch, eta_s=None)
        seen.append(interval)
    # backs off, but never beyond 8 % of the time watched: a change is seen within 8 % of the age
    assert seen == sorted(seen) and seen[-1] == 24
    interval, hours = 2.0, 2 * HOUR
    for _ in range(12):  # two hours in: up to max_interval
        interval = s.next_interval(previous=interval, changed=False, age=hours, batch=batch, eta_s=None)
    assert interval == 60
    assert s.next_interval(previous=60, changed=True, age=300, batch=batch, eta_s=None) == 12
    # near the end: the batch cannot end before the items left finish (7.5 s each), or the ETA
    assert s.next_interval(previous=60, changed=False, age=7200, batch=snapshot(0, 3, 115), eta_s=None) == 22.5
    assert s.next_interval(previous=60, changed=False, age=7200, batch=snapshot(0, 3, 115), eta_s=20) == 10
    assert s.next_interval(previous=60, changed=False, age=7200, batch=snapshot(0, 1, 117), eta_s=None) == 5
    assert s.next_interval(previous=60, changed=False, age=7200, batch=batch, eta_s=20) == 10
    assert s.next_interval(previous=60, changed=False, age=7200, batch=batch, eta_s=4) == 5
    # the ETA is compared with the interval slept (60 s), not 4 % of a long watch (18 min here)
    assert s.next_interval(previous=60, changed=True, age=27000, batch=batch, eta_s=2000) == 60
    assert s.error_interval(1, None) == 2 and s.error_interval(10, None) == 60
    assert s.error_interval(1, 30) == 30
    with pytest.raises(ValueError, match="min_interval"):
        Schedule(min_interval=0)


def test_estimator_tolerates_jumps_stalls_and_recounts() -> None:
    est = ThroughputEstimator(window=300)
    est.add(0, 0)
    assert est.rate_per_min is None and est.eta_seconds(100) is None
    for t in range(60, 1201, 60):  # 10 items a minute
        est.add(t, t // 6)
    assert est.rate_per_min == pytest.approx(10, rel=0.01)
    assert est.eta_seconds(50) == pytest.approx(300, rel=0.01)
    est.add(1260, 400)  # a jump of 200 in one poll
    assert 10 < est.rate_per_min < 200  # smoothed, not 200/min
    for t in range(1320, 1800, 60):  # a stall
        est.add(t, 400)
    stalled = est.rate_per_min
    assert stalled is not None and stalled > 0
    est.add(1860, 100)  # counts went backwards: start over, no negative rate
    assert est.rate_per_min is None or est.rate_per_min >= 0
    assert est.eta_seconds(0) == 0.0



async def test_a_sped_up_server_clock_does_not_stretch_the_schedule() -> None:
    """A simulator at 60x: its clock says the batch is minutes old after seconds; the schedule
    follows the batch's age in the poller's own seconds, so the demo's view stays lively."""
    from .conftest import SECRET_KEY

    with Simulator(api_key=SECRET_KEY, seed=2, speed=60.0, item_seconds=(3000.0, 6000.0), items_at_once=5) as sim:
        async with BatchClient(SECRET_KEY, base_url=sim.base_url) as client:  # the real clock
            batch_id = await create(client, 50)
            poller = BatchPoller(client, batch_id)
            updates: list[PollUpdate] = []
            poller.add_listener(updates.append)
            poller.start()
            await asyncio.sleep(9.0)
            poller.stop()
    late = [u for u in updates if u.batch is not None][-1]
    assert late.batch is not None and late.batch.created_at is not None
    server_age = (client.server_now() - late.batch.created_at).total_seconds()
    assert server_age > 120, server_age  # minutes old on the server's clock...
    assert late.interval_s <= 5.0, [u.interval_s for u in updates]  # ...seconds old on ours
