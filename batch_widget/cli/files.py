"""Tables in and out: the input of ``submit``, and results written as .parquet, .csv or .jsonl.

A results file is written to a temporary ``.part`` file beside the target and renamed over it,
so a failure (a full disk, Ctrl-C, SIGTERM) never leaves half a file where the whole one was
expected, and never a ``.part`` either. The file gets the mode a new file gets from the umask
(not ``mkstemp``'s 0600), or the mode of the file it replaces. Every failure to write is one
:class:`UsageError` naming the path (exit 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .context import UsageError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["INPUT_FORMATS", "OUTPUT_FORMATS", "check_output", "new_file_mode", "read_table", "write_frame"]

OUTPUT_FORMATS = (".parquet", ".csv", ".jsonl")
INPUT_FORMATS = (".csv", ".parquet")


def _suffix(path: str) -> str:
    return Path(path).suffix.lower()


def _need_pyarrow(path: str) -> None:
    if importlib.util.find_spec("pyarrow") is None:
        raise UsageError(
            f"{path!r}: .parquet files need pyarrow; install it (pip install pyarrow) or use .csv / .jsonl."
        )


def _reason(exc: BaseException) -> str:
    """One line: an OSError's own words (no errno, no repeated paths), else the first line of the message."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return first


def check_output(path: str) -> Path:
    """Refuse an output path the command cannot write, before any request is sent."""
    suffix = _suffix(path)
    if suffix not in OUTPUT_FORMATS:
        shown = suffix or "no extension"
        raise UsageError(f"cannot write {path!r}: unknown file type ({shown}); use one of {', '.join(OUTPUT_FORMATS)}.")
    if suffix == ".parquet":
        _need_pyarrow(path)
    target = Path(path)
    if not target.parent.is_dir():
        raise UsageError(f"cannot write {path!r}: the folder {str(target.parent)!r} does not exist.")
    if target.is_dir():
        raise UsageError(f"cannot write {path!r}: it is a folder.")
    if not os.access(target.parent, os.W_OK):
        raise UsageError(f"cannot write {path!r}: the folder {str(target.parent)!r} is not writable.")
    return target


def read_table(path: str) -> pd.DataFrame:
    """Read a .csv (every column as text: asset ids are not numbers) or .parquet table."""
    import pandas as pd

    suffix = _suffix(path)
    if suffix not in INPUT_FORMATS:
        raise UsageError(f"cannot read {path!r}: unknown file type ({suffix or 'no extension'}); use .csv or .parquet.")
    if not Path(path).is_file():
        raise UsageError(f"no such file: {path!r}.")
    try:
        if suffix == ".parquet":
            _need_pyarrow(path)
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype=str)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path!r}: {_reason(exc)}") from None


def new_file_mode(target: Path) -> int:
    """The mode the written file gets: the replaced file's, else what the umask leaves of 0666."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(target.stat().st_mode)
    mask = os.umask(0)  # the only way to read it; put back at once (the command runs no other thread here)
    os.umask(mask)
    return 0o666 & ~mask


def _write(frame: pd.DataFrame, tmp: str, suffix: str) -> None:
    if suffix == ".parquet":
        frame.to_parquet(tmp, index=False)
    elif suffix == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_json(tmp, orient="records", lines=True, date_format="iso", force_ascii=False)


async def write_frame(frame: pd.DataFrame, target: Path) -> None:
    """Write ``frame`` to ``target`` (format by extension) through a ``.part`` file and a rename.

    The writing runs in a thread, so Ctrl-C and SIGTERM are heard at once: the thread is let
    finish (it cannot be stopped), then its ``.part`` file is removed.

    Raises
    ------
    UsageError
        One line naming the path, whatever stopped the write (exit 2).
    """
    try:
        mode = new_file_mode(target)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        os.close(fd)
    except OSError as exc:
        raise UsageError(f"cannot write {str(target)!r}: {_reason(exc)}.") from None
    writing = asyncio.ensure_future(asyncio.to_thread(_write, frame, tmp, target.suffix.lower()))
    try:
        await asyncio.shield(writing)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as exc:
        if not writing.done():  # stopped mid-write: the thread writes on; its file goes once it is done
            await asyncio.wait({writing})
            if not writing.cancelled():
                writing.exception()  # seen here: its failure does not matter any more
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, (OSError, ValueError, TypeError, ImportError)):
            raise UsageError(f"cannot write {str(target)!r}: {_reason(exc)}.") from None
        raise
