"""One watched batch as a model: the handle a user holds, knowing nothing of views.

A :class:`BatchWatch` is to one batch what a :class:`~batch_widget.jobs.Job` is to many: it owns
the watch (a share of the batch's shared :class:`~batch_widget.poller.BatchPoller`), the cancel
state, the first finished items when asked (``peek``), and the ways to the results
(``to_pandas``, ``to_segments``), and hands a :class:`WatchSnapshot` to its listeners after every
change. ``bw.watch()`` returns one. It imports no widget: the widget layer registers the batch
widget as its view (``_viewing.register_view``), so displaying a ``BatchWatch`` (a cell's last
line in Jupyter, Colab, VS Code or marimo) shows the live widget, ``watch.widget`` is that widget,
and the command line can drive the same model without one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ._text import num, outcome
from ._viewing import Viewed, forget_view
from .client import BatchClient, default_client
from .models import Batch, CreatedItem
from .peek import PeekRow, peek, rows_to_frame
from .poller import BatchPoller, PollUpdate, Schedule
from .validation import validate_batch_id
from .waiting import GiveUp

if TYPE_CHECKING:
    import pandas as pd

    from .usage import Usage

__all__ = ["BatchWatch", "WatchListener", "WatchSnapshot"]

log = logging.getLogger("batch_widget.batch_watch")


@dataclass(frozen=True)
class WatchSnapshot:
    """One moment of a watched batch: the latest poll, whether a cancel was asked for, what the
    batch used once measured, and the first finished items if a peek was asked for."""

    update: PollUpdate
    #: a cancel was asked for and the batch has not ended yet
    cancel_requested: bool = False
    #: what the batch used, one line (``Usage.describe()``); "" until :meth:`BatchWatch.usage` measured
    #: it after the end
    usage: str = ""
    #: the first finished items of the last peek (``()`` until one is asked for, and once the
    #: batch has ended: outputs, large and maybe private, are not kept)
    peek: tuple[PeekRow, ...] = ()

    @property
    def batch(self) -> Batch | None:
        return self.update.batch

    @property
    def finished(self) -> bool:
        return self.update.finished

    def describe(self) -> str:
        """One line: the batch's status, outcome counts and total, and its usage once measured (what
        ``summary_text()`` says)."""
        update, batch = self.update, self.update.batch
        if batch is None:
            if update.state == "error":
                text = f"Batch {update.batch_id}: the watch ended before any status arrived"
            elif update.state == "stopped":
                text = f"Batch {update.batch_id}: the watch was stopped before any status arrived"
            else:
                text = f"Batch {update.batch_id}: waiting for the first status"
            return text + (f" ({update.error})" if update.error else "")
        if batch.is_terminal:
            text = f"Batch {batch.batch_id} {batch.status.value}: {outcome(batch.counts)} of {num(batch.total_items)}"
        else:
            # a watch that failed (the batch deleted, say) keeps its last snapshot: said so, never as current
            status = f"last known {batch.status.value}" if update.last_known else batch.status.value
            text = (
                f"Batch {batch.batch_id} {status}: {num(batch.done_items)} of {num(batch.total_items)} "
                f"done ({outcome(batch.counts)}; {num(batch.processing_items)} processing, "
                f"{num(batch.queued_items)} queued)"
            )
        if batch.webhooks:
            delivered = sum(1 for w in batch.webhooks if w.delivered)
            text += f" [webhooks: {delivered} of {len(batch.webhooks)} delivered]"
        if update.error:
            text += f" [{update.error}]"
        if self.usage:
            text += f"; usage: {self.usage}"
        return text


WatchListener = Callable[[WatchSnapshot], None]


class BatchWatch(Viewed):
    """A batch being watched: wait for it, cancel it, read its results; snapshots to listeners.

    ``bw.watch()`` makes one and displays it; display it again (``w`` as a cell's last line) for
    the live widget, or its static summary once the batch has ended. ``w.widget`` is the widget
    (its traits, ``pulls``, ``revision``), the same object every display of the watch shows.

    Parameters
    ----------
    batch_id : str
        The batch (24 hex characters; any case).
    client : BatchClient, optional
        Defaults to one client per process built from ``TWELVELABS_API_KEY``.
    schedule : Schedule, optional
        When to poll (see :class:`~batch_widget.poller.Schedule`).
    poller : BatchPoller, optional
        A poller to use instead of the shared one of this batch and client identity.
    created_items : sequence of CreatedItem, optional
        The ``items`` of the create response, so ``to_pandas()`` keeps request order.

    The watch starts at once (on the running event loop) and holds one share of the poller
    until :meth:`close`.
    """

    def __init__(
        self,
        batch_id: str,
        client: BatchClient | None = None,
        *,
        schedule: Schedule | None = None,
        poller: BatchPoller | None = None,
        created_items: Sequence[CreatedItem] | None = None,
    ) -> None:
        batch_id = validate_batch_id(batch_id)  # before anything is built: a bad id leaves nothing half-made
        self.client = default_client(client)
        self.poller = poller or BatchPoller.shared(self.client, batch_id, schedule=schedule)
        self.batch_id = self.poller.batch_id
        self.created_items = tuple(created_items) if created_items else None
        self._cancel_requested = False
        self._peek: tuple[PeekRow, ...] = ()
        self._snapshot = WatchSnapshot(self.poller.update)
        self._listeners: list[WatchListener] = []
        self._closed = False
        self.poller.add_listener(self._on_update)
        self.poller.acquire()

    def __repr__(self) -> str:
        return f"<BatchWatch {self.summary_text()}>"

    # -- state ----------------------------------------------------------------------------------

    @property
    def batch(self) -> Batch | None:
        """The latest snapshot of the batch (``None`` until the first poll answered)."""
        return self._snapshot.batch

    @property
    def finished(self) -> bool:
        return self._snapshot.finished

    def snapshot(self) -> WatchSnapshot:
        """The watch as it is now (what listeners received last)."""
        return self._snapshot

    def summary_text(self) -> str:
        """One line: the batch's status, outcome counts and total (the static summary's text)."""
        return self._snapshot.describe()

    def add_listener(self, listener: WatchListener) -> None:
        """Call ``listener(snapshot)`` after every change of the watch."""
        self._listeners.append(listener)

    def remove_listener(self, listener: WatchListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    # -- actions --------------------------------------------------------------------------------

    async def wait(self, *, give_up_after: float | None = None) -> Batch:
        """Wait, without blocking the event loop, until the batch ends; return the final snapshot.

        Raises the fatal error (e.g. ``NotFoundError``) if the watch ended on one. With
        ``give_up_after`` seconds, status requests that keep failing (network, 5xx, 429) that long
        stop the polling and the last error is raised (``waiting.GiveUp``, the one give-up policy;
        the command line passes the client's retry budget); ``None``: retried while the watch
        lives. The final snapshot goes to the listeners once more from here, so the widget pins its
        static summary from the waiting cell too (nbclient / papermill keep that one, and drop the
        one the background task sent, which carries the parent of the cell that started the watch).
        """
        try:
            return await GiveUp(self, give_up_after).until(self.poller.wait())
        finally:
            if self.finished:
                self._publish(self._snapshot)

    def wait_blocking(self) -> Batch:
        """Block the calling thread until the batch ends (for scripts); listeners get the end."""
        batch = self.poller.wait_blocking()
        update = self.poller.update
        self._on_update(replace(update, batch=batch, state="done" if batch.is_terminal else update.state))
        return batch

    async def cancel(self) -> Batch:
        """Ask the API to cancel the batch; snapshots say ``cancel_requested`` until it has ended."""
        self._set_cancel_requested(True)
        try:
            batch = await self.client.cancel(self.batch_id)
        except BaseException:
            self._set_cancel_requested(False)
            raise
        self.poller.refresh()
        return batch

    def refresh(self) -> None:
        """Poll now instead of at the next scheduled time."""
        self.poller.refresh()

    async def to_pandas(self, **kwargs: Any) -> pd.DataFrame:
        """The results so far as a DataFrame: one row per item, failures kept (see ``frames``).

        Lines come from ``BatchClient.result_lines`` (a cut stream resumed, an unreadable line
        fetched again once, and kept as a row with its raw text in ``note`` if it stays
        unreadable, never dropped). Keyword arguments go to ``frames.results_to_frame``.
        """
        from .frames import results_to_frame

        lines = await self.client.result_lines(self.batch_id)
        kwargs.setdefault("order", self.created_items)
        if self.batch is not None:
            kwargs.setdefault("total_items", self.batch.total_items)
        return results_to_frame(lines, **kwargs)

    async def to_segments(self, **kwargs: Any) -> pd.DataFrame:
        """Time-based metadata as a long DataFrame: one row per segment, start and end in seconds."""
        from .frames import segments_to_frame

        lines = await self.client.result_lines(self.batch_id)
        kwargs.setdefault("order", self.created_items)
        return segments_to_frame(lines, **kwargs)

    async def usage(self, assets: Mapping[str, str] | None = None) -> Usage:
        """What the batch used: content hours of completed items, input and output tokens, and the items
        not billed (failed, canceled), from its results (see :mod:`batch_widget.usage`).

        ``assets`` maps custom_id to asset id, for the content hours (one batched ``list_assets``);
        without it those hours are reported unknown. It reads the batch's whole results, so it runs only
        when asked (as ``to_pandas()``); measured after the end, its line goes to the listeners.
        """
        from .usage import measure_usage

        used = await measure_usage(self.client, (await self.to_pandas()).assign(batch_id=self.batch_id), assets=assets)
        if self.finished:
            self._publish(replace(self._snapshot, usage=used.describe()))
        return used

    async def peek_rows(self, n: int = 5) -> list[PeekRow]:
        """The first ``n`` finished items so far (fetched now, once); listeners get them in the
        snapshot while the batch runs (the widget shows them under the bar)."""
        rows = await peek(self.client, [self.batch_id], n)
        if not self.finished:
            self._peek = tuple(rows)
            self._publish(replace(self._snapshot, peek=self._peek))
        return rows

    async def peek(self, n: int = 5) -> pd.DataFrame:
        """The first ``n`` finished items so far (ready ones with the start of their output, failed
        ones with their error), as a small DataFrame; shown under the widget's bar too, until the end.

        Fetched now, once (never on a timer), on the event loop: other watches keep updating.
        """
        return rows_to_frame(await self.peek_rows(n))

    def close(self) -> None:
        """Give up this watch's share of the polling (the last one out stops the poller), and
        close its widget if one was made (as closing the widget did when ``watch()`` returned it)."""
        if self._closed:
            return
        self._closed = True
        self.poller.remove_listener(self._on_update)
        self.poller.release()
        view = forget_view(self)
        if view is not None:
            view.close()

    # -- plumbing -------------------------------------------------------------------------------

    def _on_update(self, update: PollUpdate) -> None:
        if update.batch is not None and update.batch.is_terminal:
            self._cancel_requested = False
        if update.finished:
            self._peek = ()  # outputs are not kept once the watch has ended
        self._publish(WatchSnapshot(update, self._cancel_requested, usage=self._snapshot.usage, peek=self._peek))

    def _set_cancel_requested(self, value: bool) -> None:
        self._cancel_requested = value
        self._publish(replace(self._snapshot, cancel_requested=value))

    def _publish(self, snap: WatchSnapshot) -> None:
        self._snapshot = snap
        for listener in list(self._listeners):
            if self._snapshot is not snap:  # a listener published a newer one (a watch given up): they got that
                return
            try:
                listener(snap)
            except Exception:  # one broken listener must not stop the others
                log.exception("listener of the watch of batch %s failed", self.batch_id)
