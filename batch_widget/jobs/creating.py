"""Sending one chunk's create, and recovering a create whose answer was lost.

The job's scheduler decides *when* a chunk goes in; this module decides what one create does to
the chunk's record: the intent saved before the request, the batch id saved right after the
answer, a 429 or 503 waited out visibly, a 4xx refusal recorded, and an answer that never came
matched to the account's batches (:mod:`~batch_widget.jobs.recovery`) or settled by the job's
``on_uncertain`` policy. It changes the chunk and the manifest only; the job watches the batch
and tells its listeners.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from ..client import NO_RETRY, BatchClient
from ..errors import (
    APIError,
    AuthenticationError,
    BatchWidgetError,
    InvalidInputError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TransportError,
    describe_error,
)
from ..models import format_time
from .manifest import Chunk, Manifest
from .recovery import find_matches

__all__ = ["CreateContext", "Sent", "Uncertain", "UncertainCreateError", "recover_chunk", "send_create"]

Uncertain = Literal["ask", "resubmit", "skip", "raise"]

#: what one create did: ``created`` (the chunk has its batch), ``again`` (429 / 503 waited out:
#: the chunk is planned again), ``unknown`` (no sure answer: recover it), ``refused`` (a 4xx)
Sent = Literal["created", "again", "unknown", "refused"]


class UncertainCreateError(BatchWidgetError):
    """A create was started but its answer was never recorded, and no batch matches it for sure."""


@dataclass(frozen=True)
class CreateContext:
    """What a create needs from its job, taken fresh for each create (the job's settings may change).

    Parameters
    ----------
    client
        The job's client.
    manifest
        The job's manifest (saved before and after each request).
    slot_poll
        Seconds to wait after a 429 or 503 before the chunk is tried again.
    on_uncertain
        The job's policy for a create with no sure outcome.
    say
        Shows a one-line message in the job's widget.
    pause
        Waits ``seconds`` of the client's clock, or less when the job is woken.
    """

    client: BatchClient
    manifest: Manifest
    slot_poll: float
    on_uncertain: Uncertain
    say: Callable[[str], None]
    pause: Callable[[float], Awaitable[None]]


async def send_create(ctx: CreateContext, chunk: Chunk) -> Sent:
    """Create ``chunk``'s batch, recording the intent before and the batch id after the request.

    Returns what happened (:data:`Sent`); authentication and permission errors are raised with
    the chunk planned again.
    """
    rows = ctx.manifest.rows
    settings = ctx.manifest.settings
    requests = [{**rows[cid]["request"], "custom_id": cid} for cid in chunk.custom_ids]
    chunk.state = "creating"
    chunk.intent_at = format_time(ctx.client.server_now())
    chunk.error = None
    ctx.manifest.save()  # the intent, before the request
    ctx.say(f"submitting chunk {chunk.chunk} ({len(requests)} rows)")
    try:
        created = await ctx.client.create(
            analysis_mode=settings["analysis_mode"],
            model_name=settings.get("model_name") or "pegasus1.5",
            defaults=settings.get("defaults") or None,
            requests=requests,
            retry=NO_RETRY,  # a 429 at the cap is ours to wait out, visibly
        )
    except RateLimitError as exc:  # 429: no batch was made
        chunk.state, chunk.intent_at = "planned", None
        ctx.manifest.save()
        wait = max(exc.retry_after or 0.0, ctx.slot_poll)
        ctx.say(f"waiting for a free slot (the API answered 429; next try in {wait:.0f} s)")
        await ctx.pause(wait)
        return "again"
    except ServerError as exc:
        if exc.status_code == 503:  # documented: no batch was made
            chunk.state, chunk.intent_at = "planned", None
            ctx.manifest.save()
            ctx.say(f"the API is busy ({describe_error(exc)}); retrying chunk {chunk.chunk}")
            await ctx.pause(ctx.slot_poll)
            return "again"
        chunk.error = f"create answered {describe_error(exc)}"
        ctx.manifest.save()
        return "unknown"
    except (AuthenticationError, PermissionDeniedError):
        chunk.state, chunk.intent_at = "planned", None
        ctx.manifest.save()
        raise
    except (APIError, InvalidInputError) as exc:  # a 4xx refusal: nothing was created
        chunk.state = "create_failed"
        chunk.error = describe_error(exc) if isinstance(exc, APIError) else str(exc)
        ctx.manifest.save()
        return "refused"
    except TransportError as exc:  # the request may or may not have reached the API
        chunk.error = f"create got no answer ({describe_error(exc)})"
        ctx.manifest.save()
        return "unknown"
    chunk.state = "created"
    chunk.batch_id = created.batch_id
    chunk.created_at = format_time(created.created_at)
    ctx.manifest.save()  # the batch id, right after the answer
    return "created"


async def recover_chunk(ctx: CreateContext, chunk: Chunk, claimed: set[str]) -> bool:
    """Match an intent without a batch id to the account's batches, or apply ``on_uncertain``.

    ``claimed`` holds the batch ids the job's other chunks already have. Returns True when the
    chunk now has its batch (the caller watches it). With ``on_uncertain="raise"`` an unmatched
    chunk raises :class:`UncertainCreateError`; with ``"ask"`` it warns and waits for
    ``job.resolve``.
    """
    ctx.say(f"checking whether chunk {chunk.chunk}'s interrupted create made a batch")
    matches = await find_matches(
        ctx.client, chunk, claimed=claimed, analysis_mode=ctx.manifest.settings.get("analysis_mode")
    )
    if len(matches.confirmed) == 1:
        found = matches.confirmed[0]
        chunk.state, chunk.batch_id = "created", found.batch_id
        chunk.created_at = format_time(found.created_at)
        chunk.error = None
        chunk.note = (
            f"recovered after an interrupted create: batch {found.batch_id} has the same "
            f"{matches.wanted} custom_ids and was created after the intent"
        )
        ctx.manifest.save()
        return True
    why = matches.explain()
    text = (
        f"a create started at {chunk.intent_at} got no recorded answer; {why}. "
        f"Decide: job.resolve({chunk.chunk}, action='resubmit') or "
        f"job.resolve({chunk.chunk}, batch_id='...') or job.resolve({chunk.chunk}, action='skip')"
    )
    policy = ctx.on_uncertain
    if policy == "resubmit" and not matches.confirmed:
        chunk.state, chunk.intent_at = "planned", None
        chunk.note = f"resubmitted (on_uncertain='resubmit'): {why}"
        chunk.error = None
    elif policy == "skip":
        chunk.state = "skipped"
        chunk.note = f"skipped (on_uncertain='skip'): {why}"
    else:
        chunk.state = "uncertain"
        chunk.error = text
    ctx.manifest.save()
    if policy == "raise":
        raise UncertainCreateError(f"chunk {chunk.chunk}: {text}")
    if chunk.state == "uncertain":
        warnings.warn(f"batch_widget job {ctx.manifest.path.name}, chunk {chunk.chunk}: {text}", stacklevel=2)
    return False
