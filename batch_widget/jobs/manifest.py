"""The job's record: typed rows, uploads and chunks, their transitions, and the file that keeps them.

Safe re-runs rest on it: a row (stable ``custom_id``) already recorded is never sent again; a
create or an upload is written as an *intent* before its request and its batch or asset id after
it; and the record is bound to the base URL and a fingerprint of the key (never the key).

One writer: the job's :class:`~batch_widget.jobs.record.JobRecord`, under the manifest's lock;
the stages the job drives change records through their methods and hand them back to it.

On disk (``format: "batch_widget.job/3"``)::

    {"format": "batch_widget.job/3", "created_at": "...Z", "updated_at": "...Z",
     "endpoint": {"base_url": "https://api.twelvelabs.io/v1.3", "key": "<12 hex: key fingerprint>"},
     "settings": {"analysis_mode": "general", "model_name": "pegasus1.5", "defaults": {...}},
     "limits": {"chunk_size": 1000, "max_content_hours": 2000.0, "max_active": 5, "upload_concurrency": 4,
                "max_content_hours_total": null | <hours: the budget>, ...},
     "rows": {"<custom_id>": {"index": <input index label>, "request": {<prompt, window...; no video>},
                              "asset_id": "<24 hex>" | null, "source": "<url or path>" | null,
                              "content_s": <seconds> | null}},
     "uploads": {"<url or absolute path>": {"kind": "url" | "file", "state": "...", "tag": "...",
                 "asset_id": ..., "size": ..., "stamp": {...}, "multipart": {...}, "error": ..., "tries": n}},
     "chunks": [{"chunk": 0, "attempt": 1, "state": "created", "batch_id": "...", "intent_at": "...Z",
                 "created_at": "...Z", "custom_ids": [...], "resubmit_of": [], "replaces": {}, "error": null,
                 "note": null}, ...]}

A row's ``asset_id`` is only ever an asset id: a row given as a URL or a file names its upload in
``source`` (shared by the rows that name it) and gets its ``asset_id`` when that upload is ready.

Between two full writes each change is appended to a journal beside the file (``<manifest>.journal``,
a JSON object per line), so a 2,000-row job does not rewrite its whole record thousands of times.
Reading applies it (a torn last line from a crash is ignored); the job folds it back into the file
(:meth:`Manifest.save`) when it opens and when it ends.

Versions: 1, rows and chunks; 2, rows may carry an ``upload`` record (and a URL or path sat in
``request.video.asset_id`` until its upload was ready); 3, typed rows, shared uploads, the
endpoint and key, the limits, the journal. Versions 1 and 2 are read and written back as 3. A
manifest of a newer version, or one whose shape is wrong, is refused with one error that names
the file and the field.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, get_args

from ..errors import InvalidInputError, ManifestError
from ..models import format_time
from ..validation import CUSTOM_ID
from .limits import Limits

__all__ = [
    "DEFAULT_MANIFEST",
    "MANIFEST_FORMAT",
    "Chunk",
    "ChunkState",
    "Endpoint",
    "Limits",
    "Manifest",
    "ManifestError",
    "Row",
    "Settings",
    "Upload",
    "UploadState",
]

FORMAT_NAME = "batch_widget.job"
#: the manifest version this package writes, and the newest it reads
VERSION = 3
#: the oldest manifest version this package reads
OLDEST = 1
MANIFEST_FORMAT = f"{FORMAT_NAME}/{VERSION}"
DEFAULT_MANIFEST = "bw_job.manifest.json"
#: journal lines after which the job folds the journal back into the file
COMPACT_AFTER = 5000
#: seconds between two fsyncs of the journal (each append is written at once; see ``record``)
SYNC_EVERY_S = 1.0

ChunkState = Literal["planned", "creating", "created", "uncertain", "create_failed", "skipped", "over_budget"]
#: ``failed``: the asset failed, vanished or was refused (permanent); ``error``: transient failures
#: outlasted the retries (``job.retry_uploads()`` or a re-run tries again); ``canceled``: stopped
#: by ``job.cancel()`` (resumable the same way)
UploadState = Literal["pending", "creating", "processing", "ready", "failed", "error", "canceled"]


def _now() -> str:
    return format_time(datetime.now(timezone.utc)) or ""

# -- the records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What every batch of the job is created with."""

    analysis_mode: str
    model_name: str = "pegasus1.5"
    defaults: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"analysis_mode": self.analysis_mode, "model_name": self.model_name, "defaults": self.defaults}


@dataclass(frozen=True)
class Endpoint:
    """Where the job's batches and assets live: the base URL and the key's fingerprint (never the key)."""

    base_url: str
    key: str | None = None  # None: written before version 3 recorded it

    def to_json(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "key": self.key}


@dataclass
class Row:
    """One input row: its request (without the video), and its asset or the upload that makes it."""

    custom_id: str
    index: Any
    request: dict[str, Any]
    asset_id: str | None = None
    source: str | None = None
    content_s: float | None = None

    def body(self) -> dict[str, Any]:
        """The row as one request of a create body."""
        assert self.asset_id is not None, f"row {self.custom_id} has no asset yet"
        return {"video": {"type": "asset_id", "asset_id": self.asset_id}, **self.request, "custom_id": self.custom_id}

    def asset_ready(self, asset_id: str, content_s: float | None) -> None:
        """The row's upload is ready: the row can join a chunk."""
        self.asset_id = asset_id
        if content_s is not None:
            self.content_s = content_s

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "request": self.request, "asset_id": self.asset_id, "source": self.source,
                "content_s": self.content_s}  # fmt: skip


@dataclass
class Upload:
    """One distinct file or URL of the job, uploaded once and shared by every row that names it."""

    source: str
    kind: Literal["url", "file"]
    state: UploadState = "pending"
    tag: str | None = None
    asset_id: str | None = None
    size: int | None = None
    #: a file's size, modification time and a hash of its first and last MiB, taken at the first create
    stamp: dict[str, Any] | None = None
    #: a multipart upload's resume state (see ``assets.MultipartState``)
    multipart: dict[str, Any] | None = None
    error: str | None = None
    note: str | None = None
    #: creates tried for this upload (transient failures included)
    tries: int = 0

    @property
    def ended(self) -> bool:  # nothing more happens to it without the user
        return self.state in ("ready", "failed", "error", "canceled")

    def intend(self, tag: str, stamp: dict[str, Any] | None) -> None:
        """Before a create: the tag that finds it again, and what the file looked like."""
        self.state, self.tag, self.error = "creating", tag, None
        if stamp is not None:
            self.stamp = stamp
        self.tries += 1

    def started_over(self, why: str) -> None:
        """The saved resume state is no good (the file changed): the next create starts afresh."""
        self.multipart, self.asset_id, self.tag, self.stamp = None, None, None, None
        self.note = why

    def created(self, asset_id: str) -> None:
        self.state, self.asset_id, self.multipart, self.error = "processing", asset_id, None, None

    def ready(self) -> None:
        self.state, self.error = "ready", None

    def failed(self, why: str) -> None:
        """For good: the asset failed or vanished, or the API refused the source."""
        self.state, self.error = "failed", why

    def gave_up(self, why: str) -> None:
        """Transient failures outlasted the retries; retryable later."""
        self.state, self.error = "error", why

    def canceled(self, note: str) -> None:
        self.state, self.note = "canceled", note

    def reopen(self) -> bool:
        """Make a given-up or canceled upload go again (True if it will); ready or failed ones stay."""
        if self.state not in ("error", "canceled"):
            return False
        # an asset already made is only waited on; an interrupted create is looked for by its tag first
        self.state = "processing" if self.asset_id and not self.multipart else ("creating" if self.tag else "pending")
        self.error = None
        return True

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "state": self.state, "tag": self.tag, "asset_id": self.asset_id,
                "size": self.size, "stamp": self.stamp, "multipart": self.multipart, "error": self.error,
                "note": self.note, "tries": self.tries}  # fmt: skip


@dataclass
class Chunk:
    """One planned batch of the job."""

    chunk: int
    attempt: int
    custom_ids: list[str]
    state: ChunkState = "planned"
    batch_id: str | None = None
    intent_at: str | None = None
    created_at: str | None = None
    resubmit_of: list[int] = field(default_factory=list)
    replaces: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    note: str | None = None
    #: the batch's final status and counts, recorded when it ends (so a resumed job need not ask)
    outcome: dict[str, Any] | None = None

    def intend(self, at: str) -> None:  # before the create request
        self.state, self.intent_at, self.error = "creating", at, None

    def created(self, batch_id: str, at: str | None, note: str | None = None) -> None:
        self.state, self.batch_id, self.created_at, self.error = "created", batch_id, at, None
        if note is not None:
            self.note = note

    def replanned(self, note: str | None = None) -> None:
        """Nothing was created (a 429, a 503, a refused connection): send it again later."""
        self.state, self.intent_at, self.error = "planned", None, None
        if note is not None:
            self.note = note

    def unanswered(self, why: str) -> None:
        """The create may or may not have made a batch: recover it before anything else."""
        self.error = why

    def refused(self, why: str) -> None:
        self.state, self.error = "create_failed", why

    def uncertain(self, why: str) -> None:
        self.state, self.error = "uncertain", why

    def skipped(self, note: str) -> None:
        self.state, self.note = "skipped", note

    def over_budget(self, note: str) -> None:
        """Not created: it would take the job past ``max_content_hours_total`` (a larger budget sends it)."""
        self.state, self.note = "over_budget", note

    def within_budget(self) -> None:
        """The budget was raised: back to ``planned`` (the scheduler checks it again before its create)."""
        self.state, self.note = "planned", None

    def ended(self, status: str, counts: Mapping[str, int]) -> None:
        """Its batch reached a terminal status: what it ended with."""
        self.outcome = {"status": status, **{k: int(v) for k, v in counts.items()}}

    def to_json(self) -> dict[str, Any]:
        return {
            "chunk": self.chunk, "attempt": self.attempt, "state": self.state,
            "batch_id": self.batch_id, "intent_at": self.intent_at, "created_at": self.created_at,
            "resubmit_of": self.resubmit_of, "replaces": self.replaces, "error": self.error,
            "note": self.note, "outcome": self.outcome, "custom_ids": self.custom_ids,
        }  # fmt: skip


Record = Row | Upload | Chunk


# -- reading, with every shape checked ----------------------------------------------------------------

T = TypeVar("T")


class _Reader:
    """Reads one manifest's JSON, naming the field of the first thing that is not as it should be."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def bad(self, where: str, why: str) -> ManifestError:
        return ManifestError(
            f"manifest {str(self.path)!r} is malformed at {where}: {why}. Nothing was sent. Restore the file "
            "from a backup, or pass another manifest= path to start a new job (the batches it records keep "
            "running on the account)."
        )

    def get(self, data: Mapping[str, Any], key: str, where: str, kind: type[T] | tuple[type, ...],
            default: Any = ..., nullable: bool = False) -> T:  # fmt: skip
        if key not in data:
            if default is ...:
                raise self.bad(f"{where}.{key}".lstrip("."), "missing")
            return cast(T, default)
        value = data[key]
        if value is None and nullable:
            return cast(T, None)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise self.bad(f"{where}.{key}".lstrip("."), f"expected {_article(names)}, found {type(value).__name__}")
        return cast(T, value)

    def mapping(self, data: Mapping[str, Any], key: str, where: str = "") -> dict[str, Any]:
        return self.get(data, key, where, dict, default={})

    def row(self, cid: Any, raw: Any) -> Row:
        where = f"rows[{cid!r}]"
        if not isinstance(raw, dict):
            raise self.bad(where, f"expected an object, found {type(raw).__name__}")
        if not isinstance(cid, str) or not CUSTOM_ID.fullmatch(cid):
            raise self.bad(where, "the custom_id is not 1-64 of letters, digits, '_', '-'")
        request = self.get(raw, "request", where, dict)
        content: float | None = self.get(raw, "content_s", where, (int, float), default=None, nullable=True)
        return Row(
            custom_id=cid, index=raw.get("index"), request=request,
            asset_id=self.get(raw, "asset_id", where, str, default=None, nullable=True),
            source=self.get(raw, "source", where, str, default=None, nullable=True),
            content_s=float(content) if content is not None else None,
        )  # fmt: skip

    def upload(self, source: Any, raw: Any) -> Upload:
        where = f"uploads[{source!r}]"
        if not isinstance(raw, dict):
            raise self.bad(where, f"expected an object, found {type(raw).__name__}")
        kind = self.get(raw, "kind", where, str)
        state = self.get(raw, "state", where, str, default="pending")
        if kind not in ("url", "file"):
            raise self.bad(f"{where}.kind", f"{kind!r} is not 'url' or 'file'")
        if state not in get_args(UploadState):
            raise self.bad(f"{where}.state", f"{state!r} is not one of {', '.join(get_args(UploadState))}")
        opt = {name: self.get(raw, name, where, str, default=None, nullable=True)
               for name in ("tag", "asset_id", "error", "note")}  # fmt: skip
        return Upload(
            source=str(source), kind=cast(Any, kind), state=cast(UploadState, state),
            size=self.get(raw, "size", where, int, default=None, nullable=True),
            stamp=self.get(raw, "stamp", where, dict, default=None, nullable=True),
            multipart=self.get(raw, "multipart", where, dict, default=None, nullable=True),
            tries=self.get(raw, "tries", where, int, default=0), **opt,
        )  # fmt: skip

    def chunk(self, i: int, raw: Any, rows: Mapping[str, Row]) -> Chunk:
        where = f"chunks[{i}]"
        if not isinstance(raw, dict):
            raise self.bad(where, f"expected an object, found {type(raw).__name__}")
        state = raw.get("state") or "planned"
        if state not in get_args(ChunkState):
            raise self.bad(f"{where}.state", f"{state!r} is not one of {', '.join(get_args(ChunkState))}")
        ids = self.get(raw, "custom_ids", where, list)
        unknown = [c for c in ids if not isinstance(c, str) or c not in rows]
        if unknown:
            raise self.bad(f"{where}.custom_ids", f"{unknown[0]!r} is not a row of the manifest")
        replaces = self.get(raw, "replaces", where, dict, default={})
        resubmit_of = self.get(raw, "resubmit_of", where, list, default=[])
        if not all(isinstance(v, int) for v in (*replaces.values(), *resubmit_of)):
            raise self.bad(f"{where}.replaces", "expected whole numbers")
        opt = {name: self.get(raw, name, where, str, default=None, nullable=True)
               for name in ("batch_id", "intent_at", "created_at", "error", "note")}  # fmt: skip
        outcome = self.get(raw, "outcome", where, dict, default=None, nullable=True)
        if outcome is not None and not (isinstance(outcome.get("status"), str) and all(
                isinstance(v, int) for k, v in outcome.items() if k != "status")):  # fmt: skip
            raise self.bad(f"{where}.outcome", "expected a status and whole-number counts")
        if state == "created" and not opt["batch_id"]:
            raise self.bad(f"{where}.batch_id", "a created chunk without its batch id")
        return Chunk(
            chunk=self.get(raw, "chunk", where, int), attempt=self.get(raw, "attempt", where, int, default=1),
            custom_ids=list(ids), state=cast(ChunkState, state), resubmit_of=list(resubmit_of),
            replaces={str(k): int(v) for k, v in replaces.items()}, outcome=outcome, **opt,
        )  # fmt: skip


def _article(names: str) -> str:
    word = {"dict": "an object", "list": "a list", "str": "a string", "int": "a whole number", "float": "a number"}
    return " or ".join(word.get(n, n) for n in names.split(" or "))


def _version(path: Path, data: Any) -> int:
    """The manifest's version; refuses what is not a manifest, or one this package cannot read."""
    fmt = data.get("format") if isinstance(data, dict) else None
    name, _, version = str(fmt).partition("/")
    if not isinstance(fmt, str) or name != FORMAT_NAME:
        raise ManifestError(
            f"{str(path)!r} is not a batch_widget job manifest (format {MANIFEST_FORMAT!r}); "
            "pass another manifest= path."
        )
    if not version.isdigit() or int(version) < OLDEST:
        raise ManifestError(
            f"manifest {str(path)!r} has the unknown format {fmt!r} (this batch_widget reads "
            f"{FORMAT_NAME}/{OLDEST} to {MANIFEST_FORMAT!r}); nothing was submitted. Pass another manifest= path."
        )
    if int(version) > VERSION:
        raise ManifestError(
            f"manifest {str(path)!r} was written by a newer batch_widget (format {fmt!r}; this one reads "
            f"up to {MANIFEST_FORMAT!r}); nothing was submitted. Upgrade: pip install -U batch-widget."
        )
    return int(version)


def _upgrade_rows(read: _Reader, raw_rows: dict[str, Any], version: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Version 1 and 2 rows (the video inside the request, a per-row upload) as version 3 rows and uploads."""
    rows: dict[str, Any] = {}
    uploads: dict[str, Any] = {}
    rank = {s: i for i, s in enumerate(("failed", "error", "canceled", "pending", "creating", "processing", "ready"))}
    for cid, raw in raw_rows.items():
        if not isinstance(raw, dict):
            raise read.bad(f"rows[{cid!r}]", f"expected an object, found {type(raw).__name__}")
        request = read.get(raw, "request", f"rows[{cid!r}]", dict)
        video = read.get(request, "video", f"rows[{cid!r}].request", dict)
        up = raw.get("upload") if version >= 2 else None
        row = {"index": raw.get("index"), "request": {k: v for k, v in request.items() if k != "video"},
               "content_s": raw.get("content_s"), "asset_id": None, "source": None}  # fmt: skip
        if isinstance(up, dict):
            source = read.get(up, "source", f"rows[{cid!r}].upload", str)
            row["source"] = source
            if up.get("state") == "ready":
                row["asset_id"] = up.get("asset_id") or video.get("asset_id")
            known = uploads.get(source)
            if known is None or rank.get(str(up.get("state")), 0) > rank.get(str(known.get("state")), 0):
                uploads[source] = {k: v for k, v in up.items() if k != "source"}
        else:
            row["asset_id"] = read.get(video, "asset_id", f"rows[{cid!r}].request.video", str)
        rows[cid] = row
    return rows, uploads


# -- the file -------------------------------------------------------------------------------------------


class Manifest:
    """The job's record (settings, limits, rows, uploads, chunks) and the file that keeps it.

    Only a :class:`~batch_widget.jobs.job.Job` holding the manifest's lock writes it:
    :meth:`record` appends changed records to the journal, :meth:`save` writes the whole record.
    """

    def __init__(
        self,
        path: Path,
        *,
        endpoint: Endpoint,
        settings: Settings | None = None,
        limits: Limits | None = None,
        rows: dict[str, Row] | None = None,
        uploads: dict[str, Upload] | None = None,
        chunks: list[Chunk] | None = None,
        created_at: str | None = None,
        read_version: int = VERSION,
    ) -> None:
        self.path = path
        self.endpoint = endpoint
        self.settings = settings
        self.limits = limits
        self.rows: dict[str, Row] = rows if rows is not None else {}
        self.uploads: dict[str, Upload] = uploads if uploads is not None else {}
        self.chunks: list[Chunk] = chunks if chunks is not None else []
        self.created_at = created_at or _now()
        #: the version the file was read at (``VERSION`` for a new manifest); saving writes ``VERSION``
        self.read_version = read_version
        self._journal: Any = None  # the open journal file, appended to between full writes
        self._journal_lines = 0
        self._synced_at = 0.0

    @property
    def journal_path(self) -> Path:
        return self.path.with_name(self.path.name + ".journal")

    @property
    def results_dir(self) -> Path:
        """Where each batch's results are kept (``<manifest stem>.results/``)."""
        stem = self.path.name[: -len(".json")] if self.path.name.endswith(".json") else self.path.name
        return self.path.with_name(stem + ".results")

    def claimed(self) -> set[str]:
        """Rows that are in a chunk already."""
        return {cid for c in self.chunks for cid in c.custom_ids}

    # -- reading ------------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        """Read the file and its journal; :class:`ManifestError` names the file and the field of any problem."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as exc:
            raise ManifestError(
                f"manifest {str(p)!r} cannot be read ({exc}). Nothing was submitted; restore the file, or pass "
                "another manifest= path to start a new job."
            ) from exc
        version = _version(p, data)
        read = _Reader(p)
        raw_rows = read.mapping(data, "rows")
        raw_uploads = read.mapping(data, "uploads") if version >= 3 else {}
        if version < 3:
            raw_rows, raw_uploads = _upgrade_rows(read, raw_rows, version)
        rows = {cid: read.row(cid, raw) for cid, raw in raw_rows.items()}
        uploads = {src: read.upload(src, raw) for src, raw in raw_uploads.items()}
        for row in rows.values():
            if row.source is not None and row.source not in uploads:
                raise read.bad(f"rows[{row.custom_id!r}].source", "names no upload of the manifest")
        raw_chunks = read.get(data, "chunks", "", list, default=[])
        chunks = [read.chunk(i, c, rows) for i, c in enumerate(raw_chunks)]
        settings_raw = read.get(data, "settings", "", dict, default=None, nullable=not rows)
        settings = None
        if settings_raw:
            settings = Settings(
                analysis_mode=read.get(settings_raw, "analysis_mode", "settings", str),
                model_name=read.get(settings_raw, "model_name", "settings", str, default="pegasus1.5"),
                defaults=read.get(settings_raw, "defaults", "settings", dict, default={}, nullable=True) or {},
            )
        if version >= 3:
            ep = read.get(data, "endpoint", "", dict)
            endpoint = Endpoint(read.get(ep, "base_url", "endpoint", str),
                                read.get(ep, "key", "endpoint", str, default=None, nullable=True))  # fmt: skip
        else:
            endpoint = Endpoint(read.get(data, "base_url", "", str, default=""), None)
        limits = None
        if isinstance(data.get("limits"), dict):
            try:
                limits = Limits(**{k: v for k, v in data["limits"].items() if k in {f.name for f in fields(Limits)}})
            except (InvalidInputError, TypeError) as exc:
                raise read.bad("limits", str(exc).rstrip(".")) from None
        man = cls(p, endpoint=endpoint, settings=settings, limits=limits, rows=rows, uploads=uploads, chunks=chunks,
                  created_at=str(data.get("created_at") or _now()), read_version=version)  # fmt: skip
        if version >= 3:
            man._replay(read)
        return man

    def _replay(self, read: _Reader) -> None:
        """Apply the journal written since the last full write."""
        try:
            lines = self.journal_path.read_bytes().split(b"\n")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise read.bad("its journal", f"{self.journal_path} cannot be read ({exc})") from None
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                kind, key, value = entry["t"], entry["k"], entry["v"]
            except (ValueError, KeyError, TypeError):
                if n >= len(lines) - 1:  # the last line, torn by a crash mid-write: it never happened
                    break
                raise read.bad(f"journal line {n}", "not a journal entry") from None
            if kind == "row":
                self.rows[key] = read.row(key, value)
            elif kind == "upload":
                self.uploads[key] = read.upload(key, value)
            elif kind == "chunk":
                chunk = read.chunk(int(key), value, self.rows)
                if chunk.chunk < len(self.chunks):
                    self.chunks[chunk.chunk] = chunk
                elif chunk.chunk == len(self.chunks):
                    self.chunks.append(chunk)
                else:
                    raise read.bad(f"journal line {n}", f"chunk {chunk.chunk} comes before chunk {len(self.chunks)}")
            elif kind == "meta":
                self.settings = Settings(**value["settings"]) if value.get("settings") else self.settings
                self.limits = Limits(**value["limits"]) if value.get("limits") else self.limits
                self.endpoint = Endpoint(**value["endpoint"]) if value.get("endpoint") else self.endpoint
            else:
                raise read.bad(f"journal line {n}", f"unknown entry {kind!r}")
            self._journal_lines += 1

    # -- writing (the job's, under its lock) ----------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "created_at": self.created_at,
            "updated_at": _now(),
            "endpoint": self.endpoint.to_json(),
            "settings": self.settings.to_json() if self.settings else None,
            "limits": self.limits.to_json() if self.limits else None,
            "chunks": [c.to_json() for c in self.chunks],
            "uploads": {src: u.to_json() for src, u in self.uploads.items()},
            "rows": {cid: r.to_json() for cid, r in self.rows.items()},
        }

    def save(self) -> None:
        """Write the whole record atomically (temp file, fsync, ``os.replace``), then empty the journal."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self.to_json(), fh, ensure_ascii=False, separators=(",", ":"), default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self.close_journal()
        self.journal_path.unlink(missing_ok=True)
        self._journal_lines = 0
        self.read_version = VERSION

    def record(self, *changed: Record | Literal["meta"]) -> None:
        """Append the changed records to the journal: written at once (a crashed kernel loses none), fsynced
        at most once a second; folded back into the file after ``COMPACT_AFTER`` lines."""
        if not self.path.exists():
            self.save()
            return
        if self._journal is None:
            self._journal = open(self.journal_path, "ab")  # noqa: SIM115 - kept open between appends
        out = []
        for rec in changed:
            if rec == "meta":
                entry: dict[str, Any] = {"t": "meta", "k": "", "v": {
                    "settings": self.settings.to_json() if self.settings else None,
                    "limits": self.limits.to_json() if self.limits else None,
                    "endpoint": self.endpoint.to_json()}}  # fmt: skip
            elif isinstance(rec, Row):
                entry = {"t": "row", "k": rec.custom_id, "v": rec.to_json()}
            elif isinstance(rec, Upload):
                entry = {"t": "upload", "k": rec.source, "v": rec.to_json()}
            else:
                entry = {"t": "chunk", "k": rec.chunk, "v": rec.to_json()}
            out.append(json.dumps(entry, ensure_ascii=False, separators=(",", ":"), default=str).encode() + b"\n")
        self._journal.write(b"".join(out))
        self._journal.flush()
        self._journal_lines += len(out)
        now = time.monotonic()
        if now - self._synced_at >= SYNC_EVERY_S:
            os.fsync(self._journal.fileno())
            self._synced_at = now
        if self._journal_lines >= COMPACT_AFTER:
            self.save()

    def close_journal(self) -> None:
        if self._journal is not None:
            self._journal.close()
        self._journal = None

    def replace_with(self, other: Manifest) -> None:
        """Take the records of ``other`` (the file as another process left it), keeping this object and
        its containers (the stages of the job hold them)."""
        self.close_journal()
        for name in ("endpoint", "settings", "limits", "created_at", "read_version"):
            setattr(self, name, getattr(other, name))
        self.rows.clear()
        self.rows.update(other.rows)
        self.uploads.clear()
        self.uploads.update(other.uploads)
        self.chunks[:] = other.chunks
        self._journal_lines = other._journal_lines

