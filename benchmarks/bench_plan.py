"""Benchmark: ``bw.plan`` of 10,000 rows that name assets already on the account.

Run ``python benchmarks/bench_plan.py`` (``make bench``). Not a test: it prints a table and the
goals with PASS/MISS, and exits 0 either way (``--strict`` exits 1 on a MISS).

The simulator runs in this process (its request handling is counted against us) with a manual
clock; 10,000 ready video assets are made in its store (URL assets, durations seeded per file
name, as the simulator does for every asset). Then:

- (a) ``await bw.plan(df, asset="asset_id", prompt=..., key=...)``: every row checked as submit
  checks it, the durations from ``list_assets`` by id (50 per request), the chunks, the account's
  active batches and recent completed ones. Wall time (best of the repeats) and the number of
  asset list requests the simulator answered.
- (b) the baseline, measured in the same run: one ``get_asset`` per row (what a per-row duration
  lookup costs), timed on a sample of 200 rows and scaled to 10,000.
"""

from __future__ import annotations

import asyncio
import math
import time

import pandas as pd
from _common import Goals, SimTime, parse_args, table

import batch_widget as bw
from batch_widget.simulator import ManualClock, Simulator

ROWS = 10_000
SAMPLE = 200


async def run(rows: int, repeats: int) -> dict[str, float]:
    clock = ManualClock()
    with Simulator(seed=5, clock=clock, asset_processing_seconds=(5.0, 60.0)) as sim:
        ids = [sim.assets.create(sim.api_key, {"method": "url", "url": f"https://cdn.example.com/v/{i:05d}.mp4"})["_id"]
               for i in range(rows)]  # fmt: skip
        clock.advance(3600)  # every asset is ready
        df = pd.DataFrame({"asset_id": ids, "key": [f"v{i:05d}" for i in range(rows)]})
        async with bw.BatchClient(sim.api_key, base_url=sim.base_url, clock=SimTime(clock), timeout=60) as client:
            best = math.inf
            lists = 0
            plan = None
            for _ in range(repeats):
                before = int(sim.stats["requests"].get("asset_list", 0))
                t0 = time.perf_counter()
                plan = await bw.plan(df, asset="asset_id", prompt="Summarise.", key="key", client=client,
                                     manifest="/nonexistent/bench.manifest.json")  # fmt: skip
                best = min(best, time.perf_counter() - t0)
                lists = int(sim.stats["requests"].get("asset_list", 0)) - before
            assert plan is not None and plan.unknown_rows == 0 and len(plan.batches) == math.ceil(rows / 1000)
            t0 = time.perf_counter()
            for a in ids[:SAMPLE]:
                await client.get_asset(a)
            per_row = (time.perf_counter() - t0) / SAMPLE
    return {"plan_s": best, "lists": lists, "per_row_s": per_row, "hours": plan.content_hours,
            "batches": len(plan.batches)}  # fmt: skip


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    rows = 2_000 if args.quick else ROWS
    r = asyncio.run(run(rows, 1 if args.quick else 3))
    baseline = r["per_row_s"] * rows
    limit = math.ceil(rows / 50)
    table(
        ("plan of assets already on the account", "time", "asset requests", "vs (b)"),
        [
            (f"(a) bw.plan, {rows:,} rows → {r['batches']:.0f} batches, {r['hours']:,.0f} content h",
             f"{r['plan_s'] * 1000:.0f} ms", f"{r['lists']:.0f} list", f"{r['plan_s'] / baseline:.2f}x"),
            (f"(b) baseline: one get_asset per row ({r['per_row_s'] * 1000:.2f} ms each, {SAMPLE} sampled)",
             f"{baseline * 1000:.0f} ms", f"{rows:,} get", "1.00x"),
        ],
        title=f"{rows:,} rows naming ready assets (simulator in this process)",
    )
    goals = Goals()
    goals.add(f"plan of {rows:,} rows", f"{r['plan_s'] * 1000:.0f} ms", f"{baseline * 1000:.0f} ms per-row (b)",
              "< 1 s", r["plan_s"] < 1.0)  # fmt: skip
    goals.add("asset list requests", f"{r['lists']:.0f}", f"{rows:,} gets (b)", f"<= ceil({rows:,}/50) = {limit}",
              r["lists"] <= limit)  # fmt: skip
    goals.print()
    return goals.exit_code(args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
