// One execution stream for the project: live from the node's trace
// (server-sent events), filtered by the selected blocks, a key, errors only
// or a trace id. Clicking an execution shows its input, state after,
// outputs, logs, error and its whole trace (every block it went through).
import { type TraceEvent, enc, follow, get } from "./api";
import { $, el, json, problem, fill } from "./dom";
import { countEvent, selectedBlocks } from "./flows";
import { app } from "./state";

let stream: AbortController | null = null;
const MAX_LINES = 300;

interface Filter {
  key: string;
  trace: string;
  errors: boolean;
  blocks: Set<string>;
}

function filter(): Filter {
  return {
    key: ($("filter-key") as HTMLInputElement).value.trim(),
    trace: ($("filter-trace") as HTMLInputElement).value.trim(),
    errors: ($("filter-errors") as HTMLInputElement).checked,
    blocks: selectedBlocks(),
  };
}

function shown(ev: TraceEvent, f: Filter): boolean {
  if (f.key && ev.key !== f.key) return false;
  if (f.trace && ev.traceId !== f.trace) return false;
  if (f.errors && ev.status === "ok") return false;
  if (f.blocks.size && !f.blocks.has(ev.flow + "/" + ev.block)) return false;
  return true;
}

function line(ev: TraceEvent): HTMLElement {
  const last = ev.logs && ev.logs.length ? "  log: " + ev.logs[ev.logs.length - 1] : "";
  const d = el(
    "div",
    { class: ev.status === "ok" ? "event" : "event error", "data-trace": ev.traceId },
    `${ev.time.slice(11, 23)}  ${ev.flow}/${ev.block}  key=${ev.key}  ${ev.status}  ${ev.durationMs} ms${last}`,
  );
  d.addEventListener("click", () => void showDetail(ev));
  return d;
}

function add(ev: TraceEvent, f: Filter): void {
  if (!shown(ev, f)) return;
  const list = $("events");
  list.prepend(line(ev));
  while (list.childElementCount > MAX_LINES) list.lastChild?.remove();
}

async function showDetail(ev: TraceEvent): Promise<void> {
  const box = $("detail");
  box.hidden = false;
  const section = (title: string, value: unknown) =>
    value === undefined ? null : el("div", { class: "section" }, el("h4", {}, title), el("pre", {}, json(value)));
  const whole = el("div", { class: "section whole-trace" }, el("h4", {}, "Its trace"), "…");
  // The state before: the state after the key's previous execution at this
  // block (the trace keeps each execution's state after it).
  const before = el("div", { class: "section state-before" }, el("h4", {}, "State before"), "…");
  fill(box,
    el("h3", {}, `${ev.flow}/${ev.block}  key=${ev.key}  ${ev.status}`),
    el("div", { class: "ids" }, `trace ${ev.traceId} · message ${ev.messageId} · ${ev.time}`),
    ev.payload === "expired" ? el("p", {}, "Its input, outputs, state and logs are past the trace's retention.") : null,
    ev.error ? section("Error", { error: ev.error, errorId: ev.errorId, details: ev.details }) : null,
    section("Input", ev.input),
    before,
    section("State after", ev.state),
    section("Outputs", ev.outputs),
    ev.logs && ev.logs.length ? el("div", { class: "section" }, el("h4", {}, "Logs"), el("pre", {}, ev.logs.join("\n"))) : null,
    whole,
    el("details", {}, el("summary", {}, "The event as JSON"), el("pre", {}, json(ev))),
  );
  void (async () => {
    try {
      const q = `/api/v1/trace?project=${enc(app.project)}&flow=${enc(ev.flow)}&block=${enc(ev.block)}` +
        `&key=${enc(ev.key)}&until=${ev.timeMs}&limit=20`;
      const list = await get<TraceEvent[]>(q); // oldest first, up to this one
      const at = list.findIndex((e) => e.cursor === ev.cursor);
      const previous = at > 0 ? list[at - 1] : at < 0 ? list[list.length - 1] : undefined;
      fill(before, el("h4", {}, "State before"),
        !previous ? "none traced (the key's first execution here, or past the trace's retention)"
          : previous.payload === "expired" ? "past the trace's retention"
          : el("pre", {}, json(previous.state ?? null)));
    } catch (e) {
      fill(before, el("h4", {}, "State before"), "could not be read: " + (e as Error).message);
    }
  })();
  try {
    const steps = await get<TraceEvent[]>(
      `/api/v1/trace?project=${enc(app.project)}&trace=${enc(ev.traceId)}&limit=1000`,
    );
    whole.replaceChildren(
      el("h4", {}, `Its trace: ${steps.length} execution(s)`),
      ...steps.map((s) =>
        el(
          "div",
          { class: s.status === "ok" ? "step" : "step error" },
          `${s.time.slice(11, 23)}  ${s.flow}/${s.block}  key=${s.key}  ${s.status}  ${s.durationMs} ms`,
        ),
      ),
    );
  } catch (e) {
    whole.replaceChildren(el("h4", {}, "Its trace"), "could not be read: " + (e as Error).message);
  }
}

// (Re)starts the stream: the latest matching executions, then live ones.
export async function startStream(): Promise<void> {
  stream?.abort();
  const mine = new AbortController();
  stream = mine;
  $("events").replaceChildren();
  const f = filter();
  let query = `/api/v1/trace?project=${enc(app.project)}`;
  const backlog =
    query +
    (f.key ? "&key=" + enc(f.key) : "") +
    (f.trace ? "&trace=" + enc(f.trace) : "") +
    (f.errors ? "&errors=true" : "") +
    "&limit=50";
  try {
    const recent = await get<TraceEvent[]>(backlog);
    if (mine.signal.aborted) return;
    recent.forEach((ev) => add(ev, f));
    const newest = await get<TraceEvent[]>(query + "&limit=1");
    query += "&follow=true" + (newest.length ? "&after=" + enc(newest[newest.length - 1].cursor) : "");
    await follow<TraceEvent>(query, mine.signal, (ev) => {
      countEvent(ev);
      add(ev, filter());
    });
  } catch (e) {
    if ((e as Error).name !== "AbortError") problem("the live executions stopped: " + (e as Error).message);
  }
}

export function wireFilters(): void {
  for (const id of ["filter-key", "filter-trace"]) $(id).addEventListener("change", () => void startStream());
  $("filter-errors").addEventListener("change", () => void startStream());
}
