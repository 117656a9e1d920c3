"""The web UI in a real browser (tests/browser/ui.mjs, Debian's chromium via
playwright-core): a flow as its stack of blocks, statistics and the live
executions updating as requests arrive."""
import os
import subprocess

from harness import Node, check, counter_project, run, tmpdir
from test_todomvc_browser import BROWSER_DIR, CHROMIUM, prerequisites, read_line

FLAKY_COUNTER = """export default function (input, state = {count: 0}) {
  if (input.body && input.body.fail) throw new Error('asked to fail');
  return {output: {status: 200, body: {count: state.count + 1}}, state: {count: state.count + 1}};
}
"""


def test_the_ui_shows_flows_stats_and_live_executions_edits_and_deploys_rolls_back_and_discards_an_error():
    """the page shows the counter flow's blocks, then 3 ok and 1 error, and the failing execution live; an edit made in the browser is refused with its line, then applied and run by the node; its diff is in the history, a roll back deploys the revision before, the error is discarded and the graph shows the node"""
    prerequisites()
    node = Node([counter_project(os.path.join(tmpdir(), "counter"), function=FLAKY_COUNTER)]).start()
    browser = None
    try:
        errors = open(os.path.join(node.data, "browser.log"), "w+")
        browser = subprocess.Popen(["node", os.path.join(BROWSER_DIR, "ui.mjs"), f"http://{node.admin}", node.token],
                                   cwd=BROWSER_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
                                   text=True, env=dict(os.environ, CHROMIUM=CHROMIUM))
        check(read_line(browser, errors, "the page with its blocks") == "SEND", "the script asks for requests")
        for i in range(3):
            node.request("POST", f"/count/k{i}", {})
        status, _ = node.request("POST", "/count/k9", {"fail": True})
        check(status == 500, f"the failing request: {status}")
        browser.stdin.write("sent\n")
        browser.stdin.flush()
        applied = read_line(browser, errors, "statistics, live executions and an edit applied")
        check(applied.startswith("APPLIED "), f"the script applies an edit: {applied}")
        st, projects = node.admin_get("/api/v1/projects")
        check(projects[0]["revision"].startswith(applied.split()[1]), f"the node runs the edit: {projects}")
        status, body = node.request("POST", "/count/k0", {})
        check(status == 200 and body["count"] == 2, f"the edited function counts on: {status} {body}")
        browser.stdin.write("checked\n")
        browser.stdin.flush()
        check(read_line(browser, errors, "history, roll back, errors and graph") == "PASS", "the script passes")
        st, projects = node.admin_get("/api/v1/projects")
        check(not projects[0]["revision"].startswith(applied.split()[1]), "the roll back deployed a new revision")
        st, queued = node.admin_get("/api/v1/errors")
        check(queued == [], f"the discarded error is gone: {queued}")
        browser.wait(timeout=60)
        check(browser.returncode == 0, f"browser script exit {browser.returncode}")
    finally:
        if browser and browser.poll() is None:
            browser.kill()
            browser.wait()
        node.stop()


if __name__ == "__main__":
    run([test_the_ui_shows_flows_stats_and_live_executions_edits_and_deploys_rolls_back_and_discards_an_error])
