#include "flowstate/runtime/yaml_limits.hpp"

#include <yaml-cpp/yaml.h>

namespace flowstate {
namespace {

// False once past a limit; `at` is then the node where it happened.
bool within(const YAML::Node& node, int depth, std::size_t& budget, YAML::Mark& at) {
  if (depth > yaml_max_depth || budget == 0) {
    at = node.Mark();
    return false;
  }
  --budget;
  if (node.IsSequence()) {
    for (const auto& item : node)
      if (!within(item, depth + 1, budget, at)) return false;
  } else if (node.IsMap()) {
    for (const auto& entry : node)
      if (!within(entry.first, depth + 1, budget, at) || !within(entry.second, depth + 1, budget, at)) return false;
  }
  return true;
}

}  // namespace

std::optional<yaml_problem> yaml_limits_problem(const YAML::Node& doc) {
  std::size_t budget = yaml_max_nodes;
  YAML::Mark at = YAML::Mark::null_mark();
  if (within(doc, 0, budget, at)) return std::nullopt;
  const int line = at.line >= 0 ? at.line + 1 : 0;
  if (budget == 0)
    return yaml_problem{line, "the document expands to more than " + std::to_string(yaml_max_nodes) +
                                  " values once its aliases (*name) are resolved: write it out, or use fewer aliases"};
  return yaml_problem{line, "the document nests deeper than " + std::to_string(yaml_max_depth) +
                                " levels (an alias, *name, inside the node it names makes it endless)"};
}

}  // namespace flowstate
