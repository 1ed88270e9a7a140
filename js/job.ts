/**
 * batch_widget front end: the live view of a job (many batches watched as one).
 *
 * Draws ONLY from the model's traits (the kernel's job is the single source of truth), never
 * fetches, and sends user actions as custom messages: `{type: "cancel_all"}`, `{type: "refresh"}`.
 * Server strings are only ever written with textContent / setAttribute.
 */

export interface Model {
  get(name: string): unknown;
  on(event: string, cb: () => void): void;
  off(event?: string | null, cb?: (() => void) | null): void;
  send(content: unknown, callbacks?: unknown, buffers?: unknown): void;
}

export interface RenderProps {
  model: Model;
  el: HTMLElement;
}

export const TRAITS = [
  "state", "message", "total", "ready", "failed", "canceled", "processing", "queued",
  "waiting", "batches", "active", "max_active", "eta_s", "error", "cancel_requested",
  "manifest", "updated_at",
] as const;

/** Overall bar order: outcomes, work in flight, then rows not yet submitted. */
export const STATES = ["ready", "failed", "canceled", "processing", "queued", "waiting"] as const;
type State = (typeof STATES)[number];

const FINISHED = new Set(["done", "attention", "error", "canceled"]);
const CONFIRM_MS = 5000;
const CONFIRM_GUARD_MS = 350;
const SENT_MS = 10000;

const count = (v: unknown): number => {
  const n = typeof v === "number" ? v : Number(v);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
};
const optNum = (v: unknown): number | null =>
  typeof v === "number" && Number.isFinite(v) ? v : null;
const str = (v: unknown): string => (typeof v === "string" ? v : v == null ? "" : String(v));

/** "45 s", "12 min", "3 h 5 min". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
}

export function eta(seconds: number): string {
  return seconds < 60 ? "<1 min left" : `~${duration(Math.round(seconds / 60) * 60)} left`;
}

/** 2500 → "2,500" (locale-independent, so tests and screenshots agree). */
export function thousands(n: number): string {
  return String(Math.floor(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** One batch row as the kernel sends it; every field is checked before use. */
export interface BatchRow {
  chunk: number;
  attempt: number;
  batch_id: string;
  state: string;
  status: string;
  total: number;
  counts: Record<"ready" | "failed" | "canceled" | "processing" | "queued", number>;
  eta_s: number | null;
  error: string;
  note: string;
  resubmit_of: number[];
}

export function parseRow(raw: unknown): BatchRow {
  const r = (raw && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
  const resub = Array.isArray(r.resubmit_of) ? r.resubmit_of.map(count) : [];
  return {
    chunk: count(r.chunk),
    attempt: Math.max(1, count(r.attempt)),
    batch_id: str(r.batch_id),
    state: str(r.state),
    status: str(r.status),
    total: count(r.total),
    counts: {
      ready: count(r.ready),
      failed: count(r.failed),
      canceled: count(r.canceled),
      processing: count(r.processing),
      queued: count(r.queued),
    },
    eta_s: optNum(r.eta_s),
    error: str(r.error),
    note: str(r.note),
    resubmit_of: resub,
  };
}

/** The tone of a batch's status pill. */
export function tone(row: BatchRow): string {
  const c = row.counts;
  switch (row.status) {
    case "waiting":
    case "creating":
    case "pending":
      return "queued";
    case "processing":
      return "processing";
    case "canceling":
    case "canceled":
    case "skipped":
      return "canceled";
    case "expired":
    case "uncertain":
    case "create failed":
      return "failed";
    case "completed":
      return c.failed + c.canceled === 0 ? "ready" : c.ready === 0 ? "failed" : "partial";
    default:
      return "neutral";
  }
}

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls: string,
  parent?: Element,
  text?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
const setText = (e: Element, s: string) => {
  if (e.textContent !== s) e.textContent = s;
};
const show = (e: HTMLElement, on: boolean) => {
  if (on) e.removeAttribute("hidden");
  else if (!e.hasAttribute("hidden")) e.setAttribute("hidden", "");
};

function render({ model, el }: RenderProps): () => void {
  const root = h("div", "bw-root bw-job");

  const head = h("div", "bw-head", root);
  const pill = h("span", "bw-pill", head);
  const title = h("span", "bw-job-title", head);
  const manifest = h("span", "bw-mode bw-job-manifest", head);
  const actions = h("div", "bw-actions", head);
  const refreshBtn = h("button", "bw-btn bw-refresh", actions, "Refresh");
  const cancelBtn = h("button", "bw-btn bw-cancel", actions, "Cancel all");
  const confirmBox = h("span", "bw-confirm", actions);
  const yesBtn = h("button", "bw-btn bw-confirm-yes", confirmBox, "Cancel every batch?");
  const noBtn = h("button", "bw-btn bw-confirm-no", confirmBox, "Keep running");
  for (const [b, label] of [
    [refreshBtn, "Refresh every batch now"],
    [cancelBtn, "Cancel all batches of the job"],
    [yesBtn, "Confirm: cancel every batch of the job"],
    [noBtn, "Keep running"],
  ] as const) {
    b.type = "button";
    b.setAttribute("aria-label", label);
  }
  confirmBox.hidden = true;

  const bar = h("div", "bw-bar", root);
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-label", "Job progress");
  bar.setAttribute("aria-valuemin", "0");
  const legend = h("div", "bw-legend", root);
  const segs = {} as Record<State, HTMLDivElement>;
  const counts = {} as Record<State, HTMLElement>;
  for (const s of STATES) {
    segs[s] = h("div", `bw-seg bw-seg-${s}`, bar);
    segs[s].dataset.state = s;
    const item = h("span", `bw-item bw-item-${s}`, legend);
    h("i", `bw-swatch bw-sw-${s}`, item);
    counts[s] = h("b", "bw-count", item, "0");
    counts[s].dataset.state = s;
    h("span", "bw-label", item, ` ${s}`);
  }
  const summary = h("div", "bw-summary", root);
  const message = h("div", "bw-job-message", root);
  message.setAttribute("role", "status");
  const banner = h("div", "bw-error bw-error-fatal", root);
  banner.setAttribute("role", "alert");

  const table = h("table", "bw-job-table", root);
  const caption = h("caption", "bw-job-caption", table, "Batches of the job");
  caption.hidden = true;
  const headRow = h("tr", "", h("thead", "", table));
  for (const label of ["Chunk", "Batch", "Status", "Progress", "ETA"]) {
    const th = h("th", "", headRow, label);
    th.scope = "col";
  }
  const tbody = h("tbody", "", table);

  el.appendChild(root);

  let confirming = false;
  let confirmOpenedAt = 0;
  let cancelSent = false;
  let confirmTimer: ReturnType<typeof setTimeout> | undefined;
  let sentTimer: ReturnType<typeof setTimeout> | undefined;
  let rowsKey = "";

  const get = (k: (typeof TRAITS)[number]) => model.get(k);
  const finished = () => FINISHED.has(str(get("state")));
  const canCancel = () => !finished() && !get("cancel_requested");

  function drawButtons() {
    const ok = canCancel();
    if (!ok && confirming) closeConfirm(false);
    show(cancelBtn, ok && !confirming);
    cancelBtn.disabled = cancelSent;
    setText(cancelBtn, cancelSent ? "Canceling…" : "Cancel all");
    show(confirmBox, ok && confirming);
    show(refreshBtn, !finished());
    root.dataset.confirming = String(confirming);
  }

  function drawRows(rows: BatchRow[]) {
    const key = JSON.stringify(rows);
    if (key === rowsKey) return;
    rowsKey = key;
    const trs = rows.map((r) => {
      const tr = h("tr", `bw-job-row bw-job-${r.state.replace(/_/g, "-")}`);
      tr.dataset.chunk = String(r.chunk);
      tr.dataset.status = r.status;
      const chunkCell = h("td", "bw-job-chunk", tr, `#${r.chunk}`);
      if (r.attempt > 1) {
        const retry = h("span", "bw-job-retry", chunkCell, ` retry ${r.attempt - 1}`);
        retry.title = r.resubmit_of.length ? `retries rows of #${r.resubmit_of.join(", #")}` : "a retry";
      }
      const idCell = h("td", "bw-id", tr, r.batch_id || "—");
      if (r.batch_id) idCell.title = r.batch_id;
      const statusCell = h("td", "", tr);
      const p = h("span", `bw-pill bw-tone-${tone(r)}`, statusCell, r.status || r.state);
      if (r.error || r.note) p.title = r.error || r.note;
      const prog = h("td", "bw-job-progress", tr);
      const c = r.counts;
      const done = c.ready + c.failed + c.canceled;
      if (r.state === "planned" || r.state === "creating") {
        prog.textContent = `${thousands(r.total)} rows waiting`;
      } else if (r.state !== "created") {
        prog.textContent = r.error || r.note || `${thousands(r.total)} rows not submitted`;
        prog.classList.add("bw-job-problem");
      } else {
        const mini = h("span", "bw-job-mini", prog);
        mini.setAttribute("aria-hidden", "true");
        for (const s of ["ready", "failed", "canceled", "processing"] as const) {
          const seg = h("i", `bw-seg-${s}`, mini);
          seg.style.width = r.total ? `${((c[s] / r.total) * 100).toFixed(2)}%` : "0%";
        }
        const extra = [c.failed ? `${c.failed} failed` : "", c.canceled ? `${c.canceled} canceled` : ""]
          .filter(Boolean)
          .join(", ");
        h("span", "bw-job-counts", prog, `${thousands(done)}/${thousands(r.total)}${extra ? ` · ${extra}` : ""}`);
      }
      h("td", "bw-job-eta", tr, r.eta_s !== null && r.eta_s > 0 ? eta(r.eta_s) : "");
      return tr;
    });
    tbody.replaceChildren(...trs);
  }

  function update() {
    const st = str(get("state"));
    const c = {} as Record<State, number>;
    let sum = 0;
    for (const s of STATES) sum += c[s] = count(get(s));
    const total = count(get("total"));
    const scale = Math.max(total, sum);
    const done = c.ready + c.failed + c.canceled;
    const raw = get("batches");
    const rows = (Array.isArray(raw) ? raw : []).map(parseRow);
    const made = rows.filter((r) => r.batch_id).length;

    const cancelReq = !!get("cancel_requested");
    setText(pill, cancelReq && !finished() ? "canceling…" : st || "starting…");
    const pillTone =
      st === "done"
        ? c.failed + c.canceled === 0 ? "ready" : c.ready === 0 ? "failed" : "partial"
        : st === "attention" || st === "error"
          ? "failed"
          : st === "canceled" || st === "canceling" || cancelReq
            ? "canceled"
            : st === "waiting"
              ? "queued"
              : "processing";
    pill.className = `bw-pill bw-tone-${pillTone}`;
    setText(title, `${thousands(total)} rows · ${rows.length} batch${rows.length === 1 ? "" : "es"} (${made} submitted)`);
    const man = str(get("manifest"));
    setText(manifest, man);
    manifest.title = man ? `manifest: ${man}` : "";
    show(manifest, !!man);

    const d = root.dataset;
    d.state = st;
    d.total = String(total);
    d.done = String(done);
    for (const s of STATES) d[s] = String(c[s]);
    root.classList.toggle("bw-terminal", finished());

    for (const s of STATES) {
      const w = scale ? `${((c[s] / scale) * 100).toFixed(3)}%` : "0%";
      if (segs[s].style.width !== w) segs[s].style.width = w;
      segs[s].title = `${c[s]} ${s}`;
      setText(counts[s], thousands(c[s]));
      counts[s].parentElement!.classList.toggle("bw-zero", c[s] === 0);
    }
    bar.setAttribute("aria-valuemax", String(Math.max(total, done)));
    bar.setAttribute("aria-valuenow", String(done));
    bar.setAttribute("aria-valuetext", `${done} of ${total} rows done`);

    const e = optNum(get("eta_s"));
    const active = get("active");
    const slots =
      typeof active === "number" && !finished() ? ` · ${active} of ${count(get("max_active"))} slots in use` : "";
    setText(
      summary,
      finished()
        ? `${st}: ${done} of ${thousands(total)} rows finished (${c.ready} ready, ${c.failed} failed, ${c.canceled} canceled)`
        : `${thousands(done)} of ${thousands(total)} rows done${e !== null && e > 0 ? ` · ${eta(e)}` : ""}${slots}`,
    );
    const msg = str(get("message"));
    setText(message, msg);
    show(message, !!msg);
    message.classList.toggle("bw-job-attention", st === "attention");
    const err = str(get("error"));
    setText(banner, err);
    show(banner, !!err);

    drawRows(rows);
    drawButtons();
  }

  function openConfirm() {
    if (!canCancel() || cancelSent) return;
    const hadFocus = document.activeElement === cancelBtn;
    confirming = true;
    confirmOpenedAt = Date.now();
    clearTimeout(confirmTimer);
    confirmTimer = setTimeout(() => closeConfirm(), CONFIRM_MS);
    drawButtons();
    if (hadFocus) noBtn.focus();
  }

  function closeConfirm(redraw = true) {
    const hadFocus = confirmBox.contains(document.activeElement);
    confirming = false;
    clearTimeout(confirmTimer);
    confirmTimer = undefined;
    if (!redraw) return;
    drawButtons();
    if (hadFocus && !cancelBtn.hidden) cancelBtn.focus();
  }

  function confirmCancel() {
    if (!confirming || Date.now() - confirmOpenedAt < CONFIRM_GUARD_MS) return;
    model.send({ type: "cancel_all" });
    cancelSent = true;
    clearTimeout(sentTimer);
    sentTimer = setTimeout(() => {
      cancelSent = false;
      sentTimer = undefined;
      drawButtons();
    }, SENT_MS);
    closeConfirm();
  }

  const refresh = () => model.send({ type: "refresh" });
  const onKey = (ev: KeyboardEvent) => {
    if (ev.key === "Escape" && confirming) closeConfirm();
  };
  const onNo = () => closeConfirm();
  const domListeners: [EventTarget, string, EventListener][] = [
    [refreshBtn, "click", refresh],
    [cancelBtn, "click", openConfirm],
    [yesBtn, "click", confirmCancel],
    [noBtn, "click", onNo],
    [root, "keydown", onKey as EventListener],
  ];
  for (const [t, ev, fn] of domListeners) t.addEventListener(ev, fn);
  for (const k of TRAITS) model.on(`change:${k}`, update);

  update();

  return () => {
    clearTimeout(confirmTimer);
    clearTimeout(sentTimer);
    for (const k of TRAITS) model.off(`change:${k}`, update);
    for (const [t, ev, fn] of domListeners) t.removeEventListener(ev, fn);
    root.remove();
  };
}

export default { render };
