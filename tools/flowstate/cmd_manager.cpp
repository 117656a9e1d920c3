// flowstate manager: the hosted service's control plane (docs/hosted.md).
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <iostream>

#include <unistd.h>

#include "commands.hpp"
#include "flowstate/manager/manager.hpp"

namespace flowstate::cli {
namespace {

volatile std::sig_atomic_t stop_requested = 0;
void on_signal(int) { stop_requested = 1; }

}  // namespace

void register_manager_commands(CLI::App& app) {
  auto* cmd = app.add_subcommand("manager", "The hosted service's control plane (docs/hosted.md)");
  cmd->require_subcommand(1);
  auto* serve = cmd->add_subcommand("serve", "Serve the control plane's API (accounts, teams, tokens, projects)");
  static manager::options o;
  serve->add_option("--listen", o.listen, "host:port (port 0 picks a free one)")->capture_default_str();
  serve->add_option("--database", o.database, "PostgreSQL, a libpq connection string (or FLOWSTATE_MANAGER_DATABASE)")
      ->envname("FLOWSTATE_MANAGER_DATABASE");
  serve->add_option("--public-url", o.public_url, "where users reach this service, for links in emails");
  serve->add_option("--mail-dir", o.mail_dir, "the file mail transport: each message written as DIR/*.eml");
  serve->add_option("--smtp", o.smtp,
                    "send mail through this SMTP relay, HOST:PORT (plain SMTP: a local relay does TLS and "
                    "authentication); with --mail-dir too, a copy of each message is kept there");
  serve->add_option("--mail-from", o.mail_from, "the sender of the service's mail")->capture_default_str();
  serve->add_option("--operator-email", o.operator_email,
                    "when no operator exists: mail this address an invitation to sign up as the first operator");
  serve->add_option("--threads", o.threads, "listener threads, each with a database connection")->capture_default_str();
  serve
      ->add_option("--requests-per-second", o.requests_per_second,
                   "requests a second from one client address (engine nodes included; 0: no limit)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  serve
      ->add_option("--node-secret", o.node_secret,
                   "what engine nodes present to check tenants' API tokens (or FLOWSTATE_NODE_SECRET)")
      ->envname("FLOWSTATE_NODE_SECRET");
  serve->add_option("--address-file", o.address_file, "write the bound address here once listening");
  serve
      ->add_option("--invoice-every", o.invoice_every_s,
                   "seconds between runs of the previous month's invoices while paid plans are on (one at start "
                   "too); 0: only when an operator asks")
      ->capture_default_str();
  serve->add_option("--stripe-api", o.stripe_api, "Stripe's API (a stand-in's address in tests)")
      ->capture_default_str();
  serve
      ->add_option("--stripe-secret-key", o.stripe_secret_key,
                   "Stripe's secret key, sk_... (or FLOWSTATE_STRIPE_SECRET_KEY); none: nothing is charged")
      ->envname("FLOWSTATE_STRIPE_SECRET_KEY");
  serve
      ->add_option("--stripe-webhook-secret", o.stripe_webhook_secret,
                   "the signing secret of the webhook endpoint, whsec_... (or FLOWSTATE_STRIPE_WEBHOOK_SECRET)")
      ->envname("FLOWSTATE_STRIPE_WEBHOOK_SECRET");
  serve->callback([] {
    if (o.public_url.empty()) o.public_url = "http://" + o.listen;
    auto s = manager::server::start(o);
    if (!s) {
      std::cerr << "flowstate manager: " << s.error() << "\n";
      std::exit(1);
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::printf("flowstate manager: listening on %s\n", (*s)->address().c_str());
    std::fflush(stdout);
    while (!stop_requested) ::pause();
    (*s)->stop();
  });
  auto* routes = cmd->add_subcommand("routes", "Every route of the control plane's API, one per line");
  routes->callback([] {
    for (auto& r : manager::route_list()) std::printf("%s\n", r.c_str());
  });
}

}  // namespace flowstate::cli
