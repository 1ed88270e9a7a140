"""What a job looks like at one moment: a projection of its chunks and the latest poll of each batch.

Pure: :func:`project` reads the manifest's chunks, the pollers' updates and the scheduler's state
and returns a frozen :class:`JobSnapshot`, which the job hands to its listeners (the job widget,
a test, a script) after every change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._text import count_of, num, outcome
from ..poller import PollUpdate
from .manifest import Chunk
from .uploads import UploadCounts

__all__ = ["FINISHED_STATES", "JobSnapshot", "RowsBeforeBatches", "attention_message", "project", "settled"]

#: job states in which nothing more happens without the user
FINISHED_STATES = frozenset({"done", "attention", "error", "canceled"})


@dataclass(frozen=True)
class RowsBeforeBatches:
    """Rows in no chunk yet because of their upload: still uploading, failed, canceled, or given up."""

    uploading: int = 0
    failed: int = 0
    canceled: int = 0
    #: rows whose upload gave up after its retries (they need ``job.retry_uploads()``), and why
    gave_up: int = 0
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobSnapshot:
    """What the job widget shows: a projection of the chunks and the latest poll of each batch."""

    state: str
    message: str
    total: int
    counts: dict[str, int]
    batches: tuple[dict[str, Any], ...]
    active: int | None
    max_active: int
    eta_s: float | None
    error: str
    cancel_requested: bool
    manifest: str
    updated_at: str
    #: seconds until the next poll of a running batch (the soonest), or the slot check's pause
    interval_s: float = 0.0
    #: the upload stage (all zero when the job's rows name assets only)
    uploads: UploadCounts = field(default_factory=UploadCounts)
    #: what the job used, one line (``Usage.describe()``); "" until measured after the job ended
    usage: str = ""

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def describe(self) -> str:
        """One line: job state, outcome counts, rows and batches."""
        n = len(self.batches)
        made = sum(1 for b in self.batches if b.get("batch_id"))
        c = self.counts
        if self.finished:
            text = f"Job {self.state}: {outcome(c)} of {count_of(self.total, 'row')} in {count_of(made, 'batch')}"
            if self.message:
                text += f" [{self.message}]"
        else:
            done = c.get("ready", 0) + c.get("failed", 0) + c.get("canceled", 0)
            text = (
                f"Job {self.state}: {num(done)} of {num(self.total)} rows done ({outcome(c)}; "
                f"{num(c.get('processing', 0))} processing, {num(c.get('queued', 0))} queued, "
                f"{num(c.get('waiting', 0))} waiting); {made} of {count_of(n, 'batch')} submitted"
            )
            if self.message:
                text += f"; {self.message}"
        if self.uploads.total:
            text += f"; uploads: {self.uploads.describe()}"
        if self.error:
            text += f" [{self.error}]"
        if self.usage and self.finished:
            text += f"; usage: {self.usage}"
        return text


def settled(chunks: Sequence[Chunk], updates: Mapping[str, PollUpdate]) -> bool:
    """True when nothing more happens without the user: no chunk to send, no batch running."""
    for chunk in chunks:
        if chunk.state in ("planned", "creating"):
            return False
        if chunk.state == "created" and chunk.batch_id:
            update = updates.get(chunk.batch_id)
            if update is None and chunk.outcome is not None:
                continue  # ended before, and its results are kept: nothing to watch
            if update is None or not update.finished:
                return False
    return True


def attention_message(chunks: Sequence[Chunk], updates: Mapping[str, PollUpdate]) -> str:
    """What needs the user: chunks over the budget, uncertain or refused chunks, batches whose watch failed."""
    parts = []
    held = [c for c in chunks if c.state == "over_budget"]
    if held:
        rows = sum(len(c.custom_ids) for c in held)
        why = held[0].note or "not sent: over the budget"
        parts.append(f"{count_of(rows, 'row')} in {count_of(len(held), 'chunk')} {why}")
    for c in chunks:
        if c.state == "uncertain":
            parts.append(f"chunk {c.chunk}: {c.error or 'create uncertain'}")
        elif c.state == "create_failed":
            parts.append(f"chunk {c.chunk} was refused: {c.error}")
        elif c.state == "created" and c.batch_id:
            update = updates.get(c.batch_id)
            if update is not None and update.state == "error":
                parts.append(f"batch {c.batch_id}: {update.error}")
    return " | ".join(parts)


def _gave_up(errors: tuple[str, ...]) -> str:
    if not errors:
        return ""
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{len(errors)} uploads gave up: {first}{more}"


def project(
    chunks: Sequence[Chunk],
    updates: Mapping[str, PollUpdate],
    *,
    rows_total: int,
    scheduler_running: bool,
    message: str,
    error: str,
    cancel_requested: bool,
    active: int | None,
    max_active: int,
    manifest: str,
    updated_at: str,
    slot_poll: float = 0.0,
    uploads: UploadCounts | None = None,
    before: RowsBeforeBatches | None = None,
    usage: str = "",
) -> JobSnapshot:
    """The job as the widget shows it, from the chunks, the latest polls and the scheduler's state."""
    counts = {"ready": 0, "failed": 0, "canceled": 0, "processing": 0, "queued": 0, "waiting": 0}
    batches: list[dict[str, Any]] = []
    rate = 0.0
    running = 0
    attention = False
    intervals: list[float] = []
    for chunk in chunks:
        total = len(chunk.custom_ids)
        row: dict[str, Any] = {
            "chunk": chunk.chunk, "attempt": chunk.attempt, "batch_id": chunk.batch_id or "",
            "state": chunk.state, "status": "", "total": total, "queued": 0, "processing": 0,
            "ready": 0, "failed": 0, "canceled": 0, "eta_s": None, "error": chunk.error or "",
            "note": chunk.note or "", "resubmit_of": list(chunk.resubmit_of),
        }  # fmt: skip
        for status, n in chunk.replaces.items():
            if status in counts:
                counts[status] -= n
        if chunk.state == "created" and chunk.batch_id:
            update = updates.get(chunk.batch_id)
            batch = update.batch if update is not None else None
            ran = False  # counted as running (and so uncounted again if its watch failed)
            if batch is None and chunk.outcome is not None:
                row["status"] = str(chunk.outcome.get("status", ""))
                for k in ("queued", "processing", "ready", "failed", "canceled"):
                    n = int(chunk.outcome.get(k, 0))
                    row[k] = n
                    counts[k] += n
            elif batch is None and update is not None and update.state == "error":
                row["status"] = "unknown"  # its watch failed before it saw the batch once
            elif batch is None:
                row["status"] = "pending"
                row["queued"] = total
                counts["queued"] += total
                running += 1
                ran = True
            elif update is not None and update.last_known:  # the batch is gone: its counts are history
                row["status"] = f"last known: {batch.status.value}"
                row.update(batch.counts)
            else:
                row["status"] = batch.status.value
                for k, v in batch.counts.items():
                    row[k] = v
                    counts[k] += v
                if not batch.is_terminal:
                    running += 1
                    ran = True
                    row["eta_s"] = update.eta_s if update is not None else None
                    if update is not None and update.rate_per_min:
                        rate += update.rate_per_min
                    if update is not None and update.interval_s > 0:
                        intervals.append(update.interval_s)
            if update is not None and update.state == "error":
                row["error"] = update.error
                if batch is None or not batch.is_terminal:
                    attention = True
                    running -= 1 if ran else 0
        elif chunk.state in ("planned", "creating"):
            counts["waiting"] += total
            row["status"] = "waiting" if chunk.state == "planned" else "creating"
        else:
            row["status"] = chunk.state.replace("_", " ")
            if chunk.state != "skipped":
                attention = True
            counts["canceled" if chunk.state == "skipped" else "waiting"] += total
        batches.append(row)
    before = before or RowsBeforeBatches()
    counts["waiting"] += before.uploading
    counts["failed"] += before.failed + before.gave_up
    counts["canceled"] += before.canceled
    if before.gave_up:
        attention = True
    remaining = counts["queued"] + counts["processing"] + counts["waiting"]
    eta = remaining / rate * 60.0 if rate > 0 and remaining else (0.0 if not remaining else None)
    unsent = any(c.state in ("planned", "creating") for c in chunks) or (before.uploading > 0 and not cancel_requested)
    if error and not scheduler_running and (unsent or running):
        state = "error"
    elif running or unsent or (scheduler_running and not settled(chunks, updates)):
        if cancel_requested:
            state = "canceling"
        elif message.startswith("waiting"):
            state = "waiting"
        elif unsent:
            state = "submitting"
        else:
            state = "running"
    elif not chunks and not rows_total:
        state = "idle"
    elif cancel_requested:
        state = "canceled"
    elif attention:
        state = "attention"
    else:
        state = "done"
    shown = message if state in ("waiting", "submitting", "canceling", "running") else ""
    if state == "attention":
        shown = " | ".join(filter(None, [attention_message(chunks, updates), _gave_up(before.errors)]))
    return JobSnapshot(
        state=state,
        message=shown,
        total=rows_total,
        counts={k: max(0, v) for k, v in counts.items()},
        batches=tuple(batches),
        active=active,
        max_active=max_active,
        eta_s=eta if state not in FINISHED_STATES else None,
        error=error,
        cancel_requested=cancel_requested,
        manifest=manifest,
        updated_at=updated_at,
        interval_s=min(intervals, default=slot_poll) if state not in FINISHED_STATES else 0.0,
        uploads=uploads or UploadCounts(),
        usage=usage if state in FINISHED_STATES else "",
    )
