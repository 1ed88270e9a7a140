"""The job's record on disk: its format in one place, read and written atomically.

Safe re-runs rest on a small JSON manifest beside the notebook:

- every row gets a stable ``custom_id`` (from a column, or a hash of its index label and asset
  id), and a row whose custom_id is in the manifest is never submitted again;
- before each create the chunk is written as an *intent* (``state: "creating"`` with the time),
  after it the batch id (``state: "created"``), atomically (temp file + ``os.replace``);
- on resume, an intent without a batch id is matched against the account's batches (same
  number of items, created after the intent, and the very same custom_ids in its results). A
  certain match is adopted; anything else follows ``on_uncertain`` and is never silently
  resubmitted by default.

Manifest (``format: "batch_widget.job/2"``)::

    {"format": "batch_widget.job/2", "created_at": "...Z", "updated_at": "...Z",
     "base_url": "https://api.twelvelabs.io/v1.3",
     "settings": {"analysis_mode": "general", "model_name": "pegasus1.5", "defaults": {...}},
     "rows": {"<custom_id>": {"index": <input index label>, "request": {"video": {...}, ...},
                              "content_s": <seconds or null>, "upload": {...}}},
     "chunks": [{"chunk": 0, "attempt": 1, "state": "created", "batch_id": "...",
                 "intent_at": "...Z", "created_at": "...Z", "custom_ids": [...],
                 "resubmit_of": [], "replaces": {}, "error": null, "note": null}, ...]}

Chunk states: ``planned`` (not sent), ``creating`` (intent written, answer not yet recorded),
``created``, ``uncertain`` (an intent that could not be matched: waiting for
:meth:`Job.resolve`), ``create_failed`` (the API refused it; nothing was created), ``skipped``
(canceled before it was sent, or resolved as skipped).

A row's ``upload`` record (only for rows given as a URL or a local file) is described in
:mod:`~batch_widget.jobs.uploads`.

The format field carries the version (``batch_widget.job/<version>``): a manifest written by a
newer batch_widget, or of an unknown version, is refused with a message that says so, instead of
being misread. Versions: 1, rows and chunks; 2, rows may carry an ``upload`` record. A version-1
manifest is read as having no uploads (an ``upload`` key in it is ignored) and is written back
as version 2.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, cast, get_args

from ..errors import BatchWidgetError, InvalidInputError
from ..models import format_time

__all__ = ["DEFAULT_MANIFEST", "MANIFEST_FORMAT", "Chunk", "ChunkState", "Manifest"]

FORMAT_NAME = "batch_widget.job"
#: the manifest version this package writes, and the newest it reads
VERSION = 2
#: the oldest manifest version this package reads
OLDEST = 1
MANIFEST_FORMAT = f"{FORMAT_NAME}/{VERSION}"
DEFAULT_MANIFEST = "bw_job.manifest.json"

ChunkState = Literal["planned", "creating", "created", "uncertain", "create_failed", "skipped"]


@dataclass
class Chunk:
    """One planned batch of the job, as recorded in the manifest."""

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

    def to_json(self) -> dict[str, Any]:
        return {
            "chunk": self.chunk, "attempt": self.attempt, "state": self.state,
            "batch_id": self.batch_id, "intent_at": self.intent_at, "created_at": self.created_at,
            "resubmit_of": self.resubmit_of, "replaces": self.replaces, "error": self.error,
            "note": self.note, "custom_ids": self.custom_ids,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Chunk:
        state = data.get("state") or "planned"
        if state not in get_args(ChunkState):
            raise InvalidInputError(
                f"manifest chunk {data.get('chunk')!r} has the unknown state {state!r}; "
                f"expected one of {', '.join(get_args(ChunkState))}."
            )
        return cls(
            chunk=int(data["chunk"]),
            attempt=int(data.get("attempt") or 1),
            custom_ids=[str(c) for c in data.get("custom_ids") or ()],
            state=cast(ChunkState, state),
            batch_id=data.get("batch_id"),
            intent_at=data.get("intent_at"),
            created_at=data.get("created_at"),
            resubmit_of=[int(x) for x in data.get("resubmit_of") or ()],
            replaces={str(k): int(v) for k, v in (data.get("replaces") or {}).items()},
            error=data.get("error"),
            note=data.get("note"),
        )


class Manifest:
    """The job's record on disk: settings, rows (custom_id → request) and chunks. Atomic writes."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        #: the version the file was read at (``VERSION`` for a new manifest); saving writes ``VERSION``
        self.read_version = _version_of(data) or VERSION
        self.settings: dict[str, Any] = dict(data.get("settings") or {})
        self.base_url: str = str(data.get("base_url") or "")
        self.created_at: str = str(data.get("created_at") or format_time(datetime.now(timezone.utc)))
        self.rows: dict[str, dict[str, Any]] = dict(data.get("rows") or {})
        if self.read_version < 2:  # version 1 had no uploads: an upload key there is not ours to trust
            self.rows = {cid: {k: v for k, v in row.items() if k != "upload"} for cid, row in self.rows.items()}
        self.chunks: list[Chunk] = [Chunk.from_json(c) for c in data.get("chunks") or ()]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as exc:
            raise BatchWidgetError(
                f"manifest {str(p)!r} cannot be read ({exc}). Nothing was submitted; move the file "
                "away to start a new job, or restore it."
            ) from exc
        _check_version(p, data)
        return cls(p, data)

    def save(self) -> None:
        """Write the whole manifest atomically: a temp file beside it, fsync, ``os.replace``."""
        data = {
            "format": MANIFEST_FORMAT,
            "created_at": self.created_at,
            "updated_at": format_time(datetime.now(timezone.utc)),
            "base_url": self.base_url,
            "settings": self.settings,
            "chunks": [c.to_json() for c in self.chunks],
            "rows": self.rows,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False, separators=(",", ":"), default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def claimed(self) -> set[str]:
        return {cid for c in self.chunks for cid in c.custom_ids}


def _version_of(data: Mapping[str, Any]) -> int | None:
    """The version number in a manifest's format field, or None when there is none."""
    _, _, version = str(data.get("format") or "").partition("/")
    return int(version) if version.isdigit() else None


def _check_version(path: Path, data: Any) -> None:
    """Refuse what is not a manifest, or is one of a version this package cannot read."""
    fmt = data.get("format") if isinstance(data, dict) else None
    name, _, version = str(fmt).partition("/")
    if not isinstance(fmt, str) or name != FORMAT_NAME:
        raise BatchWidgetError(
            f"{str(path)!r} is not a batch_widget job manifest (format {MANIFEST_FORMAT!r}); "
            "pass another manifest= path."
        )
    if not version.isdigit():
        raise BatchWidgetError(
            f"manifest {str(path)!r} has the unknown format {fmt!r} (this batch_widget reads "
            f"{MANIFEST_FORMAT!r}); nothing was submitted. Pass another manifest= path."
        )
    if int(version) < OLDEST:
        raise BatchWidgetError(
            f"manifest {str(path)!r} has the unknown format {fmt!r} (this batch_widget reads "
            f"{FORMAT_NAME}/{OLDEST} to {MANIFEST_FORMAT!r}); nothing was submitted. Pass another manifest= path."
        )
    if int(version) > VERSION:
        raise BatchWidgetError(
            f"manifest {str(path)!r} was written by a newer batch_widget (format {fmt!r}; this one reads "
            f"up to {MANIFEST_FORMAT!r}); nothing was submitted. Upgrade: pip install -U batch-widget."
        )
