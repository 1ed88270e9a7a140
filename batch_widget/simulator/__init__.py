"""A faithful local simulator of the TwelveLabs batch analysis API (v1.3).

Written from the API specification alone (``twelvelabs-batch-api.md``): it imports nothing
from the rest of ``batch_widget``, so a misreading of the spec in the client is caught here
and vice versa.

It is built on the standard library's :class:`http.server.ThreadingHTTPServer`
(``HTTP/1.1``, keep-alive, chunked JSONL results) on purpose:

* no extra dependency for a package that ships it at runtime (notebooks, demos, CI);
* one daemon thread per connection easily serves 100 concurrent keep-alive clients;
* full control of the socket, which fault injection needs (drop a connection without a
  response, cut a chunked stream before its final chunk, send half a body).

Use it from Python::

    from batch_widget.simulator import Simulator, ManualClock

    with Simulator(api_key="k", seed=1, speed=600.0) as sim:       # 10 sim-minutes per second
        sim.base_url                                                 # http://127.0.0.1:PORT/v1.3
    with Simulator(api_key="k", clock=ManualClock()) as sim:
        sim.clock.advance(24 * 3600)                                 # live through a whole day
        sim.add_fault("get:status=503:times=5")                     # see ``faults``
        sim.stop(); sim.start()                                      # same port
        sim.engine.batch_state(batch_id)                             # direct assertions

or from a shell: ``python -m batch_widget.simulator --port 0 --speed 60``, which prints the
base URL on its first stdout line. Other processes drive it through ``/_sim/faults``,
``/_sim/clock`` and ``/_sim/stats`` (same ``x-api-key``); see ``routes``.

Fault rule format (Python, JSON and CLI share the same field names): see ``faults``.
Engine semantics and the spec ambiguities decided here: see ``engine``.

Modules: ``app`` (:class:`Simulator`), ``server`` (HTTP transport, faults on the wire),
``routes`` (route table, API and ``/_sim/`` handlers), ``engine`` (batch records and state
machine), ``validation`` (create-body checks), ``outputs`` (generated results), ``clock``,
``errors`` (:class:`ApiError`), ``faults`` (fault rules), ``cli``.
"""

from .app import DEFAULT_API_KEY, Simulator
from .cli import run_simulator
from .clock import DEFAULT_EPOCH, Clock, ManualClock, SpeedClock
from .engine import Engine, EngineConfig, ItemSpec
from .errors import ApiError
from .faults import (
    FAULT_KINDS,
    Fault,
    FaultPlan,
    drop,
    patch_batch,
    rate_limit,
    slow,
    status_burst,
)
from .routes import API_VERSION

#: The speed-driven clock (``SimClock(speed=600)``); an alias of :class:`SpeedClock`.
SimClock = SpeedClock

__all__ = [
    "API_VERSION",
    "DEFAULT_API_KEY",
    "DEFAULT_EPOCH",
    "FAULT_KINDS",
    "ApiError",
    "Clock",
    "Engine",
    "EngineConfig",
    "Fault",
    "FaultPlan",
    "ItemSpec",
    "ManualClock",
    "SimClock",
    "Simulator",
    "SpeedClock",
    "drop",
    "patch_batch",
    "rate_limit",
    "run_simulator",
    "slow",
    "status_burst",
]
