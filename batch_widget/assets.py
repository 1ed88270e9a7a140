"""The assets endpoints (``/assets``, v1.3): :class:`Assets`, held by a client as ``client.assets``.

It sends through the :class:`~batch_widget.http_core.HttpCore` it is given (the client's: one pool,
one key, retries, typed errors) and has its own settings (``direct_upload_limit``). Decisions on
the open questions of ``twelvelabs-assets-api.md`` §9:

* a create's ``status`` is provisional: callers wait with :meth:`Assets.wait_ready` (Q1);
* files are checked locally against the limits before anything is sent (Q2, Q11);
* 429 is retried after ``Retry-After`` or a back-off (Q3, Q18), within :data:`UPLOAD_RETRY`;
* a create is never retried blindly (no idempotency, Q20): each carries a tag in
  ``user_metadata`` (``bw_upload``), and after a failure that may have created it
  (:func:`~batch_widget.retry.may_have_created`: a timeout, a cut connection, a 5xx other than
  503) the assets with that filename are searched for the tag first;
* multipart: the session's ``chunk_size`` and ``upload_headers`` are used as given (Q12, Q13),
  chunks are read from disk in 64 KiB pieces (never the whole file), sent without the API key,
  reported as soon as each lands, and a failed ``PUT`` gets a fresh single-use URL (Q14);
  ETag quotes are stripped (Q15); an expired or failed session starts a new one (Q17);
* ids are listed 50 at a time (Q19); an unknown status is not terminal (Q21).
"""

from __future__ import annotations

import asyncio
import json
import math
import mimetypes
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .asset_model import Asset
from .errors import APIError, InvalidInputError, TransportError
from .retry import NO_RETRY, RetryPolicy, may_have_created

if TYPE_CHECKING:
    from .http_core import HttpCore

__all__ = [
    "DIRECT_LIMIT",
    "MULTIPART_LIMIT",
    "UPLOAD_RETRY",
    "UPLOAD_TAG",
    "URL_LIMIT",
    "Assets",
    "MultipartState",
    "check_upload_file",
]

#: bytes: the largest ``method=direct`` upload, and the largest multipart upload (spec §3.3)
DIRECT_LIMIT = 200_000_000
MULTIPART_LIMIT = 10_000_000_000
URL_LIMIT = 4_000_000_000
#: the ``user_metadata`` key that tags each create, so a lost answer can be found again
UPLOAD_TAG = "bw_upload"
#: creates wait out 429s patiently (the per-minute limit is unknown)
UPLOAD_RETRY = RetryPolicy(max_attempts=12, base_delay=5.0, max_delay=60.0, budget=900.0)
_PIECE = 1024 * 1024  # a file is streamed in pieces of this size: flat memory, few syscalls
_CHUNK_ATTEMPTS = 6
_MAX_URLS = 50


def check_upload_file(path: str | os.PathLike[str], limit: int = MULTIPART_LIMIT) -> int:
    """Size of a local file to upload; :class:`InvalidInputError` naming it when unusable."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"{str(p)!r} is not a file that exists; give the path of a local video file.")
    size = p.stat().st_size
    if size == 0:
        raise InvalidInputError(f"{str(p)!r} is empty; give a video file.")
    if size > limit:
        raise InvalidInputError(
            f"{str(p)!r} is {size} bytes, over the upload limit of {limit} bytes; put it at a public URL "
            "(up to 4 GB) or cut it into parts."
        )
    return size


@dataclass
class MultipartState:
    """Where a multipart upload stands: enough to resume it after a crash (within 24 h).

    ``done`` holds the 1-based chunk indexes the API has confirmed.
    """

    upload_id: str
    asset_id: str
    chunk_size: int
    total_chunks: int
    expires_at: str | None = None
    upload_headers: dict[str, str] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {"upload_id": self.upload_id, "asset_id": self.asset_id, "chunk_size": self.chunk_size,
                "total_chunks": self.total_chunks, "expires_at": self.expires_at,
                "upload_headers": dict(self.upload_headers), "done": sorted(self.done)}  # fmt: skip

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MultipartState:
        return cls(str(d["upload_id"]), str(d["asset_id"]), int(d["chunk_size"]), int(d["total_chunks"]),
                   d.get("expires_at"), dict(d.get("upload_headers") or {}), {int(i) for i in d.get("done", ())})

    def chunk_range(self, index: int, total_size: int) -> tuple[int, int]:
        start = (index - 1) * self.chunk_size
        return start, min(self.chunk_size, total_size - start)


async def _read_range(path: Path, offset: int, length: int) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        f.seek(offset)
        left = length
        while left > 0:
            piece = f.read(min(_PIECE, left))
            if not piece:
                raise OSError(f"{path} is shorter than expected (changed while uploading?)")
            left -= len(piece)
            yield piece


class Assets:
    """Upload, find and delete assets; wait for them to be ready.

    Held by a :class:`~batch_widget.client.BatchClient` as ``client.assets`` (its methods of the
    same names delegate here); sends through the client's ``http`` core.

    Parameters
    ----------
    http
        The HTTP core to send through (pool, key, retries, typed errors, clock).
    direct_upload_limit
        Bytes: files above go through the multipart flow (tests lower it to exercise that flow).
    """

    def __init__(self, http: HttpCore, *, direct_upload_limit: int = DIRECT_LIMIT) -> None:
        self._http = http
        self.direct_upload_limit = direct_upload_limit
        """Bytes: files above go through the multipart flow."""

    # ---- create ---------------------------------------------------------------------------------

    async def create_asset(
        self,
        *,
        url: str | None = None,
        file: str | os.PathLike[str] | None = None,
        filename: str | None = None,
        user_metadata: Mapping[str, str | int | float | bool] | None = None,
        tag: str | None = None,
        on_bytes: Callable[[int], None] | None = None,
        multipart_state: MultipartState | None = None,
        on_state: Callable[[MultipartState], None] | None = None,
    ) -> Asset:
        """Upload a local ``file`` or register a public ``url`` as an asset (status usually ``processing``).

        Parameters
        ----------
        url, file
            Exactly one: an http(s) URL of a raw media file, or a local path. Files over
            ``direct_upload_limit`` go through a multipart upload, streamed from disk.
        filename, user_metadata
            Stored with the asset; ``user_metadata`` also gets the ``bw_upload`` tag.
        tag
            The tag to put in ``user_metadata`` (default: a fresh one); a caller that records it
            before the call can find the asset again after a crash (:meth:`find_upload`).
        on_bytes
            Called with the number of bytes each time a chunk (or the whole direct upload) is sent.
        multipart_state, on_state
            Resume a multipart upload from its saved state; ``on_state`` gets the state after every
            confirmed chunk (to persist it).

        Returns
        -------
        Asset
            Wait for it with :meth:`wait_ready`.
        """
        if (url is None) == (file is None):
            raise InvalidInputError("create_asset needs exactly one of url= or file=.")
        tag = tag or uuid.uuid4().hex
        meta: dict[str, Any] = {**(user_metadata or {}), UPLOAD_TAG: tag}
        if url is not None:
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise InvalidInputError(f"url={url!r} is not an http(s) URL; give the direct link to a media file.")
            name = filename or url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "video.mp4"
            fields = {"method": (None, "url"), "url": (None, url), "filename": (None, name),
                      "user_metadata": (None, json.dumps(meta))}  # fmt: skip
            return await self._create_once(fields, name, tag)
        assert file is not None
        path = Path(file)
        size = check_upload_file(path)
        name = filename or path.name
        if size > self.direct_upload_limit or multipart_state is not None:
            return await self._multipart(path, size, name, meta, on_bytes, multipart_state, on_state)
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
        with path.open("rb") as f:
            parts: dict[str, Any] = {"method": (None, "direct"), "filename": (None, name),
                                     "user_metadata": (None, json.dumps(meta)), "file": (name, f, mime)}  # fmt: skip
            asset = await self._create_once(parts, name, tag)
        if on_bytes is not None:
            on_bytes(size)
        return asset

    async def _create_once(self, fields: Mapping[str, Any], filename: str, tag: str) -> Asset:
        """``POST /assets``; after an ambiguous failure look for the tagged asset before trying again."""
        last: Exception | None = None
        for attempt in range(1, 4):
            try:
                # retried by the policy only where nothing was made (429, 503, refused connection)
                response = await self._http.send(
                    "create asset", "POST", "assets", files=dict(fields), mode="create", retry=UPLOAD_RETRY
                )
                return Asset.from_dict(response.json())
            except (APIError, TransportError) as error:
                if not may_have_created(error):
                    raise
                last = error
            found = await self.find_upload(filename, tag)
            if found is not None:
                return found
            await self._http.clock.sleep(UPLOAD_RETRY.backoff(attempt))
        assert last is not None
        raise last

    async def find_upload(self, filename: str, tag: str) -> Asset | None:
        """The asset created with this ``filename`` and upload tag, if the API made one."""
        for asset in await self.list_assets(filename=filename):
            if str(asset.user_metadata.get(UPLOAD_TAG)) == tag:
                return asset
        return None

    # ---- multipart ------------------------------------------------------------------------------

    async def _multipart(
        self,
        path: Path,
        size: int,
        filename: str,
        meta: Mapping[str, Any],
        on_bytes: Callable[[int], None] | None,
        state: MultipartState | None,
        on_state: Callable[[MultipartState], None] | None,
    ) -> Asset:
        for _ in range(3):  # a session that expires under us is replaced (new asset id)
            urls: dict[int, str] = {}
            if state is not None:
                state = await self._resume_state(state)
            if state is None:
                state, urls = await self._new_session(path, size, filename, meta)
            if on_state is not None:
                on_state(state)
            try:
                for index in range(1, state.total_chunks + 1):
                    if index in state.done:
                        continue
                    await self._send_chunk(path, size, state, index, urls)
                    state.done.add(index)
                    if on_bytes is not None:
                        on_bytes(state.chunk_range(index, size)[1])
                    if on_state is not None:
                        on_state(state)
            except APIError as error:
                if error.code == "upload_expired" or (error.status_code == 404 and error.operation != "upload chunk"):
                    state = None
                    continue
                raise
            return await self.get_asset(state.asset_id)
        raise APIError(400, code="upload_expired", api_message=f"the upload of {filename} kept expiring",
                       operation="multipart upload")  # fmt: skip

    async def _new_session(
        self, path: Path, size: int, filename: str, meta: Mapping[str, Any]
    ) -> tuple[MultipartState, dict[int, str]]:
        kind = (mimetypes.guess_type(filename)[0] or "video/").split("/")[0]
        body = {"filename": filename, "type": kind if kind in ("video", "audio", "image") else "video",
                "total_size": size, "user_metadata": dict(meta)}  # fmt: skip
        d = (await self._http.send("create upload", "POST", "assets/multipart-uploads", json=body, mode="create",
                              retry=UPLOAD_RETRY)).json()  # fmt: skip
        state = MultipartState(str(d["upload_id"]), str(d["asset_id"]), int(d["chunk_size"]),
                               int(d.get("total_chunks") or math.ceil(size / int(d["chunk_size"]))),
                               d.get("expires_at"), dict(d.get("upload_headers") or {}))  # fmt: skip
        return state, {int(u["chunk_index"]): str(u["url"]) for u in d.get("upload_urls") or ()}

    async def _resume_state(self, state: MultipartState) -> MultipartState | None:
        """The saved state checked against the API: None when the session cannot go on."""
        try:
            status = await self.upload_status(state.upload_id)
        except APIError as error:
            if error.status_code in (400, 404):
                return None
            raise
        if status.get("status") not in ("active", "completed"):
            return None
        if status.get("status") == "completed":
            state.done = set(range(1, state.total_chunks + 1))
        else:
            state.done |= set(status.get("confirmed", ()))
        return state

    async def upload_status(self, upload_id: str) -> dict[str, Any]:
        """``GET /assets/multipart-uploads/{id}``, every page; ``confirmed`` lists the completed chunks."""
        page, confirmed = 1, []
        while True:
            d = (await self._http.send("upload status", "GET", f"assets/multipart-uploads/{upload_id}",
                                  params={"page": page, "page_limit": _MAX_URLS})).json()  # fmt: skip
            confirmed += [int(c["index"]) for c in d.get("uploaded_chunks") or () if c.get("status") == "completed"]
            total_page = int((d.get("page_info") or {}).get("total_page") or 1)
            if page >= total_page:
                return {**d, "confirmed": confirmed}
            page += 1

    async def _fresh_urls(self, state: MultipartState, start: int) -> dict[int, str]:
        count = min(_MAX_URLS, state.total_chunks - start + 1)
        d = (await self._http.send("chunk urls", "POST", f"assets/multipart-uploads/{state.upload_id}/presigned-urls",
                              json={"start": start, "count": count})).json()  # fmt: skip
        return {int(u["chunk_index"]): str(u["url"]) for u in d.get("upload_urls") or ()}

    async def _send_chunk(self, path: Path, size: int, state: MultipartState, index: int, urls: dict[int, str]) -> None:
        offset, length = state.chunk_range(index, size)
        headers = dict(state.upload_headers) or {"Content-Type": "application/octet-stream"}
        headers["Content-Length"] = str(length)
        for attempt in range(1, _CHUNK_ATTEMPTS + 1):
            url = urls.pop(index, None)
            if url is None:
                urls.update(await self._fresh_urls(state, index))
                url = urls.pop(index)
            try:
                response = await self._http.send(
                    "upload chunk", "PUT", url, with_key=False, retry=NO_RETRY, headers=headers,
                    content=lambda: _read_range(path, offset, length),
                )  # fmt: skip
            except (APIError, TransportError) as error:
                # a used/expired URL (403), a cut connection or a 5xx: try again with a fresh URL
                retry = isinstance(error, TransportError) or error.status_code in (403, 408, 429) or (
                    error.status_code >= 500)  # fmt: skip
                if not retry or attempt == _CHUNK_ATTEMPTS:
                    raise
                await self._http.clock.sleep(min(30.0, 0.5 * 2**attempt))
                continue
            etag = response.headers.get("etag", "").strip().strip('"')
            proof = {"chunk_index": index, "proof": etag, "proof_type": "etag", "chunk_size": length}
            await self._http.send("report chunk", "POST", f"assets/multipart-uploads/{state.upload_id}",
                             json={"completed_chunks": [proof]})  # fmt: skip
            return

    # ---- read / delete --------------------------------------------------------------------------

    async def get_asset(self, asset_id: str) -> Asset:
        """``GET /assets/{id}``."""
        return Asset.from_dict((await self._http.send("get asset", "GET", f"assets/{asset_id}")).json())

    async def list_assets(
        self,
        *,
        asset_ids: Iterable[str] | None = None,
        asset_types: Iterable[str] | None = None,
        filename: str | None = None,
    ) -> list[Asset]:
        """Every asset matching the filters (all pages, newest first; ids asked 50 at a time).

        Parameters
        ----------
        asset_ids
            Only these ids.
        asset_types
            Any of ``video``, ``audio``, ``image``.
        filename
            A case-insensitive substring of the filename.
        """
        ids = list(dict.fromkeys(asset_ids)) if asset_ids is not None else None
        groups: list[list[str] | None] = [ids[i : i + _MAX_URLS] for i in range(0, len(ids), _MAX_URLS)] if ids else [
            None]  # fmt: skip
        if ids == []:
            return []
        out: list[Asset] = []
        for group in groups:
            page = 1
            while True:
                params: list[tuple[str, str | int]] = [("page", page), ("page_limit", _MAX_URLS)]
                params += [("asset_ids", a) for a in group or ()]
                params += [("asset_types", t) for t in asset_types or ()]
                if filename:
                    params.append(("filename", filename))
                d = (await self._http.send("list assets", "GET", "assets", params=params)).json()
                out += [Asset.from_dict(a) for a in d.get("data") or ()]
                if page >= int((d.get("page_info") or {}).get("total_page") or 1):
                    break
                page += 1
        return out

    async def delete_asset(self, asset_id: str, *, force: bool = False) -> None:
        """``DELETE /assets/{id}`` (any 2xx is success; ``force`` unlinks indexed assets)."""
        params = {"force": "true"} if force else None
        await self._http.send("delete asset", "DELETE", f"assets/{asset_id}", params=params)

    async def wait_ready(
        self,
        asset_ids: Iterable[str],
        *,
        poll_interval: float = 5.0,
        timeout: float | None = 1800.0,
        on_update: Callable[[Asset], None] | None = None,
    ) -> dict[str, Asset]:
        """Poll until every asset is ``ready`` or ``failed``; returns them by id (failed ones too).

        Raises ``TimeoutError`` naming the assets still processing after ``timeout`` seconds.
        """
        pending = list(dict.fromkeys(asset_ids))
        done: dict[str, Asset] = {}
        start = self._http.clock.monotonic()
        while pending:
            seen = {a.id: a for a in await self.list_assets(asset_ids=pending)}
            for asset_id in pending:
                asset = seen.get(asset_id) or await self.get_asset(asset_id)
                if asset.is_terminal:
                    done[asset_id] = asset
                    if on_update is not None:
                        on_update(asset)
            pending = [a for a in pending if a not in done]
            if not pending:
                break
            if timeout is not None and self._http.clock.monotonic() - start + poll_interval > timeout:
                raise TimeoutError(f"assets still processing after {timeout:g} s: {', '.join(pending[:10])}")
            await self._http.clock.sleep(poll_interval)
        await asyncio.sleep(0)
        return done
