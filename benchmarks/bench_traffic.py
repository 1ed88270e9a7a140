"""Benchmark: bytes the widget sends to the front end, per poll, and the size of its saved state.

Run ``python benchmarks/bench_traffic.py`` (``make bench``). Not a test: it prints tables and
the goals with PASS/MISS, and exits 0 either way (``--strict`` exits 1 on a MISS).

1. Per poll, on the wire: a real ipykernel (started through jupyter_client) watches one batch
   of the simulator (another process, speed 30, 2 slots of 10-15 simulated minutes: counts
   change every ~10 real seconds while the default schedule polls every 2-5 s) with two widgets
   on the one shared poller, so both see exactly the same polls:

   - ``BatchWidget`` (this project, issue #7: one message per poll that changed something,
     none otherwise but a heartbeat of ``updated_at``/``interval_s`` before the view's stale
     hint could fire);
   - the baseline, the projection before issue #7: every trait set on every poll, so every
     poll sends at least ``updated_at`` (a subclass defined in the kernel).

   Every ``comm_msg`` of either comm on iopub is kept; its size is the JSON of its four frames
   (header, parent header, metadata, content) plus identities, delimiter and HMAC signature,
   as it crosses the socket; "payload" is the ``content.data`` alone. Polls and polls whose
   status/counts changed are counted in the kernel by a listener on the same poller.

2. Saved state: the ``application/vnd.jupyter.widget-state+json`` document a notebook stores
   for one finished widget (``ipywidgets.embed.dependency_state``: the model and its layout,
   full state including ``_esm`` and ``_css``, which embed the JS and CSS), with and without
   default values (which drops the JS and CSS: a front end without the package could not draw
   it). Baseline: what ``tqdm.notebook`` displays, rebuilt with ipywidgets (an HBox of HTML,
   FloatProgress, HTML and their layouts/styles), full state.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time

from _common import Goals, Kernel, SimTime, Simulated, parse_args, table, wire_size

from batch_widget.simulator import DEFAULT_API_KEY

KERNEL_SETUP = """
import json
import batch_widget as bw
from batch_widget.widget import BatchWidget, _iso
client = bw.BatchClient({key!r}, base_url={url!r})

class EveryPoll(BatchWidget):
    "The projection before issue #7: every trait set on every poll."
    def _on_update(self, update):
        batch = update.batch
        with self.hold_sync():
            if batch is not None:
                self.status = batch.status.value
                self.analysis_mode = batch.analysis_mode or ""
                self.total = batch.total_items
                self.queued = batch.queued_items
                self.processing = batch.processing_items
                self.ready = batch.ready_items
                self.failed = batch.failed_items
                self.canceled = batch.canceled_items
                self.created_at = _iso(batch.created_at)
                self.expires_at = _iso(batch.expires_at)
                self.ended_at = _iso(batch.ended_at)
                if batch.is_terminal:
                    self.cancel_requested = False
            self.rate_per_min = update.rate_per_min
            self.eta_s = update.eta_s
            if update.updated_at is not None:
                self.updated_at = _iso(update.updated_at)
            self.interval_s = float(update.interval_s)
            self.watch_state = update.state
            self.error = update.error
            self.history = list(update.history)
        if update.state in ("done", "error"):
            self.finalize()

created = await client.create(analysis_mode="general", defaults={{"prompt": {{"input_text": "x"}}}},
                              requests=[{{"video": {{"type": "asset_id", "asset_id": f"{{i + 1:024x}}"}}}}
                                        for i in range(20)])
polls = {{"n": 0, "changed": 0, "last": None}}
def count(u):
    if u.batch is None:
        return
    key = (u.batch.status, *u.batch.counts.values())
    polls["n"] += 1
    polls["changed"] += key != polls["last"]
    polls["last"] = key
new = BatchWidget(created.batch_id, client)
old = EveryPoll(created.batch_id, client)
assert new.poller is old.poller
new.poller.add_listener(count)
print(json.dumps({{"new": new.comm.comm_id, "old": old.comm.comm_id}}))
"""

KERNEL_END = """
print(json.dumps(polls | {"last": None}))
new.close(); old.close()
"""

CHANGE_KEYS = {
    "status",
    "total",
    "queued",
    "processing",
    "ready",
    "failed",
    "canceled",
    "watch_state",
    "error",
}


def on_the_wire(seconds: float) -> dict[str, dict[str, float]]:
    with (
        Simulated(
            "--speed",
            "30",
            "--items-at-once",
            "2",
            "--item-seconds",
            "600,900",
            "--startup-seconds",
            "20,40",
            "--max-active",
            "100",
        ) as sim,
        Kernel() as kernel,
    ):
        msgs = kernel.record()
        comms = json.loads(
            kernel.run(KERNEL_SETUP.format(key=DEFAULT_API_KEY, url=sim.base_url)).strip().splitlines()[-1]
        )
        time.sleep(seconds)
        polls = json.loads(kernel.run(KERNEL_END).strip().splitlines()[-1])
        msgs = kernel.stop_recording()
    out: dict[str, dict[str, float]] = {}
    for name, comm_id in comms.items():
        updates = [
            m
            for m in msgs
            if m["msg_type"] == "comm_msg"
            and m["content"]["comm_id"] == comm_id  # type: ignore[index]
            and m["content"]["data"].get("method") == "update"  # type: ignore[index]
        ]
        changes = [m for m in updates if CHANGE_KEYS & set(m["content"]["data"]["state"])]  # type: ignore[index]
        beats = [m for m in updates if m not in changes]
        sizes = [wire_size(m) for m in updates]  # type: ignore[arg-type]
        change_sizes = [wire_size(m) for m in changes] or [0]  # type: ignore[arg-type]
        beat_sizes = [wire_size(m) for m in beats] or [0]  # type: ignore[arg-type]
        payload = [len(json.dumps(m["content"]["data"], separators=(",", ":"))) for m in changes] or [0]  # type: ignore[index]
        out[name] = {
            "polls": polls["n"],
            "changed": polls["changed"],
            "messages": len(updates),
            "change_msgs": len(changes),
            "beats": len(beats),
            "bytes": sum(sizes),
            "change_median": statistics.median(change_sizes),
            "change_max": max(change_sizes),
            "payload_median": statistics.median(payload),
            "payload_max": max(payload),
            "beat_median": statistics.median(beat_sizes),
        }
    return out


async def saved_state() -> dict[str, dict[str, int]]:
    from ipywidgets.embed import dependency_state

    from batch_widget import BatchClient
    from batch_widget.poller import BatchPoller
    from batch_widget.simulator import ManualClock, Simulator
    from batch_widget.widget import BatchWidget

    clock = ManualClock()
    with Simulator(seed=1, clock=clock) as sim:
        async with BatchClient(sim.api_key, base_url=sim.base_url, clock=SimTime(clock)) as client:
            requests = [{"video": {"type": "asset_id", "asset_id": f"{i + 1:024x}"}} for i in range(200)]
            created = await client.create(
                analysis_mode="general", defaults={"prompt": {"input_text": "x"}}, requests=requests
            )

            poller = BatchPoller(client, created.batch_id)
            w = BatchWidget(created.batch_id, client, poller=poller)
            await poller.wait()
            result = {}
            for drop in (False, True):
                state = dependency_state([w], drop_defaults=drop)
                doc = {"version_major": 2, "version_minor": 0, "state": state}
                mine = state[w.model_id]["state"]
                result["drop_defaults" if drop else "full"] = {
                    "total": len(json.dumps(doc).encode()),
                    "models": len(state),
                    "esm": len(json.dumps(mine.get("_esm", "")).encode()) if "_esm" in mine else 0,
                    "css": len(json.dumps(mine.get("_css", "")).encode()) if "_css" in mine else 0,
                }
            w.close()
    # the baseline: what tqdm.notebook displays (an HBox of HTML, FloatProgress, HTML), finished
    import ipywidgets

    bar = ipywidgets.FloatProgress(value=200, min=0, max=200, bar_style="success")
    box = ipywidgets.HBox(
        [ipywidgets.HTML("batch: 100%"), bar, ipywidgets.HTML(" 200/200 [58:31&lt;00:00, 3.42 it/min]")]
    )
    doc = {"version_major": 2, "version_minor": 0, "state": dependency_state([box], drop_defaults=False)}
    result["tqdm"] = {"total": len(json.dumps(doc).encode()), "esm": 0, "css": 0, "models": len(doc["state"])}
    box.close()
    return result


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], [("--seconds", {"type": float, "default": 45.0})])
    goals = Goals()
    wire = on_the_wire(12.0 if args.quick else args.seconds)
    new, old = wire["new"], wire["old"]
    rows = []
    for label, r in (("BatchWidget (issue #7)", new), ("every poll (before)", old)):
        unchanged = r["polls"] - r["changed"]
        rows.append(
            (
                label,
                r["polls"],
                r["changed"],
                r["messages"],
                r["change_msgs"],
                r["beats"],
                f"{r['bytes'] / max(1, r['polls']):.0f} B",
                f"{r['change_median']:.0f} / {r['change_max']:.0f} B",
                f"{r['payload_median']:.0f} / {r['payload_max']:.0f} B",
                f"{r['beats'] / max(1, unchanged):.2f}"
                if label.startswith("Batch")
                else f"{(r['messages'] - r['change_msgs']) / max(1, unchanged):.2f}",
            )
        )
    table(
        (
            "widget",
            "polls",
            "changed",
            "msgs",
            "change msgs",
            "other msgs",
            "bytes/poll",
            "change msg med/max",
            "payload med/max",
            "msgs per unchanged poll",
        ),
        rows,
        title="Traffic to the front end on iopub, same polls for both (real kernel)",
    )
    print(
        "  sizes: the comm_msg as sent (4 JSON frames + identities, delimiter, HMAC); payload: content.data"
    )
    ok_one = new["change_msgs"] == new["changed"] and new["change_max"] < 1024
    goals.add(
        "one message < 1 KB per poll that changed something",
        f"{new['change_msgs']} msgs for {new['changed']} changed polls, max {new['change_max']:.0f} B",
        f"max {old['change_max']:.0f} B",
        "1 msg, < 1024 B",
        ok_one,
    )
    unchanged_new = new["polls"] - new["changed"]
    unchanged_old = old["polls"] - old["changed"]
    goals.add(
        "no message when nothing changed",
        f"{new['beats']} heartbeats / {unchanged_new} unchanged polls",
        f"{old['messages'] - old['change_msgs']} / {unchanged_old}",
        "0 (but heartbeats)",
        new["beats"] <= max(1, unchanged_new // 3),
        "heartbeats (updated_at + interval_s, ETA) keep the view's stale hint from firing falsely; "
        "they go out at most every ~2 x max(interval, 10 s)",
    )
    goals.add(
        "bytes per poll",
        f"{new['bytes'] / max(1, new['polls']):.0f} B",
        f"{old['bytes'] / max(1, old['polls']):.0f} B",
        "report (no target)",
        None,
    )

    state = asyncio.run(saved_state())
    rows2 = []
    for key, label in (
        ("full", "BatchWidget, full state"),
        ("drop_defaults", "BatchWidget, defaults dropped"),
        ("tqdm", "tqdm.notebook-style bar (baseline)"),
    ):
        if key in state:
            s = state[key]
            rows2.append(
                (
                    label,
                    s["models"],
                    f"{s['esm'] / 1024:.1f} KB",
                    f"{s['css'] / 1024:.1f} KB",
                    f"{(s['total'] - s['esm'] - s['css']) / 1024:.1f} KB",
                    f"{s['total'] / 1024:.1f} KB",
                )
            )
    table(
        ("saved widget state (one widget)", "models", "JS (_esm)", "CSS", "rest", "total"),
        rows2,
        title="Saved widget state (application/vnd.jupyter.widget-state+json)",
    )
    full = state["full"]["total"]
    base = f"{state['tqdm']['total'] / 1024:.1f} KB (tqdm)" if "tqdm" in state else "-"
    goals.add(
        "saved state of one widget, JS included", f"{full / 1024:.1f} KB", base, "< 25 KB", full < 25 * 1024
    )
    goals.print()
    return goals.exit_code(args.strict)


if __name__ == "__main__":
    raise SystemExit(main())
