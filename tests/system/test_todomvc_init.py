"""`flowstate init`: a project from an embedded template, as a git repository
with one commit, that a node serves as it is."""
import os
import subprocess

from harness import GIT, Node, check, cli, run, tmpdir

EXAMPLES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))


def git(project, *args):
    return subprocess.run(GIT + ["-C", project] + list(args), capture_output=True, text=True, check=True).stdout


def test_init_writes_the_template_and_commits_it():
    """init --template todomvc writes the example's files, one commit on main, a clean tree"""
    project = os.path.join(tmpdir(), "new", "todos")
    p = cli("init", "--template", "todomvc", "--skip-npm", project, check_rc=0)
    check("flowstate serve" in p.stdout and "flowstate deploy" in p.stdout, f"next steps missing:\n{p.stdout}")
    for rel in ("flowstate.yaml", "flows/todos.yaml", "drivers/api.yaml", "functions/todos.js",
                "public/index.html", "public/app.js", "public/package.json", "tests/todos/add.yaml"):
        with open(os.path.join(EXAMPLES, "todomvc", rel)) as want, open(os.path.join(project, rel)) as got:
            check(want.read() == got.read(), f"{rel} differs from examples/todomvc/{rel}")
    check(git(project, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main", "the branch is main")
    check(len(git(project, "rev-list", "HEAD").split()) == 1, "one commit")
    check(git(project, "status", "--porcelain") == "", "the working tree is committed")
    check("functions/todos.js" in git(project, "ls-files"), "functions/todos.js is committed")


def test_init_refuses_a_non_empty_directory():
    """init into a non-empty directory fails and writes nothing; an unknown template is refused"""
    d = tmpdir()
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("mine\n")
    p = cli("init", "--skip-npm", d, check_rc=1)
    check("not empty" in p.stderr, f"stderr: {p.stderr}")
    check(sorted(os.listdir(d)) == ["notes.txt"], f"init wrote into a non-empty directory: {os.listdir(d)}")
    p = cli("init", "--template", "nope", "--skip-npm", os.path.join(d, "x"), check_rc=1)
    check("counter" in p.stderr and "todomvc" in p.stderr, f"the refusal names the templates: {p.stderr}")
    check(not os.path.exists(os.path.join(d, "x")), "an unknown template created a directory")


def test_counter_template_serves_with_a_chosen_name():
    """init --template counter --name tally: a node serves it and counts"""
    project = os.path.join(tmpdir(), "tally")
    cli("init", "--template", "counter", "--name", "tally", project, check_rc=0)
    with open(os.path.join(project, "flowstate.yaml")) as f:
        check("name: tally\n" in f.read(), "--name is written to flowstate.yaml")
    node = Node([project]).start()
    try:
        node.request("POST", "/count/k1", {"by": 2})
        status, body = node.request("POST", "/count/k1")
        check((status, body) == (200, {"count": 3}), f"got {status} {body}")
        check(node.state("counter", "counter", "k1", project="tally") == {"count": 3}, "state of k1")
    finally:
        node.stop()


def test_todomvc_template_serves_and_redeploys():
    """the todomvc project from init answers its API; an edited function deploys and answers"""
    project = os.path.join(tmpdir(), "todomvc")
    cli("init", "--template", "todomvc", "--skip-npm", project, check_rc=0)
    node = Node([project]).start()
    try:
        status, body = node.request("POST", "/api/lists/a/todos", {"title": "first"})
        check(status == 201, f"add: {status} {body}")
        path = os.path.join(project, "functions", "todos.js")
        with open(path) as f:
            source = f.read()
        with open(path, "w") as f:
            f.write(source.replace("title: title.value, completed: false", "title: title.value.toUpperCase(), completed: false"))
        cli("deploy", "-m", "shout", "--project", project, data=node.data, check_rc=0)
        status, body = node.request("POST", "/api/lists/a/todos", {"title": "second"})
        check(status == 201 and [t["title"] for t in body["todos"]] == ["first", "SECOND"], f"after deploy: {body}")
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_init_writes_the_template_and_commits_it, test_init_refuses_a_non_empty_directory,
         test_counter_template_serves_with_a_chosen_name, test_todomvc_template_serves_and_redeploys])
