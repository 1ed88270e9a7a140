"""Content seconds of assets the account already holds: one batched ``list_assets`` by id, never a request per row.

Used by ``bw.plan`` (hours before anything is sent), a job with a budget (hours before each create)
and usage (hours of the completed items). An asset that is not ``ready``, or that the account does
not hold, has no duration here: its hours are unknown, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable

from .client import BatchClient

__all__ = ["asset_durations"]


async def asset_durations(client: BatchClient, asset_ids: Iterable[str]) -> dict[str, float]:
    """``{asset_id: seconds}`` for the ready assets among ``asset_ids`` (50 ids per list request).

    Ids are matched case-insensitively (the API's ids are lowercase hex); absent ids are left out.
    """
    wanted = {a.lower(): a for a in asset_ids if a}
    if not wanted:
        return {}
    found = await client.list_assets(asset_ids=list(wanted))
    out: dict[str, float] = {}
    for asset in found:
        given = wanted.get(asset.id.lower())
        seconds = asset.content_seconds
        if given is not None and seconds is not None:
            out[given] = float(seconds)
    return out
