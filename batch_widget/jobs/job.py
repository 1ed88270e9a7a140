"""The job: the one owner of its record, and a scheduler on the running event loop.

A :class:`Job` is opened on a manifest (:meth:`Job.open`: the lock taken, the record read and
checked against the client's endpoint and key) and grows by :meth:`Job.add_rows`. It is the
record's one writer: the upload stage and the creates it drives change records and hand them
back to :meth:`Job._commit`. Its scheduler keeps at most ``max_active`` batches active on the
account (counting batches that were already active), waits for a free slot instead of failing on
the API's 429, starts each batch as soon as its rows' assets are ready, and watches each batch
with the shared :class:`~batch_widget.poller.BatchPoller`. It knows nothing of its widget: after
every change it hands a :class:`~batch_widget.jobs.snapshot.JobSnapshot` to its listeners.

Every task it starts (the scheduler, the upload stage, the results fetches) is cancelled by
:meth:`cancel` or :meth:`close`; every :meth:`wait` ends once each row has an outcome, whatever
mix of uploads and batches failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from .._aio import run_in_thread, sleep_or_wake
from .._viewing import Viewed, forget_view
from ..account import count_active
from ..asset_model import Asset
from ..client import BatchClient
from ..errors import (
    APIError,
    AuthenticationError,
    BatchWidgetError,
    PermissionDeniedError,
    ResultLineError,
    TransportError,
    describe_error,
)
from ..models import Batch, ResultLine, format_time
from ..peek import peek, rows_to_frame
from ..poller import BatchPoller, PollUpdate, Schedule
from ..usage import Usage, measure_usage
from .budget import Budget, release
from .creating import CreateContext, UncertainCreateError, recover_chunk, send_create
from .manifest import Chunk, Limits, Manifest, Record, Upload
from .record import JobRecord, VideoSource
from .results import (
    FinishedResults,
    attempts_frame,
    batch_end,
    join_to_inputs,
    newest_outcomes,
    newest_segments,
    outcomes_by_chunk,
    rows_to_retry,
)
from .rows import Prepared
from .snapshot import JobSnapshot, project, settled
from .uploads import UploadStage

__all__ = ["Job", "JobListener", "UncertainCreateError"]

log = logging.getLogger("batch_widget.jobs")

JobListener = Callable[[JobSnapshot], None]


class Job(Viewed):
    """Many batches watched as one: made by :func:`~batch_widget.submit` or :func:`~batch_widget.resume_job`.

    Display it (``job`` as a cell's last line) for the live job widget; ``await job.wait()``
    waits without blocking the kernel; ``await job.to_pandas()`` gives the input rows with the
    results joined on.
    """

    def __init__(self, client: BatchClient, record: JobRecord, *, schedule: Schedule | None = None) -> None:
        """Use :meth:`Job.open`: it takes the manifest's lock and checks the record first."""
        self.client = client
        self.record = record
        self.schedule = schedule
        self.inputs: pd.DataFrame | None = None
        self.input_ids: pd.Series | None = None
        #: rows of the last ``add_rows`` that the job already held (not sent again)
        self.skipped_rows = 0
        self._pollers: dict[str, BatchPoller] = {}
        self._updates: dict[str, PollUpdate] = {}
        self._results = FinishedResults(client, record.manifest.results_dir)
        self._uploads = UploadStage(
            client, record.manifest.uploads, concurrency=self.limits.upload_concurrency, commit=record.commit,
            on_ready=self._upload_ready, on_change=self.notify,
        )  # fmt: skip
        self._usage: Usage | None = None  # measured once the job has ended (shown by its widget)
        self._durations: dict[str, float | None] = {}  # asset durations learned for usage, by asset id
        self._budget = Budget(client, lambda: self.manifest.rows, lambda: self.chunks, record.commit)
        self._listeners: list[JobListener] = []
        self._task: asyncio.Task[None] | None = None
        self._upload_task: asyncio.Task[None] | None = None
        self._done: asyncio.Future[JobSnapshot] | None = None
        self._wake: asyncio.Event | None = None
        self._message = ""
        self._error = ""
        self._active: int | None = None
        self._cancel_requested = False
        self._closed = False

    # -- making one -------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        client: BatchClient,
        path: str | os.PathLike[str],
        *,
        limits: Mapping[str, Any] | None = None,
        schedule: Schedule | None = None,
        create: bool = True,
        start_over: bool = False,
    ) -> Job:
        """The job recorded at ``path``, its manifest's lock held (see :meth:`JobRecord.open`)."""
        record = JobRecord.open(client, path, limits=limits, create=create, start_over=start_over)
        return cls(client, record, schedule=schedule)

    def configure(self, **limits: Any) -> None:
        """Change the job's limits (``None`` keeps one): chunk_size, max_content_hours, max_active,
        upload_concurrency, on_uncertain, slot_poll, max_content_hours_total (a larger budget sends
        the chunks that were over it)."""
        if self.record.set_limits(**limits):
            self._uploads.concurrency = self.limits.upload_concurrency
            self.record.commit(*release(self.chunks))

    def add_rows(
        self,
        prepared: Prepared,
        videos: Mapping[Any, VideoSource] | None = None,
        *,
        inputs: pd.DataFrame | None = None,
    ) -> int:
        """Add the rows the job does not hold yet (by custom_id); returns how many were new.

        ``videos`` gives each row's ``(kind, source, size)`` by index label (rows not in it name an
        asset); ``inputs`` is the DataFrame they came from (``to_pandas()`` joins onto it).
        """
        fresh, self.skipped_rows = self.record.add_rows(prepared, videos)
        if inputs is not None:
            self.inputs, self.input_ids = inputs, prepared.ids
        return fresh

    # -- public -------------------------------------------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        """The job's record as read and written by this process."""
        return self.record.manifest

    @property
    def limits(self) -> Limits:
        return self.record.limits

    @property
    def chunks(self) -> list[Chunk]:
        return self.manifest.chunks

    @property
    def path(self) -> Path:
        return self.manifest.path

    @property
    def uploads(self) -> UploadStage | None:
        """The upload stage when rows name files or URLs (``counts()`` for the figures)."""
        return self._uploads if self.manifest.uploads else None

    @property
    def batch_ids(self) -> list[str]:
        """The batches created so far, in chunk order."""
        return [c.batch_id for c in self.chunks if c.batch_id]

    @property
    def closed(self) -> bool:
        """``close()`` was called: the job runs nothing more (``bw.resume_job`` opens it again)."""
        return self._closed

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def finished(self) -> bool:
        return self.snapshot().finished

    def __repr__(self) -> str:
        return f"<Job {self.summary_text()}>"

    def summary_text(self) -> str:
        """One line: the job's state, outcome counts, rows and batches."""
        return self.snapshot().describe()

    def add_listener(self, listener: JobListener) -> None:
        """Call ``listener(snapshot)`` after every change of the job."""
        self._listeners.append(listener)

    def remove_listener(self, listener: JobListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def start(self) -> None:
        """Start (or wake) the scheduler on the running loop; a no-op without one (see ``wait_blocking``)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._closed:
            raise BatchWidgetError(f"job {self.path.name} was closed; bw.resume_job({str(self.path)!r}) opens it.")
        if self.running:
            self._poke()
            return
        self.record.hold()
        if self._done is None or self._done.done() or self._done.get_loop() is not loop:
            self._done = loop.create_future()
        self._wake = asyncio.Event()
        self._error, self._usage = "", None
        self._task = loop.create_task(self._run(), name=f"batch_widget job {self.path.name}")

    def notify(self) -> None:
        """Wake the scheduler and tell the listeners (the upload stage calls it on each change)."""
        self._poke()
        self._changed()

    def refresh(self) -> None:
        """Poll every batch of the job now, and wake the scheduler (a slot may have freed)."""
        for poller in self._pollers.values():
            poller.refresh()
        self._poke()

    async def wait(self) -> JobSnapshot:
        """Wait, without blocking the kernel, until every row has an outcome or needs you.

        Returns the final :class:`JobSnapshot`; its ``state`` is ``done``, or ``attention`` when
        a chunk or an upload needs you (see :meth:`resolve`, :meth:`retry_uploads`), or
        ``canceled``. The final snapshot goes to the listeners once more from here, so the job
        widget pins its static summary from the waiting cell too (nbclient / papermill keep that one).
        """
        if not self.running and self.finished and self._done is not None:
            self._changed()  # nothing to run: no lock to take (another process may be carrying the job on)
            return self.snapshot()
        self.start()
        if self._done is None:
            raise BatchWidgetError("Job.wait() needs a running event loop; in a script use wait_blocking().")
        try:
            snap = await asyncio.shield(self._done)
            await self._results.settle()  # the ended batches' results are here: to_pandas() is instant
            if self.finished:
                with contextlib.suppress(Exception):  # the usage line is a courtesy: never fails the wait
                    await self.usage()
            return self.snapshot() if self.finished else snap  # as of now, like the one told below
        finally:
            if self.finished:
                self._changed()

    def wait_blocking(self) -> JobSnapshot:
        """Blocking twin of :meth:`wait` for scripts: blocks the calling thread until the job ends.

        Runs the job from its manifest on a private event loop in a worker thread (with its own
        client, under this job's lock), then reads the manifest again here. In a notebook, prefer
        ``await job.wait()``: while this blocks, the kernel runs nothing else and every live display pauses.
        """
        self.record.hold()
        self.record.flush()

        async def run() -> JobSnapshot:
            async with self.client.clone() as client:
                job = Job(client, JobRecord(client, Manifest.load(self.path), self.record.lock), schedule=self.schedule)
                try:
                    return await job.wait()
                finally:
                    job._stop_tasks()
                    job.record.flush()

        snap = run_in_thread(
            run,
            "batch_widget job wait",
            warn_in_loop="Job.wait_blocking() blocks the kernel until every batch has ended; "
            "use `await job.wait()` in a notebook.",
        )
        self.record.reread()
        if not self.running and not (self._upload_task is not None and not self._upload_task.done()):
            self.record.let_go()
        return snap

    async def cancel(self) -> list[Batch]:
        """Cancel the whole job: uploads stop, chunks not yet sent are skipped, active batches are canceled.

        Items already processing still finish (the API's rule). Returns the canceled batches.
        """
        self.record.hold()
        self._cancel_requested = True
        await self._stop_uploads("canceled by job.cancel(); job.retry_uploads() carries it on")
        touched: list[Record] = []
        for chunk in self.chunks:
            if chunk.state == "planned":
                chunk.skipped("canceled before it was submitted")
                touched.append(chunk)
        self.record.commit(*touched)
        self._changed()
        canceled: list[Batch] = []
        errors: list[str] = []
        for chunk in self.chunks:
            if not chunk.batch_id or chunk.outcome is not None:
                continue
            update = self._updates.get(chunk.batch_id)
            if update is not None and update.batch is not None and update.batch.is_terminal:
                continue
            try:
                canceled.append(await self.client.cancel(chunk.batch_id))
            except APIError as exc:
                if exc.status_code != 409:  # 409: it had already ended
                    errors.append(f"{chunk.batch_id}: {describe_error(exc)}")
            except TransportError as exc:
                errors.append(f"{chunk.batch_id}: {describe_error(exc)}")
            poller = self._pollers.get(chunk.batch_id)
            if poller is not None:
                poller.refresh()
        if errors:
            self._error = "Cancel failed for " + "; ".join(errors)
        self.start()  # the scheduler sees the batches to their end, then finishes as canceled
        self._changed()
        return canceled

    def retry_uploads(self, *, canceled: bool = True, failed: bool = False) -> list[str]:
        """Upload again what gave up after its retries, and what was canceled (and, with ``failed=True``,
        the assets that failed); returns their sources. Re-running ``submit`` does the same;
        ``resume_job`` retries what gave up only (a canceled job stays canceled)."""
        self.record.hold()
        again: list[Upload] = []
        for up in self.manifest.uploads.values():
            if up.state == "canceled" and not canceled:
                continue
            if failed and up.state == "failed":
                up.state, up.asset_id, up.tag, up.multipart = "error", None, None, None
            if up.reopen():
                again.append(up)
        if again:
            self._cancel_requested = False
            self.record.commit(*again)
            self.start()
            self._changed()
        return [u.source for u in again]

    def resolve(
        self, chunk: int, *, batch_id: str | None = None, action: Literal["resubmit", "skip"] | None = None
    ) -> None:
        """Decide about an ``uncertain`` chunk: adopt ``batch_id``, or ``action="resubmit"`` / ``"skip"``.

        ``resubmit`` may create a duplicate if the lost create did reach the API: check
        ``await bw.list_batches()`` first.
        """
        target = self.record.resolve(chunk, batch_id=batch_id, action=action)
        self.record.commit(target)
        self.start()
        self._changed()

    async def resubmit(
        self, statuses: Iterable[str] = ("failed", "canceled"), *, max_attempts: int = 3
    ) -> list[Chunk]:
        """Submit again, as new batches, the rows whose newest outcome is in ``statuses``.

        That includes the unfinished items of expired batches (canceled, or failed with
        ``batch_processing_timeout``). The new chunks are linked to the ones they retry in the
        manifest (``resubmit_of``); rows that already had ``max_attempts`` attempts are left
        alone. Call it again after the new batches end: a row is never in two unfinished
        attempts at once, so re-running the cell submits nothing twice.
        """
        self.record.hold()
        outcomes = await outcomes_by_chunk(self.chunks, self._batch_end, self._lines)
        ordered, parents, newest = rows_to_retry(self.chunks, outcomes, set(statuses), max_attempts)
        if not ordered:
            return []
        self.record.hold()  # again: the scheduler may have let the manifest go while the outcomes were read
        new_chunks = self.record.plan(ordered, attempt=None, resubmit_of=sorted(parents))
        for chunk in new_chunks:  # replaced counts per new chunk, for the overall bar
            counts: dict[str, int] = {}
            for cid in chunk.custom_ids:
                counts[newest[cid]] = counts.get(newest[cid], 0) + 1
            chunk.replaces = counts
        self.record.commit(*new_chunks)
        self._cancel_requested = False
        self.start()
        self._changed()
        return new_chunks

    async def to_pandas(
        self, *, history: bool = False, parse_json: bool = False, expand: bool = False
    ) -> pd.DataFrame:
        """The job's results as one DataFrame (read from disk first: see ``results``).

        By default: the input rows (when this job was submitted from a DataFrame in this
        process; else one row per job row with its index label) with the newest outcome of each
        row joined on by custom_id, plus ``asset_id``, ``batch_id``, ``chunk``, ``attempt``,
        ``attempts`` (how many batches the row went into) and ``status_history`` (e.g.
        ``"failed → ready"``). With ``history=True``: every attempt, one row per (row, batch).
        """
        long = await attempts_frame(self.chunks, self._lines, parse_json=parse_json, expand=expand)
        if history:
            return long
        return join_to_inputs(
            newest_outcomes(long), inputs=self.inputs, input_ids=self.input_ids, rows=self.manifest.rows,
            uploads=self.manifest.uploads, chunks=self.chunks,
        )  # fmt: skip

    async def to_segments(self) -> pd.DataFrame:
        """Time-based metadata of every row as one long DataFrame (one row per segment), from each row's
        newest ready attempt, with ``batch_id``, ``chunk`` and ``attempt``; read from disk first."""
        return await newest_segments(self.chunks, self._lines)

    async def usage(self) -> Usage:
        """What the job used, per batch and in total: content hours of completed items, input and
        output tokens, and the items not billed (failed, canceled); every attempt counts.

        From the kept results (``to_pandas(history=True)``); hours from the rows (window or duration
        columns, uploaded assets), else the assets' durations (one batched ``list_assets``, once).
        """
        rows = self.manifest.rows
        used = await measure_usage(
            self.client, await self.to_pandas(history=True), seconds={c: r.content_s for c, r in rows.items()},
            assets={c: r.asset_id for c, r in rows.items() if r.asset_id}, cache=self._durations,
        )  # fmt: skip
        if self.finished:
            self._usage = used
            self._changed()
        return used

    async def peek(self, n: int = 5) -> pd.DataFrame:
        """The first ``n`` finished rows so far across the job's batches, as a small DataFrame."""
        return rows_to_frame(await peek(self.client, self.batch_ids, n))

    def snapshot(self) -> JobSnapshot:
        """The job as the widget shows it."""
        return project(
            self.chunks,
            self._updates,
            rows_total=len(self.manifest.rows),
            scheduler_running=self.running,
            message=self._message,
            error=self._error,
            cancel_requested=self._cancel_requested,
            active=self._active,
            max_active=self.limits.max_active,
            manifest=self.path.name,
            updated_at=format_time(self.client.server_now()) or "",
            slot_poll=self.limits.slot_poll,
            uploads=self._uploads.counts() if self.manifest.uploads else None,
            before=self.record.rows_before_batches(canceling=self._cancel_requested),
            usage=self._usage.describe() if self._usage is not None else "",
        )

    def close(self) -> None:
        """Stop everything this job started (scheduler, uploads, results fetches, its share of the
        polling) and let its manifest go. The record stays; ``bw.resume_job`` opens it again."""
        self._closed = True
        self._stop_tasks()
        for poller in self._pollers.values():
            poller.remove_listener(self._on_poll)
            poller.release()
        self._pollers.clear()
        forget_view(self)
        pending = [t for t in (self._task, self._upload_task) if t is not None and not t.done()]
        if not pending:
            self.record.let_go()
            return
        left = len(pending)

        def one_done(_: Any) -> None:  # the cancelled tasks record where they stopped, then the lock goes
            nonlocal left
            left -= 1
            if left == 0:
                self.record.let_go()

        for task in pending:
            task.add_done_callback(one_done)

    # -- uploads ----------------------------------------------------------------------------------------

    def _upload_ready(self, up: Upload, asset: Asset) -> None:
        rows = self.record.rows_of(up.source)
        for row in rows:
            row.asset_ready(asset.id, asset.content_seconds)
        self.record.commit(*rows)
        self.notify()

    def _start_uploads(self) -> None:
        if self._uploads.finished or (self._upload_task is not None and not self._upload_task.done()):
            return
        self._upload_task = asyncio.get_running_loop().create_task(
            self._uploads.run(), name=f"batch_widget uploads {self.path.name}"
        )
        self._upload_task.add_done_callback(lambda _: self._poke())

    async def _stop_uploads(self, note: str) -> None:
        task = self._upload_task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        stopped = self._uploads.cancel(note)
        if stopped:
            self.record.commit(*stopped)

    # -- plumbing -------------------------------------------------------------------------------

    async def _batch_end(self, chunk: Chunk) -> tuple[bool, int]:
        """Whether ``chunk``'s batch has ended, and how many of its items failed or were canceled."""
        update = self._updates.get(chunk.batch_id or "")
        return await batch_end(self.client, chunk, update.batch if update is not None else None)

    async def _lines(self, batch_id: str) -> list[ResultLine | ResultLineError]:
        """A batch's results: an ended batch's were fetched as it ended (or are now), and kept."""
        chunk = next((c for c in self.chunks if c.batch_id == batch_id), None)
        update = self._updates.get(batch_id)
        ended = (chunk is not None and chunk.outcome is not None) or (
            update is not None and update.batch is not None and update.batch.is_terminal)  # fmt: skip
        return await self._results.lines(batch_id, ended=ended)

    def _changed(self) -> None:
        snap = self.snapshot()
        for listener in list(self._listeners):
            try:
                listener(snap)
            except Exception:
                log.exception("job listener failed")

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _set_message(self, text: str) -> None:
        if text != self._message:
            self._message = text
            self._changed()

    async def _pause(self, seconds: float) -> None:
        assert self._wake is not None
        await sleep_or_wake(seconds, self._wake, self.client.clock.sleep)

    def _stop_tasks(self) -> None:
        for task in (self._task, self._upload_task):
            if task is not None and not task.done():
                task.cancel()
        self._results.cancel()

    async def _run(self) -> None:
        try:
            self.record.commit(*release(self.chunks))  # checked again against the budget as it is now
            for chunk in self.chunks:
                if chunk.state == "creating":
                    await self._recover(chunk)
            for chunk in self.chunks:
                if chunk.state == "created" and chunk.batch_id and not (
                        chunk.outcome is not None and self._results.on_disk(chunk.batch_id)):  # fmt: skip
                    self._watch(chunk)
            self._changed()
            if not self._cancel_requested:
                self._start_uploads()
            while True:
                ended = self._uploads.finished
                due = [] if self._cancel_requested else self.record.plan_ready_rows(uploads_ended=ended)
                if due:  # batches start as soon as enough assets are ready: uploads and analysis overlap
                    self.record.commit(*due)
                todo = next((c for c in self.chunks if c.state == "planned"), None)
                uploading = self._upload_task is not None and not self._upload_task.done()
                if self._upload_task is not None and self._upload_task.done() and not self._upload_task.cancelled():
                    self._upload_task.result()  # an upload stage that stopped on an error stops the job
                if todo is None and uploading and not self._cancel_requested:
                    assert self._wake is not None
                    await self._wake.wait()  # no clock to watch: every upload change, and the stage's end, wake it
                    self._wake.clear()
                    continue
                if todo is None or self._cancel_requested:  # the batches run out; a chunk planned meanwhile goes
                    self._set_message("")
                    if settled(self.chunks, self._updates):
                        break
                    await self._pause(max(self.limits.slot_poll, 1.0))
                elif not await self._budget.allows(todo, self.limits.max_content_hours_total):
                    continue  # over the budget: recorded, its rows unsent
                elif await self._wait_for_slot():
                    await self._create(todo)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.debug("job scheduler stopped on an error", exc_info=True)
            self._error = describe_error(error)
            self._finish(error)
            return
        self._finish(None)

    def _finish(self, error: BaseException | None) -> None:
        self._message = ""
        if error is not None and self._upload_task is not None and not self._upload_task.done():
            self._upload_task.cancel()
        snap = self.snapshot()
        if self._done is not None and not self._done.done():
            if error is not None:
                self._done.set_exception(error)
                self._done.exception()
            else:
                self._done.set_result(snap)
        if self._upload_task is None or self._upload_task.done():
            self.record.let_go()  # a job with nothing running holds no lock: another process may carry it on
        self._changed()

    async def _wait_for_slot(self) -> bool:
        """Return True when a slot is free now; False after a pause (the caller loops)."""
        try:
            active = await count_active(self.client)
        except (AuthenticationError, PermissionDeniedError):
            raise
        except (APIError, TransportError) as exc:
            self._set_message(f"could not count the active batches ({describe_error(exc)}); retrying")
            await self._pause(self.limits.slot_poll)
            return False
        self._active = active
        if active < self.limits.max_active:
            return True
        self._set_message(f"waiting for a free slot ({active} of {self.limits.max_active} active)")
        await self._pause(self.limits.slot_poll)
        return False

    def _creating(self) -> CreateContext:
        assert self.manifest.settings is not None
        return CreateContext(
            client=self.client, rows=self.manifest.rows, settings=self.manifest.settings,
            slot_poll=self.limits.slot_poll, on_uncertain=self.limits.on_uncertain, manifest_name=self.path.name,
            commit=self.record.commit, say=self._set_message, pause=self._pause,
        )  # fmt: skip

    async def _create(self, chunk: Chunk) -> None:
        sent = await send_create(self._creating(), chunk)
        if sent == "unknown":
            await self._recover(chunk)
        elif sent == "refused":
            self._changed()
        elif sent == "created":
            if self._active is not None:
                self._active += 1
            self._watch(chunk)
            self._changed()

    async def _recover(self, chunk: Chunk) -> None:
        """Match an intent without a batch id to the account's batches, or apply ``on_uncertain``."""
        claimed = {c.batch_id for c in self.chunks if c.batch_id}
        try:
            if await recover_chunk(self._creating(), chunk, claimed):
                self._watch(chunk)
        finally:
            self._changed()

    def _watch(self, chunk: Chunk) -> None:
        assert chunk.batch_id is not None
        if chunk.batch_id in self._pollers:
            return
        poller = BatchPoller.shared(self.client, chunk.batch_id, schedule=self.schedule)
        self._pollers[chunk.batch_id] = poller
        self._updates[chunk.batch_id] = poller.update
        poller.add_listener(self._on_poll)
        poller.acquire()

    def _on_poll(self, update: PollUpdate) -> None:
        self._updates[update.batch_id] = update
        if update.finished:
            batch = update.batch
            chunk = next((c for c in self.chunks if c.batch_id == update.batch_id), None)
            if batch is not None and batch.is_terminal and chunk is not None and chunk.outcome is None:
                chunk.ended(batch.status.value, batch.counts)
                if self.record.lock.held:
                    self.record.commit(chunk)
            if update.state == "done":
                self._results.prefetch(update.batch_id)
            self._poke()
            if self._active is not None and batch is not None and batch.is_terminal:
                self._active = max(0, self._active - 1)
        self._changed()
