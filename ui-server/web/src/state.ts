// What every view shares: the project shown, its active revision and files.
import { type Flows, type ProjectFile, get, projectPath } from "./api";

export const app = {
  project: "",
  revision: "",
  flows: null as Flows | null,
  files: [] as ProjectFile[],
  // Called when the active revision changed (a deploy from here or elsewhere).
  onRevision: [] as (() => void)[],
};

export async function loadFlows(): Promise<Flows> {
  const flows = await get<Flows>(projectPath(app.project, "/flows"));
  app.flows = flows;
  if (flows.revision !== app.revision) {
    app.revision = flows.revision;
    const f = await get<{ revision: string; files: ProjectFile[] }>(projectPath(app.project, "/files"));
    app.files = f.files;
    for (const fn of app.onRevision) fn();
  }
  return flows;
}

export function fileText(path: string): string | undefined {
  return app.files.find((f) => f.path === path)?.text;
}

// The files a block is made of: its function's source, or its driver's
// configuration (drivers/NAME.yaml), by the project layout.
export function blockFiles(kind: string, name: string): { config?: string; code?: string } {
  const out: { config?: string; code?: string } = {};
  for (const ext of [".js", ".mjs", ".py"]) {
    if (fileText("functions/" + name + ext) !== undefined) out.code = "functions/" + name + ext;
  }
  for (const ext of [".yaml", ".yml"]) {
    if (fileText("drivers/" + name + ext) !== undefined) out.config = "drivers/" + name + ext;
  }
  if (!out.code && (kind.startsWith("js.") || kind.startsWith("py."))) {
    const guess = app.files.find((f) => f.path.startsWith("functions/" + name + "."));
    if (guess) out.code = guess.path;
  }
  return out;
}

// Where a type (a schema file or a registry URL) is used: the blocks naming it.
export function usesOfType(type: string): string[] {
  const out: string[] = [];
  for (const flow of app.flows?.flows || [])
    for (const b of flow.blocks)
      for (const t of [b.input, b.output, b.state]) if (t === type) out.push(flow.name + "/" + b.id);
  return [...new Set(out)];
}
