"""The admin API as a client sees it: its OpenAPI description, its token,
path parameters decoded like the flow listener's, and the cap on followers
of the trace."""
import http.client
import json
import os

from harness import Node, check, counter_project, run, tmpdir

MAX_FOLLOWERS = 32  # admin_options::max_trace_followers


def admin_connection(node, timeout=30):
    host, port = node.admin.rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def test_the_openapi_description_is_served_with_schemas():
    """GET /api/v1/openapi.json: OpenAPI 3.1, every query parameter with a schema, problem+json errors"""
    node = Node([counter_project(os.path.join(tmpdir(), "described"))]).start()
    try:
        status, doc = node.admin_get("/api/v1/openapi.json")
        check(status == 200 and doc["openapi"] == "3.1.0", f"{status} {str(doc)[:200]}")
        trace = doc["paths"]["/api/v1/trace"]["get"]
        names = [p["name"] for p in trace["parameters"]]
        check({"project", "after", "follow", "limit"} <= set(names), f"the trace's parameters: {names}")
        check(all("schema" in p for op in (v for item in doc["paths"].values() for v in item.values())
                  for p in op.get("parameters", [])), "every parameter has a schema")
        errors = doc["paths"]["/api/v1/errors"]["get"]["responses"]
        check(errors["200"]["content"]["application/json"]["schema"]["items"]["$ref"] ==
              "#/components/schemas/ErrorRecord", f"{errors['200']}")
        check("application/problem+json" in errors["401"]["content"], "401 is a problem")
        check(doc["paths"]["/healthz"]["get"]["security"] == [], "/healthz needs no token")
        status, body = node.admin_get("/api/v1/cluster")
        check(status == 404 and "not in a cluster" in str(body), f"an embedded node has no cluster: {status} {body}")
    finally:
        node.stop()


def test_a_wrong_token_of_the_right_length_is_refused():
    """a guess as long as the token is refused with problem+json; unknown paths need the token too; 405 names the methods"""
    node = Node([counter_project(os.path.join(tmpdir(), "guarded"))]).start()
    try:
        guess = ("x" if node.token[0] != "x" else "y") + node.token[1:]
        conn = admin_connection(node)
        conn.request("GET", "/api/v1/projects", headers={"Authorization": f"Bearer {guess}"})
        r = conn.getresponse()
        body = json.loads(r.read())
        check(r.status == 401 and r.getheader("Content-Type") == "application/problem+json", f"{r.status} {body}")
        check(node.admin_get("/api/v1/projects")[0] == 200, "the right token passes")
        conn = admin_connection(node)
        conn.request("GET", "/api/v1/nothing-here")
        r = conn.getresponse()
        r.read()
        check(r.status == 401, f"without the token an unknown path is 401 too (no listing of routes): {r.status}")
        check(node.admin_get("/api/v1/nothing-here")[0] == 404, "with it, 404")
        conn = admin_connection(node)
        conn.request("PUT", "/api/v1/schemas", body="{}", headers={"Authorization": f"Bearer {node.token}"})
        r = conn.getresponse()
        r.read()
        check(r.status == 405 and r.getheader("Allow") == "GET, POST", f"{r.status} {r.getheaders()}")
        conn = admin_connection(node)
        conn.request("HEAD", "/healthz")
        r = conn.getresponse()
        check(r.status == 200 and r.read() == b"", f"HEAD of a route open to all, without the token: {r.status}")
        status, body = node.admin_get("/api/v1/errors?project=nosuch")
        check(status == 404 and 'no project "nosuch"' in str(body), f"an unknown project's errors: {status} {body}")
    finally:
        node.stop()


def test_state_keys_with_escaped_characters_are_found():
    """`flowstate state get` escapes the key in the path; the admin API decodes it; the key "" (a route without
    parameters) is read too"""
    node = Node([counter_project(os.path.join(tmpdir(), "spaced"), extra={
        "drivers/count.yaml": "kind: http.Request\nroutes:\n  - POST /count/{key}\n  - POST /total\n"})]).start()
    try:
        status, _ = node.request("POST", "/count/a%20b%2Fc", {})
        check(status == 200, f"{status}")
        check(node.state("counter", "counter", "a b/c") == {"count": 1}, "the state of key 'a b/c'")
        status, _ = node.request("POST", "/total", {})
        check(status == 200, f"{status}")
        check(node.state("counter", "counter", "") == {"count": 1}, "the state of key ''")
    finally:
        node.stop()


def test_followers_of_the_trace_are_capped():
    """the node streams the trace to at most 32 followers; one more gets 503 before its stream starts"""
    node = Node([counter_project(os.path.join(tmpdir(), "followed"))]).start()
    followers = []
    try:
        for _ in range(MAX_FOLLOWERS):
            conn = admin_connection(node)
            conn.request("GET", "/api/v1/trace?follow=true", headers={"Authorization": f"Bearer {node.token}"})
            r = conn.getresponse()
            check(r.status == 200, f"a follower within the cap: {r.status}")
            # The response owns the socket: dropping it closes the stream (and
            # frees its place at once).
            followers.append((conn, r))
        conn = admin_connection(node)
        conn.request("GET", "/api/v1/trace?follow=true", headers={"Authorization": f"Bearer {node.token}"})
        r = conn.getresponse()
        check(r.status == 503 and r.getheader("Retry-After"), f"one more: {r.status} {r.getheaders()}")
        body = json.loads(r.read())
        check(body["status"] == 503, f"{body}")
        check(r.getheader("Content-Type") == "application/problem+json", f"{r.getheaders()}")
        conn.close()
        status, _ = node.request("POST", "/count/k", {})
        check(status == 200, "flows still answer")
        check(node.admin_get("/api/v1/projects")[0] == 200, "the rest of the admin API still answers")
    finally:
        for conn, r in followers:
            r.close()
            conn.close()
        node.stop()


if __name__ == "__main__":
    run([test_the_openapi_description_is_served_with_schemas, test_a_wrong_token_of_the_right_length_is_refused,
         test_state_keys_with_escaped_characters_are_found, test_followers_of_the_trace_are_capped])
