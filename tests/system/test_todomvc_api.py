"""The TodoMVC example's REST API (examples/todomvc) on a real node: every
route, the 4xx answers the page shows, deterministic ids, state per list."""
import json
import os

from harness import Node, check, make_project, run, tmpdir

EXAMPLE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "todomvc"))


def example_project():
    files = {}
    for root, dirs, names in os.walk(EXAMPLE):
        dirs[:] = [d for d in dirs if d != "node_modules"]
        for name in names:
            path = os.path.join(root, name)
            with open(path) as f:
                files[os.path.relpath(path, EXAMPLE)] = f.read()
    return make_project(os.path.join(tmpdir(), "todomvc"), files)


def titles(body):
    return [(t["id"], t["title"], t["completed"]) for t in body["todos"]]


def test_every_route_changes_the_list_as_todomvc_does():
    """add, toggle, rename, toggle all, clear completed, delete and list, each answering the whole list"""
    node = Node([example_project()]).start()
    try:
        base = "/api/lists/groceries"
        status, body = node.request("GET", base)
        check((status, body) == (200, {"todos": []}), f"an unknown list is empty: {status} {body}")
        check(node.state("todos", "todos", "groceries") is None, "reading a list creates no state")

        status, body = node.request("POST", base + "/todos", {"title": "  Buy milk "})
        check(status == 201 and body["todo"] == {"id": "1", "title": "Buy milk", "completed": False},
              f"add: {status} {body}")
        node.request("POST", base + "/todos", {"title": "Buy bread"})
        status, body = node.request("POST", base + "/todos", {"title": "Walk the dog"})
        check(titles(body) == [("1", "Buy milk", False), ("2", "Buy bread", False), ("3", "Walk the dog", False)],
              f"ids count up per list: {body}")

        status, body = node.request("PATCH", base + "/todos/2", {"completed": True})
        check(status == 200 and body["todo"]["completed"] is True, f"toggle: {status} {body}")
        status, body = node.request("PATCH", base + "/todos/1", {"title": "Buy oat milk"})
        check(status == 200 and titles(body)[0] == ("1", "Buy oat milk", False), f"rename: {status} {body}")

        status, body = node.request("POST", base + "/toggle-all")
        check(status == 200 and all(t["completed"] for t in body["todos"]), f"toggle all on: {body}")
        status, body = node.request("POST", base + "/toggle-all")
        check(status == 200 and not any(t["completed"] for t in body["todos"]), f"toggle all off: {body}")
        status, body = node.request("POST", base + "/toggle-all", {"completed": True})
        check(all(t["completed"] for t in body["todos"]), f"toggle all with completed: true: {body}")
        node.request("PATCH", base + "/todos/3", {"completed": False})

        status, body = node.request("POST", base + "/clear-completed")
        check(status == 200 and titles(body) == [("3", "Walk the dog", False)], f"clear completed: {body}")
        status, body = node.request("DELETE", base + "/todos/3")
        check((status, body) == (200, {"todos": []}), f"delete: {status} {body}")

        status, body = node.request("POST", base + "/todos", {"title": "Again"})
        check(body["todo"]["id"] == "4", f"a deleted todo's id is not reused: {body}")
        status, body = node.request("GET", "/api/lists/other")
        check(body == {"todos": []}, f"another list is separate: {body}")
        check(node.state("todos", "todos", "groceries") == {"nextId": 5, "todos": [
            {"id": "4", "title": "Again", "completed": False}]}, "the state is the list")
    finally:
        node.stop()


def test_bad_input_answers_a_problem_the_page_can_show():
    """a missing or blank title, a bad `completed`, an unknown id: 4xx problem+json, state unchanged"""
    node = Node([example_project()]).start()
    try:
        base = "/api/lists/l1"
        node.request("POST", base + "/todos", {"title": "Keep me"})
        cases = [
            ("POST", "/todos", {"name": "no title"}, 422, "Missing title"),
            ("POST", "/todos", {"title": "   "}, 422, "Empty title"),
            ("POST", "/todos", {"title": 42}, 422, "Missing title"),
            ("POST", "/todos", {"title": "x" * 501}, 422, "Title too long"),
            ("PATCH", "/todos/1", {"completed": "yes"}, 422, "Invalid completed"),
            ("PATCH", "/todos/1", {}, 422, "Nothing to change"),
            ("PATCH", "/todos/99", {"completed": True}, 404, "No such todo"),
            ("DELETE", "/todos/99", None, 404, "No such todo"),
        ]
        for method, path, body, want_status, want_title in cases:
            conn = node.connection()
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, base + path, body=None if body is None else json.dumps(body),
                         headers=headers)
            r = conn.getresponse()
            text = r.read().decode()
            conn.close()
            problem = json.loads(text)
            check(r.status == want_status, f"{method} {path} {body}: status {r.status}, expected {want_status}")
            check(r.getheader("Content-Type", "").startswith("application/problem+json"),
                  f"{method} {path}: content type {r.getheader('Content-Type')}")
            check(problem.get("title") == want_title and problem.get("status") == want_status and problem.get("detail"),
                  f"{method} {path} {body}: problem {problem}")
        check(node.state("todos", "todos", "l1") == {"nextId": 2, "todos": [
            {"id": "1", "title": "Keep me", "completed": False}]}, "bad requests changed the state")
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_every_route_changes_the_list_as_todomvc_does, test_bad_input_answers_a_problem_the_page_can_show])
