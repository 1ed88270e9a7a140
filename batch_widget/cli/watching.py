"""``watch``: batches followed live until every one has ended, through the notebook's own pollers.

The same shared pollers as the widget (``BatchPoller.shared`` and a listener), on the event
loop of ``asyncio.run``; a footer clock ticks once a second (and notices a reader gone).
"""

from __future__ import annotations

import asyncio

from ..client import BatchClient
from ..models import Batch
from ..poller import BatchPoller, PollUpdate
from ..validation import validate_batch_id
from .context import Context, outcome_code
from .output import Output
from .render import batch_row

__all__ = ["FOOTER", "cmd_watch", "outcome_payload", "tick", "watch_batches"]

FOOTER = "Ctrl-C stops watching (the batches keep running)"


async def tick(out: Output, client: BatchClient) -> None:
    """The footer's clock: at most one redraw a second (none when nothing moved); a reader gone is noticed."""
    while True:
        await client.clock.sleep(1.0)
        out.tick()


async def watch_batches(client: BatchClient, batch_ids: list[str], out: Output, ctx: Context) -> list[Batch]:
    """Watch every batch until it ends; return their final snapshots.

    A batch whose polls keep failing for longer than the client's retry budget is given up
    (its transport error is raised, once every other batch has ended).
    """
    pollers = [BatchPoller.shared(client, bid, schedule=ctx.schedule()) for bid in batch_ids]
    failing_since: dict[str, float] = {}
    gave_up: dict[str, BaseException] = {}

    def show(update: PollUpdate | None = None) -> None:
        if update is not None and update.state == "retrying":
            first = failing_since.setdefault(update.batch_id, client.clock.monotonic())
            if client.clock.monotonic() - first > client.retry.budget and update.exception is not None:
                gave_up[update.batch_id] = update.exception
                BatchPoller.shared(client, update.batch_id).stop()
        elif update is not None:
            failing_since.pop(update.batch_id, None)
        out.live([batch_row(p.update) for p in pollers], FOOTER)

    for poller in pollers:
        poller.add_listener(show)
        poller.acquire()
    show()
    ticker = asyncio.ensure_future(tick(out, client))
    try:
        finals = await asyncio.gather(*(p.wait() for p in pollers), return_exceptions=True)
    finally:
        ticker.cancel()
        for poller in pollers:
            poller.remove_listener(show)
            poller.release()
        out.end_live()
    if gave_up:  # before the others: a given-up watch also ends with "stopped before any status"
        raise next(iter(gave_up.values()))
    for result in finals:
        if isinstance(result, BaseException):
            raise result
    return [r for r in finals if isinstance(r, Batch)]


def _ids(raw: list[str]) -> list[str]:
    return list(dict.fromkeys(validate_batch_id(b) for b in raw))  # each once, in the order given


def outcome_payload(batches: list[Batch]) -> dict[str, object]:
    """The ``outcome`` event: the items of every batch watched, and the line a person reads."""
    ready = sum(b.ready_items for b in batches)
    total = sum(b.total_items for b in batches)
    failed = sum(b.failed_items for b in batches)
    canceled = sum(b.canceled_items for b in batches)
    statuses = ", ".join(sorted({b.status.value for b in batches}))
    message = (
        f"{len(batches)} batch(es) ended ({statuses}): {ready:,} of {total:,} items ready, {failed:,} failed, "
        f"{canceled:,} canceled"
    )
    return {"event": "outcome", "ready": ready, "failed": failed, "canceled": canceled, "total": total,
            "message": message}  # fmt: skip


async def cmd_watch(ctx: Context, out: Output) -> int:
    ids = _ids(ctx.args.batch_ids)
    ctx.batch_ids = ids
    async with ctx.client() as client:
        out.clock = client.clock
        finals = await watch_batches(client, ids, out, ctx)
    outcome = outcome_payload(finals)
    out.say(str(outcome["message"]), outcome)
    return outcome_code(finals)
