"""Waiting on a watched batch with a bound: the one give-up policy of the notebook and the terminal.

A watch whose status requests fail (network, 5xx, 429) shows "retrying in N s" and retries on
its schedule for as long as it lives. In a notebook that is right: the widget says so and the
user decides. A wait may bound it: :class:`GiveUp` with ``after`` seconds stops the watch's
polling once its polls have kept failing for that long (on the client's clock, from the first
failed poll of the run; checked at each failed poll, so no timer runs) and makes the wait raise
that poll's error. The command line passes the client's retry budget (``--give-up-after``), so a
terminal gives up where one request with its retries would; a notebook passes nothing
(``None``: no bound).

:func:`wait` waits for the batch's end; :func:`first_status` for the watch's first answer (what
``status`` and ``results`` need), under the same bound.

Through a watch's public face only (``add_listener``, ``snapshot()``, ``wait()``,
``poller.stop()``, ``client.clock``); it imports no watch module, so that
``BatchWatch.wait(give_up_after=...)`` can be built on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from .client import BatchClient
    from .models import Batch
    from .poller import BatchPoller, PollUpdate

__all__ = ["GiveUp", "Watched", "first_status", "wait"]

T = TypeVar("T")


class _Snapshot(Protocol):
    @property
    def update(self) -> PollUpdate: ...


class Watched(Protocol):
    """What a bounded wait needs of a watch (a :class:`~batch_widget.batch_watch.BatchWatch`)."""

    client: BatchClient
    poller: BatchPoller

    def snapshot(self) -> _Snapshot: ...

    def add_listener(self, listener: Callable[[_Snapshot], None]) -> None: ...

    def remove_listener(self, listener: Callable[[_Snapshot], None]) -> None: ...

    async def wait(self) -> Batch: ...


class GiveUp:
    """The bound on failing polls, listening to one watch from its making until :meth:`until` ends.

    Parameters
    ----------
    watch : Watched
        The watch to bound.
    after : float or None
        Seconds the watch's polls may keep failing; ``None``: no bound (nothing listens).

    Make it before any other listener of the watch that draws: the poll that ends the watch
    is then drawn as the watch stopped, not once more as "retrying".
    """

    def __init__(self, watch: Watched, after: float | None) -> None:
        if after is not None and not after >= 0:
            raise ValueError(f"give_up_after must be >= 0 seconds or None, got {after!r}")
        self.watch = watch
        self.after = after
        #: the error of the poll at which the watch was given up (``None`` while it was not)
        self.error: BaseException | None = None
        self._since: float | None = None  # client-clock time of the first failed poll in a row
        if after is not None:
            watch.add_listener(self._on_snapshot)
            self._on_snapshot(watch.snapshot())

    def _on_snapshot(self, snap: _Snapshot) -> None:
        update = snap.update
        if update.state != "retrying":
            self._since = None
            return
        now = self.watch.client.clock.monotonic()
        if self._since is None:
            self._since = now
        assert self.after is not None
        if self.error is None and update.exception is not None and now - self._since >= self.after:
            self.error = update.exception
            self.watch.poller.stop()  # every listener hears "stopped"; the watch's wait() returns

    async def until(self, waiting: Awaitable[T]) -> T:
        """Await ``waiting`` (the watch's ``wait()``, say); raise the poll's error if the watch was given up."""
        try:
            try:
                result = await waiting
            except Exception:
                if self.error is not None:  # the story is the failing polls, not "stopped before any status"
                    raise self.error from None
                raise
            if self.error is not None:
                raise self.error
            return result
        finally:
            self.close()

    def close(self) -> None:
        """Stop listening (the bound no longer applies)."""
        self.watch.remove_listener(self._on_snapshot)


async def wait(watch: Watched, *, give_up_after: float | None = None) -> Batch:
    """Wait until the batch ends (see ``BatchWatch.wait``), giving up after ``give_up_after`` seconds of failing polls.

    Raises
    ------
    APIError, TransportError
        The last poll's error, when the polls kept failing for ``give_up_after`` seconds (polling
        is then stopped); or the error that ended the watch (a 404, a refused key).
    """
    return await GiveUp(watch, give_up_after).until(watch.wait())


async def first_status(watch: Watched, *, give_up_after: float | None = None) -> Batch:
    """The batch as the watch's first answer gives it (at once if the watch has one already).

    Raises the error that ended the watch before any answer (a 404, a refused key), or the last
    poll's error when the polls kept failing for ``give_up_after`` seconds.
    """
    answered: asyncio.Future[Batch] = asyncio.get_running_loop().create_future()

    def check(snap: _Snapshot) -> None:
        update = snap.update
        if not answered.done() and update.batch is not None and update.state in ("watching", "done"):
            answered.set_result(update.batch)

    bound = GiveUp(watch, give_up_after)
    watch.add_listener(check)
    ended = asyncio.ensure_future(watch.wait())

    async def either() -> Batch:
        await asyncio.wait({answered, ended}, return_when=asyncio.FIRST_COMPLETED)
        return answered.result() if answered.done() else ended.result()

    try:
        check(watch.snapshot())
        return await bound.until(either())
    finally:
        watch.remove_listener(check)
        if ended.done():
            with contextlib.suppress(asyncio.CancelledError):
                ended.exception()  # retrieved: asyncio logs no "exception was never retrieved"
        else:
            ended.cancel()
