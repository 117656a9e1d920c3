// Edit and deploy: every file of the project at the active revision, edited
// in CodeMirror; new and deleted files; "Check" validates the edits against
// the revision they were made on without committing anything, "Apply"
// commits them with a message on top of that revision and deploys. A
// concurrent deploy is a conflict (409): the edits stay here, never lost.
import { ApiError, projectPath, send } from "./api";
import { completionFor } from "./complete";
import { type EditorHandle, loadEditor } from "./editor_loader";
import { $, button, el, notice, problem, shortRev } from "./dom";
import { app, loadFlows, usesOfType } from "./state";

// Edits not applied yet: path -> new text, or null for a deleted file.
const edits = new Map<string, string | null>();
let base = ""; // the revision the edits apply to
let current = ""; // the file in the editor
let view: EditorHandle | null = null;
let shown = 0; // which showFile() call the editor being created belongs to
let problems: { path: string; line: number; text: string }[] = [];

function textOf(path: string): string | null {
  if (edits.has(path)) return edits.get(path) ?? null;
  const f = app.files.find((x) => x.path === path);
  return f ? (f.text ?? null) : null;
}

function paths(): string[] {
  const all = new Set(app.files.map((f) => f.path));
  for (const [p, t] of edits) if (t !== null) all.add(p);
  return [...all].sort();
}

function drawList(): void {
  const list = $("file-list");
  list.replaceChildren(
    ...paths().map((p) => {
      const deleted = edits.has(p) && edits.get(p) === null;
      const isNew = !app.files.some((f) => f.path === p);
      const mark = deleted ? " (deleted)" : isNew ? " (new)" : edits.has(p) ? " (changed)" : "";
      const a = el("a", { href: "#files/" + p, class: p === current ? "file current" : "file", "data-path": p }, p + mark);
      a.addEventListener("click", (e) => {
        e.preventDefault();
        openFile(p);
      });
      return a;
    }),
  );
  const pending = edits.size;
  $("edit-status").textContent = pending
    ? `${pending} file(s) changed on revision ${shortRev(base)}`
    : `revision ${shortRev(app.revision)}`;
  ($("apply") as HTMLButtonElement).disabled = !pending;
  ($("propose") as HTMLButtonElement).disabled = !pending;
  ($("check") as HTMLButtonElement).disabled = !pending;
}

function problemsIn(path: string): { line: number; text: string }[] {
  return problems.filter((p) => p.path === path);
}

function showProblems(): void {
  const box = $("edit-problems");
  box.replaceChildren(
    ...problems.map((p) => {
      const a = el("a", { href: "#files/" + p.path, class: "problem" }, `${p.path}:${p.line}: ${p.text}`);
      a.addEventListener("click", (e) => {
        e.preventDefault();
        openFile(p.path);
      });
      return el("div", {}, a);
    }),
  );
  view?.setProblems(problemsIn(current));
}

// "functions/x.js:3: message" (one or more, separated by "; " or new lines)
// from a refusal's detail; anything else is a problem of the whole edit.
function parseProblems(detail: string): { path: string; line: number; text: string }[] {
  const out: { path: string; line: number; text: string }[] = [];
  for (const part of detail.split(/\n|; (?=[\w./-]+:\d)/)) {
    const m = /([\w./-]+\.[a-z]+):(\d+)(?::\d+)?:?\s*(.*)/.exec(part);
    if (m) out.push({ path: m[1], line: Number(m[2]), text: m[3] || part });
  }
  return out;
}

export function openFile(path: string): void {
  location.hash = "#files/" + path;
  showFile(path);
}

export function showFile(path: string): void {
  current = path;
  shown++;
  const text = textOf(path);
  const host = $("editor");
  view?.destroy();
  view = null;
  host.replaceChildren();
  $("file-title").textContent = path || "no file";
  const uses = usesOfType(path);
  $("file-uses").replaceChildren(
    ...(uses.length ? ["used by ", ...uses.flatMap((u, i) => [i ? ", " : "", el("a", { href: "#flows" }, u)])] : []),
  );
  if (!path) return drawList();
  if (text === null) {
    host.append(el("p", {}, edits.get(path) === null ? "Deleted in these edits." : "Not a text file."));
    return drawList();
  }
  const mine = ++shown;
  drawList();
  void loadEditor().then(
    (editor) => {
      if (mine !== shown) return; // another file was opened meanwhile
      view = editor.createEditor(
        host,
        path,
        text,
        (now) => {
          if (!edits.size) base = app.revision;
          const original = app.files.find((f) => f.path === path)?.text;
          if (now === original) edits.delete(path);
          else edits.set(path, now);
          drawList();
        },
        completionFor(path),
      );
      view.setProblems(problemsIn(path));
    },
    (e: Error) => problem(e.message),
  );
}

function body(apply: boolean, message = ""): unknown {
  const files: Record<string, string | null> = {};
  for (const [p, t] of edits) files[p] = t;
  return { base: base || app.revision, files, message, apply };
}

async function check(): Promise<boolean> {
  try {
    await send("POST", projectPath(app.project, "/edits"), body(false));
    problems = [];
    showProblems();
    notice("The edits are valid.");
    return true;
  } catch (e) {
    refused(e as Error);
    return false;
  }
}

function refused(e: Error): void {
  if (e instanceof ApiError && e.status === 409) {
    problem(
      `Another deploy came first (${e.message}). Your edits are kept here: "Rebase" loads the running ` +
        "revision and puts them on top of it; check what changed in History before applying.",
    );
    return;
  }
  problems = parseProblems(e.message);
  showProblems();
  problem("The edits are refused: " + e.message);
}

async function apply(): Promise<void> {
  if (!(await check())) return;
  const message = prompt("Commit message for these edits:");
  if (!message) return;
  try {
    const r = await send<{ revision: string }>("POST", projectPath(app.project, "/edits"), body(true, message));
    edits.clear();
    base = "";
    problems = [];
    await loadFlows();
    notice("Deployed revision " + shortRev(r.revision));
    problem("");
    showFile(current);
  } catch (e) {
    refused(e as Error);
  }
}

// Puts the edits on top of the running revision (a file changed there too
// keeps this edit's text: History shows what the other change was).
async function rebase(): Promise<void> {
  await loadFlows();
  base = app.revision;
  for (const [p, t] of [...edits]) if (t === app.files.find((f) => f.path === p)?.text) edits.delete(p);
  problem("");
  showFile(current);
}

// Saves the edits as a proposal instead of applying them (proposals.ts).
async function propose(): Promise<void> {
  const name = prompt("A name for the proposal (letters, digits, '.', '_', '-'):");
  if (!name) return;
  const message = prompt("Describe the change:");
  if (!message) return;
  const files: Record<string, string | null> = {};
  for (const [p, t] of edits) files[p] = t;
  try {
    await send("POST", projectPath(app.project, "/proposals"), { name, base: base || app.revision, files, message });
    edits.clear();
    base = "";
    problems = [];
    showProblems();
    showFile(current);
    notice(`Proposal ${name} saved: see Proposals`);
    location.hash = "#proposals/" + name;
  } catch (e) {
    refused(e as Error);
  }
}

export function wireFiles(): void {
  $("check").addEventListener("click", () => void check());
  $("apply").addEventListener("click", () => void apply());
  $("propose").addEventListener("click", () => void propose());
  $("file-actions").append(
    button("New file", () => {
      const p = prompt("Path of the new file (e.g. functions/hello.js):");
      if (!p) return;
      if (!edits.size) base = app.revision;
      edits.set(p, "");
      openFile(p);
    }),
    button("Delete file", () => {
      if (!current || !confirm("Delete " + current + " in these edits?")) return;
      if (!edits.size) base = app.revision;
      if (app.files.some((f) => f.path === current)) edits.set(current, null);
      else edits.delete(current);
      showFile(current);
    }),
    button("Discard edits", () => {
      if (!edits.size || !confirm("Discard every edit not applied?")) return;
      edits.clear();
      problems = [];
      showProblems();
      showFile(current);
    }),
    button("Rebase", () => void rebase()),
  );
}

export function hasEdits(): boolean {
  return edits.size > 0;
}
