#pragma once
#include "flowstate/runtime/json_text.hpp"
// Running one function of a project's working tree in a worker, without a
// node and without committing anything: shared by `flowstate invoke` and
// `flowstate test`.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "flowstate/runtime/project.hpp"
#include "flowstate/runtime/result.hpp"
#include "flowstate/sandbox/worker_client.hpp"

namespace flowstate::cli {

// The working tree of `dir`, validated as a deploy would (the problems, one
// per line, as the error).
result<project_revision> load_worktree(const std::string& dir);

// The flow and block id a function runs under: the first block that names
// it, else ("test", function name).
std::pair<std::string, std::string> block_of_function(const project_revision& revision, const std::string& function);

// A worker (flowstate-worker beside this executable, or flowstate-pyworker
// for Python) with one function loaded, bundled with its npm packages, or
// with the modules of functions/ and vendor/ it may import; within the
// project's limits (`timeout:`, `limits:`) under a node's default plan.
class function_runner {
 public:
  static result<std::unique_ptr<function_runner>> start(const std::string& project_dir,
                                                        const project_revision& revision, const function_def& function);
  sandbox::call_result call(sandbox::call_request request);

 private:
  std::unique_ptr<sandbox::worker_client> worker_;
};

using flowstate::json_quote;
// "Exception", "Timeout", "ResourceExhausted": the std:Error type of a status.
const char* error_type(sandbox::call_status status);
// {"outputs":[...],"state":...,"stateChange":"set|unchanged|deleted","logs":[...]}
// or {"error":{"type":...,"message":...,"details":...}}.
std::string result_json(const sandbox::call_result& result, const std::optional<std::string>& state_before);

}  // namespace flowstate::cli
