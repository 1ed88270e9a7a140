/**
 * Test helpers shared by widget.test.ts and job.test.ts: a hand-made stand-in for anywidget's
 * model (Backbone-like `change:<trait>` events) and a mount helper that tracks what it mounted.
 */
import { vi } from "vitest";
import type { RenderProps } from "./common";

export function fakeModel<T extends object>(defaults: T, init: Partial<T> = {}) {
  const state: Record<string, unknown> = { ...defaults, ...init };
  const listeners = new Map<string, Set<() => void>>();
  /** User actions the view sent (`{type: "cancel"}`, ...). */
  const actions = vi.fn();
  /** Pulls the view sent (`{type: "pull", revision}`), kept apart from the actions. */
  const pulls = vi.fn();
  const model = {
    get: (k: string) => state[k],
    set(k: string, v: unknown) {
      if (Object.is(state[k], v)) return;
      state[k] = v;
      for (const cb of [...(listeners.get(`change:${k}`) ?? [])]) cb();
    },
    on(ev: string, cb: () => void) {
      if (!listeners.has(ev)) listeners.set(ev, new Set());
      listeners.get(ev)!.add(cb);
    },
    off(ev?: string | null, cb?: (() => void) | null) {
      if (!ev) listeners.clear();
      else if (!cb) listeners.delete(ev);
      else listeners.get(ev)?.delete(cb);
    },
    send: vi.fn((content: unknown) => {
      const pull = (content as { type?: unknown } | null)?.type === "pull";
      (pull ? pulls : actions)(content);
    }),
    actions,
    pulls,
    save_changes: vi.fn(),
    /** Apply a snapshot the way the kernel does: several traits at once. */
    update(patch: Partial<T>) {
      for (const [k, v] of Object.entries(patch)) model.set(k, v);
    },
    listenerCount: () => [...listeners.values()].reduce((n, s) => n + s.size, 0),
  };
  return model;
}

let mounted: (() => void)[] = [];

/** Render `view` into a fresh element in the document; undone by `unmountAll()`. */
export function mountView<M extends RenderProps["model"]>(
  view: { render(props: RenderProps): () => void },
  model: M,
) {
  const el = document.createElement("div");
  document.body.appendChild(el);
  const dispose = view.render({ model, el });
  mounted.push(() => {
    dispose();
    el.remove();
  });
  const q = <E extends Element = HTMLElement>(sel: string) => el.querySelector<E>(sel)!;
  const qa = (sel: string) => [...el.querySelectorAll<HTMLElement>(sel)];
  return { model, el, root: q(".bw-root"), q, qa, dispose };
}

/** Dispose of every view `mountView` rendered (call it in afterEach). */
export function unmountAll() {
  for (const undo of mounted) undo();
  mounted = [];
}
