"""Validation of a ``CreateAnalyzeBatchRequest`` body, field by field, as the spec words it.

:func:`validate_create` returns each request with its *effective* settings (``defaults``
merged under the request's own), or raises the first 400 (``parameter_invalid``,
``parameter_not_provided``, ``parameter_unknown``) with the offending field's path. Also the
request vocabulary (analysis modes, segment time formats) and the 24-hex id check.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import parameter_invalid, parameter_not_provided, parameter_unknown

__all__ = ["ANALYSIS_MODES", "TIME_FORMATS", "check_hex24", "time_range_start", "validate_create"]

ANALYSIS_MODES = ("general", "time_based_metadata")
TIME_FORMATS = ("seconds", "hh:mm:ss", "hh:mm:ss.fff")

_HEX24 = re.compile(r"^[0-9a-fA-F]{24}$")
_CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_TOP_KEYS = {"model_name", "analysis_mode", "defaults", "requests"}
_SETTING_KEYS = {
    "prompt",
    "response_format",
    "temperature",
    "max_tokens",
    "min_segment_duration",
    "max_segment_duration",
    "start_time",
    "end_time",
}
_ITEM_KEYS = _SETTING_KEYS | {"video", "custom_id"}
_FIELD_TYPES = {"string", "boolean", "number", "integer", "array", "timestamp"}
_ITEM_TYPES = {"string", "number", "boolean", "integer", "object"}


def _is_num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_unknown(obj: Mapping[str, Any], allowed: Iterable[str], path: str) -> None:
    for k in obj:
        if k not in allowed:
            where = f"{path}.{k}" if path else k
            raise parameter_unknown(where)


def check_hex24(value: Any, path: str) -> None:
    """The id at ``path`` (a batch or asset id) must be 24 hexadecimal characters."""
    if not isinstance(value, str) or not _HEX24.match(value):
        raise parameter_invalid(path, f"must be 24 hexadecimal characters, got {value!r}")


def time_range_start(tr: Any) -> float:
    """Sort key of a ``time_ranges`` entry (malformed entries first, so validation reports them)."""
    if isinstance(tr, dict) and _is_num(tr.get("start_time")):
        return float(tr["start_time"])
    return -1.0


def validate_create(body: Any) -> tuple[str, str, list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Return (analysis_mode, model_name, [(request, effective settings)]) or raise 400."""
    if not isinstance(body, dict):
        raise parameter_invalid("body", "the request body must be a JSON object")
    _check_unknown(body, _TOP_KEYS, "")
    model = body.get("model_name")
    if model is None:
        raise parameter_not_provided("model_name")
    if model != "pegasus1.5":
        raise parameter_invalid("model_name", f"must be 'pegasus1.5', got {model!r}")
    mode = body.get("analysis_mode")
    if mode is None:
        raise parameter_not_provided("analysis_mode")
    if mode not in ANALYSIS_MODES:
        raise parameter_invalid("analysis_mode", f"must be 'general' or 'time_based_metadata', got {mode!r}")
    defaults = body.get("defaults")
    if defaults is None:
        defaults = {}
    if not isinstance(defaults, dict):
        raise parameter_invalid("defaults", "must be an object")
    _check_unknown(defaults, _SETTING_KEYS, "defaults")
    _check_settings(defaults, "defaults", mode)
    reqs = body.get("requests")
    if reqs is None:
        raise parameter_not_provided("requests")
    if not isinstance(reqs, list):
        raise parameter_invalid("requests", "must be an array")
    if not 1 <= len(reqs) <= 1000:
        raise parameter_invalid("requests", f"must hold 1 to 1000 items, got {len(reqs)}")
    seen: dict[str, int] = {}
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for i, req in enumerate(reqs):
        p = f"requests[{i}]"
        if not isinstance(req, dict):
            raise parameter_invalid(p, "must be an object")
        _check_unknown(req, _ITEM_KEYS, p)
        video = req.get("video")
        if video is None:
            raise parameter_not_provided(f"{p}.video")
        if not isinstance(video, dict):
            raise parameter_invalid(f"{p}.video", "must be an object")
        _check_unknown(video, {"type", "asset_id"}, f"{p}.video")
        if video.get("type") is None:
            raise parameter_not_provided(f"{p}.video.type")
        if video["type"] != "asset_id":
            raise parameter_invalid(f"{p}.video.type", f"must be 'asset_id', got {video['type']!r}")
        aid = video.get("asset_id")
        if aid is None:
            raise parameter_not_provided(f"{p}.video.asset_id")
        check_hex24(aid, f"{p}.video.asset_id")
        cid = req.get("custom_id")
        if cid is not None:
            if not isinstance(cid, str) or not _CUSTOM_ID.match(cid):
                raise parameter_invalid(
                    f"{p}.custom_id",
                    f"must be 1-64 characters of [A-Za-z0-9_-], got {cid!r}",
                )
            if cid in seen:
                raise parameter_invalid(
                    f"{p}.custom_id", f"duplicate custom_id {cid!r} (also requests[{seen[cid]}])"
                )
            seen[cid] = i
        _check_settings(req, p, mode)
        eff = {k: v for k, v in defaults.items() if v is not None}
        eff.update({k: v for k, v in req.items() if k in _SETTING_KEYS and v is not None})
        _check_effective(eff, p, mode)
        out.append((req, eff))
    return mode, model, out


def _check_settings(s: Mapping[str, Any], p: str, mode: str) -> None:
    pr = s.get("prompt")
    if pr is not None:
        if mode == "time_based_metadata":
            raise parameter_invalid(f"{p}.prompt", "prompt is not supported in time_based_metadata mode")
        if not isinstance(pr, dict):
            raise parameter_invalid(f"{p}.prompt", "must be an object with input_text")
        _check_unknown(pr, {"input_text", "media_sources"}, f"{p}.prompt")
        if pr.get("input_text") is None:
            raise parameter_not_provided(f"{p}.prompt.input_text")
        if not isinstance(pr["input_text"], str) or not pr["input_text"].strip():
            raise parameter_invalid(f"{p}.prompt.input_text", "must be a non-empty string")
        ms = pr.get("media_sources")
        if ms is not None and (not isinstance(ms, list) or len(ms) > 4):
            raise parameter_invalid(f"{p}.prompt.media_sources", "must be an array of at most 4 items")
    rf = s.get("response_format")
    if rf is not None:
        _check_response_format(rf, f"{p}.response_format", mode)
    t = s.get("temperature")
    if t is not None and (not _is_num(t) or not 0 <= t <= 1):
        raise parameter_invalid(f"{p}.temperature", "must be a number between 0 and 1")
    mt = s.get("max_tokens")
    if mt is not None:
        lo = 512 if mode == "general" else 2048
        if not isinstance(mt, int) or isinstance(mt, bool) or not lo <= mt <= 98_304:
            raise parameter_invalid(f"{p}.max_tokens", f"must be an integer between {lo} and 98304")
    for k in ("min_segment_duration", "max_segment_duration"):
        v = s.get(k)
        if v is None:
            continue
        if mode != "time_based_metadata":
            raise parameter_invalid(f"{p}.{k}", "only allowed in time_based_metadata mode")
        if not _is_num(v) or v < 2:
            raise parameter_invalid(f"{p}.{k}", "must be a number >= 2")
    for k in ("start_time", "end_time"):
        v = s.get(k)
        if v is not None and (not _is_num(v) or v < 0):
            raise parameter_invalid(f"{p}.{k}", "must be a number >= 0")


def _check_effective(eff: Mapping[str, Any], p: str, mode: str) -> None:
    rf = eff.get("response_format")
    if mode == "general":
        if eff.get("prompt") is None:
            raise parameter_not_provided(f"{p}.prompt")
        if rf is not None and rf.get("type") == "segment_definitions":
            raise parameter_invalid(
                f"{p}.response_format.type",
                "segment_definitions requires analysis_mode 'time_based_metadata'",
            )
    else:
        if rf is None:
            raise parameter_not_provided(f"{p}.response_format")
        if rf.get("type") != "segment_definitions":
            raise parameter_invalid(
                f"{p}.response_format.type",
                "time_based_metadata requires response_format.type 'segment_definitions'",
            )
    lo, hi = eff.get("min_segment_duration"), eff.get("max_segment_duration")
    if lo is not None and hi is not None and hi < lo:
        raise parameter_invalid(f"{p}.max_segment_duration", "must be >= min_segment_duration")
    st, et = eff.get("start_time"), eff.get("end_time")
    if st is not None and et is not None and et - st < 1:
        raise parameter_invalid(f"{p}.end_time", "must be at least 1 second after start_time")
    if rf is not None and rf.get("type") == "segment_definitions":
        has_ranges = any(d.get("time_ranges") for d in rf.get("segment_definitions", []))
        if has_ranges and (st is not None or et is not None):
            raise parameter_invalid(
                f"{p}.start_time",
                "start_time/end_time cannot be combined with segment_definitions[].time_ranges",
            )
        if has_ranges and (lo is not None or hi is not None):
            raise parameter_invalid(
                f"{p}.min_segment_duration",
                "min/max_segment_duration cannot be combined with time_ranges",
            )


def _check_response_format(rf: Any, p: str, mode: str) -> None:
    if not isinstance(rf, dict):
        raise parameter_invalid(p, "must be an object")
    _check_unknown(rf, {"type", "json_schema", "segment_definitions", "segment_time_format"}, p)
    typ = rf.get("type")
    if typ is None:
        raise parameter_not_provided(f"{p}.type")
    if typ not in ("json_schema", "segment_definitions"):
        raise parameter_invalid(f"{p}.type", f"must be 'json_schema' or 'segment_definitions', got {typ!r}")
    if typ == "segment_definitions" and mode != "time_based_metadata":
        raise parameter_invalid(f"{p}.type", "segment_definitions requires analysis_mode 'time_based_metadata'")
    if typ == "json_schema":
        if mode != "general":
            raise parameter_invalid(f"{p}.type", "time_based_metadata requires 'segment_definitions'")
        js = rf.get("json_schema")
        if js is None:
            raise parameter_not_provided(f"{p}.json_schema")
        if not isinstance(js, dict):
            raise parameter_invalid(f"{p}.json_schema", "must be a JSON Schema object")
        if "segment_definitions" in rf:
            raise parameter_invalid(f"{p}.segment_definitions", "only with type 'segment_definitions'")
        return
    fmt = rf.get("segment_time_format")
    if fmt is not None and fmt not in TIME_FORMATS:
        raise parameter_invalid(f"{p}.segment_time_format", f"must be one of {', '.join(TIME_FORMATS)}")
    defs = rf.get("segment_definitions")
    if defs is None:
        raise parameter_not_provided(f"{p}.segment_definitions")
    if not isinstance(defs, list) or not 1 <= len(defs) <= 20:
        raise parameter_invalid(f"{p}.segment_definitions", "must be an array of 1 to 20 definitions")
    ids: set[str] = set()
    for j, d in enumerate(defs):
        dp = f"{p}.segment_definitions[{j}]"
        if not isinstance(d, dict):
            raise parameter_invalid(dp, "must be an object")
        _check_unknown(d, {"id", "description", "fields", "media_sources", "time_ranges"}, dp)
        for k in ("id", "description"):
            if d.get(k) is None:
                raise parameter_not_provided(f"{dp}.{k}")
            if not isinstance(d[k], str) or not d[k]:
                raise parameter_invalid(f"{dp}.{k}", "must be a non-empty string")
        if d["id"] in ids:
            raise parameter_invalid(f"{dp}.id", f"duplicate segment definition id {d['id']!r}")
        ids.add(d["id"])
        dfields = d.get("fields") or []
        if not isinstance(dfields, list):
            raise parameter_invalid(f"{dp}.fields", "must be an array")
        for n, f in enumerate(dfields):
            _check_field(f, f"{dp}.fields[{n}]")
        trs = d.get("time_ranges")
        if trs is not None:
            if not isinstance(trs, list):
                raise parameter_invalid(f"{dp}.time_ranges", "must be an array")
            last_end = -1.0
            for n, tr in enumerate(sorted(trs, key=time_range_start)):
                tp = f"{dp}.time_ranges[{n}]"
                if not isinstance(tr, dict) or not _is_num(tr.get("start_time")) or not _is_num(
                    tr.get("end_time")
                ):
                    raise parameter_invalid(tp, "must be {start_time, end_time} numbers")
                if tr["end_time"] - tr["start_time"] < 2:
                    raise parameter_invalid(tp, "each time range must be at least 2 seconds long")
                if tr["start_time"] < last_end:
                    raise parameter_invalid(tp, "time ranges must not overlap")
                last_end = tr["end_time"]


def _check_field(f: Any, p: str) -> None:
    if not isinstance(f, dict):
        raise parameter_invalid(p, "must be an object")
    _check_unknown(f, {"name", "type", "description", "format", "enum", "items"}, p)
    for k in ("name", "type", "description"):
        if f.get(k) is None:
            raise parameter_not_provided(f"{p}.{k}")
    if f["name"] in ("start_time", "end_time", "metadata"):
        raise parameter_invalid(f"{p}.name", f"{f['name']!r} is a reserved field name")
    if f["type"] not in _FIELD_TYPES:
        raise parameter_invalid(f"{p}.type", f"unsupported field type {f['type']!r}")
    if f["type"] == "timestamp":
        if f.get("format") not in TIME_FORMATS:
            raise parameter_invalid(f"{p}.format", "timestamp fields need format seconds|hh:mm:ss|hh:mm:ss.fff")
        if f.get("enum") is not None:
            raise parameter_invalid(f"{p}.enum", "enum is not allowed with timestamp")
    elif f.get("format") is not None:
        raise parameter_invalid(f"{p}.format", "format is only allowed with type 'timestamp'")
    en = f.get("enum")
    if en is not None and (not isinstance(en, list) or len(en) > 100):
        raise parameter_invalid(f"{p}.enum", "must be an array of at most 100 strings")
    if f["type"] == "array":
        items = f.get("items")
        if items is None:
            raise parameter_not_provided(f"{p}.items")
        if not isinstance(items, dict) or items.get("type") not in _ITEM_TYPES:
            raise parameter_invalid(f"{p}.items.type", "must be string|number|boolean|integer|object")
