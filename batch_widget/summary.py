"""The static summaries of both widgets: what a saved notebook, an export or GitHub shows.

When its work ends, every display of a live view is replaced by one of these (see
:class:`~batch_widget.views.PinnedView`): text/plain for text-only front ends, and text/html
with inline styles only (JupyterLab's sanitizer keeps them for untrusted outputs and drops
``<style>`` blocks), no script, every server string escaped. Greys are avoided for text: it
inherits the theme's colour and is dimmed with ``opacity``, so it stays legible on light and
dark backgrounds alike.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from ._text import count_of, num, outcome
from .batch_watch import WatchSnapshot
from .models import format_time

if TYPE_CHECKING:
    from .jobs import JobSnapshot
    from .models import Batch
    from .poller import PollUpdate

__all__ = ["BOX", "COLOURS", "JOB_STATES", "STATES", "bar", "batch_html", "batch_text", "job_html", "job_text",
           "legend", "pill"]  # fmt: skip

# The palette of js/widget.css (light theme); white text on each passes 4.5:1.
COLOURS = {
    "ready": "#2e7d32",
    "failed": "#c62828",
    "canceled": "#b45309",
    "processing": "#1565c0",
    "queued": "#6b7280",
    "waiting": "#9ca3af",
}
#: item states, in the order of the batch bar and legend
STATES = ("ready", "failed", "canceled", "processing", "queued")
#: a job's row states: the item states, and rows not yet sent
JOB_STATES = (*STATES, "waiting")

_FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;"
BOX = f"{_FONT}max-width:640px;border:1px solid rgba(128,128,128,.45);border-radius:6px;padding:8px 10px;"


def bar(counts: Mapping[str, int], states: Iterable[str], scale: int, label: str) -> str:
    """A stacked bar, one segment per state, widths relative to ``scale``."""
    scale = max(scale, 1)
    segments = "".join(
        f'<div title="{name}: {num(counts.get(name, 0))}" style="width:{100 * counts.get(name, 0) / scale:.3f}%;'
        f'background:{COLOURS[name]};height:100%"></div>'
        for name in states
        if counts.get(name, 0)
    )
    return (
        f'<div role="img" aria-label="{html.escape(label)}" style="display:flex;height:12px;'
        f'background:rgba(128,128,128,.2);border-radius:3px;overflow:hidden">{segments}</div>'
    )


def legend(counts: Mapping[str, int], states: Iterable[str]) -> str:
    """A swatch and a count for each state, zeros included."""
    return " ".join(
        f'<span style="margin-right:10px;white-space:nowrap"><span style="display:inline-block;width:9px;'
        f'height:9px;border-radius:2px;background:{COLOURS[name]};margin-right:4px"></span>'
        f"{name} {num(counts.get(name, 0))}</span>"
        for name in states
    )


def pill(text: str, colour: str, extra_style: str = "") -> str:
    """A rounded label in ``colour`` with white text."""
    return (
        f'<span style="background:{colour};color:#fff;border-radius:9px;padding:1px 8px;font-weight:600;'
        f'{extra_style}">{html.escape(text)}</span>'
    )

def _iso(value: datetime | None) -> str:
    return format_time(value) or ""


# -- one batch ----------------------------------------------------------------------------------


def batch_text(update: PollUpdate, *, live: bool = False, usage: str = "") -> str:
    """The static summary's text/plain: the watch's line (``WatchSnapshot.describe``, with ``usage``,
    the line of ``Usage.describe()`` once measured), and while the batch runs a note that the live
    view needs the running kernel."""
    text = WatchSnapshot(update, usage=usage).describe()
    batch = update.batch
    if live and (batch is None or not (batch.is_terminal or update.last_known)):
        text += " - live view needs the running kernel; run `w` in a new cell to show the final summary"
    return text


def usage_html(usage: str) -> str:
    """The usage line of a static summary ("" when there is none)."""
    if not usage:
        return ""
    return f'<div class="bw-usage" style="margin-top:4px;opacity:.85">usage: {html.escape(usage)}</div>'


def _webhook_lines(batch: Batch) -> str:
    """One line per webhook endpoint: delivered or not, attempts, the last error (escaped)."""
    esc = html.escape
    lines = []
    for w in batch.webhooks:
        tries = f"{w.attempts} attempt{'s' if w.attempts != 1 else ''}"
        state = f"delivered ({tries})" if w.delivered else f"not delivered ({tries})"
        error = f": {esc(w.last_error)}" if w.last_error and not w.delivered else ""
        lines.append(
            f'<div style="margin-top:2px;opacity:.85">webhook <span style="font-family:monospace">'
            f"{esc(w.url)}</span> {state}{error}</div>"
        )
    return "".join(lines)


def batch_html(update: PollUpdate, *, live: bool = False, usage: str = "") -> str:
    """Self-contained HTML (inline styles, no script, server strings escaped) of the state."""
    esc = html.escape
    batch = update.batch
    if batch is None:
        return f'<div class="bw-static" style="{BOX}">{esc(batch_text(update, live=live))}</div>'
    counts = batch.counts
    pill_style = ""
    if batch.is_terminal:
        # as the live view: canceled amber, expired or nothing ready red, partial success green
        # with a red end cap, so a completed batch with failures never looks like plain success
        if batch.status.value == "canceled":
            colour = COLOURS["canceled"]
        elif batch.status.value == "expired" or batch.ready_items == 0:
            colour = COLOURS["failed"]
        else:
            colour = COLOURS["ready"]
            if batch.ready_items < batch.total_items:
                pill_style = f"box-shadow:inset -7px 0 0 {COLOURS['failed']};padding-right:13px;"
        headline = f"{batch.status.value}: {outcome(counts)} of {num(batch.total_items)}"
    else:
        colour = COLOURS["processing"]
        headline = f"{num(batch.done_items)} of {num(batch.total_items)} done"
        if update.last_known:
            colour = COLOURS["queued"]
            headline = f"last known: {headline} (when the watch ended)"
    when = ""
    if batch.ended_at is not None:
        when = f" · ended {_iso(batch.ended_at)}"
    elif batch.created_at is not None:
        when = f" · created {_iso(batch.created_at)}"
    note = _webhook_lines(batch) + usage_html(usage)
    if update.error:
        note += (
            f'<div style="margin-top:4px;border-left:3px solid {COLOURS["failed"]};padding-left:6px">'
            f"{esc(update.error)}</div>"
        )
    if live:
        note += (
            '<div style="opacity:.75;margin-top:4px">Live view needs the running kernel; '
            "run <code>w</code> in a new cell to show the final summary.</div>"
        )
    scale = max(batch.total_items, sum(counts.values()))
    return (
        f'<div class="bw-static" style="{BOX}">'
        f'<div style="display:flex;gap:8px;align-items:center;margin-bottom:6px">'
        f"{pill(('last known ' if update.last_known else '') + batch.status.value, colour, pill_style)}"
        f'<span style="font-family:monospace">{esc(batch.batch_id)}</span>'
        f'<span style="opacity:.75">{esc((batch.analysis_mode or "") + when)}</span></div>'
        f"{bar(counts, STATES, scale, headline)}"
        f'<div style="margin-top:6px;font-weight:600">{esc(headline)}</div>'
        f'<div style="margin-top:4px;opacity:.85">{legend(counts, STATES)}</div>{note}</div>'
    )


# -- a job --------------------------------------------------------------------------------------


def job_text(snap: JobSnapshot, *, live: bool = False) -> str:
    """One line: job state, outcome counts, rows and batches (see ``JobSnapshot.describe``)."""
    text = snap.describe()
    if live and not snap.finished:
        text += " - live view needs the running kernel; run `job` in a new cell to show the final summary"
    return text


def job_html(snap: JobSnapshot, *, live: bool = False) -> str:
    """Self-contained HTML of the job (inline styles, no script, every string escaped)."""
    esc = html.escape
    c = snap.counts
    states = JOB_STATES
    td = "padding:1px 10px 1px 0;text-align:left;vertical-align:top"  # Lab right-aligns cells otherwise
    rows = []
    for b in snap.batches:
        counts = (
            f"{num(b['ready'])} ready, {num(b['failed'])} failed, {num(b['canceled'])} canceled "
            f"of {num(b['total'])}"
        )
        if b.get("status") in ("waiting", "creating"):
            counts = f"{num(b['total'])} rows not yet submitted"
        elif b.get("state") == "over_budget":
            counts = f"{num(b['total'])} rows not sent: over the budget"
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
        headline = f"{snap.state}: {outcome(c)} of {num(snap.total)} rows"
    else:
        headline = f"{num(done)} of {num(snap.total)} rows done"
    colour = {"done": COLOURS["ready"], "attention": COLOURS["failed"], "error": COLOURS["failed"],
              "canceled": COLOURS["canceled"]}.get(snap.state, COLOURS["processing"])  # fmt: skip
    pill_style = ""
    if snap.state == "done" and (c.get("failed", 0) or c.get("canceled", 0)):
        # as the batch summary: done with failures is never plain success
        pill_style = f"box-shadow:inset -7px 0 0 {COLOURS['failed']};padding-right:13px;"
    note = ""
    if snap.message:
        note += f'<div style="margin-top:4px">{esc(snap.message)}</div>'
    if snap.error:
        note += (
            f'<div style="margin-top:4px;border-left:3px solid {COLOURS["failed"]};padding-left:6px">'
            f"{esc(snap.error)}</div>"
        )
    if live:
        note += (
            '<div style="opacity:.75;margin-top:4px">Live view needs the running kernel; run '
            "<code>job</code> in a new cell to show the final summary.</div>"
        )
    scale = max(snap.total, sum(c.get(k, 0) for k in states))
    uploads = ""
    if snap.uploads.total:
        uploads = f'<div class="bw-job-uploads" style="margin-top:4px">uploads: {esc(snap.uploads.describe())}</div>'
    return (
        f'<div class="bw-static bw-job-static" style="{BOX}">'
        f'<div style="display:flex;gap:8px;align-items:center;margin-bottom:6px">'
        f"{pill(snap.state, colour, pill_style)}"
        f"<span>Job: {count_of(snap.total, 'row')} in {count_of(len(snap.batches), 'batch')}</span>"
        f'<span style="opacity:.75">{esc(snap.manifest)}</span></div>'
        f"{bar(c, states, scale, headline)}"
        f'<div style="margin-top:6px;font-weight:600">{esc(headline)}</div>'
        f'<div style="margin-top:4px;opacity:.85">{legend(c, states)}</div>{uploads}'
        f'<table style="margin-top:6px;border-collapse:collapse;font-size:12px">{"".join(rows)}</table>'
        f"{usage_html(snap.usage if snap.finished else '')}{note}</div>"
    )
