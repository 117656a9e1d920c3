"""A node in hosted mode (`serve --control-plane`, docs/hosted.md): tenants'
API tokens, made in the control plane (a real `flowstate manager` on a real
PostgreSQL), reach their own team's projects on the node (named
TEAM.PROJECT) with their role, never another team's, never the node-wide
routes; a revoked token stops within a second. The matrix: every admin
route of the node × {anonymous, another team's owner, viewer, developer,
admin, owner, the node's admin token}."""
import json
import os
import subprocess

from harness import BIN, Node, check, counter_project, run, tmpdir, wait_for
from test_manager import PASSWORD, setup_world

SECRET = "node-secret-0123456789abcdef"
GATE_404 = 'no project named \\"acme.shop\\"'


def token_of(client, name="node", role=None):
    st, body, _, _ = client.call("POST", "/api/v1/teams/" + ("globex" if client.email.startswith("bob") else "acme")
                                 + "/tokens", {"name": name, **({"role": role} if role else {})})
    check(st == 201, f"a token for {client.email}: {st} {body}")
    return body


def call(node, method, path, token=None, body=None):
    conn = node.admin_connection()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    r = conn.getresponse()
    text = r.read(65536).decode(errors="replace")
    conn.close()
    return r.status, text


def test_tenants_tokens_reach_their_own_teams_projects_with_their_role_and_nothing_node_wide():
    """every admin route × {anonymous, another team's owner, viewer, developer, admin, owner, node admin}: public routes answer all, node-wide routes only the node's token, a project's routes its team's tokens by role (reads: viewer, changes: developer) and another team gets 404; GET /api/v1/projects lists the caller's projects only; the team's plan is its projects' ceiling (free: 1 s per call refused at 5 s, no custom driver, no function over 1 MiB, the trace kept a day; pro: 5 s accepted); `flowstate login` keeps a token the CLI uses for its team's projects only; a revoked token stops within a second"""
    pg, m, operator, callers, _ = setup_world(["--node-secret", SECRET])
    node = None
    try:
        tokens = {who: token_of(c)["token"] for who, c in callers.items() if who != "anonymous"}
        root = tmpdir()
        shop = counter_project(os.path.join(root, "acme.shop"))
        store = counter_project(os.path.join(root, "globex.store"),
                                extra={"drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /store/{key}\n"})
        node = Node([shop, store], extra_args=["--control-plane", m.addr],
                    env={"FLOWSTATE_NODE_SECRET": SECRET}).start()
        tokens["node admin"] = node.token
        st, projects = node.admin_get("/api/v1/projects")
        revision = [p["revision"] for p in projects if p["name"] == "acme.shop"][0]

        P = "/api/v1/projects/acme.shop"
        public, node_wide, read, change = "public", "node", "read", "change"
        rules = {
            "GET /": ("GET", "/", None, public),
            "GET /ui.js": ("GET", "/ui.js", None, public),
            "GET /editor.js": ("GET", "/editor.js", None, public),
            "GET /healthz": ("GET", "/healthz", None, public),
            "GET /readyz": ("GET", "/readyz", None, public),
            "GET /metrics": ("GET", "/metrics", None, "tenant"),
            "GET /api/v1/openapi.json": ("GET", "/api/v1/openapi.json", None, "tenant"),
            "GET /api/v1/projects": ("GET", "/api/v1/projects", None, "tenant"),
            "GET /api/v1/driver-kinds": ("GET", "/api/v1/driver-kinds", None, "tenant"),
            "POST /api/v1/projects/{project}/deploy": ("POST", P + "/deploy", {"revision": revision,
                                                                               "expected": revision}, change),
            "POST /api/v1/projects/{project}/push": ("POST", P + f"/push?revision={revision}&expected={revision}",
                                                     None, change),
            "POST /api/v1/projects/{project}/edits": ("POST", P + "/edits", {
                "base": revision, "files": {"functions/extra.js": "export default () => ({})\n"}}, change),
            "GET /api/v1/projects/{project}/revisions": ("GET", P + "/revisions", None, read),
            "GET /api/v1/projects/{project}/proposals": ("GET", P + "/proposals", None, read),
            "POST /api/v1/projects/{project}/proposals": ("POST", P + "/proposals", {
                "name": "p1", "base": revision, "files": {"functions/extra.js": "export default () => ({})\n"},
                "message": "a proposal"}, change),
            "GET /api/v1/projects/{project}/proposals/{name}/diff": ("GET", P + "/proposals/none/diff", None, read),
            "POST /api/v1/projects/{project}/proposals/{name}/test": ("POST", P + "/proposals/none/test", None, change),
            "POST /api/v1/projects/{project}/proposals/{name}/merge": ("POST", P + "/proposals/none/merge",
                                                                       {"expected": revision}, change),
            "DELETE /api/v1/projects/{project}/proposals/{name}": ("DELETE", P + "/proposals/none", None, change),
            "GET /api/v1/projects/{project}/files": ("GET", P + "/files", None, read),
            "GET /api/v1/projects/{project}/revisions/{revision}/diff": ("GET", P + f"/revisions/{revision}/diff",
                                                                         None, read),
            "POST /api/v1/projects/{project}/rollback": ("POST", P + "/rollback", {"to": revision,
                                                                                   "expected": "0" * 40}, change),
            "GET /api/v1/projects/{project}/flows": ("GET", P + "/flows", None, read),
            "GET /api/v1/projects/{project}/flows/{flow}/blocks/{block}/state/{key}": (
                "GET", P + "/flows/counter/blocks/counter/state/k1", None, read),
            "GET /api/v1/projects/{project}/flows/{flow}/blocks/{block}/state": (
                "GET", P + "/flows/counter/blocks/counter/state", None, read),
            "GET /api/v1/errors": ("GET", "/api/v1/errors?project=acme.shop", None, read),
            "GET /api/v1/errors/{id}": ("GET", "/api/v1/errors/1-1?project=acme.shop", None, read),
            "DELETE /api/v1/errors/{id}": ("DELETE", "/api/v1/errors/1-1?project=acme.shop", None, change),
            "POST /api/v1/errors/{id}/replay": ("POST", "/api/v1/errors/1-1/replay?project=acme.shop", None, change),
            "GET /api/v1/cluster/graph": ("GET", "/api/v1/cluster/graph", None, node_wide),
            "GET /api/v1/cluster": ("GET", "/api/v1/cluster", None, node_wide),
            "GET /api/v1/schemas": ("GET", "/api/v1/schemas", None, "tenant"),  # the node's and the team's own
            "POST /api/v1/schemas": ("POST", "/api/v1/schemas", {"url": "https://x.example/s.json",
                                                                 "schema": {"type": "object"}}, "team change"),
            "GET /api/v1/trace": ("GET", "/api/v1/trace?project=acme.shop&limit=1", None, read),
        }
        st, spec = node.admin_get("/api/v1/openapi.json")
        routes = sorted(f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops
                        if method in ("get", "post", "put", "delete", "patch"))
        check(sorted(rules) == routes, f"a rule for every admin route: without one {sorted(set(routes) - set(rules))};"
                                       f" stale {sorted(set(rules) - set(routes))}")
        who_all = ["anonymous", "another team's owner", "viewer", "developer", "admin", "owner", "node admin"]
        wrong = []
        for route, (method, path, body, kind) in rules.items():
            for who in who_all:
                st, text = call(node, method, path, tokens.get(who), body)
                gate = st == 404 and GATE_404 in text
                if kind == public:
                    ok = st not in (401, 403)
                elif who == "anonymous":
                    ok = st == 401
                elif who == "node admin":
                    ok = st not in (401, 403) and not gate
                elif kind == node_wide:
                    ok = st == 403
                elif kind == "tenant":
                    ok = st == 200
                elif kind == "team change":  # in the caller's own team: a developer's
                    ok = st == 403 if who == "viewer" else 200 <= st < 300
                elif who == "another team's owner":
                    ok = gate
                elif kind == change and who == "viewer":
                    ok = st == 403
                else:
                    ok = st not in (401, 403) and not gate
                if not ok:
                    wrong.append(f"{route} as {who}: {st} {text[:160]}")
        check(not wrong, "statuses:\n" + "\n".join(wrong))

        # /metrics by token: a tenant's projects' series only.
        st, text = call(node, "GET", "/metrics", tokens["viewer"])
        series = [ln for ln in text.split("\n") if ln and not ln.startswith("#")]
        check(st == 200 and series and all('project="acme.' in ln for ln in series),
              f"acme's viewer sees acme's series only: {[ln for ln in series if 'acme.' not in ln][:3]}")
        check('project="acme.shop"' in text and "globex" not in text, "acme.shop's series, nothing of globex")
        st, whole = call(node, "GET", "/metrics", tokens["node admin"])
        node_wide_series = [ln for ln in whole.split("\n") if ln and not ln.startswith("#") and "project=" not in ln]
        check('project="globex.store"' in whole and 'project="acme.shop"' in whole and node_wide_series,
              "the node's admin token sees every series, node-wide ones too")
        st, text = call(node, "GET", "/api/v1/projects", tokens["another team's owner"])
        check([p["name"] for p in json.loads(text)] == ["globex.store"], f"bob lists his project only: {text[:300]}")
        st, text = call(node, "GET", "/api/v1/projects/globex.store/flows", tokens["another team's owner"])
        check(st == 200, f"bob reads his own project: {st} {text[:200]}")

        # The team's plan is the project's ceiling: free allows 1 s per call; pro 10 s.
        st, projects = node.admin_get("/api/v1/projects")
        shop_now = [p for p in projects if p["name"] == "acme.shop"][0]
        check(shop_now["limits"]["timeoutMs"] == 1000, f"acme.shop runs within the free plan: {shop_now['limits']}")
        slower = {"base": shop_now["revision"], "apply": True, "message": "5 s per call",
                  "files": {"flowstate.yaml": "name: acme.shop\ndurability: sync\ntimeout: 5s\n"}}
        st, text = call(node, "POST", P + "/edits", tokens["developer"], slower)
        check(st == 422 and "above this node's plan of 1s" in text, f"5 s is above the free plan: {st} {text[:300]}")
        custom = {"base": shop_now["revision"], "message": "a custom driver",
                  "files": {"drivers/modbus.yaml": "kind: npm:@acme/flowstate-modbus\nhost: 203.0.113.7\n"}}
        st, text = call(node, "POST", P + "/edits", tokens["developer"], custom)
        check(st == 422 and "drivers/modbus.yaml: kind npm:@acme/flowstate-modbus is a custom driver, which the "
              "team's plan (free) does not allow" in text, f"no custom drivers on free: {st} {text[:400]}")
        big = {"base": shop_now["revision"], "message": "a big function",
               "files": {"functions/counter.js": "export default () => ({});\n// " + "x" * 1100000 + "\n"}}
        st, text = call(node, "POST", P + "/edits", tokens["developer"], big)
        check(st == 422 and "functions/counter.js: the function is 1100031 bytes" in text
              and "above the 1048576 of the team's plan (free)" in text, f"1 MiB per function on free: {st} {text[:400]}")
        check(shop_now["trace"] == {"fullMs": 86400000, "keepMs": 86400000},
              f"the free plan keeps the trace a day (flowstate.yaml's default: 30 days): {shop_now['trace']}")
        st, body, _, _ = operator.call("PUT", "/api/v1/operator/teams/acme/plan", {"plan": "pro"})
        check(st == 200, f"the operator puts acme on pro: {st} {body}")
        st, text = call(node, "POST", P + "/edits", tokens["developer"], slower)
        check(st == 200, f"on pro, 5 s per call deploys: {st} {text[:300]}")
        st, projects = node.admin_get("/api/v1/projects")
        check([p["limits"]["timeoutMs"] for p in projects if p["name"] == "acme.shop"] == [5000],
              f"acme.shop now has 5 s per call: {projects}")

        # The CLI: `flowstate login` keeps a token for the team; commands use it.
        home = tmpdir()
        env = {k: v for k, v in os.environ.items() if k != "FLOWSTATE_TOKEN"}
        env["HOME"] = home
        p = subprocess.run([BIN, "login", "--service", m.addr, "--email", "dave@example.com", "--team", "acme"],
                           input=PASSWORD + "\n", capture_output=True, text=True, env=env, timeout=60)
        check(p.returncode == 0 and "a developer token for team acme" in p.stdout, f"login: {p.stdout} {p.stderr}")
        saved = os.path.join(home, ".config", "flowstate", "credentials")
        check(oct(os.stat(saved).st_mode & 0o777) == "0o600", "the credentials file is private")
        empty = tmpdir()  # no node's data directory: the saved token is used
        for project, want_ok in (("acme.shop", True), ("globex.store", False)):
            p = subprocess.run([BIN, "state", "get", "counter", "counter", "k1", "--json", "--project", project,
                                "--admin", node.admin, "--data", empty], capture_output=True, text=True, env=env,
                               timeout=60)
            check((p.returncode == 0) == want_ok and (want_ok or "no project named" in p.stderr),
                  f"state get in {project} with dave's saved token: {p.returncode} {p.stdout} {p.stderr}")
        p = subprocess.run([BIN, "login", "--service", m.addr, "--email", "dave@example.com", "--team", "acme"],
                           input="wrong password\n", capture_output=True, text=True, env=env, timeout=60)
        check(p.returncode != 0 and "wrong email or password" in p.stderr, f"a wrong password: {p.stderr}")

        dave = callers["developer"]
        made = token_of(dave, "short-lived")
        check(call(node, "GET", P + "/flows", made["token"])[0] == 200, "dave's new token reads acme.shop")
        st, _, _, _ = dave.call("DELETE", f"/api/v1/teams/acme/tokens/{made['id']}")
        check(st == 204, f"revoked: {st}")
        # The node keeps a token's answer for one second.
        wait_for("the revoked token refused", lambda: call(node, "GET", P + "/flows", made["token"])[0] == 401)
    finally:
        if node:
            node.stop()
        m.stop()


def test_a_hosted_nodes_webhooks_cannot_reach_internal_addresses():
    """on a node in hosted mode an http.Post to 127.0.0.1 is refused before connecting: the target gets nothing, and the delivery goes to the error queue at once (not retried) saying the address is internal"""
    from test_http_post import Target, hook_project
    pg, m, operator, callers, _ = setup_world(["--node-secret", SECRET])
    target = Target().start()
    node = None
    try:
        project = hook_project(target.port, extra={"flowstate.yaml": "name: acme.hooks\ndurability: sync\n"})
        node = Node([project], extra_args=["--control-plane", m.addr], env={"FLOWSTATE_NODE_SECRET": SECRET}).start()
        conn = node.connection()
        conn.request("POST", "/acme/hooks/alerts/dev1", body='{"level": 9}', headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        check(r.status == 202, f"the alert is accepted: {r.status}")
        wait_for("the refused delivery in the error queue", lambda: node.errors(project="acme.hooks"), timeout=20)
        error = node.errors(project="acme.hooks")[0]
        check("127.0.0.1" in error["message"] and "public addresses only" in error["message"],
              f"the error says why: {error}")
        check(target.requests == [], f"nothing reached the internal address: {target.requests}")
    finally:
        if node:
            node.stop()
        target.stop()
        m.stop()


def test_each_team_has_a_registry_of_types_of_its_own_beside_the_nodes():
    """a developer registers a type for acme (a viewer cannot); acme's members list the node's types and acme's, globex only the node's; acme's project typed by it deploys and validates its input with it, globex's naming it is refused (not in its registry); both use a node-wide type; the node's admin token lists the node-wide ones"""
    from harness import make_project
    from test_remote_deploy import deploy, login
    pg, m, operator, callers, _ = setup_world(["--node-secret", SECRET])
    node = None
    try:
        node = Node([], extra_args=["--control-plane", m.addr], env={"FLOWSTATE_NODE_SECRET": SECRET}).start()
        acme_dev, acme_viewer, bob = (token_of(callers[w])["token"] for w in ("developer", "viewer",
                                                                              "another team's owner"))
        mine, shared = "https://types.acme.example/Reading.json", "https://types.example/Any.json"
        st, text = call(node, "POST", "/api/v1/schemas", node.token, {"url": shared, "schema": {"type": "object"}})
        check(st == 201, f"a node-wide type: {st} {text}")
        reading = {"type": "object", "required": ["body"], "properties": {  # the http.Request's message
            "body": {"type": "object", "required": ["v"], "properties": {"v": {"type": "number"}}}}}
        st, text = call(node, "POST", "/api/v1/schemas", acme_viewer, {"url": mine, "schema": reading})
        check(st == 403, f"a viewer cannot register: {st} {text}")
        st, text = call(node, "POST", "/api/v1/schemas", acme_dev, {"url": mine, "schema": reading})
        check(st == 201, f"acme's developer registers acme's type: {st} {text}")
        lists = {who: json.loads(call(node, "GET", "/api/v1/schemas", t)[1])
                 for who, t in (("acme", acme_viewer), ("globex", bob), ("node", node.token))}
        check(lists == {"acme": sorted([mine, shared]), "globex": [shared], "node": [shared]},
              f"each sees the node's types and its own team's: {lists}")

        def typed(name, url):
            return make_project(os.path.join(tmpdir(), name), {
                "flowstate.yaml": f"name: {name}\n",
                "flows/t.yaml": f"blocks:\n  - http.Request: t\n  - js.Function: f\n    input: {url}\n"
                                "  - http.Response: reply\n",
                "drivers/t.yaml": "kind: http.Request\nmethod: POST\npath: /t/{key}\n",
                "drivers/reply.yaml": "kind: http.Response\n",
                "functions/f.js": "export default (input) => ({ output: { status: 200, body: input.body } });\n"})

        dave, bob_cli = login(m, "dave@example.com", "acme"), login(m, "bob@example.com", "globex")
        p = deploy(dave, typed("acme.typed", mine), node, "typed by acme's type")
        check(p.returncode == 0, f"acme's project typed by acme's type deploys: {p.stdout} {p.stderr}")
        st, body = node.request("POST", "/acme/typed/t/k1", {"v": 1})
        check(st == 200 and body == {"v": 1}, f"an input of acme's type runs: {st} {body}")
        st, body = node.request("POST", "/acme/typed/t/k1", {"v": "one"})
        check(st >= 400 and "/body/v" in json.dumps(body), f"one that is not is refused, naming where: {st} {body}")
        p = deploy(bob_cli, typed("globex.typed", mine), node, "typed by acme's type")
        check(p.returncode != 0 and mine in p.stdout + p.stderr and "not in this node's schema registry" in p.stdout + p.stderr,
              f"globex's project naming acme's type is refused: {p.stdout} {p.stderr}")
        p = deploy(bob_cli, typed("globex.any", shared), node, "typed by the node's type")
        check(p.returncode == 0, f"the node's types serve every team: {p.stdout} {p.stderr}")
    finally:
        if node:
            node.stop()
        m.stop()
        pg.stop()


if __name__ == "__main__":
    run([test_each_team_has_a_registry_of_types_of_its_own_beside_the_nodes,
         test_tenants_tokens_reach_their_own_teams_projects_with_their_role_and_nothing_node_wide,
         test_a_hosted_nodes_webhooks_cannot_reach_internal_addresses])
