"""The job widget: one live view for the many batches of a :class:`~batch_widget.jobs.Job`.

Traits are a projection of :meth:`Job.snapshot` (one list of per-batch dicts, overall counts,
the scheduler's message); the JS view (``js/job.ts``) draws from them only and sends two
actions back: ``cancel_all`` and ``refresh``. As with :class:`~batch_widget.widget.BatchWidget`,
every display carries a display id and is replaced by a static-only summary (inline-styled
HTML + plain text) when the job ends, so a saved notebook shows the final counts.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import traitlets

from . import summary as S

if TYPE_CHECKING:
    from .jobs import Job, JobSnapshot

__all__ = ["JobWidget", "summary_html", "summary_text"]

log = logging.getLogger("batch_widget.job_widget")

_STATIC = Path(__file__).parent / "static"
STATES = ("ready", "failed", "canceled", "processing", "queued", "waiting")


class JobWidget(S.PinnedView):
    """Live view of a job. Display the job itself (``job``) rather than building one."""

    _esm = _STATIC / "job.js"
    _css = _STATIC / "job.css"

    state = traitlets.Unicode("idle").tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    ready = traitlets.Int(0).tag(sync=True)
    failed = traitlets.Int(0).tag(sync=True)
    canceled = traitlets.Int(0).tag(sync=True)
    processing = traitlets.Int(0).tag(sync=True)
    queued = traitlets.Int(0).tag(sync=True)
    waiting = traitlets.Int(0).tag(sync=True)
    batches = traitlets.List(traitlets.Dict(), default_value=[]).tag(sync=True)
    active = traitlets.Int(None, allow_none=True).tag(sync=True)
    max_active = traitlets.Int(5).tag(sync=True)
    eta_s = traitlets.Float(None, allow_none=True).tag(sync=True)
    cancel_requested = traitlets.Bool(False).tag(sync=True)
    manifest = traitlets.Unicode("").tag(sync=True)
    updated_at = traitlets.Unicode("").tag(sync=True)

    def __init__(self, job: Job) -> None:
        self._job = job
        super().__init__()
        job.add_listener(self._on_snapshot)
        self._on_snapshot(job.snapshot())

    @property
    def job(self) -> Job:
        return self._job

    # -- display ----------------------------------------------------------------------------

    def _finished(self) -> bool:
        return self._job.snapshot().finished

    def _summary(self, *, live: bool) -> tuple[str, str]:
        snap = self._job.snapshot()
        return summary_text(snap, live=live), summary_html(snap, live=live)

    def close(self) -> None:
        self._job.remove_listener(self._on_snapshot)
        super().close()

    # -- plumbing -----------------------------------------------------------------------------

    def _on_snapshot(self, snap: JobSnapshot) -> None:
        with self.hold_sync():
            self.state = snap.state
            self.message = snap.message
            self.total = snap.total
            for name in STATES:
                setattr(self, name, int(snap.counts.get(name, 0)))
            self.batches = [dict(b) for b in snap.batches]
            self.active = snap.active
            self.max_active = snap.max_active
            self.eta_s = snap.eta_s
            self.error = snap.error
            self.cancel_requested = snap.cancel_requested
            self.manifest = snap.manifest
            self.updated_at = snap.updated_at
        if snap.finished:
            self.finalize()
        elif self._finalized:
            self._finalized = False  # resubmitted: live again until it ends again

    def _on_action(self, kind: str) -> bool:
        if kind == "cancel_all":
            self._spawn_action(self._job.cancel, "Cancel")
        elif kind == "refresh":
            for poller in self._job._pollers.values():
                poller.refresh()
            self._job._poke()
        else:
            return False
        return True


# -- static summary (inline styles only, escaped) ----------------------------------------------


def summary_text(snap: JobSnapshot, *, live: bool = False) -> str:
    """One line: job state, outcome counts, rows and batches."""
    n = len(snap.batches)
    made = sum(1 for b in snap.batches if b.get("batch_id"))
    c = snap.counts
    if snap.finished:
        text = f"Job {snap.state}: {S.outcome(c)} of {S.num(snap.total)} rows in {made} batches"
    else:
        done = c.get("ready", 0) + c.get("failed", 0) + c.get("canceled", 0)
        text = (
            f"Job {snap.state}: {S.num(done)} of {S.num(snap.total)} rows done ({S.outcome(c)}; "
            f"{S.num(c.get('processing', 0))} processing, {S.num(c.get('queued', 0))} queued, "
            f"{S.num(c.get('waiting', 0))} waiting); {made} of {n} batches submitted"
        )
        if snap.message:
            text += f"; {snap.message}"
        if live:
            text += " - live view needs the running kernel; run `job` in a new cell to show the final summary"
    if snap.finished and snap.message:
        text += f" [{snap.message}]"
    if snap.error:
        text += f" [{snap.error}]"
    return text


def summary_html(snap: JobSnapshot, *, live: bool = False) -> str:
    """Self-contained HTML of the job (inline styles, no script, every string escaped)."""
    esc = html.escape
    c = snap.counts
    states = STATES
    td = "padding:1px 10px 1px 0;text-align:left;vertical-align:top"  # Lab right-aligns cells otherwise
    rows = []
    for b in snap.batches:
        counts = (
            f"{S.num(b['ready'])} ready, {S.num(b['failed'])} failed, {S.num(b['canceled'])} canceled "
            f"of {S.num(b['total'])}"
        )
        if b.get("status") in ("waiting", "creating"):
            counts = f"{S.num(b['total'])} rows not yet submitted"
        retry_of = b.get("resubmit_of") or []
        extra = f" (retry of {', '.join(str(x) for x in retry_of)})" if retry_of else ""
        rows.append(
            f'<tr><td style="{td}">#{b["chunk"]}{esc(extra)}</td>'
            f'<td style="{td};font-family:monospace">{esc(str(b.get("batch_id") or "-"))}</td>'
            f'<td style="{td};font-weight:600">{esc(str(b.get("status") or ""))}</td>'
            f'<td style="{td};white-space:nowrap">{esc(counts)}</td></tr>'
        )
    done = c.get("ready", 0) + c.get("failed", 0) + c.get("canceled", 0)
    if snap.finished:
        headline = f"{snap.state}: {S.outcome(c)} of {S.num(snap.total)} rows"
    else:
        headline = f"{S.num(done)} of {S.num(snap.total)} rows done"
    colour = {"done": S.COLOURS["ready"], "attention": S.COLOURS["failed"], "error": S.COLOURS["failed"],
              "canceled": S.COLOURS["canceled"]}.get(snap.state, S.COLOURS["processing"])  # fmt: skip
    pill_style = ""
    if snap.state == "done" and (c.get("failed", 0) or c.get("canceled", 0)):
        # as the batch summary: done with failures is never plain success
        pill_style = f"box-shadow:inset -7px 0 0 {S.COLOURS['failed']};padding-right:13px;"
    note = ""
    if snap.message:
        note += f'<div style="margin-top:4px">{esc(snap.message)}</div>'
    if snap.error:
        note += (
            f'<div style="margin-top:4px;border-left:3px solid {S.COLOURS["failed"]};padding-left:6px">'
            f"{esc(snap.error)}</div>"
        )
    if live:
        note += (
            '<div style="opacity:.75;margin-top:4px">Live view needs the running kernel; run '
            "<code>job</code> in a new cell to show the final summary.</div>"
        )
    scale = max(snap.total, sum(c.get(k, 0) for k in states))
    return (
        f'<div class="bw-static bw-job-static" style="{S.BOX}">'
        f'<div style="display:flex;gap:8px;align-items:center;margin-bottom:6px">'
        f"{S.pill(snap.state, colour, pill_style)}"
        f"<span>Job: {S.num(snap.total)} rows in {len(snap.batches)} batches</span>"
        f'<span style="opacity:.75">{esc(snap.manifest)}</span></div>'
        f"{S.bar(c, states, scale, headline)}"
        f'<div style="margin-top:6px;font-weight:600">{esc(headline)}</div>'
        f'<div style="margin-top:4px;opacity:.85">{S.legend(c, states)}</div>'
        f'<table style="margin-top:6px;border-collapse:collapse;font-size:12px">{"".join(rows)}</table>'
        f"{note}</div>"
    )
