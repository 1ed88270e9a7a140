"""What every subcommand shares: the exit codes, the API key, the client and the poll schedule.

The key is read from ``TWELVELABS_API_KEY`` or from the first line of ``--api-key-file``, never
from an argument: argv shows in ``ps`` and in shell history. It goes straight into the client
(whose repr hides it) and into no message.

Light on purpose: the client (httpx) and the poller are imported when a command asks for them,
so ``--help`` starts fast.
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import APIError, BatchWidgetError, ConfigurationError, InvalidInputError, ManifestError, describe_error
from ..models import Batch

if TYPE_CHECKING:
    from ..client import BatchClient
    from ..poller import Schedule

__all__ = [
    "EXIT_API",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_READY",
    "EXIT_OK",
    "EXIT_PIPE",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "Context",
    "UsageError",
    "error_text",
    "exit_code_for",
    "outcome_code",
    "read_api_key",
]

EXIT_OK = 0  # every item ready (or the command did what it was asked)
EXIT_NOT_READY = 1  # the batch(es) or job ended with failed, canceled or expired items
EXIT_USAGE = 2  # bad usage or input, refused before any request
EXIT_API = 3  # an API or network error that did not recover
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT): the batches keep running
EXIT_PIPE = 141  # the reader of our output went away (128 + SIGPIPE), as `| head` expects
EXIT_TERMINATED = 143  # SIGTERM (128 + 15), handled like Ctrl-C

PROG = "batch-widget"


class UsageError(BatchWidgetError):
    """Bad usage or input found by the command line itself (exit 2)."""


def exit_code_for(error: BaseException) -> int:
    """The exit code of an error that ended a command."""
    if isinstance(error, (UsageError, InvalidInputError, ConfigurationError, ManifestError)):
        return EXIT_USAGE  # nothing was sent (a job's manifest: in use, bound elsewhere or broken)
    return EXIT_API


def error_text(error: BaseException) -> str:
    """The sentence a terminal shows for an error (the client's messages never hold the key)."""
    if isinstance(error, APIError):
        where = f" (batch {error.batch_id})" if error.batch_id else ""
        return describe_error(error) + where
    if isinstance(error, BatchWidgetError):
        return str(error)  # transport errors: the operation, the cause and what to check
    return describe_error(error)


def outcome_code(batches: Sequence[Batch]) -> int:
    """0 when every item of every batch is ready, else 1."""
    return EXIT_OK if all(b.ready_items == b.total_items for b in batches) else EXIT_NOT_READY


def read_api_key(key_file: str | None, environ: Mapping[str, str]) -> str:
    """The API key from ``key_file`` (its first line, stripped) or ``TWELVELABS_API_KEY``.

    Raises
    ------
    UsageError
        Naming both places looked at, when neither holds a key.
    """
    from ..client import API_KEY_ENV

    if key_file is not None:
        try:
            text = Path(key_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise UsageError(f"cannot read --api-key-file {key_file!r}: {reason}.") from None
        first = text.splitlines()[0].strip() if text else ""
        if not first:
            raise UsageError(f"--api-key-file {key_file!r} has no key on its first line.")
        return first
    key = environ.get(API_KEY_ENV, "").strip()
    if not key:
        raise UsageError(
            f"no TwelveLabs API key: set the {API_KEY_ENV} environment variable or pass --api-key-file PATH "
            "(a file whose first line is the key). There is no --api-key option: a key in the command line "
            "shows in `ps` and in shell history."
        )
    return key


@dataclass
class Context:
    """One run of the command: its parsed arguments and what Ctrl-C should tell the user."""

    args: argparse.Namespace
    argv: list[str]
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    #: the batches this run knows of, for the re-attach hint after Ctrl-C
    batch_ids: list[str] = field(default_factory=list)
    #: set by ``submit``: re-running the same command resumes the job
    resume_hint: str = ""

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    @property
    def quiet(self) -> bool:
        return bool(getattr(self.args, "quiet", False))

    def client(self) -> BatchClient:
        """A client from the key and ``--base-url`` (or ``TWELVELABS_BASE_URL``)."""
        from ..client import BASE_URL_ENV, BatchClient  # here, not at the top: `--help` needs no HTTP stack

        key = read_api_key(getattr(self.args, "api_key_file", None), self.environ)
        base_url = getattr(self.args, "base_url", None) or self.environ.get(BASE_URL_ENV) or None
        return BatchClient(key, base_url=base_url)

    def schedule(self) -> Schedule:
        """The pollers' schedule, with ``--min-interval`` as its floor."""
        from ..poller import Schedule  # the poller stack, for the commands that watch

        floor = float(getattr(self.args, "min_interval", 3.0))
        return Schedule(min_interval=floor, max_interval=max(60.0, floor))

    def give_up_after(self, client: BatchClient) -> float:
        """How long a batch's polls may keep failing before the command gives up (exit 3).

        ``--give-up-after``, else the client's retry budget: the terminal gives up on a watch
        where one request with its retries would (the notebook sets no bound: its widget says
        "retrying" for as long as the user lets it). The one mechanism is
        :class:`batch_widget.waiting.GiveUp`.
        """
        given = getattr(self.args, "give_up_after", None)
        return client.retry.budget if given is None else float(given)

    def command_line(self) -> str:
        """This very command, to re-run (argv holds no key: there is no option for one)."""
        return shlex.join([PROG, *self.argv])

    def reattach_hint(self) -> str:
        """What to run to pick the work up again after Ctrl-C."""
        parts = []
        if self.batch_ids:
            parts.append(f"watch them again with: {shlex.join([PROG, 'watch', *self.batch_ids])}")
        if self.resume_hint:
            parts.append(self.resume_hint)
        return "; ".join(parts)
