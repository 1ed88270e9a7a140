"""marimo: the batch widget and the job widget as cell outputs of a marimo app, in Debian's Chromium.

``marimo run app.py --headless`` (on 127.0.0.1, no token) serves an app written by the test: a
simulator, a batch watched with ``w = bw.watch(..., display=False)`` and ``w`` (the
``BatchWatch``, which marimo renders through its ``_display_``: the batch widget) as the cell's
output, a small job (``bw.submit``) with ``job.widget`` as output, and cells that ``await
w.wait()`` / ``await job.wait()``. marimo renders anywidgets in a shadow root
(``<marimo-anywidget>``); Playwright's CSS locators pierce it. The views must advance live, end
in the terminal state *inside the widget itself* (marimo has no display-id replacement: there is
no static summary, and nothing may fail trying), and the awaiting cells must complete. In marimo's
dark theme (``[tool.marimo.display] theme = "dark"`` beside the app) the widget must follow it
(a dark card: ``:host-context(.dark)`` in ``js/widget.css``) and stay legible.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from . import harness as H

SPEED = 16.0  # ~30 s for the batch
MARIMO = Path(H.JUPYTER).with_name("marimo")

APP = """\
import marimo

app = marimo.App()


@app.cell
def _():
    import os

    import marimo as mo
    import pandas as pd

    import batch_widget as bw
    from batch_widget.simulator import Simulator

    sim = Simulator(speed=float(os.environ["BW_DEMO_SPEED"]), seed=11, fail_rate=0.2, items_at_once=6,
                    item_seconds=(60.0, 150.0), startup_seconds=(5.0, 10.0)).start()
    client = bw.BatchClient(sim.api_key, base_url=sim.base_url)
    return bw, client, mo, os, pd


@app.cell
async def _(bw, client):
    created = await client.create(
        analysis_mode="general",
        defaults={"prompt": {"input_text": "Two sentences."}},
        requests=[{"video": {"type": "asset_id", "asset_id": f"{i:024x}"}} for i in range(1, 25)],
    )
    w = bw.watch(created.batch_id, client, display=False)
    w
    return (w,)


@app.cell
async def _(mo, w):
    final = await w.wait()
    mo.md(f"WAITED: {w.summary_text()} | pulls asked={w.widget.pulls.asked} answered={w.widget.pulls.answered}")
    return


@app.cell
def _(bw, client, os, pd):
    manifest = f"job-{os.getpid()}-{id(client)}.manifest.json"
    rows = pd.DataFrame({"asset_id": [f"{i:024x}" for i in range(100, 112)]})
    job = bw.submit(rows, asset="asset_id", prompt="One sentence.", client=client, manifest=manifest)
    job.widget
    return (job,)


@app.cell
async def _(job, mo):
    job_final = await job.wait()
    mo.md(f"JOB WAITED: {job.summary_text()}")
    return


if __name__ == "__main__":
    app.run()
"""

# Errors marimo's page may log that are not ours (none known so far).
BENIGN: list[re.Pattern[str]] = []


class MarimoServer:
    """``marimo run app.py --headless`` on 127.0.0.1:<free port>; config and caches in ``root``."""

    def __init__(self, root: Path, *, speed: float) -> None:
        self.root, self.speed = root, speed
        self.port = H.free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "marimo-server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._logf: Any = None

    def start(self, timeout: float = 60) -> MarimoServer:
        env = dict(os.environ)
        for k in ("TWELVELABS_API_KEY", "TWELVELABS_BASE_URL"):
            env.pop(k, None)
        state = self.root / ".state"
        env.update(
            BW_DEMO_SPEED=str(self.speed),
            HOME=str(state / "home"),  # marimo's user config and state, not the real ones
            XDG_CONFIG_HOME=str(state / "config"),
            XDG_CACHE_HOME=str(state / "cache"),
            XDG_STATE_HOME=str(state / "state"),
            MARIMO_SKIP_UPDATE_CHECK="1",
            PYTHONPATH=os.pathsep.join(p for p in (str(H.REPO), env.get("PYTHONPATH", "")) if p),
        )
        cmd = [
            str(MARIMO), "run", "app.py", "--headless", "--host", "127.0.0.1", "--port", str(self.port),
            "--no-token", "--no-sandbox", "--no-skew-protection",
        ]  # fmt: skip
        self._logf = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        H.log(f"starting marimo on {self.base} (BW_DEMO_SPEED={self.speed})")
        self.proc = subprocess.Popen(
            cmd, cwd=self.root, env=env, stdout=self._logf, stderr=subprocess.STDOUT, start_new_session=True
        )

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"marimo exited rc={self.proc.returncode}:\n{self.log()}")
            try:
                return httpx.get(self.base + "/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        H.wait_until(ready, timeout, "marimo to answer /health", interval=0.2)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            kids = H.descendants(self.proc.pid)
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            for pid in kids:
                if H._alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        H.log("killed leftover marimo pid", pid)
        if self._logf is not None:
            self._logf.close()
            self._logf = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"


@pytest.fixture
def marimo_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MarimoServer]:
    theme = request.param
    (tmp_path / "app.py").write_text(APP)
    # the project config marimo reads from the nearest pyproject.toml
    (tmp_path / "pyproject.toml").write_text(f'[tool.marimo.display]\ntheme = "{theme}"\n')
    server = MarimoServer(tmp_path, speed=SPEED)
    try:
        yield server.start()
    finally:
        server.stop()


_STATE_JS = """(r) => ({...r.dataset, pill: r.querySelector('.bw-pill').textContent,
  summary: r.querySelector('.bw-summary').textContent, bg: getComputedStyle(r).backgroundColor,
  inShadow: r.getRootNode() instanceof ShadowRoot})"""


@pytest.mark.parametrize("marimo_app", ["light", "dark"], indirect=True)
def test_marimo_widget_updates_live_and_ends_inside_the_widget(pw: Any, marimo_app: MarimoServer) -> None:
    t_start = time.monotonic()
    theme = "dark" if "dark" in (marimo_app.root / "pyproject.toml").read_text() else "light"
    errors = H.BrowserErrors("lab")  # its allow-list is empty
    with H.chromium(pw, viewport=(1100, 900)) as ctx:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        errors.attach(page)
        page.goto(marimo_app.base + "/", wait_until="domcontentloaded", timeout=60_000)
        batch = page.locator(".bw-root:not(.bw-job)")  # CSS locators pierce the shadow root
        job = page.locator(".bw-root.bw-job")
        batch.wait_for(state="visible", timeout=60_000)
        body_cls = page.evaluate("document.body.className")
        H.log(f"[{theme}] widget visible; <body class={body_cls!r}>")
        assert ("dark" in body_cls.split()) == (theme == "dark"), body_cls

        samples: list[dict[str, Any]] = []
        shot = False
        deadline = time.monotonic() + 90
        while True:
            st = dict(batch.evaluate(_STATE_JS))
            samples.append(st)
            assert batch.count() == 1, "one batch view, never replaced"
            if not shot and st["terminal"] == "false" and int(st["done"]) >= 5:
                page.screenshot(path=str(shot_path(f"marimo-{theme}-running.png")), full_page=True)
                shot = True
            if st["terminal"] == "true":
                break
            assert time.monotonic() < deadline, f"the batch did not end in time: {st}"
            page.wait_for_timeout(250)
        done = [int(x["done"]) for x in samples]
        H.log(f"[{theme}] done values seen:", sorted(set(done)))
        assert done == sorted(done), f"done went down: {done}"
        assert len({d for d, x in zip(done, samples, strict=True) if x["terminal"] == "false"}) >= 3, done
        assert st["inShadow"], "the view is not in a shadow root: the dark-theme rule tests nothing"

        # The terminal state, shown by the widget itself: no static summary in marimo.
        assert st["status"] == "completed" and st["done"] == st["total"] == "24", st
        assert st["pill"] == "completed", st
        waited = page.get_by_text(re.compile(r"^WAITED: "))
        waited.wait_for(timeout=30_000)
        text = waited.inner_text()
        H.log(f"[{theme}] wait cell:", text)
        status, counts, total = H.parse_headline(text)
        assert (status, total) == ("completed", 24), text
        assert {k: int(st[k]) for k in counts} == counts, (counts, st)
        pulls = re.search(r"pulls asked=(\d+) answered=(\d+)", text)
        assert pulls, text

        # The job: live, then terminal inside its own view, and its wait cell completes.
        job.wait_for(state="visible", timeout=30_000)
        H.wait_until(lambda: job.get_attribute("data-state") in ("done", "attention"), 60, "the job to end")
        js = dict(job.evaluate(_STATE_JS))
        assert js["done"] == js["total"] == "12", js
        job_text = page.get_by_text(re.compile(r"^JOB WAITED: ")).inner_text(timeout=30_000)
        H.log(f"[{theme}] job wait cell:", job_text)
        assert "12 rows" in job_text, job_text
        assert page.locator(".bw-static, .bw-job-static").count() == 0, "a static summary in marimo?"
        assert batch.count() == 1 and job.count() == 1

        # Legible, and in the dark theme a dark card (not a white one on a dark page).
        time.sleep(0.3)
        page.screenshot(path=str(shot_path(f"marimo-{theme}.png")), full_page=True)
        low = H.low_contrast(batch) + H.low_contrast(job)
        assert not low, f"text below 4.5:1 contrast in marimo {theme}: {low}"
        bg = batch.evaluate("r => getComputedStyle(r).backgroundColor")
        H.log(f"[{theme}] card background {bg}")
        if theme == "dark":
            assert bg == "rgb(30, 30, 30)", f"the widget ignores marimo's dark theme: {bg}"
        else:
            assert bg == "rgb(255, 255, 255)", bg

        # Nothing failed: not in the page, not in marimo's log (finalize's display update,
        # which marimo ignores outside a cell, included).
        page_text = page.locator("body").inner_text()
        for bad in ("Traceback", "Error displaying", "model not found"):
            assert bad not in page_text, f"{bad!r} in the marimo page"
        errors.assert_clean()
    log = marimo_app.log()
    bad_lines = [ln for ln in log.splitlines() if re.search(r"Traceback|\bERROR\b|Exception", ln)]
    assert not bad_lines, "marimo logged errors:\n" + "\n".join(bad_lines[:20])
    H.log(f"[{theme}] test took {time.monotonic() - t_start:.0f}s")


def shot_path(name: str) -> Path:
    H.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    H.log("screenshot", H.SCREENSHOTS / name)
    return H.SCREENSHOTS / name
