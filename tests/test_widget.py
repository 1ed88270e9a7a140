"""BatchWidget in-process: trait projection, frontend messages, display ids and the static summary."""

from __future__ import annotations

import asyncio
import json

import pytest

import batch_widget as bw
from batch_widget.models import Batch
from batch_widget.poller import BatchPoller, PollUpdate
from batch_widget.simulator import Fault, Simulator
from batch_widget.widget import BatchWidget, summary_html, summary_text

from .conftest import PROMPT, SECRET_KEY, Displays, requests_for

SYNCED = {
    "batch_id", "status", "analysis_mode", "total", "queued", "processing", "ready", "failed",
    "canceled", "created_at", "expires_at", "ended_at", "rate_per_min", "eta_s", "updated_at",
    "interval_s", "watch_state", "error", "history", "cancel_requested",
}  # fmt: skip
HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


async def widget_for(client: bw.BatchClient, sim: Simulator, n: int) -> BatchWidget:
    created = await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(n))
    poller = BatchPoller(client, created.batch_id)
    return BatchWidget(created.batch_id, client, poller=poller, created_items=created.items)


async def test_traits_project_the_latest_snapshot(client: bw.BatchClient, sim: Simulator) -> None:
    w = await widget_for(client, sim, 60)
    assert set(w.trait_names(sync=True)) - {"_esm", "_css", "_anywidget_id", "_model_name", "_model_module",
        "_model_module_version", "_view_name", "_view_module", "_view_module_version", "_view_count",
        "_dom_classes", "layout", "tabbable", "tooltip", "_anywidget_commands"} == SYNCED  # fmt: skip
    final = await asyncio.wait_for(w.wait(), 30)
    assert w.batch == final
    assert (w.status, w.total, w.watch_state) == ("completed", 60, "done")
    assert (w.ready, w.failed, w.canceled, w.queued, w.processing) == (
        final.ready_items, final.failed_items, final.canceled_items, 0, 0)  # fmt: skip
    assert w.created_at.endswith("Z") and w.ended_at.endswith("Z") and w.updated_at.endswith("Z")
    assert w.history and len(w.history) <= 40 and w.rate_per_min and w.rate_per_min > 0
    state = json.dumps({k: getattr(w, k) for k in SYNCED})
    assert SECRET_KEY not in state and SECRET_KEY not in repr(w)
    w.close()


async def test_cancel_message_from_the_view(client: bw.BatchClient, sim: Simulator) -> None:
    w = await widget_for(client, sim, 200)
    w.poller.start()
    while w.status in ("", "pending"):
        await asyncio.sleep(0.01)
    w._handle_custom_msg({"type": "cancel"}, [])
    for _ in range(200):
        await asyncio.sleep(0.01)
        if w.cancel_requested:
            break
    assert w.cancel_requested
    final = await asyncio.wait_for(w.wait(), 30)
    assert final.status is bw.BatchStatus.CANCELED
    assert w.status == "canceled" and not w.cancel_requested and w.canceled > 0
    w.close()


async def test_cancel_failure_is_shown_not_raised(client: bw.BatchClient, sim: Simulator) -> None:
    w = await widget_for(client, sim, 10)
    await asyncio.wait_for(w.wait(), 30)
    w._handle_custom_msg({"type": "cancel"}, [])
    for _ in range(200):
        await asyncio.sleep(0.01)
        if w.error:
            break
    assert w.error.startswith("Cancel failed: HTTP 409") and not w.cancel_requested
    w._handle_custom_msg({"type": "nonsense"}, [])  # ignored
    w._handle_custom_msg("not a dict", [])
    w.close()


async def test_refresh_message_polls_now(real_client: bw.BatchClient, sim: Simulator) -> None:
    created = await real_client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(10))
    w = BatchWidget(created.batch_id, real_client, schedule=bw.Schedule(min_interval=30, max_interval=60))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if w.poller.polls:
            break
    w._handle_custom_msg({"type": "refresh"}, [])
    for _ in range(200):
        await asyncio.sleep(0.01)
        if w.poller.polls == 2:
            break
    assert w.poller.polls == 2
    w.close()
    assert not w.poller.running


async def test_every_display_is_replaced_by_the_static_summary(
    client: bw.BatchClient, sim: Simulator, displays: Displays
) -> None:
    w = await widget_for(client, sim, 30)
    w._ipython_display_()
    w._ipython_display_()  # `w` and display(w): two displays, two handles
    assert len(displays.shown) == 2
    live = displays.shown[0]
    assert "application/vnd.jupyter.widget-view+json" in live
    assert "live view needs the running kernel" in live["text/plain"]
    await asyncio.wait_for(w.wait(), 30)
    # once from the poller's task when the batch ended, once more from the waiting cell
    assert len(displays.updates) == 4
    for bundle in displays.updates:
        assert set(bundle) == {"text/plain", "text/html"}
        assert "completed:" in bundle["text/plain"] and 'class="bw-static"' in bundle["text/html"]
    w.finalize()  # idempotent
    assert len(displays.updates) == 4
    w._ipython_display_()  # re-displaying a finished widget: the static summary only
    assert set(displays.shown[-1]) == {"text/plain", "text/html"}
    w.close()


async def test_fatal_error_finalises_with_the_error(
    client: bw.BatchClient, sim: Simulator, displays: Displays
) -> None:
    w = await widget_for(client, sim, 30)
    w._ipython_display_()
    sim.add_fault(Fault(kind="status", endpoint="get", status=404, times=None, after=2))
    with pytest.raises(bw.NotFoundError):
        await asyncio.wait_for(w.wait(), 30)
    assert w.watch_state == "error" and "Batch not found" in w.error
    assert displays.updates and "Batch not found" in displays.updates[-1]["text/plain"]
    w.close()


def test_static_summary_escapes_server_strings_and_reads_like_the_outcome() -> None:
    batch = Batch.from_dict({
        "batch_id": HOSTILE, "status": "completed", "analysis_mode": HOSTILE, "total_items": 120,
        "ready_items": 114, "failed_items": 6, "completed_at": "2026-11-28T13:41:12Z",
    })  # fmt: skip
    update = PollUpdate(batch_id="x", batch=batch, state="done", error=HOSTILE)
    page = summary_html(update)
    assert "<img" not in page and "<script" not in page and "&lt;img" in page
    assert "style=" in page and "<style" not in page
    assert "completed: 114 ready, 6 failed of 120" in summary_text(update)
    assert "114 ready, 6 failed" in page
    assert "<script" not in summary_html(PollUpdate(batch_id=HOSTILE, batch=None, state="starting"))
    unknown = Batch.from_dict({"batch_id": "b", "status": "paused", "total_items": 3, "queued_items": 3})
    assert "paused: 0 of 3 done" in summary_text(PollUpdate(batch_id="b", batch=unknown, state="watching"))
