"""The command's Unix manners, each run as a child process (issue 19, "Why" items 2 to 8).

A closed pipe ends the command quietly with the SIGPIPE exit (141), SIGTERM is handled like
Ctrl-C (143), results files get the umask's mode, a write failure is one line and exit 2, no
unrecognised option echoes its value, counts print as plain numbers, ``--quiet`` and
``NO_COLOR`` are honoured, and ``--help`` / ``status`` start without the widget stack or pandas.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from batch_widget.simulator import ManualClock, Simulator

from .conftest import SECRET_KEY
from .test_cli import child_env, cli, create, fast, finish  # noqa: F401  (fast: a fixture)

HEAVY = ("pandas", "numpy", "anywidget", "ipywidgets", "IPython", "traitlets")


def spawn(sim: Simulator, *args: str, **kw: object) -> subprocess.Popen[bytes]:
    env = child_env(sim, **kw.pop("env", {}))  # type: ignore[arg-type]
    return subprocess.Popen([sys.executable, "-m", "batch_widget", *args], env=env, **kw)  # type: ignore[call-overload]


def read_pty(master: int, until: float, stop: bytes | None = None) -> bytes:
    """What a child wrote to its terminal, until it closes it (or ``stop`` is seen, or the deadline)."""
    out = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([master], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
        if stop is not None and stop in out:
            break
    return out


# -- a closed pipe ---------------------------------------------------------------------------------


def test_list_into_a_closed_pipe_ends_quietly_with_141(sim: Simulator) -> None:
    for i in range(3):
        create(sim, 3, prefix=f"b{i}")
    read_end, write_end = os.pipe()
    os.close(read_end)  # `batch-widget list | true`: the reader is gone before the first line
    child = spawn(sim, "list", stdout=write_end, stderr=subprocess.PIPE)
    os.close(write_end)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 141, err.decode()
    assert err == b""  # no traceback, no message


def test_watch_into_head_stops_at_once_and_the_batch_keeps_running() -> None:
    with Simulator(api_key=SECRET_KEY, seed=2, speed=1.0) as sim:  # real time: the batch runs for minutes
        batch_id = create(sim, 10)
        child = spawn(sim, "watch", "--min-interval", "0.1", batch_id, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert child.stdout is not None
        first = child.stdout.readline()  # `| head -1`: one line, then the reader goes
        assert batch_id.encode() in first
        child.stdout.close()
        try:
            child.wait(timeout=30)  # the batch runs for minutes: only a stop on the closed pipe ends it here
        finally:
            child.kill()
        err = child.stderr.read() if child.stderr else b""
        assert child.returncode == 141, err.decode()
        assert err == b""  # no "listener ... failed" tracebacks
        assert sim.engine.batch_state(batch_id)["status"] in ("pending", "processing")
        assert "cancel" not in sim.stats["requests"]


# -- SIGTERM ---------------------------------------------------------------------------------------


def test_sigterm_on_a_terminal_restores_the_cursor_and_prints_the_hint() -> None:
    with Simulator(api_key=SECRET_KEY, seed=2, speed=1.0) as sim:
        batch_id = create(sim, 10)
        master, slave = pty.openpty()
        child = spawn(sim, "watch", batch_id, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        os.close(slave)
        shown = read_pty(master, time.monotonic() + 30, stop=batch_id.encode())
        assert b"\x1b[?25l" in shown  # the live block hid the cursor
        child.send_signal(signal.SIGTERM)
        shown += read_pty(master, time.monotonic() + 30)
        assert child.wait(timeout=30) == 143
        os.close(master)
        text = shown.decode()
        assert text.rindex("\x1b[?25h") > text.rindex("\x1b[?25l")  # the cursor is shown again
        assert f"batch-widget watch {batch_id}" in text and "Traceback" not in text
        assert sim.engine.batch_state(batch_id)["status"] in ("pending", "processing")


def test_sigterm_while_a_results_file_is_written_leaves_no_part_file(tmp_path: Path) -> None:
    with Simulator(api_key=SECRET_KEY, seed=1, clock=ManualClock(), fail_rate=0.0, output_scale=60.0) as sim:
        batch_id = create(sim, 1000)
        finish(sim, batch_id)
        landed = 0
        for attempt in range(6):  # until a signal lands while the file is being written
            folder = tmp_path / f"try{attempt}"
            folder.mkdir()
            child = spawn(sim, "results", batch_id, "-o", str(folder / "out.csv"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
            deadline = time.monotonic() + 60
            while child.poll() is None and time.monotonic() < deadline:
                if any(name.endswith(".part") for name in os.listdir(folder)):
                    child.send_signal(signal.SIGTERM)
                    break
                time.sleep(0.001)
            _, err = child.communicate(timeout=60)
            if child.returncode in (0, 1):
                continue  # the write was done before the signal: try again
            landed += 1
            assert child.returncode == 143, err.decode()
            assert os.listdir(folder) == []  # the partial file was removed, and no target was made
            assert b"Traceback" not in err
            break
        assert landed == 1


# -- results files ---------------------------------------------------------------------------------


def test_results_files_get_the_umask_mode_and_an_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    with Simulator(api_key=SECRET_KEY, seed=1, clock=ManualClock(), fail_rate=0.0) as sim:
        batch_id = create(sim, 4)
        finish(sim, batch_id)
        fresh = tmp_path / "fresh.csv"
        done = subprocess.run(
            [sys.executable, "-m", "batch_widget", "results", batch_id, "-o", str(fresh)], env=child_env(sim),
            capture_output=True, preexec_fn=lambda: os.umask(0o022), timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
        kept = tmp_path / "kept.parquet"
        kept.write_text("old")
        kept.chmod(0o640)
        assert cli(sim, "results", batch_id, "-o", str(kept)).returncode == 0
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and len(pd.read_parquet(kept)) == 4


def test_a_results_target_that_cannot_be_written_is_one_line_and_exit_2(sim: Simulator, tmp_path: Path) -> None:
    batch_id = create(sim, 3)
    finish(sim, batch_id)
    (tmp_path / "out.csv").mkdir()
    done = cli(sim, "results", batch_id, "-o", str(tmp_path / "out.csv"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "out.csv" in done.stderr and "Traceback" not in done.stderr
    assert sim.stats["requests_total"] == 0  # refused before any request


def test_submit_wait_whose_output_cannot_be_written_is_one_line_and_exit_2(
    fast: Simulator,  # noqa: F811
    tmp_path: Path,
) -> None:
    table = tmp_path / "videos.csv"
    pd.DataFrame({"video": [f"{i + 1:024x}" for i in range(5)]}).to_csv(table, index=False)
    target = tmp_path / "sub" / "out.csv"
    target.parent.mkdir()
    child = spawn(
        fast, "submit", str(table), "--video", "video", "--prompt", "Summarise.", "--wait", "-o", str(target),
        "--min-interval", "0.1", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while fast.stats["requests"].get("create", 0) == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    target.mkdir()  # the target became a folder while the job ran: the write fails at the end
    _, err = child.communicate(timeout=90)
    text = err.decode()
    assert child.returncode == 2, text
    assert text.count("\n") == 1 and str(target) in text and "Traceback" not in text
    assert [p.name for p in target.parent.iterdir()] == ["out.csv"]  # no partial file beside it


# -- arguments -------------------------------------------------------------------------------------


def test_no_unrecognised_option_echoes_its_value(sim: Simulator) -> None:
    for args in (
        ["list", "--api-k=VALUE_SHOULD_NOT_SHOW"],
        ["--api-k=VALUE_SHOULD_NOT_SHOW", "list"],
        ["list", "--api-k", "VALUE_SHOULD_NOT_SHOW"],
        ["status", "0123456789abcdef01234567", "--token=VALUE_SHOULD_NOT_SHOW"],
        ["list", f"--api-keyy={SECRET_KEY}"],
    ):
        done = cli(sim, *args)  # cli() asserts the key itself shows nowhere
        assert done.returncode == 2, args
        assert "VALUE_SHOULD_NOT_SHOW" not in done.stdout + done.stderr, args
        assert "unrecognized arguments" in done.stderr
    assert sim.stats["requests_total"] == 0


def test_counts_print_as_plain_numbers(sim: Simulator, tmp_path: Path) -> None:
    sim.engine.config.outcomes = {"item-0001": "failed"}
    batch_id = create(sim, 6)
    finish(sim, batch_id)
    done = cli(sim, "results", batch_id, "-o", str(tmp_path / "r.csv"))
    assert done.returncode == 1
    assert "np." not in done.stdout + done.stderr and "int64" not in done.stdout + done.stderr
    assert "ready 5" in done.stderr and "failed 1" in done.stderr


# -- --quiet and NO_COLOR --------------------------------------------------------------------------


def test_quiet_prints_only_the_final_line(fast: Simulator) -> None:  # noqa: F811
    batch_id = create(fast, 8)
    done = cli(fast, "watch", "--quiet", "--min-interval", "0.1", batch_id)
    assert done.returncode == 0
    assert done.stderr == "" and done.stdout.splitlines() == [done.stdout.strip()]
    assert "8 of 8 items ready" in done.stdout


def _terminal_output(sim: Simulator, batch_id: str, **env: str) -> str:
    master, slave = pty.openpty()
    child = spawn(sim, "watch", "--min-interval", "0.1", batch_id, stdin=slave, stdout=slave, stderr=slave,
                  close_fds=True, env=env)  # fmt: skip
    os.close(slave)
    out = read_pty(master, time.monotonic() + 60)
    assert child.wait(timeout=30) == 0
    os.close(master)
    return out.decode()


def test_no_color_removes_the_colours_but_keeps_the_redraw(fast: Simulator) -> None:  # noqa: F811
    colour = re.compile(r"\x1b\[[0-9;]*m")
    coloured = _terminal_output(fast, create(fast, 8, prefix="a"))
    assert colour.search(coloured)
    plain = _terminal_output(fast, create(fast, 8, prefix="b"), NO_COLOR="1")
    assert not colour.search(plain) and re.search(r"\x1b\[\d+A", plain) and "completed" in plain


# -- start time ------------------------------------------------------------------------------------


def _imported(args: list[str], env: dict[str, str]) -> set[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "batch_widget", *args], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    names = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "batch_widget.cli" in names, done.stderr[-2000:]
    return names


def test_help_and_status_start_without_the_widget_stack_or_pandas(sim: Simulator) -> None:
    batch_id = create(sim, 3)
    env = child_env(sim)
    for args in (["--help"], ["status", "--help"], ["status", batch_id], ["status", "--json", batch_id]):
        names = _imported(args, env)
        heavy = sorted(n for n in names if n.split(".")[0] in HEAVY)
        assert not heavy, f"{args}: {heavy[:10]}"


def test_the_notebook_import_is_lazy_and_a_job_still_finds_its_widget(sim: Simulator, tmp_path: Path) -> None:
    script = f"""
import sys
import batch_widget as bw
assert not any(m in sys.modules for m in {HEAVY!r}), "import batch_widget loaded a heavy module"
import pandas as pd
client = bw.BatchClient({SECRET_KEY!r}, base_url={sim.base_url!r})
job = bw.submit(pd.DataFrame({{"asset_id": ["0" * 23 + "1"]}}), prompt="x", manifest={str(tmp_path / "m.json")!r},
                client=client)
assert "batch_widget.job_widget" not in sys.modules
assert isinstance(job.widget, bw.JobWidget)  # the view module was imported on the first display
assert bw.watch.__module__ == "batch_widget.widget" and "submit" in dir(bw)
job.close()
print("ok")
"""
    done = subprocess.run([sys.executable, "-c", script], env=child_env(sim), capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
