"""Async entry points: drain the client's results stream, then build a frame."""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable
from typing import Any, TypeVar

import pandas as pd

from .columns import DtypeBackend
from .lines import OrderEntry
from .segments import segments_to_frame
from .table import results_to_frame

__all__ = ["collect", "collect_frame", "collect_segments"]

_T = TypeVar("_T")


async def collect(lines: AsyncIterable[_T] | Iterable[_T]) -> list[_T]:
    """Drain an async (or plain) iterator of results lines into a list.

    Fetch once, then build both frames from the list::

        lines = await collect(client.results(batch_id))
        items, segments = results_to_frame(lines), segments_to_frame(lines)

    Parameters
    ----------
    lines
        The client's ``results(batch_id)`` (``ResultLine``), its raw variant (``bytes``), or any
        iterable.

    Returns
    -------
    list
        The lines, in stream order.
    """
    if isinstance(lines, AsyncIterable):
        return [line async for line in lines]
    return list(lines)


async def collect_frame(
    lines: AsyncIterable[Any] | Iterable[Any],
    *,
    order: Iterable[OrderEntry] | None = None,
    total_items: int | None = None,
    parse_json: bool = False,
    expand: bool = False,
    keep_text: bool = False,
    dtype_backend: DtypeBackend | None = None,
) -> pd.DataFrame:
    """Await an async iterator of results lines and return :func:`results_to_frame` of it.

    Parameters
    ----------
    lines
        An async iterable (e.g. ``client.results(batch_id)``) or a plain iterable.
    order, total_items, parse_json, expand, keep_text, dtype_backend
        As for :func:`results_to_frame`.

    Returns
    -------
    pandas.DataFrame
        The items frame.
    """
    return results_to_frame(
        await collect(lines),
        order=order,
        total_items=total_items,
        parse_json=parse_json,
        expand=expand,
        keep_text=keep_text,
        dtype_backend=dtype_backend,
    )


async def collect_segments(
    lines: AsyncIterable[Any] | Iterable[Any],
    *,
    order: Iterable[OrderEntry] | None = None,
    dtype_backend: DtypeBackend | None = None,
) -> pd.DataFrame:
    """Await an async iterator of results lines and return :func:`segments_to_frame` of it.

    Parameters
    ----------
    lines
        An async iterable (e.g. ``client.results(batch_id)``) or a plain iterable.
    order, dtype_backend
        As for :func:`segments_to_frame`.

    Returns
    -------
    pandas.DataFrame
        The segments frame.
    """
    return segments_to_frame(await collect(lines), order=order, dtype_backend=dtype_backend)
