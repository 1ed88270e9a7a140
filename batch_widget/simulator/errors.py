"""The simulator's API error: :class:`ApiError`, and builders for the spec's ``parameter_*`` codes.

Anything below the HTTP layer (engine, validation) raises :class:`ApiError`; the routes turn it
into the API's error body ``{"error": {"code", "message", "details"?}}`` with its status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["ApiError", "int_param", "json_body", "parameter_invalid", "parameter_not_provided", "parameter_unknown"]


class ApiError(Exception):
    """An API error the HTTP layer turns into ``{"error": {"code", "message", "details"?}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details) if details else None
        self.headers = dict(headers) if headers else {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            err["details"] = self.details
        return {"error": err}


def parameter_invalid(path: str, message: str) -> ApiError:
    """400 ``parameter_invalid`` for the field at ``path`` (e.g. ``requests[3].custom_id``)."""
    return ApiError(400, "parameter_invalid", f"{path}: {message}", {"field": path})


def parameter_not_provided(path: str) -> ApiError:
    """400 ``parameter_not_provided``: the required field at ``path`` is missing."""
    return ApiError(400, "parameter_not_provided", f"{path}: this field is required", {"field": path})


def parameter_unknown(path: str) -> ApiError:
    """400 ``parameter_unknown``: the request has a field the spec does not define."""
    return ApiError(400, "parameter_unknown", f"{path}: unknown parameter", {"field": path})


def json_body(raw: bytes) -> Any:
    """A request's JSON body (None when empty), or the 400 the API answers to malformed JSON."""
    try:
        return json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, "parameter_invalid", f"body: malformed JSON ({e})") from None


def int_param(query: Mapping[str, list[str]], name: str, default: int) -> int:
    """An integer query parameter (the last one when repeated), or the 400 for a non-integer."""
    values = query.get(name)
    if not values:
        return default
    try:
        return int(values[-1])
    except ValueError:
        raise parameter_invalid(name, f"must be an integer, got {values[-1]!r}") from None
