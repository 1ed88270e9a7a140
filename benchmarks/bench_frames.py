"""Benchmark: batch results → pandas, against the bare limit and the usual baselines.

Run ``python benchmarks/bench_frames.py`` (``make bench``). Not a test: it prints a table and
the goals with PASS/MISS, and exits 0 either way (``--strict`` exits 1 on a MISS).

Inputs (generated here, deterministic, seeded; line shapes exactly as in the API spec §2.4/§8.2):

- ``general``: 1,000 ``general``-mode items, ~10 KB of JSON text each in ``data.data``
  (97% ready, 2% failed with or without a code, 1% canceled).
- ``structured``: the same body, its ``data.data`` JSON decoded and the top-level properties
  expanded into columns.
- ``segments``: 1,000 ``time_based_metadata`` items, ~50 segments each over three segment
  definitions (~50,000 segment rows), ``segment_time_format="seconds"``.

Methods:

- (a) bare limit: every line decoded with the fastest JSON decoder installed (measured here),
  flat columns built as lists, one ``pd.DataFrame`` constructor. No ordering, no dedup, no
  dtypes beyond pandas' inference, no error handling.
- (b) this project: ``batch_widget.frames`` (default dtypes); (b') the same with
  ``dtype_backend="pyarrow"`` (shown for information; the goals are on (b)).
- (c) the official SDK's path: each line ``json.loads`` + ``parse_obj_as(BatchResultItem, ...)``
  as ``twelvelabs`` does in ``results()``, then ``pd.json_normalize`` of ``model_dump()``.
- (d) naive: ``json.loads`` per line, then ``pd.json_normalize``.

Time: best of several repeats in this process. Memory: peak RSS growth during one call, each in
a separate fresh subprocess (input read from a file, lazy imports warmed on 20 lines, heap
trimmed, then ``VmHWM`` reset through ``/proc/self/clear_refs`` and read after the call). RSS
and not tracemalloc, because Arrow-backed strings (pandas 3's ``str``) are allocated outside
Python's allocator and tracemalloc would not see them. Without ``/proc`` it falls back to
tracemalloc and says so.

What the peak counts: the input (the list of lines, ``x size``'s denominator) is resident
before the baseline is taken, so it is not counted; the peak is everything the call adds on top
of it: the returned frame itself (e.g. ~1x the input for ``general``, whose frame holds every
text), the transient objects, and memory the allocators keep resident after freeing it (RSS is
what the machine pays; a method that frees Python strings into one allocator while growing
Arrow buffers in another pays for both).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import itertools
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from batch_widget import frames  # noqa: E402

SEED = 20261128
INPUTS = ("general", "structured", "segments")
METHODS = ("a", "b", "p", "c", "d")
LABELS = {
    "a": "(a) bare limit",
    "b": "(b) batch_widget.frames",
    "p": "(b') frames, dtype_backend=pyarrow",
    "c": "(c) twelvelabs SDK + json_normalize",
    "d": "(d) json.loads + json_normalize",
}

# --------------------------------------------------------------------------------------------
# Input generation
# --------------------------------------------------------------------------------------------

_WORD_TEXT = (
    "market report rates equities anchor studio weather forecast goal replay crowd player "
    "striker keeper referee coach interview graphic logo banner ticker headline city council "
    "vote budget school traffic bridge river storm warning sunny cloudy wind minister press "
    "conference product launch phone camera battery screen review price release trailer "
    "scene chase car night street bright dark music drone aerial slow motion close up wide"
)
WORDS = tuple(_WORD_TEXT.split())


def _sentence(rng: random.Random, n_min: int, n_max: int) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(n_min, n_max))]
    return " ".join(words).capitalize() + "."


def _hex_id(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(24))


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _general_text(rng: random.Random) -> str:
    """A ``json_schema`` answer of about 10 KB."""
    scenes = []
    t = 0.0
    for _ in range(34):
        length = round(rng.uniform(4, 40), 1)
        scenes.append(
            {
                "start_time": round(t, 1),
                "end_time": round(t + length, 1),
                "description": _sentence(rng, 14, 26),
                "objects": [rng.choice(WORDS) for _ in range(rng.randint(1, 4))],
            }
        )
        t += length
    doc = {
        "title": _sentence(rng, 3, 8),
        "summary": " ".join(_sentence(rng, 10, 20) for _ in range(12)),
        "topics": sorted({rng.choice(WORDS) for _ in range(6)}),
        "has_on_screen_logo": rng.random() < 0.6,
        "language": rng.choice(["en", "fr", "de", "es"]),
        "speakers": [
            {"name": f"Speaker {i}", "role": rng.choice(["anchor", "guest", "reporter"])}
            for i in range(rng.randint(1, 4))
        ],
        "scenes": scenes,
        "sentiment_score": round(rng.uniform(-1, 1), 3),
        "word_count": rng.randint(200, 3000),
    }
    return _dumps(doc)


def _segments_text(rng: random.Random) -> str:
    """A ``time_based_metadata`` answer: ~50 segments over three definitions."""
    out: dict[str, list[dict[str, Any]]] = {"goal": [], "replay": [], "crowd_reaction": []}
    t = 0.0
    for _ in range(rng.randint(45, 55)):
        length = round(rng.uniform(2, 20), 1)
        seg: dict[str, Any] = {"start_time": round(t, 1), "end_time": round(t + length, 1)}
        kind = rng.choice(("goal", "replay", "replay", "crowd_reaction"))
        if kind == "goal":
            seg["metadata"] = {
                "team": rng.choice(["home", "away"]),
                "scorer": f"number {rng.randint(1, 23)}",
                "description": _sentence(rng, 6, 14),
                "confidence": round(rng.random(), 3),
            }
        elif kind == "replay":
            seg["metadata"] = {
                "angle": rng.choice(["behind goal", "wide", "close up", "aerial"]),
                "description": _sentence(rng, 6, 14),
                "slow_motion": rng.random() < 0.5,
            }
        else:
            seg["metadata"] = {
                "intensity": rng.randint(1, 5),
                "description": _sentence(rng, 4, 10),
            }
        out[kind].append(seg)
        t += length + round(rng.uniform(0, 30), 1)
    return _dumps(out)


def _line(rng: random.Random, i: int, text_of: Callable[[random.Random], str]) -> str:
    custom_id = f"item-{i:04d}"
    task_id = _hex_id(rng)
    roll = rng.random()
    if roll < 0.97:
        text = text_of(rng)
        obj: dict[str, Any] = {
            "task_id": task_id,
            "custom_id": custom_id,
            "status": "ready",
            "data": {
                "generation_id": f"gen_{_hex_id(rng)[:6]}",
                "data": text,
                "finish_reason": "stop",
                "usage": {"output_tokens": len(text) // 4, "input_tokens": rng.randint(2000, 60000)},
            },
        }
    elif roll < 0.99:
        error: dict[str, Any] = {"message": "The analysis window is longer than 2 hours."}
        if rng.random() < 0.5:
            error["code"] = "video_duration_too_long"
        obj = {"task_id": task_id, "custom_id": custom_id, "status": "failed", "error": error}
    else:
        obj = {"task_id": task_id, "custom_id": custom_id, "status": "canceled"}
    return _dumps(obj)


def make_lines(kind: str, n: int = 1000) -> list[bytes]:
    """Deterministic JSONL lines (bytes, no newline) for ``general`` or ``segments``."""
    rng = random.Random(f"{SEED}-{kind}")
    text_of = _segments_text if kind == "segments" else _general_text
    return [_line(rng, i, text_of).encode() for i in range(n)]


def body_kind(input_name: str) -> str:
    return "segments" if input_name == "segments" else "general"


# --------------------------------------------------------------------------------------------
# Decoders and methods
# --------------------------------------------------------------------------------------------


def decoders() -> dict[str, Callable[[Any], Any]]:
    found: dict[str, Callable[[Any], Any]] = {"json": json.loads}
    try:
        import orjson

        found["orjson"] = orjson.loads
    except ImportError:
        pass
    try:
        import msgspec

        found["msgspec"] = msgspec.json.Decoder().decode
    except ImportError:
        pass
    return found


def fastest_decoder(lines: list[bytes], inner: bool) -> tuple[str, dict[str, float]]:
    """Time decode-only (lines, plus the inner ``data.data`` when ``inner``) per decoder."""
    times: dict[str, float] = {}
    for name, loads in decoders().items():
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for line in lines:
                obj = loads(line)
                if inner and obj.get("data"):
                    loads(obj["data"]["data"])
            best = min(best, time.perf_counter() - t0)
        times[name] = best
    return min(times, key=times.__getitem__), times


_LOADS: Callable[[Any], Any] = json.loads


def bare_general(lines: list[bytes]) -> pd.DataFrame:
    loads = _LOADS
    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "custom_id", "task_id", "status", "result", "finish_reason", "input_tokens",
            "output_tokens", "error_code", "error_message", "generation_id",
        )
    }  # fmt: skip
    a = [cols[k].append for k in cols]
    for line in lines:
        o = loads(line)
        d = o.get("data") or {}
        u = d.get("usage") or {}
        e = o.get("error") or {}
        a[0](o.get("custom_id"))
        a[1](o.get("task_id"))
        a[2](o.get("status"))
        a[3](d.get("data"))
        a[4](d.get("finish_reason"))
        a[5](u.get("input_tokens"))
        a[6](u.get("output_tokens"))
        a[7](e.get("code"))
        a[8](e.get("message"))
        a[9](d.get("generation_id"))
    return pd.DataFrame(cols)


def bare_structured(lines: list[bytes]) -> pd.DataFrame:
    loads = _LOADS
    base = bare_general(lines)
    parsed = [loads(t) if isinstance(t, str) else {} for t in base["result"]]
    keys = dict.fromkeys(itertools.chain.from_iterable(parsed))
    for k in keys:
        base[k] = [p.get(k) for p in parsed]
    return base


def bare_segments(lines: list[bytes]) -> pd.DataFrame:
    loads = _LOADS
    cid: list[Any] = []
    tid: list[Any] = []
    did: list[Any] = []
    start: list[Any] = []
    end: list[Any] = []
    fields: dict[str, list[Any]] = {}
    rows = 0
    for line in lines:
        o = loads(line)
        d = o.get("data")
        if not d:
            continue
        for k, segs in loads(d["data"]).items():
            n = len(segs)
            cid.extend([o.get("custom_id")] * n)
            tid.extend([o.get("task_id")] * n)
            did.extend([k] * n)
            start.extend([s["start_time"] for s in segs])
            end.extend([s["end_time"] for s in segs])
            metas = [s.get("metadata") or {} for s in segs]
            seen = dict.fromkeys(itertools.chain.from_iterable(metas))
            for f in seen:
                col = fields.get(f)
                if col is None:
                    col = fields[f] = [None] * rows
                col.extend([m.get(f) for m in metas])
            for f, col in fields.items():
                if f not in seen:
                    col.extend([None] * n)
            rows += n
    frame = pd.DataFrame(
        {"custom_id": cid, "task_id": tid, "definition_id": did, "start": start, "end": end}
    )
    frame["duration"] = frame["end"] - frame["start"]
    for f, col in fields.items():
        frame[f] = col
    return frame


def ours(input_name: str, backend: Any = None) -> Callable[[list[bytes]], pd.DataFrame]:
    if input_name == "segments":
        return lambda lines: frames.segments_to_frame(lines, dtype_backend=backend)
    if input_name == "structured":
        return lambda lines: frames.results_to_frame(lines, expand=True, dtype_backend=backend)
    return lambda lines: frames.results_to_frame(lines, dtype_backend=backend)


def _segment_rows(items: list[tuple[Any, Any, str]]) -> list[dict[str, Any]]:
    rows = []
    for custom_id, task_id, text in items:
        for k, segs in json.loads(text).items():
            for s in segs:
                rows.append({"custom_id": custom_id, "task_id": task_id, "definition_id": k, **s})
    return rows


def _with_duration(frame: pd.DataFrame) -> pd.DataFrame:
    frame["duration"] = frame["end_time"] - frame["start_time"]
    return frame


def sdk(input_name: str) -> Callable[[list[bytes]], pd.DataFrame] | None:
    try:
        from twelvelabs import BatchResultItem
        from twelvelabs.core.pydantic_utilities import parse_obj_as
    except ImportError:
        return None

    def parse(lines: list[bytes]) -> list[Any]:
        # what AsyncBatchesClient.results() does per line (it then drops lines that fail)
        return [parse_obj_as(type_=BatchResultItem, object_=json.loads(line)) for line in lines]

    def general(lines: list[bytes]) -> pd.DataFrame:
        return pd.json_normalize([item.model_dump() for item in parse(lines)])

    def structured(lines: list[bytes]) -> pd.DataFrame:
        dumped = [item.model_dump() for item in parse(lines)]
        for d in dumped:
            if d.get("data"):
                d["data"]["data"] = json.loads(d["data"]["data"])
        return pd.json_normalize(dumped)

    def segments(lines: list[bytes]) -> pd.DataFrame:
        items = [(i.custom_id, i.task_id, i.data.data) for i in parse(lines) if i.data]
        return _with_duration(pd.json_normalize(_segment_rows(items)))

    return {"general": general, "structured": structured, "segments": segments}[input_name]


def naive(input_name: str) -> Callable[[list[bytes]], pd.DataFrame]:
    def general(lines: list[bytes]) -> pd.DataFrame:
        return pd.json_normalize([json.loads(line) for line in lines])

    def structured(lines: list[bytes]) -> pd.DataFrame:
        objs = [json.loads(line) for line in lines]
        for o in objs:
            if o.get("data"):
                o["data"]["data"] = json.loads(o["data"]["data"])
        return pd.json_normalize(objs)

    def segments(lines: list[bytes]) -> pd.DataFrame:
        objs = [json.loads(line) for line in lines]
        items = [(o["custom_id"], o["task_id"], o["data"]["data"]) for o in objs if o.get("data")]
        return _with_duration(pd.json_normalize(_segment_rows(items)))

    return {"general": general, "structured": structured, "segments": segments}[input_name]


def method(name: str, input_name: str) -> Callable[[list[bytes]], pd.DataFrame] | None:
    if name == "a":
        return {"general": bare_general, "structured": bare_structured, "segments": bare_segments}[
            input_name
        ]
    if name == "b":
        return ours(input_name)
    if name == "p":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            return None
        return ours(input_name, "pyarrow")
    if name == "c":
        return sdk(input_name)
    return naive(input_name)


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


def best_time(fn: Callable[[list[bytes]], pd.DataFrame], lines: list[bytes], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn(lines)
        best = min(best, time.perf_counter() - t0)
    return best


def _status_kb(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else 0


def _trim_heap() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def child_memory(input_name: str, method_name: str, path: str, decoder: str) -> None:
    """Run in a fresh process: print the peak RSS growth (bytes) of one call, and the mode."""
    global _LOADS
    _LOADS = decoders()[decoder]
    body = Path(path).read_bytes()
    lines = body.split(b"\n")
    del body
    fn = method(method_name, input_name)
    assert fn is not None
    fn(lines[:20])  # warm lazy imports (pyarrow, pydantic models, ...) outside the measure
    gc.collect()
    _trim_heap()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        base = _status_kb("VmRSS")
        fn(lines)
        peak = _status_kb("VmHWM")
        print(json.dumps({"peak": (peak - base) * 1024, "mode": "rss"}))
    except OSError:
        import tracemalloc

        tracemalloc.start()
        fn(lines)
        peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(json.dumps({"peak": peak_bytes, "mode": "tracemalloc"}))


def measure_memory(input_name: str, method_name: str, path: str, decoder: str) -> tuple[int, str]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", input_name, method_name, path, decoder],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return int(result["peak"]), str(result["mode"])


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def main() -> int:
    global _LOADS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1000, help="items per input (1000)")
    parser.add_argument("--repeats", type=int, default=7, help="timing repeats (best kept)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_memory(*args.child)
        return 0

    print(f"pandas {pd.__version__}, python {sys.version.split()[0]}, "
          f"frames decoder: {frames.decoder_name()}")  # fmt: skip
    bodies = {kind: make_lines(kind, args.items) for kind in ("general", "segments")}
    tmp = Path(tempfile.mkdtemp(prefix="bench-frames-"))
    paths = {}
    for kind, lines in bodies.items():
        paths[kind] = tmp / f"{kind}.jsonl"
        paths[kind].write_bytes(b"\n".join(lines))

    results: dict[tuple[str, str], dict[str, Any]] = {}
    sizes: dict[str, int] = {}
    rows_out: dict[str, int] = {}
    chosen: dict[str, str] = {}
    mem_mode = "-"
    for input_name in INPUTS:
        lines = bodies[body_kind(input_name)]
        sizes[input_name] = sum(map(len, lines)) + len(lines)
        name, times = fastest_decoder(lines, inner=input_name != "general")
        chosen[input_name] = name
        _LOADS = decoders()[name]
        print(
            f"[{input_name}] decode-only: "
            + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in sorted(times.items(), key=lambda x: x[1]))
            + f" -> (a) uses {name}"
        )
        fns = {m: method(m, input_name) for m in METHODS}
        for m, fn in fns.items():
            results[(input_name, m)] = {"time": None, "peak": None}
            if fn is not None:
                frame = fn(lines)  # warm up (lazy imports), and count the rows
                if m == "b":
                    rows_out[input_name] = len(frame)
                del frame
        # repeats interleaved across methods, so that a burst of load elsewhere on the machine
        # hits all of them alike; best of the repeats is kept
        for _ in range(args.repeats):
            for m, fn in fns.items():
                if fn is None:
                    continue
                t = best_time(fn, lines, 1)
                entry = results[(input_name, m)]
                entry["time"] = t if entry["time"] is None else min(entry["time"], t)
        if not args.no_memory:
            for m, fn in fns.items():
                if fn is not None:
                    results[(input_name, m)]["peak"], mem_mode = measure_memory(
                        input_name, m, str(paths[body_kind(input_name)]), name
                    )

    print()
    mem_label = {"rss": "peak RSS growth, fresh subprocess per cell",
                 "tracemalloc": "tracemalloc peak (Arrow buffers not seen)"}.get(mem_mode, "-")  # fmt: skip
    print(f"time: best of {args.repeats} interleaved repeats; memory: {mem_label}")
    header = f"{'input':<11} {'size':>8} {'rows':>6}  {'method':<36} {'time ms':>9} " \
             f"{'x (a)':>6} {'peak MB':>8} {'x size':>7}"  # fmt: skip
    print(header)
    print("-" * len(header))
    for input_name in INPUTS:
        base = results[(input_name, "a")]["time"]
        for m in METHODS:
            r = results[(input_name, m)]
            size = f"{sizes[input_name] / 1e6:.1f} MB" if m == "a" else ""
            rows = str(rows_out.get(input_name, "")) if m == "a" else ""
            if r["time"] is None:
                print(f"{input_name:<11} {size:>8} {rows:>6}  {LABELS[m]:<36} {'not installed':>9}")
                continue
            peak = "-" if r["peak"] is None else f"{r['peak'] / 1e6:.1f}"
            ratio = "-" if r["peak"] is None else f"{r['peak'] / sizes[input_name]:.2f}"
            print(
                f"{input_name:<11} {size:>8} {rows:>6}  {LABELS[m]:<36} "
                f"{r['time'] * 1e3:>9.1f} {r['time'] / base:>6.2f} {peak:>8} {ratio:>7}"
            )
    print()
    print("goals")
    missed = 0

    def goal(text: str, ok: bool | None) -> None:
        nonlocal missed
        state = "n/a " if ok is None else ("PASS" if ok else "MISS")
        missed += ok is False
        print(f"  [{state}] {text}")

    for input_name in INPUTS:
        a, b = results[(input_name, "a")]["time"], results[(input_name, "b")]["time"]
        goal(f"{input_name}: (b) within 1.5x of (a)  ({b / a:.2f}x)", b <= 1.5 * a)
    for input_name in INPUTS:
        b = results[(input_name, "b")]["time"]
        need = 5.0 if input_name == "segments" else 1.0
        for m in ("c", "d"):
            t = results[(input_name, m)]["time"]
            what = f"at least {need:.0f}x faster than" if need > 1 else "faster than"
            if t is None:
                goal(f"{input_name}: (b) {what} {m} (not installed)", None)
            else:
                goal(f"{input_name}: (b) {what} ({m})  ({t / b:.1f}x)", t >= need * b)
    for input_name in INPUTS:
        peak = results[(input_name, "b")]["peak"]
        if peak is None:
            goal(f"{input_name}: (b) peak memory < 3x input (not measured)", None)
        else:
            goal(
                f"{input_name}: (b) peak memory < 3x input  ({peak / sizes[input_name]:.2f}x)",
                peak < 3 * sizes[input_name],
            )
    for path in paths.values():
        path.unlink()
    tmp.rmdir()
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    raise SystemExit(main())
