"""How failures are retried: :class:`RetryPolicy` (shared by the batch and asset calls), and
:func:`may_have_created`, the one rule for whether a failed create may be repeated."""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from .errors import APIConnectionError, APIError, InvalidInputError, TransportError

__all__ = ["NO_RETRY", "RetryPolicy", "may_have_created"]


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


def may_have_created(error: BaseException) -> bool:
    """Could the failed request that raised ``error`` have created something (a batch, an asset)?

    The one rule for every create (batches in the client, assets, a job's chunks): a create is
    repeated blindly only when this says no; otherwise the caller looks for what it may have
    made first (an asset's upload tag, a job's intent matched to the account's batches).

    * an HTTP answer of 4xx (429 included): refused, nothing made;
    * 503: the API documents that nothing was made; any other 5xx: it may have failed after
      making it;
    * a connection refused (``httpx.ConnectError`` under ``APIConnectionError``): the request never
      reached the server; any other transport failure (a timeout, a cut connection): it may have;
    * input refused before sending (``InvalidInputError``): no; anything else (say, a 2xx whose body
      did not parse): we cannot tell, so yes.
    """
    if isinstance(error, APIError):
        return error.status_code >= 500 and error.status_code != 503
    if isinstance(error, APIConnectionError):
        return not isinstance(error.__cause__, httpx.ConnectError)
    if isinstance(error, TransportError):
        return True
    return not isinstance(error, InvalidInputError)
