"""Content seconds of assets the account already holds: one batched ``list_assets`` by id, never a request per row.

Used by ``bw.plan`` (hours before anything is sent), a job with a budget (hours before each create)
and usage (hours of the completed items). An asset that is not ``ready``, or that the account does
not hold, has no duration here: its hours are unknown, never guessed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from .asset_model import Asset
from .client import BatchClient

__all__ = ["AT_ONCE", "PER_REQUEST", "asset_durations"]

#: ids per list request (the API's most), and list requests in flight at once
PER_REQUEST = 50
AT_ONCE = 8


async def asset_durations(client: BatchClient, asset_ids: Iterable[str]) -> dict[str, float]:
    """``{asset_id: seconds}`` for the ready assets among ``asset_ids``: ceil(n / 50) list requests, at most
    8 in flight (so 3,000 ids cost about 8 round trips, not 60).

    Ids are matched case-insensitively (the API's ids are lowercase hex); absent ids are left out.
    """
    wanted = {a.lower(): a for a in asset_ids if a}
    if not wanted:
        return {}
    ids = list(wanted)
    gate = asyncio.Semaphore(AT_ONCE)

    async def one(group: list[str]) -> list[Asset]:
        async with gate:
            return await client.list_assets(asset_ids=group)

    pages = await asyncio.gather(*(one(ids[i : i + PER_REQUEST]) for i in range(0, len(ids), PER_REQUEST)))
    out: dict[str, float] = {}
    for asset in (a for page in pages for a in page):
        given = wanted.get(asset.id.lower())
        seconds = asset.content_seconds
        if given is not None and seconds is not None:
            out[given] = float(seconds)
    return out
