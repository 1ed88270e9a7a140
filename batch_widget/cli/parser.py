"""The command line's grammar (argparse) and its dispatch: one function per subcommand.

The options every subcommand shares (``--json``, ``--base-url``, ``--api-key-file``,
``--min-interval``) are accepted before or after the subcommand's name. There is no
``--api-key``: a hidden option of that name refuses the key without echoing it, and
abbreviations are off, so no prefix of another option can carry a key either; and an option
the parser does not know (``--api-k=...``) is named without its value.

Each subcommand's module is imported when it runs (``COMMANDS``), so ``--help`` and ``status``
start without pandas or the poller.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from .._version import VERSION
from ..validation import ANALYSIS_MODES, BATCH_STATUSES
from .context import PROG
from .options import LIMITS, add_submit_options
from .running import Command

__all__ = ["COMMANDS", "build_parser", "load_command", "redact"]

#: each subcommand → (its module, its coroutine), imported when it runs
COMMANDS: dict[str, tuple[str, str]] = {
    "watch": ("watching", "cmd_watch"),
    "list": ("batches", "cmd_list"),
    "status": ("batches", "cmd_status"),
    "cancel": ("batches", "cmd_cancel"),
    "delete": ("batches", "cmd_delete"),
    "results": ("results", "cmd_results"),
    "submit": ("submit", "cmd_submit"),
    "job": ("job", "cmd_job"),
}


def load_command(name: str) -> Command:
    """The coroutine of subcommand ``name``, its module imported now."""
    module, function = COMMANDS[name]
    run: Command = getattr(importlib.import_module(f"{__package__}.{module}"), function)
    return run


def redact(arguments: Sequence[str]) -> str:
    """Unrecognised arguments as shown in an error: the options' names only, never a value.

    ``--api-k=SECRET`` → ``--api-k=...``; the word after an unknown option may be its value
    (``--api-k SECRET``), so it is hidden too; so is anything holding the key of the environment.
    """
    key = os.environ.get("TWELVELABS_API_KEY", "").strip()
    shown: list[str] = []
    after_option = False
    for arg in arguments:
        if key and key in arg:
            shown.append("...")
        elif arg.startswith("-") and len(arg) > 1:
            name, eq, _ = arg.partition("=")
            shown.append(name + ("=..." if eq else "") if name.startswith("--") else re.sub(r"^(-\w).+", r"\1...", arg))
            after_option = not eq
            continue
        else:
            shown.append("..." if after_option else arg)
        after_option = False
    return " ".join(shown)


class _Parser(argparse.ArgumentParser):
    """argparse, except that unrecognised arguments are named without their values (``redact``)."""

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {redact(extras)}")
        return parsed


EXIT_CODES = """exit codes:
  0    every item ready (or: the command did what it was asked)
  1    the batch(es) or job ended with failed, canceled or expired items
  2    bad usage or input (nothing was sent), or a results file that cannot be written
  3    an API or network error that did not recover (not found, key refused, unreachable)
  130  interrupted (Ctrl-C): the batches keep running; the hint says how to re-attach
  141  the output's reader went away (e.g. `| head -1`); the batches keep running
  143  terminated (SIGTERM), handled like Ctrl-C

the API key comes from TWELVELABS_API_KEY or --api-key-file PATH, never from an argument;
TWELVELABS_BASE_URL or --base-url selects another endpoint (e.g. the local simulator);
NO_COLOR (set to anything) turns the terminal's colours off.
"""


class _RefuseKey(argparse.Action):
    """``--api-key``: refused, without repeating the value (argparse's own error would)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> NoReturn:
        parser.error(
            "there is no --api-key option: a key in the command line shows in `ps` and in shell history. "
            "Set TWELVELABS_API_KEY or pass --api-key-file PATH (a file whose first line is the key)."
        )


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 seconds or more")
    return value


def _give_up_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--give-up-after", metavar="SECONDS", type=_seconds,
                   help="end with exit 3 once a batch's status requests have kept failing for this long "
                   "(default: the client's retry budget, 60; 0: at the first failure)")  # fmt: skip


def _count(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} must be from {low} to {high}")
        return value

    return parse


def _common() -> _Parser:
    # SUPPRESS: given before the subcommand, a value is not reset by the subcommand's default
    common = _Parser(add_help=False, argument_default=argparse.SUPPRESS, allow_abbrev=False)
    common.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per line on stdout, for scripts (schema version 1: see the README)",
    )
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="for cron: no live progress, hints or warnings; only the result line(s) and errors",
    )
    common.add_argument("--base-url", metavar="URL", help="the API's base URL (default: TWELVELABS_BASE_URL, else "
                        "https://api.twelvelabs.io/v1.3)")  # fmt: skip
    common.add_argument("--api-key-file", metavar="PATH", help="read the API key from the first line of PATH "
                        "(default: the TWELVELABS_API_KEY environment variable)")  # fmt: skip
    common.add_argument("--min-interval", metavar="SECONDS", type=_positive,
                        help="shortest pause between two polls of a batch (default 3)")  # fmt: skip
    common.add_argument("--api-key", nargs="?", action=_RefuseKey, help=argparse.SUPPRESS)
    return common


def _results_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("-o", "--output", metavar="FILE", required=required,
                   help="write the results to FILE: .parquet, .csv or .jsonl (by its extension)")  # fmt: skip
    p.add_argument("--parse-json", action="store_true", help="parse JSON text outputs into objects")
    p.add_argument("--expand", action="store_true", help="spread parsed JSON objects into columns")


def build_parser() -> argparse.ArgumentParser:
    """The ``batch-widget`` parser; each subparser's ``command`` default is its coroutine."""
    common = _common()
    top = _Parser(
        prog=PROG, parents=[common], allow_abbrev=False, epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run and watch TwelveLabs batch video analysis from a terminal or CI.",
    )  # fmt: skip
    top.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    sub = top.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, parents=[common], help=summary, description=summary, epilog=EXIT_CODES, allow_abbrev=False,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        p.set_defaults(command=name)
        return p

    p = command("watch", "Watch batches until every one has ended: live progress, rate and ETA.")
    p.add_argument("batch_ids", nargs="+", metavar="BATCH_ID", help="24-hex batch id(s)")
    _give_up_option(p)

    p = command("list", "List the account's batches, newest first.")
    p.add_argument("--status", action="append", metavar="STATUS",
                   help=f"keep only this status (repeat, or comma-separate): {', '.join(BATCH_STATUSES)}")  # fmt: skip
    p.add_argument("--analysis-mode", choices=ANALYSIS_MODES, help="keep only this analysis mode")
    p.add_argument("--limit", type=_count(1, 1_000_000), metavar="N", help="show at most N batches")

    p = command("status", "Show one batch's status and counts (exit 1 if it ended with items not ready).")
    p.add_argument("batch_id", metavar="BATCH_ID")
    _give_up_option(p)

    p = command("cancel", "Cancel a batch: queued items are canceled, processing ones finish.")
    p.add_argument("batch_id", metavar="BATCH_ID")

    p = command("delete", "Delete an ended batch and its results.")
    p.add_argument("batch_id", metavar="BATCH_ID")

    p = command("results", "Write a batch's results to a file (one row per item, or per segment).")
    p.add_argument("batch_id", metavar="BATCH_ID")
    _results_options(p, required=True)
    p.add_argument("--segments", action="store_true", help="one row per segment (time_based_metadata batches)")
    _give_up_option(p)

    p = command(
        "submit",
        "Submit every row of a table as one job (files and URLs uploaded first); re-running the same command "
        "resumes it and sends nothing twice.",
    )  # fmt: skip
    p.add_argument("table", metavar="FILE", help="a .csv or .parquet table, one row per video")
    p.add_argument("--manifest", metavar="PATH", help="the job's record (default: FILE's name + .manifest.json)")
    p.add_argument("--wait", action="store_true", help="wait until every batch has ended")
    add_submit_options(p)
    _results_options(p, required=False)

    p = command(
        "job",
        "Show a job from its manifest and follow it live until it ends; or write its results, or retry its "
        "failed and canceled rows.",
    )  # fmt: skip
    p.add_argument("manifest", metavar="MANIFEST", help="the job's manifest (e.g. videos.manifest.json)")
    p.add_argument("--results", action="store_true",
                   help="do not follow: write the joined table as it stands now (with -o)")  # fmt: skip
    p.add_argument("--retry", action="store_true",
                   help="resubmit the rows whose newest outcome is failed or canceled, then follow")  # fmt: skip
    add_submit_options(p, only=LIMITS)  # the job's limits, changed in its manifest as resume_job does
    _results_options(p, required=False)
    return top


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; argparse exits 2 on bad usage (and 0 after ``--help``)."""
    return build_parser().parse_args(list(argv))
