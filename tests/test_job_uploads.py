"""bw.submit(df, video=...): files and URLs uploaded, waited on, analysed; failures per row; safe re-runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import batch_widget as bw
from batch_widget.errors import InvalidInputError
from batch_widget.job_widget import summary_html, summary_text
from batch_widget.jobs import UploadCounts
from batch_widget.jobs.snapshot import project
from batch_widget.simulator import Simulator

from .conftest import run_notebook, upload_sim

pytestmark = pytest.mark.usefixtures("fresh_jobs")


@pytest.fixture
def usim() -> Iterator[Simulator]:
    with upload_sim(asset_creates_per_minute=4) as s:
        yield s


def frame(tmp_path: Path, n_files: int = 3, n_urls: int = 3) -> pd.DataFrame:
    rows = []
    for i in range(n_files):
        p = tmp_path / f"clip-{i}.mp4"
        p.write_bytes(b"v" * (1500 + 1700 * i))  # 1500 direct; 3200, 4900 multipart
        rows.append({"video": str(p), "name": f"file{i}"})
    rows += [{"video": f"https://cdn.example.com/ep-{i}.mp4", "name": f"url{i}"} for i in range(n_urls)]
    rows.append({"video": "https://cdn.example.com/broken.mp4", "name": "bad"})
    return pd.DataFrame(rows)


def go(df: pd.DataFrame, client: bw.BatchClient, manifest: Path, **kw: Any) -> bw.Job:
    return bw.submit(df, video="video", prompt="Summarise.", key="name", client=client, manifest=manifest,
                     schedule=bw.Schedule(min_interval=2, max_interval=30), slot_poll=10.0, **kw)  # fmt: skip


async def test_files_and_urls_are_uploaded_analysed_and_joined_and_a_failed_asset_fails_its_row_only(
    usim: Simulator, uclient: bw.BatchClient, tmp_path: Path
) -> None:
    df = frame(tmp_path)
    job = go(df, uclient, tmp_path / "job.json", chunk_size=3)
    await job.wait()
    out = await job.to_pandas()
    assert len(usim.assets.assets()) == 7  # one asset per row, none twice
    ok = out[out["name"] != "bad"]
    assert (ok["status"] == "ready").all() and len(ok) == 6
    bad = out[out["name"] == "bad"].iloc[0]
    assert bad["status"] == "failed" and "decoded" in str(bad["note"])
    assert usim.stats["requests"].get("chunk", 0) == 4 + 5  # two multipart files, streamed in 1000-byte chunks
    counts = job.uploads.counts() if job.uploads else None
    assert counts is not None and counts.ready == 6 and counts.failed == 1 and counts.bytes_sent == 1500 + 3200 + 4900
    # durations fed the batches: every request names a ready asset the simulator knows
    man = json.loads((tmp_path / "job.json").read_text())
    assert all(r["content_s"] for c, r in man["rows"].items() if c != "bad")
    assert all(r["asset_id"] and r["source"] for c, r in man["rows"].items() if c != "bad")


async def test_batches_start_while_uploads_are_still_processing(
    usim: Simulator, uclient: bw.BatchClient, tmp_path: Path
) -> None:
    job = go(frame(tmp_path, 0, 8), uclient, tmp_path / "job.json", chunk_size=2)
    await job.wait()
    created = sorted(b.created_at for b in usim.engine._batches.values())
    last_ready = max(a.ready_at or 0 for a in usim.assets.assets())
    assert created[0] < last_ready  # the first batch went out before the last asset was ready


async def test_bad_rows_are_refused_before_anything_is_sent(usim: Simulator, uclient: bw.BatchClient,
                                                              tmp_path: Path) -> None:  # fmt: skip
    df = pd.DataFrame({"video": [str(tmp_path / "missing.mp4"), "ftp://x/y.mp4"], "name": ["a", "b"],
                       "kind": ["file", "url"]})  # fmt: skip
    with pytest.raises(InvalidInputError, match=r"row 0.*missing\.mp4") as err:
        go(df, uclient, tmp_path / "job.json", video_kind="kind")
    assert "row 1" in str(err.value)
    assert usim.stats["requests_total"] == 0


async def test_a_rerun_and_a_resume_upload_nothing_twice(
    usim: Simulator, uclient: bw.BatchClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = frame(tmp_path)
    path = tmp_path / "job.json"
    job = go(df, uclient, path, chunk_size=3)
    await job.wait()
    creates = usim.stats["requests"].get("asset_create", 0)
    job2 = go(df, uclient, path, chunk_size=3)  # the same cell again
    await job2.wait()
    bw.jobs.live_jobs.clear()  # a kernel restart forgets live jobs
    job3 = bw.resume_job(path, uclient)
    await job3.wait()
    assert usim.stats["requests"].get("asset_create", 0) == creates
    assert len(usim.assets.assets()) == 7


async def test_a_kernel_restart_mid_upload_carries_on_without_duplicates(
    usim: Simulator, uclient: bw.BatchClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    df = frame(tmp_path, 3, 0)
    path = tmp_path / "job.json"
    usim.add_fault("chunk:drop:after=2:times=forever")  # the big files stop mid-way
    usim.add_fault("asset_create:drop_mid_response")  # and the first direct create's answer is lost
    job = go(df, uclient, path)
    await job.wait()
    man = json.loads(path.read_text())
    stopped = [u for u in man["uploads"].values() if u["state"] == "error"]
    assert len(stopped) == 2 and all(u["multipart"] for u in stopped)  # the cut ones kept where they were
    usim.clear_faults()
    bw.jobs.live_jobs.clear()  # a restart: the manifest says which uploads stopped; resume_job carries them on
    job2 = bw.resume_job(path, uclient)
    await job2.wait()
    out = await job2.to_pandas()
    assert (out.loc[out["custom_id"] != "bad", "status"] == "ready").all()
    assert len(usim.assets.assets()) == 4  # 3 files + the failed URL, nothing made twice
    assert len(usim.assets.sessions()) == 2  # the multipart uploads resumed their sessions


async def test_the_snapshot_widget_and_summary_show_the_upload_stage(
    usim: Simulator, uclient: bw.BatchClient, tmp_path: Path
) -> None:
    job = go(frame(tmp_path), uclient, tmp_path / "job.json", chunk_size=3)
    w = job.widget
    seen: list[tuple[UploadCounts, dict[str, Any]]] = []
    names = ("uploading", "processing", "ready", "failed", "bytes_sent", "bytes_total")

    def look(snap: bw.jobs.JobSnapshot) -> None:  # called after the widget's own listener
        seen.append((snap.uploads, {n: getattr(w, f"uploads_{n}") for n in (*names, "rate")}))

    job.add_listener(look)
    final = await job.wait()
    total = 1500 + 3200 + 4900
    for counts, traits in seen:  # every snapshot's counts are in the traits as it is sent
        assert traits == {**{n: getattr(counts, n) for n in names}, "rate": counts.rate}
    midway = [c for c, _ in seen if c.uploading and 0 < c.bytes_sent < total]
    assert midway and all(c.bytes_total == total for c, _ in seen)
    assert any(c.processing for c, _ in seen) and any(c.rate > 0 for c, _ in seen)
    sent = [c.bytes_sent for c, _ in seen]
    assert sent == sorted(sent) and sent[-1] == total  # bytes only grow, up to every file's size
    up = final.uploads
    assert (up.uploading, up.processing, up.ready, up.failed) == (0, 0, 6, 1)
    assert (w.uploads_ready, w.uploads_failed, w.uploads_bytes_sent) == (6, 1, total)
    assert "uploads: 6 ready · 1 failed" in summary_text(final)
    assert '<div class="bw-job-uploads" style="margin-top:4px">uploads: 6 ready · 1 failed</div>' in summary_html(final)


def test_a_job_without_uploads_shows_no_upload_line() -> None:
    snap = project([], {}, rows_total=0, scheduler_running=False, message="", error="", cancel_requested=False,
                   active=None, max_active=5, manifest="m.json", updated_at="")  # fmt: skip
    assert snap.uploads.total == 0
    assert "uploads" not in summary_text(snap) and "bw-job-uploads" not in summary_html(snap)
    counts = UploadCounts(uploading=12, processing=5, ready=80, failed=1, bytes_sent=34_000_000,
                          bytes_total=120_000_000, rate=8_100_000.0)  # fmt: skip
    assert counts.describe() == "12 uploading (34 MB of 120 MB, 8.1 MB/s) · 5 processing · 80 ready · 1 failed"


@pytest.mark.kernel
def test_videos_to_table_notebook_runs_end_to_end(tmp_path: Path) -> None:
    env = {"BW_DEMO_SPEED": "3000", "BW_MANIFEST": str(tmp_path / "videos_to_table.manifest.json")}
    nb = run_notebook(Path(__file__).resolve().parents[1] / "notebooks" / "videos_to_table.ipynb", tmp_path, env)
    text = json.dumps(nb, ensure_ascii=False)
    assert '"ename"' not in text
    assert "Job done: 7 ready, 1 failed of 8 rows" in text or "Job done: 7 ready of 8 rows" in text
    assert "uploads: 7 ready · 1 failed" in text  # the upload stage, in the summary
    assert "{'ready': 7, 'failed': 1}" in text  # one joined table: every row, the failed upload's included
    man = json.loads((tmp_path / "videos_to_table.manifest.json").read_text())
    ups = list(man["uploads"].values())
    assert len(ups) == 8 and sum(u["state"] == "ready" for u in ups) == 7 and all(u.get("asset_id") for u in ups)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    pinned = [o for o in outputs if "bw-job-static" in o.get("data", {}).get("text/html", "")]
    assert pinned and all("application/vnd.jupyter.widget-view+json" not in o["data"] for o in pinned)
