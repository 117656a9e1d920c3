// The error queue: filtered by flow, type, block or key; each error shown,
// replayed (after a fix: its input goes back at the tail of its key's
// queue) or discarded.
import { type ErrorRecord, enc, get, send } from "./api";
import { $, button, el, json, notice, problem } from "./dom";
import { app } from "./state";

function matches(e: ErrorRecord): boolean {
  const q = ($("error-filter") as HTMLInputElement).value.trim().toLowerCase();
  if (!q) return true;
  return [e.flow, e.block, e.key, e.type, e.message, e.traceId].some((v) => (v || "").toLowerCase().includes(q));
}

async function act(e: ErrorRecord, how: "replay" | "discard"): Promise<void> {
  const path = `/api/v1/errors/${enc(e.id)}${how === "replay" ? "/replay" : ""}?project=${enc(app.project)}`;
  try {
    await send(how === "replay" ? "POST" : "DELETE", path);
    notice(how === "replay" ? `Error ${e.id} replayed` : `Error ${e.id} discarded`);
    await drawErrors();
  } catch (err) {
    problem(`${how} refused: ${(err as Error).message}`);
  }
}

export async function drawErrors(): Promise<void> {
  const list = $("error-list");
  try {
    const records = await get<ErrorRecord[]>(`/api/v1/errors?project=${enc(app.project)}&limit=1000`);
    const shown = records.filter(matches);
    $("error-count").textContent = `${shown.length} of ${records.length} error(s)`;
    list.replaceChildren(
      ...shown.map((e) => {
        const detail = el("pre", { class: "error-detail" }, json(e));
        detail.hidden = true;
        const row = el(
          "div",
          { class: "error-record", "data-error": e.id },
          el("span", { class: "type" }, e.type),
          ` ${e.flow}/${e.block} key=${e.key} · ${e.at} · ${e.message}`,
          " ",
          button("Show", () => (detail.hidden = !detail.hidden)),
          button("Replay", () => void act(e, "replay")),
          button("Discard", () => void act(e, "discard")),
          detail,
        );
        return row;
      }),
    );
  } catch (err) {
    problem("the error queue could not be read: " + (err as Error).message);
  }
}
