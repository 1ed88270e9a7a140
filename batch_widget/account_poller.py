"""One polling loop per client: a single list request answers for every batch watched through it.

Each :class:`~batch_widget.poller.BatchPoller` (a widget's, a job's, a bare one) subscribes to
the :class:`AccountPoller` of its client. Each cycle the account poller asks
``GET /analyze/batches?status=pending&status=processing&status=canceling`` (an account has at
most 5 active batches, so one page of 50 holds them all; further pages are followed) and hands
every watch its batch's snapshot from that one answer. A watched batch missing from the active
list has ended (or was deleted): one ``get`` per such batch confirms its final state or its 404.

Each watch keeps its own :class:`~batch_widget.poller.Schedule`, estimator and listeners: it
says when it next needs a poll (``due``); the cycle wakes at the soonest ``due`` of all. With a
single watch, or when the list answers a 4xx, the cycle falls back to one ``get`` per due watch
(as cheap as the list with one watch, and its faults and errors are the batch's own). A
transient failure of the list (5xx, 429, transport) is every watch's failure: each shows
"retrying in N s" on its own schedule. It knows nothing of the poller module (that module
imports this one): watches are anything with the :class:`Watch` methods.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Protocol

from ._aio import sleep_or_wake
from .account import ACTIVE_STATUSES
from .client import NO_RETRY, BatchClient
from .errors import APIError, BatchWidgetError, TransportError
from .models import Batch

__all__ = ["LIST_PAGE_LIMIT", "AccountPoller", "Watch"]

log = logging.getLogger("batch_widget.account_poller")

LIST_PAGE_LIMIT = 50  # the API's maximum: one page holds an account's 5 active batches
EARLY_SHARE = 0.2  # a watch due within 20 % of its interval polls with this cycle (aligns schedules)


class Watch(Protocol):
    """What the account poller needs of one watched batch (a ``BatchPoller``)."""

    @property
    def batch_id(self) -> str: ...

    @property
    def due(self) -> float:
        """Client-clock (monotonic) time at which this watch next needs a fresh status."""
        ...

    @property
    def interval(self) -> float:
        """The current scheduled interval, seconds (how early it may be polled)."""
        ...

    def take(self, batch: Batch, *, now: float, scheduled: bool) -> None:
        """A fresh snapshot; ``scheduled`` when this cycle was this watch's own poll."""
        ...

    def transient(self, error: APIError | TransportError) -> None:
        """The status request failed but may succeed later: show it and schedule a retry."""
        ...

    def fatal(self, error: BaseException) -> None:
        """The watch cannot go on (a 404, a bad key, a bug): end it with this error."""
        ...


_POLLERS: weakref.WeakKeyDictionary[BatchClient, AccountPoller] = weakref.WeakKeyDictionary()


class AccountPoller:
    """The one polling loop of a client: every watch of that client is served by its cycles.

    Get it with :meth:`of`; watches :meth:`subscribe` and :meth:`unsubscribe` themselves and
    call :meth:`wake` to be polled now. Coalescing is per client object: two clients (two keys,
    or two loops) never share a cycle.
    """

    def __init__(self, client: BatchClient) -> None:
        self.client = client
        self.cycles = 0
        """Cycles run so far (one list request, or one get per due watch)."""
        self._watches: dict[str, list[Watch]] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None

    @classmethod
    def of(cls, client: BatchClient) -> AccountPoller:
        """The account poller of ``client`` (made on first use, gone with the client)."""
        poller = _POLLERS.get(client)
        if poller is None:
            poller = _POLLERS[client] = cls(client)
        return poller

    @property
    def watches(self) -> list[Watch]:
        return [w for group in self._watches.values() for w in group]

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def subscribe(self, watch: Watch) -> None:
        """Serve ``watch`` from the next cycle on; starts the loop on the running event loop."""
        group = self._watches.setdefault(watch.batch_id, [])
        if watch not in group:
            group.append(watch)
        if not self.running:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"batch_widget account poll {self.client.base_url}"
            )
        self.wake()

    def unsubscribe(self, watch: Watch) -> None:
        """Stop serving ``watch``; the loop ends when no watch is left."""
        group = self._watches.get(watch.batch_id, [])
        if watch in group:
            group.remove(watch)
        if not group:
            self._watches.pop(watch.batch_id, None)
        if not self._watches:
            self.wake()  # the loop sees nobody is left and ends

    def wake(self) -> None:
        """Run a cycle now (a watch was added, or asked to be refreshed)."""
        if self._wake is not None:
            self._wake.set()

    # -- the loop -----------------------------------------------------------------------------

    async def _run(self) -> None:
        clock = self.client.clock
        assert self._wake is not None
        while self._watches:
            now = clock.monotonic()
            soonest = min(w.due for w in self.watches)
            if soonest > now:  # a wake (a new watch, a refresh) ends the sleep: look again
                await sleep_or_wake(soonest - now, self._wake, clock.sleep)
                continue
            due = [w for w in self.watches if w.due <= now + EARLY_SHARE * w.interval]
            try:
                await self._cycle(due)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a bug must end the watches visibly, never kill the kernel
                log.exception("account poller of %s crashed", self.client.base_url)
                for watch in self.watches:
                    watch.fatal(error)
                return

    async def _cycle(self, due: list[Watch]) -> None:
        self.cycles += 1
        if len(self._watches) < 2:
            await self._get_each(due)
            return
        try:
            active = await self._active()
        except (APIError, TransportError) as error:
            if error.retryable:
                for watch in self.watches:
                    watch.transient(error)
                return
            # a 4xx on the list (a proxy that refuses it, a key without list rights): the
            # batches' own endpoint may still answer, so poll each due batch on its own
            log.info("list of active batches refused (%s): one get per due batch this cycle", error)
            await self._get_each(due)
            return
        except BatchWidgetError as error:  # e.g. a body that is not a page: fall back likewise
            log.info("list of active batches unreadable (%s): one get per due batch this cycle", error)
            await self._get_each(due)
            return
        now = self.client.clock.monotonic()
        for batch_id in list(self._watches):
            batch = active.get(batch_id)
            if batch is None:
                continue
            for watch in list(self._watches.get(batch_id, ())):
                watch.take(batch, now=now, scheduled=watch in due)
        # not in the active list: ended or deleted since the last cycle. One get confirms it
        await asyncio.gather(*(self._get(batch_id) for batch_id in list(self._watches) if batch_id not in active))

    async def _active(self) -> dict[str, Batch]:
        """Every active batch of the account (one request, or one per page past the first)."""
        active: dict[str, Batch] = {}
        page = 1
        while True:
            result = await self.client.list_page(
                page, page_limit=LIST_PAGE_LIMIT, status=ACTIVE_STATUSES, retry=NO_RETRY
            )
            for batch in result.batches:
                active.setdefault(batch.batch_id, batch)
            if page >= result.total_page or not result.batches:
                return active
            page += 1

    async def _get_each(self, due: list[Watch]) -> None:
        """The fallback: one get per due batch, at once."""
        await asyncio.gather(*(self._get(batch_id) for batch_id in dict.fromkeys(w.batch_id for w in due)))

    async def _get(self, batch_id: str) -> None:
        """Poll one batch on its own; its answer (or error) goes to every watch of that batch."""
        try:
            batch = await self.client.get(batch_id, retry=NO_RETRY)
        except (APIError, TransportError) as error:
            for w in list(self._watches.get(batch_id, ())):
                if error.retryable:
                    w.transient(error)
                else:
                    w.fatal(error)
            return
        except BatchWidgetError as error:
            for w in list(self._watches.get(batch_id, ())):
                w.fatal(error)
            return
        now = self.client.clock.monotonic()
        for w in list(self._watches.get(batch_id, ())):
            w.take(batch, now=now, scheduled=True)
