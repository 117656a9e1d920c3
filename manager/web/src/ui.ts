// The console's page helpers: the alert and notice lines, forms and tables.
import { el } from "../../../ui-server/web/src/dom";

export { el };

export function say(problem: string, notice = ""): void {
  document.getElementById("problem")!.textContent = problem;
  document.getElementById("notice")!.textContent = notice;
}

export function app(): HTMLElement {
  return document.getElementById("app")!;
}

export function section(title: string, ...children: (Node | string | null | false)[]): HTMLElement {
  return el("section", {}, el("h2", {}, title), ...children);
}

// A form of labelled inputs; `submit` gets their values by name.
export function form(
  id: string,
  fields: { name: string; label: string; type?: string; options?: string[]; value?: string }[],
  action: string,
  submit: (values: Record<string, string>) => Promise<void>,
): HTMLFormElement {
  const f = el("form", { id });
  for (const field of fields) {
    let input: HTMLInputElement | HTMLSelectElement;
    if (field.options) {
      input = el("select", { name: field.name });
      for (const o of field.options) input.append(el("option", { value: o }, o));
    } else {
      input = el("input", { name: field.name, type: field.type || "text" });
    }
    if (field.value !== undefined) input.value = field.value;
    f.append(el("label", {}, field.label, input));
  }
  f.append(el("button", { type: "submit" }, action));
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    const values: Record<string, string> = {};
    for (const input of Array.from(f.querySelectorAll<HTMLInputElement | HTMLSelectElement>("input, select")))
      values[input.name] = input.value;
    say("");
    await submit(values);
  });
  return f;
}

export function table(id: string, head: string[], rows: (Node | string)[][]): HTMLTableElement {
  const t = el("table", { id }, el("tr", {}, ...head.map((h) => el("th", {}, h))));
  for (const r of rows) t.append(el("tr", {}, ...r.map((c) => el("td", {}, c))));
  return t;
}

export function action(label: string, onClick: () => Promise<void>, cls = "plain"): HTMLButtonElement {
  const b = el("button", { type: "button", class: cls }, label);
  b.addEventListener("click", () => {
    say("");
    void onClick();
  });
  return b;
}

export function go(hash: string): void {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

export function count(n: number): string {
  return n.toLocaleString("en-US");
}

export function dollars(cents: number): string {
  return "$" + (cents / 100).toFixed(2);
}
