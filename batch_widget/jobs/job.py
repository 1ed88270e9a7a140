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
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from .._aio import run_in_thread, sleep_or_wake
from .._viewing import forget_view, view_of
from ..account import count_active
from ..asset_model import Asset
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
from ..validation import validate_batch_id
from .creating import CreateContext, UncertainCreateError, recover_chunk, send_create
from .lock import ManifestLock
from .manifest import Chunk, Endpoint, Limits, Manifest, ManifestError, Record, Row, Upload
from .results import FinishedResults, empty_long_frame, join_to_inputs, newest_outcomes, rows_to_retry
from .rows import Prepared, jsonable_label, plan_chunks
from .snapshot import JobSnapshot, RowsBeforeBatches, project, settled
from .uploads import UploadStage

__all__ = ["Job", "JobListener", "LiveJobs", "UncertainCreateError", "live_jobs"]

log = logging.getLogger("batch_widget.jobs")

JobListener = Callable[[JobSnapshot], None]
#: a row's video as checked before anything is sent: (kind, source, file size)
VideoSource = tuple[str, str, "int | None"]


class Job:
    """Many batches watched as one: made by :func:`~batch_widget.submit` or :func:`~batch_widget.resume_job`.

    Display it (``job`` as a cell's last line) for the live job widget; ``await job.wait()``
    waits without blocking the kernel; ``await job.to_pandas()`` gives the input rows with the
    results joined on.
    """

    def __init__(self, client: BatchClient, manifest: Manifest, lock: ManifestLock, *,
                 schedule: Schedule | None = None) -> None:  # fmt: skip
        """Use :meth:`Job.open`: it takes the lock and checks the record first."""
        self.client = client
        self.manifest = manifest
        self.schedule = schedule
        self.inputs: pd.DataFrame | None = None
        self.input_ids: pd.Series | None = None
        #: rows of the last ``add_rows`` that the job already held (not sent again)
        self.skipped_rows = 0
        self._lock = lock
        self._by_source: dict[str, list[str]] = {}
        self._claimed: set[str] = set()
        self._index_rows()
        self._pollers: dict[str, BatchPoller] = {}
        self._updates: dict[str, PollUpdate] = {}
        self._results = FinishedResults(client, manifest.results_dir)
        self._uploads = UploadStage(
            client, manifest.uploads, concurrency=self.limits.upload_concurrency, commit=self._commit,
            on_ready=self._upload_ready, on_change=self.notify,
        )  # fmt: skip
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
        """The job recorded at ``path`` (a new one if there is none and ``create``), its lock held.

        ``limits`` change the recorded ones (``None`` values keep them). Raises
        :class:`~batch_widget.jobs.lock.JobLockedError` when another process runs it, and
        :class:`~batch_widget.jobs.manifest.ManifestError` when the record is unreadable or was
        written for another endpoint or key (``start_over=True`` keeps it aside and begins anew).
        """
        changes = dict(limits or {})
        Limits().but(**changes)  # a bad limit is named before the file is touched
        p = Path(path)
        lock = ManifestLock(p)
        lock.acquire()
        try:
            if p.exists() and start_over:
                aside = p.with_name(f"{p.name}.{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.old")
                os.replace(p, aside)
                journal = p.with_name(p.name + ".journal")
                if journal.exists():
                    os.replace(journal, aside.with_name(aside.name + ".journal"))
                warnings.warn(f"started a new job in {p.name}; the previous record is kept as {aside.name}",
                              stacklevel=3)  # fmt: skip
            if p.exists():
                manifest = Manifest.load(p)
                _check_binding(manifest, client)
            elif create:
                manifest = Manifest(p, endpoint=Endpoint(client.base_url, client.key_fingerprint))
            else:
                raise InvalidInputError(f"no job manifest at {str(p)!r}; submit() writes one.")
            manifest.endpoint = Endpoint(client.base_url, client.key_fingerprint)
            manifest.limits = (manifest.limits or Limits()).but(**changes)
            if p.exists():
                manifest.save()  # the journal folded in, an older version written back as this one
        except BaseException:
            lock.release()
            raise
        return cls(client, manifest, lock, schedule=schedule)

    def configure(self, **limits: Any) -> None:
        """Change the job's limits (``None`` keeps one): chunk_size, max_content_hours, max_active,
        upload_concurrency, on_uncertain, slot_poll."""
        new = self.limits.but(**limits)
        if new != self.limits:
            self._hold()
            self.manifest.limits = new
            self._commit("meta")
            self._uploads.concurrency = new.upload_concurrency

    def add_rows(
        self,
        prepared: Prepared,
        videos: Mapping[Any, VideoSource] | None = None,
        *,
        inputs: pd.DataFrame | None = None,
    ) -> int:
        """Add the rows the job does not hold yet (by custom_id); returns how many were new.

        ``videos`` gives each row's ``(kind, source, size)`` by index label (rows not in it name an
        asset). A row already held is not sent again; one whose upload gave up or was canceled is
        tried again.
        """
        self._hold()
        man = self.manifest
        held = [r for r in prepared.rows if r.custom_id in man.rows]
        fresh = [r for r in prepared.rows if r.custom_id not in man.rows]
        self.skipped_rows = len(held)
        changed = sum(1 for r in held if man.rows[r.custom_id].request != _without_video(r.request))
        if changed:
            warnings.warn(
                f"{changed} rows are already in job {man.path.name} with a different request (prompt, "
                "window, ...); they are not sent again. Use another manifest= path for a new job.",
                stacklevel=3,
            )
        settings = prepared.job_settings
        if man.settings is not None and man.settings != settings and (fresh and man.chunks):
            raise InvalidInputError(
                f"manifest {str(man.path)!r} holds a job with other settings ({man.settings.to_json()!r}); "
                f"{len(fresh)} new rows cannot join it. Use another manifest= path for a new job."
            )
        if man.settings is None or not man.chunks:
            man.settings = settings
        touched: list[Record] = []
        direct: list[str] = []
        for r in fresh:
            kind, source, size = (videos or {}).get(r.label, ("asset", "", None))
            row = Row(custom_id=r.custom_id, index=jsonable_label(r.label), request=_without_video(r.request),
                      content_s=r.content_s)  # fmt: skip
            if kind == "asset":
                row.asset_id = r.request["video"]["asset_id"]
                direct.append(r.custom_id)
            else:
                row.source = source
                up = man.uploads.get(source)
                if up is None:
                    up = man.uploads[source] = Upload(source=source, kind="url" if kind == "url" else "file", size=size)
                    touched.append(up)
                elif up.state == "ready" and up.asset_id:  # shared with a row already held: ready at once
                    row.asset_id = up.asset_id
            man.rows[r.custom_id] = row
            self._by_source.setdefault(row.source, []).append(row.custom_id) if row.source else None
            touched.append(row)
        touched += self.plan(direct, attempt=1)
        touched += self._plan_ready_rows(force=False)
        if touched or not man.path.exists():
            self._commit("meta", *touched)
        if inputs is not None:
            self.inputs, self.input_ids = inputs, prepared.ids
        return len(fresh)

    # -- public -------------------------------------------------------------------------------------

    @property
    def limits(self) -> Limits:
        assert self.manifest.limits is not None
        return self.manifest.limits

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
            raise BatchWidgetError(f"job {self.path.name} was closed; bw.resume_job({str(self.path)!r}) opens it again.")
        if self.running:
            self._poke()
            return
        self._hold()
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
        """Wait, without blocking the kernel, until every row has an outcome or needs you.

        Returns the final :class:`JobSnapshot`; its ``state`` is ``done``, or ``attention`` when
        a chunk or an upload needs you (see :meth:`resolve`, :meth:`retry_uploads`), or
        ``canceled``. The final snapshot goes to the listeners once more from here, so the job
        widget pins its static summary from the waiting cell too (nbclient / papermill keep that one).
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
        client, under this job's lock), then reads the manifest again here. In a notebook, prefer
        ``await job.wait()``: while this blocks, the kernel runs nothing else and every live display pauses.
        """
        self._hold()
        self._flush()

        async def run() -> JobSnapshot:
            async with self.client.clone() as client:
                job = Job(client, Manifest.load(self.path), self._lock, schedule=self.schedule)
                try:
                    return await job.wait()
                finally:
                    job._stop_tasks()
                    job._flush()

        snap = run_in_thread(
            run,
            "batch_widget job wait",
            warn_in_loop="Job.wait_blocking() blocks the kernel until every batch has ended; "
            "use `await job.wait()` in a notebook.",
        )
        self.manifest.replace_with(Manifest.load(self.path))
        self._index_rows()
        self._release_if_idle()
        return snap

    async def cancel(self) -> list[Batch]:
        """Cancel the whole job: uploads stop, chunks not yet sent are skipped, active batches are canceled.

        Items already processing still finish (the API's rule). Returns the canceled batches.
        """
        self._hold()
        self._cancel_requested = True
        await self._stop_uploads("canceled by job.cancel(); job.retry_uploads() carries it on")
        touched: list[Record] = []
        for chunk in self.chunks:
            if chunk.state == "planned":
                chunk.skipped("canceled before it was submitted")
                touched.append(chunk)
        self._commit(*touched)
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
        self._hold()
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
            self._commit(*again)
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
        if action not in (None, "resubmit", "skip"):
            raise InvalidInputError(f"action {action!r} is not 'resubmit' or 'skip'.")
        self._hold()
        target = next(c for c in self.chunks if c.chunk == chunk)  # the record as read under the lock
        if batch_id is not None:
            target.created(validate_batch_id(batch_id), target.created_at, note="batch id given by the user")
        elif action == "resubmit":
            target.replanned(note="resubmitted by the user after an uncertain create")
        else:
            target.skipped("skipped by the user")
        self._commit(target)
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
        self._hold()
        outcomes: dict[int, dict[str, str]] = {}  # chunk → custom_id → its outcome there
        for chunk in self.chunks:
            if chunk.state != "created" or not chunk.batch_id:
                continue
            ended, unfinished = await self._batch_end(chunk)
            if not ended:
                outcomes[chunk.chunk] = dict.fromkeys(chunk.custom_ids, "unfinished")
            elif not unfinished:
                outcomes[chunk.chunk] = dict.fromkeys(chunk.custom_ids, "ready")
            else:
                lines = await self._lines(chunk.batch_id)
                seen = {ln.custom_id: ln.status.value for ln in lines if isinstance(ln, ResultLine)}
                outcomes[chunk.chunk] = {cid: seen.get(cid, "missing") for cid in chunk.custom_ids}
        ordered, parents, newest = rows_to_retry(self.chunks, outcomes, set(statuses), max_attempts)
        if not ordered:
            return []
        new_chunks = self.plan(ordered, attempt=None, resubmit_of=sorted(parents))
        for chunk in new_chunks:  # replaced counts per new chunk, for the overall bar
            counts: dict[str, int] = {}
            for cid in chunk.custom_ids:
                counts[newest[cid]] = counts.get(newest[cid], 0) + 1
            chunk.replaces = counts
        self._commit(*new_chunks)
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
            uploads=self.manifest.uploads, chunks=self.chunks,
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
            max_active=self.limits.max_active,
            manifest=self.path.name,
            updated_at=format_time(self.client.server_now()) or "",
            slot_poll=self.limits.slot_poll,
            uploads=self._uploads.counts() if self.manifest.uploads else None,
            before=self._rows_before_batches(),
        )

    def plan(self, custom_ids: Iterable[str], *, attempt: int | None, resubmit_of: Iterable[int] = ()) -> list[Chunk]:
        """Append chunks for ``custom_ids`` (rows already in the record), within the job's limits.

        ``attempt=None`` for a resubmission: one more than the newest attempt of its rows. The
        caller commits the chunks returned.
        """
        rows = self.manifest.rows
        pairs = [(cid, rows[cid].content_s) for cid in custom_ids]
        start = len(self.chunks)
        made = []
        lim = self.limits
        for n, ids in enumerate(plan_chunks(pairs, max_items=lim.chunk_size, max_content_hours=lim.max_content_hours)):
            tries = attempt
            if tries is None:
                tries = 1 + max(
                    (c.attempt for c in self.chunks if c.state == "created" and set(ids) & set(c.custom_ids)),
                    default=0,
                )
            chunk = Chunk(chunk=start + n, attempt=tries, custom_ids=list(ids), resubmit_of=list(resubmit_of))
            self.chunks.append(chunk)
            self._claimed.update(ids)
            made.append(chunk)
        return made

    def close(self) -> None:
        """Stop everything this job started (scheduler, uploads, results fetches, its share of the
        polling) and let its manifest go. The record stays; ``bw.resume_job`` opens it again."""
        self._closed = True
        self._stop_tasks()
        for poller in self._pollers.values():
            poller.remove_listener(self._on_poll)
            poller.release()
        self._pollers.clear()
        live_jobs.discard(self)
        forget_view(self)
        pending = [t for t in (self._task, self._upload_task) if t is not None and not t.done()]
        if not pending:
            self._let_go()
            return
        left = len(pending)

        def one_done(_: Any) -> None:  # the cancelled tasks record where they stopped, then the lock goes
            nonlocal left
            left -= 1
            if left == 0:
                self._let_go()

        for task in pending:
            task.add_done_callback(one_done)

    # -- display: the widget layer registers the job's view (this module imports no widget) ------

    @property
    def widget(self) -> Any:
        """The job's live widget (one per job; every display of the job shows it)."""
        return view_of(self)

    def _ipython_display_(self, **kwargs: Any) -> None:
        self.widget._ipython_display_(**kwargs)

    # -- the record: one writer, under the lock ----------------------------------------------------

    def _hold(self) -> None:
        """Hold the manifest's lock before a change; taken again after a pause, the record is read anew
        (another process may have written it meanwhile)."""
        if self._lock.held:
            return
        self._lock.acquire()
        try:
            fresh = Manifest.load(self.path) if self.path.exists() else None
        except BaseException:
            self._lock.release()
            raise
        if fresh is not None:
            _check_binding(fresh, self.client)
            fresh.limits = fresh.limits or self.limits
            self.manifest.replace_with(fresh)
            self._index_rows()

    def _commit(self, *changed: Record | Literal["meta"]) -> None:
        """Write changed records (appended to the journal; the whole file when there is none yet)."""
        if not self._lock.held:
            self._hold()
        if changed or not self.path.exists():
            self.manifest.record(*changed)

    def _flush(self) -> None:
        """The whole record to the file, the journal folded in."""
        if self._lock.held:
            self.manifest.save()

    def _release_if_idle(self) -> None:
        if not self.running and not (self._upload_task is not None and not self._upload_task.done()):
            self._let_go()

    def _let_go(self) -> None:
        if self._lock.held:
            self.manifest.save()
            self.manifest.close_journal()
            self._lock.release()

    def _index_rows(self) -> None:
        self._by_source = {}
        for cid, row in self.manifest.rows.items():
            if row.source:
                self._by_source.setdefault(row.source, []).append(cid)
        self._claimed = self.manifest.claimed()

    # -- uploads ----------------------------------------------------------------------------------------

    def _upload_ready(self, up: Upload, asset: Asset) -> None:
        rows = [self.manifest.rows[cid] for cid in self._by_source.get(up.source, ())]
        for row in rows:
            row.asset_ready(asset.id, asset.content_seconds)
        self._commit(*rows)
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
            self._commit(*stopped)

    def _plan_ready_rows(self, *, force: bool) -> list[Chunk]:
        """Chunks for uploaded rows whose asset is ready: a full chunk's worth, or all once uploads ended."""
        ready = [cid for cids in self._by_source.values() for cid in cids
                 if cid not in self._claimed and self.manifest.rows[cid].asset_id]  # fmt: skip
        if not ready or not (force or len(ready) >= self.limits.chunk_size or self._uploads.finished):
            return []
        order = {cid: i for i, cid in enumerate(self.manifest.rows)}
        return self.plan(sorted(ready, key=order.__getitem__), attempt=1)

    def _rows_before_batches(self) -> RowsBeforeBatches:
        if not self._by_source:
            return RowsBeforeBatches()
        uploading = failed = canceled = gave_up = 0
        errors: list[str] = []
        for source, cids in self._by_source.items():
            waiting = sum(1 for c in cids if c not in self._claimed)
            if not waiting:
                continue
            up = self.manifest.uploads[source]
            if up.state == "failed":
                failed += waiting
            elif up.state == "error":
                gave_up += waiting
                errors.append(f"{Path(source).name if up.kind == 'file' else source}: {up.error}")
            elif up.state == "canceled" or self._cancel_requested:
                canceled += waiting
            else:
                uploading += waiting
        return RowsBeforeBatches(uploading, failed, canceled, gave_up, tuple(errors))

    # -- plumbing -------------------------------------------------------------------------------

    async def _batch_end(self, chunk: Chunk) -> tuple[bool, int]:
        """Whether ``chunk``'s batch has ended, and how many of its items failed or were canceled."""
        if chunk.outcome is not None:
            return True, int(chunk.outcome.get("failed", 0)) + int(chunk.outcome.get("canceled", 0))
        assert chunk.batch_id is not None
        update = self._updates.get(chunk.batch_id)
        batch = update.batch if update is not None else None
        if batch is None or not batch.is_terminal:
            batch = await self.client.get(chunk.batch_id)
        return batch.is_terminal, batch.failed_items + batch.canceled_items

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
                due = [] if self._cancel_requested else self._plan_ready_rows(force=False)
                if due:  # batches start as soon as enough assets are ready: uploads and analysis overlap
                    self._commit(*due)
                todo = next((c for c in self.chunks if c.state == "planned"), None)
                uploading = self._upload_task is not None and not self._upload_task.done()
                if self._upload_task is not None and self._upload_task.done() and not self._upload_task.cancelled():
                    self._upload_task.result()  # an upload stage that stopped on an error stops the job
                if todo is None and uploading and not self._cancel_requested:
                    await self._pause(self.limits.slot_poll)  # every upload change wakes it
                    continue
                if todo is None or self._cancel_requested:
                    break
                if not await self._wait_for_slot():
                    continue
                await self._create(todo)
            self._set_message("")
            while not settled(self.chunks, self._updates):
                await self._pause(max(self.limits.slot_poll, 1.0))
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
            self._let_go()  # a job with nothing running holds no lock: another process may carry it on
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
            commit=self._commit, say=self._set_message, pause=self._pause,
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
                if self._lock.held:
                    self.manifest.record(chunk)
            if update.state == "done":
                self._results.prefetch(update.batch_id)
            self._poke()
            if self._active is not None and batch is not None and batch.is_terminal:
                self._active = max(0, self._active - 1)
        self._changed()


def _without_video(request: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k != "video"}


def _check_binding(manifest: Manifest, client: BatchClient) -> None:
    """Refuse a record made for another endpoint or key, saying what to do."""
    made = manifest.endpoint
    where = str(manifest.path)
    if made.base_url and made.base_url != client.base_url:
        raise ManifestError(
            f"manifest {where!r} was written for {made.base_url}; this client talks to {client.base_url}, where "
            "its batches do not exist. Nothing was sent. For a job on this endpoint pass another manifest= path, "
            "or start_over=True to begin a new job in this file (the old record is kept beside it)."
        )
    if made.key and made.key != client.key_fingerprint:
        raise ManifestError(
            f"manifest {where!r} was written for another API key (fingerprint {made.key}; this client's is "
            f"{client.key_fingerprint}), which may not see its batches. Nothing was sent. Use the key it was made "
            "with, pass another manifest= path, or start_over=True to begin a new job in this file."
        )


class LiveJobs:
    """The jobs this process runs, by manifest path and the client's identity (base URL, key
    fingerprint): a re-run cell gets its live job back, and never another key's."""

    def __init__(self) -> None:
        self._jobs: dict[tuple[str, tuple[str, str]], Job] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(path: Path, client: BatchClient) -> tuple[str, tuple[str, str]]:
        return (str(path.resolve()), client.identity)

    def get(self, path: Path, client: BatchClient) -> Job | None:
        with self._lock:
            return self._jobs.get(self._key(path, client))

    def add(self, job: Job) -> Job:
        with self._lock:
            self._jobs[self._key(job.path, job.client)] = job
        return job

    def discard(self, job: Job) -> None:
        with self._lock:
            key = self._key(job.path, job.client)
            if self._jobs.get(key) is job:
                del self._jobs[key]

    def values(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def clear(self) -> None:
        """Forget every job (as a kernel restart does); their tasks are not stopped."""
        with self._lock:
            self._jobs.clear()


#: the jobs this process runs (``submit`` and ``resume_job`` look here first)
live_jobs = LiveJobs()
