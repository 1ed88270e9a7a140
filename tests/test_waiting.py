"""The one give-up policy (``waiting.GiveUp``): a bound on a watch's failing polls, the same for a
notebook's wait and the command line; and a watch's first status (``status``, ``results``).

On virtual time (the ``client`` fixture): minutes of failing polls pass in a moment, and the
seconds asserted are the client clock's, not the wall's.
"""

from __future__ import annotations

import asyncio

import pytest

import batch_widget as bw
from batch_widget.batch_watch import BatchWatch, WatchSnapshot
from batch_widget.simulator import Fault, Simulator
from batch_widget.waiting import GiveUp, first_status, wait

from .conftest import PROMPT, requests_for

MISSING = "0123456789abcdef01234567"


async def watched(client: bw.BatchClient, n: int = 20) -> tuple[BatchWatch, list[tuple[float, WatchSnapshot]]]:
    """A watch of a new batch that has answered once, and its snapshots with the client-clock time of each."""
    created = await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(n))
    w = BatchWatch(created.batch_id, client)
    seen: list[tuple[float, WatchSnapshot]] = []
    w.add_listener(lambda snap: seen.append((client.clock.monotonic(), snap)))
    assert (await asyncio.wait_for(first_status(w), 30)).total_items == n
    return w, seen


def failing_503(times: int | None) -> Fault:
    return Fault(kind="status", endpoint="get", status=503, times=times)


async def test_a_bounded_wait_gives_up_at_the_first_failed_poll_past_its_seconds(
    client: bw.BatchClient, sim: Simulator
) -> None:
    w, seen = await watched(client)
    sim.add_fault(failing_503(None))  # the status fails from now on
    with pytest.raises(bw.ServerError):  # the poll's own error, not "the watch stopped"
        await asyncio.wait_for(wait(w, give_up_after=300), 30)
    states = [snap.update.state for _, snap in seen]
    stop = states.index("stopped")  # the poll past the bound, then the watch stopped (told once more by a wait, maybe)
    assert states[stop - 1] == "retrying" and set(states[stop:]) == {"stopped"} == {w.snapshot().update.state}
    assert w.batch is not None and w.batch.total_items == 20  # the last known counts are kept
    failing = [t for t, snap in seen if snap.update.state == "retrying"]
    assert failing[-1] - failing[0] >= 300 > failing[-2] - failing[0]  # at the first failed poll past the bound
    assert not w.poller.running  # polling stopped: nothing more is asked of the API
    w.close()


async def test_without_a_bound_a_wait_rides_out_a_long_failing_spell(client: bw.BatchClient, sim: Simulator) -> None:
    w, seen = await watched(client)
    sim.add_fault(failing_503(12))  # 2 + 4 + ... + 60 s: about 420 s of failing polls, then answers again
    final = await asyncio.wait_for(w.wait(), 30)  # a notebook's wait: no bound
    assert final.is_terminal and sim.stats["faults_fired"] == 12
    failing = [t for t, snap in seen if snap.update.state == "retrying"]
    assert failing[-1] - failing[0] > 300  # the spell was longer than the bound of the test above
    assert seen[-1][1].update.state == "done"
    w.close()


async def test_a_bound_longer_than_the_spell_rides_it_out_too(client: bw.BatchClient, sim: Simulator) -> None:
    w, seen = await watched(client)
    sim.add_fault(failing_503(5))
    final = await asyncio.wait_for(wait(w, give_up_after=3600), 30)
    assert final.is_terminal and sim.stats["faults_fired"] == 5
    assert "retrying" in [snap.update.state for _, snap in seen]
    w.close()


async def test_a_listener_added_after_the_bound_sees_the_given_up_watch_stopped(
    client: bw.BatchClient, sim: Simulator
) -> None:
    """What the command line relies on: the bound listens first, so a row drawn from the watch's
    current snapshot shows it stopped after the poll that ended it (never once more as retrying)."""
    created = await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(5))
    w = BatchWatch(created.batch_id, client)
    bound = GiveUp(w, 0)
    drawn: list[str] = []
    w.add_listener(lambda _: drawn.append(w.snapshot().update.state))
    sim.add_fault(failing_503(None))
    with pytest.raises(bw.ServerError):
        await asyncio.wait_for(bound.until(w.wait()), 30)
    assert drawn and drawn[-1] == "stopped" and "retrying" not in drawn  # 0 s: the first failed poll ends it
    w.close()


async def test_first_status_is_the_first_answer_and_the_watch_goes_on(client: bw.BatchClient, sim: Simulator) -> None:
    w, _ = await watched(client)
    assert w.poller.running and not w.finished  # first_status did not end the watch
    again = await first_status(w)  # the watch has an answer already: at once
    assert again == w.batch
    w.close()


async def test_first_status_raises_what_ended_the_watch(client: bw.BatchClient, sim: Simulator) -> None:
    w = BatchWatch(MISSING, client)
    with pytest.raises(bw.NotFoundError):
        await asyncio.wait_for(first_status(w, give_up_after=60), 30)
    w.close()
    created = await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(3))
    sim.add_fault(failing_503(None))
    w = BatchWatch(created.batch_id, client)
    with pytest.raises(bw.ServerError):
        await asyncio.wait_for(first_status(w, give_up_after=0), 30)
    assert sim.stats["faults_fired"] == 1 and w.snapshot().update.state == "stopped"
    w.close()


def test_a_negative_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="give_up_after"):
        GiveUp(object(), -1)  # type: ignore[arg-type]
