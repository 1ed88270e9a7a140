"""Typed, frozen views of the batch API's JSON objects.

Parse-only: nothing here talks to the network. Every parser tolerates unknown extra fields
(kept in ``extra``) and unknown status strings (kept as a pseudo-member of the status enum),
because the API may grow and a monitor must never crash on something new.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = [
    "Batch",
    "BatchPage",
    "BatchStatus",
    "CreatedBatch",
    "CreatedItem",
    "ItemError",
    "ItemStatus",
    "ResultData",
    "ResultLine",
    "WebhookDelivery",
    "format_time",
    "parse_time",
]


class _OpenStrEnum(str, enum.Enum):
    """A string enum that keeps an unknown value instead of raising.

    ``BatchStatus("paused")`` returns a pseudo-member whose ``value`` is ``"paused"`` and whose
    ``is_known`` is False, so new server states are carried through and shown as they are.
    """

    @classmethod
    def _missing_(cls, value: object) -> _OpenStrEnum | None:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = "UNKNOWN"
        member._value_ = value
        return member

    @property
    def is_known(self) -> bool:
        return self._name_ != "UNKNOWN"

    def __str__(self) -> str:
        return str(self.value)


class BatchStatus(_OpenStrEnum):
    """Status of a whole batch. There is no ``failed`` batch status: check the item counts."""

    PENDING = "pending"
    PROCESSING = "processing"
    CANCELING = "canceling"
    CANCELED = "canceled"
    COMPLETED = "completed"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_active(self) -> bool:
        """Counts toward the account's cap of five active batches."""
        return self in (BatchStatus.PENDING, BatchStatus.PROCESSING, BatchStatus.CANCELING)


_TERMINAL = frozenset({BatchStatus.CANCELED, BatchStatus.COMPLETED, BatchStatus.EXPIRED})


class ItemStatus(_OpenStrEnum):
    """Status of one item (one video) of a batch."""

    QUEUED = "queued"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in (ItemStatus.READY, ItemStatus.FAILED, ItemStatus.CANCELED)


def parse_time(value: Any) -> datetime | None:
    """Parse an RFC 3339 timestamp into an aware datetime (``None`` stays ``None``).

    ``datetime.fromisoformat`` only accepts a trailing ``Z`` from Python 3.11 on, and at most six
    fractional digits before 3.11, so both are normalised first.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an RFC 3339 timestamp string, got {value!r}")
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    if "." in text:
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        frac, tz = rest[:digits], rest[digits:]
        text = f"{head}.{(frac + '000000')[:6]}{tz}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no UTC offset; RFC 3339 requires one")
    return parsed


def format_time(value: datetime | None) -> str | None:
    """An aware datetime as RFC 3339 in UTC with a ``Z`` (the API's own form); ``None`` stays ``None``."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _split(data: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in known}


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    return int(value) if value is not None else 0


@dataclass(frozen=True)
class WebhookDelivery:
    """Delivery state of the batch-completion notification to one registered URL."""

    url: str
    delivered: bool
    attempts: int
    last_error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    _KNOWN = frozenset({"url", "delivered", "attempts", "last_error"})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WebhookDelivery:
        return cls(
            url=str(data.get("url", "")),
            delivered=bool(data.get("delivered", False)),
            attempts=_int(data, "attempts"),
            last_error=data.get("last_error"),
            extra=_split(data, cls._KNOWN),
        )


@dataclass(frozen=True)
class Batch:
    """One snapshot of a batch, as returned by status, list and cancel.

    ``completed`` does not mean success: read ``ready_items`` and ``failed_items``.
    """

    batch_id: str
    status: BatchStatus
    total_items: int
    queued_items: int = 0
    processing_items: int = 0
    ready_items: int = 0
    failed_items: int = 0
    canceled_items: int = 0
    analysis_mode: str | None = None
    model_name: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    completed_at: datetime | None = None
    canceled_at: datetime | None = None
    expired_at: datetime | None = None
    webhooks: tuple[WebhookDelivery, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    _KNOWN = frozenset(
        {
            "batch_id", "status", "total_items", "queued_items", "processing_items",
            "ready_items", "failed_items", "canceled_items", "analysis_mode", "model_name",
            "created_at", "expires_at", "completed_at", "canceled_at", "expired_at", "webhooks",
        }
    )  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Batch:
        return cls(
            batch_id=str(data["batch_id"]),
            status=BatchStatus(str(data.get("status", ""))),
            total_items=_int(data, "total_items"),
            queued_items=_int(data, "queued_items"),
            processing_items=_int(data, "processing_items"),
            ready_items=_int(data, "ready_items"),
            failed_items=_int(data, "failed_items"),
            canceled_items=_int(data, "canceled_items"),
            analysis_mode=data.get("analysis_mode"),
            model_name=data.get("model_name"),
            created_at=parse_time(data.get("created_at")),
            expires_at=parse_time(data.get("expires_at")),
            completed_at=parse_time(data.get("completed_at")),
            canceled_at=parse_time(data.get("canceled_at")),
            expired_at=parse_time(data.get("expired_at")),
            webhooks=tuple(WebhookDelivery.from_dict(w) for w in data.get("webhooks") or ()),
            extra=_split(data, cls._KNOWN),
        )

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def done_items(self) -> int:
        """Items that reached an end state: ready, failed or canceled."""
        return self.ready_items + self.failed_items + self.canceled_items

    @property
    def counted_items(self) -> int:
        """Sum of the five counters; the API does not promise it equals ``total_items``."""
        return self.done_items + self.queued_items + self.processing_items

    @property
    def ended_at(self) -> datetime | None:
        """When the batch reached its terminal status, whichever that was."""
        return self.completed_at or self.canceled_at or self.expired_at

    @property
    def counts(self) -> dict[str, int]:
        return {
            "queued": self.queued_items,
            "processing": self.processing_items,
            "ready": self.ready_items,
            "failed": self.failed_items,
            "canceled": self.canceled_items,
        }


@dataclass(frozen=True)
class CreatedItem:
    """One submitted request as echoed by create: its task id and the custom_id it was given."""

    task_id: str
    custom_id: str | None


@dataclass(frozen=True)
class CreatedBatch:
    """The answer to a create call. ``items`` is in request order."""

    batch_id: str
    status: BatchStatus
    total_items: int
    created_at: datetime | None
    expires_at: datetime | None
    items: tuple[CreatedItem, ...]
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    _KNOWN = frozenset({"batch_id", "status", "total_items", "created_at", "expires_at", "items"})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CreatedBatch:
        return cls(
            batch_id=str(data["batch_id"]),
            status=BatchStatus(str(data.get("status") or "pending")),
            total_items=_int(data, "total_items"),
            created_at=parse_time(data.get("created_at")),
            expires_at=parse_time(data.get("expires_at")),
            items=tuple(
                CreatedItem(task_id=str(i["task_id"]), custom_id=i.get("custom_id"))
                for i in data.get("items") or ()
            ),
            extra=_split(data, cls._KNOWN),
        )


@dataclass(frozen=True)
class BatchPage:
    """One page of the list endpoint, with its ``page_info``."""

    batches: tuple[Batch, ...]
    page: int
    total_page: int
    total_results: int
    limit_per_page: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, page: int, limit: int) -> BatchPage:
        info = data.get("page_info") or {}
        batches = tuple(Batch.from_dict(b) for b in data.get("data") or ())
        return cls(
            batches=batches,
            page=int(info.get("page") or page),
            total_page=int(info.get("total_page") or (1 if batches else 0)),
            total_results=int(info.get("total_results") or len(batches)),
            limit_per_page=int(info.get("limit_per_page") or limit),
        )


@dataclass(frozen=True)
class ResultData:
    """The ``data`` envelope of a ready item. ``text`` is always a string (JSON for structured modes)."""

    text: str
    generation_id: str | None = None
    finish_reason: str | None = None
    output_tokens: int | None = None
    input_tokens: int | None = None


@dataclass(frozen=True)
class ItemError:
    """Why an item failed. ``code`` may be missing; ``message`` is for people, not parsing."""

    message: str
    code: str | None = None


@dataclass(frozen=True)
class ResultLine:
    """One line of the results stream: one item of the batch.

    ``line_no`` is the 1-based line number in the stream it came from (0 when built by hand).
    """

    task_id: str | None
    custom_id: str | None
    status: ItemStatus
    data: ResultData | None = None
    error: ItemError | None = None
    line_no: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    _KNOWN = frozenset({"task_id", "custom_id", "status", "data", "error"})

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], line_no: int = 0) -> ResultLine:
        data = obj.get("data")
        result = None
        if isinstance(data, Mapping):
            usage = data.get("usage") or {}
            text = data.get("data")
            result = ResultData(
                text=text if isinstance(text, str) else ("" if text is None else str(text)),
                generation_id=data.get("generation_id"),
                finish_reason=data.get("finish_reason"),
                output_tokens=usage.get("output_tokens"),
                input_tokens=usage.get("input_tokens"),
            )
        err = obj.get("error")
        error = None
        if isinstance(err, Mapping):
            error = ItemError(message=str(err.get("message") or ""), code=err.get("code"))
        elif isinstance(err, str):
            error = ItemError(message=err)
        task_id = obj.get("task_id")
        return cls(
            task_id=None if task_id is None else str(task_id),
            custom_id=obj.get("custom_id"),
            status=ItemStatus(str(obj.get("status") or "")),
            data=result,
            error=error,
            line_no=line_no,
            extra=_split(obj, cls._KNOWN),
        )
