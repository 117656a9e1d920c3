"""npm packages: a function importing a pure-JS package from the project's
node_modules is bundled at deploy; a Node built-in is refused."""
from harness import Node, check, cli, counter_project, make_project, run, tmpdir, write_files

PACKAGE = {
    "node_modules/shout/package.json": '{"name": "shout", "version": "1.0.0", "main": "index.js"}\n',
    "node_modules/shout/index.js": "module.exports = function shout(s) { return String(s).toUpperCase() + '!'; };\n",
    ".gitignore": "node_modules/\n",
}

USES_PACKAGE = """import shout from "shout";
export default function (input, state = { count: 0 }) {
  const count = state.count + 1;
  return { output: { status: 200, body: { said: shout(input.params.key), count } }, state: { count } };
}
"""

USES_FS = """import fs from "fs";
export default function (input) { return { output: { status: 200, body: fs.readFileSync("/etc/passwd", "utf8") } }; }
"""


def test_npm_package_is_bundled_and_fs_is_refused():
    """a function importing an npm package works through the node; importing fs is refused at deploy"""
    root = tmpdir() + "/npm"
    project = counter_project(root, extra=PACKAGE)
    node = Node([project]).start()
    try:
        write_files(project, {"functions/counter.js": USES_PACKAGE})
        p = cli("deploy", "-m", "use shout", "--project", project, data=node.data)
        check(p.returncode == 0, f"deploy: {p.stderr}")
        status, body = node.request("POST", "/count/hello", {})
        check(status == 200 and body == {"said": "HELLO!", "count": 1}, f"{status} {body}")
        write_files(project, {"functions/counter.js": USES_FS})
        p = cli("deploy", "-m", "read files", "--project", project, data=node.data)
        check(p.returncode != 0 and 'cannot import "fs"' in p.stderr and "functions/counter.js" in p.stderr,
              f"fs refused naming the import and file: {p.stderr}")
        status, body = node.request("POST", "/count/hello", {})
        check(body == {"said": "HELLO!", "count": 2}, f"the bundled revision keeps serving: {body}")
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_npm_package_is_bundled_and_fs_is_refused])
