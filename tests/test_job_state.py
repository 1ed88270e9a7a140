"""A job that owns its state: one writer per manifest, uploads inside the job's life, every wait ends.

One regression test per defect of issue 17 (each seen failing before the job record was rebuilt),
all against the simulator over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import batch_widget as bw
import batch_widget.jobs as jobs_mod
from batch_widget.jobs import Manifest
from batch_widget.poller import BatchPoller
from batch_widget.simulator import ManualClock, Simulator

from .conftest import SECRET_KEY, VirtualTime, kernels, upload_sim, virtual_client

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("fresh_jobs")


@pytest.fixture
def usim() -> Iterator[Simulator]:
    with upload_sim(item_seconds=(5.0, 20.0), items_at_once=50) as s:
        yield s


def urls(n: int, prefix: str = "ep") -> pd.DataFrame:
    return pd.DataFrame({"video": [f"https://cdn.example.com/{prefix}-{i}.mp4" for i in range(n)],
                         "name": [f"{prefix}{i}" for i in range(n)]})  # fmt: skip


def go(df: pd.DataFrame, client: bw.BatchClient, manifest: Path, **kw: Any) -> bw.Job:
    return bw.submit(df, video="video", prompt="Summarise.", key="name", client=client, manifest=manifest,
                     schedule=bw.Schedule(min_interval=2, max_interval=30), slot_poll=10.0, **kw)  # fmt: skip


def asset_creates(sim: Simulator) -> int:
    return int(sim.stats["requests"].get("asset_create", 0))


def free(manifest: Path) -> bool:
    """Whether no job holds the manifest (a job lets it go once every task it started has ended)."""
    from batch_widget.jobs.lock import ManifestLock

    lock = ManifestLock(manifest)
    try:
        lock.acquire()
    except bw.JobLockedError:
        return False
    lock.release()
    return True


async def until(check: Any, what: str, tries: int = 500) -> None:
    for _ in range(tries):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never saw: {what}")


async def finished_job(df: pd.DataFrame, client: bw.BatchClient, path: Path) -> None:
    """A job of ``df``'s asset ids run to its end and closed, its record left at ``path``."""
    job = bw.submit(df, prompt="x", client=client, manifest=path)
    await asyncio.wait_for(job.wait(), 60)
    job.close()


# -- 1. two processes on one manifest ------------------------------------------------------------

SUBMITTER = textwrap.dedent(
    """
    import asyncio, sys, pandas as pd, batch_widget as bw
    async def main():
        client = bw.BatchClient(sys.argv[1], base_url=sys.argv[2])
        df = pd.DataFrame({"asset_id": [f"{i:024x}" for i in range(1, 5)], "k": list("abcd")})
        try:
            job = bw.submit(df, prompt="x", key="k", client=client, manifest=sys.argv[3], chunk_size=2,
                            slot_poll=0.2, schedule=bw.Schedule(min_interval=0.1, max_interval=0.3))
            await asyncio.wait_for(job.wait(), 60)
            print("DONE", len(job.batch_ids))
        except bw.BatchWidgetError as exc:
            print("REFUSED", exc)
    asyncio.run(main())
    """
)


def test_two_processes_on_one_manifest_never_make_an_untracked_batch(tmp_path: Path) -> None:
    with Simulator(api_key=SECRET_KEY, seed=3, speed=200.0, fail_rate=0.0, item_seconds=(1.0, 2.0)) as sim:
        sim.add_fault("create:slow=0.8:times=forever")  # both processes are inside a create at once
        manifest = tmp_path / "job.json"
        script = tmp_path / "submit.py"
        script.write_text(SUBMITTER)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("TWELVELABS_API_KEY", None)
        cmd = [sys.executable, str(script), SECRET_KEY, sim.base_url, str(manifest)]
        first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(300):  # the first process holds the manifest before the second starts
            if manifest.exists():
                break
            time.sleep(0.01)
        second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        outs = [p.communicate(timeout=120) for p in (first, second)]
        texts = [o for o, _ in outs]
        assert sum(t.startswith("DONE 2") for t in texts) == 1, outs
        refused = next(t for t in texts if t.startswith("REFUSED"))
        assert f"pid {first.pid}" in refused and "since" in refused, refused  # names the holder
        assert SECRET_KEY not in refused
        saved = json.loads(manifest.read_text())
        recorded = {c["batch_id"] for c in saved["chunks"]}
        assert set(sim.engine.batch_ids()) == recorded and len(recorded) == 2  # exactly what the rows need


async def test_a_second_writer_in_this_process_is_refused_and_a_dead_holder_is_taken_over(
    usim: Simulator, tmp_path: Path
) -> None:
    from batch_widget.jobs.lock import ManifestLock

    path = tmp_path / "job.json"
    held = ManifestLock(path)
    held.acquire()
    with pytest.raises(bw.JobLockedError, match=rf"pid {os.getpid()}.*since"):
        ManifestLock(path).acquire()
    held.release()
    ManifestLock(path).acquire()  # released: the next one gets it
    # a lock file left by a process that no longer exists: taken over
    dead = tmp_path / "dead.json"
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    ManifestLock(dead).lock_path.write_text(json.dumps({"pid": int(proc.stdout), "host": os.uname().nodename,
                                                        "since": "2026-01-01T00:00:00Z"}))  # fmt: skip
    ManifestLock(dead).acquire()


async def test_where_the_file_system_cannot_lock_a_heartbeat_keeps_a_second_writer_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from batch_widget.jobs import lock as lock_mod

    def no_locks(fd: int, op: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock_mod.fcntl, "flock", no_locks)
    path = tmp_path / "job.json"
    first = lock_mod.ManifestLock(path)
    with pytest.warns(UserWarning, match="cannot lock"):
        first.acquire()
    assert first.mode == "heartbeat"
    with pytest.raises(bw.JobLockedError, match=rf"pid {os.getpid()}"):
        lock_mod.ManifestLock(path).acquire()
    first.release()
    lock_mod.ManifestLock(path).acquire()


# -- 2. cancel and close stop the uploads ----------------------------------------------------------


@pytest.mark.parametrize("stop", ["cancel", "close"])
async def test_cancel_and_close_stop_the_upload_stage(
    usim: Simulator, uclient: bw.BatchClient, tmp_path: Path, stop: str
) -> None:
    usim.add_fault("asset_create:slow=0.05:times=forever")
    job = go(urls(10), uclient, tmp_path / "job.json", upload_concurrency=2)
    await until(lambda: asset_creates(usim) >= 3, "three asset creates")
    if stop == "cancel":
        await job.cancel()
        snap = await asyncio.wait_for(job.wait(), 30)
        assert snap.state == "canceled" and job.finished
        assert snap.counts["canceled"] >= 5  # rows whose upload never started are canceled, not waiting
    else:
        job.close()
    await until(lambda: free(tmp_path / "job.json"), "the manifest let go")  # after the creates in flight end
    made = asset_creates(usim)
    await asyncio.sleep(0.5)
    assert asset_creates(usim) == made, "assets were still created after the job stopped"
    assert made <= 5
    saved = json.loads((tmp_path / "job.json").read_text())
    ups = list(saved["uploads"].values())
    if stop == "cancel":  # the record says which were stopped, and retry_uploads() carries them on
        assert all(u["state"] in ("canceled", "ready") for u in ups)
        assert any(u["state"] == "canceled" and u["note"].startswith("canceled by job.cancel()") for u in ups)
        job.retry_uploads()
        again = job
    else:  # close() stops this process's part only: resume_job carries the job on
        assert not any(u["state"] in ("error", "failed") for u in ups)
        jobs_mod.live_jobs.clear()
        again = bw.resume_job(tmp_path / "job.json", uclient)
    snap = await asyncio.wait_for(again.wait(), 60)
    assert snap.state == "done" and snap.counts["ready"] == 10
    assert len(usim.assets.assets()) == 10  # none made twice


# -- 3. uploads that all fail: the job ends, and retries them later --------------------------------


async def test_a_job_whose_uploads_all_fail_ends_and_a_rerun_retries_them(
    usim: Simulator, uclient: bw.BatchClient, tmp_path: Path
) -> None:
    usim.add_fault("asset_create:status=502:times=forever")
    path = tmp_path / "job.json"
    job = go(urls(3), uclient, path)
    snap = await asyncio.wait_for(job.wait(), 60)
    assert job.finished and snap.state == "attention", snap
    assert snap.counts["failed"] == 3 and "502" in snap.message
    assert usim.stats["responses"].get("502", 0) > 3  # each was retried before it failed
    usim.clear_faults()
    again = go(urls(3), uclient, path)  # the same cell after the outage
    snap = await asyncio.wait_for(again.wait(), 60)
    assert snap.state == "done" and snap.counts["ready"] == 3
    assert len(usim.assets.assets()) == 3


# -- 4. an asset deleted while processing ------------------------------------------------------------


async def test_an_asset_deleted_while_processing_fails_its_row_and_the_wait_ends(
    usim: Simulator, uclient: bw.BatchClient, tmp_path: Path
) -> None:
    usim.assets.config.slow["ep-0"] = 10 * 24 * 3600.0  # days of processing: it is deleted first
    job = go(urls(2), uclient, tmp_path / "job.json")
    await until(lambda: any("ep-0" in a.filename for a in usim.assets.assets()), "the slow asset")
    victim = next(a.asset_id for a in usim.assets.assets() if "ep-0" in a.filename)
    await uclient.delete_asset(victim)
    snap = await asyncio.wait_for(job.wait(), 60)
    assert job.finished and snap.counts["failed"] == 1 and snap.counts["ready"] == 1
    out = await job.to_pandas()
    gone = out[out["asset_id"] == victim].iloc[0]
    assert gone["status"] == "failed" and "deleted" in str(gone["note"])


# -- 5. a resumed multipart upload checks the file ---------------------------------------------------


@pytest.mark.parametrize("change", ["same size", "shorter"])
async def test_a_cut_multipart_upload_starts_over_when_the_file_changed(
    usim: Simulator, uclient: bw.BatchClient, tmp_path: Path, change: str
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"a" * 4900)  # multipart: 5 chunks of 1000
    df = pd.DataFrame({"video": [str(clip)], "name": ["c"]})
    path = tmp_path / "job.json"
    usim.add_fault("chunk:drop:after=2:times=forever")
    job = go(df, uclient, path)
    await asyncio.wait_for(job.wait(), 60)
    job.close()
    jobs_mod.live_jobs.clear()
    saved = json.loads(path.read_text())
    (up,) = saved["uploads"].values()
    assert up.get("multipart"), "the cut upload kept no resume state"
    clip.write_bytes(b"b" * (4900 if change == "same size" else 3000))
    os.utime(clip, ns=(up["stamp"]["mtime_ns"], up["stamp"]["mtime_ns"]))  # even with the old mtime
    usim.clear_faults()
    with pytest.warns(UserWarning, match="changed since its upload began"):
        job2 = go(df, uclient, path)
        snap = await asyncio.wait_for(job2.wait(), 60)
    assert snap.state == "done" and snap.counts["ready"] == 1
    assert len(usim.assets.sessions()) == 2  # a new upload, not a resume of the old one


# -- 6. a manifest bound to its endpoint and key -------------------------------------------------


async def test_a_manifest_of_another_endpoint_or_key_is_refused(
    usim: Simulator, uclient: bw.BatchClient, tmp_path: Path
) -> None:
    path = tmp_path / "job.json"
    df = pd.DataFrame({"asset_id": [f"{i:024x}" for i in range(1, 4)]})
    await finished_job(df, uclient, path)
    with Simulator(api_key=SECRET_KEY, clock=ManualClock(), fail_rate=0.0) as other:
        async with virtual_client(other) as elsewhere:
            for start in (lambda: bw.submit(df, prompt="x", client=elsewhere, manifest=path),
                          lambda: bw.resume_job(path, elsewhere)):  # fmt: skip
                with pytest.raises(bw.BatchWidgetError, match="was written for") as info:
                    start()
                assert other.base_url in str(info.value) and usim.base_url in str(info.value)
                assert "manifest=" in str(info.value)
            assert other.stats["requests_total"] == 0
    with Simulator(api_key=SECRET_KEY, extra_api_keys=["tlk_another_key_0000"], clock=ManualClock()) as two:
        async with virtual_client(two) as mine:
            first = bw.submit(df, prompt="x", client=mine, manifest=tmp_path / "two.json")
            await asyncio.wait_for(first.wait(), 60)
            first.close()
        async with bw.BatchClient("tlk_another_key_0000", base_url=two.base_url, clock=VirtualTime(two)) as theirs:
            with pytest.raises(bw.BatchWidgetError, match="another API key") as info:
                bw.submit(df, prompt="x", client=theirs, manifest=tmp_path / "two.json")
            assert "tlk_another_key_0000" not in str(info.value) and SECRET_KEY not in str(info.value)
            started_over = bw.submit(df, prompt="x", client=theirs, manifest=tmp_path / "two.json", start_over=True)
            await asyncio.wait_for(started_over.wait(), 60)
            assert len(started_over.batch_ids) == 1 and started_over.snapshot().counts["ready"] == 3


# -- 7. files moved after they were uploaded -------------------------------------------------------


async def test_a_rerun_after_the_uploaded_files_moved_sends_nothing(
    usim: Simulator, uclient: bw.BatchClient, tmp_path: Path
) -> None:
    files = []
    for i in range(2):
        p = tmp_path / f"clip-{i}.mp4"
        p.write_bytes(b"v" * 1500)
        files.append(str(p))
    df = pd.DataFrame({"video": files, "name": ["a", "b"]})
    path = tmp_path / "job.json"
    job = go(df, uclient, path)
    await asyncio.wait_for(job.wait(), 60)
    job.close()
    jobs_mod.live_jobs.clear()
    for f in files:
        Path(f).rename(tmp_path / (Path(f).name + ".moved"))
    before = dict(usim.stats["requests"])
    again = go(df, uclient, path)
    snap = await asyncio.wait_for(again.wait(), 60)
    assert snap.state == "done" and snap.counts["ready"] == 2
    assert usim.stats["requests"].get("asset_create", 0) == before.get("asset_create", 0)
    assert usim.stats["requests"].get("create", 0) == before.get("create", 0)


# -- 8. one upload per distinct source -------------------------------------------------------------


async def test_the_same_file_or_url_in_two_rows_is_uploaded_once(
    usim: Simulator, uclient: bw.BatchClient, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"v" * 1500)
    df = pd.DataFrame({"video": [str(clip), str(clip), "https://cdn.example.com/a.mp4", "https://cdn.example.com/a.mp4"],
                       "name": ["f1", "f2", "u1", "u2"]})  # fmt: skip
    job = go(df, uclient, tmp_path / "job.json")
    snap = await asyncio.wait_for(job.wait(), 60)
    assert snap.state == "done" and snap.counts["ready"] == 4
    assert len(usim.assets.assets()) == 2 and asset_creates(usim) == 2
    out = await job.to_pandas()
    assert out.loc[0, "asset_id"] == out.loc[1, "asset_id"] and out.loc[2, "asset_id"] == out.loc[3, "asset_id"]


# -- 9. a badly structured manifest --------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(rows=[1, 2]), "rows"),
        (lambda d: d.update(chunks={"a": 1}), "chunks"),
        (lambda d: d["chunks"][0].pop("custom_ids"), "chunks[0].custom_ids"),
        (lambda d: d["chunks"][0].update(chunk="first"), "chunks[0].chunk"),
        (lambda d: d["chunks"][0].update(custom_ids=["nope"]), "chunks[0].custom_ids"),
        (lambda d: next(iter(d["rows"].values())).update(request="x"), "request"),
        (lambda d: d.update(settings=None), "settings"),
    ],
)
async def test_a_badly_structured_manifest_is_one_clear_error(
    usim: Simulator, uclient: bw.BatchClient, tmp_path: Path, mutate: Any, field: str
) -> None:
    path = tmp_path / "job.json"
    df = pd.DataFrame({"asset_id": [f"{i:024x}" for i in range(1, 4)]})
    await finished_job(df, uclient, path)
    jobs_mod.live_jobs.clear()
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    for start in (lambda: bw.resume_job(path, uclient),
                  lambda: bw.submit(df, prompt="x", client=uclient, manifest=path)):  # fmt: skip
        with pytest.raises(bw.BatchWidgetError) as info:
            start()
        text = str(info.value)
        assert str(path) in text and field in text and "manifest=" in text, text


# -- 10. the asset id of every row ---------------------------------------------------------------


async def test_to_pandas_names_the_asset_of_every_uploaded_row(
    usim: Simulator, uclient: bw.BatchClient, tmp_path: Path
) -> None:
    job = go(urls(3), uclient, tmp_path / "job.json")
    await asyncio.wait_for(job.wait(), 60)
    out = await job.to_pandas()
    assert set(out["asset_id"]) == {a.asset_id for a in usim.assets.assets()}
    jobs_mod.live_jobs.clear()
    resumed = bw.resume_job(tmp_path / "job.json", uclient)  # after a restart, from the manifest alone
    out2 = await resumed.to_pandas()
    assert set(out2["asset_id"]) == set(out["asset_id"])


# -- results kept beside the record ----------------------------------------------------------------


async def test_results_are_kept_on_disk_and_outlive_the_batch(
    usim: Simulator, uclient: bw.BatchClient, tmp_path: Path
) -> None:
    path = tmp_path / "job.json"
    df = pd.DataFrame({"asset_id": [f"{i:024x}" for i in range(1, 7)], "k": list("abcdef")})
    job = bw.submit(df, prompt="x", key="k", client=uclient, manifest=path, chunk_size=3)
    await asyncio.wait_for(job.wait(), 60)
    first = await job.to_pandas()
    kept = sorted(p.name for p in (tmp_path / "job.results").iterdir())
    assert kept == sorted(f"{b}.jsonl.gz" for b in job.batch_ids)
    for batch_id in job.batch_ids:  # the server forgets them (as it does after 30 days)
        await uclient.delete(batch_id)
    job.close()
    jobs_mod.live_jobs.clear()
    fetched = usim.stats["requests"].get("results", 0)
    resumed = bw.resume_job(path, uclient)
    again = await resumed.to_pandas()
    cols = ["custom_id", "asset_id", "batch_id", "status", "result"]
    pd.testing.assert_frame_equal(again[cols].reset_index(drop=True), first[cols].reset_index(drop=True),
                                  check_dtype=False)  # fmt: skip
    assert usim.stats["requests"].get("results", 0) == fetched  # read from disk, not fetched


# -- two kernels on one manifest ---------------------------------------------------------------------


@pytest.mark.kernel
def test_two_kernels_on_one_manifest_one_runs_the_other_is_told_who(tmp_path: Path) -> None:
    with (
        kernels(2, ROOT) as [(_, _, a), (_, _, b)],
        Simulator(api_key=SECRET_KEY, seed=3, speed=100.0, fail_rate=0.0, item_seconds=(5.0, 10.0)) as sim,
    ):
        setup = textwrap.dedent(f"""
            import os, pandas as pd, batch_widget as bw
            client = bw.BatchClient({SECRET_KEY!r}, base_url={sim.base_url!r})
            df = pd.DataFrame({{"asset_id": [f"{{i:024x}}" for i in range(1, 41)]}})
            kw = dict(prompt="x", client=client, manifest={str(tmp_path / "job.json")!r}, chunk_size=10,
                      max_active=1, slot_poll=0.3, schedule=bw.Schedule(min_interval=0.1, max_interval=0.3))
            print("PID", os.getpid())
        """)
        pid_a = a.run(setup + "job = bw.submit(df, **kw)").split("PID")[1].split()[0]
        refused = b.run(setup + "try:\n    bw.submit(df, **kw)\nexcept bw.JobLockedError as e:\n    print('LOCKED', e)")
        assert "LOCKED" in refused and f"pid {pid_a} " in refused and "since" in refused, refused
        out = a.run("snap = await job.wait()\nprint('A', snap.state, len(job.batch_ids))", timeout=120)
        assert out.split("A", 1)[1].split() == ["done", "4"]
        # kernel A's job has ended: it holds the manifest no more, and kernel B carries it on (sends nothing)
        out = b.run("job = bw.submit(df, **kw)\nsnap = await job.wait()\nprint('B', snap.state, snap.counts['ready'])",
                    timeout=120)  # fmt: skip
        assert out.split("B", 1)[1].split() == ["done", "40"]
        assert sim.stats["requests"]["create"] == 4 and len(sim.engine.batch_ids()) == 4


async def test_segments_of_a_job_come_from_its_kept_results(usim: Simulator, uclient: bw.BatchClient,
                                                            tmp_path: Path) -> None:  # fmt: skip
    seg = {"type": "segment_definitions",
           "segment_definitions": [{"id": "scene", "description": "each scene", "fields": [
               {"name": "summary", "type": "string", "description": "what happens"}]}]}  # fmt: skip
    path = tmp_path / "job.json"
    df = pd.DataFrame({"asset_id": [f"{i:024x}" for i in range(1, 5)], "k": list("abcd")})
    job = bw.submit(df, response_format=seg, key="k", client=uclient, manifest=path, chunk_size=2)
    await asyncio.wait_for(job.wait(), 60)
    first = await job.to_segments()
    assert set(first["custom_id"]) == set("abcd") and {"batch_id", "chunk", "attempt", "start", "end"} <= set(first)
    for batch_id in job.batch_ids:
        await uclient.delete(batch_id)
    job.close()
    jobs_mod.live_jobs.clear()
    again = await bw.resume_job(path, uclient).to_segments()
    pd.testing.assert_frame_equal(again, first)


@pytest.mark.kernel
def test_a_restarted_kernel_gets_the_same_table_after_the_server_deleted_the_batches(tmp_path: Path) -> None:
    with (
        kernels(1, ROOT) as [(km, kc, k)],
        Simulator(api_key=SECRET_KEY, seed=3, speed=200.0, fail_rate=0.0, item_seconds=(5.0, 10.0)) as sim,
    ):
        setup = textwrap.dedent(f"""
            import pandas as pd, batch_widget as bw
            client = bw.BatchClient({SECRET_KEY!r}, base_url={sim.base_url!r})
            manifest = {str(tmp_path / "job.json")!r}
            cols = ["custom_id", "asset_id", "batch_id", "status", "result"]
        """)
        first = k.run(setup + textwrap.dedent("""
            df = pd.DataFrame({"asset_id": [f"{i:024x}" for i in range(1, 31)]})
            job = bw.submit(df, prompt="x", client=client, manifest=manifest, chunk_size=10, slot_poll=0.3,
                            schedule=bw.Schedule(min_interval=0.1, max_interval=0.3))
            await job.wait()
            print("TABLE", (await job.to_pandas())[cols].to_json())
            for b in job.batch_ids:
                await client.delete(b)
        """), timeout=120)
        assert not sim.engine.batch_ids()  # the server has forgotten every batch
        km.restart_kernel(now=True)
        kc.wait_for_ready(timeout=60)
        fetched = sim.stats["requests"].get("results", 0)
        second = k.run(setup + "job = bw.resume_job(manifest, client)\n"
                       "print('TABLE', (await job.to_pandas())[cols].to_json())", timeout=120)  # fmt: skip
        assert first.split("TABLE", 1)[1].split()[0] == second.split("TABLE", 1)[1].split()[0]
        assert '"ready"' in second and sim.stats["requests"].get("results", 0) == fetched


def test_the_journal_replays_changes_ignores_a_torn_last_line_and_names_a_bad_one(tmp_path: Path) -> None:
    from batch_widget.jobs.manifest import Chunk, Endpoint, Manifest, Row, Settings, Upload

    path = tmp_path / "job.json"
    man = Manifest(path, endpoint=Endpoint("https://api.example/v1.3", "abc123abc123"), settings=Settings("general"))
    row = Row("r1", 0, {}, source="https://x.example/a.mp4")
    up = Upload("https://x.example/a.mp4", "url")
    man.rows["r1"], man.uploads[up.source] = row, up
    man.save()
    up.intend("tag1", None)
    man.record(up)
    up.created(f"{7:024x}")
    row.asset_ready(f"{7:024x}", 12.5)
    man.chunks.append(Chunk(0, 1, ["r1"]))
    man.record(up, row, man.chunks[0])
    man.close_journal()
    with open(man.journal_path, "ab") as fh:
        fh.write(b'{"t": "upload", "k": "https://x.ex')  # a crash mid-append
    again = Manifest.load(path)
    assert again.uploads[up.source].state == "processing" and again.rows["r1"].asset_id == f"{7:024x}"
    assert again.rows["r1"].content_s == 12.5 and again.chunks == man.chunks
    lines = man.journal_path.read_bytes().split(b"\n")
    man.journal_path.write_bytes(b"\n".join([lines[0], b"not json", *lines[1:]]))
    with pytest.raises(bw.ManifestError, match=r"journal line 2.*manifest="):
        Manifest.load(path)
    man.save()  # a full write folds the journal in and removes it
    assert not man.journal_path.exists() and Manifest.load(path).rows == man.rows


def test_a_script_waits_for_a_job_with_no_event_loop_and_lets_the_manifest_go(tmp_path: Path) -> None:
    from batch_widget.jobs.lock import ManifestLock

    with Simulator(api_key=SECRET_KEY, seed=3, speed=300.0, fail_rate=0.0, item_seconds=(1.0, 3.0)) as sim:
        client = bw.BatchClient(SECRET_KEY, base_url=sim.base_url)
        df = pd.DataFrame({"asset_id": [f"{i:024x}" for i in range(1, 11)]})
        path = tmp_path / "job.json"
        job = bw.submit(df, prompt="x", client=client, manifest=path, chunk_size=5, slot_poll=0.2,
                        schedule=bw.Schedule(min_interval=0.1, max_interval=0.3))  # fmt: skip
        snap = job.wait_blocking()
        assert snap.state == "done" and snap.counts["ready"] == 10
        assert [c.state for c in job.chunks] == ["created", "created"] and len(job.batch_ids) == 2  # read back here
        other = ManifestLock(path)
        other.acquire()  # nothing of the job runs any more: the manifest is free
        other.release()


def test_two_batch_widget_submits_of_one_table_make_exactly_the_batches_it_needs(tmp_path: Path) -> None:
    with Simulator(api_key=SECRET_KEY, seed=3, speed=200.0, fail_rate=0.0, item_seconds=(1.0, 2.0)) as sim:
        sim.add_fault("create:slow=0.8:times=forever")  # the first is inside its creates when the second starts
        table = tmp_path / "videos.csv"
        pd.DataFrame({"asset_id": [f"{i:024x}" for i in range(1, 5)], "k": list("abcd")}).to_csv(table, index=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TWELVELABS_")}
        env.update(PYTHONPATH=str(ROOT), TWELVELABS_API_KEY=SECRET_KEY, TWELVELABS_BASE_URL=sim.base_url)
        cmd = [sys.executable, "-m", "batch_widget", "submit", str(table), "--video", "asset_id", "--prompt", "x",
               "--key", "k", "--chunk-size", "2"]  # fmt: skip
        first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        manifest = tmp_path / "videos.manifest.json"
        for _ in range(500):  # the second starts once the first holds the manifest
            if manifest.exists() and sim.stats["requests"].get("create", 0):
                break
            time.sleep(0.01)
        second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, err
        said = second.stdout + second.stderr
        assert second.returncode == 2 and f"pid {first.pid} " in said and "since" in said, said
        assert "Traceback" not in said and SECRET_KEY not in said + out + err
        recorded = {c.batch_id for c in Manifest.load(manifest).chunks}
        assert set(sim.engine.batch_ids()) == recorded and len(recorded) == 2  # every batch in the manifest


async def test_a_job_batch_deleted_before_its_final_poll_shows_its_counts_as_last_known(tmp_path: Path) -> None:
    with upload_sim(startup_seconds=(1e6, 1e6)) as sim:  # a batch that stays pending here
        async with virtual_client(sim) as client:
            df = pd.DataFrame({"asset_id": [f"{i:024x}" for i in range(1, 3)]})
            job = bw.submit(df, prompt="x", client=client, manifest=tmp_path / "job.json",
                            schedule=bw.Schedule(min_interval=600, max_interval=600))  # fmt: skip
            await until(lambda: bool(job.batch_ids), "a batch")
            (batch_id,) = job.batch_ids
            await until(lambda: BatchPoller.shared(client, batch_id).update.batch is not None, "a first snapshot")
            sim.engine.cancel(SECRET_KEY, batch_id)  # ended and deleted behind the job's back
            sim.clock.advance(3 * 3600)
            sim.engine.delete(SECRET_KEY, batch_id)
            job.refresh()
            snap = await asyncio.wait_for(job.wait(), 30)
    (row,) = snap.batches
    assert row["status"] == "last known: pending" and "not found" in row["error"].lower()
    assert snap.state == "attention" and snap.counts["queued"] == 0  # not shown as current


async def test_a_resubmit_right_after_resume_keeps_its_new_batches(tmp_path: Path) -> None:
    """Regression (found on the command line's `job --retry`): the scheduler of a resumed job let the
    manifest go while resubmit() read the outcomes, and taking it again re-read the file without the new chunks."""
    with upload_sim(outcomes={"b": "failed:asset_unavailable"}, item_seconds=(5.0, 20.0)) as sim:
        async with virtual_client(sim) as client:
            path = tmp_path / "job.json"
            df = pd.DataFrame({"asset_id": [f"{i:024x}" for i in range(1, 4)], "k": list("abc")})
            job = bw.submit(df, prompt="x", key="k", client=client, manifest=path)
            assert (await asyncio.wait_for(job.wait(), 60)).counts["failed"] == 1
            job.close()
            jobs_mod.live_jobs.clear()
            sim.engine.config.outcomes = None
            resumed = bw.resume_job(path, client)
            new = await resumed.resubmit()
            snap = await asyncio.wait_for(resumed.wait(), 60)
            assert [len(c.custom_ids) for c in new] == [1] and snap.counts["ready"] == 3
            assert [c.state for c in Manifest.load(path).chunks] == ["created", "created"]
            assert len(sim.engine.batch_ids()) == 2
