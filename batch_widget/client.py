"""Async client for the TwelveLabs batch analysis API (``/analyze/batches``, v1.3).

I/O only: it knows nothing of pollers, widgets or DataFrames. One ``httpx.AsyncClient`` per
``BatchClient``, so every call reuses the same pooled connections.
"""

from __future__ import annotations

import builtins  # the class's own `list` method shadows the builtin in its annotations
import hashlib
import ipaddress
import logging
import os
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from .asset_model import Asset
from .assets import DIRECT_LIMIT, Assets, MultipartState
from .clock import SYSTEM_CLOCK, Clock
from .errors import APIConnectionError, ConfigurationError, InvalidInputError, ResultLineError
from .frontends import colab_secret, in_colab
from .http_core import HttpCore, RetryMode, parse_http_date, parse_retry_after, transport_error
from .models import Batch, BatchPage, CreatedBatch, ResultLine, parse_result_line
from .retry import NO_RETRY, RetryPolicy, may_have_created  # may_have_created: exported for jobs/
from .validation import ANALYSIS_MODES, BATCH_STATUSES, build_create_body, choices, validate_batch_id

__all__ = [
    "DEFAULT_BASE_URL", "NO_RETRY", "BatchClient", "RetryPolicy", "default_client", "key_fingerprint",
    "may_have_created", "parse_http_date", "parse_retry_after", "validate_batch_id",
]  # fmt: skip

DEFAULT_BASE_URL = "https://api.twelvelabs.io/v1.3"
API_KEY_ENV = "TWELVELABS_API_KEY"
BASE_URL_ENV = "TWELVELABS_BASE_URL"

log = logging.getLogger("batch_widget.client")


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


class BatchClient:
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
    direct_upload_limit : int
        Bytes: files above go through a multipart upload (``client.assets``; the API's limit is 200 MB).

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
        direct_upload_limit: int = DIRECT_LIMIT,
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
            "transport": transport, "clock": clock, "direct_upload_limit": direct_upload_limit,
        }  # fmt: skip
        self.http = HttpCore(
            api_key=key.strip(), base_url=self.base_url, timeout=timeout, retry=retry or RetryPolicy(),
            clock=clock or SYSTEM_CLOCK, transport=transport, max_connections=max_connections,
        )  # fmt: skip
        """The HTTP core every endpoint of this client sends through (pool, key, retries, typed errors)."""
        self.assets = Assets(self.http, direct_upload_limit=direct_upload_limit)
        """The assets endpoints (upload, find, list, delete, wait until ready), on the same core."""

    @property
    def clock(self) -> Clock:
        """Where this client, and the pollers and jobs that use it, read time and sleep."""
        return self.http.clock

    @property
    def retry(self) -> RetryPolicy:
        """How transient failures are retried by default."""
        return self.http.retry

    @property
    def server_clock_offset(self) -> float:
        """Seconds the server's clock (its ``Date`` header) is ahead of ours, from the last answer."""
        return self.http.server_clock_offset

    def server_now(self) -> datetime:
        """Now on the server's clock (from its last ``Date`` header), to compare with its timestamps."""
        return self.http.server_now()

    @property
    def direct_upload_limit(self) -> int:
        """Bytes: files above go through a multipart upload (settable; it is the assets' setting)."""
        return self.assets.direct_upload_limit

    @direct_upload_limit.setter
    def direct_upload_limit(self, value: int) -> None:
        self.assets.direct_upload_limit = value

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
        return BatchClient(**{**self._settings, "direct_upload_limit": self.direct_upload_limit})

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
        await self.http.aclose()

    @property
    def is_closed(self) -> bool:
        return self.http.is_closed

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

    async def result_body(self, batch_id: str, *, resume: int = 2) -> bytes:
        """The whole results body of a batch as the API sent it (JSON Lines), e.g. to keep on disk.

        A body cut mid-way is fetched again, up to ``resume`` times; after that the cut surfaces as
        ``APIConnectionError``.
        """
        validate_batch_id(batch_id)
        operation = "get results"
        cuts = 0
        while True:
            try:
                path = f"analyze/batches/{batch_id}/results"
                async with self.http.streamed_get(operation, path, batch_id) as response:
                    return b"".join([piece async for piece in response.aiter_bytes()])
            except httpx.TransportError as exc:
                cuts += 1
                if cuts > resume:
                    raise transport_error(exc, operation, batch_id) from exc
                log.info("results body of batch %s was cut; fetching it again (%d/%d)", batch_id, cuts, resume)

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

        async with self.http.streamed_get(operation, f"analyze/batches/{batch_id}/results", batch_id) as response:
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
                raise transport_error(exc, operation, batch_id) from exc
            for item in parsed([b"".join(pending)]):
                yield item

    # -- the assets endpoints (thin delegates to ``self.assets``) ----------------------------

    async def create_asset(
        self, *, url: str | None = None, file: str | os.PathLike[str] | None = None, filename: str | None = None,
        user_metadata: Mapping[str, str | int | float | bool] | None = None, tag: str | None = None,
        on_bytes: Callable[[int], None] | None = None, multipart_state: MultipartState | None = None,
        on_state: Callable[[MultipartState], None] | None = None,
    ) -> Asset:  # fmt: skip
        """Upload a local ``file`` or register a public ``url`` as an asset: see :meth:`Assets.create_asset`."""
        return await self.assets.create_asset(
            url=url, file=file, filename=filename, user_metadata=user_metadata, tag=tag, on_bytes=on_bytes,
            multipart_state=multipart_state, on_state=on_state,
        )  # fmt: skip

    async def get_asset(self, asset_id: str) -> Asset:
        """``GET /assets/{id}``: see :meth:`Assets.get_asset`."""
        return await self.assets.get_asset(asset_id)

    async def list_assets(
        self, *, asset_ids: Iterable[str] | None = None, asset_types: Iterable[str] | None = None,
        filename: str | None = None,
    ) -> builtins.list[Asset]:  # fmt: skip
        """Every asset matching the filters: see :meth:`Assets.list_assets`."""
        return await self.assets.list_assets(asset_ids=asset_ids, asset_types=asset_types, filename=filename)

    async def delete_asset(self, asset_id: str, *, force: bool = False) -> None:
        """``DELETE /assets/{id}``: see :meth:`Assets.delete_asset`."""
        await self.assets.delete_asset(asset_id, force=force)

    async def find_upload(self, filename: str, tag: str) -> Asset | None:
        """The asset created with this filename and upload tag: see :meth:`Assets.find_upload`."""
        return await self.assets.find_upload(filename, tag)

    async def wait_ready(
        self, asset_ids: Iterable[str], *, poll_interval: float = 5.0, timeout: float | None = 1800.0,
        on_update: Callable[[Asset], None] | None = None,
    ) -> dict[str, Asset]:  # fmt: skip
        """Poll until every asset is ready or failed: see :meth:`Assets.wait_ready`."""
        return await self.assets.wait_ready(
            asset_ids, poll_interval=poll_interval, timeout=timeout, on_update=on_update
        )

    async def upload_status(self, upload_id: str) -> dict[str, Any]:
        """A multipart upload's state: see :meth:`Assets.upload_status`."""
        return await self.assets.upload_status(upload_id)

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
        return await self.http.send(
            operation, method, path, batch_id=batch_id, mode=mode, retry=retry, json=json, params=params
        )


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
