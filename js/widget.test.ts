import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import widget, { clock, duration, eta, rate, TRAITS } from "./widget";
import { fakeModel, mountView, unmountAll } from "./fake-model";

/** The pull loop listens to `revision` besides the traits the view draws. */
const PULL_LISTENERS = 1;

// ------------------------------------------------------------ fake model

type Traits = Record<(typeof TRAITS)[number], unknown>;

const NOW = Date.parse("2026-11-28T10:00:00Z");

const DEFAULTS: Traits = {
  batch_id: "batch_0123456789abcdef",
  status: "",
  analysis_mode: "general",
  total: 0,
  queued: 0,
  processing: 0,
  ready: 0,
  failed: 0,
  canceled: 0,
  created_at: "",
  expires_at: "",
  ended_at: "",
  rate_per_min: null,
  eta_s: null,
  updated_at: "",
  interval_s: 5,
  watch_state: "starting",
  error: "",
  history: [],
  cancel_requested: false,
  webhooks: [],
  peek_rows: [],
  peek_state: "",
  last_known: false,
  usage_line: "",
};

const newModel = (init: Partial<Traits> = {}) => fakeModel(DEFAULTS, init);
const mount = (init: Partial<Traits> = {}) => mountView(widget, newModel(init));

const RUNNING: Partial<Traits> = {
  status: "processing",
  total: 120,
  ready: 57,
  failed: 5,
  canceled: 0,
  processing: 8,
  queued: 50,
  created_at: "2026-11-28T09:00:00Z",
  expires_at: "2026-11-29T09:12:00Z",
  updated_at: "2026-11-28T10:00:00Z",
  watch_state: "watching",
  rate_per_min: 12.4,
  eta_s: 240,
};

const visible = (e: Element) => !e.hasAttribute("hidden");

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(NOW);
});

afterEach(() => {
  unmountAll();
  vi.useRealTimers();
});

// ------------------------------------------------------------ statuses

describe("status", () => {
  it("shows starting… before the first snapshot", () => {
    const { root, q } = mount();
    expect(q(".bw-pill").textContent).toBe("starting…");
    expect(root.dataset.status).toBe("");
    expect(q(".bw-summary").textContent).toBe("waiting for the first update…");
    expect(q(".bw-bar").getAttribute("aria-valuetext")).toBe("waiting for the first update");
  });

  it.each([
    ["pending", "pending", "queued", false],
    ["processing", "processing", "processing", false],
    ["canceling", "canceling…", "canceled", false],
    ["paused", "paused", "neutral", false],
  ])("%s: pill %s, tone %s, still running", (status, text, tone, term) => {
    const { root, q } = mount({ ...RUNNING, status });
    const pill = q(".bw-pill");
    expect(pill.textContent).toBe(text);
    expect(pill.classList.contains(`bw-tone-${tone}`)).toBe(true);
    expect(pill.dataset.status).toBe(status);
    expect(root.dataset.status).toBe(status);
    expect(root.dataset.tone).toBe(tone);
    expect(root.dataset.terminal).toBe(String(term));
    expect(root.dataset.outcome).toBe("");
    expect(q(".bw-summary").textContent).toBe("62 of 120 done");
    expect(root.className).not.toMatch(/bw-outcome-/);
  });

  it("completed with every item ready is plain success", () => {
    const { root, q } = mount({
      ...RUNNING, status: "completed", ready: 120, failed: 0, processing: 0, queued: 0,
      ended_at: "2026-11-28T09:40:00Z",
    });
    expect(q(".bw-pill").textContent).toBe("completed");
    expect(q(".bw-pill").classList.contains("bw-tone-ready")).toBe(true);
    expect(q(".bw-summary").textContent).toBe("completed: 120 ready");
    expect(root.classList.contains("bw-outcome-success")).toBe(true);
    expect(root.classList.contains("bw-terminal")).toBe(true);
    expect(root.dataset.outcome).toBe("success");
    expect(root.dataset.done).toBe("120");
  });

  it("completed with failures reads '114 ready, 6 failed' and is not success", () => {
    const { root, q } = mount({
      ...RUNNING, status: "completed", ready: 114, failed: 6, processing: 0, queued: 0,
    });
    expect(q(".bw-summary").textContent).toBe("completed: 114 ready, 6 failed");
    expect(root.classList.contains("bw-outcome-partial")).toBe(true);
    expect(root.classList.contains("bw-outcome-success")).toBe(false);
    expect(q(".bw-pill").classList.contains("bw-tone-partial")).toBe(true);
    expect(q(".bw-pill").classList.contains("bw-tone-ready")).toBe(false);
  });

  it("completed with nothing ready is a failure", () => {
    const { root, q } = mount({
      ...RUNNING, status: "completed", ready: 0, failed: 120, processing: 0, queued: 0,
    });
    expect(q(".bw-summary").textContent).toBe("completed: 120 failed");
    expect(root.classList.contains("bw-outcome-failed")).toBe(true);
    expect(q(".bw-pill").classList.contains("bw-tone-failed")).toBe(true);
  });

  it("canceled lists the non-zero outcomes in the canceled colour", () => {
    const { root, q } = mount({
      ...RUNNING, status: "canceled", ready: 50, failed: 0, canceled: 70, processing: 0, queued: 0,
      cancel_requested: true,
    });
    expect(q(".bw-pill").textContent).toBe("canceled");
    expect(q(".bw-pill").classList.contains("bw-tone-canceled")).toBe(true);
    expect(q(".bw-summary").textContent).toBe("canceled: 50 ready, 70 canceled");
    expect(root.classList.contains("bw-outcome-partial")).toBe(true);
    expect(root.dataset.terminal).toBe("true");
  });

  it("expired is terminal and red", () => {
    const { root, q } = mount({
      ...RUNNING, status: "expired", ready: 80, failed: 40, processing: 0, queued: 0,
    });
    expect(q(".bw-pill").textContent).toBe("expired");
    expect(q(".bw-pill").classList.contains("bw-tone-failed")).toBe(true);
    expect(q(".bw-summary").textContent).toBe("expired: 80 ready, 40 failed");
    expect(root.dataset.terminal).toBe("true");
  });

  it("a terminal batch with no finished items says so", () => {
    const { q } = mount({ status: "canceled", total: 3 });
    expect(q(".bw-summary").textContent).toBe("canceled: no items finished");
  });

  it("cancel_requested shows canceling… until the status is terminal", () => {
    const { model, q } = mount({ ...RUNNING, cancel_requested: true });
    expect(q(".bw-pill").textContent).toBe("canceling…");
    model.update({ status: "canceled" });
    expect(q(".bw-pill").textContent).toBe("canceled");
  });

  it("a failed watch's counts read as last known, not as the current status", () => {
    const { q, root } = mount({
      ...RUNNING, status: "pending", watch_state: "error", error: "Batch not found", last_known: true,
    });
    expect(q(".bw-pill").textContent).toBe("last known: pending");
    expect(root.dataset.lastKnown).toBe("true");
  });

  it("follows status changes in place without rebuilding the DOM", () => {
    const { model, q, root } = mount({ ...RUNNING, status: "pending" });
    const pill = q(".bw-pill");
    const seg = q(".bw-seg-ready");
    model.update({ status: "processing", ready: 60 });
    expect(q(".bw-pill")).toBe(pill);
    expect(q(".bw-seg-ready")).toBe(seg);
    expect(pill.textContent).toBe("processing");
    expect(root.dataset.ready).toBe("60");
    expect(root.querySelectorAll(".bw-root, .bw-pill").length).toBe(1);
  });
});

// ------------------------------------------------------------ bar, legend, data-*

describe("bar and counts", () => {
  it("exposes the counts as data-* on the root and in the legend", () => {
    const { root, q } = mount(RUNNING);
    expect({ ...root.dataset }).toMatchObject({
      status: "processing", total: "120", done: "62", ready: "57", failed: "5",
      canceled: "0", processing: "8", queued: "50", watchState: "watching",
    });
    expect(q('.bw-count[data-state="ready"]').textContent).toBe("57");
    expect(q('.bw-count[data-state="queued"]').textContent).toBe("50");
    expect(q('.bw-item[data-state="canceled"]').classList.contains("bw-zero")).toBe(true);
    expect(root.querySelectorAll(".bw-swatch").length).toBe(5);
  });

  it("has progressbar aria attributes", () => {
    const { q } = mount(RUNNING);
    const bar = q(".bw-bar");
    expect(bar.getAttribute("role")).toBe("progressbar");
    expect(bar.getAttribute("aria-valuemin")).toBe("0");
    expect(bar.getAttribute("aria-valuemax")).toBe("120");
    expect(bar.getAttribute("aria-valuenow")).toBe("62");
    expect(bar.getAttribute("aria-valuetext")).toBe("62 of 120 done: 57 ready, 5 failed");
  });

  it("sizes each segment by its share", () => {
    const { q } = mount(RUNNING);
    expect(q(".bw-seg-ready").style.width).toBe("47.500%");
    expect(q(".bw-seg-failed").style.width).toBe(`${((5 / 120) * 100).toFixed(3)}%`);
    expect(q(".bw-seg-canceled").style.width).toBe("0.000%");
    expect(q(".bw-seg-queued").style.width).toBe(`${((50 / 120) * 100).toFixed(3)}%`);
  });

  it("scales by max(total, sum) when counts overshoot the total", () => {
    const { q } = mount({ status: "processing", total: 10, ready: 10, queued: 10 });
    expect(q(".bw-seg-ready").style.width).toBe("50.000%");
    expect(q(".bw-seg-queued").style.width).toBe("50.000%");
    expect(q(".bw-bar").getAttribute("aria-valuenow")).toBe("10");
  });

  it("never crashes on odd values", () => {
    const { root, q } = mount({
      status: "processing", total: null, ready: "7", failed: Number.NaN, queued: -3,
      processing: undefined, history: [1, null, "x", 4], rate_per_min: Number.NaN,
      eta_s: undefined, interval_s: null, created_at: "not a date", expires_at: "nope",
    });
    expect(root.dataset.ready).toBe("7");
    expect(root.dataset.failed).toBe("0");
    expect(root.dataset.queued).toBe("0");
    expect(root.dataset.total).toBe("0");
    expect(q(".bw-seg-ready").style.width).toBe("100.000%");
    expect(visible(q(".bw-rate"))).toBe(false);
    expect(visible(q(".bw-elapsed"))).toBe(false);
    expect(visible(q(".bw-expiry"))).toBe(false);
  });
});

// ------------------------------------------------------------ stats

describe("stats", () => {
  it("shows rate, ETA, elapsed and the expiry countdown", () => {
    const { q } = mount(RUNNING);
    expect(q(".bw-rate").textContent).toBe("12.4 items/min");
    expect(q(".bw-eta").textContent).toBe("~4 min left");
    expect(q(".bw-elapsed").textContent).toBe("elapsed 1:00:00");
    expect(q(".bw-expiry").textContent).toBe("expires in 23 h 12 min");
    expect(q(".bw-expiry").classList.contains("bw-warn")).toBe(false);
    expect(q(".bw-mode").textContent).toBe("general");
  });

  it("ticks elapsed and the ETA every second with no action sent", () => {
    const { model, q } = mount(RUNNING);
    vi.advanceTimersByTime(65_000);
    expect(q(".bw-elapsed").textContent).toBe("elapsed 1:01:05");
    expect(q(".bw-eta").textContent).toBe("~3 min left");
    expect(model.actions).not.toHaveBeenCalled();
  });

  it("warns when the batch expires within an hour", () => {
    const { q } = mount({ ...RUNNING, expires_at: "2026-11-28T10:40:00Z" });
    expect(q(".bw-expiry").textContent).toBe("expires in 40 min");
    expect(q(".bw-expiry").classList.contains("bw-warn")).toBe(true);
  });

  it("hides the expiry, ETA and rate at a terminal status; elapsed runs to ended_at", () => {
    const { q } = mount({
      ...RUNNING, status: "completed", ready: 120, failed: 0, processing: 0, queued: 0,
      ended_at: "2026-11-28T09:42:07Z",
    });
    expect(visible(q(".bw-expiry"))).toBe(false);
    expect(visible(q(".bw-eta"))).toBe(false);
    expect(visible(q(".bw-rate"))).toBe(false);
    vi.advanceTimersByTime(10_000);
    expect(q(".bw-elapsed").textContent).toBe("elapsed 42:07");
  });

  it("counts 'updated … ago' from when this view saw updated_at change", () => {
    const { model, q } = mount(RUNNING);
    expect(q(".bw-updated").textContent).toBe("updated just now");
    vi.advanceTimersByTime(12_000);
    expect(q(".bw-updated").textContent).toBe("updated 12 s ago");
    // A kernel clock 5 minutes ahead of the browser does not matter after the first render.
    model.update({ updated_at: "2026-11-28T10:05:12Z" });
    expect(q(".bw-updated").textContent).toBe("updated just now");
    vi.advanceTimersByTime(3_000);
    expect(q(".bw-updated").textContent).toBe("updated 3 s ago");
  });

  it("on first render ages updated_at against the browser clock, clamped at 0", () => {
    const old = mount({ ...RUNNING, updated_at: "2026-11-28T09:59:40Z" });
    expect(old.q(".bw-updated").textContent).toBe("updated 20 s ago");
    const future = mount({ ...RUNNING, updated_at: "2026-11-28T10:03:00Z" });
    expect(future.q(".bw-updated").textContent).toBe("updated just now");
  });

  it("formats durations, clocks, rates and ETAs", () => {
    expect(duration(45)).toBe("45 s");
    expect(duration(12 * 60 + 5)).toBe("12 min");
    expect(duration(2 * 3600)).toBe("2 h");
    expect(duration(23 * 3600 + 12 * 60)).toBe("23 h 12 min");
    expect(duration(3 * 86400 + 4 * 3600)).toBe("3 d 4 h");
    expect(clock(247)).toBe("4:07");
    expect(clock(3847)).toBe("1:04:07");
    expect(rate(12.44)).toBe("12.4 items/min");
    expect(rate(250.4)).toBe("250 items/min");
    expect(rate(0.5)).toBe("30.0 items/h");
    expect(rate(0)).toBe("0.0 items/min");
    expect(eta(30)).toBe("<1 min left");
    expect(eta(269)).toBe("~4 min left");
    expect(eta(2 * 3600 + 5 * 60)).toBe("~2 h 5 min left");
  });

  it("draws a sparkline of history only with two or more points", () => {
    const { model, q } = mount({ ...RUNNING, history: [4] });
    const svg = q<SVGSVGElement>(".bw-spark");
    expect(visible(svg)).toBe(false);
    model.update({ history: [0, 5, 10] });
    expect(visible(svg)).toBe(true);
    expect(svg.querySelector("polyline")!.getAttribute("points")).toBe("0.0,19.0 40.0,10.0 80.0,1.0");
    expect(svg.getAttribute("aria-label")).toContain("last 3 polls");
  });
});

// ------------------------------------------------------------ stale hint

describe("stale hint", () => {
  it("appears after max(3 × interval, 30 s) without an update and goes on the next one", () => {
    const { model, root, q } = mount({ ...RUNNING, interval_s: 5 });
    const hint = q(".bw-stale");
    expect(visible(hint)).toBe(false);
    vi.advanceTimersByTime(30_000);
    expect(visible(hint)).toBe(false);
    vi.advanceTimersByTime(2_000);
    expect(visible(hint)).toBe(true);
    expect(root.dataset.stale).toBe("true");
    vi.advanceTimersByTime(88_000);
    expect(hint.textContent).toBe(
      "No update for 2 min: the kernel may be busy (a running cell blocks updates)",
    );
    model.update({ updated_at: "2026-11-28T10:02:00Z" });
    expect(visible(hint)).toBe(false);
    expect(root.dataset.stale).toBe("false");
  });

  it("scales with a long poll interval", () => {
    const { q } = mount({ ...RUNNING, interval_s: 60 });
    vi.advanceTimersByTime(170_000);
    expect(visible(q(".bw-stale"))).toBe(false);
    vi.advanceTimersByTime(11_000);
    expect(visible(q(".bw-stale"))).toBe(true);
  });

  it("stays away at a terminal status or when the watcher is not running", () => {
    const done = mount({ ...RUNNING, status: "completed", watch_state: "done" });
    const stopped = mount({ ...RUNNING, watch_state: "stopped" });
    vi.advanceTimersByTime(600_000);
    expect(visible(done.q(".bw-stale"))).toBe(false);
    expect(visible(stopped.q(".bw-stale"))).toBe(false);
  });

  it("also appears when the first snapshot never arrives", () => {
    const { q } = mount();
    vi.advanceTimersByTime(31_000);
    expect(visible(q(".bw-stale"))).toBe(true);
  });
});

// ------------------------------------------------------------ error banner

describe("error banner", () => {
  it("is hidden without an error", () => {
    const { q } = mount(RUNNING);
    expect(visible(q(".bw-error"))).toBe(false);
  });

  it("has a retrying look while the poller retries", () => {
    const msg = "Server error 503; retrying in 8 s (attempt 3 of 8)";
    const { q } = mount({ ...RUNNING, watch_state: "retrying", error: msg });
    const b = q(".bw-error");
    expect(visible(b)).toBe(true);
    expect(b.classList.contains("bw-error-retrying")).toBe(true);
    expect(b.classList.contains("bw-error-fatal")).toBe(false);
    expect(b.dataset.kind).toBe("retrying");
    expect(b.getAttribute("role")).toBe("status");
    expect(q(".bw-error-label").textContent).toBe("Retrying");
    expect(q(".bw-error-msg").textContent).toBe(msg);
  });

  it("has a fatal look when the watcher gave up, and clears", () => {
    const { model, q } = mount({ ...RUNNING, watch_state: "retrying", error: "Server error 503" });
    model.update({ watch_state: "error", error: "Invalid API key: set TWELVELABS_API_KEY" });
    const b = q(".bw-error");
    expect(b.classList.contains("bw-error-fatal")).toBe(true);
    expect(b.classList.contains("bw-error-retrying")).toBe(false);
    expect(b.getAttribute("role")).toBe("alert");
    expect(q(".bw-error-label").textContent).toBe("Error");
    model.update({ error: "" });
    expect(visible(b)).toBe(false);
  });
});

// ------------------------------------------------------------ hostile strings

describe("server strings are text, never markup", () => {
  const evil = "<img src=x onerror=alert(1)>";

  it("renders a hostile error, batch id, status and mode as text", () => {
    const { el, q, root } = mount({
      ...RUNNING, batch_id: evil, error: evil, status: evil, analysis_mode: evil,
      watch_state: "error",
    });
    expect(el.querySelector("img")).toBeNull();
    expect(el.querySelectorAll("*").length).toBe(root.querySelectorAll("*").length + 1);
    expect(q(".bw-id").textContent).toBe(evil);
    expect(q(".bw-id").getAttribute("title")).toBe(evil);
    expect(q(".bw-error-msg").textContent).toBe(evil);
    expect(q(".bw-pill").textContent).toBe(evil);
    expect(q(".bw-pill").classList.contains("bw-tone-neutral")).toBe(true);
    expect(root.dataset.status).toBe(evil);
    expect(q(".bw-error-msg").children.length).toBe(0);
    expect(q(".bw-id").children.length).toBe(0);
  });

  it("stays text when the hostile value arrives as an update", () => {
    const { model, el, q } = mount(RUNNING);
    const before = el.querySelectorAll("*").length;
    model.update({ error: evil, batch_id: evil });
    expect(el.querySelector("img")).toBeNull();
    expect(el.querySelectorAll("*").length).toBe(before);
    expect(q(".bw-error-msg").textContent).toBe(evil);
  });
});

// ------------------------------------------------------------ buttons

describe("cancel", () => {
  function openConfirm(q: (s: string) => HTMLElement) {
    q(".bw-cancel").click();
    vi.advanceTimersByTime(500); // past the double-click guard
  }

  it("has labelled buttons", () => {
    const { q } = mount(RUNNING);
    expect(q(".bw-refresh").getAttribute("aria-label")).toBe("Refresh");
    expect(q(".bw-cancel").getAttribute("aria-label")).toBe("Cancel batch");
    expect(q(".bw-confirm-yes").getAttribute("aria-label")).toBe("Confirm cancel batch");
    expect(q(".bw-confirm-no").getAttribute("aria-label")).toBe("Keep running");
    expect(q(".bw-cancel").getAttribute("type")).toBe("button");
  });

  it("asks to confirm, then sends {type: 'cancel'} once", () => {
    const { model, root, q } = mount(RUNNING);
    q(".bw-cancel").click();
    expect(model.actions).not.toHaveBeenCalled();
    expect(visible(q(".bw-cancel"))).toBe(false);
    expect(visible(q(".bw-confirm"))).toBe(true);
    expect(q(".bw-confirm-yes").textContent).toBe("Confirm cancel?");
    expect(root.dataset.confirming).toBe("true");
    vi.advanceTimersByTime(500);
    q(".bw-confirm-yes").click();
    expect(model.actions).toHaveBeenCalledTimes(1);
    expect(model.actions).toHaveBeenCalledWith({ type: "cancel" });
    expect(visible(q(".bw-confirm"))).toBe(false);
    expect(root.dataset.confirming).toBe("false");
    // Waiting for the kernel to accept: the button cannot send again.
    const btn = q<HTMLButtonElement>(".bw-cancel");
    expect(btn.disabled).toBe(true);
    expect(btn.textContent).toBe("Canceling…");
    btn.click();
    expect(model.actions).toHaveBeenCalledTimes(1);
    model.update({ cancel_requested: true });
    expect(visible(btn)).toBe(false);
    expect(q(".bw-pill").textContent).toBe("canceling…");
  });

  it("re-enables the button if the kernel never accepts the cancel", () => {
    const { q } = mount(RUNNING);
    openConfirm(q);
    q(".bw-confirm-yes").click();
    vi.advanceTimersByTime(10_000);
    const btn = q<HTMLButtonElement>(".bw-cancel");
    expect(btn.disabled).toBe(false);
    expect(btn.textContent).toBe("Cancel");
  });

  it("ignores the second click of a double-click on Cancel", () => {
    const { model, q } = mount(RUNNING);
    q(".bw-cancel").click();
    q(".bw-confirm-yes").click();
    expect(model.actions).not.toHaveBeenCalled();
    expect(visible(q(".bw-confirm"))).toBe(true);
  });

  it("'Keep running' and Escape revert without sending", () => {
    const { model, root, q } = mount(RUNNING);
    openConfirm(q);
    q(".bw-confirm-no").click();
    expect(visible(q(".bw-cancel"))).toBe(true);
    expect(visible(q(".bw-confirm"))).toBe(false);
    openConfirm(q);
    root.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    expect(visible(q(".bw-confirm"))).toBe(false);
    expect(model.actions).not.toHaveBeenCalled();
  });

  it("reverts on its own after about 5 s", () => {
    const { model, q } = mount(RUNNING);
    q(".bw-cancel").click();
    vi.advanceTimersByTime(4_900);
    expect(visible(q(".bw-confirm"))).toBe(true);
    vi.advanceTimersByTime(200);
    expect(visible(q(".bw-confirm"))).toBe(false);
    expect(visible(q(".bw-cancel"))).toBe(true);
    expect(model.actions).not.toHaveBeenCalled();
  });

  it.each(["completed", "canceled", "expired"])("is hidden at terminal status %s", (status) => {
    const { model, q } = mount({ ...RUNNING, status });
    expect(visible(q(".bw-cancel"))).toBe(false);
    expect(visible(q(".bw-confirm"))).toBe(false);
    q(".bw-cancel").click();
    expect(visible(q(".bw-confirm"))).toBe(false);
    expect(model.actions).not.toHaveBeenCalled();
  });

  it("is hidden once a cancel was requested or the batch is canceling", () => {
    expect(visible(mount({ ...RUNNING, cancel_requested: true }).q(".bw-cancel"))).toBe(false);
    expect(visible(mount({ ...RUNNING, status: "canceling" }).q(".bw-cancel"))).toBe(false);
  });

  it("closes an open confirm when the batch finishes meanwhile", () => {
    const { model, q } = mount(RUNNING);
    openConfirm(q);
    model.update({ status: "completed" });
    expect(visible(q(".bw-confirm"))).toBe(false);
    expect(visible(q(".bw-cancel"))).toBe(false);
    q(".bw-confirm-yes").click();
    expect(model.actions).not.toHaveBeenCalled();
  });
});

describe("refresh", () => {
  it("sends {type: 'refresh'} with a short cool-down", () => {
    const { model, q } = mount(RUNNING);
    const btn = q<HTMLButtonElement>(".bw-refresh");
    btn.click();
    expect(model.actions).toHaveBeenCalledWith({ type: "refresh" });
    expect(btn.disabled).toBe(true);
    btn.click();
    expect(model.actions).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1_000);
    expect(btn.disabled).toBe(false);
    btn.click();
    expect(model.actions).toHaveBeenCalledTimes(2);
  });

  it("is available at a terminal status too", () => {
    const { q } = mount({ ...RUNNING, status: "completed" });
    expect(visible(q(".bw-refresh"))).toBe(true);
  });
});

// ------------------------------------------------------------ lifecycle

describe("lifecycle", () => {
  it("a re-render draws the same picture from the same traits", () => {
    const model = newModel({ ...RUNNING, error: "Server error 503", watch_state: "retrying" });
    const a = document.createElement("div");
    const b = document.createElement("div");
    const d1 = widget.render({ model, el: a });
    const d2 = widget.render({ model, el: b });
    expect(b.innerHTML).toBe(a.innerHTML);
    model.update({ ready: 60, processing: 5 });
    expect(b.innerHTML).toBe(a.innerHTML);
    d1();
    d2();
  });

  it("cleanup removes every listener, timer and node", () => {
    const { model, el, dispose, q } = mount(RUNNING);
    expect(model.listenerCount()).toBe(TRAITS.length + PULL_LISTENERS);
    q(".bw-cancel").click(); // confirm timer
    q(".bw-refresh").click(); // cool-down timer
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    dispose();
    expect(model.listenerCount()).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(el.childElementCount).toBe(0);
    // Later trait changes reach nothing and throw nothing.
    expect(() => model.update({ ready: 100, status: "completed" })).not.toThrow();
  });

  it("two views of one model are independent", () => {
    const model = newModel(RUNNING);
    const a = document.createElement("div");
    const b = document.createElement("div");
    const d1 = widget.render({ model, el: a });
    const d2 = widget.render({ model, el: b });
    d1();
    expect(model.listenerCount()).toBe(TRAITS.length + PULL_LISTENERS);
    model.update({ ready: 70 });
    expect(b.querySelector<HTMLElement>(".bw-root")!.dataset.ready).toBe("70");
    d2();
    expect(model.listenerCount()).toBe(0);
  });
});

// ------------------------------------------------------------ pull (front ends that drop pushes)

describe("pull", () => {
  const pullsOf = (model: ReturnType<typeof newModel>) => model.pulls.mock.calls.map((c) => c[0]);

  it("asks once per poll interval, with its revision, while it hears nothing", () => {
    const { model } = mount({ ...RUNNING, interval_s: 5, revision: 3 } as Partial<Traits>);
    vi.advanceTimersByTime(4_000);
    expect(pullsOf(model)).toEqual([]); // heard (rendered) less than an interval ago
    vi.advanceTimersByTime(2_000);
    expect(pullsOf(model)).toEqual([{ type: "pull", revision: 3 }]);
    vi.advanceTimersByTime(60_000);
    const n = pullsOf(model).length;
    expect(n).toBeGreaterThanOrEqual(12);
    expect(n).toBeLessThanOrEqual(13); // at most one per 5 s interval
    expect(model.actions).not.toHaveBeenCalled();
  });

  it("an answer (a new revision) resets the wait; pushes make pulls a rare safety net", () => {
    const { model } = mount({ ...RUNNING, interval_s: 5, revision: 1 } as Partial<Traits>);
    vi.advanceTimersByTime(6_000);
    expect(pullsOf(model).length).toBe(1);
    model.update({ revision: 2, ready: 60 } as Partial<Traits>); // the pull's answer
    vi.advanceTimersByTime(4_000);
    expect(pullsOf(model).length).toBe(1);
    // pushes: revisions that arrive when no pull is pending
    for (let r = 3; r < 10; r++) {
      vi.advanceTimersByTime(4_000);
      model.update({ revision: r } as Partial<Traits>);
    }
    const before = pullsOf(model).length;
    vi.advanceTimersByTime(25_000); // quiet, but pushes were seen: wait for max(3 intervals, 30 s)
    expect(pullsOf(model).length).toBe(before);
    vi.advanceTimersByTime(6_000); // 30 s of silence: ask (and from now on, each interval)
    expect(pullsOf(model).length).toBe(before + 1);
  });

  it("never pulls once the batch has ended or the watch is over", () => {
    for (const init of [
      { ...RUNNING, status: "completed", ready: 120, processing: 0, queued: 0 },
      { ...RUNNING, watch_state: "error", error: "Batch not found" },
      { ...RUNNING, watch_state: "stopped" },
    ]) {
      const { model } = mount(init);
      vi.advanceTimersByTime(120_000);
      expect(pullsOf(model)).toEqual([]);
    }
  });

  it("stops when the last answer ends the batch", () => {
    const { model } = mount({ ...RUNNING, interval_s: 3 });
    vi.advanceTimersByTime(4_000);
    expect(pullsOf(model).length).toBe(1);
    model.update({ status: "completed", ready: 120, processing: 0, queued: 0, revision: 9 } as Partial<Traits>);
    vi.advanceTimersByTime(120_000);
    expect(pullsOf(model).length).toBe(1);
  });

  it("not while the page is hidden or the view detached; at once when the page shows again", () => {
    const { model, el } = mount({ ...RUNNING, interval_s: 5 });
    const hidden = vi.spyOn(document, "hidden", "get").mockReturnValue(true);
    vi.advanceTimersByTime(60_000);
    expect(pullsOf(model)).toEqual([]);
    hidden.mockReturnValue(false);
    document.dispatchEvent(new Event("visibilitychange"));
    expect(pullsOf(model).length).toBe(1);
    el.remove(); // detached (e.g. the output was cleared)
    vi.advanceTimersByTime(60_000);
    expect(pullsOf(model).length).toBe(1);
  });

  it("cleanup stops the loop", () => {
    const { model, dispose } = mount({ ...RUNNING, interval_s: 5 });
    dispose();
    vi.advanceTimersByTime(60_000);
    expect(pullsOf(model)).toEqual([]);
  });
});

// ------------------------------------------------------------ webhooks, and a watch with no status

describe("webhooks", () => {
  it("one line per endpoint; server strings as text", () => {
    const { q, qa } = mount({
      ...RUNNING, status: "completed",
      webhooks: [
        { url: "https://example.com/hook", delivered: true, attempts: 1, last_error: null },
        { url: "https://example.com/<b>x</b>", delivered: false, attempts: 3, last_error: "<img src=x> 500" },
      ],
    } as Partial<Traits>);
    expect(visible(q(".bw-webhooks"))).toBe(true);
    const lines = qa(".bw-webhook").map((e) => e.textContent);
    expect(lines).toEqual([
      "webhook https://example.com/hook delivered (1 attempt)",
      "webhook https://example.com/<b>x</b> not delivered (3 attempts): <img src=x> 500",
    ]);
    expect(q(".bw-webhooks").querySelector("b, img")).toBeNull();
  });

  it("hidden when there are none, and malformed entries are tolerated", () => {
    const { q, model } = mount(RUNNING);
    expect(visible(q(".bw-webhooks"))).toBe(false);
    model.update({ webhooks: [null, 7, { url: 5, attempts: "x" }] } as Partial<Traits>);
    expect(q(".bw-webhook").textContent).toBe("webhook 5 not delivered (0 attempts)");
  });
});

describe("usage", () => {
  const USED = "1.50 h analysed (4 completed) · 41k in / 312 out tokens · not billed: 1 failed, 0 canceled";

  it("one line at the end once the kernel measured it; server text as text; hidden before", () => {
    const { q, model } = mount(RUNNING);
    expect(visible(q(".bw-usage"))).toBe(false);
    model.update({ status: "completed", ready: 4, failed: 1, queued: 0, processing: 0, usage_line: USED } as Partial<Traits>);
    expect(visible(q(".bw-usage"))).toBe(true);
    expect(q(".bw-usage").textContent).toBe(`usage: ${USED}`);
    model.update({ usage_line: "<b>x</b>" } as Partial<Traits>);
    expect(q(".bw-usage").querySelector("b")).toBeNull();
    model.update({ usage_line: 7 } as Partial<Traits>); // malformed: shown as what it is
    expect(q(".bw-usage").textContent).toBe("usage: 7");
  });
});

describe("a watch that ended before any status", () => {
  it.each([
    ["error", "the watch ended before any status arrived"],
    ["stopped", "the watch was stopped before any status arrived"],
  ])("%s: says so instead of 'waiting'", (ws, text) => {
    const { q } = mount({ watch_state: ws, error: ws === "error" ? "Batch not found" : "" });
    expect(q(".bw-summary").textContent).toBe(text);
    expect(q(".bw-bar").getAttribute("aria-valuetext")).toBe(text);
  });
});

// ------------------------------------------------------------ peek

describe("peek", () => {
  const HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>";
  const ROWS = [
    { batch_id: "b1", custom_id: "vid-1", status: "ready", output: "A man walks a dog.", error: "" },
    { batch_id: "b1", custom_id: HOSTILE, status: "ready", output: HOSTILE, error: "" },
    { batch_id: "b1", custom_id: "vid-3", status: "failed", output: "", error: "video_unreadable: <b>bad</b>" },
  ];

  it("the Peek button asks the kernel once; no peek is fetched on a timer", () => {
    const { model, q } = mount(RUNNING);
    vi.advanceTimersByTime(120_000);
    expect(model.actions).not.toHaveBeenCalled();
    expect(visible(q(".bw-peek"))).toBe(false);
    q<HTMLButtonElement>(".bw-peek-btn").click();
    expect(model.actions).toHaveBeenCalledTimes(1);
    expect(model.actions).toHaveBeenCalledWith({ type: "peek" });
    model.update({ peek_state: "loading" } as Partial<Traits>);
    expect(q<HTMLButtonElement>(".bw-peek-btn").disabled).toBe(true);
    expect(q(".bw-peek-state").textContent).toBe("fetching…");
  });

  it("shows the rows as text, never markup, with the failure's error, and offers Cancel batch", () => {
    const { model, q, qa } = mount(RUNNING);
    model.update({ peek_rows: ROWS, peek_state: "" } as Partial<Traits>);
    expect(visible(q(".bw-peek"))).toBe(true);
    const cells = qa(".bw-peek-row").map((tr) => [...tr.children].map((td) => td.textContent));
    expect(cells).toEqual([
      ["vid-1", "ready", "A man walks a dog."],
      [HOSTILE, "ready", HOSTILE],
      ["vid-3", "failed", "video_unreadable: <b>bad</b>"],
    ]);
    expect(q(".bw-peek").querySelector("img, script, b")).toBeNull();
    expect(qa(".bw-peek-failed").length).toBe(1);
    // Cancel batch next to it opens the same confirm step as the header's Cancel
    q<HTMLButtonElement>(".bw-peek-cancel").click();
    expect(visible(q(".bw-confirm"))).toBe(true);
    expect(model.actions).not.toHaveBeenCalled();
  });

  it("says why a peek failed; the button is hidden once the batch has ended", () => {
    const { model, q } = mount(RUNNING);
    model.update({ peek_state: "Peek failed: Server error 503" } as Partial<Traits>);
    expect(q(".bw-peek-state").textContent).toBe("Peek failed: Server error 503");
    expect(q(".bw-peek-state").classList.contains("bw-peek-failed")).toBe(true);
    model.update({ status: "completed", ready: 120, processing: 0, queued: 0 } as Partial<Traits>);
    expect(visible(q(".bw-peek-btn"))).toBe(false);
  });
});
