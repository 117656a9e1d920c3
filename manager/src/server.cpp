// The control plane's listener: finds the route, identifies the caller,
// applies the route's access rule (and CSRF for sessions), finds the team,
// then runs the handler with a database connection of its own.
#include <simdjson.h>

#include <sodium.h>

#include <cstdio>
#include <exception>
#include <memory>

#include "console_assets.hpp"
#include "invoicer.hpp"
#include "payments.hpp"

#include "flowstate/drivers/http_routes.hpp"
#include "flowstate/drivers/http_server.hpp"
#include "mailer.hpp"
#include "migrations.hpp"
#include "pg.hpp"
#include "routes.hpp"

namespace flowstate::manager {
namespace {

std::vector<std::string_view> segments(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t at = 1;
  while (at <= path.size()) {
    auto end = path.find('/', at);
    if (end == std::string_view::npos) end = path.size();
    out.push_back(path.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

bool match(std::string_view pattern, std::string_view path, std::vector<std::pair<std::string, std::string>>& params) {
  auto want = segments(pattern), got = segments(path);
  if (want.size() != got.size()) return false;
  std::vector<std::pair<std::string, std::string>> found;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (want[i].size() > 2 && want[i].front() == '{') {
      if (got[i].empty()) return false;
      found.emplace_back(std::string(want[i].substr(1, want[i].size() - 2)), http::percent_decode_segment(got[i]));
    } else if (want[i] != got[i]) {
      return false;
    }
  }
  params = std::move(found);
  return true;
}

http::response openapi() {
  std::string paths;
  std::vector<std::string_view> seen;
  for (auto& r : routes()) {
    if (std::find(seen.begin(), seen.end(), r.path) != seen.end()) continue;
    seen.push_back(r.path);
    if (!paths.empty()) paths += ',';
    paths += jstr(r.path) + ":{";
    bool first = true;
    for (auto& m : routes()) {
      if (m.path != r.path) continue;
      std::string method(m.method);
      for (auto& ch : method) ch = char(std::tolower(static_cast<unsigned char>(ch)));
      if (!first) paths += ',';
      first = false;
      const char* who = m.who == access::anyone          ? "anyone"
                        : m.who == access::session_only  ? "a signed-in session"
                        : m.who == access::operator_only ? "an operator's session"
                                                         : "a session or an API token";
      std::string desc = std::string("Who: ") + who;
      if (m.min_role != role::none)
        desc += std::string(", with at least the role ") + std::string(role_name(m.min_role));
      paths += jstr(method) + ":{\"operationId\":" + jstr(m.operation_id) + ",\"summary\":" + jstr(m.summary) +
               ",\"description\":" + jstr(desc) + ",\"responses\":{\"default\":{\"description\":\"JSON\"}}}";
    }
    paths += "}";
  }
  return json(200,
              "{\"openapi\":\"3.1.0\",\"info\":{\"title\":\"Flowstate control plane\",\"version\":\"1\"},"
              "\"paths\":{" +
                  paths + "}}");
}

class manager_server final : public server {
 public:
  manager_server(const options& o, std::unique_ptr<pool> db)
      : o_(o), db_(std::move(db)), mail_(o.mail_dir, o.smtp, o.mail_from) {
    if (!o.stripe_secret_key.empty())
      pay_ = make_stripe({o.stripe_api, o.stripe_secret_key, o.stripe_webhook_secret, 300});
  }

  status listen() {
    http::server_options so;
    so.listen = o_.listen;
    so.threads = o_.threads;
    so.thread_name = "fs-manager";
    so.requests_per_second = o_.requests_per_second;  // per client address: sign-in guessing is also limited per email
    auto s =
        http::server::start(so, [this](http::request&& req, http::responder_ptr reply) { reply->send(answer(req)); });
    if (!s) return fail(s.error());
    http_ = std::move(*s);
    if (!o_.address_file.empty()) {
      const auto tmp = o_.address_file + ".tmp";
      std::FILE* f = std::fopen(tmp.c_str(), "w");
      if (!f || std::fputs(http_->address().c_str(), f) < 0 || std::fclose(f) != 0 ||
          std::rename(tmp.c_str(), o_.address_file.c_str()) != 0)
        return fail("--address-file: cannot write " + o_.address_file);
    }
    return status::success();
  }

  status first_operator() {
    if (o_.operator_email.empty()) return status::success();
    auto c = db_->take();
    if (!c) return fail(c.error());
    services svc{o_, mail_, pay_.get()};
    auto link = invite_first_operator(**c, svc);
    if (!link) return fail("inviting the first operator: " + link.error());
    return status::success();
  }

  void start_invoicer() {
    if (o_.invoice_every_s == 0) return;
    invoicing_services_ = std::make_unique<services>(services{o_, mail_, pay_.get()});
    invoicer_ = std::make_unique<invoicer>(*invoicing_services_, *db_, o_.invoice_every_s);
  }

  std::string address() const override { return http_->address(); }
  void stop() override {
    if (http_) http_->stop();
  }

 private:
  http::response answer(const http::request& req) {
    std::string_view path = req.target;
    if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
    if (path == "/api/v1/openapi.json" && req.method == "GET") return openapi();
    // The console (manager/web): a page and its script, not API routes.
    if (req.method == "GET" && (path == "/" || path == "/console.js")) {
      http::response r;
      r.content_type = path == "/" ? "text/html; charset=utf-8" : "text/javascript; charset=utf-8";
      r.body = path == "/" ? console_page_html() : console_script_js();
      r.headers.emplace_back("Cache-Control", "no-cache");
      r.headers.emplace_back("Content-Security-Policy",
                             "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'");
      r.headers.emplace_back("X-Content-Type-Options", "nosniff");
      return r;
    }
    const route* found = nullptr;
    bool path_known = false;
    std::vector<std::pair<std::string, std::string>> params;
    for (auto& r : routes()) {
      std::vector<std::pair<std::string, std::string>> p;
      if (!match(r.path, path, p)) continue;
      path_known = true;
      if (r.method == req.method) {
        found = &r;
        params = std::move(p);
        break;
      }
    }
    if (!found)
      return path_known ? problem(405, "method not allowed", req.method + " is not a method of " + std::string(path))
                        : problem(404, "not found", "no route " + std::string(path));
    auto conn = db_->take();
    if (!conn) return problem(503, "database unavailable", conn.error());
    struct rollback_on_throw {
      connection& c;
      int uncaught = std::uncaught_exceptions();
      ~rollback_on_throw() {
        if (std::uncaught_exceptions() > uncaught) (void)c.exec("ROLLBACK");
      }
    } guard{**conn};
    services svc{o_, mail_, pay_.get()};
    auto who = identify(**conn, req);
    if (!who) return problem(503, "database unavailable", who.error());
    call c{svc, **conn, req, std::move(params), *who, 0, role::none, {}, false};
    const route& r = *found;
    if (r.who == access::node) {
      const auto presented = req.header("x-node-secret");
      if (o_.node_secret.empty() || presented.size() != o_.node_secret.size() ||
          sodium_memcmp(presented.data(), o_.node_secret.data(), presented.size()) != 0)
        return problem(403, "forbidden", "only an engine node (X-Node-Secret) may ask this");
    } else if (r.who != access::anyone && !c.who.signed_in())
      return problem(401, "sign in",
                     "this needs a session (POST /api/v1/sessions) or an API token (Authorization: Bearer)");
    if (r.who == access::session_only && !c.who.via_session)
      return problem(403, "forbidden", "this needs a signed-in session, not an API token");
    if (r.who == access::operator_only && !c.who.is_operator)
      return problem(403, "forbidden", "only an operator may do this");
    if (c.who.via_session && req.method != "GET" && req.header("x-csrf-token") != c.who.csrf)
      return problem(403, "forbidden", "missing or wrong X-CSRF-Token: send the csrf value of your session");
    if (r.min_role != role::none) {
      auto t = c.db.exec("SELECT id FROM teams WHERE name = $1", {c.param("team")});
      if (!t) return problem(503, "database unavailable", t.error());
      role have = role::none;
      if (!t->empty()) {
        c.team = std::stoll(t->at(0, 0));
        auto rr = role_in(c.db, c.who, c.team);
        if (!rr) return problem(503, "database unavailable", rr.error());
        have = *rr;
      }
      if (have == role::none) return problem(404, "not found", "no team \"" + c.param("team") + "\"");
      if (have < r.min_role)
        return problem(403, "forbidden",
                       "this needs the role " + std::string(role_name(r.min_role)) + " or above in team \"" +
                           c.param("team") + "\"; you have " + std::string(role_name(have)));
      c.team_role = have;
    }
    simdjson::dom::parser parser;
    if (r.takes_body) {
      simdjson::dom::object obj;
      if (parser.parse(req.body).get_object().get(obj))
        return problem(400, "bad request", "the body must be a JSON object");
      c.body = obj;
      c.has_body = true;
    }
    return r.handle(c);
  }

  options o_;
  std::unique_ptr<pool> db_;
  mailer mail_;
  std::unique_ptr<payment_provider> pay_;
  std::unique_ptr<http::server> http_;
  std::unique_ptr<services> invoicing_services_;
  std::unique_ptr<invoicer> invoicer_;  // last: stopped before what it uses goes
};

}  // namespace

std::string call::param(std::string_view name) const {
  for (auto& [k, v] : params)
    if (k == name) return v;
  return {};
}

std::string call::field(std::string_view name) const {
  std::string_view v;
  if (has_body && !body[name].get(v)) return std::string(v);
  return {};
}

std::string call::client_address() const { return std::string(req.header("x-forwarded-for")); }

http::response json(int status, std::string body) {
  http::response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http::response problem(int status, std::string_view title, std::string_view detail) {
  auto r = json(status, "{\"type\":\"about:blank\",\"title\":" + jstr(title) + ",\"status\":" + std::to_string(status) +
                            ",\"detail\":" + jstr(detail) + "}");
  r.content_type = "application/problem+json";
  return r;
}

std::string jstr(std::string_view text) {
  std::string out;
  http::append_json_string(out, text);
  return out;
}

const std::vector<route>& routes() {
  static const std::vector<route> all = [] {
    std::vector<route> out;
    add_account_routes(out);
    add_team_routes(out);
    add_plan_routes(out);
    add_metering_routes(out);
    add_pool_routes(out);
    add_billing_routes(out);
    return out;
  }();
  return all;
}

std::vector<std::string> route_list() {
  std::vector<std::string> out{"GET /api/v1/openapi.json"};
  for (auto& r : routes()) out.push_back(std::string(r.method) + " " + std::string(r.path));
  return out;
}

result<std::unique_ptr<server>> server::start(const options& o) {
  if (o.database.empty()) return fail("--database: the control plane's PostgreSQL (a libpq connection string)");
  auto db = pool::open(o.database, std::max(1u, o.threads));
  if (!db) return fail(db.error());
  {
    auto c = (*db)->take();
    if (!c) return fail(c.error());
    auto m = migrate(**c);
    if (!m) return fail("migrating the control plane's database: " + m.error());
  }
  auto s = std::make_unique<manager_server>(o, std::move(*db));
  if (auto st = s->first_operator(); !st) return fail(st.error());
  if (auto st = s->listen(); !st) return fail(st.error());
  s->start_invoicer();
  return std::unique_ptr<server>(std::move(s));
}

}  // namespace flowstate::manager
