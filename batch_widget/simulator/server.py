"""HTTP plumbing: the threaded server, the request handler, and the faults played on the wire.

A :class:`Server` serves each connection from its own daemon thread and keeps track of them
(so ``stop()`` can close every one). Its :class:`Handler` reads a request, asks ``routes`` for
the answer and writes it: a JSON body with ``Content-Length``, or JSONL results as a chunked
stream, written in small groups of lines.

Faults are matched before authentication (they play the network / proxy / overloaded
backend); ``/_sim/`` requests are never faulted. Every response carries ``X-Api-Version: 1.3``
and a ``Content-Type``, except the ``proxy_502`` fault's page, which plays a proxy that knows
nothing of the API.
"""

from __future__ import annotations

import contextlib
import email.utils
import math
import socket
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from .errors import ApiError
from .faults import Fault
from .routes import API_VERSION, Response, Served, dumps, handle, route


class Hosted(Served, Protocol):
    """What the server needs of the simulator it hosts: the routes' needs, and its counters."""

    verbose: bool

    def count_connection(self) -> None: ...

    def count_request(self, endpoint: str) -> None: ...

    def count_response(self, status: int) -> None: ...

__all__ = ["Server"]

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


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], sim: Hosted) -> None:
        self.sim = sim
        self.stopping = threading.Event()
        self._conn_lock = threading.Lock()
        self._conns: dict[socket.socket, threading.Thread] = {}
        super().__init__(address, Handler)

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
        self.sim.count_connection()
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


class Handler(BaseHTTPRequestHandler):
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
        if self.srv.sim.verbose:
            super().log_message(format, *args)

    # ---- plumbing -----------------------------------------------------------------------------

    @property
    def srv(self) -> Server:
        return cast(Server, self.server)

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

    def _start(self, resp: Response, length: int | None) -> None:
        """Status line and headers, with ``Content-Length: length`` or (``None``) a chunked body."""
        self.send_response(resp.status)
        if resp.api:
            self.send_header("X-Api-Version", API_VERSION)
        self.send_header("Content-Type", resp.content_type)
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _hang_up(self) -> None:
        """Close the connection now, whatever the client still expects to read."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, resp: Response) -> None:
        if resp.lines is not None:
            self._send_stream(resp, [])
            return
        body = resp.body()
        self._start(resp, len(body))
        if body and self.command != "HEAD":
            self.wfile.write(body)
        self.srv.sim.count_response(resp.status)

    def _send_stream(self, resp: Response, mods: Sequence[Fault]) -> None:
        """Chunked JSONL, written in small groups of lines (never one giant string)."""
        assert resp.lines is not None
        cut = next((f for f in mods if f.kind == "cut_stream"), None)
        bad = [f for f in mods if f.kind == "malformed_line"]
        self._start(resp, None)
        self.srv.sim.count_response(resp.status)
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
            if not replaced and not emit(dumps(line) + b"\n"):
                break
        else:
            for f in bad:  # a position past the end: append
                if f.lines > index:
                    emit(garbage(f))
        flush()
        if cut is not None and emitted >= cut.lines:
            # no terminating chunk: the client sees a truncated chunked body
            self._hang_up()
            return
        self.wfile.write(b"0\r\n\r\n")

    # ---- dispatch -----------------------------------------------------------------------------

    def _dispatch(self) -> None:
        sim = self.srv.sim
        try:
            raw = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send(Response.error(ApiError(400, "parameter_invalid", "body: unreadable request body")))
            return
        where = route(self.command, urlsplit(self.path).path)
        endpoint, batch_id = where.endpoint, where.batch_id
        sim.count_request(endpoint)

        mods: list[Fault] = []
        if endpoint not in ("control", "other"):
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
                    self._send(_fault_response(replacing, sim.clock.now()))
                    return
                mods.append(replacing)

        resp = handle(
            sim, where, self.command, self.path, self.headers.get("x-api-key"), raw,
            self.headers.get("Content-Type", ""),
        )
        if any(f.kind == "patch_batch" for f in mods):
            _apply_patches(resp, endpoint, [f.patch for f in mods if f.kind == "patch_batch"])
        drop_mid = next((f for f in mods if f.kind == "drop_mid_response"), None)
        if drop_mid is not None:
            body = resp.body()
            self._start(resp, len(body))
            n = drop_mid.bytes if drop_mid.bytes is not None else len(body) // 2
            self.wfile.write(body[: max(0, min(n, len(body) - 1))])
            self._hang_up()
            sim.count_response(resp.status)
            return
        if resp.lines is not None:
            self._send_stream(resp, mods)
        else:
            self._send(resp)


def _fault_response(f: Fault, now: float) -> Response:
    """The answer of a fault that replaces the response (all but ``drop``/``drop_mid_response``)."""
    status = int(f.status or 503)
    if f.kind == "proxy_502":
        return Response(
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
            return Response(429, raw=b"", headers=headers)
        msg = f.message or (
            f"Too many requests. Retry after {f.retry_after:g} seconds."
        )
        return Response(
            429, json={"error": {"code": f.code or "too_many_requests", "message": msg}},
            headers=headers,
        )
    code = f.code or _5XX_CODES.get(status, "simulated_error")
    msg = f.message or f"Simulated failure (HTTP {status})."
    if f.kind == "flat_error":
        return Response(status, json={"code": code, "message": msg})
    return Response(status, json={"error": {"code": code, "message": msg}})


def _apply_patches(resp: Response, endpoint: str, patches: Iterable[Mapping[str, Any]]) -> None:
    if resp.status >= 400 or not isinstance(resp.json, dict):
        return
    targets: list[dict[str, Any]]
    targets = [d for d in resp.json.get("data", []) if isinstance(d, dict)] if endpoint == "list" else [resp.json]
    for t in targets:
        for p in patches:
            t.update(p)
