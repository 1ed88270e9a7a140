"""``results``: a batch's results written to a file (one row per item, or per segment).

Through the notebook's model of one batch, :class:`~batch_widget.batch_watch.BatchWatch`: its
first status (failing polls bounded as in ``watch``), then its ``to_pandas()`` or
``to_segments()``, the one results path (a cut stream resumed, an unreadable line kept as a row
with a ``note``, every item of the batch a row); the frame is written through a temporary file
and a rename (``files``). The exit code comes from the batch's counts, as ``status``'s does;
items that are not ready are told, and so are rows without a readable results line (exit 1) or,
with ``--segments``, ready items without a segment in the file.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..batch_watch import BatchWatch
from ..errors import APIConnectionError
from ..frames.lines import NOTE_MISSING
from ..validation import validate_batch_id
from ..waiting import first_status
from .context import EXIT_NOT_READY, EXIT_OK, Context, outcome_code
from .files import check_output, write_frame
from .output import Output
from .render import written_payload

__all__ = ["cmd_results", "counts_text"]


def counts_text(counts: Mapping[str, int]) -> str:
    """``ready 143, failed 2``: plain numbers, most first, none of the zeros."""
    ranked = sorted(((n, status) for status, n in counts.items() if n), key=lambda c: -c[0])
    return ", ".join(f"{status} {n:,}" for n, status in ranked)


async def cmd_results(ctx: Context, out: Output) -> int:
    target = check_output(ctx.args.output)
    bid = validate_batch_id(ctx.args.batch_id)
    async with ctx.client() as client:
        out.clock = client.clock
        watch = BatchWatch(bid, client, schedule=ctx.schedule())
        try:
            # the batch's counts first: the exit code, and every item a row of the frame (total_items)
            batch = await first_status(watch, give_up_after=ctx.give_up_after(client))
            if ctx.args.segments:
                frame = await watch.to_segments()
            else:
                frame = await watch.to_pandas(parse_json=ctx.args.parse_json, expand=ctx.args.expand)
        finally:
            watch.close()
    unread = 0
    if ctx.args.segments:
        with_segments = frame["custom_id"].nunique() if len(frame) else 0
        if with_segments < batch.ready_items:  # an unreadable line, or an answer without segments
            out.note(f"{with_segments:,} of {batch.ready_items:,} ready items have segments in the file")
    else:
        no_status = frame["status"].isna()
        if len(frame) and bool((frame.loc[no_status, "note"] == NOTE_MISSING).sum() == len(frame)):
            raise APIConnectionError(f"the results of batch {bid} came back empty")
        unread = int(no_status.sum())
    await write_frame(frame, target)
    out.say(f"wrote {len(frame):,} rows to {target}", written_payload(str(target), len(frame)))
    code = outcome_code([batch])
    if code != EXIT_OK:
        out.note(f"not every item is ready: {counts_text(batch.counts)}")
    if unread:
        out.note(f"{unread:,} row(s) have no readable results line: see their note")
        return EXIT_NOT_READY
    return code
