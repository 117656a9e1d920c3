#pragma once
// The payment provider behind billing (docs/hosted.md "Billing and
// payment"): Checkout for subscriptions, invoices charged to the customer
// a subscription made, and signed webhook events. One implementation:
// Stripe (stripe.cpp), at --stripe-api (its public API by default; the
// tests run a local stand-in that follows Stripe's documented requests).
#include <memory>
#include <string>
#include <string_view>

#include "flowstate/runtime/result.hpp"

namespace flowstate::manager {

struct checkout_session {
  std::string id, url;
};

// A verified event from the provider's webhook.
struct payment_event {
  std::string id, type;
  std::string object_id;      // data.object.id
  std::string team;           // checkout.session.completed: client_reference_id (the team's id)
  std::string customer;       // checkout.session.completed
  std::string subscription;   // checkout.session.completed; customer.subscription.deleted: object_id
  std::string local_invoice;  // invoice.paid: metadata.flowstate_invoice
};

class payment_provider {
 public:
  virtual ~payment_provider() = default;
  virtual std::string_view name() const = 0;
  // A Checkout session subscribing `team_id` to the provider's `price`.
  virtual result<checkout_session> start_checkout(const std::string& team_id, const std::string& email,
                                                  const std::string& price, const std::string& success_url,
                                                  const std::string& cancel_url) = 0;
  // An invoice of `cents` for `customer`, finalized (the provider charges
  // it and sends invoice.paid); its id at the provider.
  virtual result<std::string> charge(const std::string& customer, int64_t cents, const std::string& description,
                                     const std::string& local_invoice) = 0;
  // The event in a webhook request, if its signature is right and recent.
  virtual result<payment_event> verify(std::string_view signature_header, std::string_view body) = 0;
};

struct stripe_options {
  std::string api = "https://api.stripe.com";
  std::string secret_key;      // sk_...
  std::string webhook_secret;  // whsec_...
  int tolerance_s = 300;       // how old a signed event may be
};
std::unique_ptr<payment_provider> make_stripe(const stripe_options& o);

}  // namespace flowstate::manager
