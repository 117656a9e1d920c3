// Stacks: every flow as its stack of blocks, each with its kind's logo, its
// instance name, its types (links to their schemas), Configuration and Code
// expandable in place, and live statistics beside it (executions/s, error
// rate, p50/p99, a sparkline), kept current from the execution stream.
import type { Block, BlockStats, Flows, TraceEvent } from "./api";
import { $, el } from "./dom";
import { openFile } from "./files";
import { app, blockFiles, fileText } from "./state";

const LOGOS: Record<string, [string, string]> = {
  js: ["JS", "#d8b800"],
  py: ["Py", "#3572a5"],
  http: ["HTTP", "#2c7a4b"],
  mqtt: ["MQTT", "#660066"],
  influxdb: ["Flux", "#22adf6"],
  postgres: ["PG", "#336791"],
  timer: ["⏱", "#8a5a00"],
  flow: ["⇄", "#5a6478"],
};

function logo(kind: string): HTMLElement {
  const plugin = kind.split(".")[0];
  const [text, color] = LOGOS[plugin] || ["⚙", "#7a4fa0"];
  const e = el("span", { class: "logo", title: plugin }, text);
  e.style.background = color;
  return e;
}

// Per block: the statistics the node gave, plus what the stream added since,
// and executions per second over the last minute for the sparkline.
interface Live {
  base: BlockStats;
  ok: number;
  errors: number;
  durations: number[];
  perSecond: number[];
  lastSecond: number;
}
const live = new Map<string, Live>();
const SPARK_SECONDS = 60;

function liveOf(flow: string, block: string, stats?: BlockStats): Live {
  const id = flow + "/" + block;
  let l = live.get(id);
  if (!l) {
    l = {
      base: stats || { executions: {}, p50Ms: -1, p99Ms: -1, meanMs: 0 },
      ok: 0,
      errors: 0,
      durations: [],
      perSecond: new Array(SPARK_SECONDS).fill(0),
      lastSecond: Math.floor(Date.now() / 1000),
    };
    live.set(id, l);
  } else if (stats) {
    l.base = stats;
    l.ok = 0;
    l.errors = 0;
  }
  return l;
}

function roll(l: Live, now: number): void {
  const s = Math.floor(now / 1000);
  const steps = Math.min(SPARK_SECONDS, s - l.lastSecond);
  for (let i = 0; i < steps; i++) {
    l.perSecond.shift();
    l.perSecond.push(0);
  }
  if (steps > 0) l.lastSecond = s;
}

export function countEvent(ev: TraceEvent): void {
  const l = liveOf(ev.flow, ev.block);
  roll(l, Date.now());
  l.perSecond[SPARK_SECONDS - 1]++;
  if (ev.status === "ok") l.ok++;
  else l.errors++;
  l.durations.push(ev.durationMs);
  if (l.durations.length > 500) l.durations.shift();
  const card = document.querySelector<HTMLElement>(
    `.flow[data-flow="${CSS.escape(ev.flow)}"] .block[data-block="${CSS.escape(ev.block)}"] .stats`,
  );
  if (card) drawStats(card, l);
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function drawStats(box: HTMLElement, l: Live): void {
  const ex = l.base.executions;
  const baseErrors = Object.entries(ex)
    .filter(([k]) => k !== "ok")
    .reduce((n, [, v]) => n + v, 0);
  const ok = (ex.ok || 0) + l.ok;
  const errors = baseErrors + l.errors;
  const total = ok + errors;
  let p50 = l.base.p50Ms,
    p99 = l.base.p99Ms;
  if (l.durations.length >= 20 || p50 < 0) {
    const sorted = [...l.durations].sort((a, b) => a - b);
    if (sorted.length) {
      p50 = quantile(sorted, 0.5);
      p99 = quantile(sorted, 0.99);
    }
  }
  roll(l, Date.now());
  const recent = l.perSecond.slice(-10).reduce((a, b) => a + b, 0) / 10;
  box.replaceChildren(
    el("span", { class: "ok" }, ok + " ok"),
    " · ",
    el("span", { class: errors ? "errors" : "" }, errors + " errors"),
    total ? ` (${((100 * errors) / total).toFixed(1)} %)` : "",
    el("br"),
    `${recent.toFixed(1)}/s`,
    p50 >= 0 ? ` · p50 ≤ ${round(p50)} ms, p99 ≤ ${round(p99)} ms` : "",
    sparkline(l.perSecond),
  );
}

function round(ms: number): string {
  return ms >= 10 ? ms.toFixed(0) : ms.toFixed(2).replace(/\.?0+$/, "");
}

function sparkline(values: number[]): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", `0 0 ${values.length} 20`);
  svg.setAttribute("preserveAspectRatio", "none");
  const max = Math.max(1, ...values);
  const path = document.createElementNS(ns, "polyline");
  path.setAttribute("points", values.map((v, i) => `${i},${20 - (18 * v) / max}`).join(" "));
  svg.append(path);
  return svg;
}

function expander(label: string, path: string): HTMLElement {
  const body = el("pre", { class: "source" }, fileText(path) || "");
  body.hidden = true;
  const head = el("button", { type: "button", class: "expand", "aria-expanded": "false" }, "▸ " + label);
  head.addEventListener("click", () => {
    body.hidden = !body.hidden;
    head.textContent = (body.hidden ? "▸ " : "▾ ") + label;
    head.setAttribute("aria-expanded", String(!body.hidden));
  });
  const edit = el("a", { href: "#files/" + path, class: "edit" }, "edit " + path);
  edit.addEventListener("click", (e) => {
    e.preventDefault();
    openFile(path);
  });
  return el("div", { class: "part", "data-part": label.toLowerCase() }, head, " ", edit, body);
}

function typeLink(kind: string, type: string): HTMLElement {
  const isFile = fileText(type) !== undefined;
  const a = el("a", { href: isFile ? "#files/" + type : "#", class: "type", title: kind }, type);
  if (isFile)
    a.addEventListener("click", (e) => {
      e.preventDefault();
      openFile(type);
    });
  return el("span", {}, kind + ": ", a);
}

function card(flow: string, b: Block): HTMLElement {
  const files = blockFiles(b.kind, b.name);
  const head = el(
    "div",
    { class: "head" },
    logo(b.kind),
    el("span", { class: "kind" }, b.kind),
    el("span", { class: "name" }, b.id === b.name ? b.id : `${b.id} (${b.name})`),
  );
  const types = (["input", "output", "state"] as const)
    .filter((t) => b[t])
    .map((t) => typeLink(t, b[t] as string));
  const stats = el("div", { class: "stats" });
  if (b.stats) drawStats(stats, liveOf(flow, b.id, b.stats));
  return el(
    "div",
    { class: "block", "data-block": b.id, "data-search": [b.kind, b.id, b.name, b.key || ""].join(" ") },
    head,
    b.key ? el("div", { class: "key" }, "key " + b.key) : null,
    types.length ? el("div", { class: "types" }, ...types) : null,
    files.config ? expander("Configuration", files.config) : null,
    files.code ? expander("Code", files.code) : null,
    b.stats ? stats : null,
  );
}

let selected = new Set<string>();
export function selectedBlocks(): Set<string> {
  return selected;
}

export function drawFlows(data: Flows, onSelect: () => void): void {
  $("revision").textContent = "revision " + data.revision.slice(0, 12);
  const main = $("flows");
  main.replaceChildren();
  // In a cluster the statistics add up every node's counts: say how many,
  // and which nodes did not answer.
  if (data.statsNodes > 1 || data.statsMissing.length)
    main.append(
      el(
        "p",
        { class: "stats-nodes" + (data.statsMissing.length ? " errors" : "") },
        `Statistics of ${data.statsNodes} nodes` +
          (data.statsMissing.length ? `; not counted (no answer): ${data.statsMissing.join(", ")}` : ""),
      ),
    );
  for (const flow of data.flows) {
    const box = el(
      "div",
      { class: "flow", "data-flow": flow.name },
      el("h2", {}, flow.name + (flow.onError ? `  (errors to ${flow.onError})` : "")),
    );
    flow.blocks.forEach((b, i) => {
      if (i) box.append(el("div", { class: "arrow" }, "↓"));
      const c = card(flow.name, b);
      const id = flow.name + "/" + b.id;
      if (selected.has(id)) c.classList.add("selected");
      c.querySelector(".head")?.addEventListener("click", () => {
        if (selected.has(id)) selected.delete(id);
        else selected.add(id);
        c.classList.toggle("selected");
        onSelect();
      });
      box.append(c);
    });
    main.append(box);
  }
  applySearch();
}

// Search across flows, blocks, keys and code: a stack shows when its name,
// a block's kind, name or key, or a block's code or configuration matches.
export function applySearch(): void {
  const q = (document.getElementById("search") as HTMLInputElement | null)?.value.trim().toLowerCase() || "";
  for (const box of document.querySelectorAll<HTMLElement>(".flow")) {
    let any = !q || (box.dataset.flow || "").toLowerCase().includes(q);
    for (const c of box.querySelectorAll<HTMLElement>(".block")) {
      const text = ((c.dataset.search || "") + " " + c.textContent).toLowerCase();
      const hit = !q || text.includes(q);
      c.classList.toggle("match", !!q && hit);
      any = any || hit;
    }
    box.hidden = !any;
  }
}
