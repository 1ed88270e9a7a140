"""The asset endpoints: create from a URL, direct upload, multipart, get, list, delete (each target)."""

from __future__ import annotations

import pytest

from batch_widget.errors import APIError, BadRequestError, NotFoundError
from batch_widget.models import BatchStatus

from .checks import check_asset, check_error
from .conftest import Target


async def delete_and_check_gone(target: Target, asset_id: str) -> None:
    await target.client.delete_asset(asset_id)
    target.assets.remove(asset_id)
    with pytest.raises((NotFoundError, BadRequestError)) as err:  # spec Q4: 404 likely, 400 declared
        await target.client.get_asset(asset_id)
    assert isinstance(err.value, APIError) and err.value.status_code in (400, 404)


async def test_an_asset_from_a_url_is_processed_listed_and_deleted(target: Target) -> None:
    target.need(target.video_url, "BW_LIVE_VIDEO_URL")
    assert target.video_url is not None
    client = target.client
    asset = await client.create_asset(url=target.video_url, user_metadata={"suite": "contract"})
    target.assets.append(asset.id)
    check_asset(asset, method="url")
    got = await client.get_asset(asset.id)
    check_asset(got, method="url")
    assert got.id == asset.id and got.user_metadata.get("suite") == "contract"
    done = await client.wait_ready([asset.id], poll_interval=target.poll, timeout=target.timeout)
    ready = done[asset.id]
    assert ready.status == "ready"
    check_asset(ready, method="url")
    listed = await client.list_assets(asset_ids=[asset.id])
    assert [a.id for a in listed] == [asset.id]
    for a in listed:
        check_asset(a)
    assert asset.id in [a.id for a in await client.list_assets(asset_types=["video"], filename=asset.filename)]
    await delete_and_check_gone(target, asset.id)


async def test_a_direct_upload_keeps_its_name_and_metadata(target: Target) -> None:
    target.need(target.video_file, "BW_LIVE_VIDEO_FILE")
    assert target.video_file is not None
    client = target.client
    sent: list[int] = []
    asset = await client.create_asset(file=target.video_file, user_metadata={"n": 1}, on_bytes=sent.append)
    target.assets.append(asset.id)
    check_asset(asset, method="direct", filename=target.video_file.name)
    assert sum(sent) == target.video_file.stat().st_size
    done = await client.wait_ready([asset.id], poll_interval=target.poll, timeout=target.timeout)
    check_asset(done[asset.id], method="direct", filename=target.video_file.name)
    assert done[asset.id].user_metadata.get("n") == 1
    await delete_and_check_gone(target, asset.id)


async def test_a_multipart_upload_sends_every_byte_once_and_becomes_an_asset(target: Target) -> None:
    target.need(target.multipart_file, "BW_LIVE_VIDEO_FILE")
    assert target.multipart_file is not None and target.direct_limit is not None
    client = target.client
    client.direct_upload_limit = target.direct_limit
    size = target.multipart_file.stat().st_size
    sent: list[int] = []
    states: list[int] = []
    asset = await client.create_asset(
        file=target.multipart_file, on_bytes=sent.append, on_state=lambda s: states.append(len(s.done))
    )
    target.assets.append(asset.id)
    check_asset(asset, filename=target.multipart_file.name)
    assert sum(sent) == size and states[-1] == len(sent) >= 1  # each chunk confirmed once, in order
    if target.name == "sim":
        assert len(sent) == 4  # 3,500 bytes in the session's 1,000-byte chunks
    done = await client.wait_ready([asset.id], poll_interval=target.poll, timeout=target.timeout)
    ready = done[asset.id]
    assert ready.status == "ready"
    check_asset(ready, filename=target.multipart_file.name)
    await delete_and_check_gone(target, asset.id)


async def test_a_batch_naming_an_asset_not_yet_ready_is_refused(target: Target) -> None:
    target.need(target.video_url, "BW_LIVE_VIDEO_URL")
    assert target.video_url is not None
    client = target.client
    asset = await client.create_asset(url=target.video_url)
    target.assets.append(asset.id)
    if asset.is_terminal:
        pytest.skip(f"{target.name}: the asset was {asset.status} at once; nothing to check")
    request = {"video": {"type": "asset_id", "asset_id": asset.id}}
    with pytest.raises(APIError) as err:
        created = await client.create(analysis_mode="general", requests=[request],
                                      defaults={"prompt": {"input_text": "?"}})  # fmt: skip
        target.batches.append(created.batch_id)
    check_error(err.value, 409)
    assert not [b async for b in client.list(status=[s.value for s in BatchStatus if s.is_active])
                if b.total_items == 1 and b.batch_id in target.batches]  # fmt: skip
    await delete_and_check_gone(target, asset.id)
