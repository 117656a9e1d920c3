"""Secrets (docs/secrets.md): `flowstate secret set` encrypts values into the
project's secrets.yaml with a master key kept outside git; driver
configurations use ${secret:NAME}; a whole URL may be a secret; the
plaintext appears nowhere: not in git, the data directory (store and
logs), the trace, error records, /metrics or API answers."""
import json
import os
import subprocess
import time

from harness import BIN, GIT, Node, check, cli, make_project, run, tmpdir, wait_for, write_files
from test_http_post import Target, post

TOKEN = "tok-5f1c0ffee-zebra-4417"
ALERT_JS = """export default function (input) {
  return { outputs: [{ device: input.params.key, level: input.body.level }] };
}
"""


def secret_set(project, data, name, value, env=None):
    full = dict(os.environ)
    full.update(env or {})
    p = subprocess.run([BIN, "secret", "set", name, "--project", project, "--data", data], input=value + "\n",
                       capture_output=True, text=True, env=full, timeout=60)
    check(p.returncode == 0, f"secret set {name}: {p.stderr}")
    return p


def git(project, *args):
    # The harness's identity and settings: a fresh machine has no git user.
    return subprocess.run(GIT + ["-C", project] + list(args), capture_output=True, text=True, check=True).stdout


def project_with_secrets(port):
    return make_project(tmpdir() + "/vault", {
        "flowstate.yaml": "name: vault\ndurability: sync\n",
        "flows/alerts.yaml": "blocks:\n  - http.Request: in\n  - js.Function: alert\n  - http.Post: notify\n",
        "drivers/in.yaml": "kind: http.Request\nmethod: POST\npath: /alerts/{key}\n",
        "drivers/notify.yaml": "kind: http.Post\nurl: ${secret:HOOK_URL}\nheaders:\n"
                               "  Authorization: Bearer ${secret:TOKEN}\nretry: {attempts: 2, initial: 100ms}\n",
        "functions/alert.js": ALERT_JS,
    })


def grep_tree(root, needle):
    """Files under root whose bytes hold needle."""
    found = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                with open(path, "rb") as f:
                    if needle.encode() in f.read():
                        found.append(path)
            except OSError:
                pass
    return found


def test_secrets_reach_the_driver_and_their_plaintext_appears_nowhere():
    """a webhook whose whole URL and bearer token are secrets: the target gets the right path and header; a refusal that echoes the token becomes an error record with the token redacted; a search of git log -p, the data directory (store and log), the trace, error records, /metrics and the API answers finds neither plaintext"""
    target = Target().start()
    hook_url = f"http://127.0.0.1:{target.port}/hooks/secret-path-8842"
    project = project_with_secrets(target.port)
    node = Node([project])
    secret_set(project, node.data, "HOOK_URL", hook_url)
    secret_set(project, node.data, "TOKEN", TOKEN)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "secrets")
    try:
        node.start()
        check(post(node, "d1", 5) == 202, "accepted")
        wait_for("the delivery", lambda: target.taken())
        path, headers, _ = target.requests[0]
        check(path == "/hooks/secret-path-8842" and headers.get("Authorization") == "Bearer " + TOKEN,
              f"the secrets reached the target: {path} {headers.get('Authorization')}")
        # A refusal whose answer echoes the token.
        target.refuse.add("d2")
        check(post(node, "d2", 7) == 202, "accepted")
        errors = wait_for("the SinkFailed error", lambda: [e for e in node.errors() if e["type"] == "SinkFailed"])
        shown = json.dumps(errors[0])
        check(TOKEN not in shown and "[secret TOKEN]" in shown, f"the echoed token is redacted: {shown}")
        p = cli("errors", "show", errors[0]["id"], data=node.data, check_rc=0)
        listed = cli("errors", "list", "--json", data=node.data, check_rc=0).stdout
        trace = cli("logs", "--json", data=node.data, check_rc=0).stdout
        status, metrics = node.admin_get("/metrics")
        status2, flows = node.admin_get("/api/v1/projects/vault/flows")
        node.stop()
        leaks = []
        for secret in (TOKEN, "secret-path-8842"):
            for name, text in (("errors show", p.stdout), ("errors list", listed), ("trace", trace),
                               ("metrics", metrics), ("flows", json.dumps(flows)), ("git log -p", git(project, "log", "-p"))):
                if secret in text:
                    leaks.append(f"{secret} in {name}")
            leaks += [f"{secret} in {f}" for f in grep_tree(node.data, secret)]
            leaks += [f"{secret} in {f}" for f in grep_tree(os.path.join(project, ".git"), secret)]
        check(not leaks, f"no plaintext anywhere: {leaks}")
        check("secrets.yaml" in git(project, "ls-files"), "secrets.yaml is committed")
    finally:
        node.stop()
        target.stop()


def test_a_rotated_key_still_opens_and_a_node_without_the_master_key_refuses_the_deploy_clearly():
    """rotate-key re-encrypts the values with a new data key (the old one kept): the next deploy still delivers; a node without the master key refuses the project at start, naming the driver file and how to give the key; an unknown ${secret:NAME} is refused naming it"""
    target = Target().start()
    project = project_with_secrets(target.port)
    node = Node([project])
    secret_set(project, node.data, "HOOK_URL", f"http://127.0.0.1:{target.port}/h")
    secret_set(project, node.data, "TOKEN", TOKEN)
    p = subprocess.run([BIN, "secret", "rotate-key", "--project", project, "--data", node.data], capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 0 and "data key 2" in p.stderr, f"rotated: {p.stderr}")
    text = open(os.path.join(project, "secrets.yaml")).read()
    check("id: 1" in text and "id: 2" in text and TOKEN not in text, f"both data keys kept: {text}")
    listed = subprocess.run([BIN, "secret", "list", "--project", project, "--data", node.data], capture_output=True,
                            text=True, timeout=60).stdout
    check("HOOK_URL" in listed and "TOKEN" in listed and TOKEN not in listed, f"names only: {listed}")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "rotated")
    try:
        node.start()
        check(post(node, "d1", 1) == 202, "accepted")
        wait_for("delivered after the rotation", lambda: target.taken())
        write_files(project, {"drivers/notify.yaml": "kind: http.Post\nurl: ${secret:NOPE}\n"})
        p = cli("deploy", "-m", "unknown secret", "--project", project, data=node.data)
        check(p.returncode != 0 and "drivers/notify.yaml" in p.stdout + p.stderr and "NOPE" in p.stdout + p.stderr,
              f"an unknown secret is refused: {p.stdout + p.stderr}")
        write_files(project, {"drivers/notify.yaml": open(os.path.join(project, "drivers/notify.yaml")).read()})
    finally:
        node.stop()
        target.stop()
    git(project, "checkout", "--", ".")
    p = subprocess.run([BIN, "serve", "--data", tmpdir("flowstate-data-"), "--listen", "127.0.0.1:0", "--admin-listen",
                        "127.0.0.1:0", project], capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items() if not k.startswith("FLOWSTATE_MASTER")})
    out = p.stdout + p.stderr
    check(p.returncode != 0 and "drivers/notify.yaml" in out and "master key" in out,
          f"refused without the master key: {p.returncode} {out[-500:]}")


if __name__ == "__main__":
    run([test_secrets_reach_the_driver_and_their_plaintext_appears_nowhere,
         test_a_rotated_key_still_opens_and_a_node_without_the_master_key_refuses_the_deploy_clearly])
