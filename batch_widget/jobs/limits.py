"""How a job spends the account: :class:`Limits` (batch sizes, slots, uploads at once, policies, budget).

Recorded in the manifest (``"limits": {...}``), so a resumed job keeps them; each is checked when
made, so a bad value is named before anything else happens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, get_args

from ..errors import InvalidInputError
from ..validation import MAX_REQUESTS

__all__ = ["ACCOUNT_MAX_ACTIVE", "MAX_CONTENT_HOURS", "Limits", "Uncertain"]

#: content hours in one batch, at most (the API's limit)
MAX_CONTENT_HOURS = 2000.0
#: batches active on an account at once, at most (the API's limit)
ACCOUNT_MAX_ACTIVE = 5
Uncertain = Literal["ask", "resubmit", "skip", "raise"]


@dataclass(frozen=True)
class Limits:
    """How the job spends the account: batch sizes, slots, uploads at once, and its policies.

    Checked when made, so a bad value is named before anything else happens.
    """

    chunk_size: int = MAX_REQUESTS
    max_content_hours: float = MAX_CONTENT_HOURS
    max_active: int = ACCOUNT_MAX_ACTIVE
    upload_concurrency: int = 4
    on_uncertain: Uncertain = "ask"
    #: seconds between checks for a free slot while the account is at its cap
    slot_poll: float = 15.0
    #: the budget: content hours the job may send in all (every attempt counts), None for no budget;
    #: a chunk that would pass it is not created (``over_budget``) until the budget is raised
    max_content_hours_total: float | None = None

    def __post_init__(self) -> None:
        def number(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool)

        budget = self.max_content_hours_total
        for name, ok, rule in (
            ("chunk_size", type(self.chunk_size) is int and 1 <= self.chunk_size <= MAX_REQUESTS,
             f"an integer from 1 to {MAX_REQUESTS}"),
            ("max_content_hours", number(self.max_content_hours) and 0 < self.max_content_hours <= MAX_CONTENT_HOURS,
             f"in (0, {MAX_CONTENT_HOURS:g}]"),
            ("max_active", type(self.max_active) is int and 1 <= self.max_active <= ACCOUNT_MAX_ACTIVE,
             f"an integer from 1 to {ACCOUNT_MAX_ACTIVE}"),
            ("upload_concurrency", type(self.upload_concurrency) is int and 1 <= self.upload_concurrency <= 64,
             "an integer from 1 to 64"),
            ("on_uncertain", self.on_uncertain in get_args(Uncertain), "one of 'ask', 'resubmit', 'skip', 'raise'"),
            ("slot_poll", number(self.slot_poll) and self.slot_poll > 0, "a positive number of seconds"),
            ("max_content_hours_total", budget is None or (number(budget) and budget > 0 and math.isfinite(budget)),
             "a positive number of content hours (or None for no budget)"),
        ):  # fmt: skip
            if not ok:
                raise InvalidInputError(f"{name} {getattr(self, name)!r} must be {rule}.")

    def but(self, **changes: Any) -> Limits:
        """These limits with the given ones changed (``None`` keeps a value as it is)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
