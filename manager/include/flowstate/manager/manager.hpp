#pragma once
// The hosted service's control plane (docs/hosted.md): accounts, sessions,
// teams and roles, API tokens, invitations and projects, kept in
// PostgreSQL, served as a JSON API on its own listener.
#include <memory>
#include <string>
#include <vector>

#include "flowstate/runtime/result.hpp"

namespace flowstate::manager {

struct options {
  std::string listen = "127.0.0.1:8090";
  std::string database;    // libpq connection string
  std::string public_url;  // where users reach it, for links in emails ("http://127.0.0.1:8090")
  std::string mail_dir;    // the file mail transport: one .eml file per message
  std::string smtp;        // HOST:PORT of an SMTP relay (plain SMTP, no TLS or authentication)
  std::string mail_from = "noreply@flowstate.invalid";
  std::string operator_email;  // invited as the first operator when there is none
  unsigned threads = 4;        // listener threads, each with a database connection
  // Requests per second per client address (a token bucket; 0: no limit).
  // Engine nodes are clients too: a node sends up to ten usage reports a
  // second and one token check per tenant token a second.
  double requests_per_second = 50;
  std::string address_file;  // the bound address is written here once listening
  std::string node_secret;   // engine nodes present it (X-Node-Secret) to check tenants' API tokens
  // Payments (docs/hosted.md "Billing and payment"): Stripe's API, its
  // secret key and the webhook endpoint's signing secret. No key: no
  // provider (invoices are made, nothing is charged).
  std::string stripe_api = "https://api.stripe.com";
  std::string stripe_secret_key, stripe_webhook_secret;
  int session_hours = 24 * 14;
  int invitation_hours = 24 * 7;
  int sign_in_failures = 5;    // failed sign-ins of one email within sign_in_window_s...
  int sign_in_window_s = 900;  // ...before further tries get 429
  // How often the previous month's invoices are run while paid plans are
  // on (and once at start); 0: only when an operator asks.
  unsigned invoice_every_s = 3600;
};

class server {
 public:
  // Connects, migrates the database, starts listening.
  static result<std::unique_ptr<server>> start(const options& o);
  virtual ~server() = default;
  virtual std::string address() const = 0;
  virtual void stop() = 0;
};

// Every route: "METHOD /path/{param}", from the router's own table (for
// `flowstate manager routes` and the authorization test).
std::vector<std::string> route_list();

}  // namespace flowstate::manager
