"""Async client for the TwelveLabs batch analysis API (``/analyze/batches``, v1.3).

I/O only: it knows nothing of pollers, widgets or DataFrames. One ``httpx.AsyncClient`` per
``BatchClient``, so every call reuses the same pooled connections.
"""

from __future__ import annotations

import builtins
import contextlib  # the class's own `list` method shadows the builtin in its annotations
import email.utils
import hashlib
import ipaddress
import json
import logging
import os
import re
import time
import warnings
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from ._version import VERSION
from .assets import AssetsMixin
from .clock import SYSTEM_CLOCK, Clock
from .errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResultLineError,
    ServerError,
    TransportError,
)
from .frontends import colab_secret, in_colab
from .models import Batch, BatchPage, CreatedBatch, ResultLine, parse_result_line
from .retry import NO_RETRY, RetryPolicy
from .validation import ANALYSIS_MODES, BATCH_STATUSES, build_create_body, choices, validate_batch_id

__all__ = ["DEFAULT_BASE_URL", "NO_RETRY", "BatchClient", "RetryPolicy", "default_client", "key_fingerprint", "validate_batch_id"]

DEFAULT_BASE_URL = "https://api.twelvelabs.io/v1.3"
API_KEY_ENV = "TWELVELABS_API_KEY"
BASE_URL_ENV = "TWELVELABS_BASE_URL"

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


def key_fingerprint(key: str) -> str:
    """A short, one-way hash of an API key: tells two keys apart, and says nothing of either."""
    return hashlib.sha256(b"batch_widget key\x00" + key.encode("utf-8")).hexdigest()[:12]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_base_url(url: str, allow_insecure_http: bool) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"base_url {url!r} is not an http(s) URL; use e.g. {DEFAULT_BASE_URL!r}."
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        if not allow_insecure_http:
            raise ConfigurationError(
                f"base_url {url!r} uses plain http to a non-loopback host, which would send the "
                "API key unencrypted. Use https, or pass allow_insecure_http=True if you must."
            )
        warnings.warn(
            f"batch_widget: sending the API key over plain http to {parts.hostname}",
            stacklevel=3,
        )
    return url.rstrip("/")


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


def _error_from_response(
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


def _transport_error(exc: httpx.TransportError, operation: str, batch_id: str | None) -> TransportError:
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


def _should_retry(error: Exception, mode: RetryMode) -> bool:
    if mode == "create":
        # A create is retried only where no batch can have been made: the API says so for
        # 429 and 503, and a refused connection never reached it. Never after a timeout.
        if isinstance(error, APIError):
            return error.status_code in (429, 503)
        return isinstance(error, APIConnectionError) and bool(
            error.__cause__ and isinstance(error.__cause__, httpx.ConnectError)
        )
    if isinstance(error, APIError):
        return error.retryable
    return isinstance(error, TransportError)


class BatchClient(AssetsMixin):
    """Async client for the batch analysis API.

    Parameters
    ----------
    api_key : str, optional
        Your TwelveLabs API key; defaults to the ``TWELVELABS_API_KEY`` environment variable, and
        in Colab to the secret of that name (the Secrets panel).
    base_url : str, optional
        Defaults to ``TWELVELABS_BASE_URL``, else the public v1.3 URL. Must be https, except for
        a loopback address (the local simulator) or with ``allow_insecure_http=True``.
    timeout : float
        Seconds to wait for the server at each step (connect, each read).
    retry : RetryPolicy
        How transient failures (429, 5xx, timeouts, connection errors) are retried.
    allow_insecure_http : bool
        Allow a plain-http ``base_url`` that is not a loopback address.
    transport : httpx.AsyncBaseTransport, optional
        A custom httpx transport (a proxy set-up, a mock).
    max_connections : int
        The connection pool's size.
    clock : Clock, optional
        Where this client, and the pollers and jobs that use it, read time and sleep; tests pass
        a virtual one. Defaults to the real clock.

    Examples
    --------
    >>> async with BatchClient() as client:          # doctest: +SKIP
    ...     batch = await client.get("6a1f0c2e9b3d4e5f60718293")
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        allow_insecure_http: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
        max_connections: int = 20,
        clock: Clock | None = None,
    ) -> None:
        key = api_key if api_key is not None else (os.environ.get(API_KEY_ENV) or colab_secret(API_KEY_ENV))
        if not key or not key.strip():
            where = (
                "No TwelveLabs API key: looked in the TWELVELABS_API_KEY environment variable and in "
                "Colab's Secrets panel (add TWELVELABS_API_KEY there and give this notebook access), "
                "or pass api_key=..."
                if in_colab()
                else "No TwelveLabs API key: set the TWELVELABS_API_KEY environment variable or pass api_key=..."
            )
            raise ConfigurationError(
                f"{where} (keys: https://playground.twelvelabs.io/dashboard/api-keys). "
                "To try batch_widget without an account, start the local simulator: "
                "`with batch_widget.simulator.Simulator() as sim: BatchClient(sim.api_key, base_url=sim.base_url)`."
            )
        url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        self.base_url = _check_base_url(url, allow_insecure_http)
        self.key_fingerprint = key_fingerprint(key.strip())
        """A short hash of the API key (never the key): who this client speaks as, for keying and records."""
        self._settings: dict[str, Any] = {
            "api_key": key, "base_url": self.base_url, "timeout": timeout, "retry": retry,
            "allow_insecure_http": allow_insecure_http, "max_connections": max_connections,
            "transport": transport, "clock": clock,
        }  # fmt: skip
        self.retry = retry or RetryPolicy()
        self.clock = clock or SYSTEM_CLOCK
        """Where this client, and the pollers and jobs that use it, read time and sleep."""
        self.server_clock_offset = 0.0
        """Seconds the server's clock (its ``Date`` header) is ahead of ours, from the last answer."""
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            auth=_ApiKeyAuth(key.strip()),
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"user-agent": f"batch-widget/{VERSION}", "accept": "application/json"},
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            event_hooks={"response": [self._note_server_time]},
        )

    async def _note_server_time(self, response: httpx.Response) -> None:
        server_now = parse_http_date(response.headers.get("date"))
        if server_now is not None:
            self.server_clock_offset = server_now - self.clock.now().timestamp()

    def server_now(self) -> datetime:
        """Now on the server's clock (from its last ``Date`` header), to compare with its timestamps."""
        return self.clock.now() + timedelta(seconds=self.server_clock_offset)

    @property
    def identity(self) -> tuple[str, str]:
        """``(base_url, key fingerprint)``: who may see what this client sees (the key for caches and registries)."""
        return (self.base_url, self.key_fingerprint)

    def __repr__(self) -> str:
        return f"BatchClient(base_url={self.base_url!r}, api_key=***)"

    def clone(self) -> BatchClient:
        """A new client with the same key and every setting it was built with, for another event loop.

        An ``httpx.AsyncClient`` belongs to the loop it first ran on; blocking helpers run
        their own loop in a worker thread and need their own client.
        """
        return BatchClient(**self._settings)

    __str__ = __repr__

    async def __aenter__(self) -> BatchClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections. The client cannot be used afterwards."""
        await self._http.aclose()

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    # -- the six endpoints -------------------------------------------------------------------

    async def create(
        self,
        *,
        analysis_mode: str,
        requests: Sequence[Mapping[str, Any] | str],
        model_name: str = "pegasus1.5",
        defaults: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
    ) -> CreatedBatch:
        """Create a batch of 1 to 1,000 analysis requests.

        Parameters
        ----------
        analysis_mode : {"general", "time_based_metadata"}
        requests : sequence of dict or str
            Each a ``BatchItemRequest`` dict (``{"video": {"type": "asset_id", "asset_id": ...},
            "custom_id": ...}``), or a bare asset id string as a shorthand.
        model_name : str
            ``"pegasus1.5"``, the only model batches accept today.
        defaults : dict, optional
            Settings applied to every request that does not set them itself.
        retry : RetryPolicy, optional
            Overrides the client's policy for this call (the job scheduler passes ``NO_RETRY``
            to see a 429 at the account's cap at once).

        Returns
        -------
        CreatedBatch
            With ``items`` (task_id, custom_id) in request order.

        Notes
        -----
        Retried only on 429 and 503 (the API made no batch) and on a refused connection; never
        after a timeout, where a retry could create a duplicate batch.
        """
        body = build_create_body(
            analysis_mode=analysis_mode, requests=requests, model_name=model_name, defaults=defaults
        )
        response = await self._request(
            "create batch", "POST", "analyze/batches", json=body, mode="create", retry=retry
        )
        return CreatedBatch.from_dict(response.json())

    async def list_page(
        self,
        page: int = 1,
        *,
        page_limit: int = 10,
        status: str | Iterable[str] | None = None,
        analysis_mode: str | Iterable[str] | None = None,
        retry: RetryPolicy | None = None,
    ) -> BatchPage:
        """Fetch one page of the account's batches, newest first.

        ``retry`` overrides the client's policy for this call (the account poller passes
        ``NO_RETRY`` and schedules its own retries, so that every watch can show them).
        """
        if not isinstance(page, int) or page < 1:
            raise InvalidInputError(f"page {page!r} must be an integer >= 1.")
        if not isinstance(page_limit, int) or not 1 <= page_limit <= 50:
            raise InvalidInputError(f"page_limit {page_limit!r} must be an integer from 1 to 50.")
        params: list[tuple[str, str | int]] = [("page", page), ("page_limit", page_limit)]
        params += [("status", s) for s in choices("status", status, BATCH_STATUSES)]
        params += [("analysis_mode", m) for m in choices("analysis_mode", analysis_mode, ANALYSIS_MODES)]
        response = await self._request("list batches", "GET", "analyze/batches", params=params, retry=retry)
        return BatchPage.from_dict(response.json(), page=page, limit=page_limit)

    async def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        analysis_mode: str | Iterable[str] | None = None,
        page_limit: int = 50,
    ) -> AsyncIterator[Batch]:
        """Iterate over every batch of the account, newest first, page by page.

        Stops at ``page_info.total_page`` (never asks for a page past the last one).
        """
        page = 1
        while True:
            result = await self.list_page(
                page, page_limit=page_limit, status=status, analysis_mode=analysis_mode
            )
            for batch in result.batches:
                yield batch
            if page >= result.total_page or not result.batches:
                return
            page += 1

    async def get(self, batch_id: str, *, retry: RetryPolicy | None = None) -> Batch:
        """Fetch the current status and counts of a batch.

        ``retry`` overrides the client's policy for this call (the poller passes ``NO_RETRY``
        and schedules its own retries, so that it can show them).
        """
        batch_id = validate_batch_id(batch_id)
        response = await self._request(
            "get batch status", "GET", f"analyze/batches/{batch_id}", batch_id=batch_id, retry=retry
        )
        return Batch.from_dict(response.json())

    async def cancel(self, batch_id: str) -> Batch:
        """Ask the API to cancel a pending or processing batch.

        Queued items are canceled; items already processing run to completion. The returned
        batch is as it was at request time: watch it to see ``canceling`` then ``canceled``.
        Raises ``ConflictError`` (code ``batch_completed``, ``batch_canceled`` or
        ``batch_expired``) when the batch has already ended.
        """
        batch_id = validate_batch_id(batch_id)
        response = await self._request(
            "cancel batch", "POST", f"analyze/batches/{batch_id}/cancel", batch_id=batch_id
        )
        return Batch.from_dict(response.json())

    async def delete(self, batch_id: str) -> None:
        """Delete an ended batch and all its results. Raises ``ConflictError`` while it runs."""
        batch_id = validate_batch_id(batch_id)
        await self._request("delete batch", "DELETE", f"analyze/batches/{batch_id}", batch_id=batch_id)

    async def results(
        self,
        batch_id: str,
        *,
        malformed: Literal["raise", "yield"] = "raise",
        resume: int = 2,
    ) -> AsyncGenerator[ResultLine | ResultLineError, None]:
        """Stream the per-item results as they arrive (JSON Lines), one ``ResultLine`` per item.

        Works mid-run (unfinished items come back as ``queued`` or ``processing``). The body is
        never buffered whole: lines are parsed as their bytes arrive.

        Parameters
        ----------
        malformed : {"raise", "yield"}
            A line that is not a JSON object raises ``ResultLineError`` (with its raw text and
            line number), or, with ``"yield"``, is yielded as that error object so the stream
            goes on and no line is lost.
        resume : int
            If the stream is cut mid-way, fetch it again up to this many times and yield only
            the lines not yet seen (or whose status changed), so the caller gets every item
            exactly once. After that, the cut surfaces as ``APIConnectionError``.
        """
        batch_id = validate_batch_id(batch_id)
        seen: dict[str, str] = {}
        cuts = 0
        while True:
            try:
                async for item in self._stream_results(batch_id, malformed):
                    if isinstance(item, ResultLine) and item.task_id is not None:
                        status = item.status.value
                        if seen.get(item.task_id) == status:
                            continue  # already yielded before a cut: no duplicates
                        seen[item.task_id] = status
                    yield item
                return
            except APIConnectionError:
                cuts += 1
                if cuts > resume:
                    raise
                log.info("results stream of batch %s was cut; fetching it again (%d/%d)", batch_id, cuts, resume)

    async def result_lines(self, batch_id: str) -> builtins.list[ResultLine | ResultLineError]:
        """Every results line of a batch, as a list (for building frames).

        A cut stream is resumed (see :meth:`results`). A line that does not parse is kept as a
        ``ResultLineError``; if there is one, the results are fetched once more (a corrupted
        transfer heals), and a line still unreadable then is returned as it is, never dropped.
        """
        lines = [line async for line in self.results(batch_id, malformed="yield")]
        if any(isinstance(line, ResultLineError) for line in lines):
            log.info("batch %s: unreadable results lines; fetching the results once more", batch_id)
            lines = [line async for line in self.results(batch_id, malformed="yield")]
        return lines

    async def _stream_results(
        self, batch_id: str, malformed: Literal["raise", "yield"]
    ) -> AsyncIterator[ResultLine | ResultLineError]:
        operation = "get results"
        line_no = 0

        def parsed(raws: builtins.list[bytes]) -> Iterator[ResultLine | ResultLineError]:
            nonlocal line_no
            for raw in raws:
                item = parse_result_line(raw, line_no + 1)
                if item is None:
                    continue  # blank line: not an item
                line_no += 1
                if isinstance(item, ResultLineError) and malformed == "raise":
                    raise item
                yield item

        async with self._streamed_get(operation, f"analyze/batches/{batch_id}/results", batch_id) as response:
            # Lines are split here at b"\n", not by httpx's aiter_lines: that one splits like
            # str.splitlines, also at U+2028, U+2029 and U+0085, which JSON strings may hold
            # unescaped, so it would cut such a line in two. It was slower too (it decodes to str
            # first): 35-38 against 32-34 ms to split and parse an 18 MB body in memory.
            pending: builtins.list[bytes] = []  # the start of a line whose end has not come yet
            try:
                async for chunk in response.aiter_bytes():
                    if b"\n" not in chunk:
                        pending.append(chunk)
                        continue
                    lines = chunk.split(b"\n")
                    if pending:
                        pending.append(lines[0])
                        lines[0] = b"".join(pending)
                    pending = [lines.pop()]
                    for item in parsed(lines):
                        yield item
            except httpx.TransportError as exc:
                raise _transport_error(exc, operation, batch_id) from exc
            for item in parsed([b"".join(pending)]):
                yield item

    # -- plumbing ----------------------------------------------------------------------------

    async def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        batch_id: str | None = None,
        json: Any = None,
        params: Any = None,
        mode: RetryMode = "idempotent",
        retry: RetryPolicy | None = None,
    ) -> httpx.Response:
        return await self._send(
            operation, method, path, batch_id=batch_id, mode=mode, retry=retry, json=json, params=params
        )

    async def _send(
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
        """One call with the retry policy and typed errors; ``kwargs`` go to ``httpx`` (``files``,
        ``content`` (a callable giving a fresh body per attempt), ``headers``...). ``with_key=False``
        sends no API key (presigned storage URLs belong to someone else)."""
        body = kwargs.pop("content", None)

        async def send() -> httpx.Response:
            extra = dict(kwargs)
            if body is not None:
                extra["content"] = body() if callable(body) else body
            if not with_key:
                extra["auth"] = None
            response = await self._http.request(method, url, **extra)
            if response.status_code >= 400:
                raise _error_from_response(response, response.content, operation=operation, batch_id=batch_id)
            return response

        return await self._with_retries(operation, send, batch_id=batch_id, mode=mode, policy=retry)

    @contextlib.asynccontextmanager
    async def _streamed_get(self, operation: str, path: str, batch_id: str) -> AsyncIterator[httpx.Response]:
        """A streamed GET whose opening is retried like any idempotent call; closed on exit."""

        async def send() -> httpx.Response:
            request = self._http.build_request("GET", path, headers={"accept": "application/jsonl"})
            response = await self._http.send(request, stream=True)
            if response.status_code >= 400:
                try:
                    body = await response.aread()
                finally:
                    await response.aclose()
                raise _error_from_response(response, body, operation=operation, batch_id=batch_id)
            return response

        response = await self._with_retries(operation, send, batch_id=batch_id, mode="idempotent")
        try:
            yield response
        finally:
            await response.aclose()

    async def _with_retries(
        self,
        operation: str,
        send: Callable[[], Awaitable[httpx.Response]],
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
                    return await send()
                except httpx.TransportError as exc:
                    raise _transport_error(exc, operation, batch_id) from exc
            except (APIError, TransportError) as error:
                if not _should_retry(error, mode) or attempt >= policy.max_attempts:
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


_default_client: BatchClient | None = None


def default_client(client: BatchClient | None = None) -> BatchClient:
    """``client`` if given, else the one client per process built from ``TWELVELABS_API_KEY``
    (what ``watch``, ``submit`` and ``list_batches`` use when no client is passed)."""
    global _default_client
    if client is not None:
        return client
    if _default_client is None or _default_client.is_closed:
        _default_client = BatchClient()
    return _default_client
