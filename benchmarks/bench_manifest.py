"""Benchmark: what writing the job's record costs a 2,000-row upload job, against its wall time.

Run ``python benchmarks/bench_manifest.py`` (``make bench``). Not a test: it prints a table and
the goals with PASS/MISS, and exits 0 either way (``--strict`` exits 1 on a MISS).

A job of 2,000 rows, each a distinct video URL, runs on the simulator with a virtual clock
(``SimTime``): 2,000 asset creates, their processing, then 2 batches. Every change of an upload,
a row or a chunk is written before the job goes on (intents before requests, ids after them).

- (a) the job's wall time, submit to ``wait()`` returning.
- (b) the time spent writing its record: every ``Manifest.record`` (a journal append) and
  ``Manifest.save`` (a whole-file write), summed; the goal is under 5% of (a).
- (c) the baseline: the same number of writes as whole-file rewrites (what the record cost
  before the journal), estimated from the measured cost of one full write of the final record.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from _common import Goals, SimTime, parse_args, table

import batch_widget as bw
from batch_widget.jobs.manifest import Manifest
from batch_widget.simulator import ManualClock, Simulator

ROWS = 2_000


class WriteTimer:
    """Wraps ``Manifest.record`` and ``Manifest.save`` to add up the time spent in them."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.records = 0
        self.saves = 0
        self._originals: dict[str, Any] = {}

    def __enter__(self) -> WriteTimer:
        for name in ("record", "save"):
            original = getattr(Manifest, name)
            self._originals[name] = original

            def timed(man: Manifest, *args: Any, _original: Any = original, _name: str = name) -> Any:
                t0 = time.perf_counter()
                try:
                    return _original(man, *args)
                finally:
                    self.seconds += time.perf_counter() - t0
                    if _name == "record":
                        self.records += 1
                    else:
                        self.saves += 1

            setattr(Manifest, name, timed)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._originals.items():
            setattr(Manifest, name, original)


async def run(rows: int) -> dict[str, float]:
    clock = ManualClock()
    with Simulator(seed=5, clock=clock, fail_rate=0.0, items_at_once=500, item_seconds=(5.0, 20.0),
                   asset_processing_seconds=(5.0, 60.0)) as sim:  # fmt: skip
        async with bw.BatchClient(sim.api_key, base_url=sim.base_url, clock=SimTime(clock), timeout=60) as client:
            data = pd.DataFrame({"video": [f"https://cdn.example.com/v/{i:05d}.mp4" for i in range(rows)]})
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "job.manifest.json"
                with WriteTimer() as timer:
                    t0 = time.perf_counter()
                    job = bw.submit(data, video="video", prompt="Summarise the video.", client=client,
                                    manifest=path, upload_concurrency=8)  # fmt: skip
                    snap = await asyncio.wait_for(job.wait(), 1800)
                    wall = time.perf_counter() - t0
                assert snap.state == "done" and snap.counts["ready"] == rows, snap.describe()
                size = path.stat().st_size
                man = Manifest.load(path)
                t0 = time.perf_counter()
                repeats = 5
                for _ in range(repeats):
                    man.save()
                full = (time.perf_counter() - t0) / repeats
                job.close()
    return {"wall_s": wall, "writes_s": timer.seconds, "records": timer.records, "saves": timer.saves,
            "full_s": full, "size_kb": size / 1024, "assets": len(sim.assets.assets())}  # fmt: skip


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    rows = 500 if args.quick else ROWS
    r = asyncio.run(run(rows))
    share = r["writes_s"] / r["wall_s"]
    rewrite = (r["records"] + r["saves"]) * r["full_s"]
    table(
        ("record writes of an upload job", "time", "share of (a)"),
        [
            ("(a) the job, submit → wait()", f"{r['wall_s']:.2f} s", "100%"),
            (f"(b) record writes ({r['records']:.0f} appends, {r['saves']:.0f} full writes)",
             f"{r['writes_s'] * 1000:.0f} ms", f"{share:.1%}"),
            (f"(c) baseline: each write a full rewrite ({r['full_s'] * 1000:.1f} ms each)",
             f"{rewrite:.2f} s", f"{rewrite / r['wall_s']:.0%}"),
        ],
        title=f"{rows:,} URL rows ({r['assets']:.0f} assets made), final record {r['size_kb']:.0f} KB",
    )
    goals = Goals()
    goals.add("record writes of a 2,000-row upload job", f"{share:.1%} of its wall time",
              f"{rewrite / r['wall_s']:.0%} as full rewrites (c)", "< 5%", share < 0.05)  # fmt: skip
    goals.print()
    return goals.exit_code(args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
