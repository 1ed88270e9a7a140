"""What the command line shows: the live rows of batches and jobs, as text and as ``--json`` events.

Each :class:`Row` has its text (a terminal's block, or a plain timestamped line) and its JSON
event; :mod:`.output` decides where and how they go. ``EVENTS`` is the ``--json`` schema
(version ``SCHEMA_VERSION``, the ``v`` field of every event); the README documents it.

Pure and light: no pandas, no poller (their types only for the type checker), so ``status``
starts fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._text import num
from ..models import Batch

if TYPE_CHECKING:
    from ..jobs import JobSnapshot, UploadCounts
    from ..poller import PollUpdate

__all__ = [
    "EVENTS", "SCHEMA_VERSION", "UPLOAD_FIELDS", "Row", "batch_payload", "batch_row", "batch_text",
    "format_duration", "job_rows", "upload_payload", "written_payload",
]  # fmt: skip

#: the ``v`` of every ``--json`` event: raised when a field changes meaning or goes (new fields do not)
SCHEMA_VERSION = 1

#: the fields of a job event's ``uploads`` object (``null`` when the job uploads nothing)
UPLOAD_FIELDS = ("uploading", "processing", "ready", "failed", "canceled", "bytes_sent", "bytes_total", "rate_bps")

#: the fields of each ``--json`` event kind (every event also has ``v``, ``event`` and ``time``)
EVENTS: dict[str, tuple[str, ...]] = {
    "batch": (
        "batch_id", "status", "total", "ready", "failed", "canceled", "processing", "queued",
        "rate_per_min", "eta_s", "watch", "chunk", "message",
    ),
    "job": (
        "manifest", "state", "total", "ready", "failed", "canceled", "processing", "queued", "waiting",
        "eta_s", "batch_ids", "uploads", "message",
    ),
    "submitted": ("manifest", "batch_ids", "rows", "skipped_rows", "watch_command"),
    "resubmitted": ("manifest", "rows", "chunks"),
    "outcome": ("ready", "failed", "canceled", "total", "usage", "message"),
    "written": ("path", "format", "rows"),
    "deleted": ("batch_id",),
    "error": ("exit_code", "error_type", "message"),
    "interrupted": ("exit_code", "signal", "batch_ids", "message"),
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


def batch_text(p: Mapping[str, Any], ended: bool) -> str:
    """A ``batch`` event as one line: id, status, done/total, rate, ETA, the counts."""
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


def upload_payload(counts: UploadCounts) -> dict[str, Any] | None:
    """A job event's ``uploads``: distinct uploads by state, bytes, rate (``None``: nothing to upload)."""
    if not counts.total:
        return None
    return {
        "uploading": counts.uploading, "processing": counts.processing, "ready": counts.ready,
        "failed": counts.failed, "canceled": counts.canceled, "bytes_sent": counts.bytes_sent,
        "bytes_total": counts.bytes_total, "rate_bps": round(counts.rate, 1),
    }  # fmt: skip


def written_payload(path: str, rows: int) -> dict[str, Any]:
    """The ``written`` event of a results file."""
    return {"event": "written", "path": path, "format": path.rpartition(".")[2].lower(), "rows": rows}


def batch_row(update: PollUpdate) -> Row:
    """The live row of one watched batch."""
    payload = batch_payload(
        update.batch_id, update.batch, watch=update.state, rate=update.rate_per_min, eta=update.eta_s,
        message=update.error,
    )  # fmt: skip
    ended = update.batch is not None and update.batch.is_terminal
    return Row(update.batch_id, batch_text(payload, ended), payload)


def job_rows(snap: JobSnapshot) -> list[Row]:
    """The live rows of a job: the job itself, then one per chunk (its batch, once created)."""
    c = snap.counts
    batch_ids = [str(b["batch_id"]) for b in snap.batches if b.get("batch_id")]
    job = {
        "event": "job", "manifest": snap.manifest, "state": snap.state, "total": snap.total,
        **{k: c.get(k, 0) for k in (*_COUNTS, "waiting")},
        "eta_s": None if snap.eta_s is None else round(snap.eta_s, 1), "batch_ids": batch_ids,
        "uploads": upload_payload(snap.uploads), "message": snap.message or snap.error,
    }  # fmt: skip
    done = sum(c.get(k, 0) for k in ("ready", "failed", "canceled"))
    eta = "ended" if snap.finished else f"ETA {format_duration(snap.eta_s)}"
    text = (
        f"job {snap.manifest}  {snap.state:<10} {num(done):>7}/{num(snap.total):<7} {eta}  "
        f"{_counts_text(c)}, waiting {num(c.get('waiting', 0))}"
    )
    if snap.uploads.total:
        text += f"; uploads: {snap.uploads.describe()}"
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
        rows.append(Row(f"chunk {b['chunk']}", "  " + batch_text(shown, ended), payload))
    return rows
