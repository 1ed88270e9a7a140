"""BatchWatch: one watched batch as a model that knows no view, displayed as the batch widget."""

from __future__ import annotations

import asyncio

import pytest

import batch_widget as bw
from batch_widget._viewing import view_of
from batch_widget.batch_watch import BatchWatch, WatchSnapshot
from batch_widget.poller import BatchPoller, Schedule
from batch_widget.simulator import Fault, Simulator
from batch_widget.widget import BatchWidget, watch

from .conftest import PROMPT, Displays, requests_for

SLOW = Schedule(min_interval=30, max_interval=60)


async def create(client: bw.BatchClient, n: int) -> bw.CreatedBatch:
    return await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(n))


async def test_a_watch_runs_to_the_end_with_snapshots_to_listeners(client: bw.BatchClient, sim: Simulator) -> None:
    created = await create(client, 40)
    w = BatchWatch(created.batch_id.upper(), client, created_items=created.items)
    seen: list[WatchSnapshot] = []
    w.add_listener(seen.append)
    final = await asyncio.wait_for(w.wait(), 30)
    assert final.is_terminal and w.batch == final and w.finished
    assert seen[-1].update.state == "done" and seen[-1].batch == final and not seen[-1].cancel_requested
    frame = await w.to_pandas()
    assert len(frame) == 40 and list(frame["custom_id"]) == [i.custom_id for i in created.items]
    assert len(await w.peek(3)) == 3
    w.close()
    assert not w.poller.running


async def test_cancel_is_requested_until_the_batch_has_ended(client: bw.BatchClient, sim: Simulator) -> None:
    w = BatchWatch((await create(client, 300)).batch_id, client)
    seen: list[WatchSnapshot] = []
    w.add_listener(seen.append)
    await asyncio.sleep(0.05)
    await w.cancel()
    assert w.snapshot().cancel_requested
    final = await asyncio.wait_for(w.wait(), 30)
    assert final.status.value == "canceled" and not w.snapshot().cancel_requested
    assert any(s.cancel_requested for s in seen) and not seen[-1].cancel_requested
    w.close()


async def test_a_refused_cancel_clears_the_request(client: bw.BatchClient, sim: Simulator) -> None:
    w = BatchWatch((await create(client, 30)).batch_id, client)
    sim.add_fault(Fault(kind="status", endpoint="cancel", status=409, code="batch_completed", times=1))
    with pytest.raises(bw.ConflictError):
        await w.cancel()
    assert not w.snapshot().cancel_requested
    w.close()


async def test_a_watch_displays_as_the_batch_widget(
    real_client: bw.BatchClient, sim: Simulator, displays: Displays
) -> None:
    w = BatchWatch((await create(real_client, 30)).batch_id, real_client, schedule=SLOW)
    w._ipython_display_()
    view = view_of(w)
    assert isinstance(view, BatchWidget) and view.model is w and w.widget is view
    assert displays.shown and "application/vnd.jupyter.widget-view+json" in displays.shown[-1]
    for _ in range(200):
        await asyncio.sleep(0.01)
        if view.total:
            break
    assert view.total == 30 and view.batch_id == w.batch_id  # the view follows the model's snapshots
    view.close()
    assert w.poller.running  # closing a view of a watch the user holds leaves the watch running
    w.close()
    assert not w.poller.running


async def test_watch_returns_the_widget_of_a_watch_model(real_client: bw.BatchClient, sim: Simulator) -> None:
    batch_id = (await create(real_client, 30)).batch_id
    w = watch(batch_id, real_client, display=False, schedule=SLOW)
    assert isinstance(w.model, BatchWatch) and w.poller is BatchPoller.shared(real_client, batch_id)
    w.close()  # the widget made its watch: closing it gives up the watch's share
    assert not w.poller.running
