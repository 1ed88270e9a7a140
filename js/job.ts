/**
 * batch_widget front end: the live view of a job (many batches watched as one).
 *
 * Draws ONLY from the model's traits (the kernel's job is the single source of truth), never
 * fetches, and sends user actions as custom messages: `{type: "cancel_all"}`, `{type: "refresh"}`,
 * and pulls (`{type: "pull", revision}`, see `pullLoop` in common.ts).
 * Server strings are only ever written with textContent / setAttribute.
 */

import {
  actionButtons, count, duration as durationIn, eta as etaIn, h, listen, optNum, peekPanel,
  pullLoop, setText, show, stackedBar, str, type RenderProps,
} from "./common";

export type { Model, RenderProps } from "./common";

export const TRAITS = [
  "state", "message", "total", "ready", "failed", "canceled", "processing", "queued",
  "waiting", "batches", "active", "max_active", "eta_s", "error", "cancel_requested",
  "manifest", "updated_at", "interval_s", "peek_rows", "peek_state",
  "uploads_uploading", "uploads_processing", "uploads_ready", "uploads_failed",
  "uploads_bytes_sent", "uploads_bytes_total", "uploads_rate", "usage_line",
] as const;

/** Overall bar order: outcomes, work in flight, then rows not yet submitted. */
export const STATES = ["ready", "failed", "canceled", "processing", "queued", "waiting"] as const;
type State = (typeof STATES)[number];

const FINISHED = new Set(["done", "attention", "error", "canceled"]);

/** "45 s", "12 min", "3 h 5 min", "75 h" (no days in the job view). */
export const duration = (seconds: number): string => durationIn(seconds, false);
export const eta = (seconds: number): string => etaIn(seconds, false);

/** 2500 → "2,500" (locale-independent, so tests and screenshots agree). */
export function thousands(n: number): string {
  return String(Math.floor(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Bytes in decimal units, as the kernel's summaries write them: 512 → "512 B", 8_100_000 → "8.1 MB". */
export function size(n: number): string {
  let value = Number.isFinite(n) && n > 0 ? n : 0;
  const units = ["B", "kB", "MB", "GB"];
  let i = 0;
  while (value >= 1000 && i < units.length - 1) {
    value /= 1000;
    i += 1;
  }
  if (i === 0) return `${Math.floor(value)} B`;
  return `${value < 10 ? value.toFixed(1) : value.toFixed(0)} ${units[i]}`;
}

/** The upload stage as the kernel sends it (rows, bytes, bytes per second). */
export interface Uploads {
  uploading: number;
  processing: number;
  ready: number;
  failed: number;
  sent: number;
  total: number;
  rate: number;
}

/** "12 uploading (34 MB of 120 MB, 8.1 MB/s) · 5 processing · 80 ready · 1 failed"; "" without uploads. */
export function uploadLine(u: Uploads): string {
  const parts: string[] = [];
  if (u.uploading) {
    let sent = "";
    if (u.total) sent = `${size(u.sent)} of ${size(u.total)}${u.rate > 0 ? `, ${size(u.rate)}/s` : ""}`;
    parts.push(`${thousands(u.uploading)} uploading${sent ? ` (${sent})` : ""}`);
  }
  for (const [name, n] of [["processing", u.processing], ["ready", u.ready], ["failed", u.failed]] as const) {
    if (n) parts.push(`${thousands(n)} ${name}`);
  }
  return parts.length ? `uploads: ${parts.join(" · ")}` : "";
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

function render({ model, el }: RenderProps): () => void {
  const root = h("div", "bw-root bw-job");

  const head = h("div", "bw-head", root);
  const pill = h("span", "bw-pill", head);
  const title = h("span", "bw-job-title", head);
  const manifest = h("span", "bw-mode bw-job-manifest", head);
  const buttons = actionButtons(
    root,
    head,
    {
      refresh: ["Refresh", "Refresh every batch now"],
      cancel: ["Cancel all", "Cancel all batches of the job"],
      yes: ["Cancel every batch?", "Confirm: cancel every batch of the job"],
      no: ["Keep running", "Keep running"],
    },
    () => canCancel(),
    () => model.send({ type: "cancel_all" }),
  );

  const { bar, draw: drawBar } = stackedBar(root, STATES, "Job progress", false);
  const peek = peekPanel(
    root,
    model,
    { label: ["Cancel all", "Cancel all batches of the job"], open: buttons.openCancel, allowed: () => canCancel() },
    true,
  );
  const summary = h("div", "bw-summary", root);
  const message = h("div", "bw-job-message", root);
  message.setAttribute("role", "status");
  const banner = h("div", "bw-error bw-error-fatal", root);
  banner.setAttribute("role", "alert");

  const uploads = h("div", "bw-job-uploads", root);
  const table = h("table", "bw-job-table", root);
  const caption = h("caption", "bw-job-caption", table, "Batches of the job");
  caption.hidden = true;
  const headRow = h("tr", "", h("thead", "", table));
  for (const label of ["Chunk", "Batch", "Status", "Progress", "ETA"]) {
    const th = h("th", "", headRow, label);
    th.scope = "col";
  }
  const tbody = h("tbody", "", table);
  const usage = h("div", "bw-usage", root);

  el.appendChild(root);

  let rowsKey = "";

  const get = (k: (typeof TRAITS)[number]) => model.get(k);
  const finished = () => FINISHED.has(str(get("state")));
  const canCancel = () => !finished() && !get("cancel_requested");

  const rowsOf = () => {
    const raw = get("batches");
    return (Array.isArray(raw) ? raw : []).map(parseRow);
  };

  function drawButtons() {
    buttons.draw();
    show(buttons.refreshBtn, !finished());
    show(buttons.peekBtn, !finished() && rowsOf().some((r) => r.batch_id !== ""));
    buttons.peekBtn.disabled = str(get("peek_state")) === "loading";
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
    const rows = rowsOf();
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

    drawBar(c, scale, thousands);
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

    const up: Uploads = {
      uploading: count(get("uploads_uploading")),
      processing: count(get("uploads_processing")),
      ready: count(get("uploads_ready")),
      failed: count(get("uploads_failed")),
      sent: count(get("uploads_bytes_sent")),
      total: count(get("uploads_bytes_total")),
      rate: optNum(get("uploads_rate")) ?? 0,
    };
    const upText = uploadLine(up);
    setText(uploads, upText);
    show(uploads, !!upText);
    uploads.classList.toggle("bw-job-uploads-failed", up.failed > 0);

    drawRows(rows);
    const used = str(get("usage_line"));
    setText(usage, used ? `usage: ${used}` : "");
    show(usage, !!used);
    peek.draw();
    drawButtons();
  }

  const refresh = () => model.send({ type: "refresh" });
  const askPeek = () => model.send({ type: "peek" });
  const unlisten = listen(model, TRAITS, update, [
    [buttons.refreshBtn, "click", refresh],
    [buttons.peekBtn, "click", askPeek],
    ...buttons.listeners,
  ]);
  const stopPulling = pullLoop(model, root, finished);

  update();

  return () => {
    stopPulling();
    buttons.dispose();
    unlisten();
    root.remove();
  };
}

export default { render };
