// Teams: members and their roles, invitations to a team, API tokens and
// projects. The dispatcher has already found the team and checked the
// route's minimum role; the rules that depend on the target (an owner is
// changed only by an owner, the last owner stays) are here.
#include "mailer.hpp"
#include "pg.hpp"
#include "routes.hpp"

namespace flowstate::manager {
namespace {

http::response db_failed(const std::string& why) { return problem(503, "database unavailable", why); }

bool valid_name(const std::string& n) {
  if (n.size() < 2 || n.size() > 39 || n.front() == '-') return false;
  for (char ch : n)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')) return false;
  return true;
}

http::response create_team(call& c) {
  const auto name = c.field("name");
  if (!valid_name(name))
    return problem(422, "invalid", "name: 2 to 39 characters of a-z, 0-9 and -, starting with a letter or digit");
  auto done = transaction(c.db, [&](connection& t) -> result<std::string> {
    auto made = t.exec("INSERT INTO teams (name) VALUES ($1) RETURNING id", {name});
    if (!made) return fail(t.last_error().sqlstate == "23505" ? "exists" : made.error());
    auto m = t.exec("INSERT INTO memberships (team_id, account_id, role) VALUES ($1, $2, 'owner')",
                    {made->at(0, 0), std::to_string(c.who.account)});
    if (!m) return fail(m.error());
    return made->at(0, 0);
  });
  if (!done)
    return done.error() == "exists" ? problem(409, "conflict", "team \"" + name + "\" exists")
                                    : db_failed(done.error());
  return json(201, "{\"name\":" + jstr(name) + ",\"role\":\"owner\"}");
}

http::response show_team(call& c) {
  auto m = c.db.exec(
      "SELECT a.id, a.email, a.name, m.role FROM memberships m JOIN accounts a ON a.id = m.account_id WHERE m.team_id "
      "= $1 ORDER BY a.id",
      {std::to_string(c.team)});
  if (!m) return db_failed(m.error());
  std::string members;
  for (std::size_t i = 0; i < m->all.size(); ++i)
    members += std::string(i ? "," : "") + "{\"account\":" + m->at(i, 0) + ",\"email\":" + jstr(m->at(i, 1)) +
               ",\"name\":" + jstr(m->at(i, 2)) + ",\"role\":" + jstr(m->at(i, 3)) + "}";
  return json(200, "{\"name\":" + jstr(c.param("team")) + ",\"role\":" + jstr(role_name(c.team_role)) +
                       ",\"members\":[" + members + "]}");
}

http::response invite_to_team(call& c) {
  const auto email = lower_email(c.field("email"));
  auto r = parse_role(c.field("role"));
  if (!r) return problem(422, "invalid", "role: owner, admin, developer or viewer");
  if (*r == role::owner && c.team_role != role::owner)
    return problem(403, "forbidden", "only an owner may invite an owner");
  if (!plausible_email(email)) return problem(422, "invalid", "email: expected an address like ada@example.com");
  auto link = make_invitation(c.db, c.s.o, email, c.team, *r, false, c.who.account);
  if (!link) return db_failed(link.error());
  if (auto sent = c.s.mail.send(email, "An invitation to the team " + c.param("team") + " on Flowstate",
                                "You are invited to the team " + c.param("team") + " as " + std::string(role_name(*r)) +
                                    ":\n\n" + *link + "\n");
      !sent)
    return problem(502, "mail not sent", sent.error());
  return json(201, "{\"email\":" + jstr(email) + ",\"role\":" + jstr(role_name(*r)) + "}");
}

http::response accept_invitation(call& c) {
  http::response refused;
  auto done = transaction(c.db, [&](connection& t) -> status {
    auto inv = t.exec(
        "SELECT i.id, i.team_id, i.role, lower(i.email) = a.email FROM invitations i, accounts a WHERE i.token_hash = "
        "$1 AND a.id = $2 AND i.used_at IS NULL AND i.expires_at > now() AND i.team_id IS NOT NULL FOR UPDATE OF i",
        {secret_hash(c.param("token")), std::to_string(c.who.account)});
    if (!inv) return fail(inv.error());
    if (!inv->empty() && inv->at(0, 3) == "t") {
      auto still = inviter_may_invite(t, inv->at(0, 0));
      if (!still) return fail(still.error());
      if (!*still) {
        refused = problem(403, "forbidden", "whoever sent this invitation may no longer invite to this team");
        return fail("refused");
      }
    }
    if (inv->empty() || inv->at(0, 3) != "t") {
      refused = problem(403, "forbidden", "this invitation is unknown, used, expired or for another address");
      return fail("refused");
    }
    auto m = t.exec(
        "INSERT INTO memberships (team_id, account_id, role) VALUES ($1, $2, $3) ON CONFLICT (team_id, account_id) DO "
        "NOTHING",
        {inv->at(0, 1), std::to_string(c.who.account), inv->at(0, 2)});
    if (!m) return fail(m.error());
    auto used = t.exec("UPDATE invitations SET used_at = now(), used_by = $2 WHERE id = $1",
                       {inv->at(0, 0), std::to_string(c.who.account)});
    if (!used) return fail(used.error());
    return status::success();
  });
  if (!done) return refused.status != 200 ? refused : db_failed(done.error());
  return json(200, "{\"joined\":true}");
}

// The member's current role, or none.
result<role> member_role(connection& db, int64_t team, const std::string& account) {
  if (account.empty() || account.size() > 18 || account.find_first_not_of("0123456789") != std::string::npos)
    return role::none;  // not an account id: no such member
  auto r = db.exec("SELECT role FROM memberships WHERE team_id = $1 AND account_id = $2::bigint",
                   {std::to_string(team), account});
  if (!r) return fail(r.error());
  return r->empty() ? role::none : parse_role(r->at(0, 0)).value_or(role::none);
}

result<int> owners(connection& db, int64_t team) {
  auto r = db.exec("SELECT count(*) FROM memberships WHERE team_id = $1 AND role = 'owner'", {std::to_string(team)});
  if (!r) return fail(r.error());
  return std::stoi(r->at(0, 0));
}

// Locks the team's row for the rest of the transaction, so that role
// changes and removals of one team run one at a time, and re-reads the
// caller's role (it may have changed since the dispatcher looked).
result<role> lock_team(connection& t, const call& c) {
  if (auto l = t.exec("SELECT 1 FROM teams WHERE id = $1 FOR UPDATE", {std::to_string(c.team)}); !l)
    return fail(l.error());
  return role_in(t, c.who, c.team);
}

// Fails (with the 409 in `refused`) when the team has one owner left,
// the one about to go.
status keeps_an_owner(connection& t, int64_t team, http::response& refused) {
  auto n = owners(t, team);
  if (!n) return fail(n.error());
  if (*n > 1) return status::success();
  refused = problem(409, "conflict", "a team keeps at least one owner: make another owner first");
  return fail("refused");
}

http::response set_role(call& c) {
  auto r = parse_role(c.field("role"));
  if (!r) return problem(422, "invalid", "role: owner, admin, developer or viewer");
  http::response refused;
  auto done = transaction(c.db, [&](connection& t) -> status {
    auto mine = lock_team(t, c);
    if (!mine) return fail(mine.error());
    auto target = member_role(t, c.team, c.param("account"));
    if (!target) return fail(target.error());
    if (*mine < role::admin)
      refused = problem(403, "forbidden", "this needs the role admin or above");
    else if (*target == role::none)
      refused = problem(404, "not found", "no member " + c.param("account"));
    else if ((*r == role::owner || *target == role::owner) && *mine != role::owner)
      refused = problem(403, "forbidden", "only an owner may make or unmake an owner");
    if (refused.status != 200) return fail("refused");
    if (*target == role::owner && *r != role::owner)
      if (auto kept = keeps_an_owner(t, c.team, refused); !kept) return kept;
    auto u = t.exec("UPDATE memberships SET role = $3 WHERE team_id = $1 AND account_id = $2::bigint",
                    {std::to_string(c.team), c.param("account"), std::string(role_name(*r))});
    if (!u) return fail(u.error());
    return status::success();
  });
  if (!done) return refused.status != 200 ? refused : db_failed(done.error());
  return json(200, "{\"account\":" + jstr(c.param("account")) + ",\"role\":" + jstr(role_name(*r)) + "}");
}

http::response remove_member(call& c) {
  const bool self = c.param("account") == std::to_string(c.who.account);
  http::response refused;
  auto done = transaction(c.db, [&](connection& t) -> status {
    auto mine = lock_team(t, c);
    if (!mine) return fail(mine.error());
    auto target = member_role(t, c.team, c.param("account"));
    if (!target) return fail(target.error());
    if (!self && *mine < role::admin)
      refused = problem(403, "forbidden", "only an admin or owner removes others");
    else if (*target == role::none)
      refused = problem(404, "not found", "no member " + c.param("account"));
    else if (*target == role::owner && !self && *mine != role::owner)
      refused = problem(403, "forbidden", "only an owner removes an owner");
    if (refused.status != 200) return fail("refused");
    if (*target == role::owner)
      if (auto kept = keeps_an_owner(t, c.team, refused); !kept) return kept;
    auto d = t.exec("DELETE FROM memberships WHERE team_id = $1 AND account_id = $2::bigint",
                    {std::to_string(c.team), c.param("account")});
    if (!d) return fail(d.error());
    // Their tokens for this team stop with their membership (and the invitations they sent are
    // refused at acceptance: inviter_may_invite).
    auto r = t.exec(
        "UPDATE api_tokens SET revoked_at = now() WHERE team_id = $1 AND account_id = $2::bigint AND "
        "revoked_at IS NULL",
        {std::to_string(c.team), c.param("account")});
    if (!r) return fail(r.error());
    return status::success();
  });
  if (!done) return refused.status != 200 ? refused : db_failed(done.error());
  return json(204, "");
}

http::response list_tokens(call& c) {
  // Admins see every token of the team; others their own.
  auto r = c.db.exec(
      "SELECT t.id, t.name, t.role, t.prefix, a.email, to_char(t.created_at AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), t.revoked_at IS NOT NULL FROM api_tokens t JOIN accounts a ON a.id = "
      "t.account_id WHERE t.team_id = $1 AND ($2 OR t.account_id = $3) ORDER BY t.id",
      {std::to_string(c.team), c.team_role >= role::admin ? "true" : "false", std::to_string(c.who.account)});
  if (!r) return db_failed(r.error());
  std::string out = "[";
  for (std::size_t i = 0; i < r->all.size(); ++i)
    out += std::string(i ? "," : "") + "{\"id\":" + r->at(i, 0) + ",\"name\":" + jstr(r->at(i, 1)) +
           ",\"role\":" + jstr(r->at(i, 2)) + ",\"prefix\":" + jstr(r->at(i, 3)) + ",\"owner\":" + jstr(r->at(i, 4)) +
           ",\"createdAt\":" + jstr(r->at(i, 5)) + ",\"revoked\":" + (r->at(i, 6) == "t" ? "true" : "false") + "}";
  return json(200, out + "]");
}

http::response create_token(call& c) {
  const auto name = c.field("name");
  auto r = c.field("role").empty() ? std::optional<role>(c.team_role) : parse_role(c.field("role"));
  if (!r) return problem(422, "invalid", "role: owner, admin, developer or viewer (default: yours)");
  if (*r > c.team_role) return problem(403, "forbidden", "a token's role cannot be above yours");
  if (name.empty() || name.size() > 100) return problem(422, "invalid", "name: 1 to 100 characters");
  const auto token = new_secret("fs_tok_");
  auto ins = c.db.exec(
      "INSERT INTO api_tokens (team_id, account_id, name, role, token_hash, prefix) VALUES ($1, $2, $3, $4, $5, $6) "
      "RETURNING id",
      {std::to_string(c.team), std::to_string(c.who.account), name, std::string(role_name(*r)), secret_hash(token),
       token.substr(0, 12)});
  if (!ins) return db_failed(ins.error());
  return json(201, "{\"id\":" + ins->at(0, 0) + ",\"token\":" + jstr(token) + ",\"role\":" + jstr(role_name(*r)) +
                       ",\"note\":\"shown once: the service keeps only its hash\"}");
}

http::response revoke_token(call& c) {
  auto r = c.db.exec(
      "UPDATE api_tokens SET revoked_at = now() WHERE id = $1::bigint AND team_id = $2 AND revoked_at IS NULL AND ($3 "
      "OR account_id = $4) RETURNING id",
      {c.param("id"), std::to_string(c.team), c.team_role >= role::admin ? "true" : "false",
       std::to_string(c.who.account)});
  if (!r || r->empty()) return problem(404, "not found", "no live token " + c.param("id") + " of yours in this team");
  return json(204, "");
}

http::response list_projects(call& c) {
  auto r = c.db.exec("SELECT name FROM projects WHERE team_id = $1 ORDER BY name", {std::to_string(c.team)});
  if (!r) return db_failed(r.error());
  std::string out = "[";
  for (std::size_t i = 0; i < r->all.size(); ++i)
    out += std::string(i ? "," : "") + "{\"name\":" + jstr(r->at(i, 0)) + ",\"team\":" + jstr(c.param("team")) + "}";
  return json(200, out + "]");
}

http::response create_project(call& c) {
  const auto name = c.field("name");
  if (!valid_name(name))
    return problem(422, "invalid", "name: 2 to 39 characters of a-z, 0-9 and -, starting with a letter or digit");
  auto r = c.db.exec("INSERT INTO projects (team_id, name) VALUES ($1, $2)", {std::to_string(c.team), name});
  if (!r)
    return c.db.last_error().sqlstate == "23505" ? problem(409, "conflict", "project \"" + name + "\" exists")
                                                 : db_failed(r.error());
  return json(201, "{\"name\":" + jstr(name) + ",\"team\":" + jstr(c.param("team")) + "}");
}

http::response delete_project(call& c) {
  auto r = c.db.exec("DELETE FROM projects WHERE team_id = $1 AND name = $2 RETURNING id",
                     {std::to_string(c.team), c.param("project")});
  if (!r) return db_failed(r.error());
  if (r->empty()) return problem(404, "not found", "no project \"" + c.param("project") + "\"");
  return json(204, "");
}

// An engine node asks what an API token may do: its team and role (the
// lower of the token's and its creator's current one), or 404.
http::response check_token(call& c) {
  auto who = identify_token(c.db, c.field("token"));
  if (!who) return db_failed(who.error());
  if (!who->token_id) return problem(404, "not found", "no such token, or revoked");
  auto r = role_in(c.db, *who, who->token_team);
  if (!r) return db_failed(r.error());
  if (*r == role::none) return problem(404, "not found", "the token's owner left its team");
  auto t = c.db.exec("SELECT name FROM teams WHERE id = $1", {std::to_string(who->token_team)});
  if (!t || t->empty()) return db_failed(t ? "no team" : t.error());
  return json(200, "{\"team\":" + jstr(t->at(0, 0)) + ",\"role\":" + jstr(role_name(*r)) +
                       ",\"account\":" + std::to_string(who->account) + "}");
}

}  // namespace

void add_team_routes(std::vector<route>& out) {
  out.push_back({"POST", "/api/v1/teams", "createTeam", "Create a team (you are its owner)", access::session_only,
                 role::none, true, create_team});
  out.push_back({"GET", "/api/v1/teams/{team}", "showTeam", "A team, its members and their roles", access::signed_in,
                 role::viewer, false, show_team});
  out.push_back({"POST", "/api/v1/teams/{team}/invitations", "inviteToTeam", "Invite someone to the team by email",
                 access::session_only, role::admin, true, invite_to_team});
  out.push_back({"POST", "/api/v1/invitations/{token}/accept", "acceptInvitation",
                 "Join the team an invitation names (signed in with its address)", access::session_only, role::none,
                 false, accept_invitation});
  out.push_back({"PUT", "/api/v1/teams/{team}/members/{account}", "setRole", "Change a member's role",
                 access::session_only, role::admin, true, set_role});
  out.push_back({"DELETE", "/api/v1/teams/{team}/members/{account}", "removeMember",
                 "Remove a member (or leave the team)", access::session_only, role::viewer, false, remove_member});
  out.push_back({"GET", "/api/v1/teams/{team}/tokens", "listTokens", "API tokens (an admin sees all, others theirs)",
                 access::signed_in, role::viewer, false, list_tokens});
  out.push_back({"POST", "/api/v1/teams/{team}/tokens", "createToken", "A new API token for the CLI, shown once",
                 access::session_only, role::viewer, true, create_token});
  out.push_back({"DELETE", "/api/v1/teams/{team}/tokens/{id}", "revokeToken",
                 "Revoke a token (an admin any, others theirs)", access::session_only, role::viewer, false,
                 revoke_token});
  out.push_back({"GET", "/api/v1/teams/{team}/projects", "listProjects", "The team's projects", access::signed_in,
                 role::viewer, false, list_projects});
  out.push_back({"POST", "/api/v1/teams/{team}/projects", "createProject", "Create a project", access::signed_in,
                 role::admin, true, create_project});
  out.push_back({"DELETE", "/api/v1/teams/{team}/projects/{project}", "deleteProject", "Delete a project",
                 access::signed_in, role::admin, false, delete_project});
  out.push_back({"POST", "/api/v1/internal/tokens/check", "checkToken",
                 "For engine nodes: the team and role of a tenant's API token", access::node, role::none, true,
                 check_token});
}

}  // namespace flowstate::manager
