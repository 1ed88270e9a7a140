"""Small asyncio plumbing shared by the poller and the job scheduler."""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

_T = TypeVar("_T")


def loop_running() -> bool:
    """True when called from code running on an event loop (a notebook cell, a coroutine)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def run_in_thread(
    make: Callable[[], Coroutine[Any, Any, _T]], name: str, *, warn_in_loop: str | None = None
) -> _T:
    """Run ``make()`` on a private event loop in a worker thread and block until it ends.

    It works under a running loop too (an ``httpx.AsyncClient`` belongs to the loop it first
    ran on, so ``make`` must build its own client); there, ``warn_in_loop`` is said first, for
    a blocking call in a notebook pauses every live display. Returns the result or raises.
    """
    if warn_in_loop and loop_running():
        warnings.warn(warn_in_loop, stacklevel=3)
    result: dict[str, Any] = {}

    def worker() -> None:
        try:
            result["value"] = asyncio.run(make())
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=worker, name=name)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    value: _T = result["value"]
    return value


async def sleep_or_wake(
    seconds: float, wake: asyncio.Event, sleep: Callable[[float], Awaitable[None]] | None = None
) -> None:
    """Sleep ``seconds`` (with ``sleep``, injectable for virtual time) unless ``wake`` is set first.

    A wake that arrived while the caller was busy is not lost: it ends this pause at once.
    """
    if not wake.is_set():
        sleeper = asyncio.ensure_future((sleep or asyncio.sleep)(seconds))
        waker = asyncio.ensure_future(wake.wait())
        _, pending = await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
    wake.clear()
