"""Benchmark: what the account poller saves, on the simulator with a virtual clock.

Run ``python benchmarks/bench_account.py`` (``make bench``). Not a test: it prints tables and
the goals with PASS/MISS, and exits 0 either way (``--strict`` exits 1 on a MISS).

1. Five batches watched together on one client (what a job of 5 batches, or 5 widgets, does):
   status requests (list + get, counted by the simulator) over their whole life, against one of
   the same batches watched alone on the same simulator (same seed, same five batches created,
   the other four unwatched), and the delay from each batch's terminal moment (the engine's
   truth) to the update that showed it. 200 items a batch, items of 60-230 s (about an hour).
   The account has the shape of a real one: ``--ended`` (100) older batches that have ended,
   so a list of every status has pages of them behind the watched ones.
2. Attaching late: a 1000-item batch (about 8 h) watched from its creation, against a watch
   attached 6 h into its life; status requests of each over the hour from 6 h to 7 h.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from _common import Goals, SimTime, fmt_s, median, parse_args, percentile, table

from batch_widget import BatchClient
from batch_widget.poller import BatchPoller, PollUpdate
from batch_widget.simulator import ManualClock, Simulator

PROMPT = {"prompt": {"input_text": "Summarise the video."}}
HOUR = 3600.0


def requests_for(n: int) -> list[dict[str, object]]:
    return [{"video": {"type": "asset_id", "asset_id": f"{i + 1:024x}"}} for i in range(n)]


def status_requests(sim: Simulator) -> int:
    counted = sim.stats["requests"]
    return int(counted.get("list", 0) + counted.get("get", 0))


async def watch_five(seed: int, watched: int, ended: int = 0) -> tuple[int, list[float]]:
    """Create 5 batches, watch the first ``watched`` of them to their end: (status requests, terminal delays).

    ``ended`` older batches are made first and left to end (5 at a time, the account's cap).
    """
    clock = ManualClock()
    with Simulator(seed=seed, clock=clock, item_seconds=(60.0, 230.0), max_active=5) as sim:
        async with BatchClient(sim.api_key, base_url=sim.base_url, clock=SimTime(clock)) as client:
            for i in range(ended):
                await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(1))
                if i % 5 == 4:
                    clock.set(clock.now() + HOUR)
            clock.set(clock.now() + HOUR)
            ids = [
                (await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(200))).batch_id
                for _ in range(5)
            ]
            sim.reset_stats()
            seen: dict[str, float] = {}

            def note(update: PollUpdate) -> None:
                if update.batch is not None and update.batch.is_terminal:
                    seen.setdefault(update.batch_id, clock.now())

            pollers = [BatchPoller(client, batch_id) for batch_id in ids[:watched]]
            for poller in pollers:
                poller.add_listener(note)
                poller.start()
            await asyncio.wait_for(asyncio.gather(*(p.wait() for p in pollers)), 300)
            delays = [seen[b] - sim.engine.finish_time(b) for b in ids[:watched]]
            return status_requests(sim), delays


async def late_hour(seed: int, attach_at: float) -> int:
    """Status requests, over the hour from 6 h to 7 h, of a watch attached ``attach_at`` s after creation."""
    clock = ManualClock()
    with Simulator(seed=seed, clock=clock, item_seconds=(100.0, 360.0), max_active=5) as sim:
        time = SimTime(clock)
        async with BatchClient(sim.api_key, base_url=sim.base_url, clock=time) as client:
            batch_id = (
                await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(1000))
            ).batch_id
            created = clock.now()
            clock.set(created + attach_at)
            poller = BatchPoller(client, batch_id)
            polled: list[float] = []
            poller.add_listener(lambda u: polled.append(clock.now()))
            stop: Callable[[], None] = poller.stop
            time.actions = [(created + 7 * HOUR, stop)]
            poller.start()
            await asyncio.wait_for(poller.wait(), 300)
            return sum(created + 6 * HOUR <= t < created + 7 * HOUR for t in polled)


async def main_async(seeds: int, ended: int) -> Goals:
    goals = Goals()
    together, alone, delays = [], [], []
    for seed in range(seeds):
        n5, d5 = await watch_five(seed, 5, ended)
        n1, _ = await watch_five(seed, 1, ended)
        together.append(n5)
        alone.append(n1)
        delays += d5
    ratio = median([a / b for a, b in zip(together, alone, strict=True)])
    table(
        ("setup", "seeds", "status requests (median)", "terminal delay median", "p95"),
        [
            ("5 batches, one client", seeds, median([float(x) for x in together]), fmt_s(median(delays)),
             fmt_s(percentile(delays, 95))),
            ("1 of them alone", seeds, median([float(x) for x in alone]), "", ""),
        ],
        title=f"Five batches watched together vs one alone (200 items / ~1 h each; {ended} ended batches before them)",
    )  # fmt: skip
    goals.add(
        "5 batches: status requests vs 1 alone", f"{ratio:.2f}x", "1 batch alone (1.00x)", "<= 1.3x", ratio <= 1.3
    )
    goals.add(
        "5 batches: terminal seen (median / p95)", f"{fmt_s(median(delays))} / {fmt_s(percentile(delays, 95))}",
        "", "<= 5 s / <= 15 s", median(delays) <= 5 and percentile(delays, 95) <= 15,
    )  # fmt: skip
    from_start = [await late_hour(seed, 0.0) for seed in range(seeds)]
    attached = [await late_hour(seed, 6 * HOUR) for seed in range(seeds)]
    table(
        ("watch", "seeds", "requests 6 h -> 7 h (median)"),
        [("from creation", seeds, median([float(x) for x in from_start])),
         ("attached at 6 h", seeds, median([float(x) for x in attached]))],
        title="Attaching to a batch 6 h into its life (1000 items / ~8 h)",
    )  # fmt: skip
    worst = max(a - b for a, b in zip(attached, from_start, strict=True))
    goals.add(
        "attached at 6 h: requests over the next hour",
        f"{median([float(x) for x in attached]):.0f} (worst seed {worst:+d})",
        f"{median([float(x) for x in from_start]):.0f} from creation",
        "<= from creation, every seed", worst <= 0,
    )  # fmt: skip
    return goals


def main() -> int:
    args = parse_args(
        __doc__.splitlines()[0],
        [("--seeds", {"type": int, "default": 10}), ("--ended", {"type": int, "default": 100})],
    )
    goals = asyncio.run(main_async(2 if args.quick else args.seeds, args.ended))
    goals.print()
    return goals.exit_code(args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
