#pragma once
// Who makes a request: a session cookie (a signed-in person in a browser,
// who must echo the session's CSRF token on every change) or an API token
// (the CLI: scoped to one team, with a role no higher than its creator's).
// Secrets are random 32-byte values; the database keeps only their BLAKE2b
// hashes, so a leaked table opens nothing. Passwords: argon2id.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "flowstate/drivers/http_types.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate::manager {

class connection;

enum class role { none = 0, viewer = 1, developer = 2, admin = 3, owner = 4 };
std::optional<role> parse_role(std::string_view text);
std::string_view role_name(role r);

struct principal {
  int64_t account = 0;  // 0: anonymous
  bool is_operator = false;
  bool via_session = false;
  std::string csrf;        // the session's
  int64_t token_id = 0;    // an API token's id
  int64_t token_team = 0;  // the team an API token is scoped to
  role token_role = role::none;
  bool signed_in() const { return account != 0; }
};

// "fs_ses_..." / "fs_tok_..." / "fs_inv_...": a new random secret.
std::string new_secret(std::string_view prefix);
// The hash the database keeps, as bytea input ("\x..." hex).
std::string secret_hash(std::string_view secret);

result<std::string> hash_password(std::string_view password);
bool password_matches(const std::string& hash, std::string_view password);

// The caller of `req`: its session cookie or bearer token if valid and
// not expired or revoked (checked in the database on every request, so a
// revoked token stops at once), else anonymous.
result<principal> identify(connection& db, const http::request& req);
// The same for an API token alone (an engine node's question).
result<principal> identify_token(connection& db, std::string_view token);

// The principal's role in a team (an API token: the lower of the token's
// role and its creator's current one; none outside its team).
result<role> role_in(connection& db, const principal& who, int64_t team);

// The value of cookie `name` in a Cookie header; "" when absent.
std::string cookie_value(std::string_view header, std::string_view name);

// The session cookie's Set-Cookie header value; an empty token clears it.
std::string session_cookie(const std::string& token, int max_age_s);

}  // namespace flowstate::manager
