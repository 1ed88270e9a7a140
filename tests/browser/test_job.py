"""JupyterLab 4: the job widget of ``notebooks/many_videos.ipynb`` (2,500 rows in 3 batches on the
in-kernel simulator, then a resubmit of the failed rows as a 4th batch).

One test, one server: run the cells above the first ``await job.wait()`` and watch the job view
advance while no cell executes (overall bar, one row per batch, waiting chunks before they are
submitted); run the rest; both displays of the job end as the static summary whose counts add
up to 2,500 and agree with ``job.summary_text()``; then the same page in JupyterLab Dark.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from . import harness as H

NOTEBOOK = H.REPO / "notebooks" / "many_videos.ipynb"
CODE_CELLS = sum(1 for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code")
SPEED = 60.0  # simulated seconds per real second (the notebook's default): ~25 s for the job
ROWS = 2500
STATES = ("ready", "failed", "canceled", "processing", "queued", "waiting")

# The job view inside one cell: the live root's data-* and rows, or the static summary's text.
_JOB_STATE_JS = """(cell) => {
  const r = cell.querySelector('.bw-root.bw-job');
  const st = cell.querySelector('.bw-job-static');
  const out = {live: !!r, static: st ? st.innerText : null, roots: cell.querySelectorAll('.bw-root').length};
  if (!r) return out;
  const bar = r.querySelector('.bw-bar');
  return {...out, ...r.dataset,
          pill: r.querySelector('.bw-pill').textContent,
          title: r.querySelector('.bw-job-title').textContent,
          summary: r.querySelector('.bw-summary').textContent,
          segs: bar.querySelectorAll('.bw-seg').length,
          valuenow: bar.getAttribute('aria-valuenow'),
          rows: [...r.querySelectorAll('tbody tr.bw-job-row')].map((tr) => ({
            chunk: tr.dataset.chunk, status: tr.dataset.status, cls: tr.className,
            progress: tr.querySelector('.bw-job-progress').textContent}))};
}"""

# Records, from the first render on, whether any job view showed a chunk not yet submitted
# (a "planned"/"creating" row, or waiting rows in the overall bar), and any retry row.
_WATCH_JS = """() => {
  const seen = window.__bwJobSeen = {waitingRows: [], maxWaiting: 0, retryRows: 0};
  const look = () => {
    const rows = '.bw-job .bw-job-row.bw-job-planned, .bw-job .bw-job-row.bw-job-creating';
    for (const tr of document.querySelectorAll(rows)) {
      const t = tr.querySelector('.bw-job-progress').textContent;
      if (!seen.waitingRows.includes(t)) seen.waitingRows.push(t);
    }
    for (const r of document.querySelectorAll('.bw-root.bw-job')) {
      seen.maxWaiting = Math.max(seen.maxWaiting, Number(r.dataset.waiting || 0));
    }
    seen.retryRows = Math.max(seen.retryRows, document.querySelectorAll('.bw-job .bw-job-retry').length);
  };
  new MutationObserver(look).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                     attributeFilter: ['data-waiting', 'class']});
}"""

HEADLINE_RE = re.compile(
    r"\b(?P<state>done|attention|error|canceled): (?P<outcome>no items finished|\d[\d,]* \w+(?:, \d[\d,]* \w+)*) "
    r"of (?P<total>\d[\d,]*) rows"
)


def wait_all_executed(nb: H.NotebookPage, timeout: float) -> list[str]:
    """Every code cell shows ``[k]:`` and the kernel is idle. Like ``nb.wait_executed`` but reads
    the prompts' textContent: this notebook is taller than the window, and JupyterLab skips the
    rendering of off-screen cells (content-visibility), so their innerText reads empty."""

    def done() -> list[str]:
        nb.raise_on_error_output()
        texts = nb.page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt").all_text_contents()
        prompts = [re.sub(r"\s+", " ", t).strip() for t in texts]
        ok = (
            len(prompts) == CODE_CELLS
            and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)
            and nb.server.kernel_states() == ["idle"]
        )
        return prompts if ok else []

    return H.wait_until(done, timeout, f"all {CODE_CELLS} code cells run, the kernel idle", interval=0.2)


def job_state(cell: Any) -> dict[str, Any]:
    return dict(cell.evaluate(_JOB_STATE_JS))


def parse_job_summary(text: str) -> tuple[str, dict[str, int], int]:
    """The static job summary: headline ``done: 2495 ready, 5 failed of 2500 rows`` and legend
    ``ready 2495 failed 5 canceled 0 processing 0 queued 0 waiting 0`` must agree; nothing left
    in flight; the outcomes add up to the total."""
    m = HEADLINE_RE.search(text)
    assert m, f"no headline in the static job summary {text!r}"
    counts = {"ready": 0, "failed": 0, "canceled": 0}
    if m["outcome"] != "no items finished":
        for n, name in re.findall(r"(\d[\d,]*) (\w+)", m["outcome"]):
            assert name in counts, f"unknown outcome {name!r} in {text!r}"
            counts[name] = int(n.replace(",", ""))
    legend = {k: int(v.replace(",", "")) for k, v in re.findall(rf"\b({'|'.join(STATES)}) (\d[\d,]*)", text)}
    assert set(legend) == set(STATES), f"legend incomplete: {text!r}"
    assert {k: legend[k] for k in counts} == counts, f"headline {counts} != legend {legend}"
    assert legend["processing"] == legend["queued"] == legend["waiting"] == 0, f"still in flight: {legend}"
    total = int(m["total"].replace(",", ""))
    assert sum(counts.values()) == total, f"{counts} do not add up to {total}"
    return m["state"], counts, total


@pytest.fixture(scope="module")
def job_lab(pw: Any) -> Iterator[H.Session]:
    with H.notebook_session(pw, "lab", speed=SPEED, notebook=NOTEBOOK) as s:
        yield s


def test_job_widget_runs_to_static_summary(job_lab: H.Session) -> None:
    t_start = time.monotonic()
    nb = job_lab.nb
    nb.open()
    assert nb.prompts() == ["[ ]:"] * CODE_CELLS, nb.prompts()
    assert nb.page.evaluate("document.body.dataset.jpThemeLight") == "true"
    nb.page.evaluate(_WATCH_JS)

    # Setup, plan, submit + display, "the kernel is free", re-submit: every cell above the first wait.
    nb.select(nb.cell("waits without freezing"))
    nb.menu("Run", "Run All Above Selected Cell")
    submit = nb.code_cell("job = bw.submit(")
    nb.wait_visible(submit.locator(".bw-root.bw-job"), 60, "the live job view")
    nb.wait_executed(5, timeout=60)  # setup, plan, submit, "the kernel is free", re-submit
    nb.code_cell("again = bw.submit(").locator(
        ".jp-OutputArea-output", has_text="same job: True | rows already in the job, skipped: 2500"
    ).wait_for(timeout=10_000)

    # No cell runs now; the job view must still advance.
    samples: list[dict[str, Any]] = []
    t0 = time.monotonic()
    while True:
        before = nb.idle_snapshot()
        st = job_state(submit)
        after = nb.idle_snapshot()
        assert nb.is_idle(*before) and nb.is_idle(*after), f"something executes: {before} {after}"
        assert st["live"] and st["roots"] == 1, f"live view gone mid-run: {st}"
        samples.append(st)
        done = [int(x["done"]) for x in samples]
        if len(set(done)) >= 3 and done[-1] >= ROWS // 10:
            break
        assert st["state"] not in ("done", "attention", "error", "canceled"), f"ended while sampled: {st}"
        assert time.monotonic() - t0 < 30, f"barely advanced while idle: {done}"
        time.sleep(0.25)
    H.log("done while idle:", sorted(set(done)))
    assert done == sorted(done), f"done went down: {done}"
    for x in samples:
        assert x["total"] == str(ROWS) and x["segs"] == 6 and x["valuenow"] == x["done"], x
        assert sum(int(x[k]) for k in STATES) == ROWS, x
        assert [r["chunk"] for r in x["rows"]] == ["0", "1", "2"], x["rows"]  # one row per batch
        assert x["title"].startswith("2,500 rows · 3 batches ("), x["title"]
        assert x["summary"].startswith(f"{int(x['done']):,} of 2,500 rows done"), x["summary"]
    nb.screenshot(submit, "job-light-running.png")
    live_low = H.low_contrast(submit.locator(".bw-root"))

    # The rest: wait, frame, resubmit (a 4th batch, displayed again), wait, list.
    nb.select(nb.cell("waits without freezing"))
    nb.menu("Run", "Run Selected Cell and All Below")
    resub = nb.code_cell("new_chunks = await job.resubmit()")
    H.log("all cells ran:", wait_all_executed(nb, timeout=75))
    seen = nb.page.evaluate("window.__bwJobSeen")
    H.log("seen by the observer:", seen)
    # Chunks not yet submitted were shown as waiting (the first render has all 2,500 rows
    # planned, the resubmit's display its new chunk).
    assert seen["maxWaiting"] > 0 or seen["waitingRows"], seen
    assert all(re.fullmatch(r"\d[\d,]* rows waiting", t) for t in seen["waitingRows"]), seen

    # Both displays of the job are now the static summary, with the same final counts.
    finals, statics = [], []
    for cell in (submit, resub):
        cell.scroll_into_view_if_needed()  # JupyterLab skips rendering off-screen cells: innerText reads empty
        time.sleep(0.2)
        st = job_state(cell)
        assert not st["live"] and st["roots"] == 0 and st["static"], f"not replaced by the summary: {st}"
        finals.append(parse_job_summary(st["static"]))
        statics.append(st["static"])
    assert finals[0] == finals[1], finals
    assert all(re.search(r"usage: [\d,.]+ h analysed \([\d,]+ completed\)", t) for t in statics), statics
    state, counts, total = finals[0]
    assert (state, total) == ("done", ROWS), finals[0]
    text = "\n".join(nb.code_cell("status_history").locator(".jp-OutputArea-output").all_inner_texts())
    outcome = ", ".join(f"{counts[k]:,} {k}" for k in ("ready", "failed", "canceled") if counts[k])
    assert f"Job done: {outcome} of {ROWS:,} rows in 4 batches" in text, text
    nb.screenshot(submit, "job-light-final.png")
    static_low = H.low_contrast(submit.locator(".bw-job-static"))
    nb.errors.assert_clean()

    # The same summary in JupyterLab Dark (Settings > Theme).
    nb.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Settings$")).click()
    nb.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).hover()
    nb.page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^JupyterLab Dark$")).click()
    nb.page.wait_for_function("document.body.dataset.jpThemeLight === 'false'", timeout=15_000)
    time.sleep(0.5)  # the theme's stylesheet settles
    nb.screenshot(submit, "job-dark-final.png")
    dark_low = H.low_contrast(submit.locator(".bw-job-static"))
    nb.errors.assert_clean()
    H.log(f"test took {time.monotonic() - t_start:.0f}s")

    assert not live_low, f"live job view text below 4.5:1 contrast (light): {live_low}"
    assert not static_low, f"static job summary text below 4.5:1 contrast (light): {static_low}"
    assert not dark_low, f"static job summary text below 4.5:1 contrast (dark): {dark_low}"
