"""What the specification promises about each object, checked on the parsed models."""

from __future__ import annotations

import re
from datetime import datetime

from batch_widget.asset_model import ASSET_STATUSES, Asset
from batch_widget.errors import APIError
from batch_widget.models import Batch, BatchPage, BatchStatus, CreatedBatch, ItemStatus, ResultLine

HEX24 = re.compile(r"^[0-9a-f]{24}$")
#: the documented batch statuses (spec §3) and item statuses (§4)
BATCH_STATUSES = {s.value for s in BatchStatus}
ITEM_STATUSES = {s.value for s in ItemStatus}
#: the codes a cancel of an ended batch answers with (spec §2.5)
ENDED_CODES = {"batch_completed", "batch_canceled", "batch_expired"}


def check_created(created: CreatedBatch, custom_ids: list[str]) -> None:
    assert HEX24.match(created.batch_id), created.batch_id
    assert created.status.value in BATCH_STATUSES
    assert created.total_items == len(custom_ids)
    assert isinstance(created.created_at, datetime) and isinstance(created.expires_at, datetime)
    assert created.expires_at > created.created_at
    assert [i.custom_id for i in created.items] == custom_ids  # echoed, in request order
    assert all(isinstance(i.task_id, str) and i.task_id for i in created.items)


def check_batch(batch: Batch, *, total: int | None = None) -> None:
    assert HEX24.match(batch.batch_id), batch.batch_id
    assert batch.status.value in BATCH_STATUSES, f"undocumented batch status {batch.status.value!r}"
    counts = (batch.queued_items, batch.processing_items, batch.ready_items, batch.failed_items,
              batch.canceled_items)  # fmt: skip
    assert all(isinstance(n, int) and n >= 0 for n in counts)
    assert sum(counts) <= batch.total_items
    if total is not None:
        assert batch.total_items == total
    assert batch.analysis_mode in ("general", "time_based_metadata")
    assert isinstance(batch.created_at, datetime)
    if batch.status == BatchStatus.COMPLETED:
        assert isinstance(batch.completed_at, datetime) and sum(counts) == batch.total_items
    if batch.status == BatchStatus.CANCELED:
        assert isinstance(batch.canceled_at, datetime)


def check_page(page: BatchPage, *, limit: int) -> None:
    assert page.page >= 1 and page.total_page >= 0 and page.total_results >= len(page.batches)
    assert len(page.batches) <= limit
    for batch in page.batches:
        check_batch(batch)


def check_line(line: ResultLine, custom_ids: set[str]) -> None:
    assert line.custom_id in custom_ids
    assert line.status.value in ITEM_STATUSES, f"undocumented item status {line.status.value!r}"
    if line.status == ItemStatus.READY:
        assert line.data is not None and isinstance(line.data.text, str)
    if line.status == ItemStatus.FAILED:
        assert line.error is not None and isinstance(line.error.message, str)


def check_asset(asset: Asset, *, method: str | None = None, filename: str | None = None) -> None:
    assert HEX24.match(asset.id), asset.id
    assert asset.status in ASSET_STATUSES, f"undocumented asset status {asset.status!r}"
    assert isinstance(asset.created_at, datetime)
    if method is not None:
        assert asset.method == method
    if filename is not None:
        assert asset.filename == filename
    if asset.is_ready:
        assert asset.duration is not None and asset.duration > 0


def check_error(error: APIError, status: int, codes: set[str] | None = None) -> None:
    assert error.status_code == status, f"HTTP {error.status_code}, expected {status}"
    if codes is not None:
        assert error.code in codes, f"code {error.code!r}, expected one of {sorted(codes)}"
