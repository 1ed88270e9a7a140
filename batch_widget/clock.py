"""Where batch_widget reads time: one object, carried by the client, so tests can replace it.

Pollers and job schedulers take monotonic seconds, "now" and their sleeps from their client's
:class:`Clock` (``BatchClient(clock=...)``); so does the client's retry back-off. A test or a
benchmark passes a subclass whose ``sleep`` moves a simulated clock, and hours of a batch's
life pass in a second; nothing else in a public signature is about time.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone

__all__ = ["SYSTEM_CLOCK", "Clock"]


class Clock:
    """The real clock. Subclass and override all three methods to drive virtual time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals, rates, elapsed time)."""
        return time.monotonic()

    def now(self) -> datetime:
        """The current UTC time (compared with the server's clock by the client)."""
        return datetime.now(timezone.utc)

    async def sleep(self, seconds: float) -> None:
        """Pause the calling coroutine (never the event loop)."""
        await asyncio.sleep(seconds)


SYSTEM_CLOCK = Clock()
