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

/** The header's buttons: Refresh, Cancel, and the (hidden) confirm pair. Each entry is
 * [text, aria-label]. */
export function actionButtons(
  head: Element,
  labels: Record<"refresh" | "cancel" | "yes" | "no", readonly [string, string]>,
) {
  const actions = h("div", "bw-actions", head);
  const refreshBtn = h("button", "bw-btn bw-refresh", actions, labels.refresh[0]);
  const cancelBtn = h("button", "bw-btn bw-cancel", actions, labels.cancel[0]);
  const confirmBox = h("span", "bw-confirm", actions);
  const yesBtn = h("button", "bw-btn bw-confirm-yes", confirmBox, labels.yes[0]);
  const noBtn = h("button", "bw-btn bw-confirm-no", confirmBox, labels.no[0]);
  for (const [b, [, label]] of [
    [refreshBtn, labels.refresh],
    [cancelBtn, labels.cancel],
    [yesBtn, labels.yes],
    [noBtn, labels.no],
  ] as const) {
    b.type = "button";
    b.setAttribute("aria-label", label);
  }
  confirmBox.hidden = true;
  return { actions, refreshBtn, cancelBtn, confirmBox, yesBtn, noBtn };
}

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
  return { bar, legend, segs, counts, draw };
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

/**
 * The cancel button's state machine: Cancel opens a confirm step (which reverts after
 * CONFIRM_MS, on "Keep running" and on Escape); confirming sends `message` once and shows the
 * button as sent for SENT_MS or until the kernel reports the cancel. `redraw` draws the buttons
 * from `confirming` / `sent`; it calls `close(false)` when cancelling is no longer possible.
 */
export function cancelFlow(o: {
  cancelBtn: HTMLButtonElement;
  confirmBox: HTMLElement;
  noBtn: HTMLButtonElement;
  canCancel: () => boolean;
  send: () => void;
  redraw: () => void;
}) {
  let openedAt = 0;
  let confirmTimer: ReturnType<typeof setTimeout> | undefined;
  let sentTimer: ReturnType<typeof setTimeout> | undefined;
  const flow = {
    confirming: false,
    sent: false,
    open() {
      if (!o.canCancel() || flow.sent) return;
      const hadFocus = document.activeElement === o.cancelBtn;
      flow.confirming = true;
      openedAt = Date.now();
      clearTimeout(confirmTimer);
      confirmTimer = setTimeout(() => flow.close(), CONFIRM_MS);
      o.redraw();
      if (hadFocus) o.noBtn.focus(); // the safe choice keeps the focus
    },
    close(redraw = true) {
      const hadFocus = o.confirmBox.contains(document.activeElement);
      flow.confirming = false;
      clearTimeout(confirmTimer);
      confirmTimer = undefined;
      if (!redraw) return;
      o.redraw();
      if (hadFocus && !o.cancelBtn.hidden) o.cancelBtn.focus();
    },
    confirm() {
      if (!flow.confirming || Date.now() - openedAt < CONFIRM_GUARD_MS) return;
      o.send();
      flow.sent = true;
      clearTimeout(sentTimer);
      sentTimer = setTimeout(() => {
        flow.sent = false;
        sentTimer = undefined;
        o.redraw();
      }, SENT_MS);
      flow.close();
    },
    onKey(ev: KeyboardEvent) {
      if (ev.key === "Escape" && flow.confirming) flow.close();
    },
    dispose() {
      clearTimeout(confirmTimer);
      clearTimeout(sentTimer);
    },
  };
  return flow;
}
