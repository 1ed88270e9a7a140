"""The jobs this process runs, by manifest path, so that a re-run cell gets the live job back."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from ..client import BatchClient

__all__ = ["LiveJobs"]


class _Running(Protocol):
    @property
    def path(self) -> Path: ...

    @property
    def client(self) -> BatchClient: ...


Job = TypeVar("Job", bound=_Running)


class LiveJobs(Generic[Job]):
    """The jobs this process runs, by manifest path: a re-run cell gets the live job back.

    Generic over the job type, so that this module needs nothing of the job's.
    """

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(path: Path) -> str:
        return str(path.resolve())

    def get(self, path: Path, client: BatchClient) -> Job | None:
        """The job running from ``path`` with a client of the same base URL, if any."""
        with self._lock:
            job = self._jobs.get(self._key(path))
        return job if job is not None and job.client.base_url == client.base_url else None

    def add(self, job: Job) -> Job:
        with self._lock:
            self._jobs[self._key(job.path)] = job
        return job

    def discard(self, job: Job) -> None:
        with self._lock:
            if self._jobs.get(self._key(job.path)) is job:
                del self._jobs[self._key(job.path)]

    def values(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def clear(self) -> None:
        """Forget every job (as a kernel restart does); their tasks are not stopped."""
        with self._lock:
            self._jobs.clear()

