"""Columns → pandas arrays with pandas-3-shaped dtypes, for both frames.

:class:`Columns` makes one array per column for the chosen ``dtype_backend``, from Python lists
or from Arrow chunks; :class:`Sink` is one column filled by appends, and :class:`FieldSinks`
the columns whose names come from the data (expanded properties, segment metadata). All optional
libraries are imported lazily, with a stdlib fallback; speed and memory are measured by
``benchmarks/bench_frames.py``.

- Builder: columns are gathered as Python lists (one list comprehension per field, no per-row
  dicts, no ``json_normalize``) and staged into Arrow chunks when pyarrow is installed, so that
  text columns become pandas 3's Arrow-backed ``str`` without a second copy and the Python
  strings are freed block by block; each frame is one ``DataFrame`` constructor over finished
  arrays. The cyclic GC is paused while building (:func:`gc_paused`).
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
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["DtypeBackend"]

DtypeBackend = Literal["numpy_nullable", "pyarrow"]

_PD_MAJOR = int(pd.__version__.split(".", 1)[0])


@contextmanager
def gc_paused() -> Iterator[None]:
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


def object_array(values: Sequence[Any]) -> np.ndarray[Any, Any]:
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


class Columns:
    """Makes one pandas array per column for the chosen ``dtype_backend``.

    Values arrive either as Python lists or, when pyarrow is installed, as Arrow chunks (see
    :class:`Sink`); the latter convert to pandas 3's Arrow-backed ``str`` without a copy.
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
            return pd.array(object_array(values), dtype="string")
        if _PD_MAJOR >= 3:
            return pd.array(object_array(values), dtype="str")
        return object_array(values)

    def str_list_take(self, values: Sequence[Any], positions: np.ndarray[Any, Any]) -> Any:
        """``str_`` of ``values[positions]`` (repeated ids without a Python list per row)."""
        if self.pa is not None:
            arrow = self.array(values, self.pa.large_string())
            where = self.pa.array(positions, memory_pool=self.pool)
            taken = self.pc.take(arrow, where, memory_pool=self.pool)
            return self.from_arrow("str", taken)
        return self.str_(object_array(values)[positions])

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
        return object_array(values)

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
            return object_array([None] * len(arrow))
        return object_array(arrow.to_pylist())


class Sink:
    """One column filled by appends. With pyarrow, pending values move to Arrow chunks on
    :meth:`flush`, so that Python objects do not pile up (peak memory stays near the output's);
    without it the values stay in one list. A declared ``kind`` skips type inference."""

    __slots__ = ("buf", "chunks", "cols", "declared", "kind", "python")

    def __init__(self, cols: Columns, kind: str | None = None, leading: int = 0) -> None:
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


def _cast(cols: Columns, arrow: Any, target: Any) -> Any:
    return cols.pc.cast(arrow, target, memory_pool=cols.pool)


def make_frame(columns: dict[str, Any], n: int) -> pd.DataFrame:
    frame: pd.DataFrame = pd.DataFrame(columns, index=pd.RangeIndex(n), copy=False)
    return frame


def _unique_name(name: str, taken: Iterable[str], prefix: str) -> str:
    taken = set(taken)
    candidate = name if name not in taken else f"{prefix}.{name}"
    while candidate in taken:
        candidate = f"_{candidate}"
    return candidate


class FieldSinks:
    """Columns whose names are only known from the data (expanded properties, metadata)."""

    def __init__(self, cols: Columns) -> None:
        self.cols = cols
        self.sinks: dict[str, Sink] = {}
        self.rows = 0

    def add(self, records: Sequence[Mapping[str, Any]], extra: Sequence[str] = ()) -> None:
        """Append one value per record for every field (``None`` where a record lacks it)."""
        count = len(records)
        seen = dict.fromkeys(itertools.chain.from_iterable(records))
        for name in seen:
            sink = self.sinks.get(name)
            if sink is None:
                sink = self.sinks[name] = Sink(self.cols, leading=self.rows)
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
