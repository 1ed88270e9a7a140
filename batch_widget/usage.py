"""What a batch or a job used: content hours of completed items, tokens, and the items not billed.

Pure over a results frame (one row per item attempt, as ``results_to_frame`` / ``job.to_pandas(
history=True)`` give it, with ``batch_id``) and the content seconds known per custom_id; the
durations of the rest come from one batched ``list_assets`` (:mod:`batch_widget.durations`).

Billing (``twelvelabs-batch-api.md`` §3.3): completed (``ready``) items are billed, even if the
batch is deleted later; failed and canceled items are not. A completed item whose duration is not
known (its asset unknown to the account, and no duration or window given) is counted in
``unknown_hours``, never guessed.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ._text import hours, num
from .client import BatchClient
from .durations import asset_durations

__all__ = ["USAGE_COLUMNS", "Usage", "measure_usage", "usage_of"]

#: the columns of :attr:`Usage.batches`, one row per batch
USAGE_COLUMNS = ("batch_id", "completed", "content_hours", "unknown_hours", "input_tokens", "output_tokens",
                 "failed", "canceled", "unfinished")  # fmt: skip


def _tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 10_000:
        return f"{n / 1000:.0f}k"
    return num(n)


@dataclass(frozen=True)
class Usage:
    """Per batch (``batches``, a DataFrame of :data:`USAGE_COLUMNS`) and in total."""

    batches: pd.DataFrame
    #: content hours of the completed items (billed), and completed items whose hours are unknown
    content_hours: float
    unknown_hours: int
    input_tokens: int
    output_tokens: int
    completed: int
    #: not billed
    failed: int
    canceled: int
    #: queued or processing when measured (the batch had not ended)
    unfinished: int = 0

    def describe(self) -> str:
        """One compact line: ``12.5 h analysed (120 completed) · 1.2M in / 35k out tokens · not billed: 3 failed``."""
        text = f"{hours(self.content_hours)} analysed ({num(self.completed)} completed"
        text += f", {num(self.unknown_hours)} of unknown length)" if self.unknown_hours else ")"
        text += f" · {_tokens(self.input_tokens)} in / {_tokens(self.output_tokens)} out tokens"
        if self.failed or self.canceled:
            text += f" · not billed: {num(self.failed)} failed, {num(self.canceled)} canceled"
        if self.unfinished:
            text += f" · {num(self.unfinished)} unfinished"
        return text

    def to_json(self) -> dict[str, Any]:
        """The totals and the batches, for ``--json`` and scripts."""
        return {
            "content_hours": self.content_hours, "unknown_hours": self.unknown_hours,
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "completed": self.completed,
            "failed": self.failed, "canceled": self.canceled, "unfinished": self.unfinished,
            "batches": self.batches.to_dict(orient="records"),
        }  # fmt: skip

    def __repr__(self) -> str:
        return f"<Usage {self.describe()}>"

    def _repr_html_(self) -> str:
        table = self.batches.to_html(index=False, float_format=lambda v: f"{v:,.2f}")
        line = f'<p style="margin:0 0 4px 0"><b>usage: {html.escape(self.describe())}</b></p>'
        return f'<div class="bw-usage">{line}{table}</div>'


def usage_of(results: pd.DataFrame, seconds: Mapping[str, float | None]) -> Usage:
    """Usage from a results frame (``batch_id``, ``custom_id``, ``status``, ``input_tokens``,
    ``output_tokens``; one row per item attempt) and the content seconds by custom_id."""
    rows = []
    frame = results if "batch_id" in results.columns else results.assign(batch_id="")
    for batch_id, part in frame.groupby("batch_id", sort=False, dropna=False):
        status = part["status"].astype(object)
        ready = part[status == "ready"]
        secs = [seconds.get(c) if isinstance(c, str) else None for c in ready["custom_id"]]
        known = [s for s in secs if s is not None]
        rows.append({
            "batch_id": batch_id, "completed": len(ready), "content_hours": sum(known) / 3600.0,
            "unknown_hours": len(secs) - len(known),
            "input_tokens": int(pd.to_numeric(part["input_tokens"], errors="coerce").fillna(0).sum()),
            "output_tokens": int(pd.to_numeric(part["output_tokens"], errors="coerce").fillna(0).sum()),
            "failed": int((status == "failed").sum()), "canceled": int((status == "canceled").sum()),
            "unfinished": int(status.isin(["queued", "processing"]).sum()),
        })  # fmt: skip
    batches = pd.DataFrame(rows, columns=list(USAGE_COLUMNS))
    total = {k: batches[k].sum() for k in USAGE_COLUMNS[1:]}
    return Usage(
        batches=batches, content_hours=float(total["content_hours"]), unknown_hours=int(total["unknown_hours"]),
        input_tokens=int(total["input_tokens"]), output_tokens=int(total["output_tokens"]),
        completed=int(total["completed"]), failed=int(total["failed"]), canceled=int(total["canceled"]),
        unfinished=int(total["unfinished"]),
    )  # fmt: skip


async def measure_usage(
    client: BatchClient,
    results: pd.DataFrame,
    *,
    seconds: Mapping[str, float | None] | None = None,
    assets: Mapping[str, str] | None = None,
    cache: dict[str, float | None] | None = None,
) -> Usage:
    """:func:`usage_of`, the durations it lacks looked up first: ``assets`` maps custom_id to asset id for
    the completed items whose ``seconds`` are unknown (one batched ``list_assets``; ``cache`` keeps what was
    learned, by asset id, so a job asks once)."""
    known: dict[str, float | None] = dict(seconds or {})
    cache = cache if cache is not None else {}
    if assets:
        ready = results.loc[results["status"].astype(object) == "ready", "custom_id"]
        lacking = {c: assets[c] for c in ready if isinstance(c, str) and known.get(c) is None and c in assets}
        missing = [a for a in dict.fromkeys(lacking.values()) if a not in cache]
        if missing:
            try:
                found = await asset_durations(client, missing)
                cache.update({a: found.get(a) for a in missing})  # a miss too: asked once
            except Exception:  # usage stands without them: those hours are reported unknown
                pass
        for cid, asset_id in lacking.items():
            known[cid] = cache.get(asset_id)
    return usage_of(results, known)
