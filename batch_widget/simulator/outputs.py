"""Output generation: the ``data`` envelope of a ready item, drawn from a seeded RNG.

Plain text in ``general`` mode without a schema (whole sentences from a small news corpus), a
value that fits the ``json_schema`` when one is given, or the segments JSON of
``time_based_metadata``; segment boundaries per ``segment_time_format`` (:func:`format_time`).
The same RNG gives the same output: the engine seeds one per item.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from typing import Any

from .clock import DEFAULT_EPOCH, iso
from .validation import time_range_start

__all__ = ["format_time", "generate_output"]


def format_time(seconds: float, fmt: str) -> float | str:
    """Format a segment boundary per ``segment_time_format``."""
    if fmt == "seconds":
        return round(seconds, 3)
    ms_total = round(seconds * 1000)
    h, rem = divmod(ms_total, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    if fmt == "hh:mm:ss":
        return f"{h:02d}:{m:02d}:{s:02d}"
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


_SENTENCES = (
    "the camera pans across a busy street while a presenter explains the morning news",
    "a small dog runs through the park and two children chase a red ball near the fountain",
    "the interview continues in a quiet studio with soft light and a wooden table",
    "crowds gather at the stadium as the home team scores in the second half",
    "a chef prepares fresh pasta and the audience applauds after the final dish is served",
    "graphics show rising rates and falling equities over the last quarter",
    "a drone shot follows the coastline before the scene cuts to a harbour at dusk",
    "two presenters discuss the weather forecast in front of a large map",
)
_WORDS = tuple(" ".join(_SENTENCES).split())


def _sentence(rng: random.Random) -> str:
    # whole sentences, so a demo's output reads like a summary rather than word salad
    return rng.choice(_SENTENCES).capitalize() + "."


def _text(rng: random.Random, n: int) -> str:
    return " ".join(_sentence(rng) for _ in range(max(1, n)))


def _n(rng: random.Random, lo: int, hi: int, scale: float) -> int:
    return max(1, round(rng.randint(lo, hi) * scale))


def generate_output(
    rng: random.Random,
    mode: str,
    params: Mapping[str, Any],
    window: tuple[float, float],
    *,
    output_scale: float,
    segments_per_definition: int | None,
    finish_length: bool,
) -> dict[str, Any]:
    """Build the ``data`` envelope of a ready item: text is always a string.

    ``output_scale`` multiplies sentences, array lengths and segment counts;
    ``segments_per_definition`` fixes the segment count instead; ``finish_length`` truncates a
    general-mode text (or JSON) to half, with ``finish_reason: "length"``.
    """
    rf = params.get("response_format")
    finish = "stop"
    if mode == "time_based_metadata" and isinstance(rf, dict):
        segments = _segments(rng, rf, params, window, output_scale, segments_per_definition)
        text = json.dumps(segments, ensure_ascii=False, separators=(",", ":"))
    else:
        scale = max(output_scale, 0.01)
        if isinstance(rf, dict) and rf.get("type") == "json_schema":
            schema = rf.get("json_schema") or {}
            text = json.dumps(_from_schema(rng, schema, schema, scale, 0, None), ensure_ascii=False)
        else:
            text = _text(rng, _n(rng, 3, 6, scale))
        if finish_length:
            finish = "length"
            text = text[: max(1, len(text) // 2)]
    return {
        "generation_id": f"{rng.getrandbits(128):032x}",
        "data": text,
        "finish_reason": finish,
        "usage": {
            "output_tokens": max(1, len(text) // 4),
            "input_tokens": int((window[1] - window[0]) * 30) + rng.randint(50, 400),
        },
    }


def _from_schema(
    rng: random.Random,
    schema: Any,
    root: Mapping[str, Any],
    scale: float,
    depth: int,
    name: str | None,
) -> Any:
    if not isinstance(schema, dict) or depth > 12:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return _from_schema(rng, target, root, scale, depth + 1, name)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return rng.choice(schema["enum"])
    if isinstance(schema.get("anyOf"), list) and schema["anyOf"]:
        return _from_schema(rng, schema["anyOf"][0], root, scale, depth + 1, name)
    typ = schema.get("type")
    if isinstance(typ, list):
        non_null = [t for t in typ if t != "null"]
        typ = non_null[0] if non_null else "null"
    if typ is None:
        typ = "object" if "properties" in schema else "string"
    if name in ("start_time", "end_time") and typ in ("number", "integer", "string"):
        v = round(rng.uniform(0, 600), 1)
        if typ == "integer":
            return int(v)
        if typ == "string":
            return format_time(v, schema.get("format") or "hh:mm:ss.fff")
        return v
    if typ == "object":
        props = schema.get("properties") or {}
        return {
            k: _from_schema(rng, sub, root, scale, depth + 1, k)
            for k, sub in props.items()
            if isinstance(k, str)
        }
    if typ == "array":
        lo = 1 if schema.get("minItems", 0) >= 1 else 0
        n = max(lo, _n(rng, 1, 4, scale))
        return [_from_schema(rng, schema.get("items") or {}, root, scale, depth + 1, None)
                for _ in range(n)]
    if typ == "integer":
        lo_i = _bound(schema, "minimum", "exclusiveMinimum", 0, 1)
        hi_i = max(lo_i, _bound(schema, "maximum", "exclusiveMaximum", lo_i + 100, -1))
        return rng.randint(lo_i, hi_i)
    if typ == "number":
        lo_f = _fbound(schema, "minimum", "exclusiveMinimum", 0.0)
        hi_f = max(lo_f, _fbound(schema, "maximum", "exclusiveMaximum", lo_f + 100.0))
        return round(rng.uniform(lo_f, hi_f), 3)
    if typ == "boolean":
        return rng.random() < 0.5
    if typ == "null":
        return None
    if typ == "timestamp":
        return format_time(rng.uniform(0, 3600), schema.get("format") or "seconds")
    fmt = schema.get("format")
    if fmt == "uuid":
        parts = [rng.getrandbits(n) for n in (32, 16, 12, 12, 48)]
        return "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}".format(*parts)
    if fmt in ("date-time", "date", "time"):
        t = DEFAULT_EPOCH - rng.uniform(0, 3e8)
        full = iso(t)
        return {"date-time": full, "date": full[:10], "time": full[11:19]}[fmt]
    return _text(rng, _n(rng, 1, 2, scale))


def _bound(schema: Mapping[str, Any], incl: str, excl: str, default: float, step: int) -> int:
    v = schema.get(incl)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return math.ceil(v) if step > 0 else math.floor(v) if step < 0 else int(v)
    v = schema.get(excl)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return math.floor(v) + step if step else int(v)
    return int(default)


def _fbound(schema: Mapping[str, Any], incl: str, excl: str, default: float) -> float:
    for k in (incl, excl):
        v = schema.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return default


def _field_value(rng: random.Random, f: Mapping[str, Any], scale: float) -> Any:
    typ = f.get("type")
    if isinstance(f.get("enum"), list) and f["enum"]:
        return rng.choice(f["enum"])
    if typ == "string":
        return " ".join(rng.choice(_WORDS) for _ in range(_n(rng, 2, 6, scale)))
    if typ == "number":
        return round(rng.uniform(0, 100), 2)
    if typ == "integer":
        return rng.randint(0, 100)
    if typ == "boolean":
        return rng.random() < 0.5
    if typ == "timestamp":
        return format_time(rng.uniform(0, 3600), f.get("format") or "seconds")
    if typ == "array":
        items = f.get("items") or {"type": "string"}
        n = _n(rng, 1, 3, scale)
        if items.get("type") == "object":
            return [_object_value(rng, items, scale) for _ in range(n)]
        return [_field_value(rng, items, scale) for _ in range(n)]
    if typ == "object":
        return _object_value(rng, f, scale)
    return None


def _object_value(rng: random.Random, f: Mapping[str, Any], scale: float) -> dict[str, Any]:
    return {
        sf["name"]: _field_value(rng, sf, scale)
        for sf in f.get("fields") or []
        if isinstance(sf, dict) and "name" in sf
    }


def _segments(
    rng: random.Random,
    rf: Mapping[str, Any],
    params: Mapping[str, Any],
    window: tuple[float, float],
    scale: float,
    per_definition: int | None,
) -> dict[str, list[dict[str, Any]]]:
    fmt = rf.get("segment_time_format") or "seconds"
    lo_d = float(params.get("min_segment_duration") or 2.0)
    hi_d = params.get("max_segment_duration")
    out: dict[str, list[dict[str, Any]]] = {}
    for d in rf.get("segment_definitions") or []:
        if per_definition is not None:
            n = max(0, per_definition)
        else:
            n = _n(rng, 1, 4, scale)
        ranges = [
            (float(tr["start_time"]), float(tr["end_time"]))
            for tr in sorted(d.get("time_ranges") or [], key=time_range_start)
        ] or [window]
        segs: list[dict[str, Any]] = []
        for r_i, (ws, we) in enumerate(ranges):
            k = n // len(ranges) + (1 if r_i < n % len(ranges) else 0)
            if k == 0:
                continue
            slot = (we - ws) / k
            for j in range(k):
                s0 = ws + j * slot
                length = min(slot, max(lo_d, slot * rng.uniform(0.3, 0.9)))
                if hi_d is not None:
                    length = min(length, float(hi_d))
                start = s0 + rng.uniform(0, max(0.0, slot - length))
                end = start + length
                segs.append(
                    {
                        "start_time": format_time(start, fmt),
                        "end_time": format_time(end, fmt),
                        "metadata": {
                            f["name"]: _field_value(rng, f, scale)
                            for f in d.get("fields") or []
                        },
                    }
                )
        out[d["id"]] = segs
    return out
