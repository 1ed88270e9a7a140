"""Where a job starts: :func:`submit` (a DataFrame in) and :func:`resume_job` (a manifest in).

Both return the live :class:`~batch_widget.jobs.job.Job` at once, its scheduler running on the
event loop; in the same process, re-running either with the same manifest returns that same job,
with only the rows it does not hold yet added.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..account import ACCOUNT_MAX_ACTIVE
from ..client import BatchClient, default_client
from ..errors import InvalidInputError
from ..frontends import in_colab, under_colab_content
from ..poller import Schedule
from ..validation import MAX_REQUESTS
from .job import Job, Uncertain, live_jobs
from .manifest import DEFAULT_MANIFEST, Manifest
from .rows import MAX_CONTENT_HOURS, Prepared, jsonable_label, prepare_requests
from .uploads import UploadStage, classify_video

__all__ = ["resume_job", "submit"]

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


def submit(
    data: pd.DataFrame,
    *,
    asset: str = "asset_id",
    video: str | None = None,
    video_kind: str | None = None,
    upload_concurrency: int = 4,
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
    max_active: int = ACCOUNT_MAX_ACTIVE,
    chunk_size: int = MAX_REQUESTS,
    max_content_hours: float = MAX_CONTENT_HOURS,
    on_uncertain: Uncertain = "ask",
    schedule: Schedule | None = None,
    slot_poll: float = 15.0,
) -> Job:
    """Submit every row of ``data`` as batch requests, as one job; returns the :class:`Job` at once.

    The rows are checked first (every problem named by row, nothing sent on any), recorded in the
    manifest, split into chunks of at most ``chunk_size`` requests and ``max_content_hours``, and
    sent by a scheduler on the running event loop that keeps at most ``max_active`` batches
    active on the account. Re-running with the same ``manifest`` re-attaches to the job and
    sends only rows whose custom_id it does not hold yet.

    Parameters
    ----------
    data : DataFrame
        One row per video.
    asset : str
        The column of asset ids.
    video : str, optional
        Instead of ``asset``: a column whose values are asset ids, http(s) URLs or local paths
        (the kind inferred per row). Files and URLs are uploaded first, ``upload_concurrency`` at
        a time; each row joins a batch once its asset is ready (uploads and analysis overlap);
        a failed asset fails its row only. Every upload is in the manifest: re-runs upload
        nothing twice.
    video_kind : {"asset", "url", "file"} or str, optional
        Force the kind for every row, or name a column that gives it per row.
    prompt : str, optional
        The prompt text for every row (``defaults.prompt``).
    key : str, optional
        A column of your own ids, used as custom_ids (1-64 of ``[A-Za-z0-9_-]``, unique). Without
        it each row gets a stable generated id from its index label and asset id.
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
        The job's JSON record (default ``bw_job.manifest.json`` in the working directory, i.e.
        beside the notebook). One manifest = one job: use another path for another job.
    client : BatchClient, optional
        Defaults to one client per process from ``TWELVELABS_API_KEY``.
    max_active : int
        At most this many batches active on the account (the API allows 5).
    on_uncertain : {"ask", "resubmit", "skip", "raise"}
        What to do with a create whose answer was lost and that matches no batch for sure:
        ``ask`` (default) marks the chunk ``uncertain`` and waits for :meth:`Job.resolve`.
    chunk_size, max_content_hours : optional
        Smaller batches than the API's limits of 1,000 requests and 2,000 content hours.
    schedule : Schedule, optional
        When to poll each batch (see :class:`~batch_widget.poller.Schedule`).
    slot_poll : float
        Seconds between checks for a free slot while the account is at its cap.

    Returns
    -------
    Job
        Display it for the live job widget; ``await job.wait()``; ``await job.to_pandas()``.
    """
    # checked here, before the rows, so a bad limit is named before anything else
    Job.check_limits(chunk_size=chunk_size, max_content_hours=max_content_hours)
    kinds = _video_kinds(data, video, video_kind) if video is not None else {}
    prepared = prepare_requests(
        data, asset=video or asset, key=key, prompt=prompt, prompt_column=prompt_column,
        response_format=response_format, response_format_column=response_format_column,
        start_column=start_column, end_column=end_column, duration_column=duration_column,
        analysis_mode=analysis_mode, defaults=defaults, model_name=model_name,
    )  # fmt: skip
    client = default_client(client)
    path = Path(manifest)
    _warn_if_wiped_on_reset(path)
    job = live_jobs.get(path, client)
    if job is None:
        loaded = Manifest.load(path) if path.exists() else None
        if loaded is None:
            loaded = Manifest(path, {"settings": prepared.settings, "base_url": client.base_url})
        job = live_jobs.add(Job(
            client, loaded, max_active=max_active, on_uncertain=on_uncertain, schedule=schedule,
            slot_poll=slot_poll, chunk_size=chunk_size, max_content_hours=max_content_hours,
        ))  # fmt: skip
    else:
        job.configure(
            max_active=max_active, on_uncertain=on_uncertain, slot_poll=slot_poll, chunk_size=chunk_size,
            max_content_hours=max_content_hours,
        )  # fmt: skip
    _add_rows(job, prepared, kinds)
    _attach_uploads(job, upload_concurrency)
    job.inputs, job.input_ids = data, prepared.ids
    job.start()
    return job


def _video_kinds(data: pd.DataFrame, video: str, video_kind: str | None) -> dict[Any, tuple[str, str, int | None]]:
    """Each row's ``(kind, source, size)``; every unusable value named by row, before anything is sent."""
    if video not in data.columns:
        raise InvalidInputError(f"video={video!r} is not a column of the DataFrame; columns: {list(data.columns)!r}.")
    per_row = data[video_kind].tolist() if video_kind is not None and video_kind in data.columns else None
    kinds: dict[Any, tuple[str, str, int | None]] = {}
    problems: list[str] = []
    for i, (label, value) in enumerate(zip(data.index, data[video].tolist(), strict=True)):
        kind = per_row[i] if per_row is not None else video_kind
        try:
            kinds[label] = classify_video(value, kind if isinstance(kind, str) else None, f"row {label!r}")
        except InvalidInputError as exc:
            problems.append(str(exc))
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise InvalidInputError(f"{len(problems)} rows cannot be uploaded; nothing was sent:\n  "
                                + "\n  ".join(problems[:10]) + more)
    return kinds


def _attach_uploads(job: Job, concurrency: int) -> None:
    if job.uploads is None and any("upload" in r for r in job.manifest.rows.values()):
        job.uploads = UploadStage(job.client, job.manifest, concurrency=concurrency, on_change=job.notify)


def _add_rows(job: Job, prepared: Prepared, kinds: Mapping[Any, tuple[str, str, int | None]] | None = None) -> None:
    man = job.manifest
    claimed = man.claimed() | {cid for cid, r in man.rows.items() if "upload" in r}
    fresh = [r for r in prepared.rows if r.custom_id not in claimed]
    known = [r for r in prepared.rows if r.custom_id in claimed]
    job.skipped_rows = len(known)
    def differs(r: Any) -> bool:
        held = man.rows.get(r.custom_id, {})
        if "upload" in held:  # the uploaded asset's id replaced the source: compare the rest
            return {**held["request"], "video": None} != {**r.request, "video": None}
        return bool(held.get("request") != r.request)

    changed = sum(1 for r in known if differs(r))
    if changed:
        warnings.warn(
            f"{changed} rows are already in job {man.path.name} with a different request (prompt, "
            "window, ...); they are not sent again. Use another manifest= path for a new job.",
            stacklevel=3,
        )
    if fresh and man.chunks and man.settings != prepared.settings:
        raise InvalidInputError(
            f"manifest {str(man.path)!r} holds a job with other settings ({man.settings!r}); "
            f"{len(fresh)} new rows cannot join it. Use another manifest= path for a new job."
        )
    if not man.chunks:
        man.settings = prepared.settings
        man.base_url = job.client.base_url
    direct = []
    for r in fresh:
        man.rows[r.custom_id] = {
            "index": jsonable_label(r.label),
            "request": r.request,
            "content_s": r.content_s,
        }
        kind, source, size = (kinds or {}).get(r.label, ("asset", "", None))
        if kind == "asset":
            direct.append(r.custom_id)
        else:  # uploaded first; planned by the scheduler once its asset is ready
            man.rows[r.custom_id]["upload"] = {"kind": kind, "source": source, "size": size, "state": "pending"}
    if direct:
        job.plan(direct, attempt=1)
    if fresh or not man.path.exists():
        man.save()


def resume_job(
    manifest: str | os.PathLike[str] = DEFAULT_MANIFEST,
    client: BatchClient | None = None,
    *,
    max_active: int = ACCOUNT_MAX_ACTIVE,
    on_uncertain: Uncertain = "ask",
    schedule: Schedule | None = None,
    slot_poll: float = 15.0,
) -> Job:
    """Re-attach to a job from its manifest (e.g. after a kernel restart) and carry it on.

    Chunks not yet sent are sent, interrupted creates are matched (see ``on_uncertain``), and
    every batch is watched again. In the same process this returns the live job itself.
    """
    path = Path(manifest)
    _warn_if_wiped_on_reset(path)
    client = default_client(client)
    job = live_jobs.get(path, client)
    if job is None:
        try:
            loaded = Manifest.load(path)
        except FileNotFoundError:
            raise InvalidInputError(f"no job manifest at {str(path)!r}; submit() writes one.") from None
        if loaded.base_url and loaded.base_url != client.base_url:
            warnings.warn(
                f"manifest {path.name} was written for {loaded.base_url}; "
                f"the client talks to {client.base_url}",
                stacklevel=2,
            )
        job = live_jobs.add(Job(
            client, loaded, max_active=max_active, on_uncertain=on_uncertain, schedule=schedule,
            slot_poll=slot_poll,
        ))  # fmt: skip
    _attach_uploads(job, 4)
    job.start()
    return job
