"""Remote deploys (docs/cli.md "flowstate deploy", docs/hosted.md): a
developer signs in with `flowstate login`, and `flowstate deploy --admin
NODE` from a checkout the node cannot see sends the commit's objects with
the deploy; the node keeps the repository (DATA/projects/NAME), creates the
project on its first deploy, serves it again after a restart, and a role
change in the control plane applies to the next deploy."""
import json
import os
import re
import subprocess

from harness import BIN, GIT, Node, check, counter_project, git_head, run, tmpdir, wait_for
from test_hosted_node import SECRET, call, token_of
from test_manager import PASSWORD, setup_world


AT_ACME = {"Host": "api.acme.flowstate.test"}  # the service places TEAM.PROJECT at PROJECT.TEAM.DOMAIN


def login(m, email, team):
    home = tmpdir()
    env = {k: v for k, v in os.environ.items() if k != "FLOWSTATE_TOKEN"}
    env["HOME"] = home
    env.pop("XDG_CONFIG_HOME", None)
    p = subprocess.run([BIN, "login", "--service", m.addr, "--email", email, "--team", team],
                       input=PASSWORD + "\n", capture_output=True, text=True, env=env, timeout=60)
    check(p.returncode == 0, f"{email} signs in: {p.stdout} {p.stderr}")
    return env


def deploy(env, project, node, message):
    empty = tmpdir()  # no node data directory here: the saved token and --admin
    return subprocess.run([BIN, "deploy", "-m", message, "--project", project, "--admin", node.admin, "--data", empty],
                          capture_output=True, text=True, env=env, timeout=120)


def test_a_developer_deploys_from_a_checkout_the_node_cannot_see_and_the_node_keeps_the_repository():
    """`flowstate login` then `flowstate deploy --admin NODE` from a checkout elsewhere: the first deploy creates acme.api on the node (DATA/projects/acme.api), a second replaces it sending only what changed, both serve; after a restart the node serves the last revision from its own repository; a viewer's deploy and another team's are refused; demoting the developer refuses the next deploy; a push whose flowstate.yaml names another project is refused naming the file"""
    pg, m, operator, callers, _ = setup_world(["--node-secret", SECRET])
    node = None
    try:
        node = Node([], extra_args=["--control-plane", m.addr, "--hosted-domain", "flowstate.test"],
                    env={"FLOWSTATE_NODE_SECRET": SECRET}).start()
        checkout = counter_project(os.path.join(tmpdir(), "acme.api"),
                                   extra={"drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /api/{key}\n",
                                          "public/data.txt": os.urandom(20000).hex()})
        dave = login(m, "dave@example.com", "acme")
        p = deploy(dave, checkout, node, "first")
        check(p.returncode == 0 and "a new project, acme.api" in p.stdout, f"the first deploy: {p.stdout} {p.stderr}")
        first = git_head(checkout)
        sent = lambda out: int(re.search(r"sent (\d+) bytes of git objects", out).group(1))
        first_bytes = sent(p.stdout)
        kept = os.path.join(node.data, "projects", "acme.api")
        check(git_head(kept) == first, "the node keeps the repository, at the deployed commit")
        check(node.request("POST", "/api/k1", {}, headers=AT_ACME)[1] == {"count": 1}, "acme.api serves")

        with open(os.path.join(checkout, "functions", "counter.js"), "w") as f:
            f.write("export default function (input, state = { count: 0 }) {\n"
                    "  const count = state.count + 10;\n"
                    "  return { output: { status: 200, body: { count, v: 2 } }, state: { count } };\n}\n")
        p = deploy(dave, checkout, node, "count by ten")
        check(p.returncode == 0 and f"replaces {first[:12]}" in p.stdout, f"the second deploy: {p.stdout} {p.stderr}")
        second = git_head(checkout)
        check(sent(p.stdout) < first_bytes / 2, f"the second deploy sends only what changed: {sent(p.stdout)} bytes, "
                                                 f"the first {first_bytes}")
        check(git_head(kept) == second, "the node's repository moved to the second commit")
        log = subprocess.run(GIT + ["-C", kept, "log", "--format=%s", second], capture_output=True, text=True,
                             check=True).stdout.split("\n")
        check(log[:2] == ["count by ten", "first"], f"the history came along: {log}")
        check(node.request("POST", "/api/k1", {}, headers=AT_ACME)[1] == {"count": 11, "v": 2}, "the new revision serves, state kept")

        node.kill9()
        node.start()
        check(node.request("POST", "/api/k1", {}, headers=AT_ACME)[1] == {"count": 21, "v": 2},
              "after a restart the node serves the last revision from its own repository")

        erin = login(m, "erin@example.com", "acme")
        p = deploy(erin, checkout, node, "from a viewer")
        check(p.returncode != 0 and "403" in (p.stdout + p.stderr), f"a viewer cannot deploy: {p.stdout} {p.stderr}")
        bob = login(m, "bob@example.com", "globex")
        p = deploy(bob, checkout, node, "from another team")
        check(p.returncode != 0, f"another team cannot deploy acme.api: {p.stdout} {p.stderr}")
        # The same paths in another team's project, even naming acme's host in its
        # flowstate.yaml: the service places it at its own host, acme's untouched.
        theirs = counter_project(os.path.join(tmpdir(), "globex.api"),
                                 extra={"drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /api/{key}\n",
                                        "flowstate.yaml": "name: globex.api\nhttp:\n  host: api.acme.flowstate.test\n"})
        p = deploy(bob, theirs, node, "globex's own")
        check(p.returncode == 0, f"globex deploys the same paths: {p.stdout} {p.stderr}")
        check(node.request("POST", "/api/k1", {}, headers={"Host": "api.globex.flowstate.test"})[1] == {"count": 1},
              "globex.api answers at its own host")
        check(node.request("POST", "/api/k1", {}, headers=AT_ACME)[1] == {"count": 31, "v": 2},
              "acme.api still answers at its host, its state its own")
        check(node.request("POST", "/api/k1", {})[0] == 404, "no project answers without its host")

        # A role change applies to the next deploy (the node asks again within a second).
        ada = callers["owner"]
        st, team, _, _ = ada.call("GET", "/api/v1/teams/acme")
        dave_id = [x["account"] for x in team["members"] if x["email"] == "dave@example.com"][0]
        check(ada.call("PUT", f"/api/v1/teams/acme/members/{dave_id}", {"role": "viewer"})[0] == 200, "dave demoted")
        with open(os.path.join(checkout, "README.md"), "w") as f:
            f.write("acme's api\n")

        def refused():
            p = deploy(dave, checkout, node, "after the demotion")
            return p.returncode != 0 and "403" in (p.stdout + p.stderr)
        wait_for("dave's deploy refused once he is a viewer", refused, timeout=10)

        # A pack whose flowstate.yaml names another project creates nothing.
        conn = node.admin_connection()
        pack = subprocess.run(GIT + ["-C", checkout, "pack-objects", "--revs", "--stdout"], input=(second + "\n").encode(),
                              capture_output=True, check=True).stdout
        conn.request("POST", f"/api/v1/projects/acme.other/push?revision={second}", body=pack,
                     headers={"Authorization": f"Bearer {node.token}",
                              "Content-Type": "application/x-git-packed-objects"})
        r = conn.getresponse()
        body = json.loads(r.read())
        check(r.status == 422 and "flowstate.yaml" in body["detail"] and "acme.other" in body["detail"],
              f"a push naming another project: {r.status} {body}")
        check(not os.path.exists(os.path.join(node.data, "projects", "acme.other")), "nothing was left of it")
        st, projects = node.admin_get("/api/v1/projects")
        check(sorted(x["name"] for x in projects) == ["acme.api", "globex.api"], f"nothing else was made: {projects}")
    finally:
        if node:
            node.stop()
        m.stop()


if __name__ == "__main__":
    run([test_a_developer_deploys_from_a_checkout_the_node_cannot_see_and_the_node_keeps_the_repository])
