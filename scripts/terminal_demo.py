"""A short scripted batch from a terminal: the simulator, a 30-item batch, progress lines, a summary.

`make demo-terminal` runs it; `make demo` opens the notebook version in JupyterLab.
"""

from __future__ import annotations

import asyncio

import batch_widget as bw
from batch_widget.frames import results_to_frame
from batch_widget.poller import BatchPoller, PollUpdate
from batch_widget.simulator import Simulator


def show(update: PollUpdate) -> None:
    b = update.batch
    if b is None:
        print(f"  {update.state}: {update.error}")
        return
    rate = f"{update.rate_per_min:.1f}/min" if update.rate_per_min else "-"
    eta = f"~{update.eta_s:.0f} s left" if update.eta_s else ""
    print(
        f"  {b.status.value:<10} {b.done_items:>3}/{b.total_items} done "
        f"(ready {b.ready_items}, failed {b.failed_items}, processing {b.processing_items}, "
        f"queued {b.queued_items})  {rate} {eta}"
    )


async def main() -> None:
    with Simulator(speed=60, seed=1, fail_rate=0.1) as sim:
        async with bw.BatchClient(sim.api_key, base_url=sim.base_url) as client:
            created = await client.create(
                analysis_mode="general",
                defaults={"prompt": {"input_text": "Summarise the video."}},
                requests=[{"video": {"asset_id": f"{i:024x}"}, "custom_id": f"clip-{i:02d}"} for i in range(30)],
            )
            print(f"created batch {created.batch_id} ({created.total_items} items) on the simulator")
            poller = BatchPoller(client, created.batch_id, schedule=bw.Schedule(min_interval=1, max_interval=3))
            poller.add_listener(show)
            final = await poller.wait()
            print(f"\n{final.status.value}: {final.ready_items} ready, {final.failed_items} failed "
                  f"of {final.total_items}")  # fmt: skip
            frame = results_to_frame([x async for x in client.results(created.batch_id)], order=created.items)
            print(frame[["custom_id", "status", "error_code", "output_tokens"]].head(8).to_string(index=False))


if __name__ == "__main__":
    asyncio.run(main())
