"""Colab's routing rule, emulated in JupyterLab: the live view must still advance and end.

Colab drops every iopub message whose parent request has already reported ``status: idle``
(googlecolab/colabtools#3373), i.e. everything a background task sends once its cell has
finished: the widget's pushes and its final ``update_display_data``. The view therefore also
pulls (``{type: "pull", revision}``), and the kernel answers inside the handler of that message.

Here the kernel websocket is routed through Playwright (``page.route_web_socket``): every frame
is parsed (``v1.kernel.websocket.jupyter.org`` binary frames, legacy JSON text frames and legacy
binary frames), and with ``colab`` every kernel→page iopub frame whose parent already went idle
is dropped; with ``lab`` everything passes (the counts of what Colab *would* drop are kept). A
notebook starts a simulator, creates a batch and ends with ``bw.watch(...)``; no further cell
runs. The view must advance at least twice while the kernel is idle, reach the terminal state and
be replaced by the static summary. The route counts the frames it dropped, the pulls the page
sent and the answers that came back; a last cell compares them with the kernel's own counts
(``w.pulls``). The latency from a change at the simulator (its item schedule, mapped onto the
wall clock) to the page showing it is measured and bounded by one poll plus one pull interval.

The job widget goes through the same routing: a notebook submits a small job (two batches) and
ends with ``job``; it too must advance while idle, end as its static summary (an answer to a
pull), and agree with the kernel's count of its pulls (``job.widget.pulls``).
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import harness as H

SPEED = 16.0  # simulated seconds per real second: ~30 s for the batch below
ITEMS = 24

SETUP = """\
import json, os, time
import batch_widget as bw
from batch_widget.simulator import Simulator

speed = float(os.environ["BW_DEMO_SPEED"])
sim = Simulator(speed=speed, seed=11, fail_rate=0.2, items_at_once=6,
                item_seconds=(60.0, 150.0), startup_seconds=(5.0, 10.0)).start()
client = bw.BatchClient(sim.api_key, base_url=sim.base_url)
print("simulator at", sim.base_url)"""

WATCH = f"""\
created = await client.create(
    analysis_mode="general",
    defaults={{"prompt": {{"input_text": "Two sentences."}}}},
    requests=[{{"video": {{"type": "asset_id", "asset_id": f"{{i:024x}}"}}}} for i in range(1, {ITEMS + 1})],
)
# when each change happens at the simulator, on the wall clock (which the page reads too)
wall0, sim0 = time.time(), sim.clock.now()
sched = sim.engine.schedule(created.batch_id)
def on_wall(t): return wall0 + (t - sim0) / speed
with open("timeline.json", "w") as f:
    json.dump({{"batch_id": created.batch_id, "processing_at": on_wall(min(s for s, _, _ in sched)),
               "ends": sorted(on_wall(e) for _, e, _ in sched), "outcomes": [o for *_, o in sched]}}, f)
w = bw.watch(created.batch_id, client, created_items=created.items)"""

CHECK = """\
v = w.widget  # the watch's widget: its own counts of the pulls it answered
print(f"pulls asked={v.pulls.asked} answered={v.pulls.answered} revision={v.revision}")"""
#: the check cell, found by this text in its source
CHECK_MARKER = "pulls asked={v.pulls.asked}"

JOB_ROWS = 48  # two batches of 24: about 30 s, as the batch above
JOB = f"""\
import pandas as pd
rows = pd.DataFrame({{"asset_id": [f"{{i:024x}}" for i in range(100, {100 + JOB_ROWS})]}})
job = bw.submit(rows, asset="asset_id", prompt="One sentence.", client=client,
                manifest="colab-job.manifest.json", chunk_size={JOB_ROWS // 2})
job"""

JOB_CHECK = """\
print(f"job pulls asked={job.widget.pulls.asked} answered={job.widget.pulls.answered}")"""

# The page records every change of the live view (and the static summary's arrival), with the
# wall-clock time it saw it; a 25 ms sampler, started before any cell runs.
_RECORDER_JS = """() => {
  const rec = window.__bwRec = [];
  let last = '';
  setInterval(() => {
    const r = document.querySelector('.jp-Notebook .bw-root');
    const st = document.querySelector('.jp-Notebook .bw-static');
    const key = r ? `${r.dataset.done}|${r.dataset.status}|${r.dataset.terminal}` : (st ? 'static' : 'none');
    if (key === last) return;
    last = key;
    rec.push({t: Date.now() / 1000, live: !!r, static: !!st, done: r ? Number(r.dataset.done) : null,
              status: r ? r.dataset.status : null, terminal: r ? r.dataset.terminal === 'true' : null});
  }, 25);
}"""


# ------------------------------------------------------------------------------ frames


def parse_frame(data: str | bytes) -> tuple[str, dict[str, Any]]:
    """(channel, message) of one kernel websocket frame, in any of the server's three formats."""
    if isinstance(data, str):  # legacy protocol, no buffers: the whole message as JSON text
        msg = json.loads(data)
        return str(msg.get("channel", "")), msg
    n = int.from_bytes(data[:8], "little")
    if 2 < n < 1024 and len(data) >= 8 * (n + 1):
        # v1.kernel.websocket.jupyter.org: n, then n offsets (uint64 LE), channel, header,
        # parent_header, metadata, content, buffers... (jupyter_server serialize_msg_to_ws_v1)
        offs = [int.from_bytes(data[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(n)]
        if offs[0] == 8 * (n + 1) and offs == sorted(offs) and offs[-1] == len(data):
            channel = data[offs[0] : offs[1]].decode()
            parts = [data[offs[i] : offs[i + 1]] for i in range(1, n - 1)]
            names = ("header", "parent_header", "metadata", "content")
            msg = {k: json.loads(p) if p else {} for k, p in zip(names, parts[:4], strict=False)}
            return channel, msg
    # legacy binary (a message with buffers): n (uint32 BE), n offsets, the JSON first
    n = int.from_bytes(data[:4], "big")
    offs = [int.from_bytes(data[4 * (i + 1) : 4 * (i + 2)], "big") for i in range(n)] + [len(data)]
    msg = json.loads(data[offs[0] : offs[1]])
    return str(msg.get("channel", "")), msg


@dataclass
class ColabRouting:
    """Routes the kernel websocket of a page; with ``drop``, applies Colab's rule."""

    drop: bool
    formats: Counter[str] = field(default_factory=Counter)
    frames: Counter[str] = field(default_factory=Counter)  # kernel -> page, by channel
    dropped: Counter[str] = field(default_factory=Counter)  # by msg_type (only with drop)
    colab_would_drop: Counter[str] = field(default_factory=Counter)  # by msg_type, either way
    idle_parents: set[str] = field(default_factory=set)
    pulls: list[tuple[float, str, Any]] = field(default_factory=list)  # (wall time, msg_id, revision)
    pull_ids: set[str] = field(default_factory=set)
    answers: Counter[str] = field(default_factory=Counter)  # iopub frames answering a pull, by msg_type
    answered_pulls: set[str] = field(default_factory=set)  # pulls answered with a state update
    intervals: list[float] = field(default_factory=list)  # interval_s of every state the kernel sent
    errors: list[str] = field(default_factory=list)

    def report(self) -> str:
        return (
            f"frames {dict(self.frames)}, formats {dict(self.formats)}, dropped {dict(self.dropped)}, "
            f"Colab would drop {dict(self.colab_would_drop)}, pulls {self.pulls}, answers {dict(self.answers)}, "
            f"errors {self.errors}"
        )

    def install(self, page: Any) -> None:
        page.route_web_socket(re.compile(r"/api/kernels/[^/?]+/channels"), self._route)

    def _route(self, ws: Any) -> None:
        server = ws.connect_to_server()
        ws.on_message(lambda data: self._to_kernel(data, server))
        server.on_message(lambda data: self._to_page(data, ws))

    def _parse(self, data: str | bytes) -> tuple[str, dict[str, Any]] | None:
        try:
            channel, msg = parse_frame(data)
        except Exception as e:  # forward what we cannot read; the test fails on it later
            self.errors.append(f"{type(e).__name__}: {e} in {data[:80]!r}")
            return None
        self.formats["text" if isinstance(data, str) else "binary"] += 1
        return channel, msg

    def _to_kernel(self, data: str | bytes, server: Any) -> None:
        parsed = self._parse(data)
        if parsed is not None:
            _channel, msg = parsed
            content = msg.get("content") or {}
            d = content.get("data") or {}
            custom = d.get("content") if d.get("method") == "custom" else d
            if (
                msg["header"].get("msg_type") == "comm_msg"
                and isinstance(custom, dict)
                and custom.get("type") == "pull"
            ):
                self.pulls.append((time.time(), msg["header"]["msg_id"], custom.get("revision")))
                self.pull_ids.add(msg["header"]["msg_id"])
        server.send(data)

    def _to_page(self, data: str | bytes, ws: Any) -> None:
        parsed = self._parse(data)
        if parsed is None:
            ws.send(data)
            return
        channel, msg = parsed
        self.frames[channel] += 1
        if channel == "iopub":
            mtype = str(msg["header"].get("msg_type"))
            parent = (msg.get("parent_header") or {}).get("msg_id")
            content = msg.get("content") or {}
            state = (content.get("data") or {}).get("state") or {}
            if mtype == "comm_msg" and "interval_s" in state:
                self.intervals.append(float(state["interval_s"]))
            if mtype == "status":
                if content.get("execution_state") == "idle" and parent:
                    self.idle_parents.add(parent)
            elif parent in self.idle_parents:
                self.colab_would_drop[mtype] += 1
                if self.drop:
                    self.dropped[mtype] += 1
                    return
            elif parent in self.pull_ids:
                self.answers[mtype] += 1
                if mtype == "comm_msg" and state:
                    self.answered_pulls.add(parent)
        ws.send(data)


# ------------------------------------------------------------------------------ helpers


def write_notebook(path: Path, sources: tuple[str, ...] = (SETUP, WATCH, CHECK)) -> Path:
    cells: list[dict[str, Any]] = [
        {"cell_type": "code", "id": f"cell-{i}", "metadata": {}, "execution_count": None, "outputs": [],
         "source": src}
        for i, src in enumerate(sources)
    ]  # fmt: skip
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb = {"cells": cells, "metadata": {"kernelspec": kernelspec}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb, indent=1))
    return path


def shown_at(rec: list[dict[str, Any]], pred: Any) -> float | None:
    """Wall time at which the page first showed a state satisfying ``pred``."""
    return next((r["t"] for r in rec if pred(r)), None)


def latencies(rec: list[dict[str, Any]], tl: dict[str, Any], since: float) -> list[tuple[str, float, float]]:
    """(event, server time, delay until the page showed it) of every change after ``since``."""
    events: list[tuple[str, float, Any]] = [
        ("processing", tl["processing_at"], lambda r: r["static"] or r["status"] in ("processing", "completed"))
    ]
    for k, t in enumerate(tl["ends"], start=1):
        events.append((f"done>={k}", t, lambda r, k=k: r["static"] or (r["live"] and r["done"] >= k)))
    events.append(("completed", tl["ends"][-1], lambda r: r["static"] or r["status"] == "completed"))
    out = []
    for name, t, pred in events:
        if t < since:
            continue
        seen = shown_at(rec, pred)
        assert seen is not None, f"the page never showed {name}"
        out.append((name, t, seen - t))
    return out


def pump_until(page: Any, probe: Any, timeout: float, what: str) -> Any:
    """``H.wait_until`` that waits with ``page.wait_for_timeout``: the sync Playwright API runs the
    route's handlers only while the test is inside a Playwright call, and a frame held there
    would stall the page's kernel connection (and add to every latency measured)."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        page.wait_for_timeout(100)


def open_notebook(nb: H.NotebookPage) -> None:
    """``nb.open()``, with the waits pumping the route."""
    nb.page.goto(nb.url, wait_until="domcontentloaded", timeout=60_000)
    nb.page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=60_000)
    pump_until(nb.page, lambda: nb.server.kernel_states() == ["idle"], 60, "exactly one idle kernel")
    nb.server.remember_kernels()
    pump_until(nb.page, lambda: nb.ui_kernel_state() == "idle", 30, "the page to show an idle kernel")


def wait_executed(nb: H.NotebookPage, n: int, timeout: float) -> None:
    """``nb.wait_executed``, with the waits pumping the route."""

    def done() -> bool:
        nb.raise_on_error_output()
        pr, st = nb.idle_snapshot()
        return (
            nb.is_idle(pr, st)
            and all(re.fullmatch(r"\[\d+\]:", p) for p in pr[:n])
            and all(p == "[ ]:" for p in pr[n:])
        )

    pump_until(nb.page, done, timeout, f"{n} cells executed and the kernel idle")


@pytest.fixture
def colab_session(pw: Any, tmp_path: Path) -> Iterator[H.Session]:
    with H.notebook_session(pw, "lab", speed=SPEED, notebook=write_notebook(tmp_path / "colab_routing.ipynb")) as s:
        yield s


# ------------------------------------------------------------------------------ the tests


def test_parse_frame_reads_the_three_formats() -> None:
    """The route reads v1 binary frames (what JupyterLab 4 negotiates here), and the legacy
    protocol's JSON text and binary frames, as jupyter_server writes them."""
    from jupyter_server.services.kernels.connection.base import (
        serialize_binary_message,
        serialize_msg_to_ws_v1,
    )

    msg = {
        "header": {"msg_id": "m1", "msg_type": "comm_msg"},
        "parent_header": {"msg_id": "p1"},
        "metadata": {},
        "content": {"data": {"method": "update", "state": {"interval_s": 3.0}}},
    }
    v1 = serialize_msg_to_ws_v1(msg, "iopub", pack=lambda d: json.dumps(d).encode())  # type: ignore[no-untyped-call]
    assert parse_frame(v1) == ("iopub", msg)
    legacy = {**msg, "channel": "iopub", "buffers": [b"\x00\x01"]}
    assert parse_frame(json.dumps({**legacy, "buffers": []})) == ("iopub", {**legacy, "buffers": []})
    channel, parsed = parse_frame(serialize_binary_message(legacy))  # type: ignore[no-untyped-call]
    assert channel == "iopub" and parsed["parent_header"] == {"msg_id": "p1"}, parsed


@pytest.mark.parametrize("routing", ["colab", "lab"])
def test_view_advances_and_ends_under_colab_routing(colab_session: H.Session, routing: str) -> None:
    t_start = time.monotonic()
    built = (H.REPO / "batch_widget" / "static" / "widget.js").read_text()
    assert 'type:"pull"' in built, "batch_widget/static/widget.js predates the pull protocol: run `npm run build`"
    s, nb = colab_session, colab_session.nb
    route = ColabRouting(drop=routing == "colab")
    route.install(nb.page)  # before the page opens its kernel websocket
    open_notebook(nb)
    nb.page.evaluate(_RECORDER_JS)

    # Run the setup and the watch cell only; the check cell stays for the end.
    nb.select(nb.code_cell(CHECK_MARKER))
    nb.menu("Run", "Run All Above Selected Cell")
    watch = nb.code_cell("bw.watch(")
    nb.wait_visible(watch.locator(".bw-root"), 60, "the live widget")
    wait_executed(nb, 2, timeout=60)
    t_idle = time.time()
    tl = json.loads((s.root / "timeline.json").read_text())
    H.log(f"[{routing}] cells done; the batch ends in {tl['ends'][-1] - t_idle:.1f}s")
    assert tl["ends"][-1] - t_idle > 8, "the batch ended too soon to watch it while idle"

    # Nothing executes from here on; the view must advance and end on its own.
    samples: list[dict[str, Any]] = []
    shot = False
    deadline = time.monotonic() + (tl["ends"][-1] - t_idle) + 40
    while True:
        before = nb.idle_snapshot()
        st = H.widget_state(watch)
        after = nb.idle_snapshot()
        if not st["live"]:
            break
        assert st["roots"] == 1, st
        assert nb.is_idle(*before) and nb.is_idle(*after), f"something executed: {before} {after}"
        samples.append(st)
        if not shot and len({x["done"] for x in samples}) >= 2 and st["terminal"] == "false":
            nb.screenshot(watch, f"colab-routing-{routing}-running.png")
            shot = True
        assert time.monotonic() < deadline, f"the view did not end in time: {st}; {route.report()}"
        nb.page.wait_for_timeout(200)  # a Playwright wait: the route's handlers run meanwhile
    t_static = time.time()
    done = [int(x["done"]) for x in samples]
    H.log(f"[{routing}] done values seen while idle:", sorted(set(done)))
    assert done == sorted(done), f"done went down: {done}"
    assert len(set(done)) >= 3, f"the view advanced fewer than twice while idle: {sorted(set(done))}"

    # The static summary replaced the view; its counts are the simulator's schedule.
    static = watch.locator(".jp-OutputArea-output .bw-static")
    static.wait_for(state="visible", timeout=10_000)
    st = H.widget_state(watch)
    assert not st["live"] and st["roots"] == 0, f"a widget view is left: {st}"
    status, counts, total = H.final_summary(st["static"])
    expected = {k: tl["outcomes"].count(k) for k in ("ready", "failed")}
    assert (status, total) == ("completed", ITEMS), st["static"]
    assert {k: counts[k] for k in expected} == expected and counts["canceled"] == 0, (counts, expected)
    assert counts["failed"] > 0, "seed 11 at fail_rate 0.2 fails 2 items: the summary must show them"
    rec = nb.page.evaluate("window.__bwRec")
    assert any(r["live"] and r["status"] == "completed" for r in rec) or rec[-1]["static"], rec[-3:]
    nb.screenshot(watch, f"colab-routing-{routing}-final.png")
    nb.errors.assert_clean()

    # The route did its job: it read every frame, and (colab) dropped the background ones.
    H.log(f"[{routing}] frames kernel->page {dict(route.frames)}, formats {dict(route.formats)}")
    H.log(f"[{routing}] Colab would drop {dict(route.colab_would_drop)}; dropped {dict(route.dropped)}")
    H.log(f"[{routing}] pulls sent {len(route.pulls)}; answers {dict(route.answers)}; "
          f"pulls answered with state {len(route.answered_pulls)}")  # fmt: skip
    assert not route.errors, route.errors
    assert route.colab_would_drop["comm_msg"] > 0, "no background push at all: the emulation tests nothing"
    if route.drop:
        assert route.dropped == route.colab_would_drop, (route.dropped, route.colab_would_drop)
        assert route.dropped["comm_msg"] >= 2, route.dropped
        assert route.pulls, "the page never pulled"
        assert route.answered_pulls, "no pull was answered with state"
        # the static summary came as the answer to a pull (the background one was dropped)
        assert route.answers["update_display_data"] >= 1, route.answers
    else:
        assert not route.dropped

    # The kernel's own counts agree with the frames (the check cell runs only now).
    nb.select(nb.code_cell(CHECK_MARKER))
    nb.menu("Run", "Run Selected Cell")  # "... and All Below" is disabled on the last cell
    wait_executed(nb, 3, timeout=30)
    text = "\n".join(nb.code_cell(CHECK_MARKER).locator(".jp-OutputArea-output").all_inner_texts())
    m = re.search(r"pulls asked=(\d+) answered=(\d+) revision=(\d+)", text)
    assert m, text
    asked, answered, revision = map(int, m.groups())
    H.log(f"[{routing}] kernel: pulls asked={asked} answered={answered}, revision={revision}")
    assert asked == len(route.pulls), (asked, route.pulls)
    assert answered == len(route.answered_pulls), (answered, route.answered_pulls)

    # Latency: a change at the simulator -> the page shows it.
    lat = latencies(rec, tl, since=t_idle)
    poll_iv = max(route.intervals)
    pull_iv = max(poll_iv, 2.0)
    goal = poll_iv + pull_iv if route.drop else poll_iv
    worst = max(lat, key=lambda x: x[2])
    delays = [d for _, _, d in lat]
    H.log(
        f"[{routing}] {len(lat)} changes while idle: delay median {statistics.median(delays):.2f}s, "
        f"max {worst[2]:.2f}s ({worst[0]}); poll intervals {sorted(set(route.intervals))}; "
        f"goal {goal:.1f}s; within goal {sum(d <= goal for d in delays)}/{len(delays)}"
    )
    assert min(delays) > -0.3, f"the page showed a change before the simulator made it: {lat}"
    # pullLoop looks every second whether a pull is due: up to 1 s late, plus the round trip
    assert worst[2] <= goal + 2.0, f"a change took {worst[2]:.2f}s to show (goal {goal:.1f}s): {lat}"
    if route.pulls:
        span = t_static - route.pulls[0][0]
        rate = 60 * len(route.pulls) / span if span > 0 else float("nan")
        H.log(
            f"[{routing}] pulls: {len(route.pulls)} in {span:.1f}s = {rate:.1f}/min; "
            f"one per poll interval would be {60 / pull_iv:.1f}/min"
        )
        if route.drop:
            assert rate <= 60 / 2.0 + 1, f"pulled more often than the 2 s floor: {rate:.1f}/min"
    H.log(f"[{routing}] test took {time.monotonic() - t_start:.0f}s")


@pytest.fixture
def job_colab_session(pw: Any, tmp_path: Path) -> Iterator[H.Session]:
    nb_path = write_notebook(tmp_path / "colab_job.ipynb", (SETUP, JOB, JOB_CHECK))
    with H.notebook_session(pw, "lab", speed=SPEED, notebook=nb_path) as s:
        yield s


def test_job_view_advances_and_ends_under_colab_routing(job_colab_session: H.Session) -> None:
    """The job widget under Colab's rule: background frames dropped, pulls answered, the static
    job summary delivered as an answer to a pull."""
    from .test_job import job_state, parse_job_summary

    t_start = time.monotonic()
    built = (H.REPO / "batch_widget" / "static" / "job.js").read_text()
    assert 'type:"pull"' in built, "batch_widget/static/job.js predates the pull protocol: run `npm run build`"
    nb = job_colab_session.nb
    route = ColabRouting(drop=True)
    route.install(nb.page)  # before the page opens its kernel websocket
    open_notebook(nb)

    # Run the setup and the submit cell only; the check cell stays for the end.
    nb.select(nb.code_cell("job pulls asked="))
    nb.menu("Run", "Run All Above Selected Cell")
    cell = nb.code_cell("job = bw.submit(")
    nb.wait_visible(cell.locator(".bw-root.bw-job"), 60, "the live job view")
    wait_executed(nb, 2, timeout=60)

    # Nothing executes from here on; the job view must advance and end on its own.
    samples: list[dict[str, Any]] = []
    shot = False
    deadline = time.monotonic() + 120
    while True:
        before = nb.idle_snapshot()
        st = job_state(cell)
        after = nb.idle_snapshot()
        if not st["live"]:
            break
        assert st["roots"] == 1, st
        assert nb.is_idle(*before) and nb.is_idle(*after), f"something executed: {before} {after}"
        samples.append(st)
        if not shot and len({x["done"] for x in samples}) >= 2 and st["state"] == "running":
            nb.screenshot(cell, "colab-routing-job-running.png")
            shot = True
        assert time.monotonic() < deadline, f"the job view did not end in time: {st}; {route.report()}"
        nb.page.wait_for_timeout(200)  # a Playwright wait: the route's handlers run meanwhile
    done = [int(x["done"]) for x in samples]
    H.log("[job] done values seen while idle:", sorted(set(done)))
    assert done == sorted(done), f"done went down: {done}"
    assert len(set(done)) >= 3, f"the job view advanced fewer than twice while idle: {sorted(set(done))}"
    assert all(x["total"] == str(JOB_ROWS) for x in samples), samples[-1]

    # The static job summary replaced the view: it came as the answer to a pull.
    static = cell.locator(".jp-OutputArea-output .bw-job-static")
    static.wait_for(state="visible", timeout=10_000)
    state, counts, total = parse_job_summary(static.inner_text())
    assert state in ("done", "attention") and total == JOB_ROWS and counts["canceled"] == 0, static.inner_text()
    assert job_state(cell)["roots"] == 0, "a job view is left beside its static summary"
    nb.screenshot(cell, "colab-routing-job-final.png")
    nb.errors.assert_clean()

    H.log(f"[job] Colab would drop {dict(route.colab_would_drop)}; dropped {dict(route.dropped)}")
    H.log(f"[job] pulls sent {len(route.pulls)}; answers {dict(route.answers)}; "
          f"pulls answered with state {len(route.answered_pulls)}")  # fmt: skip
    assert not route.errors, route.errors
    assert route.dropped == route.colab_would_drop and route.dropped["comm_msg"] >= 2, route.dropped
    assert route.pulls and route.answered_pulls, "the job view never pulled, or no pull was answered with state"
    assert route.answers["update_display_data"] >= 1, route.answers

    # The kernel's own counts agree with the frames (the check cell runs only now).
    nb.select(nb.code_cell("job pulls asked="))
    nb.menu("Run", "Run Selected Cell")
    wait_executed(nb, 3, timeout=30)
    text = "\n".join(nb.code_cell("job pulls asked=").locator(".jp-OutputArea-output").all_inner_texts())
    m = re.search(r"job pulls asked=(\d+) answered=(\d+)", text)
    assert m, text
    asked, answered = map(int, m.groups())
    H.log(f"[job] kernel: pulls asked={asked} answered={answered}")
    assert asked == len(route.pulls), (asked, route.pulls)
    assert answered == len(route.answered_pulls), (answered, route.answered_pulls)
    H.log(f"[job] test took {time.monotonic() - t_start:.0f}s")
