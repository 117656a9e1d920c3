// The node's web UI: Flows (stacks, statistics, the execution stream),
// Files (edit and deploy), Proposals, History, Errors and the actor Graph,
// one tab each (#flows, #files/PATH, #proposals/NAME, #history, #errors,
// #graph).
import { type Project, forgetToken, get, token, useToken } from "./api";
import { drawGraph } from "./cluster";
import { $, el, problem } from "./dom";
import { drawErrors } from "./errors";
import { applySearch, drawFlows } from "./flows";
import { hasEdits, showFile, wireFiles } from "./files";
import { drawHistory } from "./history";
import { drawProposals } from "./proposals";
import { app, loadFlows } from "./state";
import { startStream, wireFilters } from "./stream";

const TABS = ["flows", "files", "proposals", "history", "errors", "graph"] as const;
type Tab = (typeof TABS)[number];
let graphTimer = 0;

function route(): void {
  const hash = location.hash.slice(1);
  const tab = (TABS as readonly string[]).includes(hash.split("/")[0]) ? (hash.split("/")[0] as Tab) : "flows";
  for (const t of TABS) {
    $("view-" + t).hidden = t !== tab;
    $("tab-" + t).classList.toggle("current", t === tab);
  }
  window.clearInterval(graphTimer);
  if (tab === "files") showFile(hash.slice("files/".length) || app.files[0]?.path || "");
  if (tab === "history") void drawHistory();
  if (tab === "proposals") void drawProposals(hash.slice("proposals/".length));
  if (tab === "errors") void drawErrors();
  if (tab === "graph") {
    void drawGraph();
    graphTimer = window.setInterval(() => void drawGraph(), 2000);
  }
}

async function refresh(): Promise<void> {
  try {
    drawFlows(await loadFlows(), () => void startStream());
    problem("");
  } catch (e) {
    problem((e as Error).message);
  }
}

async function selectProject(name: string): Promise<void> {
  app.project = name;
  app.revision = "";
  await refresh();
  void startStream();
  route();
}

async function start(): Promise<void> {
  useToken(token());
  wireFiles();
  wireFilters();
  $("search").addEventListener("input", applySearch);
  $("error-filter").addEventListener("input", () => void drawErrors());
  window.addEventListener("hashchange", route);
  window.addEventListener("beforeunload", (e) => {
    if (hasEdits()) e.preventDefault();
  });
  app.onRevision.push(() => {
    if (app.flows) drawFlows(app.flows, () => void startStream());
    if (!$("view-files").hidden) showFile(location.hash.slice("#files/".length));
  });
  try {
    const projects = await get<Project[]>("/api/v1/projects");
    const select = $("project") as HTMLSelectElement;
    select.replaceChildren(...projects.map((p) => el("option", {}, p.name)));
    select.addEventListener("change", () => void selectProject(select.value));
    if (!projects.length) return problem("the node serves no project");
    await selectProject(projects[0].name);
    // The structure and the node's own counters, now and then (the stream
    // keeps the statistics current in between); a deploy made elsewhere
    // shows here within this period.
    window.setInterval(() => void refresh(), 15000);
  } catch (e) {
    problem((e as Error).message + " (is the token right? it is in the node's DATA_DIR/admin.token)");
    forgetToken();
  }
}

void start();
