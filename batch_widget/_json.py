"""JSON decoding with orjson when it is installed, the stdlib as the net.

Shared by the client (each results line, through :func:`batch_widget.models.parse_result_line`)
and frames (each line, each structured answer). orjson is imported on first use, not at import
time. It was the fastest per-line decoder on the results' shapes (the cost is un-escaping the
long ``data.data`` strings: ~3x faster than the stdlib; measured by
``benchmarks/bench_frames.py``). A line it refuses is retried with the stdlib (which reads
``NaN``) before it is called malformed, so the fast decoder never loses a line the stdlib could
read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["decoder_name", "loads"]


class _Decoder:
    """The decoder in use, chosen on first use: orjson if installed, else the stdlib."""

    def __init__(self) -> None:
        self.loads: Callable[[Any], Any] | None = None
        self.errors: tuple[type[BaseException], ...] = (ValueError,)
        self.name = "json"

    def setup(self) -> Callable[[Any], Any]:
        try:
            import orjson

            self.loads, self.errors, self.name = orjson.loads, (orjson.JSONDecodeError,), "orjson"
            return self.loads
        except ImportError:
            pass
        self.loads, self.name = _stdlib_loads, "json"
        return _stdlib_loads


def _stdlib_loads(raw: Any) -> Any:
    return json.loads(bytes(raw) if isinstance(raw, memoryview) else raw)


_DECODER = _Decoder()


def loads(raw: Any) -> Any:
    """Decode one JSON document; raise ``ValueError`` with the reason when it is not JSON."""
    fast = _DECODER.loads or _DECODER.setup()
    try:
        return fast(raw)
    except _DECODER.errors as exc:
        if fast is _stdlib_loads:
            raise ValueError(str(exc)) from None
        try:
            return _stdlib_loads(raw)  # NaN / Infinity and other things the fast one refuses
        except (ValueError, TypeError, RecursionError):
            raise ValueError(str(exc)) from None


def decoder_name() -> str:
    """Name of the JSON decoder in use: ``"orjson"`` or ``"json"``."""
    if _DECODER.loads is None:
        _DECODER.setup()
    return _DECODER.name
