"""Command line: run the simulator until SIGINT/SIGTERM.

``python -m batch_widget.simulator --port PORT [--host 127.0.0.1] [--speed F] [--seed N]
[--fail-rate P] [--items-at-once K] [--item-seconds MIN,MAX] [--startup-seconds MIN,MAX]
[--api-key KEY] [--max-active N] [--output-scale F] [--segments-per-definition N]
[--length-rate P] [--missing-asset ID ...] [--manual-clock] [--fault SPEC ...] [--verbose]``

The first line on stdout is the base URL (``http://127.0.0.1:PORT/v1.3``), flushed at once;
``--port 0`` picks a free port. The API key defaults to ``$TWELVELABS_API_KEY`` if set, else
``sim-key``. ``--fault`` takes the compact text or the JSON form of a rule (see ``faults``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .app import DEFAULT_API_KEY, Simulator
from .clock import Clock, ManualClock
from .faults import Fault

__all__ = ["build_parser", "run_simulator"]


def _pair(text: str) -> tuple[float, float]:
    parts = text.replace(" ", "").split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX, got {text!r}")
    lo, hi = float(parts[0]), float(parts[1])
    if lo < 0 or hi < lo:
        raise argparse.ArgumentTypeError(f"need 0 <= MIN <= MAX, got {text!r}")
    return lo, hi


def _fault(text: str) -> Fault:
    try:
        return Fault.parse(text)
    except (ValueError, TypeError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m batch_widget.simulator",
        description="Serve a local TwelveLabs batch analysis API (v1.3) simulator.",
    )
    p.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    p.add_argument("--manual-clock", action="store_true",
                   help="freeze time; move it with POST /_sim/clock {'advance': s}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fail-rate", type=float, default=0.05)
    p.add_argument("--items-at-once", type=int, default=8)
    p.add_argument("--item-seconds", type=_pair, default=(60.0, 300.0), metavar="MIN,MAX")
    p.add_argument("--startup-seconds", type=_pair, default=(5.0, 30.0), metavar="MIN,MAX")
    p.add_argument("--api-key", default=None,
                   help=f"accepted x-api-key (default: $TWELVELABS_API_KEY or {DEFAULT_API_KEY})")
    p.add_argument("--max-active", type=int, default=5)
    p.add_argument("--output-scale", type=float, default=1.0)
    p.add_argument("--segments-per-definition", type=int, default=None)
    p.add_argument("--length-rate", type=float, default=0.0)
    p.add_argument("--missing-asset", action="append", default=[], metavar="ASSET_ID")
    p.add_argument("--fault", action="extend", nargs="+", type=_fault, default=[],
                   metavar="SPEC",
                   help="fault rules, e.g. 'get:status=503:times=5' (compact text or JSON; "
                   "several per flag, and the flag is repeatable)")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")
    return p


def run_simulator(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), serve until SIGINT/SIGTERM, return 0."""
    args = build_parser().parse_args(argv)
    api_key = args.api_key or os.environ.get("TWELVELABS_API_KEY") or DEFAULT_API_KEY
    clock: Clock | None = ManualClock() if args.manual_clock else None
    sim = Simulator(
        api_key=api_key,
        host=args.host,
        port=args.port,
        seed=args.seed,
        speed=args.speed,
        clock=clock,
        fail_rate=args.fail_rate,
        items_at_once=args.items_at_once,
        item_seconds=args.item_seconds,
        startup_seconds=args.startup_seconds,
        missing_assets=args.missing_asset,
        output_scale=args.output_scale,
        segments_per_definition=args.segments_per_definition,
        length_rate=args.length_rate,
        max_active=args.max_active,
        faults=args.fault,
        verbose=args.verbose,
    )
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sim.start()
    try:
        print(sim.base_url, flush=True)
        while not done.wait(0.5):
            pass
    finally:
        sim.close()
    print("simulator stopped", file=sys.stderr, flush=True)
    return 0
