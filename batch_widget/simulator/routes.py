"""What each request means: the route table, authentication, the API and ``/_sim/`` handlers.

Routes (base path ``/v1.3``; every request needs ``x-api-key``)::

    POST   /v1.3/analyze/batches                 create   → 201
    GET    /v1.3/analyze/batches                 list     → 200
    GET    /v1.3/analyze/batches/{id}            get      → 200
    GET    /v1.3/analyze/batches/{id}/results    results  → 200 application/jsonl, chunked
    POST   /v1.3/analyze/batches/{id}/cancel     cancel   → 202
    DELETE /v1.3/analyze/batches/{id}            delete   → 204

    ... and the assets endpoints (flat error bodies): see ``asset_routes``.

    POST   /_sim/faults   add a rule (JSON object, or a list of them, or {"spec": "<text>"})
    GET    /_sim/faults   the current rules;   DELETE /_sim/faults   clear them
    POST   /_sim/clock    {"advance": s} | {"set": t} (manual clock) | {"speed": f} (speed clock)
    GET    /_sim/clock    {"now", "now_iso", "speed"}
    GET    /_sim/stats    requests per endpoint, connections accepted, active batches, ...

Unknown paths answer 404 ``resource_not_exist``; a known path with the wrong method answers
405 ``method_not_allowed`` with an ``Allow`` header (that code is ours: none is documented).
A handler returns a :class:`Response`; ``server`` writes it (and plays the faults around it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import parse_qs, urlsplit

from .asset_routes import ASSET_ENDPOINTS, asset_route, handle_asset, handle_chunk
from .clock import Clock, iso
from .errors import ApiError, int_param, json_body
from .faults import Fault, FaultPlan, FaultSpec

if TYPE_CHECKING:
    from .assets import AssetStore
    from .engine import Engine


class Served(Protocol):
    """What the routes need of the simulator that serves them (``app.Simulator``)."""

    api_keys: frozenset[str]
    engine: Engine
    assets: AssetStore
    clock: Clock
    faults: FaultPlan

    @property
    def stats(self) -> dict[str, Any]: ...

    def add_fault(self, spec: FaultSpec | None = None, **options: Any) -> Fault: ...

    def clear_faults(self) -> None: ...

__all__ = ["API_VERSION", "BASE_PATH", "Response", "Route", "dumps", "handle", "route"]

API_VERSION = "1.3"
BASE_PATH = "/v1.3"
_BATCH_PATH = re.compile(r"^/v1\.3/analyze/batches/([^/]+)(/results|/cancel)?/?$")


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, as every body and results line is sent."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class Response:
    """A response to send: a JSON body, raw bytes, or a stream of JSONL ``lines``."""

    status: int
    json: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    lines: Iterator[dict[str, Any]] | None = None
    api: bool = True  # carries X-Api-Version

    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.lines is not None:
            return b"".join(dumps(line) + b"\n" for line in self.lines)
        if self.json is None:
            return b""
        return dumps(self.json)

    @classmethod
    def error(cls, err: ApiError) -> Response:
        return cls(err.status, json=err.body(), headers=dict(err.headers))


class Route(NamedTuple):
    """Where a request goes: ``endpoint`` (``create`` ... ``delete``, ``control`` or ``other``),
    the batch id in the path, and the allowed methods when the request's method is wrong."""

    endpoint: str
    batch_id: str | None
    allowed: str | None


def route(method: str, path: str) -> Route:
    """Look up a request's endpoint from its method and path (without the query)."""
    if path.rstrip("/") == "/v1.3/analyze/batches":
        return _pick(method, {"POST": "create", "GET": "list"}, None)
    m = _BATCH_PATH.match(path)
    if m:
        bid, sub = m.group(1), m.group(2)
        if sub == "/results":
            return _pick(method, {"GET": "results"}, bid)
        if sub == "/cancel":
            return _pick(method, {"POST": "cancel"}, bid)
        return _pick(method, {"GET": "get", "DELETE": "delete"}, bid)
    if path.rstrip("/") in ("/_sim/faults", "/_sim/clock", "/_sim/stats"):
        return Route("control", None, None)
    found = asset_route(method, path)
    if found is not None:
        _, rid, table = found
        return _pick(method, table, rid)
    return Route("other", None, None)


def _pick(method: str, table: Mapping[str, str], bid: str | None) -> Route:
    if method in table:
        return Route(table[method], bid, None)
    return Route(next(iter(table.values())), bid, ", ".join(table))


# --------------------------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------------------------


def handle(
    sim: Served, where: Route, method: str, target: str, api_key: str | None, raw: bytes, content_type: str = ""
) -> Response:
    """Answer one request (``target``: the request line's path and query) as the API would."""
    endpoint, batch_id, allowed = where
    if endpoint in ASSET_ENDPOINTS:
        return _handle_asset(sim, where, method, target, api_key, raw, content_type)
    try:
        if api_key is None or api_key == "":
            raise ApiError(401, "unauthorized", "Missing the x-api-key header.")
        if api_key not in sim.api_keys:
            raise ApiError(401, "api_key_invalid", "The API key in x-api-key is not valid.")
        if endpoint == "other":
            raise ApiError(404, "resource_not_exist", f"No such route: {target}")
        if allowed is not None:
            raise ApiError(
                405,
                "method_not_allowed",
                f"{method} is not allowed on this path; use {allowed}.",
                headers={"Allow": allowed},
            )
        eng = sim.engine
        if endpoint == "create":
            return Response(201, json=eng.create(api_key, json_body(raw)))
        if endpoint == "list":
            query = parse_qs(urlsplit(target).query, keep_blank_values=True)
            return Response(200, json=_list(eng, api_key, query))
        if endpoint == "control":
            return _control(sim, method, target, raw)
        assert batch_id is not None
        if endpoint == "get":
            return Response(200, json=eng.get(api_key, batch_id))
        if endpoint == "results":
            return Response(200, lines=eng.results(api_key, batch_id), content_type="application/jsonl")
        if endpoint == "cancel":
            return Response(202, json=eng.cancel(api_key, batch_id))
        eng.delete(api_key, batch_id)  # the one endpoint left: delete
        return Response(204)
    except ApiError as e:
        return Response.error(e)


def _handle_asset(
    sim: Served, where: Route, method: str, target: str, api_key: str | None, raw: bytes, content_type: str
) -> Response:
    endpoint, rid, allowed = where
    try:
        if allowed is not None:
            raise ApiError(405, "method_not_allowed", f"{method} is not allowed on this path; use {allowed}.",
                           headers={"Allow": allowed})
        if endpoint == "chunk":
            assert rid is not None
            etag = handle_chunk(sim.assets, rid, target, raw)
            return Response(200, raw=b"", headers={"ETag": etag}, api=False, content_type="text/plain")
        if not api_key:
            raise ApiError(401, "unauthorized", "Missing the x-api-key header.")
        if api_key not in sim.api_keys:
            raise ApiError(401, "api_key_invalid", "The API key in x-api-key is not valid.")
        status, body = handle_asset(sim.assets, endpoint, rid, target, api_key, raw, content_type)
        return Response(status, json=body)
    except ApiError as e:
        # the assets endpoints answer a flat {code, message} body (spec §1)
        return Response(e.status, json={"code": e.code, "message": e.message}, headers=dict(e.headers),
                        api=endpoint != "chunk")


def _list(eng: Engine, key: str, query: Mapping[str, list[str]]) -> dict[str, Any]:
    def multi(name: str) -> list[str]:
        # repeated keys are OR-ed; a comma-separated value is accepted too
        return [v for raw in query.get(name, []) for v in raw.split(",") if v]

    return eng.list(
        key,
        page=int_param(query, "page", 1),
        page_limit=int_param(query, "page_limit", 10),
        statuses=multi("status"),
        modes=multi("analysis_mode"),
    )


# --------------------------------------------------------------------------------------------
# The simulator's own control endpoints (/_sim/...)
# --------------------------------------------------------------------------------------------


def _control(sim: Served, method: str, path: str, raw: bytes) -> Response:
    name = urlsplit(path).path.rstrip("/")
    try:
        if name == "/_sim/stats":
            if method != "GET":
                raise ApiError(405, "method_not_allowed", "use GET", headers={"Allow": "GET"})
            return Response(200, json=sim.stats)
        if name == "/_sim/faults":
            if method == "GET":
                return Response(200, json={"faults": [f.to_dict() for f in sim.faults.rules]})
            if method == "DELETE":
                n = len(sim.faults)
                sim.clear_faults()
                return Response(200, json={"cleared": n})
            if method == "POST":
                body = json_body(raw)
                specs: list[FaultSpec]
                if isinstance(body, list):
                    specs = body
                elif isinstance(body, dict) and set(body) == {"spec"}:
                    specs = [str(body["spec"])]
                elif isinstance(body, dict):
                    specs = [body]
                else:
                    raise ValueError("send a fault rule object, a list of them or {'spec': text}")
                added = [sim.add_fault(s).to_dict() for s in specs]
                return Response(201, json={"faults": added})
            raise ApiError(405, "method_not_allowed", "use GET, POST or DELETE",
                           headers={"Allow": "GET, POST, DELETE"})
        # /_sim/clock
        if method == "POST":
            body = json_body(raw)
            if not isinstance(body, dict):
                raise ValueError("send {'advance': s}, {'set': t} or {'speed': f}")
            clock: Any = sim.clock
            if "speed" in body:
                if not hasattr(clock, "set_speed"):
                    raise ValueError("this clock has no speed (it is a manual clock)")
                clock.set_speed(float(body["speed"]))
            if "set" in body:
                if not hasattr(clock, "set"):
                    raise ValueError("only a manual clock can be set")
                clock.set(float(body["set"]))
            if "advance" in body:
                if not hasattr(clock, "advance"):
                    raise ValueError("this clock cannot be advanced")
                clock.advance(float(body["advance"]))
        elif method != "GET":
            raise ApiError(405, "method_not_allowed", "use GET or POST",
                           headers={"Allow": "GET, POST"})
        now = sim.clock.now()
        return Response(
            200, json={"now": now, "now_iso": iso(now), "speed": getattr(sim.clock, "speed", None)}
        )
    except (ValueError, TypeError) as e:
        raise ApiError(400, "parameter_invalid", str(e)) from None
