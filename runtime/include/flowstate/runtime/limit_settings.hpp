#pragma once
// Limits as people write them: a project's flowstate.yaml (`timeout:` and
// `limits:`) or the operator's plan file (`flowstate serve --plan FILE`).
// Each value keeps the line it came from so that a refusal can name it.
#include <cstdint>
#include <map>
#include <string>

#include "flowstate/runtime/result.hpp"

namespace flowstate {

struct limit_setting {
  uint32_t value = 0;  // 0: not set
  int line = 0;        // 1-based line in its file
  explicit operator bool() const { return value != 0; }
};

struct limit_settings {
  limit_setting cpu_ms;        // `timeout:` CPU time of one call
  limit_setting wall_ms;       // `wall:` its wall-clock backstop
  limit_setting memory_mb;     // `memory:` of one worker process
  limit_setting output_bytes;  // `output:` all outputs of one call
  limit_setting state_bytes;   // `state:` the new state of one call
  limit_setting log_bytes;     // `logs:` console/print lines of one call
};

// The operator's plan file: limits for every project, and per project name
// values that replace them (which may be higher or lower).
struct plan_file {
  std::string path;
  limit_settings every_project;
  std::map<std::string, limit_settings> projects;
};

// Reads and validates a plan file; the error names file:line.
result<plan_file> load_plan_file(const std::string& path);

}  // namespace flowstate
