/**
 * What the two views (widget.ts: one batch, job.ts: a job of many batches) share: the model
 * interface, value coercions, time formatting, DOM helpers, the header buttons, the stacked bar
 * and the cancel → confirm → sent state machine. esbuild inlines this module into each bundle
 * (and drops what a bundle does not use), so nothing extra is loaded at run time.
 */

/** The narrow subset of the anywidget model used here. */
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

// ---------------------------------------------------------------- coercions

/** A non-negative integer count from whatever the model holds. */
export const count = (v: unknown): number => {
  const n = typeof v === "number" ? v : Number(v);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
};
/** A finite number, or null (null / undefined / NaN / non-numbers). */
export const optNum = (v: unknown): number | null =>
  typeof v === "number" && Number.isFinite(v) ? v : null;
export const str = (v: unknown): string => (typeof v === "string" ? v : v == null ? "" : String(v));
/** Milliseconds since the epoch, or null for "" and unparsable strings. */
export const time = (s: string): number | null => {
  if (!s) return null;
  const t = Date.parse(s);
  return Number.isNaN(t) ? null : t;
};

// ---------------------------------------------------------------- formatting

/** "45 s", "12 min", "23 h 12 min", then "3 d 4 h" from 48 h on (floors). With
 * `days = false` the hours keep counting: "75 h 5 min". */
export function duration(seconds: number, days = true): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48 || !days) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  return h % 24 ? `${Math.floor(h / 24)} d ${h % 24} h` : `${Math.floor(h / 24)} d`;
}

/** "~4 min left" (rounded to the minute), "<1 min left". */
export function eta(seconds: number, days = true): string {
  return seconds < 60 ? "<1 min left" : `~${duration(Math.round(seconds / 60) * 60, days)} left`;
}

// ---------------------------------------------------------------- DOM

/** A new element with class `cls` (none if ""), optional text, appended to `parent`. */
export function h<K extends keyof HTMLElementTagNameMap>(
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

// Writes that skip the DOM when nothing changed (updates arrive often).
export const setText = (e: Element, s: string) => {
  if (e.textContent !== s) e.textContent = s;
};
export const setAttr = (e: Element, name: string, v: string) => {
  if (e.getAttribute(name) !== v) e.setAttribute(name, v);
};
export const show = (e: HTMLElement | SVGElement, on: boolean) => {
  if (on) e.removeAttribute("hidden");
  else if (!e.hasAttribute("hidden")) e.setAttribute("hidden", "");
};

/** The stacked progress bar (one segment per state) and its legend (swatch, count, label). */
export function stackedBar<S extends string>(
  root: Element,
  states: readonly S[],
  label: string,
  stateOnItems: boolean,
) {
  const bar = h("div", "bw-bar", root);
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-label", label);
  bar.setAttribute("aria-valuemin", "0");
  const legend = h("div", "bw-legend", root);
  const segs = {} as Record<S, HTMLDivElement>;
  const counts = {} as Record<S, HTMLElement>;
  for (const s of states) {
    segs[s] = h("div", `bw-seg bw-seg-${s}`, bar);
    segs[s].dataset.state = s;
    const item = h("span", `bw-item bw-item-${s}`, legend);
    if (stateOnItems) item.dataset.state = s;
    h("i", `bw-swatch bw-sw-${s}`, item);
    counts[s] = h("b", "bw-count", item, "0");
    counts[s].dataset.state = s;
    h("span", "bw-label", item, ` ${s}`);
  }
  /** Segment widths (share of `scale`), titles and legend counts (`fmt`-ted). */
  const draw = (c: Record<S, number>, scale: number, fmt: (n: number) => string = String) => {
    for (const s of states) {
      const w = scale ? `${((c[s] / scale) * 100).toFixed(3)}%` : "0%";
      if (segs[s].style.width !== w) segs[s].style.width = w;
      setAttr(segs[s], "title", `${c[s]} ${s}`);
      setText(counts[s], fmt(c[s]));
      counts[s].parentElement!.classList.toggle("bw-zero", c[s] === 0);
    }
  };
  return { bar, draw };
}

/** Add DOM listeners and a `change:<trait>` listener per trait; returns the undo. */
export function listen(
  model: Model,
  traits: readonly string[],
  update: () => void,
  dom: [EventTarget, string, EventListener][],
): () => void {
  for (const [t, ev, fn] of dom) t.addEventListener(ev, fn);
  for (const k of traits) model.on(`change:${k}`, update);
  return () => {
    for (const k of traits) model.off(`change:${k}`, update);
    for (const [t, ev, fn] of dom) t.removeEventListener(ev, fn);
  };
}

// ---------------------------------------------------------------- cancel → confirm → sent

const CONFIRM_MS = 5000; // the confirm step reverts on its own after this
const CONFIRM_GUARD_MS = 350; // a double-click on "Cancel" must not confirm
const SENT_MS = 10000; // "Canceling…" waits this long for the kernel to accept

/** [text, aria-label] of each header button. */
type Label = readonly [string, string];

const button = (parent: Element, cls: string, [text, aria]: Label) => {
  const b = h("button", `bw-btn ${cls}`, parent, text);
  b.type = "button";
  b.setAttribute("aria-label", aria);
  return b;
};

/**
 * The header's buttons (Refresh, Cancel, and the confirm pair) and the cancel state machine:
 * Cancel opens a confirm step (which reverts after CONFIRM_MS, on "Keep running" and on Escape;
 * the focus stays on the safe choice); confirming (not within CONFIRM_GUARD_MS: a double click)
 * calls `send` once and shows "Canceling…" for SENT_MS or until `canCancel` turns false.
 * The view wires up `listeners` (with its own Refresh handler) and calls `draw` on every update.
 */
export function actionButtons(
  root: HTMLElement,
  head: Element,
  labels: { refresh: Label; cancel: Label; yes: Label; no: Label },
  canCancel: () => boolean,
  send: () => void,
) {
  const actions = h("div", "bw-actions", head);
  const peekBtn = button(actions, "bw-peek-btn", ["Peek", "Peek at the first outputs"]);
  peekBtn.title = "Fetch the first finished items now";
  const refreshBtn = button(actions, "bw-refresh", labels.refresh);
  const cancelBtn = button(actions, "bw-cancel", labels.cancel);
  const confirmBox = h("span", "bw-confirm", actions);
  const yesBtn = button(confirmBox, "bw-confirm-yes", labels.yes);
  const noBtn = button(confirmBox, "bw-confirm-no", labels.no);
  confirmBox.hidden = true;

  let confirming = false;
  let sent = false;
  let openedAt = 0;
  let confirmTimer: ReturnType<typeof setTimeout> | undefined;
  let sentTimer: ReturnType<typeof setTimeout> | undefined;

  function draw() {
    const ok = canCancel();
    if (!ok && confirming) close(false);
    show(cancelBtn, ok && !confirming);
    cancelBtn.disabled = sent;
    setText(cancelBtn, sent ? "Canceling…" : labels.cancel[0]);
    show(confirmBox, ok && confirming);
    root.dataset.confirming = String(confirming);
  }
  function open() {
    if (!canCancel() || sent) return;
    const hadFocus = document.activeElement === cancelBtn;
    confirming = true;
    openedAt = Date.now();
    clearTimeout(confirmTimer);
    confirmTimer = setTimeout(() => close(), CONFIRM_MS);
    draw();
    if (hadFocus) noBtn.focus(); // the safe choice keeps the focus
  }
  function close(redraw = true) {
    const hadFocus = confirmBox.contains(document.activeElement);
    confirming = false;
    clearTimeout(confirmTimer);
    confirmTimer = undefined;
    if (!redraw) return;
    draw();
    if (hadFocus && !cancelBtn.hidden) cancelBtn.focus();
  }
  function confirm() {
    if (!confirming || Date.now() - openedAt < CONFIRM_GUARD_MS) return;
    send();
    sent = true;
    clearTimeout(sentTimer);
    sentTimer = setTimeout(() => {
      sent = false;
      sentTimer = undefined;
      draw();
    }, SENT_MS);
    close();
  }
  const listeners: [EventTarget, string, EventListener][] = [
    [cancelBtn, "click", open],
    [yesBtn, "click", confirm],
    [noBtn, "click", () => close()],
    [root, "keydown", ((ev: KeyboardEvent) => ev.key === "Escape" && confirming && close()) as EventListener],
  ];
  return {
    refreshBtn,
    peekBtn,
    /** Open the cancel confirm step (for another button that offers to cancel). */
    openCancel: open,
    draw,
    listeners,
    dispose() {
      clearTimeout(confirmTimer);
      clearTimeout(sentTimer);
    },
  };
}

// ---------------------------------------------------------------- pull

const PULL_FLOOR_S = 2; // never pull more often than this
const PULL_FIRST_S = 3; // before the kernel has reported an interval
const ANSWER_MS = 2000; // a change this soon after a pull is its answer, not a push

/**
 * Ask the kernel for the state this view lacks ({type: "pull", revision}), for front ends that
 * drop what the kernel sends from the background once the cell has finished (Colab). The kernel
 * answers inside the handler of the pull, which every front end delivers, and sends nothing when
 * the view is up to date.
 *
 * Paced so that pull + push cost about what push alone does: while pushes arrive (a change of
 * `revision` that is not a pull's answer, seen within the last 3 intervals, heartbeats included)
 * the view pulls only when it has heard nothing for max(3 intervals, 30 s), the point at which it
 * would call itself stale; without pushes it pulls once per poll interval (`interval_s`) when
 * nothing else arrived. Never once `done()`, never while the page is hidden or the view is
 * detached or scrolled out of sight; a view that comes back into sight asks at once.
 */
export function pullLoop(model: Model, root: HTMLElement, done: () => boolean): () => void {
  let lastHeard = Date.now();
  let lastPush = -Infinity;
  let lastPull = -Infinity;
  let visible = true;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const interval = () => Math.max(optNum(model.get("interval_s")) || PULL_FIRST_S, PULL_FLOOR_S) * 1000;
  const onRevision = () => {
    const now = Date.now();
    lastHeard = now;
    if (now - lastPull > ANSWER_MS) lastPush = now;
  };
  const canPull = () =>
    !done() && root.isConnected && visible && !(typeof document !== "undefined" && document.hidden);

  function pull() {
    if (!canPull()) return;
    lastPull = Date.now();
    model.send({ type: "pull", revision: count(model.get("revision")) });
  }
  function step() {
    timer = undefined;
    if (done()) return; // the kernel's last answer (or push) ended it: stop for good
    const now = Date.now();
    const iv = interval();
    const pushing = now - lastPush < 3 * Math.max(iv, 10000);
    const due = pushing ? Math.max(3 * iv, 30000) : iv;
    if (now - Math.max(lastHeard, lastPull) >= due) pull();
    timer = setTimeout(step, Math.min(iv, 1000));
  }
  const onVisibility = () => {
    if (canPull() && Date.now() - lastPull >= PULL_FLOOR_S * 1000) pull();
  };
  let observer: IntersectionObserver | undefined;
  if (typeof IntersectionObserver !== "undefined") {
    observer = new IntersectionObserver((entries) => {
      const was = visible;
      visible = entries.some((e) => e.isIntersecting);
      if (visible && !was) onVisibility();
    });
    observer.observe(root);
  }
  model.on("change:revision", onRevision);
  if (typeof document !== "undefined") document.addEventListener("visibilitychange", onVisibility);
  timer = setTimeout(step, 1000);
  return () => {
    clearTimeout(timer);
    observer?.disconnect();
    model.off("change:revision", onRevision);
    if (typeof document !== "undefined") document.removeEventListener("visibilitychange", onVisibility);
  };
}

// ---------------------------------------------------------------- peek

/** One finished item as the kernel's peek sends it; every field checked, all shown as text. */
export interface PeekRow {
  batch_id: string;
  custom_id: string;
  status: string;
  output: string;
  error: string;
}

/** The objects of a list trait (anything else in it is dropped): rows to check field by field. */
export const records = (raw: unknown): Record<string, unknown>[] =>
  (Array.isArray(raw) ? raw : []).filter((r): r is Record<string, unknown> => typeof r === "object" && r !== null);

export function peekRows(raw: unknown): PeekRow[] {
  return records(raw).map((r) => ({
      batch_id: str(r.batch_id),
      custom_id: str(r.custom_id),
      status: str(r.status),
      output: str(r.output),
      error: str(r.error),
    }));
}

/**
 * The peek: the first finished items in a compact table under the bar (`peek_rows`, fetched
 * only when the Peek button is pressed), its state line (`peek_state`), and a "Cancel" that opens
 * the view's own confirm step, for when the first outputs show a wrong prompt. `withBatch` adds
 * the batch id column (the job view). Returns `draw`, to call on every update.
 */
export function peekPanel(
  root: HTMLElement,
  model: Model,
  cancel: { label: Label; open: () => void; allowed: () => boolean },
  withBatch: boolean,
) {
  const panel = h("div", "bw-peek", root);
  const head = h("div", "bw-peek-head", panel);
  h("span", "bw-peek-title", head, "First finished items");
  const state = h("span", "bw-peek-state", head);
  state.setAttribute("role", "status");
  const cancelBtn = button(head, "bw-peek-cancel", cancel.label);
  cancelBtn.addEventListener("click", cancel.open);
  const table = h("table", "bw-peek-table", panel);
  const tbody = h("tbody", "", table);
  let key = "";

  function draw() {
    const rows = peekRows(model.get("peek_rows"));
    const st = str(model.get("peek_state"));
    setText(state, st === "loading" ? "fetching…" : st);
    state.classList.toggle("bw-peek-failed", st !== "" && st !== "loading");
    show(panel, rows.length > 0 || st !== "");
    show(cancelBtn, rows.length > 0 && cancel.allowed());
    const k = JSON.stringify(rows);
    if (k === key) return;
    key = k;
    tbody.replaceChildren(
      ...rows.map((r) => {
        const tr = h("tr", `bw-peek-row bw-peek-${r.status === "ready" ? "ready" : "failed"}`);
        tr.dataset.status = r.status;
        if (withBatch) h("td", "bw-peek-batch", tr, r.batch_id.slice(-6));
        h("td", "bw-peek-id", tr, r.custom_id || "–");
        h("td", "bw-peek-status", tr, r.status);
        h("td", "bw-peek-text", tr, r.status === "ready" ? r.output : r.error);
        return tr;
      }),
    );
  }
  return { draw, panel };
}
