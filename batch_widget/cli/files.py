"""Tables in and out: the input of ``submit``, and results written as .parquet, .csv or .jsonl.

A results file is written to a temporary file beside the target and renamed over it, so a
failure (a full disk, Ctrl-C) never leaves half a file where the whole one was expected.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from pathlib import Path

import pandas as pd

from .context import UsageError

__all__ = ["INPUT_FORMATS", "OUTPUT_FORMATS", "check_output", "read_table", "write_frame"]

OUTPUT_FORMATS = (".parquet", ".csv", ".jsonl")
INPUT_FORMATS = (".csv", ".parquet")


def _suffix(path: str) -> str:
    return Path(path).suffix.lower()


def _need_pyarrow(path: str) -> None:
    if importlib.util.find_spec("pyarrow") is None:
        raise UsageError(
            f"{path!r}: .parquet files need pyarrow; install it (pip install pyarrow) or use .csv / .jsonl."
        )


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
    return target


def read_table(path: str) -> pd.DataFrame:
    """Read a .csv (every column as text: asset ids are not numbers) or .parquet table."""
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
        raise UsageError(f"cannot read {path!r}: {exc}") from None


def write_frame(frame: pd.DataFrame, target: Path) -> None:
    """Write ``frame`` to ``target`` (format by extension) through a temp file and a rename."""
    suffix = target.suffix.lower()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    try:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_json(tmp, orient="records", lines=True, date_format="iso", force_ascii=False)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
