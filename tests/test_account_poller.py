"""The account poller: one list request per cycle serves every watch of a client."""

from __future__ import annotations

import asyncio

from batch_widget import BatchClient
from batch_widget.account import ACTIVE_STATUSES
from batch_widget.account_poller import AccountPoller
from batch_widget.poller import BatchPoller, PollUpdate, Schedule
from batch_widget.simulator import Fault, ManualClock, Simulator

from .conftest import PROMPT, SECRET_KEY, delete_while_watched, requests_for, virtual_client, vt_of

HOUR = 3600.0
SLOW = Schedule(min_interval=30, max_interval=60)  # real-clock tests: nothing polls on its own


async def create(client: BatchClient, n: int) -> str:
    return (await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(n))).batch_id


def requests(sim: Simulator, endpoint: str) -> int:
    return int(sim.stats["requests"].get(endpoint, 0))


def watch(client: BatchClient, batch_id: str, schedule: Schedule | None = None) -> tuple[BatchPoller, list[PollUpdate]]:
    poller = BatchPoller(client, batch_id, schedule=schedule)
    seen: list[PollUpdate] = []
    poller.add_listener(seen.append)
    poller.start()
    return poller, seen


async def until(condition: object, tries: int = 300) -> None:
    for _ in range(tries):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_five_watches_cost_one_list_request_per_cycle(client: BatchClient, sim: Simulator) -> None:
    ids = [await create(client, n) for n in (40, 60, 80, 100, 120)]
    sim.reset_stats()
    pollers = [watch(client, batch_id)[0] for batch_id in ids]
    account = AccountPoller.of(client)
    # every cycle is one list request and no get at all: an ended batch is seen ended in the list
    await asyncio.wait([asyncio.ensure_future(p.wait()) for p in pollers], return_when="FIRST_COMPLETED")
    lists = requests(sim, "list")
    assert lists == account.cycles > 10
    assert requests(sim, "get") == 0
    for p in pollers:  # every watch got every cycle's answer
        assert p.polls == lists
    finals = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in pollers)), 30)
    assert [f.total_items for f in finals] == [40, 60, 80, 100, 120] and all(f.is_terminal for f in finals)
    assert not account.running and not account.watches


async def test_an_ended_batch_is_seen_in_the_list_without_a_confirming_get(
    client: BatchClient, sim: Simulator
) -> None:
    short, long = await create(client, 10), await create(client, 300)
    sim.reset_stats()
    a, seen_a = watch(client, short)
    b, _ = watch(client, long)
    final = await asyncio.wait_for(a.wait(), 30)
    assert final.is_terminal and final.done_items == 10
    assert requests(sim, "get") == 0  # the list shows every status, the final one included
    assert seen_a[-1].state == "done" and seen_a[-1].batch == final
    assert final == await client.get(short)  # the list's final counts are the batch's own
    assert b.running and b.update.state == "watching"
    b.stop()


async def test_the_list_stops_at_the_page_that_holds_the_watched_batches(
    client: BatchClient, sim: Simulator
) -> None:
    """An account with many ended batches: the newest page holds the watched ones, one request a cycle."""
    for _ in range(12):  # 60 ended batches, older than the watched ones
        for _ in range(5):
            await create(client, 1)
        sim.clock.advance(HOUR)
    ids = [await create(client, 200), await create(client, 300)]
    sim.reset_stats()
    pollers = [watch(client, batch_id)[0] for batch_id in ids]
    finals = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in pollers)), 30)
    assert all(f.is_terminal for f in finals)
    # one request a cycle: page 1 of the list while both run (never page 2, the ended ones), then
    # one get a cycle for the watch left alone
    assert requests(sim, "list") + requests(sim, "get") == AccountPoller.of(client).cycles
    assert requests(sim, "list") > 10
    assert sim.stats["responses"].get("404", 0) == 0


async def test_deleted_mid_watch_ends_that_watch_only(real_client: BatchClient, sim: Simulator) -> None:
    doomed, other = await create(real_client, 30), await create(real_client, 1000)
    a, _ = watch(real_client, doomed, SLOW)
    b, seen_b = watch(real_client, other, SLOW)
    await until(lambda: a.polls and b.polls)
    assert requests(sim, "list") == 1 and requests(sim, "get") == 0  # one cycle served both
    await delete_while_watched(real_client, sim, a)
    assert requests(sim, "get") == 1  # the one get that found it gone
    assert a.update.batch is not None and a.update.batch.total_items == 30
    assert b.running and b.update.state == "watching" and seen_b[-1].batch is not None
    assert seen_b[-1].batch.done_items > 0  # the refresh cycle brought the other watch fresh counts too
    b.stop()


async def test_refresh_on_one_watch_runs_one_cycle_for_all(real_client: BatchClient, sim: Simulator) -> None:
    ids = [await create(real_client, 50) for _ in range(3)]
    pollers = [watch(real_client, batch_id, SLOW)[0] for batch_id in ids]
    await until(lambda: all(p.polls == 1 for p in pollers))
    assert requests(sim, "list") == 1
    pollers[1].refresh()
    await until(lambda: all(p.polls == 2 for p in pollers))
    assert requests(sim, "list") == 2 and requests(sim, "get") == 0  # well before the 30 s interval
    for p in pollers:
        p.stop()
    await until(lambda: not AccountPoller.of(real_client).running)  # the last one out ends the loop


async def test_a_5xx_on_the_list_shows_retrying_on_every_watch(client: BatchClient, sim: Simulator) -> None:
    ids = [await create(client, 30), await create(client, 300)]
    sim.reset_stats()
    sim.add_fault(Fault(kind="status", endpoint="list", status=503, times=3, after=2))
    watched = [watch(client, batch_id) for batch_id in ids]
    await asyncio.wait_for(watched[0][0].wait(), 30)
    assert requests(sim, "get") == 0  # no fallback on a transient error
    finals = await asyncio.wait_for(asyncio.gather(*(p.wait() for p, _ in watched)), 30)
    assert all(f.is_terminal for f in finals)
    for _, seen in watched:
        retrying = [u for u in seen if u.state == "retrying"]
        assert len(retrying) == 3
        assert "Server error 503" in retrying[0].error and "retrying in 2 s (attempt 2)" in retrying[0].error
        assert "retrying in 8 s (attempt 4)" in retrying[-1].error


async def test_a_4xx_on_the_list_falls_back_to_one_get_per_batch(client: BatchClient, sim: Simulator) -> None:
    ids = [await create(client, 30), await create(client, 40)]
    sim.reset_stats()
    sim.add_fault(Fault(kind="status", endpoint="list", status=403, code="forbidden", times=None))
    watched = [watch(client, batch_id) for batch_id in ids]
    finals = await asyncio.wait_for(asyncio.gather(*(p.wait() for p, _ in watched)), 30)
    assert [f.total_items for f in finals] == [30, 40] and all(f.is_terminal for f in finals)
    for p, seen in watched:
        assert {u.state for u in seen} <= {"watching", "done"}  # nobody saw the refusal
        assert p.polls > 5
    lists, gets = requests(sim, "list"), requests(sim, "get")
    assert gets >= lists > 5  # every cycle tried the list, then got the due batches one by one


async def test_two_clients_with_different_keys_are_never_mixed() -> None:
    other_key = "tlk_other_account_0000000000"
    with Simulator(api_key=SECRET_KEY, seed=3, clock=ManualClock(), extra_api_keys=[other_key]) as sim:
        async with virtual_client(sim) as mine, BatchClient(
            other_key, base_url=sim.base_url, clock=vt_of(virtual_client(sim))
        ) as theirs:
            my_ids = [await create(mine, 20), await create(mine, 30)]
            their_ids = [await create(theirs, 25), await create(theirs, 35)]
            sim.reset_stats()
            pollers = [watch(mine, b)[0] for b in my_ids] + [watch(theirs, b)[0] for b in their_ids]
            assert AccountPoller.of(mine) is not AccountPoller.of(theirs)
            assert {w.batch_id for w in AccountPoller.of(mine).watches} == set(my_ids)
            finals = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in pollers)), 30)
            assert [f.total_items for f in finals] == [20, 30, 25, 35]
            assert [f.batch_id for f in finals] == my_ids + their_ids
            # mixed, a batch would be missing from the other key's list, and its get answer 404
            assert sim.stats["responses"].get("404", 0) == 0


async def test_attaching_to_an_old_batch_starts_at_an_interval_that_fits_its_age(
    client: BatchClient, sim: Simulator
) -> None:
    fresh = await create(client, 1000)
    poller, seen = watch(client, fresh)
    await until(lambda: len(vt_of(client).slept) >= 1)
    poller.stop()
    assert seen[0].interval_s == vt_of(client).slept[0] == Schedule().min_interval  # a new batch: the floor
    await until(lambda: not AccountPoller.of(client).running)
    sim.clock.advance(3 * HOUR)
    vt_of(client).slept.clear()
    old, seen = watch(client, fresh)  # the same batch, three hours on: 4 % of its age is over the cap
    await until(lambda: len(vt_of(client).slept) >= 1)
    old.stop()
    assert seen[0].interval_s == vt_of(client).slept[0] == Schedule().max_interval


async def test_the_list_reports_the_same_counts_as_retrieve(client: BatchClient, sim: Simulator) -> None:
    ids = [await create(client, n) for n in (50, 200, 400)]
    await client.cancel(ids[2])
    for minutes in (0, 3, 20, 45, 90):
        sim.clock.set(sim.clock.now() + minutes * 60)  # the manual clock stands still between the requests
        page = await client.list_page(1, page_limit=50, status=ACTIVE_STATUSES)
        listed = {b.batch_id: b for b in page.batches}
        for batch_id in ids:
            got = await client.get(batch_id)
            if got.status.is_active:
                assert listed[batch_id] == got
            else:
                assert batch_id not in listed
