"""The hosted service's console in a real browser (tests/browser/console.mjs,
Debian's chromium via playwright-core), against a real PostgreSQL, a real
node in hosted mode and a local Stripe stand-in: the first operator signs up
from the mailed invitation; Ada asks for an invitation, the operator
approves it in the browser, and Ada signs up from the mailed link; she
invites Dave and makes an API token, which `flowstate deploy` uses from the
CLI; she makes Dave a viewer; her usage shows the executions; she
subscribes to pro through Checkout, and the month's invoice, charged at the
stand-in, shows paid after the signed invoice.paid event."""
import os
import subprocess

from harness import BIN, Node, check, counter_project, run, tmpdir, wait_for
from stripe_standin import StripeStandIn
from test_manager import PASSWORD, Manager, Postgres, sign_in, sign_up
from test_todomvc_browser import BrowserScript

SECRET_KEY = "sk_test_console0123456789"
WEBHOOK_SECRET = "whsec_console0123456789"
NODE_SECRET = "node-secret-console-0123456789"


def test_a_person_is_invited_signs_up_deploys_with_a_token_subscribes_and_pays_in_the_browser():
    """request → approval in the operator's view → mailed link → sign-up → invite a developer → API token → `flowstate deploy` with it → role change → usage → paid plans on → Checkout → signed checkout.session.completed → invoice run → signed invoice.paid → dedicated plan and a pool of its own, shown on the tokens page: each step in the browser, checked against the API; then neither the password nor the token is in PostgreSQL's dump, the node's RocksDB files and logs, or the manager's files"""
    pg = Postgres()
    stripe = StripeStandIn(SECRET_KEY, WEBHOOK_SECRET)
    m = Manager(pg, ["--operator-email", "op@example.com", "--node-secret", NODE_SECRET, "--stripe-api", stripe.url,
                     "--stripe-secret-key", SECRET_KEY, "--stripe-webhook-secret", WEBHOOK_SECRET]).start()
    webhook = f"http://{m.addr}/api/v1/payments/stripe/webhook"
    node = browser = None
    try:
        node = Node([], extra_args=["--control-plane", m.addr], env={"FLOWSTATE_NODE_SECRET": NODE_SECRET}).start()
        browser = BrowserScript("console.mjs", [f"http://{m.addr}", m.invitation_for("op@example.com")], m.dir)
        check(browser.line("the approval") == "APPROVED", "the operator approved ada's request")
        browser.answer(m.invitation_for("ada@example.com"))
        check(browser.line("dave's invitation") == "INVITED", "ada invited dave")
        sign_up(m, "dave@example.com")
        browser.answer("OK")

        line = browser.line("the token")
        check(line.startswith("TOKEN fs_tok_"), f"a token from the page: {line}")
        token = line.split(" ", 1)[1]
        checkout = counter_project(os.path.join(tmpdir(), "acme.api"),
                                   extra={"drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /api/{key}\n"})
        env = dict(os.environ, FLOWSTATE_TOKEN=token, HOME=tmpdir())
        p = subprocess.run([BIN, "deploy", "-m", "first", "--project", checkout, "--admin", node.admin,
                            "--data", tmpdir()], capture_output=True, text=True, env=env, timeout=120)
        check(p.returncode == 0 and "a new project, acme.api" in p.stdout, f"deployed with the token: {p.stdout} {p.stderr}")
        for i in range(20):
            check(node.request("POST", f"/acme/api/api/k{i % 4}", {})[0] == 200, "acme.api serves")
        ada = sign_in(m, "ada@example.com")
        wait_for("acme's 20 executions reported",
                 lambda: (ada.call("GET", "/api/v1/teams/acme/usage")[1]["months"] or [{}])[0].get("executions") == 20,
                 timeout=20)
        browser.answer("DEPLOYED")

        check(browser.line("the role change") == "DEMOTED", "dave demoted in the page")
        roles = {x["email"]: x["role"] for x in ada.call("GET", "/api/v1/teams/acme")[1]["members"]}
        check(roles["dave@example.com"] == "viewer", f"dave is a viewer: {roles}")
        browser.answer("OK")

        line = browser.line("the checkout")
        check(line.startswith("CHECKOUT https://checkout.stripe.com/"), f"a checkout link: {line}")
        session = line.rsplit("/", 1)[1]
        st, answer = stripe.send(webhook, stripe.checkout_completed(session))
        check(st == 200, f"checkout.session.completed: {st} {answer}")
        browser.answer("OK")

        check(browser.line("the month asked") == "MONTH?", "the page asks which month to invoice")
        browser.answer(ada.call("GET", "/api/v1/teams/acme/usage")[1]["currentMonth"])
        check(browser.line("the invoice run") == "INVOICED", "the operator ran the invoices")
        check(len(stripe.invoices) == 1, f"one invoice at the stand-in: {stripe.invoices}")
        st, answer = stripe.send(webhook, stripe.invoice_paid(next(iter(stripe.invoices))))
        check(st == 200, f"invoice.paid: {st} {answer}")
        browser.answer("OK")
        browser.passes("the console's walk")
        invoice = ada.call("GET", "/api/v1/teams/acme/invoices")[1][0]
        check(invoice["status"] == "paid" and invoice["totalCents"] == 2000, f"the invoice: {invoice}")
        # No password or token in clear: PostgreSQL's dump, the node's RocksDB files and logs, the manager's log.
        dump = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "postgres"],
                              capture_output=True, check=True).stdout
        secrets = [PASSWORD.encode(), token.encode(), token[len("fs_tok_"):].encode()]
        found = [f"pg_dump: {x!r}" for x in secrets if x in dump]
        for root in (node.data, m.dir):
            for folder, _, files in os.walk(root):
                for name in files:
                    path = os.path.join(folder, name)
                    with open(path, "rb") as f:
                        data = f.read()
                    found += [f"{path}: {x!r}" for x in secrets if x in data]
        check(not found, f"no password or token in clear: {found}")
    finally:
        if browser:
            browser.stop()
        if node:
            node.stop()
        m.stop()
        stripe.stop()


if __name__ == "__main__":
    run([test_a_person_is_invited_signs_up_deploys_with_a_token_subscribes_and_pays_in_the_browser])
