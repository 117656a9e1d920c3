#include "flowstate/actors/project_limits.hpp"

#include <algorithm>

namespace flowstate {

sandbox::limits overlay(sandbox::limits base, const limit_settings& s) {
  if (s.cpu_ms) base.cpu_ms_per_call = s.cpu_ms.value;
  if (s.wall_ms) base.wall_ms_per_call = s.wall_ms.value;
  if (s.memory_mb) base.memory_mb = s.memory_mb.value;
  if (s.output_bytes) base.max_output_bytes = s.output_bytes.value;
  if (s.state_bytes) base.max_state_bytes = s.state_bytes.value;
  if (s.log_bytes) base.max_log_bytes = s.log_bytes.value;
  return base;
}

sandbox::limits plan_for(const sandbox::limits& node_plan, const plan_file& file, const std::string& project) {
  auto plan = overlay(node_plan, file.every_project);
  if (auto it = file.projects.find(project); it != file.projects.end()) plan = overlay(plan, it->second);
  return plan;
}

std::string format_size(uint64_t bytes) {
  if (bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes % (1u << 10) == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes) + " bytes";
}

std::string format_duration(uint64_t ms) {
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
}

result<sandbox::limits> project_limits(const sandbox::limits& plan, const manifest& m) {
  std::string problems;
  auto check = [&](const limit_setting& asked, uint32_t ceiling, const char* key, bool megabytes, bool duration) {
    if (!asked || asked.value <= ceiling) return;
    auto show = [&](uint64_t v) { return duration ? format_duration(v) : format_size(megabytes ? v << 20 : v); };
    problems += (problems.empty() ? "" : "\n") + std::string("flowstate.yaml:") + std::to_string(asked.line) + ": " +
                key + " is " + show(asked.value) + ", above this node's plan of " + show(ceiling) +
                "; a project may only lower its limits";
  };
  const auto& s = m.limits;
  check(s.cpu_ms, plan.cpu_ms_per_call, "timeout", false, true);
  check(s.wall_ms, plan.wall_ms(), "limits.wall", false, true);
  check(s.memory_mb, plan.memory_mb, "limits.memory", true, false);
  check(s.output_bytes, plan.max_output_bytes, "limits.output", false, false);
  check(s.state_bytes, plan.max_state_bytes, "limits.state", false, false);
  check(s.log_bytes, plan.max_log_bytes, "limits.logs", false, false);
  if (!problems.empty()) return fail(problems);
  sandbox::limits out = overlay(plan, s);
  // Without `timeout:` a call gets the manifest's default, within the plan.
  out.cpu_ms_per_call = std::min(plan.cpu_ms_per_call, m.timeout_ms);
  // Without `limits.wall:` the backstop is twice the CPU limit, within the plan.
  out.wall_ms_per_call = s.wall_ms ? s.wall_ms.value : std::min(plan.wall_ms(), 2 * out.cpu_ms_per_call);
  return out;
}

}  // namespace flowstate
