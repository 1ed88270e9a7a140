"""A job's results, fetched in the background as each of its batches ends, and kept.

An ended batch's results cannot change any more, so the job asks for them as soon as its poller
reports the end (a few at a time), and ``await job.to_pandas()`` at the end finds them all
here instead of downloading every batch one after another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .._aio import loop_running
from ..client import BatchClient
from ..errors import ResultLineError
from ..models import ResultLine

__all__ = ["FinishedResults"]

log = logging.getLogger("batch_widget.jobs")

Lines = list[ResultLine | ResultLineError]


class FinishedResults:
    """The results of ended batches: fetched once each, at most ``concurrency`` at a time.

    A background fetch that fails is forgotten (and logged): the next :meth:`lines` call fetches
    again in the foreground, with the client's retries, and raises if that fails too.
    """

    def __init__(self, client: BatchClient, concurrency: int = 4) -> None:
        self.client = client
        self.concurrency = concurrency
        self._kept: dict[str, Lines] = {}
        self._fetching: dict[str, asyncio.Task[Lines]] = {}
        self._slots: asyncio.Semaphore | None = None

    def prefetch(self, batch_id: str) -> None:
        """Start fetching an ended batch's results in the background (once; no-op without a loop)."""
        if batch_id in self._kept or batch_id in self._fetching or not loop_running():
            return
        task = asyncio.get_running_loop().create_task(self._fetch(batch_id), name=f"batch_widget results {batch_id}")
        self._fetching[batch_id] = task
        task.add_done_callback(lambda t: self._fetched(batch_id, t))

    async def lines(self, batch_id: str, *, ended: bool) -> Lines:
        """The batch's results: kept, or awaited from the fetch under way, or fetched now.

        Only an ``ended`` batch's results are kept (a running batch's grow).
        """
        kept = self._kept.get(batch_id)
        if kept is not None:
            return kept
        task = self._fetching.get(batch_id)
        if task is not None:
            with contextlib.suppress(Exception):  # failed in the background: fetch again below
                return await asyncio.shield(task)
        if ended:
            return await self._fetch(batch_id)
        return await self.client.result_lines(batch_id)

    async def settle(self) -> None:
        """Wait for the background fetches under way (their errors are left to :meth:`lines`)."""
        while self._fetching:
            await asyncio.gather(*self._fetching.values(), return_exceptions=True)

    async def _fetch(self, batch_id: str) -> Lines:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        async with self._slots:
            lines = await self.client.result_lines(batch_id)
        self._kept[batch_id] = lines
        return lines

    def _fetched(self, batch_id: str, task: asyncio.Task[Lines]) -> None:
        self._fetching.pop(batch_id, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.info("background fetch of batch %s's results failed (%s); to_pandas() will ask again", batch_id, error)
