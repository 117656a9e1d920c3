// A team: its members and their roles, invitations, API tokens.
import { api, Me, why } from "./api";
import { action, app, el, form, go, say, section, table } from "./ui";

const ROLES = ["viewer", "developer", "admin", "owner"];
const rank = (role: string) => ROLES.indexOf(role);

export function tabs(team: string, on: string): HTMLElement {
  const t = el("div", { class: "tabs" });
  for (const [name, hash] of [
    ["Members", `#/teams/${team}`],
    ["API tokens", `#/teams/${team}/tokens`],
    ["Usage", `#/teams/${team}/usage`],
    ["Plan and invoices", `#/teams/${team}/billing`],
  ])
    t.append(el("a", { href: hash, class: name === on ? "on" : "" }, name));
  return t;
}

export async function members(me: Me, team: string): Promise<void> {
  const a = await api("GET", `/api/v1/teams/${team}`);
  if (a.status !== 200) return say(why(a));
  const mine = me.teams.find((t) => t.name === team)?.role || "viewer";
  const admin = rank(mine) >= rank("admin");
  const rows = a.data.members.map((m: any) => {
    let role: Node | string = m.role;
    if (admin && m.email !== me.email) {
      const select = el("select", { "data-member": m.email });
      for (const r of ROLES)
        if (r !== "owner" || mine === "owner") select.append(el("option", { value: r }, r));
      select.value = m.role;
      select.addEventListener("change", async () => {
        const r = await api("PUT", `/api/v1/teams/${team}/members/${m.account}`, { role: select.value });
        if (r.status !== 200) {
          say(why(r));
          select.value = m.role;
          return;
        }
        say("", `${m.email} is now ${select.value}`);
        m.role = select.value;
      });
      role = select;
    }
    const remove =
      admin && m.email !== me.email
        ? action("Remove", async () => {
            const r = await api("DELETE", `/api/v1/teams/${team}/members/${m.account}`);
            if (r.status !== 204) return say(why(r));
            go(`#/teams/${team}`);
          })
        : "";
    return [m.name, m.email, role, remove];
  });
  app().replaceChildren(
    el("h2", {}, "Team " + team),
    tabs(team, "Members"),
    section("Members", table("members", ["Name", "Email", "Role", ""], rows)),
    admin
      ? section(
          "Invite someone",
          form(
            "invite",
            [
              { name: "email", label: "Email", type: "email" },
              { name: "role", label: "Role", options: ROLES.filter((r) => r !== "owner" || mine === "owner") },
            ],
            "Invite",
            async (v) => {
              const r = await api("POST", `/api/v1/teams/${team}/invitations`, v);
              if (r.status !== 201) return say(why(r));
              say("", `Invitation mailed to ${v.email}`);
            },
          ),
        )
      : "",
  );
}

export async function tokens(me: Me, team: string): Promise<void> {
  const [a, placement] = await Promise.all([
    api("GET", `/api/v1/teams/${team}/tokens`),
    api("GET", `/api/v1/teams/${team}/placement`),
  ]);
  if (a.status !== 200) return say(why(a));
  if (placement.status !== 200) return say(why(placement));
  const mine = me.teams.find((t) => t.name === team)?.role || "viewer";
  const rows = a.data.map((t: any) => [
    t.name,
    t.prefix + "…",
    t.role,
    t.owner,
    t.createdAt,
    t.revoked
      ? "revoked"
      : action("Revoke", async () => {
          const r = await api("DELETE", `/api/v1/teams/${team}/tokens/${t.id}`);
          if (r.status !== 204) return say(why(r));
          go(`#/teams/${team}/tokens`);
        }),
  ]);
  const shown = el("div", { id: "new-token" });
  app().replaceChildren(
    el("h2", {}, "Team " + team),
    tabs(team, "API tokens"),
    section(
      "API tokens",
      el("p", { class: "muted" }, "For the CLI (or use `flowstate login`). A token acts with its role, never above yours."),
      table("tokens", ["Name", "Token", "Role", "Made by", "Made", ""], rows),
    ),
    section(
      "Where to deploy",
      el(
        "p",
        { class: "muted", id: "placement" },
        placement.data.dedicated
          ? `This team's projects run on nodes of their own (pool ${placement.data.pool}): deploy with --admin to one of them.`
          : "This team's projects run on the service's shared nodes.",
      ),
      table(
        "pool-nodes",
        ["Node", "Admin API (--admin)", "Flows", "Last seen"],
        placement.data.nodes.map((n: any) => [n.node, n.admin, n.flows, n.seenAt]),
      ),
    ),
    section(
      "Make a token",
      form(
        "make-token",
        [
          { name: "name", label: "Name" },
          { name: "role", label: "Role", options: ROLES.filter((r) => rank(r) <= rank(mine)), value: mine },
        ],
        "Make",
        async (v) => {
          const r = await api("POST", `/api/v1/teams/${team}/tokens`, v);
          if (r.status !== 201) return say(why(r));
          shown.replaceChildren(
            el("p", {}, "Copy it now: it is shown once."),
            el("div", { class: "secret", id: "token-value" }, r.data.token),
          );
        },
      ),
      shown,
    ),
  );
}
