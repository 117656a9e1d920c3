"""Typed blocks and the error queue (docs/types-and-errors.md): schema
violations become PreconditionFailed/PostconditionFailed with details,
replay after a fix, discard, on_error routing."""
import json

from harness import Node, check, cli, make_project, run, tmpdir, write_files

READING_SCHEMA = json.dumps({
    "type": "object", "required": ["body"],
    "properties": {"body": {"type": "object", "required": ["f"],
                            "properties": {"f": {"type": "number", "maximum": 100}}}}})
RESULT_SCHEMA = json.dumps({
    "type": "object", "required": ["status", "body"],
    "properties": {"status": {"const": 200}, "body": {"$ref": "Total.json"}}})
TOTAL_SCHEMA = json.dumps({"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}},
                           "additionalProperties": False})

SUM_JS = """export default function (input, state = { total: 0 }) {
  const total = state.total + input.body.f;
  if (input.body.f === 13) throw new Error("unlucky");
  if (input.body.f === 7) return { output: { status: 200, body: { total, extra: true } } };
  return { output: { status: 200, body: { total } }, state: { total } };
}
"""
FIXED_JS = SUM_JS.replace('if (input.body.f === 13) throw new Error("unlucky");', "")

CATCH_JS = """export default function (error, state = { seen: [] }) {
  if (error.type === "Exception" && error.input.body.f === 13 && error.key === "again") throw new Error("the handler fails too");
  return { state: { seen: state.seen.concat([error.type + ":" + error.block]) } };
}
"""


def typed_project(root, on_error=False):
    flow = "blocks:\n  - http.Request: add\n  - js.Function: sum\n    input: Reading\n    output: Result\n  - http.Response: reply\n"
    if on_error:
        flow = "on_error: failures\n" + flow
    files = {
        "flowstate.yaml": "name: typed\n",
        "flows/sum.yaml": flow,
        "drivers/add.yaml": "kind: http.Request\nmethod: POST\npath: /add/{key}\n",
        "drivers/reply.yaml": "kind: http.Response\n",
        "functions/sum.js": SUM_JS,
        "schemas/Reading.json": READING_SCHEMA,
        "schemas/Result.json": RESULT_SCHEMA,
        "schemas/Total.json": TOTAL_SCHEMA,
    }
    if on_error:
        files["flows/failures.yaml"] = "blocks:\n  - js.Function: catch\n"
        files["functions/catch.js"] = CATCH_JS
    return make_project(root, files)


def post(node, key, f):
    return node.request("POST", f"/add/{key}", {"f": f})


def test_schema_violations_are_typed_errors():
    """a bad input is PreconditionFailed naming /body/f and maximum; a bad output is PostconditionFailed"""
    node = Node([typed_project(tmpdir() + "/typed")]).start()
    try:
        status, body = post(node, "k", 5)
        check(status == 200 and body == {"total": 5}, f"valid: {status} {body}")
        status, body = post(node, "k", 500)
        check(status == 422 and body["title"] == "PreconditionFailed", f"too big: {status} {body}")
        check("/body/f" in body["detail"] and "maximum" in body["detail"], f"names the path and keyword: {body}")
        errs = body["details"]["errors"]
        check(errs[0]["instanceLocation"] == "/body/f" and errs[0]["keyword"] == "maximum", f"details: {errs}")
        status, body = post(node, "k", 7)
        check(status == 500 and body["title"] == "PostconditionFailed" and "additional" in body["detail"].lower(),
              f"output with an extra field: {status} {body}")
        status, body = post(node, "k", 13)
        check(status == 500 and body["title"] == "Exception", f"throw: {status} {body}")
        types = sorted(e["type"] for e in node.errors())
        check(types == ["Exception", "PostconditionFailed", "PreconditionFailed"], f"queue: {types}")
        check(node.state("sum", "sum", "k") == {"total": 5}, "failed messages changed no state")
    finally:
        node.stop()


def test_replay_after_a_fix_runs_again_and_leaves_the_queue():
    """after a fix is deployed, errors replay runs the input again and the error leaves the queue"""
    root = tmpdir() + "/typed"
    project = typed_project(root)
    node = Node([project]).start()
    try:
        post(node, "r", 1)
        status, _ = post(node, "r", 13)
        check(status == 500, "the throw failed")
        error = next(e for e in node.errors() if e["type"] == "Exception")
        p = cli("errors", "show", error["id"], data=node.data, check_rc=0)
        check(json.loads(p.stdout)["messageId"] == error["messageId"], f"show: {p.stdout}")
        write_files(project, {"functions/sum.js": FIXED_JS})
        cli("deploy", "-m", "no more unlucky numbers", "--project", project, data=node.data, check_rc=0)
        cli("errors", "replay", error["id"], data=node.data, check_rc=0)
        node.wait_idle()
        check(node.state("sum", "sum", "r") == {"total": 14}, f"replayed on the current state: {node.state('sum', 'sum', 'r')}")
        check(not node.errors(), "the error left the queue")
        p = cli("errors", "replay", error["id"], data=node.data)
        check(p.returncode != 0, "a replayed error cannot be replayed twice")
        post(node, "d", 500)
        bad = node.errors()[0]
        cli("errors", "discard", bad["id"], data=node.data, check_rc=0)
        check(not node.errors(), "discard removed it")
        check(node.state("sum", "sum", "d") is None, "a discarded input never ran")
    finally:
        node.stop()


def test_on_error_routes_into_another_flow_once():
    """on_error delivers errors into another flow, and an error raised there is not routed again"""
    node = Node([typed_project(tmpdir() + "/typed", on_error=True)]).start()
    try:
        post(node, "a", 500)
        post(node, "a", 13)
        node.wait_idle()
        check(node.errors() == [], f"routed errors are not queued: {node.errors()}")
        seen = node.state("failures", "catch", "a")
        check(seen == {"seen": ["PreconditionFailed:sum", "Exception:sum"]}, f"the error flow saw them: {seen}")
        post(node, "again", 13)
        node.wait_idle()
        errors = node.errors()
        check(len(errors) == 1 and errors[0]["flow"] == "failures" and errors[0]["type"] == "Exception",
              f"the handler's own error went to the queue, not routed again: {errors}")
    finally:
        node.stop()


def test_missing_type_is_refused_at_deploy():
    """a deploy naming a missing type or an invalid schema is refused with the file and reason"""
    root = tmpdir() + "/typed"
    project = typed_project(root)
    node = Node([project]).start()
    try:
        write_files(project, {"flows/sum.yaml": "blocks:\n  - http.Request: add\n  - js.Function: sum\n    input: Readin\n"
                                                "  - http.Response: reply\n"})
        p = cli("deploy", "-m", "typo", "--project", project, data=node.data)
        check(p.returncode != 0 and "flows/sum.yaml:3" in p.stderr and "Readin" in p.stderr, f"missing type: {p.stderr}")
        write_files(project, {"flows/sum.yaml": "blocks:\n  - http.Request: add\n  - js.Function: sum\n    input: Reading\n"
                                                "  - http.Response: reply\n",
                              "schemas/Reading.json": '{"type": "object", "maximum": "ten"}'})
        p = cli("deploy", "-m", "bad schema", "--project", project, data=node.data)
        check(p.returncode != 0 and "schemas/Reading.json" in p.stderr and "maximum" in p.stderr, f"bad schema: {p.stderr}")
    finally:
        node.stop()


def test_registry_types_resolve_without_network():
    """a fully qualified type comes from the node's registry (schema add), never the network"""
    root = tmpdir() + "/typed"
    project = typed_project(root)
    url = "https://schemas.example.com/Reading.json"
    write_files(root, {"flows/sum.yaml": f"blocks:\n  - http.Request: add\n  - js.Function: sum\n    input: {url}\n"
                                         "  - http.Response: reply\n"})
    write_files(root, {"reading.json": READING_SCHEMA})
    node = Node([project]).start()
    try:
        p = cli("deploy", "-m", "public type", "--project", project, data=node.data)
        check(p.returncode != 0 and "registry" in p.stderr, f"unknown URL refused: {p.stderr}")
        cli("schema", "add", url, root + "/reading.json", data=node.data, check_rc=0)
        cli("deploy", "-m", "public type", "--project", project, data=node.data, check_rc=0)
        status, body = post(node, "u", 500)
        check(status == 422 and "maximum" in body["detail"], f"validated by the registry type: {status} {body}")
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_schema_violations_are_typed_errors, test_replay_after_a_fix_runs_again_and_leaves_the_queue,
         test_on_error_routes_into_another_flow_once, test_missing_type_is_refused_at_deploy,
         test_registry_types_resolve_without_network])
