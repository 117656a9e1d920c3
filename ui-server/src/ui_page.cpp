// The web UI's one page, served at / on the admin listener: each flow of a
// project as a stack of blocks with live statistics, and the execution trace
// as it happens. Plain HTML, CSS and JavaScript (no build step); it talks to
// the admin API with the node's token, which it takes from the URL fragment
// (#token=..., never sent to the server) or asks for once per tab.
#include "ui_page.hpp"

namespace flowstate::admin {

const char* ui_page_html() {
  return R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Flowstate</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #1d2330; }
  header { display: flex; gap: 1em; align-items: center; padding: .6em 1em; background: #1d2330; color: #fff; }
  header h1 { font-size: 1.1em; margin: 0; }
  header select, header button { font: inherit; }
  #problem { color: #b00020; padding: .5em 1em; }
  main { display: flex; gap: 1em; padding: 1em; flex-wrap: wrap; align-items: flex-start; }
  .flow { background: #fff; border: 1px solid #d9dde5; border-radius: 6px; padding: .6em; min-width: 16em; }
  .flow h2 { font-size: 1em; margin: 0 0 .5em; }
  .block { border: 1px solid #c6ccd8; border-radius: 4px; padding: .4em .5em; margin: .3em 0; background: #fbfcfd; }
  .block .kind { font-size: .8em; color: #5a6478; }
  .block .name { font-weight: 600; }
  .block .stats { font-size: .85em; margin-top: .2em; }
  .block .errors { color: #b00020; }
  .arrow { text-align: center; color: #8a93a6; font-size: .8em; }
  section#trace { padding: 0 1em 1em; }
  #events { font: 12px/1.5 ui-monospace, monospace; background: #fff; border: 1px solid #d9dde5; border-radius: 6px;
            max-height: 22em; overflow: auto; padding: .4em; margin: 0; }
  #events div { white-space: nowrap; cursor: pointer; }
  #events div.error { color: #b00020; }
  #detail { font: 12px ui-monospace, monospace; white-space: pre-wrap; background: #fff; border: 1px solid #d9dde5;
            border-radius: 6px; padding: .4em; }
</style>
</head>
<body>
<header>
  <h1>Flowstate</h1>
  <select id="project" aria-label="project"></select>
  <span id="revision"></span>
</header>
<div id="problem" role="alert"></div>
<main id="flows"></main>
<section id="trace">
  <h2>Executions, as they happen</h2>
  <pre id="events" aria-label="executions"></pre>
  <div id="detail" hidden></div>
</section>
<script>
"use strict";
const tokenFromHash = new URLSearchParams(location.hash.slice(1)).get("token");
if (tokenFromHash) { sessionStorage.setItem("flowstate-token", tokenFromHash); history.replaceState(null, "", "/"); }
let token = sessionStorage.getItem("flowstate-token");
if (!token) {
  token = prompt("The node's admin token (DATA_DIR/admin.token):") || "";
  sessionStorage.setItem("flowstate-token", token);
}
const auth = { Authorization: "Bearer " + token };
const $ = (id) => document.getElementById(id);
let project = "";
let follow = null;

function problem(text) { $("problem").textContent = text || ""; }

async function api(path) {
  const r = await fetch(path, { headers: auth });
  const body = await r.json();
  if (!r.ok) throw new Error(body.detail || r.statusText);
  return body;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function drawFlows(data) {
  $("revision").textContent = "revision " + data.revision.slice(0, 12);
  const main = $("flows");
  main.replaceChildren();
  for (const flow of data.flows) {
    const box = el("div", "flow");
    box.dataset.flow = flow.name;
    box.append(el("h2", "", flow.name + (flow.onError ? "  (errors to " + flow.onError + ")" : "")));
    flow.blocks.forEach((b, i) => {
      if (i) box.append(el("div", "arrow", "↓"));
      const card = el("div", "block");
      card.dataset.block = b.id;
      card.append(el("div", "kind", b.kind + (b.key ? "  key " + b.key : "")));
      card.append(el("div", "name", b.id === b.name ? b.name : b.id + " (" + b.name + ")"));
      const types = ["input", "output", "state"].filter((t) => b[t]).map((t) => t + ": " + b[t]);
      if (types.length) card.append(el("div", "kind", types.join(", ")));
      if (b.stats) {
        const ex = b.stats.executions;
        const errors = Object.entries(ex).filter(([k]) => k !== "ok").reduce((n, [, v]) => n + v, 0);
        const stats = el("div", "stats");
        stats.append(el("span", "ok", (ex.ok || 0) + " ok"));
        if (errors) stats.append(" · ", el("span", "errors", errors + " errors"));
        if (b.stats.p50Ms >= 0) stats.append(" · p50 ≤ " + b.stats.p50Ms + " ms, p99 ≤ " + b.stats.p99Ms + " ms");
        card.append(stats);
      }
      box.append(card);
    });
    main.append(box);
  }
}

async function refresh() {
  if (!project) return;
  try { drawFlows(await api("/api/v1/projects/" + encodeURIComponent(project) + "/flows")); problem(""); }
  catch (e) { problem(e.message); }
}

function showEvent(ev) {
  const line = el("div", ev.status === "ok" ? "" : "error",
    ev.time.slice(11, 23) + "  " + ev.flow + "/" + ev.block + "  key=" + ev.key + "  " + ev.status +
    "  " + ev.durationMs + " ms" + (ev.logs && ev.logs.length ? "  log: " + ev.logs[ev.logs.length - 1] : ""));
  line.onclick = () => { $("detail").hidden = false; $("detail").textContent = JSON.stringify(ev, null, 2); };
  const list = $("events");
  list.prepend(line);
  while (list.childElementCount > 200) list.lastChild.remove();
}

async function followTrace() {
  if (follow) follow.abort();
  follow = new AbortController();
  $("events").replaceChildren();
  const base = "/api/v1/trace?project=" + encodeURIComponent(project);
  try {
    // The last few first, then everything after the newest of them.
    const recent = await api(base + "&limit=20");
    recent.forEach(showEvent);
    const after = recent.length ? "&after=" + recent[recent.length - 1].cursor : "";
    const url = base + "&follow=true" + after;
    const r = await fetch(url, { headers: auth, signal: follow.signal });
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let end;
      while ((end = buffered.indexOf("\n\n")) >= 0) {
        const chunk = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        const data = chunk.split("\n").find((l) => l.startsWith("data: "));
        if (data) showEvent(JSON.parse(data.slice(6)));
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") problem("the live trace stopped: " + e.message);
  }
}

async function start() {
  try {
    const projects = await api("/api/v1/projects");
    const select = $("project");
    select.replaceChildren(...projects.map((p) => el("option", "", p.name)));
    select.onchange = () => { project = select.value; refresh(); followTrace(); };
    project = projects.length ? projects[0].name : "";
    if (!project) return problem("the node serves no project");
    refresh();
    followTrace();
    setInterval(refresh, 1000);
  } catch (e) {
    problem(e.message + " (is the token right? it is in the node's DATA_DIR/admin.token)");
    sessionStorage.removeItem("flowstate-token");
  }
}
start();
</script>
</body>
</html>
)HTML";
}

}  // namespace flowstate::admin
