"""Fixing a bug from the web UI in a real browser (tests/browser/ui_fix.mjs,
Debian's chromium via playwright-core): the failure is queued, a proposal
whose test case fails cannot be merged, the fix's proposal passes and is
merged and deployed, the queued failure is replayed; an edit applied in the
browser makes a deploy from a checkout that lacks it refused, and a deploy
from the CLI in between makes the browser's next Apply a conflict, never a
lost edit."""
import json
import os
import subprocess

from harness import GIT, Node, check, cli, make_project, run, tmpdir, wait_for, write_files
from test_todomvc_browser import BrowserScript

BUGGY = """export default function (input, state = { count: 0 }) {
  const step = input.body.step ?? 1;
  if (step < 0) throw new Error("negative step");
  const count = state.count + step;
  return { output: { status: 200, body: { count } }, state: { count } };
}
"""
FIXED = BUGGY.replace('  if (step < 0) throw new Error("negative step");\n', "")
NEGATIVE_CASE = """# A negative step counts down.
key: k1
input: { route: "POST /count/{key}", method: POST, path: /count/k1, params: { key: k1 }, body: { step: -1 } }
state: { count: 0 }
expect:
  output: { status: 200, body: { count: -1 } }
  state: { count: -1 }
"""


def fixme_project():
    return make_project(os.path.join(tmpdir(), "fixme"), {
        "flowstate.yaml": "name: fixme\n",
        "flows/counter.yaml": "blocks:\n  - http.Request: count\n  - js.Function: counter\n  - http.Response: reply\n",
        "drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /count/{key}\n",
        "drivers/reply.yaml": "kind: http.Response\n",
        "functions/counter.js": BUGGY,
        "tests/counter/negative.yaml": NEGATIVE_CASE,
    })


def active(node):
    return node.admin_get("/api/v1/projects")[1][0]["revision"]


def state_of(node, key):
    p = cli("state", "get", "counter", "counter", key, "--json", data=node.data)
    return json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() not in ("", "null") else None


def test_a_bug_is_fixed_from_the_browser_by_a_tested_proposal_and_its_queued_failure_replayed_and_no_edit_is_lost():
    """a failing input is queued; a proposal whose test case fails cannot be merged, the fix's proposal passes and is merged; the failure replayed counts; after an edit applied in the browser a CLI deploy from the checkout lacking it is refused, and a CLI deploy in between makes the browser's Apply a conflict that Rebase resolves"""
    project = fixme_project()
    node = Node([project]).start()
    browser = None
    try:
        browser = BrowserScript("ui_fix.mjs", [f"http://{node.admin}", node.token, FIXED], node.data)
        check(browser.line("the page") == "READY", "the script shows the page")
        status, body = node.request("POST", "/count/k1", {"step": -1})
        check(status == 500, f"the bug: {status} {body}")
        browser.answer("sent")

        merged = browser.line("the failing proposal refused, the fix merged").split()
        check(merged[0] == "MERGED" and active(node).startswith(merged[1]), f"the node runs the merge: {merged}")
        status, body = node.request("POST", "/count/k2", {"step": -2})
        check(status == 200 and body == {"count": -2}, f"the fix runs: {status} {body}")
        browser.answer("checked")

        check(browser.line("the error replayed") == "REPLAYED", "the script replays the error")
        wait_for("the replayed input counted", lambda: state_of(node, "k1") == {"count": -1})
        browser.answer("checked")

        applied = browser.line("an edit applied").split()
        check(applied[0] == "APPLIED" and active(node).startswith(applied[1]), f"the node runs the edit: {applied}")
        write_files(project, {"flows/counter.yaml": "# deployed from the CLI\nblocks:\n  - http.Request: count\n"
                                                    "  - js.Function: counter\n  - http.Response: reply\n"})
        p = cli("deploy", "-m", "from a checkout without the browser's edit", "--project", project, data=node.data)
        check(p.returncode != 0 and f"git merge {applied[1]}" in p.stderr,
              f"a checkout that lacks the browser's edit is refused: {p.returncode} {p.stderr}")
        check(active(node).startswith(applied[1]), "the browser's edit keeps running")
        subprocess.run(GIT + ["-C", project, "merge", "--ff-only", applied[1]], check=True, capture_output=True)
        p = cli("deploy", "-m", "from the CLI, caught up", "--project", project, data=node.data)
        check(p.returncode == 0, f"the caught-up checkout deploys: {p.stderr}")
        from_cli = active(node)
        check(not from_cli.startswith(applied[1]), "a new revision runs")
        browser.answer("deployed")

        again = browser.line("the conflict, a rebase and an apply").split()
        check(again[0] == "APPLIED" and active(node).startswith(again[1]), f"the rebased edit runs: {again}")
        log = subprocess.run(GIT + ["-C", project, "log", "-1", "--format=%P", again[1]], capture_output=True,
                             text=True, check=True).stdout.strip()
        check(log == from_cli, f"the browser's edit sits on the CLI's deploy: parent {log}, CLI {from_cli}")
        shown = subprocess.run(GIT + ["-C", project, "show", f"{again[1]}:flows/counter.yaml"], capture_output=True,
                               text=True, check=True).stdout
        check(shown.startswith("# deployed from the CLI"), "the CLI's change is kept")
        browser.answer("checked")
        browser.passes("the end")
    finally:
        if browser:
            browser.stop()
        node.stop()


if __name__ == "__main__":
    run([test_a_bug_is_fixed_from_the_browser_by_a_tested_proposal_and_its_queued_failure_replayed_and_no_edit_is_lost])
