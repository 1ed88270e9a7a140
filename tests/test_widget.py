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
    "interval_s", "watch_state", "error", "history", "cancel_requested", "revision", "webhooks", "peek_rows",
    "peek_state", "last_known", "usage_line",
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


# -- pull: the view asks, the kernel answers from the handler (Colab drops background messages) --


async def test_a_pull_is_answered_only_when_the_view_is_behind_and_pins_the_end(
    client: bw.BatchClient, sim: Simulator, displays: Displays, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = await widget_for(client, sim, 40)
    w._ipython_display_()
    for _ in range(1000):  # a few polls in, still running (real HTTP: wait in real time, bounded)
        await asyncio.sleep(0.01)
        if w.revision >= 3 and w.status == "processing":
            break
    assert w.revision >= 3 and not w.poller.finished
    sent: list[list[str]] = []
    real_send_state = w.send_state

    def spy(key: object = None) -> None:
        sent.append(list(key) if isinstance(key, list) else [str(key)])
        real_send_state(key)  # type: ignore[arg-type]

    monkeypatch.setattr(w, "send_state", spy)
    w._handle_custom_msg({"type": "pull", "revision": w.revision}, [])  # up to date: nothing
    assert sent == [] and (w.pulls.asked, w.pulls.answered) == (1, 0)
    w._handle_custom_msg({"type": "pull", "revision": w.revision - 2}, [])  # behind: the state
    assert len(sent) == 1 and (w.pulls.asked, w.pulls.answered) == (2, 1)
    assert {"status", "ready", "revision", "updated_at", "error"} <= set(sent[0])
    assert not {"_esm", "_css", "layout"} & set(sent[0]), "the module and styles are not resent"
    assert displays.updates == []  # still running: no pinning
    # the batch ends while the view hears nothing (as in Colab): the next pull pins the summary
    w.model.remove_listener(w._on_snapshot)  # the pushes are lost
    await asyncio.wait_for(w.poller.wait(), 30)
    w.model.add_listener(w._on_snapshot)
    w._on_snapshot(w.model.snapshot())  # the kernel's side is current; the view is not
    updates_before = len(displays.updates)
    w._handle_custom_msg({"type": "pull", "revision": 1}, [])
    assert len(displays.updates) > updates_before
    assert "completed:" in displays.updates[-1]["text/plain"]
    assert set(displays.updates[-1]) == {"text/plain", "text/html"}
    w.close()


def test_webhook_deliveries_show_in_the_traits_and_the_static_summary() -> None:
    batch = Batch.from_dict({
        "batch_id": "b" * 24, "status": "completed", "total_items": 2, "ready_items": 2,
        "webhooks": [
            {"url": "https://example.com/hook", "delivered": True, "attempts": 1},
            {"url": HOSTILE, "delivered": False, "attempts": 3, "last_error": HOSTILE},
        ],
    })  # fmt: skip
    update = PollUpdate(batch_id="b" * 24, batch=batch, state="done")
    assert "[webhooks: 1 of 2 delivered]" in summary_text(update)
    page = summary_html(update)
    assert "https://example.com/hook" in page and "delivered (1 attempt)" in page
    assert "not delivered (3 attempts)" in page and "<img" not in page and "&lt;img" in page


async def test_webhooks_reach_the_widget(client: bw.BatchClient, sim: Simulator) -> None:
    hooks = [{"url": "https://example.com/hook", "delivered": False, "attempts": 2, "last_error": "HTTP 500"}]
    sim.add_fault(Fault(kind="patch_batch", endpoint="get", patch={"webhooks": hooks}, times=None))
    w = await widget_for(client, sim, 5)
    await asyncio.wait_for(w.wait(), 30)
    assert w.webhooks == hooks
    w.close()


def test_a_watch_that_ended_before_any_status_says_so() -> None:
    ended = PollUpdate(batch_id="c" * 24, batch=None, state="error", error="Batch not found: no such batch")
    expected = f"Batch {'c' * 24}: the watch ended before any status arrived (Batch not found: no such batch)"
    assert summary_text(ended) == expected
    stopped = PollUpdate(batch_id="c" * 24, batch=None, state="stopped")
    assert "stopped before any status arrived" in summary_text(stopped)
    assert "waiting for the first status" in summary_text(PollUpdate(batch_id="c" * 24, batch=None, state="starting"))


def test_a_bad_batch_id_is_refused_and_leaves_nothing_half_made(
    client: bw.BatchClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc
    import sys

    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    for bad in ("nope", None, 123, "0123456789abcdef0123456z"):
        with pytest.raises(bw.InvalidInputError, match="is not a batch id"):
            bw.watch(bad, client)  # type: ignore[arg-type]
        with pytest.raises(bw.InvalidInputError):
            BatchWidget(bad, client)  # type: ignore[arg-type]
    gc.collect()
    assert unraisable == [], "a half-built widget complained when it was collected (Widget.__del__)"


async def test_an_api_message_that_ends_a_sentence_is_not_doubled(client: bw.BatchClient, sim: Simulator) -> None:
    with pytest.raises(bw.NotFoundError) as info:
        await client.get("0123456789abcdef01234567")
    text = str(info.value)
    assert ".." not in text and ".;" not in text and "does not exist. Check the batch id" in text
    banner = bw.errors.describe_error(info.value)
    assert not banner.endswith(".") and f"{banner}; retrying in 4 s".count(".;") == 0
