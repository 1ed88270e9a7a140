"""Typed, frozen views of the batch API's JSON objects, and the one parser of a results line.

Parse-only: nothing here talks to the network. Every parser tolerates unknown extra fields
(kept in ``extra``) and unknown status strings (kept as a pseudo-member of the status enum),
because the API may grow and a monitor must never crash on something new.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

from ._json import loads
from .errors import ResultLineError

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
    "parse_result_line",
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


# ResultData and ResultLine are made once per line of a results body (the frames read whole
# bodies through them), so they are slotted and their __init__ is written out: it sets each
# slot through its descriptor, where the generated frozen __init__ calls object.__setattr__ per
# field (2.0 vs 1.6 µs a line; the benchmark's items frame was 3-5% slower with it). They are
# frozen all the same: the dataclass's __setattr__ still refuses assignment.


@dataclass(frozen=True, slots=True, init=False)
class ResultData:
    """The ``data`` envelope of an item's line.

    ``text`` is the answer (JSON text for structured modes; ``None`` when the line has none).
    Token counts are ints, or ``None`` when the line gives none that reads as an integer.
    """

    text: str | None
    generation_id: str | None = None
    finish_reason: str | None = None
    output_tokens: int | None = None
    input_tokens: int | None = None

    def __init__(
        self,
        text: str | None,
        generation_id: str | None = None,
        finish_reason: str | None = None,
        output_tokens: int | None = None,
        input_tokens: int | None = None,
    ) -> None:
        set_text, set_generation_id, set_finish_reason, set_output_tokens, set_input_tokens = _DATA_SLOTS
        set_text(self, text)
        set_generation_id(self, generation_id)
        set_finish_reason(self, finish_reason)
        set_output_tokens(self, output_tokens)
        set_input_tokens(self, input_tokens)


@dataclass(frozen=True, slots=True)
class ItemError:
    """Why an item failed. ``code`` may be missing; ``message`` is for people, not parsing."""

    message: str | None
    code: str | None = None


_NO_USAGE: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, init=False)
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

    def __init__(
        self,
        task_id: str | None,
        custom_id: str | None,
        status: ItemStatus,
        data: ResultData | None = None,
        error: ItemError | None = None,
        line_no: int = 0,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        set_task_id, set_custom_id, set_status, set_data, set_error, set_line_no, set_extra = _LINE_SLOTS
        set_task_id(self, task_id)
        set_custom_id(self, custom_id)
        set_status(self, status)
        set_data(self, data)
        set_error(self, error)
        set_line_no(self, line_no)
        set_extra(self, {} if extra is None else extra)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], line_no: int = 0) -> ResultLine:
        """Read a decoded line. Never raises: odd values are kept as text, not refused.

        Ids, status and the envelope's strings become ``str`` (``None`` stays ``None``); an
        answer already decoded to a list or object is kept as its JSON text, a ``data`` or
        ``error`` that is not an object as the text or the message; token counts become ints.
        """
        # the frames read every line of a results body through here, so the usual case is
        # cheap: plain dicts pass `type(...) is dict` before the (slower) Mapping check, strings
        # skip the conversion call, known statuses are found in a dict
        data = obj.get("data")
        result = None
        if type(data) is dict or isinstance(data, Mapping):
            usage = data.get("usage")
            if type(usage) is not dict and not isinstance(usage, Mapping):
                usage = _NO_USAGE
            text = data.get("data")
            generation_id = data.get("generation_id")
            finish_reason = data.get("finish_reason")
            output_tokens = usage.get("output_tokens")
            input_tokens = usage.get("input_tokens")
            result = ResultData(
                text if type(text) is str else _text_of(text),
                generation_id if type(generation_id) is str else str_or_none(generation_id),
                finish_reason if type(finish_reason) is str else str_or_none(finish_reason),
                output_tokens if type(output_tokens) is int else _int_or_none(output_tokens),
                input_tokens if type(input_tokens) is int else _int_or_none(input_tokens),
            )
        elif data is not None:
            result = ResultData(_text_of(data))
        err = obj.get("error")
        error = None
        if err is not None:
            if type(err) is dict or isinstance(err, Mapping):
                error = ItemError(str_or_none(err.get("message")), str_or_none(err.get("code")))
            else:
                error = ItemError(str_or_none(err))
        task_id = obj.get("task_id")
        custom_id = obj.get("custom_id")
        status = obj.get("status")
        member = _ITEM_STATUSES.get(status) if type(status) is str else None
        return cls(
            task_id if type(task_id) is str else str_or_none(task_id),
            custom_id if type(custom_id) is str else str_or_none(custom_id),
            member or ItemStatus(str_or_none(status) or ""),
            result,
            error,
            line_no,
            {} if cls._KNOWN.issuperset(obj) else _split(obj, cls._KNOWN),
        )


def _slot_setters(cls: type, names: tuple[str, ...]) -> tuple[Callable[[Any, Any], None], ...]:
    return tuple(cls.__dict__[name].__set__ for name in names)


_DATA_SLOTS = _slot_setters(ResultData, ("text", "generation_id", "finish_reason", "output_tokens", "input_tokens"))
_LINE_SLOTS = _slot_setters(ResultLine, ("task_id", "custom_id", "status", "data", "error", "line_no", "extra"))
_ITEM_STATUSES = {status.value: status for status in ItemStatus}


def parse_result_line(
    raw: bytes | bytearray | memoryview | str, line_no: int = 0
) -> ResultLine | ResultLineError | None:
    """Parse one line of a results body: the one parser of a line, for the client and frames.

    Parameters
    ----------
    raw
        The line's text, as bytes (or a view of them) or str, with or without its line end.
    line_no
        Its 1-based number in the stream, kept on the result (0 when unknown).

    Returns
    -------
    ResultLine, ResultLineError or None
        The item; or, for a line that is not a JSON object, the error as a value (the caller
        raises it if it wants to); ``None`` for a blank line, which is no item.
    """
    try:
        obj = loads(raw)
    except ValueError as exc:
        if not (raw.strip() if isinstance(raw, str) else bytes(raw).strip()):
            return None
        return ResultLineError(raw, line_no, f"not valid JSON: {exc}")
    if type(obj) is not dict:
        return ResultLineError(raw, line_no, "not a JSON object")
    return ResultLine.from_dict(obj, line_no)


def str_or_none(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _int_or_none(value: Any) -> int | None:
    """An int from a JSON number or numeric string; ``None`` for anything else (bools too)."""
    if type(value) is int:
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _text_of(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):  # already decoded upstream: keep it as JSON text
        return json.dumps(value, ensure_ascii=False)
    return str(value)
