"""Helpers for the real-browser tests: a throw-away Jupyter server, Debian's Chromium driven by
Playwright, and the notebook-page chores (menus, prompts, "is anything executing?").

Everything per-run lives in one temp dir (notebook copy, JUPYTER_* dirs, server log); the
Chromium profile is its own temp dir, removed only after the browser is closed. Servers are
stopped by PID (SIGTERM, which shuts the kernel down, then SIGKILL for anything left).
Every wait has a deadline, so a hang fails in well under two minutes.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_SRC = REPO / "notebooks" / "quickstart.ipynb"
NOTEBOOK = NOTEBOOK_SRC.name
CHROMIUM = Path(os.environ.get("BW_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
FAILURES = ARTIFACTS / "browser-failures"
JUPYTER = Path(sys.executable).with_name("jupyter")

CHROME_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

# Browser errors that are not ours. Notebook 7.6.5's keyboard-shortcuts settings plugin throws
# this in its pluginChanged handler, with or without any widget (harness doc, gotcha 5).
KNOWN_BENIGN: dict[str, list[re.Pattern[str]]] = {
    "lab": [],
    "notebook": [
        re.compile(
            r"^pageerror: Cannot read properties of undefined \(reading 'schema'\).*notebook_core", re.S
        ),
    ],
}

PROMPT_RE = re.compile(r"^\[(\d+| |\*)\]:$")
T = TypeVar("T")


def log(*args: object) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *args, flush=True)


def wait_until(probe: Callable[[], T], timeout: float, what: str, *, interval: float = 0.1) -> T:
    """Call ``probe`` until it returns something truthy; raise TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d.name))
    out: set[int] = set()
    todo = [root]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def listening_sockets(pids: set[int]) -> list[tuple[str, str, int]]:
    """(proto, local address, pid) of every TCP listener / bound UDP socket owned by ``pids``."""
    out = subprocess.run(["ss", "-ltunpH"], capture_output=True, text=True, timeout=10, check=True).stdout
    res = []
    for line in out.splitlines():
        cols = line.split()
        for pid in re.findall(r"pid=(\d+)", line):
            if int(pid) in pids:
                res.append((cols[0], cols[4], int(pid)))
    return res


def assert_loopback_only(pids: set[int], must_include: set[int]) -> list[tuple[str, str, int]]:
    """Every socket of ``pids`` listens on 127.0.0.1; each pid of ``must_include`` has one."""
    socks = listening_sockets(pids)
    bad = [s for s in socks if not s[1].startswith("127.0.0.1:")]
    assert not bad, f"sockets not bound to 127.0.0.1: {bad}"
    owners = {s[2] for s in socks}
    missing = must_include - owners
    assert not missing, f"no listening socket found for pids {missing} (the check would be vacuous): {socks}"
    return socks


# ------------------------------------------------------------------------------ Jupyter server


class JupyterServer:
    """``jupyter lab`` / ``jupyter notebook`` on 127.0.0.1:<free port>, no token, state in ``root``."""

    def __init__(self, app: str, root: Path, *, speed: float, theme: str | None = None) -> None:
        assert app in ("lab", "notebook"), app
        self.app, self.root, self.speed, self.theme = app, root, speed, theme
        self.state = root / ".state"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.state / f"{app}-server.log"
        self._logf: Any = None
        self.kernel_pids: set[int] = set()

    # -- environment -------------------------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for k in ("TWELVELABS_API_KEY", "TWELVELABS_BASE_URL", "JUPYTER_TOKEN", "JUPYTER_PATH"):
            env.pop(k, None)  # the notebook must use its in-kernel simulator
        st = self.state
        env.update(
            BW_DEMO_SPEED=str(self.speed),
            JUPYTER_CONFIG_DIR=str(st / "config"),
            JUPYTER_DATA_DIR=str(st / "data"),  # nbsignatures.db (trust) lands here
            JUPYTER_RUNTIME_DIR=str(st / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(st / "lab-settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(st / "lab-workspaces"),
            IPYTHONDIR=str(st / "ipython"),
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            # the kernel imports batch_widget from this working tree, installed or not
            PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
        )
        return env

    def _write_settings(self) -> None:
        apputils = self.state / "lab-settings" / "@jupyterlab" / "apputils-extension"
        apputils.mkdir(parents=True, exist_ok=True)
        # no "get notified about official Jupyter news?" toast (news_url=None is not enough)
        (apputils / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
        if self.theme:
            (apputils / "themes.jupyterlab-settings").write_text(json.dumps({"theme": self.theme}))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> JupyterServer:
        self.state.mkdir(parents=True, exist_ok=True)
        self._write_settings()
        cmd = [
            str(JUPYTER), self.app, "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
            "--allow-root", "--IdentityProvider.token=", "--ServerApp.password=",
            f"--ServerApp.root_dir={self.root}", "--ServerApp.terminals_enabled=False",
            "--ServerApp.port_retries=0",  # a lost race for the port fails loudly
        ]  # fmt: skip
        if self.app == "lab":
            cmd += [
                "--LabApp.news_url=None",
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            ]
        self._logf = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        log(f"starting {self.app} on {self.base} (BW_DEMO_SPEED={self.speed}, theme={self.theme})")
        self.proc = subprocess.Popen(
            cmd, cwd=self.root, env=self.env, stdout=self._logf, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter {self.app} exited rc={self.proc.returncode}:\n{self.log_tail()}")
            try:
                return httpx.get(self.base + "/api/status", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout, f"jupyter {self.app} to answer /api/status", interval=0.2)
        return self

    def stop(self) -> list[int]:
        """SIGTERM the server (it shuts its kernels down); SIGKILL whatever is left. Returns
        the pids that had to be killed."""
        killed: list[int] = []
        if self.proc is not None:
            kids = descendants(self.proc.pid) | self.kernel_pids
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            deadline = time.monotonic() + 5
            for pid in sorted(kids):
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if _alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
                        log("killed leftover pid", pid)
        if self._logf is not None:
            self._logf.close()
            self._logf = None
        return killed

    def __enter__(self) -> JupyterServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- REST --------------------------------------------------------------------------------

    def sessions(self) -> list[dict[str, Any]]:
        r = httpx.get(self.base + "/api/sessions", timeout=5)
        r.raise_for_status()
        return list(r.json())

    def kernel_states(self) -> list[str]:
        return [s["kernel"]["execution_state"] for s in self.sessions()]

    def wait_kernel_idle(self, timeout: float = 60) -> None:
        wait_until(lambda: self.kernel_states() == ["idle"], timeout, "exactly one idle kernel", interval=0.2)
        self.remember_kernels()

    def remember_kernels(self) -> None:
        if self.proc is not None:
            self.kernel_pids |= descendants(self.proc.pid)

    def pids(self) -> set[int]:
        assert self.proc is not None
        return {self.proc.pid} | descendants(self.proc.pid)

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@contextlib.contextmanager
def workdir(prefix: str, notebook: Path = NOTEBOOK_SRC) -> Iterator[Path]:
    """A temp dir holding a fresh copy of ``notebook`` (the quickstart); removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        shutil.copy(notebook, root / notebook.name)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------ browser


class BrowserErrors:
    """Page errors and console errors of every page of a context, checked against an allow-list."""

    def __init__(self, app: str) -> None:
        self.app = app
        self.entries: list[str] = []

    def attach(self, page: Any) -> None:
        def on_pageerror(e: Any) -> None:
            stack = (getattr(e, "stack", "") or "").splitlines()[1:3]
            self.entries.append(f"pageerror: {e} @ {stack}")

        def on_console(m: Any) -> None:
            if m.type == "error":
                self.entries.append(f"console: {m.text} @ {m.location}")

        page.on("pageerror", on_pageerror)
        page.on("console", on_console)
        page.on("crash", lambda _p: self.entries.append("crash: the page crashed"))

    def unexpected(self) -> list[str]:
        benign = KNOWN_BENIGN[self.app]
        return [e for e in self.entries if not any(p.search(e) for p in benign)]

    def assert_clean(self) -> None:
        allowed = [e for e in self.entries if e not in self.unexpected()]
        if allowed:
            log(f"allow-listed browser errors in {self.app}:", allowed)
        bad = self.unexpected()
        assert not bad, f"unexpected browser errors in {self.app}:\n" + "\n".join(bad)


@contextlib.contextmanager
def chromium(pw: Any, *, viewport: tuple[int, int] = (1280, 900)) -> Iterator[Any]:
    """A persistent Chromium context on a fresh profile dir; the dir goes after the browser."""
    profile = tempfile.mkdtemp(prefix="bw-chromium-")
    try:
        ctx = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROME_ARGS,
            viewport={"width": viewport[0], "height": viewport[1]}, color_scheme="light",
        )  # fmt: skip
        try:
            ctx.set_default_timeout(30_000)
            yield ctx
        finally:
            ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


# ------------------------------------------------------------------------------ notebook page


class NotebookPage:
    """A notebook open in JupyterLab or Notebook 7 (they share the cell/output DOM)."""

    def __init__(self, ctx: Any, server: JupyterServer, notebook: str = NOTEBOOK) -> None:
        self.server = server
        self.app = server.app
        self.notebook = notebook  # file name, in the server's root
        self.errors = BrowserErrors(self.app)
        self.page = ctx.pages[0] if ctx.pages else ctx.new_page()
        self.errors.attach(self.page)

    @property
    def url(self) -> str:
        if self.app == "lab":
            return f"{self.server.base}/lab/tree/{self.notebook}"
        return f"{self.server.base}/notebooks/{self.notebook}"

    def open(self, *, reload: bool = False) -> None:
        if reload:
            self.page.reload(wait_until="domcontentloaded", timeout=60_000)
        else:
            self.page.goto(self.url, wait_until="domcontentloaded", timeout=60_000)
        self.page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=60_000)
        self.server.wait_kernel_idle(60)
        # the kernel indicator of the page itself (not only the REST API) says idle
        wait_until(lambda: self.ui_kernel_state() == "idle", 30, "the page to show an idle kernel")

    def ui_kernel_state(self) -> str:
        return str(self.page.evaluate(_KERNEL_UI_STATE_JS))

    # -- menus / cells -------------------------------------------------------------------------

    def menu(self, top: str, item: str | re.Pattern[str]) -> None:
        """Click menu bar ``top`` then the entry ``item`` (exact text, or a pattern)."""
        pattern = item if isinstance(item, re.Pattern) else re.compile(rf"^{re.escape(item)}$")
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{re.escape(top)}$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=pattern).click()

    def code_cell(self, marker: str) -> Any:
        """The code cell whose source contains ``marker`` (exactly one)."""
        loc = self.page.locator(".jp-Notebook .jp-CodeCell").filter(
            has=self.page.locator(".jp-InputArea-editor", has_text=marker)
        )
        wait_until(
            lambda: loc.count() == 1, 20, f"exactly one code cell with {marker!r} (found {loc.count()})"
        )
        return loc

    def cell(self, marker: str) -> Any:
        """Any cell (code or markdown) whose text contains ``marker`` (exactly one)."""
        loc = self.page.locator(".jp-Notebook .jp-Cell").filter(
            has=self.page.locator(".jp-Cell-inputWrapper", has_text=marker)
        )
        wait_until(lambda: loc.count() == 1, 20, f"exactly one cell with {marker!r} (found {loc.count()})")
        return loc

    def select(self, cell: Any) -> None:
        cell.locator(".jp-InputPrompt").first.click()
        wait_until(
            lambda: "jp-mod-active" in (cell.get_attribute("class") or ""), 10, "the cell to be active"
        )

    def prompts(self) -> list[str]:
        # textContent, not innerText: JupyterLab skips rendering off-screen cells, whose
        # innerText then reads empty
        texts = self.page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt").all_text_contents()
        return [re.sub(r"\s+", " ", t).strip() for t in texts]

    def idle_snapshot(self) -> tuple[list[str], list[str]]:
        """(prompts, kernel states): two independent "nothing executes" signals."""
        return self.prompts(), self.server.kernel_states()

    @staticmethod
    def is_idle(prompts: list[str], states: list[str]) -> bool:
        return states == ["idle"] and all(PROMPT_RE.match(p) and p != "[*]:" for p in prompts)

    def wait_executed(self, n: int, timeout: float) -> list[str]:
        """Wait until the first ``n`` code cells show ``[k]:``, the rest ``[ ]:``, no ``[*]:``, and
        the REST API says the kernel is idle."""

        def done() -> list[str] | None:
            self.raise_on_error_output()
            pr, st = self.idle_snapshot()
            ok = (
                self.is_idle(pr, st)
                and all(re.fullmatch(r"\[\d+\]:", p) for p in pr[:n])
                and all(p == "[ ]:" for p in pr[n:])
            )
            return pr if ok else None

        return wait_until(done, timeout, f"{n} cells executed and the kernel idle", interval=0.1) or []

    def raise_on_error_output(self) -> None:
        """Fail at once (not at a timeout) when a cell printed a traceback."""
        err = self.page.locator(
            '.jp-Notebook .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"],'
            ' .jp-Notebook .jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]'
        )
        tracebacks = [t for t in err.all_inner_texts() if "Error" in t or "Traceback" in t]
        assert not tracebacks, "a cell failed:\n" + "\n---\n".join(tracebacks)

    def wait_visible(self, locator: Any, timeout: float, what: str) -> None:
        """Wait for ``locator`` to be visible, failing early if a cell raised meanwhile."""

        def seen() -> bool:
            self.raise_on_error_output()
            return bool(locator.count()) and locator.first.is_visible()

        wait_until(seen, timeout, what, interval=0.2)

    def screenshot(self, locator: Any, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / name
        locator.scroll_into_view_if_needed()
        locator.screenshot(path=str(path), animations="disabled")
        log("screenshot", path)
        return path

    def save_failure_artifacts(self, name: str) -> None:
        FAILURES.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            self.page.screenshot(path=str(FAILURES / f"{name}.png"), full_page=True)
        with contextlib.suppress(Exception):
            (FAILURES / f"{name}.server.log").write_text(self.server.log_tail(400))
        with contextlib.suppress(Exception):
            (FAILURES / f"{name}.browser-errors.txt").write_text("\n".join(self.errors.entries))
        log("failure artifacts in", FAILURES, "as", name)


# Both JupyterLab 4 and Notebook 7 put the kernel's execution state on the toolbar indicator.
_KERNEL_UI_STATE_JS = """() => {
  const ind = document.querySelector('.jp-Notebook-ExecutionIndicator');
  return ind ? (ind.dataset.status || '') : '(no indicator)';
}"""


# ------------------------------------------------------------------------------ parsing


HEADLINE_RE = re.compile(
    r"\b(?P<status>completed|canceled|expired): "
    r"(?P<outcome>no items finished|\d[\d,]* \w+(?:, \d[\d,]* \w+)*) of (?P<total>\d[\d,]*)"
)


def parse_headline(text: str) -> tuple[str, dict[str, int], int]:
    """``"canceled: 12 ready, 1 failed, 30 canceled of 50"`` → (status, counts, total);
    counts has ready/failed/canceled, zero when not named."""
    m = HEADLINE_RE.search(text)
    assert m, f"no final summary headline in {text!r}"
    counts = {"ready": 0, "failed": 0, "canceled": 0}
    if m["outcome"] != "no items finished":
        for n, name in re.findall(r"(\d[\d,]*) (\w+)", m["outcome"]):
            assert name in counts, f"unknown outcome {name!r} in {text!r}"
            counts[name] = int(n.replace(",", ""))
    return m["status"], counts, int(m["total"].replace(",", ""))


def parse_legend(text: str) -> dict[str, int]:
    """The static summary's legend, ``"ready 12 failed 1 canceled 30 processing 0 queued 0"``."""
    found = dict(
        (k, int(v.replace(",", "")))
        for k, v in re.findall(r"\b(ready|failed|canceled|processing|queued) (\d[\d,]*)", text)
    )
    assert set(found) == {"ready", "failed", "canceled", "processing", "queued"}, (
        f"legend incomplete: {text!r}"
    )
    return found


def parse_simulator_line(text: str) -> dict[str, int]:
    """The quickstart's ``simulator: {'ready': N, 'failed': N, 'canceled': N}`` line."""
    m = re.search(r"^simulator: (\{.*\})$", text, re.M)
    assert m, f"no 'simulator: {{...}}' line in {text!r}"
    value = ast.literal_eval(m[1])
    assert isinstance(value, dict) and set(value) == {"ready", "failed", "canceled"}, value
    return {k: int(v) for k, v in value.items()}


# ------------------------------------------------------------------------------ sessions


class Session:
    """One server + one browser page on it, plus the temp dir both live in."""

    def __init__(self, server: JupyterServer, nb: NotebookPage, root: Path) -> None:
        self.server, self.nb, self.root = server, nb, root

    @property
    def notebook_path(self) -> Path:
        return self.root / self.nb.notebook

    def save_failure_artifacts(self, name: str) -> None:
        self.nb.save_failure_artifacts(name)


@contextlib.contextmanager
def notebook_session(
    pw: Any, app: str, *, speed: float, theme: str | None = None, notebook: Path = NOTEBOOK_SRC
) -> Iterator[Session]:
    """Temp dir (with a copy of ``notebook``) + Jupyter server + Chromium page on it; all of it
    torn down in reverse order."""
    with workdir(f"bw-{app}-", notebook) as root:
        server = JupyterServer(app, root, speed=speed, theme=theme)
        try:
            server.start()
            with chromium(pw) as ctx:
                yield Session(server, NotebookPage(ctx, server, notebook.name), root)
        finally:
            killed = server.stop()
            if killed:
                log(f"WARNING: had to SIGKILL {killed} after stopping jupyter {app}")


# ------------------------------------------------------------------------------ the widget

# State of the one batch widget inside a cell: the live view's data-* attributes, or the static
# summary that replaces it when the batch ends (either may be absent).
_WIDGET_STATE_JS = """(cell) => {
  const r = cell.querySelector('.bw-root');
  const st = cell.querySelector('.bw-static');
  const out = {live: !!r, static: st ? st.innerText : null, roots: cell.querySelectorAll('.bw-root').length};
  if (!r) return out;
  const bar = r.querySelector('.bw-bar');
  return {...out, ...r.dataset,
          pill: r.querySelector('.bw-pill').textContent,
          valuenow: bar.getAttribute('aria-valuenow'), valuemax: bar.getAttribute('aria-valuemax'),
          valuetext: bar.getAttribute('aria-valuetext'),
          summary: r.querySelector('.bw-summary').textContent,
          errorShown: !r.querySelector('.bw-error').hidden, staleShown: !r.querySelector('.bw-stale').hidden};
}"""


def widget_state(cell: Any) -> dict[str, Any]:
    return dict(cell.evaluate(_WIDGET_STATE_JS))


def final_summary(static_text: str) -> tuple[str, dict[str, int], int]:
    """Parse the static summary; its headline and its legend must agree, nothing in flight."""
    status, counts, total = parse_headline(static_text)
    legend = parse_legend(static_text)
    assert {k: legend[k] for k in counts} == counts, f"headline {counts} != legend {legend}"
    assert legend["processing"] == 0 and legend["queued"] == 0, f"items still in flight: {legend}"
    assert sum(counts.values()) == total, f"{counts} do not add up to {total}"
    return status, counts, total


# ------------------------------------------------------------------------------ legibility

# WCAG 2 contrast ratio of every visible text run inside an element against the background it
# is painted on (backgrounds composited up the tree; colour alpha and opacity blended in).
_CONTRAST_JS = """(root) => {
  const parse = (c) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(c || '');
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let rgb = [255, 255, 255];
    for (const c of layers.reverse()) rgb = rgb.map((v, i) => c[i] * c[3] + v * (1 - c[3]));
    return rgb;
  };
  const lum = (rgb) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
  };
  const out = [];
  for (const el of [root, ...root.querySelectorAll('*')]) {
    if (!(el instanceof HTMLElement)) continue;
    const own = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join('').trim();
    if (!own || el.getClientRects().length === 0) continue;
    const cs = getComputedStyle(el);
    if (cs.visibility === 'hidden') continue;
    let opacity = 1;
    for (let e = el; e; e = e.parentElement) opacity *= Number(getComputedStyle(e).opacity);
    const bg = background(el);
    const fg = parse(cs.color);
    if (!fg) { out.push({text: own.slice(0, 50), color: cs.color, ratio: null}); continue; }
    const a = fg[3] * opacity;
    const rgb = fg.slice(0, 3).map((v, i) => v * a + bg[i] * (1 - a));
    const l1 = lum(rgb), l2 = lum(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    out.push({text: own.slice(0, 50), cls: el.className, color: cs.color,
              bg: 'rgb(' + bg.map(Math.round).join(',') + ')', ratio: Math.round(ratio * 100) / 100});
  }
  return out;
}"""


def text_contrasts(locator: Any) -> list[dict[str, Any]]:
    return list(locator.evaluate(_CONTRAST_JS))


def low_contrast(locator: Any, minimum: float = 4.5) -> list[dict[str, Any]]:
    """Text runs under ``locator`` below ``minimum`` (WCAG AA for normal-size text is 4.5)."""
    return [r for r in text_contrasts(locator) if r["ratio"] is None or r["ratio"] < minimum]


# ------------------------------------------------------------------------------ hostile strings and cells

#: sets window.__bw_pwned if any of it ever runs as markup
EVIL = '<img src=x onerror="window.__bw_pwned=1"><script>window.__bw_pwned=2</script>'


def assert_no_injection(page: Any, scope: str) -> None:
    """No element injected under ``scope`` and no script run: server strings stayed text."""
    assert page.locator(f"{scope} img").count() == 0
    assert page.locator(f"{scope} script").count() == 0
    assert page.evaluate("() => window.__bw_pwned") is None


def open_lab_notebook(session: Any, name: str) -> None:
    """Open ``name`` in JupyterLab and wait for its kernel to be idle."""
    page = session.nb.page
    page.goto(f"{session.server.base}/lab/tree/{name}", wait_until="domcontentloaded", timeout=60_000)
    page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=60_000)
    session.server.wait_kernel_idle(60)


def run_code_cell(page: Any, i: int, timeout: float = 60) -> None:
    """Run the ``i``-th code cell (Shift+Enter) and wait until its prompt shows it ran."""
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(i)
    cell.locator(".jp-InputPrompt").first.click()
    page.keyboard.press("Shift+Enter")
    wait_until(lambda: cell.locator(".jp-InputPrompt").first.inner_text().strip() not in ("[ ]:", "[*]:"),
               timeout, f"cell {i} to run")  # fmt: skip
