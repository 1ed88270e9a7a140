"""Multi-step flows over the quickstart notebook, shared by the Lab and Notebook 7 tests."""

from __future__ import annotations

import ast
import json
import os
import re
import time
from typing import Any

from . import harness as H

# code cells of the quickstart, read from the file, so adding a cell does not break the tests
CODE_CELLS = sum(1 for c in json.loads(H.NOTEBOOK_SRC.read_text())["cells"] if c["cell_type"] == "code")


def cell_output_text(nb: H.NotebookPage, marker: str) -> str:
    return "\n".join(nb.code_cell(marker).locator(".jp-OutputArea-output").all_inner_texts())


def assert_counts_match(nb: H.NotebookPage, status: str, counts: dict[str, int], total: int) -> None:
    """The `await w.wait()` cell's `simulator: {...}` line (the simulator's own counts) and its
    `w.summary_text()` line equal what the static summary shows; so do the DataFrame's."""
    text = cell_output_text(nb, "await w.wait()")
    H.log("wait cell output:", text)
    sim = H.parse_simulator_line(text)
    assert sim == counts, f"simulator says {sim}, the widget's summary says {counts}"
    line = next((ln for ln in text.splitlines() if ln.startswith("Batch ")), "")
    assert re.match(r"^Batch [0-9a-f]{24} ", line), f"no summary_text line in {text!r}"
    assert H.parse_headline(line) == (status, counts, total), line
    # The results frame: one row per item, its status counts agree too.
    df_text = cell_output_text(nb, "await w.to_pandas()")
    m = re.search(r"^(\{.*\})$", df_text, re.M)
    assert m, f"no value_counts dict in {df_text!r}"

    by_status = ast.literal_eval(m[1])  # a categorical column: every status, zeros included
    assert {k: v for k, v in by_status.items() if v} == {k: v for k, v in counts.items() if v}, (
        f"DataFrame status counts {by_status} != {counts}"
    )


def assert_loopback(s_nb: H.NotebookPage) -> None:
    server = s_nb.server
    assert server.proc is not None
    kernels = H.descendants(server.proc.pid)
    socks = H.assert_loopback_only(server.pids() | H.descendants(os.getpid()), {server.proc.pid, *kernels})
    H.log("listeners:", socks)


def run_all_until_complete(
    nb: H.NotebookPage, *, running_shot: str, final_shot: str, contrast: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run > Run All Cells; the live view appears and advances while `await w.wait()` keeps the
    kernel busy; at the end it is replaced by a static "completed" summary whose counts match the
    simulator's. With ``contrast``, the text contrast of both views is measured into it."""
    nb.menu("Run", "Run All Cells")
    watch = nb.code_cell("bw.watch(")
    nb.wait_visible(watch.locator(".bw-root"), 60, "the live widget")
    assert_loopback(nb)

    samples: list[dict[str, Any]] = []
    shot = False
    deadline = time.monotonic() + 120
    while True:
        st = H.widget_state(watch)
        if not st["live"]:
            break
        assert st["roots"] == 1, st
        samples.append(st)
        if not shot and st["terminal"] == "false" and int(st["done"]) >= 10:
            nb.screenshot(watch, running_shot)
            shot = True
            if contrast is not None:
                contrast["live"] = H.text_contrasts(watch.locator(".bw-root"))
        assert time.monotonic() < deadline, f"the batch did not end in time: {st}"
        time.sleep(0.2)
    done = [int(x["done"]) for x in samples]
    H.log("done values seen:", sorted(set(done)))
    assert done == sorted(done), f"done went down: {done}"
    assert len({d for d, x in zip(done, samples, strict=True) if x["terminal"] == "false"}) >= 3, (
        f"barely advanced: {done}"
    )
    assert shot, f"never saw the batch running with >= 10 done: {done}"

    static = watch.locator(".jp-OutputArea-output .bw-static")
    static.wait_for(state="visible", timeout=10_000)
    status, counts, total = H.final_summary(static.inner_text())
    assert (status, total) == ("completed", 50), static.inner_text()
    assert counts["canceled"] == 0
    nb.wait_executed(CODE_CELLS, timeout=90)
    nb.screenshot(watch, final_shot)
    if contrast is not None:
        contrast["static"] = H.text_contrasts(static)
    assert_counts_match(nb, status, counts, total)
    return {"status": status, "counts": counts, "total": total, "done_seen": sorted(set(done))}
