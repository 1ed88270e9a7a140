"""A job's record in this process: the manifest, the lock that makes this process its one writer,
and what the job asks of its rows (which are planned, which wait for an upload).

:class:`JobRecord` changes when the record's shape, its binding or its locking change; the
:class:`~batch_widget.jobs.job.Job` above it (the scheduler and the user's actions) holds one and
writes only through it. The lock is held while the job is live: taken when the record is opened
or changed, let go when nothing of the job runs any more (so another kernel may carry it on), and
taken again (the file read anew) before the next change.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from ..client import BatchClient
from ..errors import InvalidInputError
from ..validation import validate_batch_id
from .lock import ManifestLock
from .manifest import Chunk, Endpoint, Limits, Manifest, ManifestError, Record, Row, Upload
from .rows import Prepared, jsonable_label, plan_chunks
from .snapshot import RowsBeforeBatches

__all__ = ["JobRecord", "VideoSource", "check_binding"]

#: a row's video as checked before anything is sent: (kind, source, file size)
VideoSource = tuple[str, str, "int | None"]


class JobRecord:
    """The manifest of one job and its lock; every write of the job goes through :meth:`commit`."""

    def __init__(self, client: BatchClient, manifest: Manifest, lock: ManifestLock) -> None:
        """Use :meth:`JobRecord.open`: it takes the lock and checks the record first."""
        self.client = client
        self.manifest = manifest
        self.lock = lock
        self._by_source: dict[str, list[str]] = {}
        self._claimed: set[str] = set()
        self._index()
        self._seen = self._on_disk()  # the files as this process last left them

    @classmethod
    def open(
        cls,
        client: BatchClient,
        path: str | os.PathLike[str],
        *,
        limits: Mapping[str, Any] | None = None,
        create: bool = True,
        start_over: bool = False,
    ) -> JobRecord:
        """The record at ``path`` (a new one if there is none and ``create``), its lock held.

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
                _keep_aside(p)
            if p.exists():
                manifest = Manifest.load(p)
                check_binding(manifest, client)
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
        return cls(client, manifest, lock)

    @property
    def path(self) -> Path:
        return self.manifest.path

    @property
    def limits(self) -> Limits:
        assert self.manifest.limits is not None
        return self.manifest.limits

    # -- the one writer ---------------------------------------------------------------------------

    def hold(self) -> None:
        """Hold the lock before a change. Taken again after a pause, the record is read anew if another
        process wrote it meanwhile (else what this process holds, written or not yet, stays)."""
        if self.lock.held:
            return
        self.lock.acquire()
        if self._on_disk() == self._seen:
            return
        try:
            fresh = Manifest.load(self.path) if self.path.exists() else None
            if fresh is not None:
                check_binding(fresh, self.client)
        except BaseException:
            self.lock.release()
            raise
        if fresh is not None:
            fresh.limits = fresh.limits or self.limits
            self.manifest.replace_with(fresh)
            self._index()
        self._seen = self._on_disk()

    def commit(self, *changed: Record | Literal["meta"]) -> None:
        """Write changed records (appended to the journal; the whole file when there is none yet)."""
        self.hold()
        if changed or not self.path.exists():
            self.manifest.record(*changed)
            self._seen = self._on_disk()

    def flush(self) -> None:
        """The whole record to the file, the journal folded in."""
        if self.lock.held:
            self.manifest.save()
            self._seen = self._on_disk()

    def let_go(self) -> None:
        """Write the whole record and release the lock (nothing of the job runs in this process now)."""
        if self.lock.held:
            self.manifest.save()
            self.manifest.close_journal()
            self._seen = self._on_disk()
            self.lock.release()

    def _on_disk(self) -> tuple[object, ...]:
        """What the manifest and its journal look like on disk (to tell whether someone else wrote them)."""
        out: list[object] = []
        for p in (self.path, self.manifest.journal_path):
            try:
                st = p.stat()
            except FileNotFoundError:
                out.append(None)
                continue
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(out)

    def reread(self) -> None:
        """Take the file as another job object of this process left it (``wait_blocking``'s worker)."""
        self.manifest.replace_with(Manifest.load(self.path))
        self._index()
        self._seen = self._on_disk()

    def set_limits(self, **limits: Any) -> bool:
        """Change the limits (``None`` keeps one); True when they changed."""
        new = self.limits.but(**limits)
        if new == self.limits:
            return False
        self.hold()
        self.manifest.limits = new
        self.commit("meta")
        return True

    def resolve(self, chunk: int, *, batch_id: str | None, action: str | None) -> Chunk:
        """The decision about an ``uncertain`` (or refused) chunk applied to it; the caller commits it."""
        found = [c for c in self.manifest.chunks if c.chunk == chunk]
        if not found:
            raise InvalidInputError(
                f"chunk {chunk!r} is not part of this job (chunks 0 to {len(self.manifest.chunks) - 1})."
            )
        if found[0].state not in ("uncertain", "create_failed"):
            raise InvalidInputError(f"chunk {chunk} is {found[0].state}, not uncertain: nothing to resolve.")
        if (batch_id is None) == (action is None):
            raise InvalidInputError("give exactly one of batch_id= or action='resubmit' / 'skip'.")
        if action not in (None, "resubmit", "skip"):
            raise InvalidInputError(f"action {action!r} is not 'resubmit' or 'skip'.")
        self.hold()
        target = next(c for c in self.manifest.chunks if c.chunk == chunk)  # the record as read under the lock
        if batch_id is not None:
            target.created(validate_batch_id(batch_id), target.created_at, note="batch id given by the user")
        elif action == "resubmit":
            target.replanned(note="resubmitted by the user after an uncertain create")
        else:
            target.skipped("skipped by the user")
        return target

    # -- rows -------------------------------------------------------------------------------------

    def add_rows(self, prepared: Prepared, videos: Mapping[Any, VideoSource] | None = None) -> tuple[int, int]:
        """Add the rows the record does not hold yet (by custom_id); ``(new, already held)``.

        ``videos`` gives each row's ``(kind, source, size)`` by index label (rows not in it name an
        asset). Rows that name an asset are planned into chunks at once; uploaded rows once their
        asset is ready. Rows that share a source share one upload.
        """
        self.hold()
        man = self.manifest
        held = [r for r in prepared.rows if r.custom_id in man.rows]
        fresh = [r for r in prepared.rows if r.custom_id not in man.rows]
        changed = sum(1 for r in held if man.rows[r.custom_id].request != _without_video(r.request))
        if changed:
            warnings.warn(
                f"{changed} rows are already in job {man.path.name} with a different request (prompt, "
                "window, ...); they are not sent again. Use another manifest= path for a new job.",
                stacklevel=4,
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
                self._by_source.setdefault(source, []).append(row.custom_id)
            man.rows[r.custom_id] = row
            touched.append(row)
        touched += self.plan(direct, attempt=1)
        if touched or not man.path.exists():
            self.commit("meta", *touched)
        return len(fresh), len(held)

    def rows_of(self, source: str) -> list[Row]:
        """The rows that share this upload."""
        return [self.manifest.rows[cid] for cid in self._by_source.get(source, ())]

    def plan(self, custom_ids: Iterable[str], *, attempt: int | None, resubmit_of: Iterable[int] = ()) -> list[Chunk]:
        """Append chunks for ``custom_ids`` (rows already in the record), within the job's limits.

        ``attempt=None`` for a resubmission: one more than the newest attempt of its rows. The
        caller commits the chunks returned.
        """
        rows = self.manifest.rows
        chunks = self.manifest.chunks
        pairs = [(cid, rows[cid].content_s) for cid in custom_ids]
        start = len(chunks)
        made = []
        lim = self.limits
        for n, ids in enumerate(plan_chunks(pairs, max_items=lim.chunk_size, max_content_hours=lim.max_content_hours)):
            tries = attempt
            if tries is None:
                tries = 1 + max(
                    (c.attempt for c in chunks if c.state == "created" and set(ids) & set(c.custom_ids)), default=0
                )
            chunk = Chunk(chunk=start + n, attempt=tries, custom_ids=list(ids), resubmit_of=list(resubmit_of))
            chunks.append(chunk)
            self._claimed.update(ids)
            made.append(chunk)
        return made

    def plan_ready_rows(self, *, uploads_ended: bool) -> list[Chunk]:
        """Chunks for uploaded rows whose asset is ready: a full chunk's worth, or all once uploads ended."""
        ready = [cid for cids in self._by_source.values() for cid in cids
                 if cid not in self._claimed and self.manifest.rows[cid].asset_id]  # fmt: skip
        if not ready or not (len(ready) >= self.limits.chunk_size or uploads_ended):
            return []
        order = {cid: i for i, cid in enumerate(self.manifest.rows)}
        return self.plan(sorted(ready, key=order.__getitem__), attempt=1)

    def rows_before_batches(self, *, canceling: bool) -> RowsBeforeBatches:
        """Rows in no chunk yet because of their upload, by what became of it."""
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
            elif up.state == "canceled" or canceling:
                canceled += waiting
            else:
                uploading += waiting
        return RowsBeforeBatches(uploading, failed, canceled, gave_up, tuple(errors))

    def _index(self) -> None:
        self._by_source = {}
        for cid, row in self.manifest.rows.items():
            if row.source:
                self._by_source.setdefault(row.source, []).append(cid)
        self._claimed = self.manifest.claimed()


def _without_video(request: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k != "video"}


def _keep_aside(path: Path) -> None:
    """``start_over``: the old record (and its journal) renamed beside it, never deleted."""
    aside = path.with_name(f"{path.name}.{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.old")
    os.replace(path, aside)
    journal = path.with_name(path.name + ".journal")
    if journal.exists():
        os.replace(journal, aside.with_name(aside.name + ".journal"))
    warnings.warn(f"started a new job in {path.name}; the previous record is kept as {aside.name}", stacklevel=5)


def check_binding(manifest: Manifest, client: BatchClient) -> None:
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
