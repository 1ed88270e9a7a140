"""The one HTTP core: one rule for "could this failed request have created something?", and the
assets endpoints as an object the client holds (composition), on the client's own core."""

from __future__ import annotations

import httpx
import pytest

from batch_widget import BatchClient
from batch_widget.assets import DIRECT_LIMIT, Assets
from batch_widget.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    BadRequestError,
    InvalidInputError,
    RateLimitError,
    ServerError,
)
from batch_widget.http_core import should_retry
from batch_widget.retry import may_have_created
from batch_widget.simulator import Fault, Simulator

from .conftest import PROMPT, SECRET_KEY, FakeClock, requests_for


def refused() -> APIConnectionError:
    error = APIConnectionError("create batch could not reach the server")
    error.__cause__ = httpx.ConnectError("refused")
    return error


def cut() -> APIConnectionError:
    error = APIConnectionError("create batch could not reach the server")
    error.__cause__ = httpx.RemoteProtocolError("peer closed the connection")
    return error


@pytest.mark.parametrize(
    ("error", "created"),
    [
        (BadRequestError(400, code="parameter_invalid"), False),
        (RateLimitError(429), False),
        (ServerError(503), False),  # documented: nothing was made
        (ServerError(500), True),
        (ServerError(502), True),
        (refused(), False),  # never reached the server
        (cut(), True),
        (APITimeoutError("timed out"), True),
        (InvalidInputError("bad input, refused before sending"), False),
        (ValueError("a 201 whose body did not parse"), True),
    ],
)
def test_may_have_created_is_the_one_rule(error: BaseException, created: bool) -> None:
    assert may_have_created(error) is created


@pytest.mark.parametrize(
    ("error", "create", "idempotent"),
    [
        (RateLimitError(429), True, True),
        (ServerError(503), True, True),
        (ServerError(500), False, True),  # a create is not repeated where it may have happened
        (APITimeoutError("timed out"), False, True),
        (refused(), True, True),
        (cut(), False, True),
        (BadRequestError(400), False, False),
    ],
)
def test_a_create_is_retried_only_where_nothing_was_made(error: APIError, create: bool, idempotent: bool) -> None:
    assert should_retry(error, "create") is create
    assert should_retry(error, "idempotent") is idempotent


async def test_a_create_answered_500_is_not_repeated(sim: Simulator) -> None:
    sim.add_fault(Fault(kind="status", endpoint="create", status=500, times=1))
    async with BatchClient(SECRET_KEY, base_url=sim.base_url, clock=FakeClock()) as client:
        with pytest.raises(ServerError):
            await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(2))
    assert sim.stats["requests"]["create"] == 1


def test_the_assets_are_an_object_of_the_client_with_their_own_settings() -> None:
    client = BatchClient(SECRET_KEY, base_url="http://127.0.0.1:9/v1.3", direct_upload_limit=4000)
    assert isinstance(client.assets, Assets) and client.assets.direct_upload_limit == 4000
    client.direct_upload_limit = 2000  # settable on the client, as tests and scripts do: it is the assets' setting
    assert client.assets.direct_upload_limit == 2000 == client.direct_upload_limit
    assert client.clone().direct_upload_limit == 2000  # a clone has the settings as they are
    assert BatchClient(SECRET_KEY, base_url="http://127.0.0.1:9/v1.3").direct_upload_limit == DIRECT_LIMIT
    assert SECRET_KEY not in repr(client.assets) + repr(vars(client.assets)) + repr(client.http)


async def test_the_client_methods_delegate_to_its_assets(sim: Simulator) -> None:
    async with BatchClient(SECRET_KEY, base_url=sim.base_url, clock=FakeClock()) as client:
        made = await client.create_asset(url="https://example.com/videos/cat.mp4")
        assert (await client.assets.get_asset(made.id)).id == made.id == (await client.get_asset(made.id)).id
        assert [a.id for a in await client.list_assets(filename="cat")] == [made.id]
        await client.delete_asset(made.id)
        assert await client.assets.list_assets(filename="cat") == []
