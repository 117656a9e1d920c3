#pragma once
// The project model: what a revision of a project repository says, after
// validation. Produced by project_loader, consumed by the engine.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "flowstate/runtime/durability.hpp"
#include "flowstate/runtime/limit_settings.hpp"

namespace flowstate {

// flowstate.yaml
struct manifest {
  std::string name;
  durability_mode durability = durability_mode::sync;
  uint32_t timeout_ms = 5000;  // per function call
  // `timeout:` (as cpu_ms, when written) and `limits:`: what the project asks
  // for; the node refuses values above the operator's plan.
  limit_settings limits;
  // `trace:` retention of the execution trace (docs/trace.md): whole
  // events for `full`, then ids, timing and error type only until `keep`,
  // then removed; `quota` caps the project's trace bytes (oldest go first).
  uint64_t trace_full_ms = 24ull * 3600 * 1000;
  uint64_t trace_keep_ms = 30ull * 24 * 3600 * 1000;
  uint64_t trace_quota_bytes = 1ull << 30;
  // `http:` — how this project shares the flow listener with others:
  // requests for `host` (any host when empty) under `prefix` ("" = none).
  std::string http_host;
  std::string http_prefix;
};

// drivers/<name>.yaml: `kind:` plus kind-specific fields, kept as JSON text.
struct driver_def {
  std::string name;
  std::string kind;         // e.g. "http.Request"
  std::string file;         // "drivers/api.yaml"
  std::string config_json;  // the whole YAML document as a JSON object
};

// functions/<name>.js|.py
struct function_def {
  std::string name;
  std::string language;  // "js" or "py"
  std::string file;      // "functions/counter.js"
  std::string source;
};

// One entry of a flow's `blocks:` list.
struct block_def {
  std::string kind;  // "js.Function", "http.Request", ...
  std::string name;  // the function or driver it names
  std::string id;    // `id:` or the name; unique within the flow
  bool is_function = false;
  std::optional<std::string> key_pointer;  // `key:` JSON pointer
  std::optional<std::string> input_type, output_type, state_type;
  int line = 0;  // 1-based line in the flow file
};

struct flow_def {
  std::string name;  // file name without .yaml
  std::string file;  // "flows/counter.yaml"
  std::vector<block_def> blocks;
  std::optional<std::string> on_error;
};

struct project_revision {
  std::string commit;  // 40-hex git commit id ("" for a working tree)
  manifest manifest_;
  std::map<std::string, flow_def> flows;
  std::map<std::string, driver_def> drivers;
  std::map<std::string, function_def> functions;
};

}  // namespace flowstate
