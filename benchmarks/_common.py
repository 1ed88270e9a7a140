"""Shared bits of the benchmark scripts: argument parsing, goal verdicts and table printing.

Every ``bench_*.py`` prints its own tables and a list of goals, each with the figure measured,
the baseline measured in the same run, the target and PASS/MISS. Scripts exit 0 even on a
MISS; ``--strict`` makes a MISS exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from batch_widget.clock import Clock  # noqa: E402  (after the path: this tree's package)


class SimTime(Clock):
    """A client's clock on a simulator's ``ManualClock``: every sleep moves it, hours pass in a second.

    ``actions`` (time, callable), in time order, run when a sleep passes their time, at that
    time: a cancel or a stall injected at a given moment of the batch's life.
    """

    def __init__(self, manual: Any) -> None:
        self.manual = manual
        self.actions: list[tuple[float, Callable[[], None]]] = []

    def monotonic(self) -> float:
        return float(self.manual.now())

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.manual.now(), timezone.utc)

    async def sleep(self, seconds: float) -> None:
        target = self.manual.now() + seconds
        while self.actions and self.actions[0][0] <= target:
            at, act = self.actions.pop(0)
            self.manual.set(max(self.manual.now(), at))
            act()
        self.manual.set(target)
        await asyncio.sleep(0)


def parse_args(description: str, extra: Sequence[tuple[str, dict[str, object]]] = ()) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke run)")
    for flag, options in extra:
        parser.add_argument(flag, **options)  # type: ignore[arg-type]
    # run_all.py passes its own argv through: ignore what is meant for another script
    args, _unknown = parser.parse_known_args()
    return args


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str = "") -> None:
    """Print a plain fixed-width table (first column left-aligned, the others right-aligned)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    if title:
        print(f"\n{title}")
    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for r in cells[1:]:
        print(line(r))


@dataclass
class Goal:
    name: str
    figure: str
    baseline: str
    target: str
    ok: bool | None  # None: not measurable here (shown as n/a)
    note: str = ""


class Goals:
    def __init__(self) -> None:
        self.items: list[Goal] = []

    def add(
        self, name: str, figure: str, baseline: str, target: str, ok: bool | None, note: str = ""
    ) -> None:
        self.items.append(Goal(name, figure, baseline, target, ok, note))

    @property
    def missed(self) -> list[Goal]:
        return [g for g in self.items if g.ok is False]

    def print(self, title: str = "Goals") -> None:
        rows = [
            (g.name, g.figure, g.baseline, g.target, "n/a" if g.ok is None else "PASS" if g.ok else "MISS")
            for g in self.items
        ]
        table(("goal", "measured", "baseline", "target", "verdict"), rows, title=title)
        for g in self.items:
            if g.note:
                print(f"  - {g.name}: {g.note}")

    def exit_code(self, strict: bool) -> int:
        return 1 if strict and self.missed else 0


class Simulated:
    """The simulator in its own process (so that its CPU time is not counted as ours)."""

    def __init__(self, *args: str) -> None:
        import subprocess

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "batch_widget.simulator", "--port", "0", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            self.close()
            raise RuntimeError(f"the simulator did not start: {self.base_url!r}")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.kill()

    def __enter__(self) -> Simulated:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Kernel:
    """A real ipykernel (this venv's) driven through jupyter_client, like a minimal front end.

    A background thread drains iopub all the time (as a front end would), keeping every
    message it saw after :meth:`record` for the caller.
    """

    def __init__(self) -> None:
        import json
        import os
        import tempfile
        import threading

        from jupyter_client.kernelspec import KernelSpecManager
        from jupyter_client.manager import KernelManager

        self._tmp = tempfile.TemporaryDirectory()
        spec_dir = Path(self._tmp.name) / "bench-python"
        spec_dir.mkdir()
        (spec_dir / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "bench",
                    "language": "python",
                }
            )
        )
        self.km = KernelManager(
            kernel_name="bench-python", kernel_spec_manager=KernelSpecManager(kernel_dirs=[self._tmp.name])
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("TWELVELABS_")}
        self.km.start_kernel(cwd=str(ROOT), env=env)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self._lock = threading.Lock()
        self._recording: list[dict[str, object]] | None = None
        self._replies: dict[str, list[dict[str, object]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        import queue

        while not self._stop.is_set():
            try:
                msg = self.kc.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            except Exception:
                return
            with self._lock:
                if self._recording is not None:
                    self._recording.append(msg)
                parent = msg.get("parent_header", {}).get("msg_id")
                if parent in self._replies:
                    self._replies[parent].append(msg)

    def record(self) -> list[dict[str, object]]:
        """Start keeping every iopub message; returns the (growing) list."""
        with self._lock:
            self._recording = []
            return self._recording

    def stop_recording(self) -> list[dict[str, object]]:
        with self._lock:
            got, self._recording = self._recording or [], None
            return got

    def run(self, code: str, timeout: float = 120) -> str:
        """Run a cell; return its stdout; raise with the traceback on an error."""
        import time

        msg_id = self.kc.execute(code)
        with self._lock:
            self._replies[msg_id] = []
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait for the idle status of this cell on iopub
            with self._lock:
                msgs = list(self._replies[msg_id])
            if any(m["msg_type"] == "status" and m["content"]["execution_state"] == "idle" for m in msgs):
                break
            time.sleep(0.02)
        with self._lock:
            msgs = self._replies.pop(msg_id)
        out = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")
        errors = ["\n".join(m["content"]["traceback"]) for m in msgs if m["msg_type"] == "error"]
        if errors or reply["content"]["status"] != "ok":
            raise RuntimeError(f"cell failed:\n{code}\n{''.join(errors) or reply['content']}")
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)
        self._tmp.cleanup()

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wire_size(msg: dict[str, object]) -> int:
    """Bytes of one Jupyter message's JSON frames (header, parent, metadata, content) as sent."""
    import json

    from jupyter_client.jsonutil import json_default

    total = 0
    for part in ("header", "parent_header", "metadata", "content"):
        value = msg.get(part, {})
        total += len(
            json.dumps(value, default=json_default, separators=(",", ":"), ensure_ascii=False).encode()
        )
    return total + 32 + len(b"<IDS|MSG>") + 64  # + identity topic, delimiter, HMAC signature


def fmt_s(seconds: float) -> str:
    if math.isnan(seconds):
        return "-"
    if seconds < 0.01:
        return f"{seconds * 1e3:.2f} ms"
    if seconds < 100:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def fmt_pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:.1f}%"
