/**
 * batch_widget front end: the live view of one TwelveLabs batch.
 *
 * An anywidget front-end module. `render` draws ONLY from the model's traits
 * (the kernel's poller is the single source of truth), never fetches, and sends
 * user actions (`{type: "cancel"}`, `{type: "refresh"}`) and pulls (`{type: "pull",
 * revision}`, see `pullLoop` in common.ts) as custom messages.
 * Everything kept here is throw-away view state (which confirm step is open,
 * when this view last saw `updated_at` change), so a re-render redraws the same
 * picture. Server strings are only ever written with textContent/setAttribute.
 */

import {
  actionButtons, count, duration, eta, h, listen, optNum, peekPanel, pullLoop, records, setAttr, setText,
  show, stackedBar, str, time, type RenderProps,
} from "./common";

export type { Model, RenderProps } from "./common";
export { duration, eta };

/** Every synced trait the view reads; a change of any of them triggers a redraw. */
export const TRAITS = [
  "batch_id", "status", "analysis_mode",
  "total", "queued", "processing", "ready", "failed", "canceled",
  "created_at", "expires_at", "ended_at",
  "rate_per_min", "eta_s", "updated_at", "interval_s",
  "watch_state", "error", "history", "cancel_requested", "webhooks", "peek_rows", "peek_state",
  "last_known", "usage_line",
] as const;

/** Bar / legend order: finished outcomes first, then work in flight. */
const STATES = ["ready", "failed", "canceled", "processing", "queued"] as const;
type State = (typeof STATES)[number];

const TERMINAL = new Set(["completed", "canceled", "expired"]);
/** Watch states in which the poller is not running, so silence is expected. */
const IDLE_WATCH = new Set(["done", "error", "stopped"]);
const REFRESH_MS = 1000; // refresh button cool-down

// ---------------------------------------------------------------- helpers

/** "4:07" or "1:04:07". */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const pad = (n: number) => String(n).padStart(2, "0");
  const h = Math.floor(s / 3600);
  const m = Math.floor(s / 60) % 60;
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

/** "12.4 items/min"; slow batches read better per hour. */
export function rate(perMin: number): string {
  const r = Math.max(0, perMin);
  if (r > 0 && r < 1) {
    const ph = r * 60;
    return `${ph.toFixed(ph >= 100 ? 0 : 1)} items/h`;
  }
  return `${r.toFixed(r >= 100 ? 0 : 1)} items/min`;
}

/** "114 ready, 6 failed" — the non-zero finished outcomes only. */
export function outcomes(c: Record<State, number>): string {
  return (["ready", "failed", "canceled"] as const)
    .filter((k) => c[k] > 0)
    .map((k) => `${c[k]} ${k}`)
    .join(", ");
}

/** What the view says before any status: waiting, or why the watch ended without one. */
export function noStatus(watchState: string): string {
  if (watchState === "error") return "the watch ended before any status arrived";
  if (watchState === "stopped") return "the watch was stopped before any status arrived";
  return "waiting for the first update…";
}

/** One webhook endpoint's delivery of the batch-completion notification, as the kernel sends it. */
export interface Webhook {
  url: string;
  delivered: boolean;
  attempts: number;
  last_error: string;
}

/** The `webhooks` trait, each field checked (anything malformed is dropped or emptied). */
export function webhookRows(raw: unknown): Webhook[] {
  return records(raw).map((w) => ({
      url: str(w.url),
      delivered: w.delivered === true,
      attempts: count(w.attempts),
      last_error: str(w.last_error),
    }));
}

/** "delivered (1 attempt)", "not delivered (3 attempts): HTTP 500". */
export function webhookState(w: Webhook): string {
  const tries = `${w.attempts} attempt${w.attempts === 1 ? "" : "s"}`;
  if (w.delivered) return `delivered (${tries})`;
  return `not delivered (${tries})${w.last_error ? `: ${w.last_error}` : ""}`;
}

type Tone = "queued" | "processing" | "ready" | "failed" | "canceled" | "partial" | "neutral";
type Outcome = "" | "success" | "partial" | "failed";

// ---------------------------------------------------------------- render

function render({ model, el }: RenderProps): () => void {
  const root = h("div", "bw-root");

  // Header: pill, batch id, mode, buttons.
  const head = h("div", "bw-head", root);
  const pill = h("span", "bw-pill", head);
  const id = h("span", "bw-id", head);
  const mode = h("span", "bw-mode", head);
  const buttons = actionButtons(
    root,
    head,
    {
      refresh: ["Refresh", "Refresh"],
      cancel: ["Cancel", "Cancel batch"],
      yes: ["Confirm cancel?", "Confirm cancel batch"],
      no: ["Keep running", "Keep running"],
    },
    () => canCancel(),
    () => model.send({ type: "cancel" }),
  );
  const refreshBtn = buttons.refreshBtn;
  refreshBtn.title = "Poll the batch now";

  // Stacked bar + legend, and the peek under them.
  const { bar, draw: drawBar } = stackedBar(root, STATES, "Batch progress", true);
  const peek = peekPanel(
    root,
    model,
    { label: ["Cancel batch", "Cancel batch"], open: buttons.openCancel, allowed: () => canCancel() },
    false,
  );

  // Summary, stats, sparkline, hints.
  const summary = h("div", "bw-summary", root);
  const stats = h("div", "bw-stats", root);
  const rateEl = h("span", "bw-stat bw-rate", stats);
  const etaEl = h("span", "bw-stat bw-eta", stats);
  const elapsedEl = h("span", "bw-stat bw-elapsed", stats);
  const expiryEl = h("span", "bw-stat bw-expiry", stats);
  const updatedEl = h("span", "bw-stat bw-updated", stats);
  const SVG = "http://www.w3.org/2000/svg";
  const spark = document.createElementNS(SVG, "svg");
  spark.setAttribute("class", "bw-spark");
  spark.setAttribute("viewBox", "0 0 80 20");
  spark.setAttribute("preserveAspectRatio", "none");
  spark.setAttribute("role", "img");
  const line = document.createElementNS(SVG, "polyline");
  spark.appendChild(line);
  stats.appendChild(spark);
  const hooks = h("div", "bw-webhooks", root);
  const usage = h("div", "bw-usage", root);
  const stale = h("div", "bw-stale", root);
  stale.setAttribute("role", "status");
  const banner = h("div", "bw-error", root);
  const bannerLabel = h("b", "bw-error-label", banner);
  const bannerMsg = h("span", "bw-error-msg", banner);

  el.appendChild(root);

  // ---- view-only state (nothing here needs to survive a reload)
  const mountedAt = Date.now();
  let seenUpdated: string | null = null; // last updated_at value this view saw
  let seenAt = mountedAt; // browser time at which it was seen
  let historyKey = "";
  let refreshBusy = false;
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;

  const get = (k: (typeof TRAITS)[number]) => model.get(k);
  const status = () => str(get("status"));
  const terminal = () => TERMINAL.has(status());
  const canCancel = () =>
    !terminal() && !get("cancel_requested") && status() !== "canceling";

  /** Remember when this view first saw the current updated_at (browser clock). */
  function noteUpdated(u: string) {
    if (u === seenUpdated) return;
    const now = Date.now();
    if (seenUpdated === null) {
      // First render: age from the kernel's timestamp, clamped at >= 0 (clocks differ).
      const t = time(u);
      seenAt = t === null ? now : Math.min(now, t);
    } else {
      seenAt = now;
    }
    seenUpdated = u;
  }

  function drawButtons() {
    buttons.draw();
    refreshBtn.disabled = refreshBusy;
    show(buttons.peekBtn, !terminal());
    buttons.peekBtn.disabled = str(get("peek_state")) === "loading";
  }

  /** Everything that moves with the browser clock; runs every second. */
  function tick() {
    const now = Date.now();
    const st = status();
    const term = terminal();
    const u = str(get("updated_at"));
    const age = Math.max(0, (now - seenAt) / 1000);
    const tUpd = time(u);
    // "Now" on the kernel's clock: its last timestamp plus the time this view has waited.
    const nowK = tUpd === null ? now : tUpd + (now - seenAt);

    show(updatedEl, !!u);
    setText(updatedEl, age < 2 ? "updated just now" : `updated ${duration(age)} ago`);

    const interval = optNum(get("interval_s")) ?? 0;
    const isStale =
      !term && !IDLE_WATCH.has(str(get("watch_state"))) && age > Math.max(3 * interval, 30);
    show(stale, isStale);
    root.classList.toggle("bw-stale-on", isStale);
    root.dataset.stale = String(isStale);
    if (isStale) {
      setText(
        stale,
        `No update for ${duration(age)}: the kernel may be busy (a running cell blocks updates)`,
      );
    }

    const created = time(str(get("created_at")));
    const ended = time(str(get("ended_at"))) ?? (term ? tUpd : nowK);
    show(elapsedEl, created !== null && ended !== null);
    if (created !== null && ended !== null) {
      setText(elapsedEl, `elapsed ${clock((ended - created) / 1000)}`);
    }

    const exp = time(str(get("expires_at")));
    show(expiryEl, !term && exp !== null);
    if (!term && exp !== null) {
      const left = (exp - nowK) / 1000;
      setText(expiryEl, left > 0 ? `expires in ${duration(left)}` : "expiry time passed");
      expiryEl.classList.toggle("bw-warn", left < 3600);
    }

    // The ETA counts down between polls; the kernel corrects it on the next one.
    const e = optNum(get("eta_s"));
    show(etaEl, !term && e !== null && st !== "");
    if (e !== null) setText(etaEl, eta(Math.max(0, e - age)));
  }

  /** Redraw from the traits. Cheap: only changed text/attributes touch the DOM. */
  function update() {
    const st = status();
    const term = terminal();
    const ws = str(get("watch_state"));
    const cancelReq = !!get("cancel_requested");
    // the watch failed (the batch deleted...): its counts are the last seen, not the batch as it is
    const lastKnown = !!get("last_known") && !term;
    noteUpdated(str(get("updated_at")));

    const c = {} as Record<State, number>;
    let sum = 0;
    for (const s of STATES) sum += c[s] = count(get(s));
    const total = count(get("total"));
    const done = c.ready + c.failed + c.canceled;
    const scale = Math.max(total, sum);
    const bad = c.failed + c.canceled;
    const outcome: Outcome = !term ? "" : bad === 0 ? "success" : c.ready === 0 ? "failed" : "partial";

    // Pill.
    let text = st;
    let tone: Tone = "neutral";
    if (lastKnown) {
      text = `last known: ${st}`;
      tone = "queued";
    } else if ((cancelReq && !term) || st === "canceling") {
      text = "canceling…";
      tone = "canceled";
    } else if (st === "") {
      text = IDLE_WATCH.has(ws) ? ws : "starting…";
      tone = ws === "error" ? "failed" : "queued";
    } else if (st === "pending") tone = "queued";
    else if (st === "processing") tone = "processing";
    else if (st === "canceled") tone = "canceled";
    else if (st === "expired") tone = "failed";
    else if (st === "completed") {
      tone = outcome === "success" ? "ready" : outcome === "partial" ? "partial" : "failed";
    }
    setText(pill, text);
    pill.className = `bw-pill bw-tone-${tone}`;
    setAttr(pill, "data-status", st);
    setAttr(pill, "title", text); // the full text when a long unknown status is cut short

    // Root: classes and data-* for styling and for browser tests.
    const d = root.dataset;
    d.status = st;
    d.tone = tone;
    d.outcome = outcome;
    d.terminal = String(term);
    d.watchState = ws;
    d.cancelRequested = String(cancelReq);
    d.lastKnown = String(lastKnown);
    d.total = String(total);
    d.done = String(done);
    for (const s of STATES) d[s] = String(c[s]);
    root.classList.toggle("bw-terminal", term);
    for (const o of ["success", "partial", "failed"]) {
      root.classList.toggle(`bw-outcome-${o}`, outcome === o);
    }

    // Id and mode.
    const bid = str(get("batch_id"));
    setText(id, bid);
    setAttr(id, "title", bid);
    const m = str(get("analysis_mode"));
    show(mode, !!m);
    setText(mode, m.replace(/_/g, " "));

    // Bar, legend.
    drawBar(c, scale);
    const list = outcomes(c);
    setAttr(bar, "aria-valuemax", String(Math.max(total, done)));
    setAttr(bar, "aria-valuenow", String(done));
    setAttr(
      bar,
      "aria-valuetext",
      st === "" && !scale
        ? noStatus(ws).replace(/…$/, "")
        : `${done} of ${total} done${list ? `: ${list}` : ""}`,
    );

    // Summary.
    setText(
      summary,
      term
        ? `${st}: ${list || "no items finished"}`
        : st === "" && !scale
          ? noStatus(ws)
          : `${done} of ${total} done`,
    );

    // Rate.
    const r = optNum(get("rate_per_min"));
    show(rateEl, r !== null && !term);
    if (r !== null) setText(rateEl, rate(r));

    // Sparkline.
    const raw = get("history");
    const hist = (Array.isArray(raw) ? raw : []).map((v) => optNum(v) ?? 0).map((v) => Math.max(0, v));
    const key = hist.join(",");
    if (key !== historyKey) {
      historyKey = key;
      const n = hist.length;
      const max = Math.max(...hist, 1e-9);
      line.setAttribute(
        "points",
        n < 2 ? "" : hist.map((v, i) => `${((i / (n - 1)) * 80).toFixed(1)},${(19 - (v / max) * 18).toFixed(1)}`).join(" "),
      );
      if (n) spark.setAttribute("aria-label", `throughput, last ${n} polls; latest ${rate(hist[n - 1])}`);
    }
    show(spark, hist.length >= 2);

    // Error banner: "retrying" (amber) while the poller retries, fatal (red) otherwise.
    const err = str(get("error"));
    show(banner, !!err);
    const retrying = ws === "retrying";
    banner.classList.toggle("bw-error-retrying", retrying);
    banner.classList.toggle("bw-error-fatal", !retrying);
    setAttr(banner, "data-kind", retrying ? "retrying" : "fatal");
    setAttr(banner, "role", retrying ? "status" : "alert");
    setText(bannerLabel, retrying ? "Retrying" : "Error");
    setText(bannerMsg, err);

    // Webhooks: the batch-completion notification, per endpoint (server strings as text).
    const rows = webhookRows(get("webhooks"));
    const hooksKey = JSON.stringify(rows);
    if (hooks.dataset.key !== hooksKey) {
      hooks.dataset.key = hooksKey;
      hooks.replaceChildren(
        ...rows.map((w) => {
          const line = h("div", `bw-webhook ${w.delivered ? "bw-webhook-ok" : "bw-webhook-pending"}`);
          line.append("webhook ");
          h("span", "bw-webhook-url", line, w.url);
          line.append(` ${webhookState(w)}`);
          return line;
        }),
      );
    }
    show(hooks, rows.length > 0);
    const used = str(get("usage_line"));
    setText(usage, used ? `usage: ${used}` : "");
    show(usage, !!used);

    peek.draw();
    drawButtons();
    tick();
  }

  // ---- user actions
  function refresh() {
    if (refreshBusy) return;
    model.send({ type: "refresh" });
    refreshBusy = true;
    refreshTimer = setTimeout(() => {
      refreshBusy = false;
      refreshTimer = undefined;
      drawButtons();
    }, REFRESH_MS);
    drawButtons();
  }

  const askPeek = () => model.send({ type: "peek" });
  const unlisten = listen(model, TRAITS, update, [
    [refreshBtn, "click", refresh],
    [buttons.peekBtn, "click", askPeek],
    ...buttons.listeners,
  ]);
  const ticker = setInterval(tick, 1000);
  const stopPulling = pullLoop(model, root, () => terminal() || IDLE_WATCH.has(str(get("watch_state"))));

  update();

  return () => {
    stopPulling();
    clearInterval(ticker);
    buttons.dispose();
    clearTimeout(refreshTimer);
    unlisten();
    root.remove();
  };
}

export default { render };
