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

Speed and memory (measured by ``benchmarks/bench_frames.py``; all optional libraries are
imported lazily, with a stdlib fallback):

- Decoder: each results line is decoded with ``orjson`` when installed, else ``msgspec``, else
  the stdlib ``json``. orjson was the fastest per-line decoder on these shapes (the cost is
  un-escaping the long ``data.data`` strings: ~3x faster than the stdlib, ahead of msgspec's
  untyped decoder); a line it refuses is retried with the stdlib (which reads ``NaN``) before it
  is called malformed, so a fast decoder never loses a line the stdlib could read.
- Builder: columns are gathered as Python lists (one list comprehension per field, no per-row
  dicts, no ``json_normalize``) and staged into Arrow chunks when pyarrow is installed, so that
  text columns become pandas 3's Arrow-backed ``str`` without a second copy and the Python
  strings are freed block by block; each frame is one ``DataFrame`` constructor over finished
  arrays. The cyclic GC is paused while building (nothing here makes cycles; the allocation
  bursts otherwise trigger full collections, ~30% of the segments time).
- Nested values (an expanded property or a metadata field holding lists/objects) become Arrow
  ``list``/``struct`` columns (``pd.ArrowDtype``) when pyarrow is installed and the values share
  one type, in every ``dtype_backend``; otherwise (no pyarrow, or lists mixed with objects or
  scalars) ``object`` columns of Python values. As Python objects they cost ~2.5x their JSON
  text (a dict, list and str object per value); as Arrow ~1x, with the ``.list``/``.struct``
  accessors, and an element still reads back as a Python list/dict (``NA`` where missing).
- Memory: every Arrow buffer comes from pyarrow's *system* memory pool, not its default
  (mimalloc): the texts are Python strings freed block by block while the columns grow, and
  only the system allocator gives that memory back to the columns; with mimalloc both stayed
  resident (peak 4.4x → 1.3x the input for the structured benchmark, 5.7x → 2x for segments).
- Segments: with pyarrow, the items' outputs are parsed by ``pyarrow.json`` 128 at a time (one
  thread: worker threads would each keep an arena of freed parse buffers) and the segment lists
  flattened column-wise in Arrow: ~2x faster than decoding 50,000 segment dicts in Python.
  Each block is put in row order as soon as it is parsed and kept as chunks of the final
  columns (no sort, concatenation or copy of the whole at the end), and each item's text is
  freed once its block is parsed. Because ``pyarrow.json`` is all-or-nothing and infers one
  type per column, a parse error or an incompatible type change makes the call fall back to
  the per-item Python path, which reports bad output row by row; the items are then read again
  from ``lines`` (a list or a body; a one-shot iterator's texts are kept instead, as it cannot
  be read twice). Both paths give equal frames (tested).
"""

from __future__ import annotations

import gc
import io
import itertools
import json
import re
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import pandas as pd

from ._json import decoder_name, loads
from .models import CreatedItem, ResultLine

if TYPE_CHECKING:
    import polars

__all__ = [
    "ITEM_STATUSES",
    "MalformedLine",
    "collect",
    "collect_frame",
    "collect_segments",
    "decoder_name",
    "join_results",
    "parse_seconds",
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
_NO_METADATA: Any = object()

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
                obj = loads(line)
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

#: Segment rows gathered before the pending values are moved into Arrow chunks.
_CHUNK_ROWS = 4096
#: Items whose text is converted (and parsed) at a time in the items frame.
_CHUNK_ITEMS = 64

_KINDS_ARROW = ("str", "bool", "int", "float", "null")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while columns are built.

    Building makes hundreds of thousands of short-lived acyclic objects (decoded dicts, values);
    each burst otherwise triggers full collections that walk every live object (a third of the
    segments frame's time). Nothing built here forms cycles; the previous state is restored.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


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


def _kind_of(values: Sequence[Any]) -> str:
    """The column kind of Python values: str, bool, int, float, null, nested or mixed."""
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if not kinds:
        return "null"
    if len(kinds) == 1:
        (kind,) = kinds
        if kind is str:
            return "str"
        if kind is bool:
            return "bool"
        if kind is int:
            return "int"
        if kind is float:
            return "float"
        if kind is dict or kind is list:
            return "nested"
        return "mixed"
    if kinds == {int, float}:
        return "float"
    if kinds <= {dict, list}:
        return "nested"
    return "mixed"


def _unify(first: str | None, second: str) -> str:
    if first is None or first == "null" or first == second:
        return second
    if second == "null":
        return first
    if {first, second} == {"int", "float"}:
        return "float"
    return "mixed"


class _Columns:
    """Makes one pandas array per column for the chosen ``dtype_backend``.

    Values arrive either as Python lists or, when pyarrow is installed, as Arrow chunks (see
    :class:`_Sink`); the latter convert to pandas 3's Arrow-backed ``str`` without a copy.
    """

    def __init__(self, dtype_backend: DtypeBackend | None) -> None:
        if dtype_backend not in (None, "numpy_nullable", "pyarrow"):
            raise ValueError(
                f"dtype_backend must be None, 'numpy_nullable' or 'pyarrow', got {dtype_backend!r}"
            )
        self.backend = dtype_backend
        self.pa: Any = None
        self.pc: Any = None
        try:
            import pyarrow
            import pyarrow.compute

            self.pa = pyarrow
            self.pc = pyarrow.compute
        except ImportError:
            if dtype_backend == "pyarrow":
                raise ImportError(
                    "dtype_backend='pyarrow' needs pyarrow: pip install pyarrow"
                ) from None
        self.arrow_types: dict[str, Any] = {}
        self.pool: Any = None
        if self.pa is not None:
            pa = self.pa
            # every Arrow buffer built here comes from the system allocator, not pyarrow's
            # default (mimalloc): the texts are Python strings freed block by block while the
            # columns grow, and only the system allocator hands that memory back to the
            # columns; with mimalloc both stay resident (structured: 3.5x → 1.3x the input)
            self.pool = pa.system_memory_pool()
            self.arrow_types = {
                "str": pa.large_string(), "bool": pa.bool_(), "int": pa.int64(),
                "float": pa.float64(), "null": pa.null(),
            }  # fmt: skip

    # -- from Python lists ---------------------------------------------------------------

    def array(self, values: Any, type_: Any = None) -> Any:
        """``pyarrow.array`` in this builder's memory pool (``type_`` inferred when ``None``)."""
        return self.pa.array(values, type=type_, memory_pool=self.pool)

    def _arrow(self, values: Any, type_: Any) -> Any:
        arrow = self.pa.array(values, type=type_, from_pandas=True, memory_pool=self.pool)
        return pd.arrays.ArrowExtensionArray(arrow)

    def str_(self, values: Sequence[Any]) -> Any:
        if self.pa is not None:
            return self.from_arrow("str", self.array(values, self.pa.large_string()))
        if self.backend == "numpy_nullable":
            return pd.array(_object_array(values), dtype="string")
        if _PD_MAJOR >= 3:
            return pd.array(_object_array(values), dtype="str")
        return _object_array(values)

    def str_list_take(self, values: Sequence[Any], positions: np.ndarray[Any, Any]) -> Any:
        """``str_`` of ``values[positions]`` (repeated ids without a Python list per row)."""
        if self.pa is not None:
            arrow = self.array(values, self.pa.large_string())
            where = self.pa.array(positions, memory_pool=self.pool)
            taken = self.pc.take(arrow, where, memory_pool=self.pool)
            return self.from_arrow("str", taken)
        return self.str_(_object_array(values)[positions])

    def int_(self, values: Sequence[Any]) -> Any:
        if self.pa is not None:
            return self.from_arrow("int", self.array(values, self.pa.int64()))
        count = len(values)
        mask = np.fromiter((v is None for v in values), dtype=bool, count=count)
        data = np.fromiter((0 if v is None else v for v in values), dtype=np.int64, count=count)
        return pd.arrays.IntegerArray(data, mask)

    def float_(self, values: Sequence[Any] | np.ndarray[Any, Any]) -> Any:
        arr = np.asarray(values, dtype=np.float64)
        if self.backend == "pyarrow":
            return self._arrow(arr, self.pa.float64())
        if self.backend == "numpy_nullable":
            return pd.arrays.FloatingArray(arr, np.isnan(arr))
        return arr

    def bool_(self, values: Sequence[Any]) -> Any:
        if self.pa is not None:
            return self.from_arrow("bool", self.array(values, self.pa.bool_()))
        count = len(values)
        mask = np.fromiter((v is None for v in values), dtype=bool, count=count)
        data = np.fromiter((v is True for v in values), dtype=bool, count=count)
        return pd.arrays.BooleanArray(data, mask)

    def object_(self, values: Sequence[Any]) -> Any:
        if self.backend == "pyarrow":
            try:
                return pd.arrays.ArrowExtensionArray(self.array(values))
            except (self.pa.ArrowException, TypeError, ValueError, OverflowError):
                pass
        return _object_array(values)

    def category(self, values: Sequence[Any], known: Sequence[str]) -> pd.Categorical:
        extra = [v for v in dict.fromkeys(values) if v is not None and v not in known]
        return pd.Categorical(values, categories=[*known, *extra])

    def of_kind(self, kind: str, values: Sequence[Any]) -> Any:
        """An array from Python values already known to be of ``kind``."""
        try:
            if kind == "str":
                return self.str_(values)
            if kind == "bool":
                return self.bool_(values)
            if kind == "int":
                return self.int_(values)
            if kind == "float":
                return self.float_([np.nan if v is None else v for v in values])
            if kind == "null" and self.backend == "pyarrow":
                return self._arrow(values, self.pa.null())
        except (OverflowError, ValueError, TypeError):
            pass
        except Exception as exc:  # an Arrow error: keep the values as they are
            if self.pa is None or not isinstance(exc, self.pa.ArrowException):
                raise
        return self.object_(values)

    # -- from Arrow chunks ---------------------------------------------------------------

    def from_arrow(self, kind: str, arrow: Any) -> Any:
        """Wrap an Arrow (chunked) array of ``kind`` as the backend's pandas array."""
        pa = self.pa
        if self.backend == "pyarrow" or kind == "nested":
            # nested values (lists, objects) are Arrow list/struct columns in every backend
            if kind == "str" and arrow.type != pa.string():
                # string[pyarrow], as read_* and convert_dtypes give
                arrow = self.pc.cast(arrow, pa.string(), memory_pool=self.pool)
            if isinstance(arrow, pa.Array):
                arrow = pa.chunked_array([arrow])
            return pd.arrays.ArrowExtensionArray(arrow)
        if kind == "str":
            if self.backend == "numpy_nullable":
                return pd.array(arrow, dtype="string")
            if _PD_MAJOR >= 3:
                if arrow.type != pa.large_string():  # pandas would cast in its own pool
                    arrow = self.pc.cast(arrow, pa.large_string(), memory_pool=self.pool)
                return pd.array(arrow, dtype="str")  # zero-copy: same Arrow buffers
            if pd.get_option("future.infer_string"):  # pragma: no cover - pandas 2.x opt-in
                return pd.array(arrow, dtype=_string_dtype("pyarrow_numpy"))
            return arrow.to_numpy(zero_copy_only=False)
        if kind == "float":
            values = arrow.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
            if self.backend == "numpy_nullable":
                return pd.arrays.FloatingArray(values, np.isnan(values))
            return values
        if kind in ("int", "bool"):
            pc, pool = self.pc, self.pool
            mask = pc.is_null(arrow, memory_pool=pool).to_numpy(zero_copy_only=False)
            mask = mask.astype(bool, copy=False)
            filled = pc.coalesce(arrow, 0 if kind == "int" else False, memory_pool=pool)
            data = filled.to_numpy(zero_copy_only=False)
            if kind == "int":
                return pd.arrays.IntegerArray(data.astype(np.int64, copy=False), mask)
            return pd.arrays.BooleanArray(data.astype(bool, copy=False), mask)
        if kind == "null":
            return _object_array([None] * len(arrow))
        return _object_array(arrow.to_pylist())


class _Sink:
    """One column filled by appends. With pyarrow, pending values move to Arrow chunks on
    :meth:`flush`, so that Python objects do not pile up (peak memory stays near the output's);
    without it the values stay in one list. A declared ``kind`` skips type inference."""

    __slots__ = ("buf", "chunks", "cols", "declared", "kind", "python")

    def __init__(self, cols: _Columns, kind: str | None = None, leading: int = 0) -> None:
        self.cols = cols
        self.declared = kind
        self.kind: str | None = None
        self.chunks: list[Any] = []
        self.python: list[Any] | None = None  # set when values must stay Python objects
        self.buf: list[Any] = []
        if leading:
            if cols.pa is not None:
                self.chunks.append(cols.pa.nulls(leading))
                self.kind = "null"
            else:
                self.buf = [None] * leading

    def extend(self, values: Iterable[Any]) -> None:
        self.buf.extend(values)

    def _to_python(self) -> list[Any]:
        values = [v for chunk in self.chunks for v in chunk.to_pylist()]
        self.chunks = []
        return values

    def flush(self) -> None:
        cols, buf = self.cols, self.buf
        if cols.pa is None or not buf:
            return
        if self.python is not None:
            self.python.extend(buf)
            self.buf = []
            return
        kind = self.declared or _kind_of(buf)
        unified = _unify(self.kind, kind)
        arrow_type = cols.arrow_types.get(kind)
        if unified == "mixed" or (arrow_type is None and kind != "nested"):
            self.python = self._to_python() + buf
            self.buf = []
            return
        try:
            chunk = cols.array(buf, arrow_type)
        except (cols.pa.ArrowException, TypeError, ValueError, OverflowError):
            self.python = self._to_python() + buf
            self.buf = []
            return
        self.chunks.append(chunk)
        self.kind = unified
        self.buf = []

    def finish(self) -> Any:
        cols = self.cols
        if cols.pa is None:
            return cols.of_kind(self.declared or _kind_of(self.buf), self.buf)
        self.flush()
        if self.python is not None:
            values = self.python
            return cols.of_kind(self.declared or _kind_of(values), values)
        kind = self.kind or self.declared or "null"
        pa = cols.pa
        target = cols.arrow_types.get(kind)
        chunks = self.chunks or [pa.array([], type=target)]
        try:
            if target is None:  # nested: one type for all chunks (e.g. list<null> → list<str>)
                target = _common_type(pa, [c.type for c in chunks])
            chunks = [c if c.type == target else _cast(cols, c, target) for c in chunks]
            return cols.from_arrow(kind, pa.chunked_array(chunks, type=target))
        except (pa.ArrowException, TypeError, ValueError):
            return cols.object_(self._to_python())


def _common_type(pa: Any, types: Sequence[Any]) -> Any:
    """The type all ``types`` cast to (nulls filled in, numbers widened, struct fields united)."""
    distinct = list(dict.fromkeys(types))
    if len(distinct) == 1:
        return distinct[0]
    schemas = [pa.schema([("v", t)]) for t in distinct]
    return pa.unify_schemas(schemas, promote_options="permissive").field("v").type


def _cast(cols: _Columns, arrow: Any, target: Any) -> Any:
    return cols.pc.cast(arrow, target, memory_pool=cols.pool)


def _frame(columns: dict[str, Any], n: int) -> pd.DataFrame:
    frame: pd.DataFrame = pd.DataFrame(columns, index=pd.RangeIndex(n), copy=False)
    return frame


def _unique_name(name: str, taken: Iterable[str], prefix: str) -> str:
    taken = set(taken)
    candidate = name if name not in taken else f"{prefix}.{name}"
    while candidate in taken:
        candidate = f"_{candidate}"
    return candidate


class _FieldSinks:
    """Columns whose names are only known from the data (expanded properties, metadata)."""

    def __init__(self, cols: _Columns) -> None:
        self.cols = cols
        self.sinks: dict[str, _Sink] = {}
        self.rows = 0

    def add(self, records: Sequence[Mapping[str, Any]], extra: Sequence[str] = ()) -> None:
        """Append one value per record for every field (``None`` where a record lacks it)."""
        count = len(records)
        seen = dict.fromkeys(itertools.chain.from_iterable(records))
        for name in seen:
            sink = self.sinks.get(name)
            if sink is None:
                sink = self.sinks[name] = _Sink(self.cols, leading=self.rows)
            sink.extend([r.get(name) for r in records])
        for name, sink in self.sinks.items():
            if name not in seen:
                sink.extend(itertools.repeat(None, count))
        self.rows += count

    def pad(self, count: int) -> None:
        for sink in self.sinks.values():
            sink.extend(itertools.repeat(None, count))
        self.rows += count

    def flush(self) -> None:
        for sink in self.sinks.values():
            sink.flush()

    def attach(self, columns: dict[str, Any], prefix: str, reserved: str) -> None:
        for name in list(self.sinks):
            column = _unique_name(str(name), [*columns, reserved], prefix)
            columns[column] = self.sinks.pop(name).finish()


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
    keep_text: bool = False,
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
        Decode the text of structured (``json_schema``) output into a ``parsed`` column of
        Python objects. A text that does not decode (truncated by ``finish_reason ==
        "length"``, or invalid) keeps its text in ``result``, gets ``parsed`` missing and a
        message in ``parse_error``; it never raises.
    expand
        Expand the top-level properties of each decoded object into columns, named as the
        properties (prefixed ``result.`` if a name is already taken). Implies decoding; the
        ``parsed`` column itself is only added when ``parse_json`` is also true.
    keep_text
        With ``parse_json`` or ``expand``, also keep ``result`` for rows whose text decoded (by
        default it is kept only where decoding failed: the decoded value holds the same
        content, and a 10 KB answer per item would otherwise be held twice).
    dtype_backend
        ``None`` (default): ``str`` text columns on pandas 3 (``object`` on pandas 2.2 unless
        ``future.infer_string`` is on), nullable ``Int64``/``boolean``, ``float64``.
        ``"numpy_nullable"``: ``string``, ``Int64``, ``Float64``, ``boolean``. ``"pyarrow"``:
        ``pd.ArrowDtype`` columns (needs pyarrow). In all three, nested values (lists, objects)
        are ``pd.ArrowDtype`` list/struct columns when pyarrow is installed and they share one
        type (e.g. ``list<string>``; ``frame["topics"].list.len()``,
        ``frame["scenes"].explode()``; an element reads back as a Python list/dict, ``NA``
        where missing; struct fields missing from an object read back as ``None``), else
        ``object`` columns of Python values. ``status`` is categorical in all. The ``parsed``
        column is always Python objects.

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
    >>> frame = results_to_frame(lines, order=created.items, expand=True)
    >>> frame[frame.status == "failed"][["custom_id", "error_code", "error_message"]]
    """
    if total_items is not None and total_items < 0:
        raise ValueError(f"total_items must be >= 0, got {total_items}")
    cols = _Columns(dtype_backend)
    parsing = parse_json or expand
    with _gc_paused():
        items = _arrange(lines, order, total_items)
        n = len(items)
        fixed = {
            name: _Sink(cols, "int" if name.endswith("_tokens") else "str")
            for name in _BASE_COLUMNS
            if name != "status"
        }
        parse_error = _Sink(cols, "str")
        parsed_values: list[Any] = []
        expanded = _FieldSinks(cols)
        for start in range(0, n, _CHUNK_ITEMS):
            block = items[start : start + _CHUNK_ITEMS]
            texts = [it.text for it in block]
            for it in block:
                it.text = None  # released block by block: the column holds the text now
            if parsing:
                parsed, errors = _parse_texts(texts, [it.finish_reason for it in block])
                parse_error.extend(errors)
                if not keep_text:
                    texts = [t if e is not None else None for t, e in zip(texts, errors, strict=True)]
                if parse_json:
                    parsed_values.extend(parsed)
                if expand:
                    expanded.add([p if type(p) is dict else _EMPTY for p in parsed])
                    expanded.flush()
                del parsed
            fixed["result"].extend(texts)
            del texts
            for name, sink in fixed.items():
                if name != "result":
                    sink.extend([getattr(it, name) for it in block])
                sink.flush()
            parse_error.flush()
        columns: dict[str, Any] = {}
        for name in _BASE_COLUMNS:
            if name == "status":
                columns[name] = cols.category([it.status for it in items], ITEM_STATUSES)
            else:
                columns[name] = fixed.pop(name).finish()
        if parse_json:
            columns["parsed"] = _object_array(parsed_values)
            del parsed_values
        if parsing:
            columns["parse_error"] = parse_error.finish()
        if expand:
            expanded.attach(columns, prefix="result", reserved="note")
        extras = [it.extra or _EMPTY for it in items]
        if any(extras):
            extra_sinks = _FieldSinks(cols)
            extra_sinks.add(extras)
            extra_sinks.attach(columns, prefix="extra", reserved="note")
        columns["note"] = cols.str_([it.note for it in items])
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
            parsed.append(loads(text))
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
        # numbers and None (→ nan) convert in C; hh:mm:ss strings raise and take the slow path
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.fromiter(map(parse_seconds, values), dtype=np.float64, count=len(values))


class _SegmentColumns:
    """Accumulates the long-form segment columns, one segment definition at a time."""

    def __init__(self, cols: _Columns) -> None:
        self.cols = cols
        self.ids = {name: _Sink(cols, "str") for name in ("custom_id", "task_id", "definition_id")}
        self.segment_index = _Sink(cols, "int")
        self.parse_error = _Sink(cols, "str")
        self.fields = _FieldSinks(cols)
        self.start: list[Any] = []
        self.end: list[Any] = []
        self.seconds: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []
        self.pending = 0

    @property
    def rows(self) -> int:
        return self.fields.rows

    def _ids(self, item: _Item, definition: Any, count: int) -> None:
        self.ids["custom_id"].extend(itertools.repeat(item.custom_id, count))
        self.ids["task_id"].extend(itertools.repeat(item.task_id, count))
        self.ids["definition_id"].extend(itertools.repeat(definition, count))
        self.pending += count

    def add_error(self, item: _Item, message: str, definition: Any = None) -> None:
        self._ids(item, None if definition is None else str(definition), 1)
        self.segment_index.extend((None,))
        self.start.append(None)
        self.end.append(None)
        self.parse_error.extend((message,))
        self.fields.pad(1)

    def add(self, item: _Item, definition: Any, segments: list[Any]) -> None:
        count = len(segments)
        if count and set(map(type, segments)) != {dict}:
            bad = [s for s in segments if type(s) is not dict]
            segments = [s for s in segments if type(s) is dict]
            self.add_error(
                item, f"{len(bad)} segment(s) are not JSON objects: {bad[:3]!r}", definition
            )
            count = len(segments)
        if not count:
            return
        self._ids(item, str(definition), count)
        self.segment_index.extend(range(count))
        self.start.extend([s.get("start_time") for s in segments])
        self.end.extend([s.get("end_time") for s in segments])
        self.parse_error.extend(itertools.repeat(None, count))
        metas = [s.get("metadata", _NO_METADATA) for s in segments]
        # the usual segment has exactly start_time, end_time and metadata: only otherwise look
        # for other keys, which are carried as columns too
        if sum(map(len, segments)) != 3 * count or _NO_METADATA in metas:
            others = [
                k
                for k in dict.fromkeys(itertools.chain.from_iterable(segments))
                if k not in _SEG_KEYS
            ]
        else:
            others = []
        if set(map(type, metas)) != {dict}:
            metas = [
                m if type(m) is dict else _EMPTY if m is None or m is _NO_METADATA else {"metadata": m}
                for m in metas
            ]
        if others:
            metas = [
                {**{k: s.get(k) for k in others}, **m}
                for s, m in zip(segments, metas, strict=True)
            ]
        self.fields.add(metas)

    def flush(self, force: bool = False) -> None:
        if self.pending < _CHUNK_ROWS and not force:
            return
        self.seconds.append((_seconds_array(self.start), _seconds_array(self.end)))
        self.start, self.end = [], []
        for sink in (*self.ids.values(), self.segment_index, self.parse_error):
            sink.flush()
        self.fields.flush()
        self.pending = 0

    def frame(self) -> pd.DataFrame:
        self.flush(force=True)
        cols = self.cols
        empty = np.empty(0, dtype=np.float64)
        start = np.concatenate([s for s, _ in self.seconds] or [empty])
        end = np.concatenate([e for _, e in self.seconds] or [empty])
        self.seconds = []
        columns: dict[str, Any] = {name: sink.finish() for name, sink in self.ids.items()}
        columns["segment_index"] = self.segment_index.finish()
        columns["start"] = cols.float_(start)
        columns["end"] = cols.float_(end)
        columns["duration"] = cols.float_(end - start)
        rows = self.rows
        self.fields.attach(columns, prefix="metadata", reserved="parse_error")
        columns["parse_error"] = self.parse_error.finish()
        return _frame(columns, rows)


class _ArrowSegments:
    """Fast path of :func:`segments_to_frame` when pyarrow is installed.

    The items' outputs are parsed by ``pyarrow.json`` a block of items at a time, and the segment
    lists are flattened column-wise in Arrow (no Python object per segment). Each block is put in
    row order (item, definition, segment) as soon as it is parsed, and its columns are kept as
    Arrow chunks of the final columns: no global sort, concatenation or copy at the end. It
    declines (returns ``None``, and the per-item Python path runs instead, which reports errors
    row by row) on anything it cannot take exactly: an output that is not a JSON object of
    segment arrays, a value whose type changes between items, a parse error.
    """

    #: Items parsed at a time: ~1 MB of text for the usual ~50-segment answer. The block's text,
    #: parse and columns are in flight at once: peak 1.9x / 2.0x / 2.4x the input at 64 / 128 /
    #: 256 items in the benchmark; smaller blocks add a fixed cost per block.
    BLOCK = 128

    def __init__(self, cols: _Columns) -> None:
        import pyarrow.json

        self.cols = cols
        self.pa = cols.pa
        self.pc = cols.pc
        self.pj = pyarrow.json
        self.pool = cols.pool
        self.definitions: dict[str, int] = {}
        self.owners: list[np.ndarray[Any, Any]] = []  # per block, in row order from here on
        self.def_rank: list[np.ndarray[Any, Any]] = []
        self.seg_index: list[np.ndarray[Any, Any]] = []
        self.start: list[np.ndarray[Any, Any]] = []
        self.end: list[np.ndarray[Any, Any]] = []
        self.fields: dict[str, list[tuple[int, Any]]] = {}  # name → (block number, array)
        self.first_row: dict[str, int] = {}  # name → first row having the field
        self.block_rows: list[int] = []

    def build(self, items: list[_Item], release: bool) -> pd.DataFrame | None:
        """The frame, or ``None`` to decline. ``release``: drop each item's text once parsed."""
        pa = self.pa
        owners = [i for i, it in enumerate(items) if it.text]
        try:
            for first in range(0, len(owners), self.BLOCK):
                block = owners[first : first + self.BLOCK]
                texts = [items[i].text or "" for i in block]
                if release:
                    for i in block:
                        items[i].text = None
                options = self.pj.ParseOptions(
                    newlines_in_values=any("\n" in t for t in texts),
                    unexpected_field_behavior="infer",
                )
                data = "\n".join(texts).encode()
                del texts
                # one thread and one chunk per block: the parse's buffers then come from (and go
                # back to) the main thread's heap, where the next block reuses them; worker
                # threads would each keep an arena of freed memory (+0.5x the input in peak)
                read = self.pj.ReadOptions(use_threads=False, block_size=len(data) + 1)
                table = self.pj.read_json(
                    io.BytesIO(data), read_options=read, parse_options=options, memory_pool=self.pool
                )
                del data
                if table.num_rows != len(block) or not self._take(table, block):
                    return None
                del table
        except (pa.ArrowException, UnicodeError, ValueError, TypeError):
            return None
        return self._frame(items)

    def _take(self, table: Any, block: list[int]) -> bool:
        """Flatten one parsed block and append its rows, in row order, as new chunks."""
        pa, pc, pool = self.pa, self.pc, self.pool
        owners = np.asarray(block, dtype=np.int64)
        item_pos, def_rank, seg_index, start, end = [], [], [], [], []
        parts: dict[str, list[tuple[int, Any]]] = {}  # field → (definition piece, values)
        piece_rows: list[int] = []
        for name in table.column_names:
            chunks = table.column(name).chunks  # (combine_chunks ignores memory_pool)
            column = chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks, memory_pool=pool)
            if pa.types.is_null(column.type):
                continue
            if not pa.types.is_list(column.type):
                return False
            lengths = pc.list_value_length(column, memory_pool=pool)
            lengths = pc.coalesce(lengths, 0, memory_pool=pool).to_numpy(zero_copy_only=False)
            total = int(lengths.sum())
            flat = pc.list_flatten(column, memory_pool=pool)
            if total == 0 or pa.types.is_null(flat.type):
                continue
            if not pa.types.is_struct(flat.type) or flat.null_count:
                return False
            starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
            rank = self.definitions.setdefault(name, len(self.definitions))
            item_pos.append(np.repeat(owners, lengths))
            def_rank.append(np.full(total, rank, dtype=np.int64))
            seg_index.append(np.arange(total, dtype=np.int64) - starts)
            start.append(self._seconds(flat, "start_time", total))
            end.append(self._seconds(flat, "end_time", total))
            piece = len(piece_rows)
            piece_rows.append(total)
            names = [f.name for f in flat.type]
            meta_fields: list[tuple[str, Any]] = []
            if "metadata" in names:
                meta = flat.field("metadata")
                if pa.types.is_struct(meta.type):
                    meta_fields = [(f.name, meta.field(f.name)) for f in meta.type]
                elif not pa.types.is_null(meta.type):
                    return False
            taken = {n for n, _ in meta_fields}
            others = [(n, flat.field(n)) for n in names if n not in _SEG_KEYS and n not in taken]
            for field_name, values in meta_fields + others:
                parts.setdefault(field_name, []).append((piece, values))
        if not piece_rows:
            return True
        block_pos = np.concatenate(item_pos)
        block_rank = np.concatenate(def_rank)
        block_index = np.concatenate(seg_index)
        order = np.lexsort((block_index, block_rank, block_pos))
        self.owners.append(block_pos[order])
        self.def_rank.append(block_rank[order])
        self.seg_index.append(block_index[order])
        self.start.append(np.concatenate(start)[order])
        self.end.append(np.concatenate(end)[order])
        # first row of each definition piece once ordered (metadata columns follow first use)
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        offsets = np.cumsum([0, *piece_rows])
        done = sum(self.block_rows)
        first_of_piece = [done + int(inverse[offsets[i] : offsets[i + 1]].min()) for i in
                          range(len(piece_rows))]  # fmt: skip
        number = len(self.block_rows)
        self.block_rows.append(len(order))
        take = pa.array(order, memory_pool=pool)
        for field_name, pieces in parts.items():
            target = _field_type(pa, [a.type for _, a in pieces])
            by_piece = dict(pieces)
            arrays = [
                _cast(self.cols, by_piece[i], target)
                if i in by_piece
                else pa.nulls(rows, type=target, memory_pool=pool)
                for i, rows in enumerate(piece_rows)
            ]
            values = pc.take(pa.concat_arrays(arrays, memory_pool=pool), take, memory_pool=pool)
            self.fields.setdefault(field_name, []).append((number, values))
            first = min(first_of_piece[i] for i in by_piece)
            self.first_row[field_name] = min(self.first_row.get(field_name, first), first)
        return True

    def _seconds(self, flat: Any, key: str, total: int) -> np.ndarray[Any, Any]:
        pa = self.pa
        if key not in [f.name for f in flat.type]:
            return np.full(total, np.nan)
        values = flat.field(key)
        if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
            return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
        return _seconds_array(values.to_pylist())

    def _column(self, blocks: list[tuple[int, Any]]) -> tuple[str, Any]:
        """One metadata column from its per-block chunks (nulls for blocks without it)."""
        pa = self.pa
        target = _field_type(pa, [a.type for _, a in blocks])
        by_block = dict(blocks)
        chunks = [
            _cast(self.cols, by_block[i], target)
            if i in by_block
            else pa.nulls(rows, type=target, memory_pool=self.pool)
            for i, rows in enumerate(self.block_rows)
        ]
        arrow = pa.chunked_array(chunks, type=target)
        if pa.types.is_string(target) or pa.types.is_large_string(target):
            return "str", arrow
        if pa.types.is_boolean(target):
            return "bool", arrow
        if pa.types.is_integer(target):
            return "int", arrow
        if pa.types.is_floating(target):
            return "float", arrow
        if pa.types.is_null(target):
            return "null", arrow
        return "nested", arrow

    def _frame(self, items: list[_Item]) -> pd.DataFrame:
        pa, cols = self.pa, self.cols
        empty = np.empty(0, dtype=np.int64)
        owners = np.concatenate(self.owners or [empty])
        def_rank = np.concatenate(self.def_rank or [empty])
        seg_index = np.concatenate(self.seg_index or [empty])
        start = np.concatenate(self.start or [np.empty(0)])
        end = np.concatenate(self.end or [np.empty(0)])
        rows = len(owners)
        columns: dict[str, Any] = {
            "custom_id": cols.str_list_take([it.custom_id for it in items], owners),
            "task_id": cols.str_list_take([it.task_id for it in items], owners),
            "definition_id": cols.str_list_take(list(self.definitions), def_rank),
            "segment_index": cols.from_arrow("int", pa.array(seg_index, memory_pool=self.pool)),
            "start": cols.float_(start),
            "end": cols.float_(end),
            "duration": cols.float_(end - start),
        }
        del owners, def_rank, seg_index, start, end
        for name in sorted(self.fields, key=self.first_row.__getitem__):
            kind, arrow = self._column(self.fields.pop(name))
            column = _unique_name(str(name), [*columns, "parse_error"], "metadata")
            columns[column] = cols.from_arrow(kind, arrow)
        columns["parse_error"] = cols.str_([None] * rows)
        return _frame(columns, rows)


def _field_type(pa: Any, types: Sequence[Any]) -> Any:
    """The one type of a segment field's values, as the per-item path would type them.

    Integers and floats widen to float64 (ints alone to int64); nulls take the other type;
    lists and structs unite; anything else that differs is mixed: ``TypeError``, and the caller
    declines.
    """
    known = list(dict.fromkeys(t for t in types if not pa.types.is_null(t)))
    if not known:
        return pa.null()
    if all(pa.types.is_integer(t) for t in known):
        return pa.int64()
    if all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in known):
        return pa.float64()
    if len(known) == 1:
        return known[0]
    if all(pa.types.is_nested(t) for t in known):
        return _common_type(pa, known)
    raise TypeError("mixed")


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
    cols = _Columns(dtype_backend)
    # an input that can be read again lets the fast path free each text once parsed: should
    # it decline, the items are simply made again (a one-shot iterator keeps its texts)
    again = isinstance(lines, (bytes, bytearray, memoryview, Sequence))
    if order is not None:
        order = list(order)
    with _gc_paused():
        items = _arrange(lines, order, None)
        if cols.pa is not None:
            fast = _ArrowSegments(cols).build(items, release=again)
            if fast is not None:
                return fast
            if again:
                items = _arrange(lines, order, None)
        acc = _SegmentColumns(cols)
        for item in items:
            text = item.text
            if not text:
                continue
            item.text = None
            try:
                decoded = loads(text)
            except ValueError as exc:
                acc.add_error(item, f"result is not valid JSON: {exc}")
                continue
            del text
            if not isinstance(decoded, dict):
                acc.add_error(item, f"result is a JSON {type(decoded).__name__}, not an object")
                continue
            for definition, segments in decoded.items():
                if isinstance(segments, dict):
                    segments = [segments]
                if not isinstance(segments, list):
                    acc.add_error(item, "segments are not a JSON array", definition)
                    continue
                acc.add(item, definition, segments)
            del decoded
            acc.flush()
        return acc.frame()


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
    keep_text: bool = False,
    dtype_backend: DtypeBackend | None = None,
) -> pd.DataFrame:
    """Await an async iterator of results lines and return :func:`results_to_frame` of it.

    Parameters
    ----------
    lines
        An async iterable (e.g. ``client.results(batch_id)``) or a plain iterable.
    order, total_items, parse_json, expand, keep_text, dtype_backend
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
        keep_text=keep_text,
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
