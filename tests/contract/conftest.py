"""The contract suite's targets: the simulator always, the real API when asked for.

Every check in this folder is written once against a :class:`~batch_widget.BatchClient` and runs
against each target of the ``target`` fixture:

- ``sim``: the simulator on 127.0.0.1 with a manual clock (the client's sleeps move it), run by
  every ``pytest`` run;
- ``live``: the real TwelveLabs API, only with ``TWELVELABS_API_KEY`` and ``BW_LIVE=1`` set
  (skipped otherwise, saying so). It is kept cheap: one-item batches, canceled or deleted at the
  end, and every asset made is deleted. It needs a video to upload:

  - ``BW_LIVE_VIDEO_URL``: a direct http(s) link to a short video (URL uploads, and the asset
    the batch checks name);
  - ``BW_LIVE_VIDEO_FILE``: a short local video (direct and multipart uploads; the multipart
    check lowers the client's direct limit so that the file goes in several chunks);
  - optionally ``BW_LIVE_ASSET_ID``: a ready asset to name in batches instead of uploading one.

  A check whose input is not given is skipped with a reason naming the variable.

The checks are about what the specification promises (fields present and typed, statuses in the
documented sets, errors typed with their HTTP status and code), never about simulator details.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from batch_widget import BatchClient
from batch_widget.errors import APIError, ConflictError, TransportError
from batch_widget.simulator import ManualClock, Simulator

from ..conftest import SECRET_KEY, virtual_client

LIVE = bool(os.environ.get("TWELVELABS_API_KEY")) and os.environ.get("BW_LIVE") == "1"
LIVE_REASON = "live API checks run only with TWELVELABS_API_KEY and BW_LIVE=1 set"

#: simulated sizes: a "file" of 1,500 bytes goes direct; 3,500 bytes go in four 1,000-byte chunks
SIM_DIRECT_LIMIT = 2000
SIM_CHUNK = 1000


@dataclass
class Target:
    """One API to check: its client, what to upload, how long to wait, and what to clean up."""

    name: str
    client: BatchClient
    tmp: Path
    poll: float
    timeout: float
    video_url: str | None = None
    video_file: Path | None = None
    multipart_file: Path | None = None
    direct_limit: int | None = None  # the client's direct limit for the multipart check
    asset_id: str | None = None
    batches: list[str] = field(default_factory=list)
    assets: list[str] = field(default_factory=list)

    def need(self, value: object, variable: str) -> None:
        """Skip the check when the live target lacks an input."""
        if value is None:
            pytest.skip(f"{self.name}: set {variable} to run this check")

    async def until(self, check: Callable[[], Awaitable[bool]], what: str) -> None:
        """Poll ``check`` on the client's clock until it is true, or fail after ``timeout`` seconds."""
        start = self.client.clock.monotonic()
        while not await check():
            if self.client.clock.monotonic() - start > self.timeout:
                pytest.fail(f"{self.name}: {what} did not happen within {self.timeout:g} s")
            await self.client.clock.sleep(self.poll)

    async def ready_asset(self) -> str:
        """A ready asset to name in batches: the given one, or one uploaded from the URL and waited on."""
        if self.asset_id is not None:
            return self.asset_id
        self.need(self.video_url, "BW_LIVE_VIDEO_URL or BW_LIVE_ASSET_ID")
        assert self.video_url is not None
        asset = await self.client.create_asset(url=self.video_url)
        self.assets.append(asset.id)
        done = await self.client.wait_ready([asset.id], poll_interval=self.poll, timeout=self.timeout)
        assert done[asset.id].status == "ready", f"the test asset ended {done[asset.id].status}"
        self.asset_id = asset.id
        return asset.id

    async def cleanup(self) -> None:
        """Cancel and delete every batch made, delete every asset made (best effort, then wait)."""
        for batch_id in self.batches:
            with contextlib.suppress(APIError, TransportError):
                batch = await self.client.get(batch_id)
                if not batch.is_terminal:
                    with contextlib.suppress(ConflictError):
                        await self.client.cancel(batch_id)
                    await self.until(partial(_terminal, self.client, batch_id), f"batch {batch_id} ending")
                await self.client.delete(batch_id)
        for asset_id in self.assets:
            with contextlib.suppress(APIError, TransportError):
                await self.client.delete_asset(asset_id)


async def _terminal(client: BatchClient, batch_id: str) -> bool:
    return (await client.get(batch_id)).is_terminal


@pytest.fixture(params=["sim", pytest.param("live", marks=pytest.mark.skipif(not LIVE, reason=LIVE_REASON))])
async def target(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Target]:
    if request.param == "sim":
        with Simulator(
            api_key=SECRET_KEY, seed=5, clock=ManualClock(), item_seconds=(5.0, 20.0), fail_rate=0.0,
            chunk_size=SIM_CHUNK, asset_processing_seconds=(5, 30),
        ) as sim:  # fmt: skip
            async with virtual_client(sim, timeout=10.0) as client:
                small = tmp_path / "clip.mp4"
                small.write_bytes(b"v" * 1500)
                big = tmp_path / "long clip.mp4"
                big.write_bytes(bytes(range(256)) * 13 + b"x" * 172)  # 3,500 bytes
                t = Target("sim", client, tmp_path, poll=5.0, timeout=3600.0,
                           video_url="https://cdn.example.com/contract/clip.mp4", video_file=small,
                           multipart_file=big, direct_limit=SIM_DIRECT_LIMIT)  # fmt: skip
                try:
                    yield t
                finally:
                    await t.cleanup()
        return
    async with BatchClient(timeout=60.0) as client:
        file = os.environ.get("BW_LIVE_VIDEO_FILE")
        path = Path(file) if file else None
        t = Target(
            "live", client, tmp_path, poll=10.0, timeout=float(os.environ.get("BW_LIVE_TIMEOUT", "1800")),
            video_url=os.environ.get("BW_LIVE_VIDEO_URL") or None, video_file=path, multipart_file=path,
            direct_limit=max(1, path.stat().st_size // 2) if path else None,
            asset_id=os.environ.get("BW_LIVE_ASSET_ID") or None,
        )  # fmt: skip
        try:
            yield t
        finally:
            await t.cleanup()
