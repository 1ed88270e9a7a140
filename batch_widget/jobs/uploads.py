"""The upload stage of a job: local files and URLs become ``ready`` assets, then batch rows.

Rows given by :func:`~batch_widget.submit` ``(video=...)`` as a URL or a local path carry an
``upload`` record in the manifest (``rows[cid]["upload"]``)::

    {"kind": "url" | "file", "source": "<url or path>", "state": "pending" | "creating" |
     "processing" | "ready" | "failed", "tag": "<bw_upload tag>", "asset_id": "...",
     "size": <bytes>, "multipart": {...resume state...}, "error": "<message>"}

The record is saved *before* each create (state ``creating`` with its tag) and after it (the
asset id), so a re-run or :func:`~batch_widget.resume_job` never uploads a row twice: a
``creating`` row is first looked for by filename and tag, a multipart upload resumes from its
last confirmed chunk, a ``processing`` row is only waited on. Uploads run ``concurrency`` at a
time (429s wait out ``Retry-After`` in the client); a ``failed`` asset fails its row only.
The scheduler (``job``) plans a row into a batch once its asset is ``ready``, with its duration
as the row's content seconds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .._text import num, size
from ..assets import MULTIPART_LIMIT, MultipartState, check_upload_file
from ..client import BatchClient
from ..errors import APIError, AuthenticationError, InvalidInputError, PermissionDeniedError, TransportError
from .manifest import Manifest

__all__ = ["UPLOAD_STATES", "UploadCounts", "UploadStage", "VideoKind", "classify_video"]

log = logging.getLogger("batch_widget.jobs")

VideoKind = Literal["asset", "url", "file"]
UPLOAD_STATES = ("pending", "creating", "processing", "ready", "failed")
_ASSET_ID = re.compile(r"^[0-9a-fA-F]{24}$")


def classify_video(value: Any, kind: str | None, where: str) -> tuple[VideoKind, str, int | None]:
    """``(kind, source, file size)`` of one row's video; :class:`InvalidInputError` naming the row."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise InvalidInputError(f"{where}: {value!r} is not an asset id, URL or file path.")
    text = str(value).strip()
    if kind is None:
        if text.startswith(("http://", "https://")):
            kind = "url"
        elif _ASSET_ID.match(text) and not Path(text).exists():
            kind = "asset"
        else:
            kind = "file"
    if kind not in ("asset", "url", "file"):
        raise InvalidInputError(f"{where}: video_kind {kind!r} is not one of 'asset', 'url', 'file'.")
    if kind == "url" and not text.startswith(("http://", "https://")):
        raise InvalidInputError(f"{where}: {text!r} is not an http(s) URL.")
    size = None
    if kind == "file":
        try:
            size = check_upload_file(text, MULTIPART_LIMIT)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc}") from None
        text = str(Path(text).resolve())
    return kind, text, size  # type: ignore[return-value]


@dataclass(frozen=True)
class UploadCounts:
    """The upload stage at a glance (all zero for a job without uploads)."""

    uploading: int = 0
    processing: int = 0
    ready: int = 0
    failed: int = 0
    bytes_sent: int = 0
    bytes_total: int = 0
    rate: float = 0.0  # bytes per second over the stage so far

    @property
    def total(self) -> int:
        """Rows with an upload (0: the job uploads nothing)."""
        return self.uploading + self.processing + self.ready + self.failed

    def describe(self) -> str:
        """One line, the parts that are not zero: ``12 uploading (34 MB of 120 MB, 8.1 MB/s) · 80 ready``."""
        parts = []
        if self.uploading:
            sent = ""
            if self.bytes_total:
                sent = f"{size(self.bytes_sent)} of {size(self.bytes_total)}"
                sent += f", {size(self.rate)}/s" if self.rate > 0 else ""
            parts.append(f"{num(self.uploading)} uploading" + (f" ({sent})" if sent else ""))
        parts += [f"{num(n)} {name}" for name, n in
                  (("processing", self.processing), ("ready", self.ready), ("failed", self.failed)) if n]  # fmt: skip
        return " · ".join(parts)


class UploadStage:
    """Runs the uploads of a job's rows; ``on_change`` is called on every state change."""

    def __init__(
        self,
        client: BatchClient,
        manifest: Manifest,
        *,
        concurrency: int = 4,
        poll_interval: float = 5.0,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.client = client
        self.manifest = manifest
        self.concurrency = max(1, concurrency)
        self.poll_interval = poll_interval
        self.on_change = on_change
        self.bytes_sent = 0
        self._started_at: float | None = None
        self._active = 0

    def records(self) -> dict[str, dict[str, Any]]:
        return {cid: row["upload"] for cid, row in self.manifest.rows.items() if isinstance(row.get("upload"), dict)}

    @property
    def finished(self) -> bool:
        return all(r["state"] in ("ready", "failed") for r in self.records().values())

    def ready_rows(self, exclude: Iterable[str]) -> list[str]:
        """Rows whose asset is ready and that are in no chunk yet, in manifest order."""
        taken = set(exclude)
        return [cid for cid, r in self.records().items() if r["state"] == "ready" and cid not in taken]

    def due(self, claimed: Iterable[str], chunk_size: int) -> list[str]:
        """Ready rows to plan now: a full chunk's worth, or all of them once every upload has ended."""
        ready = self.ready_rows(claimed)
        return ready if ready and (len(ready) >= chunk_size or self.finished) else []

    def counts(self) -> UploadCounts:
        recs = list(self.records().values())
        total = sum(int(r.get("size") or 0) for r in recs if r["kind"] == "file")
        elapsed = self.client.clock.monotonic() - self._started_at if self._started_at is not None else 0.0
        return UploadCounts(
            uploading=sum(r["state"] in ("pending", "creating") for r in recs),
            processing=sum(r["state"] == "processing" for r in recs),
            ready=sum(r["state"] == "ready" for r in recs),
            failed=sum(r["state"] == "failed" for r in recs),
            bytes_sent=self.bytes_sent, bytes_total=total,
            rate=self.bytes_sent / elapsed if elapsed > 0 else 0.0,
        )  # fmt: skip

    def _save(self) -> None:
        self.manifest.save()
        self.on_change()

    async def run(self) -> None:
        """Upload every row not yet uploaded and wait until each asset is ready or failed."""
        self._started_at = self.client.clock.monotonic()
        gate = asyncio.Semaphore(self.concurrency)

        async def one(cid: str, rec: dict[str, Any]) -> None:
            async with gate:
                await self._upload(cid, rec)

        todo = [one(cid, r) for cid, r in self.records().items() if r["state"] in ("pending", "creating")]
        waiter = asyncio.ensure_future(self._wait_processing())
        try:
            await asyncio.gather(*todo)
            await waiter
        finally:
            waiter.cancel()

    async def _upload(self, cid: str, rec: dict[str, Any]) -> None:
        source = rec["source"]
        filename = Path(source).name if rec["kind"] == "file" else None
        try:
            if rec["state"] == "creating" and not rec.get("multipart"):
                # a create whose answer was never recorded: look before making another asset
                name = filename or source.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
                found = await self.client.find_upload(name, rec["tag"])
                if found is not None:
                    self._created(rec, found.id)
                    return
            rec["state"], rec["tag"] = "creating", rec.get("tag") or uuid.uuid4().hex
            self._save()  # the intent and its tag, before the request

            def sent(n: int) -> None:
                self.bytes_sent += n
                self.on_change()

            def keep(state: MultipartState) -> None:
                rec["multipart"] = state.to_dict()
                self.manifest.save()

            saved = rec.get("multipart")
            asset = await self.client.create_asset(
                url=source if rec["kind"] == "url" else None, file=source if rec["kind"] == "file" else None,
                tag=rec["tag"], on_bytes=sent, on_state=keep,
                multipart_state=MultipartState.from_dict(saved) if saved else None,
            )  # fmt: skip
            self._created(rec, asset.id)
        except (AuthenticationError, PermissionDeniedError):
            raise
        except (APIError, TransportError, InvalidInputError, OSError) as exc:
            log.debug("upload of %s failed", cid, exc_info=True)
            rec["state"], rec["error"] = "failed", f"upload failed: {exc}"
            self._save()

    def _created(self, rec: dict[str, Any], asset_id: str) -> None:
        rec["asset_id"], rec["state"] = asset_id, "processing"
        rec.pop("multipart", None)
        self._save()

    async def _wait_processing(self) -> None:
        """Poll the processing assets (50 per call) until none is left and no upload is running."""
        while True:
            recs = {r["asset_id"]: (cid, r) for cid, r in self.records().items() if r["state"] == "processing"}
            if recs:
                try:
                    assets = await self.client.list_assets(asset_ids=list(recs))
                except (AuthenticationError, PermissionDeniedError):
                    raise
                except (APIError, TransportError):
                    log.debug("could not poll the assets", exc_info=True)
                    assets = []
                changed = False
                for asset in assets:
                    cid, rec = recs[asset.id]
                    if asset.is_ready:
                        rec["state"] = "ready"
                        row = self.manifest.rows[cid]
                        row["request"]["video"]["asset_id"] = asset.id
                        row["content_s"] = asset.content_seconds
                        changed = True
                    elif asset.is_failed:
                        rec["state"], rec["error"] = "failed", asset.error_message or "the asset failed"
                        changed = True
                if changed:
                    self._save()
            if self.finished:
                return
            await self.client.clock.sleep(self.poll_interval)
