"""Many videos as one job: a DataFrame in, batches within the account's limits, a DataFrame out.

:func:`submit` validates a table of assets (naming the rows of every problem, before any
request), plans it into chunks of at most 1,000 requests and 2,000 content hours, and returns a
:class:`Job` at once. The job's scheduler is an asyncio task on the running loop (in a notebook,
the kernel's): it keeps at most ``max_active`` batches active on the account (counting batches
that were already active), waits for a free slot instead of failing on the API's 429, and
watches every batch with the shared :class:`~batch_widget.poller.BatchPoller`.

Safe re-runs rest on a small JSON manifest beside the notebook:

- every row gets a stable ``custom_id`` (from a column, or a hash of its index label and asset
  id), and a row whose custom_id is in the manifest is never submitted again;
- before each create the chunk is written as an *intent* (``state: "creating"`` with the time),
  after it the batch id (``state: "created"``), atomically (temp file + ``os.replace``);
- on resume, an intent without a batch id is matched against the account's batches (same
  number of items, created after the intent, and the very same custom_ids in its results). A
  certain match is adopted; anything else follows ``on_uncertain`` and is never silently
  resubmitted by default.

Manifest (``format: "batch_widget.job/1"``)::

    {"format": "batch_widget.job/1", "created_at": "...Z", "updated_at": "...Z",
     "base_url": "https://api.twelvelabs.io/v1.3",
     "settings": {"analysis_mode": "general", "model_name": "pegasus1.5", "defaults": {...}},
     "rows": {"<custom_id>": {"index": <input index label>, "request": {"video": {...}, ...}}},
     "chunks": [{"chunk": 0, "attempt": 1, "state": "created", "batch_id": "...",
                 "intent_at": "...Z", "created_at": "...Z", "custom_ids": [...],
                 "resubmit_of": [], "replaces": {}, "error": null, "note": null}, ...]}

Chunk states: ``planned`` (not sent), ``creating`` (intent written, answer not yet recorded),
``created``, ``uncertain`` (an intent that could not be matched: waiting for
:meth:`Job.resolve`), ``create_failed`` (the API refused it; nothing was created), ``skipped``
(canceled before it was sent, or resolved as skipped).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import re
import threading
import warnings
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

import pandas as pd

from ._aio import run_in_thread, sleep_or_wake
from .client import MAX_REQUESTS, NO_RETRY, BatchClient, build_create_body, default_client, validate_batch_id
from .errors import (
    APIError,
    AuthenticationError,
    BatchWidgetError,
    InvalidInputError,
    PermissionDeniedError,
    RateLimitError,
    ResultLineError,
    ServerError,
    TransportError,
    describe_error,
)
from .frames import results_to_frame
from .models import Batch, BatchStatus, ResultLine, format_time, parse_time
from .poller import BatchPoller, PollUpdate, Schedule

if TYPE_CHECKING:
    from .job_widget import JobWidget

__all__ = [
    "DEFAULT_MANIFEST",
    "Chunk",
    "Job",
    "JobSnapshot",
    "UncertainCreateError",
    "list_batches",
    "list_batches_blocking",
    "prepare_requests",
    "resume_job",
    "submit",
]

log = logging.getLogger("batch_widget.jobs")

MANIFEST_FORMAT = "batch_widget.job/1"
DEFAULT_MANIFEST = "bw_job.manifest.json"
ACCOUNT_MAX_ACTIVE = 5
MAX_CONTENT_HOURS = 2000.0
MAX_WINDOW_S = 2 * 3600.0
ACTIVE_STATUSES = tuple(status.value for status in BatchStatus if status.is_active)
#: how far before the intent a matching batch may claim to be created (server clock granularity)
INTENT_SLACK_S = 120.0
_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_EXAMPLES = 5

Uncertain = Literal["ask", "resubmit", "skip", "raise"]
ChunkState = Literal["planned", "creating", "created", "uncertain", "create_failed", "skipped"]


class UncertainCreateError(BatchWidgetError):
    """A create was started but its answer was never recorded, and no batch matches it for sure."""


# --------------------------------------------------------------------------------------------
# DataFrame → requests (validation before any request)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedRow:
    """One input row as a batch request."""

    label: Any
    custom_id: str
    request: dict[str, Any]
    content_s: float | None


@dataclass(frozen=True)
class Prepared:
    """The requests built from a DataFrame, with the job-wide settings."""

    analysis_mode: str
    model_name: str
    defaults: dict[str, Any]
    rows: tuple[PreparedRow, ...]
    ids: pd.Series  # custom_id per input row, on the input's index

    @property
    def settings(self) -> dict[str, Any]:
        return {"analysis_mode": self.analysis_mode, "model_name": self.model_name, "defaults": self.defaults}


class _Problems:
    """Collects every problem of an input, grouped, with the rows (index labels) and values."""

    def __init__(self) -> None:
        self.kinds: dict[str, list[str]] = {}

    def add(self, kind: str, example: str) -> None:
        self.kinds.setdefault(kind, []).append(example)

    def raise_if_any(self, total_rows: int) -> None:
        if not self.kinds:
            return
        lines = []
        for kind, examples in self.kinds.items():
            shown = "; ".join(examples[:_EXAMPLES])
            more = f"; and {len(examples) - _EXAMPLES} more" if len(examples) > _EXAMPLES else ""
            lines.append(
                f"  - {kind} ({len(examples)} row{'s' if len(examples) != 1 else ''}): {shown}{more}"
            )
        count = sum(len(v) for v in self.kinds.values())
        raise InvalidInputError(
            f"{count} problem{'s' if count != 1 else ''} in the input of {total_rows} rows; "
            "nothing was submitted. Rows are named by their index label:\n" + "\n".join(lines)
        )


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value)) if not isinstance(value, (dict, list, tuple)) else False
    except (TypeError, ValueError):
        return False


def _show(value: Any) -> str:
    return "missing" if _missing(value) else repr(value)


def _label(label: Any) -> str:
    return repr(label)


def _jsonable_label(label: Any) -> Any:
    if isinstance(label, (str, int, float, bool)) or label is None:
        return label
    if isinstance(label, tuple):
        return [_jsonable_label(x) for x in label]
    if hasattr(label, "item"):
        with contextlib.suppress(Exception):
            return _jsonable_label(label.item())
    return str(label)


def stable_custom_id(label: Any, asset_id: str) -> str:
    """The generated custom_id of a row: a hash of its index label and asset id (stable across runs)."""
    text = f"{type(label).__name__}:{label}\x1f{asset_id}"
    return "bw-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:20]


def _number(value: Any) -> float | None:
    if _missing(value):
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number of seconds")
    if isinstance(value, pd.Timedelta):
        return float(value.total_seconds())
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _response_format(value: Any) -> dict[str, Any] | None:
    if _missing(value):
        return None
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, Mapping):
        raise ValueError("must be a dict (or its JSON text)")
    return dict(value)


def _format_type(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else str(value.get("type"))


def prepare_requests(
    data: pd.DataFrame,
    *,
    asset: str = "asset_id",
    key: str | None = None,
    prompt: str | None = None,
    prompt_column: str | None = None,
    response_format: Mapping[str, Any] | None = None,
    response_format_column: str | None = None,
    start_column: str | None = None,
    end_column: str | None = None,
    duration_column: str | None = None,
    analysis_mode: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    model_name: str = "pegasus1.5",
) -> Prepared:
    """Build (and check) one batch request per row; see :func:`submit` for the parameters.

    Raises
    ------
    InvalidInputError
        Listing every problem with the rows' index labels and values; nothing is sent.
    """
    if not isinstance(data, pd.DataFrame):
        raise InvalidInputError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    if data.empty:
        raise InvalidInputError("data is an empty DataFrame: there is nothing to submit.")
    for name, column in (
        ("asset", asset), ("key", key), ("prompt_column", prompt_column),
        ("response_format_column", response_format_column), ("start_column", start_column),
        ("end_column", end_column), ("duration_column", duration_column),
    ):  # fmt: skip
        if column is not None and column not in data.columns:
            raise InvalidInputError(
                f"{name}={column!r} is not a column of the DataFrame; columns are {list(data.columns)!r}."
            )
    if analysis_mode not in (None, "general", "time_based_metadata"):
        raise InvalidInputError(
            f"analysis_mode {analysis_mode!r} is not one of 'general', 'time_based_metadata' "
            "(or None to infer it)."
        )
    if prompt is not None and (not isinstance(prompt, str) or not prompt.strip()):
        raise InvalidInputError(f"prompt {prompt!r} must be a non-empty string (the text for every row).")
    base = dict(defaults or {})
    if prompt is not None:
        base["prompt"] = {"input_text": prompt}
    if response_format is not None:
        base["response_format"] = dict(response_format)
    default_format = _format_type(base.get("response_format"))

    problems = _Problems()
    labels = list(data.index)
    if not data.index.is_unique and key is None:
        dup = data.index[data.index.duplicated()].unique().tolist()[:_EXAMPLES]
        problems.add(
            "duplicate index labels, so no stable custom_id can be generated (pass key= a column "
            "of unique ids, or reset_index())",
            ", ".join(_label(x) for x in dup),
        )
    assets = data[asset].tolist()
    keys = data[key].tolist() if key is not None else None
    prompts = data[prompt_column].tolist() if prompt_column else None
    formats = data[response_format_column].tolist() if response_format_column else None
    starts = data[start_column].tolist() if start_column else None
    ends = data[end_column].tolist() if end_column else None
    durations = data[duration_column].tolist() if duration_column else None

    rows: list[PreparedRow] = []
    ids: list[str] = []
    seen: dict[str, Any] = {}
    modes: dict[str, list[Any]] = {"general": [], "time_based_metadata": []}
    for i, label in enumerate(labels):
        where = f"row {_label(label)}"
        bad = False
        asset_id = assets[i]
        if _missing(asset_id) or not isinstance(asset_id, str) or not asset_id.strip():
            problems.add(f"missing or empty asset id in column {asset!r}", f"{where}: {_show(asset_id)}")
            bad = True
            asset_id = ""
        else:
            asset_id = asset_id.strip()
        # custom_id
        if keys is not None:
            raw = keys[i]
            if _missing(raw):
                problems.add(f"missing custom_id in column {key!r}", f"{where}: {_show(raw)}")
                custom_id = ""
                bad = True
            else:
                custom_id = str(raw.item() if hasattr(raw, "item") else raw)
                if isinstance(raw, float) and raw.is_integer():
                    custom_id = str(int(raw))
                if not _CUSTOM_ID.fullmatch(custom_id):
                    problems.add(
                        f"invalid custom_id in column {key!r} (1 to 64 of letters, digits, '_', '-')",
                        f"{where}: {custom_id!r}",
                    )
                    bad = True
        else:
            custom_id = stable_custom_id(label, asset_id)
        if custom_id and custom_id in seen:
            problems.add(
                "duplicate custom_id", f"{where} repeats {custom_id!r} of row {_label(seen[custom_id])}"
            )
            bad = True
        elif custom_id:
            seen[custom_id] = label
        ids.append(custom_id)
        request: dict[str, Any] = {"video": {"type": "asset_id", "asset_id": asset_id}}
        # prompt
        if prompts is not None and not _missing(prompts[i]):
            text = prompts[i]
            if not isinstance(text, str) or not text.strip():
                problems.add(f"empty or non-text prompt in column {prompt_column!r}", f"{where}: {text!r}")
                bad = True
            else:
                request["prompt"] = {"input_text": text}
        # response format
        fmt = default_format
        if formats is not None:
            try:
                row_format = _response_format(formats[i])
            except ValueError as exc:
                problems.add(
                    f"unreadable response_format in column {response_format_column!r}", f"{where}: {exc}"
                )
                row_format = None
                bad = True
            if row_format is not None:
                request["response_format"] = row_format
                fmt = _format_type(row_format)
        row_mode = "time_based_metadata" if fmt == "segment_definitions" else "general"
        if analysis_mode is not None and row_mode != analysis_mode and fmt is not None:
            problems.add(
                f"response_format does not fit analysis_mode {analysis_mode!r}",
                f"{where}: type {fmt!r}",
            )
            bad = True
        modes[row_mode].append(label)
        effective_mode = analysis_mode or row_mode
        if effective_mode == "general" and "prompt" not in request and "prompt" not in base:
            problems.add("no prompt (give prompt= or a prompt_column value)", where)
            bad = True
        if effective_mode == "time_based_metadata" and "prompt" in request:
            problems.add("a prompt in time_based_metadata mode (not supported by the API)", where)
            bad = True
        # window and content
        try:
            start = _number(starts[i]) if starts is not None else None
            end = _number(ends[i]) if ends is not None else None
            length = _number(durations[i]) if durations is not None else None
        except (TypeError, ValueError) as exc:
            problems.add("a time column value that is not a number of seconds", f"{where}: {exc}")
            start = end = length = None
            bad = True
        if (start is not None and start < 0) or (end is not None and end < 0):
            problems.add("a negative start or end time", f"{where}: start {start}, end {end}")
            bad = True
        if start is not None:
            request["start_time"] = start
        if end is not None:
            request["end_time"] = end
        window: float | None = None
        if end is not None:
            window = end - (start or 0.0)
        elif length is not None:
            window = length - (start or 0.0)
        if window is not None:
            if window < 1:
                problems.add(
                    "an analysis window shorter than 1 s (end must be at least 1 s after start)",
                    f"{where}: start {start or 0:g}, end {end if end is not None else length:g}",
                )
                bad = True
            elif window > MAX_WINDOW_S:
                problems.add(
                    "an analysis window over 2 h (the API fails such items; give start/end columns)",
                    f"{where}: {window / 3600:.2f} h (start {start or 0:g} s, "
                    f"end {end if end is not None else length:g} s)",
                )
                bad = True
        content = window if window is not None else length
        if not bad:
            rows.append(PreparedRow(label, custom_id, request, content))
    if modes["general"] and modes["time_based_metadata"] and analysis_mode is None:
        tbm, gen = modes["time_based_metadata"], modes["general"]
        problems.add(
            "mixed analysis modes: a job has one mode (segment_definitions means "
            "time_based_metadata); split the DataFrame into two jobs",
            f"{len(tbm)} time_based_metadata rows (e.g. {', '.join(map(_label, tbm[:3]))}) and "
            f"{len(gen)} general rows (e.g. {', '.join(map(_label, gen[:3]))})",
        )
    problems.raise_if_any(len(data))
    mode = analysis_mode or ("time_based_metadata" if modes["time_based_metadata"] else "general")
    if mode == "time_based_metadata" and "prompt" in base:
        raise InvalidInputError(
            "prompt= is not supported in time_based_metadata mode; describe segments in response_format."
        )
    # the client's own checks, per row, so an error names the row (still before any request)
    for row in rows:
        try:
            build_create_body(
                analysis_mode=mode, model_name=model_name, defaults=base,
                requests=[{**row.request, "custom_id": row.custom_id}],
            )  # fmt: skip
        except InvalidInputError as exc:
            problems.add("a request the API would refuse", f"row {_label(row.label)}: {exc}")
    problems.raise_if_any(len(data))
    return Prepared(mode, model_name, base, tuple(rows), pd.Series(ids, index=data.index, dtype=object))


def plan_chunks(
    rows: Sequence[tuple[str, float | None]],
    *,
    max_items: int = MAX_REQUESTS,
    max_content_hours: float = MAX_CONTENT_HOURS,
) -> list[list[str]]:
    """Split ``(custom_id, content seconds)`` into runs of at most ``max_items`` and ``max_content_hours``."""
    limit = max_content_hours * 3600.0
    chunks: list[list[str]] = []
    current: list[str] = []
    content = 0.0
    for custom_id, seconds in rows:
        s = seconds or 0.0
        if current and (len(current) >= max_items or content + s > limit):
            chunks.append(current)
            current, content = [], 0.0
        current.append(custom_id)
        content += s
    if current:
        chunks.append(current)
    return chunks


# --------------------------------------------------------------------------------------------
# The manifest
# --------------------------------------------------------------------------------------------


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
        self.settings: dict[str, Any] = dict(data.get("settings") or {})
        self.base_url: str = str(data.get("base_url") or "")
        self.created_at: str = str(data.get("created_at") or format_time(datetime.now(timezone.utc)))
        self.rows: dict[str, dict[str, Any]] = dict(data.get("rows") or {})
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
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise BatchWidgetError(
                f"{str(p)!r} is not a batch_widget job manifest (format {MANIFEST_FORMAT!r}); "
                "pass another manifest= path."
            )
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


# --------------------------------------------------------------------------------------------
# The job
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSnapshot:
    """What the job widget shows: a projection of the chunks and the latest poll of each batch."""

    state: str
    message: str
    total: int
    counts: dict[str, int]
    batches: tuple[dict[str, Any], ...]
    active: int | None
    max_active: int
    eta_s: float | None
    error: str
    cancel_requested: bool
    manifest: str
    updated_at: str

    @property
    def finished(self) -> bool:
        return self.state in ("done", "attention", "error", "canceled")


_JOBS: dict[str, Job] = {}
_JOBS_LOCK = threading.Lock()


def _job_key(path: Path) -> str:
    return str(path.resolve())


def _live_job(path: Path, client: BatchClient) -> Job | None:
    """The job this process already runs from ``path`` with a client of the same base URL."""
    with _JOBS_LOCK:
        job = _JOBS.get(_job_key(path))
    return job if job is not None and job.client.base_url == client.base_url else None


def _register_job(path: Path, job: Job) -> Job:
    with _JOBS_LOCK:
        _JOBS[_job_key(path)] = job
    return job


class Job:
    """Many batches watched as one: created by :func:`submit` or :func:`resume_job`.

    Display it (``job`` as a cell's last line) for the live job widget; ``await job.wait()``
    waits without blocking the kernel; ``await job.to_pandas()`` gives the input rows with the
    results joined on.
    """

    def __init__(
        self,
        client: BatchClient,
        manifest: Manifest,
        *,
        max_active: int = ACCOUNT_MAX_ACTIVE,
        on_uncertain: Uncertain = "ask",
        schedule: Schedule | None = None,
        slot_poll: float = 15.0,
        clock: Callable[[], float] | None = None,
        wall: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if on_uncertain not in ("ask", "resubmit", "skip", "raise"):
            raise InvalidInputError(
                f"on_uncertain {on_uncertain!r} is not one of 'ask', 'resubmit', 'skip', 'raise'."
            )
        if not isinstance(max_active, int) or not 1 <= max_active <= ACCOUNT_MAX_ACTIVE:
            raise InvalidInputError(
                f"max_active {max_active!r} must be an integer from 1 to {ACCOUNT_MAX_ACTIVE}."
            )
        self.client = client
        self.manifest = manifest
        self.max_active = max_active
        self.on_uncertain: Uncertain = on_uncertain
        self.slot_poll = slot_poll
        self._poll_kwargs: dict[str, Any] = {
            k: v
            for k, v in (("schedule", schedule), ("clock", clock), ("wall", wall), ("sleep", sleep))
            if v is not None
        }
        self._wall = wall or (lambda: datetime.now(timezone.utc) + timedelta(seconds=client.server_clock_offset))
        self._sleep = sleep
        self.inputs: pd.DataFrame | None = None
        self.input_ids: pd.Series | None = None
        self.skipped_rows = 0
        self._pollers: dict[str, BatchPoller] = {}
        self._updates: dict[str, PollUpdate] = {}
        self._final_lines: dict[str, list[ResultLine | ResultLineError]] = {}
        self._listeners: list[Callable[[JobSnapshot], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._done: asyncio.Future[JobSnapshot] | None = None
        self._wake: asyncio.Event | None = None
        self._message = ""
        self._error = ""
        self._active: int | None = None
        self._cancel_requested = False
        self._widget: JobWidget | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- public ---------------------------------------------------------------------------------

    @property
    def chunks(self) -> list[Chunk]:
        return self.manifest.chunks

    @property
    def path(self) -> Path:
        return self.manifest.path

    @property
    def batch_ids(self) -> list[str]:
        """The batches created so far, in chunk order."""
        return [c.batch_id for c in self.chunks if c.batch_id]

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def finished(self) -> bool:
        return self.snapshot().finished

    def __repr__(self) -> str:
        return f"<Job {self.summary_text()}>"

    def summary_text(self) -> str:
        from .job_widget import summary_text

        return summary_text(self.snapshot())

    def add_listener(self, listener: Callable[[JobSnapshot], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[JobSnapshot], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def start(self) -> None:
        """Start (or wake) the scheduler on the running loop; a no-op without one (see ``wait_blocking``)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self.running:
            self._poke()
            return
        if self._done is None or self._done.done() or self._done.get_loop() is not loop:
            self._done = loop.create_future()
        self._wake = asyncio.Event()
        self._error = ""
        self._task = loop.create_task(self._run(), name=f"batch_widget job {self.path.name}")

    async def wait(self) -> JobSnapshot:
        """Wait, without blocking the kernel, until no batch of the job runs and no chunk can go in.

        Returns the final :class:`JobSnapshot`; its ``state`` is ``done``, or ``attention`` when
        a chunk needs you (see :meth:`resolve`), or ``canceled``. Also pins the static summary
        into the job widget's displays (so nbclient / papermill runs keep it).
        """
        self.start()
        if self._done is None:
            raise BatchWidgetError("Job.wait() needs a running event loop; in a script use wait_blocking().")
        try:
            return await asyncio.shield(self._done)
        finally:
            if self._widget is not None and self.finished:
                self._widget.finalize(force=True)

    def wait_blocking(self) -> JobSnapshot:
        """Blocking twin of :meth:`wait` for scripts: blocks the calling thread until the job ends.

        Runs the job from its manifest on a private event loop in a worker thread (with its own
        client), then reloads the manifest here. In a notebook, prefer ``await job.wait()``:
        while this blocks, the kernel runs nothing else and every live display pauses.
        """

        async def run() -> JobSnapshot:
            async with self.client.clone() as client:
                job = Job(client, Manifest.load(self.path), max_active=self.max_active,
                          on_uncertain=self.on_uncertain, slot_poll=self.slot_poll,
                          schedule=self._poll_kwargs.get("schedule"))  # fmt: skip
                return await job.wait()

        snap = run_in_thread(
            run,
            "batch_widget job wait",
            warn_in_loop="Job.wait_blocking() blocks the kernel until every batch has ended; "
            "use `await job.wait()` in a notebook.",
        )
        self.manifest = Manifest.load(self.path)
        return snap

    async def cancel(self) -> list[Batch]:
        """Cancel the whole job: chunks not yet sent are skipped, active batches are canceled.

        Items already processing still finish (the API's rule). Returns the canceled batches.
        """
        self._cancel_requested = True
        for chunk in self.chunks:
            if chunk.state == "planned":
                chunk.state = "skipped"
                chunk.note = "canceled before it was submitted"
        self.manifest.save()
        self._changed()
        canceled: list[Batch] = []
        errors: list[str] = []
        for chunk in self.chunks:
            if not chunk.batch_id:
                continue
            update = self._updates.get(chunk.batch_id)
            if update is not None and update.batch is not None and update.batch.is_terminal:
                continue
            try:
                canceled.append(await self.client.cancel(chunk.batch_id))
            except APIError as exc:
                if exc.status_code != 409:  # 409: it had already ended
                    errors.append(f"{chunk.batch_id}: {describe_error(exc)}")
            except TransportError as exc:
                errors.append(f"{chunk.batch_id}: {describe_error(exc)}")
            poller = self._pollers.get(chunk.batch_id)
            if poller is not None:
                poller.refresh()
        if errors:
            self._error = "Cancel failed for " + "; ".join(errors)
        self._poke()
        self._changed()
        return canceled

    def resolve(
        self, chunk: int, *, batch_id: str | None = None, action: Literal["resubmit", "skip"] | None = None
    ) -> None:
        """Decide about an ``uncertain`` chunk: adopt ``batch_id``, or ``action="resubmit"`` / ``"skip"``.

        ``resubmit`` may create a duplicate if the lost create did reach the API: check
        ``await bw.list_batches()`` first.
        """
        found = [c for c in self.chunks if c.chunk == chunk]
        if not found:
            raise InvalidInputError(
                f"chunk {chunk!r} is not part of this job (chunks 0 to {len(self.chunks) - 1})."
            )
        target = found[0]
        if target.state not in ("uncertain", "create_failed"):
            raise InvalidInputError(f"chunk {chunk} is {target.state}, not uncertain: nothing to resolve.")
        if (batch_id is None) == (action is None):
            raise InvalidInputError("give exactly one of batch_id= or action='resubmit' / 'skip'.")
        if batch_id is not None:
            target.batch_id = validate_batch_id(batch_id)
            target.state = "created"
            target.note = "batch id given by the user"
        elif action == "resubmit":
            target.state, target.intent_at = "planned", None
            target.note = "resubmitted by the user after an uncertain create"
        elif action == "skip":
            target.state = "skipped"
            target.note = "skipped by the user"
        else:
            raise InvalidInputError(f"action {action!r} is not 'resubmit' or 'skip'.")
        target.error = None
        self.manifest.save()
        self.start()
        self._changed()

    async def resubmit(
        self, statuses: Iterable[str] = ("failed", "canceled"), *, max_attempts: int = 3
    ) -> list[Chunk]:
        """Submit again, as new batches, the rows whose newest outcome is in ``statuses``.

        That includes the unfinished items of expired batches (canceled, or failed with
        ``batch_processing_timeout``). The new chunks are linked to the ones they retry in the
        manifest (``resubmit_of``); rows that already had ``max_attempts`` attempts are left
        alone. Call it again after the new batches end: a row is never in two unfinished
        attempts at once, so re-running the cell submits nothing twice.
        """
        wanted = set(statuses)
        newest: dict[str, tuple[Chunk, str]] = {}
        attempts: dict[str, int] = {}
        for chunk in self.chunks:
            for cid in chunk.custom_ids:
                attempts[cid] = attempts.get(cid, 0) + (1 if chunk.state == "created" else 0)
            if chunk.state in ("planned", "creating", "uncertain"):
                for cid in chunk.custom_ids:
                    newest[cid] = (chunk, "unfinished")
                continue
            if chunk.state != "created" or not chunk.batch_id:
                continue
            update = self._updates.get(chunk.batch_id)
            batch = update.batch if update is not None else None
            if batch is None or not batch.is_terminal:
                batch = await self.client.get(chunk.batch_id)
            if not batch.is_terminal:
                for cid in chunk.custom_ids:
                    newest[cid] = (chunk, "unfinished")
                continue
            if batch.failed_items + batch.canceled_items == 0:
                for cid in chunk.custom_ids:
                    newest[cid] = (chunk, "ready")
                continue
            lines = await self._lines(chunk.batch_id)
            outcome = {ln.custom_id: ln.status.value for ln in lines if isinstance(ln, ResultLine)}
            for cid in chunk.custom_ids:
                newest[cid] = (chunk, outcome.get(cid, "missing"))
        redo: dict[int, list[str]] = {}
        replaces: dict[str, int] = {}
        parents: set[int] = set()
        for cid, (chunk, status) in newest.items():
            if status in wanted and attempts.get(cid, 0) < max_attempts:
                redo.setdefault(chunk.chunk, []).append(cid)
                replaces[status] = replaces.get(status, 0) + 1
                parents.add(chunk.chunk)
        ordered = [cid for chunk in self.chunks for cid in redo.get(chunk.chunk, [])]
        if not ordered:
            return []
        new_chunks = self._plan(ordered, attempt=None, resubmit_of=sorted(parents))
        # replaced counts per new chunk, for the overall bar
        by_cid = {cid: newest[cid][1] for cid in ordered}
        for chunk in new_chunks:
            counts: dict[str, int] = {}
            for cid in chunk.custom_ids:
                counts[by_cid[cid]] = counts.get(by_cid[cid], 0) + 1
            chunk.replaces = counts
        self.manifest.save()
        self._cancel_requested = False
        self.start()
        self._changed()
        return new_chunks

    async def to_pandas(
        self, *, history: bool = False, parse_json: bool = False, expand: bool = False
    ) -> pd.DataFrame:
        """The job's results as one DataFrame.

        By default: the input rows (when this job was submitted from a DataFrame in this
        process; else one row per job row with its index label) with the newest outcome of each
        row joined on by custom_id, plus ``batch_id``, ``chunk``, ``attempt``, ``attempts``
        (how many batches the row went into) and ``status_history`` (e.g. ``"failed → ready"``).
        With ``history=True``: every attempt, one row per (row, batch).
        """
        frames = []
        for chunk in self.chunks:
            if chunk.state != "created" or not chunk.batch_id:
                continue
            lines = await self._lines(chunk.batch_id)
            frame = results_to_frame(lines, order=chunk.custom_ids, parse_json=parse_json, expand=expand)
            frame.insert(1, "batch_id", chunk.batch_id)
            frame.insert(2, "chunk", chunk.chunk)
            frame.insert(3, "attempt", chunk.attempt)
            frames.append(frame)
        if frames:
            long = pd.concat(frames, ignore_index=True)
        else:
            long = results_to_frame([])
            for pos, name in enumerate(("batch_id", "chunk", "attempt"), start=1):
                long.insert(pos, name, pd.Series([], dtype=object))
        if history:
            everything: pd.DataFrame = long
            return everything
        keyed = long[long["custom_id"].notna()]
        statuses = keyed["status"].astype(object).where(keyed["status"].notna(), "missing").astype(str)
        grouped = statuses.groupby(keyed["custom_id"].astype(object), sort=False)
        newest = keyed.drop_duplicates("custom_id", keep="last").copy()
        cids = newest["custom_id"].astype(object)
        newest["attempts"] = cids.map(grouped.size()).astype("int64").to_numpy()
        newest["status_history"] = cids.map(grouped.agg(lambda s: " → ".join(s))).to_numpy()
        return self._join(newest)

    async def _lines(self, batch_id: str) -> list[ResultLine | ResultLineError]:
        """A batch's results; kept once the batch has ended (they cannot change any more), so
        ``to_pandas`` and ``resubmit`` do not download the same finished batches again."""
        cached = self._final_lines.get(batch_id)
        if cached is not None:
            return cached
        lines = await self.client.result_lines(batch_id)
        update = self._updates.get(batch_id)
        if update is not None and update.batch is not None and update.batch.is_terminal:
            self._final_lines[batch_id] = lines
        return lines

    def _join(self, newest: pd.DataFrame) -> pd.DataFrame:
        from .frames import join_results

        tmp = "__bw_custom_id__"
        right = newest.rename(columns={"custom_id": tmp})
        if self.inputs is not None and self.input_ids is not None:
            left = self.inputs.copy()
            left[tmp] = self.input_ids
        else:
            rows = self.manifest.rows
            left = pd.DataFrame(
                {
                    "row": [rows[c].get("index") for c in rows],
                    "asset_id": [rows[c]["request"]["video"]["asset_id"] for c in rows],
                    tmp: list(rows),
                }
            )
        joined: pd.DataFrame = join_results(left, right, on=tmp)
        name = "custom_id" if "custom_id" not in left.columns else "job_custom_id"
        joined = joined.rename(columns={tmp: name})
        # rows that never went into a batch: say why
        if "note" in joined.columns:
            pending = {cid: c.state for c in self.chunks if c.state != "created" for cid in c.custom_ids}
            if pending:
                note = joined["note"].astype(object).to_numpy(copy=True)
                for i, cid in enumerate(joined[name].tolist()):
                    state = pending.get(cid)
                    if (
                        state is not None
                        and joined["status"].iloc[i] is not None
                        and pd.isna(joined["status"].iloc[i])
                    ):
                        note[i] = f"not submitted: chunk {state}"
                joined["note"] = pd.Series(note, index=joined.index).astype(joined["note"].dtype)
        return joined

    def snapshot(self) -> JobSnapshot:
        """The job as the widget shows it."""
        rows_total = len(self.manifest.rows)
        counts = {"ready": 0, "failed": 0, "canceled": 0, "processing": 0, "queued": 0, "waiting": 0}
        batches: list[dict[str, Any]] = []
        eta: float | None = 0.0
        rate = 0.0
        running = 0
        attention = False
        for chunk in self.chunks:
            total = len(chunk.custom_ids)
            row: dict[str, Any] = {
                "chunk": chunk.chunk, "attempt": chunk.attempt, "batch_id": chunk.batch_id or "",
                "state": chunk.state, "status": "", "total": total, "queued": 0, "processing": 0,
                "ready": 0, "failed": 0, "canceled": 0, "eta_s": None, "error": chunk.error or "",
                "note": chunk.note or "", "resubmit_of": list(chunk.resubmit_of),
            }  # fmt: skip
            for status, n in chunk.replaces.items():
                if status in counts:
                    counts[status] -= n
            if chunk.state == "created" and chunk.batch_id:
                update = self._updates.get(chunk.batch_id)
                batch = update.batch if update is not None else None
                if batch is None:
                    row["status"] = "pending"
                    row["queued"] = total
                    counts["queued"] += total
                    running += 1
                    eta = None
                else:
                    row["status"] = batch.status.value
                    for k, v in batch.counts.items():
                        row[k] = v
                        counts[k] += v
                    if not batch.is_terminal:
                        running += 1
                        row["eta_s"] = update.eta_s if update is not None else None
                        if update is not None and update.rate_per_min:
                            rate += update.rate_per_min
                if update is not None and update.state == "error":
                    row["error"] = update.error
                    if batch is None or not batch.is_terminal:
                        attention = True
                        running -= 1
            elif chunk.state in ("planned", "creating"):
                counts["waiting"] += total
                row["status"] = "waiting" if chunk.state == "planned" else "creating"
            else:
                row["status"] = chunk.state.replace("_", " ")
                if chunk.state != "skipped":
                    attention = True
                counts["canceled" if chunk.state == "skipped" else "waiting"] += total
            batches.append(row)
        remaining = counts["queued"] + counts["processing"] + counts["waiting"]
        eta = remaining / rate * 60.0 if rate > 0 and remaining else (0.0 if not remaining else None)
        unsent = any(c.state in ("planned", "creating") for c in self.chunks)
        if self._error and not self.running and (unsent or running):
            state = "error"
        elif running or unsent or (self.running and not self._settled()):
            if self._cancel_requested:
                state = "canceling"
            elif self._message.startswith("waiting"):
                state = "waiting"
            elif unsent:
                state = "submitting"
            else:
                state = "running"
        elif not self.chunks:
            state = "idle"
        elif self._cancel_requested:
            state = "canceled"
        elif attention:
            state = "attention"
        else:
            state = "done"
        message = self._message if state in ("waiting", "submitting", "canceling", "running") else ""
        if state == "attention":
            message = self._attention_message()
        return JobSnapshot(
            state=state,
            message=message,
            total=rows_total,
            counts={k: max(0, v) for k, v in counts.items()},
            batches=tuple(batches),
            active=self._active,
            max_active=self.max_active,
            eta_s=eta if state not in ("done", "attention", "canceled", "error") else None,
            error=self._error,
            cancel_requested=self._cancel_requested,
            manifest=self.path.name,
            updated_at=format_time(self._wall()) or "",
        )

    # -- display --------------------------------------------------------------------------------

    @property
    def widget(self) -> JobWidget:
        """The job widget (one per job; every display of the job shows it)."""
        if self._widget is None:
            from .job_widget import JobWidget

            self._widget = JobWidget(self)
        return self._widget

    def _ipython_display_(self, **kwargs: Any) -> None:
        self.widget._ipython_display_(**kwargs)

    # -- plumbing -------------------------------------------------------------------------------

    def _attention_message(self) -> str:
        parts = []
        for c in self.chunks:
            if c.state == "uncertain":
                parts.append(f"chunk {c.chunk}: {c.error or 'create uncertain'}")
            elif c.state == "create_failed":
                parts.append(f"chunk {c.chunk} was refused: {c.error}")
            elif c.state == "created" and c.batch_id:
                update = self._updates.get(c.batch_id)
                if update is not None and update.state == "error":
                    parts.append(f"batch {c.batch_id}: {update.error}")
        return " | ".join(parts)

    def _plan(
        self, custom_ids: Sequence[str], *, attempt: int | None, resubmit_of: Sequence[int] = ()
    ) -> list[Chunk]:
        """Append chunks for ``custom_ids`` (rows already in ``manifest.rows``)."""
        rows = self.manifest.rows
        pairs = [(cid, rows[cid].get("content_s")) for cid in custom_ids]
        start = len(self.chunks)
        made = []
        for n, ids in enumerate(
            plan_chunks(pairs, max_items=self._chunk_size, max_content_hours=self._max_hours)
        ):
            tries = attempt
            if tries is None:  # a resubmission: one more than the newest attempt of its rows
                tries = 1 + max(
                    (c.attempt for c in self.chunks if c.state == "created" and set(ids) & set(c.custom_ids)),
                    default=0,
                )
            chunk = Chunk(chunk=start + n, attempt=tries, custom_ids=list(ids), resubmit_of=list(resubmit_of))
            self.chunks.append(chunk)
            made.append(chunk)
        return made

    _chunk_size = MAX_REQUESTS
    _max_hours = MAX_CONTENT_HOURS

    def _changed(self) -> None:
        snap = self.snapshot()
        for listener in list(self._listeners):
            try:
                listener(snap)
            except Exception:
                log.exception("job listener failed")

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _set_message(self, text: str) -> None:
        if text != self._message:
            self._message = text
            self._changed()

    async def _pause(self, seconds: float) -> None:
        assert self._wake is not None
        await sleep_or_wake(seconds, self._wake, self._sleep)

    def _settled(self) -> bool:
        """True when nothing more happens without the user: no chunk to send, no batch running."""
        for chunk in self.chunks:
            if chunk.state in ("planned", "creating"):
                return False
            if chunk.state == "created" and chunk.batch_id:
                update = self._updates.get(chunk.batch_id)
                if update is None or not update.finished:
                    return False
        return True

    async def _run(self) -> None:
        try:
            for chunk in self.chunks:
                if chunk.state == "creating":
                    await self._recover(chunk)
            for chunk in self.chunks:
                if chunk.state == "created" and chunk.batch_id:
                    self._watch(chunk)
            self._changed()
            while True:
                todo = next((c for c in self.chunks if c.state == "planned"), None)
                if todo is None or self._cancel_requested:
                    break
                if not await self._wait_for_slot():
                    continue
                await self._create(todo)
            self._set_message("")
            while not self._settled():
                await self._pause(max(self.slot_poll, 1.0))
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.debug("job scheduler stopped on an error", exc_info=True)
            self._error = describe_error(error)
            self._finish(error)
            return
        self._finish(None)

    def _finish(self, error: BaseException | None) -> None:
        self._message = ""
        snap = self.snapshot()
        if self._done is not None and not self._done.done():
            if error is not None:
                self._done.set_exception(error)
                self._done.exception()
            else:
                self._done.set_result(snap)
        self._changed()

    async def _count_active(self) -> int:
        page = await self.client.list_page(1, page_limit=1, status=ACTIVE_STATUSES)
        return page.total_results

    async def _wait_for_slot(self) -> bool:
        """Return True when a slot is free now; False after a pause (the caller loops)."""
        try:
            active = await self._count_active()
        except (AuthenticationError, PermissionDeniedError):
            raise
        except (APIError, TransportError) as exc:
            self._set_message(f"could not count the active batches ({describe_error(exc)}); retrying")
            await self._pause(self.slot_poll)
            return False
        self._active = active
        if active < self.max_active:
            return True
        self._set_message(f"waiting for a free slot ({active} of {self.max_active} active)")
        await self._pause(self.slot_poll)
        return False

    async def _create(self, chunk: Chunk) -> None:
        rows = self.manifest.rows
        settings = self.manifest.settings
        requests = [{**rows[cid]["request"], "custom_id": cid} for cid in chunk.custom_ids]
        chunk.state = "creating"
        chunk.intent_at = format_time(self._wall())
        chunk.error = None
        self.manifest.save()  # the intent, before the request
        self._set_message(f"submitting chunk {chunk.chunk} ({len(requests)} rows)")
        try:
            created = await self.client.create(
                analysis_mode=settings["analysis_mode"],
                model_name=settings.get("model_name") or "pegasus1.5",
                defaults=settings.get("defaults") or None,
                requests=requests,
                retry=NO_RETRY,  # a 429 at the cap is ours to wait out, visibly
            )
        except RateLimitError as exc:  # 429: no batch was made
            chunk.state, chunk.intent_at = "planned", None
            self.manifest.save()
            wait = max(exc.retry_after or 0.0, self.slot_poll)
            self._set_message(f"waiting for a free slot (the API answered 429; next try in {wait:.0f} s)")
            await self._pause(wait)
            return
        except ServerError as exc:
            if exc.status_code == 503:  # documented: no batch was made
                chunk.state, chunk.intent_at = "planned", None
                self.manifest.save()
                self._set_message(f"the API is busy ({describe_error(exc)}); retrying chunk {chunk.chunk}")
                await self._pause(self.slot_poll)
                return
            chunk.error = f"create answered {describe_error(exc)}"
            self.manifest.save()
            await self._recover(chunk)
            return
        except (AuthenticationError, PermissionDeniedError):
            chunk.state, chunk.intent_at = "planned", None
            self.manifest.save()
            raise
        except (APIError, InvalidInputError) as exc:  # a 4xx refusal: nothing was created
            chunk.state = "create_failed"
            chunk.error = describe_error(exc) if isinstance(exc, APIError) else str(exc)
            self.manifest.save()
            self._changed()
            return
        except TransportError as exc:  # the request may or may not have reached the API
            chunk.error = f"create got no answer ({describe_error(exc)})"
            self.manifest.save()
            await self._recover(chunk)
            return
        chunk.state = "created"
        chunk.batch_id = created.batch_id
        chunk.created_at = format_time(created.created_at)
        self.manifest.save()  # the batch id, right after the answer
        if self._active is not None:
            self._active += 1
        self._watch(chunk)
        self._changed()

    async def _recover(self, chunk: Chunk) -> None:
        """Match an intent without a batch id to the account's batches, or apply ``on_uncertain``."""
        self._set_message(f"checking whether chunk {chunk.chunk}'s interrupted create made a batch")
        intent = parse_time(chunk.intent_at) if chunk.intent_at else None
        claimed = {c.batch_id for c in self.chunks if c.batch_id}
        wanted = sorted(chunk.custom_ids)
        confirmed: list[Batch] = []
        candidates = 0
        async for batch in self.client.list(analysis_mode=self.manifest.settings.get("analysis_mode")):
            if (
                intent is not None
                and batch.created_at is not None
                and (batch.created_at < intent - timedelta(seconds=INTENT_SLACK_S))
            ):
                break  # newest first: everything further is older than the intent
            if batch.batch_id in claimed or batch.total_items != len(wanted):
                continue
            candidates += 1
            lines = await self.client.result_lines(batch.batch_id)
            ids = sorted(str(ln.custom_id) for ln in lines if isinstance(ln, ResultLine))
            if ids == wanted:
                confirmed.append(batch)
        if len(confirmed) == 1:
            found = confirmed[0]
            chunk.state, chunk.batch_id = "created", found.batch_id
            chunk.created_at = format_time(found.created_at)
            chunk.error = None
            chunk.note = (
                f"recovered after an interrupted create: batch {found.batch_id} has the same "
                f"{len(wanted)} custom_ids and was created after the intent"
            )
            self.manifest.save()
            self._watch(chunk)
            self._changed()
            return
        if confirmed:
            why = (
                f"{len(confirmed)} batches ({', '.join(b.batch_id for b in confirmed)}) match its "
                "custom_ids; "
                "adopt one with job.resolve(chunk, batch_id=...) and cancel the other"
            )
        else:
            why = (
                f"no batch on the account matches it ({candidates} with {len(wanted)} items created after "
                "the intent, none with its custom_ids), so it was most likely never created"
            )
        text = (
            f"a create started at {chunk.intent_at} got no recorded answer; {why}. "
            f"Decide: job.resolve({chunk.chunk}, action='resubmit') or "
            f"job.resolve({chunk.chunk}, batch_id='...') or job.resolve({chunk.chunk}, action='skip')"
        )
        policy = self.on_uncertain
        if policy == "resubmit" and not confirmed:
            chunk.state, chunk.intent_at = "planned", None
            chunk.note = f"resubmitted (on_uncertain='resubmit'): {why}"
            chunk.error = None
        elif policy == "skip":
            chunk.state = "skipped"
            chunk.note = f"skipped (on_uncertain='skip'): {why}"
        else:
            chunk.state = "uncertain"
            chunk.error = text
        self.manifest.save()
        self._changed()
        if policy == "raise":
            raise UncertainCreateError(f"chunk {chunk.chunk}: {text}")
        if chunk.state == "uncertain":
            warnings.warn(f"batch_widget job {self.path.name}, chunk {chunk.chunk}: {text}", stacklevel=2)

    def _watch(self, chunk: Chunk) -> None:
        assert chunk.batch_id is not None
        if chunk.batch_id in self._pollers:
            return
        poller = BatchPoller.shared(self.client, chunk.batch_id, **self._poll_kwargs)
        self._pollers[chunk.batch_id] = poller
        self._updates[chunk.batch_id] = poller.update
        poller.add_listener(self._on_poll)
        poller.acquire()

    def _on_poll(self, update: PollUpdate) -> None:
        self._updates[update.batch_id] = update
        if update.finished:
            self._poke()
            if self._active is not None and update.batch is not None and update.batch.is_terminal:
                self._active = max(0, self._active - 1)
        self._changed()

    def close(self) -> None:
        """Stop the scheduler and this job's share of the polling (the manifest stays)."""
        if self._task is not None:
            self._task.cancel()
        for poller in self._pollers.values():
            poller.remove_listener(self._on_poll)
            poller.release()
        self._pollers.clear()
        with _JOBS_LOCK:
            if _JOBS.get(_job_key(self.path)) is self:
                del _JOBS[_job_key(self.path)]


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def submit(
    data: pd.DataFrame,
    *,
    asset: str = "asset_id",
    prompt: str | None = None,
    key: str | None = None,
    prompt_column: str | None = None,
    response_format: Mapping[str, Any] | None = None,
    response_format_column: str | None = None,
    start_column: str | None = None,
    end_column: str | None = None,
    duration_column: str | None = None,
    analysis_mode: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    model_name: str = "pegasus1.5",
    manifest: str | os.PathLike[str] = DEFAULT_MANIFEST,
    client: BatchClient | None = None,
    max_active: int = ACCOUNT_MAX_ACTIVE,
    chunk_size: int = MAX_REQUESTS,
    max_content_hours: float = MAX_CONTENT_HOURS,
    on_uncertain: Uncertain = "ask",
    schedule: Schedule | None = None,
    slot_poll: float = 15.0,
    clock: Callable[[], float] | None = None,
    wall: Callable[[], datetime] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> Job:
    """Submit every row of ``data`` as batch requests, as one job; returns the :class:`Job` at once.

    The rows are checked first (every problem named by row, nothing sent on any), recorded in the
    manifest, split into chunks of at most ``chunk_size`` requests and ``max_content_hours``, and
    sent by a scheduler on the running event loop that keeps at most ``max_active`` batches
    active on the account. Re-running with the same ``manifest`` re-attaches to the job and
    sends only rows whose custom_id it does not hold yet.

    Parameters
    ----------
    data : DataFrame
        One row per video.
    asset : str
        The column of asset ids.
    prompt : str, optional
        The prompt text for every row (``defaults.prompt``).
    key : str, optional
        A column of your own ids, used as custom_ids (1-64 of ``[A-Za-z0-9_-]``, unique). Without
        it each row gets a stable generated id from its index label and asset id.
    prompt_column, response_format_column : str, optional
        Per-row prompt text / response_format (a dict or its JSON); a missing value falls back
        to ``prompt`` / ``response_format``.
    start_column, end_column, duration_column : str, optional
        Per-row analysis window (seconds) and video duration (seconds, used for the 2 h window
        check and the 2,000 content hours per batch).
    analysis_mode : {"general", "time_based_metadata"}, optional
        Inferred from the response formats when not given; mixed modes are refused.
    defaults : dict, optional
        Other batch defaults (``temperature``, ``max_tokens``, ...).
    manifest : path
        The job's JSON record (default ``bw_job.manifest.json`` in the working directory, i.e.
        beside the notebook). One manifest = one job: use another path for another job.
    client : BatchClient, optional
        Defaults to one client per process from ``TWELVELABS_API_KEY``.
    max_active : int
        At most this many batches active on the account (the API allows 5).
    on_uncertain : {"ask", "resubmit", "skip", "raise"}
        What to do with a create whose answer was lost and that matches no batch for sure:
        ``ask`` (default) marks the chunk ``uncertain`` and waits for :meth:`Job.resolve`.
    schedule, slot_poll, clock, wall, sleep
        Polling schedule, seconds between slot checks, and injectable time (for tests).

    Returns
    -------
    Job
        Display it for the live job widget; ``await job.wait()``; ``await job.to_pandas()``.
    """
    if not isinstance(chunk_size, int) or not 1 <= chunk_size <= MAX_REQUESTS:
        raise InvalidInputError(f"chunk_size {chunk_size!r} must be an integer from 1 to {MAX_REQUESTS}.")
    if not 0 < max_content_hours <= MAX_CONTENT_HOURS:
        raise InvalidInputError(
            f"max_content_hours {max_content_hours!r} must be in (0, {MAX_CONTENT_HOURS:g}]."
        )
    prepared = prepare_requests(
        data, asset=asset, key=key, prompt=prompt, prompt_column=prompt_column,
        response_format=response_format, response_format_column=response_format_column,
        start_column=start_column, end_column=end_column, duration_column=duration_column,
        analysis_mode=analysis_mode, defaults=defaults, model_name=model_name,
    )  # fmt: skip
    client = default_client(client)
    path = Path(manifest)
    job = _live_job(path, client)
    if job is None:
        loaded = Manifest.load(path) if path.exists() else None
        if loaded is None:
            loaded = Manifest(path, {"settings": prepared.settings, "base_url": client.base_url})
        job = _register_job(path, Job(
            client, loaded, max_active=max_active, on_uncertain=on_uncertain, schedule=schedule,
            slot_poll=slot_poll, clock=clock, wall=wall, sleep=sleep,
        ))  # fmt: skip
    else:
        job.max_active, job.on_uncertain, job.slot_poll = max_active, on_uncertain, slot_poll
    job._chunk_size, job._max_hours = chunk_size, max_content_hours
    _add_rows(job, prepared)
    job.inputs, job.input_ids = data, prepared.ids
    job.start()
    return job


def _add_rows(job: Job, prepared: Prepared) -> None:
    man = job.manifest
    claimed = man.claimed()
    fresh = [r for r in prepared.rows if r.custom_id not in claimed]
    known = [r for r in prepared.rows if r.custom_id in claimed]
    job.skipped_rows = len(known)
    changed = sum(1 for r in known if man.rows.get(r.custom_id, {}).get("request") != r.request)
    if changed:
        warnings.warn(
            f"{changed} rows are already in job {man.path.name} with a different request (prompt, "
            "window, ...); they are not sent again. Use another manifest= path for a new job.",
            stacklevel=3,
        )
    if fresh and man.chunks and man.settings != prepared.settings:
        raise InvalidInputError(
            f"manifest {str(man.path)!r} holds a job with other settings ({man.settings!r}); "
            f"{len(fresh)} new rows cannot join it. Use another manifest= path for a new job."
        )
    if not man.chunks:
        man.settings = prepared.settings
        man.base_url = job.client.base_url
    for r in fresh:
        man.rows[r.custom_id] = {
            "index": _jsonable_label(r.label),
            "request": r.request,
            "content_s": r.content_s,
        }
    if fresh:
        job._plan([r.custom_id for r in fresh], attempt=1)
    if fresh or not man.path.exists():
        man.save()


def resume_job(
    manifest: str | os.PathLike[str] = DEFAULT_MANIFEST,
    client: BatchClient | None = None,
    *,
    max_active: int = ACCOUNT_MAX_ACTIVE,
    on_uncertain: Uncertain = "ask",
    schedule: Schedule | None = None,
    slot_poll: float = 15.0,
    clock: Callable[[], float] | None = None,
    wall: Callable[[], datetime] | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> Job:
    """Re-attach to a job from its manifest (e.g. after a kernel restart) and carry it on.

    Chunks not yet sent are sent, interrupted creates are matched (see ``on_uncertain``), and
    every batch is watched again. In the same process this returns the live job itself.
    """
    path = Path(manifest)
    client = default_client(client)
    job = _live_job(path, client)
    if job is None:
        try:
            loaded = Manifest.load(path)
        except FileNotFoundError:
            raise InvalidInputError(f"no job manifest at {str(path)!r}; submit() writes one.") from None
        if loaded.base_url and loaded.base_url != client.base_url:
            warnings.warn(
                f"manifest {path.name} was written for {loaded.base_url}; "
                f"the client talks to {client.base_url}",
                stacklevel=2,
            )
        job = _register_job(path, Job(
            client, loaded, max_active=max_active, on_uncertain=on_uncertain, schedule=schedule,
            slot_poll=slot_poll, clock=clock, wall=wall, sleep=sleep,
        ))  # fmt: skip
    job.start()
    return job


_LIST_COLUMNS = (
    "batch_id", "status", "analysis_mode", "model_name", "total_items", "queued_items",
    "processing_items", "ready_items", "failed_items", "canceled_items", "created_at",
    "expires_at", "ended_at",
)  # fmt: skip


async def list_batches(
    client: BatchClient | None = None,
    *,
    status: str | Iterable[str] | None = None,
    analysis_mode: str | Iterable[str] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """The account's batches as a DataFrame, newest first (every page, or the first ``limit``).

    Parameters
    ----------
    status : str or list of str, optional
        Keep only these statuses (``"processing"``, ``["pending", "processing", "canceling"]``...).
    analysis_mode : str or list of str, optional
        ``"general"`` and/or ``"time_based_metadata"``.
    limit : int, optional
        Stop after this many batches.

    Any ``batch_id`` can be watched again with ``bw.watch(batch_id)``.
    """
    client = default_client(client)
    if isinstance(status, str) and "," in status:
        status = [s.strip() for s in status.split(",")]
    records: list[dict[str, Any]] = []
    async for batch in client.list(status=status, analysis_mode=analysis_mode):
        records.append({name: getattr(batch, name) for name in _LIST_COLUMNS} | {"status": batch.status.value})
        if limit is not None and len(records) >= limit:
            break
    frame: pd.DataFrame = pd.DataFrame.from_records(records, columns=list(_LIST_COLUMNS))
    for name in ("created_at", "expires_at", "ended_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    for name in _LIST_COLUMNS[4:10]:
        frame[name] = frame[name].astype("int64")
    return frame


def list_batches_blocking(client: BatchClient | None = None, **kwargs: Any) -> pd.DataFrame:
    """Blocking twin of :func:`list_batches` for scripts: blocks the calling thread while it pages."""
    client = default_client(client)

    async def run() -> pd.DataFrame:
        async with client.clone() as own:
            return await list_batches(own, **kwargs)

    return run_in_thread(run, "batch_widget list")
