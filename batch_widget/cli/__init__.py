"""``batch-widget``: run and watch batches from a terminal or CI (also ``python -m batch_widget``).

Subcommands: ``watch``, ``list``, ``status``, ``cancel``, ``delete``, ``results``, ``submit``,
``job`` (``batch-widget COMMAND --help``). The same models as the notebook's widgets, on the
event loop of ``asyncio.run``: a ``BatchWatch`` per batch (``watch``, ``status``, ``results``,
``cancel``), a ``Job`` per table (``submit``, ``job``); failing polls are bounded by
``waiting.GiveUp``, the one give-up policy (``--give-up-after``, default the client's retry
budget).

Modules: ``parser`` (the grammar, the exit codes' help, which module runs each subcommand),
``options`` (``submit``'s options, one per keyword of the library's ``submit``), ``context``
(exit codes, the API key, the client), ``running`` (the loop, signals, a closed pipe),
``render`` (rows as text and ``--json`` events; the schema), ``output`` (terminal redraw, plain
lines, JSON, quiet, colours), ``batches`` (one-request commands), ``watching`` (``watch``),
``results`` (a batch's results to a file), ``submit`` (a job from a table), ``job`` (a job from
its manifest), ``following`` (a job's progress, shared by both), ``files`` (tables in, results
out, atomically).

Only what a subcommand needs is imported, when it runs: ``--help`` and ``status`` start without
pandas or the widget stack (``tests/test_cli_manners.py`` keeps it so).

Exit codes: 0 every item ready; 1 some ended failed, canceled or expired; 2 bad usage or input,
or an output file that cannot be written; 3 an API or network error that did not recover;
130 interrupted, 143 terminated (the batches keep running); 141 the output's reader went away.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

from .context import EXIT_PIPE, EXIT_USAGE, Context
from .output import Mode, Output, colour_wanted
from .parser import build_parser, load_command
from .render import EVENTS, SCHEMA_VERSION
from .running import run

__all__ = ["EVENTS", "SCHEMA_VERSION", "main"]


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
        or network error that did not recover; 130 interrupted; 141 the reader went away;
        143 terminated.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    out_stream, err_stream = stdout or sys.stdout, stderr or sys.stderr
    try:
        args = build_parser().parse_args(args_list)
    except SystemExit as stop:  # argparse: 2 after a usage error (already printed), 0 after --help
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    except BrokenPipeError:  # `--help | head -1`: the reader is gone, the rest goes nowhere
        Output("plain", out_stream, err_stream).close_quietly()
        return EXIT_PIPE
    ctx = Context(args, args_list)
    out = Output(_mode(ctx.json, out_stream), out_stream, err_stream, quiet=ctx.quiet,
                 colour=colour_wanted(ctx.environ))  # fmt: skip

    def warn(message: Warning | str, *_: Any, **__: Any) -> None:
        out.note(f"batch-widget: warning: {message}")

    with warnings.catch_warnings():
        warnings.showwarning = warn
        return run(load_command(args.command), ctx, out)
