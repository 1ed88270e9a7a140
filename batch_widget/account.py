"""The account as a whole: its batches as a DataFrame, and how many are active.

``list_batches`` pages through ``GET /analyze/batches``; ``count_active`` asks for one item of
the active statuses and reads the total, which is how a job knows whether the account's cap of
5 active batches leaves it a slot.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from ._aio import run_in_thread
from .client import BatchClient, default_client
from .models import BatchStatus

__all__ = ["ACCOUNT_MAX_ACTIVE", "ACTIVE_STATUSES", "count_active", "list_batches", "list_batches_blocking"]

#: batches an account may have active at once (the API's limit)
ACCOUNT_MAX_ACTIVE = 5
ACTIVE_STATUSES = tuple(status.value for status in BatchStatus if status.is_active)


async def count_active(client: BatchClient) -> int:
    """How many batches of the account are pending, processing or canceling now (one request)."""
    page = await client.list_page(1, page_limit=1, status=ACTIVE_STATUSES)
    return page.total_results


_LIST_COLUMNS = (
    "batch_id", "status", "analysis_mode", "model_name", "total_items", "queued_items",
    "processing_items", "ready_items", "failed_items", "canceled_items", "created_at",
    "expires_at", "ended_at",
)  # fmt: skip


async def list_batches(
    client: BatchClient | None = None,
    *,
    status: str | Iterable[str] | None = None,
    analysis_mode: str | Iterable[str] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """The account's batches as a DataFrame, newest first (every page, or the first ``limit``).

    Parameters
    ----------
    status : str or list of str, optional
        Keep only these statuses (``"processing"``, ``["pending", "processing", "canceling"]``...).
    analysis_mode : str or list of str, optional
        ``"general"`` and/or ``"time_based_metadata"``.
    limit : int, optional
        Stop after this many batches.

    Any ``batch_id`` can be watched again with ``bw.watch(batch_id)``.
    """
    client = default_client(client)
    if isinstance(status, str) and "," in status:
        status = [s.strip() for s in status.split(",")]
    records: list[dict[str, Any]] = []
    async for batch in client.list(status=status, analysis_mode=analysis_mode):
        records.append({name: getattr(batch, name) for name in _LIST_COLUMNS} | {"status": batch.status.value})
        if limit is not None and len(records) >= limit:
            break
    frame: pd.DataFrame = pd.DataFrame.from_records(records, columns=list(_LIST_COLUMNS))
    for name in ("created_at", "expires_at", "ended_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    for name in _LIST_COLUMNS[4:10]:
        frame[name] = frame[name].astype("int64")
    return frame


def list_batches_blocking(client: BatchClient | None = None, **kwargs: Any) -> pd.DataFrame:
    """Blocking twin of :func:`list_batches` for scripts: blocks the calling thread while it pages."""
    client = default_client(client)

    async def run() -> pd.DataFrame:
        async with client.clone() as own:
            return await list_batches(own, **kwargs)

    return run_in_thread(run, "batch_widget list")
