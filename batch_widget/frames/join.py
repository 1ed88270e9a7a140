"""Frames out: the items frame joined back to the input it was made from, and to polars."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import polars

__all__ = ["NOTE_NO_INPUT_MATCH", "join_results", "to_polars"]

NOTE_NO_INPUT_MATCH = "no result for this row"


def join_results(
    inputs: pd.DataFrame | Mapping[str, Mapping[str, Any]],
    frame: pd.DataFrame,
    *,
    on: str = "custom_id",
    suffix: str = "_result",
) -> pd.DataFrame:
    """Attach the result columns to the input the batch was created from.

    Parameters
    ----------
    inputs
        The DataFrame the requests were made from (with an ``on`` column, or an index of that
        name), or a mapping of custom_id to the input row (a mapping of column to value).
    frame
        An items frame from :func:`results_to_frame`.
    on
        The key present in both: ``"custom_id"`` (default) or ``"task_id"``.
    suffix
        Appended to a result column whose name the input already uses.

    Returns
    -------
    pandas.DataFrame
        ``inputs`` (its rows, order and index kept) with the result columns of ``frame`` to the
        right. An input row with no result gets missing values and a ``note``; result rows with
        no input row are left out (they are in ``frame``).
    """
    if on not in frame.columns:
        raise KeyError(f"the results frame has no {on!r} column")
    if isinstance(inputs, pd.DataFrame):
        left = inputs
        if on in left.columns:
            keys = left[on]
        elif on in (left.index.names or ()):
            keys = pd.Series(left.index.get_level_values(on), index=left.index)
        else:
            raise KeyError(
                f"inputs has no {on!r} column or index level; pass on= the key column's name"
            )
    elif isinstance(inputs, Mapping):
        rows = [{on: key, **dict(row)} for key, row in inputs.items()]
        left = pd.DataFrame(rows) if rows else pd.DataFrame({on: []})
        keys = left[on]
    else:
        raise TypeError(f"inputs must be a DataFrame or a mapping, got {type(inputs).__name__}")

    right = frame[frame[on].notna()]
    right = right[~right[on].duplicated(keep="last")]
    right = right.set_index(pd.Index(right[on].astype(object).tolist())).drop(columns=[on])
    wanted = keys.astype(object).tolist()
    attached = right.reindex(wanted)  # unmatched keys → rows of missing values, dtypes kept
    if "note" in attached.columns:
        known = set(right.index.tolist())  # a set: Index.isin on Arrow strings goes element by element
        unmatched = np.fromiter((key not in known for key in wanted), dtype=bool, count=len(wanted))
        if unmatched.any():
            note = attached["note"].astype(object).to_numpy(copy=True)
            note[unmatched & pd.isna(note)] = NOTE_NO_INPUT_MATCH
            attached["note"] = pd.array(note, dtype=right["note"].dtype)
    attached.index = left.index
    attached.columns = [c if c not in left.columns else f"{c}{suffix}" for c in attached.columns]
    joined: pd.DataFrame = pd.concat([left, attached], axis=1)
    return joined


def to_polars(frame: pd.DataFrame) -> polars.DataFrame:
    """Convert a frame from this module to a ``polars.DataFrame`` (polars imported lazily).

    Parameters
    ----------
    frame
        Any frame from :func:`results_to_frame`, :func:`segments_to_frame` or
        :func:`join_results`.

    Returns
    -------
    polars.DataFrame
        Categorical ``status`` becomes ``pl.Categorical``; object columns of decoded JSON become
        struct/list columns where polars can type them, else strings of their JSON.

    Raises
    ------
    ImportError
        When polars is not installed (it is not a dependency: ``pip install polars``).
    """
    try:
        import polars as pl
    except ImportError as exc:
        raise ImportError("to_polars needs polars, which is optional: pip install polars") from exc
    converted: polars.DataFrame
    try:
        converted = pl.from_pandas(frame)
        return converted
    except Exception:  # mixed-type object columns polars cannot type
        fixed = frame.copy()
        for name in fixed.columns:
            if fixed[name].dtype == object:
                try:
                    pl.from_pandas(fixed[[name]])
                except Exception:
                    fixed[name] = [
                        None if v is None else json.dumps(v, default=str) for v in fixed[name]
                    ]
        converted = pl.from_pandas(fixed)
        return converted
