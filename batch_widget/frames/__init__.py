"""Batch results → pandas DataFrames.

Pure: lines in, DataFrame out. Nothing here knows HTTP or the client; the client's
``results(batch_id)`` stream (``ResultLine`` objects, and ``ResultLineError`` for a line it could
not read), its raw variant (``bytes`` lines), a whole JSONL body, or already-decoded dicts can
all be handed in as they are. Each line is read by the one parser of a results line,
:func:`batch_widget.models.parse_result_line`, which the client uses too.

Two frames:

- :func:`results_to_frame` -- one row per item (failed, canceled, queued, processing and items
  the stream did not return are rows too), optionally with structured output decoded and its
  top-level properties expanded into columns.
- :func:`segments_to_frame` -- time-based metadata in long form, one row per segment.

:func:`join_results` attaches the result columns to the input the batch was created from, and
:func:`collect` / :func:`collect_frame` / :func:`collect_segments` accept an async iterator.

Modules: ``lines`` (lines → rows: parsing, unreadable lines, dedup and order), ``columns``
(column builders and dtypes, shared by both frames), ``table`` (the items frame), ``segments``
(the segments frame, its Arrow and Python paths), ``collect`` (async entry points), ``join``
(join back to the input, polars).
"""

from __future__ import annotations

from .._json import decoder_name
from .collect import collect, collect_frame, collect_segments
from .columns import DtypeBackend
from .join import NOTE_NO_INPUT_MATCH, join_results, to_polars
from .lines import NOTE_MISSING, NOTE_UNORDERED, MalformedLine, OrderEntry
from .segments import parse_seconds, segments_to_frame
from .table import ITEM_STATUSES, results_to_frame

__all__ = [
    "ITEM_STATUSES",
    "NOTE_MISSING",
    "NOTE_NO_INPUT_MATCH",
    "NOTE_UNORDERED",
    "DtypeBackend",
    "MalformedLine",
    "OrderEntry",
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
