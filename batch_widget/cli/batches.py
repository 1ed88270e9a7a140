"""The subcommands about batches that exist: ``watch``, ``list``, ``status``, ``cancel``, ``delete``, ``results``.

``watch`` goes through the same shared pollers as the widget (``BatchPoller.shared`` and a
listener), on the event loop of ``asyncio.run``; the other commands are one request each (or a
stream, for ``results``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd

from ..account import list_batches
from ..client import BatchClient
from ..errors import APIConnectionError
from ..frames import results_to_frame, segments_to_frame
from ..models import Batch, ResultLine
from ..poller import BatchPoller, PollUpdate
from ..validation import validate_batch_id
from .context import EXIT_NOT_READY, EXIT_OK, Context, UsageError, outcome_code
from .files import check_output, write_frame
from .render import Output, Row, batch_payload, batch_row

__all__ = ["cmd_cancel", "cmd_delete", "cmd_list", "cmd_results", "cmd_status", "cmd_watch", "watch_batches"]

FOOTER = "Ctrl-C stops watching (the batches keep running)"


async def tick(out: Output, client: BatchClient) -> None:
    """The footer's clock: at most one redraw a second, and none when nothing moved."""
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


def _outcome_text(batches: list[Batch]) -> str:
    ready = sum(b.ready_items for b in batches)
    total = sum(b.total_items for b in batches)
    failed = sum(b.failed_items for b in batches)
    canceled = sum(b.canceled_items for b in batches)
    statuses = ", ".join(sorted({b.status.value for b in batches}))
    return f"{len(batches)} batch(es) ended ({statuses}): {ready:,} of {total:,} items ready, {failed:,} failed, " + (
        f"{canceled:,} canceled"
    )


async def cmd_watch(ctx: Context, out: Output) -> int:
    ids = _ids(ctx.args.batch_ids)
    ctx.batch_ids = ids
    async with ctx.client() as client:
        out.clock = client.clock
        finals = await watch_batches(client, ids, out, ctx)
    out.say(_outcome_text(finals))
    return outcome_code(finals)


async def cmd_list(ctx: Context, out: Output) -> int:
    status = ",".join(ctx.args.status) if ctx.args.status else None
    async with ctx.client() as client:
        out.clock = client.clock
        frame = await list_batches(client, status=status, analysis_mode=ctx.args.analysis_mode, limit=ctx.args.limit)
    if frame.empty:
        out.say("no batches")
    for rec in frame.to_dict("records"):
        payload = batch_payload(rec["batch_id"], {
            "status": rec["status"], "total": rec["total_items"],
            **{k: rec[f"{k}_items"] for k in ("ready", "failed", "canceled", "processing", "queued")},
        })  # fmt: skip
        created = rec["created_at"]
        when = "" if pd.isna(created) else created.strftime("%Y-%m-%d %H:%M")
        done = rec["ready_items"] + rec["failed_items"] + rec["canceled_items"]
        text = (
            f"{rec['batch_id']}  {rec['status']:<10} {rec['analysis_mode']:<19} "
            f"{done:>6,}/{rec['total_items']:<6,} ready {rec['ready_items']:,}, failed {rec['failed_items']:,}  {when}"
        )
        out.say(text, payload)
    return EXIT_OK


async def cmd_status(ctx: Context, out: Output) -> int:
    bid = validate_batch_id(ctx.args.batch_id)
    async with ctx.client() as client:
        out.clock = client.clock
        batch = await client.get(bid)
    row: Row = batch_row(PollUpdate(batch_id=bid, batch=batch, state="done" if batch.is_terminal else "watching"))
    payload = dict(row.payload, watch=None)
    out.say(row.text, payload)
    return outcome_code([batch]) if batch.is_terminal else EXIT_OK


async def cmd_cancel(ctx: Context, out: Output) -> int:
    bid = validate_batch_id(ctx.args.batch_id)
    async with ctx.client() as client:
        out.clock = client.clock
        batch = await client.cancel(bid)
    message = "cancel requested: queued items are canceled, processing ones finish"
    out.say(
        f"batch {bid}: {message} (it was {batch.status.value}). Follow it with: batch-widget watch {bid}",
        batch_payload(bid, batch, message=message),
    )
    return EXIT_OK


async def cmd_delete(ctx: Context, out: Output) -> int:
    bid = validate_batch_id(ctx.args.batch_id)
    async with ctx.client() as client:
        out.clock = client.clock
        await client.delete(bid)
    out.say(f"deleted batch {bid} and its results", {"event": "deleted", "batch_id": bid})
    return EXIT_OK


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
    try:
        write_frame(frame, target)
    except (OSError, ValueError, TypeError, ImportError) as exc:
        raise UsageError(f"could not write {str(target)!r}: {exc}") from None
    out.say(
        f"wrote {len(frame):,} rows to {target}",
        {"event": "written", "path": str(target), "format": target.suffix.lower().lstrip("."), "rows": len(frame)},
    )
    statuses: list[Any] = [line.status.value for line in lines if isinstance(line, ResultLine)]
    if len(statuses) == len(lines) and all(s == "ready" for s in statuses):
        return EXIT_OK
    out.note(f"not every item is ready: {dict(pd.Series(statuses, dtype=object).value_counts())}")
    return EXIT_NOT_READY
