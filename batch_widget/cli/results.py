"""``results``: a batch's results written to a file (one row per item, or per segment).

The results stream (resumed by the client when cut) becomes a frame (``frames``) and is written
through a temporary file and a rename (``files``); the counts of what was not ready are told.
"""

from __future__ import annotations

from collections import Counter

from ..errors import APIConnectionError
from ..frames import results_to_frame, segments_to_frame
from ..models import ResultLine
from ..validation import validate_batch_id
from .context import EXIT_NOT_READY, EXIT_OK, Context
from .files import check_output, write_frame
from .output import Output
from .render import written_payload

__all__ = ["cmd_results", "counts_text"]


def counts_text(counts: Counter[str]) -> str:
    """``ready 143, failed 2``: plain numbers, most first."""
    return ", ".join(f"{status} {n:,}" for status, n in counts.most_common())


async def cmd_results(ctx: Context, out: Output) -> int:
    target = check_output(ctx.args.output)
    bid = validate_batch_id(ctx.args.batch_id)
    async with ctx.client() as client:
        out.clock = client.clock
        lines = await client.result_lines(bid)  # a cut stream is resumed by the client
    if not lines:
        raise APIConnectionError(f"the results of batch {bid} came back empty")
    if ctx.args.segments:
        frame = segments_to_frame(lines)
    else:
        frame = results_to_frame(lines, parse_json=ctx.args.parse_json, expand=ctx.args.expand)
    await write_frame(frame, target)
    out.say(f"wrote {len(frame):,} rows to {target}", written_payload(str(target), len(frame)))
    counts = Counter(line.status.value if isinstance(line, ResultLine) else "unreadable" for line in lines)
    if set(counts) == {"ready"}:
        return EXIT_OK
    out.note(f"not every item is ready: {counts_text(counts)}")
    return EXIT_NOT_READY
