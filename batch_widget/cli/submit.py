"""``submit``: a job from a table, with its progress; ``--wait`` for its joined results.

The job is :func:`batch_widget.submit` itself, with its manifest (by default beside the table,
``videos.csv`` → ``videos.manifest.json``): re-running the same command re-attaches to the job
and sends only the rows the manifest does not hold yet, so nothing is submitted twice.

The job's scheduler lives on the event loop, and the account allows at most 5 active batches:
without ``--wait`` the command therefore runs until every chunk has been created (all batch ids
recorded), which for a large table means until enough early batches have ended to free slots.
"""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

from ..jobs import Job, JobSnapshot, submit
from .batches import FOOTER, tick
from .context import EXIT_NOT_READY, EXIT_OK, PROG, Context, UsageError
from .files import check_output, read_table, write_frame
from .render import Output, job_rows

__all__ = ["cmd_submit", "default_manifest"]

#: chunk states that need the user (a refused or uncertain create): the job is not all sent
_NEEDS_USER = ("create_failed", "uncertain")


def default_manifest(table: str) -> Path:
    """``videos.csv`` → ``videos.manifest.json`` beside it: one table, one job."""
    return Path(table).with_suffix(".manifest.json")


def _all_sent(job: Job) -> bool:
    return all(c.state not in ("planned", "creating") for c in job.chunks)


async def _until_sent(job: Job) -> JobSnapshot:
    """Wait until no chunk is left to create (or the job has ended, or failed: that raises)."""
    sent = asyncio.Event()

    def check(_: JobSnapshot) -> None:
        if _all_sent(job):
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


async def cmd_submit(ctx: Context, out: Output) -> int:
    args = ctx.args
    target = check_output(args.output) if args.output else None
    if target is not None and not args.wait:
        raise UsageError(f"-o {args.output!r} needs --wait: the results exist once every batch has ended.")
    data = read_table(args.table)
    manifest = Path(args.manifest) if args.manifest else default_manifest(args.table)
    ctx.resume_hint = f"re-run the same command to resume the job (nothing is sent twice): {ctx.command_line()}"
    async with ctx.client() as client:
        out.clock = client.clock
        job = submit(
            data, asset=args.video, prompt=args.prompt, key=args.key, manifest=manifest, client=client,
            schedule=ctx.schedule(), chunk_size=args.chunk_size, max_active=args.max_active,
        )  # fmt: skip

        def show(snap: JobSnapshot) -> None:
            ctx.batch_ids = job.batch_ids
            out.live(job_rows(snap), FOOTER)

        job.add_listener(show)
        show(job.snapshot())
        ticker = asyncio.ensure_future(tick(out, client))
        try:
            snap = await (job.wait() if args.wait else _until_sent(job))
            frame = await job.to_pandas(parse_json=args.parse_json, expand=args.expand) if target else None
        finally:
            ticker.cancel()
            job.remove_listener(show)
            out.end_live()
            ctx.batch_ids = job.batch_ids
            job.close()
    refused = [c for c in job.chunks if c.state in _NEEDS_USER]
    for chunk in refused:
        out.note(f"chunk {chunk.chunk} ({len(chunk.custom_ids)} rows) was not submitted: {chunk.state}: {chunk.error}")
    if not args.wait:
        watch = shlex.join([PROG, "watch", *job.batch_ids]) if job.batch_ids else ""
        out.say(
            f"submitted {len(job.manifest.rows):,} rows in {len(job.batch_ids)} batch(es) "
            f"({job.skipped_rows:,} rows were already in {manifest}): {' '.join(job.batch_ids)}",
            {
                "event": "submitted", "manifest": str(manifest), "batch_ids": job.batch_ids,
                "rows": len(job.manifest.rows), "skipped_rows": job.skipped_rows, "watch_command": watch,
            },
        )  # fmt: skip
        if watch:
            out.note(f"watch them with: {watch}")
        return EXIT_NOT_READY if refused else EXIT_OK
    out.say(snap.describe())
    if frame is not None and target is not None:
        write_frame(frame, target)
        out.say(
            f"wrote {len(frame):,} rows to {target}",
            {"event": "written", "path": str(target), "format": target.suffix.lower().lstrip("."), "rows": len(frame)},
        )
    all_ready = snap.state == "done" and snap.counts.get("ready", 0) == snap.total
    return EXIT_OK if all_ready and not refused else EXIT_NOT_READY
