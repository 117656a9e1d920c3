#pragma once
// One V8 isolate holding the loaded functions, each in its own context, and
// running calls on them with the determinism and limits of docs/functions.md
// and docs/security.md.
#include <v8.h>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "flowstate/sandbox/log_cap.hpp"
#include "return_value.hpp"
#include "watchdog.hpp"
#include "worker.pb.h"

namespace flowstate::worker {

struct host_limits {
  uint32_t default_timeout_ms = 5000;  // CPU time of one call
  uint32_t wall_ms = 0;                // its wall-clock backstop; 0: twice the CPU limit
  size_t heap_limit_bytes = size_t{128} << 20;
  size_t max_log_bytes = size_t{64} << 10;  // console.* lines of one call together
  size_t max_log_line_bytes = 1024;
  size_t max_output_bytes = size_t{4} << 20;  // all outputs of one call together
  size_t max_state_bytes = size_t{1} << 20;   // the new state of one call
  // Functions keep a context only while among the most recently used this
  // many; the others are made again from V8's code cache at their next call.
  size_t max_live_contexts = 64;
};

class js_host {
 public:
  js_host(v8::Isolate* isolate, host_limits limits);
  ~js_host();

  LoadReply load(const LoadFunction& function);
  void unload(uint64_t function_id);
  void call(const Call& call, CallReply* reply);

  // `hook` runs on another thread when a call has run `after_ms`.
  void on_slow_call(uint32_t after_ms, std::function<void()> hook) {
    watchdog_.on_slow_call(after_ms, std::move(hook));
  }

  // Used by the console.* callback.
  void append_log(std::string line);

  // Makes, unless there is one, the context the next function to be
  // instantiated will get (a load, or a call of a function whose context was
  // dropped): V8's Context::New from its snapshot, console.* and the prelude
  // are over half of a load's time. Called while the worker waits for input.
  void prepare_spare_context();

 private:
  struct function;
  // A new context with console.* and the prelude run, and the prelude's
  // functions; nothing of any function in it yet.
  struct prepared_context {
    std::unique_ptr<v8::MicrotaskQueue> microtasks;
    v8::Global<v8::Context> context;
    v8::Global<v8::Function> set_environment, is_plain_json, freeze_globals;
  };
  bool new_context(prepared_context& out);

  // Compiles and evaluates `f`'s source in a fresh context; empty on success,
  // else "filename:line: message".
  std::string instantiate(function& f);
  // After the first evaluation at load: freezes what globalThis reaches and
  // makes f's factory; then runs the top-level code once more as a call
  // would, under the time limit (`timed_out` says whether it passed it).
  // Empty on success, else why the function cannot be loaded.
  std::string prepare_calls(function& f, v8::Local<v8::Context> context, bool script,
                            v8::Local<v8::Function> freeze_globals, bool& timed_out);
  // The entry point made once as a call makes it; empty, or why not.
  std::string try_entry(function& f, v8::Local<v8::Context> context, bool script);
  // Runs f's top-level code afresh and returns its entry point; empty with
  // an exception pending when it threw.
  v8::MaybeLocal<v8::Function> make_entry(function& f, v8::Local<v8::Context> context);
  void run(function& f, const Call& call, CallReply* reply);
  static size_t near_heap_limit(void* data, size_t current_limit, size_t initial_limit);
  void touch(function& f);
  void forget_context(function& f);

  v8::Isolate* isolate_;
  host_limits limits_;
  watchdog watchdog_;
  cached_names names_;
  bool heap_exhausted_ = false;
  std::unordered_map<uint64_t, std::unique_ptr<function>> functions_;
  std::list<function*> live_;  // functions with a context, most recently used first
  std::optional<prepared_context> spare_;
  v8::Global<v8::UnboundScript> prelude_;
  v8::Global<v8::FunctionTemplate> console_template_;
  CallReply* current_reply_ = nullptr;
  sandbox::log_cap log_cap_{limits_.max_log_bytes, limits_.max_log_line_bytes};  // of the running call
};

}  // namespace flowstate::worker
