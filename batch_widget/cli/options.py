"""``submit``'s options: each one a keyword of the library's :func:`batch_widget.submit`, in one table.

The parser adds an option per entry and ``submit`` passes each given value to the keyword of
the same meaning; an option left out passes nothing, so the library's default holds (for the
job limits: as recorded in the manifest, else the API's limits). Values are checked by the
library, which names the problem before anything is sent (exit 2). Light: no pandas, no jobs,
so ``--help`` starts fast.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LIMITS", "SUBMIT_OPTIONS", "Option", "add_submit_options", "keywords", "submit_keywords"]


def _json_file(text: str) -> dict[str, Any]:
    """A JSON object from a file (``--response-format schema.json``)."""
    try:
        value = json.loads(Path(text).read_text(encoding="utf-8"))
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text!r} must hold a JSON object, not a {type(value).__name__}")
    return value


def _number(kind: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None

    parse.__name__ = what  # argparse names the type in its messages
    return parse


@dataclass(frozen=True)
class Option:
    """One ``submit`` option and the library keyword it sets."""

    flag: str
    keyword: str
    help: str
    metavar: str | None = None
    type: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    flag_only: bool = False  # a switch: True when given


_WHOLE = _number(int, "a whole number")
_HOURS = _number(float, "a number of hours")

#: every ``submit`` option but the table, the manifest, --wait and the output ones
SUBMIT_OPTIONS: tuple[Option, ...] = (
    Option("--video", "video", "the column of videos: asset ids, http(s) URLs or local file paths (the kind "
           "inferred per row). Files and URLs are uploaded first, once each (default: the column asset_id, "
           "of asset ids)", "COLUMN"),
    Option("--video-kind", "video_kind", "force the kind of every --video value (asset, url or file), or name a "
           "column that gives it per row", "KIND|COLUMN"),
    Option("--prompt", "prompt", "the prompt text for every video", "TEXT"),
    Option("--prompt-column", "prompt_column", "a column of per-row prompts (an empty one falls back to --prompt)",
           "COLUMN"),
    Option("--response-format", "response_format", "a JSON file holding the response_format (a JSON schema for "
           "structured output, or a time_based_metadata format)", "FILE.json", _json_file),
    Option("--response-format-column", "response_format_column", "a column of per-row response formats (JSON "
           "text); an empty one falls back to --response-format", "COLUMN"),
    Option("--analysis-mode", "analysis_mode", "the batch's analysis mode (default: inferred from the response "
           "format)", choices=("general", "time_based_metadata")),
    Option("--model", "model_name", "the model (default pegasus1.5)", "NAME"),
    Option("--defaults", "defaults", "a JSON file of other batch defaults (temperature, max_tokens, ...)",
           "FILE.json", _json_file),
    Option("--key", "key", "a column of your own ids, used as custom_ids (default: a stable id from the row's "
           "index and video)", "COLUMN"),
    Option("--start-column", "start_column", "a column of per-row analysis start times (seconds)", "COLUMN"),
    Option("--end-column", "end_column", "a column of per-row analysis end times (seconds)", "COLUMN"),
    Option("--duration-column", "duration_column", "a column of video durations (seconds): the 2 h window check "
           "and the 2,000 content hours per batch", "COLUMN"),
    Option("--chunk-size", "chunk_size", "at most N rows per batch (default: as recorded in the manifest, else "
           "1,000)", "N", _WHOLE),
    Option("--max-content-hours", "max_content_hours", "at most this many hours of video per batch (default: as "
           "recorded, else 2,000)", "HOURS", _HOURS),
    Option("--max-active", "max_active", "at most N batches active on the account (default: as recorded, else 5)",
           "N", _WHOLE),
    Option("--upload-concurrency", "upload_concurrency", "at most N uploads at once (default: as recorded, else 4)",
           "N", _WHOLE),
    Option("--on-uncertain", "on_uncertain", "what to do with a create whose answer was lost and that matches no "
           "batch for sure (default: as recorded, else ask: the chunk waits for you)",
           choices=("ask", "resubmit", "skip", "raise")),
    Option("--start-over", "start_over", "begin a new job in the manifest even though it holds another (kept "
           "aside as <name>.<time>.old)", flag_only=True),
)  # fmt: skip


#: the job's limits: also options of ``job`` (``resume_job`` takes them too)
LIMITS = ("chunk_size", "max_content_hours", "max_active", "upload_concurrency", "on_uncertain")


def add_submit_options(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """Add the options of ``SUBMIT_OPTIONS`` (``only`` these keywords; left out: ``None``, the library's default)."""
    for o in SUBMIT_OPTIONS:
        if only is not None and o.keyword not in only:
            continue
        if o.flag_only:
            parser.add_argument(o.flag, dest=o.keyword, action="store_true", help=o.help)
        else:
            typed: dict[str, Any] = {"type": o.type} if o.type is not None else {}
            parser.add_argument(o.flag, dest=o.keyword, metavar=o.metavar, choices=o.choices, default=None,
                                help=o.help, **typed)  # fmt: skip


def keywords(args: argparse.Namespace, only: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The given options as the library's keywords (those left out are not passed at all)."""
    given = {o.keyword: getattr(args, o.keyword, None) for o in SUBMIT_OPTIONS if only is None or o.keyword in only}
    return {k: v for k, v in given.items() if v is not None and v is not False}


def submit_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """Every ``submit`` option given, as the keywords of ``bw.submit``."""
    return keywords(args)
