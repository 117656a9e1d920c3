// The operator's plan file (flowstate serve --plan FILE).
#include <fstream>
#include <sstream>

#include "flowstate/runtime/limit_settings.hpp"
#include "project_detail.hpp"

namespace flowstate {

result<plan_file> load_plan_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return fail(path + ": cannot read the plan file");
  std::stringstream text;
  text << in.rdbuf();
  YAML::Node root;
  try {
    root = YAML::Load(text.str());
  } catch (const YAML::Exception& e) {
    return fail(path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  plan_file plan;
  plan.path = path;
  std::string problems;
  auto problem = [&](int line, std::string message) {
    problems += (problems.empty() ? "" : "\n") + path + ":" + std::to_string(line) + ": " + message;
  };
  if (!root.IsMap()) {
    if (!root.IsNull()) problem(detail::line_of(root, 1), "expected a map of limits, found " + detail::describe(root));
  } else {
    detail::read_limits(root, "", true, plan.every_project, problem, "projects");
    if (const YAML::Node projects = root["projects"]) {
      if (!projects.IsMap()) {
        problem(detail::line_of(projects, 1),
                "expected `projects:` to map project names to limits, found " + detail::describe(projects));
      } else {
        for (const auto& entry : projects) {
          const std::string name = entry.first.Scalar();
          if (!entry.second.IsMap()) {
            problem(detail::line_of(entry.second, detail::line_of(entry.first, 1)),
                    "expected `projects." + name + ":` to be a map of limits, found " + detail::describe(entry.second));
            continue;
          }
          detail::read_limits(entry.second, "projects." + name + ".", true, plan.projects[name], problem);
        }
      }
    }
  }
  if (!problems.empty()) return fail(problems);
  return plan;
}

}  // namespace flowstate
