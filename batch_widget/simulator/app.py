"""The :class:`Simulator`: a local TwelveLabs batch API on a port, as a context manager.

It owns the engine (on its clock), the fault plan, the request statistics and the server
thread (``start()`` / ``stop()`` keep the port). The HTTP side is in ``server`` (transport,
faults on the wire) and ``routes`` (the route table, the API and ``/_sim/`` handlers).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

from .assets import AssetConfig, AssetStore, FailRule
from .clock import Clock, SpeedClock
from .engine import Engine, EngineConfig, Outcomes
from .faults import Fault, FaultPlan, FaultSpec
from .routes import BASE_PATH
from .server import Server

__all__ = ["DEFAULT_API_KEY", "Simulator"]

DEFAULT_API_KEY = "sim-key"


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
    direct_upload_limit, chunk_size
        Bytes: the largest ``method=direct`` upload, and the chunk size of multipart sessions
        (tests use KBs so the multipart flow runs on small files).
    asset_processing_seconds, failed_uploads, slow_uploads, asset_creates_per_minute
        Assets: the processing → ready delay range; filenames (substrings) whose asset ends
        ``failed`` (or a callable ``f(filename, url) -> message | None``); extra processing
        seconds by filename substring; the ``POST /assets`` rate limit (429 beyond it).
        Asset durations are seeded per filename from ``video_seconds``; batches that name a
        known asset use its duration and answer 409 while it is not ``ready`` (see ``assets``).
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
        direct_upload_limit: int = 200_000_000,
        chunk_size: int = 5 * 1024 * 1024,
        asset_processing_seconds: tuple[float, float] = (5.0, 60.0),
        failed_uploads: Iterable[str] | FailRule = (),
        slow_uploads: dict[str, float] | None = None,
        asset_creates_per_minute: int | None = None,
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
        self.assets = AssetStore(
            self.clock,
            AssetConfig(
                seed=seed,
                direct_limit=direct_upload_limit,
                chunk_size=chunk_size,
                processing_seconds=(float(asset_processing_seconds[0]), float(asset_processing_seconds[1])),
                video_seconds=(float(video_seconds[0]), float(video_seconds[1])),
                fail=failed_uploads if callable(failed_uploads) else tuple(failed_uploads),
                slow=dict(slow_uploads or {}),
                creates_per_minute=asset_creates_per_minute,
            ),
        )
        self.engine.assets = self.assets
        self.faults = FaultPlan(faults)
        self._stats_lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._responses: Counter[str] = Counter()
        self._connections = 0
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._life_lock = threading.Lock()

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Listen (again, on the same port after a ``stop()``) and serve from a daemon thread."""
        with self._life_lock:
            if self._server is not None:
                return self
            server = Server((self.host, self._port), self)
            self._port = int(server.server_address[1])
            self.assets.base_url = self.url  # chunk URLs point back here
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

    # ---- counters the server calls (see server.Hosted) -----------------------------------------

    def count_connection(self) -> None:
        with self._stats_lock:
            self._connections += 1

    def count_request(self, endpoint: str) -> None:
        with self._stats_lock:
            self._requests[endpoint] += 1

    def count_response(self, status: int) -> None:
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

