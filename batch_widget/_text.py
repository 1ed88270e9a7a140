"""Numbers and outcomes as every summary writes them: the widgets, the static summaries, reprs."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["num", "outcome"]


def num(n: int) -> str:
    """2500 → "2,500", as the live view writes it."""
    return f"{n:,}"


def outcome(counts: Mapping[str, int]) -> str:
    """ "114 ready, 6 failed": the finished outcomes that are not zero."""
    parts = [f"{num(counts.get(k, 0))} {k}" for k in ("ready", "failed", "canceled") if counts.get(k, 0)]
    return ", ".join(parts) or "no items finished"
