#include "migrations.hpp"

#include <sodium.h>

#include <algorithm>
#include <charconv>

#include "pg.hpp"

namespace flowstate::manager {
namespace {

constexpr const char* lock_id = "734000117";  // pg_advisory_lock's key for migrations

std::string checksum(std::string_view text) {
  unsigned char h[16];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(text.data()), text.size(), nullptr, 0);
  char hex[sizeof h * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, h, sizeof h);
  return hex;
}

// "0001_accounts.sql" -> 1
int version_of(std::string_view name) {
  int v = 0;
  std::from_chars(name.data(), name.data() + name.size(), v);
  return v;
}

}  // namespace

result<int> migrate(connection& c) {
  if (auto l = c.exec(std::string("SELECT pg_advisory_lock(") + lock_id + ")"); !l) return fail(l.error());
  auto body = [&]() -> result<int> {
    auto made = c.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
        "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
    if (!made) return fail(made.error());
    auto applied = c.exec("SELECT version, name, checksum FROM schema_migrations ORDER BY version");
    if (!applied) return fail(applied.error());
    const auto& known = embedded_migrations();
    for (std::size_t i = 0; i < applied->all.size(); ++i) {
      const int v = std::stoi(applied->at(i, 0));
      const auto& name = applied->at(i, 1);
      auto it = std::find_if(known.begin(), known.end(), [&](auto& m) { return version_of(m.first) == v; });
      if (it == known.end())
        return fail("the database has migration " + std::to_string(v) + " (" + name +
                    "), which this flowstate does not know: a newer version ran on it; run that version");
      if (checksum(it->second) != applied->at(i, 2))
        return fail("migration " + std::string(it->first) +
                    " changed since it was applied to this database: a migration is never edited, add a new one");
    }
    int count = 0;
    for (auto& [name, sql] : known) {
      const int v = version_of(name);
      bool done = false;
      for (std::size_t i = 0; i < applied->all.size(); ++i) done = done || std::stoi(applied->at(i, 0)) == v;
      if (done) continue;
      auto one = transaction(c, [&](connection& t) -> result<int> {
        if (auto r = t.exec_script(sql); !r) return fail("migration " + std::string(name) + ": " + r.error());
        auto r = t.exec("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        {std::to_string(v), std::string(name), checksum(sql)});
        if (!r) return fail(r.error());
        return 1;
      });
      if (!one) return fail(one.error());
      ++count;
    }
    return count;
  };
  auto out = body();
  (void)c.exec(std::string("SELECT pg_advisory_unlock(") + lock_id + ")");
  return out;
}

}  // namespace flowstate::manager
