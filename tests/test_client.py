"""BatchClient over real HTTP to the simulator: endpoints, errors, retries, streaming, secrets."""

from __future__ import annotations

import asyncio
import email.utils
import importlib.metadata
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import timezone

import httpx
import pytest

import batch_widget as bw
from batch_widget import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BatchClient,
    BatchStatus,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    ItemStatus,
    NotFoundError,
    RateLimitError,
    ResultLine,
    ResultLineError,
    RetryPolicy,
    ServerError,
)
from batch_widget.client import parse_retry_after
from batch_widget.simulator import Fault, Simulator

from .conftest import PROMPT, SECRET_KEY, FakeClock, asset, requests_for, vt_of

DAY = 24 * 3600.0


async def make_batch(client: BatchClient, n: int = 5, prefix: str = "item") -> str:
    created = await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(n, prefix))
    return created.batch_id


def total_requests(sim: Simulator) -> int:
    return int(sum(sim.stats["requests"].values()))


# -- construction --------------------------------------------------------------------------------


def test_no_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWELVELABS_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="TWELVELABS_API_KEY"):
        BatchClient()


def test_key_and_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWELVELABS_API_KEY", SECRET_KEY)
    monkeypatch.setenv("TWELVELABS_BASE_URL", "http://127.0.0.1:9/v1.3/")
    client = BatchClient()
    assert client.base_url == "http://127.0.0.1:9/v1.3"
    monkeypatch.delenv("TWELVELABS_BASE_URL")
    assert BatchClient().base_url == "https://api.twelvelabs.io/v1.3"


def test_repr_and_str_hide_the_key() -> None:
    client = BatchClient(SECRET_KEY, base_url="http://localhost:1/v1.3")
    for text in (repr(client), str(client), repr(client.http), repr(vars(client.http)), repr(client.retry)):
        assert SECRET_KEY not in text
    assert "***" in repr(client)


def test_plain_http_needs_an_explicit_opt_out() -> None:
    with pytest.raises(ConfigurationError, match="plain http"):
        BatchClient(SECRET_KEY, base_url="http://api.example.com/v1.3")
    with pytest.warns(UserWarning, match="plain http"):
        BatchClient(SECRET_KEY, base_url="http://api.example.com/v1.3", allow_insecure_http=True)
    BatchClient(SECRET_KEY, base_url="http://[::1]:8000/v1.3")  # loopback is fine
    with pytest.raises(ConfigurationError, match="not an http"):
        BatchClient(SECRET_KEY, base_url="ftp://example.com")


# -- input checks, before any request -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"requests": []}, "1 to 1000 requests, got 0"),
        ({"requests": requests_for(1001)}, "got 1001"),
        ({"requests": "abc"}, "must be a list"),
        ({"analysis_mode": "fast"}, "analysis_mode 'fast'"),
        ({"requests": [{"video": {"type": "url", "url": "x"}}]}, r"requests\[0\].video"),
        ({"requests": [{"video": {"type": "asset_id"}}]}, r"requests\[0\].video.asset_id None"),
        ({"requests": [{"video": {"asset_id": asset(1)}, "custom_id": "has space"}]}, "'has space' is invalid"),
        ({"requests": [{"video": {"asset_id": asset(1)}, "custom_id": ""}]}, "'' is invalid"),
        ({"requests": [{"video": {"asset_id": asset(1)}, "custom_id": "x" * 65}]}, "is invalid"),
        (
            {"requests": [asset(1), {"video": {"asset_id": asset(2)}, "custom_id": "a"},
                          {"video": {"asset_id": asset(3)}, "custom_id": "a"}]},
            r"requests\[2\].custom_id 'a' is a duplicate of requests\[1\]",
        ),
        ({"defaults": None}, r"requests\[0\] has no prompt"),
        (
            {"analysis_mode": "time_based_metadata", "defaults": None},
            "time_based_metadata' needs response_format type 'segment_definitions'",
        ),
        (
            {"defaults": {**PROMPT, "response_format": {"type": "segment_definitions",
                                                        "segment_definitions": [{"id": "a"}]}}},
            "needs analysis_mode 'time_based_metadata'",
        ),
        ({"defaults": {**PROMPT, "response_format": {"type": "json_schema"}}}, "no 'json_schema' dict"),
        ({"defaults": {**PROMPT, "start_time": 10, "end_time": 5}}, "start_time 10 must be before end_time 5"),
    ],
)
async def test_create_refuses_bad_input_before_sending(
    client: BatchClient, sim: Simulator, kwargs: dict[str, object], match: str
) -> None:
    args: dict[str, object] = {"analysis_mode": "general", "defaults": PROMPT, "requests": [asset(1)]}
    args.update(kwargs)
    before = total_requests(sim)
    with pytest.raises(InvalidInputError, match=match):
        await client.create(**args)  # type: ignore[arg-type]
    assert total_requests(sim) == before


async def test_tbm_prompt_is_refused(client: BatchClient) -> None:
    seg = {"type": "segment_definitions", "segment_definitions": [{"id": "goal", "description": "a goal"}]}
    with pytest.raises(InvalidInputError, match=r"requests\[0\].prompt is not supported"):
        await client.create(
            analysis_mode="time_based_metadata",
            defaults={"response_format": seg},
            requests=[{"video": {"asset_id": asset(1)}, "prompt": {"input_text": "x"}}],
        )


@pytest.mark.parametrize("bad", ["", "123", "zz" * 12, "6a1f0c2e9b3d4e5f6071829", None, 42])
async def test_batch_id_format_is_checked_before_sending(client: BatchClient, sim: Simulator, bad: object) -> None:
    before = total_requests(sim)
    for call in (client.get, client.cancel, client.delete):
        with pytest.raises(InvalidInputError, match="not a batch id"):
            await call(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=repr(bad).replace("(", r"\(")):
        async for _ in client.results(bad):  # type: ignore[arg-type]
            pass
    assert total_requests(sim) == before


async def test_list_arguments_are_checked(client: BatchClient) -> None:
    with pytest.raises(InvalidInputError, match="page_limit 51"):
        await client.list_page(page_limit=51)
    with pytest.raises(InvalidInputError, match="status 'done'"):
        await client.list_page(status="done")


# -- the endpoints --------------------------------------------------------------------------------


async def test_create_returns_items_in_request_order(client: BatchClient) -> None:
    reqs = requests_for(7)
    created = await client.create(analysis_mode="general", defaults=PROMPT, requests=reqs)
    assert created.status is BatchStatus.PENDING
    assert created.total_items == 7
    assert [i.custom_id for i in created.items] == [r["custom_id"] for r in reqs]
    assert len({i.task_id for i in created.items}) == 7
    assert created.expires_at is not None and created.created_at is not None
    assert (created.expires_at - created.created_at).total_seconds() == DAY


async def test_get_parses_every_field(client: BatchClient, sim: Simulator) -> None:
    batch_id = await make_batch(client, 20)
    batch = await client.get(batch_id)
    assert batch.batch_id == batch_id
    assert batch.status is BatchStatus.PENDING
    assert batch.analysis_mode == "general" and batch.model_name == "pegasus1.5"
    assert batch.created_at is not None and batch.created_at.tzinfo is not None
    assert batch.counted_items == batch.total_items == 20
    sim.clock.advance(DAY / 2)
    done = await client.get(batch_id)
    assert done.status is BatchStatus.COMPLETED and done.is_terminal
    assert done.done_items == 20 and done.ready_items + done.failed_items == 20
    assert done.completed_at is not None and done.ended_at == done.completed_at
    assert done.canceled_at is None and done.expired_at is None


async def test_unknown_status_and_extra_fields_are_kept(client: BatchClient, sim: Simulator) -> None:
    batch_id = await make_batch(client)
    sim.add_fault(Fault(kind="patch_batch", endpoint="get", patch={"status": "paused", "shiny": 1}))
    batch = await client.get(batch_id)
    assert batch.status.value == "paused" and not batch.status.is_known and not batch.is_terminal
    assert batch.extra == {"shiny": 1}


async def test_list_walks_every_page(client: BatchClient, sim: Simulator) -> None:
    ids = []
    for round_ in range(3):
        for j in range(4):
            ids.append(await make_batch(client, 2, prefix=f"r{round_}{j}"))
        sim.clock.advance(DAY / 4)  # let them finish so the cap of 5 active does not bite
    page = await client.list_page(1, page_limit=5)
    assert page.total_results == 12 and page.total_page == 3 and len(page.batches) == 5
    before = sim.stats["requests"].get("list", 0)
    listed = [b.batch_id async for b in client.list(page_limit=5)]
    assert sorted(listed) == sorted(ids) and len(listed) == 12
    assert sim.stats["requests"]["list"] - before == 3  # never past total_page
    completed = [b async for b in client.list(status=["completed"], analysis_mode="general")]
    assert len(completed) == 12


async def test_results_stream_mid_run_and_after(client: BatchClient, sim: Simulator) -> None:
    created = await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(1000))
    sim.clock.advance(600)
    lines = [line async for line in client.results(created.batch_id)]
    assert len(lines) == 1000 and all(isinstance(x, ResultLine) for x in lines)
    statuses = {x.status for x in lines if isinstance(x, ResultLine)}
    assert ItemStatus.QUEUED in statuses and ItemStatus.PROCESSING in statuses
    assert [x.line_no for x in lines] == list(range(1, 1001))
    sim.clock.advance(DAY)
    final = [x async for x in client.results(created.batch_id) if isinstance(x, ResultLine)]
    assert [x.custom_id for x in final] == [i.custom_id for i in created.items]
    ready = [x for x in final if x.status is ItemStatus.READY]
    failed = [x for x in final if x.status is ItemStatus.FAILED]
    assert ready and all(x.data is not None and x.data.text for x in ready)
    assert all(x.error is not None and x.error.message for x in failed)
    assert len(ready) + len(failed) == 1000


async def test_results_are_parsed_as_bytes_arrive() -> None:
    """The stream is never buffered whole: the first line is yielded before the body ends."""
    gate = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield b'{"task_id":"t1","custom_id":"a","status":"queued"}\n{"task_id":"t2",'
        await gate.wait()  # the rest only comes once the consumer saw line 1
        yield b'"custom_id":"b","status":"ready","data":{"data":"hi","generation_id":"g",'
        yield b'"finish_reason":"stop","usage":{"output_tokens":1}}}'

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body(), headers={"content-type": "application/jsonl"})

    async def consume(client: BatchClient) -> None:
        async for line in client.results("6a1f0c2e9b3d4e5f60718293"):
            seen.append(line)
            gate.set()

    seen: list[object] = []
    async with BatchClient(SECRET_KEY, base_url="http://127.0.0.1:1/v1.3",
                           transport=httpx.MockTransport(handler)) as client:  # fmt: skip
        # a client that buffered the whole body would wait for the gate forever: fail fast
        await asyncio.wait_for(consume(client), 10)
    assert [x.custom_id for x in seen if isinstance(x, ResultLine)] == ["a", "b"]
    last = seen[1]
    assert isinstance(last, ResultLine) and last.data is not None and last.data.output_tokens == 1


async def test_results_lines_are_split_at_newlines_only() -> None:
    """A line cut across many chunks is whole again; U+2028 and U+0085 inside a JSON string (which
    JSON allows unescaped, and str.splitlines would split at) do not end a line; CRLF and blank
    lines are fine, and the last line needs no newline."""
    text = "one\u2028two\u0085three"
    lines = [
        {"task_id": "t1", "custom_id": "a", "status": "ready", "data": {"data": text}},
        {"task_id": "t2", "custom_id": "b", "status": "queued"},
        {"task_id": "t3", "custom_id": "c", "status": "failed", "error": {"message": "x" * 300}},
    ]
    encoded = [json.dumps(o, ensure_ascii=False).encode() for o in lines]
    body = encoded[0] + b"\r\n\n" + encoded[1] + b"\n   \n" + encoded[2]

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 7):
            yield body[i : i + 7]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=chunks(), headers={"content-type": "application/jsonl"})

    async with BatchClient(SECRET_KEY, base_url="http://127.0.0.1:1/v1.3",
                           transport=httpx.MockTransport(handler)) as client:  # fmt: skip
        got = [x async for x in client.results("6a1f0c2e9b3d4e5f60718293")]
    assert all(isinstance(x, ResultLine) for x in got)
    assert [(x.custom_id, x.line_no) for x in got if isinstance(x, ResultLine)] == [("a", 1), ("b", 2), ("c", 3)]
    first = got[0]
    assert isinstance(first, ResultLine) and first.data is not None and first.data.text == text


async def test_malformed_line_raises_or_is_yielded(client: BatchClient, sim: Simulator) -> None:
    batch_id = await make_batch(client, 6)
    sim.add_fault(Fault(kind="malformed_line", endpoint="results", lines=3, line="{not json", times=None))
    with pytest.raises(ResultLineError) as info:
        async for _ in client.results(batch_id):
            pass
    assert info.value.line_no == 4 and info.value.raw == "{not json"
    items = [x async for x in client.results(batch_id, malformed="yield")]
    errors = [x for x in items if isinstance(x, ResultLineError)]
    assert len(items) == 7 and len(errors) == 1 and errors[0].line_no == 4
    assert sum(isinstance(x, ResultLine) for x in items) == 6


async def test_cut_stream_is_resumed_without_duplicates(client: BatchClient, sim: Simulator) -> None:
    batch_id = await make_batch(client, 50)
    sim.clock.advance(DAY)
    sim.add_fault(Fault(kind="cut_stream", endpoint="results", lines=20, times=1))
    lines = [x async for x in client.results(batch_id) if isinstance(x, ResultLine)]
    assert len(lines) == 50 and len({x.task_id for x in lines}) == 50
    sim.add_fault(Fault(kind="cut_stream", endpoint="results", lines=20, times=None))
    got: list[object] = []
    with pytest.raises(APIConnectionError):
        async for x in client.results(batch_id, resume=1):
            got.append(x)
    assert len(got) == 20  # what arrived is kept by the caller; the cut is not silent
    sim.clear_faults()


async def test_cancel_and_delete_lifecycle(client: BatchClient, sim: Simulator) -> None:
    batch_id = await make_batch(client, 40)
    sim.clock.advance(120)
    with pytest.raises(ConflictError) as info:
        await client.delete(batch_id)
    assert info.value.code == "batch_not_terminal" and info.value.batch_id == batch_id
    await client.cancel(batch_id)
    assert (await client.get(batch_id)).status in (BatchStatus.CANCELING, BatchStatus.CANCELED)
    sim.clock.advance(3600)
    final = await client.get(batch_id)
    assert final.status is BatchStatus.CANCELED and final.canceled_items > 0 and final.canceled_at
    with pytest.raises(ConflictError) as info:
        await client.cancel(batch_id)
    assert info.value.code == "batch_canceled" and "batch_canceled" in str(info.value)
    assert await client.delete(batch_id) is None
    with pytest.raises(NotFoundError, match="Check the batch id"):
        await client.get(batch_id)


async def test_expired_batch_cancel_conflict(client: BatchClient, sim: Simulator) -> None:
    created = await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(1000))
    sim.clock.advance(DAY + 1)
    batch = await client.get(created.batch_id)
    if batch.status is BatchStatus.EXPIRED:
        assert batch.expired_at is not None and batch.canceled_items > 0
        with pytest.raises(ConflictError, match="batch_expired"):
            await client.cancel(created.batch_id)
    else:  # finished within the day at this seed: still a terminal conflict
        with pytest.raises(ConflictError, match="batch_completed"):
            await client.cancel(created.batch_id)


# -- errors and retries ---------------------------------------------------------------------------


async def test_wrong_key_is_authentication_error(sim: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "tlk_WRONG_key_also_secret_77"
    async with BatchClient(wrong, base_url=sim.base_url) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.get("6a1f0c2e9b3d4e5f60718293")
    assert info.value.status_code == 401 and info.value.code in ("api_key_invalid", "unauthorized")
    assert "TWELVELABS_API_KEY" in str(info.value)
    for text in (str(info.value), repr(info.value), caplog.text):
        assert wrong not in text


async def test_not_found(client: BatchClient) -> None:
    with pytest.raises(NotFoundError) as info:
        await client.get("0123456789abcdef01234567")
    assert info.value.status_code == 404 and info.value.batch_id == "0123456789abcdef01234567"
    assert "list_batches()" in str(info.value)


async def test_5xx_burst_is_retried_with_backoff(client: BatchClient, sim: Simulator) -> None:
    batch_id = await make_batch(client)
    sim.add_fault(Fault(kind="status", endpoint="get", status=503, times=5))
    batch = await client.get(batch_id)
    assert batch.batch_id == batch_id
    assert len(vt_of(client).slept) == 5
    caps = [min(20, 0.5 * 2**i) for i in range(5)]
    assert all(cap / 2 <= d <= cap for d, cap in zip(vt_of(client).slept, caps, strict=True))


async def test_a_long_5xx_burst_gives_up_with_server_error(
    client: BatchClient, sim: Simulator
) -> None:
    batch_id = await make_batch(client)
    sim.add_fault(Fault(kind="status", endpoint="get", status=500, times=30))
    with pytest.raises(ServerError) as info:
        await client.get(batch_id)
    assert info.value.status_code == 500 and "retry" in str(info.value)
    assert len(vt_of(client).slept) == 5  # 6 attempts in all


async def test_the_total_wait_is_bounded(sim: Simulator) -> None:
    """Retries stop when the next wait would pass the policy's budget, attempts left or not."""
    sleeps = FakeClock()
    async with BatchClient(SECRET_KEY, base_url=sim.base_url, clock=sleeps,
                           retry=RetryPolicy(max_attempts=10, budget=60)) as client:  # fmt: skip
        batch_id = await make_batch(client)
        sim.add_fault(Fault(kind="rate_limit", endpoint="get", retry_after=25, times=None))
        with pytest.raises(RateLimitError) as info:
            await client.get(batch_id)
    assert sleeps.calls == [25.0, 25.0]  # a third wait would make 75 s > 60 s
    assert info.value.retry_after == 25
    sim.clear_faults()


async def test_retry_after_seconds_and_http_date(client: BatchClient, sim: Simulator) -> None:
    batch_id = await make_batch(client)
    sim.add_fault(Fault(kind="rate_limit", endpoint="get", retry_after=7, times=1))
    await client.get(batch_id)
    assert vt_of(client).slept == [7.0]
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after(when) or 0) <= 30
    assert parse_retry_after("garbage") is None and parse_retry_after("-3") == 0.0
    sim.add_fault(Fault(kind="rate_limit", endpoint="get", retry_after=12, http_date=True, times=1))
    await client.get(batch_id)
    assert 8 <= vt_of(client).slept[-1] <= 13


@pytest.mark.parametrize(
    ("fault", "status", "needle"),
    [
        (Fault(kind="proxy_502", endpoint="get", times=None), 502, "non-JSON response"),
        (Fault(kind="flat_error", endpoint="get", status=500, code="flat_code", times=None), 500, "flat_code"),
        (Fault(kind="empty_body_429", endpoint="get", retry_after=1, times=None), 429, "5 active batches"),
    ],
)
async def test_error_bodies_of_every_shape(
    sim: Simulator, fault: Fault, status: int, needle: str
) -> None:
    async with BatchClient(SECRET_KEY, base_url=sim.base_url, retry=RetryPolicy(max_attempts=1)) as client:
        batch_id = await make_batch(client)
        sim.add_fault(fault)
        with pytest.raises((ServerError, RateLimitError)) as info:
            await client.get(batch_id)
    assert info.value.status_code == status and needle in str(info.value)
    assert "<html" not in str(info.value).lower()


async def test_sixth_active_batch_is_rate_limited(sim: Simulator) -> None:
    sleeps = FakeClock()
    async with BatchClient(SECRET_KEY, base_url=sim.base_url, clock=sleeps,
                           retry=RetryPolicy(max_attempts=3, budget=600)) as client:  # fmt: skip
        for i in range(5):
            await make_batch(client, 2, prefix=f"b{i}")
        with pytest.raises(RateLimitError) as info:
            await make_batch(client, 2, prefix="six")
    assert info.value.status_code == 429 and info.value.retry_after is not None
    assert sim.stats["requests"]["create"] == 5 + 3  # the create was retried on 429
    assert len(sleeps.calls) == 2


async def test_create_is_not_retried_after_a_timeout(sim: Simulator) -> None:
    async with BatchClient(SECRET_KEY, base_url=sim.base_url, timeout=0.3, clock=FakeClock()) as client:
        sim.add_fault(Fault(kind="slow", endpoint="create", seconds=1.0, times=None))
        with pytest.raises(APITimeoutError, match="did not answer in time"):
            await make_batch(client)
        sim.clear_faults()
    assert sim.stats["requests"]["create"] == 1


async def test_create_is_retried_on_503_but_not_500(client: BatchClient, sim: Simulator) -> None:
    sim.add_fault(Fault(kind="status", endpoint="create", status=503, times=2))
    await make_batch(client)
    assert sim.stats["requests"]["create"] == 3
    sim.add_fault(Fault(kind="status", endpoint="create", status=500, times=1))
    with pytest.raises(ServerError):
        await make_batch(client, prefix="again")
    assert sim.stats["requests"]["create"] == 4


async def test_read_timeout_on_get_is_retried(sim: Simulator) -> None:
    sleeps = FakeClock()
    async with BatchClient(SECRET_KEY, base_url=sim.base_url, timeout=0.3, clock=sleeps) as client:
        batch_id = await make_batch(client)
        sim.add_fault(Fault(kind="slow", endpoint="get", seconds=1.0, times=2))
        assert (await client.get(batch_id)).batch_id == batch_id
    assert len(sleeps.calls) == 2


async def test_connection_refused_then_recovered(client: BatchClient, sim: Simulator) -> None:
    batch_id = await make_batch(client)
    sim.stop()
    try:
        with pytest.raises(APIConnectionError, match="could not reach the server"):
            await client.get(batch_id)
        assert len(vt_of(client).slept) == 5
    finally:
        sim.start()
    assert (await client.get(batch_id)).batch_id == batch_id


async def test_dropped_connection_is_retried(client: BatchClient, sim: Simulator) -> None:
    batch_id = await make_batch(client)
    sim.add_fault(Fault(kind="drop", endpoint="get", times=2))
    assert (await client.get(batch_id)).batch_id == batch_id
    sim.add_fault(Fault(kind="drop_mid_response", endpoint="get", times=1))
    assert (await client.get(batch_id)).batch_id == batch_id


async def test_connections_are_reused(client: BatchClient, sim: Simulator) -> None:
    batch_id = await make_batch(client)
    for _ in range(20):
        await client.get(batch_id)
    assert sim.stats["connections"] <= 2


async def test_datetimes_are_aware_utc(client: BatchClient) -> None:
    created = await client.create(analysis_mode="general", defaults=PROMPT, requests=[asset(1)])
    assert created.created_at is not None and created.created_at.utcoffset() == timezone.utc.utcoffset(None)


async def test_the_key_never_leaks(sim: Simulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    sleeps = FakeClock()
    async with BatchClient(SECRET_KEY, base_url=sim.base_url, timeout=0.3, clock=sleeps) as client:
        texts += [repr(client), str(client)]
        batch_id = await make_batch(client)
        faults = [
            Fault(kind="status", endpoint="get", status=503, times=30),
            Fault(kind="proxy_502", endpoint="get", times=30),
            Fault(kind="slow", endpoint="get", seconds=1.0, times=30),
            Fault(kind="drop", endpoint="get", times=30),
            Fault(kind="rate_limit", endpoint="get", retry_after=1, times=30),
        ]
        for fault in faults:
            sim.clear_faults()
            sim.add_fault(fault)
            try:
                await client.get(batch_id)
            except Exception as exc:
                texts += [str(exc), repr(exc), repr(exc.__cause__), str(exc.__context__)]
        sim.clear_faults()
        try:
            await client.get("bad")
        except InvalidInputError as exc:
            texts.append(str(exc))
        batch = await client.get(batch_id)
        texts += [repr(batch), str(batch)]
    texts.append(caplog.text)
    texts += [r.getMessage() for r in caplog.records]
    assert len(texts) > 20
    for text in texts:
        assert SECRET_KEY not in text


async def test_clone_keeps_every_setting_and_the_user_agent_carries_the_version(sim: Simulator) -> None:
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"code": "batch_not_found", "message": "no such batch"})

    clock = FakeClock()
    policy = RetryPolicy(max_attempts=2)
    original = BatchClient(SECRET_KEY, base_url="http://127.0.0.1:9/v1.3", timeout=3.5, retry=policy,
                           transport=httpx.MockTransport(handler), clock=clock, max_connections=3)  # fmt: skip
    async with original, original.clone() as twin:
        assert twin is not original and twin.clock is clock and twin.retry is policy
        assert twin.base_url == original.base_url and SECRET_KEY not in repr(twin)
        with pytest.raises(NotFoundError):
            await twin.get("0123456789abcdef01234567")  # through the same transport
    assert seen and seen[0].headers["user-agent"] == f"batch-widget/{bw.__version__}"
    assert bw.__version__ == importlib.metadata.version("batch-widget")
