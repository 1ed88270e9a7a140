"""The batch/item state machine of the simulator, on an injectable clock (no HTTP here).

Here: the records (:class:`EngineConfig`, ``Batch``, ``Item``, ``View``) and :class:`Engine`,
which serves the six API operations. A create body is checked by ``validation``, a ready item's
output drawn by ``outputs``; the clocks are in ``clock``.

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

import heapq
import math
import random
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .clock import Clock, iso
from .errors import ApiError, parameter_invalid
from .outputs import generate_output
from .validation import ANALYSIS_MODES, check_hex24, validate_create

__all__ = [
    "ACTIVE_STATUSES",
    "BATCH_STATUSES",
    "EXPIRY_SECONDS",
    "TERMINAL_STATUSES",
    "Engine",
    "EngineConfig",
    "ItemSpec",
    "OutcomeFn",
    "Outcomes",
]

EXPIRY_SECONDS = 24 * 3600.0
MAX_WINDOW_SECONDS = 2 * 3600.0
#: while a batch is in one of these it counts toward ``max_active`` and may be canceled
ACTIVE_STATUSES = ("pending", "processing", "canceling")
#: a batch in one of these is done: it may be deleted, no longer canceled
TERMINAL_STATUSES = ("canceled", "completed", "expired")
BATCH_STATUSES = ACTIVE_STATUSES + TERMINAL_STATUSES


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


class AssetLookup(Protocol):
    """What the engine asks of the asset store (``assets.AssetStore``)."""

    def lookup(self, asset_id: str) -> tuple[str, float | None] | None: ...


#: the API's limit of combined video duration in one batch (2,000 h)
MAX_CONTENT_SECONDS = 2000 * 3600.0


class Engine:
    """All batches of all API keys, on one clock. Thread-safe.

    ``assets`` (set by the simulator) knows the uploaded assets: a batch naming one that is not
    ``ready`` (``processing`` or ``failed``; spec open question 7) is refused with 409, its
    duration counts toward the 2,000 content hours (400 beyond), and its outputs follow it.
    Ids it does not know keep the seeded behaviour (any 24-hex id exists and is ready).
    """

    def __init__(self, clock: Clock, config: EngineConfig | None = None) -> None:
        self.clock = clock
        self.config = config or EngineConfig()
        self.assets: AssetLookup | None = None
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
        check_hex24(batch_id, "batch_id")
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
            raise parameter_invalid("page", "must be an integer >= 1")
        if not 1 <= page_limit <= 50:
            raise parameter_invalid("page_limit", "must be an integer between 1 and 50")
        for s in statuses:
            if s not in BATCH_STATUSES:
                raise parameter_invalid("status", f"unknown batch status {s!r}")
        for m in modes:
            if m not in ANALYSIS_MODES:
                raise parameter_invalid("analysis_mode", f"unknown analysis mode {m!r}")
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
        mode, model, items = validate_create(body)
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
            known = self.assets.lookup(aid) if self.assets is not None else None
            if known is not None and known[0] != "ready":
                raise ApiError(
                    409, "asset_not_ready", f"{path}: asset {aid} is {known[0]}, not ready.", {"field": path},
                )
        total = sum(self.video_duration(req["video"]["asset_id"]) for req, _ in items)
        if total > MAX_CONTENT_SECONDS:
            # [INF] the spec gives no status/code for this; 400 parameter_invalid is our reading.
            raise parameter_invalid(
                "requests", f"combined video duration {total / 3600:.1f} h is over the limit of 2,000 hours"
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
        known = self.assets.lookup(asset_id) if self.assets is not None else None
        if known is not None and known[1] is not None:
            return known[1]
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
            output_scale=self.config.output_scale,
            segments_per_definition=self.config.segments_per_definition,
            finish_length=it.finish_length,
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
