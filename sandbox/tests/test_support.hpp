#pragma once
// Helpers for tests that run real flowstate-worker processes.
#include <doctest/doctest.h>

#include <future>
#include <string>

#include "flowstate/sandbox/worker_client.hpp"

namespace flowstate::sandbox::testing {

inline std::unique_ptr<worker_client> start_worker(uint32_t default_timeout_ms = 5000) {
  worker_options options;
  options.worker_binary = FLOWSTATE_WORKER_BINARY;
  options.default_timeout_ms = default_timeout_ms;
  auto client = worker_client::start(options);
  REQUIRE_MESSAGE(client.ok(), (client.ok() ? "" : client.error()));
  return std::move(*client);
}

// Loads and waits; returns the error ("" when it loaded).
inline std::string load(worker_client& client, uint64_t id, const std::string& source,
                        const std::string& filename = "functions/f.js") {
  std::promise<std::string> loaded;
  client.load(id, "f", filename, source, [&](bool ok, std::string error) {
    loaded.set_value(ok ? std::string() : (error.empty() ? "failed" : error));
  });
  return loaded.get_future().get();
}

inline call_request request(uint64_t id, std::string input, std::optional<std::string> state = std::nullopt) {
  call_request r;
  r.function_id = id;
  r.input_json = std::move(input);
  r.state_json = std::move(state);
  r.ctx = {"k1", "flow", "block", "rev1", "msg-1", 1700000000000};
  return r;
}

inline call_result call(worker_client& client, call_request r) {
  std::promise<call_result> done;
  client.call(std::move(r), [&](call_result&& result) { done.set_value(std::move(result)); });
  return done.get_future().get();
}

// Loads `source` as function 1 in a fresh worker and calls it once.
inline call_result run_once(const std::string& source, std::string input = "{}",
                            std::optional<std::string> state = std::nullopt) {
  auto client = start_worker();
  std::string error = load(*client, 1, source);
  REQUIRE_MESSAGE(error.empty(), error);
  return call(*client, request(1, std::move(input), std::move(state)));
}

}  // namespace flowstate::sandbox::testing
