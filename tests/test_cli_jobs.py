"""``submit`` with videos to upload and every analysis option, and ``job MANIFEST``, as child processes.

The simulator runs sped up (the child needs time to pass); it accepts any https URL as a video
and takes local files as direct uploads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from batch_widget.cli.options import SUBMIT_OPTIONS
from batch_widget.simulator import Simulator

from .conftest import SECRET_KEY
from .test_cli import ROOT, cli, events


@pytest.fixture
def usim() -> Iterator[Simulator]:
    """At 120x, assets ready within a second of real time, nothing failing unless told."""
    with Simulator(
        api_key=SECRET_KEY, seed=5, speed=120.0, fail_rate=0.0, items_at_once=4, item_seconds=(20.0, 60.0),
        startup_seconds=(5.0, 10.0), asset_processing_seconds=(5.0, 30.0),
    ) as s:  # fmt: skip
        yield s


def videos(tmp_path: Path) -> Path:
    """A table of two local files and two URLs, with names as keys."""
    rows = []
    for i in range(2):
        clip = tmp_path / f"clip-{i}.mp4"
        clip.write_bytes(b"v" * (1000 + 500 * i))
        rows.append({"video": str(clip), "name": f"file{i}"})
    rows += [{"video": f"https://cdn.example.com/ep-{i}.mp4", "name": f"url{i}"} for i in range(2)]
    table = tmp_path / "videos.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    return table


def test_submit_uploads_files_and_urls_and_a_rerun_uploads_and_creates_nothing(usim: Simulator, tmp_path: Path) -> None:
    table = videos(tmp_path)
    out = tmp_path / "joined.parquet"
    args = ["submit", str(table), "--video", "video", "--key", "name", "--prompt", "Summarise.", "--wait",
            "-o", str(out), "--min-interval", "0.1", "--chunk-size", "2"]  # fmt: skip
    first = cli(usim, *args, "--json", cwd=tmp_path, timeout=120)
    assert first.returncode == 0, first.stderr
    got = events(first.stdout)
    uploads = [e["uploads"] for e in got if e["event"] == "job" and e["uploads"]]
    assert uploads and uploads[-1]["ready"] == 4 and uploads[-1]["bytes_sent"] == 1000 + 1500
    assert got[-2]["event"] == "written" and got[-2]["rows"] == 4
    joined = pd.read_parquet(out)
    assert list(joined["name"]) == ["file0", "file1", "url0", "url1"]
    assert set(joined["status"]) == {"ready"} and joined["asset_id"].notna().all() and joined["result"].notna().all()
    assert usim.stats["requests"]["asset_create"] == 4 and usim.stats["requests"]["create"] == 2

    again = cli(usim, *args, cwd=tmp_path, timeout=120)  # plain lines this time
    assert again.returncode == 0, again.stderr
    assert usim.stats["requests"]["asset_create"] == 4 and usim.stats["requests"]["create"] == 2
    assert "uploads: 4 ready" in again.stdout
    assert len(pd.read_parquet(out)) == 4


def test_submit_passes_the_analysis_options_to_the_batches(usim: Simulator, tmp_path: Path) -> None:
    table = tmp_path / "videos.csv"
    pd.DataFrame({
        "asset_id": [f"{i + 1:024x}" for i in range(3)], "ask": ["What is shown?", "", "Who speaks?"],
        "start": ["0", "10", "20"], "end": ["30", "40", "50"],
    }).to_csv(table, index=False)  # fmt: skip
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "json_schema", "json_schema": {
        "type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}}))  # fmt: skip
    done = cli(
        usim, "submit", str(table), "--prompt", "Describe.", "--prompt-column", "ask", "--response-format",
        str(schema), "--start-column", "start", "--end-column", "end", "--model", "pegasus1.5", "--analysis-mode",
        "general", "--max-active", "2", "--min-interval", "0.1", "--wait", "-o", str(tmp_path / "out.csv"),
        cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(usim.engine.batch_ids()) == 1
    manifest = (tmp_path / "videos.manifest.json").read_text()
    assert "What is shown?" in manifest and "Describe." in manifest and "json_schema" in manifest
    assert '"max_active":2' in manifest
    out = pd.read_csv(tmp_path / "out.csv")
    assert all("title" in json.loads(text) for text in out["result"])  # the schema shaped every answer


def test_every_submit_option_is_a_keyword_of_the_library_with_its_default() -> None:
    import inspect

    from batch_widget.jobs import Limits, submit

    params = inspect.signature(submit).parameters
    assert all(o.keyword in params for o in SUBMIT_OPTIONS)
    assert not {"data", "manifest", "client", "schedule"} & {o.keyword for o in SUBMIT_OPTIONS}
    limits = Limits()
    shown = {o.keyword: o.help for o in SUBMIT_OPTIONS}
    assert f"default {params['model_name'].default}" in shown["model_name"]
    assert f"the column {params['asset'].default}" in shown["video"]
    assert f"{limits.chunk_size:,}" in shown["chunk_size"]
    assert f"{limits.max_content_hours:,.0f}" in shown["max_content_hours"]
    assert f"else {limits.max_active}" in shown["max_active"]
    assert f"else {limits.upload_concurrency}" in shown["upload_concurrency"]
    assert f"else {limits.on_uncertain}" in shown["on_uncertain"]


def test_bad_option_values_are_refused_by_the_library_before_anything_is_sent(usim: Simulator, tmp_path: Path) -> None:
    table = tmp_path / "videos.csv"
    pd.DataFrame({"asset_id": ["0" * 23 + "1"]}).to_csv(table, index=False)
    done = cli(usim, "submit", str(table), "--prompt", "x", "--chunk-size", "0", cwd=tmp_path)
    assert done.returncode == 2 and "chunk_size 0" in done.stderr
    missing = cli(usim, "submit", str(table), "--prompt", "x", "--response-format", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "nope.json" in missing.stderr
    assert usim.stats["requests_total"] == 0


def test_job_follows_writes_results_and_retries_failed_rows(usim: Simulator, tmp_path: Path) -> None:
    table = tmp_path / "videos.csv"
    names = [f"v{i}" for i in range(6)]
    pd.DataFrame({"asset_id": [f"{i + 1:024x}" for i in range(6)], "name": names}).to_csv(table, index=False)
    usim.engine.config.outcomes = {"v2": "failed"}
    sent = cli(usim, "submit", str(table), "--key", "name", "--prompt", "Summarise.", "--min-interval", "0.1",
               cwd=tmp_path, timeout=120)  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    manifest = str(tmp_path / "videos.manifest.json")

    followed = cli(usim, "job", manifest, "--json", "--min-interval", "0.1", timeout=120)
    assert followed.returncode == 1, followed.stderr  # one row failed
    got = events(followed.stdout)
    assert any(e["event"] == "job" for e in got)
    outcome = next(e for e in got if e["event"] == "outcome")
    assert (outcome["ready"], outcome["failed"], outcome["total"]) == (5, 1, 6)

    now = tmp_path / "now.csv"
    written = cli(usim, "job", manifest, "--results", "-o", str(now), timeout=120)
    assert written.returncode == 1 and f"wrote 6 rows to {now}" in written.stdout
    frame = pd.read_csv(now)
    # another process than the submitting one: each job row with its index label (`row`) and custom_id
    assert list(frame["custom_id"]) == names and list(frame["row"]) == list(range(6))
    assert list(frame["status"]).count("failed") == 1

    usim.engine.config.outcomes = {}
    creates = usim.stats["requests"]["create"]
    retried = cli(usim, "job", manifest, "--retry", "--max-active", "1", "--min-interval", "0.1",
                  "-o", str(tmp_path / "after.parquet"), timeout=120)  # fmt: skip
    assert retried.returncode == 0, retried.stderr
    assert "resubmitted 1 failed or canceled rows in 1 new chunk(s)" in retried.stdout
    assert usim.stats["requests"]["create"] == creates + 1
    after = pd.read_parquet(tmp_path / "after.parquet")
    assert set(after["status"]) == {"ready"} and list(after["custom_id"]) == names
    assert after.set_index("custom_id").loc["v2", "status_history"] == "failed → ready"
    assert '"max_active":1' in Path(manifest).read_text()  # the limit given to `job` is the job's now


def test_job_usage_errors(usim: Simulator, tmp_path: Path) -> None:
    missing = cli(usim, "job", str(tmp_path / "none.manifest.json"))
    assert missing.returncode == 2 and "none.manifest.json" in missing.stderr
    no_output = cli(usim, "job", str(tmp_path / "none.manifest.json"), "--results")
    assert no_output.returncode == 2 and "-o" in no_output.stderr
    assert usim.stats["requests_total"] == 0


def test_watch_and_job_end_with_what_the_batches_used(tmp_path: Path) -> None:
    """Issue 20: the usage at the end of `watch` and `job`, as a line and in the JSON outcome."""
    with Simulator(api_key=SECRET_KEY, seed=4, speed=400.0, fail_rate=0.0, item_seconds=(1.0, 3.0),
                   outcomes={"b": "failed"}) as sim:  # fmt: skip
        table = tmp_path / "t.csv"
        pd.DataFrame({"asset_id": [f"{i:024x}" for i in range(1, 4)], "k": list("abc")}).to_csv(table, index=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TWELVELABS_")}
        env.update(PYTHONPATH=ROOT, TWELVELABS_API_KEY=SECRET_KEY, TWELVELABS_BASE_URL=sim.base_url)
        run = [sys.executable, "-m", "batch_widget"]
        done = subprocess.run([*run, "submit", str(table), "--video", "asset_id", "--prompt", "x", "--key", "k",
                               "--wait", "--json"], capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
        outcome = next(json.loads(x) for x in done.stdout.splitlines() if '"outcome"' in x)
        used = outcome["usage"]
        assert used["completed"] == 2 and used["failed"] == 1 and used["input_tokens"] > 0, outcome
        assert "usage: " in outcome["message"] and "not billed: 1 failed" in outcome["message"]
        (batch_id,) = {b["batch_id"] for b in used["batches"]}
        watched = subprocess.run([*run, "watch", batch_id], capture_output=True, text=True, env=env, timeout=120)
        last = watched.stdout.strip().splitlines()[-1]
        assert "usage: " in last and "2 completed" in last and "not billed: 1 failed" in last, watched.stdout
