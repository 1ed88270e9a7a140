"""A real ipykernel (6.x and 7.x) driven through jupyter_client, as a notebook front end would.

Checks what only a kernel can show: trait updates keep arriving on iopub after the displaying
cell finished and the kernel is idle; the final display is replaced by the static summary; a
re-run cell shares the one poller; closing the widget stops the polling.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[1]
PYTHONS = {
    "ipykernel7": Path(sys.executable),
    "ipykernel6": ROOT / ".venv-colab" / "bin" / "python",  # ipykernel 6 + pandas 2.2, as Colab
}


@pytest.fixture(params=sorted(PYTHONS), scope="module")
def kernel(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    python = PYTHONS[request.param]
    if not python.exists():
        pytest.skip(f"{python} missing: `make setup` creates the Colab-like environment")
    specs = tmp_path_factory.mktemp("kernels")
    spec_dir = specs / request.param
    spec_dir.mkdir()
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": request.param, "language": "python",
    }))  # fmt: skip
    km = KernelManager(kernel_name=request.param, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWELVELABS_")}
    km.start_kernel(cwd=str(ROOT), env=env)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    try:
        k = Kernel(kc, km)
        version = k.run("import ipykernel; print(ipykernel.__version__)").stdout.strip()
        assert version.startswith("6." if request.param == "ipykernel6" else "7."), version
        yield k
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


class Result:
    def __init__(self) -> None:
        self.stdout = ""
        self.error: str | None = None
        self.messages: list[dict[str, Any]] = []


class Kernel:
    """Runs cells and collects iopub messages, like a minimal front end."""

    def __init__(self, kc: Any, km: Any) -> None:
        self.kc = kc
        self.km = km
        self.backlog: list[dict[str, Any]] = []

    def run(self, code: str, timeout: float = 60) -> Result:
        msg_id = self.kc.execute(code)
        result = Result()
        deadline = time.monotonic() + timeout
        while True:
            msg = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                self.backlog.append(msg)
                continue
            result.messages.append(msg)
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                result.stdout += content["text"]
            elif kind == "error":
                result.error = "\n".join(content["traceback"])
            elif kind == "status" and content["execution_state"] == "idle":
                break
        reply = self.kc.get_shell_msg(timeout=timeout)
        if result.error or reply["content"]["status"] != "ok":
            raise AssertionError(f"cell failed: {result.error or reply['content']}")
        return result

    def drain(self, seconds: float, until: Any = None) -> list[dict[str, Any]]:
        """Collect iopub messages for up to ``seconds`` while no cell runs (stop early on ``until``)."""
        got, self.backlog = self.backlog, []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if until is not None and any(until(m) for m in got):
                break
            try:
                got.append(self.kc.get_iopub_msg(timeout=0.2))
            except queue.Empty:
                continue
        return got


SETUP = """
import batch_widget as bw
from batch_widget.simulator import Simulator
sim = Simulator(speed={speed}, seed=3, fail_rate=0.1).start()
client = bw.BatchClient(sim.api_key, base_url=sim.base_url)
created = await client.create(analysis_mode="general", defaults={{"prompt": {{"input_text": "x"}}}},
                              requests=[f"{{i:024x}}" for i in range(1, {n} + 1)])
w = bw.watch(created.batch_id, client)
print("comm", w.widget.comm.comm_id)
"""


def comm_updates(messages: list[dict[str, Any]], comm_id: str) -> list[dict[str, Any]]:
    return [
        m["content"]["data"]["state"]
        for m in messages
        if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id
        and m["content"]["data"].get("method") == "update"
    ]  # fmt: skip


def test_updates_arrive_while_idle_then_the_display_is_pinned(kernel: Kernel) -> None:
    cell = kernel.run(SETUP.format(speed=120, n=30))
    comm_id = cell.stdout.split("comm ")[1].split()[0]
    displays = [m for m in cell.messages if m["msg_type"] == "display_data"]
    assert len(displays) == 1
    bundle = displays[0]["content"]
    assert "application/vnd.jupyter.widget-view+json" in bundle["data"]
    assert "text/html" in bundle["data"] and "live view needs the running kernel" in bundle["data"]["text/plain"]
    display_id = bundle["transient"]["display_id"]

    def final_update(m: dict[str, Any]) -> bool:
        return m["msg_type"] == "update_display_data" and m["content"]["transient"]["display_id"] == display_id

    later = kernel.drain(90, until=final_update)
    updates = comm_updates(later, comm_id)
    state = {"ready": 0, "failed": 0, "canceled": 0}
    done = []
    for u in updates:  # each message carries only the traits that changed
        state.update(u)
        done.append(state["ready"] + state["failed"] + state["canceled"])
    assert len(set(done)) >= 3, f"too few distinct updates while idle: {done}"
    assert done == sorted(done)
    assert any(u.get("status") == "completed" for u in updates)
    # every update is one message per poll, small, and never carries the key
    assert all(len(json.dumps(u)) < 1024 for u in updates)
    assert not any("sim-key" in json.dumps(u) for u in updates)
    final = [m for m in later if final_update(m)]
    assert final, "the display was not replaced at the end"
    data = final[-1]["content"]["data"]
    assert set(data) == {"text/plain", "text/html"}  # static only: no widget view left to fail
    assert 'class="bw-static"' in data["text/html"] and "completed:" in data["text/plain"]
    status_msgs = [m for m in later if m["msg_type"] == "status"]
    assert all(m["content"]["execution_state"] == "idle" for m in status_msgs)


def test_rerun_shares_the_poller_and_close_stops_it(kernel: Kernel) -> None:
    kernel.run(SETUP.format(speed=2, n=200))
    kernel.run("w2 = bw.watch(created.batch_id, client)")
    out = kernel.run(
        "import batch_widget.poller as p\n"
        "running = [x for x in p._REGISTRY.values() if x.running and x.batch_id == created.batch_id]\n"
        "print(len(running), w2.poller is w.poller)"
    ).stdout.split()
    assert out == ["1", "True"]
    # `w` as a cell's last line: the watch shows its widget again (another display of the same view)
    cell = kernel.run("w")
    outputs = [m for m in cell.messages if m["msg_type"] in ("display_data", "execute_result")]
    assert len(outputs) == 1, outputs
    view = outputs[0]["content"]["data"]["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == kernel.run("print(w.widget.model_id)").stdout.strip()
    kernel.run("w.close()")
    assert kernel.run("print(w2.poller.running)").stdout.strip() == "True"  # one watch still open
    kernel.run("w2.close()")
    kernel.drain(0.5)
    before = kernel.run("print(sim.stats['requests'].get('get', 0), w2.poller.running)").stdout.split()
    assert before[1] == "False"
    kernel.drain(5)
    after = kernel.run("print(sim.stats['requests'].get('get', 0))").stdout.strip()
    assert after == before[0], "polling went on after the last widget closed"


def test_displaying_a_finished_widget_shows_the_static_summary(kernel: Kernel) -> None:
    kernel.run(SETUP.format(speed=600, n=5))
    kernel.run("final = await w.wait()")
    cell = kernel.run("w")
    outputs = [m for m in cell.messages if m["msg_type"] in ("display_data", "execute_result")]
    assert len(outputs) == 1
    assert set(outputs[0]["content"]["data"]) == {"text/plain", "text/html"}
    assert "bw-static" in outputs[0]["content"]["data"]["text/html"]


@pytest.fixture
def outside_sim() -> Iterator[Any]:
    """A simulator in the test process, so it outlives a kernel restart."""
    from batch_widget.simulator import Simulator

    with Simulator(api_key="tlk_lifecycle_SECRET_31337", seed=9, speed=4.0) as sim:
        yield sim


def test_lifecycle_rerun_interrupt_close_restart(kernel: Kernel, outside_sim: Any) -> None:
    sim = outside_sim
    connect = (
        "import batch_widget as bw\n"
        f"client = bw.BatchClient({sim.api_key!r}, base_url={sim.base_url!r})\n"
    )
    kernel.run(
        connect
        + "created = await client.create(analysis_mode='general', defaults={'prompt': {'input_text': 'x'}},\n"
        "                              requests=[f'{i:024x}' for i in range(1, 201)])\n"
        "batch_id = created.batch_id\n"
        "views = []\n"
    )
    for _ in range(20):  # the same cell re-run 20 times
        kernel.run("w = bw.watch(batch_id, client, schedule=bw.Schedule(min_interval=0.5, max_interval=1.0))\n"
                   "views.append(w)")  # fmt: skip
    out = kernel.run(
        "import batch_widget.poller as p\n"
        "print(len([x for x in p._REGISTRY.values() if x.running and x.batch_id == batch_id]),"
        " len({id(v.poller) for v in views}))"
    ).stdout.split()
    assert out == ["1", "1"], out

    # a KeyboardInterrupt in another cell leaves the watch going
    polls_before = int(kernel.run("print(w.poller.polls)").stdout)
    msg_id = kernel.kc.execute("import time\ntime.sleep(60)")
    time.sleep(1.5)
    kernel.km.interrupt_kernel()
    deadline = time.monotonic() + 30
    interrupted = False
    while time.monotonic() < deadline and not interrupted:
        msg = kernel.kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") == msg_id:
            interrupted = msg["msg_type"] == "error" and msg["content"]["ename"] == "KeyboardInterrupt"
    assert interrupted
    kernel.kc.get_shell_msg(timeout=30)
    kernel.drain(2.5)
    after = kernel.run("print(w.poller.polls, w.poller.running)").stdout.split()
    assert int(after[0]) > polls_before and after[1] == "True"

    # closing the views stops the polling within one interval
    kernel.run("for v in views: v.close()")
    kernel.drain(1.0)  # one max_interval
    n1 = sim.stats["requests"].get("get", 0)
    kernel.drain(3.0)
    assert sim.stats["requests"].get("get", 0) == n1

    # after a kernel restart, watch(batch_id) re-attaches and shows the current state
    batch_id = kernel.run("print(batch_id)").stdout.strip()
    kernel.km.restart_kernel(now=True)
    kernel.kc.wait_for_ready(timeout=60)
    kernel.backlog.clear()
    kernel.run(connect + f"w = bw.watch({batch_id!r}, client)")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        shown = kernel.run("v = w.widget\nprint(v.status, v.total, v.ready + v.failed + v.canceled)").stdout.split()
        if shown[0] not in ("",) and shown[1] == "200":
            break
        time.sleep(0.3)
    truth = sim.engine.batch_state(batch_id)
    assert shown[0] == truth["status"] and shown[1] == "200"
    assert abs(int(shown[2]) - (truth["ready_items"] + truth["failed_items"] + truth["canceled_items"])) <= 16
    kernel.run("w.close()")
