"""``batch-widget``: run and watch batches from a terminal or CI (also ``python -m batch_widget``).

Subcommands: ``watch``, ``list``, ``status``, ``cancel``, ``delete``, ``results``, ``submit``
(``batch-widget COMMAND --help``). The same pollers and jobs as the notebook widgets, on the
event loop of ``asyncio.run``.

Modules: ``parser`` (the grammar and the exit codes' help), ``context`` (exit codes, the API
key, the client), ``render`` (terminal redraw, plain lines, ``--json`` and its schema),
``batches`` (commands on existing batches), ``submit`` (a job from a table), ``files`` (tables
in, results out, atomically).

Exit codes: 0 every item ready; 1 some ended failed, canceled or expired; 2 bad usage or input;
3 an API or network error that did not recover; 130 interrupted (the batches keep running).
"""

from __future__ import annotations

import asyncio
import sys
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

from ..errors import BatchWidgetError
from .context import EXIT_INTERRUPTED, EXIT_USAGE, Context, error_text, exit_code_for
from .parser import build_parser
from .render import EVENTS, Mode, Output

__all__ = ["EVENTS", "main"]


def _mode(json_mode: bool, stream: TextIO) -> Mode:
    if json_mode:
        return "json"
    isatty = getattr(stream, "isatty", None)
    return "tty" if isatty is not None and isatty() else "plain"


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``) and return its exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program's name.
    stdout, stderr : text streams, optional
        Where output goes (default ``sys.stdout`` / ``sys.stderr``); a terminal gets the live
        redrawn view, anything else plain timestamped lines.

    Returns
    -------
    int
        0 every item ready; 1 items failed, canceled or expired; 2 bad usage or input; 3 an API
        or network error that did not recover; 130 interrupted.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    out_stream, err_stream = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = build_parser().parse_args(args_list)
    except SystemExit as stop:  # argparse: 2 after a usage error (already printed), 0 after --help
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    ctx = Context(args, args_list)
    out = Output(_mode(ctx.json, out_stream), out_stream, err_stream)

    def warn(message: Warning | str, *_: Any, **__: Any) -> None:
        out.note(f"batch-widget: warning: {message}")

    code: int
    with warnings.catch_warnings():
        warnings.showwarning = warn
        try:
            code = asyncio.run(args.command(ctx, out))
        except KeyboardInterrupt:
            code = EXIT_INTERRUPTED
            hint = ctx.reattach_hint()
            message = "interrupted; the batches keep running" + (f": {hint}" if hint else "")
            out.end_live()
            out.say(f"\n{message}", {"event": "interrupted", "exit_code": code, "batch_ids": ctx.batch_ids,
                                     "message": message})  # fmt: skip
            if out.mode == "json":
                out.end(code)
            return code
        except BatchWidgetError as error:
            code = exit_code_for(error)
            out.error(error_text(error), exit_code=code, error_type=type(error).__name__)
        finally:
            out.end_live()  # a bug's traceback too leaves the terminal as it was (cursor shown)
    out.end(code)
    return code
