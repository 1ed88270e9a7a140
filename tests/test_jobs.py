"""Jobs: a 2,500-row DataFrame through the account's 5-batch cap, re-runs, crashes and resubmission.

Everything runs against the simulator on a manual clock with virtual sleeps (each sleep moves the
simulated time), so hours of batch life pass in a second; the fresh-kernel test uses a real
ipykernel through jupyter_client against a sped-up simulator.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import batch_widget as bw
import batch_widget.jobs as jobs_mod
from batch_widget.jobs import Job, Manifest, plan_chunks, prepare_requests, stable_custom_id
from batch_widget.poller import BatchPoller
from batch_widget.simulator import Fault, ManualClock, Simulator
from batch_widget.simulator.engine import ItemSpec

from .conftest import PROMPT, SECRET_KEY, Displays, kernels, requests_for, run_notebook, virtual_client, vt_of

ROOT = Path(__file__).resolve().parents[1]
N = 2500


def videos(n: int = N) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "asset_id": [f"{i:024x}" for i in range(1, n + 1)],
            "video_key": [f"vid-{i:05d}" for i in range(n)],
            "title": [f"Video {i}" for i in range(n)],
        },
        index=pd.RangeIndex(100, 100 + n, name="row"),
    )


pytestmark = pytest.mark.usefixtures("fresh_jobs")


def make_sim(**kw: Any) -> Simulator:
    opts: dict[str, Any] = {
        "api_key": SECRET_KEY, "seed": 11, "clock": ManualClock(), "item_seconds": (5.0, 20.0),
        "items_at_once": 50, "fail_rate": 0.0,
    }  # fmt: skip
    opts.update(kw)
    return Simulator(**opts)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with make_sim() as s:
        yield s


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[bw.BatchClient]:
    async with virtual_client(sim, timeout=10.0) as c:
        yield c


def job_kwargs() -> dict[str, Any]:
    """A quick schedule for a job's pollers and slot checks (time itself is the client's virtual clock)."""
    return {"schedule": bw.Schedule(min_interval=2, max_interval=30), "slot_poll": 10.0}


def submit(df: pd.DataFrame, client: bw.BatchClient, manifest: Path, **kw: Any) -> Job:
    return bw.submit(
        df, asset="asset_id", prompt="Summarise.", key="video_key", client=client, manifest=manifest,
        **{**job_kwargs(), **kw},
    )  # fmt: skip


def creates(sim: Simulator) -> int:
    return int(sim.stats["requests"].get("create", 0))


# -- the whole run ---------------------------------------------------------------------------------


async def test_2500_rows_three_batches_within_the_cap_with_others_active(
    client: bw.BatchClient, sim: Simulator, tmp_path: Path
) -> None:
    # three batches of someone else's are already active on the account
    others = [
        (
            await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(300, f"o{k}"))
        ).batch_id
        for k in range(3)
    ]
    assert sim.engine.active_count() == 3
    vt = vt_of(client)
    job = submit(videos(), client, tmp_path / "job.json")
    messages: list[str] = []
    ours_active: list[int] = []

    def listen(snap: jobs_mod.JobSnapshot) -> None:
        messages.append(snap.message)
        ours = sum(1 for b in snap.batches if b["status"] in ("pending", "processing", "canceling"))
        theirs = sum(
            sim.engine.batch_state(b)["status"] in ("pending", "processing", "canceling") for b in others
        )
        ours_active.append(ours + theirs)

    job.add_listener(listen)
    snap = await asyncio.wait_for(job.wait(), 60)

    assert [len(c.custom_ids) for c in job.chunks] == [1000, 1000, 500]
    assert creates(sim) == 3 + 3 and len(job.batch_ids) == 3
    assert max(vt.active) <= 5, "more than 5 batches were active on the account"
    assert sim.stats["responses"].get("429", 0) == 0  # the cap was respected, never hit
    assert "waiting for a free slot (5 of 5 active)" in messages
    assert max(ours_active) == 5  # ours + the others' never passed the cap, but filled it
    assert snap.state == "done" and snap.counts["ready"] == N and snap.total == N
    assert all(sim.engine.batch_state(b)["status"] == "completed" for b in others)

    out = await job.to_pandas()
    assert len(out) == N and list(out.index) == list(videos().index)  # the input rows, in order
    assert {"asset_id", "video_key", "title", "custom_id", "batch_id", "status", "result", "attempts"} <= set(
        out.columns
    )
    assert (out["custom_id"] == out["video_key"]).all()
    assert out["batch_id"].nunique() == 3 and set(out["batch_id"]) == set(job.batch_ids)
    assert (out["status"] == "ready").all() and out["result"].notna().all()
    # the manifest recorded every chunk with its batch id
    saved = json.loads((tmp_path / "job.json").read_text())
    assert saved["format"] == "batch_widget.job/3" and len(saved["rows"]) == N
    assert [c["state"] for c in saved["chunks"]] == ["created"] * 3
    assert SECRET_KEY not in (tmp_path / "job.json").read_text()


async def test_a_429_at_the_cap_waits_for_a_slot(
    client: bw.BatchClient, sim: Simulator, tmp_path: Path
) -> None:
    sim.add_fault(
        Fault(kind="rate_limit", endpoint="create", retry_after=30, times=8)
    )  # beyond client retries
    job = submit(videos(1200), client, tmp_path / "job.json")
    seen: list[str] = []
    job.add_listener(lambda s: seen.append(s.message))
    snap = await asyncio.wait_for(job.wait(), 60)
    assert snap.state == "done" and snap.counts["ready"] == 1200
    assert any("429" in m for m in seen)
    assert len(job.batch_ids) == 2 and len(sim.engine.batch_ids()) == 2  # no duplicate batch


async def test_rerun_submits_nothing_new(client: bw.BatchClient, sim: Simulator, tmp_path: Path) -> None:
    path = tmp_path / "job.json"
    job = submit(videos(), client, path)
    await asyncio.wait_for(job.wait(), 60)
    assert creates(sim) == 3
    # re-running the cell: the same job comes back, nothing is sent
    again = submit(videos(), client, path)
    assert again is job and again.skipped_rows == N
    await asyncio.wait_for(again.wait(), 30)
    assert creates(sim) == 3
    # after a restart (no live job in the process): re-attached from the manifest, still nothing sent
    jobs_mod.live_jobs.clear()
    fresh = submit(videos(), client, path)
    assert fresh is not job
    snap = await asyncio.wait_for(fresh.wait(), 30)
    assert creates(sim) == 3 and snap.state == "done" and snap.counts["ready"] == N
    # new rows join the job as a new chunk; old rows are skipped by custom_id
    grown = pd.concat([videos(), videos(N + 10).iloc[N:]])
    more = submit(grown, client, path)
    await asyncio.wait_for(more.wait(), 30)
    assert creates(sim) == 4 and len(more.chunks[-1].custom_ids) == 10


async def test_resubmission_keeps_the_newest_outcome_and_history(tmp_path: Path) -> None:
    seen: dict[str, int] = {}
    doomed = {f"vid-{i:05d}" for i in range(0, N, 25)}  # 100 rows fail on their first attempt

    def outcome(spec: ItemSpec) -> str | None:
        n = seen[spec.custom_id or ""] = seen.get(spec.custom_id or "", 0) + 1
        return "failed:asset_unavailable" if spec.custom_id in doomed and n == 1 else "ready"

    with make_sim(outcomes=outcome) as sim:
        async with virtual_client(sim) as client:
            job = submit(videos(), client, tmp_path / "job.json")
            snap = await asyncio.wait_for(job.wait(), 60)
            assert snap.state == "done" and snap.counts["failed"] == 100
            new = await job.resubmit()
            assert [len(c.custom_ids) for c in new] == [100]
            assert new[0].resubmit_of == [0, 1, 2] and new[0].attempt == 2
            assert await job.resubmit() == []  # re-running the cell while it runs: nothing twice
            snap = await asyncio.wait_for(job.wait(), 60)
            assert snap.counts == {
                "ready": N,
                "failed": 0,
                "canceled": 0,
                "processing": 0,
                "queued": 0,
                "waiting": 0,
            }
            assert creates(sim) == 4
            out = await job.to_pandas()
            assert len(out) == N and (out["status"] == "ready").all()
            retried = out[out["video_key"].isin(doomed)]
            assert (retried["attempts"] == 2).all() and (retried["status_history"] == "failed → ready").all()
            assert (retried["batch_id"] == new[0].batch_id).all()
            assert (out.loc[~out["video_key"].isin(doomed), "attempts"] == 1).all()
            history = await job.to_pandas(history=True)
            assert len(history) == N + 100
            assert set(history.loc[history["attempt"] == 1, "status"].astype(str)) == {"ready", "failed"}
            saved = Manifest.load(tmp_path / "job.json")
            assert saved.chunks[3].resubmit_of == [0, 1, 2] and saved.chunks[3].replaces == {"failed": 100}
            assert await job.resubmit() == []  # nothing failed any more
            # two resubmits and two frames later, each finished batch was downloaded once
            assert sim.stats["requests"]["results"] == 4


async def test_expired_batches_unfinished_items_are_resubmitted(tmp_path: Path) -> None:
    with make_sim(item_seconds=(3000.0, 4000.0), items_at_once=1) as sim:  # far too slow for 24 h
        async with virtual_client(sim) as client:
            job = submit(videos(60), client, tmp_path / "job.json")
            snap = await asyncio.wait_for(job.wait(), 60)
            assert snap.batches[0]["status"] == "expired"
            unfinished = snap.counts["canceled"] + snap.counts["failed"]
            assert unfinished > 0
            new = await job.resubmit()
            assert sum(len(c.custom_ids) for c in new) == unfinished


# -- crashes and uncertain creates --------------------------------------------------------------


async def test_a_lost_create_answer_is_matched_to_its_batch(
    client: bw.BatchClient, sim: Simulator, tmp_path: Path
) -> None:
    sim.add_fault(Fault(kind="drop_mid_response", endpoint="create", times=1))  # created, answer lost
    job = submit(videos(1500), client, tmp_path / "job.json")
    snap = await asyncio.wait_for(job.wait(), 60)
    assert snap.state == "done" and snap.counts["ready"] == 1500
    assert len(sim.engine.batch_ids()) == 2, "the lost create was submitted again"
    assert "recovered after an interrupted create" in (job.chunks[0].note or "")


async def test_a_create_that_never_happened_asks_the_user(
    client: bw.BatchClient, sim: Simulator, tmp_path: Path
) -> None:
    sim.add_fault(Fault(kind="drop", endpoint="create", times=1))  # the request never reached the API
    job = submit(videos(1500), client, tmp_path / "job.json")
    with pytest.warns(UserWarning, match="job.resolve\\(0, action='resubmit'\\)"):
        snap = await asyncio.wait_for(job.wait(), 60)
    assert snap.state == "attention" and "most likely never created" in snap.message
    assert job.chunks[0].state == "uncertain" and len(sim.engine.batch_ids()) == 1  # not resubmitted
    assert Manifest.load(tmp_path / "job.json").chunks[0].state == "uncertain"
    job.resolve(0, action="resubmit")
    snap = await asyncio.wait_for(job.wait(), 60)
    assert snap.state == "done" and snap.counts["ready"] == 1500 and len(sim.engine.batch_ids()) == 2


async def test_a_crash_between_intent_and_create_is_recovered_from_the_manifest(
    client: bw.BatchClient, sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "job.json"
    sim.add_fault(Fault(kind="slow", endpoint="create", seconds=0.6, times=1))
    job = submit(videos(1500), client, path)
    for _ in range(200):  # the intent is on disk, the create is in flight...
        await asyncio.sleep(0.01)
        if creates(sim) == 1:  # counted by the server before the slow fault's pause
            break
    job.close()  # ...and the kernel dies
    jobs_mod.live_jobs.clear()
    await asyncio.sleep(1.0)  # the server finishes the create nobody hears about
    crashed = Manifest.load(path)
    assert crashed.chunks[0].state == "creating" and crashed.chunks[0].batch_id is None
    assert crashed.chunks[0].intent_at is not None and len(sim.engine.batch_ids()) == 1
    resumed = bw.resume_job(path, client, **job_kwargs())
    snap = await asyncio.wait_for(resumed.wait(), 60)
    assert snap.state == "done" and snap.counts["ready"] == 1500
    assert len(sim.engine.batch_ids()) == 2 and creates(sim) == 2
    assert resumed.chunks[0].batch_id == sim.engine.batch_ids()[0]  # the one the lost create made
    assert Manifest.load(path).chunks[0].state == "created"


# -- validation ----------------------------------------------------------------------------------


def test_validation_names_the_rows_before_any_request(sim: Simulator) -> None:
    df = videos(10)
    df.loc[103, "asset_id"] = None
    df.loc[105, "video_key"] = "vid-00004"  # the key of row 104
    df.loc[106, "video_key"] = "bad id!"
    df["start"] = 0.0
    df["end"] = 60.0
    df.loc[107, "end"] = 9000.0  # 2.5 h
    client = bw.BatchClient(SECRET_KEY, base_url=sim.base_url)
    with pytest.raises(bw.InvalidInputError) as info:
        bw.submit(df, key="video_key", prompt="x", start_column="start", end_column="end", client=client,
                  manifest=Path("/nonexistent/never-written.json"))  # fmt: skip
    text = str(info.value)
    assert "nothing was submitted" in text
    assert "row 103: missing" in text
    assert "row 105 repeats 'vid-00004' of row 104" in text
    assert "row 106: 'bad id!'" in text
    assert "row 107: 2.50 h" in text
    assert sim.stats["requests_total"] == 0

    mixed = videos(6)
    seg = {"type": "segment_definitions", "segment_definitions": [{"id": "s", "description": "d"}]}
    mixed["fmt"] = [None, None, None, json.dumps(seg), json.dumps(seg), None]
    with pytest.raises(
        bw.InvalidInputError, match=r"mixed analysis modes.*2 time_based_metadata rows \(e.g. 103, 104\)"
    ):
        prepare_requests(mixed, response_format_column="fmt", prompt_column="title")
    with pytest.raises(bw.InvalidInputError, match="not a column"):
        prepare_requests(videos(3), asset="nope")
    with pytest.raises(bw.InvalidInputError, match="no prompt"):
        prepare_requests(videos(3))
    with pytest.raises(bw.InvalidInputError, match="empty DataFrame"):
        prepare_requests(videos(0))


def test_generated_custom_ids_are_stable_and_chunks_respect_content_hours() -> None:
    a = prepare_requests(videos(5), prompt="x")
    b = prepare_requests(videos(5), prompt="x")
    assert list(a.ids) == list(b.ids) and a.ids.is_unique
    assert a.ids.iloc[0] == stable_custom_id(100, f"{1:024x}")
    assert all(len(i) <= 64 for i in a.ids)
    df = videos(30)
    df["seconds"] = 100 * 3600.0  # 100 h each (windows are not given: durations count)
    with pytest.raises(bw.InvalidInputError, match="over 2 h"):
        prepare_requests(df, prompt="x", duration_column="seconds")
    df["start"], df["end"] = 0.0, 7000.0
    prepared = prepare_requests(df, prompt="x", start_column="start", end_column="end")
    chunks = plan_chunks([(r.custom_id, r.content_s) for r in prepared.rows])
    assert [len(c) for c in chunks] == [30]
    chunks = plan_chunks([(f"c{i}", 100 * 3600.0) for i in range(45)])
    assert [len(c) for c in chunks] == [20, 20, 5]  # 2,000 h per batch


# -- list_batches ----------------------------------------------------------------------------------


async def test_list_batches_all_pages_with_filters(client: bw.BatchClient, sim: Simulator) -> None:
    seg = {"type": "segment_definitions", "segment_definitions": [{"id": "s", "description": "d"}]}
    for i in range(55):
        mode = "time_based_metadata" if i % 11 == 0 else "general"
        defaults = {"response_format": seg} if mode != "general" else PROMPT
        await client.create(analysis_mode=mode, defaults=defaults, requests=requests_for(2, f"b{i}"))
        sim.clock.advance(3600)  # each one ends before the next: never at the cap
    running = await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(50, "r"))
    frame = await bw.list_batches(client)
    assert len(frame) == 56 and frame["batch_id"].is_unique  # more than one page of 50
    assert frame.iloc[0]["batch_id"] == running.batch_id  # newest first
    assert str(frame["created_at"].dtype).startswith("datetime64") and frame["total_items"].dtype == "int64"
    active = await bw.list_batches(client, status=["pending", "processing"])
    assert list(active["batch_id"]) == [running.batch_id]
    tbm = await bw.list_batches(client, analysis_mode="time_based_metadata")
    assert len(tbm) == 5 and set(tbm["analysis_mode"]) == {"time_based_metadata"}
    assert len(await bw.list_batches(client, status="completed", limit=7)) == 7
    blocking = await asyncio.to_thread(bw.list_batches_blocking, client, status="completed")
    assert len(blocking) == 55


# -- the job widget ------------------------------------------------------------------------------


async def test_job_widget_projects_the_job_and_pins_a_static_summary(
    client: bw.BatchClient, sim: Simulator, tmp_path: Path, displays: Displays
) -> None:
    for k in range(4):
        await client.create(analysis_mode="general", defaults=PROMPT, requests=requests_for(400, f"o{k}"))
    job = submit(videos(), client, tmp_path / "job.json")
    job._ipython_display_()
    w = job.widget
    assert len(displays.shown) == 1 and "application/vnd.jupyter.widget-view+json" in displays.shown[0]
    assert "live view needs the running kernel" in displays.shown[0]["text/plain"]
    states: set[str] = set()
    waits: list[str] = []
    job.add_listener(lambda s: (states.add(w.state), waits.append(w.message)))
    await asyncio.wait_for(job.wait(), 60)
    assert "waiting" in states and "waiting for a free slot (5 of 5 active)" in waits
    assert (w.state, w.total, w.ready, w.waiting) == ("done", N, N, 0)
    assert [b["chunk"] for b in w.batches] == [0, 1, 2] and all(b["status"] == "completed" for b in w.batches)
    assert SECRET_KEY not in json.dumps({k: getattr(w, k) for k in w.trait_names(sync=True) if k[0] != "_"},
                                        default=str)  # fmt: skip
    assert displays.updates, "the display was not replaced at the end"
    final = displays.updates[-1]
    assert set(final) == {"text/plain", "text/html"}
    assert final["text/plain"].startswith(f"Job done: {N:,} ready of {N:,} rows in 3 batches")
    assert 'class="bw-static bw-job-static"' in final["text/html"] and "<script" not in final["text/html"]
    job._ipython_display_()  # displaying a finished job: static only
    assert set(displays.shown[-1]) == {"text/plain", "text/html"}


async def test_cancel_all_skips_waiting_chunks_and_cancels_batches(tmp_path: Path) -> None:
    # items of 10-15 simulated minutes: the virtual clock that the pollers advance while the
    # click is on its way cannot finish the batch first (it did, now and then, with short items)
    with make_sim(item_seconds=(600.0, 900.0)) as sim:
        async with virtual_client(sim, timeout=10.0) as client:
            job = submit(videos(), client, tmp_path / "job.json", max_active=1)
            for _ in range(300):
                await asyncio.sleep(0.01)
                if job.batch_ids:
                    break
            job.widget._handle_custom_msg({"type": "cancel_all"}, [])
            snap = await asyncio.wait_for(job.wait(), 60)
            assert snap.state == "canceled"
            assert [c.state for c in job.chunks] == ["created", "skipped", "skipped"]
            assert sim.engine.batch_state(job.batch_ids[0])["status"] == "canceled"
            assert creates(sim) == 1
            job.close()


# -- a fresh kernel ------------------------------------------------------------------------------


@pytest.fixture
def kernel() -> Iterator[Any]:
    with kernels(1, ROOT) as [(km, kc, k)]:
        yield km, kc, k


KERNEL_SETUP = """
import pandas as pd, batch_widget as bw
client = bw.BatchClient({key!r}, base_url={url!r})
df = pd.DataFrame({{"asset_id": [f"{{i:024x}}" for i in range(1, {n} + 1)]}})
kw = dict(client=client, manifest={manifest!r}, max_active=1, slot_poll=0.3,
          schedule=bw.Schedule(min_interval=0.1, max_interval=0.3))
"""


@pytest.mark.kernel
def test_resume_from_the_manifest_in_a_fresh_kernel(kernel: Any, tmp_path: Path) -> None:
    km, kc, k = kernel
    manifest = str(tmp_path / "job.json")
    with make_sim(clock=None, speed=150.0, item_seconds=(5.0, 10.0), items_at_once=100) as sim:
        setup = KERNEL_SETUP.format(key=SECRET_KEY, url=sim.base_url, n=N, manifest=manifest)
        k.run(setup + "job = bw.submit(df, prompt='Summarise.', **kw)\njob")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the first batch runs, the others wait (max_active=1)
            saved = Manifest.load(manifest)  # the file and its journal, as another process reads them
            if saved.chunks[0].state == "created":
                break
            time.sleep(0.1)
        assert [c.state for c in saved.chunks] == ["created", "planned", "planned"]
        km.restart_kernel(now=True)  # the kernel dies mid-job
        kc.wait_for_ready(timeout=60)
        out = k.run(
            setup + "job = bw.resume_job(kw.pop('manifest'), **kw)\n"
            "snap = await job.wait()\nframe = await job.to_pandas()\n"
            "print('RESULT', snap.state, snap.counts['ready'], len(frame), frame['batch_id'].nunique())",
            timeout=120,
        )
        assert out.split("RESULT")[1].split() == ["done", str(N), str(N), "3"]
        assert sim.stats["requests"]["create"] == 3 and len(sim.engine.batch_ids()) == 3
        # and re-running the original cell in this kernel submits nothing
        k.run(setup + "job2 = bw.submit(df, prompt='Summarise.', **kw)\nawait job2.wait()")
        assert sim.stats["requests"]["create"] == 3


@pytest.mark.kernel
def test_many_videos_notebook_runs_end_to_end(tmp_path: Path) -> None:
    env = {"BW_DEMO_SPEED": "3000", "BW_MANIFEST": str(tmp_path / "many_videos.manifest.json")}
    nb = run_notebook(ROOT / "notebooks" / "many_videos.ipynb", tmp_path, env)
    text = json.dumps(nb)
    assert "Job done" in text and '"ename"' not in text
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    pinned = [
        o for o in outputs if "text/html" in o.get("data", {}) and "bw-job-static" in o["data"]["text/html"]
    ]
    assert pinned and all("application/vnd.jupyter.widget-view+json" not in o["data"] for o in pinned)


# -- the manifest's version, the job's listeners ------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "words"),
    [
        ("batch_widget.job/4", "written by a newer batch_widget"),
        ("batch_widget.job/0", "unknown format 'batch_widget.job/0'"),
        ("batch_widget.job/beta", "unknown format 'batch_widget.job/beta'"),
        ("something.else/1", "is not a batch_widget job manifest"),
        (None, "is not a batch_widget job manifest"),
    ],
)
def test_a_manifest_of_another_version_is_refused_clearly(tmp_path: Path, fmt: str | None, words: str) -> None:
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"format": fmt, "rows": {}, "chunks": []}), encoding="utf-8")
    with pytest.raises(bw.BatchWidgetError, match=words) as info:
        Manifest.load(path)
    assert str(path) in str(info.value)
    nowhere = bw.BatchClient(SECRET_KEY, base_url="http://127.0.0.1:9")  # nothing listens: nothing can be sent
    with pytest.raises(bw.BatchWidgetError, match=words):
        bw.resume_job(path, client=nowhere)


async def test_version_1_and_2_manifests_are_read_and_written_back_as_3(tmp_path: Path) -> None:
    path = tmp_path / "v2.json"
    video = {"type": "asset_id", "asset_id": f"{1:024x}"}
    path.write_text(json.dumps({
        "format": "batch_widget.job/2", "base_url": "https://api.twelvelabs.io/v1.3",
        "settings": {"analysis_mode": "general", "model_name": "pegasus1.5", "defaults": {}},
        "rows": {
            "a": {"index": 0, "request": {"video": video}, "content_s": 10.0},
            # two rows of one URL, uploaded: the asset id stood in the request once ready
            "b": {"index": 1, "request": {"video": {"type": "asset_id", "asset_id": f"{2:024x}"}}, "content_s": 5.0,
                  "upload": {"kind": "url", "source": "https://x.example/v.mp4", "state": "ready",
                             "asset_id": f"{2:024x}", "tag": "t"}},
            # and a file not uploaded yet: its path sat where the asset id goes
            "c": {"index": 2, "request": {"video": {"type": "asset_id", "asset_id": "/data/c.mp4"}}, "content_s": None,
                  "upload": {"kind": "file", "source": "/data/c.mp4", "state": "pending", "size": 10}},
        },
        "chunks": [{"chunk": 0, "attempt": 1, "state": "created", "batch_id": f"{9:024x}", "custom_ids": ["a", "b"]}],
    }))  # fmt: skip
    man = Manifest.load(path)
    assert man.read_version == 2 and man.endpoint.base_url == "https://api.twelvelabs.io/v1.3"
    assert (man.rows["a"].asset_id, man.rows["b"].asset_id, man.rows["c"].asset_id) == (f"{1:024x}", f"{2:024x}", None)
    assert man.rows["c"].source == "/data/c.mp4" and man.uploads["/data/c.mp4"].state == "pending"
    assert man.uploads["https://x.example/v.mp4"].state == "ready" and "video" not in man.rows["b"].request
    man.save()
    again = Manifest.load(path)
    assert json.loads(path.read_text())["format"] == "batch_widget.job/3"
    assert again.rows == man.rows and again.uploads == man.uploads and again.chunks == man.chunks


async def test_a_version_1_manifest_is_read_as_having_no_uploads(
    client: bw.BatchClient, sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "job.json"
    first = submit(videos(30), client, path, chunk_size=20)
    await asyncio.wait_for(first.wait(), 60)
    first.close()
    jobs_mod.live_jobs.clear()
    # the same job as a version-1 file; a stray upload record in it (version 1 had none) must not run
    now = json.loads(path.read_text())
    data = {"format": "batch_widget.job/1", "created_at": now["created_at"], "base_url": sim.base_url,
            "settings": now["settings"],
            "rows": {cid: {"index": r["index"], "content_s": r["content_s"],
                           "request": {"video": {"type": "asset_id", "asset_id": r["asset_id"]}, **r["request"]}}
                     for cid, r in now["rows"].items()},
            "chunks": [{k: v for k, v in c.items() if k != "outcome"} for c in now["chunks"]]}  # fmt: skip
    some = next(iter(data["rows"]))
    data["rows"][some]["upload"] = {"kind": "url", "source": "https://example.com/a.mp4", "state": "pending"}
    path.write_text(json.dumps(data))

    loaded = Manifest.load(path)
    assert loaded.read_version == 1 and len(loaded.rows) == 30
    assert not loaded.uploads and not any(row.source for row in loaded.rows.values())
    assert all(row.asset_id and "video" not in row.request for row in loaded.rows.values())
    assert [c.batch_id for c in loaded.chunks] == first.batch_ids

    job = bw.resume_job(path, client, **job_kwargs())
    assert job.uploads is None
    snap = await asyncio.wait_for(job.wait(), 60)
    assert snap.state == "done" and snap.counts["ready"] == 30
    # nothing uploaded (the usage line's one batched asset_list, a read of durations, is no upload)
    assert not any(k.startswith(("asset", "upload")) for k in sim.stats["requests"] if k != "asset_list")
    assert len(await job.to_pandas()) == 30
    assert json.loads(path.read_text())["format"] == "batch_widget.job/3"  # written back at the new version


async def test_the_job_tells_listeners_and_refresh_polls_every_batch(
    client: bw.BatchClient, sim: Simulator, tmp_path: Path
) -> None:
    sim.engine.config.item_seconds = (600.0, 900.0)  # no batch can end before the refresh below
    job = submit(videos(1200), client, tmp_path / "job.json", chunk_size=400)
    snaps: list[jobs_mod.JobSnapshot] = []
    job.add_listener(snaps.append)
    for _ in range(300):
        await asyncio.sleep(0.01)
        if len(job.batch_ids) == 3:
            break
    # the job's batches share one account poller: a refresh is one cycle (a list request) that
    # brings every batch a fresh snapshot, not one get per batch
    pollers = [BatchPoller.shared(client, batch_id) for batch_id in job.batch_ids]
    polls = [p.polls for p in pollers]
    assert not any(p.update.finished for p in pollers)
    job.refresh()  # public: what the widget's refresh button calls
    for _ in range(300):
        await asyncio.sleep(0.01)
        if all(p.polls > n for p, n in zip(pollers, polls, strict=True)):
            break
    assert all(p.polls > n for p, n in zip(pollers, polls, strict=True)), "refresh() did not poll every batch"
    final = await asyncio.wait_for(job.wait(), 60)
    assert final.state == "done" and [len(c.custom_ids) for c in job.chunks] == [400, 400, 400]
    assert snaps and snaps[-1].finished and snaps[-1] == final
    told = len(snaps)
    await job.wait()  # waiting again tells the listeners again (the widget pins from the waiting cell)
    assert len(snaps) > told and snaps[-1].finished and snaps[-1].counts == final.counts


async def test_results_are_fetched_as_each_batch_ends_and_kept(
    client: bw.BatchClient, sim: Simulator, tmp_path: Path
) -> None:
    job = submit(videos(1200), client, tmp_path / "job.json", chunk_size=400)
    final = await asyncio.wait_for(job.wait(), 60)
    assert final.state == "done" and len(job.batch_ids) == 3
    # fetched in the background as each batch ended (wait() lets them land): once each
    assert sim.stats["requests"]["results"] == 3
    out = await job.to_pandas()
    assert len(out) == 1200 and set(out["status"].astype(str)) <= {"ready", "failed"}
    assert sim.stats["requests"]["results"] == 3  # to_pandas() made no new request
