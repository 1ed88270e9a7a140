"""A job's results: fetched as each batch ends, kept beside the manifest, joined back onto the rows.

- :class:`FinishedResults`: an ended batch's results cannot change any more, so the job fetches
  them as soon as its poller reports the end (a few at a time) and writes the raw JSON Lines
  beside the manifest (``<manifest stem>.results/<batch_id>.jsonl.gz``, atomically, compressed).
  ``to_pandas()`` reads them from memory or disk first: a restarted kernel fetches nothing twice,
  and a job older than the server's 30 days still has its table.
- Pure pandas over the frames ``frames.results_to_frame`` built per batch: :func:`newest_outcomes`
  keeps one row per custom_id (its newest attempt, with ``attempts`` and ``status_history``);
  :func:`join_to_inputs` attaches them to the DataFrame the job was submitted from, or to the
  rows recorded in the manifest after a restart, with every row's asset id;
  :func:`rows_to_retry` picks the rows whose newest outcome calls for another attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .._aio import loop_running
from ..client import BatchClient
from ..errors import ResultLineError
from ..frames import join_results, results_to_frame, segments_to_frame
from ..models import Batch, ResultLine, parse_result_line
from .manifest import Chunk, Row, Upload

__all__ = [
    "BATCH_COLUMNS",
    "FinishedResults",
    "attempts_frame",
    "batch_end",
    "empty_long_frame",
    "join_to_inputs",
    "newest_outcomes",
    "newest_segments",
    "outcomes_by_chunk",
    "parse_body",
    "rows_to_retry",
]  # fmt: skip

log = logging.getLogger("batch_widget.jobs")

Lines = list[ResultLine | ResultLineError]

#: what a job adds to each batch's results frame, after custom_id
BATCH_COLUMNS = ("batch_id", "chunk", "attempt")


def empty_long_frame() -> pd.DataFrame:
    """The every-attempt frame of a job with no batch yet: the results columns and the job's own."""
    return _add_batch_columns(results_to_frame([]), None)


LinesOf = Callable[[str], Awaitable[Lines]]


async def attempts_frame(chunks: Sequence[Chunk], lines_of: LinesOf, *, parse_json: bool = False,
                         expand: bool = False) -> pd.DataFrame:  # fmt: skip
    """Every attempt of every row: one results frame per created chunk, with the job's own columns."""
    frames = []
    for chunk in chunks:
        if chunk.state != "created" or not chunk.batch_id:
            continue
        frame = results_to_frame(await lines_of(chunk.batch_id), order=chunk.custom_ids, parse_json=parse_json,
                                 expand=expand)  # fmt: skip
        _add_batch_columns(frame, chunk)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else empty_long_frame()


async def newest_segments(chunks: Sequence[Chunk], lines_of: LinesOf) -> pd.DataFrame:
    """One row per segment, each row's segments from its newest attempt that has any."""
    frames = []
    for chunk in chunks:
        if chunk.state != "created" or not chunk.batch_id:
            continue
        frame = segments_to_frame(await lines_of(chunk.batch_id), order=chunk.custom_ids)
        _add_batch_columns(frame, chunk)
        frames.append(frame)
    if not frames:
        return _add_batch_columns(segments_to_frame([]), None)
    long = pd.concat(frames, ignore_index=True)
    newest = long.groupby("custom_id", sort=False, dropna=False)["chunk"].transform("max")
    kept: pd.DataFrame = long[long["chunk"] == newest].reset_index(drop=True)
    return kept


def _add_batch_columns(frame: pd.DataFrame, chunk: Chunk | None) -> pd.DataFrame:
    values = (chunk.batch_id, chunk.chunk, chunk.attempt) if chunk is not None else (None, None, None)
    for pos, (name, value) in enumerate(zip(BATCH_COLUMNS, values, strict=True), start=1):
        frame.insert(pos, name, value if chunk is not None else pd.Series([], dtype=object))
    return frame


def newest_outcomes(long: pd.DataFrame) -> pd.DataFrame:
    """One row per custom_id: its newest attempt, with ``attempts`` and ``status_history``."""
    keyed = long[long["custom_id"].notna()]
    statuses = keyed["status"].astype(object).where(keyed["status"].notna(), "missing").astype(str).tolist()
    if keyed["custom_id"].is_unique:  # every row tried once (no resubmission yet): nothing to pick
        once: pd.DataFrame = keyed.copy()
        once["attempts"] = np.ones(len(once), dtype="int64")
        once["status_history"] = statuses
        return once
    history: dict[object, list[str]] = {}
    for cid, status in zip(keyed["custom_id"].astype(object).tolist(), statuses, strict=True):
        history.setdefault(cid, []).append(status)
    newest = keyed.drop_duplicates("custom_id", keep="last").copy()
    order = newest["custom_id"].astype(object).tolist()
    # plain Python over the rows: a groupby with a joining lambda was half of to_pandas' time
    newest["attempts"] = np.fromiter((len(history[c]) for c in order), dtype="int64", count=len(order))
    newest["status_history"] = [" → ".join(history[c]) for c in order]
    result: pd.DataFrame = newest
    return result


def join_to_inputs(
    newest: pd.DataFrame,
    *,
    inputs: pd.DataFrame | None,
    input_ids: pd.Series | None,
    rows: Mapping[str, Row],
    uploads: Mapping[str, Upload],
    chunks: Sequence[Chunk],
) -> pd.DataFrame:
    """``newest`` joined onto the input rows by custom_id; rows never sent say why in ``note``.

    Without the input DataFrame (a job resumed from its manifest), the left side is one row per
    job row with its index label (``row``). Every row's asset id is a column (``asset_id``, or
    ``job_asset_id`` when the input has an ``asset_id`` column of its own that is not it).
    """
    tmp = "__bw_custom_id__"
    right = newest.rename(columns={"custom_id": tmp})
    if inputs is not None and input_ids is not None:
        left = inputs.copy()
        left[tmp] = input_ids
    else:
        left = pd.DataFrame({"row": [r.index for r in rows.values()], tmp: list(rows)})
    assets = pd.Series([_asset_of(r, uploads) for r in rows.values()], index=list(rows), dtype=object)
    ids = left[tmp].map(assets)
    if "asset_id" not in left.columns:
        left.insert(0 if inputs is None else len(left.columns) - 1, "asset_id", ids)
    elif not left["asset_id"].astype(object).where(left["asset_id"].notna(), None).equals(ids.where(ids.notna(), None)):
        left["job_asset_id"] = ids
    joined: pd.DataFrame = join_results(left, right, on=tmp)
    name = "custom_id" if "custom_id" not in left.columns else "job_custom_id"
    joined = joined.rename(columns={tmp: name})
    # rows that never went into a batch: say why
    if "note" in joined.columns:
        pending = {cid: c.state for c in chunks if c.state != "created" for cid in c.custom_ids}
        if pending:
            note = joined["note"].astype(object).to_numpy(copy=True)
            for i, cid in enumerate(joined[name].tolist()):
                state = pending.get(cid)
                if state is not None and joined["status"].iloc[i] is not None and pd.isna(joined["status"].iloc[i]):
                    note[i] = f"not submitted: chunk {state}"
            joined["note"] = pd.Series(note, index=joined.index).astype(joined["note"].dtype)
    _mark_unsent_uploads(joined, name, rows, uploads)
    return joined


def _asset_of(row: Row, uploads: Mapping[str, Upload]) -> str | None:
    if row.asset_id:
        return row.asset_id
    up = uploads.get(row.source) if row.source else None
    return up.asset_id if up is not None else None


def _mark_unsent_uploads(
    joined: pd.DataFrame, name: str, rows: Mapping[str, Row], uploads: Mapping[str, Upload]
) -> None:
    """Rows whose upload failed or was canceled never reach a batch: that outcome, and why, in ``note``."""
    outcome: dict[str, tuple[str, str | None]] = {}
    for cid, row in rows.items():
        up = uploads.get(row.source) if row.source else None
        if up is not None and up.state in ("failed", "error", "canceled"):
            outcome[cid] = ("canceled" if up.state == "canceled" else "failed", up.error or up.note)
    if not outcome or "status" not in joined.columns:
        return
    keys = joined[name]
    hit = keys.isin(list(outcome)) & joined["status"].isna()
    joined["status"] = joined["status"].astype(object).where(~hit, keys.map(lambda c: outcome.get(c, ("",))[0]))
    if "note" in joined.columns:
        joined["note"] = joined["note"].astype(object).where(~hit, keys.map(lambda c: outcome.get(c, ("", None))[1]))


async def batch_end(client: BatchClient, chunk: Chunk, batch: Batch | None) -> tuple[bool, int]:
    """Whether ``chunk``'s batch has ended, and how many of its items failed or were canceled: from its
    recorded outcome, else its latest poll (``batch``), else one ``get``."""
    if chunk.outcome is not None:
        return True, int(chunk.outcome.get("failed", 0)) + int(chunk.outcome.get("canceled", 0))
    assert chunk.batch_id is not None
    if batch is None or not batch.is_terminal:
        batch = await client.get(chunk.batch_id)
    return batch.is_terminal, batch.failed_items + batch.canceled_items


async def outcomes_by_chunk(
    chunks: Sequence[Chunk], end_of: Callable[[Chunk], Awaitable[tuple[bool, int]]], lines_of: LinesOf
) -> dict[int, dict[str, str]]:
    """chunk → custom_id → its outcome there (``unfinished`` while the batch runs; results read only
    for batches that ended with failed or canceled items)."""
    outcomes: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        if chunk.state != "created" or not chunk.batch_id:
            continue
        ended, unfinished = await end_of(chunk)
        if not ended:
            outcomes[chunk.chunk] = dict.fromkeys(chunk.custom_ids, "unfinished")
        elif not unfinished:
            outcomes[chunk.chunk] = dict.fromkeys(chunk.custom_ids, "ready")
        else:
            lines = await lines_of(chunk.batch_id)
            seen = {ln.custom_id: ln.status.value for ln in lines if isinstance(ln, ResultLine)}
            outcomes[chunk.chunk] = {cid: seen.get(cid, "missing") for cid in chunk.custom_ids}
    return outcomes


def rows_to_retry(
    chunks: Sequence[Chunk], outcomes: Mapping[int, Mapping[str, str]], wanted: set[str], max_attempts: int
) -> tuple[list[str], list[int], dict[str, str]]:
    """The rows to submit again: newest outcome in ``wanted`` and fewer than ``max_attempts`` tries.

    ``outcomes`` maps each created chunk to its rows' outcomes (``ready``, ``failed``, ...,
    ``unfinished`` while its batch runs); a row in a chunk not yet sent is ``unfinished``.
    Returns the custom_ids in chunk order, the chunks they retry, and each row's newest outcome.
    """
    newest: dict[str, tuple[int, str]] = {}
    attempts: dict[str, int] = {}
    for chunk in chunks:
        for cid in chunk.custom_ids:
            attempts[cid] = attempts.get(cid, 0) + (1 if chunk.state == "created" else 0)
        if chunk.state in ("planned", "creating", "uncertain"):
            newest.update((cid, (chunk.chunk, "unfinished")) for cid in chunk.custom_ids)
        elif chunk.chunk in outcomes:
            newest.update((cid, (chunk.chunk, status)) for cid, status in outcomes[chunk.chunk].items())
    redo: dict[int, list[str]] = {}
    for cid, (chunk_no, status) in newest.items():
        if status in wanted and attempts.get(cid, 0) < max_attempts:
            redo.setdefault(chunk_no, []).append(cid)
    ordered = [cid for chunk in chunks for cid in redo.get(chunk.chunk, [])]
    return ordered, sorted(redo), {cid: status for cid, (_, status) in newest.items()}


def parse_body(body: bytes) -> Lines:
    """A results body (JSON Lines) as lines, by the one parser of a line."""
    out: Lines = []
    for raw in body.split(b"\n"):
        item = parse_result_line(raw, len(out) + 1)
        if item is not None:
            out.append(item)
    return out


class FinishedResults:
    """The results of ended batches: fetched once each (at most ``concurrency`` at a time), kept in
    memory and in ``folder`` on disk (``None``: memory only).

    A background fetch that fails is forgotten (and logged): the next :meth:`lines` call fetches
    again in the foreground, with the client's retries, and raises if that fails too. A kept file
    that cannot be read is fetched again.
    """

    def __init__(self, client: BatchClient, folder: Path | None, concurrency: int = 4) -> None:
        self.client = client
        self.folder = folder
        self.concurrency = concurrency
        self._kept: dict[str, Lines] = {}
        self._fetching: dict[str, asyncio.Task[Lines]] = {}
        self._slots: asyncio.Semaphore | None = None

    def path(self, batch_id: str) -> Path | None:
        return self.folder / f"{batch_id}.jsonl.gz" if self.folder is not None else None

    def on_disk(self, batch_id: str) -> bool:
        path = self.path(batch_id)
        return path is not None and path.exists()

    def prefetch(self, batch_id: str) -> None:
        """Start fetching an ended batch's results in the background (once; no-op without a loop)."""
        if batch_id in self._kept or batch_id in self._fetching or self.on_disk(batch_id) or not loop_running():
            return
        task = asyncio.get_running_loop().create_task(self._fetch(batch_id), name=f"batch_widget results {batch_id}")
        self._fetching[batch_id] = task
        task.add_done_callback(lambda t: self._fetched(batch_id, t))

    async def lines(self, batch_id: str, *, ended: bool) -> Lines:
        """The batch's results: kept (in memory or on disk), or awaited from the fetch under way, or fetched now.

        Only an ``ended`` batch's results are kept (a running batch's grow).
        """
        kept = self._kept.get(batch_id)
        if kept is not None:
            return kept
        read = await self._read(batch_id)
        if read is not None:
            self._kept[batch_id] = read
            return read
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

    def cancel(self) -> None:
        """Stop the background fetches (the job is closing)."""
        for task in list(self._fetching.values()):
            task.cancel()

    async def _read(self, batch_id: str) -> Lines | None:
        path = self.path(batch_id)
        if path is None or not path.exists():
            return None
        try:
            body = await asyncio.to_thread(_read_gz, path)
        except (OSError, EOFError) as exc:
            log.info("kept results of batch %s cannot be read (%s); fetching them again", batch_id, exc)
            return None
        return parse_body(body)

    async def _fetch(self, batch_id: str) -> Lines:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        async with self._slots:
            body = await self.client.result_body(batch_id)
            lines = parse_body(body)
            if any(isinstance(line, ResultLineError) for line in lines):  # a corrupted transfer heals
                body = await self.client.result_body(batch_id)
                lines = parse_body(body)
            path = self.path(batch_id)
            if path is not None:
                try:
                    await asyncio.to_thread(_write_gz, path, body)
                except OSError as exc:  # the table still comes from memory; say why it is not kept
                    log.warning("could not keep batch %s's results in %s (%s)", batch_id, path, exc)
        self._kept[batch_id] = lines
        return lines

    def _fetched(self, batch_id: str, task: asyncio.Task[Lines]) -> None:
        self._fetching.pop(batch_id, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.info("background fetch of batch %s's results failed (%s); to_pandas() will ask again", batch_id, error)


def _write_gz(path: Path, body: bytes) -> None:
    """Atomically: a temp file beside it, fsync, ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3, mtime=0) as gz:
        gz.write(body)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_gz(path: Path) -> bytes:
    with gzip.open(path, "rb") as fh:
        return fh.read()
