"""HTTP routes, the threaded server and the :class:`Simulator` context manager.

Routes (base path ``/v1.3``; every request needs ``x-api-key``)::

    POST   /v1.3/analyze/batches                 create   → 201
    GET    /v1.3/analyze/batches                 list     → 200
    GET    /v1.3/analyze/batches/{id}            get      → 200
    GET    /v1.3/analyze/batches/{id}/results    results  → 200 application/jsonl, chunked
    POST   /v1.3/analyze/batches/{id}/cancel     cancel   → 202
    DELETE /v1.3/analyze/batches/{id}            delete   → 204

    POST   /_sim/faults   add a rule (JSON object, or a list of them, or {"spec": "<text>"})
    GET    /_sim/faults   the current rules;   DELETE /_sim/faults   clear them
    POST   /_sim/clock    {"advance": s} | {"set": t} (manual clock) | {"speed": f} (speed clock)
    GET    /_sim/clock    {"now", "now_iso", "speed"}
    GET    /_sim/stats    requests per endpoint, connections accepted, active batches, ...

Unknown paths answer 404 ``resource_not_exist``; a known path with the wrong method answers
405 ``method_not_allowed`` with an ``Allow`` header (that code is ours: none is documented).
Faults are matched before authentication (they play the network / proxy / overloaded
backend); ``/_sim/`` requests are never faulted. Every response carries ``X-Api-Version: 1.3``
and a ``Content-Type``, except the ``proxy_502`` fault's page, which plays a proxy that knows
nothing of the API.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import re
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from .clock import Clock, SpeedClock, iso
from .engine import Engine, EngineConfig, Outcomes
from .errors import ApiError
from .faults import Fault, FaultPlan, FaultSpec

__all__ = ["API_VERSION", "DEFAULT_API_KEY", "Simulator"]

API_VERSION = "1.3"
BASE_PATH = "/v1.3"
DEFAULT_API_KEY = "sim-key"
_BATCH_PATH = re.compile(r"^/v1\.3/analyze/batches/([^/]+)(/results|/cancel)?/?$")
_LINES_PER_CHUNK = 32
_PROXY_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
_5XX_CODES = {
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "request_canceled_or_timed_out",
}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class _Response:
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
            return b"".join(_dumps(line) + b"\n" for line in self.lines)
        if self.json is None:
            return b""
        return _dumps(self.json)


def _error(err: ApiError) -> _Response:
    return _Response(err.status, json=err.body(), headers=dict(err.headers))


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        self.sim = sim
        self.stopping = threading.Event()
        self._conn_lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        sock = cast(socket.socket, request)
        t = threading.Thread(
            target=self._serve_connection,
            args=(sock, client_address),
            daemon=True,
            name="batch-sim-conn",
        )
        with self._conn_lock:
            self._conns[sock] = t
        self.sim._count_connection()
        t.start()

    def _serve_connection(self, sock: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(sock, client_address)
        except Exception:
            self.handle_error(sock, client_address)
        finally:
            self.shutdown_request(sock)
            with self._conn_lock:
                self._conns.pop(sock, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)) or self.stopping.is_set():
            return
        if self.sim.verbose:
            super().handle_error(request, client_address)

    def open_connections(self) -> int:
        with self._conn_lock:
            return len(self._conns)

    def close_all(self, timeout: float = 5.0) -> None:
        """Stop serving, close the listening socket and every open connection, join threads."""
        self.stopping.set()
        self.shutdown()
        self.server_close()
        with self._conn_lock:
            conns = list(self._conns.items())
        for sock, _ in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, t in conns:
            t.join(max(0.0, deadline - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TwelveLabsBatchSimulator/1.3"
    sys_version = ""
    timeout = 300  # idle keep-alive connections are closed after 5 minutes
    disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms delayed-ACK stall)

    # BaseHTTPRequestHandler finds do_<METHOD> by name
    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        if cast(_Server, self.server).sim.verbose:
            super().log_message(format, *args)

    # ---- plumbing -----------------------------------------------------------------------------

    @property
    def srv(self) -> _Server:
        return cast(_Server, self.server)

    def _read_body(self) -> bytes:
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            parts = []
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        return self.rfile.read(length) if length else b""

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The Date header tells simulated time, so a client can follow a sped-up clock.
        return super().date_time_string(self.srv.sim.clock.now() if timestamp is None else timestamp)

    def _start(self, status: int, content_type: str | None, headers: Mapping[str, str],
               api: bool = True) -> None:
        self.send_response(status)
        if api:
            self.send_header("X-Api-Version", API_VERSION)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for k, v in headers.items():
            self.send_header(k, v)

    def _send(self, resp: _Response) -> None:
        if resp.lines is not None:
            self._send_stream(resp, [])
            return
        body = resp.body()
        self._start(resp.status, resp.content_type, resp.headers, resp.api)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
        self.srv.sim._count_response(resp.status)

    def _send_stream(self, resp: _Response, mods: Sequence[Fault]) -> None:
        """Chunked JSONL, written in small groups of lines (never one giant string)."""
        assert resp.lines is not None
        cut = next((f for f in mods if f.kind == "cut_stream"), None)
        bad = [f for f in mods if f.kind == "malformed_line"]
        self._start(resp.status, resp.content_type, resp.headers, resp.api)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.srv.sim._count_response(resp.status)
        buf: list[bytes] = []
        emitted = 0

        def flush() -> None:
            if buf:
                data = b"".join(buf)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                buf.clear()

        def emit(data: bytes) -> bool:
            nonlocal emitted
            if cut is not None and emitted >= cut.lines:
                return False
            buf.append(data)
            emitted += 1
            if len(buf) >= _LINES_PER_CHUNK:
                flush()
            return True

        def garbage(f: Fault) -> bytes:
            return f.line.encode() + b"\n"

        index = -1
        for index, line in enumerate(resp.lines):
            replaced = False
            for f in bad:
                if f.lines == index:
                    if not emit(garbage(f)):
                        break
                    replaced = replaced or f.replace
            if cut is not None and emitted >= cut.lines:
                break
            if not replaced and not emit(_dumps(line) + b"\n"):
                break
        else:
            for f in bad:  # a position past the end: append
                if f.lines > index:
                    emit(garbage(f))
        flush()
        if cut is not None and emitted >= cut.lines:
            # no terminating chunk: the client sees a truncated chunked body
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"0\r\n\r\n")

    # ---- dispatch -----------------------------------------------------------------------------

    def _dispatch(self) -> None:
        sim = self.srv.sim
        try:
            raw = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send(_error(ApiError(400, "parameter_invalid", "body: unreadable request body")))
            return
        url = urlsplit(self.path)
        path = url.path
        query = parse_qs(url.query, keep_blank_values=True)
        endpoint, batch_id, allowed = _route(self.command, path)
        sim._count_request(endpoint)

        mods: list[Fault] = []
        if endpoint in ("create", "list", "get", "results", "cancel", "delete"):
            fired = sim.faults.match(endpoint, batch_id)
            for f in fired:
                if f.kind == "slow":
                    self.srv.stopping.wait(f.seconds)
            mods = [f for f in fired if not f.replacing]
            replacing = next((f for f in fired if f.replacing), None)
            if replacing is not None:
                if replacing.kind == "drop":
                    self.close_connection = True
                    return
                if replacing.kind != "drop_mid_response":
                    self._send(_fault_response(replacing, self.srv.sim.clock.now()))
                    return
                mods.append(replacing)

        resp = self._handle(endpoint, batch_id, allowed, query, raw)
        if any(f.kind == "patch_batch" for f in mods):
            _apply_patches(resp, endpoint, [f.patch for f in mods if f.kind == "patch_batch"])
        drop_mid = next((f for f in mods if f.kind == "drop_mid_response"), None)
        if drop_mid is not None:
            body = resp.body()
            self._start(resp.status, resp.content_type, resp.headers, resp.api)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            n = drop_mid.bytes if drop_mid.bytes is not None else len(body) // 2
            self.wfile.write(body[: max(0, min(n, len(body) - 1))])
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            sim._count_response(resp.status)
            return
        if resp.lines is not None:
            self._send_stream(resp, mods)
        else:
            self._send(resp)

    def _handle(
        self,
        endpoint: str,
        batch_id: str | None,
        allowed: str | None,
        query: Mapping[str, list[str]],
        raw: bytes,
    ) -> _Response:
        sim = self.srv.sim
        key = self.headers.get("x-api-key")
        try:
            if key is None or key == "":
                raise ApiError(401, "unauthorized", "Missing the x-api-key header.")
            if key not in sim.api_keys:
                raise ApiError(401, "api_key_invalid", "The API key in x-api-key is not valid.")
            if endpoint == "other":
                raise ApiError(404, "resource_not_exist", f"No such route: {self.path}")
            if allowed is not None:
                raise ApiError(
                    405,
                    "method_not_allowed",
                    f"{self.command} is not allowed on this path; use {allowed}.",
                    headers={"Allow": allowed},
                )
            eng = sim.engine
            if endpoint == "create":
                return _Response(201, json=eng.create(key, _parse_json(raw)))
            if endpoint == "list":
                return _Response(200, json=_list(eng, key, query))
            assert batch_id is not None or endpoint == "control"
            if endpoint == "get":
                return _Response(200, json=eng.get(key, cast(str, batch_id)))
            if endpoint == "results":
                lines = eng.results(key, cast(str, batch_id))
                return _Response(200, lines=lines, content_type="application/jsonl")
            if endpoint == "cancel":
                return _Response(202, json=eng.cancel(key, cast(str, batch_id)))
            if endpoint == "delete":
                eng.delete(key, cast(str, batch_id))
                return _Response(204)
            return _control(sim, self.command, self.path, raw)
        except ApiError as e:
            return _error(e)


def _route(method: str, path: str) -> tuple[str, str | None, str | None]:
    """(endpoint name, batch id, allowed methods if the method is wrong)."""
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
        return "control", None, None
    return "other", None, None


def _pick(
    method: str, table: Mapping[str, str], bid: str | None
) -> tuple[str, str | None, str | None]:
    if method in table:
        return table[method], bid, None
    return next(iter(table.values())), bid, ", ".join(table)


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(400, "parameter_invalid", f"body: malformed JSON ({e})") from None


def _int_param(query: Mapping[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values:
        return default
    try:
        return int(values[-1])
    except ValueError:
        raise ApiError(
            400, "parameter_invalid", f"{name}: must be an integer, got {values[-1]!r}",
            {"field": name},
        ) from None


def _list(eng: Engine, key: str, query: Mapping[str, list[str]]) -> dict[str, Any]:
    def multi(name: str) -> list[str]:
        # repeated keys are OR-ed; a comma-separated value is accepted too
        return [v for raw in query.get(name, []) for v in raw.split(",") if v]

    return eng.list(
        key,
        page=_int_param(query, "page", 1),
        page_limit=_int_param(query, "page_limit", 10),
        statuses=multi("status"),
        modes=multi("analysis_mode"),
    )


def _fault_response(f: Fault, now: float) -> _Response:
    status = int(f.status or 503)
    if f.kind == "proxy_502":
        return _Response(
            status, raw=_PROXY_502, content_type="text/html", api=False,
            headers={"Server": "nginx"},
        )
    if f.kind in ("rate_limit", "empty_body_429"):
        headers: dict[str, str] = {}
        if f.retry_after >= 0:
            if f.http_date:
                # relative to the Date header, which is in simulated time too
                headers["Retry-After"] = email.utils.formatdate(now + f.retry_after, usegmt=True)
            else:
                headers["Retry-After"] = str(math.ceil(f.retry_after))
        if f.kind == "empty_body_429":
            return _Response(429, raw=b"", headers=headers)
        msg = f.message or (
            f"Too many requests. Retry after {f.retry_after:g} seconds."
        )
        return _Response(
            429, json={"error": {"code": f.code or "too_many_requests", "message": msg}},
            headers=headers,
        )
    code = f.code or _5XX_CODES.get(status, "simulated_error")
    msg = f.message or f"Simulated failure (HTTP {status})."
    if f.kind == "flat_error":
        return _Response(status, json={"code": code, "message": msg})
    return _Response(status, json={"error": {"code": code, "message": msg}})


def _apply_patches(resp: _Response, endpoint: str, patches: Iterable[Mapping[str, Any]]) -> None:
    if resp.status >= 400 or not isinstance(resp.json, dict):
        return
    targets: list[dict[str, Any]]
    targets = [d for d in resp.json.get("data", []) if isinstance(d, dict)] if endpoint == "list" else [resp.json]
    for t in targets:
        for p in patches:
            t.update(p)


def _control(sim: Simulator, method: str, path: str, raw: bytes) -> _Response:
    route = urlsplit(path).path.rstrip("/")
    try:
        if route == "/_sim/stats":
            if method != "GET":
                raise ApiError(405, "method_not_allowed", "use GET", headers={"Allow": "GET"})
            return _Response(200, json=sim.stats)
        if route == "/_sim/faults":
            if method == "GET":
                return _Response(200, json={"faults": [f.to_dict() for f in sim.faults.rules]})
            if method == "DELETE":
                n = len(sim.faults)
                sim.clear_faults()
                return _Response(200, json={"cleared": n})
            if method == "POST":
                body = _parse_json(raw)
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
                return _Response(201, json={"faults": added})
            raise ApiError(405, "method_not_allowed", "use GET, POST or DELETE",
                           headers={"Allow": "GET, POST, DELETE"})
        # /_sim/clock
        if method == "POST":
            body = _parse_json(raw)
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
        return _Response(
            200, json={"now": now, "now_iso": iso(now), "speed": getattr(sim.clock, "speed", None)}
        )
    except (ValueError, TypeError) as e:
        raise ApiError(400, "parameter_invalid", str(e)) from None


# --------------------------------------------------------------------------------------------
# Simulator
# --------------------------------------------------------------------------------------------


class Simulator:
    """A local TwelveLabs batch API (v1.3) on ``127.0.0.1``, served from a daemon thread.

    Parameters
    ----------
    api_key
        The accepted ``x-api-key`` (``extra_api_keys`` adds more accounts).
    host, port
        Where to listen; ``port=0`` picks a free port, kept across ``stop()``/``start()``.
    seed
        Seeds every random draw (schedules, outcomes, ids, outputs): same seed, same run.
    speed, clock
        Simulated time: a :class:`SpeedClock` at ``speed`` (1 = real time), unless ``clock``
        is given (e.g. a :class:`ManualClock` for tests).
    fail_rate, items_at_once, item_seconds, startup_seconds, video_seconds
        The seeded schedule: share of failed items, parallel processing slots, per-item
        processing time range, pending → processing delay range, assumed video durations.
    outcomes
        Forced outcomes by ``custom_id``/``asset_id`` or a callable (see ``engine``).
    missing_assets, unready_assets
        Asset ids that make create answer 404 / 409.
    output_scale, segments_per_definition, length_rate
        Output size knobs (plain text is ~0.5 KB per item at scale 1, ~10 KB at scale 20-30;
        ``segments_per_definition=50`` gives 50 segments per definition), and the share of
        general-mode items ending with ``finish_reason: "length"`` (truncated text / JSON).
    max_active, retry_after_seconds
        The active-batch cap per key, and the ``Retry-After`` of its 429.
    faults
        Initial fault rules (:class:`Fault`, dicts or compact strings).
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        speed: float = 1.0,
        clock: Clock | None = None,
        fail_rate: float = 0.05,
        items_at_once: int = 8,
        item_seconds: tuple[float, float] = (60.0, 300.0),
        startup_seconds: tuple[float, float] = (5.0, 30.0),
        video_seconds: tuple[float, float] = (60.0, 3600.0),
        outcomes: Outcomes = None,
        missing_assets: Iterable[str] = (),
        unready_assets: Iterable[str] = (),
        output_scale: float = 1.0,
        segments_per_definition: int | None = None,
        length_rate: float = 0.0,
        max_active: int = 5,
        retry_after_seconds: int = 30,
        faults: Iterable[FaultSpec] = (),
        extra_api_keys: Iterable[str] = (),
        verbose: bool = False,
    ) -> None:
        self.api_key = api_key
        self.api_keys = frozenset([api_key, *extra_api_keys])
        self.host = host
        self._port = port
        self.verbose = verbose
        self.clock: Clock = clock if clock is not None else SpeedClock(speed)
        self.engine = Engine(
            self.clock,
            EngineConfig(
                seed=seed,
                fail_rate=fail_rate,
                items_at_once=items_at_once,
                item_seconds=(float(item_seconds[0]), float(item_seconds[1])),
                startup_seconds=(float(startup_seconds[0]), float(startup_seconds[1])),
                video_seconds=(float(video_seconds[0]), float(video_seconds[1])),
                outcomes=outcomes,
                missing_assets=frozenset(a.lower() for a in missing_assets),
                unready_assets=frozenset(a.lower() for a in unready_assets),
                max_active=max_active,
                retry_after_seconds=retry_after_seconds,
                output_scale=output_scale,
                segments_per_definition=segments_per_definition,
                length_rate=length_rate,
            ),
        )
        self.faults = FaultPlan(faults)
        self._stats_lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._responses: Counter[str] = Counter()
        self._connections = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._life_lock = threading.Lock()

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Listen (again, on the same port after a ``stop()``) and serve from a daemon thread."""
        with self._life_lock:
            if self._server is not None:
                return self
            server = _Server((self.host, self._port), self)
            self._port = int(server.server_address[1])
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                daemon=True,
                name=f"batch-sim-{self._port}",
            )
            self._server, self._thread = server, thread
            thread.start()
            return self

    def stop(self) -> None:
        """Stop listening and close every open connection (clients see connection refused)."""
        with self._life_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is not None:
            server.close_all()
        if thread is not None:
            thread.join(5)

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._server is not None

    # ---- addresses ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` (no base path)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    @property
    def base_url(self) -> str:
        """``http://host:port/v1.3``: what a client uses as its base URL."""
        return self.url + BASE_PATH

    # ---- faults -------------------------------------------------------------------------------

    def add_fault(self, spec: FaultSpec | None = None, **options: Any) -> Fault:
        """Append a rule: a :class:`Fault`, a dict, a compact string, or keyword options."""
        if spec is None:
            spec = options
        elif options:
            raise TypeError("give either a rule or keyword options, not both")
        return self.faults.add(spec)

    def clear_faults(self) -> None:
        self.faults.clear()

    # ---- stats --------------------------------------------------------------------------------

    def _count_connection(self) -> None:
        with self._stats_lock:
            self._connections += 1

    def _count_request(self, endpoint: str) -> None:
        with self._stats_lock:
            self._requests[endpoint] += 1

    def _count_response(self, status: int) -> None:
        with self._stats_lock:
            self._responses[str(status)] += 1

    @property
    def stats(self) -> dict[str, Any]:
        """A snapshot: ``requests`` per endpoint, ``requests_total``, ``connections``
        (accepted so far), ``open_connections``, ``responses`` per status, ``active_batches``,
        ``batches``, ``faults_fired``."""
        server = self._server
        with self._stats_lock:
            requests = dict(self._requests)
            responses = dict(self._responses)
            connections = self._connections
        return {
            "requests": requests,
            "requests_total": sum(requests.values()),
            "responses": responses,
            "connections": connections,
            "open_connections": server.open_connections() if server is not None else 0,
            "active_batches": self.engine.active_count(),
            "batches": len(self.engine.batch_ids()),
            "faults_fired": sum(f.fired for f in self.faults.rules),
        }

    def reset_stats(self) -> None:
        with self._stats_lock:
            self._requests.clear()
            self._responses.clear()
            self._connections = 0

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Simulator {self.base_url} {state}>"

