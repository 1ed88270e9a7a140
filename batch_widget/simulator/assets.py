"""Assets and multipart uploads of the simulator: records and state machine (no HTTP here).

Written from ``twelvelabs-assets-api.md`` alone. Decisions on its open questions (§9):

* every create answers ``processing`` (the July-2026 behaviour, Q1); an asset becomes ``ready``
  or ``failed`` ``processing_seconds`` (seeded per asset) after its bytes are all in;
* an over-size direct upload answers 400 ``parameter_invalid`` naming the limit (Q2);
* ``POST /assets`` answers 429 ``too_many_requests`` with ``Retry-After`` beyond
  ``creates_per_minute`` creates in a simulated minute (Q3; off when ``None``);
* an unknown asset id answers 404 ``resource_not_exist`` (Q4); delete answers 204 (Q5);
* a ``failed`` asset named in a batch answers 409 like a ``processing`` one (Q7);
* a session is ``expired`` 24 h after creation; its chunk URLs expire after 1 h and are
  single-use (a second ``PUT`` to the same URL answers 403, as object storage would);
* ``asset_ids`` list filters take at most 50 ids (Q19).

Durations are drawn from the seed and the *filename* (same file, same duration on any run),
so a batch's content hours are known as soon as an asset is ready. Errors here are
:class:`ApiError`; the asset routes render them as the flat ``{code, message}`` body.
"""

from __future__ import annotations

import builtins  # the store's own `list` method shadows the builtin in its annotations
import hashlib
import json
import math
import random
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock, iso
from .errors import ApiError

__all__ = ["AssetConfig", "AssetRecord", "AssetStore", "UploadSession"]

MB = 1_000_000
URL_TTL = 3600.0
SESSION_TTL = 24 * 3600.0
MAX_PAGE = 50
ASSET_TYPES = ("video", "audio", "image")

#: ``(filename, url or None) -> error message or None``: which assets end ``failed``
FailRule = Callable[[str, str | None], str | None]


@dataclass
class AssetConfig:
    """Knobs of simulated uploads (sizes in bytes, times in simulated seconds)."""

    seed: int = 0
    direct_limit: int = 200 * MB
    url_limit: int = 4000 * MB
    multipart_limit: int = 10_000 * MB
    #: the chunk size sessions are given (the spec's example: 5 MiB)
    chunk_size: int = 5 * 1024 * 1024
    #: chunk URLs handed out with a new session (the rest come from ``presigned-urls``)
    initial_urls: int = 10
    #: processing → ready/failed delay, drawn per asset
    processing_seconds: tuple[float, float] = (5.0, 60.0)
    #: video durations, drawn per filename
    video_seconds: tuple[float, float] = (60.0, 3600.0)
    #: filenames (substring, case-insensitive) whose asset ends ``failed``; or a callable
    fail: Iterable[str] | FailRule = ()
    #: extra processing seconds for filenames containing a key (slow processing)
    slow: Mapping[str, float] = field(default_factory=dict)
    #: ``POST /assets`` creates allowed per simulated minute (None: no limit)
    creates_per_minute: int | None = None
    #: size assumed for a ``method=url`` asset (nothing is fetched)
    url_size: int = 50 * MB


@dataclass
class AssetRecord:
    asset_id: str
    api_key: str
    method: str
    filename: str
    file_type: str
    created_at: float
    user_metadata: dict[str, Any] | None
    size: int
    duration: float | None
    ready_at: float | None  # None while a multipart upload is incomplete
    error: str | None
    url: str | None = None

    def status(self, now: float) -> str:
        if self.ready_at is None or now < self.ready_at:
            return "processing"
        return "failed" if self.error else "ready"

    def to_json(self, now: float) -> dict[str, Any]:
        st = self.status(now)
        out: dict[str, Any] = {
            "_id": self.asset_id, "method": self.method, "status": st, "filename": self.filename,
            "file_type": self.file_type, "created_at": iso(self.created_at),
        }  # fmt: skip
        if self.user_metadata:
            out["user_metadata"] = dict(self.user_metadata)
        if st == "ready":
            out["size"] = self.size
            meta: dict[str, Any] = {"file_size_bytes": self.size, "file_mime_type": self.file_type}
            if self.duration is not None:
                out["duration"] = self.duration
                meta["video_duration_seconds"] = self.duration
            out["technical_metadata"] = meta
        elif st == "failed":
            out["error"] = {"message": self.error}
        return out


@dataclass
class UploadSession:
    upload_id: str
    asset_id: str
    api_key: str
    filename: str
    total_size: int
    chunk_size: int
    total_chunks: int
    created_at: float
    expires_at: float
    #: chunk index -> (etag, size, time) of bytes that landed in storage
    stored: dict[int, tuple[str, int, float]] = field(default_factory=dict)
    #: chunk index -> time reported (confirmed) by the client
    reported: dict[int, float] = field(default_factory=dict)
    #: live URL token -> (chunk index, expiry)
    tokens: dict[str, tuple[int, float]] = field(default_factory=dict)
    completed: bool = False

    def status(self, now: float) -> str:
        if self.completed:
            return "completed"
        return "expired" if now >= self.expires_at else "active"

    def chunk_length(self, index: int) -> int:
        if index < self.total_chunks:
            return self.chunk_size
        return self.total_size - self.chunk_size * (self.total_chunks - 1)


def guess_type(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return {
        "mp4": "video/mp4", "mov": "video/quicktime", "mkv": "video/x-matroska", "webm": "video/webm",
        "avi": "video/x-msvideo", "mp3": "audio/mpeg", "wav": "audio/wav", "m4a": "audio/mp4",
        "jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png",
    }.get(ext, "video/mp4")  # fmt: skip


def flat(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> ApiError:
    """An :class:`ApiError` for the asset endpoints (rendered flat by the routes)."""
    return ApiError(status, code, message, headers=headers)


class AssetStore:
    """Every asset and upload session of every API key, on one clock. Thread-safe.

    ``base_url`` (``http://host:port``) is set by the simulator once it listens: chunk URLs
    point back at it (``/_storage/...``), and need no API key.
    """

    def __init__(self, clock: Clock, config: AssetConfig | None = None) -> None:
        self.clock = clock
        self.config = config or AssetConfig()
        self.base_url = "http://127.0.0.1"
        self._lock = threading.RLock()
        self._assets: dict[str, AssetRecord] = {}
        self._sessions: dict[str, UploadSession] = {}
        self._creates: list[float] = []
        self._counter = 0
        self._rng = random.Random(f"{self.config.seed}:assets")

    # ---- lookups the batch engine uses --------------------------------------------------------

    def lookup(self, asset_id: str) -> tuple[str, float | None] | None:
        """``(status, duration)`` of a known asset (any key), or None when this store never made it."""
        with self._lock:
            rec = self._assets.get(asset_id.lower())
            return None if rec is None else (rec.status(self.clock.now()), rec.duration)

    def assets(self) -> builtins.list[AssetRecord]:
        with self._lock:
            return list(self._assets.values())

    def sessions(self) -> builtins.list[UploadSession]:
        with self._lock:
            return list(self._sessions.values())

    # ---- ids, draws ---------------------------------------------------------------------------

    def _new_id(self, taken: Mapping[str, object]) -> str:
        while True:
            value = f"{self._rng.getrandbits(96):024x}"
            if value not in taken and value not in self._assets and value not in self._sessions:
                return value

    def _duration(self, filename: str, file_type: str) -> float | None:
        if not file_type.startswith(("video/", "audio/")):
            return None
        rng = random.Random(f"{self.config.seed}:duration:{filename}")
        return round(rng.uniform(*self.config.video_seconds), 3)

    def _fail_message(self, filename: str, url: str | None) -> str | None:
        rule = self.config.fail
        if callable(rule):
            return rule(filename, url)
        low = filename.lower()
        if any(s.lower() in low for s in rule):
            return "The file could not be decoded."
        return None

    def _processing(self, rec: AssetRecord) -> float:
        rng = random.Random(f"{self.config.seed}:processing:{rec.asset_id}")
        extra = sum(s for k, s in self.config.slow.items() if k.lower() in rec.filename.lower())
        return rng.uniform(*self.config.processing_seconds) + extra

    def _start_processing(self, rec: AssetRecord, now: float) -> None:
        rec.error = self._fail_message(rec.filename, rec.url)
        rec.ready_at = now + self._processing(rec)

    def _rate_check(self, now: float) -> None:
        limit = self.config.creates_per_minute
        if limit is None:
            return
        self._creates = [t for t in self._creates if t > now - 60.0]
        if len(self._creates) >= limit:
            wait = max(1, math.ceil(self._creates[0] + 60.0 - now))
            raise flat(
                429, "too_many_requests",
                f"You have exceeded the rate limit ({limit} per minute). Please try again later after {wait} seconds.",
                headers={"Retry-After": str(wait)},
            )  # fmt: skip
        self._creates.append(now)

    def _find(self, api_key: str, asset_id: str) -> AssetRecord:
        rec = self._assets.get(asset_id.lower())
        if rec is None or rec.api_key != api_key:
            raise flat(404, "resource_not_exist", f"asset_id: asset {asset_id} does not exist.")
        return rec

    # ---- POST /assets -------------------------------------------------------------------------

    def create(self, api_key: str, form: Mapping[str, Any]) -> dict[str, Any]:
        """Create from a parsed form: text fields as ``str``, the file part as ``(filename, bytes)``."""
        known = {"method", "file", "url", "filename", "enable_hls", "enable_thumbnail", "user_metadata"}
        for name in form:
            if name not in known:
                raise flat(400, "parameter_unknown", f"{name}: unknown parameter")
        method = form.get("method")
        if method not in ("direct", "url"):
            raise flat(400, "parameter_invalid" if method else "parameter_not_provided",
                       f"method: must be 'direct' or 'url', got {method!r}")
        metadata = _metadata(form.get("user_metadata"))
        cfg = self.config
        url: str | None = None
        if method == "direct":
            part = form.get("file")
            if not isinstance(part, tuple):
                raise flat(400, "parameter_not_provided", "file: required when method is 'direct'")
            default_name, data = part
            size = len(data)
            if size > cfg.direct_limit:
                raise flat(400, "parameter_invalid",
                           f"file: {size} bytes is over the direct-upload limit of {cfg.direct_limit} bytes; "
                           "use a multipart upload")
            if size == 0:
                raise flat(400, "parameter_invalid", "file: the file is empty")
        else:
            url = form.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise flat(400, "parameter_invalid" if url else "parameter_not_provided",
                           f"url: must be an http(s) URL, got {url!r}")
            default_name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "video.mp4"
            size = cfg.url_size
        filename = form.get("filename") or default_name
        if not isinstance(filename, str) or not 1 <= len(filename) <= 255:
            raise flat(400, "parameter_invalid", "filename: must be 1-255 characters")
        with self._lock:
            now = self.clock.now()
            self._rate_check(now)
            file_type = guess_type(filename)
            rec = AssetRecord(
                asset_id=self._new_id({}), api_key=api_key, method=method, filename=filename,
                file_type=file_type, created_at=now, user_metadata=metadata, size=size,
                duration=self._duration(filename, file_type), ready_at=None, error=None, url=url,
            )  # fmt: skip
            self._start_processing(rec, now)
            self._assets[rec.asset_id] = rec
            return rec.to_json(now)

    # ---- GET / DELETE /assets -----------------------------------------------------------------

    def get(self, api_key: str, asset_id: str) -> dict[str, Any]:
        with self._lock:
            return self._find(api_key, asset_id).to_json(self.clock.now())

    def delete(self, api_key: str, asset_id: str) -> None:
        with self._lock:
            rec = self._find(api_key, asset_id)
            del self._assets[rec.asset_id]

    def list(
        self,
        api_key: str,
        *,
        page: int = 1,
        page_limit: int = 10,
        asset_ids: Iterable[str] = (),
        asset_types: Iterable[str] = (),
        filename: str | None = None,
    ) -> dict[str, Any]:
        if page < 1:
            raise flat(400, "parameter_invalid", f"page: must be >= 1, got {page}")
        if not 1 <= page_limit <= MAX_PAGE:
            raise flat(400, "parameter_invalid", f"page_limit: must be 1-{MAX_PAGE}, got {page_limit}")
        ids = {a.lower() for a in asset_ids}
        if len(ids) > MAX_PAGE:
            raise flat(400, "parameter_invalid", f"asset_ids: at most {MAX_PAGE} ids per request")
        types = set(asset_types)
        for t in types:
            if t not in ASSET_TYPES:
                raise flat(400, "parameter_invalid", f"asset_types: {t!r} is not one of {', '.join(ASSET_TYPES)}")
        with self._lock:
            now = self.clock.now()
            # by id when ids are given (a lookup, not a scan of every asset of every account)
            candidates = [self._assets[a] for a in ids if a in self._assets] if ids else self._assets.values()
            rows = [
                r for r in candidates
                if r.api_key == api_key
                and (not ids or r.asset_id in ids)
                and (not types or r.file_type.split("/")[0] in types)
                and (not filename or filename.lower() in r.filename.lower())
            ]  # fmt: skip
            # newest first; the id breaks ties between creates in the same instant
            rows.sort(key=lambda r: (r.created_at, r.asset_id), reverse=True)
            total = len(rows)
            chunk = rows[(page - 1) * page_limit : page * page_limit]
            return {
                "data": [r.to_json(now) for r in chunk],
                "page_info": {"limit_per_page": page_limit, "page": page,
                              "total_page": max(1, math.ceil(total / page_limit)), "total_results": total},
            }  # fmt: skip

    # ---- multipart sessions -------------------------------------------------------------------

    def create_upload(self, api_key: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise flat(400, "parameter_invalid", "body: expected a JSON object")
        for name in body:
            if name not in ("filename", "type", "total_size", "enable_hls", "enable_thumbnail", "user_metadata"):
                raise flat(400, "parameter_unknown", f"{name}: unknown parameter")
        filename, kind, total = body.get("filename"), body.get("type"), body.get("total_size")
        if not isinstance(filename, str) or not 1 <= len(filename) <= 255:
            raise flat(400, "parameter_invalid", "filename: required, 1-255 characters")
        if kind not in ASSET_TYPES:
            raise flat(400, "parameter_invalid", f"type: must be one of {', '.join(ASSET_TYPES)}, got {kind!r}")
        if not isinstance(total, int) or isinstance(total, bool) or total < 1:
            raise flat(400, "parameter_invalid", f"total_size: must be a positive integer, got {total!r}")
        if total > self.config.multipart_limit:
            raise flat(400, "parameter_invalid",
                       f"total_size: {total} bytes is over the limit of {self.config.multipart_limit} bytes")
        metadata = body.get("user_metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise flat(400, "parameter_invalid", "user_metadata: must be an object")
        with self._lock:
            now = self.clock.now()
            chunk = self.config.chunk_size
            file_type = guess_type(filename)
            rec = AssetRecord(
                asset_id=self._new_id({}), api_key=api_key, method="multipart", filename=filename,
                file_type=file_type, created_at=now, user_metadata=_metadata(metadata), size=total,
                duration=self._duration(filename, file_type), ready_at=None, error=None,
            )  # fmt: skip
            self._assets[rec.asset_id] = rec
            s = UploadSession(
                upload_id=self._new_id({rec.asset_id: rec}), asset_id=rec.asset_id, api_key=api_key,
                filename=filename, total_size=total, chunk_size=chunk, total_chunks=math.ceil(total / chunk),
                created_at=now, expires_at=now + SESSION_TTL,
            )  # fmt: skip
            self._sessions[s.upload_id] = s
            urls = self._urls(s, 1, min(self.config.initial_urls, s.total_chunks), now)
            return {
                "upload_id": s.upload_id, "asset_id": s.asset_id, "upload_urls": urls,
                "upload_headers": {"Content-Type": "application/octet-stream"},
                "chunk_size": s.chunk_size, "total_chunks": s.total_chunks, "expires_at": iso(s.expires_at),
            }  # fmt: skip

    def _urls(self, s: UploadSession, start: int, count: int, now: float) -> builtins.list[dict[str, Any]]:
        out = []
        expires = min(now + URL_TTL, s.expires_at)
        for index in range(start, start + count):
            token = f"{self._rng.getrandbits(64):016x}"
            s.tokens[token] = (index, expires)
            out.append({
                "chunk_index": index,
                "url": f"{self.base_url}/_storage/{s.upload_id}/{index}?token={token}",
                "expires_at": iso(expires),
            })  # fmt: skip
        return out

    def _session(self, api_key: str, upload_id: str, *, active: bool = False) -> UploadSession:
        s = self._sessions.get(upload_id.lower())
        if s is None or s.api_key != api_key:
            raise flat(404, "resource_not_exist", f"upload_id: upload {upload_id} not found.")
        if active and s.status(self.clock.now()) == "expired":
            raise flat(400, "upload_expired",
                       f"upload_id: upload {upload_id} expired at {iso(s.expires_at)}; start a new upload.")
        return s

    def presigned_urls(self, api_key: str, upload_id: str, body: Any) -> dict[str, Any]:
        with self._lock:
            s = self._session(api_key, upload_id, active=True)
            start = body.get("start") if isinstance(body, dict) else None
            count = body.get("count") if isinstance(body, dict) else None
            if not isinstance(start, int) or not 1 <= start <= s.total_chunks:
                raise flat(400, "parameter_invalid", f"start: must be 1-{s.total_chunks}, got {start!r}")
            if not isinstance(count, int) or not 1 <= count <= MAX_PAGE:
                raise flat(400, "parameter_invalid", f"count: must be 1-{MAX_PAGE}, got {count!r}")
            now = self.clock.now()
            urls = self._urls(s, start, min(count, s.total_chunks - start + 1), now)
            return {
                "upload_id": s.upload_id, "start_index": start, "count": len(urls), "upload_urls": urls,
                "generated_at": iso(now), "expires_at": iso(min(now + URL_TTL, s.expires_at)),
            }  # fmt: skip

    def put_chunk(self, upload_id: str, index: int, token: str, data: bytes) -> str:
        """Store one chunk's bytes (a storage ``PUT``): returns the quoted ETag."""
        with self._lock:
            now = self.clock.now()
            s = self._sessions.get(upload_id.lower())
            entry = s.tokens.pop(token, None) if s is not None else None
            if s is None or entry is None or entry[0] != index:
                raise ApiError(403, "AccessDenied", "Request has expired or the URL was already used.")
            if now >= entry[1] or s.status(now) == "expired":
                raise ApiError(403, "AccessDenied", "Request has expired.")
            expected = s.chunk_length(index)
            if len(data) != expected:
                raise ApiError(400, "IncompleteBody",
                               f"chunk {index}: got {len(data)} bytes, expected {expected}")
            etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
            s.stored[index] = (etag, len(data), now)
            return f'"{etag}"'

    def report(self, api_key: str, upload_id: str, body: Any) -> dict[str, Any]:
        chunks = body.get("completed_chunks") if isinstance(body, dict) else None
        if not isinstance(chunks, builtins.list) or not 1 <= len(chunks) <= MAX_PAGE:
            raise flat(400, "parameter_invalid", f"completed_chunks: a list of 1-{MAX_PAGE} chunks")
        with self._lock:
            s = self._session(api_key, upload_id, active=True)
            now = self.clock.now()
            processed = duplicates = 0
            for i, c in enumerate(chunks):
                where = f"completed_chunks[{i}]"
                if not isinstance(c, dict) or c.get("proof_type") != "etag":
                    raise flat(400, "parameter_invalid", f"{where}: needs chunk_index, proof, proof_type 'etag'")
                index, proof = c.get("chunk_index"), str(c.get("proof", "")).strip('"')
                stored = s.stored.get(index) if isinstance(index, int) else None
                if stored is None or not isinstance(index, int) or (proof, c.get("chunk_size")) != stored[:2]:
                    raise flat(400, "parameter_invalid",
                               f"{where}: chunk {index!r} was not uploaded, or its proof/size does not match")
                if index in s.reported:
                    duplicates += 1
                else:
                    s.reported[index] = now
                    processed += 1
            out: dict[str, Any] = {"asset_id": s.asset_id, "processed_chunks": processed,
                                   "duplicate_chunks": duplicates, "total_completed": len(s.reported)}
            if len(s.reported) == s.total_chunks and not s.completed:
                s.completed = True
                s.tokens.clear()
                rec = self._assets.get(s.asset_id)
                if rec is not None:
                    self._start_processing(rec, now)
            if s.completed:
                out["url"] = f"{self.base_url}/_storage/assets/{s.asset_id}"
            return out

    def upload_status(self, api_key: str, upload_id: str, page: int = 1, page_limit: int = 10) -> dict[str, Any]:
        if page < 1 or not 1 <= page_limit <= MAX_PAGE:
            raise flat(400, "parameter_invalid", f"page/page_limit: page >= 1, page_limit 1-{MAX_PAGE}")
        with self._lock:
            s = self._session(api_key, upload_id)
            now = self.clock.now()
            done = sorted(s.reported)
            rows = [{"index": i, "status": "completed", "uploaded_at": iso(s.reported[i]),
                     "updated_at": iso(s.reported[i])} for i in done]  # fmt: skip
            chunk = rows[(page - 1) * page_limit : page * page_limit]
            return {
                "upload_id": s.upload_id, "status": s.status(now), "uploaded_chunks": chunk,
                "chunks_completed": len(done), "chunks_failed": 0, "chunks_pending": s.total_chunks - len(done),
                "total_size": s.total_size, "uploaded_size": sum(s.chunk_length(i) for i in done),
                "created_at": iso(s.created_at), "updated_at": iso(max([s.created_at, *s.reported.values()])),
                "page_info": {"limit_per_page": page_limit, "page": page,
                              "total_page": max(1, math.ceil(len(rows) / page_limit)), "total_results": len(rows)},
            }  # fmt: skip

    def incomplete(self, api_key: str, page: int = 1, page_limit: int = 10) -> dict[str, Any]:
        if page < 1 or not 1 <= page_limit <= MAX_PAGE:
            raise flat(400, "parameter_invalid", f"page/page_limit: page >= 1, page_limit 1-{MAX_PAGE}")
        with self._lock:
            now = self.clock.now()
            rows = [s for s in self._sessions.values() if s.api_key == api_key and s.status(now) == "active"]
            chunk = rows[(page - 1) * page_limit : page * page_limit]
            return {
                "data": [{"upload_id": s.upload_id, "status": "active", "total_size": s.total_size,
                          "chunk_size": s.chunk_size, "total_chunks": s.total_chunks,
                          "created_at": iso(s.created_at), "expires_at": iso(s.expires_at)} for s in chunk],
                "page_info": {"limit_per_page": page_limit, "page": page,
                              "total_page": max(1, math.ceil(len(rows) / page_limit)), "total_results": len(rows)},
            }  # fmt: skip


def _metadata(value: Any) -> dict[str, Any] | None:
    """``user_metadata``: a JSON string (form) or an object (multipart session); flat values only."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise flat(400, "parameter_invalid", "user_metadata: must be a JSON object") from None
    if not isinstance(value, dict):
        raise flat(400, "parameter_invalid", "user_metadata: must be a JSON object")
    for k, v in value.items():
        if not isinstance(v, (str, int, float, bool)):
            raise flat(400, "parameter_invalid", f"user_metadata.{k}: values must be string, number or boolean")
    return dict(value)
