// Stripe as the payment provider: form-encoded requests to its API with the
// secret key (Checkout sessions, invoice items, invoices), and webhook
// events verified by their Stripe-Signature (HMAC-SHA256 of "t.BODY" with
// the endpoint's secret, within a tolerance). Written to Stripe's API
// reference; tested against a local stand-in (tests/system/stripe_standin.py),
// since Stripe itself cannot be reached from the build machines.
#include <simdjson.h>
#include <sodium.h>

#include <cstdio>
#include <ctime>
#include <vector>

#include "flowstate/drivers/http_fetch.hpp"
#include "flowstate/drivers/sink.hpp"
#include "payments.hpp"

namespace flowstate::manager {
namespace {

std::string form_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

using form = std::vector<std::pair<std::string, std::string>>;

std::string encode(const form& f) {
  std::string out;
  for (auto& [k, v] : f) out += (out.empty() ? "" : "&") + form_escape(k) + "=" + form_escape(v);
  return out;
}

class stripe final : public payment_provider {
 public:
  explicit stripe(stripe_options o) : o_(std::move(o)) {}
  ~stripe() override { io_.stop(); }

  std::string_view name() const override { return "stripe"; }

  result<checkout_session> start_checkout(const std::string& team_id, const std::string& email,
                                          const std::string& price, const std::string& success_url,
                                          const std::string& cancel_url) override {
    auto r = post("/v1/checkout/sessions",
                  {{"mode", "subscription"},
                   {"line_items[0][price]", price},
                   {"line_items[0][quantity]", "1"},
                   {"success_url", success_url},
                   {"cancel_url", cancel_url},
                   {"client_reference_id", team_id},
                   {"customer_email", email}},
                  "");
    if (!r) return fail(r.error());
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    std::string_view id, url;
    if (parser.parse(*r).get(doc) || doc["id"].get(id) || doc["url"].get(url))
      return fail("Stripe's checkout session has no id or url: " + r->substr(0, 200));
    return checkout_session{std::string(id), std::string(url)};
  }

  result<std::string> charge(const std::string& customer, int64_t cents, const std::string& description,
                             const std::string& local_invoice) override {
    // Idempotency keys: a retry after a lost answer makes nothing twice.
    const std::string key = "flowstate-invoice-" + local_invoice;
    auto item = post(
        "/v1/invoiceitems",
        {{"customer", customer}, {"amount", std::to_string(cents)}, {"currency", "usd"}, {"description", description}},
        key + "-item");
    if (!item) return fail(item.error());
    auto invoice = post("/v1/invoices",
                        {{"customer", customer},
                         {"collection_method", "charge_automatically"},
                         {"pending_invoice_items_behavior", "include"},
                         {"auto_advance", "true"},
                         {"metadata[flowstate_invoice]", local_invoice}},
                        key);
    if (!invoice) return fail(invoice.error());
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    std::string_view id;
    if (parser.parse(*invoice).get(doc) || doc["id"].get(id))
      return fail("Stripe's invoice has no id: " + invoice->substr(0, 200));
    auto finalized = post("/v1/invoices/" + std::string(id) + "/finalize", {}, key + "-finalize");
    if (!finalized) return fail(finalized.error());
    return std::string(id);
  }

  result<payment_event> verify(std::string_view header, std::string_view body) override {
    if (o_.webhook_secret.empty()) return fail("no webhook secret is configured (--stripe-webhook-secret)");
    std::string t;
    std::vector<std::string> signatures;
    std::size_t at = 0;
    while (at <= header.size()) {
      auto comma = header.find(',', at);
      auto part = header.substr(at, comma == std::string_view::npos ? std::string_view::npos : comma - at);
      if (part.rfind("t=", 0) == 0) t = std::string(part.substr(2));
      if (part.rfind("v1=", 0) == 0) signatures.emplace_back(part.substr(3));
      if (comma == std::string_view::npos) break;
      at = comma + 1;
    }
    if (t.empty() || signatures.empty()) return fail("the Stripe-Signature header has no t= or v1=");
    char* end = nullptr;
    const long long when = std::strtoll(t.c_str(), &end, 10);
    if (*end || std::llabs(static_cast<long long>(std::time(nullptr)) - when) > o_.tolerance_s)
      return fail("the event's timestamp is not within " + std::to_string(o_.tolerance_s) + " s of now");
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(o_.webhook_secret.data()),
                                o_.webhook_secret.size());
    const std::string signed_prefix = t + ".";
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(signed_prefix.data()),
                                  signed_prefix.size());
    crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(body.data()), body.size());
    crypto_auth_hmacsha256_final(&st, mac);
    char hex[2 * sizeof mac + 1];
    sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
    bool ok = false;
    for (auto& s : signatures) ok = ok || (s.size() == 2 * sizeof mac && sodium_memcmp(s.data(), hex, s.size()) == 0);
    if (!ok) return fail("the signature does not match");
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(body.data(), body.size()).get(doc)) return fail("the event is not JSON");
    payment_event e;
    std::string_view s;
    if (doc["id"].get(s)) return fail("the event has no id");
    e.id = std::string(s);
    if (doc["type"].get(s)) return fail("the event has no type");
    e.type = std::string(s);
    auto object = doc["data"]["object"];
    if (!object["id"].get(s)) e.object_id = std::string(s);
    if (!object["client_reference_id"].get(s)) e.team = std::string(s);
    if (!object["customer"].get(s)) e.customer = std::string(s);
    if (!object["subscription"].get(s)) e.subscription = std::string(s);
    if (!object["metadata"]["flowstate_invoice"].get(s)) e.local_invoice = std::string(s);
    return e;
  }

 private:
  stripe_options o_;
  drivers::sinks::io_thread io_;

  // The answer's JSON text.
  result<std::string> post(const std::string& path, const form& f, const std::string& idempotency_key) {
    drivers::fetch_request r;
    r.method = "POST";
    r.url = o_.api + path;
    r.headers = {{"Authorization", "Bearer " + o_.secret_key},
                 {"Content-Type", "application/x-www-form-urlencoded"},
                 {"Stripe-Version", "2024-06-20"}};
    if (!idempotency_key.empty()) r.headers.emplace_back("Idempotency-Key", idempotency_key);
    r.body = encode(f);
    auto a = drivers::fetch(io_, r);
    if (!a) return fail("Stripe (" + o_.api + "): " + a.error());
    if (a->status < 200 || a->status > 299)
      return fail("Stripe answered " + std::to_string(a->status) + " to " + path + ": " + a->body.substr(0, 300));
    return std::move(a->body);
  }
};

}  // namespace

std::unique_ptr<payment_provider> make_stripe(const stripe_options& o) { return std::make_unique<stripe>(o); }

}  // namespace flowstate::manager
