"""The hosted service's control plane (`flowstate manager serve`, docs/hosted.md)
against a real PostgreSQL 15: the first operator's invitation, requests for
an invitation approved by the operator and mailed (file transport), sign-up
with an invitation, sessions with CSRF, teams and roles, API tokens (hashed,
scoped to a team, revoked at once), the sign-in rate limit, migrations; and
the authorization matrix: every route of the router (which must equal the
OpenAPI description) × {anonymous, another team's owner, viewer, developer,
admin, owner} gets the expected status."""
import glob
import http.client
import json
import os
import re
import subprocess
import time

import harness
from harness import BIN, Postgres, TestFailure, check, run, tmpdir, wait_for

PASSWORD = "correct horse battery"


class Manager:
    def __init__(self, pg, extra=()):
        self.pg = pg
        self.dir = tmpdir("flowstate-manager-")
        self.mail = os.path.join(self.dir, "mail")
        self.extra = list(extra)
        if "--requests-per-second" not in self.extra:  # tests, nodes and browsers all come from 127.0.0.1
            self.extra += ["--requests-per-second", "1000"]
        self.proc = None

    def start(self, expect_fail=False):
        addr_file = os.path.join(self.dir, "address")
        if os.path.exists(addr_file):
            os.remove(addr_file)
        self.log = open(os.path.join(self.dir, "manager.log"), "a+")
        harness._WATCHED_LOGS.append(self.log.name)
        self.proc = subprocess.Popen([BIN, "manager", "serve", "--listen", "127.0.0.1:0", "--database",
                                      self.pg.conninfo, "--mail-dir", self.mail, "--address-file", addr_file,
                                      "--public-url", "https://flowstate.example"] + self.extra,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if expect_fail:
            self.proc.wait(timeout=30)
            self.log.seek(0)
            return self.log.read()
        wait_for("the manager listening", lambda: os.path.exists(addr_file) or self.proc.poll() is not None)
        if self.proc.poll() is not None:
            self.log.seek(0)
            raise TestFailure(f"the manager exited {self.proc.returncode}: {self.log.read()[-2000:]}")
        self.addr = open(addr_file).read().strip()
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def mails_to(self, email):
        out = []
        for path in sorted(glob.glob(os.path.join(self.mail, "*.eml"))):
            text = open(path, newline="").read()
            if f"To: {email}\r\n" in text:
                out.append(text)
        return out

    def invitation_for(self, email):
        mails = self.mails_to(email)
        check(mails, f"a mail to {email}")
        return re.search(r"#invitation=(fs_inv_[A-Za-z0-9_-]+)", mails[-1]).group(1)


class Client:
    """A caller: anonymous, a session (cookie + CSRF token) or an API token."""

    def __init__(self, manager, email=None, cookie=None, csrf=None, token=None):
        self.m, self.email, self.cookie, self.csrf, self.token = manager, email, cookie, csrf, token

    def call(self, method, path, body=None, csrf=True):
        host, port = self.m.addr.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.cookie:
            headers["Cookie"] = f"fs_session={self.cookie}"
            if csrf and self.csrf:
                headers["X-CSRF-Token"] = self.csrf
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        r = conn.getresponse()
        text = r.read().decode()
        cookies = r.getheader("Set-Cookie") or ""
        retry = r.getheader("Retry-After")
        conn.close()
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = text
        return r.status, data, cookies, retry


def session_of(manager, status_body_cookie, email):
    st, body, cookie, _ = status_body_cookie
    check(st in (200, 201), f"signed in as {email}: {st} {body}")
    check("HttpOnly" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie,
          f"the session cookie is HttpOnly, Secure and SameSite=Strict: {cookie}")
    value = re.match(r"fs_session=([^;]+)", cookie).group(1)
    return Client(manager, email, cookie=value, csrf=body["csrf"])


def sign_up(manager, email, team=None, name=None):
    anon = Client(manager)
    body = {"invitation": manager.invitation_for(email), "email": email, "password": PASSWORD,
            "name": name or email.split("@")[0]}
    if team:
        body["team"] = team
    return session_of(manager, anon.call("POST", "/api/v1/accounts", body), email)


def sign_in(manager, email):
    return session_of(manager, Client(manager).call("POST", "/api/v1/sessions", {"email": email, "password": PASSWORD}),
                      email)


def invited_by_operator(manager, operator, email, team):
    st, _, _, _ = Client(manager).call("POST", "/api/v1/invitation-requests", {"email": email, "name": email})
    check(st == 202, f"request for {email}: {st}")
    st, reqs, _, _ = operator.call("GET", "/api/v1/operator/invitation-requests")
    rid = [r["id"] for r in reqs if r["email"] == email and r["status"] == "pending"][0]
    st, body, _, _ = operator.call("POST", f"/api/v1/operator/invitation-requests/{rid}/approve")
    check(st == 200, f"approved {email}: {st} {body}")
    return sign_up(manager, email, team=team)


def setup_world(extra=()):
    """An operator; ada owns acme with carol (admin), dave (developer),
    erin (viewer) and frank (viewer); bob owns globex."""
    pg = Postgres()
    m = Manager(pg, ["--operator-email", "op@example.com"] + list(extra)).start()
    operator = sign_up(m, "op@example.com", team="ops")
    st, me, _, _ = operator.call("GET", "/api/v1/me")
    check(st == 200 and me["operator"] is True, f"the first operator: {st} {me}")
    ada = invited_by_operator(m, operator, "ada@example.com", "acme")
    bob = invited_by_operator(m, operator, "bob@example.com", "globex")
    people = {}
    for email, role in (("carol@example.com", "admin"), ("dave@example.com", "developer"),
                        ("erin@example.com", "viewer"), ("frank@example.com", "viewer")):
        st, body, _, _ = ada.call("POST", "/api/v1/teams/acme/invitations", {"email": email, "role": role})
        check(st == 201, f"ada invites {email}: {st} {body}")
        people[email] = sign_up(m, email)
    st, team, _, _ = ada.call("GET", "/api/v1/teams/acme")
    roles = {p["email"]: p["role"] for p in team["members"]}
    check(roles == {"ada@example.com": "owner", "carol@example.com": "admin", "dave@example.com": "developer",
                    "erin@example.com": "viewer", "frank@example.com": "viewer"}, f"acme's members: {roles}")
    frank_id = [p["account"] for p in team["members"] if p["email"] == "frank@example.com"][0]
    callers = {"anonymous": Client(m), "another team's owner": bob, "viewer": people["erin@example.com"],
               "developer": people["dave@example.com"], "admin": people["carol@example.com"], "owner": ada}
    return pg, m, operator, callers, frank_id


ROLES = ["anonymous", "another team's owner", "viewer", "developer", "admin", "owner"]


def expect(*statuses):
    return dict(zip(ROLES, statuses))


def test_every_route_answers_each_kind_of_caller_as_its_rule_says_and_no_team_sees_another():
    """the router's routes equal the OpenAPI description's, and each has a rule; every route × {anonymous, another team's owner, viewer, developer, admin, owner} gets its expected status; another team's owner gets 404 on every team route and changes nothing"""
    # Many requests a second from one address: over the listener's default limit.
    pg, m, operator, callers, frank_id = setup_world(["--requests-per-second", "1000"])
    try:
        counter = [0]

        def fresh(prefix):
            counter[0] += 1
            return f"{prefix}{counter[0]}"

        ada = callers["owner"]

        def new_project():
            name = fresh("p")
            st, _, _, _ = ada.call("POST", "/api/v1/teams/acme/projects", {"name": name})
            check(st == 201, f"a project to delete: {st}")
            return name

        def new_owner_token():
            st, body, _, _ = ada.call("POST", "/api/v1/teams/acme/tokens", {"name": fresh("t"), "role": "viewer"})
            check(st == 201, f"a token to revoke: {st}")
            return body["id"]

        def frank_back():
            pg.sql(f"INSERT INTO memberships (team_id, account_id, role) SELECT id, {frank_id}, 'viewer' FROM teams "
                   f"WHERE name = 'acme' ON CONFLICT (team_id, account_id) DO UPDATE SET role = 'viewer'")
            return frank_id

        # Each rule: (request: a function of the caller giving (method, path, body)), expected statuses.
        rules = {
            "GET /api/v1/openapi.json": (lambda c: ("GET", "/api/v1/openapi.json", None), expect(*[200] * 6)),
            "POST /api/v1/invitation-requests": (
                lambda c: ("POST", "/api/v1/invitation-requests", {"email": fresh("x") + "@example.com", "name": "X"}),
                expect(*[202] * 6)),
            "GET /api/v1/operator/invitation-requests": (
                lambda c: ("GET", "/api/v1/operator/invitation-requests", None), expect(401, 403, 403, 403, 403, 403)),
            "POST /api/v1/operator/invitation-requests/{id}/approve": (
                lambda c: ("POST", "/api/v1/operator/invitation-requests/1/approve", None),
                expect(401, 403, 403, 403, 403, 403)),
            "POST /api/v1/operator/invitation-requests/{id}/decline": (
                lambda c: ("POST", "/api/v1/operator/invitation-requests/1/decline", None),
                expect(401, 403, 403, 403, 403, 403)),
            "POST /api/v1/accounts": (
                lambda c: ("POST", "/api/v1/accounts", {"invitation": "fs_inv_nope", "email": "z@example.com",
                                                        "password": PASSWORD, "name": "Z", "team": fresh("z")}),
                expect(*[403] * 6)),
            "POST /api/v1/sessions": (
                lambda c: ("POST", "/api/v1/sessions", {"email": fresh("nobody") + "@example.com", "password": "x"}),
                expect(*[401] * 6)),
            "DELETE /api/v1/sessions/current": (None, expect(401, 204, 204, 204, 204, 204)),
            "GET /api/v1/me": (lambda c: ("GET", "/api/v1/me", None), expect(401, 200, 200, 200, 200, 200)),
            "POST /api/v1/teams": (lambda c: ("POST", "/api/v1/teams", {"name": fresh("team")}),
                                   expect(401, 201, 201, 201, 201, 201)),
            "GET /api/v1/teams/{team}": (lambda c: ("GET", "/api/v1/teams/acme", None),
                                         expect(401, 404, 200, 200, 200, 200)),
            "POST /api/v1/teams/{team}/invitations": (
                lambda c: ("POST", "/api/v1/teams/acme/invitations", {"email": fresh("i") + "@example.com",
                                                                      "role": "viewer"}),
                expect(401, 404, 403, 403, 201, 201)),
            "POST /api/v1/invitations/{token}/accept": (
                lambda c: ("POST", "/api/v1/invitations/fs_inv_nope/accept", None),
                expect(401, 403, 403, 403, 403, 403)),
            "PUT /api/v1/teams/{team}/members/{account}": (
                lambda c: ("PUT", f"/api/v1/teams/acme/members/{frank_back()}", {"role": "developer"}),
                expect(401, 404, 403, 403, 200, 200)),
            "DELETE /api/v1/teams/{team}/members/{account}": (
                lambda c: ("DELETE", f"/api/v1/teams/acme/members/{frank_back()}", None),
                expect(401, 404, 403, 403, 204, 204)),
            "GET /api/v1/teams/{team}/tokens": (lambda c: ("GET", "/api/v1/teams/acme/tokens", None),
                                                expect(401, 404, 200, 200, 200, 200)),
            "POST /api/v1/teams/{team}/tokens": (
                lambda c: ("POST", "/api/v1/teams/acme/tokens", {"name": fresh("t"), "role": "viewer"}),
                expect(401, 404, 201, 201, 201, 201)),
            # The owner's token: a viewer or developer may revoke only their own (404), an admin any.
            "DELETE /api/v1/teams/{team}/tokens/{id}": (
                lambda c: ("DELETE", f"/api/v1/teams/acme/tokens/{new_owner_token()}", None),
                expect(401, 404, 404, 404, 204, 204)),
            "GET /api/v1/teams/{team}/projects": (lambda c: ("GET", "/api/v1/teams/acme/projects", None),
                                                  expect(401, 404, 200, 200, 200, 200)),
            "POST /api/v1/teams/{team}/projects": (
                lambda c: ("POST", "/api/v1/teams/acme/projects", {"name": fresh("p")}),
                expect(401, 404, 403, 403, 201, 201)),
            "POST /api/v1/internal/tokens/check": (
                lambda c: ("POST", "/api/v1/internal/tokens/check", {"token": c.token or "fs_tok_nope"}),
                expect(*[403] * 6)),
            "GET /healthz": (lambda c: ("GET", "/healthz", None), expect(*[200] * 6)),
            "GET /api/v1/plans": (lambda c: ("GET", "/api/v1/plans", None), expect(*[200] * 6)),
            "GET /api/v1/teams/{team}/plan": (lambda c: ("GET", "/api/v1/teams/acme/plan", None),
                                              expect(401, 404, 200, 200, 200, 200)),
            "PUT /api/v1/operator/teams/{team}/plan": (
                lambda c: ("PUT", "/api/v1/operator/teams/acme/plan", {"plan": "free"}),
                expect(401, 403, 403, 403, 403, 403)),
            "GET /api/v1/operator/teams": (lambda c: ("GET", "/api/v1/operator/teams", None),
                                           expect(401, 403, 403, 403, 403, 403)),
            "GET /api/v1/operator/billing": (lambda c: ("GET", "/api/v1/operator/billing", None),
                                             expect(401, 403, 403, 403, 403, 403)),
            "PUT /api/v1/operator/billing": (lambda c: ("PUT", "/api/v1/operator/billing", {"paidEnabled": False}),
                                             expect(401, 403, 403, 403, 403, 403)),
            "POST /api/v1/operator/invoices": (lambda c: ("POST", "/api/v1/operator/invoices", {"month": "2026-11"}),
                                               expect(401, 403, 403, 403, 403, 403)),
            # The owner's checkout: refused while paid plans are off (409).
            "POST /api/v1/teams/{team}/checkout": (lambda c: ("POST", "/api/v1/teams/acme/checkout", {"plan": "pro"}),
                                                   expect(401, 404, 403, 403, 403, 409)),
            "GET /api/v1/teams/{team}/subscription": (lambda c: ("GET", "/api/v1/teams/acme/subscription", None),
                                                      expect(401, 404, 200, 200, 200, 200)),
            "PUT /api/v1/teams/{team}/spending-limit": (
                lambda c: ("PUT", "/api/v1/teams/acme/spending-limit", {"cents": None}),
                expect(401, 404, 403, 403, 403, 200)),
            "GET /api/v1/teams/{team}/invoices": (lambda c: ("GET", "/api/v1/teams/acme/invoices", None),
                                                  expect(401, 404, 200, 200, 200, 200)),
            # No payment provider in this world: the webhook does not exist (test_billing.py has one).
            "POST /api/v1/payments/stripe/webhook": (lambda c: ("POST", "/api/v1/payments/stripe/webhook", {}),
                                                     expect(*[404] * 6)),
            "POST /api/v1/internal/usage": (
                lambda c: ("POST", "/api/v1/internal/usage", {"node": "n@1", "month": "2026-12", "counters": [],
                                                              "teams": [{"team": "acme", "used": 0}]}),
                expect(*[403] * 6)),
            "GET /api/v1/teams/{team}/usage": (lambda c: ("GET", "/api/v1/teams/acme/usage", None),
                                               expect(401, 404, 200, 200, 200, 200)),
            "GET /api/v1/teams/{team}/usage.csv": (lambda c: ("GET", "/api/v1/teams/acme/usage.csv", None),
                                                   expect(401, 404, 200, 200, 200, 200)),
            "GET /api/v1/teams/{team}/credits": (lambda c: ("GET", "/api/v1/teams/acme/credits", None),
                                                 expect(401, 404, 200, 200, 200, 200)),
            "POST /api/v1/operator/teams/{team}/credits": (
                lambda c: ("POST", "/api/v1/operator/teams/acme/credits", {"executions": 10, "reason": "x"}),
                expect(401, 403, 403, 403, 403, 403)),
            "PUT /api/v1/operator/plans/{plan}": (
                lambda c: ("PUT", "/api/v1/operator/plans/free", {"executionsPerMonth": 1}),
                expect(401, 403, 403, 403, 403, 403)),
            "PUT /api/v1/operator/teams/{team}/pool": (
                lambda c: ("PUT", "/api/v1/operator/teams/acme/pool", {"pool": None}),
                expect(401, 403, 403, 403, 403, 403)),
            "GET /api/v1/teams/{team}/placement": (lambda c: ("GET", "/api/v1/teams/acme/placement", None),
                                                   expect(401, 404, 200, 200, 200, 200)),
            "GET /api/v1/internal/projects/{project}/plan": (
                lambda c: ("GET", "/api/v1/internal/projects/acme.shop/plan", None), expect(*[403] * 6)),
            "DELETE /api/v1/teams/{team}/projects/{project}": (
                lambda c: ("DELETE", f"/api/v1/teams/acme/projects/{new_project()}", None),
                expect(401, 404, 403, 403, 204, 204)),
        }
        listed = subprocess.run([BIN, "manager", "routes"], capture_output=True, text=True, check=True).stdout.split("\n")
        router = sorted(r for r in listed if r)
        st, spec, _, _ = callers["anonymous"].call("GET", "/api/v1/openapi.json")
        described = sorted(f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops)
        described.append("GET /api/v1/openapi.json")
        check(router == sorted(described), f"the router's routes equal the OpenAPI description's:\n{router}\n{sorted(described)}")
        check(sorted(rules) == router, f"every route has a rule here: without one "
                                       f"{sorted(set(router) - set(rules))}; stale {sorted(set(rules) - set(router))}")
        wrong = []
        for route, (make, want) in rules.items():
            for who in ROLES:
                caller = callers[who]
                if route == "DELETE /api/v1/sessions/current":
                    caller = caller if who == "anonymous" else sign_in(m, caller.email)  # a session of its own
                    method, path, body = "DELETE", "/api/v1/sessions/current", None
                else:
                    method, path, body = make(caller)
                st, answer, _, _ = caller.call(method, path, body)
                if st != want[who]:
                    wrong.append(f"{route} as {who}: {st} (expected {want[who]}) {answer}")
        check(not wrong, "statuses:\n" + "\n".join(wrong))
        # Nothing of acme changed through the other team's owner's tries.
        st, team, _, _ = ada.call("GET", "/api/v1/teams/acme")
        check(all(p["email"] != "bob@example.com" for p in team["members"]), "bob is not in acme")
        st, body, _, _ = callers["another team's owner"].call("GET", "/api/v1/teams/globex/projects")
        check(st == 200 and body == [], f"bob's own team answers: {st} {body}")
    finally:
        m.stop()


def test_tokens_are_scoped_hashed_and_revoked_at_once_and_sessions_need_their_csrf_token():
    """a developer's API token reads its team, not another, cannot act as a session, is stored only as a hash and stops at once when revoked; a session's change without its X-CSRF-Token is refused; passwords are argon2id hashes; an invitation whose sender lost the right to invite is refused, an address with a line break too; repeated wrong passwords get 429 with Retry-After"""
    pg, m, operator, callers, _ = setup_world()
    try:
        dave = callers["developer"]
        st, body, _, _ = dave.call("POST", "/api/v1/teams/acme/tokens", {"name": "cli"})
        check(st == 201 and body["role"] == "developer", f"dave's token: {st} {body}")
        token = Client(m, token=body["token"])
        st, me, _, _ = token.call("GET", "/api/v1/me")
        check(st == 200 and me["via"] == "token" and me["teams"] == [{"name": "acme", "role": "developer"}],
              f"the token acts for dave in acme only: {st} {me}")
        check(token.call("GET", "/api/v1/teams/acme/projects")[0] == 200, "the token reads acme's projects")
        check(token.call("GET", "/api/v1/teams/globex")[0] == 404, "the token does not see globex")
        check(token.call("POST", "/api/v1/teams/acme/projects", {"name": "nope"})[0] == 403,
              "a developer's token cannot do an admin's work")
        check(token.call("POST", "/api/v1/teams", {"name": "from-a-token"})[0] == 403,
              "a token cannot do what needs a session")
        dump = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "postgres"],
                              capture_output=True, text=True, check=True).stdout
        check(body["token"] not in dump and body["token"][7:] not in dump, "the database holds no token in clear")
        check(PASSWORD not in dump, "the database holds no password in clear")
        hashes = pg.sql("SELECT password_hash FROM accounts")
        check(hashes and all(h[0].startswith("$argon2id$") for h in hashes), f"argon2id hashes: {hashes[:1]}")
        st, _, _, _ = dave.call("DELETE", f"/api/v1/teams/acme/tokens/{body['id']}")
        check(st == 204, f"revoked: {st}")
        check(token.call("GET", "/api/v1/teams/acme/projects")[0] == 401, "a revoked token stops at once")

        ada = callers["owner"]
        st, problem, _, _ = ada.call("POST", "/api/v1/teams/acme/projects", {"name": "no-csrf"}, csrf=False)
        check(st == 403 and "X-CSRF-Token" in problem["detail"], f"a change without the CSRF token: {st} {problem}")
        check(ada.call("GET", "/api/v1/teams/acme/projects")[1] == [], "nothing was made without it")

        carol = callers["admin"]
        st, body, _, _ = carol.call("POST", "/api/v1/teams/acme/invitations",
                                    {"email": "x@example.com\r\nBcc: victim@example.org", "role": "viewer"})
        check(st == 422, f"an address with a line break is refused: {st} {body}")
        st, body, _, _ = carol.call("POST", "/api/v1/teams/acme/invitations", {"email": "gina@example.com",
                                                                            "role": "viewer"})
        check(st == 201, f"carol invites gina: {st} {body}")
        st, team, _, _ = ada.call("GET", "/api/v1/teams/acme")
        carol_id = [p["account"] for p in team["members"] if p["email"] == "carol@example.com"][0]
        check(ada.call("PUT", f"/api/v1/teams/acme/members/{carol_id}", {"role": "developer"})[0] == 200,
              "ada makes carol a developer")
        st, body, _, _ = Client(m).call("POST", "/api/v1/accounts", {
            "invitation": m.invitation_for("gina@example.com"), "email": "gina@example.com", "password": PASSWORD,
            "name": "Gina"})
        check(st == 403 and "may no longer invite" in body["detail"],
              f"an invitation from someone who may no longer invite is refused: {st} {body}")

        anon = Client(m)
        for _ in range(5):
            st, _, _, _ = anon.call("POST", "/api/v1/sessions", {"email": "erin@example.com", "password": "wrong"})
            check(st == 401, f"a wrong password: {st}")
        st, problem, _, retry = anon.call("POST", "/api/v1/sessions", {"email": "erin@example.com",
                                                                      "password": PASSWORD})
        check(st == 429 and retry and int(retry) > 0, f"the sixth try, right or not, waits: {st} {retry} {problem}")
        check(anon.call("POST", "/api/v1/sessions", {"email": "carol@example.com", "password": PASSWORD})[0] == 200,
              "another address signs in")
        st, body, _, _ = Client(m).call("POST", "/api/v1/accounts", {
            "invitation": m.invitation_for("carol@example.com"), "email": "carol@example.com", "password": PASSWORD,
            "name": "again"})
        check(st == 403, f"an invitation works once: {st} {body}")
    finally:
        m.stop()


def test_the_database_is_migrated_once_and_a_newer_database_is_refused():
    """a second start applies no migration again; a database with a migration this binary does not know is refused with a message naming it"""
    pg = Postgres()
    m = Manager(pg).start()
    m.stop()
    m.start()
    m.stop()
    rows = pg.sql("SELECT version, name FROM schema_migrations ORDER BY version")
    check(rows == [["1", "0001_accounts_teams_tokens.sql"], ["2", "0002_plans.sql"], ["3", "0003_metering.sql"], ["4", "0004_billing.sql"], ["5", "0005_function_size.sql"],
                    ["6", "0006_pools.sql"], ["7", "0007_dunning.sql"],
                    ["8", "0008_spending_limit.sql"]],
          f"each migration applied once: {rows}")
    pg.sql("INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, '9999_future.sql', 'x')")
    out = m.start(expect_fail=True)
    check(m.proc.returncode != 0 and "migration 9999 (9999_future.sql)" in out, f"refused: {out[-500:]}")


def test_mail_goes_through_an_smtp_relay_and_a_relay_that_is_down_leaves_the_request_pending():
    """with --smtp the first operator's invitation and an approved request's are delivered to a real SMTP server (and copied to --mail-dir), the link in the message signs up; with the relay down, approving answers 502 and the request stays pending"""
    from smtp_sink import SmtpSink
    pg = Postgres()
    relay = SmtpSink()
    m = Manager(pg, ["--operator-email", "op@example.com", "--smtp", f"127.0.0.1:{relay.port}",
                     "--mail-from", "invites@flowstate.example"]).start()
    try:
        wait_for("the operator's invitation", lambda: relay.messages)
        sender, to, data = relay.messages[0]
        check(sender == "invites@flowstate.example" and to == ["op@example.com"], f"the envelope: {sender} {to}")
        check("Subject: You are the operator" in data and "#invitation=fs_inv_" in data and "\nDate: " in "\n" + data,
              f"the message: {data[:400]}")
        operator = sign_up(m, "op@example.com", team="ops")  # the link of the copy in --mail-dir: the same
        check(re.search(r"#invitation=(fs_inv_[A-Za-z0-9_-]+)", data).group(1) == m.invitation_for("op@example.com"),
              "the relayed message and the kept copy carry the same link")
        st, _, _, _ = Client(m).call("POST", "/api/v1/invitation-requests", {"email": "ada@example.com", "name": "Ada"})
        st, reqs, _, _ = operator.call("GET", "/api/v1/operator/invitation-requests")
        rid = reqs[-1]["id"]
        relay.stop()  # the relay goes away
        st, body, _, _ = operator.call("POST", f"/api/v1/operator/invitation-requests/{rid}/approve")
        check(st == 502 and "pending again" in body["detail"], f"no relay: {st} {body}")
        st, reqs, _, _ = operator.call("GET", "/api/v1/operator/invitation-requests")
        check(reqs[-1]["status"] == "pending", f"the request waits: {reqs[-1]}")
        relay = SmtpSink()
        m.stop()
        m.extra = [x if not x.startswith("127.0.0.1:") else f"127.0.0.1:{relay.port}" for x in m.extra]
        m.start()
        operator = sign_in(m, "op@example.com")
        st, body, _, _ = operator.call("POST", f"/api/v1/operator/invitation-requests/{rid}/approve")
        check(st == 200, f"approved once the relay is back: {st} {body}")
        check([to for _, to, _ in relay.messages] == [["ada@example.com"]], f"ada's mail: {relay.messages}")
    finally:
        relay.stop()
        m.stop()


if __name__ == "__main__":
    run([test_every_route_answers_each_kind_of_caller_as_its_rule_says_and_no_team_sees_another,
         test_tokens_are_scoped_hashed_and_revoked_at_once_and_sessions_need_their_csrf_token,
         test_the_database_is_migrated_once_and_a_newer_database_is_refused,
         test_mail_goes_through_an_smtp_relay_and_a_relay_that_is_down_leaves_the_request_pending])
