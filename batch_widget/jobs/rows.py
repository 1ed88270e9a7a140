"""DataFrame rows → batch requests, checked before anything is sent, and planned into chunks.

Pure pandas, no event loop and no I/O: :func:`prepare_requests` builds one request per row and
names every row with a problem (all of them, grouped, in one error); :func:`plan_chunks` splits
the rows into batches within the API's limits of 1,000 requests and 2,000 content hours.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..errors import InvalidInputError
from ..validation import CUSTOM_ID, MAX_REQUESTS, build_create_body, format_type
from .limits import MAX_CONTENT_HOURS
from .manifest import Settings

__all__ = ["MAX_CONTENT_HOURS", "Prepared", "PreparedRow", "jsonable_label", "plan_chunks", "prepare_requests",
           "stable_custom_id"]  # fmt: skip

#: the longest analysis window the API finishes (longer items fail)
MAX_WINDOW_S = 2 * 3600.0
_EXAMPLES = 5


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
        return self.job_settings.to_json()

    @property
    def job_settings(self) -> Settings:
        return Settings(self.analysis_mode, self.model_name, self.defaults)


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


def jsonable_label(label: Any) -> Any:
    if isinstance(label, (str, int, float, bool)) or label is None:
        return label
    if isinstance(label, tuple):
        return [jsonable_label(x) for x in label]
    if hasattr(label, "item"):
        with contextlib.suppress(Exception):
            return jsonable_label(label.item())
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


def _response_format(value: Any) -> tuple[dict[str, Any] | None, str | None]:
    """A row's response_format (a dict or its JSON text) and its checked type; ValueError if unusable."""
    if _missing(value):
        return None, None
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, Mapping):
        raise ValueError("must be a dict (or its JSON text)")
    return dict(value), format_type(value, "the value")


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
    default_format = format_type(base.get("response_format"), "response_format")

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
                if not CUSTOM_ID.fullmatch(custom_id):
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
                row_format, row_type = _response_format(formats[i])
            except ValueError as exc:
                problems.add(
                    f"unreadable response_format in column {response_format_column!r}", f"{where}: {exc}"
                )
                row_format, row_type = None, None
                bad = True
            if row_format is not None:
                request["response_format"] = row_format
                fmt = row_type
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
    # the client's own checks (still before any request): a batch's worth at once, and row by row in a
    # group that fails, so an error names its row
    for start in range(0, len(rows), MAX_REQUESTS):
        group = rows[start : start + MAX_REQUESTS]
        try:
            build_create_body(analysis_mode=mode, model_name=model_name, defaults=base,
                              requests=[{**row.request, "custom_id": row.custom_id} for row in group])  # fmt: skip
            continue
        except InvalidInputError:
            pass
        for row in group:
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
