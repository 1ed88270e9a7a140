"""The ``batch-widget`` command line, run as a child process against a simulator started here.

One-shot commands (status, list, cancel, delete, results) talk to a simulator on a manual clock
that the test moves; ``watch`` and ``submit`` need time to pass in the child, so they talk to a
sped-up one. The key reaches the child through its environment (or a key file), never argv.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from batch_widget.cli import EVENTS, SCHEMA_VERSION, main
from batch_widget.simulator import Simulator

from .conftest import PROMPT, SECRET_KEY, requests_for

ROOT = str(Path(__file__).resolve().parent.parent)
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ  ")
MISSING = "0123456789abcdef01234567"


@pytest.fixture
def fast() -> Iterator[Simulator]:
    """A simulator at 120x: a 20-item batch runs for about 4 real seconds (a child starts in ~1)."""
    with Simulator(
        api_key=SECRET_KEY, seed=3, speed=120.0, fail_rate=0.0, items_at_once=4, item_seconds=(30.0, 90.0),
        startup_seconds=(150.0, 150.0),  # over a second of `pending`: polls that change nothing
    ) as s:  # fmt: skip
        yield s


def child_env(sim: Simulator, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWELVELABS_")}
    env.update(PYTHONPATH=ROOT, TWELVELABS_API_KEY=SECRET_KEY, TWELVELABS_BASE_URL=sim.base_url, COLUMNS="200")
    env.update(extra)
    return env


def cli(
    sim: Simulator, *args: str, cwd: Path | None = None, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m batch_widget ARGS`` to the end; stdout is a pipe (not a terminal)."""
    done = subprocess.run(
        [sys.executable, "-m", "batch_widget", *args], env=child_env(sim, **env), cwd=cwd,
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert SECRET_KEY not in done.stdout + done.stderr
    return done


def create(sim: Simulator, n: int = 20, prefix: str = "item") -> str:
    body = {"model_name": "pegasus1.5", "analysis_mode": "general", "defaults": PROMPT,
            "requests": requests_for(n, prefix)}  # fmt: skip
    batch_id: str = sim.engine.create(SECRET_KEY, body)["batch_id"]
    return batch_id


def finish(sim: Simulator, batch_id: str) -> None:
    sim.clock.advance(sim.engine.finish_time(batch_id) - sim.clock.now() + 1)  # type: ignore[attr-defined]


def events(stdout: str) -> list[dict[str, Any]]:
    parsed = [json.loads(line) for line in stdout.splitlines()]
    for event in parsed:
        assert set(EVENTS[event["event"]]) | {"v", "event", "time"} == set(event), event
        assert event["v"] == SCHEMA_VERSION
    return parsed


# -- help and usage ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["watch", "list", "status", "cancel", "delete", "results", "submit", "job"])
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: batch-widget {command}") and "exit codes:" in text
    assert "--api-key-file" in text and "--api-key " not in text and "--api-key\n" not in text


def test_usage_errors_exit_2_before_any_request(sim: Simulator, tmp_path: Path) -> None:
    bad_id = cli(sim, "status", "not-a-batch")
    assert bad_id.returncode == 2 and "'not-a-batch'" in bad_id.stderr and "24 hexadecimal" in bad_id.stderr
    bad_ext = cli(sim, "results", MISSING, "-o", str(tmp_path / "out.xlsx"))
    assert bad_ext.returncode == 2 and ".xlsx" in bad_ext.stderr and ".parquet, .csv, .jsonl" in bad_ext.stderr
    table = tmp_path / "videos.csv"
    pd.DataFrame({"asset": ["0" * 23 + "1"]}).to_csv(table, index=False)
    no_column = cli(sim, "submit", str(table), "--video", "video_id", "--prompt", "Summarise.")
    assert no_column.returncode == 2 and "'video_id'" in no_column.stderr
    assert cli(sim, "frobnicate").returncode == 2  # argparse
    assert sim.stats["requests_total"] == 0
    assert not (tmp_path / "videos.manifest.json").exists()


def test_missing_key_exits_2_naming_both_places(sim: Simulator) -> None:
    done = cli(sim, "list", TWELVELABS_API_KEY="")
    assert done.returncode == 2
    assert "TWELVELABS_API_KEY" in done.stderr and "--api-key-file" in done.stderr


def test_there_is_no_way_to_pass_the_key_in_argv(sim: Simulator) -> None:
    for args in (
        ["--api-key", SECRET_KEY, "list"],
        ["list", f"--api-key={SECRET_KEY}"],
        ["list", "--api-key", SECRET_KEY],
    ):
        done = cli(sim, *args, TWELVELABS_API_KEY="")  # cli() asserts the key is echoed nowhere
        assert done.returncode == 2 and "there is no --api-key option" in done.stderr
    assert sim.stats["requests_total"] == 0


def test_api_key_file(sim: Simulator, tmp_path: Path) -> None:
    create(sim, 3)
    key_file = tmp_path / "key"
    key_file.write_text(f"  {SECRET_KEY}  \nsecond line is ignored\n")
    done = cli(sim, "list", "--api-key-file", str(key_file), TWELVELABS_API_KEY="")
    assert done.returncode == 0 and "pending" in done.stdout
    missing = cli(sim, "list", "--api-key-file", str(tmp_path / "nope"), TWELVELABS_API_KEY="")
    assert missing.returncode == 2 and "nope" in missing.stderr


# -- one-shot commands -------------------------------------------------------------------------


def test_status_list_cancel_delete(sim: Simulator) -> None:
    running = create(sim, 10)
    other = create(sim, 5, prefix="other")
    sim.clock.advance(60)  # type: ignore[attr-defined]
    status = cli(sim, "status", running)
    assert status.returncode == 0 and running in status.stdout and "processing" in status.stdout

    listed = events(cli(sim, "list", "--json").stdout)
    assert [e["batch_id"] for e in listed if e["event"] == "batch"] == [other, running]  # newest first
    assert listed[-1] == {"v": 1, "event": "end", "time": listed[-1]["time"], "exit_code": 0}
    limited = events(cli(sim, "list", "--json", "--limit", "1", "--status", "processing,pending").stdout)
    assert [e["batch_id"] for e in limited if e["event"] == "batch"] == [other]

    canceled = cli(sim, "cancel", running)
    assert canceled.returncode == 0 and f"batch-widget watch {running}" in canceled.stdout
    assert sim.engine.batch_state(running)["status"] in ("canceling", "canceled")
    still_running = cli(sim, "delete", other)
    assert still_running.returncode == 3 and other in still_running.stderr  # 409: it runs

    finish(sim, other)
    ended = cli(sim, "status", other)
    assert ended.returncode == 0 and "completed" in ended.stdout
    assert cli(sim, "status", running).returncode == 1  # ended with canceled items
    deleted = cli(sim, "delete", other)
    assert deleted.returncode == 0 and other not in sim.engine.batch_ids()


def test_not_found_and_refused_key_exit_3(sim: Simulator) -> None:
    missing = cli(sim, "status", MISSING)
    assert missing.returncode == 3 and "not found" in missing.stderr.lower()
    as_json = events(cli(sim, "status", "--json", MISSING).stdout)
    assert [e["event"] for e in as_json] == ["error", "end"] and as_json[0]["error_type"] == "NotFoundError"
    batch_id = create(sim, 3)
    sim.api_keys = frozenset({"another-key"})  # the key is revoked
    refused = cli(sim, "status", batch_id)
    assert refused.returncode == 3 and "refused" in refused.stderr


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_results_in_each_format(sim: Simulator, tmp_path: Path, suffix: str) -> None:
    sim.engine.config.outcomes = {"item-0002": "failed"}
    batch_id = create(sim, 12)
    finish(sim, batch_id)
    sim.add_fault("results:cut_stream=5:times=1")  # the client resumes the cut stream
    target = tmp_path / f"out{suffix}"
    done = cli(sim, "results", batch_id, "-o", str(target))
    assert done.returncode == 1  # not every item is ready (the file is written all the same)
    read = {".parquet": pd.read_parquet, ".csv": pd.read_csv}.get(suffix, lambda p: pd.read_json(p, lines=True))
    frame = read(target)
    assert sorted(frame["custom_id"]) == [f"item-{i:04d}" for i in range(12)]
    assert sim.stats["faults_fired"] == 1 and sim.stats["requests"]["results"] == 2
    assert os.listdir(tmp_path) == [target.name]  # the temp file was renamed, nothing left beside


def test_results_all_ready_exit_0_and_json(tmp_path: Path) -> None:
    from batch_widget.simulator import ManualClock

    with Simulator(api_key=SECRET_KEY, seed=1, clock=ManualClock(), fail_rate=0.0) as sim:
        batch_id = create(sim, 4)
        finish(sim, batch_id)
        done = cli(sim, "results", batch_id, "-o", str(tmp_path / "r.jsonl"), "--json")
    assert done.returncode == 0
    written = events(done.stdout)
    assert written[0]["event"] == "written" and written[0]["rows"] == 4 and written[0]["format"] == "jsonl"


# -- watch -------------------------------------------------------------------------------------


def test_watch_plain_lines_one_per_change(fast: Simulator) -> None:
    batch_id = create(fast, 20)
    fast.clock.set_speed(0)  # type: ignore[attr-defined]  # time stands still: polls that change nothing
    child = subprocess.Popen(
        [sys.executable, "-m", "batch_widget", "watch", "--min-interval", "0.1", batch_id], env=child_env(fast),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while fast.stats["requests"].get("get", 0) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    fast.clock.set_speed(120)  # type: ignore[attr-defined]
    stdout, stderr = child.communicate(timeout=60)
    assert child.returncode == 0, stderr
    assert "\x1b" not in stdout and SECRET_KEY not in stdout + stderr
    lines = stdout.splitlines()
    rows = [line for line in lines if batch_id in line]
    assert rows and all(STAMP.match(line) for line in rows)
    shown = [STAMP.sub("", line) for line in rows]
    assert len(shown) == len(set(shown))  # a line per change, never a repeat
    assert fast.stats["requests"]["get"] > len(rows)  # polls that changed nothing printed nothing
    assert "completed" in rows[-1] and "20 of 20 items ready" in lines[-1]


def test_watch_failed_items_exit_1_and_json(fast: Simulator) -> None:
    fast.engine.config.outcomes = {"item-0003": "failed"}
    batch_id = create(fast, 10)
    done = cli(fast, "watch", "--json", "--min-interval", "0.1", batch_id)
    assert done.returncode == 1
    got = events(done.stdout)
    batches = [e for e in got if e["event"] == "batch"]
    assert batches[-1]["status"] == "completed" and batches[-1]["failed"] == 1 and batches[-1]["ready"] == 9
    assert got[-1]["event"] == "end" and got[-1]["exit_code"] == 1


def test_watch_redraws_in_place_on_a_terminal(fast: Simulator) -> None:
    batch_id = create(fast, 20)
    master, slave = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "batch_widget", "watch", "--min-interval", "0.1", batch_id],
        env=child_env(fast), stdin=slave, stdout=slave, stderr=slave, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        assert ready, "the child said nothing for 30 s"
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    assert child.wait(timeout=30) == 0
    os.close(master)
    text = out.decode()
    assert text.count("\x1b[2K") > 3 and re.search(r"\x1b\[\d+A", text)  # cursor up, clear line: redrawn
    assert not STAMP.search(text.split("\n", 1)[0])  # no timestamped lines on a terminal
    assert "completed" in text and "elapsed" in text


def test_sigint_leaves_the_batch_running_and_exits_130() -> None:
    with Simulator(api_key=SECRET_KEY, seed=2, speed=1.0) as sim:  # real time: the batch runs for minutes
        batch_id = create(sim, 10)
        child = subprocess.Popen(
            [sys.executable, "-m", "batch_widget", "watch", batch_id], env=child_env(sim),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdout is not None
        first = child.stdout.readline()  # the first row: the watch is on
        assert batch_id in first
        deadline = time.monotonic() + 30
        while sim.stats["requests"].get("get", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
        assert child.returncode == 130
        assert f"batch-widget watch {batch_id}" in out + err
        assert sim.engine.batch_state(batch_id)["status"] in ("pending", "processing")
        assert "cancel" not in sim.stats["requests"]


# -- submit ------------------------------------------------------------------------------------


def test_submit_resumes_and_sends_nothing_twice(fast: Simulator, tmp_path: Path) -> None:
    table = tmp_path / "videos.csv"
    pd.DataFrame({"video": [f"{i + 1:024x}" for i in range(30)], "name": [f"v{i}" for i in range(30)]}).to_csv(
        table, index=False
    )
    args = ["submit", str(table), "--video", "video", "--key", "name", "--prompt", "Summarise.",
            "--chunk-size", "10", "--min-interval", "0.1"]  # fmt: skip
    first = cli(fast, *args, "--json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    submitted = next(e for e in events(first.stdout) if e["event"] == "submitted")
    assert len(submitted["batch_ids"]) == 3 and submitted["skipped_rows"] == 0
    assert submitted["watch_command"].startswith("batch-widget watch ")
    assert fast.stats["requests"]["create"] == 3
    assert (tmp_path / "videos.manifest.json").exists()

    out = tmp_path / "joined.parquet"
    again = cli(fast, *args, "--wait", "-o", str(out), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert fast.stats["requests"]["create"] == 3  # the re-run sent nothing twice
    assert "Job done: 30 ready of 30 rows in 3 batches" in again.stdout
    joined = pd.read_parquet(out)
    assert (
        len(joined) == 30
        and set(joined["status"]) == {"ready"}
        and list(joined["name"]) == [f"v{i}" for i in range(30)]
    )
