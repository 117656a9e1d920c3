"""Deploys: a function changed while requests flow, crash points in every
step of a deploy, and refusals of broken project files."""
import os
import subprocess
import threading

from harness import GIT, Node, check, cli, counter_project, git_head, run, tmpdir, write_files

VERSION_JS = """export default function (input, state = { count: 0 }, ctx) {
  const count = state.count + 1;
  return { output: { status: 200, body: { version: %d, count } }, state: { count } };
}
"""


def versioned_project():
    return counter_project(tmpdir() + "/app", function=VERSION_JS % 1)


def deploy(project, node, message, env=None):
    return cli("deploy", "-m", message, "--project", project, data=node.data, env=env)


def active_revision(node):
    status, projects = node.admin_get("/api/v1/projects")
    check(status == 200, f"projects: {status}")
    return projects[0]["revision"]


def test_deploy_while_requests_flow():
    """a deploy under load fails no request, switches responses to the new revision, and is a git commit"""
    project = versioned_project()
    node = Node([project]).start()
    try:
        old = git_head(project)
        stop = threading.Event()
        failures, versions = [], []

        def client(c):
            conn = node.connection()
            while not stop.is_set():
                status, body = node.request("POST", f"/count/k{c}", {}, conn=conn)
                if status != 200:
                    failures.append((status, body))
                else:
                    versions.append(body["version"])

        threads = [threading.Thread(target=client, args=(c,)) for c in range(8)]
        for t in threads:
            t.start()
        write_files(project, {"functions/counter.js": VERSION_JS % 2})
        p = deploy(project, node, "count in version 2")
        after = len(versions)
        status, body = node.request("POST", "/count/k0", {})
        stop.set()
        for t in threads:
            t.join()
        check(p.returncode == 0, f"deploy failed: {p.stderr}")
        check(not failures, f"{len(failures)} requests failed during the deploy: {failures[:3]}")
        check(status == 200 and body["version"] == 2, f"after the deploy: {status} {body}")
        check(1 in versions, "requests before the deploy were answered by version 1")
        check(all(v == 2 for v in versions[after + 8:]), "responses after the deploy came from the old revision")
        new = git_head(project)
        check(new != old and active_revision(node) == new, "the node runs the new commit")
        log = subprocess.run(GIT + ["-C", project, "log", "--format=%s"], capture_output=True, text=True).stdout
        check(log.splitlines()[0] == "count in version 2", f"git log: {log}")
        check(f"replaces {old[:12]}" in p.stdout, f"the deploy names the revision it replaced: {p.stdout}")
    finally:
        node.stop()


def crash_during_deploy(point, on_node, expect_new):
    project = versioned_project()
    old = git_head(project)
    node = Node([project]).start(env={"FLOWSTATE_FAULT": point} if on_node else None)
    write_files(project, {"functions/counter.js": VERSION_JS % 2})
    p = deploy(project, node, "crash at " + point, env=None if on_node else {"FLOWSTATE_FAULT": point})
    check(p.returncode != 0, f"{point}: the deploy should not report success")
    if on_node:
        node.wait_killed()
    else:
        node.stop()
    node.start()
    try:
        status, body = node.request("POST", "/count/k", {})
        revision = active_revision(node)
        if expect_new:
            check(body["version"] == 2 and revision != old, f"{point}: expected the new revision, got v{body['version']}")
        else:
            check(body["version"] == 1 and revision == old, f"{point}: expected the old revision, got v{body['version']}")
        # Whatever happened, deploying again completes the change.
        p = deploy(project, node, "again")
        check(p.returncode == 0, f"{point}: the next deploy failed: {p.stderr}")
        status, body = node.request("POST", "/count/k", {})
        check(body["version"] == 2, f"{point}: after redeploy v{body['version']}")
    finally:
        node.stop()


def test_crash_at_each_step_of_a_deploy():
    """a crash at each step of a deploy leaves the old or the new revision active, never a mix"""
    crash_during_deploy("cli.deploy.after_commit", on_node=False, expect_new=False)
    crash_during_deploy("deploy.before_record", on_node=True, expect_new=False)
    crash_during_deploy("deploy.after_record", on_node=True, expect_new=True)
    crash_during_deploy("deploy.after_activate", on_node=True, expect_new=True)


BROKEN = {
    "bad YAML": ({"flows/counter.yaml": "blocks:\n  - http.Request: count\n   - js.Function: counter\n"},
                 "flows/counter.yaml:3"),
    "a missing function": ({"flows/counter.yaml": "blocks:\n  - http.Request: count\n  - js.Function: countr\n"},
                           "flows/counter.yaml:3"),
    "a missing driver": ({"flows/counter.yaml": "blocks:\n  - http.Request: cont\n  - js.Function: counter\n"},
                         "flows/counter.yaml:2"),
    "an unknown kind": ({"flows/counter.yaml": "blocks:\n  - http.Request: count\n  - js.Functio: counter\n"},
                        "flows/counter.yaml:3"),
    "a JS syntax error": ({"functions/counter.js": "export default function (input {\n  return {};\n}\n"},
                          "functions/counter.js:1"),
}


def test_broken_project_files_are_refused():
    """broken project files are refused with the file and line, nothing is committed, the old revision serves"""
    project = versioned_project()
    node = Node([project]).start()
    try:
        good = {name: open(os.path.join(project, name)).read()
                for name in ("flows/counter.yaml", "functions/counter.js")}
        head = git_head(project)
        for case, (files, where) in BROKEN.items():
            write_files(project, files)
            p = deploy(project, node, "broken: " + case)
            check(p.returncode != 0, f"{case}: the deploy was accepted")
            check(where in p.stderr, f"{case}: the refusal does not name {where}: {p.stderr}")
            check(git_head(project) == head, f"{case}: something was committed")
            status, body = node.request("POST", "/count/k", {})
            check(status == 200 and body["version"] == 1, f"{case}: the running revision stopped serving")
            write_files(project, good)
    finally:
        node.stop()


def test_node_refuses_a_broken_commit_pushed_past_the_cli():
    """the node validates a revision itself: a broken commit posted to the API gets 422 naming the file"""
    project = versioned_project()
    node = Node([project]).start()
    try:
        old = git_head(project)
        write_files(project, {"functions/counter.js": "export default function (input {\n}\n"})
        subprocess.run(GIT + ["-C", project, "commit", "-qam", "broken"], check=True)
        broken = git_head(project)
        import http.client
        import json
        host, port = node.admin.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port))
        conn.request("POST", "/api/v1/projects/app/deploy", json.dumps({"revision": broken, "expected": old}),
                     {"Authorization": "Bearer " + node.token})
        r = conn.getresponse()
        text = r.read().decode()
        check(r.status == 422 and "functions/counter.js" in text, f"{r.status} {text}")
        conn.request("POST", "/api/v1/projects/app/deploy", json.dumps({"revision": broken, "expected": "0" * 40}),
                     {"Authorization": "Bearer " + node.token})
        r = conn.getresponse()
        text = r.read().decode()
        check(r.status == 409, f"a deploy naming the wrong revision to replace gets 409, got {r.status} {text}")
        check(active_revision(node) == old, "the old revision stays active")
    finally:
        node.stop()


def test_a_deploy_the_node_refuses_leaves_the_git_index_as_it_was_and_a_deploy_it_takes_leaves_it_clean():
    """a change only the node catches (a path without its leading /) is refused with 422: the index, the branch
    and the untracked files stay as they were, no deploy marker is left; fixed, the deploy succeeds and
    `git status` is clean"""
    project = versioned_project()
    node = Node([project]).start()
    try:
        old = git_head(project)
        write_files(project, {"drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: count/{key}\n",
                              "notes.txt": "mine\n"})
        status = lambda: subprocess.run(GIT + ["-C", project, "status", "--porcelain"], capture_output=True,
                                        text=True, check=True).stdout
        before = status()
        p = deploy(project, node, "broken path")
        check(p.returncode != 0 and "must start with /" in p.stderr, f"refused by the node: {p.stdout} {p.stderr}")
        check(status() == before, f"the index is as it was: {status()!r}, before {before!r}")
        check(git_head(project) == old, "the branch did not move")
        check(not os.path.exists(os.path.join(project, ".git", "flowstate-deploying")), "no deploy marker is left")
        write_files(project, {"drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /count/{key}\n"})
        p = deploy(project, node, "fixed")
        check(p.returncode == 0, f"the fixed deploy: {p.stdout} {p.stderr}")
        check(status() == "", f"git status is clean after a deploy: {status()!r}")
    finally:
        node.stop()


def post_deploy(node, revision, expected):
    import http.client
    import json
    host, port = node.admin.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port))
    conn.request("POST", "/api/v1/projects/app/deploy", json.dumps({"revision": revision, "expected": expected}),
                 {"Authorization": "Bearer " + node.token})
    r = conn.getresponse()
    return r.status, r.read().decode()


def test_deploy_says_where_its_time_went():
    """a deploy's answer and the CLI name the node's phases (read, build, functions, record, activate) in order"""
    import json
    project = versioned_project()
    node = Node([project]).start()
    try:
        write_files(project, {"functions/counter.js": VERSION_JS % 2})
        p = deploy(project, node, "version 2")
        check(p.returncode == 0, f"deploy failed: {p.stderr}")
        check("of which the node" in p.stdout and "functions" in p.stdout, f"no timings printed: {p.stdout}")
        old = git_head(project)
        write_files(project, {"functions/counter.js": VERSION_JS % 3})
        subprocess.run(GIT + ["-C", project, "commit", "-qam", "version 3"], check=True)
        status, text = post_deploy(node, git_head(project), old)
        check(status == 200, f"{status} {text}")
        phases = list(json.loads(text)["timingsMs"])
        check(phases == ["read", "build", "functions", "record", "activate"], f"phases: {phases}")
    finally:
        node.stop()


def test_an_unchanged_flow_is_checked_again_when_what_it_names_changed():
    """the node reuses unchanged files of the last revision, but a driver that changes kind under an unchanged
    flow, or a function that becomes Python, is refused naming the flow's line"""
    project = versioned_project()
    node = Node([project]).start()
    try:
        old = git_head(project)
        for files, drop in (({"drivers/count.yaml": "kind: http.Response\n"}, None),
                            ({"functions/counter.py": "def entrypoint(input, state):\n    return {}\n"},
                             "functions/counter.js")):
            write_files(project, files)
            if drop:
                os.remove(os.path.join(project, drop))
            subprocess.run(GIT + ["-C", project, "add", "-A"], check=True)
            subprocess.run(GIT + ["-C", project, "commit", "-qm", "change under the flow"], check=True)
            status, text = post_deploy(node, git_head(project), old)
            check(status == 422 and "flows/counter.yaml:" in text, f"{files}: {status} {text}")
            check(active_revision(node) == old, "the old revision stays active")
            subprocess.run(GIT + ["-C", project, "reset", "-q", "--hard", old], check=True)
        status, body = node.request("POST", "/count/k", {})
        check(status == 200 and body["version"] == 1, f"the running revision stopped serving: {status} {body}")
    finally:
        node.stop()


def test_a_deploy_from_a_branch_that_does_not_hold_the_running_revision_is_refused():
    """a branch reset behind the revision the node runs (as a stale checkout would be) is refused at deploy, naming the running revision and how to catch up, and nothing is committed; after `git merge` of that revision the deploy goes through"""
    project = versioned_project()
    node = Node([project]).start()
    try:
        first = git_head(project)
        write_files(project, {"functions/counter.js": VERSION_JS % 2})
        p = deploy(project, node, "version 2")
        check(p.returncode == 0, f"deploy failed: {p.stderr}")
        running = active_revision(node)
        subprocess.run(GIT + ["-C", project, "reset", "-q", "--hard", first], check=True)
        write_files(project, {"drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /count2/{key}\n"})
        p = deploy(project, node, "a change on a stale branch")
        check(p.returncode != 0 and f"the node runs {running[:12]}" in p.stderr and f"git merge {running[:12]}" in
              p.stderr, f"refused, naming the running revision and the way to catch up: {p.stderr}")
        check(git_head(project) == first and active_revision(node) == running, "nothing committed or activated")
        subprocess.run(GIT + ["-C", project, "stash", "-q"], check=True)
        subprocess.run(GIT + ["-C", project, "merge", "-q", "--ff-only", running], check=True)
        subprocess.run(GIT + ["-C", project, "stash", "pop", "-q"], check=True)
        p = deploy(project, node, "the change, on top of version 2")
        check(p.returncode == 0, f"deploy after catching up: {p.stderr}")
        status, body = node.request("POST", "/count2/k", {})
        check(status == 200 and body["version"] == 2, f"both changes run: {status} {body}")
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_deploy_while_requests_flow, test_crash_at_each_step_of_a_deploy, test_broken_project_files_are_refused,
         test_node_refuses_a_broken_commit_pushed_past_the_cli, test_deploy_says_where_its_time_went,
         test_an_unchanged_flow_is_checked_again_when_what_it_names_changed,
         test_a_deploy_from_a_branch_that_does_not_hold_the_running_revision_is_refused,
         test_a_deploy_the_node_refuses_leaves_the_git_index_as_it_was_and_a_deploy_it_takes_leaves_it_clean])
