import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import job, { eta, parseRow, size, thousands, tone, TRAITS, uploadLine } from "./job";
import { fakeModel, mountView, unmountAll } from "./fake-model";

/** The pull loop listens to `revision` besides the traits the view draws. */
const PULL_LISTENERS = 1;

type Traits = Record<(typeof TRAITS)[number], unknown>;

const DEFAULTS: Traits = {
  state: "idle",
  message: "",
  total: 0,
  ready: 0,
  failed: 0,
  canceled: 0,
  processing: 0,
  queued: 0,
  waiting: 0,
  batches: [],
  active: null,
  max_active: 5,
  eta_s: null,
  error: "",
  cancel_requested: false,
  manifest: "many_videos.manifest.json",
  updated_at: "",
  interval_s: 5,
  peek_rows: [],
  peek_state: "",
  uploads_uploading: 0,
  uploads_processing: 0,
  uploads_ready: 0,
  uploads_failed: 0,
  uploads_bytes_sent: 0,
  uploads_bytes_total: 0,
  uploads_rate: 0,
  usage_line: "",
};

const newModel = (init: Partial<Traits> = {}) => fakeModel(DEFAULTS, init);
const mount = (init: Partial<Traits> = {}) => mountView(job, newModel(init));

const batch = (chunk: number, extra: Record<string, unknown> = {}) => ({
  chunk, attempt: 1, batch_id: `${chunk}`.padStart(24, "a"), state: "created", status: "processing",
  total: 1000, queued: 500, processing: 100, ready: 380, failed: 20, canceled: 0, eta_s: 600,
  error: "", note: "", resubmit_of: [], ...extra,
});

const RUNNING: Partial<Traits> = {
  state: "waiting",
  message: "waiting for a free slot (5 of 5 active)",
  total: 2500,
  ready: 760,
  failed: 40,
  processing: 200,
  queued: 1000,
  waiting: 500,
  active: 5,
  eta_s: 1800,
  batches: [
    batch(0),
    batch(1),
    { ...batch(2), batch_id: "", state: "planned", status: "waiting", total: 500, queued: 0, processing: 0, ready: 0, failed: 0, eta_s: null },
  ],
};

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(Date.parse("2026-11-28T10:00:00Z"));
});
afterEach(() => {
  unmountAll();
  vi.useRealTimers();
});

describe("overall view", () => {
  it("draws the stacked bar, legend and title from the traits", () => {
    const { root, q, qa } = mount(RUNNING);
    expect(q(".bw-job-title").textContent).toBe("2,500 rows · 3 batches (2 submitted)");
    expect(q<HTMLElement>(".bw-seg-ready").style.width).toBe("30.400%");
    expect(q<HTMLElement>(".bw-seg-waiting").style.width).toBe("20.000%");
    expect(qa(".bw-bar .bw-seg")).toHaveLength(6);
    expect(q('.bw-count[data-state="waiting"]').textContent).toBe("500");
    expect(q(".bw-bar").getAttribute("aria-valuenow")).toBe("800");
    expect(q(".bw-summary").textContent).toBe("800 of 2,500 rows done · ~30 min left · 5 of 5 slots in use");
    expect(root.dataset.state).toBe("waiting");
    expect(q(".bw-pill").textContent).toBe("waiting");
  });

  it("shows the scheduler's message as a live status", () => {
    const { q, model } = mount(RUNNING);
    const msg = q(".bw-job-message");
    expect(msg.getAttribute("role")).toBe("status");
    expect(msg.textContent).toBe("waiting for a free slot (5 of 5 active)");
    model.update({ message: "", state: "running" });
    expect(msg.hasAttribute("hidden")).toBe(true);
  });

  it("colours a finished job by its outcome", () => {
    const { q, model } = mount(RUNNING);
    model.update({ state: "done", waiting: 0, queued: 0, processing: 0, ready: 2460, failed: 40 });
    expect(q(".bw-pill").className).toContain("bw-tone-partial");
    expect(q(".bw-summary").textContent).toBe("done: 2500 of 2,500 rows finished (2460 ready, 40 failed, 0 canceled)");
    expect(q(".bw-cancel").hasAttribute("hidden")).toBe(true);
  });
});

describe("batch rows", () => {
  it("has one row per chunk, waiting chunks included", () => {
    const { qa } = mount(RUNNING);
    const rows = qa("tbody tr");
    expect(rows).toHaveLength(3);
    expect(rows[0].dataset.chunk).toBe("0");
    expect(rows[0].querySelector(".bw-job-counts")!.textContent).toBe("400/1,000 · 20 failed");
    expect(rows[0].querySelector(".bw-job-eta")!.textContent).toBe("~10 min left");
    expect(rows[2].textContent).toContain("500 rows waiting");
    expect(rows[2].querySelector(".bw-id")!.textContent).toBe("—");
    expect(rows[2].querySelector(".bw-pill")!.className).toContain("bw-tone-queued");
  });

  it("marks retries and problems", () => {
    const { qa, model } = mount(RUNNING);
    model.update({
      state: "attention",
      batches: [
        batch(0, { status: "completed", queued: 0, processing: 0, ready: 980, failed: 20 }),
        batch(1, { state: "uncertain", status: "uncertain", batch_id: "", error: "a create got no answer" }),
        batch(2, { attempt: 2, resubmit_of: [0], total: 20, status: "pending", queued: 20, ready: 0, failed: 0, processing: 0 }),
      ],
    });
    const rows = qa("tbody tr");
    expect(rows[0].querySelector(".bw-pill")!.className).toContain("bw-tone-partial");
    expect(rows[1].querySelector(".bw-job-problem")!.textContent).toBe("a create got no answer");
    expect(rows[1].querySelector(".bw-pill")!.className).toContain("bw-tone-failed");
    const retry = rows[2].querySelector<HTMLElement>(".bw-job-retry")!;
    expect(retry.textContent).toBe(" retry 1");
    expect(retry.title).toBe("retries rows of #0");
  });

  it("writes server strings as text, never as HTML", () => {
    const evil = "<img src=x onerror=alert(1)>";
    const { el } = mount({ ...RUNNING, error: evil, message: evil, manifest: evil, batches: [batch(0, { batch_id: evil, status: evil })] });
    expect(el.querySelector("img")).toBeNull();
    expect(el.textContent).toContain(evil);
  });

  it("tolerates malformed rows", () => {
    const row = parseRow({ chunk: "x", total: -3, ready: "7", resubmit_of: "no" });
    expect(row).toMatchObject({ chunk: 0, total: 0, attempt: 1, resubmit_of: [] });
    expect(row.counts.ready).toBe(7);
    expect(parseRow(null).status).toBe("");
    expect(tone(parseRow({ status: "paused" }))).toBe("neutral");
  });
});

describe("upload stage", () => {
  const UPLOADING: Partial<Traits> = {
    ...RUNNING,
    uploads_uploading: 12,
    uploads_processing: 5,
    uploads_ready: 80,
    uploads_failed: 1,
    uploads_bytes_sent: 34_000_000,
    uploads_bytes_total: 120_000_000,
    uploads_rate: 8_100_000,
  };

  it("is one line above the batch table", () => {
    const { q, root } = mount(UPLOADING);
    const line = q<HTMLElement>(".bw-job-uploads");
    expect(line.textContent).toBe("uploads: 12 uploading (34 MB of 120 MB, 8.1 MB/s) · 5 processing · 80 ready · 1 failed");
    expect(line.hasAttribute("hidden")).toBe(false);
    expect(line.nextElementSibling).toBe(root.querySelector(".bw-job-table"));
    expect(line.classList.contains("bw-job-uploads-failed")).toBe(true);
  });

  it("is hidden when the job uploads nothing, and follows the traits", () => {
    const { q, model } = mount(RUNNING);
    const line = q<HTMLElement>(".bw-job-uploads");
    expect(line.hasAttribute("hidden")).toBe(true);
    expect(line.textContent).toBe("");
    model.update({ uploads_uploading: 3, uploads_bytes_total: 0 } as Partial<Traits>); // URLs: no byte count
    expect(line.hasAttribute("hidden")).toBe(false);
    expect(line.textContent).toBe("uploads: 3 uploading");
    model.update({ uploads_uploading: 0, uploads_ready: 3 } as Partial<Traits>);
    expect(line.textContent).toBe("uploads: 3 ready");
    expect(line.classList.contains("bw-job-uploads-failed")).toBe(false);
  });

  it("tolerates malformed counts and formats sizes as the kernel does", () => {
    const { q } = mount({ ...RUNNING, uploads_uploading: "x", uploads_ready: -4, uploads_failed: "2", uploads_rate: "fast" });
    expect(q(".bw-job-uploads").textContent).toBe("uploads: 2 failed");
    expect([size(512), size(8_100_000), size(34_000_000), size(2.5e12), size(-1)]).toEqual(
      ["512 B", "8.1 MB", "34 MB", "2500 GB", "0 B"]);
    expect(uploadLine({ uploading: 1, processing: 0, ready: 0, failed: 0, sent: 1500, total: 9600, rate: 0 })).toBe(
      "uploads: 1 uploading (1.5 kB of 9.6 kB)");
  });
});

describe("usage", () => {
  const USED = "2,512.4 h analysed (2,490 completed) · 21.3M in / 890k out tokens · not billed: 10 failed, 0 canceled";

  it("one line under the batches once the job has ended; hidden before; text only", () => {
    const { q, model, root } = mount(RUNNING);
    const line = q<HTMLElement>(".bw-usage");
    expect(line.hasAttribute("hidden")).toBe(true);
    model.update({ state: "done", ready: 2490, failed: 10, usage_line: USED } as Partial<Traits>);
    expect(line.hasAttribute("hidden")).toBe(false);
    expect(line.textContent).toBe(`usage: ${USED}`);
    expect(line.previousElementSibling).toBe(root.querySelector(".bw-job-table"));
    model.update({ usage_line: "<img src=x>" } as Partial<Traits>);
    expect(line.querySelector("img")).toBeNull();
    model.update({ usage_line: "" } as Partial<Traits>); // resubmitted: live again
    expect(line.hasAttribute("hidden")).toBe(true);
  });
});

describe("cancel all", () => {
  it("asks for confirmation, ignores a double click, then sends one message", () => {
    const { q, model } = mount(RUNNING);
    const cancel = q<HTMLButtonElement>(".bw-cancel");
    cancel.click();
    expect(q(".bw-confirm").hasAttribute("hidden")).toBe(false);
    expect(cancel.hasAttribute("hidden")).toBe(true);
    q<HTMLButtonElement>(".bw-confirm-yes").click(); // too soon: a double click
    expect(model.actions).not.toHaveBeenCalled();
    vi.advanceTimersByTime(400);
    q<HTMLButtonElement>(".bw-confirm-yes").click();
    expect(model.actions).toHaveBeenCalledTimes(1);
    expect(model.actions).toHaveBeenCalledWith({ type: "cancel_all" });
    expect(cancel.textContent).toBe("Canceling…");
    expect(cancel.disabled).toBe(true);
  });

  it("closes on Escape, on Keep running and on its own", () => {
    const { q, root } = mount(RUNNING);
    q<HTMLButtonElement>(".bw-cancel").click();
    root.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }));
    expect(q(".bw-confirm").hasAttribute("hidden")).toBe(true);
    q<HTMLButtonElement>(".bw-cancel").click();
    q<HTMLButtonElement>(".bw-confirm-no").click();
    expect(q(".bw-confirm").hasAttribute("hidden")).toBe(true);
    q<HTMLButtonElement>(".bw-cancel").click();
    vi.advanceTimersByTime(5100);
    expect(q(".bw-confirm").hasAttribute("hidden")).toBe(true);
  });

  it("refresh sends a message; buttons are labelled", () => {
    const { q, model } = mount(RUNNING);
    q<HTMLButtonElement>(".bw-refresh").click();
    expect(model.actions).toHaveBeenCalledWith({ type: "refresh" });
    for (const b of ["bw-refresh", "bw-cancel", "bw-confirm-yes", "bw-confirm-no"]) {
      expect(q(`.${b}`).getAttribute("aria-label")).toBeTruthy();
      expect(q<HTMLButtonElement>(`.${b}`).type).toBe("button");
    }
  });
});

describe("life cycle and helpers", () => {
  it("cleans up listeners and DOM", () => {
    const { model, el, dispose } = mount(RUNNING);
    expect(model.listenerCount()).toBe(TRAITS.length + PULL_LISTENERS);
    dispose();
    expect(model.listenerCount()).toBe(0);
    expect(el.querySelector(".bw-root")).toBeNull();
  });

  it("formats numbers", () => {
    expect(thousands(2500)).toBe("2,500");
    expect(thousands(1234567)).toBe("1,234,567");
    expect(eta(30)).toBe("<1 min left");
    expect(eta(3700)).toBe("~1 h 2 min left");
    expect(eta(3 * 86400 + 600)).toBe("~72 h 10 min left"); // hours, no days, in the job view
  });
});

describe("pull", () => {
  it("asks once per poll interval while running, never once the job has finished", () => {
    const { model } = mount({ state: "running", total: 10, processing: 10, interval_s: 4, revision: 2 } as Partial<Traits>);
    vi.advanceTimersByTime(41_000);
    const pulls = model.pulls.mock.calls.map((c) => c[0]);
    expect(pulls.length).toBeGreaterThanOrEqual(9);
    expect(pulls.length).toBeLessThanOrEqual(10);
    expect(pulls[0]).toEqual({ type: "pull", revision: 2 });
    model.update({ state: "done", ready: 10, processing: 0, revision: 3 } as Partial<Traits>);
    vi.advanceTimersByTime(60_000);
    expect(model.pulls.mock.calls.length).toBe(pulls.length);
    expect(model.actions).not.toHaveBeenCalled();
  });
});

describe("peek", () => {
  it("asks once when pressed; the table names each row's batch; text only", () => {
    const { model, q, qa } = mount(RUNNING);
    q<HTMLButtonElement>(".bw-peek-btn").click();
    expect(model.actions).toHaveBeenCalledWith({ type: "peek" });
    model.update({
      peek_rows: [{ batch_id: "6a1f0c2e9b3d4e5f60718293", custom_id: "vid-00001", status: "ready",
                    output: "<i>fine</i>", error: "" }],
    } as Partial<Traits>);
    const cells = [...qa(".bw-peek-row")[0].children].map((td) => td.textContent);
    expect(cells).toEqual(["718293", "vid-00001", "ready", "<i>fine</i>"]);
    expect(q(".bw-peek").querySelector("i")).toBeNull();
  });
});
