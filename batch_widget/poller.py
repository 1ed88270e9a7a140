"""Watch one batch and hand each new snapshot to listeners.

A :class:`BatchPoller` is one watch: its :class:`Schedule` says when it next needs a fresh
status, its :class:`ThroughputEstimator` the rate and ETA, its listeners get a ``PollUpdate``
after every answer. The requests themselves are made by its client's
:class:`~batch_widget.account_poller.AccountPoller`, an asyncio task on the loop that started it
(in a notebook, the kernel's own), which serves every watch of that client with one list
request per cycle. It knows nothing of widgets: listeners do what they like with an update.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from ._aio import loop_running, run_in_thread
from .account_poller import AccountPoller
from .client import BatchClient, validate_batch_id
from .errors import APIError, BatchWidgetError, TransportError, describe_error
from .models import Batch, BatchStatus

__all__ = ["BatchPoller", "PollUpdate", "Schedule", "ThroughputEstimator", "WatchState"]

log = logging.getLogger("batch_widget.poller")

WatchState = Literal["starting", "watching", "retrying", "done", "error", "stopped"]


@dataclass(frozen=True)
class Schedule:
    """When to poll next.

    The interval follows the batch's age (since its ``created_at``, on the server's clock; a
    watch attached to a 6-hour-old batch starts where a watch from its creation would be by
    then, not at the floor): while counts change it is
    ``age_fraction`` of the age (4 %: a fresh bar); while nothing changes it backs off by
    ``idle_growth`` per poll, but never beyond ``idle_fraction`` of the age (8 %), so that any
    change is shown within 8 % of the batch's elapsed time (the goal is 10 %). Always within
    ``[min_interval, max_interval]`` and never sooner than a server's ``Retry-After``.

    When the end is near (``canceling``; no queued item left while some still process; or the
    ETA within two intervals) it drops towards the tail: the batch cannot end before every item
    left has finished, so with ``n`` items left it polls every ``tail_per_item * n`` seconds or
    half the ETA, whichever is sooner (if sooner than the usual interval, and never under
    ``tail_interval``), and every ``tail_interval`` once one is left, so the terminal status is seen
    within that many seconds of happening (median half of it) without polling every 5 s through
    the whole last wave (which made five batches watched together cost twice one alone).

    The trade-off, measured by ``benchmarks/bench_polling.py`` against a fixed 5 s poll (the
    official SDK's waiter): over a 1-hour batch a fifth of its requests, over an 8-hour one a
    tenth, for a terminal status seen about as fast (median ~3 s, p95 < 10 s) and every change of counts
    after the first minute seen within 8 % of the batch's age. The cost of a long batch is
    bounded by ``max_interval`` (one request a minute) plus the tail (one every
    ``tail_interval`` seconds while the last items process); a 3-minute batch costs about as
    many requests as the baseline. Only the very first seconds miss the 10 %-of-age freshness:
    a change 5 s after creation would need sub-second polling. ``min_interval`` is 3 s, not 2,
    so that 100 batches watched from one kernel stay under 10 % of a core even in their first
    minute, when every one of them polls at the floor (``benchmarks/bench_kernel.py``).
    """

    min_interval: float = 3.0
    max_interval: float = 60.0
    age_fraction: float = 0.04  # poll every 4 % of the batch's age while counts change...
    idle_growth: float = 1.5  # ...back off by this factor while they don't...
    idle_fraction: float = 0.08  # ...but never beyond 8 % of it: a change is seen within 8 % of age
    tail_interval: float = 5.0  # when the end is near (no queued items, ETA close, canceling)...
    tail_per_item: float = 7.5  # ...times the items left while more than one is (the last one: tail_interval)
    error_base: float = 2.0  # first retry after a transient error, doubling up to max_interval

    def __post_init__(self) -> None:
        if not 0 < self.min_interval <= self.max_interval:
            raise ValueError(
                f"Schedule needs 0 < min_interval <= max_interval, got {self.min_interval!r} "
                f"and {self.max_interval!r}."
            )

    def _clamp(self, interval: float) -> float:
        return min(self.max_interval, max(self.min_interval, interval))

    def next_interval(
        self,
        *,
        previous: float,
        changed: bool,
        age: float,
        batch: Batch,
        eta_s: float | None,
    ) -> float:
        """Seconds until the next poll, after one that saw ``batch`` at ``age`` seconds old."""
        age = max(0.0, age)
        base = self.age_fraction * age
        if changed:
            interval = base
        else:  # back off while nothing changes, but never past idle_fraction of the age
            interval = min(max(base, previous * self.idle_growth), max(base, self.idle_fraction * age))
        interval = self._clamp(interval)
        near_end = batch.status in (BatchStatus.CANCELING,) or (
            batch.queued_items == 0 and batch.processing_items > 0
        )
        # compare the ETA with the interval actually slept (clamped), or a long batch would
        # drop to the tail hours early (2 x 4 % of its age can exceed the whole remaining time)
        if eta_s is not None:
            near_end = near_end or eta_s < 2 * interval
        if near_end:
            left = batch.queued_items + batch.processing_items
            tail = self.tail_interval if left <= 1 else self.tail_per_item * left
            if eta_s is not None and left > 1:  # many items finishing fast: the ETA is the better guide
                tail = min(tail, max(self.tail_interval, eta_s / 2))
            interval = min(interval, max(self.min_interval, tail))
        return interval

    def error_interval(self, failures: int, retry_after: float | None) -> float:
        """Seconds until the retry after ``failures`` transient errors in a row."""
        delay = min(self.max_interval, self.error_base * 2.0 ** (failures - 1))
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay


class ThroughputEstimator:
    """Smoothed items-per-minute and ETA from finished items.

    TwelveLabs counts move in jumps and stall: the rate is the slope over a sliding window of
    recent samples (at least ``window`` seconds, or a fifth of the time watched), blended with
    the average since the watch began, so one jump or one stall does not swing the ETA wildly.
    """

    def __init__(self, window: float = 300.0, history: int = 40) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()
        self._first: tuple[float, int] | None = None
        self.history: deque[float] = deque(maxlen=history)
        self.rate_per_min: float | None = None

    def add(self, t: float, done: int) -> None:
        if self._first is None:
            self._first = (t, done)
        if self._samples and done < self._samples[-1][1]:
            # counts went backwards (a recount): start over from here
            self._samples.clear()
            self._first = (t, done)
        self._samples.append((t, done))
        span = max(self.window, (t - self._first[0]) / 5)
        while len(self._samples) > 2 and t - self._samples[1][0] >= span:
            self._samples.popleft()
        self.rate_per_min = self._rate(t, done)
        if self.rate_per_min is not None:
            self.history.append(round(self.rate_per_min, 3))

    def _rate(self, t: float, done: int) -> float | None:
        assert self._first is not None
        t0, d0 = self._first
        if done == d0 or t <= t0:
            return None  # nothing finished since the watch began: no rate yet
        overall = (done - d0) / (t - t0)
        ts, ds = self._samples[0]
        recent = (done - ds) / (t - ts) if t > ts else overall
        return 60.0 * (0.5 * overall + 0.5 * recent)

    def eta_seconds(self, remaining: int) -> float | None:
        if remaining <= 0:
            return 0.0
        if not self.rate_per_min:
            return None
        return remaining / self.rate_per_min * 60.0


@dataclass(frozen=True)
class PollUpdate:
    """What the poller knows after one poll: the snapshot and how the watch is going."""

    batch_id: str
    batch: Batch | None
    state: WatchState
    error: str = ""
    rate_per_min: float | None = None
    eta_s: float | None = None
    interval_s: float = 0.0
    updated_at: datetime | None = None
    history: tuple[float, ...] = field(default=())
    exception: BaseException | None = field(default=None, compare=False, repr=False)
    last_known: bool = False
    """``batch`` is the last snapshot seen before the watch failed, not the batch as it is now
    (deleted, say): views show its counts as last known, never as current."""

    @property
    def finished(self) -> bool:
        """The watch has ended: the batch ended, a fatal error, or polling was stopped."""
        return self.state in ("done", "error", "stopped")


Listener = Callable[[PollUpdate], None]

#: the shared pollers by (client identity, batch id): held weakly, a poller lives as long as a
#: watch (a widget, a job, a waiting call) or its running account poller holds it
_REGISTRY: weakref.WeakValueDictionary[tuple[tuple[str, str], str], BatchPoller] = weakref.WeakValueDictionary()
_REGISTRY_LOCK = threading.Lock()


class BatchPoller:
    """Watches one batch until it reaches a terminal status.

    Use :meth:`shared` to get the one poller for a batch in this process (a re-run cell shares
    it); listeners receive a :class:`PollUpdate` after every poll. Time comes from the client's
    :class:`~batch_widget.clock.Clock`, so tests can live through hours of a batch in seconds.

    While running it is subscribed to its client's
    :class:`~batch_widget.account_poller.AccountPoller`, which polls for every watch of that
    client at once and calls :meth:`take`, :meth:`transient` or :meth:`fatal` with the answer.
    A snapshot that arrives before this watch was due (another watch's cycle) is as fresh as its
    own poll: it is shown, feeds the estimator and advances the schedule.
    """

    def __init__(
        self,
        client: BatchClient,
        batch_id: str,
        *,
        schedule: Schedule | None = None,
    ) -> None:
        self.client = client
        self.batch_id = validate_batch_id(batch_id)
        self.schedule = schedule or Schedule()
        self._listeners: list[Listener] = []
        self._queues: list[asyncio.Queue[PollUpdate | None]] = []
        self._account: AccountPoller | None = None  # while subscribed (running)
        self._done: asyncio.Future[Batch] | None = None
        self._users = 0
        self.estimator = ThroughputEstimator()
        self.polls = 0
        self.update = PollUpdate(batch_id=self.batch_id, batch=None, state="starting")
        self.due = 0.0
        """Client-clock time at which this watch next needs a fresh status."""
        self.interval = self.schedule.min_interval
        """The interval the schedule chose at this watch's last own poll."""
        self._failures = 0
        self._started = self._polled_at = 0.0  # client-clock times: start, this watch's last own poll
        self._first_seen: tuple[float, datetime] | None = None  # (our time, server time) at the first answer
        self._polled_counts: tuple[object, ...] | None = None  # what that poll saw

    # -- sharing ------------------------------------------------------------------------------

    @classmethod
    def shared(cls, client: BatchClient, batch_id: str, **kwargs: object) -> BatchPoller:
        """The running poller for ``batch_id`` seen through this client's key and API, or a new one.

        Keyed by ``client.identity`` (base URL and key fingerprint): a watch through one key
        never shows what only another key may read. The id is compared lowercased.
        """
        key = (client.identity, validate_batch_id(batch_id))
        with _REGISTRY_LOCK:
            poller = _REGISTRY.get(key)
            if poller is None or poller.stopped:
                poller = cls(client, batch_id, **kwargs)  # type: ignore[arg-type]
                _REGISTRY[key] = poller
            return poller

    def acquire(self) -> None:
        """Count one more user (a widget); starts polling if needed."""
        self._users += 1
        self.start()

    def release(self) -> None:
        """One user fewer; the last one out stops the polling."""
        self._users = max(0, self._users - 1)
        if self._users == 0:
            self.stop()

    # -- listening ----------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    async def updates(self) -> AsyncIterator[PollUpdate]:
        """Every update from now until the watch ends (starting with the latest one)."""
        queue: asyncio.Queue[PollUpdate | None] = asyncio.Queue()
        self._queues.append(queue)
        queue.put_nowait(self.update)
        if self.finished:
            queue.put_nowait(None)
        try:
            while (item := await queue.get()) is not None:
                yield item
        finally:
            with contextlib.suppress(ValueError):
                self._queues.remove(queue)

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def batch(self) -> Batch | None:
        return self.update.batch

    @property
    def running(self) -> bool:
        return self._account is not None

    @property
    def finished(self) -> bool:
        return self.update.finished

    @property
    def stopped(self) -> bool:
        return self.update.state == "stopped" or (self.update.state == "error")

    def start(self) -> None:
        """Start polling on the running event loop (no-op when already running or finished)."""
        if self.running or self.update.state in ("done", "error") or not loop_running():
            return  # without a running loop (a plain script) wait() starts it instead
        loop = asyncio.get_running_loop()
        if self._done is None or self._done.done() or self._done.get_loop() is not loop:
            self._done = loop.create_future()
        if self.update.state == "stopped":
            self._publish(replace(self.update, state="starting", error=""))
        self.due = self._started = self._polled_at = self.client.clock.monotonic()  # first poll: now
        self._account = AccountPoller.of(self.client)
        self._account.subscribe(self)

    def stop(self) -> None:
        """Stop polling; ``wait()`` then returns the last snapshot."""
        self._unsubscribe()  # stopped from now on
        if not self.finished:
            self._publish(replace(self.update, state="stopped"))
        self._finish()

    def refresh(self) -> None:
        """Poll now instead of at the next scheduled time."""
        if self._account is not None:
            self.due = self.client.clock.monotonic()
            self._account.wake()

    async def wait(self) -> Batch:
        """Wait, without blocking the event loop, until the batch ends; return the final snapshot.

        Raises the fatal error (e.g. ``NotFoundError``, ``AuthenticationError``) if the watch
        ended on one.
        """
        if self._done is None:  # never started: start now (after stop(), return the last snapshot)
            self.start()
        assert self._done is not None
        return await asyncio.shield(self._done)

    def wait_blocking(self) -> Batch:
        """Block the calling thread until the batch ends (for scripts).

        In a notebook prefer ``await poller.wait()``: while this blocks, the kernel cannot run
        anything else, so every live display pauses until it returns.
        """

        async def run() -> Batch:
            async with self.client.clone() as client:
                return await BatchPoller(client, self.batch_id, schedule=self.schedule).wait()

        return run_in_thread(
            run,
            f"batch_widget wait {self.batch_id}",
            warn_in_loop="wait_blocking() blocks the kernel: live widgets pause until the batch ends. "
            "Use `await w.wait()` in a notebook to keep them updating.",
        )

    # -- answers from the account poller -----------------------------------------------------

    def take(self, batch: Batch, *, now: float, scheduled: bool) -> None:
        """A fresh snapshot of this batch, at client-clock time ``now``.

        ``scheduled``: this watch was due (its own poll) rather than served by another watch's
        cycle. Either way the snapshot is fresh, so the schedule advances from it: the next poll
        is one interval after this one. Freshness is kept (this watch saw the batch now), and
        watches served together stay together: five batches cost about one's cycles, not the
        union of five schedules.
        """
        self.polls += 1
        self._failures = 0
        counts = (batch.status, batch.total_items, *batch.counts.values())
        self.estimator.add(now, batch.done_items)
        remaining = max(0, batch.total_items - batch.done_items)
        eta = None if batch.is_terminal else self.estimator.eta_seconds(remaining)
        server_now = self.client.server_now()
        # the schedule follows the batch's age, not the watch's: attaching late starts late. The
        # age is in the server's seconds; a server whose clock runs faster than ours (a sped-up
        # simulator) would stretch every interval, so it is converted to our seconds
        if self._first_seen is None:
            self._first_seen = (now, server_now)
        if batch.created_at:
            age = (server_now - batch.created_at).total_seconds() / self._server_rate(now, server_now)
        else:
            age = now - self._started
        interval = self.schedule.next_interval(
            previous=self.interval, changed=counts != self._polled_counts, age=age, batch=batch, eta_s=eta
        )
        self.interval, self._polled_at, self._polled_counts = interval, now, counts
        self.due = now + interval
        self._publish(
            PollUpdate(
                batch_id=self.batch_id,
                batch=batch,
                state="done" if batch.is_terminal else "watching",
                rate_per_min=self.estimator.rate_per_min,
                eta_s=eta,
                interval_s=max(0.0, self.due - now),
                # on the server's clock, so the view's elapsed time and expiry countdown
                # agree with the API's timestamps even when the local clock is off
                updated_at=server_now,
                history=tuple(self.estimator.history),
            )
        )
        if batch.is_terminal:
            self._unsubscribe()
            self._finish()

    def _server_rate(self, now: float, server_now: datetime) -> float:
        """Server seconds per second of ours: 1 for a real API; a simulator's speed when sped up."""
        assert self._first_seen is not None
        mono0, server0 = self._first_seen
        if now - mono0 < 2.0:
            return 1.0  # too short to tell (the Date header counts whole seconds)
        rate = (server_now - server0).total_seconds() / (now - mono0)
        # a real server's clock, read in whole seconds, is at most 1.5x ours over 2 s
        return rate if rate > 2.0 else 1.0

    def transient(self, error: APIError | TransportError) -> None:
        """The status request failed and may succeed later: show it, retry on the error schedule."""
        self.polls += 1
        self._failures += 1
        retry_after = error.retry_after if isinstance(error, APIError) else None
        delay = self.schedule.error_interval(self._failures, retry_after)
        self.due = self.client.clock.monotonic() + delay
        self._publish(
            replace(
                self.update,
                state="retrying",
                error=f"{describe_error(error)}; retrying in {delay:.0f} s (attempt {self._failures + 1})",
                interval_s=delay,
                exception=error,
            )
        )

    def fatal(self, error: BaseException) -> None:
        """The watch cannot go on (a 404, a bad key, a bug): it ends with this error."""
        self.polls += 1
        self._fail(error)

    def _unsubscribe(self) -> None:
        if self._account is not None:
            self._account.unsubscribe(self)
            self._account = None

    def _fail(self, error: BaseException) -> None:
        self._unsubscribe()
        batch = self.update.batch
        last_known = batch is not None and not batch.is_terminal  # a snapshot of a batch that ran on
        self._publish(
            replace(self.update, state="error", error=describe_error(error), exception=error, last_known=last_known)
        )
        self._finish(error)

    def _finish(self, error: BaseException | None = None) -> None:
        if self._done is not None and not self._done.done():
            if error is not None:
                self._done.set_exception(error)
            elif self.update.batch is not None:
                self._done.set_result(self.update.batch)
            else:
                self._done.set_exception(
                    BatchWidgetError(f"the watch of batch {self.batch_id} stopped before any status arrived")
                )
            # retrieve it once so asyncio does not log "exception was never retrieved"
            self._done.exception()
        for queue in self._queues:
            queue.put_nowait(None)

    def _publish(self, update: PollUpdate) -> None:
        self.update = update
        for listener in list(self._listeners):
            try:
                listener(update)
            except Exception:  # one broken listener must not stop the watch
                log.exception("listener of batch %s failed", self.batch_id)
        for queue in self._queues:
            queue.put_nowait(update)
