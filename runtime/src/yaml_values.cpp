// Values as YAML files write them (durations, sizes, limits), shared by the
// project loader and the plan file.
#include <algorithm>
#include <charconv>
#include <limits>
#include <set>

#include "project_detail.hpp"

namespace flowstate::detail {

int line_of(const YAML::Node& node, int fallback) {
  YAML::Mark mark = node.Mark();
  return mark.line >= 0 ? mark.line + 1 : fallback;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "\"" + node.Scalar() + "\"";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
  }
  return "nothing";
}

namespace {

// A positive number followed by one of `units` (name, scale); nullopt when
// the unit is unknown, the number is 0 or the product is above `max`.
std::optional<uint64_t> scaled(const std::string& text, std::initializer_list<std::pair<const char*, uint64_t>> units,
                               uint64_t max = std::numeric_limits<uint32_t>::max()) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  std::string unit(end, text.data() + text.size());
  while (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  for (auto& [name, scale] : units) {
    if (unit != name) continue;
    if (value == 0 || value > max / scale) return std::nullopt;
    return value * scale;
  }
  return std::nullopt;
}

}  // namespace

std::optional<uint64_t> parse_duration_ms(const std::string& text) {
  return scaled(text, {{"ms", 1}, {"s", 1000}, {"m", 60000}});
}

std::optional<uint64_t> parse_retention_ms(const std::string& text) {
  const uint64_t day = 24ull * 3600 * 1000;
  return scaled(text, {{"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", day}}, 3650 * day);
}

std::optional<uint64_t> parse_size_bytes(const std::string& text) {
  return scaled(text, {{"", 1},
                       {"B", 1},
                       {"KiB", 1024},
                       {"MiB", 1024 * 1024},
                       {"GiB", 1024 * 1024 * 1024},
                       {"kB", 1000},
                       {"KB", 1000},
                       {"MB", 1000 * 1000},
                       {"GB", 1000 * 1000 * 1000}});
}

void read_limits(const YAML::Node& map, const std::string& where, bool with_timeout, limit_settings& out,
                 const std::function<void(int, std::string)>& problem, const char* skip) {
  struct key_info {
    const char* name;
    limit_setting limit_settings::*field;
    bool duration;
    const char* example;
  };
  static const key_info keys[] = {
      {"timeout", &limit_settings::cpu_ms, true, "5s or 500ms"},
      {"wall", &limit_settings::wall_ms, true, "10s"},
      {"memory", &limit_settings::memory_mb, false, "128MiB"},
      {"output", &limit_settings::output_bytes, false, "1MiB"},
      {"state", &limit_settings::state_bytes, false, "256KiB"},
      {"logs", &limit_settings::log_bytes, false, "16KiB"},
  };
  std::string expected = skip ? std::string(skip) : std::string();
  for (auto& k : keys)
    if (with_timeout || std::string(k.name) != "timeout")
      expected += (expected.empty() ? "" : ", ") + std::string(k.name);
  std::set<std::string> seen;
  for (const auto& entry : map) {
    const int line = line_of(entry.first, 1);
    const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : describe(entry.first);
    if (skip && key == skip) continue;
    const key_info* info = nullptr;
    for (auto& k : keys)
      if (key == k.name && (with_timeout || key != "timeout")) info = &k;
    if (!info) {
      problem(line, where + "unknown key \"" + key + "\"; expected one of " + expected);
      continue;
    }
    if (!seen.insert(key).second) {
      problem(line, where + "key \"" + key + "\" appears twice; expected each key once");
      continue;
    }
    const YAML::Node& value = entry.second;
    const std::string text = value.IsScalar() ? value.Scalar() : "";
    auto parsed = info->duration ? parse_duration_ms(text) : parse_size_bytes(text);
    const std::string kind = info->duration ? "a positive duration like " : "a positive size like ";
    if (!parsed) {
      problem(line_of(value, line),
              "expected `" + where + key + ":` to be " + kind + info->example + ", found " + describe(value));
      continue;
    }
    uint64_t v = *parsed;
    if (info->field == &limit_settings::memory_mb) {
      if (v < (uint64_t{32} << 20)) {
        problem(line_of(value, line), "expected `" + where +
                                          "memory:` to be at least 32MiB (a worker needs that much), found " +
                                          describe(value));
        continue;
      }
      v >>= 20;
    }
    out.*(info->field) = limit_setting{static_cast<uint32_t>(v), line_of(value, line)};
  }
}

}  // namespace flowstate::detail
