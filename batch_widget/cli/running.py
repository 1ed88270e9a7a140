"""Running one command on an event loop, and stopping it well: Ctrl-C, SIGTERM, a reader gone.

The command runs as a task; SIGINT and SIGTERM (through the loop's signal handlers) and a closed
output (``Output.on_close``) cancel it, so every ``finally`` of the command runs: the live block
is left with the cursor shown, a job lets its manifest go, a half-written results file is
removed. The batches are never touched: they keep running on the API.

- SIGINT → 130, SIGTERM → 143, each with the re-attach hint;
- the reader of stdout or stderr went away (``| head -1``) → 141 and nothing more is printed
  (the shells' code for SIGPIPE; Python ignores the signal itself, so this is the exception's
  path, made quiet);
- a :class:`~batch_widget.errors.BatchWidgetError` → its exit code and one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable

from ..errors import BatchWidgetError
from .context import EXIT_INTERRUPTED, EXIT_PIPE, EXIT_TERMINATED, Context, error_text, exit_code_for
from .output import Output

__all__ = ["Command", "run"]

Command = Callable[[Context, Output], Awaitable[int]]

_EXIT_FOR = {"SIGINT": EXIT_INTERRUPTED, "SIGTERM": EXIT_TERMINATED, "pipe": EXIT_PIPE}


def run(command: Command, ctx: Context, out: Output) -> int:
    """Run ``command`` to its end (or until stopped) and return the exit code; prints its last words."""
    stopped: list[str] = []
    try:
        code = asyncio.run(_supervise(command, ctx, out, stopped))
    except KeyboardInterrupt:  # Ctrl-C before the loop's handler was in place
        stopped.append("SIGINT")
        code = EXIT_INTERRUPTED
    except BatchWidgetError as error:
        code = exit_code_for(error)
        out.error(error_text(error), exit_code=code, error_type=type(error).__name__)
    finally:
        out.end_live()  # a bug's traceback too leaves the terminal as it was (cursor shown)
    if (stopped and stopped[0] == "pipe") or out.closed:
        return EXIT_PIPE  # the reader is gone: there is no one to tell
    if stopped:
        _interrupted(ctx, out, stopped[0], code)
    out.end(code)
    return code


async def _supervise(command: Command, ctx: Context, out: Output, stopped: list[str]) -> int:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(command(ctx, out))

    def stop(why: str) -> None:
        if not stopped:
            stopped.append(why)
        task.cancel()  # the command's `finally` blocks run; the batches are left alone

    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread, Windows
            loop.add_signal_handler(sig, stop, sig.name)
            handled.append(sig)
    out.on_close = lambda: stop("pipe")
    try:
        return await task
    except asyncio.CancelledError:
        if not stopped:
            raise
        return _EXIT_FOR[stopped[0]]
    except BatchWidgetError:
        if stopped:  # an error on the way out of a stop (a cut request): the stop is the story
            return _EXIT_FOR[stopped[0]]
        raise
    finally:
        out.on_close = None
        for sig in handled:
            loop.remove_signal_handler(sig)


def _interrupted(ctx: Context, out: Output, why: str, code: int) -> None:
    hint = ctx.reattach_hint()
    what = "interrupted" if why == "SIGINT" else "terminated (SIGTERM)"
    message = f"{what}; the batches keep running" + (f": {hint}" if hint else "")
    out.end_live()
    out.say(f"\n{message}", {"event": "interrupted", "exit_code": code, "signal": why, "batch_ids": ctx.batch_ids,
                             "message": message})  # fmt: skip
