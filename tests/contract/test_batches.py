"""The batch endpoints: create, list with filters, get, results, cancel, delete (each target)."""

from __future__ import annotations

import pytest

from batch_widget import BatchClient
from batch_widget.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from batch_widget.models import BatchStatus, ResultLine

from .checks import ENDED_CODES, check_batch, check_created, check_error, check_line, check_page
from .conftest import Target

PROMPT = {"prompt": {"input_text": "Answer with one word: what is shown?"}}


async def create_one(target: Target, custom_id: str) -> str:
    asset_id = await target.ready_asset()
    request = {"video": {"type": "asset_id", "asset_id": asset_id}, "custom_id": custom_id}
    created = await target.client.create(analysis_mode="general", defaults=PROMPT, requests=[request])
    target.batches.append(created.batch_id)
    check_created(created, [custom_id])
    return created.batch_id


async def test_create_get_list_results_and_delete(target: Target) -> None:
    client = target.client
    batch_id = await create_one(target, "contract-a")
    batch = await client.get(batch_id)
    check_batch(batch, total=1)
    assert batch.batch_id == batch_id and batch.analysis_mode == "general"

    # list: newest first, filters by mode and status (OR within a filter)
    page = await client.list_page(1, page_limit=5, analysis_mode="general")
    check_page(page, limit=5)
    assert batch_id in [b.batch_id for b in page.batches]
    assert all(b.analysis_mode == "general" for b in page.batches)
    other = await client.list_page(1, page_limit=50, analysis_mode="time_based_metadata")
    assert batch_id not in [b.batch_id for b in other.batches]
    ended = ["completed", "canceled", "expired"]
    async for b in client.list(status=ended, page_limit=50):
        assert b.status.value in ended

    # results mid-run: every item, each in a documented state
    lines = [ln async for ln in client.results(batch_id)]
    assert len(lines) == 1
    for line in lines:
        assert isinstance(line, ResultLine)
        check_line(line, {"contract-a"})

    await target.until(lambda: _ended(client, batch_id), "the batch ending")
    batch = await client.get(batch_id)
    check_batch(batch, total=1)
    assert batch.status == BatchStatus.COMPLETED
    lines = [ln async for ln in client.results(batch_id)]
    assert [ln.custom_id for ln in lines if isinstance(ln, ResultLine)] == ["contract-a"]
    for line in lines:
        assert isinstance(line, ResultLine) and line.status.is_terminal
        check_line(line, {"contract-a"})
    ended_page = await client.list_page(1, page_limit=50, status=["completed"])
    assert batch_id in [b.batch_id for b in ended_page.batches]

    await client.delete(batch_id)
    target.batches.remove(batch_id)
    with pytest.raises(NotFoundError) as err:
        await client.get(batch_id)
    check_error(err.value, 404)


async def test_cancel_and_the_conflicts_of_a_running_and_an_ended_batch(target: Target) -> None:
    client = target.client
    batch_id = await create_one(target, "contract-b")
    with pytest.raises(ConflictError) as err:  # delete while it runs
        await client.delete(batch_id)
    check_error(err.value, 409, {"batch_not_terminal"})
    canceled = await client.cancel(batch_id)  # 202, the batch as it was
    check_batch(canceled, total=1)
    after = await client.get(batch_id)
    assert after.status.value in ("canceling", "canceled", "completed")
    await target.until(lambda: _ended(client, batch_id), "the canceled batch ending")
    final = await client.get(batch_id)
    check_batch(final, total=1)
    assert final.status.value in ("canceled", "completed")  # an item already processing may finish
    with pytest.raises(ConflictError) as err:  # cancel an ended batch
        await client.cancel(batch_id)
    check_error(err.value, 409, ENDED_CODES)
    assert err.value.code == ("batch_canceled" if final.status == BatchStatus.CANCELED else "batch_completed")
    await client.delete(batch_id)
    target.batches.remove(batch_id)


async def test_errors_are_typed_with_their_status_and_nothing_is_made(target: Target) -> None:
    client = target.client
    with pytest.raises(NotFoundError) as err:
        await client.get("0123456789abcdef01234567")
    check_error(err.value, 404)
    asset_id = await target.ready_asset()
    request = {"video": {"type": "asset_id", "asset_id": asset_id}, "custom_id": "same"}
    before = (await client.list_page(1, page_limit=1)).total_results
    with pytest.raises(InvalidInputError, match="duplicate"):  # refused before it is sent
        await client.create(analysis_mode="general", defaults=PROMPT, requests=[request, request])
    with pytest.raises(BadRequestError) as bad:  # a query outside the documented enum: the API's 400
        await client.list_assets(asset_types=["hologram"])
    check_error(bad.value, 400)
    assert (await client.list_page(1, page_limit=1)).total_results == before
    async with BatchClient("tlk_not_a_real_key_000000000000", base_url=client.base_url, timeout=30.0) as wrong:
        with pytest.raises(AuthenticationError) as auth:
            await wrong.list_page(1)
    check_error(auth.value, 401)


async def _ended(client: BatchClient, batch_id: str) -> bool:
    return (await client.get(batch_id)).is_terminal
