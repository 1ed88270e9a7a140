"""``watch``: batches followed live until every one has ended, on the notebook's own models.

One :class:`~batch_widget.batch_watch.BatchWatch` per batch (the model behind the notebook's
widget) on the event loop of ``asyncio.run``: its snapshots become the live rows, its ``wait()``
the end. A batch whose polls keep failing is given up by the one policy a notebook's wait has
too (:class:`~batch_widget.waiting.GiveUp`), bounded here by ``--give-up-after`` (default: the
client's retry budget). A footer clock ticks once a second (and notices a reader gone).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ..batch_watch import BatchWatch
from ..client import BatchClient
from ..errors import BatchWidgetError
from ..models import Batch
from ..validation import validate_batch_id
from ..waiting import GiveUp
from .context import Context, outcome_code
from .output import Output
from .render import batch_row

if TYPE_CHECKING:
    from ..usage import Usage

__all__ = ["FOOTER", "cmd_watch", "outcome_payload", "tick", "watch_batches"]

log = logging.getLogger("batch_widget.cli")

FOOTER = "Ctrl-C stops watching (the batches keep running)"


async def tick(out: Output, client: BatchClient) -> None:
    """The footer's clock: at most one redraw a second (none when nothing moved); a reader gone is noticed."""
    while True:
        await client.clock.sleep(1.0)
        out.tick()


async def watch_batches(
    client: BatchClient, batch_ids: list[str], out: Output, ctx: Context, *, usage: bool = False
) -> tuple[list[Batch], Usage | None]:
    """Watch every batch until it ends; return their final snapshots (and, with ``usage``, what they used).

    A batch whose polls keep failing for ``ctx.give_up_after(client)`` seconds is given up (its
    polling stops and its last error is raised, once every other batch has ended).
    """
    give_up_after = ctx.give_up_after(client)
    watches = [BatchWatch(bid, client, schedule=ctx.schedule()) for bid in batch_ids]
    # each bound listens before the rows do: a watch given up is drawn stopped, never once more as retrying
    bounds = [GiveUp(w, give_up_after) for w in watches]

    def show(_: object = None) -> None:
        out.live([batch_row(w.snapshot().update) for w in watches], FOOTER)  # each watch as it is now

    for w in watches:
        w.add_listener(show)
    show()
    ticker = asyncio.ensure_future(tick(out, client))
    try:
        finals = await asyncio.gather(
            *(b.until(w.wait()) for b, w in zip(bounds, watches, strict=True)), return_exceptions=True
        )
        used = await _usage(client, watches) if usage and all(isinstance(f, Batch) for f in finals) else None
    finally:
        ticker.cancel()
        for b, w in zip(bounds, watches, strict=True):
            b.close()
            w.remove_listener(show)
            w.close()
        out.end_live()
    for error in [b.error for b in bounds if b.error is not None] + list(finals):
        if isinstance(error, BaseException):  # a watch given up first, then any other error
            raise error
    return [r for r in finals if isinstance(r, Batch)], used


async def _usage(client: BatchClient, watches: list[BatchWatch]) -> Usage | None:
    """What the ended batches used, together (their results read through each watch); ``None`` when it
    cannot be measured: the outcome stands without it."""
    import pandas as pd

    from ..usage import measure_usage

    try:
        frames = [(await w.to_pandas()).assign(batch_id=w.batch_id) for w in watches]
        return await measure_usage(client, pd.concat(frames, ignore_index=True))
    except BatchWidgetError as exc:
        log.info("could not measure the batches' usage (%s)", exc)
        return None


def _ids(raw: list[str]) -> list[str]:
    return list(dict.fromkeys(validate_batch_id(b) for b in raw))  # each once, in the order given


def outcome_payload(batches: list[Batch], usage: Usage | None = None) -> dict[str, object]:
    """The ``outcome`` event: the items of every batch watched, what they used, and the line a person reads."""
    ready = sum(b.ready_items for b in batches)
    total = sum(b.total_items for b in batches)
    failed = sum(b.failed_items for b in batches)
    canceled = sum(b.canceled_items for b in batches)
    statuses = ", ".join(sorted({b.status.value for b in batches}))
    message = (
        f"{len(batches)} batch(es) ended ({statuses}): {ready:,} of {total:,} items ready, {failed:,} failed, "
        f"{canceled:,} canceled"
    )
    if usage is not None:
        message += f"; usage: {usage.describe()}"
    return {"event": "outcome", "ready": ready, "failed": failed, "canceled": canceled, "total": total,
            "usage": usage.to_json() if usage is not None else None, "message": message}  # fmt: skip


async def cmd_watch(ctx: Context, out: Output) -> int:
    ids = _ids(ctx.args.batch_ids)
    ctx.batch_ids = ids
    async with ctx.client() as client:
        out.clock = client.clock
        finals, used = await watch_batches(client, ids, out, ctx, usage=True)
    outcome = outcome_payload(finals, used)
    out.say(str(outcome["message"]), outcome)
    return outcome_code(finals)
