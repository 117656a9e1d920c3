#pragma once
// The node's side of a pool of worker processes: spawns flowstate-worker,
// loads functions into it, and sends calls from any thread. One I/O thread
// (the dispatcher) writes whatever is pending as one frame per worker and
// delivers each reply as it arrives. A second worker starts when the first
// is busy. A worker that dies is replaced; functions are reloaded into it
// before their next call and its in-flight calls re-sent, except a call it
// was running when it died twice.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flowstate/runtime/result.hpp"
#include "flowstate/sandbox/isolation.hpp"

namespace flowstate {
struct python_module;  // flowstate/runtime/python_modules.hpp
}

namespace flowstate::sandbox {

// The read-only ctx argument of a function (docs/functions.md).
struct call_context {
  std::string key;
  std::string flow;
  std::string block;
  std::string revision;
  std::string message_id;  // also seeds Math.random
  int64_t time_ms = 0;     // acceptance time: what Date.now() returns
};

struct call_request {
  uint64_t function_id = 0;
  std::string input_json;
  std::optional<std::string> state_json;  // nullopt: the key has no state
  call_context ctx;
  uint32_t timeout_ms = 0;  // 0: the worker's default
};

enum class call_status { ok, exception, timeout, resource_exhausted, not_loaded, worker_crashed };
enum class state_change { unchanged, set, erase };

struct call_result {
  call_status status = call_status::ok;
  std::vector<std::string> outputs;  // JSON texts, in order
  state_change state = state_change::unchanged;
  std::string state_json;  // when state == set
  std::string error_message;
  std::string error_details_json;  // e.g. {"stack": "..."}
  std::vector<std::string> logs;   // console.* lines, capped
};

struct worker_options {
  std::string worker_binary;           // path of flowstate-worker
  uint32_t default_timeout_ms = 5000;  // for calls with timeout_ms == 0
  // The workers' wall-clock backstop for calls at default_timeout_ms (0:
  // twice it); a worker silent 2 s past it is taken for dead.
  uint32_t wall_ms = 0;
  std::vector<std::string> extra_args;
  // The pool: a further worker starts (up to max_workers) when every worker
  // is busy, i.e. its running call has run longer than busy_after_ms or it
  // has max_calls_per_worker calls outstanding. Calls queued behind a call
  // running longer than busy_after_ms move to a worker that is not busy.
  uint32_t max_workers = 2;
  uint32_t busy_after_ms = 25;
  uint32_t max_calls_per_worker = 256;
  isolation_options isolation{};  // on by default (see isolation.hpp)
};

class worker_client {
 public:
  static result<std::unique_ptr<worker_client>> start(worker_options options);
  ~worker_client();
  worker_client(const worker_client&) = delete;
  worker_client& operator=(const worker_client&) = delete;

  // Compiles `source` under `function_id` (replacing an earlier load); `done`
  // runs on the I/O thread with the compile error, if any. A Python function
  // imports from the module set loaded under `module_set` (0: none): every
  // worker gets the set before the function, a replaced worker again.
  void load(uint64_t function_id, std::string name, std::string filename, std::string source,
            std::function<void(bool ok, std::string error)> done, uint64_t module_set = 0);
  // Keeps `modules` under `set_id` for functions loaded with that module_set
  // (Python workers only; set and function ids share one space). Nothing
  // runs until a function imports a module. unload(set_id) drops it.
  void load_modules(uint64_t set_id, const std::vector<python_module>& modules,
                    std::function<void(bool ok, std::string error)> done);
  void unload(uint64_t function_id);

  // Thread-safe and non-blocking; `done` runs exactly once, on the I/O thread.
  void call(call_request request, std::function<void(call_result&&)> done);

  // The first worker process (changes when it is replaced).
  pid_t worker_pid() const;
  // Every live worker process of the pool.
  std::vector<pid_t> worker_pids() const;

  // Stops the I/O thread and kills the worker; pending calls complete with
  // worker_crashed. Also done by the destructor.
  void stop();

  class impl;

 private:
  explicit worker_client(std::unique_ptr<impl> impl);
  std::unique_ptr<impl> impl_;
};

}  // namespace flowstate::sandbox
