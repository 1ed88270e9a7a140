"""The upload stage of a job: each distinct local file or URL becomes one ``ready`` asset, shared by its rows.

The stage runs inside the job's life: the job starts it as a task and cancels it on
``job.cancel()`` / ``job.close()``; whatever was not finished then is recorded ``canceled`` (and
how far it got), and ``job.retry_uploads()`` or a re-run of ``submit`` carries it on.

Each upload's record (:class:`~batch_widget.jobs.manifest.Upload`) is handed to the job to write
before its create (the tag that finds the asset again, and the file's stamp) and after it (the
asset id): a re-run never uploads twice. A ``creating`` upload is first looked for by filename and
tag; a multipart upload resumes from its last confirmed part, but only while the file still
matches its stamp (size, modification time and a hash of its first and last MiB), else it starts
over and says so. Transient failures (429, 5xx, a cut connection) are retried with back-off and
``Retry-After``; an upload that still fails is ``error`` (retryable), an asset that ends
``failed`` or disappears fails its rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import uuid
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .._text import num, size
from ..asset_model import Asset
from ..assets import MULTIPART_LIMIT, MultipartState, check_upload_file
from ..client import BatchClient
from ..errors import (
    APIError,
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TransportError,
    describe_error,
)
from ..retry import RetryPolicy
from .manifest import Upload

__all__ = ["UPLOAD_TRIES", "UploadCounts", "UploadStage", "VideoKind", "classify_video", "file_stamp"]

log = logging.getLogger("batch_widget.jobs")

VideoKind = Literal["asset", "url", "file"]
_ASSET_ID = re.compile(r"^[0-9a-fA-F]{24}$")
_EDGE = 1024 * 1024
#: creates of one upload before it is given up (each create also waits out 429s in the client)
UPLOAD_TRIES = 4
_BACKOFF = RetryPolicy(max_attempts=UPLOAD_TRIES, base_delay=5.0, max_delay=60.0, budget=600.0)


def classify_video(
    value: Any, kind: str | None, where: str, known: Mapping[str, Upload] | None = None
) -> tuple[VideoKind, str, int | None]:
    """``(kind, source, file size)`` of one row's video; :class:`InvalidInputError` naming the row.

    A file is checked on disk unless ``known`` (the job's uploads) already has its asset: a row
    whose asset is made never needs its file again.
    """
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
    if kind == "asset":
        return "asset", text.lower(), None
    if kind == "url":
        return "url", text, None
    source = str(Path(text).expanduser().resolve())
    held = (known or {}).get(source)
    if held is not None and held.asset_id and not held.multipart and held.state in ("ready", "processing"):
        return "file", source, held.size
    try:
        found = check_upload_file(source, MULTIPART_LIMIT)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from None
    return "file", source, found


def file_stamp(path: str | Path) -> dict[str, Any]:
    """What a file looks like now: size, modification time, and a hash of its first and last MiB."""
    p = Path(path)
    st = p.stat()
    digest = hashlib.sha256()
    with p.open("rb") as fh:
        digest.update(fh.read(_EDGE))
        if st.st_size > _EDGE:
            fh.seek(max(_EDGE, st.st_size - _EDGE))
            digest.update(fh.read(_EDGE))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "edges": digest.hexdigest()[:32]}


@dataclass(frozen=True)
class UploadCounts:
    """The upload stage at a glance, in distinct uploads (all zero for a job without uploads)."""

    uploading: int = 0
    processing: int = 0
    ready: int = 0
    failed: int = 0
    bytes_sent: int = 0
    bytes_total: int = 0
    rate: float = 0.0  # bytes per second over the stage so far
    canceled: int = 0

    @property
    def total(self) -> int:
        """Uploads of the job (0: it uploads nothing)."""
        return self.uploading + self.processing + self.ready + self.failed + self.canceled

    def describe(self) -> str:
        """One line, the parts that are not zero: ``12 uploading (34 MB of 120 MB, 8.1 MB/s) · 80 ready``."""
        parts = []
        if self.uploading:
            sent = ""
            if self.bytes_total:
                sent = f"{size(self.bytes_sent)} of {size(self.bytes_total)}"
                sent += f", {size(self.rate)}/s" if self.rate > 0 else ""
            parts.append(f"{num(self.uploading)} uploading" + (f" ({sent})" if sent else ""))
        rest = (("processing", self.processing), ("ready", self.ready), ("failed", self.failed),
                ("canceled", self.canceled))  # fmt: skip
        parts += [f"{num(n)} {name}" for name, n in rest if n]
        return " · ".join(parts)


def _filename(up: Upload) -> str:
    if up.kind == "file":
        return Path(up.source).name
    return up.source.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "video.mp4"


def _transient(error: BaseException) -> bool:
    return isinstance(error, (RateLimitError, ServerError, TransportError))


class UploadStage:
    """Runs a job's uploads: ``commit(upload)`` after each change of a record (the job writes it),
    ``on_ready(upload, asset)`` when an asset is ready, ``on_change()`` for progress the widget shows."""

    def __init__(
        self,
        client: BatchClient,
        uploads: Mapping[str, Upload],
        *,
        concurrency: int,
        commit: Callable[[Upload], None],
        on_ready: Callable[[Upload, Asset], None],
        on_change: Callable[[], None],
        poll_interval: float = 5.0,
    ) -> None:
        self.client = client
        self.uploads = uploads
        self.concurrency = concurrency
        self.commit = commit
        self.on_ready = on_ready
        self.on_change = on_change
        self.poll_interval = poll_interval
        self.bytes_sent = 0
        self._started_at: float | None = None
        self._created = asyncio.Event()  # set when an asset is created: there is something to poll

    @property
    def finished(self) -> bool:
        return all(u.ended for u in self.uploads.values())

    def counts(self) -> UploadCounts:
        ups = list(self.uploads.values())
        total = sum(int(u.size or 0) for u in ups if u.kind == "file")
        elapsed = self.client.clock.monotonic() - self._started_at if self._started_at is not None else 0.0
        return UploadCounts(
            uploading=sum(u.state in ("pending", "creating") for u in ups),
            processing=sum(u.state == "processing" for u in ups),
            ready=sum(u.state == "ready" for u in ups),
            failed=sum(u.state in ("failed", "error") for u in ups),
            canceled=sum(u.state == "canceled" for u in ups),
            bytes_sent=self.bytes_sent, bytes_total=total,
            rate=self.bytes_sent / elapsed if elapsed > 0 else 0.0,
        )  # fmt: skip

    async def run(self) -> None:
        """Upload what is not uploaded yet and wait until every upload has ended (ready, failed, given up)."""
        self._started_at = self.client.clock.monotonic()
        gate = asyncio.Semaphore(self.concurrency)

        async def one(up: Upload) -> None:
            async with gate:
                await self._upload(up)

        loop = asyncio.get_running_loop()
        todo = [loop.create_task(one(u)) for u in self.uploads.values() if u.state in ("pending", "creating")]
        poll = loop.create_task(self._poll_processing(todo))
        try:
            done, _ = await asyncio.wait([*todo, poll], return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # an authentication error stops the stage (and the job)
            await poll
        finally:
            for task in (*todo, poll):
                task.cancel()
            await asyncio.gather(*todo, poll, return_exceptions=True)

    def cancel(self, note: str) -> list[Upload]:
        """After the run task was cancelled by ``job.cancel()``: every upload that had not ended is
        ``canceled`` (returned), with how far it got when it was in flight."""
        stopped = []
        for up in self.uploads.values():
            if not up.ended:
                up.canceled(f"{note}; {up.note}" if up.note and up.note.startswith("stopped") else note)
                stopped.append(up)
        return stopped

    # -- one upload -----------------------------------------------------------------------------------

    async def _upload(self, up: Upload) -> None:
        try:
            await self._create(up)
        except asyncio.CancelledError:  # the job stopped: say how far this one got (the state stays)
            if up.state == "processing":
                pass  # its create finished: the asset is recorded
            elif up.multipart:
                done = len(up.multipart.get("done") or ())
                up.note = (f"stopped mid-upload: {done} of {up.multipart.get('total_chunks')} parts were sent (the "
                           "part in flight was abandoned); carrying it on resumes from there")  # fmt: skip
            elif up.state == "creating":
                up.note = ("stopped while its create was in flight: the asset may exist; carrying it on looks for "
                           "it by its tag before creating another")  # fmt: skip
            else:
                up.note = "stopped before its upload started"
            self.commit(up)
            raise

    async def _create(self, up: Upload) -> None:
        name = _filename(up)
        if up.kind == "file":
            try:
                stamp = await asyncio.to_thread(file_stamp, up.source)
            except OSError as exc:
                up.failed(f"the file {up.source!r} cannot be read ({exc.strerror or exc}); put it back and re-run")
                self.commit(up)
                return
            if up.stamp is not None and (up.multipart or up.state == "creating") and stamp != up.stamp:
                why = f"{up.source} changed since its upload began; its upload started over"
                warnings.warn(why, stacklevel=1)
                up.started_over(why)
            up.size = stamp["size"]
        else:
            stamp = None
        for attempt in range(1, UPLOAD_TRIES + 1):
            try:
                if up.state == "creating" and up.tag and not up.multipart:
                    # a create whose answer was never recorded (or cut short): look before making another
                    found = await self.client.find_upload(name, up.tag)
                    if found is not None:
                        up.created(found.id)
                        self.commit(up)
                        self._created.set()
                        return
                up.intend(up.tag or uuid.uuid4().hex, stamp)
                self.commit(up)  # the intent and its tag, before the request
                call = asyncio.ensure_future(self.client.create_asset(
                    url=up.source if up.kind == "url" else None, file=up.source if up.kind == "file" else None,
                    tag=up.tag, on_bytes=self._sent, on_state=lambda state: self._keep(up, state),
                    multipart_state=MultipartState.from_dict(up.multipart) if up.multipart else None,
                ))  # fmt: skip
                asset = await self._finish_in_flight(up, call)
            except (AuthenticationError, PermissionDeniedError):
                raise
            except (APIError, TransportError) as exc:
                if not _transient(exc):
                    up.failed(f"the API refused the upload: {describe_error(exc)}")
                    self.commit(up)
                    return
                if attempt == UPLOAD_TRIES:
                    up.gave_up(f"upload failed after {up.tries} tries: {describe_error(exc)}; "
                               "job.retry_uploads() or re-running submit tries again")  # fmt: skip
                    self.commit(up)
                    return
                wait = exc.retry_after if isinstance(exc, APIError) and exc.retry_after else _BACKOFF.backoff(attempt)
                log.info("upload of %s failed (%s); trying again in %.0f s", name, describe_error(exc), wait)
                await self.client.clock.sleep(wait)
                continue
            except (InvalidInputError, OSError) as exc:
                up.failed(f"upload failed: {exc}")
                self.commit(up)
                return
            up.created(asset.id)
            self.commit(up)
            self._created.set()
            self.on_change()
            return

    async def _finish_in_flight(self, up: Upload, call: asyncio.Future[Asset]) -> Asset:
        """The create's answer. Stopped meanwhile, a one-request create is let finish (its asset is
        recorded, never left unknown); a multipart upload stops after its confirmed parts."""
        multipart = up.multipart is not None or (up.kind == "file" and (up.size or 0) > self.client.direct_upload_limit)
        if multipart:
            return await call
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                up.created((await call).id)
                up.note = "created while the job was stopping"
                self.commit(up)
            raise

    def _sent(self, n: int) -> None:
        self.bytes_sent += n
        self.on_change()

    def _keep(self, up: Upload, state: MultipartState) -> None:
        up.multipart = state.to_dict()
        self.commit(up)

    # -- processing -----------------------------------------------------------------------------------

    async def _poll_processing(self, creating: list[asyncio.Task[None]]) -> None:
        """Poll the processing assets (50 ids per request) until every upload has ended."""
        while True:
            processing = {u.asset_id: u for u in self.uploads.values() if u.state == "processing" and u.asset_id}
            if processing:
                await self._poll_once(processing)
            if self.finished and all(t.done() for t in creating):
                return
            if processing or any(u.state == "processing" for u in self.uploads.values()):
                await self.client.clock.sleep(self.poll_interval)
                continue
            # nothing to poll yet: wait for the next create to land (or the last to end), not the clock
            self._created.clear()
            waiter = asyncio.ensure_future(self._created.wait())
            try:
                running = [t for t in creating if not t.done()]
                await asyncio.wait([waiter, *running], return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()

    async def _poll_once(self, processing: dict[str, Upload]) -> None:
        try:
            seen = {a.id: a for a in await self.client.list_assets(asset_ids=list(processing))}
        except (AuthenticationError, PermissionDeniedError):
            raise
        except (APIError, TransportError):
            log.debug("could not poll the assets; next time", exc_info=True)
            return
        for asset_id, up in processing.items():
            asset = seen.get(asset_id)
            if asset is None:  # not listed: deleted, or the list lags; ask for it alone
                try:
                    asset = await self.client.get_asset(asset_id)
                except NotFoundError:
                    up.failed(f"the asset {asset_id} was deleted before it was ready")
                    self.commit(up)
                    continue
                except (APIError, TransportError):
                    continue
            if asset.is_ready:
                up.ready()
                self.on_ready(up, asset)
                self.commit(up)
            elif asset.is_failed:
                up.failed(asset.error_message or "the asset failed")
                self.commit(up)
