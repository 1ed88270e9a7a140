"""Benchmark: upload throughput to the simulator on loopback, and memory while uploading a large file.

Run ``python benchmarks/bench_uploads.py`` (``make bench``). Not a test: it prints tables and the
goals with PASS/MISS, and exits 0 either way (``--strict`` exits 1 on a MISS).

Sizes are scaled down to keep the run under a minute (``--quick`` smaller still): the API takes
direct uploads up to 200 MB and multipart ones up to 10 GB; here the files are a few MB each and
the "large" file is 60 MB (multipart, the simulator's 5 MiB chunks, forced by lowering the
client's ``direct_upload_limit`` to 10 MB).

1. Throughput: the simulator runs in its own process on 127.0.0.1 (its CPU is not ours). Ours:
   ``BatchClient.create_asset(file=...)`` for 20 files of 4 MB, 4 at a time, then the 60 MB file
   through the multipart flow (session, chunk PUTs streamed from disk, chunk reports). Baseline:
   bare httpx posting the very same bytes to ``POST /assets`` as direct uploads (the file handle
   streamed by httpx), same concurrency, and the large file through the same multipart flow
   written with bare httpx (session, one ``PUT`` per chunk read into memory, one report per
   chunk). MB/s = bytes / wall time, best of the repeats.

2. Memory: a fresh subprocess uploads the large file with ``create_asset`` (multipart, streamed
   from disk); the peak RSS growth over the process's RSS before the upload is
   compared with a fresh subprocess that reads the file into memory and posts it with httpx.
   The peak is ``VmHWM`` from ``/proc/self/status`` (Linux only), not ``ru_maxrss``, which Linux
   carries over from the forking parent (this script, large after the throughput runs).
   Streaming should keep the growth flat: about a chunk, not the file.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import ROOT, Goals, Simulated, parse_args, table

import batch_widget as bw
from batch_widget.simulator import DEFAULT_API_KEY

MB = 1_000_000

MEMORY_SCRIPT = """
import asyncio, sys, json
from pathlib import Path
import httpx
import batch_widget as bw

mode, url, key, path = sys.argv[1:5]

def status_kb(field):  # from /proc (Linux): VmRSS now, VmHWM the peak since exec
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0

def rss_kb():
    return status_kb("VmRSS")

async def main():
    before = rss_kb()
    if mode == "ours":
        async with bw.BatchClient(key, base_url=url, timeout=120) as client:
            client.direct_upload_limit = 10_000_000
            before = rss_kb()
            await client.create_asset(file=path)
    else:
        async with httpx.AsyncClient(timeout=120) as http:
            before = rss_kb()
            data = Path(path).read_bytes()
            files = {"method": (None, "direct"), "file": (Path(path).name, data, "video/mp4")}
            r = await http.post(url + "/assets", files=files, headers={"x-api-key": key})
            r.raise_for_status()
    peak = status_kb("VmHWM")  # not ru_maxrss: Linux carries the forking parent's peak across exec
    print(json.dumps({"before_kb": before, "peak_kb": peak}))

asyncio.run(main())
"""


def make_files(folder: Path, count: int, size: int, big: int) -> tuple[list[Path], Path]:
    small = []
    for i in range(count):
        p = folder / f"clip-{i:02d}.mp4"
        p.write_bytes(os.urandom(size))
        small.append(p)
    large = folder / "large.mp4"
    with large.open("wb") as f:
        for _ in range(big // MB):
            f.write(os.urandom(MB))
    return small, large


async def ours(url: str, small: list[Path], large: Path, concurrency: int) -> tuple[float, float]:
    async with bw.BatchClient(DEFAULT_API_KEY, base_url=url, timeout=120) as client:
        client.direct_upload_limit = 10 * MB
        gate = asyncio.Semaphore(concurrency)

        async def one(p: Path) -> None:
            async with gate:
                await client.create_asset(file=p)

        t0 = time.perf_counter()
        await asyncio.gather(*(one(p) for p in small))
        t1 = time.perf_counter()
        await client.create_asset(file=large)
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1


async def bare(url: str, small: list[Path], large: Path, concurrency: int) -> tuple[float, float]:
    async with httpx.AsyncClient(timeout=120, headers={"x-api-key": DEFAULT_API_KEY}) as http:
        gate = asyncio.Semaphore(concurrency)

        async def one(p: Path) -> None:
            async with gate:
                with p.open("rb") as f:
                    r = await http.post(url + "/assets", files={"method": (None, "direct"),
                                                                "file": (p.name, f, "video/mp4")})  # fmt: skip
                r.raise_for_status()

        async def multipart(p: Path) -> None:
            total = p.stat().st_size
            body = {"filename": p.name, "type": "video", "total_size": total}
            d = (await http.post(url + "/assets/multipart-uploads", json=body)).raise_for_status().json()
            size, upload = int(d["chunk_size"]), d["upload_id"]
            urls = {int(u["chunk_index"]): u["url"] for u in d.get("upload_urls") or ()}
            with p.open("rb") as f:
                for index in range(1, -(-total // size) + 1):
                    if index not in urls:
                        more = {"start": index, "count": 50}
                        got = (await http.post(f"{url}/assets/multipart-uploads/{upload}/presigned-urls",
                                               json=more)).raise_for_status().json()  # fmt: skip
                        urls.update({int(u["chunk_index"]): u["url"] for u in got["upload_urls"]})
                    chunk = f.read(size)
                    r = (await http.put(urls[index], content=chunk)).raise_for_status()
                    proof = {"chunk_index": index, "proof": r.headers["etag"].strip('"'), "proof_type": "etag",
                             "chunk_size": len(chunk)}  # fmt: skip
                    (await http.post(f"{url}/assets/multipart-uploads/{upload}",
                                     json={"completed_chunks": [proof]})).raise_for_status()  # fmt: skip

        t0 = time.perf_counter()
        await asyncio.gather(*(one(p) for p in small))
        t1 = time.perf_counter()
        await multipart(large)
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def memory(mode: str, url: str, path: Path) -> tuple[float, float]:
    import json

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, mode, url, DEFAULT_API_KEY, str(path)],
                         capture_output=True, text=True, check=True, env=env, cwd=ROOT).stdout  # fmt: skip
    d = json.loads(out.strip().splitlines()[-1])
    return d["before_kb"] / 1000, (d["peak_kb"] - d["before_kb"]) / 1000


def main() -> int:
    args = parse_args(__doc__.splitlines()[0])
    count, size, big, repeats = (20, 4 * MB, 60 * MB, 3) if not args.quick else (10, 2 * MB, 30 * MB, 1)
    goals = Goals()
    with tempfile.TemporaryDirectory() as tmp, Simulated("--seed", "1") as sim:
        small, large = make_files(Path(tmp), count, size, big)
        best = {"ours": (1e9, 1e9), "bare": (1e9, 1e9)}
        for _ in range(repeats):
            for name, fn in (("bare", bare), ("ours", ours)):
                few, one = asyncio.run(fn(sim.base_url, small, large, 4))
                best[name] = (min(best[name][0], few), min(best[name][1], one))
        rate = {k: (count * size / v[0] / MB, big / v[1] / MB) for k, v in best.items()}
        rows = [(label, f"{rate[k][0]:.0f} MB/s", f"{rate[k][1]:.0f} MB/s")
                for k, label in (("bare", "bare httpx"), ("ours", "BatchClient.create_asset"))]  # fmt: skip
        headers = ("upload", f"{count} x {size // MB} MB direct, 4 at a time", f"1 x {big // MB} MB multipart")
        table(headers, rows, title=f"Throughput to the simulator on loopback (best of {repeats}; 5 MiB chunks)")
        ours_rate, bare_rate = rate["ours"], rate["bare"]
        goals.add("small files: ours vs bare httpx", f"{ours_rate[0]:.0f} MB/s", f"{bare_rate[0]:.0f} MB/s",
                  ">= 0.8x", ours_rate[0] >= 0.8 * bare_rate[0])  # fmt: skip
        goals.add("large file: multipart vs bare httpx", f"{ours_rate[1]:.0f} MB/s", f"{bare_rate[1]:.0f} MB/s",
                  ">= 0.8x", ours_rate[1] >= 0.8 * bare_rate[1],
                  "the same flow; ours streams each chunk from disk in 1 MB pieces and ends with a get")  # fmt: skip
        ours_before, ours_growth = memory("ours", sim.base_url, large)
        bare_before, bare_growth = memory("bare", sim.base_url, large)
        rows = [("bare httpx, file read into memory", f"{bare_before:.0f} MB", f"{bare_growth:.0f} MB"),
                ("BatchClient.create_asset (streamed)", f"{ours_before:.0f} MB", f"{ours_growth:.0f} MB")]  # fmt: skip
        table(("process", "RSS before", "peak growth while uploading"), rows,
              title=f"Memory while uploading a {big // MB} MB file (fresh subprocess each)")  # fmt: skip
        goals.add("memory while uploading stays flat", f"+{ours_growth:.0f} MB", f"+{bare_growth:.0f} MB",
                  "< 25 MB (a few chunks)", ours_growth < 25)  # fmt: skip
    goals.print()
    return goals.exit_code(args.strict)


if __name__ == "__main__":
    sys.exit(main())
