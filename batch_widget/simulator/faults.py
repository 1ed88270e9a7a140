"""Injected failures: an ordered, thread-safe plan of rules matched against each API request.

A rule (:class:`Fault`) names an ``endpoint`` (``create``, ``list``, ``get``, ``results``,
``cancel``, ``delete``, an assets endpoint of ``asset_routes`` such as ``chunk``, or
``any``), optionally a ``batch_id``, a ``kind`` and how many times it
fires (``times``; ``None`` = forever, until cleared). ``after=N`` lets the first N matching
requests through untouched before the rule starts firing.

Kinds that *replace* the response (the first matching one wins, and ends the matching):

===================  ===========================================================================
``status``           JSON error with HTTP ``status`` (default 503), nested body, optional ``code``
``flat_error``       JSON error with a *flat* body ``{"code", "message"}`` (default status 503)
``proxy_502``        an nginx-style HTML 502 page (``Content-Type: text/html``)
``rate_limit``       429 ``too_many_requests`` with ``Retry-After: <retry_after>`` seconds, or an
                     HTTP date when ``http_date`` is true
``empty_body_429``   429 with an empty body (and ``Retry-After`` unless ``retry_after`` < 0)
``drop``             close the connection without sending anything
``drop_mid_response``  send the real status line, headers (with the full ``Content-Length``,
                     also for results) and ``bytes`` bytes of the body (default: half), then close
===================  ===========================================================================

Kinds that *modify* the real response (every matching one applies; matching goes on):

===================  ===========================================================================
``slow``             sleep ``seconds`` real seconds before answering
``patch_batch``      merge ``patch`` (a dict) into every batch object in the response (get,
                     cancel, list elements, create)
``cut_stream``       the results stream stops after ``lines`` lines, without the final chunk
``malformed_line``   the results stream gets the garbage ``line`` at 0-based position ``lines``
                     (inserted, or replacing the real line when ``replace`` is true)
===================  ===========================================================================

The same rule has three spellings, all accepted by :meth:`Fault.coerce`:

* Python: ``Fault(kind="status", endpoint="get", status=503, times=5)``
* JSON (control endpoint ``POST /_sim/faults``, or CLI ``--fault '{...}'``): the same field
  names, e.g. ``{"endpoint": "get", "kind": "status", "status": 503, "times": 5}``;
  ``"times": "forever"`` or ``null`` for forever.
* Compact text (CLI ``--fault``): colon-separated tokens, the endpoint first, then the kind
  with its main value, then ``key=value`` options::

      get:status=503:times=5          results:cut_stream=10        any:slow=2.5:times=forever
      create:rate_limit=7:http_date   results:malformed_line=3:line=not json
      get:drop                        get:patch_batch:set.status=paused:set.ready_items=999
      list:flat_error=500:code=oops   cancel:proxy_502:batch=6a1f0c2e9b3d4e5f60718293:after=2

  The main value of a kind: ``status``/``flat_error``/``proxy_502`` → HTTP status,
  ``rate_limit``/``empty_body_429`` → ``retry_after``, ``slow`` → ``seconds``,
  ``cut_stream``/``malformed_line`` → ``lines``, ``drop_mid_response`` → ``bytes``.
  ``set.<field>=<value>`` adds to ``patch`` (the value is parsed as JSON when it parses,
  else kept as a string). ``line=`` must come last when the garbage text contains colons.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "ENDPOINTS",
    "FAULT_KINDS",
    "Fault",
    "FaultPlan",
    "FaultSpec",
    "drop",
    "patch_batch",
    "rate_limit",
    "slow",
    "status_burst",
]

ENDPOINTS = (
    "create", "list", "get", "results", "cancel", "delete",
    # the assets endpoints (see asset_routes); "chunk" is the storage PUT of a multipart upload
    "asset_create", "asset_list", "asset_get", "asset_delete", "upload_create", "upload_list",
    "upload_status", "upload_report", "upload_urls", "chunk",
    "any",
)  # fmt: skip
REPLACING_KINDS = (
    "status",
    "flat_error",
    "proxy_502",
    "rate_limit",
    "empty_body_429",
    "drop",
    "drop_mid_response",
)
MODIFYING_KINDS = ("slow", "patch_batch", "cut_stream", "malformed_line")
FAULT_KINDS = REPLACING_KINDS + MODIFYING_KINDS

_MAIN_VALUE = {
    "status": "status",
    "flat_error": "status",
    "proxy_502": "status",
    "rate_limit": "retry_after",
    "empty_body_429": "retry_after",
    "slow": "seconds",
    "cut_stream": "lines",
    "malformed_line": "lines",
    "drop_mid_response": "bytes",
}


@dataclass
class Fault:
    """One rule of a fault plan (see the module docstring for the kinds)."""

    kind: str
    endpoint: str = "any"
    batch_id: str | None = None
    times: int | None = 1
    after: int = 0
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after: float = 1
    http_date: bool = False
    seconds: float = 1.0
    lines: int = 0
    line: str = '{"task_id": "abc", "status": '
    replace: bool = False
    bytes: int | None = None
    patch: dict[str, Any] = field(default_factory=dict)
    #: how often the rule fired / how many matching requests it let through (``after``)
    fired: int = 0
    skipped: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if self.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {self.endpoint!r}; one of {', '.join(ENDPOINTS)}")
        if self.times is not None and self.times < 0:
            raise ValueError("times must be >= 0 (or None for forever)")
        if self.batch_id is not None:
            self.batch_id = self.batch_id.lower()
        if self.status is None:
            self.status = {"proxy_502": 502, "rate_limit": 429, "empty_body_429": 429}.get(
                self.kind, 503
            )

    @property
    def replacing(self) -> bool:
        return self.kind in REPLACING_KINDS

    @property
    def remaining(self) -> int | None:
        return None if self.times is None else max(0, self.times - self.fired)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # ---- parsing ------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Fault:
        names = {f.name for f in fields(cls)} - {"fired", "skipped"}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown fault option(s): {', '.join(sorted(unknown))}")
        kw = dict(d)
        if kw.get("times") == "forever":
            kw["times"] = None
        if "kind" not in kw:
            raise ValueError("a fault needs a 'kind'")
        return cls(**kw)

    @classmethod
    def parse(cls, text: str) -> Fault:
        """Parse the compact text form (or JSON when it starts with ``{``)."""
        text = text.strip()
        if text.startswith("{"):
            return cls.from_dict(json.loads(text))
        tokens = text.split(":")
        endpoint = tokens[0] if tokens[0] in ENDPOINTS else "any"
        rest = tokens[1:] if tokens[0] in ENDPOINTS else tokens
        kw: dict[str, Any] = {"endpoint": endpoint}
        patch: dict[str, Any] = {}
        i = 0
        while i < len(rest):
            tok = rest[i]
            key, eq, value = tok.partition("=")
            if key == "line":
                kw["line"] = ":".join([value, *rest[i + 1 :]])
                break
            i += 1
            if key in FAULT_KINDS and "kind" not in kw:
                kw["kind"] = key
                if eq:
                    main = _MAIN_VALUE.get(key)
                    if main is None:
                        raise ValueError(f"fault kind {key!r} takes no value")
                    kw[main] = _number(value)
                continue
            if key.startswith("set."):
                patch[key[4:]] = _json_or_str(value)
            elif key in ("times",):
                kw["times"] = None if value in ("forever", "inf", "") else int(value)
            elif key in ("batch", "batch_id"):
                kw["batch_id"] = value
            elif key in ("http_date", "replace"):
                kw[key] = value.lower() not in ("0", "false", "no") if eq else True
            elif key in ("code", "message"):
                kw[key] = value
            elif key in ("after", "status", "lines", "bytes"):
                kw[key] = int(value)
            elif key in ("retry_after", "seconds"):
                kw[key] = float(value)
            elif key == "patch":
                patch.update(json.loads(value))
            else:
                raise ValueError(f"unknown fault option {key!r} in {text!r}")
        if patch:
            kw["patch"] = patch
        if "kind" not in kw:
            raise ValueError(f"no fault kind in {text!r}; one of {', '.join(FAULT_KINDS)}")
        return cls(**kw)

    @classmethod
    def coerce(cls, spec: FaultSpec) -> Fault:
        if isinstance(spec, Fault):
            return spec
        if isinstance(spec, str):
            return cls.parse(spec)
        return cls.from_dict(spec)


FaultSpec = Fault | str | Mapping[str, Any]


def _number(s: str) -> int | float:
    try:
        return int(s)
    except ValueError:
        return float(s)


def _json_or_str(s: str) -> Any:
    try:
        return json.loads(s)
    except ValueError:
        return s


class FaultPlan:
    """An ordered list of :class:`Fault` rules; thread-safe."""

    def __init__(self, faults: Iterable[FaultSpec] = ()) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = [Fault.coerce(f) for f in faults]

    def add(self, spec: FaultSpec) -> Fault:
        fault = Fault.coerce(spec)
        with self._lock:
            self._rules.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[Fault]:
        with self._lock:
            return list(self._rules)

    def __len__(self) -> int:
        with self._lock:
            return len(self._rules)

    def match(self, endpoint: str, batch_id: str | None) -> list[Fault]:
        """Consume and return the rules that fire for this request.

        Every matching modifying rule, then at most one replacing rule (the first one).
        """
        fired: list[Fault] = []
        bid = batch_id.lower() if batch_id else None
        with self._lock:
            for f in self._rules:
                if f.endpoint not in ("any", endpoint):
                    continue
                if f.batch_id is not None and f.batch_id != bid:
                    continue
                if f.times is not None and f.fired >= f.times:
                    continue
                if f.skipped < f.after:
                    f.skipped += 1
                    continue
                f.fired += 1
                fired.append(f)
                if f.replacing:
                    break
        return fired


# ---- helpers ----------------------------------------------------------------------------------


def status_burst(status: int = 503, times: int | None = 1, endpoint: str = "any") -> Fault:
    """``times`` JSON 5xx answers in a row on ``endpoint``."""
    return Fault(kind="status", endpoint=endpoint, status=status, times=times)


def rate_limit(
    retry_after: float = 1, times: int | None = 1, endpoint: str = "any", http_date: bool = False
) -> Fault:
    return Fault(
        kind="rate_limit",
        endpoint=endpoint,
        retry_after=retry_after,
        times=times,
        http_date=http_date,
    )


def slow(seconds: float, times: int | None = 1, endpoint: str = "any") -> Fault:
    return Fault(kind="slow", endpoint=endpoint, seconds=seconds, times=times)


def drop(times: int | None = 1, endpoint: str = "any", mid_response: bool = False) -> Fault:
    return Fault(
        kind="drop_mid_response" if mid_response else "drop", endpoint=endpoint, times=times
    )


def patch_batch(
    patch: Mapping[str, Any], times: int | None = None, endpoint: str = "any"
) -> Fault:
    return Fault(kind="patch_batch", endpoint=endpoint, patch=dict(patch), times=times)
