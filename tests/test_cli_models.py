"""The command line on the notebook's models (issue 18): one watching loop, one give-up policy, one
results path.

``watch``, ``status``, ``results`` and ``cancel`` drive a ``BatchWatch`` (as ``submit`` and
``job`` drive a ``Job``): checked on their source, and by running the command as a child
process against the simulator, where a batch whose polls keep failing ends the command with
exit 3 by the same bound (``waiting.GiveUp``) that a notebook's ``wait(give_up_after=...)`` has.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from batch_widget.simulator import Simulator

from .test_cli import cli, create, events, fast, finish  # noqa: F401  (fast: a fixture)
from .test_structure import graph, modules

#: what only the models may use: a second watching loop, or a second results path, would need one of them
MODELS_ONLY = {"BatchPoller", "AccountPoller", "result_lines", "result_body", "results_to_frame", "segments_to_frame"}


def test_the_command_line_reaches_batches_only_through_the_models() -> None:
    mods, edges = modules(), graph()
    for name, path in mods.items():
        if not name.startswith("batch_widget.cli"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        used |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        used |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        assert not used & MODELS_ONLY, f"{name} uses {sorted(used & MODELS_ONLY)}: go through BatchWatch or Job"
        # a give-up policy of its own would look at the watch's state: that is waiting.GiveUp's
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert "retrying" not in strings, f"{name} reads the watch's state: the give-up policy is waiting.GiveUp"
    for name in ("batch_widget.cli.watching", "batch_widget.cli.batches", "batch_widget.cli.results"):
        assert {"batch_widget.batch_watch", "batch_widget.waiting"} <= edges[name], name
    for name in ("batch_widget.cli.job", "batch_widget.cli.submit"):
        assert "batch_widget.jobs" in edges[name], name


def test_watch_gives_up_on_polls_that_keep_failing_with_exit_3(fast: Simulator) -> None:  # noqa: F811
    batch_id = create(fast, 20)
    fast.add_fault("get:status=503:times=forever:after=1")  # one answer, then the status fails for good
    done = cli(fast, "watch", "--json", "--min-interval", "0.1", "--give-up-after", "1", batch_id)
    assert done.returncode == 3
    got = events(done.stdout)
    rows = [e for e in got if e["event"] == "batch"]
    assert [e["watch"] for e in rows][-2:] == ["retrying", "stopped"]  # it retried, then gave up
    assert rows[-1]["total"] == 20 and "503" in rows[-1]["message"]  # the last known counts, and why
    assert [e["event"] for e in got[-2:]] == ["error", "end"]
    assert got[-2]["error_type"] == "ServerError" and got[-2]["exit_code"] == 3 and got[-1]["exit_code"] == 3
    assert "cancel" not in fast.stats["requests"]  # giving up stops the watching, never the batch


def test_watch_rides_out_a_failing_spell_shorter_than_its_bound(fast: Simulator) -> None:  # noqa: F811
    batch_id = create(fast, 10)
    fast.add_fault("get:status=503:times=2:after=1")
    done = cli(fast, "watch", "--json", "--min-interval", "0.1", batch_id)  # the bound: the client's retry budget
    assert done.returncode == 0, done.stderr
    watch_states = [e["watch"] for e in events(done.stdout) if e["event"] == "batch"]
    assert "retrying" in watch_states and watch_states[-1] == "done"
    assert fast.stats["faults_fired"] == 2


def test_status_is_the_watchs_first_answer_under_the_same_bound(sim: Simulator) -> None:
    batch_id = create(sim, 3)
    sim.add_fault("get:status=503:times=1")
    ridden = cli(sim, "status", "--json", batch_id)  # a failed poll is retried, as a request was
    assert ridden.returncode == 0 and sim.stats["faults_fired"] == 1
    assert [e["status"] for e in events(ridden.stdout) if e["event"] == "batch"] == ["pending"]
    sim.add_fault("get:status=503:times=forever")
    given_up = cli(sim, "status", "--json", "--give-up-after", "0", batch_id)  # 0: at the first failed poll
    assert given_up.returncode == 3 and sim.stats["faults_fired"] == 2
    assert [e["event"] for e in events(given_up.stdout)] == ["error", "end"]


def test_results_and_cancel_through_the_watch(sim: Simulator, tmp_path: Path) -> None:
    running = create(sim, 8)
    sim.clock.advance(60)  # type: ignore[attr-defined]
    target = tmp_path / "now.csv"
    mid_run = cli(sim, "results", running, "-o", str(target))  # a running batch: every item a row, told
    assert mid_run.returncode == 1 and "not every item is ready" in mid_run.stderr
    frame = pd.read_csv(target)
    assert len(frame) == 8 and set(frame["status"]) <= {"queued", "processing", "ready", "failed"}
    canceled = cli(sim, "cancel", running)
    assert canceled.returncode == 0 and sim.stats["requests"]["cancel"] == 1
    assert sim.engine.batch_state(running)["status"] in ("canceling", "canceled")


def test_results_tell_rows_without_a_readable_line(sim: Simulator, tmp_path: Path) -> None:
    batch_id = create(sim, 4)
    finish(sim, batch_id)
    sim.add_fault("results:malformed_line=1:replace=true:times=forever:line=not json")  # unreadable twice
    items = cli(sim, "results", batch_id, "-o", str(tmp_path / "items.csv"))
    assert items.returncode == 1 and "1 row(s) have no readable results line" in items.stderr
    assert len(pd.read_csv(tmp_path / "items.csv")) == 4  # the row is kept, with its raw text in note
    segments = cli(sim, "results", batch_id, "--segments", "-o", str(tmp_path / "segments.csv"))
    assert segments.returncode == 0 and "3 of 4 ready items have segments in the file" in segments.stderr
