"""BatchWatch: one watched batch as a model that knows no view, displayed as the batch widget."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

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
    again = w.widget  # ...and displaying the watch again makes a new view, on the current state
    assert again is not view and again.comm is not None and again.total == 30
    w.close()
    assert again.comm is None
    assert not w.poller.running


async def test_watch_returns_the_watch_which_displays_as_its_widget(
    real_client: bw.BatchClient, sim: Simulator, displays: Displays
) -> None:
    batch_id = (await create(real_client, 30)).batch_id
    w = watch(batch_id, real_client, display=False, schedule=SLOW)
    assert isinstance(w, BatchWatch) and w.poller is BatchPoller.shared(real_client, batch_id)
    assert not displays.shown  # display=False: nothing shown, no widget made yet
    w._ipython_display_()  # JupyterLab, Notebook 7, Colab, VS Code: IPython's display of `w`
    view = w.widget
    assert isinstance(view, BatchWidget) and view.model is w
    assert w._display_() is view  # marimo's display protocol renders the same widget
    assert "application/vnd.jupyter.widget-view+json" in displays.shown[-1]
    assert displays.shown[-1]["application/vnd.jupyter.widget-view+json"]["model_id"] == view.model_id
    w._ipython_display_()  # shown again: the same view, a second display of it
    assert displays.shown[-1]["application/vnd.jupyter.widget-view+json"]["model_id"] == view.model_id
    assert view.comm is not None
    w.close()  # the user's handle: closing it stops the watch and closes its widget
    assert not w.poller.running and view.comm is None


async def test_what_users_call_on_the_watch_still_works(client: bw.BatchClient, displays: Displays) -> None:
    """Everything a user called on what ``watch()`` returned when it was the widget, on the watch."""
    created = await create(client, 60)
    w = watch(created.batch_id, client, display=False, created_items=created.items)
    w._ipython_display_()
    view = w.widget
    for _ in range(5000):  # polls go on (each sleep moves the virtual clock; each poll is a real request)
        await asyncio.sleep(0.002)
        if view.ready >= 3:
            break
    assert view.ready >= 3 and view.peek_rows == []
    frame = await w.peek(n=3)  # shown under the bar too, while the batch runs
    assert len(frame) == 3 and view.peek_rows == frame.to_dict("records")
    w.refresh()
    assert w.summary_text() == view.summary_text() and w.summary_text().startswith(f"Batch {w.batch_id} ")
    assert str(w.batch_id) in repr(w)
    final = await asyncio.wait_for(w.wait(), 60)
    assert final.is_terminal and w.batch == final and w.finished
    assert view.peek_rows == [], "the peek (outputs) is not kept once the batch has ended"
    # the final summary was pinned into the display, and once more from the waiting call
    pinned = [u for u in displays.updates if "bw-static" in u.get("text/html", "")]
    assert len(pinned) >= 2 and all(set(u) == {"text/plain", "text/html"} for u in pinned)
    assert pinned[-1]["text/plain"] == w.summary_text() == view.summary_text()
    assert w.summary_text().startswith(f"Batch {w.batch_id} completed: ")
    frame = await w.to_pandas()
    assert list(frame["custom_id"]) == [i.custom_id for i in created.items]
    w._ipython_display_()  # displayed after the end: the static summary alone
    assert set(displays.shown[-1]) == {"text/plain", "text/html"}
    w.close()


async def test_cancel_from_the_watch_shows_canceling_in_its_widget(client: bw.BatchClient) -> None:
    w = watch((await create(client, 300)).batch_id, client, display=False)
    view = w.widget
    await asyncio.sleep(0.05)
    await w.cancel()
    assert view.cancel_requested
    final = await asyncio.wait_for(w.wait(), 30)
    assert final.status.value == "canceled" and not view.cancel_requested and view.status == "canceled"
    w.close()


async def test_to_segments_on_the_watch(client: bw.BatchClient) -> None:
    seg = {"type": "segment_definitions", "segment_definitions": [{"id": "scene", "description": "a scene"}]}
    created = await client.create(
        analysis_mode="time_based_metadata", defaults={"response_format": seg}, requests=requests_for(4)
    )
    w = watch(created.batch_id, client, display=False, created_items=created.items)
    await asyncio.wait_for(w.wait(), 60)
    frame = await w.to_segments()
    assert len(frame) > 0 and {"custom_id", "start", "end", "duration"} <= set(frame.columns)
    assert set(frame["custom_id"]) <= {i.custom_id for i in created.items}
    assert (frame["end"] >= frame["start"]).all()
    w.close()


def test_wait_blocking_on_the_watch_from_a_script(sim: Simulator) -> None:
    client = bw.BatchClient(sim.api_key, base_url=sim.base_url)

    async def setup() -> str:
        async with client.clone() as c:
            return (await create(c, 3)).batch_id

    batch_id = asyncio.run(setup())
    sim.clock.advance(3600)
    w = watch(batch_id, client)  # a script: no IPython, so nothing is displayed, and no loop runs
    seen: list[WatchSnapshot] = []
    w.add_listener(seen.append)
    final = w.wait_blocking()
    assert final.is_terminal and w.finished and seen[-1].batch == final
    assert w.summary_text().startswith(f"Batch {batch_id} completed: ")
    w.close()


def test_a_watch_made_without_the_widget_module_finds_its_view_on_first_display(sim: Simulator) -> None:
    """The command line holds a BatchWatch without importing the widget stack; displayed, it still
    shows the batch widget (its module is imported then, as a job's is)."""
    script = f"""
import sys
import batch_widget as bw
from batch_widget.batch_watch import BatchWatch
w = BatchWatch("{"a" * 24}", bw.BatchClient({sim.api_key!r}, base_url={sim.base_url!r}))
assert "batch_widget.widget" not in sys.modules
assert isinstance(w.widget, bw.BatchWidget) and w.widget.model is w and w._display_() is w.widget
w.close()
print("ok")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWELVELABS_")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


async def test_a_notebook_wait_can_give_up_as_the_terminal_does(client: bw.BatchClient, sim: Simulator) -> None:
    """The one give-up policy (waiting.GiveUp) behind BatchWatch.wait: bounded, it ends; unbounded, it rides on."""
    created = await create(client, 5)
    w = BatchWatch(created.batch_id, client, schedule=Schedule(min_interval=5, max_interval=10))
    sim.add_fault("get:status=503:times=forever")
    sim.add_fault("list:status=503:times=forever")
    with pytest.raises(bw.ServerError):
        await asyncio.wait_for(w.wait(give_up_after=30), 60)
    assert w.snapshot().update.state in ("stopped", "error")
    w.close()
