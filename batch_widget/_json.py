"""JSON decoding with the fastest decoder installed (orjson, then msgspec), stdlib as the net.

Shared by the client (each results line) and frames (each line, each structured answer). The
optional decoders are imported on first use, not at import time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["decoder_name", "loads"]


class _Decoder:
    """The fastest installed JSON decoder, chosen on first use; stdlib as the safety net."""

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
        try:
            import msgspec

            decoder: Any = msgspec.json.Decoder()
            self.loads = decoder.decode
            self.errors, self.name = (msgspec.DecodeError, ValueError), "msgspec"
            return decoder.decode  # type: ignore[no-any-return]
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
    """Name of the JSON decoder in use: ``"orjson"``, ``"msgspec"`` or ``"json"``."""
    if _DECODER.loads is None:
        _DECODER.setup()
    return _DECODER.name
