"""``job MANIFEST``: a job from its manifest, followed live; or its results written; or its failures retried.

Through the public face of jobs only: :func:`batch_widget.resume_job` (which carries the job on:
chunks not sent yet are sent, unfinished uploads resume), the job's snapshots
(``add_listener``, ``snapshot()``, ``wait()``), ``to_pandas()``, ``resubmit()`` and ``close()``.

- ``job M``: the job's rows live (rows by outcome, uploads, one row per batch) until it ends;
  exit 0 when every row is ready, 1 when not, as ``watch``;
- ``job M -o FILE``: the same, then the joined table written to FILE;
- ``job M --results -o FILE``: no following: the joined table as it stands now;
- ``job M --retry``: once the job has settled (followed live while it runs), the rows whose
  newest outcome is failed or canceled go again as new batches (at most 3 attempts per row),
  then the job is followed as above.
"""

from __future__ import annotations

from pathlib import Path

from ..jobs import resume_job
from .context import Context, UsageError
from .files import check_output, write_frame
from .following import follow, job_code, job_usage, outcome_event, tell_refused
from .options import LIMITS, keywords
from .output import Output
from .render import written_payload

__all__ = ["cmd_job"]


async def cmd_job(ctx: Context, out: Output) -> int:
    args = ctx.args
    target = check_output(args.output) if args.output else None
    if args.results and target is None:
        raise UsageError("--results needs -o FILE: where to write the joined table (.parquet, .csv or .jsonl).")
    if args.results and args.retry:
        raise UsageError("--results writes the table as it stands; --retry changes it: give one of them.")
    path = Path(args.manifest)
    if not path.is_file():
        raise UsageError(f"no such manifest: {args.manifest!r}.")
    ctx.resume_hint = f"follow the job again with: {ctx.command_line()}"
    async with ctx.client() as client:
        out.clock = client.clock
        job = resume_job(path, client, schedule=ctx.schedule(), **keywords(args, only=LIMITS))
        try:
            if args.retry:
                # the job first settles (its batches end): a resubmit while its scheduler is
                # finishing could lose the new chunks when the scheduler lets the manifest go
                await follow(job, ctx, out)
                chunks = await job.resubmit()
                rows = sum(len(getattr(c, "custom_ids", ())) for c in chunks)
                out.say(
                    f"resubmitted {rows:,} failed or canceled rows in {len(chunks)} new chunk(s)"
                    if chunks else "no failed or canceled rows to resubmit",
                    {"event": "resubmitted", "manifest": str(path), "rows": rows, "chunks": len(chunks)},
                )  # fmt: skip
            snap = job.snapshot() if args.results else await follow(job, ctx, out)
            frame = await job.to_pandas(parse_json=args.parse_json, expand=args.expand) if target else None
            used = await job_usage(job)
        finally:
            job.close()
    tell_refused(snap, out)
    out.say(snap.describe(), outcome_event(snap, used))
    if frame is not None and target is not None:
        await write_frame(frame, target)
        out.say(f"wrote {len(frame):,} rows to {target}", written_payload(str(target), len(frame)))
    return job_code(snap)
