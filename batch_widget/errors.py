"""Exceptions: one type per failure a user can meet, each saying what to do next.

Every API error carries the HTTP status, the API's error ``code`` and ``message``, the batch id
where there is one, and ``retry_after`` (seconds) where the server gave it. No message ever
contains the API key: messages are built from the response body and our own text only.
"""

from __future__ import annotations

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BatchWidgetError",
    "ConfigurationError",
    "ConflictError",
    "InvalidInputError",
    "ManifestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResultLineError",
    "ServerError",
    "TransportError",
    "describe_error",
]


class BatchWidgetError(Exception):
    """Base class of every error raised by batch_widget."""


class ConfigurationError(BatchWidgetError):
    """The client is not set up right (no API key, an unsafe base URL)."""


class InvalidInputError(BatchWidgetError, ValueError):
    """Bad input, refused before any request was sent. The message names the value."""


class ManifestError(BatchWidgetError):
    """A job's manifest cannot be used as it is (unreadable, of another version, malformed, bound to
    another endpoint or key, or in use by another process); nothing was sent."""


class APIError(BatchWidgetError):
    """The API answered with an error status.

    Attributes
    ----------
    status_code : int
        HTTP status.
    code : str or None
        The API's machine-readable error code, when the body had one.
    api_message : str or None
        The API's human message, when the body had one.
    batch_id : str or None
        The batch the call was about.
    retry_after : float or None
        Seconds to wait, from a ``Retry-After`` header (seconds or HTTP date).
    """

    hint = "Check the request and try again."
    retryable = False

    def __init__(
        self,
        status_code: int,
        *,
        code: str | None = None,
        api_message: str | None = None,
        batch_id: str | None = None,
        retry_after: float | None = None,
        operation: str | None = None,
        body_excerpt: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.code = code
        self.api_message = api_message
        self.batch_id = batch_id
        self.retry_after = retry_after
        self.operation = operation
        self.body_excerpt = body_excerpt
        super().__init__(self._compose())

    def _compose(self) -> str:
        what = f"{self.operation} failed" if self.operation else "Request failed"
        parts = [f"{what}: HTTP {self.status_code}"]
        if self.code:
            parts[0] += f" ({self.code})"
        if self.batch_id:
            parts.append(f"batch {self.batch_id}")
        detail = self.api_message or self.body_excerpt
        if detail:
            parts.append(detail.strip())
        if self.retry_after is not None:
            parts.append(f"the server asks to wait {self.retry_after:g} s")
        text = "; ".join(parts)
        # the API's own message often ends a sentence already: no "exist.. Check"
        return text + (" " if text.endswith((".", "!", "?")) else ". ") + self.hint

    def __reduce__(self) -> tuple[object, ...]:  # picklable despite keyword-only arguments
        return (_rebuild, (type(self), self.status_code, dict(self.__dict__)))


def _rebuild(cls: type[APIError], status: int, state: dict[str, object]) -> APIError:
    err = cls.__new__(cls)
    Exception.__init__(err, "")
    err.__dict__.update(state)
    err.args = (err._compose(),)
    return err


class BadRequestError(APIError):
    """400: the API refused the request as invalid."""

    hint = "Fix the field named in the message and send the request again."


class AuthenticationError(APIError):
    """401: the API key is missing, wrong or revoked."""

    hint = (
        "Check your API key (set TWELVELABS_API_KEY or pass api_key=...); keys are managed at "
        "https://playground.twelvelabs.io/dashboard/api-keys."
    )


class PermissionDeniedError(APIError):
    """403: the key is valid but may not do this (plan, region)."""

    hint = "Your account or plan may not use batch analysis here; check your plan and region."


class NotFoundError(APIError):
    """404: no such batch (or asset). Deleted batches and batches older than 30 days are gone."""

    hint = "Check the batch id (list_batches() shows the account's batches); batches are deleted after 30 days."


class ConflictError(APIError):
    """409: the batch is in a state that does not allow this (e.g. cancel after it ended)."""

    hint = "The batch's current status does not allow this call; fetch its status first."


class RateLimitError(APIError):
    """429: too many requests, or already five active batches on the account."""

    hint = (
        "Wait and retry: the account allows 5 active batches and a request rate; "
        "let a running batch finish or cancel one."
    )
    retryable = True


class ServerError(APIError):
    """5xx: the API or a proxy in front of it failed. Usually temporary."""

    hint = "This is usually temporary: retry in a moment."
    retryable = True


class TransportError(BatchWidgetError):
    """The request did not get an HTTP answer (timeout, connection refused or dropped)."""

    retryable = True

    def __init__(self, message: str, *, batch_id: str | None = None, operation: str | None = None):
        self.batch_id = batch_id
        self.operation = operation
        super().__init__(message)


class APITimeoutError(TransportError):
    """The server did not answer in time."""


class APIConnectionError(TransportError):
    """Could not connect, or the connection was dropped mid-way."""


class ResultLineError(BatchWidgetError):
    """A line of the results stream that is not valid JSON (or not an object).

    Made as a value, not thrown: the client yields it in place of the line (and raises it only
    with ``malformed="raise"``), and the frames turn it into a row, so no line is silently lost.
    It carries the raw text (``str``; bytes are decoded, the line end dropped), its 1-based line
    number (0 when unknown) and the reason. ``batch_widget.frames.MalformedLine`` is this type.
    """

    def __init__(
        self, raw: bytes | bytearray | memoryview | str, line_no: int = 0, reason: str = "not valid JSON"
    ) -> None:
        text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "replace")
        self.raw = text.strip()
        self.line_no = line_no
        self.reason = reason
        excerpt = self.raw if len(self.raw) <= 120 else self.raw[:117] + "..."
        where = f"results line {line_no}" if line_no else "a results line"
        super().__init__(f"{where} is not a valid JSON object ({reason}): {excerpt!r}")

    def __reduce__(self) -> tuple[object, ...]:  # picklable: rebuilt from its own arguments
        return (type(self), (self.raw, self.line_no, self.reason))


def describe_error(error: BaseException) -> str:
    """A short sentence for the widget's banner."""
    if isinstance(error, APIError):
        kind = {401: "The API key was refused", 403: "Access denied", 404: "Batch not found",
                429: "Rate limited"}.get(error.status_code)  # fmt: skip
        if kind is None:
            kind = f"Server error {error.status_code}" if error.status_code >= 500 else f"HTTP {error.status_code}"
        detail = (error.api_message or error.body_excerpt or error.code or "").strip().rstrip(".")
        # no final period: callers go on with "; retrying in 4 s" or " [...]"
        return f"{kind}" + (f": {detail}" if detail else "")
    if isinstance(error, APITimeoutError):
        return "The server did not answer in time"
    if isinstance(error, TransportError):
        return "Could not reach the server"
    if isinstance(error, BatchWidgetError):
        return str(error)
    return f"Unexpected error: {type(error).__name__}: {error}"

