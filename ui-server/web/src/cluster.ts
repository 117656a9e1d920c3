// The actor graph: every node with its shard actors (key groups, messages in
// flight), worker pools, outbox and inbox, and the messages between nodes
// with their rates (GET /api/v1/cluster/graph). An embedded node draws the
// same graph with itself as its one node.
import { get } from "./api";
import { $, el, json, fill } from "./dom";

interface GraphNode {
  name: string;
  shards: { index: number; firstGroup: number; endGroup: number; inFlight: number }[];
  workers: { project: string; language: string; processes: number }[];
  drivers: { project: string; flow: string; block: string; kind: string }[];
  outbox: { pending: number; delivered: number };
  inbox: { accepted: number; repeats: number };
}
interface Graph {
  cluster: unknown;
  nodes: GraphNode[];
  edges: { from: string; to: string; messages: number }[];
  unreachable: string[];
}

let previous = new Map<string, { at: number; messages: number }>();

export async function drawGraph(): Promise<void> {
  const box = $("graph");
  try {
    const g = await get<Graph>("/api/v1/cluster/graph");
    const now = Date.now();
    const next = new Map<string, { at: number; messages: number }>();
    const rate = (id: string, m: number): string => {
      next.set(id, { at: now, messages: m });
      const p = previous.get(id);
      return p && now > p.at ? `${(((m - p.messages) * 1000) / (now - p.at)).toFixed(1)}/s` : "…/s";
    };
    fill(box,
      el(
        "div",
        { class: "graph-nodes" },
        ...g.nodes.map((n) =>
          el(
            "div",
            { class: "graph-node", "data-node": n.name },
            el("h3", {}, n.name),
            el("div", { class: "actors" }, ...n.shards.map((s) =>
              el("div", { class: "actor shard", title: `key groups [${s.firstGroup}, ${s.endGroup})` },
                `shard ${s.index} [${s.firstGroup}, ${s.endGroup})`, s.inFlight ? ` · ${s.inFlight} in flight` : ""),
            )),
            el("div", { class: "actors" }, ...n.workers.map((w) =>
              el("div", { class: "actor workers" }, `${w.language} workers of ${w.project}: ${w.processes}`),
            )),
            el("div", { class: "actors" }, ...(n.drivers || []).map((d) =>
              el("div", { class: "actor driver" }, `${d.kind} ${d.flow}/${d.block}`),
            )),
            el("div", { class: "actor outbox" },
              `outbox: ${n.outbox.pending} pending, ${n.outbox.delivered} delivered (${rate(n.name + ":out", n.outbox.delivered)})`),
            el("div", { class: "actor inbox" },
              `inbox: ${n.inbox.accepted} accepted (${rate(n.name + ":in", n.inbox.accepted)}), ${n.inbox.repeats} repeats`),
          ),
        ),
      ),
      el("h3", {}, "Messages between nodes"),
      g.edges.length ? null : el("p", {}, "none yet"),
      ...g.edges.map((e) =>
        el("div", { class: "edge", "data-from": e.from, "data-to": e.to },
          `${e.from} → ${e.to}: ${e.messages} messages, ${rate(e.from + "→" + e.to, e.messages)}`),
      ),
      g.unreachable.length ? el("p", { class: "errors" }, "not answering: " + g.unreachable.join(", ")) : null,
      el("details", {}, el("summary", {}, "As JSON"), el("pre", {}, json(g))),
    );
    previous = next;
  } catch (e) {
    box.replaceChildren(el("p", {}, "the graph could not be read: " + (e as Error).message));
  }
}
