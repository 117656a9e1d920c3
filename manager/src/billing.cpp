// Billing and payment (docs/hosted.md "Billing and payment"): the
// operator's switch for paid plans, subscriptions through the payment
// provider's Checkout, monthly invoices (the plan's fee, executions past the
// plan at its per-execution price, credits first), and the provider's
// signed webhook events, each handled once.
#include <algorithm>
#include <cstdio>

#include "billing.hpp"
#include "mailer.hpp"
#include "metering.hpp"
#include "payments.hpp"
#include "pg.hpp"
#include "routes.hpp"

namespace flowstate::manager {
namespace {

http::response db_failed(const std::string& why) { return problem(503, "database unavailable", why); }

http::response get_billing(call& c) {
  auto r = c.db.exec("SELECT paid_enabled FROM billing");
  if (!r || r->empty()) return db_failed(r ? "no billing row" : r.error());
  return json(200, std::string("{\"paidEnabled\":") + (r->at(0, 0) == "t" ? "true" : "false") +
                       ",\"provider\":" + (c.s.pay ? jstr(std::string(c.s.pay->name())) : std::string("null")) + "}");
}

http::response put_billing(call& c) {
  bool enabled = false;
  if (c.body["paidEnabled"].get(enabled)) return problem(422, "invalid", "paidEnabled: true or false");
  if (enabled && !c.s.pay)
    return problem(409, "no payment provider",
                   "paid plans need a payment provider: start the manager with --stripe-secret-key and "
                   "--stripe-webhook-secret");
  auto r = c.db.exec("UPDATE billing SET paid_enabled = $1", {enabled ? "true" : "false"});
  if (!r) return db_failed(r.error());
  return get_billing(c);
}

// The team's owner subscribes it to a paid plan: a Checkout session to
// open in the browser; the subscription is active once the provider's
// checkout.session.completed event says so.
http::response start_checkout(call& c) {
  const auto plan = c.field("plan");
  auto b = c.db.exec("SELECT paid_enabled FROM billing");
  if (!b || b->empty()) return db_failed(b ? "no billing row" : b.error());
  if (b->at(0, 0) != "t") return problem(409, "paid plans are off", "the operator has not enabled paid plans yet");
  if (!c.s.pay) return problem(503, "no payment provider", "this service has no payment provider configured");
  auto p = c.db.exec("SELECT stripe_price FROM plans WHERE name = $1", {plan});
  if (!p) return db_failed(p.error());
  if (p->empty()) return problem(422, "invalid", "plan: no plan named \"" + plan + "\"");
  if (p->at(0, 0).empty())
    return problem(422, "invalid",
                   "plan \"" + plan +
                       "\" has no price at the payment provider (an operator sets "
                       "its stripePrice)");
  auto active =
      c.db.exec("SELECT plan FROM subscriptions WHERE team_id = $1 AND status = 'active'", {std::to_string(c.team)});
  if (!active) return db_failed(active.error());
  if (!active->empty() && active->at(0, 0) == plan)
    return problem(409, "already subscribed", "the team is already subscribed to \"" + plan + "\"");
  auto email = c.db.exec("SELECT email FROM accounts WHERE id = $1", {std::to_string(c.who.account)});
  if (!email || email->empty()) return db_failed(email ? "no such account" : email.error());
  const auto base = c.s.o.public_url + "/#/teams/" + c.param("team") + "/billing";
  auto session = c.s.pay->start_checkout(std::to_string(c.team), email->at(0, 0), p->at(0, 0), base + "?checkout=done",
                                         base + "?checkout=canceled");
  if (!session) return problem(502, "payment provider", session.error());
  auto w = c.db.exec(
      "INSERT INTO subscriptions (team_id, plan, status, provider, checkout_session) VALUES ($1, $2, "
      "CASE WHEN EXISTS (SELECT 1 FROM subscriptions WHERE team_id = $1 AND status = 'active') THEN 'active' "
      "ELSE 'pending' END, $3, $4) "
      "ON CONFLICT (team_id) DO UPDATE SET checkout_session = $4, updated_at = now(), "
      "plan = CASE WHEN subscriptions.status = 'active' THEN subscriptions.plan ELSE $2 END",
      {std::to_string(c.team), plan, std::string(c.s.pay->name()), session->id});
  if (!w) return db_failed(w.error());
  return json(201, "{\"session\":" + jstr(session->id) + ",\"url\":" + jstr(session->url) + "}");
}

std::string limit_json(const std::string& cents) { return cents.empty() ? "null" : cents; }

http::response get_subscription(call& c) {
  auto r = c.db.exec(
      "SELECT s.plan, s.status, s.provider, s.updated_at, coalesce(t.spending_limit_cents::text, '') FROM teams t "
      "LEFT JOIN subscriptions s ON s.team_id = t.id WHERE t.id = $1",
      {std::to_string(c.team)});
  if (!r || r->empty()) return db_failed(r ? "no team" : r.error());
  const auto limit = ",\"spendingLimitCents\":" + limit_json(r->at(0, 4));
  if (r->at(0, 1).empty()) return json(200, "{\"status\":\"none\"" + limit + "}");
  return json(200, "{\"plan\":" + jstr(r->at(0, 0)) + ",\"status\":" + jstr(r->at(0, 1)) +
                       ",\"provider\":" + jstr(r->at(0, 2)) + ",\"updatedAt\":" + jstr(r->at(0, 3)) + limit + "}");
}

// A paying team's most a month, fee included: past it, its executions stop
// as a free team's do at its plan (metering.cpp, lease_for).
http::response set_spending_limit(call& c) {
  std::string cents;
  auto v = c.body["cents"];
  if (v.error() == simdjson::NO_SUCH_FIELD) return problem(422, "invalid", "cents: the most a month, or null");
  if (!v.is_null()) {
    int64_t n = 0;
    if (v.get(n) || n < 0 || n > (int64_t{1} << 40))
      return problem(422, "invalid", "cents: a whole number of cents (0 or more), or null for no limit");
    cents = std::to_string(n);
  }
  auto r = c.db.exec("UPDATE teams SET spending_limit_cents = NULLIF($2, '')::bigint WHERE id = $1",
                     {std::to_string(c.team), cents});
  if (!r) return db_failed(r.error());
  return json(200, "{\"spendingLimitCents\":" + limit_json(cents) + "}");
}

constexpr const char* invoice_columns =
    "id, month, plan, plan_fee_cents, executions, included, credits_used, over_plan, overage_cents, total_cents, "
    "status, coalesce(provider_invoice, ''), created_at, coalesce(paid_at::text, ''), payment_attempts";

std::string invoice_json(const rows& r, std::size_t i) {
  return "{\"id\":" + r.at(i, 0) + ",\"month\":" + jstr(r.at(i, 1)) + ",\"plan\":" + jstr(r.at(i, 2)) +
         ",\"planFeeCents\":" + r.at(i, 3) + ",\"executions\":" + r.at(i, 4) + ",\"included\":" + r.at(i, 5) +
         ",\"creditsUsed\":" + r.at(i, 6) + ",\"overPlan\":" + r.at(i, 7) + ",\"overageCents\":" + r.at(i, 8) +
         ",\"totalCents\":" + r.at(i, 9) + ",\"status\":" + jstr(r.at(i, 10)) +
         ",\"providerInvoice\":" + jstr(r.at(i, 11)) + ",\"createdAt\":" + jstr(r.at(i, 12)) +
         ",\"paidAt\":" + (r.at(i, 13).empty() ? std::string("null") : jstr(r.at(i, 13))) +
         ",\"failedPayments\":" + r.at(i, 14) + "}";
}

http::response list_invoices(call& c) {
  auto r = c.db.exec(std::string("SELECT ") + invoice_columns + " FROM invoices WHERE team_id = $1 ORDER BY month DESC",
                     {std::to_string(c.team)});
  if (!r) return db_failed(r.error());
  std::string out = "[";
  for (std::size_t i = 0; i < r->all.size(); ++i) out += (i ? "," : "") + invoice_json(*r, i);
  return json(200, out + "]");
}

http::response run_invoices(call& c) {
  const auto month = c.field("month");
  if (!is_month(month)) return problem(422, "invalid", "month: YYYY-MM, the month to invoice");
  auto run = invoice_month(c.s, c.db, month);
  if (!run) return db_failed(run.error());
  return json(200, "{\"month\":" + jstr(month) + ",\"made\":" + std::to_string(run->made) +
                       ",\"charged\":" + std::to_string(run->charged) + ",\"problems\":" + jstr(run->problems) + "}");
}

// The owners of the team an invoice belongs to, told that its payment
// failed (best effort: the invoice's status says it either way).
void tell_owners_payment_failed(services& s, connection& db, const std::string& invoice) {
  auto r = db.exec(
      "SELECT a.email, t.name, i.month, i.total_cents, i.payment_attempts FROM invoices i JOIN teams t ON t.id = "
      "i.team_id JOIN memberships m ON m.team_id = t.id AND m.role = 'owner' JOIN accounts a ON a.id = m.account_id "
      "WHERE i.id::text = $1",
      {invoice});
  if (!r) return;
  for (std::size_t i = 0; i < r->all.size(); ++i) {
    const auto cents = std::stoll(r->at(i, 3));
    const auto amount =
        "$" + std::to_string(cents / 100) + "." + (cents % 100 < 10 ? "0" : "") + std::to_string(cents % 100);
    auto st = s.mail.send(r->at(i, 0), "Flowstate: the payment of team " + r->at(i, 1) + "'s invoice failed",
                          "The payment of team " + r->at(i, 1) + "'s invoice for " + r->at(i, 2) + " (" + amount +
                              ") failed (attempt " + r->at(i, 4) +
                              "). The payment provider tries again; to avoid losing the team's plan, update its "
                              "payment method: " +
                              s.o.public_url + "/#/teams/" + r->at(i, 1) + "/billing\n");
    if (!st)
      std::fprintf(stderr, "flowstate manager: mailing %s about invoice %s: %s\n", r->at(i, 0).c_str(), invoice.c_str(),
                   st.error().c_str());
  }
}

// The provider's webhook: verified by its signature, handled once per
// event id (a repeat answers 200 and changes nothing), in one transaction
// with the record of the event (a failure leaves it for the provider's retry).
http::response payment_webhook(call& c) {
  if (!c.s.pay) return problem(404, "not found", "this service has no payment provider");
  auto e = c.s.pay->verify(c.req.header("stripe-signature"), c.req.body);
  if (!e) return problem(400, "bad signature", e.error());
  std::string failed_invoice;
  auto out = transaction(c.db, [&](connection& t) -> result<std::string> {
    auto fresh = t.exec(
        "INSERT INTO payment_events (provider, event_id, type) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING "
        "RETURNING event_id",
        {std::string(c.s.pay->name()), e->id, e->type});
    if (!fresh) return fail(fresh.error());
    if (fresh->empty()) return std::string("{\"duplicate\":true}");
    if (e->type == "checkout.session.completed") {
      auto r = t.exec(
          "UPDATE subscriptions SET status = 'active', customer = $3, subscription = $4, updated_at = now() "
          "WHERE team_id::text = $1 AND checkout_session = $2 RETURNING plan",
          {e->team, e->object_id, e->customer, e->subscription});
      if (!r) return fail(r.error());
      if (!r->empty())
        if (auto p = t.exec("UPDATE teams SET plan = $2 WHERE id::text = $1", {e->team, r->at(0, 0)}); !p)
          return fail(p.error());
    } else if (e->type == "invoice.paid") {
      auto r =
          t.exec("UPDATE invoices SET status = 'paid', paid_at = now() WHERE id::text = $1 AND provider_invoice = $2",
                 {e->local_invoice, e->object_id});
      if (!r) return fail(r.error());
    } else if (e->type == "invoice.payment_failed") {
      // Dunning: the provider retries the charge; the team's owners are told.
      auto r = t.exec(
          "UPDATE invoices SET status = 'payment_failed', payment_attempts = payment_attempts + 1 WHERE id::text = "
          "$1 AND provider_invoice = $2 AND status <> 'paid' RETURNING id",
          {e->local_invoice, e->object_id});
      if (!r) return fail(r.error());
      if (!r->empty()) failed_invoice = r->at(0, 0);
    } else if (e->type == "customer.subscription.deleted") {
      auto r = t.exec(
          "UPDATE subscriptions SET status = 'canceled', updated_at = now() WHERE subscription = $1 RETURNING "
          "team_id",
          {e->object_id});
      if (!r) return fail(r.error());
      if (!r->empty())
        if (auto p = t.exec("UPDATE teams SET plan = 'free' WHERE id::text = $1", {r->at(0, 0)}); !p)
          return fail(p.error());
    }
    return std::string("{\"received\":") + jstr(e->type) + "}";
  });
  if (!out) return db_failed(out.error());
  if (!failed_invoice.empty()) tell_owners_payment_failed(c.s, c.db, failed_invoice);
  return json(200, *out);
}

}  // namespace

// Makes the month's invoice of every team that used anything or pays a
// fee (once: a team's month has one invoice), then charges those not yet
// sent to the provider, for teams whose subscription gave a customer.
result<invoice_run> invoice_month(services& s, connection& db, const std::string& month) {
  auto teams = db.exec(
      "SELECT t.id, p.name, p.executions_per_month, p.monthly_price_cents, p.overage_cents_per_million "
      "FROM teams t JOIN plans p ON p.name = t.plan ORDER BY t.id");
  if (!teams) return fail(teams.error());
  invoice_run run;
  for (std::size_t i = 0; i < teams->all.size(); ++i) {
    const int64_t team = std::stoll(teams->at(i, 0));
    auto done = transaction(db, [&](connection& t) -> result<bool> {
      if (auto lock = t.exec("SELECT id FROM teams WHERE id = $1 FOR UPDATE", {std::to_string(team)}); !lock)
        return fail(lock.error());
      auto m = settle(t, team, month);
      if (!m) return fail(m.error());
      const int64_t included = std::stoll(teams->at(i, 2)), fee = std::stoll(teams->at(i, 3));
      const int64_t per_million = std::stoll(teams->at(i, 4));
      if (m->executions == 0 && fee == 0) return false;
      const int64_t over = std::max<int64_t>(0, m->executions - m->credits_used - included);
      const int64_t overage = (over * per_million + 999999) / 1000000;  // rounded up to the cent
      auto r = t.exec(
          "INSERT INTO invoices (team_id, month, plan, plan_fee_cents, executions, included, credits_used, "
          "over_plan, overage_cents, total_cents, status) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
          "CASE WHEN $10::bigint = 0 THEN 'paid' ELSE 'open' END) ON CONFLICT (team_id, month) DO NOTHING "
          "RETURNING id",
          {std::to_string(team), month, teams->at(i, 1), std::to_string(fee), std::to_string(m->executions),
           std::to_string(included), std::to_string(m->credits_used), std::to_string(over), std::to_string(overage),
           std::to_string(fee + overage)});
      if (!r) return fail(r.error());
      return !r->empty();
    });
    if (!done) return fail(done.error());
    run.made += *done ? 1 : 0;
  }
  // Charging: open invoices not yet at the provider, of teams with a customer.
  auto b = db.exec("SELECT paid_enabled FROM billing");
  if (!b) return fail(b.error());
  if (s.pay && !b->empty() && b->at(0, 0) == "t") {
    auto open = db.exec(
        "SELECT i.id, s.customer, i.total_cents, tm.name FROM invoices i JOIN subscriptions s ON s.team_id = "
        "i.team_id JOIN teams tm ON tm.id = i.team_id WHERE i.month = $1 AND i.status = 'open' AND "
        "i.provider_invoice IS NULL AND s.customer IS NOT NULL ORDER BY i.id",
        {month});
    if (!open) return fail(open.error());
    for (std::size_t i = 0; i < open->all.size(); ++i) {
      const auto& id = open->at(i, 0);
      auto at = s.pay->charge(open->at(i, 1), std::stoll(open->at(i, 2)),
                              "Flowstate, team " + open->at(i, 3) + ", " + month, id);
      if (!at) {
        run.problems += (run.problems.empty() ? "" : "; ") + ("invoice " + id + ": " + at.error());
        continue;
      }
      auto w = db.exec("UPDATE invoices SET provider_invoice = $2 WHERE id = $1", {id, *at});
      if (!w) return fail(w.error());
      ++run.charged;
    }
  }
  return run;
}

void add_billing_routes(std::vector<route>& out) {
  out.push_back({"GET", "/api/v1/operator/billing", "getBilling", "Whether paid plans are on, and the provider",
                 access::operator_only, role::none, false, get_billing});
  out.push_back({"PUT", "/api/v1/operator/billing", "setBilling", "Turn paid plans on or off", access::operator_only,
                 role::none, true, put_billing});
  out.push_back({"POST", "/api/v1/operator/invoices", "runInvoices",
                 "Make a month's invoices and charge them through the provider", access::operator_only, role::none,
                 true, run_invoices});
  out.push_back({"POST", "/api/v1/teams/{team}/checkout", "startCheckout",
                 "Subscribe the team to a paid plan: a Checkout session at the payment provider", access::session_only,
                 role::owner, true, start_checkout});
  out.push_back({"GET", "/api/v1/teams/{team}/subscription", "teamSubscription", "The team's subscription",
                 access::signed_in, role::viewer, false, get_subscription});
  out.push_back({"PUT", "/api/v1/teams/{team}/spending-limit", "setSpendingLimit",
                 "The most a paying team spends a month, fee included (null: no limit)", access::signed_in, role::owner,
                 true, set_spending_limit});
  out.push_back({"GET", "/api/v1/teams/{team}/invoices", "teamInvoices", "The team's invoices", access::signed_in,
                 role::viewer, false, list_invoices});
  out.push_back(
      {"POST", "/api/v1/payments/stripe/webhook", "stripeWebhook",
       "Stripe's events (signed): checkout completed, invoice paid, invoice payment failed, subscription deleted",
       access::anyone, role::none, false, payment_webhook});
}

}  // namespace flowstate::manager
