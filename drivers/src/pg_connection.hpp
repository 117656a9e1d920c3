#pragma once
// One PostgreSQL connection on the drivers' I/O thread: libpq's
// non-blocking API in pipeline mode, its socket watched by Asio. Each
// statement is followed by a sync point, so statements sent together travel
// in one round trip yet fail alone. Internal to drivers/.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "flowstate/drivers/sink.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate::drivers::pg {

struct statement {
  std::string sql;
  std::vector<std::optional<std::string>> params;  // text values; nullopt: NULL
};

// What a statement came back with: rows as a JSON array of objects (column
// name -> text value, or null), or PostgreSQL's error (with its SQLSTATE).
struct answer {
  bool ok = false;
  bool connection_lost = false;  // not an answer from the server: try again
  std::string rows_json = "[]";
  std::string error, sqlstate;
};

class connection {
 public:
  virtual ~connection() = default;
  // Runs the statements (connecting first when needed); `done` gets one
  // answer per statement, in order, on the I/O thread.
  virtual void run(std::vector<statement> statements, std::function<void(std::vector<answer>)> done) = 0;
  // Closes the connection; no callback after it returns (call on any thread
  // but the I/O thread, or from it).
  virtual void close() = 0;
};

std::shared_ptr<connection> connect(sinks::io_thread& io, std::string conninfo, uint64_t timeout_ms);

}  // namespace flowstate::drivers::pg
