#pragma once
// The functions loaded into one CPython interpreter, and calls on them with
// the contract of docs/functions.md and the limits of docs/security.md. Runs on the main
// thread, which holds the GIL throughout; the watchdog thread only asks the
// interpreter to stop (Py_AddPendingCall) or, for code stuck in C, answers
// the call itself and ends the process (see watchdog.hpp).
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "connection.hpp"
#include "flowstate/sandbox/limits.hpp"
#include "flowstate/sandbox/log_cap.hpp"
#include "watchdog.hpp"
#include "worker.pb.h"

namespace flowstate::pyworker {

// The `_flowstate` built-in module (for PyImport_AppendInittab).
PyObject* init_flowstate_module();

class py_host {
 public:
  // After Py_Initialize with the `_flowstate` module registered.
  py_host(sandbox::limits limits, connection& conn);
  ~py_host();
  py_host(const py_host&) = delete;
  py_host& operator=(const py_host&) = delete;

  // Empty when the bootstrap ran; else why the worker cannot serve.
  const std::string& startup_error() const { return startup_error_; }

  // A function, or with defines_modules a module set its functions import.
  void load(const worker::LoadFunction& request, worker::LoadReply* reply);
  void unload(uint64_t function_id);
  void call(const worker::Call& call, worker::CallReply* reply);

  // sys.stdout/sys.stderr writes of the running call.
  void write_log(const char* text, size_t size);
  // The exception type a timed-out call is interrupted with.
  static PyObject* time_limit_exceeded();
  // True while the watchdog wants the running call stopped.
  bool time_limit_pending() const;

 private:
  struct function;
  struct outcome;

  // Compiles `f` and runs its top-level code once; empty on success, else
  // "file:line: ...".
  std::string instantiate(function& f);
  // Runs `f`'s top-level code in a new namespace and returns it (a new
  // reference), or null with the Python error set.
  PyObject* new_namespace(function& f);
  // The namespace's `entrypoint` (borrowed) when it can be called with
  // (input, state[, ctx]), else null; `pass_ctx` says whether it takes ctx.
  PyObject* find_entrypoint(function& f, PyObject* globals, bool& pass_ctx);
  // Why find_entrypoint returned null: "functions/f.py: expected ...".
  std::string entrypoint_problem(function& f, PyObject* globals);
  void load_modules(const worker::LoadFunction& request, worker::LoadReply* reply);
  // Makes imports see module set `set_id` (0: none); a no-op when it is the
  // active one. Empty on success, else why not.
  std::string activate(uint64_t set_id);
  void run(function& f, const worker::Call& call, outcome& result);
  void read_return_value(PyObject* returned, outcome& result);
  void describe_exception(outcome& result);
  // Starts/ends the window in which the watchdog may take the call over.
  void begin_guarded(worker::CallReply* call_reply, worker::LoadReply* load_reply, uint32_t cpu_ms, uint32_t wall_ms);
  // True when the watchdog fired.
  bool end_guarded();
  void flush_log_line();
  void interrupt();
  void abandon();

  sandbox::limits limits_;
  connection& conn_;
  std::string startup_error_;
  PyObject* boot_ = nullptr;  // the _flowstate_boot module
  PyObject* json_loads_ = nullptr;
  PyObject* begin_call_ = nullptr;  // _flowstate_determinism.begin_call(message_id, time_ms)
  PyObject* context_type_ = nullptr;
  PyObject* format_exception_ = nullptr;
  PyObject* format_exception_only_ = nullptr;
  PyObject* activate_ = nullptr;
  PyObject* describe_load_error_ = nullptr;
  std::unordered_map<uint64_t, std::unique_ptr<function>> functions_;
  // Module sets: name -> (filename, source, is_package) dicts, owned.
  std::unordered_map<uint64_t, PyObject*> module_sets_;
  uint64_t active_set_ = 0;

  // The call (or load) in progress, shared with the watchdog thread.
  enum : int { idle, running, abandoned };
  std::atomic<int> guard_{idle};
  std::mutex reply_mutex_;  // the running reply's logs, and abandon()
  worker::CallReply* guarded_call_ = nullptr;
  worker::LoadReply* guarded_load_ = nullptr;
  uint32_t guarded_cpu_ms_ = 0;
  std::atomic<bool> stop_requested_{false};
  pthread_t main_thread_{};

  // Logs of the running call.
  std::string partial_line_;
  sandbox::log_cap log_cap_;

  std::unique_ptr<watchdog> watchdog_;
};

}  // namespace flowstate::pyworker
