"""The batch widget: a projection of a :class:`~batch_widget.batch_watch.BatchWatch`'s snapshots onto synced traits.

The watch is the model (the poller's share, the cancel state, the peek, the results) and what
:func:`watch` returns; the widget is its view, registered for the type (``_viewing``), as the job
widget is for a job: displaying the watch shows it, and ``w.widget`` is it. This is the one
place where async work meets traitlets. The JS view (``js/widget.ts``) draws from these traits
only; it sends actions back as messages: ``cancel``, ``refresh``, ``peek`` and ``pull``.

When the batch ends, every display of the widget is replaced (by display id) with the static
summary of :mod:`batch_widget.summary`, so a saved notebook shows the final state.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import traitlets

from ._viewing import forget_view, register_view
from .batch_watch import BatchWatch, WatchSnapshot
from .client import BatchClient
from .models import Batch, CreatedItem, format_time
from .peek import PeekRow, rows_to_trait
from .poller import BatchPoller, PollUpdate, Schedule
from .summary import batch_html as summary_html
from .summary import batch_text as summary_text
from .views import PinnedView

if TYPE_CHECKING:
    import pandas as pd

    from .usage import Usage

__all__ = ["BatchWidget", "summary_html", "summary_text", "watch"]

log = logging.getLogger("batch_widget.widget")

_STATIC = Path(__file__).parent / "static"


def _iso(value: datetime | None) -> str:
    return format_time(value) or ""


class BatchWidget(PinnedView):
    """Live view of one batch: display the :class:`BatchWatch` that :func:`watch` returns (``w``),
    or reach it as ``w.widget``, rather than building one.

    The synced traits are a projection of the watch's latest snapshot; nothing else is synced,
    and never the API key. Its methods (``wait``, ``cancel``, ``to_pandas``...) are the watch's.
    Built directly (``BatchWidget(batch_id, client)``) it makes its own watch and closes it with itself.
    """

    _esm = _STATIC / "widget.js"
    _css = _STATIC / "widget.css"

    # Every synced trait, with its meaning and unit; ISO times are UTC on the server's clock.
    #: the batch's id (24 hex characters)
    batch_id = traitlets.Unicode("").tag(sync=True)
    #: the batch's status as the API says it (``pending`` ... ``completed``; unknown ones as they are)
    status = traitlets.Unicode("").tag(sync=True)
    #: ``general`` or ``time_based_metadata``
    analysis_mode = traitlets.Unicode("").tag(sync=True)
    #: items in the batch
    total = traitlets.Int(0).tag(sync=True)
    #: items waiting to start
    queued = traitlets.Int(0).tag(sync=True)
    #: items being analysed
    processing = traitlets.Int(0).tag(sync=True)
    #: items with a result
    ready = traitlets.Int(0).tag(sync=True)
    #: items that failed
    failed = traitlets.Int(0).tag(sync=True)
    #: items canceled before they ran
    canceled = traitlets.Int(0).tag(sync=True)
    #: when the batch was created (ISO 8601, "" until known)
    created_at = traitlets.Unicode("").tag(sync=True)
    #: when the API expires the batch if unfinished (ISO 8601; the view counts down to it)
    expires_at = traitlets.Unicode("").tag(sync=True)
    #: when the batch reached its terminal status (ISO 8601, "" while it runs)
    ended_at = traitlets.Unicode("").tag(sync=True)
    #: items finished per minute, smoothed (None until one finishes)
    rate_per_min = traitlets.Float(None, allow_none=True).tag(sync=True)
    #: seconds until every item is finished, at the current rate (None when unknown)
    eta_s = traitlets.Float(None, allow_none=True).tag(sync=True)
    #: when the last poll answered (ISO 8601): the view's "updated N s ago" and its stale warning
    updated_at = traitlets.Unicode("").tag(sync=True)
    #: seconds until the next poll (the view's stale warning waits for 3 of these)
    interval_s = traitlets.Float(0.0).tag(sync=True)
    #: the watch itself: ``starting``, ``watching``, ``retrying``, ``done``, ``error`` or ``stopped``
    watch_state = traitlets.Unicode("starting").tag(sync=True)
    #: recent rates (items per minute), oldest first, for the sparkline
    history = traitlets.List(traitlets.Float(), default_value=[]).tag(sync=True)
    #: the counts and status shown are the last ones seen before the watch failed (the batch was
    #: deleted, the key refused...), not the batch as it is now; the view says "last known"
    last_known = traitlets.Bool(False).tag(sync=True)
    #: a cancel was asked for and the batch has not ended yet (the button shows "canceling…")
    cancel_requested = traitlets.Bool(False).tag(sync=True)
    #: the batch-completion notification per registered webhook endpoint: dicts of url, delivered
    #: (bool), attempts (int) and last_error (str or None); [] until the platform has sent it
    webhooks = traitlets.List(traitlets.Dict(), default_value=[]).tag(sync=True)
    #: what the batch used, one line (``Usage.describe()``: content hours of completed items, input /
    #: output tokens, items not billed); "" until ``usage()`` measured it once the batch had ended
    usage_line = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        batch_id: str | None = None,
        client: BatchClient | None = None,
        *,
        schedule: Schedule | None = None,
        poller: BatchPoller | None = None,
        created_items: Sequence[CreatedItem] | None = None,
        model: BatchWatch | None = None,
    ) -> None:
        self._owns_model = model is None  # a watch made here is closed with the widget
        if model is None:  # BatchWatch checks the id first: a bad one leaves nothing half-made
            model = BatchWatch(
                batch_id, client, schedule=schedule, poller=poller, created_items=created_items  # type: ignore[arg-type]
            )
        self._model = model
        self._sent_at: float | None = None  # client-clock time of the last message to the view
        super().__init__(batch_id=model.batch_id)
        model.add_listener(self._on_snapshot)
        self._on_snapshot(model.snapshot())

    # -- public -------------------------------------------------------------------------------

    @property
    def model(self) -> BatchWatch:
        """The watch this widget shows (its state, its actions)."""
        return self._model

    @property
    def batch(self) -> Batch | None:
        """The latest snapshot (``None`` until the first poll answered)."""
        return self._model.batch

    @property
    def poller(self) -> BatchPoller:
        return self._model.poller

    async def wait(self) -> Batch:
        """Wait, without blocking the kernel, until the batch ends; return the final snapshot.

        The watch tells its final snapshot again from this cell, and the widget pins its final
        summary into its displays from here, so nbclient / papermill runs capture it.
        """
        return await self._model.wait()

    def wait_blocking(self) -> Batch:
        """Blocking twin of :meth:`wait` for scripts; in a notebook the display pauses meanwhile."""
        return self._model.wait_blocking()

    async def cancel(self) -> Batch:
        """Ask the API to cancel the batch; the view shows "canceling…" until it is canceled."""
        return await self._model.cancel()

    def refresh(self) -> None:
        """Poll now instead of at the next scheduled time."""
        self._model.refresh()

    async def to_pandas(self, **kwargs: Any) -> pd.DataFrame:
        """The results so far as a DataFrame: one row per item, failures kept (see :meth:`BatchWatch.to_pandas`)."""
        return await self._model.to_pandas(**kwargs)

    async def usage(self, assets: Mapping[str, str] | None = None) -> Usage:
        """What the batch used (see :meth:`BatchWatch.usage`); once it has ended, the widget and its static
        summary show the line."""
        return await self._model.usage(assets)

    async def to_segments(self, **kwargs: Any) -> pd.DataFrame:
        """Time-based metadata as a long DataFrame: one row per segment, start and end in seconds."""
        return await self._model.to_segments(**kwargs)

    def close(self) -> None:
        """Stop this view; a watch made by the widget gives up its share of the polling with it.

        The view of a watch the user holds closes alone (the watch runs on; displaying it again
        makes a new view)."""
        model: BatchWatch | None = getattr(self, "_model", None)  # None when __init__ refused its input
        if model is not None:
            model.remove_listener(self._on_snapshot)
            forget_view(model, self)
            if self._owns_model:
                model.close()
        super().close()

    # -- display ------------------------------------------------------------------------------

    def summary_text(self) -> str:
        snap = self._model.snapshot()
        return summary_text(snap.update, usage=snap.usage)

    def summary_html(self) -> str:
        snap = self._model.snapshot()
        return summary_html(snap.update, usage=snap.usage)

    def _finished(self) -> bool:
        return self._model.finished

    def _summary(self, *, live: bool) -> tuple[str, str]:
        snap = self._model.snapshot()
        text = summary_text(snap.update, live=live, usage=snap.usage)
        return text, summary_html(snap.update, live=live, usage=snap.usage)

    # -- plumbing -----------------------------------------------------------------------------

    def _on_snapshot(self, snap: WatchSnapshot) -> None:
        """Project one snapshot onto the traits: one comm message when something shown changed.

        A poll that changed nothing the view shows (status, counts, timestamps, watch state,
        error) sends nothing: rate, ETA, history and interval are derived and ride along with
        the next change. The exception is a heartbeat of ``updated_at`` with ``interval_s``
        (and the ETA, so the view's countdown restarts from a fresh value): the view warns "no
        update for a while" once ``updated_at`` has not moved for ``max(3 * interval_s, 30 s)``
        (``js/widget.ts``, ``tick``, in browser time), judged on the interval it was last sent;
        so a heartbeat goes out when, skipping this poll, the next one could come later than two
        thirds of that (``2 * max(interval_s, 10 s)``) after the last message. Elapsed time is
        read on the poller's clock (real monotonic seconds, as the browser's; not ``updated_at``,
        which follows the server's clock). All changes of one poll go in one message
        (``_pushing``), which also counts the revision that the view's pulls compare.
        """
        update = snap.update
        batch = update.batch
        shown: dict[str, Any] = {
            "watch_state": update.state, "error": update.error, "last_known": update.last_known,
            "cancel_requested": snap.cancel_requested, "usage_line": snap.usage,
            "peek_rows": rows_to_trait(snap.peek),
        }  # fmt: skip
        if batch is not None:
            shown.update(
                status=batch.status.value,
                analysis_mode=batch.analysis_mode or "",
                total=batch.total_items,
                queued=batch.queued_items,
                processing=batch.processing_items,
                ready=batch.ready_items,
                failed=batch.failed_items,
                canceled=batch.canceled_items,
                created_at=_iso(batch.created_at),
                expires_at=_iso(batch.expires_at),
                ended_at=_iso(batch.ended_at),
                webhooks=[
                    {"url": w.url, "delivered": w.delivered, "attempts": w.attempts, "last_error": w.last_error}
                    for w in batch.webhooks
                ],
            )
        changed = any(getattr(self, name) != value for name, value in shown.items())
        now = self._model.client.clock.monotonic()
        sent_at = self._sent_at
        fresh = update.updated_at is not None and _iso(update.updated_at) != self.updated_at
        if changed or (
            fresh
            # the next poll is due update.interval_s from now; the view knows self.interval_s
            and (sent_at is None or now - sent_at + update.interval_s >= 2 * max(self.interval_s, 10.0))
        ):
            self._push(update, shown, fresh=fresh, changed=changed, now=now)
        if snap.finished:
            # pinned again on every final snapshot: the one that BatchWatch.wait() tells comes from
            # the waiting cell, which nbclient / papermill keep (they drop the background task's)
            self.finalize(force=True)

    def _push(self, update: PollUpdate, shown: dict[str, Any], *, fresh: bool, changed: bool, now: float) -> None:
        """One message to the view: what is shown, and the derived values riding along."""
        with self._pushing():
            for name, value in shown.items():
                setattr(self, name, value)
            self.rate_per_min = update.rate_per_min
            self.eta_s = update.eta_s
            if fresh:
                assert update.updated_at is not None
                self.updated_at = _iso(update.updated_at)
                self._sent_at = now
            self.interval_s = float(update.interval_s)
            if changed:
                self.history = list(update.history)

    async def _peek_rows(self, n: int) -> list[PeekRow]:
        return await self._model.peek_rows(n)

    def _on_action(self, kind: str) -> bool:
        if kind == "refresh":
            self._model.refresh()
        elif kind == "cancel":
            self._spawn_action(self.cancel, "Cancel")
        else:
            return False
        return True


def watch(
    batch_id: str,
    client: BatchClient | None = None,
    *,
    display: bool = True,
    schedule: Schedule | None = None,
    created_items: Sequence[CreatedItem] | None = None,
) -> BatchWatch:
    """Watch ``batch_id``: show its live widget and return the :class:`BatchWatch` at once.

    Polling runs on the kernel's event loop, so the notebook stays usable. Re-running the cell
    shares the one poller per batch. ``await w.wait()`` waits without blocking the display;
    ``w.cancel()``, ``w.refresh()``, ``w.to_pandas()``, ``w.to_segments()``, ``w.peek()`` and
    ``w.summary_text()`` are the watch's. Displaying ``w`` (a cell's last line, in Jupyter,
    Colab, VS Code or marimo) shows the widget again, or its static summary once the batch has
    ended; ``w.widget`` is the widget itself (its traits). ``w.close()`` stops watching.

    Parameters
    ----------
    batch_id : str
        The batch to watch (24 hex characters).
    client : BatchClient, optional
        Defaults to one client per process built from ``TWELVELABS_API_KEY``.
    display : bool
        Display the widget now (in IPython). Pass False to display it yourself later (``w`` as a
        cell's output; marimo shows only a cell's output, so there it is the way).
    schedule : Schedule, optional
        When to poll (see :class:`~batch_widget.poller.Schedule`).
    created_items : sequence of CreatedItem, optional
        The ``items`` of the create response, so ``to_pandas()`` keeps request order.
    """
    model = BatchWatch(batch_id, client, schedule=schedule, created_items=created_items)
    if display:
        with contextlib.suppress(ImportError):
            from IPython import get_ipython

            if get_ipython() is not None:
                model._ipython_display_()
    return model


register_view(BatchWatch, lambda model: BatchWidget(model=model))
