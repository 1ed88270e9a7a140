"""The batch API simulator, over real loopback HTTP with plain httpx.

Written against the spec (``twelvelabs-batch-api.md``), never against the client: nothing
from ``batch_widget.client`` / ``batch_widget.models`` is imported here.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from batch_widget.simulator import (
    DEFAULT_EPOCH,
    Fault,
    ItemSpec,
    ManualClock,
    SimClock,
    Simulator,
    SpeedClock,
    status_burst,
)

KEY = "test-key"
HEX24 = re.compile(r"^[0-9a-f]{24}$")
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
COUNTERS = ("queued_items", "processing_items", "ready_items", "failed_items", "canceled_items")
DAY = 24 * 3600.0


# ---- helpers / fixtures -------------------------------------------------------------------------


def asset(i: int) -> str:
    return f"{0x69AA0000 + i:024x}"


def body(
    n: int = 3,
    mode: str = "general",
    defaults: dict[str, Any] | None = None,
    **item: Any,
) -> dict[str, Any]:
    if defaults is None:
        defaults = (
            {"prompt": {"input_text": "Summarise the video."}}
            if mode == "general"
            else {
                "response_format": {
                    "type": "segment_definitions",
                    "segment_definitions": [{"id": "scene", "description": "a scene"}],
                }
            }
        )
    return {
        "model_name": "pegasus1.5",
        "analysis_mode": mode,
        "defaults": defaults,
        "requests": [
            {"video": {"type": "asset_id", "asset_id": asset(i)}, "custom_id": f"item-{i}", **item}
            for i in range(n)
        ],
    }


def make_sim(**kw: Any) -> Simulator:
    opts: dict[str, Any] = {
        "api_key": KEY,
        "seed": 7,
        "clock": ManualClock(),
        "fail_rate": 0.0,
        "items_at_once": 2,
        "item_seconds": (100.0, 100.0),
        "startup_seconds": (10.0, 10.0),
    }
    opts.update(kw)
    return Simulator(**opts)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with make_sim() as s:
        yield s


@pytest.fixture
def client(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, headers={"x-api-key": KEY}, timeout=10) as c:
        yield c


def advance(sim: Simulator, seconds: float) -> None:
    assert isinstance(sim.clock, ManualClock)
    sim.clock.advance(seconds)


def create(c: httpx.Client, b: dict[str, Any] | None = None) -> dict[str, Any]:
    r = c.post("/analyze/batches", json=b or body())
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


def get(c: httpx.Client, bid: str) -> dict[str, Any]:
    r = c.get(f"/analyze/batches/{bid}")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    assert sum(data[k] for k in COUNTERS) == data["total_items"]
    return data


def results(c: httpx.Client, bid: str) -> list[dict[str, Any]]:
    r = c.get(f"/analyze/batches/{bid}/results")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/jsonl"
    return [json.loads(line) for line in r.text.splitlines()]


def err(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["x-api-version"] == "1.3"
    e = r.json()["error"]
    assert e["code"] == code, e
    msg: str = e["message"]
    return msg


# ---- create ---------------------------------------------------------------------------------------


def test_create_returns_201_pending_with_items(client: httpx.Client) -> None:
    b = body(3)
    del b["requests"][1]["custom_id"]
    r = client.post("/analyze/batches", json=b)
    assert r.status_code == 201
    assert r.headers["x-api-version"] == "1.3"
    assert r.headers["content-type"] == "application/json"
    d = r.json()
    assert HEX24.match(d["batch_id"])
    assert d["status"] == "pending"
    assert d["total_items"] == 3
    assert ISO_Z.match(d["created_at"]) and ISO_Z.match(d["expires_at"])
    assert d["created_at"] == "2026-11-28T09:00:00Z"
    assert d["expires_at"] == "2026-11-29T09:00:00Z"
    assert [i["custom_id"] for i in d["items"]] == ["item-0", None, "item-2"]
    assert all(HEX24.match(i["task_id"]) for i in d["items"])
    assert len({i["task_id"] for i in d["items"]}) == 3


@pytest.mark.parametrize(
    ("mutate", "status", "code", "field"),
    [
        (lambda b: b.pop("model_name"), 400, "parameter_not_provided", "model_name"),
        (lambda b: b.update(model_name="pegasus1.6"), 400, "parameter_invalid", "model_name"),
        (lambda b: b.update(analysis_mode="chat"), 400, "parameter_invalid", "analysis_mode"),
        (lambda b: b.update(requests=[]), 400, "parameter_invalid", "requests"),
        (lambda b: b.pop("requests"), 400, "parameter_not_provided", "requests"),
        (
            lambda b: b["requests"][1]["video"].update(type="url"),
            400, "parameter_invalid", "requests[1].video.type",
        ),
        (lambda b: b["requests"][2].pop("video"), 400, "parameter_not_provided",
         "requests[2].video"),
        (
            lambda b: b["requests"][1]["video"].update(asset_id="xyz"),
            400, "parameter_invalid", "requests[1].video.asset_id",
        ),
        (lambda b: b["requests"][2].update(custom_id="bad id!"), 400, "parameter_invalid",
         "requests[2].custom_id"),
        (lambda b: b["requests"][2].update(custom_id=""), 400, "parameter_invalid",
         "requests[2].custom_id"),
        (lambda b: b["requests"][2].update(custom_id="x" * 65), 400, "parameter_invalid",
         "requests[2].custom_id"),
        (lambda b: b["requests"][2].update(custom_id="item-0"), 400, "parameter_invalid",
         "requests[2].custom_id"),
        (lambda b: b.pop("defaults"), 400, "parameter_not_provided", "requests[0].prompt"),
        (lambda b: b["requests"][1].update(temperature=3), 400, "parameter_invalid",
         "requests[1].temperature"),
        (lambda b: b.update(extra=1), 400, "parameter_unknown", "extra"),
        (
            lambda b: b["defaults"].update(
                response_format={"type": "segment_definitions",
                                 "segment_definitions": [{"id": "a", "description": "b"}]}
            ),
            400, "parameter_invalid", "defaults.response_format.type",
        ),
        (lambda b: b["requests"][0].update(start_time=10, end_time=10.5), 400,
         "parameter_invalid", "requests[0].end_time"),
    ],
)
def test_create_validation_names_the_field(
    client: httpx.Client, mutate: Any, status: int, code: str, field: str
) -> None:
    b = body(3)
    mutate(b)
    msg = err(client.post("/analyze/batches", json=b), status, code)
    assert msg.startswith(field + ":"), msg


def test_create_validation_time_based_metadata(client: httpx.Client) -> None:
    b = body(2, mode="time_based_metadata")
    b["requests"][1]["prompt"] = {"input_text": "no prompts here"}
    msg = err(client.post("/analyze/batches", json=b), 400, "parameter_invalid")
    assert msg.startswith("requests[1].prompt:")
    b = body(2, mode="time_based_metadata", defaults={})
    msg = err(client.post("/analyze/batches", json=b), 400, "parameter_not_provided")
    assert msg.startswith("requests[0].response_format:")
    b = body(2, mode="time_based_metadata")
    b["requests"][0]["response_format"] = {"type": "json_schema", "json_schema": {}}
    msg = err(client.post("/analyze/batches", json=b), 400, "parameter_invalid")
    assert msg.startswith("requests[0].response_format.type:")
    b = body(1, mode="time_based_metadata")
    b["defaults"]["response_format"]["segment_definitions"][0]["fields"] = [
        {"name": "when", "type": "timestamp", "description": "no format"}
    ]
    msg = err(client.post("/analyze/batches", json=b), 400, "parameter_invalid")
    assert "segment_definitions[0].fields[0].format" in msg
    # the item's own response_format satisfies the mode (no defaults at all)
    b = body(1, mode="time_based_metadata", defaults={})
    b["requests"][0]["response_format"] = {
        "type": "segment_definitions",
        "segment_definitions": [{"id": "x", "description": "y"}],
    }
    assert client.post("/analyze/batches", json=b).status_code == 201


def test_create_1001_requests_rejected(client: httpx.Client) -> None:
    msg = err(client.post("/analyze/batches", json=body(1001)), 400, "parameter_invalid")
    assert msg.startswith("requests:")


def test_malformed_json_body(client: httpx.Client) -> None:
    r = client.post(
        "/analyze/batches", content=b'{"model_name": ', headers={"content-type": "application/json"}
    )
    err(r, 400, "parameter_invalid")
    # the connection is still usable afterwards
    assert client.get("/analyze/batches").status_code == 200


def test_unknown_asset_404_and_unready_409() -> None:
    with make_sim(missing_assets=[asset(1)], unready_assets=[asset(2)]) as s, httpx.Client(
        base_url=s.base_url, headers={"x-api-key": KEY}
    ) as c:
        msg = err(c.post("/analyze/batches", json=body(2)), 404, "resource_not_exist")
        assert "requests[1].video.asset_id" in msg
        b = body(3)
        b["requests"][1]["video"]["asset_id"] = asset(5)
        msg = err(c.post("/analyze/batches", json=b), 409, "asset_not_ready")
        assert "requests[2].video.asset_id" in msg
        assert s.engine.batch_ids() == []


# ---- auth, routing, headers ------------------------------------------------------------------------


def test_auth_missing_and_wrong_key(sim: Simulator) -> None:
    with httpx.Client(base_url=sim.base_url) as c:
        err(c.get("/analyze/batches"), 401, "unauthorized")
        err(c.get("/analyze/batches", headers={"x-api-key": "nope"}), 401, "api_key_invalid")
        err(c.post("/analyze/batches", json=body()), 401, "unauthorized")
    assert sim.engine.batch_ids() == []


def test_unknown_route_404_and_wrong_method_405(client: httpx.Client) -> None:
    err(client.get("/analyze/nothing"), 404, "resource_not_exist")
    r = client.put("/analyze/batches")
    err(r, 405, "method_not_allowed")
    assert "POST" in r.headers["allow"]
    err(client.post(f"/analyze/batches/{'a' * 24}"), 405, "method_not_allowed")


def test_get_unknown_404_and_malformed_400(client: httpx.Client) -> None:
    err(client.get(f"/analyze/batches/{'a' * 24}"), 404, "resource_not_exist")
    err(client.get("/analyze/batches/not-an-id"), 400, "parameter_invalid")
    err(client.get(f"/analyze/batches/{'b' * 24}/results"), 404, "resource_not_exist")
    err(client.post(f"/analyze/batches/{'c' * 24}/cancel"), 404, "resource_not_exist")
    err(client.delete(f"/analyze/batches/{'d' * 24}"), 404, "resource_not_exist")


def test_other_keys_batches_are_invisible() -> None:
    with make_sim(extra_api_keys=["other"]) as s:
        with httpx.Client(base_url=s.base_url, headers={"x-api-key": KEY}) as c:
            bid = create(c)["batch_id"]
        with httpx.Client(base_url=s.base_url, headers={"x-api-key": "other"}) as o:
            err(o.get(f"/analyze/batches/{bid}"), 404, "resource_not_exist")
            assert o.get("/analyze/batches").json()["page_info"]["total_results"] == 0


# ---- lifecycle on a manual clock ---------------------------------------------------------------------


def test_lifecycle_pending_processing_completed(sim: Simulator, client: httpx.Client) -> None:
    created = create(client, body(5))
    bid = created["batch_id"]
    d = get(client, bid)
    assert d["status"] == "pending" and d["queued_items"] == 5
    assert d["analysis_mode"] == "general" and d["model_name"] == "pegasus1.5"
    assert not {"completed_at", "canceled_at", "expired_at"} & set(d)
    advance(sim, 10)  # startup is exactly 10 s
    d = get(client, bid)
    assert d["status"] == "processing"
    assert (d["processing_items"], d["queued_items"]) == (2, 3)  # two slots
    advance(sim, 100)
    d = get(client, bid)
    assert (d["ready_items"], d["processing_items"], d["queued_items"]) == (2, 2, 1)
    advance(sim, 200)
    d = get(client, bid)
    assert d["status"] == "completed" and d["ready_items"] == 5
    assert d["completed_at"] == "2026-11-28T09:05:10Z"  # 10 + 3 rounds of 100 s
    assert not {"canceled_at", "expired_at"} & set(d)
    assert sim.engine.batch_state(bid) == d


def test_results_mid_run_and_after_completion(sim: Simulator, client: httpx.Client) -> None:
    created = create(client, body(5))
    bid = created["batch_id"]
    lines = results(client, bid)
    assert [line["status"] for line in lines] == ["queued"] * 5
    advance(sim, 150)
    lines = results(client, bid)
    assert [line["status"] for line in lines] == ["ready", "ready", "processing", "processing",
                                                 "queued"]
    for line in lines[2:]:
        assert set(line) == {"task_id", "custom_id", "status"}
    advance(sim, 1000)
    lines = results(client, bid)
    assert [(x["task_id"], x["custom_id"]) for x in lines] == [
        (i["task_id"], i["custom_id"]) for i in created["items"]
    ]
    for line in lines:
        assert line["status"] == "ready"
        data = line["data"]
        assert isinstance(data["data"], str) and data["data"]
        assert data["finish_reason"] == "stop"
        assert data["usage"]["output_tokens"] > 0 and data["usage"]["input_tokens"] > 0
        assert isinstance(data["generation_id"], str)
    # stable across reads
    assert results(client, bid) == lines


def test_cancel_processing_batch(sim: Simulator, client: httpx.Client) -> None:
    bid = create(client, body(5))["batch_id"]
    advance(sim, 60)
    r = client.post(f"/analyze/batches/{bid}/cancel")
    assert r.status_code == 202
    assert r.json()["status"] == "processing"  # as it was at request time
    d = get(client, bid)
    assert d["status"] == "canceling"
    assert (d["processing_items"], d["canceled_items"], d["queued_items"]) == (2, 3, 0)
    assert "canceled_at" not in d
    # a second cancel while canceling is accepted again
    r2 = client.post(f"/analyze/batches/{bid}/cancel")
    assert r2.status_code == 202 and r2.json()["status"] == "canceling"
    err(client.delete(f"/analyze/batches/{bid}"), 409, "batch_not_terminal")
    advance(sim, 50)  # the two processing items end at t=110
    d = get(client, bid)
    assert d["status"] == "canceled"
    assert (d["ready_items"], d["canceled_items"]) == (2, 3)
    assert d["canceled_at"] == "2026-11-28T09:01:50Z"
    assert [x["status"] for x in results(client, bid)] == ["ready"] * 2 + ["canceled"] * 3
    err(client.post(f"/analyze/batches/{bid}/cancel"), 409, "batch_canceled")


def test_cancel_pending_is_canceled_at_once(sim: Simulator, client: httpx.Client) -> None:
    bid = create(client, body(3))["batch_id"]
    r = client.post(f"/analyze/batches/{bid}/cancel")
    assert r.status_code == 202 and r.json()["status"] == "pending"
    d = get(client, bid)
    assert d["status"] == "canceled" and d["canceled_items"] == 3
    assert d["canceled_at"] == d["created_at"]


def test_cancel_completed_409(sim: Simulator, client: httpx.Client) -> None:
    bid = create(client, body(1))["batch_id"]
    advance(sim, 500)
    err(client.post(f"/analyze/batches/{bid}/cancel"), 409, "batch_completed")


def test_expiry_at_24_hours() -> None:
    with make_sim(items_at_once=1, item_seconds=(10_000.0, 10_000.0)) as s, httpx.Client(
        base_url=s.base_url, headers={"x-api-key": KEY}
    ) as c:
        bid = create(c, body(12))["batch_id"]
        advance(s, DAY - 1)
        d = get(c, bid)
        assert d["status"] == "processing" and d["ready_items"] == 8
        advance(s, 1)
        d = get(c, bid)
        assert d["status"] == "expired"
        assert d["expired_at"] == d["expires_at"] == "2026-11-29T09:00:00Z"
        assert (d["ready_items"], d["failed_items"], d["canceled_items"]) == (8, 1, 3)
        assert not {"completed_at", "canceled_at"} & set(d)
        lines = results(c, bid)
        failed = [x for x in lines if x["status"] == "failed"]
        assert failed[0]["error"]["code"] == "batch_processing_timeout"
        assert all("error" not in x for x in lines if x["status"] == "canceled")
        err(c.post(f"/analyze/batches/{bid}/cancel"), 409, "batch_expired")
        assert c.delete(f"/analyze/batches/{bid}").status_code == 204


def test_canceling_batch_can_expire() -> None:
    with make_sim(items_at_once=1, item_seconds=(DAY * 2, DAY * 2)) as s, httpx.Client(
        base_url=s.base_url, headers={"x-api-key": KEY}
    ) as c:
        bid = create(c, body(2))["batch_id"]
        advance(s, 100)
        assert c.post(f"/analyze/batches/{bid}/cancel").status_code == 202
        assert get(c, bid)["status"] == "canceling"
        advance(s, DAY)
        d = get(c, bid)
        assert d["status"] == "expired"
        assert (d["failed_items"], d["canceled_items"]) == (1, 1)


def test_delete(sim: Simulator, client: httpx.Client) -> None:
    bid = create(client, body(2))["batch_id"]
    err(client.delete(f"/analyze/batches/{bid}"), 409, "batch_not_terminal")
    advance(sim, 20)
    err(client.delete(f"/analyze/batches/{bid}"), 409, "batch_not_terminal")
    advance(sim, 200)
    r = client.delete(f"/analyze/batches/{bid}")
    assert r.status_code == 204 and r.content == b""
    assert r.headers["x-api-version"] == "1.3" and "content-type" in r.headers
    err(client.get(f"/analyze/batches/{bid}"), 404, "resource_not_exist")
    err(client.delete(f"/analyze/batches/{bid}"), 404, "resource_not_exist")
    err(client.get(f"/analyze/batches/{bid}/results"), 404, "resource_not_exist")


def test_sixth_active_batch_is_429(sim: Simulator, client: httpx.Client) -> None:
    ids = [create(client, body(1))["batch_id"] for _ in range(5)]
    r = client.post("/analyze/batches", json=body(1))
    msg = err(r, 429, "too_many_requests")
    assert int(r.headers["retry-after"]) > 0
    assert "5" in msg
    assert sim.engine.active_count(KEY) == 5 and sim.stats["active_batches"] == 5
    # a canceling batch still counts; a canceled one does not
    assert client.post(f"/analyze/batches/{ids[0]}/cancel").status_code == 202
    assert get(client, ids[0])["status"] == "canceled"
    create(client, body(1))
    err(client.post("/analyze/batches", json=body(1)), 429, "too_many_requests")
    advance(sim, 1000)  # everything completes
    create(client, body(1))


def test_active_limit_is_per_key() -> None:
    with make_sim(extra_api_keys=["k2"], max_active=2) as s:
        for _ in range(2):
            s.engine.create(KEY, body(1))  # pre-create active batches directly
        with httpx.Client(base_url=s.base_url, headers={"x-api-key": KEY}) as c:
            err(c.post("/analyze/batches", json=body(1)), 429, "too_many_requests")
        with httpx.Client(base_url=s.base_url, headers={"x-api-key": "k2"}) as c2:
            create(c2, body(1))


# ---- list -----------------------------------------------------------------------------------------


def test_list_pagination_and_filters() -> None:
    with make_sim(max_active=50) as s, httpx.Client(
        base_url=s.base_url, headers={"x-api-key": KEY}
    ) as c:
        ids = []
        for i in range(7):
            mode = "time_based_metadata" if i % 3 == 0 else "general"
            ids.append(create(c, body(1, mode=mode))["batch_id"])
            advance(s, 1)
        c.post(f"/analyze/batches/{ids[1]}/cancel")
        r = c.get("/analyze/batches", params={"page_limit": 3})
        assert r.status_code == 200
        d = r.json()
        assert d["page_info"] == {"limit_per_page": 3, "page": 1, "total_page": 3,
                                  "total_results": 7}
        assert [x["batch_id"] for x in d["data"]] == ids[::-1][:3]  # newest first
        assert set(d["data"][0]) >= {"batch_id", "status", "total_items", *COUNTERS}
        seen = []
        for page in (1, 2, 3):
            seen += [x["batch_id"] for x in c.get(
                "/analyze/batches", params={"page_limit": 3, "page": page}).json()["data"]]
        assert seen == ids[::-1]
        beyond = c.get("/analyze/batches", params={"page_limit": 3, "page": 4}).json()
        assert beyond["data"] == [] and beyond["page_info"]["page"] == 4
        default = c.get("/analyze/batches").json()
        assert default["page_info"]["limit_per_page"] == 10 and len(default["data"]) == 7
        r = c.get("/analyze/batches?status=canceled&status=pending")
        assert {x["status"] for x in r.json()["data"]} == {"canceled", "pending"}
        assert r.json()["page_info"]["total_results"] == 7
        r = c.get("/analyze/batches", params={"status": "canceled"})
        assert [x["batch_id"] for x in r.json()["data"]] == [ids[1]]
        r = c.get("/analyze/batches", params={"analysis_mode": "time_based_metadata"})
        assert {x["batch_id"] for x in r.json()["data"]} == {ids[0], ids[3], ids[6]}
        r = c.get("/analyze/batches?analysis_mode=general&analysis_mode=time_based_metadata")
        assert r.json()["page_info"]["total_results"] == 7
        err(c.get("/analyze/batches", params={"page_limit": 51}), 400, "parameter_invalid")
        err(c.get("/analyze/batches", params={"page": 0}), 400, "parameter_invalid")
        err(c.get("/analyze/batches", params={"page": "x"}), 400, "parameter_invalid")
        err(c.get("/analyze/batches", params={"status": "paused"}), 400, "parameter_invalid")
        err(c.get("/analyze/batches", params={"analysis_mode": "x"}), 400, "parameter_invalid")
        assert c.get("/analyze/batches", params={"page_limit": 50}).status_code == 200


# ---- outcomes, determinism, outputs ---------------------------------------------------------------


def test_window_over_two_hours_fails_the_item_only(sim: Simulator, client: httpx.Client) -> None:
    b = body(3)
    b["requests"][1].update(start_time=0, end_time=7201)
    bid = create(client, b)["batch_id"]
    d = get(client, bid)
    assert d["status"] == "pending" and d["failed_items"] == 1
    advance(sim, 1000)
    lines = results(client, bid)
    assert [x["status"] for x in lines] == ["ready", "failed", "ready"]
    assert lines[1]["error"]["code"] == "video_duration_too_long"
    assert lines[1]["error"]["message"]


def test_forced_outcomes_mapping_and_callable() -> None:
    outcomes = {"item-0": "failed", asset(1): "failed:custom_code", "item-2": "failed:"}
    with make_sim(outcomes=outcomes, fail_rate=1.0) as s, httpx.Client(
        base_url=s.base_url, headers={"x-api-key": KEY}
    ) as c:
        bid = create(c, body(4))["batch_id"]
        advance(s, 1000)
        lines = results(c, bid)
        assert [x["status"] for x in lines] == ["failed"] * 4
        assert lines[0]["error"]["code"] == "asset_unavailable"
        assert lines[1]["error"]["code"] == "custom_code"
        assert "code" not in lines[2]["error"] and lines[2]["error"]["message"]
        assert lines[3]["error"]["code"] == "asset_unavailable"  # fail_rate=1
        assert get(c, bid)["failed_items"] == 4

    def decide(spec: ItemSpec) -> str | None:
        return "ready" if spec.index % 2 else None

    with make_sim(outcomes=decide, fail_rate=1.0) as s, httpx.Client(
        base_url=s.base_url, headers={"x-api-key": KEY}
    ) as c:
        bid = create(c, body(4))["batch_id"]
        advance(s, 1000)
        assert [x["status"] for x in results(c, bid)] == ["failed", "ready"] * 2


def _run(seed: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with make_sim(seed=seed, fail_rate=0.3, item_seconds=(60.0, 300.0)) as s, httpx.Client(
        base_url=s.base_url, headers={"x-api-key": KEY}
    ) as c:
        created = create(c, body(20))
        advance(s, 700)
        return get(c, created["batch_id"]), results(c, created["batch_id"])


def test_same_seed_same_run() -> None:
    a, b, other = _run(3), _run(3), _run(4)
    assert a == b
    assert a[0]["batch_id"] != other[0]["batch_id"]
    assert a[1] != other[1]
    statuses = {x["status"] for x in a[1]}
    assert "failed" in statuses and "ready" in statuses


def test_json_schema_output_follows_schema(sim: Simulator, client: httpx.Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "topics": {"type": "array", "items": {"type": "string"}},
            "score": {"type": "integer", "minimum": 1, "maximum": 5},
            "ratio": {"type": "number"},
            "has_logo": {"type": "boolean"},
            "speaker": {"type": "object", "properties": {"name": {"type": "string"},
                                                          "age": {"type": "integer"}}},
            "mood": {"type": "string", "enum": ["calm", "tense"]},
        },
        "required": ["title"],
    }
    b = body(3, defaults={"prompt": {"input_text": "x"},
                          "response_format": {"type": "json_schema", "json_schema": schema}})
    bid = create(client, b)["batch_id"]
    advance(sim, 1000)
    for line in results(client, bid):
        out = json.loads(line["data"]["data"])
        assert list(out) == list(schema["properties"])  # declaration order
        assert isinstance(out["title"], str)
        assert all(isinstance(t, str) for t in out["topics"])
        assert isinstance(out["score"], int) and 1 <= out["score"] <= 5
        assert isinstance(out["ratio"], float)
        assert isinstance(out["has_logo"], bool)
        assert set(out["speaker"]) == {"name", "age"}
        assert out["mood"] in ("calm", "tense")


def _tbm_body(fmt: str, n: int = 2, **item: Any) -> dict[str, Any]:
    return body(n, mode="time_based_metadata", defaults={
        "response_format": {
            "type": "segment_definitions",
            "segment_time_format": fmt,
            "segment_definitions": [
                {"id": "goal", "description": "a goal", "fields": [
                    {"name": "team", "type": "string", "description": "t", "enum": ["home", "away"]},
                    {"name": "minute", "type": "integer", "description": "m"},
                    {"name": "replay", "type": "boolean", "description": "r"},
                    {"name": "xg", "type": "number", "description": "x"},
                    {"name": "tags", "type": "array", "description": "t", "items": {"type": "string"}},
                    {"name": "at", "type": "timestamp", "description": "a", "format": "hh:mm:ss"},
                ]},
                {"id": "replay", "description": "a replay"},
            ],
        }
    }, **item)


def _secs(v: Any) -> float:
    if isinstance(v, (int, float)):
        return float(v)
    h, m, s = v.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


@pytest.mark.parametrize("fmt", ["seconds", "hh:mm:ss", "hh:mm:ss.fff"])
def test_time_based_metadata_segments(sim: Simulator, client: httpx.Client, fmt: str) -> None:
    bid = create(client, _tbm_body(fmt, start_time=30, end_time=600))["batch_id"]
    advance(sim, 1000)
    pattern = {"hh:mm:ss": r"^\d\d:\d\d:\d\d$", "hh:mm:ss.fff": r"^\d\d:\d\d:\d\d\.\d{3}$"}
    for line in results(client, bid):
        assert line["data"]["finish_reason"] == "stop"
        out = json.loads(line["data"]["data"])
        assert list(out) == ["goal", "replay"]
        for segs in out.values():
            assert segs
            last = 30.0
            for seg in segs:
                if fmt == "seconds":
                    assert isinstance(seg["start_time"], (int, float))
                else:
                    assert re.match(pattern[fmt], seg["start_time"])
                    assert re.match(pattern[fmt], seg["end_time"])
                start, end = _secs(seg["start_time"]), _secs(seg["end_time"])
                assert last <= start < end <= 600
                last = end
        meta = out["goal"][0]["metadata"]
        assert list(meta) == ["team", "minute", "replay", "xg", "tags", "at"]
        assert meta["team"] in ("home", "away")
        assert isinstance(meta["minute"], int) and isinstance(meta["replay"], bool)
        assert isinstance(meta["xg"], float) and all(isinstance(t, str) for t in meta["tags"])
        assert re.match(r"^\d\d:\d\d:\d\d$", meta["at"])
        assert out["replay"][0]["metadata"] == {}


def test_output_knobs_make_big_items() -> None:
    with make_sim(output_scale=60.0, segments_per_definition=50) as s, httpx.Client(
        base_url=s.base_url, headers={"x-api-key": KEY}
    ) as c:
        g = create(c, body(1))["batch_id"]
        t = create(c, _tbm_body("seconds", n=1))["batch_id"]
        advance(s, 1000)
        text = results(c, g)[0]["data"]["data"]
        assert len(text) >= 10_000
        segs = json.loads(results(c, t)[0]["data"]["data"])
        assert len(segs["goal"]) == 50 and len(segs["replay"]) == 50


def test_length_finish_reason_truncates_json() -> None:
    with make_sim(length_rate=1.0) as s, httpx.Client(
        base_url=s.base_url, headers={"x-api-key": KEY}
    ) as c:
        schema = {"type": "object", "properties": {"a": {"type": "string"}}}
        b = body(2, defaults={"prompt": {"input_text": "x"},
                              "response_format": {"type": "json_schema", "json_schema": schema}})
        bid = create(c, b)["batch_id"]
        advance(s, 1000)
        for line in results(c, bid):
            assert line["status"] == "ready"
            assert line["data"]["finish_reason"] == "length"
            with pytest.raises(json.JSONDecodeError):
                json.loads(line["data"]["data"])


def test_thousand_items_streamed_in_chunks() -> None:
    with make_sim(items_at_once=50, max_active=5) as s, httpx.Client(
        base_url=s.base_url, headers={"x-api-key": KEY}
    ) as c:
        created = create(c, body(1000))
        assert created["total_items"] == 1000
        advance(s, 1300)  # 10 + 20 rounds of 100 s would be 2010: still mid-run
        d = get(c, created["batch_id"])
        assert d["status"] == "processing" and d["ready_items"] == 600
        with c.stream("GET", f"/analyze/batches/{created['batch_id']}/results") as r:
            assert r.status_code == 200
            assert r.headers["transfer-encoding"] == "chunked"
            assert "content-length" not in r.headers
            pieces = list(r.iter_raw())
        assert len(pieces) > 1
        lines = b"".join(pieces).decode().splitlines()
        assert len(lines) == 1000
        parsed = [json.loads(x) for x in lines]
        assert [p["task_id"] for p in parsed] == [i["task_id"] for i in created["items"]]
        counts = {st: sum(p["status"] == st for p in parsed) for st in ("ready", "processing")}
        assert counts == {"ready": 600, "processing": 50}


# ---- faults ---------------------------------------------------------------------------------------


def test_status_burst_then_recovers(sim: Simulator, client: httpx.Client) -> None:
    bid = create(client, body(1))["batch_id"]
    sim.add_fault(status_burst(503, times=2, endpoint="get"))
    for _ in range(2):
        err(client.get(f"/analyze/batches/{bid}"), 503, "service_unavailable")
    assert client.get("/analyze/batches").status_code == 200  # other endpoints untouched
    assert client.get(f"/analyze/batches/{bid}").status_code == 200
    sim.add_fault(kind="status", status=504, endpoint="any")
    err(client.get("/analyze/batches"), 504, "request_canceled_or_timed_out")
    assert sim.stats["faults_fired"] == 3


@pytest.mark.parametrize("status", [500, 502])
def test_status_fault_codes(sim: Simulator, client: httpx.Client, status: int) -> None:
    sim.add_fault(f"list:status={status}")
    r = client.get("/analyze/batches")
    assert r.status_code == status and r.json()["error"]["message"]


def test_fault_forever_until_cleared_and_batch_filter(
    sim: Simulator, client: httpx.Client
) -> None:
    a = create(client, body(1))["batch_id"]
    b = create(client, body(1))["batch_id"]
    sim.add_fault(Fault(kind="status", status=500, endpoint="get", batch_id=a, times=None))
    for _ in range(5):
        assert client.get(f"/analyze/batches/{a}").status_code == 500
        assert client.get(f"/analyze/batches/{b}").status_code == 200
    sim.clear_faults()
    assert client.get(f"/analyze/batches/{a}").status_code == 200


def test_fault_after_skips_first_requests(sim: Simulator, client: httpx.Client) -> None:
    sim.add_fault("list:status=503:after=2:times=1")
    codes = [client.get("/analyze/batches").status_code for _ in range(4)]
    assert codes == [200, 200, 503, 200]


def test_proxy_502_html(sim: Simulator, client: httpx.Client) -> None:
    sim.add_fault("list:proxy_502")
    r = client.get("/analyze/batches")
    assert r.status_code == 502
    assert r.headers["content-type"] == "text/html"
    assert r.text.startswith("<html>") and "nginx" in r.text
    with pytest.raises(json.JSONDecodeError):
        r.json()


def test_rate_limit_seconds_and_http_date(sim: Simulator, client: httpx.Client) -> None:
    sim.add_fault("create:rate_limit=7")
    r = client.post("/analyze/batches", json=body(1))
    err(r, 429, "too_many_requests")
    assert r.headers["retry-after"] == "7"
    sim.add_fault(Fault(kind="rate_limit", endpoint="create", retry_after=30, http_date=True))
    r = client.post("/analyze/batches", json=body(1))
    assert r.status_code == 429
    assert parsedate_to_datetime(r.headers["retry-after"]).tzinfo is not None
    assert sim.engine.batch_ids() == []  # nothing was created
    assert client.post("/analyze/batches", json=body(1)).status_code == 201


def test_empty_body_429_and_flat_error(sim: Simulator, client: httpx.Client) -> None:
    sim.add_fault("get:empty_body_429=3")
    sim.add_fault("list:flat_error=503:code=busy:message=try later")
    r = client.get(f"/analyze/batches/{'a' * 24}")
    assert r.status_code == 429 and r.content == b"" and r.headers["retry-after"] == "3"
    r = client.get("/analyze/batches")
    assert r.status_code == 503
    assert r.json() == {"code": "busy", "message": "try later"}


def test_slow_fault_hits_client_read_timeout(sim: Simulator) -> None:
    sim.add_fault("list:slow=2")
    with httpx.Client(base_url=sim.base_url, headers={"x-api-key": KEY},
                      timeout=httpx.Timeout(5, read=0.2)) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.get("/analyze/batches")
        assert c.get("/analyze/batches").status_code == 200


def test_drop_connection_without_response(sim: Simulator, client: httpx.Client) -> None:
    sim.add_fault("list:drop")
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/analyze/batches")
    assert client.get("/analyze/batches").status_code == 200


def test_drop_mid_response(sim: Simulator, client: httpx.Client) -> None:
    bid = create(client, body(2))["batch_id"]
    sim.add_fault("get:drop_mid_response")
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"/analyze/batches/{bid}")
    sim.add_fault("results:drop_mid_response:bytes=10")
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"/analyze/batches/{bid}/results")
    assert get(client, bid)["batch_id"] == bid


def test_cut_stream(sim: Simulator, client: httpx.Client) -> None:
    bid = create(client, body(100))["batch_id"]
    sim.add_fault("results:cut_stream=40")
    got: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError), client.stream(
        "GET", f"/analyze/batches/{bid}/results"
    ) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            got.append(line)
    assert len(got) == 40 and all(json.loads(x)["status"] == "queued" for x in got)
    assert len(results(client, bid)) == 100


def test_malformed_line(sim: Simulator, client: httpx.Client) -> None:
    bid = create(client, body(5))["batch_id"]
    sim.add_fault("results:malformed_line=2:line=not json")
    lines = client.get(f"/analyze/batches/{bid}/results").text.splitlines()
    assert len(lines) == 6 and lines[2] == "not json"
    sim.add_fault(Fault(kind="malformed_line", endpoint="results", lines=0, replace=True))
    lines = client.get(f"/analyze/batches/{bid}/results").text.splitlines()
    assert len(lines) == 5 and lines[0] == '{"task_id": "abc", "status": '
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[0])


def test_patch_batch(sim: Simulator, client: httpx.Client) -> None:
    bid = create(client, body(2))["batch_id"]
    sim.add_fault("any:patch_batch:set.status=paused:set.ready_items=99:times=forever")
    d = client.get(f"/analyze/batches/{bid}").json()
    assert d["status"] == "paused" and d["ready_items"] == 99
    listed = client.get("/analyze/batches").json()["data"]
    assert listed[0]["status"] == "paused"
    sim.clear_faults()
    assert get(client, bid)["status"] == "pending"


def test_fault_parse_forms() -> None:
    f = Fault.parse("get:status=503:times=5")
    assert (f.kind, f.endpoint, f.status, f.times) == ("status", "get", 503, 5)
    f = Fault.parse('{"endpoint": "results", "kind": "cut_stream", "lines": 3, "times": "forever"}')
    assert (f.kind, f.lines, f.times) == ("cut_stream", 3, None)
    f = Fault.parse("results:malformed_line=4:line={\"a\": 1:b}")
    assert f.line == '{"a": 1:b}' and f.lines == 4
    f = Fault.parse("create:rate_limit=2.5:http_date")
    assert f.retry_after == 2.5 and f.http_date
    f = Fault.coerce({"kind": "drop", "endpoint": "cancel", "batch_id": "A" * 24})
    assert f.batch_id == "a" * 24
    for bad in ("get:explode", "nowhere:status=503", "get:status=503:bogus=1"):
        with pytest.raises(ValueError):
            Fault.parse(bad)


def test_control_endpoints(sim: Simulator, client: httpx.Client) -> None:
    base = sim.url
    with httpx.Client(base_url=base, headers={"x-api-key": KEY}) as ctl:
        assert ctl.get("/_sim/stats", headers={"x-api-key": "bad"}).status_code == 401
        r = ctl.post("/_sim/faults", json={"endpoint": "list", "kind": "status", "status": 502})
        assert r.status_code == 201 and r.json()["faults"][0]["status"] == 502
        r = ctl.post("/_sim/faults", json={"spec": "get:status=500:times=forever"})
        assert r.status_code == 201
        assert len(ctl.get("/_sim/faults").json()["faults"]) == 2
        assert client.get("/analyze/batches").status_code == 502
        assert ctl.delete("/_sim/faults").json() == {"cleared": 2}
        assert client.get("/analyze/batches").status_code == 200
        err(ctl.post("/_sim/faults", json={"kind": "nope"}), 400, "parameter_invalid")

        bid = create(client, body(1))["batch_id"]
        r = ctl.post("/_sim/clock", json={"advance": 1000})
        assert r.status_code == 200 and r.json()["now"] == DEFAULT_EPOCH + 1000
        assert get(client, bid)["status"] == "completed"
        err(ctl.post("/_sim/clock", json={"speed": 5}), 400, "parameter_invalid")

        stats = ctl.get("/_sim/stats").json()
        assert stats["requests"]["create"] == 1 and stats["requests"]["list"] == 2
        assert stats["requests"]["get"] == 1
        assert stats["active_batches"] == 0 and stats["batches"] == 1
        assert stats["connections"] >= 2


def test_speed_clock_and_control_speed() -> None:
    clock = SimClock(speed=0.0, start=DEFAULT_EPOCH)
    assert isinstance(clock, SpeedClock) and clock.now() == DEFAULT_EPOCH
    with Simulator(api_key=KEY, clock=clock) as s, httpx.Client(
        base_url=s.url, headers={"x-api-key": KEY}
    ) as c:
        assert c.post("/_sim/clock", json={"advance": 60}).json()["now"] == DEFAULT_EPOCH + 60
        r = c.post("/_sim/clock", json={"speed": 1000.0}).json()
        assert r["speed"] == 1000.0
        assert clock.speed == 1000.0
        assert clock.now() >= DEFAULT_EPOCH + 60


# ---- server ---------------------------------------------------------------------------------------


def test_stop_and_start_on_same_port(sim: Simulator, client: httpx.Client) -> None:
    bid = create(client, body(1))["batch_id"]
    port = sim.port
    sim.stop()
    assert not sim.running
    with pytest.raises(httpx.ConnectError):
        client.get(f"/analyze/batches/{bid}")
    sim.start()
    assert sim.port == port and sim.running
    assert get(client, bid)["batch_id"] == bid  # state survives a restart


def test_keep_alive_reuses_connections(sim: Simulator, client: httpx.Client) -> None:
    sim.reset_stats()
    for _ in range(20):
        assert client.get("/analyze/batches").status_code == 200
    stats = sim.stats
    assert stats["requests_total"] == 20
    assert stats["connections"] < stats["requests_total"]
    assert stats["connections"] == 1


async def test_hundred_concurrent_clients() -> None:
    with make_sim(max_active=5) as s:
        async with httpx.AsyncClient(base_url=s.base_url, headers={"x-api-key": KEY}) as c0:
            r = await c0.post("/analyze/batches", json=body(50))
            bid = r.json()["batch_id"]
        s.reset_stats()

        async def one(i: int) -> list[int]:
            # verify=False: plain http anyway, and it skips loading the CA bundle per client
            async with httpx.AsyncClient(
                base_url=s.base_url, headers={"x-api-key": KEY}, timeout=30, verify=False
            ) as c:
                codes = []
                for _ in range(3):
                    codes.append((await c.get(f"/analyze/batches/{bid}")).status_code)
                codes.append((await c.get(f"/analyze/batches/{bid}/results")).status_code)
                return codes

        out = await asyncio.gather(*(one(i) for i in range(100)))
        assert all(codes == [200, 200, 200, 200] for codes in out)
        stats = s.stats
        assert stats["requests_total"] == 400
        assert stats["connections"] == 100


def test_close_leaves_no_threads() -> None:
    before = {t.ident for t in threading.enumerate()}
    s = make_sim().start()
    with httpx.Client(base_url=s.base_url, headers={"x-api-key": KEY}) as c:
        assert c.get("/analyze/batches").status_code == 200
        s.close()  # the client still holds a keep-alive connection: the server closes it
    leftover = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert leftover == []


def test_cli_prints_url_and_serves() -> None:
    env = {**os.environ, "TWELVELABS_API_KEY": "cli-key", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "batch_widget.simulator", "--port", "0", "--seed", "3",
         "--speed", "60", "--fault", "list:status=503:times=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert re.match(r"^http://127\.0\.0\.1:\d+/v1\.3$", url), url
        with httpx.Client(base_url=url, headers={"x-api-key": "cli-key"}, timeout=10) as c:
            assert c.get("/analyze/batches").status_code == 503  # the --fault
            assert c.get("/analyze/batches").status_code == 200
            assert c.post("/analyze/batches", json=body(2)).status_code == 201
            assert c.get("/analyze/batches", headers={"x-api-key": "sim-key"}).status_code == 401
    finally:
        proc.terminate()
        rc = proc.wait(timeout=10)
    assert rc == 0
