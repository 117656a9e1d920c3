#include "pg.hpp"

#include <libpq-fe.h>

namespace flowstate::manager {

const std::string& rows::at(std::size_t r, std::size_t c) const {
  static const std::string none;
  const auto& v = all.at(r).at(c);
  return v ? *v : none;
}

connection::~connection() { PQfinish(reinterpret_cast<PGconn*>(c_)); }

bool connection::broken() const { return PQstatus(reinterpret_cast<PGconn*>(c_)) != CONNECTION_OK; }

result<rows> connection::exec(std::string_view sql, const std::vector<param>& params) {
  auto* conn = reinterpret_cast<PGconn*>(c_);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  const std::string text(sql);
  PGresult* res = PQexecParams(conn, text.c_str(), int(values.size()), nullptr, values.data(), nullptr, nullptr, 0);
  const auto st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    error_ = {state ? state : "", res ? PQresultErrorMessage(res) : PQerrorMessage(conn)};
    while (!error_.message.empty() && (error_.message.back() == '\n' || error_.message.back() == ' '))
      error_.message.pop_back();
    PQclear(res);
    return fail("PostgreSQL: " + error_.message);
  }
  error_ = {};
  rows out;
  const int n = PQntuples(res), cols = PQnfields(res);
  out.all.reserve(std::size_t(n));
  for (int r = 0; r < n; ++r) {
    row one;
    one.reserve(std::size_t(cols));
    for (int c = 0; c < cols; ++c)
      if (PQgetisnull(res, r, c))
        one.emplace_back(std::nullopt);
      else
        one.emplace_back(std::string(PQgetvalue(res, r, c), std::size_t(PQgetlength(res, r, c))));
    out.all.push_back(std::move(one));
  }
  const char* affected = PQcmdTuples(res);
  out.affected = affected && *affected ? std::stol(affected) : 0;
  PQclear(res);
  return out;
}

status connection::exec_script(std::string_view sql) {
  auto* conn = reinterpret_cast<PGconn*>(c_);
  const std::string text(sql);
  PGresult* res = PQexec(conn, text.c_str());
  const auto st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    std::string why = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
    PQclear(res);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return fail("PostgreSQL: " + why);
  }
  PQclear(res);
  return status::success();
}

result<std::unique_ptr<pool>> pool::open(const std::string& conninfo, std::size_t size) {
  auto p = std::make_unique<pool>();
  p->conninfo_ = conninfo;
  p->size_ = size;
  auto first = p->connect();  // fail now, naming the database, rather than at the first request
  if (!first) return fail(first.error());
  p->idle_.push_back(std::move(*first));
  p->open_ = 1;
  return p;
}

result<std::unique_ptr<connection>> pool::connect() {
  PGconn* c = PQconnectdb(conninfo_.c_str());
  if (PQstatus(c) != CONNECTION_OK) {
    std::string why = PQerrorMessage(c);
    PQfinish(c);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    return fail("cannot connect to the control plane's database (--database): " + why);
  }
  return std::make_unique<connection>(reinterpret_cast<pg_conn*>(c));
}

result<pool::lease> pool::take() {
  std::unique_lock lock(mutex_);
  returned_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return lease(*this, std::move(c));
  }
  ++open_;
  lock.unlock();
  auto c = connect();
  if (!c) {
    std::lock_guard again(mutex_);
    --open_;
    returned_.notify_one();
    return fail(c.error());
  }
  return lease(*this, std::move(*c));
}

void pool::give_back(std::unique_ptr<connection> c) {
  std::lock_guard lock(mutex_);
  if (c->broken())
    --open_;
  else
    idle_.push_back(std::move(c));
  returned_.notify_one();
}

pool::lease::~lease() {
  if (c_ && p_) p_->give_back(std::move(c_));
}

}  // namespace flowstate::manager
