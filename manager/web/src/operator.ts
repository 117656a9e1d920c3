// The operator's views: invitation requests, teams, plans, credits, billing.
import { api, why } from "./api";
import { action, app, count, el, form, go, say, section, table } from "./ui";

export async function operatorView(): Promise<void> {
  const [requests, teams, plans, billing] = await Promise.all([
    api("GET", "/api/v1/operator/invitation-requests"),
    api("GET", "/api/v1/operator/teams"),
    api("GET", "/api/v1/plans"),
    api("GET", "/api/v1/operator/billing"),
  ]);
  for (const a of [requests, teams, plans, billing]) if (a.status !== 200) return say(why(a));
  const decide = (id: number, verdict: string) =>
    action(verdict === "approve" ? "Approve" : "Decline", async () => {
      const r = await api("POST", `/api/v1/operator/invitation-requests/${id}/${verdict}`);
      if (r.status !== 200) return say(why(r));
      go("#/operator");
      say("", verdict === "approve" ? "Approved: the invitation is mailed" : "Declined");
    }, verdict === "approve" ? "" : "plain");
  const paid = el("input", { type: "checkbox", id: "paid-enabled" });
  paid.checked = billing.data.paidEnabled;
  paid.addEventListener("change", async () => {
    const r = await api("PUT", "/api/v1/operator/billing", { paidEnabled: paid.checked });
    if (r.status !== 200) {
      paid.checked = !paid.checked;
      return say(why(r));
    }
    say("", paid.checked ? "Paid plans are on" : "Paid plans are off");
  });
  app().replaceChildren(
    el("h2", {}, "Operator"),
    section(
      "Invitation requests",
      table(
        "requests",
        ["Email", "Name", "Note", "Asked", "Status", ""],
        requests.data.map((q: any) => [
          q.email,
          q.name,
          q.note,
          q.createdAt,
          q.status,
          q.status === "pending" ? el("span", {}, decide(q.id, "approve"), " ", decide(q.id, "decline")) : "",
        ]),
      ),
    ),
    section(
      "Teams",
      table(
        "teams",
        ["Team", "Plan", "Pool", "Members", "Executions this month", "Credits left", "Subscription"],
        teams.data.map((t: any) => [
          t.name,
          t.plan,
          t.pool,
          String(t.members),
          count(t.executions),
          count(t.creditsBalance),
          t.subscription || "none",
        ]),
      ),
      el("h3", {}, "Put a team on a plan"),
      form(
        "set-plan",
        [
          { name: "team", label: "Team" },
          { name: "plan", label: "Plan", options: plans.data.map((p: any) => p.name) },
        ],
        "Set",
        async (v) => {
          const r = await api("PUT", `/api/v1/operator/teams/${v.team}/plan`, { plan: v.plan });
          if (r.status !== 200) return say(why(r));
          go("#/operator");
          say("", `${v.team} is on ${v.plan}`);
        },
      ),
      el("h3", {}, "Give a team dedicated nodes"),
      form(
        "set-pool",
        [
          { name: "team", label: "Team" },
          { name: "pool", label: "Pool (nodes started with --pool; empty: the shared pool)" },
        ],
        "Place",
        async (v) => {
          const pool = v.pool.trim() === "" ? null : v.pool.trim();
          const r = await api("PUT", `/api/v1/operator/teams/${v.team}/pool`, { pool });
          if (r.status !== 200) return say(why(r));
          go("#/operator");
          say("", pool ? `${v.team} runs on pool ${pool}` : `${v.team} runs on the shared pool`);
        },
      ),
      el("h3", {}, "Give credits"),
      form(
        "grant-credits",
        [
          { name: "team", label: "Team" },
          { name: "executions", label: "Executions", type: "number" },
          { name: "reason", label: "Reason" },
        ],
        "Give",
        async (v) => {
          const r = await api("POST", `/api/v1/operator/teams/${v.team}/credits`, {
            executions: Number(v.executions),
            reason: v.reason,
          });
          if (r.status !== 201) return say(why(r));
          go("#/operator");
          say("", `${v.team} has ${count(Number(v.executions))} more executions`);
        },
      ),
    ),
    section(
      "Plans",
      table(
        "operator-plans",
        ["Plan", "Executions / month", "Timeout", "Memory", "Price"],
        plans.data.map((p: any) => [p.name, count(p.executionsPerMonth), `${p.timeoutMs} ms`, `${p.memoryMiB} MiB`, `${p.monthlyPriceCents} ¢`]),
      ),
      el("h3", {}, "Change a plan"),
      form(
        "change-plan",
        [
          { name: "plan", label: "Plan", options: plans.data.map((p: any) => p.name) },
          { name: "executionsPerMonth", label: "Executions / month", type: "number" },
          { name: "stripePrice", label: "Price at Stripe (price_...)" },
        ],
        "Change",
        async (v) => {
          const body: Record<string, unknown> = {};
          if (v.executionsPerMonth) body.executionsPerMonth = Number(v.executionsPerMonth);
          if (v.stripePrice) body.stripePrice = v.stripePrice;
          const r = await api("PUT", `/api/v1/operator/plans/${v.plan}`, body);
          if (r.status !== 200) return say(why(r));
          go("#/operator");
          say("", `Plan ${v.plan} changed`);
        },
      ),
    ),
    section(
      "Billing",
      el("label", {}, el("span", {}, paid, " Paid plans on (provider: " + (billing.data.provider || "none") + ")")),
      el("h3", {}, "Invoice a month"),
      form("run-invoices", [{ name: "month", label: "Month (YYYY-MM)" }], "Make and charge invoices", async (v) => {
        const r = await api("POST", "/api/v1/operator/invoices", { month: v.month });
        if (r.status !== 200) return say(why(r));
        say(r.data.problems, `${r.data.made} invoices made, ${r.data.charged} charged`);
      }),
    ),
  );
}
