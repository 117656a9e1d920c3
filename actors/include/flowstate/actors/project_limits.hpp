#pragma once
// The limits a project's workers run with: the operator's plan for it (the
// node's default plan, overlaid by the plan file) is the ceiling, and the
// project's flowstate.yaml may only lower it (docs/operations.md, docs/security.md).
#include <string>

#include "flowstate/runtime/limit_settings.hpp"
#include "flowstate/runtime/project.hpp"
#include "flowstate/runtime/result.hpp"
#include "flowstate/sandbox/limits.hpp"

namespace flowstate {

// `base` with the values `settings` sets replaced.
sandbox::limits overlay(sandbox::limits base, const limit_settings& settings);

// The plan for `project`: `node_plan`, overlaid by the plan file's values
// for every project, then by those for this project's name.
sandbox::limits plan_for(const sandbox::limits& node_plan, const plan_file& file, const std::string& project);

// `m`'s limits within `plan`; a value above the plan is refused, naming
// flowstate.yaml and its line.
result<sandbox::limits> project_limits(const sandbox::limits& plan, const manifest& m);

// "256MiB", "64KiB", "1000 bytes"; "5s", "500ms".
std::string format_size(uint64_t bytes);
std::string format_duration(uint64_t ms);

}  // namespace flowstate
