"""Sending one chunk's create, and recovering a create whose answer was lost.

The job's scheduler decides *when* a chunk goes in; this module decides what one create does to
the chunk's record: the intent written before the request, the batch id right after the answer,
a 429 or 503 waited out visibly, a 4xx refusal recorded, and an answer that never came matched to
the account's batches or settled by the job's ``on_uncertain`` policy. It changes the chunk and
hands it to ``commit`` (the job writes it); the job watches the batch and tells its listeners.

Matching a lost create: a create whose answer never arrived (a timeout, a crash between the
request and the record) may or may not have made a batch. Its chunk's intent (the time, the
custom_ids) is matched against the account's batches: same number of items, created after the
intent, and the very same custom_ids in its results. Only a certain match is adopted.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
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
from ..models import Batch, ResultLine, format_time, parse_time
from ..retry import may_have_created
from .limits import Uncertain
from .manifest import Chunk, Row, Settings

__all__ = ["INTENT_SLACK_S", "CreateContext", "Matches", "Sent", "UncertainCreateError", "find_matches",
           "recover_chunk", "send_create"]  # fmt: skip

#: how far before the intent a matching batch may claim to be created (server clock granularity)
INTENT_SLACK_S = 120.0

#: what one create did: ``created`` (the chunk has its batch), ``again`` (429 / 503 waited out:
#: the chunk is planned again), ``unknown`` (no sure answer: recover it), ``refused`` (a 4xx)
Sent = Literal["created", "again", "unknown", "refused"]


class UncertainCreateError(BatchWidgetError):
    """A create was started but its answer was never recorded, and no batch matches it for sure."""


@dataclass(frozen=True)
class CreateContext:
    """What a create needs from its job, taken fresh for each create.

    ``commit`` writes a changed chunk to the job's record; ``say`` shows a one-line message in the
    job's widget; ``pause`` waits ``seconds`` of the client's clock, or less when the job is woken.
    """

    client: BatchClient
    rows: Mapping[str, Row]
    settings: Settings
    slot_poll: float
    on_uncertain: Uncertain
    manifest_name: str
    commit: Callable[[Chunk], None]
    say: Callable[[str], None]
    pause: Callable[[float], Awaitable[None]]


async def send_create(ctx: CreateContext, chunk: Chunk) -> Sent:
    """Create ``chunk``'s batch, recording the intent before and the batch id after the request.

    Returns what happened (:data:`Sent`); authentication and permission errors are raised with
    the chunk planned again.
    """
    requests = [ctx.rows[cid].body() for cid in chunk.custom_ids]
    chunk.intend(format_time(ctx.client.server_now()) or "")
    ctx.commit(chunk)  # the intent, before the request
    ctx.say(f"submitting chunk {chunk.chunk} ({len(requests)} rows)")
    try:
        created = await ctx.client.create(
            analysis_mode=ctx.settings.analysis_mode, model_name=ctx.settings.model_name,
            defaults=ctx.settings.defaults or None, requests=requests,
            retry=NO_RETRY,  # a 429 at the cap is ours to wait out, visibly
        )  # fmt: skip
    except (AuthenticationError, PermissionDeniedError):
        chunk.replanned()
        ctx.commit(chunk)
        raise
    except (APIError, TransportError, InvalidInputError) as exc:
        said = describe_error(exc) if isinstance(exc, (APIError, TransportError)) else str(exc)
        if may_have_created(exc):  # no sure answer: find out what it made before anything else
            chunk.unanswered(f"create got no sure answer ({said})")
            ctx.commit(chunk)
            return "unknown"
        if isinstance(exc, (RateLimitError, ServerError, TransportError)):  # nothing made: try again later
            chunk.replanned()
            ctx.commit(chunk)
            wait = max(getattr(exc, "retry_after", None) or 0.0, ctx.slot_poll)
            busy = "waiting for a free slot (the API answered 429" if isinstance(exc, RateLimitError) else (
                f"the API could not take chunk {chunk.chunk} ({said}")  # fmt: skip
            ctx.say(f"{busy}; next try in {wait:.0f} s)")
            await ctx.pause(wait)
            return "again"
        chunk.refused(said)  # a 4xx refusal: nothing was created
        ctx.commit(chunk)
        return "refused"
    chunk.created(created.batch_id, format_time(created.created_at))
    ctx.commit(chunk)  # the batch id, right after the answer
    return "created"


async def recover_chunk(ctx: CreateContext, chunk: Chunk, claimed: set[str]) -> bool:
    """Match an intent without a batch id to the account's batches, or apply ``on_uncertain``.

    ``claimed`` holds the batch ids the job's other chunks already have. Returns True when the
    chunk now has its batch (the caller watches it). With ``on_uncertain="raise"`` an unmatched
    chunk raises :class:`UncertainCreateError`; with ``"ask"`` it warns and waits for
    ``job.resolve``.
    """
    ctx.say(f"checking whether chunk {chunk.chunk}'s interrupted create made a batch")
    matches = await find_matches(ctx.client, chunk, claimed=claimed, analysis_mode=ctx.settings.analysis_mode)
    if len(matches.confirmed) == 1:
        found = matches.confirmed[0]
        chunk.created(found.batch_id, format_time(found.created_at), note=(
            f"recovered after an interrupted create: batch {found.batch_id} has the same "
            f"{matches.wanted} custom_ids and was created after the intent"))  # fmt: skip
        ctx.commit(chunk)
        return True
    why = matches.explain()
    text = (
        f"a create started at {chunk.intent_at} got no recorded answer; {why}. "
        f"Decide: job.resolve({chunk.chunk}, action='resubmit') or "
        f"job.resolve({chunk.chunk}, batch_id='...') or job.resolve({chunk.chunk}, action='skip')"
    )
    policy = ctx.on_uncertain
    if policy == "resubmit" and not matches.confirmed:
        chunk.replanned(note=f"resubmitted (on_uncertain='resubmit'): {why}")
    elif policy == "skip":
        chunk.skipped(f"skipped (on_uncertain='skip'): {why}")
    else:
        chunk.uncertain(text)
    ctx.commit(chunk)
    if policy == "raise":
        raise UncertainCreateError(f"chunk {chunk.chunk}: {text}")
    if chunk.state == "uncertain":
        warnings.warn(f"batch_widget job {ctx.manifest_name}, chunk {chunk.chunk}: {text}", stacklevel=2)
    return False


@dataclass(frozen=True)
class Matches:
    """The batches that hold exactly the chunk's custom_ids, and how many were looked at."""

    confirmed: tuple[Batch, ...]
    candidates: int
    wanted: int

    def explain(self) -> str:
        """Why the chunk is not adopted as is (for the chunk's note and the user's decision)."""
        if self.confirmed:
            return (
                f"{len(self.confirmed)} batches ({', '.join(b.batch_id for b in self.confirmed)}) match its "
                "custom_ids; adopt one with job.resolve(chunk, batch_id=...) and cancel the other"
            )
        return (
            f"no batch on the account matches it ({self.candidates} with {self.wanted} items created after "
            "the intent, none with its custom_ids), so it was most likely never created"
        )


async def find_matches(
    client: BatchClient, chunk: Chunk, *, claimed: Collection[str], analysis_mode: str | None
) -> Matches:
    """The account's batches (newest first, down to the intent) that hold exactly ``chunk``'s rows.

    Batches already recorded by the job (``claimed``) are skipped.
    """
    intent = parse_time(chunk.intent_at) if chunk.intent_at else None
    wanted = sorted(chunk.custom_ids)
    confirmed: list[Batch] = []
    candidates = 0
    async for batch in client.list(analysis_mode=analysis_mode):
        if (
            intent is not None
            and batch.created_at is not None
            and (batch.created_at < intent - timedelta(seconds=INTENT_SLACK_S))
        ):
            break  # newest first: everything further is older than the intent
        if batch.batch_id in claimed or batch.total_items != len(wanted):
            continue
        candidates += 1
        lines = await client.result_lines(batch.batch_id)
        ids = sorted(str(ln.custom_id) for ln in lines if isinstance(ln, ResultLine))
        if ids == wanted:
            confirmed.append(batch)
    return Matches(tuple(confirmed), candidates, len(wanted))
