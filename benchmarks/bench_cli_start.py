"""Benchmark: how fast the ``batch-widget`` command starts, against Python itself and the notebook import.

Run ``python benchmarks/bench_cli_start.py`` (``make bench``). Not a test: it prints tables and
the goals with PASS/MISS, and exits 0 either way (``--strict`` exits 1 on a MISS).

Each command is a fresh child process, run several times (the median is shown):

- ``python -c pass``: the interpreter alone (the floor);
- ``import batch_widget``: the package's face (names imported on first use);
- the notebook's import: ``import batch_widget as bw`` then ``bw.watch``, ``bw.submit``,
  ``bw.JobWidget`` (the widget stack, pandas and the jobs: what a notebook loads);
- ``batch-widget --help`` and ``batch-widget status ID`` (against the simulator in its own
  process): wall time, and their import time as ``-X importtime`` counts it.

Goals (issue 19): each command's import time ≤ 0.3 s on this machine, and its start well under
the notebook's import (printed as ratios to the two baselines measured in the same run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from _common import ROOT, Goals, Simulated, median, parse_args, table

NOTEBOOK_IMPORT = "import batch_widget as bw; bw.watch; bw.submit; bw.JobWidget"


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1e3:.0f} ms"


def wall(argv: list[str], env: dict[str, str], repeats: int) -> float:
    """Median wall time of a child process running ``argv`` to its end."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return median(times)


def import_time(argv: list[str], env: dict[str, str], repeats: int) -> float:
    """Median total import time (seconds) of a child, from ``-X importtime``'s top-level entries."""
    totals = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-X", "importtime", *argv], env=env, cwd=ROOT,
                              capture_output=True, text=True, check=False)  # fmt: skip
        total = 0
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line:
                continue
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit() and not name.startswith("  "):  # a top-level import: no indent
                total += int(cumulative)
        totals.append(total / 1e6)
    return median(totals)


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    repeats = 3 if args.quick else 9
    py = sys.executable
    with Simulated("--seed", "1") as sim:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TWELVELABS_")}
        env.update(PYTHONPATH=str(ROOT), TWELVELABS_API_KEY="bench-key", TWELVELABS_BASE_URL=sim.base_url)
        import httpx

        created = httpx.post(f"{sim.base_url}/analyze/batches", headers={"x-api-key": sim_key()}, json={
            "model_name": "pegasus1.5", "analysis_mode": "general",
            "defaults": {"prompt": {"input_text": "Summarise."}},
            "requests": [{"video": {"type": "asset_id", "asset_id": f"{i + 1:024x}"}} for i in range(3)],
        })  # fmt: skip
        env["TWELVELABS_API_KEY"] = sim_key()
        batch_id = created.json()["batch_id"]
        runs = {
            "python -c pass": [py, "-c", "pass"],
            "import batch_widget": [py, "-c", "import batch_widget"],
            "notebook import": [py, "-c", NOTEBOOK_IMPORT],
            "batch-widget --help": [py, "-m", "batch_widget", "--help"],
            "batch-widget status ID": [py, "-m", "batch_widget", "status", batch_id],
        }
        walls = {name: wall(argv, env, repeats) for name, argv in runs.items()}
        imports = {name: import_time(argv[1:], env, repeats) for name, argv in runs.items() if name != "python -c pass"}
    floor, notebook = walls["python -c pass"], walls["notebook import"]
    table(
        ("run", "wall (median)", "imports (median)", "x python -c pass", "x notebook import"),
        [(name, fmt_s(t), fmt_s(imports[name]) if name in imports else "-", f"{t / floor:.1f}", f"{t / notebook:.2f}")
         for name, t in walls.items()],
        title=f"Start of a child process ({repeats} runs each)",
    )  # fmt: skip
    goals = Goals()
    for name in ("batch-widget --help", "batch-widget status ID"):
        goals.add(f"{name}: import time", fmt_s(imports[name]), f"{fmt_s(imports['notebook import'])} notebook",
                  "<= 0.3 s", imports[name] <= 0.3)  # fmt: skip
        goals.add(f"{name}: wall time / notebook import", f"{walls[name] / notebook:.2f}",
                  f"{fmt_s(notebook)} notebook", "<= 0.5", walls[name] / notebook <= 0.5)  # fmt: skip
    goals.print()
    return goals.exit_code(args.strict)


def sim_key() -> str:
    """The simulator's default key (``python -m batch_widget.simulator`` without ``--api-key``)."""
    from batch_widget.simulator.app import DEFAULT_API_KEY

    return DEFAULT_API_KEY


if __name__ == "__main__":
    raise SystemExit(main())
