// Propose a change: edits saved as a proposal instead of applied; its diff
// against the running revision; the project's `flowstate test` cases run on
// it (a status badge); "Merge and deploy" once they passed, merged onto the
// running revision (a conflict is shown, never resolved silently).
import { enc, get, getText, projectPath, send } from "./api";
import { $, button, el, fill, notice, problem, shortRev } from "./dom";
import { diffView } from "./history";
import { app, loadFlows } from "./state";

interface Proposal {
  name: string;
  revision: string;
  message?: string;
  author?: string;
  timeMs?: number;
  onRunning: boolean;
  tests: { status: "not run" | "passed" | "failed"; output?: string };
}

const path = (p: Proposal, rest = "") => projectPath(app.project, "/proposals/" + enc(p.name) + rest);

async function showDiff(p: Proposal): Promise<void> {
  const box = $("proposal-detail");
  fill(box, el("h3", {}, p.name), "…");
  try {
    const text = await getText(path(p, "/diff"));
    fill(
      box,
      el("h3", {}, `${p.name}: ${(p.message || "").split("\n")[0]}`),
      el("div", { class: "ids" }, `revision ${shortRev(p.revision)} · against the running ${shortRev(app.revision)}`),
      diffView(text || "(no change)"),
      p.tests.output ? el("details", {}, el("summary", {}, "Test output"), el("pre", {}, p.tests.output)) : null,
    );
  } catch (e) {
    fill(box, "the diff could not be read: " + (e as Error).message);
  }
}

async function runTests(p: Proposal): Promise<void> {
  notice(`Running the tests of ${p.name}…`);
  try {
    const r = await send<{ tests: Proposal["tests"] }>("POST", path(p, "/test"));
    notice(`The tests of ${p.name} ${r.tests.status}`);
    await drawProposals(p.name);
  } catch (e) {
    problem("the tests could not run: " + (e as Error).message);
  }
}

async function merge(p: Proposal): Promise<void> {
  try {
    const r = await send<{ revision: string }>("POST", path(p, "/merge"), { expected: app.revision });
    await loadFlows();
    notice(`Merged ${p.name}: revision ${shortRev(r.revision)} runs now`);
    problem("");
    await drawProposals();
  } catch (e) {
    problem("Merge refused: " + (e as Error).message);
  }
}

async function drop(p: Proposal): Promise<void> {
  if (!confirm(`Drop the proposal ${p.name}?`)) return;
  try {
    await send("DELETE", path(p));
    await drawProposals();
  } catch (e) {
    problem("Drop refused: " + (e as Error).message);
  }
}

export async function drawProposals(open = ""): Promise<void> {
  try {
    const list = await get<Proposal[]>(projectPath(app.project, "/proposals"));
    fill(
      $("proposal-list"),
      list.length ? null : el("p", {}, "No proposal. In Files, \"Propose…\" saves edits as one."),
      ...list.map((p) => {
        const mergeButton = button("Merge and deploy", () => void merge(p));
        mergeButton.disabled = p.tests.status !== "passed";
        const row = el(
          "div",
          { class: "proposal", "data-proposal": p.name },
          el("strong", {}, p.name),
          " ",
          el("span", { class: "badge tests-" + p.tests.status.replace(" ", "-") }, "tests " + p.tests.status),
          " ",
          el("span", { class: "message" }, (p.message || "").split("\n")[0]),
          el("span", { class: "ids" }, ` ${p.author || ""} · ${shortRev(p.revision)}`),
          " ",
          button("Diff", () => void showDiff(p)),
          button("Run tests", () => void runTests(p)),
          mergeButton,
          button("Drop", () => void drop(p)),
        );
        return row;
      }),
    );
    const shown = list.find((p) => p.name === open);
    if (shown) await showDiff(shown);
  } catch (e) {
    problem("the proposals could not be read: " + (e as Error).message);
  }
}
