"""An early look at the first outputs while a batch runs, to catch a wrong prompt before it is paid for.

The results endpoint answers mid-run (unfinished items come back as ``queued`` or
``processing``), so the first finished items can be read within the first minute. :func:`peek`
streams the results of one or more batches and stops as soon as it has ``n`` finished items
(ready ones with the start of their output or their decoded structured fields, failed ones with
their error); nothing is fetched on a timer, only when asked.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .client import BatchClient
from .errors import InvalidInputError
from .models import ItemStatus, ResultLine

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PEEK_COLUMNS", "PeekRow", "peek", "peek_row", "rows_to_frame", "rows_to_trait"]

#: how much of a plain-text output is shown
OUTPUT_CHARS = 200
PEEK_COLUMNS = ("batch_id", "custom_id", "status", "output", "error")


@dataclass(frozen=True)
class PeekRow:
    """One finished item as the peek shows it: all text, cut short, never markup."""

    batch_id: str
    custom_id: str
    status: str
    output: str
    error: str


def _cut(text: str, limit: int = OUTPUT_CHARS) -> str:
    text = " ".join(text.split())  # one line: newlines and runs of spaces read as one space
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _shown_output(text: str | None) -> str:
    """A structured answer as "key: value · key: value"; plain text as its first characters."""
    if not text:
        return ""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            fields = json.loads(stripped)
        except ValueError:
            fields = None  # a truncated JSON answer: show its text
        if isinstance(fields, dict):
            shown = {k: v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in fields.items()}
            return _cut(" · ".join(f"{k}: {v}" for k, v in shown.items()))
    return _cut(text)


def peek_row(batch_id: str, line: ResultLine) -> PeekRow | None:
    """The row of a finished item (ready or failed), or None for one still queued or processing."""
    if line.status is ItemStatus.READY:
        text = line.data.text if line.data is not None else None
        return PeekRow(batch_id, line.custom_id or "", "ready", _shown_output(text), "")
    if line.status is ItemStatus.FAILED:
        error = line.error
        message = ": ".join(p for p in (error.code, error.message) if p) if error is not None else ""
        return PeekRow(batch_id, line.custom_id or "", "failed", "", _cut(message or "failed, no reason given"))
    return None


async def peek(client: BatchClient, batch_ids: Iterable[str], n: int = 5) -> list[PeekRow]:
    """The first ``n`` finished items of ``batch_ids`` (in that order), reading no further than needed.

    Each batch's results are streamed and the stream is closed as soon as ``n`` rows are in
    hand; an unreadable line is skipped (``to_pandas`` keeps it as a row; a peek need not).
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise InvalidInputError(f"n {n!r} must be a positive integer (how many finished items to show).")
    rows: list[PeekRow] = []
    for batch_id in batch_ids:
        async with contextlib.aclosing(client.results(batch_id, malformed="yield")) as stream:
            async for line in stream:
                row = peek_row(batch_id, line) if isinstance(line, ResultLine) else None
                if row is not None:
                    rows.append(row)
                    if len(rows) >= n:
                        return rows
    return rows


def rows_to_frame(rows: Sequence[PeekRow]) -> pd.DataFrame:
    """The peek as a small DataFrame (one row per finished item)."""
    import pandas as pd  # here: a watch (and the command line's `status`) imports this module without pandas

    frame: pd.DataFrame = pd.DataFrame([asdict(r) for r in rows], columns=list(PEEK_COLUMNS))
    return frame


def rows_to_trait(rows: Sequence[PeekRow]) -> list[dict[str, Any]]:
    """The peek as the widgets sync it (plain dicts of strings)."""
    return [asdict(r) for r in rows]
