#pragma once
// The control plane's API as one table: method, path, who may call it, and
// the handler. The dispatcher (server.cpp), the OpenAPI description and
// `flowstate manager routes` all read it, so a route cannot exist without
// its access rule.
#include <simdjson.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth.hpp"
#include "flowstate/drivers/http_types.hpp"
#include "flowstate/manager/manager.hpp"

namespace flowstate::manager {

class connection;
class mailer;

enum class access {
  anyone,         // no sign-in (public forms, sign-in itself)
  signed_in,      // a session or an API token
  session_only,   // a person in a browser (not an API token)
  operator_only,  // an operator's session
  node            // an engine node (X-Node-Secret), checking a tenant's token
};

class payment_provider;  // payments.hpp

struct services {
  const options& o;
  mailer& mail;
  payment_provider* pay = nullptr;  // none configured: invoices are made, nothing is charged
};

// One request as a handler sees it. `team`/`team_role` are set for routes
// under /teams/{team}: the dispatcher has found the team and checked the
// role (a team the caller is not in answers 404, as if it did not exist).
struct call {
  services& s;
  connection& db;
  const http::request& req;
  std::vector<std::pair<std::string, std::string>> params;
  principal who;
  int64_t team = 0;
  role team_role = role::none;
  simdjson::dom::object body;  // the JSON body, when the route takes one (has_body)
  bool has_body = false;

  std::string param(std::string_view name) const;
  // A string field of the body; "" when absent.
  std::string field(std::string_view name) const;
  std::string client_address() const;
};

using handler = http::response (*)(call& c);

struct route {
  std::string_view method, path;
  std::string_view operation_id, summary;
  access who = access::signed_in;
  role min_role = role::none;  // for /teams/{team}/... routes
  bool takes_body = false;
  handler handle = nullptr;
};

const std::vector<route>& routes();

// Answers.
http::response json(int status, std::string body);
http::response problem(int status, std::string_view title, std::string_view detail);
std::string jstr(std::string_view text);  // a JSON string literal

// The handlers' tables (accounts.cpp, teams.cpp).
void add_account_routes(std::vector<route>& out);
void add_team_routes(std::vector<route>& out);
void add_plan_routes(std::vector<route>& out);      // plans.cpp
void add_metering_routes(std::vector<route>& out);  // metering.cpp
void add_pool_routes(std::vector<route>& out);      // pools.cpp
void add_billing_routes(std::vector<route>& out);   // billing.cpp

// At start: when no operator exists, an invitation for `o.operator_email`
// to sign up as the first operator, mailed (and its link returned).
result<std::string> invite_first_operator(connection& db, services& s);
// An email address as kept: lower case; plausible: one '@', no spaces or
// line breaks, at most 254 characters.
std::string lower_email(std::string s);
bool plausible_email(const std::string& e);
// Whether whoever sent team invitation `id` may still invite with its role
// (an admin, or an owner for an owner's invitation).
result<bool> inviter_may_invite(connection& db, const std::string& id);
// A new invitation's link (mailed by the caller).
result<std::string> make_invitation(connection& db, const options& o, const std::string& email, int64_t team, role r,
                                    bool as_operator, int64_t invited_by);

}  // namespace flowstate::manager
