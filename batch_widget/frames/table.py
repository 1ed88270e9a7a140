"""The items frame: one row per item of a batch (:func:`results_to_frame`).

Failed, canceled, queued and processing items, unreadable lines and items the stream did not
return are rows too. Structured output can be decoded into ``parsed`` and its top-level
properties expanded into columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from .._json import loads
from ..models import ItemError, ItemStatus, ResultData
from .columns import Columns, DtypeBackend, FieldSinks, Sink, gc_paused, make_frame, object_array
from .lines import OrderEntry, arrange

__all__ = ["ITEM_STATUSES", "results_to_frame"]

#: The five documented item statuses, in lifecycle order: the categories of ``status``.
ITEM_STATUSES: tuple[str, ...] = tuple(status.value for status in ItemStatus)

_BASE_COLUMNS = (
    "custom_id", "task_id", "status", "result", "finish_reason", "input_tokens",
    "output_tokens", "error_code", "error_message", "generation_id",
)  # fmt: skip
#: Where base columns are read: the line's ``data`` or its ``error`` (the ids are the rows',
#: as arranged; ``status`` and ``result`` are taken apart).
_FROM_DATA = ("finish_reason", "input_tokens", "output_tokens", "generation_id")
_FROM_ERROR = {"error_code": "code", "error_message": "message"}

#: Items whose text is converted (and parsed) at a time.
_CHUNK_ITEMS = 64

# stand-ins for a row without data or error: one attribute read per value, no branch
_NO_DATA = ResultData(text=None)
_NO_ERROR = ItemError(message=None)
_EMPTY: Mapping[str, Any] = {}


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
        mappings, raw JSONL lines (``bytes`` or ``str``) or
        :class:`~batch_widget.errors.ResultLineError` (alias ``MalformedLine``) objects for lines
        that could not be read; or a whole JSONL body as one ``bytes``/``str``.
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
    cols = Columns(dtype_backend)
    parsing = parse_json or expand
    with gc_paused():
        rows = arrange(lines, order, total_items)
        n = len(rows)
        fixed = {
            name: Sink(cols, "int" if name.endswith("_tokens") else "str")
            for name in _BASE_COLUMNS
            if name != "status"
        }
        parse_error = Sink(cols, "str")
        parsed_values: list[Any] = []
        expanded = FieldSinks(cols)
        statuses: list[str | None] = []
        extras: list[Mapping[str, Any]] = []
        for start in range(0, n, _CHUNK_ITEMS):
            stop = min(start + _CHUNK_ITEMS, n)
            held = rows.lines[start:stop]
            rows.lines[start:stop] = [None] * len(held)  # freed block by block: columns hold them now
            datas = [_NO_DATA if ln is None or ln.data is None else ln.data for ln in held]
            errors = [_NO_ERROR if ln is None or ln.error is None else ln.error for ln in held]
            statuses.extend([None if ln is None else ln.status.value or None for ln in held])
            extras.extend([_EMPTY if ln is None else ln.extra for ln in held])
            del held
            fixed["custom_id"].extend(rows.custom_ids[start:stop])
            fixed["task_id"].extend(rows.task_ids[start:stop])
            for name in _FROM_DATA:
                fixed[name].extend([getattr(d, name) for d in datas])
            for name, attribute in _FROM_ERROR.items():
                fixed[name].extend([getattr(e, attribute) for e in errors])
            texts = [d.text for d in datas]
            finish_reasons = [d.finish_reason for d in datas]
            del datas, errors  # `texts` alone holds the texts now: those decoded are dropped below
            if parsing:
                parsed, bad = _parse_texts(texts, finish_reasons)
                parse_error.extend(bad)
                if not keep_text:
                    texts = [t if e is not None else None for t, e in zip(texts, bad, strict=True)]
                if parse_json:
                    parsed_values.extend(parsed)
                if expand:
                    expanded.add([p if type(p) is dict else _EMPTY for p in parsed])
                    expanded.flush()
                del parsed
            fixed["result"].extend(texts)
            del texts
            for sink in fixed.values():
                sink.flush()
            parse_error.flush()
        columns: dict[str, Any] = {}
        for name in _BASE_COLUMNS:
            if name == "status":
                columns[name] = cols.category(statuses, ITEM_STATUSES)
            else:
                columns[name] = fixed.pop(name).finish()
        if parse_json:
            columns["parsed"] = object_array(parsed_values)
            del parsed_values
        if parsing:
            columns["parse_error"] = parse_error.finish()
        if expand:
            expanded.attach(columns, prefix="result", reserved="note")
        if any(extras):
            extra_sinks = FieldSinks(cols)
            extra_sinks.add(extras)
            extra_sinks.attach(columns, prefix="extra", reserved="note")
        columns["note"] = cols.str_(rows.notes)
        return make_frame(columns, n)


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

