"""Batch results → pandas DataFrames.

Pure: lines in, DataFrame out. Nothing here knows HTTP or the client; the client's
``results(batch_id)`` stream (``ResultLine`` objects) or its raw variant (``bytes`` lines), a
whole JSONL body, or already-decoded dicts can all be handed in as they are.

Two frames:

- :func:`results_to_frame` -- one row per item (failed, canceled, queued, processing and items
  the stream did not return are rows too), optionally with structured output decoded and its
  top-level properties expanded into columns.
- :func:`segments_to_frame` -- time-based metadata in long form, one row per segment.

:func:`join_results` attaches the result columns to the input the batch was created from, and
:func:`collect` / :func:`collect_frame` / :func:`collect_segments` accept an async iterator.

Speed and memory (measured by ``benchmarks/bench_frames.py``): every line is decoded with
``orjson`` when it is installed (it was the fastest per-line decoder for these shapes: the cost
is dominated by un-escaping the long ``data.data`` strings, where orjson beats msgspec's untyped
decoder and the stdlib by 2-4x), then ``msgspec``, then the stdlib ``json``; a line the fast
decoder refuses is retried with the stdlib (which also reads ``NaN``) before it is called
malformed. Columns are built as plain Python lists (one list comprehension per field and segment
definition, no per-row dicts) and each frame is made by one ``DataFrame`` constructor from
finished arrays. ``pyarrow.json`` was measured too and rejected as the reader: it is
all-or-nothing (one bad line loses the batch), infers one schema for all rows (numbers and
``hh:mm:ss`` strings in one column fail), and still leaves the inner JSON strings to decode.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import pandas as pd

from .models import CreatedItem, ResultLine

if TYPE_CHECKING:
    import polars

__all__ = [
    "ITEM_STATUSES",
    "MalformedLine",
    "collect",
    "collect_frame",
    "collect_segments",
    "join_results",
    "results_to_frame",
    "segments_to_frame",
    "to_polars",
]

#: The five documented item statuses, in lifecycle order: the categories of ``status``.
ITEM_STATUSES: tuple[str, ...] = ("queued", "processing", "ready", "failed", "canceled")

DtypeBackend = Literal["numpy_nullable", "pyarrow"]
OrderEntry = CreatedItem | Mapping[str, Any] | str | None

_T = TypeVar("_T")
_PD_MAJOR = int(pd.__version__.split(".", 1)[0])
_LINE_KEYS = frozenset({"task_id", "custom_id", "status", "data", "error"})
_SEG_KEYS = frozenset({"start_time", "end_time", "metadata"})
_EMPTY: dict[str, Any] = {}

NOTE_MISSING = "no line for this item in the results stream"
NOTE_UNORDERED = "not among the created items given as order"
NOTE_NO_INPUT_MATCH = "no result for this row"

_BASE_COLUMNS = (
    "custom_id", "task_id", "status", "result", "finish_reason", "input_tokens",
    "output_tokens", "error_code", "error_message", "generation_id",
)  # fmt: skip
_SEGMENT_COLUMNS = (
    "custom_id", "task_id", "definition_id", "segment_index", "start", "end", "duration",
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# JSON decoding (optional fast decoders, imported lazily)
# --------------------------------------------------------------------------------------------


class _Decoder:
    """The fastest installed JSON decoder, chosen on first use; stdlib as the safety net."""

    def __init__(self) -> None:
        self.loads: Callable[[Any], Any] | None = None
        self.errors: tuple[type[BaseException], ...] = (ValueError,)
        self.name = "json"

    def setup(self) -> Callable[[Any], Any]:
        try:
            import orjson

            self.loads, self.errors, self.name = orjson.loads, (orjson.JSONDecodeError,), "orjson"
            return self.loads
        except ImportError:
            pass
        try:
            import msgspec

            decoder: Any = msgspec.json.Decoder()
            self.loads = decoder.decode
            self.errors, self.name = (msgspec.DecodeError, ValueError), "msgspec"
            return decoder.decode  # type: ignore[no-any-return]
        except ImportError:
            pass
        self.loads, self.name = _stdlib_loads, "json"
        return _stdlib_loads


def _stdlib_loads(raw: Any) -> Any:
    return json.loads(bytes(raw) if isinstance(raw, memoryview) else raw)


_DECODER = _Decoder()


def _loads(raw: Any) -> Any:
    """Decode one JSON document; raise ``ValueError`` with the reason when it is not JSON."""
    fast = _DECODER.loads or _DECODER.setup()
    try:
        return fast(raw)
    except _DECODER.errors as exc:
        if fast is _stdlib_loads:
            raise ValueError(str(exc)) from None
        try:
            return _stdlib_loads(raw)  # NaN / Infinity and other things the fast one refuses
        except (ValueError, TypeError, RecursionError):
            raise ValueError(str(exc)) from None


def decoder_name() -> str:
    """Name of the JSON decoder in use: ``"orjson"``, ``"msgspec"`` or ``"json"``."""
    if _DECODER.loads is None:
        _DECODER.setup()
    return _DECODER.name


# --------------------------------------------------------------------------------------------
# Lines → items
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MalformedLine:
    """A results line that could not be read, kept so that it is shown rather than dropped.

    The frame builders accept it (or any object with a ``raw`` attribute, such as a client's
    line-error object) and turn it into a row with a missing status and the raw text in ``note``.
    """

    raw: bytes | str
    line_no: int = 0
    reason: str = "not valid JSON"


class _Item:
    """One item as a row: what a results line (or a gap in the stream) says about it."""

    __slots__ = (
        "custom_id", "error_code", "error_message", "extra", "finish_reason", "generation_id",
        "input_tokens", "note", "output_tokens", "status", "task_id", "text",
    )  # fmt: skip

    def __init__(
        self,
        custom_id: Any = None,
        task_id: Any = None,
        status: str | None = None,
        text: str | None = None,
        finish_reason: Any = None,
        input_tokens: Any = None,
        output_tokens: Any = None,
        error_code: Any = None,
        error_message: Any = None,
        generation_id: Any = None,
        note: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.custom_id = custom_id
        self.task_id = task_id
        self.status = status
        self.text = text
        self.finish_reason = finish_reason
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.error_code = error_code
        self.error_message = error_message
        self.generation_id = generation_id
        self.note = note
        self.extra = extra


def _str_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _int_or_none(value: Any) -> int | None:
    if type(value) is int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _text_of(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):  # already decoded upstream: keep it as JSON text
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _item_from_mapping(obj: Mapping[str, Any]) -> _Item:
    data = obj.get("data")
    err = obj.get("error")
    status = obj.get("status")
    item = _Item(
        custom_id=_str_or_none(obj.get("custom_id")),
        task_id=_str_or_none(obj.get("task_id")),
        status=_str_or_none(status) or None,
    )
    if isinstance(data, Mapping):
        item.text = _text_of(data.get("data"))
        item.generation_id = _str_or_none(data.get("generation_id"))
        item.finish_reason = _str_or_none(data.get("finish_reason"))
        usage = data.get("usage")
        if isinstance(usage, Mapping):
            item.input_tokens = _int_or_none(usage.get("input_tokens"))
            item.output_tokens = _int_or_none(usage.get("output_tokens"))
    elif data is not None:
        item.text = _text_of(data)
    if isinstance(err, Mapping):
        item.error_code = _str_or_none(err.get("code"))
        item.error_message = _str_or_none(err.get("message"))
    elif err is not None:
        item.error_message = _str_or_none(err)
    if not _LINE_KEYS.issuperset(obj):
        item.extra = {k: v for k, v in obj.items() if k not in _LINE_KEYS}
    return item


def _item_from_result_line(line: ResultLine) -> _Item:
    status = line.status.value if line.status is not None else None
    item = _Item(custom_id=line.custom_id, task_id=line.task_id, status=status or None)
    if line.data is not None:
        item.text = line.data.text
        item.generation_id = line.data.generation_id
        item.finish_reason = line.data.finish_reason
        item.input_tokens = _int_or_none(line.data.input_tokens)
        item.output_tokens = _int_or_none(line.data.output_tokens)
    if line.error is not None:
        item.error_code = line.error.code
        item.error_message = line.error.message
    if line.extra:
        item.extra = dict(line.extra)
    return item


_ID_PATTERNS = {
    key: re.compile(rf'"{key}"\s*:\s*"([^"\\]*)"'.encode()) for key in ("task_id", "custom_id")
}


def _as_text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    return bytes(raw).decode("utf-8", "replace")


def _malformed_item(raw: Any, line_no: int, reason: str) -> _Item:
    """A row for a line that could not be read: ids salvaged when visible, raw text in note."""
    text = _as_text(raw).rstrip("\r\n")
    ids: dict[str, str | None] = {}
    encoded = text.encode("utf-8", "replace")
    for key, pattern in _ID_PATTERNS.items():
        match = pattern.search(encoded)
        ids[key] = match.group(1).decode("utf-8", "replace") if match else None
    where = f"line {line_no}" if line_no else "a line"
    return _Item(
        custom_id=ids["custom_id"],
        task_id=ids["task_id"],
        note=f"unreadable results {where} ({reason}); raw: {text}",
    )


def _is_blank(raw: Any) -> bool:
    if isinstance(raw, str):
        return not raw.strip()
    return not bytes(raw).strip()


def _split_body(body: bytes | bytearray | memoryview | str) -> Iterator[Any]:
    """Lines of a whole JSONL body; bytes are sliced as zero-copy memoryviews."""
    if isinstance(body, str):
        yield from body.splitlines()
        return
    data = bytes(body) if isinstance(body, memoryview) else body
    view = memoryview(data)
    start, size = 0, len(data)
    while start < size:
        end = data.find(b"\n", start)
        if end < 0:
            end = size
        stop = end - 1 if end > start and data[end - 1] == 13 else end  # drop a '\r'
        yield view[start:stop]
        start = end + 1


def _iter_items(lines: Any) -> Iterator[_Item]:
    if isinstance(lines, (bytes, bytearray, memoryview, str)):
        lines = _split_body(lines)
    for line_no, line in enumerate(lines, 1):
        kind = type(line)
        if kind is bytes or kind is memoryview or kind is str or kind is bytearray:
            try:
                obj = _loads(line)
            except ValueError as exc:
                if _is_blank(line):
                    continue
                yield _malformed_item(line, line_no, f"not valid JSON: {exc}")
                continue
            if isinstance(obj, dict):
                yield _item_from_mapping(obj)
            else:
                yield _malformed_item(line, line_no, "not a JSON object")
        elif isinstance(line, ResultLine):
            yield _item_from_result_line(line)
        elif isinstance(line, Mapping):
            yield _item_from_mapping(line)
        elif hasattr(line, "raw"):
            number = getattr(line, "line_no", 0) or line_no
            reason = getattr(line, "reason", None) or getattr(line, "error", None)
            yield _malformed_item(line.raw, number, str(reason or "not valid JSON"))
        else:
            raise TypeError(
                f"results line {line_no} is a {type(line).__name__}; expected a ResultLine, a "
                "mapping, bytes or str (one JSONL line), or a MalformedLine"
            )


def _order_keys(order: Iterable[OrderEntry]) -> list[tuple[str | None, str | None]]:
    keys: list[tuple[str | None, str | None]] = []
    for entry in order:
        if entry is None or isinstance(entry, str):
            keys.append((None, entry))
        elif isinstance(entry, CreatedItem):
            keys.append((entry.task_id, entry.custom_id))
        elif isinstance(entry, Mapping):
            keys.append((_str_or_none(entry.get("task_id")), _str_or_none(entry.get("custom_id"))))
        else:
            raise TypeError(
                f"order entries must be CreatedItem, mappings or custom_id strings, "
                f"got {type(entry).__name__}"
            )
    return keys


def _arrange(
    lines: Any,
    order: Iterable[OrderEntry] | None,
    total_items: int | None,
) -> list[_Item]:
    """Deduplicate (the last line of a task wins, at the place it first appeared) and order."""
    items: list[_Item] = []
    where: dict[Any, int] = {}
    for n, item in enumerate(_iter_items(lines)):
        key: Any = item.task_id
        if key is None:
            key = ("custom_id", item.custom_id) if item.custom_id is not None else ("line", n)
        pos = where.get(key)
        if pos is None:
            where[key] = len(items)
            items.append(item)
        else:
            items[pos] = item
    if order is not None:
        keys = _order_keys(order)
        by_task = {item.task_id: i for i, item in enumerate(items) if item.task_id is not None}
        by_custom: dict[str, int] = {}
        for i, item in enumerate(items):
            if item.custom_id is not None:
                by_custom.setdefault(item.custom_id, i)
        used = [False] * len(items)
        arranged: list[_Item] = []
        for task_id, custom_id in keys:
            pos = by_task.get(task_id) if task_id is not None else None
            if pos is None and custom_id is not None:
                pos = by_custom.get(custom_id)
            if pos is None or used[pos]:
                arranged.append(_Item(custom_id=custom_id, task_id=task_id, note=NOTE_MISSING))
                continue
            used[pos] = True
            item = items[pos]
            if item.custom_id is None:
                item.custom_id = custom_id
            if item.task_id is None:
                item.task_id = task_id
            arranged.append(item)
        for pos, item in enumerate(items):
            if not used[pos]:
                if item.note is None:
                    item.note = NOTE_UNORDERED
                arranged.append(item)
        items = arranged
    if total_items is not None and len(items) < total_items:
        items.extend(_Item(note=NOTE_MISSING) for _ in range(total_items - len(items)))
    return items


# --------------------------------------------------------------------------------------------
# Columns → arrays with pandas-3-shaped dtypes
# --------------------------------------------------------------------------------------------


def _string_dtype(storage: str) -> Any:
    return pd.StringDtype(storage)


def _object_array(values: Sequence[Any]) -> np.ndarray[Any, Any]:
    arr = np.empty(len(values), dtype=object)
    try:
        arr[:] = values
    except (ValueError, TypeError):  # nested sequences numpy wants to broadcast
        for i, value in enumerate(values):
            arr[i] = value
    return arr


class _Columns:
    """Makes one array per column for the chosen ``dtype_backend``."""

    def __init__(self, dtype_backend: DtypeBackend | None) -> None:
        if dtype_backend not in (None, "numpy_nullable", "pyarrow"):
            raise ValueError(
                f"dtype_backend must be None, 'numpy_nullable' or 'pyarrow', got {dtype_backend!r}"
            )
        self.backend = dtype_backend
        self.pa: Any = None
        if dtype_backend == "pyarrow":
            try:
                import pyarrow
            except ImportError as exc:  # pragma: no cover - depends on the environment
                raise ImportError(
                    "dtype_backend='pyarrow' needs pyarrow: pip install pyarrow"
                ) from exc
            self.pa = pyarrow

    def _arrow(self, values: Sequence[Any], type_: Any) -> Any:
        return pd.arrays.ArrowExtensionArray(self.pa.array(values, type=type_))

    def str_(self, values: Sequence[Any]) -> Any:
        if self.backend == "pyarrow":
            return self._arrow(values, self.pa.string())
        if self.backend == "numpy_nullable":
            return pd.Series(values, dtype="string").array
        if _PD_MAJOR >= 3:
            return pd.Series(values, dtype="str").array
        if pd.get_option("future.infer_string"):  # pragma: no cover - pandas 2.x opt-in
            return pd.Series(values, dtype=_string_dtype("pyarrow_numpy")).array
        return _object_array(values)

    def int_(self, values: Sequence[Any]) -> Any:
        if self.backend == "pyarrow":
            return self._arrow(values, self.pa.int64())
        mask = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
        if mask.any():
            data = np.fromiter(
                (0 if v is None else v for v in values), dtype=np.int64, count=len(values)
            )
        else:
            data = np.fromiter(values, dtype=np.int64, count=len(values))
        return pd.arrays.IntegerArray(data, mask)

    def float_(self, values: Sequence[Any] | np.ndarray[Any, Any]) -> Any:
        if self.backend == "pyarrow":
            arr = np.asarray(values, dtype=np.float64)
            return pd.arrays.ArrowExtensionArray(
                self.pa.array(arr, type=self.pa.float64(), from_pandas=True)
            )
        arr = np.asarray(values, dtype=np.float64)
        if self.backend == "numpy_nullable":
            return pd.arrays.FloatingArray(arr, np.isnan(arr))
        return arr

    def bool_(self, values: Sequence[Any]) -> Any:
        if self.backend == "pyarrow":
            return self._arrow(values, self.pa.bool_())
        mask = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
        data = np.fromiter((v is True for v in values), dtype=bool, count=len(values))
        return pd.arrays.BooleanArray(data, mask)

    def object_(self, values: Sequence[Any]) -> Any:
        if self.backend == "pyarrow":
            try:
                return pd.arrays.ArrowExtensionArray(self.pa.array(values))
            except (self.pa.ArrowException, TypeError, ValueError, OverflowError):
                pass
        return _object_array(values)

    def category(self, values: Sequence[Any], known: Sequence[str]) -> pd.Categorical:
        extra = [v for v in dict.fromkeys(values) if v is not None and v not in known]
        return pd.Categorical(values, categories=[*known, *extra])

    def infer(self, values: Sequence[Any]) -> Any:
        """Pick a column type from the Python types present (``None`` is missing)."""
        kinds = set(map(type, values))
        kinds.discard(type(None))
        try:
            if kinds == {str}:
                return self.str_(values)
            if kinds == {bool}:
                return self.bool_(values)
            if kinds == {int}:
                return self.int_(values)
            if kinds and kinds <= {int, float}:
                return self.float_([np.nan if v is None else v for v in values])
        except (OverflowError, ValueError, TypeError):
            pass
        if self.backend == "pyarrow" and not kinds:
            return self._arrow(values, self.pa.null())
        return self.object_(values)


def _frame(columns: dict[str, Any], n: int) -> pd.DataFrame:
    frame: pd.DataFrame = pd.DataFrame(columns, index=pd.RangeIndex(n), copy=False)
    return frame


def _unique_name(name: str, taken: Iterable[str], prefix: str) -> str:
    taken = set(taken)
    candidate = name if name not in taken else f"{prefix}.{name}"
    while candidate in taken:
        candidate = f"_{candidate}"
    return candidate


def _attach_fields(
    columns: dict[str, Any],
    builder: _Columns,
    names: Iterable[str],
    values_of: Callable[[str], Sequence[Any]],
    prefix: str,
) -> None:
    for name in names:
        column = _unique_name(str(name), columns, prefix)
        columns[column] = builder.infer(values_of(name))


# --------------------------------------------------------------------------------------------
# Items frame
# --------------------------------------------------------------------------------------------


def results_to_frame(
    lines: Iterable[Any] | bytes | str,
    *,
    order: Iterable[OrderEntry] | None = None,
    total_items: int | None = None,
    parse_json: bool = False,
    expand: bool = False,
    dtype_backend: DtypeBackend | None = None,
) -> pd.DataFrame:
    """Build the items frame: one row per item of the batch, nothing dropped.

    Parameters
    ----------
    lines
        The results stream: an iterable of :class:`~batch_widget.models.ResultLine`, decoded
        mappings, raw JSONL lines (``bytes`` or ``str``) or :class:`MalformedLine` objects
        (anything with a ``raw`` attribute); or a whole JSONL body as one ``bytes``/``str``.
        Works mid-run: queued and processing items are rows like any other.
    order
        The created items in request order: a sequence of
        :class:`~batch_widget.models.CreatedItem` (what create returns; matched on ``task_id``,
        then ``custom_id``), of mappings with those keys, or of custom_id strings. Rows follow it;
        an item with no line gets a row with a missing status and a ``note``; lines matching no
        entry are appended after, with a note. Without it, rows follow the stream.
    total_items
        The batch's ``total_items``: when fewer items came back, rows with a missing status and
        a ``note`` are appended so that ``len(frame) == total_items``.
    parse_json
        Decode ``result`` (structured ``json_schema`` output) into a ``parsed`` column of
        Python objects. A result that does not decode (truncated by ``finish_reason ==
        "length"``, or invalid) keeps its text, gets ``parsed`` missing and a message in
        ``parse_error``; it never raises.
    expand
        Also expand the top-level properties of each decoded object into columns, named as the
        properties (prefixed ``result.`` if a name is already taken). Implies decoding; the
        ``parsed`` column itself is only kept when ``parse_json`` is also true.
    dtype_backend
        ``None`` (default): ``str`` text columns on pandas 3 (``object`` on pandas 2.2 unless
        ``future.infer_string`` is on), nullable ``Int64``/``boolean``, ``float64``.
        ``"numpy_nullable"``: ``string``, ``Int64``, ``Float64``, ``boolean``.
        ``"pyarrow"``: ``pd.ArrowDtype`` columns (needs pyarrow). ``status`` is categorical
        in all cases.

    Returns
    -------
    pandas.DataFrame
        Columns ``custom_id``, ``task_id``, ``status`` (categorical over the five item statuses,
        with an unknown status kept as an extra category; missing when the item has no readable
        line), ``result`` (the text of ``data.data``), ``finish_reason``, ``input_tokens``,
        ``output_tokens``, ``error_code``, ``error_message``, ``generation_id``; then
        ``parsed``/``parse_error`` and the expanded properties when asked; then any unknown
        top-level fields of the lines; then ``note`` (why a row is incomplete). Duplicate lines
        of one task (a re-fetch) give one row: the last line wins, at the first one's place.

    Examples
    --------
    >>> frame = results_to_frame(lines, order=created.items, parse_json=True)
    >>> frame[frame.status == "failed"][["custom_id", "error_code", "error_message"]]
    """
    if total_items is not None and total_items < 0:
        raise ValueError(f"total_items must be >= 0, got {total_items}")
    builder = _Columns(dtype_backend)
    items = _arrange(lines, order, total_items)
    n = len(items)
    texts = [it.text for it in items]
    columns: dict[str, Any] = {
        "custom_id": builder.str_([it.custom_id for it in items]),
        "task_id": builder.str_([it.task_id for it in items]),
        "status": builder.category([it.status for it in items], ITEM_STATUSES),
        "result": builder.str_(texts),
        "finish_reason": builder.str_([it.finish_reason for it in items]),
        "input_tokens": builder.int_([it.input_tokens for it in items]),
        "output_tokens": builder.int_([it.output_tokens for it in items]),
        "error_code": builder.str_([it.error_code for it in items]),
        "error_message": builder.str_([it.error_message for it in items]),
        "generation_id": builder.str_([it.generation_id for it in items]),
    }
    if parse_json or expand:
        parsed, errors = _parse_texts(texts, [it.finish_reason for it in items])
        del texts
        if parse_json:
            columns["parsed"] = _object_array(parsed)
        columns["parse_error"] = builder.str_(errors)
        if expand:
            dicts = [p if type(p) is dict else _EMPTY for p in parsed]
            del parsed
            names = dict.fromkeys(itertools.chain.from_iterable(dicts))
            _attach_fields(
                columns, builder, names, lambda k: [d.get(k) for d in dicts], prefix="result"
            )
    else:
        del texts
    extras = [it.extra or _EMPTY for it in items]
    extra_names = dict.fromkeys(itertools.chain.from_iterable(extras))
    if extra_names:
        _attach_fields(
            columns, builder, extra_names, lambda k: [e.get(k) for e in extras], prefix="extra"
        )
    columns["note"] = builder.str_([it.note for it in items])
    return _frame(columns, n)


def _parse_texts(
    texts: Sequence[str | None], finish_reasons: Sequence[Any]
) -> tuple[list[Any], list[str | None]]:
    parsed: list[Any] = []
    errors: list[str | None] = []
    for text, finish in zip(texts, finish_reasons, strict=True):
        if text is None:
            parsed.append(None)
            errors.append(None)
            continue
        try:
            parsed.append(_loads(text))
            errors.append(None)
        except ValueError as exc:
            parsed.append(None)
            why = "truncated (finish_reason is 'length')" if finish == "length" else "invalid"
            errors.append(f"result is not valid JSON, {why}: {exc}")
    return parsed, errors


# --------------------------------------------------------------------------------------------
# Segments frame
# --------------------------------------------------------------------------------------------

_TIME = re.compile(r"^\s*(-)?(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)\s*$")


def parse_seconds(value: Any) -> float:
    """Convert a segment boundary to float seconds; ``nan`` when it cannot be read.

    Accepts numbers (``segment_time_format="seconds"``), ``"hh:mm:ss"``, ``"hh:mm:ss.fff"``
    (also ``"mm:ss"`` and hours beyond two digits) and numeric strings.
    """
    if value is None or isinstance(value, bool):
        return float("nan")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _TIME.match(value)
        if match:
            sign, hours, minutes, seconds = match.groups()
            total = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
            return -total if sign else total
        try:
            return float(value)
        except ValueError:
            return float("nan")
    return float("nan")


def _seconds_array(values: list[Any]) -> np.ndarray[Any, Any]:
    try:
        # numbers and None (→ nan) convert in C; "12.5" too; hh:mm:ss strings do not
        if not any(type(v) is str for v in values):
            return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        pass
    return np.fromiter(map(parse_seconds, values), dtype=np.float64, count=len(values))


class _SegmentColumns:
    """Accumulates the long-form segment columns, one segment definition at a time."""

    def __init__(self) -> None:
        self.custom_id: list[Any] = []
        self.task_id: list[Any] = []
        self.definition_id: list[Any] = []
        self.segment_index: list[int] = []
        self.start: list[Any] = []
        self.end: list[Any] = []
        self.fields: dict[str, list[Any]] = {}
        self.parse_error: list[Any] = []
        self.rows = 0

    def _pad(self, names: Iterable[str], count: int) -> None:
        for name in names:
            self.fields[name].extend(itertools.repeat(None, count))

    def _field(self, name: str) -> list[Any]:
        column = self.fields.get(name)
        if column is None:
            column = self.fields[name] = [None] * self.rows
        return column

    def add_error(self, item: _Item, message: str) -> None:
        self.custom_id.append(item.custom_id)
        self.task_id.append(item.task_id)
        self.definition_id.append(None)
        self.segment_index.append(-1)
        self.start.append(None)
        self.end.append(None)
        self.parse_error.append(message)
        self._pad(self.fields, 1)
        self.rows += 1

    def add(self, item: _Item, definition: Any, segments: list[Any]) -> None:
        count = len(segments)
        if not count:
            return
        if not all(type(s) is dict for s in segments):
            bad = [s for s in segments if type(s) is not dict]
            segments = [s for s in segments if type(s) is dict]
            self.add_error(
                item, f"{len(bad)} segment(s) of {definition!r} are not JSON objects: {bad[:3]!r}"
            )
            count = len(segments)
            if not count:
                return
        self.custom_id.extend(itertools.repeat(item.custom_id, count))
        self.task_id.extend(itertools.repeat(item.task_id, count))
        self.definition_id.extend(itertools.repeat(definition, count))
        self.segment_index.extend(range(count))
        self.start.extend([s.get("start_time") for s in segments])
        self.end.extend([s.get("end_time") for s in segments])
        self.parse_error.extend(itertools.repeat(None, count))
        metas = [s.get("metadata") or _EMPTY for s in segments]
        if not all(type(m) is dict for m in metas):
            metas = [m if type(m) is dict else {"metadata": m} for m in metas]
        seen = dict.fromkeys(itertools.chain.from_iterable(metas))
        # keys beside start_time/end_time/metadata are carried as columns too
        others = [
            k for k in dict.fromkeys(itertools.chain.from_iterable(segments)) if k not in _SEG_KEYS
        ]
        for name in seen:
            self._field(name).extend([m.get(name) for m in metas])
        for name in others:
            if name not in seen:
                self._field(name).extend([s.get(name) for s in segments])
        self._pad([k for k in self.fields if k not in seen and k not in others], count)
        self.rows += count


def segments_to_frame(
    lines: Iterable[Any] | bytes | str,
    *,
    order: Iterable[OrderEntry] | None = None,
    dtype_backend: DtypeBackend | None = None,
) -> pd.DataFrame:
    """Build the segments frame of a ``time_based_metadata`` batch: one row per segment.

    Parameters
    ----------
    lines
        The results stream, as for :func:`results_to_frame`. Only ready items have segments;
        other items give no rows (see :func:`results_to_frame` for them).
    order
        Created items or custom_ids in request order: items' segments follow it (then items not
        in it, in stream order). Within an item: definitions in the order of the JSON object,
        segments in array order.
    dtype_backend
        As for :func:`results_to_frame`.

    Returns
    -------
    pandas.DataFrame
        Columns ``custom_id``, ``task_id``, ``definition_id`` (the segment definition ``id``),
        ``segment_index`` (position within its item and definition), ``start``, ``end`` and
        ``duration`` as float seconds whatever ``segment_time_format`` was used (numbers,
        ``"hh:mm:ss"`` or ``"hh:mm:ss.fff"``), one column per metadata field (values of
        ``timestamp`` fields are left as the API wrote them; a name already taken is prefixed
        ``metadata.``), and ``parse_error``: an item whose output is not valid JSON, or not an
        object of segment arrays, gives one row with missing times and the reason there,
        rather than an exception.
    """
    builder = _Columns(dtype_backend)
    acc = _SegmentColumns()
    for item in _arrange(lines, order, None):
        if not item.text:
            continue
        try:
            decoded = _loads(item.text)
        except ValueError as exc:
            acc.add_error(item, f"result is not valid JSON: {exc}")
            continue
        if not isinstance(decoded, dict):
            acc.add_error(item, f"result is a JSON {type(decoded).__name__}, not an object")
            continue
        for definition, segments in decoded.items():
            if isinstance(segments, dict):
                segments = [segments]
            if not isinstance(segments, list):
                acc.add_error(item, f"segments of {definition!r} are not a JSON array")
                continue
            acc.add(item, definition, segments)
    start = _seconds_array(acc.start)
    end = _seconds_array(acc.end)
    del acc.start, acc.end
    columns: dict[str, Any] = {
        "custom_id": builder.str_(acc.custom_id),
        "task_id": builder.str_(acc.task_id),
        "definition_id": builder.str_(acc.definition_id),
        "segment_index": builder.int_([None if i < 0 else i for i in acc.segment_index]),
        "start": builder.float_(start),
        "end": builder.float_(end),
        "duration": builder.float_(end - start),
    }
    fields = acc.fields
    for name in list(fields):
        column = _unique_name(str(name), columns, "metadata")
        columns[column] = builder.infer(fields.pop(name))
    columns["parse_error"] = builder.str_(acc.parse_error)
    return _frame(columns, acc.rows)


# --------------------------------------------------------------------------------------------
# Async entry points
# --------------------------------------------------------------------------------------------


async def collect(lines: AsyncIterable[_T] | Iterable[_T]) -> list[_T]:
    """Drain an async (or plain) iterator of results lines into a list.

    Fetch once, then build both frames from the list::

        lines = await collect(client.results(batch_id))
        items, segments = results_to_frame(lines), segments_to_frame(lines)

    Parameters
    ----------
    lines
        The client's ``results(batch_id)`` (``ResultLine``), its raw variant (``bytes``), or any
        iterable.

    Returns
    -------
    list
        The lines, in stream order.
    """
    if isinstance(lines, AsyncIterable):
        return [line async for line in lines]
    return list(lines)


async def collect_frame(
    lines: AsyncIterable[Any] | Iterable[Any],
    *,
    order: Iterable[OrderEntry] | None = None,
    total_items: int | None = None,
    parse_json: bool = False,
    expand: bool = False,
    dtype_backend: DtypeBackend | None = None,
) -> pd.DataFrame:
    """Await an async iterator of results lines and return :func:`results_to_frame` of it.

    Parameters
    ----------
    lines
        An async iterable (e.g. ``client.results(batch_id)``) or a plain iterable.
    order, total_items, parse_json, expand, dtype_backend
        As for :func:`results_to_frame`.

    Returns
    -------
    pandas.DataFrame
        The items frame.
    """
    return results_to_frame(
        await collect(lines),
        order=order,
        total_items=total_items,
        parse_json=parse_json,
        expand=expand,
        dtype_backend=dtype_backend,
    )


async def collect_segments(
    lines: AsyncIterable[Any] | Iterable[Any],
    *,
    order: Iterable[OrderEntry] | None = None,
    dtype_backend: DtypeBackend | None = None,
) -> pd.DataFrame:
    """Await an async iterator of results lines and return :func:`segments_to_frame` of it.

    Parameters
    ----------
    lines
        An async iterable (e.g. ``client.results(batch_id)``) or a plain iterable.
    order, dtype_backend
        As for :func:`segments_to_frame`.

    Returns
    -------
    pandas.DataFrame
        The segments frame.
    """
    return segments_to_frame(await collect(lines), order=order, dtype_backend=dtype_backend)


# --------------------------------------------------------------------------------------------
# Join back, polars
# --------------------------------------------------------------------------------------------


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
        unmatched = ~pd.Index(wanted).isin(right.index)
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
