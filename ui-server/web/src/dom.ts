// Small DOM helpers: no framework.

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string | null | undefined | false)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.dataset[k.slice(5).replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) e.append(c);
  return e;
}

export function button(label: string, onClick: () => void, cls = ""): HTMLButtonElement {
  const b = el("button", { type: "button", class: cls }, label);
  b.addEventListener("click", onClick);
  return b;
}

export function $(id: string): HTMLElement {
  const e = document.getElementById(id);
  if (!e) throw new Error("no element #" + id);
  return e;
}

let problemTimer = 0;
// Shows a problem (or clears it with ""), in the page's alert line.
export function problem(text: string): void {
  const p = $("problem");
  p.textContent = text;
  window.clearTimeout(problemTimer);
}

export function notice(text: string): void {
  const p = $("notice");
  p.textContent = text;
  window.clearTimeout(problemTimer);
  problemTimer = window.setTimeout(() => (p.textContent = ""), 6000);
}

export function json(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

export function shortRev(r: string): string {
  return r.slice(0, 12);
}

// parent.replaceChildren, skipping the null, undefined and false children.
export function fill(parent: Element, ...children: (Node | string | null | undefined | false)[]): void {
  parent.replaceChildren(...children.filter((c): c is Node | string => c !== null && c !== undefined && c !== false));
}
