"""How a live view ends: every display replaced by a static summary, and that summary's pieces.

JupyterLab 4 and Notebook 7 never fall back from a missing widget model to ``text/html``, so a
saved notebook would show "Error displaying widget: model not found". :class:`PinnedView` gives
each display a display id and, when the work ends, replaces every one with a static-only bundle.

Inline styles only (JupyterLab's sanitizer keeps them for untrusted outputs and drops
``<style>`` blocks), no script, every server string escaped by the caller's ``esc``. Greys are
avoided for text: it inherits the theme's colour and is dimmed with ``opacity``, so it stays
legible on light and dark backgrounds alike.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any

import anywidget
import traitlets

from .errors import BatchWidgetError, describe_error

__all__ = ["BOX", "COLOURS", "STATES", "PinnedView", "bar", "legend", "num", "outcome", "pill"]

log = logging.getLogger("batch_widget.summary")

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


class PinnedView(anywidget.AnyWidget):
    """A live view whose every display becomes a static summary when its work ends.

    Subclasses say when the work has ended (:meth:`_finished`), what the summary is
    (:meth:`_summary`), and which actions from the view they take (:meth:`_on_action`).
    While running, a display is the widget view plus text/plain and text/html saying it runs;
    at the end :meth:`finalize` replaces every display (by display id) with the static bundle;
    displaying a finished view shows the static bundle alone.
    """

    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, **traits: Any) -> None:
        self._handles: list[Any] = []
        self._finalized = False
        self._tasks: set[asyncio.Task[Any]] = set()
        super().__init__(**traits)
        self.on_msg(self._on_frontend_msg)

    # -- for subclasses -------------------------------------------------------------------------

    def _finished(self) -> bool:
        raise NotImplementedError

    def _summary(self, *, live: bool) -> tuple[str, str]:
        """(text/plain, text/html) of the current state; ``live`` adds the running note."""
        raise NotImplementedError

    def _on_action(self, kind: str) -> bool:
        """Take the action ``kind`` sent by the view; False when it is not one of ours."""
        raise NotImplementedError

    # -- display --------------------------------------------------------------------------------

    def _static_bundle(self) -> dict[str, str]:
        text, page = self._summary(live=False)
        return {"text/plain": text, "text/html": page}

    def _ipython_display_(self, **kwargs: Any) -> None:
        from IPython import display as ipd

        display: Callable[..., Any] = ipd.display
        if self._finished():
            display(self._static_bundle(), raw=True)
            return
        bundle = self._repr_mimebundle_(**kwargs)
        data, metadata = bundle if isinstance(bundle, tuple) else (bundle, {})
        text, page = self._summary(live=True)
        handle = display({**(data or {}), "text/plain": text, "text/html": page},
                         metadata=metadata, raw=True, display_id=True)  # fmt: skip
        if handle is not None:
            self._handles.append(handle)
            self._finalized = False
        if self._finished():  # ended between the check and the display
            self.finalize()

    def finalize(self, *, force: bool = False) -> None:
        """Replace every display with the static summary, once the work has ended.

        Idempotent unless ``force``: ``wait()`` forces it so that the update also comes from
        the waiting cell, which nbclient / papermill record (they drop the one the background
        task sent, as it carries the parent of the cell that started the work).
        """
        if (self._finalized and not force) or not self._finished():
            return
        bundle = self._static_bundle()
        for handle in self._handles:
            try:
                handle.update(bundle, raw=True)
            except Exception:  # a display that went away must not break the others
                log.debug("could not update a display", exc_info=True)
        self._finalized = True

    # -- actions from the view ------------------------------------------------------------------

    def _on_frontend_msg(self, _widget: object, content: Any, _buffers: object) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if not isinstance(kind, str) or not self._on_action(kind):
            log.debug("ignored message from the view: %r", content)

    def _spawn_action(self, action: Callable[[], Awaitable[object]], what: str) -> None:
        """Run ``action`` as a task; a failure is shown in the view's banner, never raised."""

        async def run() -> None:
            try:
                await action()
            except BatchWidgetError as error:
                self.error = f"{what} failed: {describe_error(error)}"
            except Exception as error:  # a click must never kill the kernel
                log.exception("%s failed", what)
                self.error = f"{what} failed: {type(error).__name__}"

        self._spawn(run())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        super().close()
