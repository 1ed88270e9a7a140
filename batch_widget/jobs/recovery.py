"""After a lost create answer: which batch of the account, if any, that create made.

A create whose answer never arrived (a timeout, a crash between the request and the manifest
write) may or may not have made a batch. Its chunk's intent (the time, the custom_ids) is
matched against the account's batches: same number of items, created after the intent, and the
very same custom_ids in its results. Only a certain match is adopted; what to do otherwise is the
job's ``on_uncertain`` policy.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from ..client import BatchClient
from ..models import Batch, ResultLine, parse_time
from .manifest import Chunk

__all__ = ["INTENT_SLACK_S", "Matches", "find_matches"]

#: how far before the intent a matching batch may claim to be created (server clock granularity)
INTENT_SLACK_S = 120.0


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
