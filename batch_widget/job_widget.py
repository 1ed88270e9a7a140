"""The job widget: one live view for the many batches of a :class:`~batch_widget.jobs.Job`.

Traits are a projection of the job's snapshots, which it receives as a listener of the job (the
job knows nothing of it); the JS view (``js/job.ts``) draws from them only and sends two
actions back: ``cancel_all`` and ``refresh``. When the job ends, every display is replaced by
the static summary of :mod:`batch_widget.summary`, so a saved notebook shows the final counts.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import traitlets

from ._viewing import register_view
from .jobs import Job, JobSnapshot
from .peek import PeekRow, peek
from .summary import JOB_STATES
from .summary import job_html as summary_html
from .summary import job_text as summary_text
from .views import PinnedView

__all__ = ["JobWidget", "summary_html", "summary_text"]

log = logging.getLogger("batch_widget.job_widget")

_STATIC = Path(__file__).parent / "static"


class JobWidget(PinnedView):
    """Live view of a job. Display the job itself (``job``) rather than building one."""

    _esm = _STATIC / "job.js"
    _css = _STATIC / "job.css"

    # Every synced trait, with its meaning and unit; counts are rows of the job.
    #: ``idle``, ``submitting``, ``waiting``, ``running``, ``canceling``; then ``done``,
    #: ``attention`` (a chunk needs a decision), ``error`` or ``canceled``
    state = traitlets.Unicode("idle").tag(sync=True)
    #: what the scheduler is doing or waiting for, or what needs the user ("" when nothing)
    message = traitlets.Unicode("").tag(sync=True)
    #: rows in the job
    total = traitlets.Int(0).tag(sync=True)
    #: rows whose newest outcome is ready
    ready = traitlets.Int(0).tag(sync=True)
    #: rows whose newest outcome is failed
    failed = traitlets.Int(0).tag(sync=True)
    #: rows canceled, or skipped before they were sent
    canceled = traitlets.Int(0).tag(sync=True)
    #: rows being analysed
    processing = traitlets.Int(0).tag(sync=True)
    #: rows in a batch, waiting to start
    queued = traitlets.Int(0).tag(sync=True)
    #: rows not yet sent (their chunk waits for a slot)
    waiting = traitlets.Int(0).tag(sync=True)
    #: one dict per chunk: chunk, attempt, batch_id, state, status, total, the five item counts,
    #: eta_s (seconds), error, note, resubmit_of (the chunks it retries)
    batches = traitlets.List(traitlets.Dict(), default_value=[]).tag(sync=True)
    #: active batches on the account at the last slot check (None before the first)
    active = traitlets.Int(None, allow_none=True).tag(sync=True)
    #: the job's cap of active batches on the account
    max_active = traitlets.Int(5).tag(sync=True)
    #: seconds until every row is finished, at the current rates (None when unknown)
    eta_s = traitlets.Float(None, allow_none=True).tag(sync=True)
    #: cancel-all was asked for
    cancel_requested = traitlets.Bool(False).tag(sync=True)
    #: the manifest's file name (not its path: a saved notebook need not show the directories)
    manifest = traitlets.Unicode("").tag(sync=True)
    #: when this snapshot was taken (ISO 8601, on the server's clock)
    updated_at = traitlets.Unicode("").tag(sync=True)
    #: seconds until the next poll of a running batch (paces the view's pulls); 0 once finished
    interval_s = traitlets.Float(0.0).tag(sync=True)
    # The upload stage (rows given as files or URLs); all zero when the job uploads nothing.
    #: rows whose file or URL is being sent, or waits for an upload slot
    uploads_uploading = traitlets.Int(0).tag(sync=True)
    #: rows whose asset was created and is being processed by the API
    uploads_processing = traitlets.Int(0).tag(sync=True)
    #: rows whose asset is ready (they join a batch)
    uploads_ready = traitlets.Int(0).tag(sync=True)
    #: rows whose upload or asset failed (the row fails, the job goes on)
    uploads_failed = traitlets.Int(0).tag(sync=True)
    #: bytes of local files sent so far (bytes)
    uploads_bytes_sent = traitlets.Int(0).tag(sync=True)
    #: bytes of all the job's local files (bytes; URLs are not counted)
    uploads_bytes_total = traitlets.Int(0).tag(sync=True)
    #: bytes sent per second since the upload stage started (bytes per second)
    uploads_rate = traitlets.Float(0.0).tag(sync=True)
    #: what the job used, one line (``Usage.describe()``: content hours of completed items, input /
    #: output tokens, items not billed); "" until measured once the job has ended
    usage_line = traitlets.Unicode("").tag(sync=True)

    def __init__(self, job: Job) -> None:
        self._job = job
        self._usage_asked = False
        super().__init__()
        job.add_listener(self._on_snapshot)
        self._on_snapshot(job.snapshot())

    @property
    def job(self) -> Job:
        return self._job

    # -- display ----------------------------------------------------------------------------

    def _finished(self) -> bool:
        return self._job.finished

    def _summary(self, *, live: bool) -> tuple[str, str]:
        snap = self._job.snapshot()
        return summary_text(snap, live=live), summary_html(snap, live=live)

    def close(self) -> None:
        job: Job | None = getattr(self, "_job", None)  # None when __init__ did not get that far
        if job is not None:
            job.remove_listener(self._on_snapshot)
        super().close()

    # -- plumbing -----------------------------------------------------------------------------

    def _on_snapshot(self, snap: JobSnapshot) -> None:
        with self._pushing():
            self.state = snap.state
            self.message = snap.message
            self.total = snap.total
            for name in JOB_STATES:
                setattr(self, name, int(snap.counts.get(name, 0)))
            self.batches = [dict(b) for b in snap.batches]
            self.active = snap.active
            self.max_active = snap.max_active
            self.eta_s = snap.eta_s
            self.error = snap.error
            self.cancel_requested = snap.cancel_requested
            self.manifest = snap.manifest
            self.updated_at = snap.updated_at
            self.interval_s = snap.interval_s
            up = snap.uploads
            self.uploads_uploading, self.uploads_processing = up.uploading, up.processing
            self.uploads_ready, self.uploads_failed = up.ready, up.failed
            self.uploads_bytes_sent, self.uploads_bytes_total = up.bytes_sent, up.bytes_total
            self.uploads_rate = up.rate
            self.usage_line = snap.usage
        if snap.finished and not snap.usage and not self._usage_asked:  # the job tells it again with the line
            self._usage_asked = self._measure_usage()
        self._usage_asked = self._usage_asked and snap.finished
        if snap.finished:
            # pinned again on every final snapshot: the one that Job.wait() sends comes from the
            # waiting cell, which nbclient / papermill keep (they drop the background task's)
            self.finalize(force=True)
        elif self._finalized:
            self._finalized = False  # resubmitted: live again until it ends again

    def _measure_usage(self) -> bool:
        """Measure the ended job's usage in the background (its results are kept: no results request);
        False when no event loop runs here (``Job.wait()`` measures it itself)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False

        async def run() -> None:
            try:
                await self._job.usage()
            except Exception:  # a courtesy: the widget goes on without the line
                log.debug("could not measure the job's usage", exc_info=True)

        self._spawn(run())
        return True

    async def _peek_rows(self, n: int) -> list[PeekRow]:
        return await peek(self._job.client, self._job.batch_ids, n)

    def _on_action(self, kind: str) -> bool:
        if kind == "cancel_all":
            self._spawn_action(self._job.cancel, "Cancel")
        elif kind == "refresh":
            self._job.refresh()
        else:
            return False
        return True


register_view(Job, JobWidget)
