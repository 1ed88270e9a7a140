"""The one HTTP core every endpoint sends through: pooled connections, the key, retries, typed errors.

:class:`HttpCore` owns the ``httpx.AsyncClient`` (one pool per ``BatchClient``), adds the API key
(never shown in a repr), retries by a :class:`~batch_widget.retry.RetryPolicy`, turns every
failure into a typed error of :mod:`batch_widget.errors`, and notes the server's clock from each
answer's ``Date``. The batch endpoints (``client.py``) and the assets endpoints (``assets.py``)
both hold the same core; neither reaches into the other. A create is retried only where
:func:`~batch_widget.retry.may_have_created` says nothing can have been made.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import json
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx

from ._version import VERSION
from .clock import Clock
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TransportError,
)
from .retry import RetryPolicy, may_have_created

__all__ = ["HttpCore", "RetryMode", "parse_http_date", "parse_retry_after"]

log = logging.getLogger("batch_widget.client")

_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}

#: ``idempotent``: retried on any transient failure; ``create``: only where nothing can have been made
RetryMode = Literal["idempotent", "create"]


class _ApiKeyAuth(httpx.Auth):
    """Adds ``x-api-key`` to each request; its repr never shows the key."""

    def __init__(self, key: str) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["x-api-key"] = self._key
        yield request

    def __repr__(self) -> str:
        return "_ApiKeyAuth(key=***)"


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    """One TLS context per process (loading the CA bundle costs ~20-40 ms; a context is shareable)."""
    return httpx.create_ssl_context()


def parse_http_date(value: str | None) -> float | None:
    """Epoch seconds of an HTTP date (``Date``, ``Retry-After``), or None."""
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    return None if when is None else when.timestamp()


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    ``now`` is the server's time (its ``Date`` header) when known, so a skewed local clock
    does not stretch or shrink the wait.
    """
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    when = parse_http_date(value)
    if when is None:
        return None
    return max(0.0, when - (time.time() if now is None else now))


def error_from_response(
    response: httpx.Response, body: bytes, *, operation: str, batch_id: str | None
) -> APIError:
    """Build the typed error for an error response; accepts nested, flat, empty and non-JSON bodies."""
    code = message = excerpt = None
    parsed: Any = None
    if body.strip():
        try:
            parsed = json.loads(body)
        except ValueError:
            text = body.decode("utf-8", "replace")
            # a proxy's HTML page: keep its title or first words, not the whole markup
            title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
            excerpt = (title.group(1) if title else re.sub(r"<[^>]+>|\s+", " ", text))[:200].strip()
            excerpt = f"non-JSON response: {excerpt}" if excerpt else None
    if isinstance(parsed, dict):
        nested = parsed.get("error")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else parsed
        code = inner.get("code") if isinstance(inner.get("code"), str) else None
        raw_message = inner.get("message")
        message = raw_message if isinstance(raw_message, str) else None
        if code is None and isinstance(parsed.get("error"), str):
            message = message or parsed["error"]
    status = response.status_code
    cls = _STATUS_ERRORS.get(status, ServerError if status >= 500 else APIError)
    server_now = parse_http_date(response.headers.get("date"))
    return cls(
        status,
        code=code,
        api_message=message,
        batch_id=batch_id,
        retry_after=parse_retry_after(response.headers.get("retry-after"), server_now),
        operation=operation,
        body_excerpt=excerpt,
    )


def transport_error(exc: httpx.TransportError, operation: str, batch_id: str | None) -> TransportError:
    """The typed error of a request that got no HTTP answer (its cause kept as ``__cause__``)."""
    where = f" (batch {batch_id})" if batch_id else ""
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(
            f"{operation} timed out{where}: the server did not answer in time "
            f"({type(exc).__name__}). It may be slow or overloaded: try again, or raise timeout=.",
            batch_id=batch_id,
            operation=operation,
        )
    return APIConnectionError(
        f"{operation} could not reach the server{where} ({type(exc).__name__}: {exc}). "
        "Check the network and the base URL, then try again.",
        batch_id=batch_id,
        operation=operation,
    )


def should_retry(error: APIError | TransportError, mode: RetryMode) -> bool:
    """A transient failure is retried; in ``create`` mode, only if nothing can have been made."""
    if mode == "create" and may_have_created(error):
        return False  # never after a timeout or a 5xx other than 503: a retry could duplicate
    return error.retryable


class HttpCore:
    """One pool of connections to the API, with the key, retries and typed errors.

    Parameters
    ----------
    api_key, base_url
        Who speaks, and to which API (``base_url`` already checked by the client).
    timeout
        Seconds to wait for the server at each step (connect at most 10).
    retry
        The default policy; each call may pass its own.
    clock
        Where retries sleep and the server's clock offset is measured.
    transport, max_connections
        A custom httpx transport; the pool's size.
    """

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: float,
        retry: RetryPolicy,
        clock: Clock,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 20,
    ) -> None:
        self.base_url = base_url
        self.retry = retry
        self.clock = clock
        self.server_clock_offset = 0.0
        """Seconds the server's clock (its ``Date`` header) is ahead of ours, from the last answer."""
        self._http = httpx.AsyncClient(
            base_url=base_url + "/",
            auth=_ApiKeyAuth(api_key),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"user-agent": f"batch-widget/{VERSION}", "accept": "application/json"},
            transport=transport,
            verify=_ssl_context(),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            event_hooks={"response": [self._note_server_time]},
        )

    def __repr__(self) -> str:
        return f"HttpCore(base_url={self.base_url!r}, api_key=***)"

    async def _note_server_time(self, response: httpx.Response) -> None:
        server_now = parse_http_date(response.headers.get("date"))
        if server_now is not None:
            self.server_clock_offset = server_now - self.clock.now().timestamp()

    def server_now(self) -> datetime:
        """Now on the server's clock (from its last ``Date`` header)."""
        return self.clock.now() + timedelta(seconds=self.server_clock_offset)

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    async def send(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        batch_id: str | None = None,
        mode: RetryMode = "idempotent",
        retry: RetryPolicy | None = None,
        with_key: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """One call with the retry policy and typed errors; ``kwargs`` go to ``httpx`` (``json``,
        ``params``, ``files``, ``content`` (a callable giving a fresh body per attempt), ``headers``...).
        ``with_key=False`` sends no API key (presigned storage URLs belong to someone else)."""
        body = kwargs.pop("content", None)

        async def attempt() -> httpx.Response:
            extra = dict(kwargs)
            if body is not None:
                extra["content"] = body() if callable(body) else body
            if not with_key:
                extra["auth"] = None
            response = await self._http.request(method, url, **extra)
            if response.status_code >= 400:
                raise error_from_response(response, response.content, operation=operation, batch_id=batch_id)
            return response

        return await self._with_retries(operation, attempt, batch_id=batch_id, mode=mode, policy=retry)

    @contextlib.asynccontextmanager
    async def streamed_get(self, operation: str, path: str, batch_id: str) -> AsyncIterator[httpx.Response]:
        """A streamed GET (JSON Lines) whose opening is retried like any idempotent call; closed on exit."""

        async def attempt() -> httpx.Response:
            request = self._http.build_request("GET", path, headers={"accept": "application/jsonl"})
            response = await self._http.send(request, stream=True)
            if response.status_code >= 400:
                try:
                    body = await response.aread()
                finally:
                    await response.aclose()
                raise error_from_response(response, body, operation=operation, batch_id=batch_id)
            return response

        response = await self._with_retries(operation, attempt, batch_id=batch_id, mode="idempotent")
        try:
            yield response
        finally:
            await response.aclose()

    async def _with_retries(
        self,
        operation: str,
        attempt_once: Callable[[], Awaitable[httpx.Response]],
        *,
        batch_id: str | None,
        mode: RetryMode,
        policy: RetryPolicy | None = None,
    ) -> httpx.Response:
        policy = policy or self.retry
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                try:
                    return await attempt_once()
                except httpx.TransportError as exc:
                    raise transport_error(exc, operation, batch_id) from exc
            except (APIError, TransportError) as error:
                if not should_retry(error, mode) or attempt >= policy.max_attempts:
                    raise
                retry_after = error.retry_after if isinstance(error, APIError) else None
                delay = retry_after if retry_after is not None else policy.backoff(attempt)
                if waited + delay > policy.budget:
                    raise
                waited += delay
                log.info(
                    "%s: %s; retrying in %.1f s (attempt %d of %d)",
                    operation, _short(error), delay, attempt + 1, policy.max_attempts,
                )  # fmt: skip
                await self.clock.sleep(delay)


def _short(error: Exception) -> str:
    if isinstance(error, APIError):
        return f"HTTP {error.status_code}" + (f" ({error.code})" if error.code else "")
    return type(error).__name__
