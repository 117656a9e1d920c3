#include "auth.hpp"

#include <sodium.h>

#include "pg.hpp"

namespace flowstate::manager {

std::optional<role> parse_role(std::string_view t) {
  if (t == "owner") return role::owner;
  if (t == "admin") return role::admin;
  if (t == "developer") return role::developer;
  if (t == "viewer") return role::viewer;
  return std::nullopt;
}

std::string_view role_name(role r) {
  switch (r) {
    case role::owner:
      return "owner";
    case role::admin:
      return "admin";
    case role::developer:
      return "developer";
    case role::viewer:
      return "viewer";
    default:
      return "none";
  }
}

std::string new_secret(std::string_view prefix) {
  unsigned char raw[32];
  randombytes_buf(raw, sizeof raw);
  char text[sodium_base64_ENCODED_LEN(sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
  sodium_bin2base64(text, sizeof text, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  return std::string(prefix) + text;
}

std::string secret_hash(std::string_view secret) {
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), nullptr, 0);
  char hex[sizeof h * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  return std::string("\\x") + hex;
}

result<std::string> hash_password(std::string_view password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
    return fail("out of memory hashing the password");
  return std::string(out);
}

bool password_matches(const std::string& hash, std::string_view password) {
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

std::string cookie_value(std::string_view header, std::string_view name) {
  std::size_t at = 0;
  while (at < header.size()) {
    auto end = header.find(';', at);
    if (end == std::string_view::npos) end = header.size();
    auto part = header.substr(at, end - at);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name && part[name.size()] == '=')
      return std::string(part.substr(name.size() + 1));
    at = end + 1;
  }
  return {};
}

result<principal> identify_token(connection& db, std::string_view token) {
  principal who;
  auto r = db.exec(
      "UPDATE api_tokens t SET last_used_at = now() FROM accounts a WHERE t.token_hash = $1 AND t.revoked_at IS "
      "NULL AND a.id = t.account_id RETURNING t.id, t.account_id, t.team_id, t.role, a.operator",
      {secret_hash(token)});
  if (!r) return fail(r.error());
  if (r->empty()) return who;
  who.token_id = std::stoll(r->at(0, 0));
  who.account = std::stoll(r->at(0, 1));
  who.token_team = std::stoll(r->at(0, 2));
  who.token_role = parse_role(r->at(0, 3)).value_or(role::none);
  return who;  // a token never acts as the operator
}

result<principal> identify(connection& db, const http::request& req) {
  principal who;
  auto auth = req.header("authorization");
  if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer "))
    return identify_token(db, auth.substr(7));
  auto session = cookie_value(req.header("cookie"), "fs_session");
  if (session.empty()) return who;
  auto r = db.exec(
      "SELECT s.account_id, s.csrf, a.operator FROM sessions s JOIN accounts a ON a.id = s.account_id "
      "WHERE s.token_hash = $1 AND s.expires_at > now()",
      {secret_hash(session)});
  if (!r) return fail(r.error());
  if (r->empty()) return who;
  who.account = std::stoll(r->at(0, 0));
  who.csrf = r->at(0, 1);
  who.is_operator = r->at(0, 2) == "t";
  who.via_session = true;
  return who;
}

result<role> role_in(connection& db, const principal& who, int64_t team) {
  if (!who.signed_in()) return role::none;
  if (who.token_id && who.token_team != team) return role::none;
  auto r = db.exec("SELECT role FROM memberships WHERE team_id = $1 AND account_id = $2",
                   {std::to_string(team), std::to_string(who.account)});
  if (!r) return fail(r.error());
  if (r->empty()) return role::none;
  role member = parse_role(r->at(0, 0)).value_or(role::none);
  if (who.token_id && who.token_role < member) return who.token_role;
  return member;
}

std::string session_cookie(const std::string& token, int max_age_s) {
  return "fs_session=" + token +
         "; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=" + std::to_string(token.empty() ? 0 : max_age_s);
}

}  // namespace flowstate::manager
