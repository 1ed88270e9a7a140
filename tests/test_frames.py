"""Tests of batch_widget.frames: results lines → pandas. Behaviour only, never timings.

Runs on pandas 3 and on pandas 2.2 (Colab): version-dependent expectations are explicit.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

from batch_widget import _json, frames
from batch_widget.errors import ResultLineError
from batch_widget.frames import (
    ITEM_STATUSES,
    MalformedLine,
    collect,
    collect_frame,
    collect_segments,
    join_results,
    parse_seconds,
    results_to_frame,
    segments_to_frame,
    to_polars,
)
from batch_widget.frames import segments as frame_segments
from batch_widget.models import CreatedItem, ItemStatus, ResultData, ResultLine, parse_result_line

PD3 = int(pd.__version__.split(".")[0]) >= 3
SEGMENT_COLUMNS = ("custom_id", "task_id", "definition_id", "segment_index", "start", "end", "duration")

# -- the line shapes of the API spec (§2.4, §8.2) ---------------------------------------------

GENERAL_JSON = {
    "title": "Morning market report",
    "topics": ["rates", "equities"],
    "has_on_screen_logo": True,
}
SEGMENTS = {
    "goal": [
        {"start_time": 512.0, "end_time": 527.5, "metadata": {"team": "home", "scorer": "number 9"}}
    ],
    "replay": [
        {"start_time": 528.0, "end_time": 541.0, "metadata": {"angle": "behind goal"}},
        {"start_time": 1290.5, "end_time": 1302.0, "metadata": {"angle": "wide"}},
    ],
}


def ready(custom_id: str | None, text: str, *, task_id: str | None = None, **data: Any) -> dict:
    envelope = {
        "generation_id": f"gen_{custom_id}",
        "data": text,
        "finish_reason": "stop",
        "usage": {"output_tokens": 38, "input_tokens": 9120},
    }
    envelope.update(data)
    return {
        "task_id": task_id or f"task-{custom_id}",
        "custom_id": custom_id,
        "status": "ready",
        "data": envelope,
    }


def line(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


SPEC_LINES = [
    ready("ep-0001", json.dumps(GENERAL_JSON), task_id="6a1f0c2e9b3d4e5f60718301"),
    ready("match-17", json.dumps(SEGMENTS), task_id="6a2b7d10aa4e5f6071829304"),
    {
        "task_id": "6a1f0c2e9b3d4e5f60718305",
        "custom_id": "ep-0005",
        "status": "failed",
        "error": {
            "code": "video_duration_too_long",
            "message": "The analysis window is longer than 2 hours.",
        },
    },
    {"task_id": "t-q", "custom_id": None, "status": "queued"},
    {"task_id": "t-p", "custom_id": "x", "status": "processing"},
    {"task_id": "t-c", "custom_id": "y", "status": "canceled"},
    {"task_id": "t-f", "custom_id": "z", "status": "failed", "error": {"message": "boom"}},
]


def spec_body() -> bytes:
    return b"\n".join(line(o) for o in SPEC_LINES) + b"\n"


def segments_body() -> bytes:
    """A time-based batch: the spec's segment line and the non-ready shapes."""
    return b"\n".join(line(o) for o in SPEC_LINES[1:]) + b"\n"


def is_text(series: pd.Series) -> bool:
    if PD3:
        return series.dtype == "str"
    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype)


@pytest.fixture(params=["arrow", "python"])
def segment_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run segment tests through both builders: the Arrow fast path and the per-item path."""
    if request.param == "python":
        monkeypatch.setattr(frame_segments._ArrowSegments, "build", lambda self, items, release: None)
    else:
        pytest.importorskip("pyarrow")
    return str(request.param)


# -- items frame: every line shape --------------------------------------------------------------


def test_every_spec_line_shape_is_a_row() -> None:
    frame = results_to_frame([line(o) for o in SPEC_LINES])
    assert len(frame) == len(SPEC_LINES)
    assert list(frame.columns) == [
        "custom_id", "task_id", "status", "result", "finish_reason", "input_tokens",
        "output_tokens", "error_code", "error_message", "generation_id", "note",
    ]  # fmt: skip
    assert frame["status"].astype(object).tolist() == [
        "ready", "ready", "failed", "queued", "processing", "canceled", "failed",
    ]  # fmt: skip
    first = frame.iloc[0]
    assert json.loads(first["result"]) == GENERAL_JSON
    assert first["finish_reason"] == "stop"
    assert first["input_tokens"] == 9120 and first["output_tokens"] == 38
    assert first["generation_id"] == "gen_ep-0001"
    failed = frame.iloc[2]
    assert failed["error_code"] == "video_duration_too_long"
    assert failed["error_message"].startswith("The analysis window")
    assert pd.isna(failed["result"]) and pd.isna(failed["input_tokens"])
    no_code = frame.iloc[6]
    assert pd.isna(no_code["error_code"]) and no_code["error_message"] == "boom"
    assert pd.isna(frame.iloc[3]["custom_id"])  # custom_id null → missing
    assert frame["note"].isna().all()


def test_plain_text_result_is_kept_as_text() -> None:
    frame = results_to_frame([ready("a", "A person walks a dog in the park.")])
    assert frame.loc[0, "result"] == "A person walks a dog in the park."


def test_unknown_status_is_an_extra_category() -> None:
    frame = results_to_frame([ready("a", "x"), {"task_id": "t2", "custom_id": "b", "status": "paused"}])
    categories = list(frame["status"].cat.categories)
    assert categories == [*ITEM_STATUSES, "paused"]
    assert frame.loc[1, "status"] == "paused"


def test_extra_fields_become_columns_and_are_not_lost() -> None:
    obj = {"task_id": "t1", "custom_id": "a", "status": "processing", "progress": 40,
           "warning": "slow asset", "status_code": None}  # fmt: skip
    frame = results_to_frame([obj, {"task_id": "t2", "custom_id": "b", "status": "queued"}])
    assert frame.loc[0, "progress"] == 40 and pd.isna(frame.loc[1, "progress"])
    assert str(frame["progress"].dtype) == "Int64"
    assert frame.loc[0, "warning"] == "slow asset"
    assert list(frame.columns)[-1] == "note"


def test_extra_field_named_like_a_column_is_prefixed() -> None:
    obj = {"task_id": "t1", "custom_id": "a", "status": "ready", "note": "server note"}
    frame = results_to_frame([obj])
    assert frame.loc[0, "extra.note"] == "server note"
    assert pd.isna(frame.loc[0, "note"])


def test_malformed_raw_line_is_a_row_with_raw_text_in_note() -> None:
    broken = b'{"task_id":"t-bad","custom_id":"c-bad","status":"rea'
    frame = results_to_frame([line(SPEC_LINES[0]), broken, line(SPEC_LINES[2])])
    assert len(frame) == 3
    row = frame.iloc[1]
    assert pd.isna(row["status"])
    assert "line 2" in row["note"] and broken.decode() in row["note"]
    # ids are salvaged where they are readable, so the row can still be matched
    assert row["task_id"] == "t-bad" and row["custom_id"] == "c-bad"


def test_non_object_json_line_is_a_row() -> None:
    frame = results_to_frame([b"[1, 2, 3]"])
    assert len(frame) == 1 and pd.isna(frame.loc[0, "status"])
    assert "not a JSON object" in frame.loc[0, "note"]


def test_malformed_line_objects_are_rows() -> None:
    # MalformedLine is the client's ResultLineError: what it yields for a line it could not parse
    assert MalformedLine is ResultLineError
    client_error = ResultLineError(b"???", 9, "bad json")
    frame = results_to_frame([MalformedLine(b"{oops", line_no=7), client_error])
    assert len(frame) == 2
    assert "line 7" in frame.loc[0, "note"] and "{oops" in frame.loc[0, "note"]
    assert "line 9" in frame.loc[1, "note"] and "bad json" in frame.loc[1, "note"]


def test_blank_lines_are_skipped() -> None:
    frame = results_to_frame([b"", line(SPEC_LINES[2]), b"   ", b"\r\n"])
    assert len(frame) == 1


def test_text_body_is_split_at_newlines_only() -> None:
    # U+2028 and U+0085 may stand unescaped in a JSON string; str.splitlines would split there
    text = "one\u2028two\u0085three"
    body = json.dumps(ready("a", text), ensure_ascii=False) + "\r\n" + json.dumps(SPEC_LINES[2])
    frame = results_to_frame(body)
    assert len(frame) == 2 and frame.loc[0, "result"] == text and frame["note"].isna().all()


def test_nan_literal_is_read_by_the_stdlib_fallback() -> None:
    raw = b'{"task_id":"t","custom_id":"a","status":"ready","score":NaN}'
    frame = results_to_frame([raw])
    assert frame.loc[0, "status"] == "ready" and np.isnan(frame.loc[0, "score"])


def test_wrong_line_type_raises_a_clear_error() -> None:
    with pytest.raises(TypeError, match="results line 1 is a int"):
        results_to_frame([42])


# -- input forms -----------------------------------------------------------------------------


def _input_forms() -> dict[str, Any]:
    body = spec_body()
    return {
        "bytes lines": body.splitlines(),
        "str lines": body.decode().splitlines(),
        "dicts": [json.loads(x) for x in body.splitlines()],
        "ResultLine": [ResultLine.from_dict(json.loads(x), i) for i, x in enumerate(body.splitlines(), 1)],
        "whole body bytes": body,
        "whole body str": body.decode(),
        "CRLF body": body.replace(b"\n", b"\r\n"),
        "generator": (x for x in body.splitlines()),
    }


@pytest.mark.parametrize("form", list(_input_forms()))
def test_all_input_forms_give_the_same_frame(form: str) -> None:
    expected = results_to_frame(spec_body().splitlines(), parse_json=True, expand=True)
    got = results_to_frame(_input_forms()[form], parse_json=True, expand=True)
    pd.testing.assert_frame_equal(got, expected)


def test_stdlib_decoder_fallback_gives_the_same_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = results_to_frame(spec_body(), expand=True)
    monkeypatch.setattr(_json._DECODER, "loads", _json._stdlib_loads)
    monkeypatch.setattr(_json._DECODER, "errors", (ValueError,))
    pd.testing.assert_frame_equal(results_to_frame(spec_body(), expand=True), expected)


# -- the one parser of a line (models.parse_result_line, shared with the client) ---------------


def test_the_parser_reads_odd_values_once_for_client_and_frames() -> None:
    raw = json.dumps({
        "task_id": 17, "custom_id": "a", "status": "paused", "hint": "new field",
        "data": {"data": {"k": 1}, "usage": {"input_tokens": "9120", "output_tokens": 38.0}},
        "error": "plain message",
    })  # fmt: skip
    parsed = parse_result_line(raw, 3)
    assert isinstance(parsed, ResultLine) and parsed.line_no == 3
    assert parsed.task_id == "17" and parsed.status.value == "paused" and not parsed.status.is_known
    assert parsed.data is not None and parsed.data.text == '{"k": 1}'
    assert parsed.data.input_tokens == 9120 and parsed.data.output_tokens == 38
    assert parsed.error is not None and parsed.error.message == "plain message" and parsed.error.code is None
    assert parsed.extra == {"hint": "new field"}
    row = results_to_frame([raw]).iloc[0]
    assert row["task_id"] == "17" and row["status"] == "paused" and row["input_tokens"] == 9120
    assert row["error_message"] == "plain message" and row["hint"] == "new field"
    flags = ResultLine.from_dict({"status": "ready", "data": {"usage": {"input_tokens": True}}})
    assert flags.data is not None and flags.data.input_tokens is None and flags.data.text is None


def test_the_parser_gives_none_for_a_blank_line_and_an_error_value_for_a_bad_one() -> None:
    assert parse_result_line(b"  \r\n") is None and parse_result_line("") is None
    bad = parse_result_line(memoryview(b'{"task_id": "t"'), 4)
    assert isinstance(bad, ResultLineError) and isinstance(bad, MalformedLine)
    assert bad.raw == '{"task_id": "t"' and bad.line_no == 4 and "not valid JSON" in bad.reason
    assert "results line 4" in str(bad)
    listed = parse_result_line(b"[1]", 5)
    assert isinstance(listed, ResultLineError) and listed.reason == "not a JSON object"
    assert pickle.loads(pickle.dumps(bad)).raw == bad.raw


def test_result_line_init_sets_every_field_and_stays_frozen() -> None:
    # ResultLine and ResultData write their __init__ out (speed): it must match the fields
    for cls in (ResultLine, ResultData):
        values = {f.name: object() for f in dataclasses.fields(cls)}
        made = cls(**values)
        assert all(getattr(made, name) is value for name, value in values.items())
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(made, next(iter(values)), None)
    line = ResultLine("t", "c", ItemStatus.READY, ResultData("x"))
    assert line == ResultLine("t", "c", ItemStatus.READY, ResultData("x")) and hash(line)
    assert line.extra == {} and dataclasses.replace(line, custom_id="d").custom_id == "d"


# -- order, completeness, duplicates -----------------------------------------------------------


def test_order_by_created_items_and_missing_items() -> None:
    created = [
        CreatedItem(task_id="t-c", custom_id="y"),
        CreatedItem(task_id="t-missing", custom_id="gone"),
        CreatedItem(task_id="t-q", custom_id=None),
        CreatedItem(task_id="6a1f0c2e9b3d4e5f60718301", custom_id="ep-0001"),
    ]
    lines = [line(SPEC_LINES[0]), line(SPEC_LINES[3]), line(SPEC_LINES[5])]
    frame = results_to_frame(lines, order=created)
    assert len(frame) == 4
    assert frame["task_id"].tolist() == ["t-c", "t-missing", "t-q", "6a1f0c2e9b3d4e5f60718301"]
    assert frame.loc[1, "custom_id"] == "gone"
    assert pd.isna(frame.loc[1, "status"])
    assert frame.loc[1, "note"] == frames.NOTE_MISSING


def test_order_by_custom_ids_and_unknown_lines_appended() -> None:
    lines = [line(o) for o in SPEC_LINES[:3]]
    frame = results_to_frame(lines, order=["ep-0005", "ep-0001"])
    assert frame["custom_id"].tolist()[:2] == ["ep-0005", "ep-0001"]
    assert frame.loc[2, "custom_id"] == "match-17"  # not in order: kept, after, with a note
    assert frame.loc[2, "note"] == frames.NOTE_UNORDERED


def test_order_accepts_mappings_from_the_create_response() -> None:
    order = [{"task_id": "t-p", "custom_id": "x"}, {"task_id": "t-c", "custom_id": "y"}]
    frame = results_to_frame([line(SPEC_LINES[5]), line(SPEC_LINES[4])], order=order)
    assert frame["custom_id"].tolist() == ["x", "y"]


def test_malformed_line_fills_its_slot_in_the_order() -> None:
    created = [CreatedItem("t1", "a"), CreatedItem("t2", "b")]
    truncated = b'{"task_id":"t2","custom_id":"b","status":"ready","data":{"da'
    lines = [truncated, line(ready("a", "ok", task_id="t1"))]
    frame = results_to_frame(lines, order=created, total_items=2)
    assert len(frame) == 2
    assert frame["custom_id"].tolist() == ["a", "b"]
    assert pd.isna(frame.loc[1, "status"]) and "unreadable" in frame.loc[1, "note"]


@pytest.mark.parametrize("received", [0, 1, 3, 5])
def test_len_equals_total_items(received: int) -> None:
    lines = [line(ready(f"c{i}", "t")) for i in range(received)]
    frame = results_to_frame(lines, total_items=5)
    assert len(frame) == 5
    assert frame["status"].isna().sum() == 5 - received
    assert (frame["note"] == frames.NOTE_MISSING).sum() == 5 - received


def test_len_equals_total_items_with_order() -> None:
    created = [CreatedItem(f"t{i}", f"c{i}") for i in range(4)]
    lines = [line(ready("c2", "t", task_id="t2"))]
    frame = results_to_frame(lines, order=created, total_items=4)
    assert len(frame) == 4 and frame["custom_id"].tolist() == ["c0", "c1", "c2", "c3"]


def test_duplicates_keep_the_last_line_at_the_first_place() -> None:
    first = {"task_id": "t1", "custom_id": "a", "status": "processing"}
    other = {"task_id": "t2", "custom_id": "b", "status": "queued"}
    again = ready("a", "done", task_id="t1")
    frame = results_to_frame([line(first), line(other), line(again), line(other)])
    assert len(frame) == 2
    assert frame["custom_id"].tolist() == ["a", "b"]
    assert frame.loc[0, "status"] == "ready" and frame.loc[0, "result"] == "done"


def test_lines_without_any_id_are_not_merged() -> None:
    frame = results_to_frame([{"status": "queued"}, {"status": "queued"}])
    assert len(frame) == 2


def test_partial_results_mid_run() -> None:
    mid_run = [
        ready("a", "done", task_id="t1"),
        {"task_id": "t2", "custom_id": "b", "status": "processing"},
        {"task_id": "t3", "custom_id": "c", "status": "queued"},
    ]
    frame = results_to_frame([line(o) for o in mid_run], total_items=4, expand=True)
    assert len(frame) == 4
    assert frame["status"].value_counts()[["ready", "processing", "queued"]].tolist() == [1, 1, 1]
    assert frame["parse_error"].notna().sum() == 1  # "done" is not JSON; the rest had no text


# -- dtypes ----------------------------------------------------------------------------------


def test_default_dtypes() -> None:
    frame = results_to_frame(spec_body(), expand=True)
    assert isinstance(frame["status"].dtype, pd.CategoricalDtype)
    assert list(frame["status"].cat.categories) == list(ITEM_STATUSES)
    assert str(frame["input_tokens"].dtype) == "Int64"
    assert str(frame["output_tokens"].dtype) == "Int64"
    for name in ("custom_id", "task_id", "result", "finish_reason", "error_code",
                 "error_message", "generation_id", "note", "title", "parse_error"):  # fmt: skip
        assert is_text(frame[name]), (name, frame[name].dtype)
    assert str(frame["has_on_screen_logo"].dtype) == "boolean"
    # nested values: an Arrow list/struct column when pyarrow is installed, else object
    pa = pytest.importorskip("pyarrow")
    assert frame["topics"].dtype == pd.ArrowDtype(pa.list_(pa.string()))
    assert frame["topics"].iloc[0] == ["rates", "equities"]
    assert frame["topics"].isna().tolist()[1:] == [True] * (len(frame) - 1)
    assert isinstance(frame.index, pd.RangeIndex)


def test_without_pyarrow_nested_values_are_python_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    with_arrow = results_to_frame(spec_body(), expand=True)
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)  # import pyarrow fails
    frame = results_to_frame(spec_body(), expand=True)
    assert frame["topics"].dtype == object
    assert frame.loc[0, "topics"] == ["rates", "equities"]
    assert frame["topics"].isna().tolist() == with_arrow["topics"].isna().tolist()
    assert frame["title"].tolist() == with_arrow["title"].tolist()
    segments = segments_to_frame(segments_body())
    assert segments["team"].tolist()[0] == "home"


def test_nested_values_of_changing_shape_share_one_arrow_type() -> None:
    pa = pytest.importorskip("pyarrow")
    rows = [
        ready(f"c{i}", json.dumps({"tags": [] if i < 70 else ["x", str(i)],
                                   "who": {"name": f"n{i}"} if i < 100 else {"role": "r"}}))
        for i in range(150)
    ]  # fmt: skip
    frame = results_to_frame([line(o) for o in rows], expand=True)
    assert frame["tags"].dtype == pd.ArrowDtype(pa.list_(pa.string()))
    assert frame["tags"].iloc[0] == [] and frame["tags"].iloc[149] == ["x", "149"]
    assert isinstance(frame["who"].dtype, pd.ArrowDtype)
    assert frame["who"].iloc[0] == {"name": "n0", "role": None}
    assert frame["who"].iloc[149] == {"name": None, "role": "r"}


def test_nested_values_mixing_lists_and_objects_stay_python_objects() -> None:
    rows = [ready(f"c{i}", json.dumps({"v": [1] if i % 2 else {"a": 1}})) for i in range(100)]
    frame = results_to_frame([line(o) for o in rows], expand=True)
    assert frame["v"].dtype == object
    assert frame["v"].tolist()[:2] == [{"a": 1}, [1]]


def test_all_missing_text_column_keeps_its_dtype() -> None:
    frame = results_to_frame([{"task_id": "t", "custom_id": "a", "status": "queued"}])
    assert is_text(frame["error_code"]) and is_text(frame["result"])


def test_numpy_nullable_backend() -> None:
    frame = results_to_frame(spec_body(), expand=True, dtype_backend="numpy_nullable")
    assert isinstance(frame["custom_id"].dtype, pd.StringDtype)
    assert frame["custom_id"].dtype.na_value is pd.NA
    assert str(frame["input_tokens"].dtype) == "Int64"


def test_pyarrow_backend() -> None:
    pa = pytest.importorskip("pyarrow")
    frame = results_to_frame(spec_body(), expand=True, dtype_backend="pyarrow")
    assert frame["custom_id"].dtype == pd.ArrowDtype(pa.string())
    assert frame["input_tokens"].dtype == pd.ArrowDtype(pa.int64())
    assert frame["has_on_screen_logo"].dtype == pd.ArrowDtype(pa.bool_())
    assert frame["topics"].dtype == pd.ArrowDtype(pa.list_(pa.string()))
    assert isinstance(frame["status"].dtype, pd.CategoricalDtype)
    assert frame.loc[0, "input_tokens"] == 9120


def test_bad_dtype_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="dtype_backend"):
        results_to_frame([], dtype_backend="arrow")  # type: ignore[arg-type]


def test_negative_total_items_is_refused() -> None:
    with pytest.raises(ValueError, match="total_items"):
        results_to_frame([], total_items=-1)


def test_empty_input_gives_empty_frames_with_columns() -> None:
    frame = results_to_frame([])
    assert len(frame) == 0 and "status" in frame.columns
    segments = segments_to_frame([])
    assert len(segments) == 0 and list(segments.columns)[:7] == list(SEGMENT_COLUMNS)


# -- structured output -------------------------------------------------------------------------


def test_parse_json_and_expand() -> None:
    frame = results_to_frame(spec_body(), parse_json=True, expand=True)
    assert frame.loc[0, "parsed"] == GENERAL_JSON
    assert frame.loc[0, "title"] == "Morning market report"
    assert frame.loc[0, "topics"] == ["rates", "equities"]
    assert bool(frame.loc[0, "has_on_screen_logo"]) is True
    assert pd.isna(frame.loc[2, "title"])  # failed row: no properties
    assert frame["parse_error"].isna().all()
    # the decoded text is not held twice unless asked
    assert pd.isna(frame.loc[0, "result"])
    kept = results_to_frame(spec_body(), parse_json=True, keep_text=True)
    assert json.loads(kept.loc[0, "result"]) == GENERAL_JSON


def test_expand_without_parse_json_has_no_parsed_column() -> None:
    frame = results_to_frame(spec_body(), expand=True)
    assert "parsed" not in frame.columns and "title" in frame.columns


def test_truncated_and_invalid_json_keep_text_and_other_rows() -> None:
    truncated = ready("cut", '{"title": "Half a rep', finish_reason="length")
    invalid = ready("bad", "not json at all")
    good = ready("ok", json.dumps({"title": "Fine", "n": 3}))
    frame = results_to_frame([line(truncated), line(invalid), line(good)], parse_json=True, expand=True)
    assert len(frame) == 3
    assert frame.loc[0, "result"] == '{"title": "Half a rep'
    assert "truncated" in frame.loc[0, "parse_error"]
    assert frame.loc[1, "result"] == "not json at all"
    assert "invalid" in frame.loc[1, "parse_error"]
    assert pd.isna(frame.loc[0, "parsed"]) and pd.isna(frame.loc[0, "title"])
    assert frame.loc[2, "title"] == "Fine" and frame.loc[2, "n"] == 3
    assert pd.isna(frame.loc[2, "parse_error"])


def test_expanded_property_named_like_a_column_is_prefixed() -> None:
    obj = ready("a", json.dumps({"status": "on air", "custom_id": "inner", "x": 1.5}))
    frame = results_to_frame([obj], expand=True)
    assert frame.loc[0, "status"] == "ready"
    assert frame.loc[0, "result.status"] == "on air"
    assert frame.loc[0, "result.custom_id"] == "inner"
    assert frame["x"].dtype == np.float64


def test_expand_mixed_value_types_fall_back_to_object() -> None:
    rows = [ready("a", json.dumps({"v": 1})), ready("b", json.dumps({"v": "one"}))]
    frame = results_to_frame(rows, expand=True)
    assert frame["v"].tolist() == [1, "one"]


def test_expand_many_items_across_chunks() -> None:
    # more items than one conversion block, with a property that changes kind half-way
    rows = [ready(f"c{i}", json.dumps({"i": i, "v": i if i < 100 else i + 0.5})) for i in range(150)]
    rows.append(ready("late", json.dumps({"i": 150, "late_field": "x"})))
    frame = results_to_frame([line(o) for o in rows], expand=True)
    assert str(frame["i"].dtype) == "Int64" and frame["i"].tolist() == list(range(151))
    assert frame["v"].dtype == np.float64 and frame.loc[120, "v"] == 120.5
    assert frame["late_field"].isna().sum() == 150 and frame.loc[150, "late_field"] == "x"


# -- segments --------------------------------------------------------------------------------


def test_general_output_in_the_segments_frame_is_reported(segment_path: str) -> None:
    frame = segments_to_frame([line(SPEC_LINES[0])])
    assert len(frame) > 0 and frame["parse_error"].notna().all()


def test_segments_long_form(segment_path: str) -> None:
    frame = segments_to_frame(segments_body())
    assert len(frame) == 3
    assert list(frame.columns) == [
        "custom_id", "task_id", "definition_id", "segment_index", "start", "end", "duration",
        "team", "scorer", "angle", "parse_error",
    ]  # fmt: skip
    assert frame["custom_id"].tolist() == ["match-17"] * 3
    assert frame["definition_id"].tolist() == ["goal", "replay", "replay"]
    assert frame["segment_index"].tolist() == [0, 0, 1]
    assert frame["start"].tolist() == [512.0, 528.0, 1290.5]
    assert frame["duration"].tolist() == [15.5, 13.0, 11.5]
    assert frame.loc[0, "team"] == "home" and pd.isna(frame.loc[1, "team"])
    assert frame["angle"].tolist()[1:] == ["behind goal", "wide"]
    assert frame["start"].dtype == np.float64
    assert is_text(frame["team"]) and is_text(frame["definition_id"])
    assert str(frame["segment_index"].dtype) == "Int64"


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (512, 527.5, (512.0, 527.5)),
        ("00:08:32", "00:08:47", (512.0, 527.0)),
        ("00:08:32.250", "00:08:47.500", (512.25, 527.5)),
        ("01:00:00.5", "1:00:10", (3600.5, 3610.0)),
    ],
)
def test_segment_time_formats(segment_path: str, start: Any, end: Any, expected: tuple) -> None:
    text = json.dumps({"scene": [{"start_time": start, "end_time": end, "metadata": {}}]})
    frame = segments_to_frame([ready("a", text)])
    assert (frame.loc[0, "start"], frame.loc[0, "end"]) == expected
    assert frame.loc[0, "duration"] == pytest.approx(expected[1] - expected[0])


def test_segment_time_formats_mixed_across_items(segment_path: str) -> None:
    items = [
        ready("a", json.dumps({"s": [{"start_time": 1.5, "end_time": 3, "metadata": {"k": 1}}]})),
        ready(
            "b",
            json.dumps(
                {"s": [{"start_time": "00:00:04.000", "end_time": "00:00:06", "metadata": {"k": "two"}}]}
            ),
        ),
    ]
    frame = segments_to_frame([line(o) for o in items])
    assert frame["start"].tolist() == [1.5, 4.0]
    assert frame["duration"].tolist() == [1.5, 2.0]
    assert frame["k"].tolist() == [1, "two"]


def test_parse_seconds() -> None:
    assert parse_seconds(12) == 12.0
    assert parse_seconds("12.5") == 12.5
    assert parse_seconds("02:03") == 123.0
    assert parse_seconds("100:00:00") == 360000.0
    assert np.isnan(parse_seconds("soon")) and np.isnan(parse_seconds(None))
    assert np.isnan(parse_seconds(True))


def test_segments_skip_non_ready_items_and_report_bad_output(segment_path: str) -> None:
    lines = [line(o) for o in SPEC_LINES[1:]] + [
        line(ready("broken", '{"goal": [{"start_time": 1, "end_ti')),
        line(ready("list", "[1, 2]")),
    ]
    frame = segments_to_frame(lines)
    assert frame["custom_id"].tolist() == ["match-17"] * 3 + ["broken", "list"]
    errors = frame["parse_error"]
    assert errors.iloc[:3].isna().all()
    assert "not valid JSON" in errors.iloc[3] and "not an object" in errors.iloc[4]
    assert np.isnan(frame["start"].iloc[3])


def test_segments_odd_shapes_are_reported_not_raised(segment_path: str) -> None:
    text = json.dumps({
        "a": [{"start_time": 1, "end_time": 2, "metadata": {"m": 1}}, "junk"],
        "b": "not a list",
        "c": {"start_time": 5, "end_time": 6},
        "d": [],
    })  # fmt: skip
    frame = segments_to_frame([ready("x", text)])
    assert (frame["definition_id"] == "a").sum() == 2  # the segment, and an error row for junk
    assert frame["parse_error"].notna().sum() == 2
    assert frame.loc[frame["definition_id"] == "c", "start"].tolist() == [5.0]


def test_segment_level_extra_keys_become_columns(segment_path: str) -> None:
    text = json.dumps({"s": [{"start_time": 0, "end_time": 2, "confidence": 0.9}]})
    frame = segments_to_frame([ready("x", text)])
    assert frame.loc[0, "confidence"] == 0.9


def test_segment_metadata_named_like_a_column_is_prefixed(segment_path: str) -> None:
    text = json.dumps({"s": [{"start_time": 0, "end_time": 2, "metadata": {"start": "kickoff"}}]})
    frame = segments_to_frame([ready("x", text)])
    assert frame.loc[0, "start"] == 0.0 and frame.loc[0, "metadata.start"] == "kickoff"


def test_segments_follow_order_and_deduplicate(segment_path: str) -> None:
    def seg(start: float) -> str:
        return json.dumps({"s": [{"start_time": start, "end_time": start + 1, "metadata": {}}]})

    lines = [ready("a", seg(1), task_id="ta"), ready("b", seg(2), task_id="tb"),
             ready("a", seg(10), task_id="ta")]  # fmt: skip
    frame = segments_to_frame([line(o) for o in lines], order=["b", "a"])
    assert frame["custom_id"].tolist() == ["b", "a"]
    assert frame["start"].tolist() == [2.0, 10.0]


def test_segments_many_items_metadata_kinds(segment_path: str) -> None:
    items = []
    for i in range(600):
        meta: dict[str, Any] = {"n": i, "flag": i % 2 == 0}
        if i >= 300:
            meta["late"] = "x"
        segs = [{"start_time": i, "end_time": i + 1, "metadata": meta}]
        items.append(line(ready(f"c{i}", json.dumps({"s": segs}))))
    frame = segments_to_frame(items)
    assert len(frame) == 600
    assert str(frame["n"].dtype) == "Int64" and frame["n"].tolist() == list(range(600))
    assert str(frame["flag"].dtype) == "boolean"
    assert frame["late"].isna().sum() == 300


def test_segments_pyarrow_backend(segment_path: str) -> None:
    pa = pytest.importorskip("pyarrow")
    frame = segments_to_frame(segments_body(), dtype_backend="pyarrow")
    assert frame["start"].dtype == pd.ArrowDtype(pa.float64())
    assert frame["team"].dtype == pd.ArrowDtype(pa.string())
    assert frame["duration"].tolist() == [15.5, 13.0, 11.5]


def test_segment_paths_agree() -> None:
    pytest.importorskip("pyarrow")
    rows = []
    for i in range(40):
        segs = {
            "goal": [{"start_time": j * 10.0, "end_time": j * 10 + 4.5,
                      "metadata": {"team": "home" if j % 2 else "away", "n": j}}
                     for j in range(i % 5)],
            "replay": [{"start_time": 1.0, "end_time": 2.0, "metadata": {"angle": "wide"}}],
        }  # fmt: skip
        rows.append(line(ready(f"c{i}", json.dumps(segs))))
    fast = segments_to_frame(rows)
    original = frame_segments._ArrowSegments.build
    try:
        frame_segments._ArrowSegments.build = lambda self, items, release: None  # type: ignore[method-assign]
        slow = segments_to_frame(rows)
    finally:
        frame_segments._ArrowSegments.build = original  # type: ignore[method-assign]
    pd.testing.assert_frame_equal(fast, slow)



def _slow_segments(*args: Any, **kwargs: Any) -> pd.DataFrame:
    original = frame_segments._ArrowSegments.build
    try:
        frame_segments._ArrowSegments.build = lambda self, items, release: None  # type: ignore[method-assign]
        return segments_to_frame(*args, **kwargs)
    finally:
        frame_segments._ArrowSegments.build = original  # type: ignore[method-assign]


def _many_items(value_of: Any, count: int = 400) -> list[bytes]:
    rows = []
    for i in range(count):
        segs = {
            "b": [{"start_time": i, "end_time": i + 2, "metadata": {"v": value_of(i)}}],
            "a": [{"start_time": i + j, "end_time": i + j + 1, "metadata": {"w": j}}
                  for j in range(i % 3)],
        }  # fmt: skip
        if i == 391:  # 391 % 3 == 1: one "a" segment
            segs["a"][0]["metadata"]["late"] = "x"
        rows.append(line(ready(f"c{i}", json.dumps(segs))))
    return rows


def test_segment_paths_agree_across_blocks() -> None:
    pytest.importorskip("pyarrow")
    rows = _many_items(lambda i: i if i < 300 else i + 0.5)  # ints, then floats in later blocks
    fast = segments_to_frame(rows)
    pd.testing.assert_frame_equal(fast, _slow_segments(rows))
    assert fast["v"].dtype == np.float64 and fast["v"].iloc[-1] == 399.5
    assert list(fast.columns[7:]) == ["v", "w", "late", "parse_error"]
    assert fast["late"].notna().sum() == 1


@pytest.mark.parametrize("form", ["list", "body", "iterator"])
def test_segments_fast_path_declining_late_loses_nothing(form: str) -> None:
    """A type change in a late block makes the fast path decline after it freed texts."""
    pytest.importorskip("pyarrow")
    rows = _many_items(lambda i: "text" if i < 300 else i)
    expected = _slow_segments(rows)
    assert expected["v"].dtype == object and expected["v"].iloc[-1] == 399
    given: Any = {"list": rows, "body": b"\n".join(rows), "iterator": iter(rows)}[form]
    order = (f"c{i}" for i in reversed(range(400)))  # a one-shot iterator too
    got = segments_to_frame(given, order=order)
    reordered = _slow_segments(rows, order=[f"c{i}" for i in reversed(range(400))])
    pd.testing.assert_frame_equal(got, reordered)
    assert got["custom_id"].iloc[0] == "c399"


def test_segments_nested_metadata_values_agree() -> None:
    pa = pytest.importorskip("pyarrow")
    rows = []
    for i in range(300):
        meta = {"box": {"x": i, "y": i + 1} if i % 2 else {"x": i}, "tags": ["a"] * (i % 3)}
        rows.append(line(ready(f"c{i}", json.dumps({"s": [{"start_time": 0, "end_time": 1,
                                                          "metadata": meta}]}))))  # fmt: skip
    fast = segments_to_frame(rows)
    pd.testing.assert_frame_equal(fast, _slow_segments(rows))
    assert fast["tags"].dtype == pd.ArrowDtype(pa.list_(pa.string()))
    assert fast["box"].iloc[0] == {"x": 0, "y": None} and fast["box"].iloc[1] == {"x": 1, "y": 2}


# -- join back -------------------------------------------------------------------------------


def test_join_results_onto_the_input_frame() -> None:
    inputs = pd.DataFrame(
        {"custom_id": ["z", "ep-0001", "nope", "ep-0005"], "asset_id": ["a1", "a2", "a3", "a4"]},
        index=[10, 11, 12, 13],
    )
    frame = results_to_frame(spec_body(), expand=True)
    joined = join_results(inputs, frame)
    assert joined.index.tolist() == [10, 11, 12, 13]
    assert joined["custom_id"].tolist() == ["z", "ep-0001", "nope", "ep-0005"]
    assert joined["asset_id"].tolist() == ["a1", "a2", "a3", "a4"]
    assert joined.loc[11, "title"] == "Morning market report"
    assert joined.loc[13, "error_code"] == "video_duration_too_long"
    assert joined.loc[10, "status"] == "failed"
    assert pd.isna(joined.loc[12, "status"]) and joined.loc[12, "note"] == frames.NOTE_NO_INPUT_MATCH
    assert str(joined["input_tokens"].dtype) == "Int64"
    assert isinstance(joined["status"].dtype, pd.CategoricalDtype)


def test_join_results_from_a_mapping_and_suffixes_clashes() -> None:
    inputs = {"ep-0005": {"status": "draft", "title": "mine"}, "x": {"status": "draft"}}
    frame = results_to_frame(spec_body())
    joined = join_results(inputs, frame)
    assert joined["custom_id"].tolist() == ["ep-0005", "x"]
    assert joined["status"].tolist() == ["draft", "draft"]
    assert joined["status_result"].astype(object).tolist() == ["failed", "processing"]


def test_join_results_on_an_index_level() -> None:
    inputs = pd.DataFrame({"v": [1, 2]}, index=pd.Index(["x", "y"], name="custom_id"))
    joined = join_results(inputs, results_to_frame(spec_body()))
    assert joined["task_id"].tolist() == ["t-p", "t-c"]
    assert joined.index.tolist() == ["x", "y"]


def test_join_results_without_the_key_is_refused() -> None:
    with pytest.raises(KeyError, match="custom_id"):
        join_results(pd.DataFrame({"v": [1]}), results_to_frame(spec_body()))


# -- async entry points and polars -------------------------------------------------------------


async def _stream(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def test_collect_frame_from_an_async_iterator_of_result_lines() -> None:
    parsed = [ResultLine.from_dict(o, i) for i, o in enumerate(SPEC_LINES, 1)]
    frame = await collect_frame(_stream(parsed), total_items=8, expand=True)
    assert len(frame) == 8
    expected = results_to_frame([line(o) for o in SPEC_LINES], total_items=8, expand=True)
    pd.testing.assert_frame_equal(frame, expected)


async def test_collect_segments_from_raw_bytes_lines() -> None:
    frame = await collect_segments(_stream(segments_body().splitlines()))
    assert len(frame) == 3


async def test_collect_once_then_build_both_frames() -> None:
    lines = await collect(_stream(segments_body().splitlines()))
    assert len(results_to_frame(lines)) == len(SPEC_LINES) - 1
    assert len(segments_to_frame(lines)) == 3
    assert await collect(iter([1, 2])) == [1, 2]


def _iter_lines() -> Iterator[bytes]:
    yield from spec_body().splitlines()


async def test_collect_frame_accepts_a_plain_iterable() -> None:
    assert len(await collect_frame(_iter_lines())) == len(SPEC_LINES)


def test_to_polars() -> None:
    pl = pytest.importorskip("polars")
    out = to_polars(results_to_frame(spec_body(), parse_json=True, expand=True))
    assert isinstance(out, pl.DataFrame)
    assert out.height == len(SPEC_LINES)
    assert out["status"].dtype == pl.Categorical
    assert out["input_tokens"].dtype == pl.Int64
    segments = to_polars(segments_to_frame(segments_body()))
    assert segments["start"].to_list() == [512.0, 528.0, 1290.5]


def test_frames_module_knows_no_http() -> None:
    import ast
    from pathlib import Path

    assert frames.__file__ is not None
    imported: set[str] = set()
    for path in Path(frames.__file__).parent.glob("*.py"):  # every module of the package
        tree = ast.parse(path.read_text())
        imported |= {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
        }
    assert not imported & {"httpx", "client", "requests", "aiohttp"}
