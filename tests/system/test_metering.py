"""Metering and quotas in hosted mode (docs/hosted.md "Metering and
quotas"), against a real `flowstate manager` on a real PostgreSQL and a
real node: every execution is counted once, in the commit of its effects,
through a kill -9 of the node; a team past its plan's executions and its
credits gets 429 QuotaExceeded with Retry-After, and nothing it had been
answered for is lost; credits are used first."""
import http.client
import json
import os
import threading
import time

from harness import Node, Postgres, check, counter_project, run, tmpdir, wait_for
from test_manager import Manager, invited_by_operator, sign_up

SECRET = "node-secret-metering-0123456789"
FREE_EXECUTIONS = 1500
CREDITS = 300
ACME_REQUESTS = 8200  # with globex's 1,800: 10,000 executions


def post(node, path, idempotency_key, conn=None):
    """(status, headers, body) of one POST; raises OSError when the node is away."""
    own = conn is None
    conn = conn or node.connection(timeout=30)
    conn.request("POST", path, body="{}", headers={"Content-Type": "application/json",
                                                   "Idempotency-Key": idempotency_key})
    r = conn.getresponse()
    text = r.read().decode()
    if own:
        conn.close()
    return r.status, dict(r.getheaders()), text


def send_until_answered(node_ref, requests, threads=6):
    """POSTs every (path, idempotency key) until each got 200; a request cut
    by a kill is sent again with the same key (it ran at most once)."""
    pending = list(requests)
    lock = threading.Lock()
    statuses = {}

    deadline = time.time() + 150
    seen = {}

    def worker():
        conn = None
        while time.time() < deadline:
            with lock:
                if not pending:
                    return
                path, key = pending.pop()
            try:
                conn = conn or node_ref[0].connection(timeout=30)
                st, _, text = post(node_ref[0], path, key, conn)
            except (OSError, http.client.HTTPException):
                conn = None
                st = None
            if st == 200:
                with lock:
                    statuses[key] = st
                continue
            # 503 (the node restarting, or no current lease) and 429 while the executions left are
            # leased to another node (for a moment after the restart): sent again, as a client would.
            if st is not None and st != 503 and not (st == 429 and "leased to other nodes" in text):
                raise AssertionError(f"{path} answered {st}: {text[:300]}")
            with lock:
                seen[st] = (seen.get(st, (0, ""))[0] + 1, text[:200] if st else "no answer")
            time.sleep(0.2)
            with lock:
                pending.append((path, key))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    return pool, seen, pending


def usage_of(client, team):
    st, body, _, _ = client.call("GET", f"/api/v1/teams/{team}/usage")
    check(st == 200, f"{team}'s usage: {st} {body}")
    return body


def month_of(usage):
    months = [m for m in usage["months"] if m["month"] == usage["currentMonth"]]
    return months[0] if months else {"executions": 0, "creditsUsed": 0, "planUsed": 0, "projects": []}


def states_total(node, project, keys):
    total = 0
    for key in keys:
        state = node.state("counter", "counter", key, project=project)
        total += (state or {}).get("count", 0) if isinstance(state, dict) else 0
    return total


def test_executions_are_counted_exactly_through_a_kill_and_a_free_team_stops_at_its_plan_and_credits():
    """10,000 executions across two teams, the node killed -9 midway: the control plane counts each team's executions exactly (equal to the sum of the per-key counts the functions kept); the free team's first 300 are paid by its credits (plan untouched); at 1,500 + 300 it gets 429 QuotaExceeded with Retry-After, every request it was answered 200 for is in its state, and usage exports as CSV"""
    pg = Postgres()
    m = Manager(pg, ["--operator-email", "op@example.com", "--node-secret", SECRET]).start()
    node = None
    try:
        operator = sign_up(m, "op@example.com", team="ops")
        ada = invited_by_operator(m, operator, "ada@example.com", "acme")
        bob = invited_by_operator(m, operator, "bob@example.com", "globex")
        st, body, _, _ = operator.call("PUT", "/api/v1/operator/plans/free", {"executionsPerMonth": FREE_EXECUTIONS})
        check(st == 200, f"the operator sets the free plan's executions: {st} {body}")
        check(operator.call("PUT", "/api/v1/operator/teams/acme/plan", {"plan": "pro"})[0] == 200, "acme on pro")
        st, body, _, _ = operator.call("POST", "/api/v1/operator/teams/globex/credits",
                                       {"executions": CREDITS, "reason": "welcome"})
        check(st == 201, f"credits for globex: {st} {body}")
        check(bob.call("POST", "/api/v1/operator/teams/globex/credits", {"executions": 5, "reason": "me"})[0] == 403,
              "only an operator grants credits")

        root = tmpdir()
        shop = counter_project(os.path.join(root, "acme.shop"))
        store = counter_project(os.path.join(root, "globex.store"),
                                extra={"drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /store/{key}\n"})
        node = Node([shop, store], extra_args=["--control-plane", m.addr],
                    env={"FLOWSTATE_NODE_SECRET": SECRET}).start()
        node_ref = [node]
        acme_keys = [f"d{i}" for i in range(20)]
        globex_keys = [f"g{i}" for i in range(10)]

        # Globex's first executions: paid by its credits, none of its plan's.
        for i in range(200):
            st, _, text = post(node, f"/globex/store/store/{globex_keys[i % 10]}", f"g-{i}")
            check(st == 200, f"globex request {i}: {st} {text[:200]}")
        wait_for("globex's 200 executions reported",
                 lambda: month_of(usage_of(bob, "globex"))["executions"] == 200, timeout=20)
        month = month_of(usage_of(bob, "globex"))
        check(month["creditsUsed"] == 200 and month["planUsed"] == 0,
              f"credits are used before the plan's executions: {month}")

        # Acme's 8,200, six at a time, the node killed -9 in the middle.
        requests = [(f"/acme/shop/count/{acme_keys[i % 20]}", f"a-{i}") for i in range(ACME_REQUESTS)]
        pool, seen, pending = send_until_answered(node_ref, requests)
        wait_for("a third of acme's requests done",
                 lambda: month_of(usage_of(ada, "acme"))["executions"] >= ACME_REQUESTS // 3, timeout=120)
        node.kill9()
        node.start()
        for t in pool:
            t.join(timeout=160)
        check(not any(t.is_alive() for t in pool) and not pending,
              f"every acme request was answered; {len(pending)} not, after answers other than 200: {seen}")

        # Globex to its cap, one at a time: 429 only once plan and credits are used.
        accepted, i = 200, 200
        refusal = None
        deadline = time.time() + 90
        while accepted < FREE_EXECUTIONS + CREDITS + 50:
            check(time.time() < deadline, f"globex reaches its cap within 90 s; accepted {accepted}, last {text[:200]}")
            st, headers, text = post(node, f"/globex/store/store/{globex_keys[i % 10]}", f"g-{i}")
            if st == 200:
                accepted += 1
                i += 1
                continue
            check(st == 429, f"globex request {i}: {st} {text[:300]}")
            problem = json.loads(text)
            check(problem["title"] == "QuotaExceeded" and problem["type"] == "urn:flowstate:error:QuotaExceeded"
                  and int(headers.get("Retry-After", "0")) >= 1, f"a typed 429 with Retry-After: {headers} {text}")
            if "used every execution" in problem["detail"]:
                refusal = problem
                break
            time.sleep(int(headers["Retry-After"]))  # another lease (the killed node's) still holds some
        check(refusal is not None, f"globex is refused at its cap; accepted {accepted}")
        check(accepted == FREE_EXECUTIONS + CREDITS,
              f"globex ran exactly its plan's {FREE_EXECUTIONS} and its {CREDITS} credits: {accepted}")
        st, _, _ = post(node, f"/globex/store/store/{globex_keys[0]}", "g-0")
        check(st == 200, f"a repeat of an answered request still gets its stored answer at the cap: {st}")
        st, _, _ = post(node, "/acme/shop/count/d0", "a-after-cap")
        check(st == 200, f"acme is not held by globex's cap: {st}")

        node.wait_idle()
        acme_total = states_total(node, "acme.shop", acme_keys)
        globex_total = states_total(node, "globex.store", globex_keys)
        check(acme_total == ACME_REQUESTS + 1, f"acme's functions ran each request once: {acme_total}")
        check(globex_total == FREE_EXECUTIONS + CREDITS, f"every answered globex request is in its state: {globex_total}")
        wait_for("the last executions reported",
                 lambda: month_of(usage_of(ada, "acme"))["executions"] == acme_total, timeout=20)
        acme_month = month_of(usage_of(ada, "acme"))
        globex_month = month_of(usage_of(bob, "globex"))
        check(acme_month["executions"] == acme_total and acme_month["projects"] == [
            {"project": "acme.shop", "executions": acme_total}], f"acme's usage is exact: {acme_month}")
        check(globex_month["executions"] == globex_total and globex_month["creditsUsed"] == CREDITS
              and globex_month["planUsed"] == FREE_EXECUTIONS and globex_month["overPlan"] == 0,
              f"globex's usage is exact, credits first: {globex_month}")
        check(acme_total + globex_total == 10001, f"10,000 executions (and acme's one after the cap)")
        st, credits, _, _ = bob.call("GET", "/api/v1/teams/globex/credits")
        check(st == 200 and credits["balance"] == 0 and credits["used"] == CREDITS, f"credits spent: {credits}")
        st, csv, _, _ = ada.call("GET", "/api/v1/teams/acme/usage.csv")
        check(st == 200 and f"{usage_of(ada, 'acme')['currentMonth']},acme.shop,{acme_total}" in csv,
              f"usage as CSV: {csv!r}")
        check(bob.call("GET", "/api/v1/teams/acme/usage")[0] == 404, "another team's usage is not found")
    finally:
        if node:
            node.stop()
        m.stop()
        pg.stop()


def test_a_lone_client_that_waits_out_retry_after_near_the_cap_gets_in():
    """near its cap, a node that ran nothing lately holds no lease; a lone client turned away with 429 and Retry-After gets in when it retries after that wait (the node keeps the share its refusal asked for, instead of looking idle one report later and giving it back), twice in a row"""
    pg = Postgres()
    m = Manager(pg, ["--operator-email", "op@example.com", "--node-secret", SECRET]).start()
    node = None
    try:
        operator = sign_up(m, "op@example.com", team="ops")
        invited_by_operator(m, operator, "bob@example.com", "globex")
        check(operator.call("PUT", "/api/v1/operator/plans/free", {"executionsPerMonth": 100})[0] == 200, "cap")
        store = counter_project(os.path.join(tmpdir(), "globex.store"),
                                extra={"drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /store/{key}\n"})
        node = Node([store], extra_args=["--control-plane", m.addr], env={"FLOWSTATE_NODE_SECRET": SECRET}).start()
        for round_ in range(2):
            time.sleep(10)  # idle: past the 8 s a refusal keeps the node's share, so its lease is gone
            attempts = []
            for _ in range(3):
                st, headers, text = post(node, "/globex/store/store/k", f"lone-{round_}-{len(attempts)}")
                attempts.append(st)
                if st == 200:
                    break
                check(st in (429, 503), f"a refusal: {st} {text[:200]}")
                time.sleep(int(headers.get("Retry-After", "2")))
            check(attempts[-1] == 200 and len(attempts) <= 2,
                  f"round {round_}: the client gets in on its first retry after Retry-After: {attempts}")
    finally:
        if node:
            node.stop()
        m.stop()
        pg.stop()


def test_mqtt_sources_pause_at_the_cap_and_the_broker_keeps_the_rest_until_credits_come():
    """a free team capped at 1,000 executions gets 1,200 QoS 2 readings over MQTT, then 300 more once at its cap: what was accepted before the cap is processed (the overshoot is printed), the 300 are not read while capped and the broker keeps them for the session, and once an operator gives credits every reading is processed exactly once"""
    from test_mqtt import Publisher, check_exactly_once, iot_project
    from harness import Mosquitto
    pg = Postgres()
    broker = Mosquitto()
    m = Manager(pg, ["--operator-email", "op@example.com", "--node-secret", SECRET]).start()
    node = None
    try:
        operator = sign_up(m, "op@example.com", team="ops")
        bob = invited_by_operator(m, operator, "bob@example.com", "globex")
        check(operator.call("PUT", "/api/v1/operator/plans/free", {"executionsPerMonth": 1000})[0] == 200, "cap")
        project = iot_project(broker, qos=2, out=False)
        with open(os.path.join(project, "flowstate.yaml"), "w") as f:
            f.write("name: globex.iot\ndurability: sync\n")
        import subprocess
        from harness import GIT
        subprocess.run(GIT + ["-C", project, "commit", "-qam", "hosted name"], check=True)
        node = Node([project], extra_args=["--control-plane", m.addr, "--hosted-allow-internal", "127.0.0.1/32"],
                    env={"FLOWSTATE_NODE_SECRET": SECRET}).start()
        broker.wait_for_client("flowstate")
        pub = Publisher(broker, 2)
        pub.send(10, 0, 1200)
        executions = lambda: month_of(usage_of(bob, "globex"))["executions"]
        wait_for("the cap reached", lambda: executions() >= 1000, timeout=60)
        time.sleep(3)  # what was accepted before the pause is processed
        capped_at = executions()
        print(f"  (overshoot at the cap: {capped_at - 1000} executions, accepted before the lease ran out)")
        pub.send(10, 1200, 1500)  # published while the team is at its cap: not read
        time.sleep(3)
        check(executions() == capped_at, f"nothing more runs while capped: {capped_at} then {executions()}")
        st, body, _, _ = operator.call("POST", "/api/v1/operator/teams/globex/credits",
                                       {"executions": 1000, "reason": "more"})
        check(st == 201, f"credits: {st} {body}")
        check_exactly_once(node, pub.sent, 10)
        pub.close()
        wait_for("all 1,500 counted", lambda: executions() == 1500, timeout=20)
    finally:
        if node:
            node.stop()
        m.stop()
        broker.stop()


if __name__ == "__main__":
    run([test_executions_are_counted_exactly_through_a_kill_and_a_free_team_stops_at_its_plan_and_credits,
         test_a_lone_client_that_waits_out_retry_after_near_the_cap_gets_in,
         test_mqtt_sources_pause_at_the_cap_and_the_broker_keeps_the_rest_until_credits_come])
