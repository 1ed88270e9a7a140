"""The job's budget: at most ``Limits.max_content_hours_total`` content hours sent, every attempt counted.

Pure rules (:func:`budget_spent`, :func:`hold_over_budget`, :func:`release`) and :class:`Budget`,
which the job's scheduler asks before each create. A chunk that would take the job past the budget
is not created: it becomes ``over_budget`` (its rows unsent, the figures in its note), and so does
every later planned chunk, and every chunk planned after it until the budget is raised (chunks go
in order). When nothing has been sent yet and the whole plan
passes the budget, the plan is refused whole: nothing is sent. Raising the budget (re-running
``submit`` or ``resume_job`` with a larger ``max_content_hours_total``) puts those chunks back to
``planned``, and the scheduler checks them again.

Hours are the rows' ``content_s``: the window or duration columns, an uploaded asset's duration,
or, for rows that name an asset, its duration looked up (one batched ``list_assets``) before the
first create. A row whose asset has no known duration counts 0 h; usage after the job says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..client import BatchClient
from ..durations import asset_durations
from .manifest import Chunk, Row

__all__ = ["Budget", "budget_spent", "chunk_hours", "hold_over_budget", "release"]

#: chunk states whose rows count as sent (a create that may have happened counts)
SPENDING = ("creating", "created", "uncertain")
_EPS = 1e-9


def chunk_hours(chunk: Chunk, rows: Mapping[str, Row]) -> float:
    """The content hours of a chunk's rows (unknown durations count 0)."""
    return sum((rows[c].content_s or 0.0) for c in chunk.custom_ids if c in rows) / 3600.0


def budget_spent(chunks: Sequence[Chunk], rows: Mapping[str, Row]) -> float:
    """Content hours sent so far: every created (or possibly created) chunk, each attempt counted."""
    return sum(chunk_hours(c, rows) for c in chunks if c.state in SPENDING)


def hold_over_budget(chunks: Sequence[Chunk], rows: Mapping[str, Row], budget: float) -> list[Chunk]:
    """Mark the planned chunks the budget does not allow ``over_budget``; the chunks changed."""
    first = next((i for i, c in enumerate(chunks) if c.state == "over_budget"), len(chunks))
    behind = [c for c in chunks[first:] if c.state == "planned"]
    for chunk in behind:  # chunks go in order: none skips ahead of one held by the budget
        chunk.over_budget(chunks[first].note or "not sent: over max_content_hours_total")
    planned = [c for c in chunks[:first] if c.state == "planned"]
    spent = budget_spent(chunks, rows)
    hours = [chunk_hours(c, rows) for c in planned]
    total = spent + sum(hours)
    if total <= budget + _EPS:
        return behind
    if spent <= _EPS:  # nothing sent yet: the plan is refused whole
        note = (f"not sent: the plan's {total:,.2f} content hours exceed max_content_hours_total={budget:g}; "
                "re-run submit with a larger figure to send it")  # fmt: skip
        for chunk in planned:
            chunk.over_budget(note)
        return planned + behind
    held: list[Chunk] = []
    for chunk, h in zip(planned, hours, strict=True):
        if held or spent + h > budget + _EPS:
            chunk.over_budget(
                f"not sent: {h:,.2f} content hours would take the job to {spent + h:,.2f} of "
                f"max_content_hours_total={budget:g}; re-run submit with a larger figure to send it"
            )
            held.append(chunk)
        else:
            spent += h
    return held + behind


def release(chunks: Sequence[Chunk]) -> list[Chunk]:
    """Every ``over_budget`` chunk back to ``planned`` (checked again before its create)."""
    out = [c for c in chunks if c.state == "over_budget"]
    for chunk in out:
        chunk.within_budget()
    return out


class Budget:
    """What the scheduler asks before a create: may this chunk go? (It records what may not.)"""

    def __init__(self, client: BatchClient, rows: Callable[[], Mapping[str, Row]],
                 chunks: Callable[[], Sequence[Chunk]], commit: Callable[..., Any]) -> None:  # fmt: skip
        self.client = client
        self._rows = rows
        self._chunks = chunks
        self._commit = commit
        self._looked: set[str] = set()  # rows whose asset was looked up (found or not): never twice

    async def allows(self, chunk: Chunk, budget: float | None) -> bool:
        """True when ``chunk`` may be created; else it (and what follows) is recorded ``over_budget``."""
        if budget is None:
            return True
        rows, chunks = self._rows(), self._chunks()
        planned = [c for ch in chunks if ch.state == "planned" for c in ch.custom_ids if c in rows]
        unknown = [rows[c] for c in planned if rows[c].content_s is None and rows[c].asset_id and c not in self._looked]
        if unknown:
            seconds = await asset_durations(self.client, [r.asset_id for r in unknown if r.asset_id])
            learned = []
            for row in unknown:
                self._looked.add(row.custom_id)
                if row.asset_id in seconds:
                    row.asset_ready(row.asset_id, seconds[row.asset_id])
                    learned.append(row)
            if learned:
                self._commit(*learned)
        held = hold_over_budget(chunks, rows, budget)
        if held:
            self._commit(*held)
        return chunk.state == "planned"
