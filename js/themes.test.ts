/**
 * Dark themes of the hosts that have no JupyterLab variables: Colab (`html[theme=dark]`), VS Code
 * (`body.vscode-dark`, dark high contrast but not light high contrast). Each selector is applied to
 * a page with the built CSS, and the card's computed colours are read back.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const read = (name: string) => readFileSync(resolve(__dirname, name), "utf8");
// job.css @imports widget.css (esbuild bundles it): the same, inlined here
const CSS = {
  widget: read("widget.css"),
  job: read("widget.css") + read("job.css").replace(/@import[^;]*;/g, ""),
};

/** The card's --bw-bg and --bw-fg under a host set up by `host` (classes and attributes). */
function colours(css: string, host: (html: HTMLElement, body: HTMLElement) => void) {
  const style = document.createElement("style");
  style.textContent = css;
  document.head.appendChild(style);
  const root = document.createElement("div");
  root.className = "bw-root";
  document.body.appendChild(root);
  host(document.documentElement, document.body);
  const computed = getComputedStyle(root);
  return { bg: computed.getPropertyValue("--bw-bg").trim(), fg: computed.getPropertyValue("--bw-fg").trim() };
}

afterEach(() => {
  document.head.replaceChildren();
  document.body.replaceChildren();
  document.body.className = "";
  document.documentElement.removeAttribute("theme");
});

/** WCAG relative luminance of "#rrggbb". */
function luminance(hex: string): number {
  const m = /^#([0-9a-f]{6})$/i.exec(hex);
  if (!m) throw new Error(`not a #rrggbb colour: ${hex}`);
  const [r, g, b] = [0, 2, 4].map((i) => parseInt(m[1].slice(i, i + 2), 16) / 255).map((c) =>
    c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4,
  );
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
const contrast = (a: string, b: string) => {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
};

type Host = (html: HTMLElement, body: HTMLElement) => void;
const HOSTS: [string, Host, "dark" | "light"][] = [
  ["no theme (plain page)", () => {}, "light"],
  ["Colab dark: html[theme=dark]", (html) => html.setAttribute("theme", "dark"), "dark"],
  ["Colab light: html[theme=light]", (html) => html.setAttribute("theme", "light"), "light"],
  ["VS Code dark: body.vscode-dark", (_h, body) => body.classList.add("vscode-dark"), "dark"],
  ["VS Code light: body.vscode-light", (_h, body) => body.classList.add("vscode-light"), "light"],
  [
    "VS Code high contrast (dark)",
    (_h, body) => body.classList.add("vscode-high-contrast"),
    "dark",
  ],
  [
    "VS Code high contrast light (carries both classes)",
    (_h, body) => body.classList.add("vscode-high-contrast", "vscode-high-contrast-light"),
    "light",
  ],
];

describe.each(Object.keys(CSS) as (keyof typeof CSS)[])("%s view", (view) => {
  it.each(HOSTS)("%s", (_name, host, expected) => {
    const { bg, fg } = colours(CSS[view], host);
    const dark = luminance(bg) < 0.2;
    expect(dark ? "dark" : "light").toBe(expected);
    expect(contrast(bg, fg)).toBeGreaterThanOrEqual(7);
  });
});
