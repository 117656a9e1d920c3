#pragma once
// The JSON Schema of each built-in driver kind's configuration
// (drivers/schemas/KIND.json, embedded at build time). The kinds' parsers
// remain the authority on what they accept; the schemas describe the same
// files for deploy-time checks, the admin API and the web UI's completion.
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace flowstate::drivers {

// (kind, schema JSON text), sorted by kind.
const std::vector<std::pair<std::string_view, std::string_view>>& config_schemas();

inline std::optional<std::string_view> config_schema(std::string_view kind) {
  for (auto& [k, text] : config_schemas())
    if (k == kind) return text;
  return std::nullopt;
}

}  // namespace flowstate::drivers
