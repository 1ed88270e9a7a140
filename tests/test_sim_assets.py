"""The simulator's assets endpoints, over raw HTTP (no client code): the spec's shapes and rules."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from batch_widget.simulator import ManualClock, Simulator

KEY = "k-assets"
PROMPT = {"prompt": {"input_text": "Summarise."}}


@pytest.fixture
def asim() -> Iterator[Simulator]:
    with Simulator(
        api_key=KEY, seed=3, clock=ManualClock(), chunk_size=1000, direct_upload_limit=4000,
        asset_processing_seconds=(10, 20), failed_uploads=["broken"], asset_creates_per_minute=3,
    ) as s:
        yield s


@pytest.fixture
def http(asim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=asim.base_url + "/", headers={"x-api-key": KEY}) as c:
        yield c


def direct(http: httpx.Client, name: str, size: int = 100) -> httpx.Response:
    return http.post("assets", data={"method": "direct"}, files={"file": (name, b"v" * size, "video/mp4")})


def test_direct_upload_is_processing_then_ready_with_a_filename_seeded_duration(
    asim: Simulator, http: httpx.Client
) -> None:
    r = direct(http, "ep-1.mp4")
    assert r.status_code == 201
    a = r.json()
    assert a["status"] == "processing" and a["method"] == "direct" and "duration" not in a
    asim.clock.advance(21)
    got = http.get(f"assets/{a['_id']}").json()
    assert got["status"] == "ready" and got["size"] == 100
    with (
        Simulator(api_key=KEY, seed=3, clock=ManualClock(), asset_processing_seconds=(1, 1)) as other,
        httpx.Client(base_url=other.base_url + "/", headers={"x-api-key": KEY}) as h2,
    ):
        b = direct(h2, "ep-1.mp4").json()
        other.clock.advance(2)
        assert h2.get(f"assets/{b['_id']}").json()["duration"] == got["duration"]


def test_a_failed_asset_carries_a_message_and_no_code(asim: Simulator, http: httpx.Client) -> None:
    a = direct(http, "broken-file.mp4").json()
    asim.clock.advance(21)
    got = http.get(f"assets/{a['_id']}").json()
    assert got["status"] == "failed" and set(got["error"]) == {"message"}


def test_over_the_direct_limit_and_urlencoded_forms_are_refused_with_flat_bodies(http: httpx.Client) -> None:
    r = direct(http, "big.mp4", 4001)
    assert r.status_code == 400 and r.json()["code"] == "parameter_invalid" and "error" not in r.json()
    r = http.post("assets", data={"method": "url", "url": "https://example.com/a.mp4"})  # not multipart
    assert r.status_code == 400
    r = http.post("assets", data={"method": "url", "url": "https://example.com/a.mp4"}, files={"x": (None, b"")})
    assert r.status_code == 400 and r.json()["code"] == "parameter_unknown"


def test_creates_beyond_the_rate_limit_get_429_with_retry_after(asim: Simulator, http: httpx.Client) -> None:
    for i in range(3):
        assert direct(http, f"f{i}.mp4").status_code == 201
    r = direct(http, "f3.mp4")
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    asim.clock.advance(int(r.headers["retry-after"]))
    assert direct(http, "f3.mp4").status_code == 201


def test_list_pages_newest_first_and_filters(asim: Simulator, http: httpx.Client) -> None:
    ids = []
    for i in range(3):
        ids.append(direct(http, f"show-{i}.mp4").json()["_id"])
        asim.clock.advance(61)
    page = http.get("assets", params={"page_limit": 2}).json()
    assert [a["_id"] for a in page["data"]] == ids[::-1][:2]
    assert page["page_info"]["total_page"] == 2
    assert [a["_id"] for a in http.get("assets", params={"filename": "SHOW-1"}).json()["data"]] == [ids[1]]
    got = http.get("assets", params=[("asset_ids", ids[0]), ("asset_ids", ids[2])]).json()["data"]
    assert {a["_id"] for a in got} == {ids[0], ids[2]}
    assert http.delete(f"assets/{ids[0]}").status_code == 204
    assert http.get(f"assets/{ids[0]}").status_code == 404


def _upload(http: httpx.Client, total: int) -> dict[str, object]:
    r = http.post("assets/multipart-uploads", json={"filename": "long.mp4", "type": "video", "total_size": total})
    assert r.status_code == 201
    return dict(r.json())


def test_multipart_urls_are_single_use_and_expire_and_the_asset_waits_for_the_last_chunk(
    asim: Simulator, http: httpx.Client
) -> None:
    u = _upload(http, 2500)
    assert u["total_chunks"] == 3 and u["chunk_size"] == 1000
    urls = {x["chunk_index"]: x["url"] for x in u["upload_urls"]}  # type: ignore[attr-defined]
    r1 = httpx.put(urls[1], content=b"a" * 1000)  # no API key on storage
    assert r1.status_code == 200 and r1.headers["etag"].startswith('"')
    assert httpx.put(urls[1], content=b"a" * 1000).status_code == 403  # single use
    assert httpx.put(urls[2], content=b"a" * 999).status_code == 400  # wrong size
    asim.clock.advance(3601)
    assert httpx.put(urls[3], content=b"a" * 500).status_code == 403  # expired
    fresh = http.post(f"assets/multipart-uploads/{u['upload_id']}/presigned-urls", json={"start": 2, "count": 2}).json()
    proofs = [{"chunk_index": 1, "proof": r1.headers["etag"].strip('"'), "proof_type": "etag", "chunk_size": 1000}]
    for x in fresh["upload_urls"]:
        size = 1000 if x["chunk_index"] == 2 else 500
        r = httpx.put(x["url"], content=b"a" * size)
        proofs.append({"chunk_index": x["chunk_index"], "proof": r.headers["etag"], "proof_type": "etag",
                       "chunk_size": size})
    first = http.post(f"assets/multipart-uploads/{u['upload_id']}", json={"completed_chunks": proofs[:1]}).json()
    assert first["total_completed"] == 1 and "url" not in first
    asim.clock.advance(1000)
    assert http.get(f"assets/{u['asset_id']}").json()["status"] == "processing"  # not complete yet
    last = http.post(f"assets/multipart-uploads/{u['upload_id']}", json={"completed_chunks": proofs}).json()
    assert last["duplicate_chunks"] == 1 and last["total_completed"] == 3 and "url" in last
    status = http.get(f"assets/multipart-uploads/{u['upload_id']}").json()
    assert status["status"] == "completed" and status["uploaded_size"] == 2500
    asim.clock.advance(21)
    assert http.get(f"assets/{u['asset_id']}").json()["status"] == "ready"


def test_a_session_expires_after_24_hours(asim: Simulator, http: httpx.Client) -> None:
    u = _upload(http, 1500)
    asim.clock.advance(24 * 3600 + 1)
    assert http.get(f"assets/multipart-uploads/{u['upload_id']}").json()["status"] == "expired"
    r = http.post(f"assets/multipart-uploads/{u['upload_id']}/presigned-urls", json={"start": 1, "count": 1})
    assert r.status_code == 400 and r.json()["code"] == "upload_expired"


def test_a_cut_chunk_upload_is_a_fault_on_the_chunk_endpoint(asim: Simulator, http: httpx.Client) -> None:
    u = _upload(http, 1500)
    asim.add_fault("chunk:drop")
    with pytest.raises(httpx.TransportError):
        httpx.put(u["upload_urls"][0]["url"], content=b"a" * 1000)  # type: ignore[index]


def test_a_batch_naming_an_unready_or_failed_asset_is_refused_409_and_a_ready_one_counts_its_duration(
    asim: Simulator, http: httpx.Client
) -> None:
    ok, bad = direct(http, "ok.mp4").json()["_id"], direct(http, "broken.mp4").json()["_id"]

    def create(aid: str) -> httpx.Response:
        body = {"analysis_mode": "general", "model_name": "pegasus1.5", "defaults": PROMPT,
                "requests": [{"video": {"type": "asset_id", "asset_id": aid}}]}
        return http.post("analyze/batches", content=json.dumps(body), headers={"content-type": "application/json"})

    assert create(ok).status_code == 409
    asim.clock.advance(21)
    assert create(bad).status_code == 409
    assert create(ok).status_code == 201
    assert asim.engine.video_duration(ok) == http.get(f"assets/{ok}").json()["duration"]
