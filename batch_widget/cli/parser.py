"""The command line's grammar (argparse) and its dispatch: one function per subcommand.

The options every subcommand shares (``--json``, ``--base-url``, ``--api-key-file``,
``--min-interval``) are accepted before or after the subcommand's name. There is no
``--api-key``: a hidden option of that name refuses the key without echoing it, and
abbreviations are off, so no prefix of another option can carry a key either.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NoReturn

from .._version import VERSION
from ..account import ACCOUNT_MAX_ACTIVE
from ..validation import ANALYSIS_MODES, BATCH_STATUSES, MAX_REQUESTS
from .batches import cmd_cancel, cmd_delete, cmd_list, cmd_results, cmd_status, cmd_watch
from .context import PROG, Context
from .render import Output
from .submit import cmd_submit

__all__ = ["Command", "build_parser"]

Command = Callable[[Context, Output], Awaitable[int]]

EXIT_CODES = """exit codes:
  0    every item ready (or: the command did what it was asked)
  1    the batch(es) or job ended with failed, canceled or expired items
  2    bad usage or input (nothing was sent)
  3    an API or network error that did not recover (not found, key refused, unreachable)
  130  interrupted (Ctrl-C): the batches keep running; the hint says how to re-attach

the API key comes from TWELVELABS_API_KEY or --api-key-file PATH, never from an argument;
TWELVELABS_BASE_URL or --base-url selects another endpoint (e.g. the local simulator).
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


def _common() -> argparse.ArgumentParser:
    # SUPPRESS: given before the subcommand, a value is not reset by the subcommand's default
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS, allow_abbrev=False)
    common.add_argument("--json", action="store_true", help="one JSON object per line on stdout, for scripts")
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
    top = argparse.ArgumentParser(
        prog=PROG, parents=[common], allow_abbrev=False, epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run and watch TwelveLabs batch video analysis from a terminal or CI.",
    )  # fmt: skip
    top.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    sub = top.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def command(name: str, run: Command, summary: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, parents=[common], help=summary, description=summary, epilog=EXIT_CODES, allow_abbrev=False,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        p.set_defaults(command=run)
        return p

    p = command("watch", cmd_watch, "Watch batches until every one has ended: live progress, rate and ETA.")
    p.add_argument("batch_ids", nargs="+", metavar="BATCH_ID", help="24-hex batch id(s)")

    p = command("list", cmd_list, "List the account's batches, newest first.")
    p.add_argument("--status", action="append", metavar="STATUS",
                   help=f"keep only this status (repeat, or comma-separate): {', '.join(BATCH_STATUSES)}")  # fmt: skip
    p.add_argument("--analysis-mode", choices=ANALYSIS_MODES, help="keep only this analysis mode")
    p.add_argument("--limit", type=_count(1, 1_000_000), metavar="N", help="show at most N batches")

    p = command("status", cmd_status, "Show one batch's status and counts (exit 1 if it ended with items not ready).")
    p.add_argument("batch_id", metavar="BATCH_ID")

    p = command("cancel", cmd_cancel, "Cancel a batch: queued items are canceled, processing ones finish.")
    p.add_argument("batch_id", metavar="BATCH_ID")

    p = command("delete", cmd_delete, "Delete an ended batch and its results.")
    p.add_argument("batch_id", metavar="BATCH_ID")

    p = command("results", cmd_results, "Write a batch's results to a file (one row per item, or per segment).")
    p.add_argument("batch_id", metavar="BATCH_ID")
    _results_options(p, required=True)
    p.add_argument("--segments", action="store_true", help="one row per segment (time_based_metadata batches)")

    p = command(
        "submit", cmd_submit,
        "Submit every row of a table as one job; re-running the same command resumes it and sends nothing twice.",
    )  # fmt: skip
    p.add_argument("table", metavar="FILE", help="a .csv or .parquet table, one row per video")
    p.add_argument("--video", required=True, metavar="COLUMN", help="the column of asset ids")
    p.add_argument("--prompt", required=True, metavar="TEXT", help="the prompt for every video")
    p.add_argument("--key", metavar="COLUMN", help="a column of your own ids, used as custom_ids")
    p.add_argument("--manifest", metavar="PATH", help="the job's record (default: FILE's name + .manifest.json)")
    p.add_argument("--wait", action="store_true", help="wait until every batch has ended")
    p.add_argument("--chunk-size", type=_count(1, MAX_REQUESTS), default=MAX_REQUESTS, metavar="N",
                   help=f"at most N rows per batch (default {MAX_REQUESTS})")  # fmt: skip
    p.add_argument("--max-active", type=_count(1, ACCOUNT_MAX_ACTIVE), default=ACCOUNT_MAX_ACTIVE, metavar="N",
                   help=f"at most N batches active on the account (default {ACCOUNT_MAX_ACTIVE})")  # fmt: skip
    _results_options(p, required=False)
    return top


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv``; argparse exits 2 on bad usage (and 0 after ``--help``)."""
    return build_parser().parse_args(list(argv))
