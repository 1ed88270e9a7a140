"""``submit``: a job from a table, with its progress; ``--wait`` for its joined results.

The job is :func:`batch_widget.submit` itself (every option is one of its keywords: see
``options``), with its manifest (by default beside the table, ``videos.csv`` →
``videos.manifest.json``): re-running the same command re-attaches to the job and sends only
the rows the manifest does not hold yet, so nothing is submitted, and no file uploaded, twice.

The job's scheduler lives on the event loop, and the account allows at most 5 active batches:
without ``--wait`` the command therefore runs until every row's upload has ended and every
chunk has been created (all batch ids recorded), which for a large table means until enough
early batches have ended to free slots.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from ..jobs import submit
from .context import EXIT_NOT_READY, EXIT_OK, PROG, Context, UsageError
from .files import check_output, read_table, write_frame
from .following import batch_ids_of, follow, job_code, job_usage, outcome_event, refused_chunks, tell_refused
from .options import submit_keywords
from .output import Output
from .render import written_payload

__all__ = ["cmd_submit", "default_manifest"]


def default_manifest(table: str) -> Path:
    """``videos.csv`` → ``videos.manifest.json`` beside it: one table, one job."""
    return Path(table).with_suffix(".manifest.json")


async def cmd_submit(ctx: Context, out: Output) -> int:
    args = ctx.args
    target = check_output(args.output) if args.output else None
    if target is not None and not args.wait:
        raise UsageError(f"-o {args.output!r} needs --wait: the results exist once every batch has ended.")
    data = read_table(args.table)
    manifest = Path(args.manifest) if args.manifest else default_manifest(args.table)
    ctx.resume_hint = (
        f"re-run the same command to resume the job (nothing is sent twice): {ctx.command_line()}; "
        f"or follow it with: {shlex.join([PROG, 'job', str(manifest)])}"
    )
    async with ctx.client() as client:
        out.clock = client.clock
        job = submit(data, manifest=manifest, client=client, schedule=ctx.schedule(), **submit_keywords(args))
        try:
            snap = await follow(job, ctx, out, until_sent=not args.wait)
            frame = await job.to_pandas(parse_json=args.parse_json, expand=args.expand) if target else None
            used = await job_usage(job) if args.wait else None
        finally:
            job.close()
    tell_refused(snap, out)
    if not args.wait:
        ids = batch_ids_of(snap)
        watch = shlex.join([PROG, "watch", *ids]) if ids else ""
        out.say(
            f"submitted {snap.total:,} rows in {len(ids)} batch(es) "
            f"({job.skipped_rows:,} rows were already in {manifest}): {' '.join(ids)}",
            {
                "event": "submitted", "manifest": str(manifest), "batch_ids": ids,
                "rows": snap.total, "skipped_rows": job.skipped_rows, "watch_command": watch,
            },
        )  # fmt: skip
        if watch:
            out.note(f"watch them with: {watch}")
        return EXIT_NOT_READY if refused_chunks(snap) else EXIT_OK
    out.say(snap.describe(), outcome_event(snap, used))
    if frame is not None and target is not None:
        await write_frame(frame, target)
        out.say(f"wrote {len(frame):,} rows to {target}", written_payload(str(target), len(frame)))
    return job_code(snap)
