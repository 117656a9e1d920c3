// The control plane's API, as the console calls it: same-origin requests
// with the session's cookie, and its CSRF token on every change.

export interface Answer {
  status: number;
  data: any;
}

let csrf = sessionStorage.getItem("fs-csrf") || "";

export function setCsrf(token: string): void {
  csrf = token;
  sessionStorage.setItem("fs-csrf", token);
}

export async function api(method: string, path: string, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await r.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  return { status: r.status, data };
}

// The problem's detail of a failed answer, for the alert line.
export function why(a: Answer): string {
  return (a.data && (a.data.detail || a.data.title)) || `the service answered ${a.status}`;
}

export interface Me {
  account: number;
  email: string;
  name: string;
  operator: boolean;
  csrf?: string;
  teams: { name: string; role: string }[];
}
