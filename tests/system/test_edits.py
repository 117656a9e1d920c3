"""Edits through the admin API (POST /api/v1/projects/{project}/edits, what
the UI's editor uses): checked against a revision without committing to
any branch, applied as a new revision on top of the active one by the
configured author, a stale base refused as a conflict; and a CLI deploy
from the checkout that the edit left behind is refused instead of undoing
it."""
import json
import subprocess

from harness import GIT, Node, check, cli, counter_project, git_head, run, tmpdir, write_files

EDITED_JS = """export default function (input, state = { count: 0 }) {
  const count = state.count + 10;
  return { output: { status: 200, body: { count, edited: true } }, state: { count } };
}
"""


def post_edits(node, body, project="edited"):
    conn = node.admin_connection()
    conn.request("POST", f"/api/v1/projects/{project}/edits", body=json.dumps(body),
                 headers={"Authorization": f"Bearer {node.token}", "Content-Type": "application/json"})
    r = conn.getresponse()
    text = r.read().decode()
    conn.close()
    return r.status, json.loads(text) if text else None


def active(node):
    return node.admin_get("/api/v1/projects")[1][0]["revision"]


def test_edits_are_checked_applied_on_the_active_revision_and_a_stale_checkout_cannot_undo_them():
    """a broken edit is refused naming the file and line, a good one is checked without running; applied, it is a commit by the configured author on top of the active revision and it runs; a stale base gets 409; a CLI deploy from the checkout the edit left behind is refused"""
    project = counter_project(tmpdir() + "/edited")
    node = Node([project], extra_args=["--edit-author", "UI Tester <ui@example.com>"]).start()
    try:
        base = active(node)
        status, body = post_edits(node, {"base": base, "files": {"functions/counter.js": "export default function ("}})
        check(status == 422 and "functions/counter.js:1" in body.get("detail", ""), f"a broken edit: {status} {body}")
        status, body = post_edits(node, {"base": base, "files": {"flows/nothing.yaml": "blocks:\n  - js.Function: gone\n"}})
        check(status == 422 and "flows/nothing.yaml:2" in body.get("detail", ""), f"a dangling reference: {status} {body}")
        status, body = post_edits(node, {"base": base, "files": {"../outside.js": "x"}})
        check(status == 422 and "../outside.js" in body.get("detail", ""), f"a path outside the project: {status} {body}")
        status, body = post_edits(node, {"base": base, "files": {"functions/counter.js": EDITED_JS}})
        check(status == 200 and body["valid"] and body["revision"] != base, f"a good edit is checked: {status} {body}")
        check(active(node) == base, "checking runs nothing")
        status, body = node.request("POST", "/count/k", {})
        check(body == {"count": 1}, f"the old revision serves: {body}")

        status, body = post_edits(node, {"base": base, "files": {"functions/counter.js": EDITED_JS}, "apply": True,
                                         "message": "count by tens"})
        check(status == 200 and body["replaced"] == base, f"applied: {status} {body}")
        edited = body["revision"]
        check(active(node) == edited, "the edit runs")
        status, body = node.request("POST", "/count/k", {})
        check(body == {"count": 11, "edited": True}, f"the edited function serves: {body}")
        log = subprocess.run(GIT + ["-C", project, "log", "-1", "--format=%an <%ae>|%P|%s", edited],
                             capture_output=True, text=True, check=True).stdout.strip()
        check(log == f"UI Tester <ui@example.com>|{base}|count by tens", f"author, parent and message: {log}")
        check(git_head(project) == base, "no branch moved")

        status, body = post_edits(node, {"base": base, "files": {"functions/counter.js": EDITED_JS}, "apply": True,
                                         "message": "again, from the old revision"})
        check(status == 409 and edited[:12] in body.get("detail", ""), f"a stale base is a conflict: {status} {body}")

        write_files(project, {"drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /count2/{key}\n"})
        p = cli("deploy", "-m", "from the checkout behind the edit", "--project", project, data=node.data)
        check(p.returncode != 0 and f"git merge {edited[:12]}" in p.stderr,
              f"the checkout behind the edit is refused: {p.stderr}")
        check(active(node) == edited, "the edit keeps running")
    finally:
        node.stop()


def post_json(node, path, body):
    conn = node.admin_connection()
    conn.request("POST", path, body=json.dumps(body),
                 headers={"Authorization": f"Bearer {node.token}", "Content-Type": "application/json"})
    r = conn.getresponse()
    text = r.read().decode()
    conn.close()
    return r.status, json.loads(text) if text else None


def test_history_shows_revisions_and_diffs_and_a_roll_back_is_a_new_revision():
    """the revisions come newest first with author, message and which is active; a revision's diff shows its change; rolling back deploys the earlier files as a new commit on top, and a stale expected gets 409"""
    project = counter_project(tmpdir() + "/edited")
    node = Node([project], extra_args=["--edit-author", "UI Tester <ui@example.com>"]).start()
    try:
        first = active(node)
        status, body = post_edits(node, {"base": first, "files": {"functions/counter.js": EDITED_JS}, "apply": True,
                                         "message": "count by tens"})
        check(status == 200, f"applied: {status} {body}")
        second = body["revision"]
        status, revs = node.admin_get("/api/v1/projects/edited/revisions")
        check(status == 200 and [r["revision"] for r in revs[:2]] == [second, first], f"newest first: {revs}")
        check(revs[0]["active"] and not revs[1]["active"] and revs[0]["author"] == "UI Tester" and
              revs[0]["message"].strip() == "count by tens" and revs[0]["parents"] == [first], f"{revs[0]}")
        status, text = node.admin_get(f"/api/v1/projects/edited/revisions/{second}/diff")
        check(status == 200 and "+++ b/functions/counter.js" in text and "+  const count = state.count + 10;" in text,
              f"the diff shows the change: {status} {text[:300]}")

        status, body = post_json(node, "/api/v1/projects/edited/rollback", {"to": first, "expected": first})
        check(status == 409, f"a stale expected: {status} {body}")
        status, body = post_json(node, "/api/v1/projects/edited/rollback", {"to": first, "expected": second})
        check(status == 200 and body["replaced"] == second, f"rolled back: {status} {body}")
        third = body["revision"]
        check(third not in (first, second) and active(node) == third, "a new revision runs")
        status, revs = node.admin_get("/api/v1/projects/edited/revisions?limit=2")
        check(len(revs) == 2 and revs[0]["revision"] == third and revs[0]["parents"] == [second] and
              revs[0]["message"].startswith(f"Roll back to {first[:12]}"), f"on top of the edit: {revs}")
        status, body = node.request("POST", "/count/k", {})
        check(body == {"count": 1}, f"the first revision's function serves again: {body}")
        status, text = node.admin_get(f"/api/v1/projects/edited/revisions/{third}/diff?against={first}")
        check(status == 200 and not text, f"the rollback has the first revision's files exactly: {text}")
    finally:
        node.stop()


COUNTER_CASE = """key: k1
input: { body: { by: 2 } }
expect:
  output: { status: 200, body: { count: 2 } }
  state: { count: 2 }
"""
BY_TEN_JS = EDITED_JS.replace("state.count + 10", "state.count + 10 * (input.body && input.body.by || 1)")


def test_a_proposal_is_tested_then_merged_onto_the_running_revision_and_a_failing_or_conflicting_one_is_refused():
    """edits saved as a proposal change nothing that runs; its diff is against the running revision; its test cases run on its files; merging before a run, or after failing tests, is refused; once they pass it is merged and deployed; a proposal whose files the running revision changed since is a conflict naming them"""
    project = counter_project(tmpdir() + "/edited", extra={"tests/counter/by-two.yaml": COUNTER_CASE})
    node = Node([project], extra_args=["--edit-author", "UI Tester <ui@example.com>"]).start()
    base_path = "/api/v1/projects/edited/proposals"
    try:
        base = active(node)
        status, body = node.admin_request("POST", base_path, {"name": "by-ten", "base": base, "message": "count by ten",
                                                         "files": {"functions/counter.js": BY_TEN_JS}})
        check(status == 201, f"proposed: {status} {body}")
        check(active(node) == base, "a proposal deploys nothing")
        status, listed = node.admin_request("GET", base_path)
        check(status == 200 and [(p["name"], p["tests"]["status"], p["onRunning"]) for p in listed] ==
              [("by-ten", "not run", True)], f"the proposals: {listed}")
        status, text = node.admin_request("GET", base_path + "/by-ten/diff")
        check(status == 200 and "+  const count = state.count + 10 *" in text, f"its diff: {status} {text}")
        status, body = node.admin_request("POST", base_path + "/by-ten/merge", {"expected": base})
        check(status == 409 and "tests first" in body["detail"], f"a merge before the tests ran: {status} {body}")
        status, body = node.admin_request("POST", base_path + "/by-ten/test")
        check(status == 200 and body["tests"]["status"] == "failed" and "by-two" in body["tests"]["output"],
              f"its tests fail (the case expects 2, it counts 20): {status} {body}")
        status, body = node.admin_request("POST", base_path + "/by-ten/merge", {"expected": base})
        check(status == 409 and "tests failed" in body["title"], f"a merge after failing tests: {status} {body}")

        # The same proposal with its test case updated: the tests pass, the merge deploys it.
        revision = listed[0]["revision"]
        fixed = COUNTER_CASE.replace("body: { count: 2 }", "body: { count: 20, edited: true }").replace(
            "state: { count: 2 }", "state: { count: 20 }")
        status, body = node.admin_request("POST", base_path, {"name": "by-ten", "base": revision, "message": "and its case",
                                                         "files": {"tests/counter/by-two.yaml": fixed}})
        check(status == 201, f"proposed again: {status} {body}")
        status, body = node.admin_request("POST", base_path + "/by-ten/test")
        check(status == 200 and body["tests"]["status"] == "passed", f"its tests pass: {status} {body}")
        status, body = node.admin_request("POST", base_path + "/by-ten/merge", {"expected": base})
        check(status == 200, f"merged: {status} {body}")
        check(active(node) == body["revision"], "the merge runs")
        st, counted = node.request("POST", "/count/m1", {"by": 3})
        check(counted == {"count": 30, "edited": True}, f"the merged code runs: {counted}")
        check(node.admin_request("GET", base_path)[1] == [], "a merged proposal is gone")

        # A proposal on the old revision, and an edit of the same file applied meanwhile: a conflict.
        running = active(node)
        status, body = node.admin_request("POST", base_path, {"name": "late", "base": running, "message": "by ten again",
                                                         "files": {"functions/counter.js": EDITED_JS,
                                                                   "tests/counter/by-two.yaml":
                                                                       COUNTER_CASE.replace(
                                                                           "body: { count: 2 }",
                                                                           "body: { count: 10, edited: true }").replace(
                                                                           "state: { count: 2 }",
                                                                           "state: { count: 10 }")}})
        check(status == 201, f"proposed: {status} {body}")
        other = EDITED_JS.replace("+ 10", "+ 100")
        status, body = post_edits(node, {"base": running, "files": {"functions/counter.js": other},
                                         "message": "by a hundred", "apply": True})
        check(status == 200, f"an edit applied meanwhile: {status} {body}")
        status, body = node.admin_request("POST", base_path + "/late/test")
        check(status == 200 and body["tests"]["status"] == "passed", f"its tests pass: {status} {body}")
        status, body = node.admin_request("POST", base_path + "/late/merge", {"expected": active(node)})
        check(status == 409 and "functions/counter.js" in body.get("detail", ""), f"the conflict: {status} {body}")
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_edits_are_checked_applied_on_the_active_revision_and_a_stale_checkout_cannot_undo_them,
         test_history_shows_revisions_and_diffs_and_a_roll_back_is_a_new_revision,
         test_a_proposal_is_tested_then_merged_onto_the_running_revision_and_a_failing_or_conflicting_one_is_refused])
