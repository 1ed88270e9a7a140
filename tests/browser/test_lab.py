"""JupyterLab 4: the quickstart's live widget, cancel, and the final summary's afterlife.

The tests share one server and page: the second one saves, restarts and reloads what the
first one ran; the last one checks the text contrast measured by the first.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from . import harness as H
from .flows import CODE_CELLS, assert_counts_match, assert_loopback

# Simulated seconds per real second. Slow enough here that the cancel lands mid-run.
LAB_SPEED = 40.0

# What test 1 leaves for the others (only set when test 1 got that far).
FINAL: dict[str, Any] = {}
CONTRAST: dict[str, list[dict[str, Any]]] = {}


@pytest.fixture(scope="module")
def lab_light(pw: Any) -> Iterator[H.Session]:
    with H.notebook_session(pw, "lab", speed=LAB_SPEED) as s:
        yield s


def test_lab_live_view_advances_while_idle_then_cancel(lab_light: H.Session) -> None:
    s, nb = lab_light, lab_light.nb
    nb.open()
    assert nb.prompts() == ["[ ]:"] * CODE_CELLS, nb.prompts()
    assert nb.page.evaluate("document.body.dataset.jpThemeLight") == "true"

    # Run every cell above the `await w.wait()` one (setup, create, watch, "kernel is free").
    nb.select(nb.cell("waits without freezing"))
    nb.menu("Run", "Run All Above Selected Cell")
    watch = nb.code_cell("bw.watch(")
    nb.wait_visible(watch.locator(".bw-root"), 60, "the live widget")
    prompts = nb.wait_executed(4, timeout=60)
    H.log("cells 1-4 done:", prompts)
    nb.code_cell("the kernel is free").locator(
        ".jp-OutputArea-output", has_text="the kernel is free while the batch runs: 45"
    ).wait_for(timeout=10_000)

    # The server, the kernel and the simulator inside it listen on 127.0.0.1 only.
    s.server.remember_kernels()
    assert_loopback(nb)

    # No cell runs now; the bar must still advance.
    samples: list[dict[str, Any]] = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30:
        before = nb.idle_snapshot()
        st = H.widget_state(watch)
        after = nb.idle_snapshot()
        ui = nb.ui_kernel_state()
        samples.append(
            {"t": round(time.monotonic() - t0, 2), "before": before, "after": after, "ui": ui, **st}
        )
        assert st["live"] and st["roots"] == 1, f"live view gone mid-run: {st}"
        done = [int(x["done"]) for x in samples]
        if len(set(done)) >= 3 and done[-1] > done[0]:
            break
        if st.get("terminal") == "true":
            break
        time.sleep(0.25)
    for x in samples:
        H.log(
            f"  t={x['t']:5.2f} done={x['done']:>2} status={x['status']} ui={x['ui']} kernel={x['after'][1]}"
        )
    not_idle = [
        x for x in samples if not (nb.is_idle(*x["before"]) and nb.is_idle(*x["after"]) and x["ui"] == "idle")
    ]
    assert not not_idle, f"samples taken while something executed: {not_idle}"
    done = [int(x["done"]) for x in samples]
    assert done == sorted(done), f"done went down: {done}"
    assert len(set(done)) >= 3, f"fewer than 3 distinct values while idle: {done}"
    for x in samples:
        assert x["status"] in ("pending", "processing"), x
        assert x["terminal"] == "false" and x["total"] == "50", x
        assert x["valuenow"] == x["done"] and x["valuemax"] == "50", x
        assert x["summary"] == f"{x['done']} of 50 done", x
        assert not x["errorShown"] and not x["staleShown"] and x["watchState"] == "watching", x
        n = sum(int(x[k]) for k in ("ready", "failed", "canceled", "processing", "queued"))
        assert n == 50, x
    nb.screenshot(watch, "lab-light-running.png")
    CONTRAST["live"] = H.text_contrasts(watch.locator(".bw-root"))
    low = [r for r in CONTRAST["live"] if r["ratio"] is None or r["ratio"] < 4.5]
    assert not low, f"live widget text below 4.5:1 contrast in the light theme: {low}"

    # Cancel: first click opens the confirm step; a click on it within 350 ms is ignored.
    root = watch.locator(".bw-root")
    root.locator(".bw-cancel").click()
    root.locator(".bw-confirm").wait_for(state="visible", timeout=5_000)
    assert root.get_attribute("data-confirming") == "true"
    time.sleep(0.5)
    root.locator(".bw-confirm-yes").click()
    nb.page.wait_for_function(
        """() => { const r = document.querySelector('.bw-root');
                   return !!r && (r.querySelector('.bw-pill').textContent === 'canceling…'
                                  || r.dataset.status === 'canceling'); }""",
        timeout=15_000,
    )
    st = H.widget_state(watch)
    H.log("after confirming:", st)
    assert st["cancelRequested"] == "true" or st["status"] in ("canceling", "canceled"), st

    # The batch ends canceled; the live view is replaced by the static summary.
    static = watch.locator(".jp-OutputArea-output .bw-static")
    static.wait_for(state="visible", timeout=60_000)
    st = H.widget_state(watch)
    assert not st["live"] and st["roots"] == 0, f"the live view is still there: {st}"
    status, counts, total = H.final_summary(st["static"])
    assert (status, total) == ("canceled", 50), st["static"]
    assert counts["canceled"] > 0, st["static"]
    nb.screenshot(watch, "lab-light-final.png")
    CONTRAST["static"] = H.text_contrasts(static)

    # Run the rest; the simulator's own counts must equal the widget's.
    nb.select(nb.cell("waits without freezing"))
    nb.menu("Run", "Run Selected Cell and All Below")
    nb.wait_executed(CODE_CELLS, timeout=60)
    assert_counts_match(nb, status, counts, total)
    nb.errors.assert_clean()
    FINAL.update(status=status, counts=counts, total=total, headline=H.HEADLINE_RE.search(st["static"])[0])  # type: ignore[index]


def test_lab_final_summary_survives_save_restart_reload_and_export(lab_light: H.Session) -> None:
    if not FINAL:
        pytest.skip("test_lab_live_view_advances_while_idle_then_cancel did not finish")
    s, nb = lab_light, lab_light.nb
    headline = FINAL["headline"]

    # Save (File > Save Notebook); the file on disk now holds the static summary only.
    nb.select(nb.cell("waits without freezing"))
    nb.menu("File", re.compile(r"^Save( Notebook)?$"))
    H.wait_until(lambda: headline in s.notebook_path.read_text(), 30, "the saved file to hold the summary")
    H.wait_until(lambda: nb.page.locator(".jp-mod-dirty").count() == 0, 10, "the notebook to be clean")
    saved = json.loads(s.notebook_path.read_text())
    outputs = [o for c in saved["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})], (
        "a widget view was saved; it would read 'model not found' once the kernel is gone"
    )
    watch_src = next(c for c in saved["cells"] if "bw.watch(" in "".join(c["source"]))
    (out,) = watch_src["outputs"]
    assert "bw-static" in "".join(out["data"]["text/html"]) and headline in "".join(out["data"]["text/plain"])
    widgets_meta = saved["metadata"].get("widgets")
    assert widgets_meta is None or "state" in widgets_meta.get(
        "application/vnd.jupyter.widget-state+json", {}
    )

    # Restart the kernel (Kernel > Restart Kernel…, accept); the kernel process is a new one.
    old_kernels = H.descendants(s.server.proc.pid)  # type: ignore[union-attr]
    nb.menu("Kernel", "Restart Kernel…")
    dialog = nb.page.locator(".jp-Dialog")
    dialog.locator("button.jp-mod-accept").click()
    dialog.wait_for(state="detached", timeout=10_000)
    H.wait_until(
        lambda: (H.descendants(s.server.proc.pid) - old_kernels) and s.server.kernel_states() == ["idle"],  # type: ignore[union-attr]
        60, "a new idle kernel after the restart",
    )  # fmt: skip
    s.server.remember_kernels()

    # Reload the page: the output is still the static summary, no widget error anywhere.
    nb.open(reload=True)
    watch = nb.code_cell("bw.watch(")
    watch.locator(".jp-OutputArea-output .bw-static").wait_for(state="visible", timeout=30_000)
    H.wait_until(
        lambda: nb.page.locator(".jp-OutputArea-output", has_text="Loading widget").count() == 0,
        15, "no output still 'Loading widget...'",
    )  # fmt: skip
    time.sleep(3)  # the widget renderer polls ~2 s for a missing model before it writes its error
    body = nb.page.locator("body").inner_text()
    for bad in ("Error displaying widget", "model not found"):
        assert bad not in body, f"{bad!r} on the reloaded page"
    assert nb.page.locator(".bw-root").count() == 0
    st = H.widget_state(watch)
    assert H.final_summary(st["static"]) == (FINAL["status"], FINAL["counts"], FINAL["total"]), st["static"]
    nb.screenshot(watch, "lab-light-reloaded.png")
    nb.errors.assert_clean()

    # nbconvert --to html of the saved file shows the same final counts.
    out_dir = s.root / "export"
    proc = subprocess.run(
        [str(H.JUPYTER), "nbconvert", "--to", "html", H.NOTEBOOK, "--output-dir", str(out_dir)],
        cwd=s.root, env=s.server.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (out_dir / "quickstart.html").read_text()
    assert headline in html and "bw-static" in html
    for bad in ("Error displaying widget", "model not found"):
        assert bad not in html


def test_lab_light_static_summary_text_contrast() -> None:
    if "static" not in CONTRAST:
        pytest.skip("test_lab_live_view_advances_while_idle_then_cancel did not measure it")
    low = [r for r in CONTRAST["static"] if r["ratio"] is None or r["ratio"] < 4.5]
    assert not low, f"static summary text below 4.5:1 contrast in the light theme: {low}"
