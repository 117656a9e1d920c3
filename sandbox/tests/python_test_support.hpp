#pragma once
// Helpers for tests that run real, isolated flowstate-pyworker processes.
#include <doctest/doctest.h>

#include <future>
#include <optional>
#include <string>
#include <vector>

#include "flowstate/runtime/python_modules.hpp"
#include "flowstate/sandbox/limits.hpp"
#include "flowstate/sandbox/worker_client.hpp"

namespace flowstate::sandbox::python_testing {

inline std::unique_ptr<worker_client> start_python(uint32_t cpu_ms = 2000) {
  limits lim;
  lim.cpu_ms_per_call = cpu_ms;
  worker_options options;
  options.worker_binary = FLOWSTATE_PYWORKER_BINARY;
  options.default_timeout_ms = cpu_ms;
  options.extra_args = lim.worker_args();
  options.isolation.python = true;
  options.isolation.memory_mb = lim.memory_mb;
  auto client = worker_client::start(options);
  REQUIRE_MESSAGE(client.ok(), (client.ok() ? "" : client.error()));
  return std::move(*client);
}

inline std::string load(worker_client& client, uint64_t id, const std::string& source, uint64_t module_set = 0) {
  std::promise<std::string> loaded;
  client.load(
      id, "f", "functions/f.py", source,
      [&](bool ok, std::string error) { loaded.set_value(ok ? std::string() : error); }, module_set);
  return loaded.get_future().get();
}

inline std::string load_modules(worker_client& client, uint64_t id,
                                const std::vector<flowstate::python_module>& modules) {
  std::promise<std::string> loaded;
  client.load_modules(id, modules, [&](bool ok, std::string error) { loaded.set_value(ok ? std::string() : error); });
  return loaded.get_future().get();
}

// Returns what helpers.VALUE is, imported when the function is loaded.
inline const char* const uses_helpers =
    "import helpers\n"
    "def entrypoint(i, s):\n"
    "    return {'output': helpers.VALUE}\n";

// ctx is {key, "flow", "block", "rev1", message_id, 1700000000000}.
inline call_result call(worker_client& client, uint64_t id, std::string input,
                        std::optional<std::string> state = std::nullopt, std::string message_id = "msg-1",
                        std::string key = "k1") {
  call_request r;
  r.function_id = id;
  r.input_json = std::move(input);
  r.state_json = std::move(state);
  r.ctx = {std::move(key), "flow", "block", "rev1", std::move(message_id), 1700000000000};
  std::promise<call_result> done;
  client.call(std::move(r), [&](call_result&& result) { done.set_value(std::move(result)); });
  return done.get_future().get();
}

inline call_result run_once(const std::string& source, std::string input = "{}",
                            std::optional<std::string> state = std::nullopt) {
  auto client = start_python();
  std::string error = load(*client, 1, source);
  REQUIRE_MESSAGE(error.empty(), error);
  return call(*client, 1, std::move(input), std::move(state));
}

inline void check_exception(const call_result& r, const std::string& fragment) {
  CHECK(r.status == call_status::exception);
  CHECK_MESSAGE(r.error_message.find(fragment) != std::string::npos, r.error_message);
  CHECK(r.outputs.empty());
  CHECK(r.state == state_change::unchanged);
}

}  // namespace flowstate::sandbox::python_testing
