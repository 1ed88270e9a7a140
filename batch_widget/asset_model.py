"""The :class:`Asset` model (``POST/GET /assets``): frozen, parse-only, unknown-tolerant.

The wire calls the id ``_id``; ``id`` is accepted too (spec open question 24). ``duration`` is
final only once the asset is ``ready``; before that :attr:`Asset.content_seconds` is None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .models import parse_time, str_or_none

__all__ = ["ASSET_STATUSES", "ASSET_TERMINAL", "Asset"]

#: the documented asset statuses; any other value is treated as not terminal (spec Q21)
ASSET_STATUSES = ("processing", "ready", "failed")
ASSET_TERMINAL = frozenset({"ready", "failed"})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


@dataclass(frozen=True)
class Asset:
    """An uploaded asset as the API describes it.

    Attributes
    ----------
    id : str
        The ``asset_id`` to name in a batch request.
    status : str
        ``processing``, ``ready`` or ``failed`` (unknown values are kept and not terminal).
    method, filename, file_type : str or None
        How it was uploaded, its name and MIME type.
    created_at : datetime or None
    size : int or None
        Bytes (final when ready).
    duration : float or None
        Seconds, from ``duration`` or ``technical_metadata.video_duration_seconds``.
    error_message : str or None
        Why it failed (human text, not a contract).
    user_metadata : dict
        The metadata given at upload (our upload tag is there too).
    raw : dict
        The whole object as received.
    """

    id: str
    status: str
    method: str | None = None
    filename: str | None = None
    file_type: str | None = None
    created_at: datetime | None = None
    size: int | None = None
    duration: float | None = None
    error_message: str | None = None
    user_metadata: Mapping[str, Any] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Asset:
        """Parse an ``Asset`` / ``AssetDetail`` object; raises ``ValueError`` without an id."""
        asset_id = str_or_none(data.get("_id")) or str_or_none(data.get("id"))
        if not asset_id:
            raise ValueError(f"an asset object without an id: keys {sorted(data)}")
        tech = data.get("technical_metadata")
        meta: Mapping[str, Any] = tech if isinstance(tech, dict) else {}
        duration = _number(data.get("duration"))
        if duration is None:
            duration = _number(meta.get("video_duration_seconds"))
        error = data.get("error")
        size = _number(data.get("size"))
        user_metadata = data.get("user_metadata")
        return cls(
            id=asset_id,
            status=str_or_none(data.get("status")) or "processing",
            method=str_or_none(data.get("method")),
            filename=str_or_none(data.get("filename")),
            file_type=str_or_none(data.get("file_type")),
            created_at=parse_time(data.get("created_at")),
            size=int(size) if size is not None else None,
            duration=duration,
            error_message=str_or_none(error.get("message")) if isinstance(error, dict) else str_or_none(error),
            user_metadata=dict(user_metadata) if isinstance(user_metadata, dict) else {},
            raw=dict(data),
        )

    @property
    def is_ready(self) -> bool:
        return self.status == "ready"

    @property
    def is_failed(self) -> bool:
        return self.status == "failed"

    @property
    def is_terminal(self) -> bool:
        return self.status in ASSET_TERMINAL

    @property
    def content_seconds(self) -> float | None:
        """The duration to count toward a batch's 2,000 hours: only once ready (spec Q9)."""
        return self.duration if self.is_ready else None
