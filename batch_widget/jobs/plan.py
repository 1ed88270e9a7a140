"""What a job will send, before anything is sent: :func:`plan` and the :class:`JobPlan` it returns.

``bw.plan(df, ...)`` takes the arguments of :func:`~batch_widget.jobs.submission.submit` and checks
them by the same code (:func:`~batch_widget.jobs.submission.check_submission`), then plans the rows
into chunks by the same planner and the job's :class:`~batch_widget.jobs.limits.Limits`
(:func:`~batch_widget.jobs.rows.plan_chunks`), so the batches shown are the ones ``submit`` creates.
It sends no create and writes no manifest. Its requests: one batched ``list_assets`` (50 ids per
request) for the durations of the rows that name an asset without a duration or window column,
one count of the account's active batches, and one page of its completed batches (to time a batch).

Hours: a row's window (``start``/``end`` columns) or ``duration_column``, else its asset's duration
once the asset is ready. A file or URL not uploaded yet, or an asset without a known duration, has
unknown hours: counted as such, never guessed. Billed hours are at most the content hours: completed
items are billed, failed and canceled ones are not (``twelvelabs-batch-api.md`` §3.3).
"""

from __future__ import annotations

import html
import inspect
import math
import statistics
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .._text import count_of, hours
from ..account import count_active
from ..durations import asset_durations
from ..models import BatchStatus
from .limits import Limits
from .rows import plan_chunks
from .submission import check_submission, submit

__all__ = ["JobPlan", "plan"]


@dataclass(frozen=True)
class JobPlan:
    """A job as ``submit`` would send it: the batches, their rows and content hours, and estimates.

    ``batches`` holds one DataFrame per planned batch (one row per input row: ``custom_id``,
    ``index``, ``video``, ``kind``, ``content_hours``, NaN when unknown, and
    ``segment_definitions`` in time_based_metadata mode); ``overview`` one row per batch.
    """

    batches: tuple[pd.DataFrame, ...]
    overview: pd.DataFrame
    #: input rows checked, and how many of them the job's manifest already holds (not sent again)
    rows: int
    already_held: int
    analysis_mode: str
    limits: Limits
    #: content hours known, and the rows whose hours are unknown: files and URLs until their upload,
    #: and assets without a known duration (not ready, or not found on the account)
    content_hours: float
    unknown_rows: int
    #: the account's active batches now and the slots free for this job
    active: int | None
    free_slots: int | None
    #: wall hours of one batch (median of the account's recent completed batches), and the job's estimate
    batch_hours: float | None
    wall_hours: float | None
    price_per_hour: float | None = None
    #: of ``unknown_rows``, the files and URLs not uploaded yet
    uploads: int = 0

    @property
    def billed_hours(self) -> float:
        """At most this many content hours are billed (every item completing); failed and canceled are not."""
        return self.content_hours

    @property
    def over_budget(self) -> bool:
        budget = self.limits.max_content_hours_total
        return budget is not None and self.content_hours > budget

    def cost(self, price_per_hour: float | None = None) -> float | None:
        """The billed hours at ``price_per_hour`` (yours: no price is built in); None without one."""
        price = self.price_per_hour if price_per_hour is None else price_per_hour
        return None if price is None else self.billed_hours * float(price)

    def wall_basis(self) -> str:
        """How the wall time was estimated, in words."""
        if self.free_slots is None:
            return "the active batches could not be counted"
        n, free, cap = len(self.batches), self.free_slots, self.limits.max_active
        waves = _waves(n, free, cap)
        slots = f"{free} of {cap} slots free now ({self.active} active)"
        if self.batch_hours is None:
            return f"{slots}; {count_of(waves, 'round')} of batches; no completed batch on the account to time one by"
        return (f"{slots}: {count_of(waves, 'round')} of batches x {hours(self.batch_hours)} "
                "(the median of the account's recent completed batches)")  # fmt: skip

    def summary(self) -> str:
        """One line: rows, batches, content hours, billed hours, cost, wall time."""
        n = len(self.batches)
        new = self.rows - self.already_held
        text = f"Plan: {count_of(new, 'row')} in {count_of(n, 'batch')}, {hours(self.content_hours)} of content"
        if self.uploads:
            text += f" + {count_of(self.uploads, 'row')} unknown until upload"
        if self.unknown_rows > self.uploads:
            text += f" + {count_of(self.unknown_rows - self.uploads, 'row')} whose asset has no known duration"
        text += f"; billed at most {hours(self.billed_hours)}"
        cost = self.cost()
        if cost is not None:
            text += f" (~{cost:,.2f} at {self.price_per_hour:g}/h)"
        if self.wall_hours is not None:
            text += f"; ~{hours(self.wall_hours)} wall time"
        elif self.free_slots is not None:
            rounds = _waves(len(self.batches), self.free_slots, self.limits.max_active)
            text += f"; {count_of(rounds, 'round')} of batches through {self.free_slots} free slots (none timed yet)"
        if self.already_held:
            text += f"; {count_of(self.already_held, 'row')} already in the job (not sent again)"
        budget = self.limits.max_content_hours_total
        if budget is not None:
            text += (f"; OVER the budget of {budget:g} h: submit would refuse" if self.over_budget
                     else f"; within the budget of {budget:g} h")  # fmt: skip
        return text

    def __repr__(self) -> str:
        return f"<JobPlan {self.summary()}>"

    def _repr_html_(self) -> str:
        table = self.overview.to_html(index=False, float_format=lambda v: f"{v:,.2f}", na_rep="unknown")
        p = '<p style="margin:0 0 4px 0'
        return (f'<div class="bw-plan">{p}"><b>{html.escape(self.summary())}</b></p>'
                f'{p};opacity:.75">wall time: {html.escape(self.wall_basis())}</p>{table}</div>')  # fmt: skip


def _waves(batches: int, free: int, cap: int) -> int:
    """Rounds of batches: the free slots take the first ones, then ``cap`` at a time as they end."""
    if batches <= 0:
        return 0
    if free >= batches:
        return 1
    first = 1 if free > 0 else 0
    return first + math.ceil((batches - free) / cap)


async def plan(data: pd.DataFrame, *, price_per_hour: float | None = None, batch_hours: float | None = None,
               **submit_args: Any) -> JobPlan:  # fmt: skip
    """The batches ``bw.submit(data, **submit_args)`` would create, with their content hours; sends nothing.

    Takes every argument of :func:`~batch_widget.submit` (checked by the same code: a bad row is
    refused the same way), plus ``price_per_hour`` (your price per content hour: no price is
    built in) and ``batch_hours`` (wall hours of one batch, instead of the median of the account's
    recent completed batches). Writes no manifest; reads the one at ``manifest=`` if there is one
    (its rows are not sent again, its limits apply).
    """
    inspect.signature(submit).bind(data, **submit_args)  # an unknown argument is named as submit names it
    submit_args.pop("schedule", None)
    checked = check_submission(data, **submit_args)
    limits = checked.effective_limits()
    man = checked.recorded()
    held = man.rows if man is not None else {}
    fresh = [r for r in checked.prepared.rows if r.custom_id not in held]
    def uploaded(r: Any) -> bool:  # as JobRecord.add_rows decides: a file or URL joins a batch after its upload
        return checked.videos.get(r.label, ("asset", "", None))[0] != "asset"

    direct = [r for r in fresh if not uploaded(r)]
    later = [r for r in fresh if uploaded(r)]
    to_look = [r.request["video"]["asset_id"] for r in direct if r.content_s is None]
    looked = await asset_durations(checked.client, to_look) if to_look else {}
    tbm = checked.prepared.analysis_mode == "time_based_metadata"
    default_defs = _definitions(checked.prepared.defaults.get("response_format"))

    def frame(rows: list[Any], kind_of: Any) -> pd.DataFrame:
        out: dict[str, list[Any]] = {"custom_id": [], "index": [], "video": [], "kind": [], "content_hours": []}
        if tbm:
            out["segment_definitions"] = []
        for r in rows:
            kind, video = kind_of(r)
            seconds = r.content_s if r.content_s is not None else (looked.get(video) if kind == "asset" else None)
            out["custom_id"].append(r.custom_id)
            out["index"].append(r.label)
            out["video"].append(video)
            out["kind"].append(kind)
            out["content_hours"].append(seconds / 3600.0 if seconds is not None else math.nan)
            if tbm:
                out["segment_definitions"].append(_definitions(r.request.get("response_format")) or default_defs)
        made: pd.DataFrame = pd.DataFrame(out)
        return made

    by_id = {r.custom_id: r for r in fresh}
    pairs = [(r.custom_id, r.content_s) for r in direct]  # as JobRecord.plan sees the rows: the same chunks
    direct_groups = plan_chunks(pairs, max_items=limits.chunk_size, max_content_hours=limits.max_content_hours)
    groups = direct_groups + plan_chunks([(r.custom_id, r.content_s) for r in later], max_items=limits.chunk_size,
                                         max_content_hours=limits.max_content_hours)  # fmt: skip
    first = len(man.chunks) if man is not None else 0

    def kind_of(r: Any) -> tuple[str, str]:
        if uploaded(r):
            kind, source, _ = checked.videos[r.label]
            return kind, source
        return "asset", r.request["video"]["asset_id"]

    batches = tuple(frame([by_id[c] for c in ids], kind_of) for ids in groups)
    overview = pd.DataFrame({
        "chunk": [first + i for i in range(len(batches))],
        "rows": [len(b) for b in batches],
        "content_hours": [float(b["content_hours"].sum()) for b in batches],
        "unknown_hours_rows": [int(b["content_hours"].isna().sum()) for b in batches],
        "after_upload": [i >= len(direct_groups) for i in range(len(batches))],
    })  # fmt: skip
    if tbm:
        overview["segment_definitions"] = [int(b["segment_definitions"].max()) if len(b) else 0 for b in batches]
    known = float(overview["content_hours"].sum()) if len(overview) else 0.0
    unknown = int(overview["unknown_hours_rows"].sum()) if len(overview) else 0
    active = free = None
    try:
        active = await count_active(checked.client)
        free = max(0, limits.max_active - active)
    except Exception:  # an estimate only: the plan stands without it
        pass
    if batch_hours is None:
        batch_hours = await _typical_batch_hours(checked.client)
    wall = None
    if free is not None and batch_hours is not None:
        wall = _waves(len(batches), free, limits.max_active) * batch_hours
    return JobPlan(
        batches=batches, overview=overview, rows=len(checked.prepared.rows),
        already_held=len(checked.prepared.rows) - len(fresh),
        analysis_mode=checked.prepared.analysis_mode, limits=limits, content_hours=known, unknown_rows=unknown,
        active=active, free_slots=free, batch_hours=batch_hours, wall_hours=wall, price_per_hour=price_per_hour,
        uploads=sum(1 for r in later if r.content_s is None),
    )  # fmt: skip


def _definitions(response_format: Any) -> int:
    if isinstance(response_format, dict) and response_format.get("type") == "segment_definitions":
        return len(response_format.get("segment_definitions") or ())
    return 0


async def _typical_batch_hours(client: Any) -> float | None:
    """The median wall hours of the account's recent completed batches (one list request); None if none."""
    try:
        page = await client.list_page(1, page_limit=50, status=BatchStatus.COMPLETED.value)
    except Exception:
        return None
    spans = [(b.ended_at - b.created_at).total_seconds() / 3600.0 for b in page.batches
             if b.ended_at is not None and b.created_at is not None]  # fmt: skip
    return statistics.median(spans) if spans else None
