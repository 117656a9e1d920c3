// History: the revisions with their messages, authors and diffs; roll back =
// deploy an earlier revision's files as a new revision.
import { type Revision, enc, get, getText, projectPath, send } from "./api";
import { $, button, el, notice, problem, shortRev, fill } from "./dom";
import { app, loadFlows } from "./state";

export function diffView(text: string): HTMLElement {
  const pre = el("pre", { class: "diff" });
  for (const line of text.split("\n")) {
    const cls = line.startsWith("+++") || line.startsWith("---") ? "file"
      : line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : line.startsWith("@@") ? "hunk" : "";
    pre.append(el("span", { class: cls }, line + "\n"));
  }
  return pre;
}

async function showDiff(r: Revision): Promise<void> {
  const box = $("history-diff");
  box.replaceChildren(el("h3", {}, `${shortRev(r.revision)}: ${r.message.split("\n")[0]}`), "…");
  try {
    const text = await getText(projectPath(app.project, "/revisions/" + enc(r.revision) + "/diff"));
    fill(box,
      el("h3", {}, `${shortRev(r.revision)}: ${r.message.split("\n")[0]}`),
      el("div", { class: "ids" }, `${r.author} <${r.email}> · ${new Date(r.timeMs).toISOString()}`),
      r.message.includes("\n") ? el("pre", {}, r.message) : null,
      diffView(text || "(no change)"),
    );
  } catch (e) {
    box.replaceChildren("the diff could not be read: " + (e as Error).message);
  }
}

async function rollBack(r: Revision): Promise<void> {
  if (!confirm(`Deploy the files of ${shortRev(r.revision)} as a new revision?`)) return;
  try {
    const out = await send<{ revision: string }>("POST", projectPath(app.project, "/rollback"), {
      to: r.revision,
      expected: app.revision,
    });
    await loadFlows();
    notice("Rolled back: revision " + shortRev(out.revision) + " runs now");
    problem("");
    await drawHistory();
  } catch (e) {
    problem("Roll back refused: " + (e as Error).message);
  }
}

export async function drawHistory(): Promise<void> {
  const list = $("history-list");
  try {
    const revisions = await get<Revision[]>(projectPath(app.project, "/revisions?limit=100"));
    list.replaceChildren(
      ...revisions.map((r) => {
        const row = el(
          "div",
          { class: r.active ? "revision active" : "revision", "data-revision": r.revision },
          el("code", {}, shortRev(r.revision)),
          " ",
          el("span", { class: "message" }, r.message.split("\n")[0]),
          el("span", { class: "ids" }, ` ${r.author} · ${new Date(r.timeMs).toLocaleString()}`),
          r.active ? el("span", { class: "badge" }, "running") : button("Roll back to this", () => void rollBack(r)),
        );
        row.addEventListener("click", (e) => {
          if ((e.target as HTMLElement).tagName !== "BUTTON") void showDiff(r);
        });
        return row;
      }),
    );
  } catch (e) {
    problem("the history could not be read: " + (e as Error).message);
  }
}
