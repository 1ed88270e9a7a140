"""One polling loop per client: a single list request answers for every batch watched through it.

Each :class:`~batch_widget.poller.BatchPoller` (a widget's, a job's, a bare one) subscribes to
the :class:`AccountPoller` of its client. Each cycle the account poller asks
``GET /analyze/batches`` without a status filter, newest first, 50 a page, and stops at the
first page by which every watched batch was seen (or that reaches past the oldest of them): the
watched batches are almost always the account's newest, so that is one request. An ended batch
is in that list with its final status and counts, so its end costs nothing more; only a watched
batch missing from the list (deleted, or never this key's) costs one ``get``, whose 404 ends that
watch.

Each watch keeps its own :class:`~batch_widget.poller.Schedule`, estimator and listeners: it
says when it next needs a poll (``due``); the cycle wakes at the soonest ``due`` of all. With a
single watch, or when the list answers a 4xx, the cycle falls back to one ``get`` per due watch
(as cheap as the list with one watch, and its faults and errors are the batch's own). A
transient failure of the list (5xx, 429, transport) is every watch's failure: each shows
"retrying in N s" on its own schedule. It knows nothing of the poller module (that module
imports this one): watches are anything with the :class:`Watch` methods.

Lifecycle: an account poller belongs to one client object (an ``httpx`` client belongs to one
event loop, so two client objects never share a cycle, and two keys never do). It holds its
client weakly: only its running task (alive while a watch is subscribed) keeps the client, so a
client with no watch left is freed with its account poller. If that task is cancelled or
crashes, every watch still subscribed ends with the error, so no ``wait()`` is left hanging.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import datetime
from typing import Protocol

from ._aio import sleep_or_wake
from .client import NO_RETRY, BatchClient
from .errors import APIError, BatchWidgetError, TransportError
from .models import Batch

__all__ = ["LIST_PAGE_LIMIT", "AccountPoller", "PollingStopped", "Watch"]

log = logging.getLogger("batch_widget.account_poller")

LIST_PAGE_LIMIT = 50  # the API's maximum: one page holds the newest 50 batches
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


class PollingStopped(BatchWidgetError):
    """The task that polled this batch was cancelled (or its event loop is shutting down)."""


_POLLERS: weakref.WeakKeyDictionary[BatchClient, AccountPoller] = weakref.WeakKeyDictionary()


class AccountPoller:
    """The one polling loop of a client: every watch of that client is served by its cycles.

    Get it with :meth:`of`; watches :meth:`subscribe` and :meth:`unsubscribe` themselves and
    call :meth:`wake` to be polled now. Coalescing is per client object: two clients (two keys,
    or two loops) never share a cycle.
    """

    def __init__(self, client: BatchClient) -> None:
        self._client = weakref.ref(client)  # strong only in the running task: freed with the client
        self.identity = client.identity
        """``(base_url, key fingerprint)`` of its client: who may see what it lists."""
        self.cycles = 0
        """Cycles run so far (one list request, or one get per due watch)."""
        self._watches: dict[str, list[Watch]] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._created: dict[str, datetime] = {}  # each watched batch's created_at, once seen

    @property
    def client(self) -> BatchClient:
        """Its client (alive while anything watches through it)."""
        client = self._client()
        if client is None:
            raise BatchWidgetError("the client of this account poller was closed and freed")
        return client

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
            client = self.client
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(
                self._run(client), name=f"batch_widget account poll {client.base_url}"
            )
            self._task.add_done_callback(self._ended)
        self.wake()

    def unsubscribe(self, watch: Watch) -> None:
        """Stop serving ``watch``; the loop ends when no watch is left."""
        group = self._watches.get(watch.batch_id, [])
        if watch in group:
            group.remove(watch)
        if not group:
            self._watches.pop(watch.batch_id, None)
            self._created.pop(watch.batch_id, None)
        if not self._watches:
            self.wake()  # the loop sees nobody is left and ends

    def wake(self) -> None:
        """Run a cycle now (a watch was added, or asked to be refreshed)."""
        if self._wake is not None:
            self._wake.set()

    # -- the loop -----------------------------------------------------------------------------

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The task ended: if it was cancelled or crashed, every watch left ends with that error."""
        if task.cancelled():
            error: BaseException = PollingStopped(
                "polling stopped: the background task that polled this batch was cancelled; watch it again to resume"
            )
        else:
            exc = task.exception()  # retrieved here, so asyncio does not log it again
            if exc is None:
                return
            error = exc
        for watch in self.watches:
            try:
                watch.fatal(error)
            except Exception:  # one broken watch must not keep the others waiting
                log.exception("watch of batch %s could not take the end of polling", watch.batch_id)

    async def _run(self, client: BatchClient) -> None:
        # ``client`` is held here, for as long as the loop runs (the poller itself holds it weakly)
        clock = client.clock
        assert self._wake is not None
        while self._watches:
            now = clock.monotonic()
            soonest = min(w.due for w in self.watches)
            if soonest > now:  # a wake (a new watch, a refresh) ends the sleep: look again
                await sleep_or_wake(soonest - now, self._wake, clock.sleep)
                continue
            due = [w for w in self.watches if w.due <= now + EARLY_SHARE * w.interval]
            try:
                await self._cycle(client, due)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must end the watches visibly (``_ended``), never kill the kernel
                log.exception("account poller of %s crashed", client.base_url)
                raise

    async def _cycle(self, client: BatchClient, due: list[Watch]) -> None:
        self.cycles += 1
        if len(self._watches) < 2:
            await self._get_each(client, due)
            return
        try:
            listed = await self._listed(client)
        except (APIError, TransportError) as error:
            if error.retryable:
                for watch in self.watches:
                    watch.transient(error)
                return
            # a 4xx on the list (a proxy that refuses it, a key without list rights): the
            # batches' own endpoint may still answer, so poll each due batch on its own
            log.info("list of batches refused (%s): one get per due batch this cycle", error)
            await self._get_each(client, due)
            return
        except BatchWidgetError as error:  # e.g. a body that is not a page: fall back likewise
            log.info("list of batches unreadable (%s): one get per due batch this cycle", error)
            await self._get_each(client, due)
            return
        now = client.clock.monotonic()
        for batch_id in list(self._watches):
            batch = listed.get(batch_id)
            if batch is None:
                continue
            self._take(batch, now=now, due=due)
        # not in the list: deleted since the last cycle (or never this key's). One get confirms it
        await asyncio.gather(*(self._get(client, b) for b in list(self._watches) if b not in listed))

    async def _listed(self, client: BatchClient) -> dict[str, Batch]:
        """The watched batches as the account's list shows them, newest first, every status.

        Pages are followed only until every watched batch was seen, or past the page that
        reaches back to the oldest of them (by ``created_at``, once known): usually one request.
        """
        wanted = set(self._watches)
        found: dict[str, Batch] = {}
        page = 1
        while True:
            result = await client.list_page(page, page_limit=LIST_PAGE_LIMIT, retry=NO_RETRY)
            for batch in result.batches:
                if batch.batch_id in wanted:
                    found.setdefault(batch.batch_id, batch)
            if wanted <= found.keys() or page >= result.total_page or not result.batches:
                return found
            missing = wanted - found.keys()
            last = result.batches[-1].created_at
            if last is not None and all(b in self._created and self._created[b] > last for b in missing):
                return found  # this page already reaches back past them: they are gone
            page += 1

    def _take(self, batch: Batch, *, now: float, due: list[Watch]) -> None:
        if batch.created_at is not None:
            self._created[batch.batch_id] = batch.created_at
        for watch in list(self._watches.get(batch.batch_id, ())):
            watch.take(batch, now=now, scheduled=watch in due)

    async def _get_each(self, client: BatchClient, due: list[Watch]) -> None:
        """The fallback: one get per due batch, at once."""
        await asyncio.gather(*(self._get(client, b) for b in dict.fromkeys(w.batch_id for w in due)))

    async def _get(self, client: BatchClient, batch_id: str) -> None:
        """Poll one batch on its own; its answer (or error) goes to every watch of that batch."""
        try:
            batch = await client.get(batch_id, retry=NO_RETRY)
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
        now = client.clock.monotonic()
        watches = self._watches.get(batch_id, ())
        self._take(batch, now=now, due=list(watches))
