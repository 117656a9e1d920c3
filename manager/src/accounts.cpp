// Accounts and sign-in: requests for an invitation and the operator's
// answer, sign-up with an invitation, sessions, and who am I.
#include <algorithm>

#include "mailer.hpp"
#include "pg.hpp"
#include "routes.hpp"

namespace flowstate::manager {
namespace {

std::string lower(std::string s) { return lower_email(std::move(s)); }

http::response db_failed(const std::string& why) { return problem(503, "database unavailable", why); }

// A new session for `account`: its cookie and CSRF token, answered.
http::response signed_in(call& c, int64_t account, int status) {
  const auto token = new_secret("fs_ses_"), csrf = new_secret("");
  auto r = c.db.exec(
      "INSERT INTO sessions (token_hash, account_id, csrf, expires_at) VALUES ($1, $2, $3, now() + make_interval(hours "
      "=> $4::int))",
      {secret_hash(token), std::to_string(account), csrf, std::to_string(c.s.o.session_hours)});
  if (!r) return db_failed(r.error());
  auto out = json(status, "{\"account\":" + std::to_string(account) + ",\"csrf\":" + jstr(csrf) + "}");
  out.headers.emplace_back("Set-Cookie", session_cookie(token, c.s.o.session_hours * 3600));
  return out;
}

http::response request_invitation(call& c) {
  const auto email = lower(c.field("email")), name = c.field("name"), note = c.field("note");
  if (!plausible_email(email)) return problem(422, "invalid", "email: expected an address like ada@example.com");
  if (name.empty() || name.size() > 200) return problem(422, "invalid", "name: expected 1 to 200 characters");
  if (note.size() > 2000) return problem(422, "invalid", "note: at most 2000 characters");
  auto r = c.db.exec("INSERT INTO invitation_requests (email, name, note) VALUES ($1, $2, $3) RETURNING id",
                     {email, name, note});
  if (!r) return db_failed(r.error());
  return json(202, "{\"id\":" + r->at(0, 0) + ",\"status\":\"pending\"}");
}

http::response list_invitation_requests(call& c) {
  auto r = c.db.exec(
      "SELECT id, email, name, note, status, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
      "FROM invitation_requests ORDER BY id");
  if (!r) return db_failed(r.error());
  std::string out = "[";
  for (std::size_t i = 0; i < r->all.size(); ++i)
    out += std::string(i ? "," : "") + "{\"id\":" + r->at(i, 0) + ",\"email\":" + jstr(r->at(i, 1)) +
           ",\"name\":" + jstr(r->at(i, 2)) + ",\"note\":" + jstr(r->at(i, 3)) + ",\"status\":" + jstr(r->at(i, 4)) +
           ",\"createdAt\":" + jstr(r->at(i, 5)) + "}";
  return json(200, out + "]");
}

http::response decide(call& c, bool approve) {
  auto r = c.db.exec(
      "UPDATE invitation_requests SET status = $2, decided_at = now(), decided_by = $3 WHERE id = $1::bigint AND "
      "status = 'pending' RETURNING email",
      {c.param("id"), approve ? "approved" : "declined", std::to_string(c.who.account)});
  if (!r) return problem(404, "not found", "no invitation request " + c.param("id"));
  if (r->empty()) return problem(409, "conflict", "invitation request " + c.param("id") + " is not pending");
  const auto email = r->at(0, 0);
  if (!approve) return json(200, "{\"declined\":" + jstr(email) + "}");
  auto link = make_invitation(c.db, c.s.o, email, 0, role::none, false, c.who.account);
  if (!link) return db_failed(link.error());
  if (auto sent = c.s.mail.send(email, "Your invitation to Flowstate",
                                "You can now sign up to Flowstate:\n\n" + *link +
                                    "\n\nThe link works once, for this address, for " +
                                    std::to_string(c.s.o.invitation_hours) + " hours.\n");
      !sent) {
    // Pending again, so that the operator can approve it once mail works.
    (void)c.db.exec("UPDATE invitation_requests SET status = 'pending', decided_at = NULL WHERE id = $1::bigint",
                    {c.param("id")});
    return problem(502, "mail not sent", sent.error() + "; the request is pending again");
  }
  return json(200, "{\"invited\":" + jstr(email) + "}");
}

http::response approve_request(call& c) { return decide(c, true); }
http::response decline_request(call& c) { return decide(c, false); }

// Sign-up with an invitation: the account, and the team it was invited to
// (or a new team of its own, named by `team`), then a session.
http::response sign_up(call& c) {
  const auto invitation = c.field("invitation"), email = lower(c.field("email")), password = c.field("password"),
             name = c.field("name"), team = c.field("team");
  if (!plausible_email(email)) return problem(422, "invalid", "email: expected an address like ada@example.com");
  if (password.size() < 10 || password.size() > 1000)
    return problem(422, "invalid", "password: expected 10 to 1000 characters");
  if (name.empty() || name.size() > 200) return problem(422, "invalid", "name: expected 1 to 200 characters");
  auto hash = hash_password(password);
  if (!hash) return problem(500, "internal error", hash.error());
  int64_t account = 0;
  http::response refused;
  auto done = transaction(c.db, [&](connection& t) -> status {
    auto inv = t.exec(
        "SELECT id, email, team_id, role, operator FROM invitations WHERE token_hash = $1 AND used_at IS NULL AND "
        "expires_at > now() FOR UPDATE",
        {secret_hash(invitation)});
    if (!inv) return fail(inv.error());
    if (inv->empty() || lower(inv->at(0, 1)) != email) {
      refused = problem(403, "forbidden", "this invitation is unknown, used, expired or for another address");
      return fail("refused");
    }
    const bool for_team = !inv->at(0, 2).empty();
    if (for_team) {
      auto still = inviter_may_invite(t, inv->at(0, 0));
      if (!still) return fail(still.error());
      if (!*still) {
        refused = problem(403, "forbidden", "whoever sent this invitation may no longer invite to this team");
        return fail("refused");
      }
    }
    if (!for_team && team.empty()) {
      refused = problem(422, "invalid", "team: name the team your projects will belong to (a-z, 0-9, -)");
      return fail("refused");
    }
    auto a = t.exec("INSERT INTO accounts (email, name, password_hash, operator) VALUES ($1, $2, $3, $4) RETURNING id",
                    {email, name, *hash, inv->at(0, 4) == "t" ? "true" : "false"});
    if (!a) {
      refused = t.last_error().sqlstate == "23505" ? problem(409, "conflict", "an account with this email exists")
                                                   : db_failed(a.error());
      return fail("refused");
    }
    account = std::stoll(a->at(0, 0));
    if (for_team) {
      auto m = t.exec("INSERT INTO memberships (team_id, account_id, role) VALUES ($1, $2, $3)",
                      {inv->at(0, 2), std::to_string(account), inv->at(0, 3)});
      if (!m) return fail(m.error());
    } else {
      auto made = t.exec("INSERT INTO teams (name) VALUES ($1) RETURNING id", {team});
      if (!made) {
        refused =
            t.last_error().sqlstate == "23505" ? problem(409, "conflict", "team \"" + team + "\" exists")
            : t.last_error().sqlstate == "23514"
                ? problem(422, "invalid", "team: 2 to 39 characters of a-z, 0-9 and -, starting with a letter or digit")
                : db_failed(made.error());
        return fail("refused");
      }
      auto m = t.exec("INSERT INTO memberships (team_id, account_id, role) VALUES ($1, $2, 'owner')",
                      {made->at(0, 0), std::to_string(account)});
      if (!m) return fail(m.error());
    }
    auto used = t.exec("UPDATE invitations SET used_at = now(), used_by = $2 WHERE id = $1",
                       {inv->at(0, 0), std::to_string(account)});
    if (!used) return fail(used.error());
    return status::success();
  });
  if (!done) return refused.status != 200 ? refused : db_failed(done.error());
  return signed_in(c, account, 201);
}

http::response sign_in_locked(call& c, const std::string& email, const std::string& password);

http::response sign_in(call& c) {
  const auto email = lower(c.field("email")), password = c.field("password");
  // Attempts for one address run one at a time (across managers too), so
  // parallel guesses cannot all pass the count before any failure is kept.
  if (auto b = c.db.exec("BEGIN"); !b) return db_failed(b.error());
  auto out = sign_in_locked(c, email, password);
  (void)c.db.exec(out.status == 503 ? "ROLLBACK" : "COMMIT");
  return out;
}

http::response sign_in_locked(call& c, const std::string& email, const std::string& password) {
  if (auto l = c.db.exec("SELECT pg_advisory_xact_lock(hashtext($1))", {email}); !l) return db_failed(l.error());
  auto recent = c.db.exec(
      "SELECT count(*), ceil(extract(epoch FROM min(at) + make_interval(secs => $2::int) - now())) FROM "
      "sign_in_failures WHERE email = $1 AND at > now() - make_interval(secs => $2::int)",
      {email, std::to_string(c.s.o.sign_in_window_s)});
  if (!recent) return db_failed(recent.error());
  if (std::stoi(recent->at(0, 0)) >= c.s.o.sign_in_failures) {
    auto out = problem(429, "too many attempts",
                       "too many failed sign-ins for this address: try again later, or reset the password");
    out.headers.emplace_back("Retry-After", recent->at(0, 1).empty() ? "60" : recent->at(0, 1));
    return out;
  }
  auto a = c.db.exec("SELECT id, password_hash FROM accounts WHERE email = $1", {email});
  if (!a) return db_failed(a.error());
  // The same work and the same answer whether the address is known or not.
  static const std::string dummy = [] {
    auto h = hash_password("not a password of anyone");
    return h ? *h : std::string();
  }();
  const bool ok = password_matches(a->empty() ? dummy : a->at(0, 1), password) && !a->empty();
  if (!ok) {
    (void)c.db.exec("INSERT INTO sign_in_failures (email, address) VALUES ($1, $2)", {email, c.client_address()});
    return problem(401, "sign-in refused", "wrong email or password");
  }
  (void)c.db.exec("DELETE FROM sign_in_failures WHERE email = $1", {email});
  // Now and then, what no longer counts: expired sessions, failures past the window.
  (void)c.db.exec("DELETE FROM sessions WHERE expires_at < now() - interval '1 day'");
  (void)c.db.exec("DELETE FROM sign_in_failures WHERE at < now() - make_interval(secs => $1::int)",
                  {std::to_string(c.s.o.sign_in_window_s)});
  return signed_in(c, std::stoll(a->at(0, 0)), 200);
}

http::response sign_out(call& c) {
  auto r = c.db.exec("DELETE FROM sessions WHERE token_hash = $1",
                     {secret_hash(cookie_value(c.req.header("cookie"), "fs_session"))});
  if (!r) return db_failed(r.error());
  auto out = json(204, "");
  out.headers.emplace_back("Set-Cookie", session_cookie("", 0));
  return out;
}

http::response healthz(call& c) {
  auto r = c.db.exec("SELECT 1");
  if (!r) return db_failed(r.error());
  return json(200, "{\"status\":\"ok\"}");
}

http::response me(call& c) {
  auto a = c.db.exec("SELECT email, name, operator FROM accounts WHERE id = $1", {std::to_string(c.who.account)});
  if (!a || a->empty()) return db_failed(a ? "no account" : a.error());
  auto teams = c.db.exec(
      "SELECT t.id, t.name, m.role FROM memberships m JOIN teams t ON t.id = m.team_id WHERE m.account_id = $1 ORDER "
      "BY t.name",
      {std::to_string(c.who.account)});
  if (!teams) return db_failed(teams.error());
  std::string list;
  for (std::size_t i = 0; i < teams->all.size(); ++i) {
    const int64_t id = std::stoll(teams->at(i, 0));
    if (c.who.token_id && id != c.who.token_team) continue;  // a token sees its own team only
    auto r = role_in(c.db, c.who, id);
    if (!r) return db_failed(r.error());
    list += std::string(list.empty() ? "" : ",") + "{\"name\":" + jstr(teams->at(i, 1)) +
            ",\"role\":" + jstr(role_name(*r)) + "}";
  }
  return json(200,
              "{\"account\":" + std::to_string(c.who.account) + ",\"email\":" + jstr(a->at(0, 0)) + ",\"name\":" +
                  jstr(a->at(0, 1)) + ",\"operator\":" + (a->at(0, 2) == "t" && c.who.via_session ? "true" : "false") +
                  ",\"via\":" + (c.who.token_id ? "\"token\"" : "\"session\"") +
                  // A session's CSRF token: a page opened anew reads it here (same origin only).
                  (c.who.via_session ? ",\"csrf\":" + jstr(c.who.csrf) : std::string()) + ",\"teams\":[" + list + "]}");
}

}  // namespace

std::string lower_email(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
  return s;
}

bool plausible_email(const std::string& e) {
  auto at = e.find('@');
  return at != std::string::npos && at > 0 && at + 1 < e.size() && e.find('@', at + 1) == std::string::npos &&
         e.size() <= 254 && e.find_first_of(" \t\r\n<>,;:\"") == std::string::npos;
}

result<bool> inviter_may_invite(connection& db, const std::string& id) {
  auto r = db.exec(
      "SELECT EXISTS (SELECT 1 FROM invitations i JOIN memberships m ON m.team_id = i.team_id AND m.account_id = "
      "i.invited_by WHERE i.id = $1::bigint AND (m.role = 'owner' OR (m.role = 'admin' AND i.role <> 'owner')))",
      {id});
  if (!r) return fail(r.error());
  return r->at(0, 0) == "t";
}

result<std::string> make_invitation(connection& db, const options& o, const std::string& email, int64_t team, role r,
                                    bool as_operator, int64_t invited_by) {
  const auto token = new_secret("fs_inv_");
  auto ins = db.exec(
      "INSERT INTO invitations (token_hash, email, team_id, role, operator, invited_by, expires_at) VALUES ($1, $2, "
      "$3, $4, $5, $6, now() + make_interval(hours => $7::int))",
      {secret_hash(token), email, team ? param(std::to_string(team)) : std::nullopt,
       team ? param(std::string(role_name(r))) : std::nullopt, as_operator ? "true" : "false",
       invited_by ? param(std::to_string(invited_by)) : std::nullopt, std::to_string(o.invitation_hours)});
  if (!ins) return fail(ins.error());
  return o.public_url + "/#invitation=" + token;
}

result<std::string> invite_first_operator(connection& db, services& s) {
  auto any = db.exec(
      "SELECT (SELECT count(*) FROM accounts WHERE operator), (SELECT count(*) FROM invitations WHERE operator AND "
      "used_at IS NULL AND expires_at > now())");
  if (!any) return fail(any.error());
  if (any->at(0, 0) != "0" || any->at(0, 1) != "0") return std::string();
  auto link = make_invitation(db, s.o, lower(s.o.operator_email), 0, role::none, true, 0);
  if (!link) return fail(link.error());
  if (auto sent = s.mail.send(s.o.operator_email, "You are the operator of this Flowstate service",
                              "Sign up as its first operator:\n\n" + *link + "\n");
      !sent)
    return fail(sent.error());
  return *link;
}

void add_account_routes(std::vector<route>& out) {
  out.push_back({"POST", "/api/v1/invitation-requests", "requestInvitation", "Ask for an invitation to sign up",
                 access::anyone, role::none, true, request_invitation});
  out.push_back({"GET", "/api/v1/operator/invitation-requests", "listInvitationRequests",
                 "The requests for an invitation", access::operator_only, role::none, false, list_invitation_requests});
  out.push_back({"POST", "/api/v1/operator/invitation-requests/{id}/approve", "approveInvitationRequest",
                 "Approve a request: its invitation link is mailed", access::operator_only, role::none, false,
                 approve_request});
  out.push_back({"POST", "/api/v1/operator/invitation-requests/{id}/decline", "declineInvitationRequest",
                 "Decline a request", access::operator_only, role::none, false, decline_request});
  out.push_back({"POST", "/api/v1/accounts", "signUp", "Sign up with an invitation (and sign in)", access::anyone,
                 role::none, true, sign_up});
  out.push_back({"POST", "/api/v1/sessions", "signIn", "Sign in: a session cookie and its CSRF token", access::anyone,
                 role::none, true, sign_in});
  out.push_back(
      {"DELETE", "/api/v1/sessions/current", "signOut", "Sign out", access::session_only, role::none, false, sign_out});
  out.push_back({"GET", "/healthz", "health", "Whether the service answers and reaches its database", access::anyone,
                 role::none, false, healthz});
  out.push_back(
      {"GET", "/api/v1/me", "whoAmI", "The caller's account and teams", access::signed_in, role::none, false, me});
}

}  // namespace flowstate::manager
