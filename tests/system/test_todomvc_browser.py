"""The TodoMVC page in a real browser: Debian's chromium, driven by npm's
playwright-core (tests/browser/todomvc.mjs), against a real node serving a
project made by `flowstate init --template todomvc`, restarted with kill -9
in the middle."""
import os
import shutil
import subprocess

from harness import Node, TestFailure, check, cli, run, tmpdir

HERE = os.path.dirname(os.path.abspath(__file__))
BROWSER_DIR = os.path.normpath(os.path.join(HERE, "..", "browser"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def missing(why):
    """A missing prerequisite fails the test: tools/bootstrap installs all of
    them, and a test that skips is a test that did not run."""
    raise TestFailure(f"{why}; run tools/bootstrap")


def prerequisites():
    if not os.access(CHROMIUM, os.X_OK):
        missing(f"{CHROMIUM} is missing (Debian's chromium)")
    if not shutil.which("node") or not shutil.which("npm"):
        missing("node and npm are needed to run playwright-core")
    if not os.path.isdir(os.path.join(BROWSER_DIR, "node_modules", "playwright-core")):
        p = subprocess.run(["npm", "ci", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"], cwd=BROWSER_DIR,
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            missing(f"npm ci of playwright-core in {BROWSER_DIR} failed (no registry access?):\n{p.stderr}")


def read_line(proc, errors, what):
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=60)
        errors.seek(0)
        raise TestFailure(f"{what}: the browser script ended (exit {proc.returncode}):\n{errors.read()[-4000:]}")
    return line.strip()


class BrowserScript:
    """`node SCRIPT ARGS...` in tests/browser: its lines read one by one, each
    answered through stdin; its stderr kept in LOG_DIR/browser.log (a file: a
    full pipe cannot block it) and shown when it ends early."""

    def __init__(self, script, args, log_dir):
        prerequisites()
        self.errors = open(os.path.join(log_dir, "browser.log"), "w+")
        self.proc = subprocess.Popen(["node", os.path.join(BROWSER_DIR, script)] + list(args), cwd=BROWSER_DIR,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors, text=True,
                                     env=dict(os.environ, CHROMIUM=CHROMIUM))

    def line(self, what):
        return read_line(self.proc, self.errors, what)

    def answer(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def passes(self, what):
        """The script's last line is PASS and it exits 0."""
        line = self.line(what)
        check(line == "PASS", f"unexpected line from the browser script: {line}")
        self.proc.wait(timeout=60)
        check(self.proc.returncode == 0, f"browser script exit {self.proc.returncode}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_todos_made_in_the_page_survive_a_restart():
    """add, complete, edit, delete, filter, toggle all and clear completed in the page; kill -9 the node; the todos are still there"""
    project = os.path.join(tmpdir(), "todomvc")
    cli("init", "--template", "todomvc", project, check_rc=0)
    check(os.path.exists(os.path.join(project, "public", "node_modules", "todomvc-app-css", "index.css")),
          "flowstate init did not install todomvc-app-css into public/node_modules")
    node = Node([project]).start()
    browser = None
    try:
        status, _ = node.request("GET", "/")
        check(status == 200, f"GET / answers {status}: public/index.html is not served (static files)")
        browser = BrowserScript("todomvc.mjs", [f"http://{node.listen}/"], node.data)
        line = browser.line("phase 1 (add, complete, edit, delete)")
        check(line.startswith("RESTART "), f"unexpected line from the browser script: {line}")
        list_id = line.split(" ", 1)[1]

        node.kill9()
        node.start()
        browser.answer(f"http://{node.listen}/")
        browser.passes("phase 2 (after the restart)")

        state = node.state("todos", "todos", list_id)
        titles = [(t["title"], t["completed"]) for t in state["todos"]]
        check(titles == [("Buy oat milk", False), ("Buy bread", True)], f"state of list {list_id}: {state}")
    finally:
        if browser:
            browser.stop()
        node.stop()


if __name__ == "__main__":
    prerequisites()
    run([test_todos_made_in_the_page_survive_a_restart])
