"""The segments frame of a ``time_based_metadata`` batch, one row per segment.

:func:`segments_to_frame` has two builders, which give equal frames (tested):

- :class:`_ArrowSegments`, with pyarrow: the items' outputs are parsed by ``pyarrow.json`` 128 at
  a time (one thread: worker threads would each keep an arena of freed parse buffers) and the
  segment lists flattened column-wise in Arrow: ~2x faster than decoding 50,000 segment dicts in
  Python. Each block is put in row order as soon as it is parsed and kept as chunks of the final
  columns (no sort, concatenation or copy of the whole at the end), and each item's text is
  freed once its block is parsed.
- :class:`_SegmentColumns`, the per-item Python path, which reports bad output row by row.

``pyarrow.json`` is all-or-nothing and infers one type per column, so a parse error or an
incompatible type change makes the Arrow path decline and the Python path run; the items are
then read again from ``lines`` (a list or a body; a one-shot iterator's texts are kept instead,
as it cannot be read twice).
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._json import loads
from .columns import (
    Columns,
    DtypeBackend,
    FieldSinks,
    Sink,
    _cast,
    _common_type,
    _unique_name,
    gc_paused,
    make_frame,
)
from .lines import OrderEntry, Rows, arrange

__all__ = ["parse_seconds", "segments_to_frame"]

#: Segment rows gathered before the pending values are moved into Arrow chunks.
_CHUNK_ROWS = 4096

_SEG_KEYS = frozenset({"start_time", "end_time", "metadata"})
_EMPTY: dict[str, Any] = {}
_NO_METADATA: Any = object()

_Ids = tuple[str | None, str | None]  # an item's custom_id and task_id

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

    def __init__(self, cols: Columns) -> None:
        self.cols = cols
        self.ids = {name: Sink(cols, "str") for name in ("custom_id", "task_id", "definition_id")}
        self.segment_index = Sink(cols, "int")
        self.parse_error = Sink(cols, "str")
        self.fields = FieldSinks(cols)
        self.start: list[Any] = []
        self.end: list[Any] = []
        self.seconds: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []
        self.pending = 0

    @property
    def rows(self) -> int:
        return self.fields.rows

    def _ids(self, item: _Ids, definition: Any, count: int) -> None:
        custom_id, task_id = item
        self.ids["custom_id"].extend(itertools.repeat(custom_id, count))
        self.ids["task_id"].extend(itertools.repeat(task_id, count))
        self.ids["definition_id"].extend(itertools.repeat(definition, count))
        self.pending += count

    def add_error(self, item: _Ids, message: str, definition: Any = None) -> None:
        self._ids(item, None if definition is None else str(definition), 1)
        self.segment_index.extend((None,))
        self.start.append(None)
        self.end.append(None)
        self.parse_error.extend((message,))
        self.fields.pad(1)

    def add(self, item: _Ids, definition: Any, segments: list[Any]) -> None:
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
        return make_frame(columns, rows)


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

    def __init__(self, cols: Columns) -> None:
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

    def build(self, items: Rows, release: bool) -> pd.DataFrame | None:
        """The frame, or ``None`` to decline. ``release``: drop each item's text once parsed."""
        pa = self.pa
        owners = [i for i in range(len(items)) if items.text(i)]  # items with an answer
        try:
            for first in range(0, len(owners), self.BLOCK):
                block = owners[first : first + self.BLOCK]
                texts = [items.text(i) or "" for i in block]
                if release:
                    for i in block:
                        items.lines[i] = None
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
        return self.make_frame(items)

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

    def make_frame(self, items: Rows) -> pd.DataFrame:
        pa, cols = self.pa, self.cols
        empty = np.empty(0, dtype=np.int64)
        owners = np.concatenate(self.owners or [empty])
        def_rank = np.concatenate(self.def_rank or [empty])
        seg_index = np.concatenate(self.seg_index or [empty])
        start = np.concatenate(self.start or [np.empty(0)])
        end = np.concatenate(self.end or [np.empty(0)])
        rows = len(owners)
        columns: dict[str, Any] = {
            "custom_id": cols.str_list_take(items.custom_ids, owners),
            "task_id": cols.str_list_take(items.task_ids, owners),
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
        return make_frame(columns, rows)


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
    cols = Columns(dtype_backend)
    # an input that can be read again lets the fast path free each text once parsed: should
    # it decline, the items are simply made again (a one-shot iterator keeps its texts)
    again = isinstance(lines, (bytes, bytearray, memoryview, Sequence))
    if order is not None:
        order = list(order)
    with gc_paused():
        items = arrange(lines, order, None)
        if cols.pa is not None:
            fast = _ArrowSegments(cols).build(items, release=again)
            if fast is not None:
                return fast
            if again:
                items = arrange(lines, order, None)
        acc = _SegmentColumns(cols)
        for i in range(len(items)):
            text = items.text(i)
            if not text:
                continue
            items.lines[i] = None
            item = (items.custom_ids[i], items.task_ids[i])
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
