"""The `batch-widget` command line against the local simulator: create a batch, then `watch` it.

`make demo-terminal` runs it; `make demo` opens the notebook version in JupyterLab. It starts a
:class:`~batch_widget.simulator.Simulator` (60 simulated seconds per real second), creates a
batch of a few hundred items, and runs ``batch-widget watch`` on it as a child process with the
simulator's key and URL in its environment, exactly as you would from a shell. On a terminal
the rows are redrawn in place; piped (``... | cat``) they come as timestamped lines.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import batch_widget as bw
from batch_widget.simulator import Simulator

ITEMS = 300


async def create(sim: Simulator) -> str:
    async with bw.BatchClient(sim.api_key, base_url=sim.base_url) as client:
        created = await client.create(
            analysis_mode="general",
            defaults={"prompt": {"input_text": "Summarise the video."}},
            requests=[{"video": {"asset_id": f"{i:024x}"}, "custom_id": f"clip-{i:03d}"} for i in range(ITEMS)],
        )
    return created.batch_id


def main() -> int:
    extra = sys.argv[1:]  # e.g. --json, passed on to `batch-widget watch`
    with Simulator(speed=60, seed=1, fail_rate=0.03, items_at_once=20, item_seconds=(30.0, 120.0)) as sim:
        batch_id = asyncio.run(create(sim))
        print(f"simulator at {sim.base_url}; created batch {batch_id} ({ITEMS} items)", file=sys.stderr)
        command = ["batch-widget", "watch", "--min-interval", "1", *extra, batch_id]
        print(f"$ {' '.join(command)}", file=sys.stderr)
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, TWELVELABS_API_KEY=sim.api_key, TWELVELABS_BASE_URL=sim.base_url,
                   PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))  # fmt: skip
        try:
            code = subprocess.call([sys.executable, "-m", "batch_widget", *command[1:]], env=env)
        except KeyboardInterrupt:  # the child got the Ctrl-C too and printed how to re-attach
            return 130
        print(
            f"[batch-widget exited {code}: 0 every item ready, 1 some failed (the demo fails a few)]", file=sys.stderr
        )
        return 0 if code in (0, 1) else code  # failed items are part of the show, not a failed demo


if __name__ == "__main__":
    raise SystemExit(main())
