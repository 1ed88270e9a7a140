"""One process at a time per manifest: an OS lock beside the file, or a heartbeat where there is none.

A job holds its manifest's lock while it is live in a process; a second kernel or terminal on
the same manifest gets :class:`JobLockedError` naming the holder (pid, host, since when) before it
creates anything. The lock is a small file beside the manifest (``.<name>.lock``, holding the
holder's pid, host and start time): the manifest itself cannot carry it, since every full write
replaces it with a new file.

- Where the file system locks (``fcntl.flock``): the OS releases the lock of a process that dies,
  so a lock left by a dead process is free by itself.
- Where it cannot (some network and FUSE drives, such as a mounted Google Drive, answer ENOLCK or
  EOPNOTSUPP): a warning says so once, and the lock file itself is the lock, created exclusively,
  its time touched by the holder every ``HEARTBEAT_S`` seconds from a thread; a lock file whose
  heartbeat stopped for ``STALE_S`` seconds, or whose holder is a dead pid on this host, is taken over.

The lock is no Python-level reentrant lock: one :class:`ManifestLock` object per job, and the job
that holds it may acquire it again (a no-op).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

try:
    import fcntl
except ImportError:  # Windows: the heartbeat lock only
    fcntl = None  # type: ignore[assignment]

from ..errors import ManifestError
from ..models import format_time

__all__ = ["HEARTBEAT_S", "STALE_S", "JobLockedError", "ManifestLock"]

HEARTBEAT_S = 10.0
STALE_S = 60.0
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}
_WARNED: set[str] = set()


class JobLockedError(ManifestError):
    """Another process (or another job object) holds the manifest: nothing was created."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    return True


class ManifestLock:
    """The lock of one manifest; ``acquire()`` raises :class:`JobLockedError` naming the holder."""

    def __init__(self, manifest: str | os.PathLike[str]) -> None:
        self.manifest = Path(manifest)
        self.lock_path = self.manifest.with_name(f".{self.manifest.name}.lock")
        #: the lock file of the heartbeat fallback (a file of its own: a failed flock leaves ``lock_path``)
        self.beat_path = self.manifest.with_name(f".{self.manifest.name}.heartbeat")
        self.mode: Literal["flock", "heartbeat"] | None = None
        self._fd: int | None = None
        self._beat: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def held(self) -> bool:
        return self.mode is not None

    def acquire(self) -> None:
        """Take the lock (a no-op when this object holds it)."""
        if self.held:
            return
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        if fcntl is not None and self._try_flock():
            return
        self._take_heartbeat()

    def release(self) -> None:
        """Let the lock go (a no-op when not held)."""
        if self.mode == "heartbeat":
            self._stop.set()
            if self._beat is not None:
                self._beat.join(timeout=HEARTBEAT_S)
            if self._mine():
                with contextlib.suppress(OSError):
                    self.beat_path.unlink()
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
        self.mode = None

    def __del__(self) -> None:  # a job dropped without close() still frees its manifest
        with contextlib.suppress(Exception):
            self.release()

    # -- the OS lock ------------------------------------------------------------------------------------

    def _try_flock(self) -> bool:
        """True when taken; False when the file system cannot lock (fall back); raises when held elsewhere."""
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = self._holder()
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise self._locked(holder) from None
            if exc.errno in _NO_LOCKS:
                return False
            raise
        self._fd = fd
        self.mode = "flock"
        os.ftruncate(fd, 0)
        os.write(fd, self._claim())
        return True

    # -- the heartbeat lock -------------------------------------------------------------------------------

    def _take_heartbeat(self) -> None:
        where = str(self.beat_path.parent)
        if where not in _WARNED:
            _WARNED.add(where)
            warnings.warn(
                f"the file system of {where} cannot lock files (a network or FUSE drive?); the job manifest is "
                f"guarded by a lock file with a heartbeat instead ({self.beat_path.name}): a second process is "
                f"kept out while this one runs, and takes over {STALE_S:g} s after it stops.",
                stacklevel=4,
            )
        claim = self._claim()
        for _ in range(3):
            try:
                fd = os.open(self.beat_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._holder(self.beat_path)
                if not self._stale(holder):
                    raise self._locked(holder) from None
                # a dead holder's file: replace it, then check after a moment that no one else did too
                tmp = self.beat_path.with_name(f"{self.beat_path.name}.{os.getpid()}.tmp")
                tmp.write_bytes(claim)
                os.replace(tmp, self.beat_path)
                time.sleep(0.05)
                if self._mine():
                    break
                continue
            with os.fdopen(fd, "wb") as fh:
                fh.write(claim)
            break
        else:
            raise self._locked(self._holder(self.beat_path))
        self.mode = "heartbeat"
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name=f"batch_widget lock {self.manifest.name}",
                                      daemon=True)  # fmt: skip
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self.beat_path)

    def _stale(self, holder: dict[str, Any]) -> bool:
        try:
            age = time.time() - self.beat_path.stat().st_mtime
        except FileNotFoundError:
            return True
        here = holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int)
        return (here and not _pid_alive(holder["pid"])) or age > STALE_S

    def _mine(self) -> bool:
        holder = self._holder(self.beat_path)
        return holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname() and (
            holder.get("token") == id(self))  # fmt: skip

    # -- who holds it -----------------------------------------------------------------------------------

    def _claim(self) -> bytes:
        since = format_time(datetime.now(timezone.utc))
        return json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since,
                           "token": id(self)}).encode()  # fmt: skip

    def _holder(self, path: Path | None = None) -> dict[str, Any]:
        try:
            data = json.loads((path or self.lock_path).read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _locked(self, holder: dict[str, Any]) -> JobLockedError:
        who = f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('since', '?')}"
        here = holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname()
        hint = (
            "another job object of this process runs it: use that job (or job.close() it first)"
            if here
            else "wait for that process to finish, stop it, or pass another manifest= path for a new job"
        )
        return JobLockedError(
            f"job manifest {str(self.manifest)!r} is in use by {who}; nothing was sent. Only one process at a "
            f"time may run a job: {hint}."
        )
