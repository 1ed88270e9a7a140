"""bw.plan (what submit would send, sending nothing), usage after (hours, tokens, not billed) and the budget.

Against the simulator on a manual clock with virtual sleeps: the assets are made by URL on it (their
durations seeded per file name), so the plan's hours are the simulator's own.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import batch_widget as bw
import batch_widget.jobs as jobs_mod
from batch_widget.errors import InvalidInputError
from batch_widget.simulator import ManualClock, Simulator
from batch_widget.simulator.engine import ItemSpec

from .conftest import SECRET_KEY, Displays, virtual_client


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    jobs_mod.live_jobs.clear()
    yield
    for job in jobs_mod.live_jobs.values():
        job.close()
    jobs_mod.live_jobs.clear()


def make_sim(**kw: Any) -> Simulator:
    opts: dict[str, Any] = {"api_key": SECRET_KEY, "seed": 5, "clock": ManualClock(), "item_seconds": (5.0, 20.0),
                            "items_at_once": 50, "fail_rate": 0.0, "video_seconds": (600.0, 5400.0)}  # fmt: skip
    opts.update(kw)
    return Simulator(**opts)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with make_sim() as s:
        yield s


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[bw.BatchClient]:
    async with virtual_client(sim, timeout=10.0) as c:
        yield c


def requests(sim: Simulator, name: str) -> int:
    return int(sim.stats["requests"].get(name, 0))


async def assets(client: bw.BatchClient, sim: Simulator, n: int) -> list[str]:
    ids = [(await client.create_asset(url=f"https://cdn.example.com/clip-{i}.mp4")).id for i in range(n)]
    sim.clock.advance(3600)  # every asset has finished processing
    return ids


def args(client: bw.BatchClient, manifest: Path, **kw: Any) -> dict[str, Any]:
    return {"prompt": "Summarise.", "key": "key", "client": client, "manifest": manifest,
            "schedule": bw.Schedule(min_interval=2, max_interval=30), "slot_poll": 10.0, **kw}  # fmt: skip


def table(ids: list[str], **columns: Any) -> pd.DataFrame:
    return pd.DataFrame({"asset_id": ids, "key": [f"v{i:03d}" for i in range(len(ids))], **columns})


async def test_a_plan_is_what_submit_then_creates_and_sends_nothing(
    client: bw.BatchClient, sim: Simulator, tmp_path: Path
) -> None:
    ids = await assets(client, sim, 11)
    df = table(ids)
    lists = requests(sim, "asset_list")
    plan = await bw.plan(df, **args(client, tmp_path / "job.json", chunk_size=4), price_per_hour=2.5)

    assert requests(sim, "create") == 0 and not (tmp_path / "job.json").exists()  # nothing sent, nothing written
    assert requests(sim, "asset_list") - lists == 1  # one batched lookup for 11 assets, none per row
    seconds = {a: sim.assets.lookup(a)[1] for a in ids}  # type: ignore[index]
    assert plan.content_hours == pytest.approx(sum(seconds.values()) / 3600)
    assert plan.unknown_rows == 0 and plan.rows == 11 and len(plan.batches) == 3
    assert plan.cost() == pytest.approx(plan.content_hours * 2.5)
    assert plan.free_slots == 5 and plan.active == 0
    text = repr(plan)
    assert "11 rows in 3 batches" in text and f"~{plan.cost():,.2f} at 2.5/h" in text
    assert "<table" in plan._repr_html_() and SECRET_KEY not in text + plan._repr_html_()

    job = bw.submit(df, **args(client, tmp_path / "job.json", chunk_size=4))
    assert [c.custom_ids for c in job.chunks] == [list(b["custom_id"]) for b in plan.batches]  # the same chunks
    await asyncio.wait_for(job.wait(), 60)
    used = await job.usage()
    # the same hours: each batch's completed content is the plan's hours of that batch
    assert list(used.batches["batch_id"]) == job.batch_ids
    assert list(used.batches["content_hours"]) == pytest.approx(list(plan.overview["content_hours"]))
    assert used.content_hours == pytest.approx(plan.content_hours) and used.unknown_hours == 0

    # wall time: rounds of batches through the free slots, times the median of the account's completed batches
    assert plan.wall_hours is None and "1 round of batches through 5 free slots (none timed yet)" in plan.summary()
    spans = sorted([((b := await client.get(i)).ended_at - b.created_at).total_seconds() / 3600  # type: ignore[operator]
                    for i in job.batch_ids])  # fmt: skip
    again = await bw.plan(df, **args(client, tmp_path / "other.json", chunk_size=2))  # 6 batches, 5 slots free
    assert again.batch_hours == pytest.approx(spans[1]) and again.wall_hours == pytest.approx(2 * spans[1])
    assert "2 rounds of batches" in again.wall_basis() and f"~{again.wall_hours:.2f} h wall time" in again.summary()


async def test_a_plan_refuses_what_submit_refuses_and_says_uploads_are_unknown(
    client: bw.BatchClient, sim: Simulator, tmp_path: Path
) -> None:
    bad = table(["not an id!", ""])
    with pytest.raises(InvalidInputError) as submit_error:
        bw.submit(bad, **args(client, tmp_path / "a.json"))
    with pytest.raises(InvalidInputError) as plan_error:
        await bw.plan(bad, **args(client, tmp_path / "a.json"))
    assert str(plan_error.value) == str(submit_error.value)  # the same check, the same words
    with pytest.raises(TypeError):
        await bw.plan(bad, not_an_argument=1)

    ids = await assets(client, sim, 2)
    df = pd.DataFrame({"video": [*ids, "https://cdn.example.com/new.mp4"], "key": ["a", "b", "c"]})
    plan = await bw.plan(df, video="video", **args(client, tmp_path / "b.json"))
    assert plan.unknown_rows == 1 and "1 row unknown until upload" in plan.summary()
    assert math.isnan(plan.batches[-1]["content_hours"].iloc[-1]) and bool(plan.overview["after_upload"].iloc[-1])
    assert requests(sim, "asset_create") == 2  # the URL was not uploaded by the plan


async def test_usage_totals_are_the_sums_over_the_results_frame(tmp_path: Path) -> None:
    doomed = {"v001", "v004"}

    def outcome(spec: ItemSpec) -> str | None:
        return "failed:asset_unavailable" if spec.custom_id in doomed else "ready"

    with make_sim(outcomes=outcome) as sim:
        async with virtual_client(sim, timeout=10.0) as client:
            ids = await assets(client, sim, 7)
            job = bw.submit(table(ids), **args(client, tmp_path / "job.json", chunk_size=3))
            snap = await asyncio.wait_for(job.wait(), 60)
            long = await job.to_pandas(history=True)
            used = await job.usage()
            assert snap.usage == used.describe()  # the usage line came with the final snapshot
    ready = long[long["status"] == "ready"]
    assert used.input_tokens == int(long["input_tokens"].fillna(0).sum()) > 0
    assert used.output_tokens == int(long["output_tokens"].fillna(0).sum()) > 0
    assert used.completed == len(ready) == 5 and used.failed == 2 and used.canceled == 0
    seconds = {f"v{i:03d}": sim.assets.lookup(a)[1] for i, a in enumerate(ids)}  # type: ignore[index]
    assert used.content_hours == pytest.approx(sum(seconds[c] for c in ready["custom_id"]) / 3600)
    for name in ("completed", "input_tokens", "output_tokens", "failed", "canceled"):
        assert used.batches[name].sum() == getattr(used, name)
    assert len(used.batches) == 3 and "not billed: 2 failed, 0 canceled" in used.describe()


async def test_a_budget_below_the_plan_sends_nothing(client: bw.BatchClient, sim: Simulator, tmp_path: Path) -> None:
    # hours known at submit (a duration column): refused at once, naming the figures
    df = table([f"{i:024x}" for i in range(1, 5)], seconds=[3600.0] * 4)
    with pytest.raises(InvalidInputError, match=r"4\.00 h.*max_content_hours_total=3\b"):
        bw.submit(df, duration_column="seconds", **args(client, tmp_path / "a.json", max_content_hours_total=3))
    assert requests(sim, "create") == 0 and not (tmp_path / "a.json").exists()
    plan = await bw.plan(df, duration_column="seconds", **args(client, tmp_path / "a.json", max_content_hours_total=3))
    assert plan.over_budget and "OVER the budget of 3 h" in plan.summary()

    # hours learned from the assets: the job looks them up before its first create and sends nothing
    ids = await assets(client, sim, 6)
    total = sum(sim.assets.lookup(a)[1] for a in ids) / 3600  # type: ignore[index,misc]
    job = bw.submit(table(ids), **args(client, tmp_path / "b.json", chunk_size=2, max_content_hours_total=total / 2))
    snap = await asyncio.wait_for(job.wait(), 60)
    assert requests(sim, "create") == 0
    assert snap.state == "attention" and [c.state for c in job.chunks] == ["over_budget"] * 3
    assert "6 rows in 3 chunks not sent" in snap.message and f"max_content_hours_total={total / 2:g}" in snap.message


async def test_a_budget_reached_mid_job_stops_creating_and_resumes_when_raised(tmp_path: Path) -> None:
    seen: dict[str, int] = {}

    def outcome(spec: ItemSpec) -> str | None:
        n = seen[spec.custom_id or ""] = seen.get(spec.custom_id or "", 0) + 1
        return "failed:asset_unavailable" if spec.custom_id == "v000" and n == 1 else "ready"

    df = table([f"{i:024x}" for i in range(1, 5)], seconds=[3600.0] * 4)
    with make_sim(outcomes=outcome) as sim:
        async with virtual_client(sim, timeout=10.0) as client:
            go = {"duration_column": "seconds", **args(client, tmp_path / "job.json", chunk_size=2)}
            job = bw.submit(df, **go, max_content_hours_total=4.5)
            await asyncio.wait_for(job.wait(), 60)
            assert requests(sim, "create") == 2  # 4 h sent
            again = await job.resubmit()  # 1 h more would make 5 h: over the budget
            snap = await asyncio.wait_for(job.wait(), 60)
            assert requests(sim, "create") == 2 and [c.state for c in again] == ["over_budget"]
            assert snap.state == "attention" and "1 row in 1 chunk not sent" in snap.message
            assert jobs_mod.Manifest.load(tmp_path / "job.json").limits.max_content_hours_total == 4.5  # type: ignore[union-attr]

            job2 = bw.submit(df, **go, max_content_hours_total=6)  # the same cell with a larger budget
            assert job2 is job
            snap = await asyncio.wait_for(job.wait(), 60)
            assert requests(sim, "create") == 3 and [c.state for c in job.chunks] == ["created"] * 3
            assert snap.state == "done" and snap.counts["ready"] == 4


async def test_the_widgets_show_the_usage_line_at_the_end_and_in_their_static_summary(
    client: bw.BatchClient, sim: Simulator, tmp_path: Path, displays: Displays
) -> None:
    ids = await assets(client, sim, 3)
    job = bw.submit(table(ids), **args(client, tmp_path / "job.json"))
    job._ipython_display_()
    w = job.widget
    assert w.usage_line == ""  # nothing to measure while it runs
    await asyncio.wait_for(job.wait(), 60)
    used = await job.usage()
    assert w.usage_line == used.describe() and "analysed (3 completed)" in w.usage_line
    final = displays.updates[-1]  # the static summary pinned from the waiting cell carries it
    assert f"usage: {used.describe()}" in final["text/plain"]
    assert 'class="bw-usage"' in final["text/html"] and SECRET_KEY not in final["text/html"]

    requests_ = [{"video": {"type": "asset_id", "asset_id": a}, "custom_id": f"c{i}"} for i, a in enumerate(ids)]
    created = await client.create(analysis_mode="general", defaults={"prompt": {"input_text": "x"}}, requests=requests_)
    bw_ = bw.watch(created.batch_id, client, display=False, schedule=bw.Schedule(min_interval=2, max_interval=30))
    bw_._ipython_display_()
    await asyncio.wait_for(bw_.wait(), 60)
    assert bw_.widget.usage_line == ""  # it reads the whole results: only when asked
    assert "(3 completed, 3 of unknown length)" in (await bw_.usage()).describe()  # no asset ids: hours unknown
    frame = await bw_.to_pandas()
    mine = await bw_.usage(assets={f"c{i}": a for i, a in enumerate(ids)})
    assert mine.content_hours == pytest.approx(used.content_hours) and mine.unknown_hours == 0
    assert mine.input_tokens == int(frame["input_tokens"].sum())
    assert list(mine.batches["batch_id"]) == [created.batch_id]
    assert bw_.widget.usage_line == mine.describe() and f"usage: {mine.describe()}" in bw_.summary_text()
    assert f"usage: {mine.describe()}" in displays.updates[-1]["text/plain"]


def test_the_budget_holds_chunks_in_order_and_releases_them() -> None:
    from batch_widget.jobs.budget import budget_spent, hold_over_budget, release
    from batch_widget.jobs.manifest import Chunk, Row

    rows = {f"r{i}": Row(custom_id=f"r{i}", index=i, request={}, content_s=h * 3600.0)
            for i, h in enumerate([1, 1, 3, 0.5, 0.5])}  # fmt: skip
    chunks = [Chunk(chunk=i, attempt=1, custom_ids=[f"r{i}"]) for i in range(5)]
    assert hold_over_budget(chunks, rows, 2.5) == chunks  # nothing sent and 6 h planned: refused whole
    assert all("the plan's 6.00 content hours exceed max_content_hours_total=2.5" in (c.note or "") for c in chunks)
    assert release(chunks) == chunks and {c.state for c in chunks} == {"planned"}
    chunks[0].created("b" * 24, None)  # 1 h sent
    held = hold_over_budget(chunks, rows, 2.5)
    # #1 fits (2 h); #2 would make 5 h: held, and so is every later one, though #3 alone would fit
    assert [c.chunk for c in held] == [2, 3, 4] and chunks[1].state == "planned"
    assert "would take the job to 5.00 of max_content_hours_total=2.5" in (chunks[2].note or "")
    late = Chunk(chunk=5, attempt=1, custom_ids=["r4"])
    assert hold_over_budget([*chunks, late], rows, 2.5) == [late]  # none skips ahead of a held one
    assert chunks[1].state == "planned"  # still within the budget (it may wait for a slot meanwhile)
    assert budget_spent(chunks, rows) == pytest.approx(1.0)
