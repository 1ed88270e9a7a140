"""Numbers and outcomes as every summary writes them: the widgets, the static summaries, reprs."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["count_of", "hours", "num", "outcome", "size"]


def num(n: int) -> str:
    """2500 → "2,500", as the live view writes it."""
    return f"{n:,}"


def outcome(counts: Mapping[str, int]) -> str:
    """ "114 ready, 6 failed": the finished outcomes that are not zero."""
    parts = [f"{num(counts.get(k, 0))} {k}" for k in ("ready", "failed", "canceled") if counts.get(k, 0)]
    return ", ".join(parts) or "no items finished"


def size(n: float) -> str:
    """Bytes in decimal units, as the live view writes them: 512 → "512 B", 8_100_000 → "8.1 MB"."""
    value = max(float(n), 0.0)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            break
        value /= 1000
    if unit == "B":
        return f"{int(value)} B"
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def count_of(n: int, noun: str) -> str:
    """ "1 batch", "3 batches", "1,000 rows": a count with its noun, plural when it is not 1."""
    plural = noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s")
    return f"{num(n)} {noun if n == 1 else plural}"


def hours(h: float) -> str:
    """Content or wall hours: 0.25 → "0.25 h", 12.5 → "12.5 h", 1234.56 → "1,234.6 h"."""
    return f"{h:,.2f} h" if abs(h) < 10 else f"{h:,.1f} h"
