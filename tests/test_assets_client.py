"""BatchClient's assets methods against the simulator: uploads (direct, URL, multipart), waits, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from batch_widget import BatchClient
from batch_widget.assets import UPLOAD_TAG, MultipartState
from batch_widget.errors import InvalidInputError, NotFoundError
from batch_widget.simulator import ManualClock, Simulator

from .conftest import SECRET_KEY, VirtualTime


class Recording(httpx.AsyncHTTPTransport):
    """Records every request's method, URL and whether it carried the API key."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, bool]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append((request.method, str(request.url), "x-api-key" in request.headers))
        return await super().handle_async_request(request)


@pytest.fixture
def usim() -> Iterator[Simulator]:
    with Simulator(
        api_key=SECRET_KEY, seed=5, clock=ManualClock(), chunk_size=1000, asset_processing_seconds=(10, 30),
        failed_uploads=["broken"],
    ) as s:  # fmt: skip
        yield s


@pytest.fixture
def recording() -> Recording:
    return Recording()


@pytest.fixture
async def uclient(usim: Simulator, recording: Recording) -> AsyncIterator[BatchClient]:
    transport = recording
    async with BatchClient(SECRET_KEY, base_url=usim.base_url, timeout=5.0, clock=VirtualTime(usim),
                           transport=transport) as c:  # fmt: skip
        c.direct_upload_limit = 2000
        yield c


def video(tmp_path: Path, name: str, size: int) -> Path:
    p = tmp_path / name
    p.write_bytes(bytes(i % 251 for i in range(size)))
    return p


def chunk_puts(usim: Simulator) -> int:
    return int(usim.stats["requests"].get("chunk", 0))


async def test_url_and_direct_uploads_become_ready_with_durations(
    usim: Simulator, uclient: BatchClient, tmp_path: Path
) -> None:
    a = await uclient.create_asset(url="https://cdn.example.com/clips/ep-1.mp4?sig=x", user_metadata={"show": "am"})
    b = await uclient.create_asset(file=video(tmp_path, "small.mp4", 1500), filename="renamed.mp4")
    assert a.status == b.status == "processing" and a.filename == "ep-1.mp4" and b.filename == "renamed.mp4"
    assert a.user_metadata["show"] == "am" and UPLOAD_TAG in a.user_metadata
    done = await uclient.wait_ready([a.id, b.id], poll_interval=5)
    assert all(x.is_ready and x.content_seconds and x.content_seconds > 0 for x in done.values())
    assert done[b.id].size == 1500 and done[b.id].method == "direct"


async def test_a_failed_asset_is_returned_with_its_message(uclient: BatchClient) -> None:
    a = await uclient.create_asset(url="https://cdn.example.com/broken.mp4")
    got = (await uclient.wait_ready([a.id]))[a.id]
    assert got.is_failed and got.error_message and got.content_seconds is None


async def test_list_reads_every_page_with_filters_and_delete_removes(uclient: BatchClient) -> None:
    made = [await uclient.create_asset(url=f"https://cdn.example.com/list-{i:02d}.mp4") for i in range(55)]
    await uclient.create_asset(url="https://cdn.example.com/other.mp4")
    listed = await uclient.list_assets(filename="LIST-")
    assert {a.id for a in listed} == {a.id for a in made}
    some = await uclient.list_assets(asset_ids=[m.id for m in made[:3]])
    assert {a.id for a in some} == {m.id for m in made[:3]}
    await uclient.delete_asset(made[0].id)
    with pytest.raises(NotFoundError) as err:
        await uclient.get_asset(made[0].id)
    assert err.value.code == "resource_not_exist"  # the flat {code, message} body is read


async def test_a_large_file_goes_multipart_streamed_without_the_key_to_storage(
    usim: Simulator, uclient: BatchClient, recording: Recording, tmp_path: Path
) -> None:
    sent: list[int] = []
    path = video(tmp_path, "long.mp4", 5500)
    asset = await uclient.create_asset(file=path, on_bytes=sent.append)
    assert asset.method == "multipart" and sum(sent) == 5500 and chunk_puts(usim) == 6
    storage = [s for s in recording.seen if "/_storage/" in s[1]]
    assert len(storage) == 6 and not any(has_key for _, _, has_key in storage)
    ready = (await uclient.wait_ready([asset.id]))[asset.id]
    assert ready.is_ready and ready.size == 5500


async def test_a_cut_chunk_upload_is_retried_with_a_fresh_single_use_url(
    usim: Simulator, uclient: BatchClient, tmp_path: Path
) -> None:
    usim.add_fault("chunk:drop:after=2:times=2")
    asset = await uclient.create_asset(file=video(tmp_path, "cut.mp4", 4200))
    assert chunk_puts(usim) == 5 + 2  # two cut PUTs, each re-sent once with a fresh URL
    assert usim.stats["requests"].get("upload_urls", 0) >= 2
    assert (await uclient.wait_ready([asset.id]))[asset.id].is_ready


async def test_a_broken_upload_resumes_from_the_last_confirmed_chunk(
    usim: Simulator, uclient: BatchClient, tmp_path: Path
) -> None:
    path = video(tmp_path, "resume.mp4", 5500)
    saved: list[dict[str, object]] = []
    usim.add_fault("chunk:drop:after=3:times=forever")
    with pytest.raises(Exception):  # noqa: B017 - the transport error of the last attempt
        await uclient.create_asset(file=path, on_state=lambda s: saved.append(s.to_dict()))
    state = MultipartState.from_dict(saved[-1])
    assert state.done == {1, 2, 3}
    usim.clear_faults()
    before = chunk_puts(usim)
    asset = await uclient.create_asset(file=path, multipart_state=state)
    assert asset.id == state.asset_id and chunk_puts(usim) - before == 3  # chunks 4, 5, 6 only
    assert len(usim.assets.sessions()) == 1


async def test_a_create_whose_answer_was_lost_is_found_by_its_tag_not_made_twice(
    usim: Simulator, uclient: BatchClient
) -> None:
    usim.add_fault("asset_create:drop_mid_response")  # the asset is made, the answer cut
    asset = await uclient.create_asset(url="https://cdn.example.com/once.mp4")
    assert [a.id for a in await uclient.list_assets(filename="once.mp4")] == [asset.id]
    usim.add_fault("asset_create:drop")  # nothing made: a second create is right
    await uclient.create_asset(url="https://cdn.example.com/twice.mp4")
    assert len(await uclient.list_assets(filename="twice.mp4")) == 1


async def test_429_on_create_waits_for_retry_after(tmp_path: Path) -> None:
    with Simulator(api_key=SECRET_KEY, clock=ManualClock(), asset_creates_per_minute=2) as s:
        vt = VirtualTime(s)
        async with BatchClient(SECRET_KEY, base_url=s.base_url, clock=vt) as c:
            for i in range(5):
                await c.create_asset(url=f"https://cdn.example.com/r{i}.mp4")
        assert s.stats["responses"].get("429", 0) >= 2 and sum(vt.slept) >= 60


async def test_bad_files_are_refused_before_any_request(usim: Simulator, uclient: BatchClient, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"nope\.mp4"):
        await uclient.create_asset(file=tmp_path / "nope.mp4")
    with pytest.raises(InvalidInputError, match="url="):
        await uclient.create_asset(url="ftp://x/y.mp4")
    assert usim.stats["requests_total"] == 0
