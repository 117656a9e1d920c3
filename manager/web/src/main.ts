// The hosted service's console (docs/hosted.md "The console"): one page,
// its views chosen by the location's hash.
import { signIn, requestInvitation, signUp } from "./account";
import { api, Me, setCsrf } from "./api";
import { billing, usage } from "./money";
import { operatorView } from "./operator";
import { members, tokens } from "./team";
import { action, el, go, say } from "./ui";

async function whoAmI(): Promise<Me | null> {
  const a = await api("GET", "/api/v1/me");
  if (a.status !== 200) return null;
  if (a.data.csrf) setCsrf(a.data.csrf);
  return a.data as Me;
}

function header(me: Me | null): void {
  const nav = document.getElementById("nav")!;
  nav.replaceChildren();
  const who = document.getElementById("who")!;
  who.replaceChildren();
  if (!me) {
    nav.append(el("a", { href: "#/sign-in" }, "Sign in"), el("a", { href: "#/request" }, "Request an invitation"));
    return;
  }
  for (const t of me.teams) nav.append(el("a", { href: `#/teams/${t.name}` }, t.name));
  if (me.operator) nav.append(el("a", { href: "#/operator", id: "nav-operator" }, "Operator"));
  who.append(
    me.email + " ",
    action("Sign out", async () => {
      await api("DELETE", "/api/v1/sessions/current");
      setCsrf("");
      go("#/sign-in");
    }),
  );
}

async function route(): Promise<void> {
  say("");
  const hash = location.hash;
  const invitation = hash.match(/^#invitation=([A-Za-z0-9_-]+)/);
  if (invitation) return signUp(invitation[1]);
  if (hash === "#/request") {
    header(await whoAmI());
    return requestInvitation();
  }
  const me = await whoAmI();
  header(me);
  if (!me || hash === "#/sign-in") return signIn();
  if (hash === "#/operator") return operatorView();
  const team = hash.match(/^#\/teams\/([a-z0-9-]+)(?:\/(tokens|usage|billing))?/);
  if (team) {
    const view = { tokens, usage, billing }[team[2] as "tokens" | "usage" | "billing"] || members;
    return view(me, team[1]);
  }
  if (me.teams.length) return go(`#/teams/${me.teams[0].name}`);
  say("You are in no team yet.");
}

window.addEventListener("hashchange", () => void route());
void route();
