"""The job: a scheduler on the running event loop that sends the chunks and watches their batches.

A :class:`Job` keeps at most ``max_active`` batches active on the account (counting batches that
were already active), waits for a free slot instead of failing on the API's 429, records every
create in the manifest before and after it is sent, and watches each batch with the shared
:class:`~batch_widget.poller.BatchPoller`. It knows nothing of its widget: after every change it
hands a :class:`~batch_widget.jobs.snapshot.JobSnapshot` to its listeners, as a poller does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from .._aio import run_in_thread, sleep_or_wake
from .._viewing import forget_view, view_of
from ..account import ACCOUNT_MAX_ACTIVE, count_active
from ..client import BatchClient
from ..errors import (
    APIError,
    AuthenticationError,
    BatchWidgetError,
    InvalidInputError,
    PermissionDeniedError,
    ResultLineError,
    TransportError,
    describe_error,
)
from ..frames import results_to_frame
from ..models import Batch, ResultLine, format_time
from ..peek import peek, rows_to_frame
from ..poller import BatchPoller, PollUpdate, Schedule
from ..validation import MAX_REQUESTS, validate_batch_id
from .creating import CreateContext, Uncertain, UncertainCreateError, recover_chunk, send_create
from .manifest import Chunk, Manifest
from .prefetch import FinishedResults
from .registry import LiveJobs
from .results import empty_long_frame, join_to_inputs, newest_outcomes, rows_to_retry
from .rows import MAX_CONTENT_HOURS, plan_chunks
from .snapshot import JobSnapshot, project, settled
from .uploads import UploadStage

__all__ = ["Job", "JobListener", "Uncertain", "UncertainCreateError", "live_jobs"]

log = logging.getLogger("batch_widget.jobs")

JobListener = Callable[[JobSnapshot], None]


class Job:
    """Many batches watched as one: created by :func:`~batch_widget.submit` or :func:`~batch_widget.resume_job`.

    Display it (``job`` as a cell's last line) for the live job widget; ``await job.wait()``
    waits without blocking the kernel; ``await job.to_pandas()`` gives the input rows with the
    results joined on.
    """

    def __init__(
        self,
        client: BatchClient,
        manifest: Manifest,
        *,
        max_active: int = ACCOUNT_MAX_ACTIVE,
        on_uncertain: Uncertain = "ask",
        schedule: Schedule | None = None,
        slot_poll: float = 15.0,
        chunk_size: int = MAX_REQUESTS,
        max_content_hours: float = MAX_CONTENT_HOURS,
    ) -> None:
        self.client = client
        self.manifest = manifest
        self.configure(
            max_active=max_active, on_uncertain=on_uncertain, slot_poll=slot_poll, chunk_size=chunk_size,
            max_content_hours=max_content_hours,
        )  # fmt: skip
        self.schedule = schedule
        self.inputs: pd.DataFrame | None = None
        self.input_ids: pd.Series | None = None
        self.skipped_rows = 0
        self._pollers: dict[str, BatchPoller] = {}
        self._updates: dict[str, PollUpdate] = {}
        self._results = FinishedResults(self.client)  # fetched as each batch ends, kept
        self._listeners: list[JobListener] = []
        self._task: asyncio.Task[None] | None = None
        self._done: asyncio.Future[JobSnapshot] | None = None
        self._wake: asyncio.Event | None = None
        self._message = ""
        self._error = ""
        self._active: int | None = None
        self._cancel_requested = False
        self.uploads: UploadStage | None = None
        """The upload stage when rows name files or URLs (see ``uploads``)."""

    def configure(
        self,
        *,
        max_active: int,
        on_uncertain: Uncertain,
        slot_poll: float,
        chunk_size: int,
        max_content_hours: float,
    ) -> None:
        """Check and set the job's limits and policies (a re-run ``submit`` cell may change them)."""
        if on_uncertain not in ("ask", "resubmit", "skip", "raise"):
            raise InvalidInputError(
                f"on_uncertain {on_uncertain!r} is not one of 'ask', 'resubmit', 'skip', 'raise'."
            )
        if not isinstance(max_active, int) or not 1 <= max_active <= ACCOUNT_MAX_ACTIVE:
            raise InvalidInputError(
                f"max_active {max_active!r} must be an integer from 1 to {ACCOUNT_MAX_ACTIVE}."
            )
        self.check_limits(chunk_size=chunk_size, max_content_hours=max_content_hours)
        self.max_active = max_active
        self.on_uncertain: Uncertain = on_uncertain
        self.slot_poll = slot_poll
        self.chunk_size = chunk_size
        self.max_content_hours = max_content_hours

    @staticmethod
    def check_limits(*, chunk_size: int, max_content_hours: float) -> None:
        """Refuse a batch size outside the API's limits, naming the value."""
        if not isinstance(chunk_size, int) or not 1 <= chunk_size <= MAX_REQUESTS:
            raise InvalidInputError(f"chunk_size {chunk_size!r} must be an integer from 1 to {MAX_REQUESTS}.")
        if not 0 < max_content_hours <= MAX_CONTENT_HOURS:
            raise InvalidInputError(
                f"max_content_hours {max_content_hours!r} must be in (0, {MAX_CONTENT_HOURS:g}]."
            )

    # -- public ---------------------------------------------------------------------------------

    @property
    def chunks(self) -> list[Chunk]:
        return self.manifest.chunks

    @property
    def path(self) -> Path:
        return self.manifest.path

    @property
    def batch_ids(self) -> list[str]:
        """The batches created so far, in chunk order."""
        return [c.batch_id for c in self.chunks if c.batch_id]

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
        if self.running:
            self._poke()
            return
        if self._done is None or self._done.done() or self._done.get_loop() is not loop:
            self._done = loop.create_future()
        self._wake = asyncio.Event()
        self._error = ""
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
        """Wait, without blocking the kernel, until no batch of the job runs and no chunk can go in.

        Returns the final :class:`JobSnapshot`; its ``state`` is ``done``, or ``attention`` when
        a chunk needs you (see :meth:`resolve`), or ``canceled``. The final snapshot goes to the
        listeners once more from here, so the job widget pins its static summary from the
        waiting cell too (nbclient / papermill keep that one).
        """
        self.start()
        if self._done is None:
            raise BatchWidgetError("Job.wait() needs a running event loop; in a script use wait_blocking().")
        try:
            snap = await asyncio.shield(self._done)
            await self._results.settle()  # the ended batches' results are here: to_pandas() is instant
            return self.snapshot() if self.finished else snap  # as of now, like the one told below
        finally:
            if self.finished:
                self._changed()

    def wait_blocking(self) -> JobSnapshot:
        """Blocking twin of :meth:`wait` for scripts: blocks the calling thread until the job ends.

        Runs the job from its manifest on a private event loop in a worker thread (with its own
        client), then reloads the manifest here. In a notebook, prefer ``await job.wait()``:
        while this blocks, the kernel runs nothing else and every live display pauses.
        """

        async def run() -> JobSnapshot:
            async with self.client.clone() as client:
                job = Job(client, Manifest.load(self.path), max_active=self.max_active,
                          on_uncertain=self.on_uncertain, slot_poll=self.slot_poll, schedule=self.schedule,
                          chunk_size=self.chunk_size, max_content_hours=self.max_content_hours)  # fmt: skip
                return await job.wait()

        snap = run_in_thread(
            run,
            "batch_widget job wait",
            warn_in_loop="Job.wait_blocking() blocks the kernel until every batch has ended; "
            "use `await job.wait()` in a notebook.",
        )
        self.manifest = Manifest.load(self.path)
        return snap

    async def cancel(self) -> list[Batch]:
        """Cancel the whole job: chunks not yet sent are skipped, active batches are canceled.

        Items already processing still finish (the API's rule). Returns the canceled batches.
        """
        self._cancel_requested = True
        for chunk in self.chunks:
            if chunk.state == "planned":
                chunk.state = "skipped"
                chunk.note = "canceled before it was submitted"
        self.manifest.save()
        self._changed()
        canceled: list[Batch] = []
        errors: list[str] = []
        for chunk in self.chunks:
            if not chunk.batch_id:
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
        self._poke()
        self._changed()
        return canceled

    def resolve(
        self, chunk: int, *, batch_id: str | None = None, action: Literal["resubmit", "skip"] | None = None
    ) -> None:
        """Decide about an ``uncertain`` chunk: adopt ``batch_id``, or ``action="resubmit"`` / ``"skip"``.

        ``resubmit`` may create a duplicate if the lost create did reach the API: check
        ``await bw.list_batches()`` first.
        """
        found = [c for c in self.chunks if c.chunk == chunk]
        if not found:
            raise InvalidInputError(
                f"chunk {chunk!r} is not part of this job (chunks 0 to {len(self.chunks) - 1})."
            )
        target = found[0]
        if target.state not in ("uncertain", "create_failed"):
            raise InvalidInputError(f"chunk {chunk} is {target.state}, not uncertain: nothing to resolve.")
        if (batch_id is None) == (action is None):
            raise InvalidInputError("give exactly one of batch_id= or action='resubmit' / 'skip'.")
        if batch_id is not None:
            target.batch_id = validate_batch_id(batch_id)
            target.state = "created"
            target.note = "batch id given by the user"
        elif action == "resubmit":
            target.state, target.intent_at = "planned", None
            target.note = "resubmitted by the user after an uncertain create"
        elif action == "skip":
            target.state = "skipped"
            target.note = "skipped by the user"
        else:
            raise InvalidInputError(f"action {action!r} is not 'resubmit' or 'skip'.")
        target.error = None
        self.manifest.save()
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
        outcomes: dict[int, dict[str, str]] = {}  # chunk → custom_id → its outcome there
        for chunk in self.chunks:
            if chunk.state != "created" or not chunk.batch_id:
                continue
            update = self._updates.get(chunk.batch_id)
            batch = update.batch if update is not None else None
            if batch is None or not batch.is_terminal:
                batch = await self.client.get(chunk.batch_id)
            if not batch.is_terminal:
                outcomes[chunk.chunk] = dict.fromkeys(chunk.custom_ids, "unfinished")
            elif batch.failed_items + batch.canceled_items == 0:
                outcomes[chunk.chunk] = dict.fromkeys(chunk.custom_ids, "ready")
            else:
                lines = await self._lines(chunk.batch_id)
                seen = {ln.custom_id: ln.status.value for ln in lines if isinstance(ln, ResultLine)}
                outcomes[chunk.chunk] = {cid: seen.get(cid, "missing") for cid in chunk.custom_ids}
        ordered, parents, newest = rows_to_retry(self.chunks, outcomes, set(statuses), max_attempts)
        if not ordered:
            return []
        new_chunks = self.plan(ordered, attempt=None, resubmit_of=sorted(parents))
        # replaced counts per new chunk, for the overall bar
        for chunk in new_chunks:
            counts: dict[str, int] = {}
            for cid in chunk.custom_ids:
                counts[newest[cid]] = counts.get(newest[cid], 0) + 1
            chunk.replaces = counts
        self.manifest.save()
        self._cancel_requested = False
        self.start()
        self._changed()
        return new_chunks

    async def to_pandas(
        self, *, history: bool = False, parse_json: bool = False, expand: bool = False
    ) -> pd.DataFrame:
        """The job's results as one DataFrame.

        By default: the input rows (when this job was submitted from a DataFrame in this
        process; else one row per job row with its index label) with the newest outcome of each
        row joined on by custom_id, plus ``batch_id``, ``chunk``, ``attempt``, ``attempts``
        (how many batches the row went into) and ``status_history`` (e.g. ``"failed → ready"``).
        With ``history=True``: every attempt, one row per (row, batch).
        """
        frames = []
        for chunk in self.chunks:
            if chunk.state != "created" or not chunk.batch_id:
                continue
            lines = await self._lines(chunk.batch_id)
            frame = results_to_frame(lines, order=chunk.custom_ids, parse_json=parse_json, expand=expand)
            frame.insert(1, "batch_id", chunk.batch_id)  # the job's own columns: BATCH_COLUMNS
            frame.insert(2, "chunk", chunk.chunk)
            frame.insert(3, "attempt", chunk.attempt)
            frames.append(frame)
        long = pd.concat(frames, ignore_index=True) if frames else empty_long_frame()
        if history:
            return long
        return join_to_inputs(
            newest_outcomes(long), inputs=self.inputs, input_ids=self.input_ids, rows=self.manifest.rows,
            chunks=self.chunks,
        )  # fmt: skip

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
            max_active=self.max_active,
            manifest=self.path.name,
            updated_at=format_time(self.client.server_now()) or "",
            slot_poll=self.slot_poll,
            uploads=self.uploads.counts() if self.uploads is not None else None,
        )

    def plan(self, custom_ids: Iterable[str], *, attempt: int | None, resubmit_of: Iterable[int] = ()) -> list[Chunk]:
        """Append chunks for ``custom_ids`` (rows already in the manifest), within the job's limits.

        ``attempt=None`` for a resubmission: one more than the newest attempt of its rows.
        """
        rows = self.manifest.rows
        pairs = [(cid, rows[cid].get("content_s")) for cid in custom_ids]
        start = len(self.chunks)
        made = []
        for n, ids in enumerate(
            plan_chunks(pairs, max_items=self.chunk_size, max_content_hours=self.max_content_hours)
        ):
            tries = attempt
            if tries is None:
                tries = 1 + max(
                    (c.attempt for c in self.chunks if c.state == "created" and set(ids) & set(c.custom_ids)),
                    default=0,
                )
            chunk = Chunk(chunk=start + n, attempt=tries, custom_ids=list(ids), resubmit_of=list(resubmit_of))
            self.chunks.append(chunk)
            made.append(chunk)
        return made

    def close(self) -> None:
        """Stop the scheduler and this job's share of the polling (the manifest stays)."""
        if self._task is not None:
            self._task.cancel()
        for poller in self._pollers.values():
            poller.remove_listener(self._on_poll)
            poller.release()
        self._pollers.clear()
        live_jobs.discard(self)
        forget_view(self)

    # -- display: the widget layer registers the job's view (this module imports no widget) ------

    @property
    def widget(self) -> Any:
        """The job's live widget (one per job; every display of the job shows it)."""
        return view_of(self)

    def _ipython_display_(self, **kwargs: Any) -> None:
        self.widget._ipython_display_(**kwargs)

    # -- plumbing -------------------------------------------------------------------------------

    async def _lines(self, batch_id: str) -> list[ResultLine | ResultLineError]:
        """A batch's results: an ended batch's were fetched as it ended (or are now), and kept."""
        update = self._updates.get(batch_id)
        ended = update is not None and update.batch is not None and update.batch.is_terminal
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

    async def _run(self) -> None:
        try:
            for chunk in self.chunks:
                if chunk.state == "creating":
                    await self._recover(chunk)
            for chunk in self.chunks:
                if chunk.state == "created" and chunk.batch_id:
                    self._watch(chunk)
            self._changed()
            up = self.uploads
            uploading = asyncio.ensure_future(up.run()) if up is not None and not up.finished else None
            while True:
                due = up.due(self.manifest.claimed(), self.chunk_size) if up is not None else []
                if due:  # batches start as soon as enough assets are ready: uploads and analysis overlap
                    self.plan(due, attempt=1)
                    self.manifest.save()
                todo = next((c for c in self.chunks if c.state == "planned"), None)
                if todo is None and uploading is not None and not uploading.done() and not self._cancel_requested:
                    await self._pause(self.slot_poll)  # every upload change wakes it
                    continue
                if uploading is not None and uploading.done():
                    uploading.result()  # an upload stage that stopped on an error stops the job
                if todo is None or self._cancel_requested:
                    break
                if not await self._wait_for_slot():
                    continue
                await self._create(todo)
            self._set_message("")
            while not settled(self.chunks, self._updates):
                await self._pause(max(self.slot_poll, 1.0))
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
        snap = self.snapshot()
        if self._done is not None and not self._done.done():
            if error is not None:
                self._done.set_exception(error)
                self._done.exception()
            else:
                self._done.set_result(snap)
        self._changed()

    async def _wait_for_slot(self) -> bool:
        """Return True when a slot is free now; False after a pause (the caller loops)."""
        try:
            active = await count_active(self.client)
        except (AuthenticationError, PermissionDeniedError):
            raise
        except (APIError, TransportError) as exc:
            self._set_message(f"could not count the active batches ({describe_error(exc)}); retrying")
            await self._pause(self.slot_poll)
            return False
        self._active = active
        if active < self.max_active:
            return True
        self._set_message(f"waiting for a free slot ({active} of {self.max_active} active)")
        await self._pause(self.slot_poll)
        return False

    def _creating(self) -> CreateContext:
        return CreateContext(
            client=self.client, manifest=self.manifest, slot_poll=self.slot_poll, on_uncertain=self.on_uncertain,
            say=self._set_message, pause=self._pause,
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
            if update.state == "done":
                self._results.prefetch(update.batch_id)
            self._poke()
            if self._active is not None and update.batch is not None and update.batch.is_terminal:
                self._active = max(0, self._active - 1)
        self._changed()


#: the jobs this process runs, by manifest path (``submit`` and ``resume_job`` look here first)
live_jobs: LiveJobs[Job] = LiveJobs()
