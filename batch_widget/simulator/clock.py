"""Simulated time: the :class:`Clock` protocol, its two clocks and the API's timestamp format.

:class:`SpeedClock` runs ``speed`` times faster than real time (demos, the CLI);
:class:`ManualClock` only moves when told to (tests). :func:`iso` renders a clock time the way
the API's ``created_at`` / ``*_at`` fields do.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol

__all__ = ["DEFAULT_EPOCH", "Clock", "ManualClock", "SpeedClock", "iso"]

#: 2026-11-28T09:00:00Z, the default start of a :class:`ManualClock` (fixed: deterministic).
DEFAULT_EPOCH = 1_795_856_400.0


class Clock(Protocol):
    """What drives the simulator: ``now()`` in epoch seconds, and ``advance(seconds)``.

    The engine itself only calls ``now()``; ``advance`` is there so that tests can move any
    simulator's time (both :class:`SpeedClock` and :class:`ManualClock` implement it).
    """

    def now(self) -> float: ...

    def advance(self, seconds: float) -> float: ...


def _speed(speed: float) -> float:
    if speed < 0:
        raise ValueError("speed must be >= 0")
    return float(speed)


def _step(seconds: float) -> float:
    if seconds < 0:
        raise ValueError("a clock only moves forward")
    return float(seconds)


class SpeedClock:
    """Simulated time running ``speed`` times faster than real time.

    ``now() = start + (monotonic elapsed) * speed + offset``. ``speed`` may be changed on the
    fly (the clock is re-anchored, never jumps), and ``advance(s)`` adds a fixed offset.
    """

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        self._lock = threading.Lock()
        self._speed = _speed(speed)
        self._anchor_sim = time.time() if start is None else float(start)
        self._anchor_real = time.monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        with self._lock:
            return self._anchor_sim + (time.monotonic() - self._anchor_real) * self._speed

    def set_speed(self, speed: float) -> None:
        speed = _speed(speed)
        with self._lock:
            real = time.monotonic()
            self._anchor_sim += (real - self._anchor_real) * self._speed
            self._anchor_real = real
            self._speed = speed

    def advance(self, seconds: float) -> float:
        seconds = _step(seconds)
        with self._lock:
            self._anchor_sim += seconds
        return self.now()


class ManualClock:
    """A clock that only moves when told to: ``advance(seconds)`` or ``set(t)``."""

    speed = 0.0

    def __init__(self, start: float = DEFAULT_EPOCH) -> None:
        self._lock = threading.Lock()
        self._t = float(start)

    def now(self) -> float:
        with self._lock:
            return self._t

    def advance(self, seconds: float) -> float:
        seconds = _step(seconds)
        with self._lock:
            self._t += seconds
            return self._t

    def set(self, t: float) -> None:
        with self._lock:
            self._t = float(t)


def iso(t: float) -> str:
    """RFC 3339 UTC with a ``Z`` suffix, whole seconds (like the API's examples)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(math.floor(t)))
