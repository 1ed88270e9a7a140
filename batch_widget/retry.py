"""How transient failures are retried: :class:`RetryPolicy` (shared by the batch and asset calls)."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["NO_RETRY", "RetryPolicy"]


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried.

    Exponential backoff with full jitter (``base * 2**n``, capped at ``max_delay``), or the
    server's ``Retry-After`` when it gives one, until ``max_attempts`` tries or ``budget`` seconds
    of waiting in total, whichever comes first.
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 20.0
    budget: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based), with full jitter."""
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(cap / 2, cap)


NO_RETRY = RetryPolicy(max_attempts=1)
