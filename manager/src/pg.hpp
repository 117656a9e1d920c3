#pragma once
// PostgreSQL for the control plane: blocking libpq calls (the manager is
// not on the data path), one connection per request at a time from a small
// pool, text parameters and results. Errors are values.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/runtime/result.hpp"

struct pg_conn;

namespace flowstate::manager {

using row = std::vector<std::optional<std::string>>;
using param = std::optional<std::string>;  // nullopt: SQL NULL

struct rows {
  std::vector<row> all;
  long affected = 0;  // rows an INSERT, UPDATE or DELETE changed
  bool empty() const { return all.empty(); }
  const std::string& at(std::size_t r, std::size_t c) const;  // "" for NULL
};

// A PostgreSQL error: its SQLSTATE ("23505": unique violation) and message.
struct pg_error {
  std::string sqlstate, message;
};

class connection {
 public:
  explicit connection(pg_conn* c) : c_(c) {}
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Runs one statement with $1.. parameters; on failure `last_error()`
  // says why.
  result<rows> exec(std::string_view sql, const std::vector<param>& params = {});
  // Runs several statements separated by ';' (a migration), no parameters.
  status exec_script(std::string_view sql);
  const pg_error& last_error() const { return error_; }
  bool broken() const;

 private:
  pg_conn* c_;
  pg_error error_;
};

class pool {
 public:
  static result<std::unique_ptr<pool>> open(const std::string& conninfo, std::size_t size);

  // A connection for the duration of one request, back to the pool when
  // the handle goes (a broken one is replaced).
  class lease {
   public:
    lease(pool& p, std::unique_ptr<connection> c) : p_(&p), c_(std::move(c)) {}
    lease(lease&&) = default;
    ~lease();
    connection* operator->() { return c_.get(); }
    connection& operator*() { return *c_; }

   private:
    pool* p_;
    std::unique_ptr<connection> c_;
  };
  result<lease> take();

 private:
  std::string conninfo_;
  std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<connection>> idle_;
  std::size_t open_ = 0, size_ = 0;
  result<std::unique_ptr<connection>> connect();
  void give_back(std::unique_ptr<connection> c);
};

// Runs `body(c)` between BEGIN and COMMIT (ROLLBACK when it fails).
template <class F>
auto transaction(connection& c, F&& body) -> decltype(body(c)) {
  if (auto b = c.exec("BEGIN"); !b) return fail(b.error());
  auto out = body(c);
  if (!out) {
    (void)c.exec("ROLLBACK");
    return out;
  }
  if (auto e = c.exec("COMMIT"); !e) return fail(e.error());
  return out;
}

}  // namespace flowstate::manager
