"""The short commands about batches that exist: ``list``, ``status``, ``cancel``, ``delete``.

``status`` and ``cancel`` go through the notebook's model of one batch,
:class:`~batch_widget.batch_watch.BatchWatch`: ``status`` prints the watch's first snapshot
(failing polls bounded by the one give-up policy, as ``watch``), ``cancel`` is the watch's
``cancel()``. Light: none of them imports pandas or the widget stack, except ``list``, which
reads the account as a DataFrame (pandas is imported when it runs). ``watch`` is in
``watching``, ``results`` in ``results``.
"""

from __future__ import annotations

from ..batch_watch import BatchWatch
from ..validation import validate_batch_id
from ..waiting import first_status
from .context import EXIT_OK, Context, outcome_code
from .output import Output
from .render import batch_payload, batch_text

__all__ = ["cmd_cancel", "cmd_delete", "cmd_list", "cmd_status"]


async def cmd_list(ctx: Context, out: Output) -> int:
    import pandas as pd  # here: the account's batches come as a DataFrame; no other command needs it

    from ..account import list_batches

    status = ",".join(ctx.args.status) if ctx.args.status else None
    async with ctx.client() as client:
        out.clock = client.clock
        frame = await list_batches(client, status=status, analysis_mode=ctx.args.analysis_mode, limit=ctx.args.limit)
    if frame.empty:
        out.say("no batches")
    for rec in frame.to_dict("records"):
        payload = batch_payload(rec["batch_id"], {
            "status": rec["status"], "total": int(rec["total_items"]),
            **{k: int(rec[f"{k}_items"]) for k in ("ready", "failed", "canceled", "processing", "queued")},
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
        watch = BatchWatch(bid, client, schedule=ctx.schedule())
        try:
            batch = await first_status(watch, give_up_after=ctx.give_up_after(client))
        finally:
            watch.close()
    payload = batch_payload(bid, batch)
    out.say(batch_text(payload, batch.is_terminal), payload)
    return outcome_code([batch]) if batch.is_terminal else EXIT_OK


async def cmd_cancel(ctx: Context, out: Output) -> int:
    bid = validate_batch_id(ctx.args.batch_id)
    async with ctx.client() as client:
        out.clock = client.clock
        watch = BatchWatch(bid, client, schedule=ctx.schedule())
        try:
            batch = await watch.cancel()
        finally:
            watch.close()
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
