"""Who may see what: watches, shared pollers and account pollers are keyed by (base URL, key).

And a batch id is one batch however it is spelt: ids are lowercased where they enter.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from batch_widget import BatchClient, NotFoundError
from batch_widget.account_poller import AccountPoller
from batch_widget.poller import BatchPoller, PollUpdate, Schedule
from batch_widget.simulator import ManualClock, Simulator
from batch_widget.validation import validate_batch_id
from batch_widget.widget import watch

from .conftest import PROMPT, SECRET_KEY, VirtualTime, requests_for

OTHER_KEY = "tlk_other_account_1111111111"


@pytest.fixture
async def two_keys() -> AsyncIterator[tuple[Simulator, BatchClient, BatchClient]]:
    """One simulator that knows two keys (two accounts), and a client for each on one virtual clock."""
    with Simulator(api_key=SECRET_KEY, seed=5, clock=ManualClock(), extra_api_keys=[OTHER_KEY]) as sim:
        time = VirtualTime(sim)
        async with BatchClient(SECRET_KEY, base_url=sim.base_url, clock=time) as a, BatchClient(
            OTHER_KEY, base_url=sim.base_url, clock=time
        ) as b:
            yield sim, a, b


async def create(client: BatchClient, n: int) -> str:
    return (await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(n))).batch_id


def test_ids_are_lowercased_where_they_enter() -> None:
    assert validate_batch_id("6A1F0C2E9B3D4E5F60718293") == "6a1f0c2e9b3d4e5f60718293"


async def test_a_shared_poller_is_never_shared_across_keys(
    two_keys: tuple[Simulator, BatchClient, BatchClient],
) -> None:
    _, a, b = two_keys
    mine = await create(a, 50)
    pa = BatchPoller.shared(a, mine)
    pa.acquire()
    await asyncio.sleep(0.05)
    pb = BatchPoller.shared(b, mine)  # key B asks for key A's batch
    assert pb is not pa and pb.client is b
    pb.acquire()
    with pytest.raises(NotFoundError):  # key B's own answer: no such batch
        await asyncio.wait_for(pb.wait(), 10)
    assert pb.update.batch is None  # it never showed A's batch
    assert pa.running and pa.update.batch is not None and pa.update.state == "watching"
    assert AccountPoller.of(a) is not AccountPoller.of(b)
    pa.release()


async def test_no_watch_or_list_shows_a_batch_across_keys(
    two_keys: tuple[Simulator, BatchClient, BatchClient],
) -> None:
    _, a, b = two_keys
    a_ids = [await create(a, 20), await create(a, 30)]
    b_ids = [await create(b, 25)]
    seen_by_b: list[PollUpdate] = []
    # B watches its own batch and both of A's, A watches its own: watches and bare pollers
    widgets = [watch(batch_id, b, display=False) for batch_id in (*b_ids, *a_ids)]
    for w in widgets:
        w.poller.add_listener(seen_by_b.append)
    own = [watch(batch_id, a, display=False) for batch_id in a_ids]
    for w in own:
        assert w.poller not in [v.poller for v in widgets]
    results = await asyncio.wait_for(asyncio.gather(*(w.wait() for w in widgets), return_exceptions=True), 30)
    assert results[0].total_items == 25  # type: ignore[union-attr]
    assert all(isinstance(r, NotFoundError) for r in results[1:])
    # nothing key B watched ever carried one of key A's batches
    assert not [u for u in seen_by_b if u.batch is not None and u.batch.batch_id in a_ids]
    for w in widgets[1:]:  # and their widgets show an error, no counts, no status
        assert w.widget.watch_state == "error" and w.widget.total == 0 and w.widget.status == ""
    finals = await asyncio.wait_for(asyncio.gather(*(w.wait() for w in own)), 30)
    assert [f.total_items for f in finals] == [20, 30]
    # nor does a list: each key's list holds its own batches only
    assert [x.batch_id async for x in b.list()] == b_ids
    assert {x.batch_id async for x in a.list()} == set(a_ids)
    for w in (*widgets, *own):
        w.close()


async def test_an_uppercase_id_shares_the_poller_of_its_lowercase_spelling(
    two_keys: tuple[Simulator, BatchClient, BatchClient],
) -> None:
    _, a, _ = two_keys
    batch_id = await create(a, 40)
    lower = BatchPoller.shared(a, batch_id)
    upper = BatchPoller.shared(a, batch_id.upper())
    assert upper is lower and upper.batch_id == batch_id
    assert upper.update.batch_id == batch_id
    w = watch(batch_id.upper(), a, display=False)
    assert w.poller is lower and w.batch_id == batch_id
    w.close()


async def test_two_uppercase_watches_coalesce_into_list_requests(
    two_keys: tuple[Simulator, BatchClient, BatchClient],
) -> None:
    """Regression: two watches of uppercase ids made one get per batch per cycle besides the list."""
    sim, a, _ = two_keys
    ids = [await create(a, 300), await create(a, 300)]
    sim.reset_stats()
    pollers = [BatchPoller(a, batch_id.upper(), schedule=Schedule(min_interval=3, max_interval=3)) for batch_id in ids]
    for p in pollers:
        p.start()
    for _ in range(500):
        await asyncio.sleep(0.005)
        if all(p.polls >= 5 for p in pollers):
            break
    for p in pollers:
        p.stop()
    counted = sim.stats["requests"]
    assert all(p.polls >= 5 and p.update.batch is not None for p in pollers)
    assert counted.get("get", 0) == 0 and counted.get("list", 0) >= 5
