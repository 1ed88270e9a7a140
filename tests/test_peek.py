"""Peek: the first finished items while a batch runs, fetched only when asked, never kept at the end."""

from __future__ import annotations

import asyncio

import pytest

import batch_widget as bw
from batch_widget.models import ItemError, ItemStatus, ResultData, ResultLine
from batch_widget.peek import OUTPUT_CHARS, peek, peek_row
from batch_widget.simulator import Fault, Simulator
from batch_widget.widget import BatchWidget

from .conftest import PROMPT, Displays, requests_for, vt_of

SCHEMA = {
    "type": "json_schema",
    "json_schema": {"type": "object", "properties": {"title": {"type": "string"}, "people": {"type": "integer"}},
                    "required": ["title", "people"]},
}  # fmt: skip


def line(status: str, text: str | None = None, error: ItemError | None = None) -> ResultLine:
    data = ResultData(text) if text is not None else None
    return ResultLine("t1", "vid-1", ItemStatus(status), data=data, error=error)


def test_rows_show_the_start_of_an_output_the_fields_of_a_structured_one_and_the_error() -> None:
    long = "word " * 100
    row = peek_row("b", line("ready", long))
    assert row is not None and len(row.output) == OUTPUT_CHARS and row.output.endswith("…")
    row = peek_row("b", line("ready", '{"title": "A dog", "people": 2, "tags": ["park"]}'))
    assert row is not None and row.output == 'title: A dog · people: 2 · tags: ["park"]'
    row = peek_row("b", line("ready", '{"title": "cut sho'))  # a truncated JSON answer: its text
    assert row is not None and row.output == '{"title": "cut sho'
    row = peek_row("b", line("failed", error=ItemError("the video could not be read", "video_unreadable")))
    assert row is not None and (row.status, row.error) == ("failed", "video_unreadable: the video could not be read")
    assert peek_row("b", line("processing")) is None and peek_row("b", line("queued")) is None


async def test_peek_mid_run_returns_the_first_finished_items_only(client: bw.BatchClient, sim: Simulator) -> None:
    created = await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(200))
    for _ in range(240):  # minutes in: some items are done, most are not
        await vt_of(client).sleep(5)
        state = sim.engine.batch_state(created.batch_id)
        if state["ready_items"] + state["failed_items"] >= 8:
            break
    finished = state["ready_items"] + state["failed_items"]
    assert 0 < finished < 200, state
    rows = await peek(client, [created.batch_id], n=5)
    assert len(rows) == min(5, finished)
    assert all(r.status in ("ready", "failed") and r.batch_id == created.batch_id for r in rows)
    assert all(r.output for r in rows if r.status == "ready")
    with pytest.raises(bw.InvalidInputError, match="n 0 must be a positive integer"):
        await peek(client, [created.batch_id], n=0)


async def test_the_widget_peeks_on_demand_and_keeps_nothing_at_the_end(
    client: bw.BatchClient, sim: Simulator, displays: Displays
) -> None:
    created = await client.create(
        analysis_mode="general", defaults={**PROMPT, "response_format": SCHEMA}, requests=requests_for(60)
    )
    w = BatchWidget(created.batch_id, client, poller=bw.BatchPoller(client, created.batch_id))
    w._ipython_display_()
    results_before = sim.stats["requests"].get("results", 0)
    for _ in range(5000):  # polls go on (each sleep moves the clock); no peek is fetched unless asked
        await asyncio.sleep(0)
        if w.ready >= 3:
            break
    assert sim.stats["requests"].get("results", 0) == results_before and w.peek_rows == []
    frame = await w.peek(n=3)
    assert list(frame.columns) == ["batch_id", "custom_id", "status", "output", "error"]
    assert 1 <= len(frame) <= 3 and frame["output"].str.contains("title: ").any()
    assert w.peek_rows == frame.to_dict("records")
    # from the view: the Peek button's message; a server failure is shown, never raised
    sim.add_fault(Fault(kind="status", endpoint="results", status=500, times=None))
    w._handle_custom_msg({"type": "peek"}, [])
    for _ in range(1000):  # real HTTP under the client's retries: wait in real time, bounded
        await asyncio.sleep(0.01)
        if w.peek_state.startswith("Peek failed"):
            break
    assert w.peek_state.startswith("Peek failed: Server error 500")
    sim.clear_faults()
    w._handle_custom_msg({"type": "peek"}, [])
    for _ in range(1000):
        await asyncio.sleep(0.01)
        if w.peek_state == "":
            break
    assert w.peek_state == "" and w.peek_rows
    await asyncio.wait_for(w.wait(), 30)
    assert w.peek_rows == [], "the peek (outputs) is not kept once the batch has ended"
    final = displays.updates[-1]
    assert "title:" not in final["text/html"] and "title:" not in final["text/plain"]
    w.close()


async def test_a_job_peeks_across_its_batches(client: bw.BatchClient, sim: Simulator, tmp_path: object) -> None:
    import pandas as pd

    df = pd.DataFrame({"asset_id": [f"{i:024x}" for i in range(1, 121)]})
    job = bw.submit(df, prompt="Summarise.", client=client, manifest=f"{tmp_path}/job.json", chunk_size=40)
    await asyncio.wait_for(job.wait(), 60)
    frame = await job.peek(n=50)
    assert len(frame) == 50 and set(frame["batch_id"]) <= set(job.batch_ids) and len(set(frame["batch_id"])) == 2
    job.close()
    bw.jobs.live_jobs.clear()
