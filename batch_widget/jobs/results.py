"""A job's results as one table, and which rows to try again.

Pure pandas over frames that ``frames.results_to_frame`` built per batch: :func:`newest_outcomes`
keeps one row per custom_id (its newest attempt, with ``attempts`` and ``status_history``);
:func:`join_to_inputs` attaches them to the DataFrame the job was submitted from, or to the
rows recorded in the manifest after a restart. :func:`rows_to_retry` picks the rows whose newest
outcome calls for another attempt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..frames import join_results, results_to_frame
from .manifest import Chunk

__all__ = ["BATCH_COLUMNS", "empty_long_frame", "join_to_inputs", "newest_outcomes", "rows_to_retry"]

#: what a job adds to each batch's results frame, after custom_id
BATCH_COLUMNS = ("batch_id", "chunk", "attempt")


def empty_long_frame() -> pd.DataFrame:
    """The every-attempt frame of a job with no batch yet: the results columns and the job's own."""
    long = results_to_frame([])
    for pos, name in enumerate(BATCH_COLUMNS, start=1):
        long.insert(pos, name, pd.Series([], dtype=object))
    return long


def newest_outcomes(long: pd.DataFrame) -> pd.DataFrame:
    """One row per custom_id: its newest attempt, with ``attempts`` and ``status_history``."""
    keyed = long[long["custom_id"].notna()]
    statuses = keyed["status"].astype(object).where(keyed["status"].notna(), "missing").astype(str).tolist()
    history: dict[object, list[str]] = {}
    for cid, status in zip(keyed["custom_id"].astype(object).tolist(), statuses, strict=True):
        history.setdefault(cid, []).append(status)
    newest = keyed.drop_duplicates("custom_id", keep="last").copy()
    order = newest["custom_id"].astype(object).tolist()
    # plain Python over the rows: a groupby with a joining lambda was half of to_pandas' time
    newest["attempts"] = np.fromiter((len(history[c]) for c in order), dtype="int64", count=len(order))
    newest["status_history"] = [" → ".join(history[c]) for c in order]
    result: pd.DataFrame = newest
    return result


def join_to_inputs(
    newest: pd.DataFrame,
    *,
    inputs: pd.DataFrame | None,
    input_ids: pd.Series | None,
    rows: Mapping[str, Mapping[str, Any]],
    chunks: Sequence[Chunk],
) -> pd.DataFrame:
    """``newest`` joined onto the input rows by custom_id; rows never sent say why in ``note``.

    Without the input DataFrame (a job resumed from its manifest), the left side is one row per
    job row with its index label (``row``) and asset id.
    """
    tmp = "__bw_custom_id__"
    right = newest.rename(columns={"custom_id": tmp})
    if inputs is not None and input_ids is not None:
        left = inputs.copy()
        left[tmp] = input_ids
    else:
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
        pending = {cid: c.state for c in chunks if c.state != "created" for cid in c.custom_ids}
        if pending:
            note = joined["note"].astype(object).to_numpy(copy=True)
            for i, cid in enumerate(joined[name].tolist()):
                state = pending.get(cid)
                if state is not None and joined["status"].iloc[i] is not None and pd.isna(joined["status"].iloc[i]):
                    note[i] = f"not submitted: chunk {state}"
            joined["note"] = pd.Series(note, index=joined.index).astype(joined["note"].dtype)
    _mark_failed_uploads(joined, name, rows)
    return joined


def _mark_failed_uploads(joined: pd.DataFrame, name: str, rows: Mapping[str, Mapping[str, Any]]) -> None:
    """Rows whose upload failed never reach a batch: ``status`` failed, the asset's message in ``note``."""
    failed = {c: r["upload"].get("error") for c, r in rows.items() if (r.get("upload") or {}).get("state") == "failed"}
    if not failed or "status" not in joined.columns:
        return
    hit = joined[name].isin(list(failed))
    joined["status"] = joined["status"].astype(object).where(~hit, "failed")
    if "note" in joined.columns:
        notes = joined[name].map(failed)
        joined["note"] = joined["note"].astype(object).where(~hit, notes)


def rows_to_retry(
    chunks: Sequence[Chunk], outcomes: Mapping[int, Mapping[str, str]], wanted: set[str], max_attempts: int
) -> tuple[list[str], list[int], dict[str, str]]:
    """The rows to submit again: newest outcome in ``wanted`` and fewer than ``max_attempts`` tries.

    ``outcomes`` maps each created chunk to its rows' outcomes (``ready``, ``failed``, ...,
    ``unfinished`` while its batch runs); a row in a chunk not yet sent is ``unfinished``.
    Returns the custom_ids in chunk order, the chunks they retry, and each row's newest outcome.
    """
    newest: dict[str, tuple[int, str]] = {}
    attempts: dict[str, int] = {}
    for chunk in chunks:
        for cid in chunk.custom_ids:
            attempts[cid] = attempts.get(cid, 0) + (1 if chunk.state == "created" else 0)
        if chunk.state in ("planned", "creating", "uncertain"):
            newest.update((cid, (chunk.chunk, "unfinished")) for cid in chunk.custom_ids)
        elif chunk.chunk in outcomes:
            newest.update((cid, (chunk.chunk, status)) for cid, status in outcomes[chunk.chunk].items())
    redo: dict[int, list[str]] = {}
    for cid, (chunk_no, status) in newest.items():
        if status in wanted and attempts.get(cid, 0) < max_attempts:
            redo.setdefault(chunk_no, []).append(cid)
    ordered = [cid for chunk in chunks for cid in redo.get(chunk.chunk, [])]
    return ordered, sorted(redo), {cid: status for cid, (_, status) in newest.items()}
