"""Lines → rows: what a results stream says about each item, deduplicated and in order.

A results line in any form (a :class:`~batch_widget.models.ResultLine`, a decoded mapping, one
JSONL line as bytes or str, a whole JSONL body, or a
:class:`~batch_widget.errors.ResultLineError` for a line that could not be read) is read by the
one parser of a line, :func:`~batch_widget.models.parse_result_line` (or
:meth:`~batch_widget.models.ResultLine.from_dict` for a mapping), and becomes a row of
:class:`Rows`. An unreadable line is a row too: its ids are recovered from its raw text where
they are visible, and the text goes to ``note``. :func:`arrange` keeps the last line of a
task, puts the rows in request order and adds rows for the items the stream did not return.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..errors import ResultLineError
from ..models import CreatedItem, ResultLine, parse_result_line, str_or_none

__all__ = ["NOTE_MISSING", "NOTE_UNORDERED", "MalformedLine", "OrderEntry"]

#: A line that could not be read: the client's error type, accepted by the frame builders.
MalformedLine = ResultLineError

OrderEntry = CreatedItem | Mapping[str, Any] | str | None

NOTE_MISSING = "no line for this item in the results stream"
NOTE_UNORDERED = "not among the created items given as order"

_ID_PATTERNS = {key: re.compile(rf'"{key}"\s*:\s*"([^"\\]*)"') for key in ("task_id", "custom_id")}


class Rows:
    """The rows of a frame, column-wise: each item's parsed line and what arranging adds.

    ``lines[i]`` is ``None`` for an item with no readable line (a gap in the stream, or an
    unreadable line), and the builders set it to ``None`` once its values are in the columns,
    which frees the line's text. ``custom_ids``/``task_ids`` start as the line's and are filled in
    from the order where the line has none; ``notes`` say why a row is incomplete. Lists rather
    than an object per row: the builders read a block of rows as slices.
    """

    __slots__ = ("custom_ids", "lines", "notes", "task_ids")

    def __init__(self) -> None:
        self.lines: list[ResultLine | None] = []
        self.custom_ids: list[str | None] = []
        self.task_ids: list[str | None] = []
        self.notes: list[str | None] = []

    def __len__(self) -> int:
        return len(self.lines)

    def append(
        self, line: ResultLine | None, custom_id: str | None, task_id: str | None, note: str | None
    ) -> None:
        self.lines.append(line)
        self.custom_ids.append(custom_id)
        self.task_ids.append(task_id)
        self.notes.append(note)

    def text(self, i: int) -> str | None:
        """Row ``i``'s answer text (``data.data``), while its line is held."""
        line = self.lines[i]
        data = None if line is None else line.data
        return None if data is None else data.text


def _unreadable(error: ResultLineError, line_no: int) -> tuple[None, str | None, str | None, str]:
    """A row for a line that could not be read: ids recovered when visible, raw text in note."""
    raw = error.raw
    ids = {key: (found.group(1) if (found := pattern.search(raw)) else None)
           for key, pattern in _ID_PATTERNS.items()}  # fmt: skip
    number = error.line_no or line_no
    where = f"line {number}" if number else "a line"
    note = f"unreadable results {where} ({error.reason or 'not valid JSON'}); raw: {raw}"
    return None, ids["custom_id"], ids["task_id"], note


def _split_body(body: bytes | bytearray | memoryview | str) -> Iterator[Any]:
    """Lines of a whole JSONL body, split at ``\\n`` (a ``\\r`` before it dropped).

    Bytes are sliced as zero-copy memoryviews. Text is split at ``\\n`` only, as bytes are:
    ``str.splitlines`` would also split at U+2028, U+0085 and the like, which JSON strings may
    hold unescaped.
    """
    if isinstance(body, str):
        for piece in body.split("\n"):
            yield piece[:-1] if piece.endswith("\r") else piece
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


def _parse_object(line: Any, line_no: int) -> ResultLine | ResultLineError:
    """A line given as an object: parsed already, or a decoded mapping."""
    if isinstance(line, (ResultLine, ResultLineError)):
        return line
    if isinstance(line, Mapping):
        return ResultLine.from_dict(line, line_no)
    raise TypeError(
        f"results line {line_no} is a {type(line).__name__}; expected a ResultLine, a mapping, "
        "bytes or str (one JSONL line), or a ResultLineError (MalformedLine)"
    )


def _order_keys(order: Iterable[OrderEntry]) -> list[tuple[str | None, str | None]]:
    keys: list[tuple[str | None, str | None]] = []
    for entry in order:
        if entry is None or isinstance(entry, str):
            keys.append((None, entry))
        elif isinstance(entry, CreatedItem):
            keys.append((entry.task_id, entry.custom_id))
        elif isinstance(entry, Mapping):
            keys.append((str_or_none(entry.get("task_id")), str_or_none(entry.get("custom_id"))))
        else:
            raise TypeError(
                f"order entries must be CreatedItem, mappings or custom_id strings, "
                f"got {type(entry).__name__}"
            )
    return keys


def arrange(
    lines: Any,
    order: Iterable[OrderEntry] | None,
    total_items: int | None,
) -> Rows:
    """Rows in stream order, deduplicated (the last line of a task wins, at the place it first
    appeared), then put in ``order`` and completed up to ``total_items``."""
    if isinstance(lines, (bytes, bytearray, memoryview, str)):
        lines = _split_body(lines)
    rows = Rows()
    where: dict[Any, int] = {}
    n = 0
    add_line, add_custom_id = rows.lines.append, rows.custom_ids.append
    add_task_id, add_note = rows.task_ids.append, rows.notes.append
    # one loop, no per-line generator, call or object beyond the parse: runs once per line
    for line_no, raw in enumerate(lines, 1):
        kind = type(raw)
        if kind is bytes or kind is memoryview or kind is str or kind is bytearray:
            parsed = parse_result_line(raw, line_no)
            if parsed is None:  # a blank line: no item
                continue
        else:
            parsed = _parse_object(raw, line_no)
        line: ResultLine | None
        if isinstance(parsed, ResultLine):
            line, custom_id, task_id, note = parsed, parsed.custom_id, parsed.task_id, None
        else:
            line, custom_id, task_id, note = _unreadable(parsed, line_no)
        key: Any = task_id
        if key is None:
            key = ("custom_id", custom_id) if custom_id is not None else ("line", n)
        n += 1
        pos = where.get(key)
        if pos is None:
            where[key] = len(rows.lines)
            add_line(line)
            add_custom_id(custom_id)
            add_task_id(task_id)
            add_note(note)
        else:
            rows.lines[pos], rows.custom_ids[pos], rows.task_ids[pos], rows.notes[pos] = (
                line, custom_id, task_id, note
            )
    if order is not None:
        rows = _in_order(rows, _order_keys(order))
    if total_items is not None and len(rows) < total_items:
        for _ in range(total_items - len(rows)):
            rows.append(None, None, None, NOTE_MISSING)
    return rows


def _in_order(rows: Rows, keys: list[tuple[str | None, str | None]]) -> Rows:
    """Rows in the order of ``keys`` (matched on task_id, then custom_id), then the others."""
    by_task = {task_id: i for i, task_id in enumerate(rows.task_ids) if task_id is not None}
    by_custom: dict[str, int] = {}
    for i, custom_id in enumerate(rows.custom_ids):
        if custom_id is not None:
            by_custom.setdefault(custom_id, i)
    used = [False] * len(rows)
    arranged = Rows()
    for task_id, custom_id in keys:
        pos = by_task.get(task_id) if task_id is not None else None
        if pos is None and custom_id is not None:
            pos = by_custom.get(custom_id)
        if pos is None or used[pos]:
            arranged.append(None, custom_id, task_id, NOTE_MISSING)
            continue
        used[pos] = True
        own_custom, own_task = rows.custom_ids[pos], rows.task_ids[pos]
        arranged.append(
            rows.lines[pos],
            custom_id if own_custom is None else own_custom,
            task_id if own_task is None else own_task,
            rows.notes[pos],
        )
    for pos, was_used in enumerate(used):
        if not was_used:
            note = rows.notes[pos]
            arranged.append(
                rows.lines[pos],
                rows.custom_ids[pos],
                rows.task_ids[pos],
                NOTE_UNORDERED if note is None else note,
            )
    return arranged
