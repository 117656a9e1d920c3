// Usage against the plan (a chart), plans, the subscription and invoices.
import { api, Me, why } from "./api";
import { tabs } from "./team";
import { action, app, count, dollars, el, form, go, say, section, table } from "./ui";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

// Executions by month (oldest left): credits' share lighter, the plan's
// executions a dashed line.
function chart(months: any[], included: number): SVGElement {
  const shown = months.slice(0, 6).reverse();
  const width = 640, height = 180, bar = 60, gap = 40, top = 10, bottom = 24;
  const max = Math.max(included, ...shown.map((m) => m.executions), 1) * 1.1;
  const y = (n: number) => top + (height - top - bottom) * (1 - n / max);
  const s = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, id: "usage-chart", role: "img" });
  shown.forEach((m, i) => {
    const x = 20 + i * (bar + gap);
    const paid = m.executions - m.creditsUsed;
    s.append(svg("rect", { class: "bar", x, y: y(paid), width: bar, height: y(0) - y(paid), "data-month": m.month }));
    s.append(svg("rect", { class: "bar credits", x, y: y(m.executions), width: bar, height: y(paid) - y(m.executions) }));
    const label = svg("text", { x, y: height - 6, "font-size": 12 });
    label.textContent = m.month;
    s.append(label);
  });
  s.append(svg("line", { class: "plan-line", x1: 0, x2: width, y1: y(included), y2: y(included) }));
  return s;
}

export async function usage(_me: Me, team: string): Promise<void> {
  const a = await api("GET", `/api/v1/teams/${team}/usage`);
  if (a.status !== 200) return say(why(a));
  const u = a.data;
  const now = u.months.find((m: any) => m.month === u.currentMonth) || { executions: 0, creditsUsed: 0, projects: [] };
  const left = Math.max(0, u.executionsPerMonth - (now.executions - now.creditsUsed));
  app().replaceChildren(
    el("h2", {}, "Team " + team),
    tabs(team, "Usage"),
    section(
      `This month (${u.currentMonth})`,
      el(
        "p",
        { id: "usage-summary" },
        `${count(now.executions)} executions on the ${u.plan} plan (${count(u.executionsPerMonth)} a month): ` +
          `${count(now.creditsUsed)} paid by credits, ${count(left)} left in the plan; credits left: ${count(u.creditsBalance)}.`,
      ),
      chart(u.months.length ? u.months : [{ month: u.currentMonth, executions: 0, creditsUsed: 0 }], u.executionsPerMonth),
      el("p", { class: "muted" }, "Bars: executions by month (lighter: paid by credits). Dashed: the plan's executions."),
      table(
        "usage-projects",
        ["Project", "Executions"],
        now.projects.map((p: any) => [p.project, count(p.executions)]),
      ),
      el("p", {}, el("a", { href: `/api/v1/teams/${team}/usage.csv`, id: "usage-csv" }, "Export as CSV")),
    ),
  );
}

export async function billing(me: Me, team: string): Promise<void> {
  const [plans, plan, sub, invoices] = await Promise.all([
    api("GET", "/api/v1/plans"),
    api("GET", `/api/v1/teams/${team}/plan`),
    api("GET", `/api/v1/teams/${team}/subscription`),
    api("GET", `/api/v1/teams/${team}/invoices`),
  ]);
  for (const a of [plans, plan, sub, invoices]) if (a.status !== 200) return say(why(a));
  const owner = me.teams.find((t) => t.name === team)?.role === "owner";
  const checkout = el("div", { id: "checkout" });
  const rows = plans.data.map((p: any) => [
    p.name + (p.name === plan.data.name ? " (yours)" : ""),
    count(p.executionsPerMonth),
    `${p.timeoutMs / 1000} s`,
    `${p.memoryMiB} MiB`,
    `${p.logRetentionDays} d`,
    p.monthlyPriceCents ? dollars(p.monthlyPriceCents) + "/month" : "free",
    owner && p.monthlyPriceCents && p.name !== plan.data.name
      ? action(
          "Subscribe",
          async () => {
            const r = await api("POST", `/api/v1/teams/${team}/checkout`, { plan: p.name });
            if (r.status !== 201) return say(why(r));
            checkout.replaceChildren(
              el("p", {}, "Pay at the payment provider: ", el("a", { href: r.data.url, id: "checkout-link" }, "continue to checkout")),
            );
          },
          "",
        )
      : "",
  ]);
  const status = sub.data.status === "none" ? "no subscription" : `${sub.data.plan}: ${sub.data.status}`;
  app().replaceChildren(
    el("h2", {}, "Team " + team),
    tabs(team, "Plan and invoices"),
    section(
      "Plan",
      el("p", { id: "subscription" }, `On ${plan.data.name}; subscription: ${status}.`),
      table("plans", ["Plan", "Executions / month", "Timeout", "Memory", "Logs", "Price", ""], rows),
      checkout,
      el(
        "p",
        { id: "spending-limit-now" },
        sub.data.spendingLimitCents === null
          ? "Spending limit: none (executions past the plan are billed at its price)."
          : `Spending limit: ${dollars(sub.data.spendingLimitCents)} a month, fee included (past it, executions stop).`,
      ),
      owner
        ? form(
            "spending-limit",
            [{ name: "dollars", label: "Most a month, in dollars (empty: no limit)", type: "number" }],
            "Set",
            async (v) => {
              const cents = v.dollars.trim() === "" ? null : Math.round(Number(v.dollars) * 100);
              const r = await api("PUT", `/api/v1/teams/${team}/spending-limit`, { cents });
              if (r.status !== 200) return say(why(r));
              go(`#/teams/${team}/billing`);
              say("", cents === null ? "No spending limit" : `Spending limit: ${dollars(cents)} a month`);
            },
          )
        : "",
    ),
    section(
      "Invoices",
      table(
        "invoices",
        ["Month", "Plan", "Executions", "Credits", "Past the plan", "Total", "Status"],
        invoices.data.map((i: any) => [
          i.month,
          `${i.plan} (${dollars(i.planFeeCents)})`,
          count(i.executions),
          count(i.creditsUsed),
          `${count(i.overPlan)} (${dollars(i.overageCents)})`,
          dollars(i.totalCents),
          i.status === "payment_failed"
            ? `payment failed (${i.failedPayments}×): update the payment method; Stripe tries again`
            : i.status,
        ]),
      ),
    ),
  );
}
