"""Benchmark: what pull + push costs on the wire, and how fast Colab's routing shows a change.

Run ``python benchmarks/bench_pull.py`` (``make bench``). Not a test: it prints tables and the
goals with PASS/MISS, and exits 0 either way (``--strict`` exits 1 on a MISS). Needs Debian's
chromium; without it the script says so and exits 0.

A real JupyterLab in headless Chromium opens a notebook that starts a simulator, creates a batch
and ends with ``bw.watch(...)``; then nothing runs. The kernel websocket is routed through
Playwright (the Colab-routing test's ``ColabRouting``), which reads every frame both ways:

1. **JupyterLab (everything delivered)**: every frame between kernel and page while the kernel is
   idle and the batch runs, per minute, split into the pushes (what the view got before pulls
   existed: the background comm messages and display updates) and what the pulls add (the
   pull messages, the kernel's busy/idle status around each, and any answer). The baseline is
   push alone, from the same run. Goals: at most one pull per poll interval; bytes per minute of
   pull + push within 1.25x of push alone (no doubling).
2. **Colab's routing** (every iopub frame whose request already went idle is dropped): the delay
   from each change at the simulator (its item schedule, on the wall clock) to the page showing
   it. Goal: within one poll interval plus one pull interval (plus the second the pull loop
   takes to notice it is due).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import ROOT, Goals, parse_args, table

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.browser import harness as H
from tests.browser.test_colab_routing import (
    _RECORDER_JS,
    CHECK_MARKER,
    ColabRouting,
    latencies,
    open_notebook,
    wait_executed,
    write_notebook,
)

SPEED = {"lab": 6.0, "colab": 12.0}  # lab: long enough for a minute of idle watching


class CountingRouting(ColabRouting):
    """The test's routing, counting frames and bytes by what caused them."""

    def __init__(self, drop: bool) -> None:
        super().__init__(drop=drop)
        self.counting = False
        self.window: tuple[float, float] = (0.0, 0.0)
        self.msgs: Counter[str] = Counter()  # "push" / "pull", frames
        self.bytes: Counter[str] = Counter()

    def _count(self, kind: str, data: str | bytes) -> None:
        if self.counting:
            self.msgs[kind] += 1
            self.bytes[kind] += len(data.encode() if isinstance(data, str) else data)

    def _to_kernel(self, data: str | bytes, server: Any) -> None:
        before = len(self.pulls)
        super()._to_kernel(data, server)
        self._count("pull" if len(self.pulls) > before else "other", data)

    def _to_page(self, data: str | bytes, ws: Any) -> None:
        parsed = self._parse(data)
        if parsed is not None and parsed[0] == "iopub":
            parent = (parsed[1].get("parent_header") or {}).get("msg_id")
            self._count("pull" if parent in self.pull_ids else "push", data)
        elif parsed is not None:
            self._count("other", data)
        super()._to_page(data, ws)


def run(pw: Any, routing: str) -> dict[str, Any]:
    with H.notebook_session(pw, "lab", speed=SPEED[routing],
                            notebook=write_notebook(Path(tempfile.mkdtemp()) / "pull.ipynb")) as s:  # fmt: skip
        nb = s.nb
        route = CountingRouting(drop=routing == "colab")
        route.install(nb.page)
        open_notebook(nb)
        nb.page.evaluate(_RECORDER_JS)
        nb.select(nb.code_cell(CHECK_MARKER))
        nb.menu("Run", "Run All Above Selected Cell")
        watch = nb.code_cell("bw.watch(")
        nb.wait_visible(watch.locator(".bw-root"), 60, "the live widget")
        wait_executed(nb, 2, timeout=60)
        t_idle = time.time()
        tl = json.loads((s.root / "timeline.json").read_text())
        end = tl["ends"][-1]
        route.counting = True
        while time.time() < end + 15 and H.widget_state(watch)["live"]:
            nb.page.wait_for_timeout(250)
        route.counting = False
        t_stop = min(time.time(), end)
        rec = nb.page.evaluate("window.__bwRec")
        lat = latencies(rec, tl, since=t_idle)
        return {
            "routing": routing, "minutes": (t_stop - t_idle) / 60, "msgs": route.msgs, "bytes": route.bytes,
            "pulls": len(route.pulls), "poll_iv": max(route.intervals or [0.0]), "delays": [d for *_, d in lat],
            "dropped": sum(route.dropped.values()),
        }  # fmt: skip


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    if not H.CHROMIUM.exists():
        print(f"skipped: needs Debian's chromium at {H.CHROMIUM}")
        return 0
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        lab = run(pw, "lab")
        colab = run(pw, "colab")
    minutes = max(lab["minutes"], 1e-9)
    push_msgs, pull_msgs = lab["msgs"]["push"] / minutes, lab["msgs"]["pull"] / minutes
    push_bytes, pull_bytes = lab["bytes"]["push"] / minutes, lab["bytes"]["pull"] / minutes
    pulls_per_min = lab["pulls"] / minutes
    poll_iv = max(lab["poll_iv"], 2.0)
    table(
        ("JupyterLab, kernel idle, one batch running", "messages / min", "bytes / min"),
        [
            ("push (background updates)", f"{push_msgs:.1f}", f"{push_bytes:,.0f}"),
            (f"pull (+ status, answers; {pulls_per_min:.1f} pulls / min)", f"{pull_msgs:.1f}", f"{pull_bytes:,.0f}"),
            ("pull + push", f"{push_msgs + pull_msgs:.1f}", f"{push_bytes + pull_bytes:,.0f}"),
        ],
        title=f"Wire traffic over {lab['minutes'] * 60:.0f} s of idle watching (poll interval {lab['poll_iv']:.0f} s)",
    )
    delays = colab["delays"]
    goal_s = colab["poll_iv"] + max(colab["poll_iv"], 2.0)
    table(
        ("Colab routing (background frames dropped)", "changes", "median", "max", "goal"),
        [(f"{colab['dropped']} frames dropped, {colab['pulls']} pulls", len(delays),
          f"{statistics.median(delays):.2f} s", f"{max(delays):.2f} s", f"{goal_s:.1f} s + 1 s")],
        title="Delay from a change at the server to the page showing it",
    )
    goals = Goals()
    goals.add("pulls per poll interval (JupyterLab)", f"{pulls_per_min * poll_iv / 60:.2f}", "-", "<= 1",
              pulls_per_min * poll_iv / 60 <= 1)  # fmt: skip
    ratio = (push_bytes + pull_bytes) / push_bytes if push_bytes else float("nan")
    goals.add("bytes / min, pull + push vs push alone", f"{ratio:.2f}x", f"{push_bytes:,.0f} B/min", "<= 1.25x",
              ratio <= 1.25)  # fmt: skip
    goals.add("Colab: change to page, max", f"{max(delays):.2f} s", "-", f"<= {goal_s + 1:.1f} s",
              max(delays) <= goal_s + 1, "the pull loop looks once a second whether a pull is due")  # fmt: skip
    goals.print()
    return goals.exit_code(args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
