"""Where a job starts: :func:`submit` (a DataFrame in) and :func:`resume_job` (a manifest in).

Both check everything they can before any request (the rows, the limits, the record's endpoint
and key, the manifest's lock) and return the live :class:`~batch_widget.jobs.job.Job` at once,
its scheduler running on the event loop. In the same process, re-running either with the same
manifest and client identity returns that same job, with only the rows it does not hold yet added.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..client import BatchClient, default_client
from ..errors import InvalidInputError
from ..frontends import in_colab, under_colab_content
from ..poller import Schedule
from .budget import budget_spent
from .job import Job
from .limits import Limits, Uncertain
from .manifest import DEFAULT_MANIFEST, Manifest
from .record import VideoSource
from .rows import Prepared, prepare_requests
from .uploads import classify_video

__all__ = ["Checked", "LiveJobs", "check_submission", "live_jobs", "refuse_over_budget", "resume_job", "submit"]

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
        """The live job of ``path`` for this client's identity; a closed one is forgotten."""
        with self._lock:
            key = self._key(path, client)
            job = self._jobs.get(key)
            if job is not None and job.closed:
                del self._jobs[key]
                return None
            return job

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
            return [job for job in self._jobs.values() if not job.closed]

    def clear(self) -> None:
        """Forget every job (as a kernel restart does); their tasks are not stopped."""
        with self._lock:
            self._jobs.clear()


#: the jobs this process runs (``submit`` and ``resume_job`` look here first)
live_jobs = LiveJobs()


_WARNED: set[Path] = set()


def _warn_if_wiped_on_reset(path: Path) -> None:
    """In Colab, say once per manifest that ``/content`` is wiped by a runtime reset."""
    if not in_colab() or not under_colab_content(path) or path.resolve() in _WARNED:
        return
    _WARNED.add(path.resolve())
    warnings.warn(
        f"the job manifest {str(path)!r} is in Colab's /content, which a runtime reset deletes, and with "
        "it the record that makes re-runs safe. Keep it on Drive: from google.colab import drive; "
        "drive.mount('/content/drive'); then manifest='/content/drive/MyDrive/<name>.manifest.json'.",
        stacklevel=3,
    )


@dataclass(frozen=True)
class Checked:
    """A submission checked as :func:`submit` checks it, before any request: what both ``submit`` and
    ``plan`` start from."""

    data: pd.DataFrame
    prepared: Prepared
    #: each uploaded row's ``(kind, source, size)`` by index label (rows not in it name an asset)
    videos: dict[Any, VideoSource]
    #: the limits given (``None``: as recorded)
    limits: dict[str, Any]
    path: Path
    client: BatchClient
    #: this process's live job of ``path`` for the client, if any
    job: Job | None
    #: the file as read once, when there is no live job (None: no file, unreadable, or start_over;
    #: ``Job.open`` reads it again under the lock, and says what is wrong with an unreadable one)
    on_disk: Manifest | None = None

    def recorded(self) -> Manifest | None:
        """The job's record as it stands (the live job's, else the file's; None when there is none)."""
        return self.job.manifest if self.job is not None else self.on_disk

    def effective_limits(self) -> Limits:
        """The limits the job would run with: the given ones over the recorded ones."""
        man = self.recorded()
        return ((man.limits if man is not None else None) or Limits()).but(**self.limits)


def check_submission(
    data: pd.DataFrame,
    *,
    asset: str = "asset_id",
    video: str | None = None,
    video_kind: str | None = None,
    upload_concurrency: int | None = None,
    prompt: str | None = None,
    key: str | None = None,
    prompt_column: str | None = None,
    response_format: Mapping[str, Any] | None = None,
    response_format_column: str | None = None,
    start_column: str | None = None,
    end_column: str | None = None,
    duration_column: str | None = None,
    analysis_mode: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    model_name: str = "pegasus1.5",
    manifest: str | os.PathLike[str] = DEFAULT_MANIFEST,
    client: BatchClient | None = None,
    max_active: int | None = None,
    chunk_size: int | None = None,
    max_content_hours: float | None = None,
    max_content_hours_total: float | None = None,
    on_uncertain: Uncertain | None = None,
    slot_poll: float | None = None,
    start_over: bool = False,
) -> Checked:
    """Everything :func:`submit` checks before a request (the limits, every row, every video), no
    request sent and no file written; see :func:`submit` for the parameters."""
    limits = dict(max_active=max_active, chunk_size=chunk_size, max_content_hours=max_content_hours,
                  upload_concurrency=upload_concurrency, on_uncertain=on_uncertain, slot_poll=slot_poll,
                  max_content_hours_total=max_content_hours_total)  # fmt: skip
    Limits().but(**limits)  # a bad limit is named before the rows
    prepared = prepare_requests(
        data, asset=video or asset, key=key, prompt=prompt, prompt_column=prompt_column,
        response_format=response_format, response_format_column=response_format_column,
        start_column=start_column, end_column=end_column, duration_column=duration_column,
        analysis_mode=analysis_mode, defaults=defaults, model_name=model_name,
    )  # fmt: skip
    if video is not None and video not in data.columns:
        raise InvalidInputError(f"video={video!r} is not a column of the DataFrame; columns: {list(data.columns)!r}.")
    client = default_client(client)
    path = Path(manifest)
    job = live_jobs.get(path, client)
    on_disk = _read_once(path) if job is None and not start_over else None
    record = job.manifest if job is not None else on_disk
    known: Mapping[str, Any] = record.uploads if record is not None else {}
    videos = _video_sources(data, video, video_kind, known) if video is not None else {}
    return Checked(data, prepared, videos, limits, path, client, job, on_disk)


def refuse_over_budget(checked: Checked) -> None:
    """Refuse, before anything is sent, a submission whose known content hours pass its budget."""
    budget = checked.effective_limits().max_content_hours_total
    if budget is None:
        return
    man = checked.recorded()
    held = man.rows if man is not None else {}
    sent = budget_spent(man.chunks, held) if man is not None else 0.0
    new = sum(r.content_s or 0.0 for r in checked.prepared.rows if r.custom_id not in held) / 3600.0
    waiting = sum(held[cid].content_s or 0.0 for cid in held if man is not None and cid not in man.claimed()) / 3600.0
    if sent + new + waiting > budget:
        raise InvalidInputError(
            f"the job's known content hours ({_hours(sent + new + waiting)}: {_hours(sent)} already sent, "
            f"{_hours(new + waiting)} to send) exceed max_content_hours_total={budget:g}; nothing was sent. "
            "bw.plan(...) shows the hours per batch; pass a larger max_content_hours_total to send it."
        )


def _hours(h: float) -> str:
    return f"{h:,.2f} h"


def submit(
    data: pd.DataFrame,
    *,
    asset: str = "asset_id",
    video: str | None = None,
    video_kind: str | None = None,
    upload_concurrency: int | None = None,
    prompt: str | None = None,
    key: str | None = None,
    prompt_column: str | None = None,
    response_format: Mapping[str, Any] | None = None,
    response_format_column: str | None = None,
    start_column: str | None = None,
    end_column: str | None = None,
    duration_column: str | None = None,
    analysis_mode: str | None = None,
    defaults: Mapping[str, Any] | None = None,
    model_name: str = "pegasus1.5",
    manifest: str | os.PathLike[str] = DEFAULT_MANIFEST,
    client: BatchClient | None = None,
    max_active: int | None = None,
    chunk_size: int | None = None,
    max_content_hours: float | None = None,
    max_content_hours_total: float | None = None,
    on_uncertain: Uncertain | None = None,
    schedule: Schedule | None = None,
    slot_poll: float | None = None,
    start_over: bool = False,
) -> Job:
    """Submit every row of ``data`` as batch requests, as one job; returns the :class:`Job` at once.

    The rows are checked first (every problem named by row, nothing sent on any), recorded in the
    manifest, split into chunks of at most ``chunk_size`` requests and ``max_content_hours``, and
    sent by a scheduler on the running event loop that keeps at most ``max_active`` batches
    active on the account. Re-running with the same ``manifest`` re-attaches to the job and
    sends only rows whose custom_id it does not hold yet (uploads that gave up are tried again).

    Parameters
    ----------
    data : DataFrame
        One row per video.
    asset : str
        The column of asset ids.
    video : str, optional
        Instead of ``asset``: a column whose values are asset ids, http(s) URLs or local paths
        (the kind inferred per row). Files and URLs are uploaded first, ``upload_concurrency`` at
        a time, once per distinct file or URL; each row joins a batch once its asset is ready
        (uploads and analysis overlap); a failed asset fails its rows only. Every upload is in
        the manifest: re-runs upload nothing twice, and a row whose asset is made never needs its
        file again.
    video_kind : {"asset", "url", "file"} or str, optional
        Force the kind for every row, or name a column that gives it per row.
    prompt : str, optional
        The prompt text for every row (``defaults.prompt``).
    key : str, optional
        A column of your own ids, used as custom_ids (1-64 of ``[A-Za-z0-9_-]``, unique). Without
        it each row gets a stable generated id from its index label and video.
    prompt_column, response_format_column : str, optional
        Per-row prompt text / response_format (a dict or its JSON); a missing value falls back
        to ``prompt`` / ``response_format``.
    start_column, end_column, duration_column : str, optional
        Per-row analysis window (seconds) and video duration (seconds, used for the 2 h window
        check and the 2,000 content hours per batch).
    analysis_mode : {"general", "time_based_metadata"}, optional
        Inferred from the response formats when not given; mixed modes are refused.
    defaults : dict, optional
        Other batch defaults (``temperature``, ``max_tokens``, ...).
    manifest : path
        The job's record (default ``bw_job.manifest.json`` in the working directory, i.e.
        beside the notebook). One manifest = one job: use another path for another job. It is
        bound to the client's endpoint and key, and run by one process at a time.
    client : BatchClient, optional
        Defaults to one client per process from ``TWELVELABS_API_KEY``.
    max_active, chunk_size, max_content_hours, upload_concurrency, slot_poll, on_uncertain : optional
        The job's limits, recorded in the manifest (``None``: as recorded, else the API's
        limits: 5 active batches, 1,000 requests and 2,000 content hours per batch; 4 uploads
        at once; a slot check every 15 s; ``on_uncertain="ask"``). ``on_uncertain`` says what
        to do with a create whose answer was lost and that matches no batch for sure: ``ask``
        marks the chunk ``uncertain`` and waits for :meth:`Job.resolve`; also ``resubmit``,
        ``skip``, ``raise``.
    max_content_hours_total : float, optional
        A budget of content hours for the whole job (every attempt counts; recorded in the
        manifest). When the hours already known (duration or window columns, rows already sent)
        exceed it, ``submit`` refuses before anything is sent, naming the figures; the job never
        creates a batch that would take it past the budget (those chunks are ``over_budget``,
        their rows unsent); re-run ``submit`` with a larger figure to send them.
        ``bw.plan(...)`` shows the hours first.
    schedule : Schedule, optional
        When to poll each batch (see :class:`~batch_widget.poller.Schedule`).
    start_over : bool
        Begin a new job in ``manifest`` even though it holds another (kept aside as
        ``<name>.<time>.old``); needed when it was made for another endpoint or key.

    Returns
    -------
    Job
        Display it for the live job widget; ``await job.wait()``; ``await job.to_pandas()``.
    """
    checked = check_submission(
        data, asset=asset, video=video, video_kind=video_kind, upload_concurrency=upload_concurrency, prompt=prompt,
        key=key, prompt_column=prompt_column, response_format=response_format,
        response_format_column=response_format_column, start_column=start_column, end_column=end_column,
        duration_column=duration_column, analysis_mode=analysis_mode, defaults=defaults, model_name=model_name,
        manifest=manifest, client=client, max_active=max_active, chunk_size=chunk_size,
        max_content_hours=max_content_hours, max_content_hours_total=max_content_hours_total,
        on_uncertain=on_uncertain, slot_poll=slot_poll, start_over=start_over,
    )  # fmt: skip
    refuse_over_budget(checked)
    _warn_if_wiped_on_reset(checked.path)
    job = checked.job
    if job is None:
        job = Job.open(checked.client, checked.path, limits=checked.limits, schedule=schedule, start_over=start_over)
        live_jobs.add(job)
    else:
        job.configure(**checked.limits)
    prepared, videos = checked.prepared, checked.videos
    job.add_rows(prepared, videos, inputs=data)
    job.retry_uploads()  # a re-run after an outage tries the uploads that gave up again
    job.start()
    return job


def _read_once(path: Path) -> Manifest | None:
    """The manifest before the lock is taken (its uploads, so files already uploaded need not exist
    any more; its limits and hours, for the budget); None if there is none or it is unreadable
    (``Job.open`` then says what is wrong with it)."""
    try:
        return Manifest.load(path) if path.exists() else None
    except Exception:
        return None


def _video_sources(
    data: pd.DataFrame, video: str, video_kind: str | None, known: Mapping[str, Any]
) -> dict[Any, VideoSource]:
    """Each row's ``(kind, source, size)``; every unusable value named by row, before anything is sent."""
    per_row = data[video_kind].tolist() if video_kind is not None and video_kind in data.columns else None
    kinds: dict[Any, VideoSource] = {}
    problems: list[str] = []
    for i, (label, value) in enumerate(zip(data.index, data[video].tolist(), strict=True)):
        kind = per_row[i] if per_row is not None else video_kind
        try:
            kinds[label] = classify_video(value, kind if isinstance(kind, str) else None, f"row {label!r}", known)
        except InvalidInputError as exc:
            problems.append(str(exc))
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise InvalidInputError(f"{len(problems)} rows cannot be uploaded; nothing was sent:\n  "
                                + "\n  ".join(problems[:10]) + more)
    return kinds


def resume_job(
    manifest: str | os.PathLike[str] = DEFAULT_MANIFEST,
    client: BatchClient | None = None,
    *,
    max_active: int | None = None,
    chunk_size: int | None = None,
    max_content_hours: float | None = None,
    upload_concurrency: int | None = None,
    on_uncertain: Uncertain | None = None,
    schedule: Schedule | None = None,
    slot_poll: float | None = None,
    max_content_hours_total: float | None = None,
) -> Job:
    """Re-attach to a job from its manifest (e.g. after a kernel restart) and carry it on.

    Its recorded limits hold unless given here. Chunks not yet sent are sent, interrupted creates
    are matched (see ``on_uncertain``), unfinished uploads resume, and every batch whose results
    are not kept yet is watched again. In the same process this returns the live job itself.
    """
    path = Path(manifest)
    _warn_if_wiped_on_reset(path)
    client = default_client(client)
    limits = dict(max_active=max_active, chunk_size=chunk_size, max_content_hours=max_content_hours,
                  upload_concurrency=upload_concurrency, on_uncertain=on_uncertain, slot_poll=slot_poll,
                  max_content_hours_total=max_content_hours_total)  # fmt: skip
    job = live_jobs.get(path, client)
    if job is None:
        job = live_jobs.add(Job.open(client, path, limits=limits, schedule=schedule, create=False))
    else:
        job.configure(**limits)
    job.retry_uploads(canceled=False)  # carry on: uploads that gave up go again; a canceled job stays so
    job.start()
    return job
