"""What the command line prints: a live block redrawn in place on a terminal, plain lines elsewhere, or JSON.

Three modes, one interface (:class:`Output`):

- ``tty`` (stdout is a terminal): the live rows are one block, redrawn in place (cursor up,
  clear line, one write per redraw, so nothing flickers) only when a row changed, plus a footer
  clock that ticks at most once a second. Rows are cut to the terminal's width, so none wraps
  and the cursor-up count stays right.
- ``plain`` (a pipe, a CI log): a timestamped line per row each time that row changes, never
  one per poll without a change; no escape sequences.
- ``json`` (``--json``): one JSON object per line, for scripts; the schema is in ``EVENTS``.

Time comes from the client's clock (``clock.py``), like everything that reads time.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timezone
from typing import Any, Literal, TextIO

from .._text import num
from ..clock import SYSTEM_CLOCK, Clock
from ..jobs import JobSnapshot
from ..models import Batch
from ..poller import PollUpdate

__all__ = ["EVENTS", "Mode", "Output", "Row", "batch_payload", "batch_row", "format_duration", "job_rows"]

Mode = Literal["tty", "plain", "json"]

#: the fields of each ``--json`` event kind (every event also has ``event`` and ``time``)
EVENTS: dict[str, tuple[str, ...]] = {
    "batch": (
        "batch_id", "status", "total", "ready", "failed", "canceled", "processing", "queued",
        "rate_per_min", "eta_s", "watch", "chunk", "message",
    ),
    "job": (
        "manifest", "state", "total", "ready", "failed", "canceled", "processing", "queued", "waiting",
        "eta_s", "batch_ids", "message",
    ),
    "submitted": ("manifest", "batch_ids", "rows", "skipped_rows", "watch_command"),
    "written": ("path", "format", "rows"),
    "deleted": ("batch_id",),
    "error": ("exit_code", "error_type", "message"),
    "interrupted": ("exit_code", "batch_ids", "message"),
    "end": ("exit_code",),
}  # fmt: skip

_COUNTS = ("ready", "failed", "canceled", "processing", "queued")


def format_duration(seconds: float | None) -> str:
    """90 → "1m30s"; None → "-"."""
    if seconds is None:
        return "-"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


@dataclass(frozen=True)
class Row:
    """One live row: a key (which row it is), its text, and its JSON event (without ``time``)."""

    key: str
    text: str
    payload: Mapping[str, Any]


def batch_payload(
    batch_id: str | None,
    batch: Batch | Mapping[str, Any] | None,
    *,
    watch: str | None = None,
    rate: float | None = None,
    eta: float | None = None,
    chunk: int | None = None,
    message: str = "",
) -> dict[str, Any]:
    """The ``batch`` event: a Batch, or a job's per-batch row (a dict with the same counts)."""
    if isinstance(batch, Batch):
        status: str | None = batch.status.value
        total: int | None = batch.total_items
        counts: Mapping[str, Any] = batch.counts
    elif batch is not None:
        status, total, counts = batch.get("status") or None, batch.get("total"), batch
    else:
        status, total, counts = None, None, {}
    return {
        "event": "batch", "batch_id": batch_id, "status": status, "total": total,
        **{k: counts.get(k) if total is not None else None for k in _COUNTS},
        "rate_per_min": None if rate is None else round(rate, 3),
        "eta_s": None if eta is None else round(eta, 1),
        "watch": watch, "chunk": chunk, "message": message,
    }  # fmt: skip


def _counts_text(p: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {num(p.get(k) or 0)}" for k in _COUNTS)


def _batch_text(p: Mapping[str, Any], ended: bool) -> str:
    if p["total"] is None:
        text = f"{p['batch_id']}  {p['status'] or p['watch'] or 'waiting'}"
    else:
        done = (p["ready"] or 0) + (p["failed"] or 0) + (p["canceled"] or 0)
        rate = "-" if p["rate_per_min"] is None else f"{p['rate_per_min']:.1f}/min"
        eta = "ended" if ended else f"ETA {format_duration(p['eta_s'])}"
        text = (
            f"{p['batch_id']}  {p['status']:<10} {num(done):>7}/{num(p['total']):<7} {rate:>10}  {eta:<10} "
            f"{_counts_text(p)}"
        )
    if p["message"]:
        text += f"  [{p['message']}]"
    return text


def batch_row(update: PollUpdate) -> Row:
    """The live row of one watched batch."""
    payload = batch_payload(
        update.batch_id, update.batch, watch=update.state, rate=update.rate_per_min, eta=update.eta_s,
        message=update.error,
    )  # fmt: skip
    ended = update.batch is not None and update.batch.is_terminal
    return Row(update.batch_id, _batch_text(payload, ended), payload)


def job_rows(snap: JobSnapshot) -> list[Row]:
    """The live rows of a job: the job itself, then one per chunk (its batch, once created)."""
    c = snap.counts
    batch_ids = [str(b["batch_id"]) for b in snap.batches if b.get("batch_id")]
    job = {
        "event": "job", "manifest": snap.manifest, "state": snap.state, "total": snap.total,
        **{k: c.get(k, 0) for k in (*_COUNTS, "waiting")},
        "eta_s": None if snap.eta_s is None else round(snap.eta_s, 1), "batch_ids": batch_ids,
        "message": snap.message or snap.error,
    }  # fmt: skip
    done = sum(c.get(k, 0) for k in ("ready", "failed", "canceled"))
    eta = "ended" if snap.finished else f"ETA {format_duration(snap.eta_s)}"
    text = (
        f"job {snap.manifest}  {snap.state:<10} {num(done):>7}/{num(snap.total):<7} {eta}  "
        f"{_counts_text(c)}, waiting {num(c.get('waiting', 0))}"
    )
    if job["message"]:
        text += f"  [{job['message']}]"
    rows = [Row("job", text, job)]
    for b in snap.batches:
        bid = str(b.get("batch_id") or "")
        payload = batch_payload(
            bid or None, b, eta=b.get("eta_s"),
            chunk=int(b["chunk"]), message=str(b.get("error") or ""),
        )  # fmt: skip
        shown = dict(payload, batch_id=bid or f"(chunk {b['chunk']}, not sent)".ljust(24))
        ended = str(b.get("status")) in ("completed", "canceled", "expired")
        rows.append(Row(f"chunk {b['chunk']}", "  " + _batch_text(shown, ended), payload))
    return rows


class Output:
    """Where a command's rows, messages and errors go, in one of the three modes."""

    def __init__(self, mode: Mode, stream: TextIO, err: TextIO, clock: Clock = SYSTEM_CLOCK) -> None:
        self.mode = mode
        self.stream = stream
        self.err = err
        self.clock = clock
        self._last: dict[str, Mapping[str, Any]] = {}  # plain / json: the last row printed, by key
        self._rows: list[Row] = []
        self._footer = ""
        self._drawn: list[str] = []  # tty: the lines on screen now
        self._started = clock.monotonic()
        self.redraws = 0

    # -- live rows ------------------------------------------------------------------------------

    def live(self, rows: Sequence[Row], footer: str = "") -> None:
        """Show the rows: redraw the block (tty), or print the rows that changed (plain, json)."""
        self._rows, self._footer = list(rows), footer
        if self.mode == "tty":
            self._draw()
            return
        for row in rows:
            if self._last.get(row.key) == row.payload:
                continue
            self._last[row.key] = row.payload
            if self.mode == "json":
                self._json(row.payload)
            else:
                self._line(f"{self._stamp()}  {row.text}")

    def tick(self) -> None:
        """The clock's second: on a terminal, redraw if the footer's elapsed time moved."""
        if self.mode == "tty" and self._rows:
            self._draw()

    def end_live(self) -> None:
        """Leave the block where it is (the cursor below it); later output goes underneath."""
        if self.mode == "tty" and self._drawn:
            self._footer = ""
            self._draw()
            self.stream.write("\x1b[?25h")
            self.stream.flush()
        self._rows, self._drawn = [], []

    def _draw(self) -> None:
        width = max(20, shutil.get_terminal_size((120, 24)).columns - 1)
        elapsed = format_duration(self.clock.monotonic() - self._started)
        lines = [row.text for row in self._rows]
        if self._footer:
            lines.append(f"{self._footer}  elapsed {elapsed}")
        lines = [line if len(line) <= width else line[: width - 3] + "..." for line in lines]
        if lines == self._drawn:
            return
        parts = ["\x1b[?25l"] if not self._drawn else [f"\r\x1b[{len(self._drawn)}A"]
        parts += [f"\x1b[2K{line}\n" for line in lines]
        extra = len(self._drawn) - len(lines)
        if extra > 0:  # the block shrank: clear what is left of it, then come back up
            parts += ["\x1b[2K\n"] * extra + [f"\x1b[{extra}A"]
        self.stream.write("".join(parts))  # one write per redraw: no flicker
        self.stream.flush()
        self._drawn = lines
        self.redraws += 1

    # -- one-off output ------------------------------------------------------------------------

    def say(self, text: str, payload: Mapping[str, Any] | None = None) -> None:
        """A message: its text, or its JSON event (nothing in json mode when there is none)."""
        if self.mode == "json":
            if payload is not None:
                self._json(payload)
            return
        self._line(text)

    def error(self, message: str, *, exit_code: int, error_type: str) -> None:
        """An error: on stderr as text, or as an ``error`` event on stdout in json mode."""
        if self.mode == "json":
            self._json({"event": "error", "exit_code": exit_code, "error_type": error_type, "message": message})
            return
        self.end_live()
        self.err.write(f"batch-widget: error: {message}\n")
        self.err.flush()

    def note(self, message: str) -> None:
        """A hint for a person (stderr, so it never mixes with data on stdout)."""
        if self.mode != "json":
            self.err.write(f"{message}\n")
            self.err.flush()

    def end(self, exit_code: int) -> None:
        """The last word: the ``end`` event in json mode."""
        self.end_live()
        if self.mode == "json":
            self._json({"event": "end", "exit_code": exit_code})

    # -- plumbing -------------------------------------------------------------------------------

    def _stamp(self) -> str:
        return self.clock.now().astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _line(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _json(self, payload: Mapping[str, Any]) -> None:
        event = {"event": payload["event"], "time": self._stamp(), **payload}
        self._line(json.dumps(event, ensure_ascii=False, default=str))
