"""A job's progress on the terminal, shared by ``submit`` and ``job``: its rows live, then its end.

Through the job's public face only (``add_listener``, ``snapshot()``, ``wait()``): each snapshot
becomes the live rows (the job, its uploads, one row per chunk), and what a person must know at
the end (chunks that were refused or are uncertain) is read from the last snapshot.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ..errors import BatchWidgetError
from .context import EXIT_NOT_READY, EXIT_OK, Context
from .output import Output
from .render import job_rows
from .watching import FOOTER, tick

if TYPE_CHECKING:
    from ..jobs import Job, JobSnapshot
    from ..usage import Usage

log = logging.getLogger("batch_widget.cli")

__all__ = ["all_sent", "batch_ids_of", "follow", "job_code", "job_usage", "outcome_event", "refused_chunks",
           "tell_refused"]  # fmt: skip

#: chunk states that need the user (a refused or uncertain create): the job is not all sent
_NEEDS_USER = ("create_failed", "uncertain")


def batch_ids_of(snap: JobSnapshot) -> list[str]:
    """The batches created so far, in chunk order."""
    return [str(b["batch_id"]) for b in snap.batches if b.get("batch_id")]


def all_sent(snap: JobSnapshot) -> bool:
    """Nothing left to create: every chunk created (or refused), no row waiting for its upload."""
    if snap.finished:
        return True
    unsent = any(b.get("state") in ("planned", "creating") for b in snap.batches)
    return not unsent and not snap.uploads.uploading and not snap.uploads.processing


def refused_chunks(snap: JobSnapshot) -> list[dict[str, Any]]:
    """The chunks whose create was refused or is uncertain."""
    return [b for b in snap.batches if b.get("state") in _NEEDS_USER]


def job_code(snap: JobSnapshot) -> int:
    """0 when the job is done with every row ready, else 1 (as ``watch``)."""
    all_ready = snap.state == "done" and snap.counts.get("ready", 0) == snap.total
    return EXIT_OK if all_ready and not refused_chunks(snap) else EXIT_NOT_READY


async def _until_sent(job: Job) -> JobSnapshot:
    """Wait until no chunk is left to create (or the job has ended, or failed: that raises)."""
    sent = asyncio.Event()

    def check(snap: JobSnapshot) -> None:
        if all_sent(snap):
            sent.set()

    job.add_listener(check)
    check(job.snapshot())
    done = asyncio.ensure_future(job.wait())
    waiter = asyncio.ensure_future(sent.wait())
    try:
        await asyncio.wait({done, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        job.remove_listener(check)
        waiter.cancel()
    if done.done():
        return done.result()
    done.cancel()
    return job.snapshot()


async def follow(job: Job, ctx: Context, out: Output, *, until_sent: bool = False) -> JobSnapshot:
    """Show the job live until it ends (or, with ``until_sent``, until every batch is created)."""

    def show(snap: JobSnapshot) -> None:
        ctx.batch_ids = batch_ids_of(snap)
        out.live(job_rows(snap), FOOTER)

    job.add_listener(show)
    show(job.snapshot())
    ticker = asyncio.ensure_future(tick(out, job.client))
    try:
        return await (_until_sent(job) if until_sent else job.wait())
    finally:
        ticker.cancel()
        job.remove_listener(show)
        out.end_live()
        ctx.batch_ids = batch_ids_of(job.snapshot())


def tell_refused(snap: JobSnapshot, out: Output) -> None:
    """A line per chunk that was not submitted, and why."""
    for b in refused_chunks(snap):
        out.note(f"chunk {b['chunk']} ({b['total']} rows) was not submitted: {b['state']}: {b.get('error') or ''}")


def outcome_event(snap: JobSnapshot, usage: Usage | None = None) -> dict[str, Any]:
    """The ``outcome`` event of a job: its rows by outcome, what it used (``null`` until it ended),
    and the line a person reads."""
    c = snap.counts
    return {"event": "outcome", "ready": c.get("ready", 0), "failed": c.get("failed", 0),
            "canceled": c.get("canceled", 0), "total": snap.total,
            "usage": usage.to_json() if usage is not None else None, "message": snap.describe()}  # fmt: skip


async def job_usage(job: Job) -> Usage | None:
    """What an ended job used (``None`` while it runs, or when it cannot be measured: the outcome stands)."""
    if not job.finished:
        return None
    try:
        return await job.usage()
    except BatchWidgetError as exc:
        log.info("could not measure the job's usage (%s)", exc)
        return None
