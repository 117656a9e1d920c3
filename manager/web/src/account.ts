// Signing in and up, and asking for an invitation.
import { api, setCsrf, why } from "./api";
import { app, el, form, go, say, section } from "./ui";

export function signIn(): void {
  app().replaceChildren(
    section(
      "Sign in",
      form(
        "sign-in",
        [
          { name: "email", label: "Email", type: "email" },
          { name: "password", label: "Password", type: "password" },
        ],
        "Sign in",
        async (v) => {
          const a = await api("POST", "/api/v1/sessions", { email: v.email, password: v.password });
          if (a.status !== 200) return say(why(a));
          setCsrf(a.data.csrf);
          go("#/");
        },
      ),
      el("p", { class: "muted" }, "No account? Sign-up is by invitation: ", el("a", { href: "#/request" }, "ask for one"), "."),
    ),
  );
}

export function requestInvitation(): void {
  app().replaceChildren(
    section(
      "Request an invitation",
      form(
        "request",
        [
          { name: "email", label: "Email", type: "email" },
          { name: "name", label: "Name" },
          { name: "note", label: "What you want to build" },
        ],
        "Request",
        async (v) => {
          const a = await api("POST", "/api/v1/invitation-requests", v);
          if (a.status !== 202) return say(why(a));
          app().replaceChildren(
            section("Thank you", el("p", { id: "requested" }, "We will email " + v.email + " an invitation once it is approved.")),
          );
        },
      ),
    ),
  );
}

// From an invitation's link (#invitation=TOKEN).
export function signUp(invitation: string): void {
  app().replaceChildren(
    section(
      "Sign up",
      el("p", { class: "muted" }, "Passwords have 10 characters or more. Your team is where your projects live (you can make more later)."),
      form(
        "sign-up",
        [
          { name: "email", label: "Email (the invited address)", type: "email" },
          { name: "name", label: "Name" },
          { name: "password", label: "Password", type: "password" },
          { name: "team", label: "Your team's name" },
        ],
        "Sign up",
        async (v) => {
          const body: Record<string, string> = { invitation, email: v.email, name: v.name, password: v.password };
          if (v.team) body.team = v.team;
          const a = await api("POST", "/api/v1/accounts", body);
          if (a.status !== 201 && a.status !== 200) return say(why(a));
          setCsrf(a.data.csrf);
          go("#/");
        },
      ),
    ),
  );
}
