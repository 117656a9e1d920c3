// The admin API as the UI uses it (the node's /api/v1/openapi.json describes
// every route). The token comes from the URL fragment (#token=..., never
// sent to the server) or is asked for once per tab.

export interface BlockStats {
  executions: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}
export interface Block {
  kind: string;
  name: string;
  id: string;
  key: string | null;
  input: string | null;
  output: string | null;
  state: string | null;
  stats?: BlockStats;
}
export interface Flow {
  name: string;
  onError: string | null;
  blocks: Block[];
}
export interface Flows {
  project: string;
  revision: string;
  statsNodes: number; // how many nodes' counts the statistics add up
  statsMissing: string[]; // cluster nodes that did not answer
  flows: Flow[];
}
export interface Project {
  name: string;
  revision: string;
}
export interface ProjectFile {
  path: string;
  size: number;
  text?: string;
}
export interface Revision {
  revision: string;
  parents: string[];
  author: string;
  email: string;
  timeMs: number;
  message: string;
  active: boolean;
}
export interface TraceEvent {
  time: string;
  timeMs: number;
  flow: string;
  block: string;
  key: string;
  traceId: string;
  messageId: string;
  durationMs: number;
  status: string;
  error?: string;
  errorId?: string;
  cursor: string;
  input?: unknown;
  outputs?: unknown[];
  state?: unknown;
  logs?: string[];
  details?: unknown;
  payload?: string;
}
export interface ErrorRecord {
  id: string;
  type: string;
  message: string;
  flow: string;
  block: string;
  key: string;
  at: string;
  traceId: string;
  revision: string;
  input: unknown;
  details: unknown;
}

// An answer other than 2xx: the problem's detail, and its status.
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

const TOKEN_KEY = "flowstate-token";

export function token(): string {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) {
    sessionStorage.setItem(TOKEN_KEY, fromHash);
    history.replaceState(null, "", location.pathname);
  }
  let t = sessionStorage.getItem(TOKEN_KEY);
  if (!t) {
    t = prompt("The node's admin token (DATA_DIR/admin.token):") || "";
    sessionStorage.setItem(TOKEN_KEY, t);
  }
  return t;
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

let bearer = "";
export function useToken(t: string): void {
  bearer = t;
}

export function headers(extra: Record<string, string> = {}): Record<string, string> {
  return { Authorization: "Bearer " + bearer, ...extra };
}

async function answer(r: Response): Promise<string> {
  const text = await r.text();
  if (r.ok) return text;
  let detail = r.statusText;
  try {
    const p = JSON.parse(text);
    detail = p.detail || p.title || detail;
  } catch {
    if (text) detail = text;
  }
  throw new ApiError(detail, r.status);
}

export async function getText(path: string): Promise<string> {
  return answer(await fetch(path, { headers: headers() }));
}

export async function get<T>(path: string): Promise<T> {
  return JSON.parse(await getText(path)) as T;
}

export async function send<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, headers: headers({ "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const text = await answer(await fetch(path, init));
  return (text ? JSON.parse(text) : {}) as T;
}

export const enc = encodeURIComponent;

export function projectPath(project: string, rest = ""): string {
  return "/api/v1/projects/" + enc(project) + rest;
}

// Server-sent events from `url`, each parsed and handed to `onEvent`, until
// the signal aborts or the stream ends.
export async function follow<T>(url: string, signal: AbortSignal, onEvent: (e: T) => void): Promise<void> {
  const r = await fetch(url, { headers: headers(), signal });
  if (!r.ok || !r.body) throw new ApiError(await r.text(), r.status);
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      const chunk = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      const data = chunk.split("\n").find((l) => l.startsWith("data: "));
      if (data) onEvent(JSON.parse(data.slice(6)) as T);
    }
  }
}
