"""Pieces of the static summaries that replace a widget's display when its batch or job ends.

Inline styles only (JupyterLab's sanitizer keeps them for untrusted outputs and drops
``<style>`` blocks), no script, every server string escaped by the caller's ``esc``. Greys are
avoided for text: it inherits the theme's colour and is dimmed with ``opacity``, so it stays
legible on light and dark backgrounds alike.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

__all__ = ["BOX", "COLOURS", "STATES", "bar", "legend", "num", "outcome", "pill"]

# The palette of js/widget.css (light theme); white text on each passes 4.5:1.
COLOURS = {
    "ready": "#2e7d32",
    "failed": "#c62828",
    "canceled": "#b45309",
    "processing": "#1565c0",
    "queued": "#6b7280",
    "waiting": "#9ca3af",
}
STATES = ("ready", "failed", "canceled", "processing", "queued")

_FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:13px;"
BOX = f"{_FONT}max-width:640px;border:1px solid rgba(128,128,128,.45);border-radius:6px;padding:8px 10px;"


def num(n: int) -> str:
    """2500 → "2,500", as the live view writes it."""
    return f"{n:,}"


def outcome(counts: Mapping[str, int]) -> str:
    """ "114 ready, 6 failed": the finished outcomes that are not zero."""
    parts = [f"{num(counts.get(k, 0))} {k}" for k in ("ready", "failed", "canceled") if counts.get(k, 0)]
    return ", ".join(parts) or "no items finished"


def bar(counts: Mapping[str, int], states: Iterable[str], scale: int, label: str) -> str:
    """A stacked bar, one segment per state, widths relative to ``scale``."""
    scale = max(scale, 1)
    segments = "".join(
        f'<div title="{name}: {num(counts.get(name, 0))}" style="width:{100 * counts.get(name, 0) / scale:.3f}%;'
        f'background:{COLOURS[name]};height:100%"></div>'
        for name in states
        if counts.get(name, 0)
    )
    return (
        f'<div role="img" aria-label="{html.escape(label)}" style="display:flex;height:12px;'
        f'background:rgba(128,128,128,.2);border-radius:3px;overflow:hidden">{segments}</div>'
    )


def legend(counts: Mapping[str, int], states: Iterable[str]) -> str:
    """A swatch and a count for each state, zeros included."""
    return " ".join(
        f'<span style="margin-right:10px;white-space:nowrap"><span style="display:inline-block;width:9px;'
        f'height:9px;border-radius:2px;background:{COLOURS[name]};margin-right:4px"></span>'
        f"{name} {num(counts.get(name, 0))}</span>"
        for name in states
    )


def pill(text: str, colour: str, extra_style: str = "") -> str:
    return (
        f'<span style="background:{colour};color:#fff;border-radius:9px;padding:1px 8px;font-weight:600;'
        f'{extra_style}">{html.escape(text)}</span>'
    )
