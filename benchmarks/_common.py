"""Shared bits of the benchmark scripts: argument parsing, goal verdicts and table printing.

Every ``bench_*.py`` prints its own tables and a list of goals, each with the figure measured,
the baseline measured in the same run, the target and PASS/MISS. Scripts exit 0 even on a
MISS; ``--strict`` makes a MISS exit 1.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_args(description: str, extra: Sequence[tuple[str, dict[str, object]]] = ()) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    for flag, options in extra:
        parser.add_argument(flag, **options)  # type: ignore[arg-type]
    # run_all.py passes its own argv through: ignore what is meant for another script
    args, _unknown = parser.parse_known_args()
    return args


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> None:
    """Print a plain fixed-width table (first column left-aligned, the others right-aligned)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    if title:
        print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        print(line(r))


@dataclass
class Goal:
    name: str
    figure: str
    baseline: str
    target: str
    ok: bool | None  # None: not measurable here (shown as n/a)
    note: str = ""


class Goals:
    def __init__(self) -> None:
        self.items: list[Goal] = []

    def add(self, name: str, figure: str, baseline: str, target: str, ok: bool | None, note: str = "") -> None:
        self.items.append(Goal(name, figure, baseline, target, ok, note))

    @property
    def missed(self) -> list[Goal]:
        return [g for g in self.items if g.ok is False]

    def print(self, title: str = "Goals") -> None:
        rows = [
            (g.name, g.figure, g.baseline, g.target, "n/a" if g.ok is None else "PASS" if g.ok else "MISS")
            for g in self.items
        ]
        table(("goal", "measured", "baseline", "target", "verdict"), rows, title=title)
        for g in self.items:
            if g.note:
                print(f"  - {g.name}: {g.note}")

    def exit_code(self, strict: bool) -> int:
        return 1 if strict and self.missed else 0


def fmt_s(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    if seconds < 0.01:
        return f"{seconds * 1e3:.2f} ms"
    if seconds < 100:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def fmt_pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}%"
