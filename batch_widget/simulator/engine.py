"""The batch/item state machine of the simulator, on an injectable clock (no HTTP here).

Everything a client can observe (batch status, the five counters, terminal timestamps, the
results lines) is a *pure function* of the clock time, the batch's schedule (drawn once at
create time from a seeded RNG) and the time a cancel was requested. Nothing runs in the
background: every read recomputes the view lazily, so a test may jump a manual clock forward
by 24 hours and see exactly what a patient observer would have seen.

Schedule of a batch created at ``c``::

    pending     c .. c + startup            (every item queued)
    processing  items start in request order, at most ``items_at_once`` at a time, each as a
                slot frees up; item i runs [start_i, end_i)
    completed   at max(end_i), if that is not later than expires_at = c + 24 h

Cancel requested at ``k`` (only while pending/processing): items with ``start_i > k`` are
canceled at once; items already processing run to completion and keep their outcome. The batch
shows ``canceling`` until the last of those ends, then ``canceled`` (``canceled_at`` = that
moment, or ``k`` itself when nothing was processing).

Expiry at ``expires_at`` when the batch has not finished by then (this also applies to a
``canceling`` batch: the 24 h deadline is hard; spec open question 3): queued items become
``canceled``; items still processing become ``failed`` with code ``batch_processing_timeout``.
That is our reading of spec open question 2: the task condition codes say a *processing* batch
task fails at the deadline (``batch_processing_timeout``) while *queued* ones are canceled
(``batch_expired``), so processing items count in ``failed_items``, queued ones in
``canceled_items``. Status ``expired``, ``expired_at`` = ``expires_at``.

Items whose analysis window (``end_time - start_time``) exceeds 2 h fail with
``video_duration_too_long`` at submission: they never take a processing slot and count in
``failed_items`` from the very first poll (spec open question 17 decided that way). They do not
reject the batch.

Forced outcomes (``outcomes=``) override the seeded draw, keyed by ``custom_id`` or
``asset_id`` (custom_id wins), or given as a callable ``f(ItemSpec) -> str | None``. Values:
``"ready"``; ``"failed"`` (code ``asset_unavailable``); ``"failed:<code>"`` (that code);
``"failed:"`` (an error with a message only, no code).
"""

from __future__ import annotations

import calendar
import heapq
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "ACTIVE_STATUSES",
    "BATCH_STATUSES",
    "DEFAULT_EPOCH",
    "EXPIRY_SECONDS",
    "TERMINAL_STATUSES",
    "ApiError",
    "Clock",
    "Engine",
    "EngineConfig",
    "ItemSpec",
    "ManualClock",
    "OutcomeFn",
    "Outcomes",
    "SpeedClock",
    "format_time",
]

#: 2026-11-28T09:00:00Z, the default start of a :class:`ManualClock` (fixed: deterministic).
DEFAULT_EPOCH = 1_795_856_400.0
EXPIRY_SECONDS = 24 * 3600.0
MAX_WINDOW_SECONDS = 2 * 3600.0
BATCH_STATUSES = ("pending", "processing", "canceling", "canceled", "completed", "expired")
TERMINAL_STATUSES = frozenset({"completed", "canceled", "expired"})
ACTIVE_STATUSES = frozenset({"pending", "processing", "canceling"})
ANALYSIS_MODES = ("general", "time_based_metadata")
TIME_FORMATS = ("seconds", "hh:mm:ss", "hh:mm:ss.fff")

_HEX24 = re.compile(r"^[0-9a-fA-F]{24}$")
_CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


# --------------------------------------------------------------------------------------------
# Clocks
# --------------------------------------------------------------------------------------------


class Clock(Protocol):
    """What drives the simulator: ``now()`` in epoch seconds, and ``advance(seconds)``.

    The engine itself only calls ``now()``; ``advance`` is there so that tests can move any
    simulator's time (both :class:`SpeedClock` and :class:`ManualClock` implement it).
    """

    def now(self) -> float: ...

    def advance(self, seconds: float) -> float: ...


class SpeedClock:
    """Simulated time running ``speed`` times faster than real time.

    ``now() = start + (monotonic elapsed) * speed + offset``. ``speed`` may be changed on the
    fly (the clock is re-anchored, never jumps), and ``advance(s)`` adds a fixed offset.
    """

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._lock = threading.Lock()
        self._speed = float(speed)
        self._anchor_sim = time.time() if start is None else float(start)
        self._anchor_real = time.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        with self._lock:
            return self._anchor_sim + (time.monotonic() - self._anchor_real) * self._speed

    def set_speed(self, speed: float) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        with self._lock:
            real = time.monotonic()
            self._anchor_sim += (real - self._anchor_real) * self._speed
            self._anchor_real = real
            self._speed = float(speed)

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._anchor_sim += float(seconds)
        return self.now()


class ManualClock:
    """A clock that only moves when told to: ``advance(seconds)`` or ``set(t)``."""

    speed = 0.0

    def __init__(self, start: float = DEFAULT_EPOCH) -> None:
        self._lock = threading.Lock()
        self._t = float(start)

    def now(self) -> float:
        with self._lock:
            return self._t

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self._t += float(seconds)
            return self._t

    def set(self, t: float) -> None:
        with self._lock:
            self._t = float(t)


def iso(t: float) -> str:
    """RFC 3339 UTC with a ``Z`` suffix, whole seconds (like the API's examples)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.floor(t)))


def parse_iso(s: str) -> float:
    return float(calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ")))


def format_time(seconds: float, fmt: str) -> float | str:
    """Format a segment boundary per ``segment_time_format``."""
    if fmt == "seconds":
        return round(seconds, 3)
    ms_total = round(seconds * 1000)
    h, rem = divmod(ms_total, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    if fmt == "hh:mm:ss":
        return f"{h:02d}:{m:02d}:{s:02d}"
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An API error the HTTP layer turns into ``{"error": {"code", "message", "details"?}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details) if details else None
        self.headers = dict(headers) if headers else {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            err["details"] = self.details
        return {"error": err}


def _invalid(path: str, message: str) -> ApiError:
    return ApiError(400, "parameter_invalid", f"{path}: {message}", {"field": path})


def _missing(path: str) -> ApiError:
    return ApiError(
        400, "parameter_not_provided", f"{path}: this field is required", {"field": path}
    )


# --------------------------------------------------------------------------------------------
# Configuration and records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemSpec:
    """What a forced-outcome callable gets to decide on."""

    index: int
    custom_id: str | None
    asset_id: str
    batch_id: str


OutcomeFn = Callable[[ItemSpec], str | None]
Outcomes = Mapping[str, str] | OutcomeFn | None


@dataclass
class EngineConfig:
    """Knobs of the simulated backend (all times in simulated seconds)."""

    seed: int = 0
    fail_rate: float = 0.05
    items_at_once: int = 8
    item_seconds: tuple[float, float] = (60.0, 300.0)
    startup_seconds: tuple[float, float] = (5.0, 30.0)
    #: assumed duration of each asset's video (seeded per asset id)
    video_seconds: tuple[float, float] = (60.0, 3600.0)
    outcomes: Outcomes = None
    missing_assets: frozenset[str] = frozenset()
    #: assets that exist but are not ``ready`` (create → 409)
    unready_assets: frozenset[str] = frozenset()
    max_active: int = 5
    #: ``Retry-After`` seconds sent with the sixth-active-batch 429
    retry_after_seconds: int = 30
    #: multiplies the size of generated outputs (sentences, array lengths, segments)
    output_scale: float = 1.0
    #: exact number of segments per segment definition (None: seeded 1-4 × output_scale)
    segments_per_definition: int | None = None
    #: share of ready json_schema / plain-text items that end with finish_reason "length"
    length_rate: float = 0.0


@dataclass
class Item:
    index: int
    task_id: str
    custom_id: str | None
    asset_id: str
    params: dict[str, Any]
    window: tuple[float, float]
    start: float
    end: float
    outcome: str  # "ready" | "failed"
    error: dict[str, Any] | None = None
    finish_length: bool = False


@dataclass
class Batch:
    number: int
    batch_id: str
    api_key: str
    analysis_mode: str
    model_name: str
    created_at: float
    expires_at: float
    processing_start: float
    items: list[Item]
    seed_key: str
    cancel_at: float | None = None
    outputs: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass
class View:
    """The observable state of a batch at one instant."""

    status: str
    item_status: list[str]
    item_error: list[dict[str, Any] | None]
    counts: dict[str, int]
    terminal_at: float | None


# --------------------------------------------------------------------------------------------
# Engine
# --------------------------------------------------------------------------------------------


class Engine:
    """All batches of all API keys, on one clock. Thread-safe."""

    def __init__(self, clock: Clock, config: EngineConfig | None = None) -> None:
        self.clock = clock
        self.config = config or EngineConfig()
        self._lock = threading.RLock()
        self._batches: dict[str, Batch] = {}
        self._counter = 0

    # ---- views ------------------------------------------------------------------------------

    def _view(self, b: Batch, t: float) -> View:
        cancel = b.cancel_at if b.cancel_at is not None and t >= b.cancel_at else None
        exp = b.expires_at
        # when would the batch finish (complete or cancel) if nothing else intervened?
        if cancel is None:
            done = max((it.end for it in b.items), default=b.processing_start)
        else:
            done = max([cancel] + [it.end for it in b.items if it.start <= cancel])
        finished = done <= exp and t >= done
        expired = not finished and t >= exp
        statuses: list[str] = []
        errors: list[dict[str, Any] | None] = []
        counts = {"queued": 0, "processing": 0, "ready": 0, "failed": 0, "canceled": 0}
        for it in b.items:
            err: dict[str, Any] | None = None
            if cancel is not None and it.start > cancel:
                st = "canceled"
            elif expired and it.end > exp:
                if it.start < exp:
                    st = "failed"
                    err = {
                        "code": "batch_processing_timeout",
                        "message": "The batch reached its 24-hour processing deadline "
                        "while this item was processing.",
                    }
                else:
                    st = "canceled"
            elif t >= it.end:
                st = it.outcome
                err = it.error if st == "failed" else None
            elif t >= it.start:
                st = "processing"
            else:
                st = "queued"
            statuses.append(st)
            errors.append(err)
            counts[st] += 1
        if finished:
            status = "canceled" if cancel is not None else "completed"
            terminal_at: float | None = done
        elif expired:
            status, terminal_at = "expired", exp
        elif cancel is not None:
            status, terminal_at = "canceling", None
        elif t < b.processing_start:
            status, terminal_at = "pending", None
        else:
            status, terminal_at = "processing", None
        return View(status, statuses, errors, counts, terminal_at)

    def _batch_object(self, b: Batch, v: View) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "batch_id": b.batch_id,
            "analysis_mode": b.analysis_mode,
            "model_name": b.model_name,
            "status": v.status,
            "total_items": len(b.items),
            "queued_items": v.counts["queued"],
            "processing_items": v.counts["processing"],
            "ready_items": v.counts["ready"],
            "failed_items": v.counts["failed"],
            "canceled_items": v.counts["canceled"],
            "created_at": iso(b.created_at),
            "expires_at": iso(b.expires_at),
        }
        if v.terminal_at is not None:
            obj[f"{v.status}_at"] = iso(v.terminal_at)
        return obj

    def _find(self, api_key: str, batch_id: str) -> Batch:
        if not isinstance(batch_id, str) or not _HEX24.match(batch_id):
            raise _invalid("batch_id", f"must be 24 hexadecimal characters, got {batch_id!r}")
        b = self._batches.get(batch_id.lower())
        if b is None or b.api_key != api_key:
            raise ApiError(404, "resource_not_exist", f"Batch {batch_id} does not exist.")
        return b

    # ---- public read API (also handy for test assertions) ------------------------------------

    def batch_state(self, batch_id: str, at: float | None = None) -> dict[str, Any]:
        """The batch object as ``GET /analyze/batches/{id}`` would return it (any API key)."""
        with self._lock:
            b = self._batches[batch_id.lower()]
        return self._batch_object(b, self._view(b, self.clock.now() if at is None else at))

    def item_statuses(self, batch_id: str, at: float | None = None) -> list[str]:
        with self._lock:
            b = self._batches[batch_id.lower()]
        return self._view(b, self.clock.now() if at is None else at).item_status

    def schedule(self, batch_id: str) -> list[tuple[float, float, str]]:
        """``(start, end, outcome)`` per item, in request order (absolute sim times)."""
        with self._lock:
            b = self._batches[batch_id.lower()]
        return [(it.start, it.end, it.outcome) for it in b.items]

    def finish_time(self, batch_id: str) -> float:
        """When the batch would complete if left alone (may be after ``expires_at``)."""
        with self._lock:
            b = self._batches[batch_id.lower()]
        return max((it.end for it in b.items), default=b.processing_start)

    def batch_ids(self, api_key: str | None = None) -> list[str]:
        with self._lock:
            return [
                b.batch_id for b in self._batches.values() if api_key in (None, b.api_key)
            ]

    def active_count(self, api_key: str | None = None) -> int:
        t = self.clock.now()
        with self._lock:
            batches = list(self._batches.values())
        return sum(
            1
            for b in batches
            if api_key in (None, b.api_key) and self._view(b, t).status in ACTIVE_STATUSES
        )

    # ---- endpoints ----------------------------------------------------------------------------

    def get(self, api_key: str, batch_id: str) -> dict[str, Any]:
        with self._lock:
            b = self._find(api_key, batch_id)
        return self._batch_object(b, self._view(b, self.clock.now()))

    def list(
        self,
        api_key: str,
        page: int = 1,
        page_limit: int = 10,
        statuses: Sequence[str] = (),
        modes: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Page through the key's batches, newest first.

        A page beyond the last one answers 200 with an empty ``data`` (spec open question 18:
        we choose the lenient answer, so a pager that stops on an empty page terminates).
        """
        if page < 1:
            raise _invalid("page", "must be an integer >= 1")
        if not 1 <= page_limit <= 50:
            raise _invalid("page_limit", "must be an integer between 1 and 50")
        for s in statuses:
            if s not in BATCH_STATUSES:
                raise _invalid("status", f"unknown batch status {s!r}")
        for m in modes:
            if m not in ANALYSIS_MODES:
                raise _invalid("analysis_mode", f"unknown analysis mode {m!r}")
        t = self.clock.now()
        with self._lock:
            mine = [b for b in self._batches.values() if b.api_key == api_key]
        mine.sort(key=lambda b: (b.created_at, b.number), reverse=True)
        rows = []
        for b in mine:
            if modes and b.analysis_mode not in modes:
                continue
            obj = self._batch_object(b, self._view(b, t))
            if statuses and obj["status"] not in statuses:
                continue
            rows.append(obj)
        total = len(rows)
        return {
            "data": rows[(page - 1) * page_limit : page * page_limit],
            "page_info": {
                "limit_per_page": page_limit,
                "page": page,
                "total_page": math.ceil(total / page_limit),
                "total_results": total,
            },
        }

    def cancel(self, api_key: str, batch_id: str) -> dict[str, Any]:
        """Request cancellation; returns the batch object as it was at request time.

        A second cancel while ``canceling`` answers 202 again with the current object (spec
        open question 3: cancel is idempotent until the batch is terminal).
        """
        with self._lock:
            b = self._find(api_key, batch_id)
            t = self.clock.now()
            v = self._view(b, t)
            if v.status in TERMINAL_STATUSES:
                raise ApiError(
                    409,
                    f"batch_{v.status}",
                    f"Batch {b.batch_id} is already {v.status}; it cannot be canceled.",
                )
            if b.cancel_at is None or b.cancel_at > t:
                b.cancel_at = t
            return self._batch_object(b, v)

    def delete(self, api_key: str, batch_id: str) -> None:
        with self._lock:
            b = self._find(api_key, batch_id)
            v = self._view(b, self.clock.now())
            if v.status not in TERMINAL_STATUSES:
                raise ApiError(
                    409,
                    "batch_not_terminal",
                    f"Batch {b.batch_id} is {v.status}; only completed, canceled or expired "
                    "batches can be deleted. Cancel it first.",
                )
            del self._batches[b.batch_id]

    def results(self, api_key: str, batch_id: str) -> Iterator[dict[str, Any]]:
        """One results line per item, in request order, as of now (lazy generator).

        The state is snapshotted when this is called (so the 404 is raised at once); output
        texts are generated (and cached) while the caller iterates.
        """
        with self._lock:
            b = self._find(api_key, batch_id)
        v = self._view(b, self.clock.now())
        return self._lines(b, v)

    def _lines(self, b: Batch, v: View) -> Iterator[dict[str, Any]]:
        for it, st, err in zip(b.items, v.item_status, v.item_error, strict=True):
            line: dict[str, Any] = {"task_id": it.task_id, "custom_id": it.custom_id, "status": st}
            if st == "ready":
                line["data"] = self._output(b, it)
            elif st == "failed":
                line["error"] = err or {"message": "The analysis failed."}
            yield line

    # ---- create -------------------------------------------------------------------------------

    def create(self, api_key: str, body: Any) -> dict[str, Any]:
        """Validate a ``CreateAnalyzeBatchRequest`` and schedule the batch (201 body)."""
        mode, model, items = _validate(body)
        cfg = self.config
        for i, (req, _) in enumerate(items):
            aid = req["video"]["asset_id"]
            path = f"requests[{i}].video.asset_id"
            if aid.lower() in cfg.missing_assets:
                raise ApiError(
                    404, "resource_not_exist", f"{path}: asset {aid} does not exist.",
                    {"field": path},
                )
            if aid.lower() in cfg.unready_assets:
                # [INF] the spec documents the 409 but no code; this one is our invention.
                raise ApiError(
                    409, "asset_not_ready", f"{path}: asset {aid} is not ready yet.",
                    {"field": path},
                )
        with self._lock:
            now = self.clock.now()
            if self.active_count(api_key) >= cfg.max_active:
                raise ApiError(
                    429,
                    "too_many_requests",
                    f"You have reached the limit of {cfg.max_active} active batches. "
                    f"Retry after {cfg.retry_after_seconds} seconds, when one has finished.",
                    {"active_batches": cfg.max_active},
                    headers={"Retry-After": str(cfg.retry_after_seconds)},
                )
            self._counter += 1
            number = self._counter
            seed_key = f"{cfg.seed}:{number}"
            rng = random.Random(f"{seed_key}:schedule")
            batch_id = _hex24(rng)
            while batch_id in self._batches:
                batch_id = _hex24(rng)
            startup = rng.uniform(*cfg.startup_seconds)
            t0 = now + startup
            slots = [t0] * max(1, cfg.items_at_once)
            built: list[Item] = []
            for i, (req, params) in enumerate(items):
                aid = req["video"]["asset_id"]
                cid = req.get("custom_id")
                task_id = _hex24(rng)
                dur = rng.uniform(*cfg.item_seconds)
                fail_draw = rng.random()
                length_draw = rng.random()
                window = self._window(aid, params)
                spec = ItemSpec(i, cid, aid, batch_id)
                forced = self._forced(spec)
                error: dict[str, Any] | None = None
                if window[1] - window[0] > MAX_WINDOW_SECONDS:
                    outcome = "failed"
                    error = {
                        "code": "video_duration_too_long",
                        "message": "The analysis window is longer than 2 hours.",
                    }
                    start = end = now
                else:
                    free = heapq.heappop(slots)
                    start, end = free, free + dur
                    heapq.heappush(slots, end)
                    if forced is not None:
                        outcome, error = _parse_outcome(forced)
                    elif fail_draw < cfg.fail_rate:
                        outcome, error = _parse_outcome("failed")
                    else:
                        outcome = "ready"
                built.append(
                    Item(
                        index=i,
                        task_id=task_id,
                        custom_id=cid,
                        asset_id=aid,
                        params=params,
                        window=window,
                        start=start,
                        end=end,
                        outcome=outcome,
                        error=error,
                        finish_length=length_draw < cfg.length_rate,
                    )
                )
            b = Batch(
                number=number,
                batch_id=batch_id,
                api_key=api_key,
                analysis_mode=mode,
                model_name=model,
                created_at=now,
                expires_at=now + EXPIRY_SECONDS,
                processing_start=t0,
                items=built,
                seed_key=seed_key,
            )
            self._batches[batch_id] = b
            v = self._view(b, now)
        return {
            "batch_id": batch_id,
            "status": v.status,
            "total_items": len(built),
            "created_at": iso(b.created_at),
            "expires_at": iso(b.expires_at),
            "items": [{"task_id": it.task_id, "custom_id": it.custom_id} for it in built],
        }

    def _forced(self, spec: ItemSpec) -> str | None:
        o = self.config.outcomes
        if o is None:
            return None
        if callable(o):
            return o(spec)
        if spec.custom_id is not None and spec.custom_id in o:
            return o[spec.custom_id]
        return o.get(spec.asset_id)

    def video_duration(self, asset_id: str) -> float:
        rng = random.Random(f"{self.config.seed}:asset:{asset_id.lower()}")
        return round(rng.uniform(*self.config.video_seconds), 3)

    def _window(self, asset_id: str, params: Mapping[str, Any]) -> tuple[float, float]:
        start = float(params.get("start_time", 0.0))
        end = params.get("end_time")
        if end is None:
            end = max(self.video_duration(asset_id), start + 1.0)
        return start, float(end)

    # ---- outputs ------------------------------------------------------------------------------

    def _output(self, b: Batch, it: Item) -> dict[str, Any]:
        cached = b.outputs.get(it.index)
        if cached is not None:
            return cached
        out = generate_output(
            random.Random(f"{b.seed_key}:{it.index}:output"),
            b.analysis_mode,
            it.params,
            it.window,
            self.config,
            it.finish_length,
        )
        b.outputs[it.index] = out
        return out


def _hex24(rng: random.Random) -> str:
    return f"{rng.getrandbits(96):024x}"


def _parse_outcome(value: str) -> tuple[str, dict[str, Any] | None]:
    if value == "ready":
        return "ready", None
    if value == "failed":
        return "failed", {
            "code": "asset_unavailable",
            "message": "The asset could not be read for analysis.",
        }
    if value.startswith("failed:"):
        code = value[len("failed:") :]
        err: dict[str, Any] = {"message": "The analysis failed."}
        if code:
            err["code"] = code
        return "failed", err
    raise ValueError(f"unknown forced outcome {value!r} (use ready, failed or failed:<code>)")


# --------------------------------------------------------------------------------------------
# Validation of the create body
# --------------------------------------------------------------------------------------------

_TOP_KEYS = {"model_name", "analysis_mode", "defaults", "requests"}
_SETTING_KEYS = {
    "prompt",
    "response_format",
    "temperature",
    "max_tokens",
    "min_segment_duration",
    "max_segment_duration",
    "start_time",
    "end_time",
}
_ITEM_KEYS = _SETTING_KEYS | {"video", "custom_id"}
_FIELD_TYPES = {"string", "boolean", "number", "integer", "array", "timestamp"}
_ITEM_TYPES = {"string", "number", "boolean", "integer", "object"}


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_unknown(obj: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
    for k in obj:
        if k not in allowed:
            where = f"{path}.{k}" if path else k
            raise ApiError(
                400, "parameter_unknown", f"{where}: unknown parameter", {"field": where}
            )


def _validate(body: Any) -> tuple[str, str, list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Return (analysis_mode, model_name, [(request, effective settings)]) or raise 400."""
    if not isinstance(body, dict):
        raise _invalid("body", "the request body must be a JSON object")
    _check_unknown(body, _TOP_KEYS, "")
    model = body.get("model_name")
    if model is None:
        raise _missing("model_name")
    if model != "pegasus1.5":
        raise _invalid("model_name", f"must be 'pegasus1.5', got {model!r}")
    mode = body.get("analysis_mode")
    if mode is None:
        raise _missing("analysis_mode")
    if mode not in ANALYSIS_MODES:
        raise _invalid("analysis_mode", f"must be 'general' or 'time_based_metadata', got {mode!r}")
    defaults = body.get("defaults")
    if defaults is None:
        defaults = {}
    if not isinstance(defaults, dict):
        raise _invalid("defaults", "must be an object")
    _check_unknown(defaults, _SETTING_KEYS, "defaults")
    _check_settings(defaults, "defaults", mode)
    reqs = body.get("requests")
    if reqs is None:
        raise _missing("requests")
    if not isinstance(reqs, list):
        raise _invalid("requests", "must be an array")
    if not 1 <= len(reqs) <= 1000:
        raise _invalid("requests", f"must hold 1 to 1000 items, got {len(reqs)}")
    seen: dict[str, int] = {}
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for i, req in enumerate(reqs):
        p = f"requests[{i}]"
        if not isinstance(req, dict):
            raise _invalid(p, "must be an object")
        _check_unknown(req, _ITEM_KEYS, p)
        video = req.get("video")
        if video is None:
            raise _missing(f"{p}.video")
        if not isinstance(video, dict):
            raise _invalid(f"{p}.video", "must be an object")
        _check_unknown(video, {"type", "asset_id"}, f"{p}.video")
        if video.get("type") is None:
            raise _missing(f"{p}.video.type")
        if video["type"] != "asset_id":
            raise _invalid(f"{p}.video.type", f"must be 'asset_id', got {video['type']!r}")
        aid = video.get("asset_id")
        if aid is None:
            raise _missing(f"{p}.video.asset_id")
        if not isinstance(aid, str) or not _HEX24.match(aid):
            raise _invalid(f"{p}.video.asset_id", f"must be 24 hexadecimal characters, got {aid!r}")
        cid = req.get("custom_id")
        if cid is not None:
            if not isinstance(cid, str) or not _CUSTOM_ID.match(cid):
                raise _invalid(
                    f"{p}.custom_id",
                    f"must be 1-64 characters of [A-Za-z0-9_-], got {cid!r}",
                )
            if cid in seen:
                raise _invalid(
                    f"{p}.custom_id", f"duplicate custom_id {cid!r} (also requests[{seen[cid]}])"
                )
            seen[cid] = i
        _check_settings(req, p, mode)
        eff = {k: v for k, v in defaults.items() if v is not None}
        eff.update({k: v for k, v in req.items() if k in _SETTING_KEYS and v is not None})
        _check_effective(eff, p, mode)
        out.append((req, eff))
    return mode, model, out


def _check_settings(s: Mapping[str, Any], p: str, mode: str) -> None:
    pr = s.get("prompt")
    if pr is not None:
        if mode == "time_based_metadata":
            raise _invalid(f"{p}.prompt", "prompt is not supported in time_based_metadata mode")
        if not isinstance(pr, dict):
            raise _invalid(f"{p}.prompt", "must be an object with input_text")
        _check_unknown(pr, {"input_text", "media_sources"}, f"{p}.prompt")
        if pr.get("input_text") is None:
            raise _missing(f"{p}.prompt.input_text")
        if not isinstance(pr["input_text"], str) or not pr["input_text"].strip():
            raise _invalid(f"{p}.prompt.input_text", "must be a non-empty string")
        ms = pr.get("media_sources")
        if ms is not None and (not isinstance(ms, list) or len(ms) > 4):
            raise _invalid(f"{p}.prompt.media_sources", "must be an array of at most 4 items")
    rf = s.get("response_format")
    if rf is not None:
        _check_response_format(rf, f"{p}.response_format", mode)
    t = s.get("temperature")
    if t is not None and (not _is_num(t) or not 0 <= t <= 1):
        raise _invalid(f"{p}.temperature", "must be a number between 0 and 1")
    mt = s.get("max_tokens")
    if mt is not None:
        lo = 512 if mode == "general" else 2048
        if not isinstance(mt, int) or isinstance(mt, bool) or not lo <= mt <= 98_304:
            raise _invalid(f"{p}.max_tokens", f"must be an integer between {lo} and 98304")
    for k in ("min_segment_duration", "max_segment_duration"):
        v = s.get(k)
        if v is None:
            continue
        if mode != "time_based_metadata":
            raise _invalid(f"{p}.{k}", "only allowed in time_based_metadata mode")
        if not _is_num(v) or v < 2:
            raise _invalid(f"{p}.{k}", "must be a number >= 2")
    for k in ("start_time", "end_time"):
        v = s.get(k)
        if v is not None and (not _is_num(v) or v < 0):
            raise _invalid(f"{p}.{k}", "must be a number >= 0")


def _check_effective(eff: Mapping[str, Any], p: str, mode: str) -> None:
    rf = eff.get("response_format")
    if mode == "general":
        if eff.get("prompt") is None:
            raise _missing(f"{p}.prompt")
        if rf is not None and rf.get("type") == "segment_definitions":
            raise _invalid(
                f"{p}.response_format.type",
                "segment_definitions requires analysis_mode 'time_based_metadata'",
            )
    else:
        if rf is None:
            raise _missing(f"{p}.response_format")
        if rf.get("type") != "segment_definitions":
            raise _invalid(
                f"{p}.response_format.type",
                "time_based_metadata requires response_format.type 'segment_definitions'",
            )
    lo, hi = eff.get("min_segment_duration"), eff.get("max_segment_duration")
    if lo is not None and hi is not None and hi < lo:
        raise _invalid(f"{p}.max_segment_duration", "must be >= min_segment_duration")
    st, et = eff.get("start_time"), eff.get("end_time")
    if st is not None and et is not None and et - st < 1:
        raise _invalid(f"{p}.end_time", "must be at least 1 second after start_time")
    if rf is not None and rf.get("type") == "segment_definitions":
        has_ranges = any(d.get("time_ranges") for d in rf.get("segment_definitions", []))
        if has_ranges and (st is not None or et is not None):
            raise _invalid(
                f"{p}.start_time",
                "start_time/end_time cannot be combined with segment_definitions[].time_ranges",
            )
        if has_ranges and (lo is not None or hi is not None):
            raise _invalid(
                f"{p}.min_segment_duration",
                "min/max_segment_duration cannot be combined with time_ranges",
            )


def _check_response_format(rf: Any, p: str, mode: str) -> None:
    if not isinstance(rf, dict):
        raise _invalid(p, "must be an object")
    _check_unknown(rf, {"type", "json_schema", "segment_definitions", "segment_time_format"}, p)
    typ = rf.get("type")
    if typ is None:
        raise _missing(f"{p}.type")
    if typ not in ("json_schema", "segment_definitions"):
        raise _invalid(f"{p}.type", f"must be 'json_schema' or 'segment_definitions', got {typ!r}")
    if typ == "segment_definitions" and mode != "time_based_metadata":
        raise _invalid(f"{p}.type", "segment_definitions requires analysis_mode 'time_based_metadata'")
    if typ == "json_schema":
        if mode != "general":
            raise _invalid(f"{p}.type", "time_based_metadata requires 'segment_definitions'")
        js = rf.get("json_schema")
        if js is None:
            raise _missing(f"{p}.json_schema")
        if not isinstance(js, dict):
            raise _invalid(f"{p}.json_schema", "must be a JSON Schema object")
        if "segment_definitions" in rf:
            raise _invalid(f"{p}.segment_definitions", "only with type 'segment_definitions'")
        return
    fmt = rf.get("segment_time_format")
    if fmt is not None and fmt not in TIME_FORMATS:
        raise _invalid(f"{p}.segment_time_format", f"must be one of {', '.join(TIME_FORMATS)}")
    defs = rf.get("segment_definitions")
    if defs is None:
        raise _missing(f"{p}.segment_definitions")
    if not isinstance(defs, list) or not 1 <= len(defs) <= 20:
        raise _invalid(f"{p}.segment_definitions", "must be an array of 1 to 20 definitions")
    ids: set[str] = set()
    for j, d in enumerate(defs):
        dp = f"{p}.segment_definitions[{j}]"
        if not isinstance(d, dict):
            raise _invalid(dp, "must be an object")
        _check_unknown(d, {"id", "description", "fields", "media_sources", "time_ranges"}, dp)
        for k in ("id", "description"):
            if d.get(k) is None:
                raise _missing(f"{dp}.{k}")
            if not isinstance(d[k], str) or not d[k]:
                raise _invalid(f"{dp}.{k}", "must be a non-empty string")
        if d["id"] in ids:
            raise _invalid(f"{dp}.id", f"duplicate segment definition id {d['id']!r}")
        ids.add(d["id"])
        dfields = d.get("fields") or []
        if not isinstance(dfields, list):
            raise _invalid(f"{dp}.fields", "must be an array")
        for n, f in enumerate(dfields):
            _check_field(f, f"{dp}.fields[{n}]")
        trs = d.get("time_ranges")
        if trs is not None:
            if not isinstance(trs, list):
                raise _invalid(f"{dp}.time_ranges", "must be an array")
            last_end = -1.0
            for n, tr in enumerate(sorted(trs, key=_tr_start)):
                tp = f"{dp}.time_ranges[{n}]"
                if not isinstance(tr, dict) or not _is_num(tr.get("start_time")) or not _is_num(
                    tr.get("end_time")
                ):
                    raise _invalid(tp, "must be {start_time, end_time} numbers")
                if tr["end_time"] - tr["start_time"] < 2:
                    raise _invalid(tp, "each time range must be at least 2 seconds long")
                if tr["start_time"] < last_end:
                    raise _invalid(tp, "time ranges must not overlap")
                last_end = tr["end_time"]


def _tr_start(tr: Any) -> float:
    if isinstance(tr, dict) and _is_num(tr.get("start_time")):
        return float(tr["start_time"])
    return -1.0


def _check_field(f: Any, p: str) -> None:
    if not isinstance(f, dict):
        raise _invalid(p, "must be an object")
    _check_unknown(f, {"name", "type", "description", "format", "enum", "items"}, p)
    for k in ("name", "type", "description"):
        if f.get(k) is None:
            raise _missing(f"{p}.{k}")
    if f["name"] in ("start_time", "end_time", "metadata"):
        raise _invalid(f"{p}.name", f"{f['name']!r} is a reserved field name")
    if f["type"] not in _FIELD_TYPES:
        raise _invalid(f"{p}.type", f"unsupported field type {f['type']!r}")
    if f["type"] == "timestamp":
        if f.get("format") not in TIME_FORMATS:
            raise _invalid(f"{p}.format", "timestamp fields need format seconds|hh:mm:ss|hh:mm:ss.fff")
        if f.get("enum") is not None:
            raise _invalid(f"{p}.enum", "enum is not allowed with timestamp")
    elif f.get("format") is not None:
        raise _invalid(f"{p}.format", "format is only allowed with type 'timestamp'")
    en = f.get("enum")
    if en is not None and (not isinstance(en, list) or len(en) > 100):
        raise _invalid(f"{p}.enum", "must be an array of at most 100 strings")
    if f["type"] == "array":
        items = f.get("items")
        if items is None:
            raise _missing(f"{p}.items")
        if not isinstance(items, dict) or items.get("type") not in _ITEM_TYPES:
            raise _invalid(f"{p}.items.type", "must be string|number|boolean|integer|object")


# --------------------------------------------------------------------------------------------
# Output generation
# --------------------------------------------------------------------------------------------

_SENTENCES = (
    "the camera pans across a busy street while a presenter explains the morning news",
    "a small dog runs through the park and two children chase a red ball near the fountain",
    "the interview continues in a quiet studio with soft light and a wooden table",
    "crowds gather at the stadium as the home team scores in the second half",
    "a chef prepares fresh pasta and the audience applauds after the final dish is served",
    "graphics show rising rates and falling equities over the last quarter",
    "a drone shot follows the coastline before the scene cuts to a harbour at dusk",
    "two presenters discuss the weather forecast in front of a large map",
)
_CORPUS = " ".join(_SENTENCES)
_WORDS = tuple(_CORPUS.split())


def _sentence(rng: random.Random) -> str:
    # whole sentences, so a demo's output reads like a summary rather than word salad
    return rng.choice(_SENTENCES).capitalize() + "."


def _text(rng: random.Random, n: int) -> str:
    return " ".join(_sentence(rng) for _ in range(max(1, n)))


def _n(rng: random.Random, lo: int, hi: int, scale: float) -> int:
    return max(1, round(rng.randint(lo, hi) * scale))


def generate_output(
    rng: random.Random,
    mode: str,
    params: Mapping[str, Any],
    window: tuple[float, float],
    cfg: EngineConfig,
    finish_length: bool,
) -> dict[str, Any]:
    """Build the ``data`` envelope of a ready item: text is always a string."""
    rf = params.get("response_format")
    scale = max(cfg.output_scale, 0.01)
    finish = "stop"
    if mode == "time_based_metadata" and isinstance(rf, dict):
        text = json.dumps(
            _segments(rng, rf, params, window, cfg), ensure_ascii=False, separators=(",", ":")
        )
    elif isinstance(rf, dict) and rf.get("type") == "json_schema":
        schema = rf.get("json_schema") or {}
        value = _from_schema(rng, schema, schema, scale, 0, None)
        text = json.dumps(value, ensure_ascii=False)
        if finish_length:
            finish = "length"
            text = text[: max(1, len(text) // 2)]
    else:
        text = _text(rng, _n(rng, 3, 6, scale))
        if finish_length:
            finish = "length"
            text = text[: max(1, len(text) // 2)]
    return {
        "generation_id": f"{rng.getrandbits(128):032x}",
        "data": text,
        "finish_reason": finish,
        "usage": {
            "output_tokens": max(1, len(text) // 4),
            "input_tokens": int((window[1] - window[0]) * 30) + rng.randint(50, 400),
        },
    }


def _from_schema(
    rng: random.Random,
    schema: Any,
    root: Mapping[str, Any],
    scale: float,
    depth: int,
    name: str | None,
) -> Any:
    if not isinstance(schema, dict) or depth > 12:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return _from_schema(rng, target, root, scale, depth + 1, name)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return rng.choice(schema["enum"])
    if isinstance(schema.get("anyOf"), list) and schema["anyOf"]:
        return _from_schema(rng, schema["anyOf"][0], root, scale, depth + 1, name)
    typ = schema.get("type")
    if isinstance(typ, list):
        non_null = [t for t in typ if t != "null"]
        typ = non_null[0] if non_null else "null"
    if typ is None:
        typ = "object" if "properties" in schema else "string"
    if name in ("start_time", "end_time") and typ in ("number", "integer", "string"):
        v = round(rng.uniform(0, 600), 1)
        if typ == "integer":
            return int(v)
        if typ == "string":
            return format_time(v, schema.get("format") or "hh:mm:ss.fff")
        return v
    if typ == "object":
        props = schema.get("properties") or {}
        return {
            k: _from_schema(rng, sub, root, scale, depth + 1, k)
            for k, sub in props.items()
            if isinstance(k, str)
        }
    if typ == "array":
        lo = 1 if schema.get("minItems", 0) >= 1 else 0
        n = max(lo, _n(rng, 1, 4, scale))
        return [_from_schema(rng, schema.get("items") or {}, root, scale, depth + 1, None)
                for _ in range(n)]
    if typ == "integer":
        lo_i = _bound(schema, "minimum", "exclusiveMinimum", 0, 1)
        hi_i = max(lo_i, _bound(schema, "maximum", "exclusiveMaximum", lo_i + 100, -1))
        return rng.randint(lo_i, hi_i)
    if typ == "number":
        lo_f = _fbound(schema, "minimum", "exclusiveMinimum", 0.0)
        hi_f = max(lo_f, _fbound(schema, "maximum", "exclusiveMaximum", lo_f + 100.0))
        return round(rng.uniform(lo_f, hi_f), 3)
    if typ == "boolean":
        return rng.random() < 0.5
    if typ == "null":
        return None
    if typ == "timestamp":
        return format_time(rng.uniform(0, 3600), schema.get("format") or "seconds")
    fmt = schema.get("format")
    if fmt == "uuid":
        parts = [rng.getrandbits(n) for n in (32, 16, 12, 12, 48)]
        return "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}".format(*parts)
    if fmt in ("date-time", "date", "time"):
        t = DEFAULT_EPOCH - rng.uniform(0, 3e8)
        full = iso(t)
        return {"date-time": full, "date": full[:10], "time": full[11:19]}[fmt]
    return _text(rng, _n(rng, 1, 2, scale))


def _bound(schema: Mapping[str, Any], incl: str, excl: str, default: float, step: int) -> int:
    v = schema.get(incl)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return math.ceil(v) if step > 0 else math.floor(v) if step < 0 else int(v)
    v = schema.get(excl)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return math.floor(v) + step if step else int(v)
    return int(default)


def _fbound(schema: Mapping[str, Any], incl: str, excl: str, default: float) -> float:
    for k in (incl, excl):
        v = schema.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return default


def _field_value(rng: random.Random, f: Mapping[str, Any], scale: float) -> Any:
    typ = f.get("type")
    if isinstance(f.get("enum"), list) and f["enum"]:
        return rng.choice(f["enum"])
    if typ == "string":
        return " ".join(rng.choice(_WORDS) for _ in range(_n(rng, 2, 6, scale)))
    if typ == "number":
        return round(rng.uniform(0, 100), 2)
    if typ == "integer":
        return rng.randint(0, 100)
    if typ == "boolean":
        return rng.random() < 0.5
    if typ == "timestamp":
        return format_time(rng.uniform(0, 3600), f.get("format") or "seconds")
    if typ == "array":
        items = f.get("items") or {"type": "string"}
        n = _n(rng, 1, 3, scale)
        if items.get("type") == "object":
            return [
                {sf["name"]: _field_value(rng, sf, scale) for sf in items.get("fields") or []
                 if isinstance(sf, dict) and "name" in sf}
                for _ in range(n)
            ]
        return [_field_value(rng, items, scale) for _ in range(n)]
    if typ == "object":
        return {
            sf["name"]: _field_value(rng, sf, scale)
            for sf in f.get("fields") or []
            if isinstance(sf, dict) and "name" in sf
        }
    return None


def _segments(
    rng: random.Random,
    rf: Mapping[str, Any],
    params: Mapping[str, Any],
    window: tuple[float, float],
    cfg: EngineConfig,
) -> dict[str, list[dict[str, Any]]]:
    fmt = rf.get("segment_time_format") or "seconds"
    lo_d = float(params.get("min_segment_duration") or 2.0)
    hi_d = params.get("max_segment_duration")
    out: dict[str, list[dict[str, Any]]] = {}
    for d in rf.get("segment_definitions") or []:
        if cfg.segments_per_definition is not None:
            n = max(0, cfg.segments_per_definition)
        else:
            n = _n(rng, 1, 4, cfg.output_scale)
        ranges = [
            (float(tr["start_time"]), float(tr["end_time"]))
            for tr in sorted(d.get("time_ranges") or [], key=_tr_start)
        ] or [window]
        segs: list[dict[str, Any]] = []
        for r_i, (ws, we) in enumerate(ranges):
            k = n // len(ranges) + (1 if r_i < n % len(ranges) else 0)
            if k == 0:
                continue
            slot = (we - ws) / k
            for j in range(k):
                s0 = ws + j * slot
                length = min(slot, max(lo_d, slot * rng.uniform(0.3, 0.9)))
                if hi_d is not None:
                    length = min(length, float(hi_d))
                start = s0 + rng.uniform(0, max(0.0, slot - length))
                end = start + length
                segs.append(
                    {
                        "start_time": format_time(start, fmt),
                        "end_time": format_time(end, fmt),
                        "metadata": {
                            f["name"]: _field_value(rng, f, cfg.output_scale)
                            for f in d.get("fields") or []
                        },
                    }
                )
        out[d["id"]] = segs
    return out
