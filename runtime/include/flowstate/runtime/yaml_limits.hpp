#pragma once
// Limits on a parsed YAML document used as data: yaml-cpp resolves aliases
// to shared nodes, so a document may be cyclic (`x: &a [*a]`) or expand to
// far more than its text ("billion laughs"); every walk over it (to JSON,
// key checks) would then recurse without end or run out of memory.
#include <optional>
#include <string>

namespace YAML {
class Node;
}

namespace flowstate {

struct yaml_problem {
  int line = 0;  // 1-based; 0 when unknown
  std::string message;
};

// At most this deep, and this many nodes once aliases are expanded.
constexpr int yaml_max_depth = 64;
constexpr std::size_t yaml_max_nodes = 100000;

// Why `doc` cannot be used as data, or nullopt.
std::optional<yaml_problem> yaml_limits_problem(const YAML::Node& doc);

}  // namespace flowstate
