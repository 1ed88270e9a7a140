"""The live view base class: display ids, the final static summary, and actions from the view.

JupyterLab 4 and Notebook 7 never fall back from a missing widget model to ``text/html``, so a
saved notebook would show "Error displaying widget: model not found". :class:`PinnedView` gives
each display a display id and, when the work ends, replaces every one with a static-only bundle
(see :mod:`batch_widget.summary`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from .errors import BatchWidgetError, describe_error
from .peek import PeekRow, rows_to_frame, rows_to_trait

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PinnedView"]

log = logging.getLogger("batch_widget.views")

# synced by ipywidgets' DOMWidget for every widget; not ours to resend
_PLUMBING = frozenset({"layout", "tabbable", "tooltip"})


@dataclass
class PullCounts:
    """Pulls from the view: how many came, and how many found it behind (and were answered)."""

    asked: int = 0
    answered: int = 0


class PinnedView(anywidget.AnyWidget):
    """A live view whose every display becomes a static summary when its work ends.

    Subclasses say when the work has ended (:meth:`_finished`), what the summary is
    (:meth:`_summary`), and which actions from the view they take (:meth:`_on_action`).
    While running, a display is the widget view plus text/plain and text/html saying it runs;
    at the end :meth:`finalize` replaces every display (by display id) with the static bundle;
    displaying a finished view shows the static bundle alone.

    Push and pull: each new snapshot is pushed to the view from the background (one message,
    :meth:`_pushing`), which JupyterLab, Notebook 7, VS Code and marimo show. Colab drops
    messages that a background task sends after the cell has finished, so the view also asks
    ("pull", with the ``revision`` it holds) when it has heard nothing for a poll interval; the
    answer is sent from inside the handler of that message, which every front end delivers:
    the state the view lacks (nothing when it is up to date), and, once the work has ended,
    the static summary in place of every display.
    """

    #: the last failure to show in the view's banner (a watch error, a failed action), "" when none
    error = traitlets.Unicode("").tag(sync=True)
    #: how many snapshots the kernel has sent: a view that holds an older one is behind
    revision = traitlets.Int(0).tag(sync=True)
    #: the first finished items, fetched only when asked (the view's Peek, or ``peek()``): dicts of
    #: batch_id, custom_id, status, output (cut to 200 characters), error; emptied when the work ends,
    #: so outputs (large, maybe private) are not kept in a saved notebook
    peek_rows = traitlets.List(traitlets.Dict(), default_value=[]).tag(sync=True)
    #: the peek's own state: "" (idle), "loading", or why it failed
    peek_state = traitlets.Unicode("").tag(sync=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)  # anywidget turns a path in _esm / _css into a FileContents
        for key in ("_esm", "_css"):
            value = cls.__dict__.get(key)
            if hasattr(value, "changed"):
                # ...whose "changed" signal each instance joins with a strong callback, never undone:
                # every widget ever made would stay alive (its poller and client with it). The text
                # read once instead (hot reload is a development feature we do not use)
                setattr(cls, key, str(value))

    def __init__(self, **traits: Any) -> None:
        self._handles: list[Any] = []
        self._finalized = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.pulls = PullCounts()
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

    async def _peek_rows(self, n: int) -> list[PeekRow]:
        """The first ``n`` finished items of the work (see :mod:`batch_widget.peek`)."""
        raise NotImplementedError

    # -- peek -----------------------------------------------------------------------------------

    async def peek(self, n: int = 5) -> pd.DataFrame:
        """The first ``n`` finished items so far (ready ones with the start of their output, failed
        ones with their error), as a small DataFrame; shown under the bar too, until the end.

        Fetched now, once (never on a timer), on the kernel's loop: other widgets keep updating.
        """
        rows = await self._peek_rows(n)
        if not self._finished():
            self.peek_rows = rows_to_trait(rows)
        return rows_to_frame(rows)

    async def _peek_shown(self) -> None:
        self.peek_state = "loading"
        await self.peek()
        self.peek_state = ""

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
        if self.peek_rows:
            self.peek_rows = []  # outputs are not kept once the work has ended
        bundle = self._static_bundle()
        for handle in self._handles:
            try:
                handle.update(bundle, raw=True)
            except Exception:  # a display that went away must not break the others
                log.debug("could not update a display", exc_info=True)
        self._finalized = True

    # -- push and pull --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _pushing(self) -> Iterator[None]:
        """Set traits for one new snapshot: one message to the view, with the revision counted."""
        with self.hold_sync():
            self.revision += 1
            yield

    def _data_keys(self) -> list[str]:
        """The synced traits that carry state (not the module, styles and layout plumbing)."""
        return [k for k in self.keys if not k.startswith("_") and k not in _PLUMBING]

    def _answer_pull(self, content: dict[str, Any]) -> None:
        """Send the view what it lacks, from inside the handler of its message (see the class doc)."""
        self.pulls.asked += 1
        if content.get("revision") != self.revision:
            self.pulls.answered += 1
            self.send_state(self._data_keys())
        if self._finished():
            self.finalize(force=True)

    # -- actions from the view ------------------------------------------------------------------

    def _on_frontend_msg(self, _widget: object, content: Any, _buffers: object) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "pull":
            self._answer_pull(content)
        elif kind == "peek":
            self._spawn_action(self._peek_shown, "Peek", shown_in="peek_state")
        elif not isinstance(kind, str) or not self._on_action(kind):
            log.debug("ignored message from the view: %r", content)

    def _spawn_action(
        self, action: Callable[[], Awaitable[object]], what: str, *, shown_in: str = "error"
    ) -> None:
        """Run ``action`` as a task; a failure is shown in the trait ``shown_in`` (the view's banner
        by default), never raised."""

        async def run() -> None:
            try:
                await action()
            except BatchWidgetError as error:
                setattr(self, shown_in, f"{what} failed: {describe_error(error)}")
            except Exception as error:  # a click must never kill the kernel
                log.exception("%s failed", what)
                setattr(self, shown_in, f"{what} failed: {type(error).__name__}")

        self._spawn(run())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        # also runs from Widget.__del__ after a subclass's __init__ refused its input
        for task in list(getattr(self, "_tasks", ())):
            task.cancel()
        layout = getattr(self, "layout", None)  # made with the widget, but not closed with it by ipywidgets
        super().close()
        if layout is not None:
            layout.close()  # else every widget ever closed leaves its Layout in the widget registry
