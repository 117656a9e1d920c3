"""Dedicated placement (docs/hosted.md "Dedicated nodes"): a team on a plan
with dedicated nodes is given a pool of its own by an operator; nodes
started with `--pool NAME` run that team's projects and no other's, the
shared nodes refuse it, the team is told where its pool answers, and a move
back to the shared pool takes effect on the pool's nodes within seconds.
A real `flowstate manager` on a real PostgreSQL, real hosted nodes."""
import os

from harness import Node, check, counter_project, run, tmpdir, wait_for
from test_hosted_node import SECRET
from test_manager import setup_world
from test_remote_deploy import deploy, login


def app(name, path):
    return counter_project(os.path.join(tmpdir(), name),
                           extra={"drivers/count.yaml": f"kind: http.Request\nmethod: POST\npath: /{path}/{{key}}\n"})


def test_a_dedicated_team_runs_on_its_own_pool_and_nowhere_else():
    """an operator gives acme (on the dedicated plan) pool acme-1 (refused while acme's plan has no dedicated nodes, and for a second team); acme's deploy to a shared node is refused naming the pool and its node's address, to the pool's node it runs; globex's deploy to acme's node is refused, to a shared node it runs; acme sees its pool and nodes; moved back to the shared pool, acme's requests on the pool's node get 421 within seconds; a plan without dedicated nodes clears the pool; the pool's node restarted skips the project it can no longer run and serves"""
    pg, m, operator, callers, _ = setup_world(["--node-secret", SECRET])
    shared = dedicated = None
    try:
        st, body, _, _ = operator.call("PUT", "/api/v1/operator/teams/acme/pool", {"pool": "acme-1"})
        check(st == 422 and "no dedicated nodes" in body["detail"], f"pro has no dedicated nodes: {st} {body}")
        for team in ("acme", "globex"):
            check(operator.call("PUT", f"/api/v1/operator/teams/{team}/plan", {"plan": "dedicated"})[0] == 200, team)
        st, body, _, _ = operator.call("PUT", "/api/v1/operator/teams/acme/pool", {"pool": "acme-1"})
        check(st == 200 and body == {"team": "acme", "pool": "acme-1"}, f"acme on pool acme-1: {st} {body}")
        st, body, _, _ = operator.call("PUT", "/api/v1/operator/teams/globex/pool", {"pool": "acme-1"})
        check(st == 409, f"a pool runs one team's projects: {st} {body}")
        st, body, _, _ = operator.call("PUT", "/api/v1/operator/teams/globex/pool", {"pool": "Shared!"})
        check(st == 422 and "pool:" in body["detail"], f"a bad pool name is named: {st} {body}")
        check(operator.call("PUT", "/api/v1/operator/teams/globex/plan", {"plan": "pro"})[0] == 200, "globex on pro")

        env = {"FLOWSTATE_NODE_SECRET": SECRET}
        shared = Node([], extra_args=["--control-plane", m.addr], env=env).start()
        dedicated = Node([], extra_args=["--control-plane", m.addr, "--pool", "acme-1"], env=env).start()
        dave = login(m, "dave@example.com", "acme")
        wait_for("acme-1's node reported", lambda: callers["viewer"].call(
            "GET", "/api/v1/teams/acme/placement")[1].get("nodes"), timeout=20)
        st, placement, _, _ = callers["viewer"].call("GET", "/api/v1/teams/acme/placement")
        check(st == 200 and placement["pool"] == "acme-1" and placement["dedicated"] is True
              and [n["admin"] for n in placement["nodes"]] == [dedicated.admin],
              f"acme's members see its pool and where its node answers: {placement}")

        api = app("acme.api", "api")
        p = deploy(dave, api, shared, "to the shared pool")
        check(p.returncode != 0 and 'pool "acme-1"' in p.stderr and dedicated.admin in p.stderr,
              f"a shared node refuses acme's project, naming the pool and its node: {p.stdout} {p.stderr}")
        check(not os.path.exists(os.path.join(shared.data, "projects", "acme.api")), "and keeps nothing of it")
        p = deploy(dave, api, dedicated, "to its pool")
        check(p.returncode == 0, f"acme-1's node runs it: {p.stdout} {p.stderr}")
        st, body = dedicated.request("POST", "/acme/api/api/k", {})
        check(st == 200 and body == {"count": 1}, f"acme.api answers on its pool: {st} {body}")

        web = app("globex.web", "web")
        bob = login(m, "bob@example.com", "globex")
        p = deploy(bob, web, dedicated, "to acme's pool")
        check(p.returncode != 0 and 'pool "shared"' in p.stderr, f"acme's node refuses globex: {p.stdout} {p.stderr}")
        p = deploy(bob, web, shared, "to the shared pool")
        check(p.returncode == 0, f"a shared node runs globex: {p.stdout} {p.stderr}")

        st, body, _, _ = operator.call("PUT", "/api/v1/operator/teams/acme/pool", {"pool": None})
        check(st == 200 and body["pool"] is None, f"acme back on the shared pool: {st} {body}")
        st, body = wait_for("acme-1's node refuses acme", lambda: (lambda r: r if r[0] == 421 else None)(
            dedicated.request("POST", "/acme/api/api/k", {})), timeout=10)
        check("shared" in body["detail"] and "nothing was accepted" in body["detail"], f"a 421 naming it: {body}")

        check(operator.call("PUT", "/api/v1/operator/teams/acme/pool", {"pool": "acme-1"})[0] == 200, "again")
        check(operator.call("PUT", "/api/v1/operator/teams/acme/plan", {"plan": "pro"})[0] == 200, "acme on pro")
        st, teams, _, _ = operator.call("GET", "/api/v1/operator/teams")
        check({t["name"]: t["pool"] for t in teams}["acme"] == "shared",
              f"a plan without dedicated nodes puts the team back on the shared pool: {teams}")

        dedicated.stop()
        dedicated.start()
        check("not serving" in dedicated.log() and "acme.api" in dedicated.log(),
              f"restarted, the pool's node names the project it no longer runs: {dedicated.log()[-1500:]}")
        st, body = dedicated.request("POST", "/acme/api/api/k", {})
        check(st == 404, f"and does not run it: {st} {body}")
    finally:
        for node in (shared, dedicated):
            if node:
                node.stop()
        m.stop()
        pg.stop()


if __name__ == "__main__":
    run([test_a_dedicated_team_runs_on_its_own_pool_and_nowhere_else])
