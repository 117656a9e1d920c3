"""Billing and payment (docs/hosted.md "Billing and payment") against a real
PostgreSQL and a local stand-in for Stripe that follows its documented
requests and signs its events as Stripe does: an operator turns paid plans
on; a team's owner subscribes through Checkout; the signed
checkout.session.completed event activates it; a month's invoice has the
plan's fee and the executions past the plan at its price, credits first;
it is charged at the provider, and the signed invoice.paid event marks it
paid. Events are verified and handled once."""
import json

from harness import check, run
from stripe_standin import StripeStandIn
from test_manager import Client, Manager, Postgres, invited_by_operator, sign_up

SECRET_KEY = "sk_test_flowstate0123456789"
WEBHOOK_SECRET = "whsec_flowstate0123456789"
NODE_SECRET = "node-secret-billing-0123456789"


def node_report(m, counters, teams=()):
    """What a node sends (POST /api/v1/internal/usage)."""
    import http.client
    host, port = m.addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    import time
    body = {"node": "n1@1", "month": counters[0]["month"] if counters else time.strftime("%Y-%m", time.gmtime()),
            "counters": counters,
            "teams": [{"team": t, "used": 0} for t in teams]}
    conn.request("POST", "/api/v1/internal/usage", body=json.dumps(body),
                 headers={"Content-Type": "application/json", "X-Node-Secret": NODE_SECRET})
    r = conn.getresponse()
    answer = json.loads(r.read())
    conn.close()
    check(r.status == 200, f"the report: {r.status} {answer}")
    return answer


def test_a_team_subscribes_through_checkout_and_its_invoice_is_charged_and_marked_paid_by_signed_events():
    """paid plans off: checkout refused; on: the owner's Checkout session names the team and the plan's price; a forged signature changes nothing; checkout.session.completed activates the subscription and the plan; the same event again is a no-op; the month's invoice is the fee plus executions past plan and credits at the plan's price; it is charged at the provider once (a second run makes and charges nothing); invoice.paid marks it paid; a paying team is not capped, except by the spending limit its owner sets; customer.subscription.deleted puts it back on free"""
    pg = Postgres()
    stripe = StripeStandIn(SECRET_KEY, WEBHOOK_SECRET)
    m = Manager(pg, ["--operator-email", "op@example.com", "--node-secret", NODE_SECRET, "--stripe-api", stripe.url,
                     "--stripe-secret-key", SECRET_KEY, "--stripe-webhook-secret", WEBHOOK_SECRET]).start()
    webhook = f"http://{m.addr}/api/v1/payments/stripe/webhook"
    try:
        operator = sign_up(m, "op@example.com", team="ops")
        ada = invited_by_operator(m, operator, "ada@example.com", "acme")
        st, body, _, _ = ada.call("POST", "/api/v1/teams/acme/checkout", {"plan": "pro"})
        check(st == 409 and "not enabled" in body["detail"], f"no checkout while paid plans are off: {st} {body}")
        check(operator.call("PUT", "/api/v1/operator/billing", {"paidEnabled": True})[1]["paidEnabled"] is True,
              "the operator turns paid plans on")
        check(operator.call("PUT", "/api/v1/operator/plans/pro", {"stripePrice": "price_pro_monthly"})[0] == 200,
              "the pro plan's price at Stripe")

        st, body, _, _ = ada.call("POST", "/api/v1/teams/acme/checkout", {"plan": "pro"})
        check(st == 201 and body["url"].startswith("https://checkout.stripe.com/"), f"a checkout session: {st} {body}")
        session = stripe.sessions[body["session"]]
        team_id = pg.sql("SELECT id FROM teams WHERE name = 'acme'")[0][0]
        check(session["client_reference_id"] == team_id and session["price"] == "price_pro_monthly"
              and session["customer_email"] == "ada@example.com" and session["mode"] == "subscription",
              f"the session names the team, the price and the owner: {session}")
        check(ada.call("GET", "/api/v1/teams/acme/subscription")[1]["status"] == "pending", "pending until paid")

        event = stripe.checkout_completed(body["session"])
        st, answer = stripe.send(webhook, event, secret="whsec_forged")
        check(st == 400, f"a forged signature is refused: {st} {answer}")
        st, answer = stripe.send(webhook, event, t=1000000000)
        check(st == 400 and "timestamp" in answer["detail"], f"an old event is refused: {st} {answer}")
        check(ada.call("GET", "/api/v1/teams/acme/subscription")[1]["status"] == "pending", "nothing changed")
        st, answer = stripe.send(webhook, event)
        check(st == 200, f"the signed event: {st} {answer}")
        sub = ada.call("GET", "/api/v1/teams/acme/subscription")[1]
        check(sub["status"] == "active" and sub["plan"] == "pro", f"the subscription is active: {sub}")
        check(ada.call("GET", "/api/v1/teams/acme/plan")[1]["name"] == "pro", "the team is on pro")
        pg.sql("UPDATE teams SET plan = 'premium' WHERE name = 'acme'")
        st, answer = stripe.send(webhook, event)
        check(st == 200 and answer == {"duplicate": True}, f"the same event again: {st} {answer}")
        check(ada.call("GET", "/api/v1/teams/acme/plan")[1]["name"] == "premium", "a repeat changes nothing")
        pg.sql("UPDATE teams SET plan = 'pro' WHERE name = 'acme'")

        # A month: 1,500,000 executions; 100,000 credits; pro includes 1,000,000 at $20 per million past it.
        month = "2026-11"
        check(operator.call("POST", "/api/v1/operator/teams/acme/credits",
                            {"executions": 100000, "reason": "launch"})[0] == 201, "credits")
        node_report(m, [{"project": "acme.shop", "month": month, "group": g, "executions": 750000} for g in (3, 7)])
        st, run_1, _, _ = operator.call("POST", "/api/v1/operator/invoices", {"month": month})
        check(st == 200 and run_1["made"] == 1 and run_1["charged"] == 1 and run_1["problems"] == "",
              f"one invoice made and charged: {st} {run_1}")
        st, invoices, _, _ = ada.call("GET", "/api/v1/teams/acme/invoices")
        inv = invoices[0]
        check(inv["executions"] == 1500000 and inv["creditsUsed"] == 100000 and inv["included"] == 1000000
              and inv["overPlan"] == 400000 and inv["planFeeCents"] == 2000 and inv["overageCents"] == 800
              and inv["totalCents"] == 2800 and inv["status"] == "open",
              f"fee $20 + 400,000 past the plan and credits at $20/M = $28.00: {inv}")
        items = [f for p, f in stripe.requests if p == "/v1/invoiceitems"]
        check(len(items) == 1 and items[0]["amount"] == "2800" and items[0]["currency"] == "usd"
              and items[0]["customer"] == event["data"]["object"]["customer"], f"charged at Stripe: {items}")
        provider_invoice = inv["providerInvoice"]
        check(stripe.invoices[provider_invoice]["metadata"] == {"flowstate_invoice": str(inv["id"])}
              and stripe.invoices[provider_invoice]["status"] == "open" and
              stripe.invoices[provider_invoice]["amount_due"] == 2800, f"finalized: {stripe.invoices}")
        st, run_2, _, _ = operator.call("POST", "/api/v1/operator/invoices", {"month": month})
        check(run_2["made"] == 0 and run_2["charged"] == 0, f"a second run makes and charges nothing: {run_2}")
        check(len([p for p, _ in stripe.requests if p == "/v1/invoiceitems"]) == 1, "Stripe was asked once")

        st, answer = stripe.send(webhook, stripe.invoice_paid(provider_invoice))
        check(st == 200, f"invoice.paid: {st} {answer}")
        inv = ada.call("GET", "/api/v1/teams/acme/invoices")[1][0]
        check(inv["status"] == "paid" and inv["paidAt"], f"the invoice is paid: {inv}")

        # Paying per execution past the plan: not capped.
        this_month = ada.call("GET", "/api/v1/teams/acme/usage")[1]["currentMonth"]
        lease = node_report(m, [{"project": "acme.shop", "month": this_month, "group": 1, "executions": 2000000}],
                            teams=["acme"])["leases"][0]
        check(lease["lease"] > 0 and lease["capReached"] is False, f"a paying team past its plan runs on: {lease}")
        # Up to its spending limit: $24 a month is the $20 fee and 200,000 executions past the plan at $20/M.
        st, body, _, _ = ada.call("PUT", "/api/v1/teams/acme/spending-limit", {"cents": 2400})
        check(st == 200 and body == {"spendingLimitCents": 2400}, f"the owner sets a spending limit: {st} {body}")
        check(ada.call("GET", "/api/v1/teams/acme/subscription")[1]["spendingLimitCents"] == 2400, "it is shown")
        lease = node_report(m, [], teams=["acme"])["leases"][0]
        check(lease["cap"] == 1200000 and lease["capReached"] is True and lease["lease"] == 0,
              f"past its spending limit the team stops: {lease}")
        check(ada.call("PUT", "/api/v1/teams/acme/spending-limit", {"cents": -1})[0] == 422, "a negative limit")
        check(ada.call("PUT", "/api/v1/teams/acme/spending-limit", {"cents": None})[0] == 200, "no limit")
        lease = node_report(m, [], teams=["acme"])["leases"][0]
        check(lease["capReached"] is False and lease["lease"] > 0, f"without a limit it runs on: {lease}")

        st, answer = stripe.send(webhook, stripe.event("customer.subscription.deleted",
                                                       {"id": event["data"]["object"]["subscription"],
                                                        "object": "subscription", "status": "canceled"}))
        check(st == 200, f"subscription deleted: {st} {answer}")
        check(ada.call("GET", "/api/v1/teams/acme/plan")[1]["name"] == "free"
              and ada.call("GET", "/api/v1/teams/acme/subscription")[1]["status"] == "canceled",
              "a canceled subscription puts the team back on free")
        lease = node_report(m, [], teams=["acme"])["leases"][0]
        check(lease["lease"] == 0 and lease["capReached"] is True, f"and free is capped again: {lease}")
        check(Client(m).call("GET", "/api/v1/teams/acme/invoices")[0] == 401, "invoices need a caller")
    finally:
        m.stop()
        stripe.stop()


def test_last_months_invoices_are_made_and_charged_by_the_service_and_a_failed_payment_is_dunned():
    """with paid plans on, the manager makes and charges the previous month's invoices by itself (--invoice-every 1: runs every second, Stripe is asked once); Stripe's signed invoice.payment_failed marks the invoice and mails the team's owner the amount and where to fix it; a later invoice.paid marks it paid"""
    import time
    from harness import wait_for
    pg = Postgres()
    stripe = StripeStandIn(SECRET_KEY, WEBHOOK_SECRET)
    m = Manager(pg, ["--operator-email", "op@example.com", "--node-secret", NODE_SECRET, "--stripe-api", stripe.url,
                     "--stripe-secret-key", SECRET_KEY, "--stripe-webhook-secret", WEBHOOK_SECRET,
                     "--invoice-every", "1"]).start()
    webhook = f"http://{m.addr}/api/v1/payments/stripe/webhook"
    try:
        operator = sign_up(m, "op@example.com", team="ops")
        ada = invited_by_operator(m, operator, "ada@example.com", "acme")
        this_month = ada.call("GET", "/api/v1/teams/acme/usage")[1]["currentMonth"]
        year, month = int(this_month[:4]), int(this_month[5:])
        last_month = f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"
        node_report(m, [{"project": "acme.shop", "month": last_month, "group": 1, "executions": 1200000}])
        time.sleep(2.5)
        check(ada.call("GET", "/api/v1/teams/acme/invoices")[1] == [], "nothing is invoiced while paid plans are off")

        check(operator.call("PUT", "/api/v1/operator/billing", {"paidEnabled": True})[0] == 200, "paid plans on")
        check(operator.call("PUT", "/api/v1/operator/plans/pro", {"stripePrice": "price_pro_monthly"})[0] == 200,
              "pro's price")
        st, body, _, _ = ada.call("POST", "/api/v1/teams/acme/checkout", {"plan": "pro"})
        check(st == 201, f"checkout: {st} {body}")
        check(stripe.send(webhook, stripe.checkout_completed(body["session"]))[0] == 200, "checkout completed")

        invoice = wait_for("last month's invoice, charged by the service", lambda: next(
            (i for i in ada.call("GET", "/api/v1/teams/acme/invoices")[1]
             if i["month"] == last_month and i["providerInvoice"]), None), timeout=20)
        check(invoice["totalCents"] == 2400 and invoice["status"] == "open",
              f"$20 + 200,000 past the plan at $20/M = $24.00, at Stripe: {invoice}")
        time.sleep(2.5)  # more runs
        check(len([p for p, _ in stripe.requests if p == "/v1/invoiceitems"]) == 1, "Stripe was asked once")
        m.log.seek(0)
        check(f"invoiced {last_month}: 1 made, 1 charged" in m.log.read(), "the manager's log says what it did")

        provider_invoice = invoice["providerInvoice"]
        failed = dict(stripe.invoices[provider_invoice], attempt_count=1, status="open")
        st, answer = stripe.send(webhook, stripe.event("invoice.payment_failed", failed))
        check(st == 200, f"invoice.payment_failed: {st} {answer}")
        invoice = ada.call("GET", "/api/v1/teams/acme/invoices")[1][0]
        check(invoice["status"] == "payment_failed" and invoice["failedPayments"] == 1,
              f"the invoice's payment failed once: {invoice}")
        mails = [t for t in m.mails_to("ada@example.com") if "payment" in t and "failed" in t]
        check(mails and "$24.00" in mails[-1] and f"/#/teams/acme/billing" in mails[-1],
              f"the owner is told the amount and where to fix it: {mails[-1:]}")
        st, answer = stripe.send(webhook, stripe.invoice_paid(provider_invoice))
        check(st == 200 and ada.call("GET", "/api/v1/teams/acme/invoices")[1][0]["status"] == "paid",
              f"paid at the next attempt: {st} {answer}")
    finally:
        m.stop()
        stripe.stop()


if __name__ == "__main__":
    run([test_a_team_subscribes_through_checkout_and_its_invoice_is_charged_and_marked_paid_by_signed_events,
         test_last_months_invoices_are_made_and_charged_by_the_service_and_a_failed_payment_is_dunned])
