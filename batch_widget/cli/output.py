"""Where the command's rows, messages and errors go: a terminal's live block, plain lines, or JSON.

Three modes, one interface (:class:`Output`):

- ``tty`` (stdout is a terminal): the live rows are one block, redrawn in place (cursor up,
  clear line, one write per redraw, so nothing flickers) only when a row changed, plus a footer
  clock that ticks at most once a second. Rows are cut to the terminal's width, so none wraps
  and the cursor-up count stays right. Status words are coloured unless ``NO_COLOR`` is set.
- ``plain`` (a pipe, a CI log): a timestamped line per row each time that row changes, never
  one per poll without a change; no escape sequences.
- ``json`` (``--json``): one JSON object per line, for scripts; the schema is ``render.EVENTS``.

``quiet`` (``--quiet``, for cron): no live rows, no hints or warnings; the result lines and
errors only.

A reader that goes away (``| head -1``) is noticed on the next write, or by :meth:`tick` within
a second when nothing is written: the output closes, every later write is dropped, and
``on_close`` tells the runner, which stops the command with the SIGPIPE exit (141).

Time comes from the client's clock (``clock.py``), like everything that reads time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
from collections.abc import Callable, Mapping, Sequence
from datetime import timezone
from typing import Any, Literal, TextIO

from ..clock import SYSTEM_CLOCK, Clock
from .render import SCHEMA_VERSION, Row, format_duration

__all__ = ["Mode", "Output", "colour_wanted"]

Mode = Literal["tty", "plain", "json"]

_GREEN, _RED, _YELLOW, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[0m"
_COLOURS = (
    (re.compile(r"\b(completed|done|ready [1-9][\d,]*)\b"), _GREEN),
    (re.compile(r"\b(failed [1-9][\d,]*|error|attention|expired)\b"), _RED),
    (re.compile(r"\b(canceled [1-9][\d,]*|canceling|retrying)\b"), _YELLOW),
)


def colour_wanted(environ: Mapping[str, str]) -> bool:
    """Colours on a terminal unless ``NO_COLOR`` is set to anything (no-color.org) or TERM is dumb."""
    return not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"


def _paint(line: str) -> str:
    for pattern, code in _COLOURS:
        line = pattern.sub(lambda m, c=code: f"{c}{m.group(0)}{_RESET}", line)  # type: ignore[misc]
    return line


def _reader_gone(stream: TextIO) -> bool:
    """True when ``stream`` is a pipe or socket whose reader has closed it (poll's POLLERR / POLLHUP)."""
    if not hasattr(select, "poll"):
        return False
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False  # not a file (a StringIO in tests): it never closes
    poller = select.poll()
    poller.register(fd, 0)  # no events asked: errors and hang-ups are always reported
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))


class Output:
    """Where a command's rows, messages and errors go, in one of the three modes."""

    def __init__(
        self,
        mode: Mode,
        stream: TextIO,
        err: TextIO,
        clock: Clock = SYSTEM_CLOCK,
        *,
        quiet: bool = False,
        colour: bool = True,
    ) -> None:
        self.mode = mode
        self.stream = stream
        self.err = err
        self.clock = clock
        self.quiet = quiet
        self.colour = colour and mode == "tty"
        #: called once when a reader goes away (the runner stops the command)
        self.on_close: Callable[[], None] | None = None
        self.closed = False
        self._last: dict[str, object] = {}  # plain / json: the last row printed (text / event), by key
        self._rows: list[Row] = []
        self._footer = ""
        self._drawn: list[str] = []  # tty: the lines on screen now
        self._started = clock.monotonic()
        self.redraws = 0

    # -- live rows ------------------------------------------------------------------------------

    def live(self, rows: Sequence[Row], footer: str = "") -> None:
        """Show the rows: redraw the block (tty), or print the rows that changed (plain, json)."""
        if self.quiet:
            return
        self._rows, self._footer = list(rows), footer
        if self.mode == "tty":
            self._draw()
            return
        for row in rows:
            seen = row.payload if self.mode == "json" else row.text  # a line only when what it shows changed
            if self._last.get(row.key) == seen:
                continue
            self._last[row.key] = seen
            if self.mode == "json":
                self._json(row.payload)
            else:
                self._line(f"{self._stamp()}  {row.text}")

    def tick(self) -> None:
        """The clock's second: notice a reader that went away; on a terminal, redraw the footer."""
        if not self.closed and (_reader_gone(self.stream) or _reader_gone(self.err)):
            self._close()
            return
        if self.mode == "tty" and self._rows:
            self._draw()

    def end_live(self) -> None:
        """Leave the block where it is (the cursor below it, shown again); later output goes underneath."""
        if self.mode == "tty" and self._drawn:
            self._footer = ""
            self._draw()
            self._write(self.stream, "\x1b[?25h")
        self._rows, self._drawn = [], []

    def _draw(self) -> None:
        width = max(20, shutil.get_terminal_size((120, 24)).columns - 1)
        elapsed = format_duration(self.clock.monotonic() - self._started)
        lines = [row.text for row in self._rows]
        if self._footer:
            lines.append(f"{self._footer}  elapsed {elapsed}")
        lines = [line if len(line) <= width else line[: width - 3] + "..." for line in lines]
        if lines == self._drawn:
            return
        shown = [_paint(line) for line in lines] if self.colour else lines  # cut first: colours take no columns
        parts = ["\x1b[?25l"] if not self._drawn else [f"\r\x1b[{len(self._drawn)}A"]
        parts += [f"\x1b[2K{line}\n" for line in shown]
        extra = len(self._drawn) - len(lines)
        if extra > 0:  # the block shrank: clear what is left of it, then come back up
            parts += ["\x1b[2K\n"] * extra + [f"\x1b[{extra}A"]
        self._write(self.stream, "".join(parts))  # one write per redraw: no flicker
        self._drawn = lines
        self.redraws += 1

    # -- one-off output ------------------------------------------------------------------------

    def say(self, text: str, payload: Mapping[str, Any] | None = None) -> None:
        """A result line: its text, or its JSON event (nothing in json mode when there is none)."""
        if self.mode == "json":
            if payload is not None:
                self._json(payload)
            return
        self._line(text)

    def error(self, message: str, *, exit_code: int, error_type: str) -> None:
        """An error: on stderr as one line, or as an ``error`` event on stdout in json mode."""
        if self.mode == "json":
            self._json({"event": "error", "exit_code": exit_code, "error_type": error_type, "message": message})
            return
        self.end_live()
        self._write(self.err, f"batch-widget: error: {message}\n")

    def note(self, message: str) -> None:
        """A hint for a person (stderr, so it never mixes with data on stdout); none when quiet."""
        if self.mode != "json" and not self.quiet:
            self._write(self.err, f"{message}\n")

    def end(self, exit_code: int) -> None:
        """The last word: the ``end`` event in json mode."""
        self.end_live()
        if self.mode == "json":
            self._json({"event": "end", "exit_code": exit_code})

    # -- plumbing -------------------------------------------------------------------------------

    def _stamp(self) -> str:
        return self.clock.now().astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _line(self, text: str) -> None:
        self._write(self.stream, text + "\n")

    def _json(self, payload: Mapping[str, Any]) -> None:
        event = {"v": SCHEMA_VERSION, "event": payload["event"], "time": self._stamp(), **payload}
        self._line(json.dumps(event, ensure_ascii=False, default=str))

    def _write(self, stream: TextIO, text: str) -> None:
        if self.closed:
            return
        try:
            stream.write(text)
            stream.flush()
        except BrokenPipeError:
            self._close()

    def close_quietly(self) -> None:
        """The reader went away (seen elsewhere): drop all later output, and what is left in the buffers."""
        self._close()

    def _close(self) -> None:
        """The reader went away: drop all later output, and let the runner stop the command."""
        self.closed = True
        for stream in (self.stream, self.err):
            # what is left in the buffer would fail again at exit, with a traceback: send it nowhere
            with contextlib.suppress(AttributeError, OSError, ValueError):
                if _reader_gone(stream):
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, stream.fileno())
                    os.close(devnull)
        if self.on_close is not None:
            self.on_close()
