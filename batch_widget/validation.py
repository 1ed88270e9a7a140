"""What the API accepts, checked before any request: batch ids, custom ids, create bodies, filters.

Every check raises :class:`~batch_widget.errors.InvalidInputError` with a message that names the
offending value (and, for a request, its index) and says what would be accepted. The client
calls these before it sends anything; ``jobs`` calls them per row, so an error names the row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import InvalidInputError
from .models import BatchStatus

__all__ = [
    "ANALYSIS_MODES", "BATCH_STATUSES", "CUSTOM_ID", "MAX_REQUESTS", "build_create_body", "choices",
    "format_type", "validate_batch_id",
]  # fmt: skip

#: requests in one batch, at most
MAX_REQUESTS = 1000
ANALYSIS_MODES = ("general", "time_based_metadata")
BATCH_STATUSES = tuple(status.value for status in BatchStatus)
BATCH_ID = re.compile(r"[0-9a-fA-F]{24}")
#: what the API accepts as a custom_id
CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def validate_batch_id(batch_id: object) -> str:
    """Return ``batch_id``, lowercased, if it has the API's format (24 hex characters), else raise.

    Every batch id enters the package through here, so one batch is one key however it was
    spelt (the API answers ids in lowercase; a registry or a list lookup compares them as they are).

    Raises
    ------
    InvalidInputError
        Naming the value, before any request is sent.
    """
    if not isinstance(batch_id, str) or not BATCH_ID.fullmatch(batch_id):
        raise InvalidInputError(
            f"batch_id {batch_id!r} is not a batch id: expected 24 hexadecimal characters, "
            "as returned by create() or shown by list_batches()."
        )
    return batch_id.lower()


def choices(name: str, value: str | Iterable[str] | None, allowed: Sequence[str]) -> list[str]:
    """``value`` (one string or several) as a list, each checked against ``allowed``."""
    if value is None:
        return []
    values = [value] if isinstance(value, str) else list(value)
    for v in values:
        if v not in allowed:
            raise InvalidInputError(f"{name} {v!r} is not one of {', '.join(allowed)}.")
    return values


# -- create-body validation (before any request) ----------------------------------------------


def build_create_body(
    *,
    analysis_mode: str,
    requests: Sequence[Mapping[str, Any] | str],
    model_name: str = "pegasus1.5",
    defaults: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Check a create call's arguments and return the JSON body, or raise ``InvalidInputError``.

    Every message names the offending value and, for a request, its index.
    """
    if analysis_mode not in ANALYSIS_MODES:
        raise InvalidInputError(
            f"analysis_mode {analysis_mode!r} is not one of {', '.join(ANALYSIS_MODES)}."
        )
    if not isinstance(model_name, str) or not model_name:
        raise InvalidInputError(f"model_name {model_name!r} must be a model name such as 'pegasus1.5'.")
    if isinstance(requests, (str, bytes)) or not isinstance(requests, Sequence):
        raise InvalidInputError(
            f"requests must be a list of request dicts (or asset id strings), got {type(requests).__name__}."
        )
    if not 1 <= len(requests) <= MAX_REQUESTS:
        raise InvalidInputError(
            f"a batch holds 1 to {MAX_REQUESTS} requests, got {len(requests)}; "
            "split larger inputs into several batches."
        )
    if defaults is not None and not isinstance(defaults, Mapping):
        raise InvalidInputError(f"defaults must be a dict, got {type(defaults).__name__}.")
    defaults = dict(defaults or {})
    default_format = format_type(defaults.get("response_format"), "defaults.response_format")
    _check_mode_fields(analysis_mode, defaults, "defaults", default_format, item=False)

    items: list[dict[str, Any]] = []
    seen_ids: dict[str, int] = {}
    for index, request in enumerate(requests):
        where = f"requests[{index}]"
        if isinstance(request, str):
            request = {"video": {"type": "asset_id", "asset_id": request}}
        if not isinstance(request, Mapping):
            raise InvalidInputError(f"{where} must be a dict or an asset id string, got {request!r}.")
        item = dict(request)
        video = item.get("video")
        if not isinstance(video, Mapping) or video.get("type", "asset_id") != "asset_id":
            raise InvalidInputError(
                f"{where}.video must be {{'type': 'asset_id', 'asset_id': ...}} (batches take "
                f"uploaded assets only), got {video!r}."
            )
        asset_id = video.get("asset_id")
        if not isinstance(asset_id, str) or not asset_id.strip():
            raise InvalidInputError(f"{where}.video.asset_id {asset_id!r} must be a non-empty asset id string.")
        item["video"] = {**video, "type": "asset_id"}
        if "custom_id" in item and item["custom_id"] is not None:
            custom_id = item["custom_id"]
            if not isinstance(custom_id, str) or not CUSTOM_ID.fullmatch(custom_id):
                raise InvalidInputError(
                    f"{where}.custom_id {custom_id!r} is invalid: use 1 to 64 characters of "
                    "letters, digits, '_' and '-'."
                )
            if custom_id in seen_ids:
                raise InvalidInputError(
                    f"{where}.custom_id {custom_id!r} is a duplicate of requests[{seen_ids[custom_id]}]"
                    ".custom_id; custom_ids must be unique in a batch."
                )
            seen_ids[custom_id] = index
        fmt = format_type(item.get("response_format"), f"{where}.response_format") or default_format
        _check_mode_fields(analysis_mode, item, where, fmt, item=True, defaults=defaults)
        items.append(item)

    body: dict[str, Any] = {"model_name": model_name, "analysis_mode": analysis_mode, "requests": items}
    if defaults:
        body["defaults"] = defaults
    return body


def format_type(response_format: Any, where: str) -> str | None:
    """The ``type`` of a response_format (``json_schema`` or ``segment_definitions``), checked."""
    if response_format is None:
        return None
    if not isinstance(response_format, Mapping) or response_format.get("type") not in (
        "json_schema",
        "segment_definitions",
    ):
        raise InvalidInputError(
            f"{where} {response_format!r} must be a dict with type 'json_schema' or 'segment_definitions'."
        )
    kind = str(response_format["type"])
    if kind == "json_schema" and not isinstance(response_format.get("json_schema"), Mapping):
        raise InvalidInputError(f"{where} has type 'json_schema' but no 'json_schema' dict.")
    if kind == "segment_definitions":
        defs = response_format.get("segment_definitions")
        if not isinstance(defs, Sequence) or not 1 <= len(defs) <= 20:
            raise InvalidInputError(
                f"{where}.segment_definitions must be a list of 1 to 20 definitions, got {defs!r}."
            )
    return kind


def _check_mode_fields(
    mode: str,
    fields: Mapping[str, Any],
    where: str,
    fmt: str | None,
    *,
    item: bool,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    prompt = fields.get("prompt")
    if prompt is not None and (not isinstance(prompt, Mapping) or not isinstance(prompt.get("input_text"), str)):
        raise InvalidInputError(
            f"{where}.prompt {prompt!r} must be a dict like {{'input_text': 'Summarise the video.'}}."
        )
    if mode == "time_based_metadata":
        if prompt is not None:
            raise InvalidInputError(
                f"{where}.prompt is not supported in analysis_mode 'time_based_metadata'; "
                "describe what to find in response_format.segment_definitions instead."
            )
        if item and fmt != "segment_definitions":
            raise InvalidInputError(
                f"{where}: analysis_mode 'time_based_metadata' needs response_format type "
                f"'segment_definitions' (in the request or in defaults), got {fmt!r}."
            )
    else:
        if fmt == "segment_definitions":
            raise InvalidInputError(
                f"{where}.response_format type 'segment_definitions' needs analysis_mode "
                "'time_based_metadata', not 'general'."
            )
        if item and prompt is None and (defaults or {}).get("prompt") is None:
            raise InvalidInputError(
                f"{where} has no prompt and defaults has none: analysis_mode 'general' needs "
                "prompt={'input_text': ...} in the request or in defaults."
            )
    for key in ("min_segment_duration", "max_segment_duration"):
        if fields.get(key) is not None and mode != "time_based_metadata":
            raise InvalidInputError(f"{where}.{key} applies only to analysis_mode 'time_based_metadata'.")
    start, end = fields.get("start_time"), fields.get("end_time")
    if start is not None and end is not None and not float(start) < float(end):
        raise InvalidInputError(f"{where}: start_time {start!r} must be before end_time {end!r}.")
