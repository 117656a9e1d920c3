#pragma once
// Reads and validates a project (docs/project-format.md) from a file_source into
// the project model. Every problem is collected, not just the first.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "flowstate/runtime/file_source.hpp"
#include "flowstate/runtime/project.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate {

// The block kinds the caller's registries know; the loader refuses others.
struct kind_catalog {
  std::map<std::string, std::string> function_kinds;  // "js.Function" -> "js"
  std::set<std::string> driver_kinds;                 // "http.Request", ...
  // js.Function, py.Function, http.Request, http.Response, timer.Interval,
  // timer.Cron, flow.Publish, flow.Subscribe, http.Post, mqtt.Subscribe,
  // mqtt.Publish, influxdb.Write, influxdb.Query, postgres.Insert,
  // postgres.Upsert, postgres.Query.
  static kind_catalog defaults();
};

// One validation finding. `line` is 1-based; 0 when it concerns a whole file
// (e.g. a missing flowstate.yaml).
struct project_problem {
  std::string file;  // "flows/counter.yaml"
  int line = 0;
  std::string message;  // what was expected, what was found (did you mean ...?)
  // "FILE:LINE: message", or "FILE: message" when line is 0.
  std::string to_string() const;
};

// The parsed YAML documents of a project's last load, by file text: the next
// load parses only files whose text changed, so that a deploy adding one
// function to a project of a thousand does not parse the thousand again.
// Holds the documents of the last load only. One load at a time.
class parse_cache;
std::shared_ptr<parse_cache> make_parse_cache();

// Loads the project from `files`. On success the revision's `commit` is
// files.revision(). On failure the error message is every problem's
// to_string(), one per line (flowstate.yaml first, then by file and line);
// when `problems` is not null it also receives them as a list (cleared
// first; empty on success). Never throws.
result<project_revision> load_project(file_source& files, const kind_catalog& kinds,
                                      std::vector<project_problem>* problems = nullptr, parse_cache* cache = nullptr);

// Only the project's name (flowstate.yaml `name:`), without loading the
// rest: what a node needs to look up the project's id before loading it.
result<std::string> project_name_of(file_source& files);

// Why `name` cannot be a project's name, or "": up to 64 letters, digits,
// '.', '_' or '-', starting with a letter or digit, no "..".
std::string project_name_problem(std::string_view name);

}  // namespace flowstate
