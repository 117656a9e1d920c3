"""The web UI in a real browser (tests/browser/ui.mjs, Debian's chromium via
playwright-core): a flow as its stack of blocks, statistics and the live
executions updating as requests arrive."""
import os

from harness import Node, check, counter_project, run, tmpdir
from test_todomvc_browser import BrowserScript

FLAKY_COUNTER = """export default function (input, state = {count: 0}) {
  if (input.body && input.body.fail) throw new Error('asked to fail');
  return {output: {status: 200, body: {count: state.count + 1}}, state: {count: state.count + 1}};
}
"""


def test_the_ui_shows_flows_stats_and_live_executions_edits_and_deploys_rolls_back_and_discards_an_error():
    """the page shows the counter flow's blocks, then 3 ok and 1 error, and the failing execution live; an edit made in the browser is refused with its line, then applied and run by the node; its diff is in the history, a roll back deploys the revision before, the error is discarded, the graph shows the node and a driver file's keys complete from its kind's schema"""
    node = Node([counter_project(os.path.join(tmpdir(), "counter"), function=FLAKY_COUNTER)]).start()
    browser = None
    try:
        browser = BrowserScript("ui.mjs", [f"http://{node.admin}", node.token], node.data)
        check(browser.line("the page with its blocks") == "SEND", "the script asks for requests")
        for i in range(3):
            node.request("POST", f"/count/k{i}", {})
        status, _ = node.request("POST", "/count/k9", {"fail": True})
        check(status == 500, f"the failing request: {status}")
        browser.answer("sent")
        applied = browser.line("statistics, live executions and an edit applied")
        check(applied.startswith("APPLIED "), f"the script applies an edit: {applied}")
        st, projects = node.admin_get("/api/v1/projects")
        check(projects[0]["revision"].startswith(applied.split()[1]), f"the node runs the edit: {projects}")
        status, body = node.request("POST", "/count/k0", {})
        check(status == 200 and body["count"] == 2, f"the edited function counts on: {status} {body}")
        browser.answer("checked")
        browser.passes("history, roll back, errors, graph and completion")
        st, projects = node.admin_get("/api/v1/projects")
        check(not projects[0]["revision"].startswith(applied.split()[1]), "the roll back deployed a new revision")
        st, queued = node.admin_get("/api/v1/errors")
        check(queued == [], f"the discarded error is gone: {queued}")
    finally:
        if browser:
            browser.stop()
        node.stop()


if __name__ == "__main__":
    run([test_the_ui_shows_flows_stats_and_live_executions_edits_and_deploys_rolls_back_and_discards_an_error])
