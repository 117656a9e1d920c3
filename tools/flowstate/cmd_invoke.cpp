// flowstate invoke FLOW BLOCK --key K --input JSON [--state JSON]: runs one
// call of a block's function from the working tree in a fresh worker and
// prints what it returned. Nothing is committed and no node is needed.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>

#include "commands.hpp"
#include "flowstate/actors/engine.hpp"
#include "flowstate/actors/project_limits.hpp"
#include "flowstate/runtime/file_source.hpp"
#include "flowstate/runtime/project_loader.hpp"
#include "flowstate/runtime/python_modules.hpp"
#include "flowstate/sandbox/bundle.hpp"
#include "function_runner.hpp"
#include "node_files.hpp"

namespace flowstate::cli {

result<project_revision> load_worktree(const std::string& dir) {
  auto files = open_worktree(dir);
  std::vector<project_problem> problems;
  auto revision = load_project(*files, kind_catalog::defaults(), &problems);
  if (!revision) return fail(revision.error());
  return std::move(*revision);
}

std::pair<std::string, std::string> block_of_function(const project_revision& revision, const std::string& function) {
  for (auto& [name, flow] : revision.flows)
    for (auto& block : flow.blocks)
      if (block.is_function && block.name == function) return {name, block.id};
  return {"test", function};
}

namespace {

constexpr uint64_t function_id = 1;
constexpr uint64_t module_set_id = 2;

// Loads the working tree's Python modules under module_set_id; false when
// there are none. `done` gets the outcome.
result<bool> load_python_modules(sandbox::worker_client& worker, const std::string& project_dir,
                                 const project_revision& revision, std::function<void(bool, std::string)> done) {
  auto files = open_worktree(project_dir);
  auto set = collect_python_modules(*files, revision);
  if (!set) return fail(set.error());
  if (set->empty()) return false;
  worker.load_modules(module_set_id, set->modules, std::move(done));
  return true;
}

}  // namespace

result<std::unique_ptr<function_runner>> function_runner::start(const std::string& project_dir,
                                                                const project_revision& revision,
                                                                const function_def& function) {
  // The project's limits within the plan a node has without a plan file.
  auto limits = project_limits(engine_options::default_plan(), revision.manifest_);
  if (!limits) return fail(limits.error());
  std::string source = function.source;
  if (function.language == "js") {
    auto bundled = sandbox::bundle_js(project_dir, function.file, function.source);
    if (!bundled) return fail(bundled.error());
    source = std::move(bundled->source);
  }
  sandbox::worker_options options;
  options.worker_binary = executable_dir() + (function.language == "py" ? "/flowstate-pyworker" : "/flowstate-worker");
  options.default_timeout_ms = limits->cpu_ms_per_call;
  options.wall_ms = limits->wall_ms();
  options.extra_args = limits->worker_args();
  options.isolation.memory_mb = limits->memory_mb;
  options.max_workers = 1;
  if (function.language == "py") options.isolation.python = true;
  auto worker = sandbox::worker_client::start(options);
  if (!worker) return fail("cannot start a worker: " + worker.error());
  std::promise<std::string> modules_loaded, loaded;
  bool has_modules = false;
  if (function.language == "py") {
    auto loading = load_python_modules(**worker, project_dir, revision, [&](bool ok, std::string error) {
      modules_loaded.set_value(ok ? std::string() : "functions/ and vendor/: " + error);
    });
    if (!loading) return fail(loading.error());
    has_modules = *loading;
  }
  (*worker)->load(
      function_id, function.name, function.file, source,
      [&](bool ok, std::string error) {
        loaded.set_value(ok ? std::string() : (error.empty() ? function.file + ": could not be loaded" : error));
      },
      has_modules ? module_set_id : 0);
  // Both callbacks have run before the promises they set go out of scope.
  std::string modules_error = has_modules ? modules_loaded.get_future().get() : std::string();
  std::string error = loaded.get_future().get();
  if (!modules_error.empty()) return fail(modules_error);
  if (!error.empty()) return fail(error);
  auto runner = std::unique_ptr<function_runner>(new function_runner());
  runner->worker_ = std::move(*worker);
  return runner;
}

sandbox::call_result function_runner::call(sandbox::call_request request) {
  request.function_id = function_id;
  std::promise<sandbox::call_result> done;
  worker_->call(std::move(request), [&](sandbox::call_result&& result) { done.set_value(std::move(result)); });
  return done.get_future().get();
}

const char* error_type(sandbox::call_status status) {
  switch (status) {
    case sandbox::call_status::timeout:
      return "Timeout";
    case sandbox::call_status::resource_exhausted:
      return "ResourceExhausted";
    case sandbox::call_status::ok:
      return "";
    default:
      return "Exception";
  }
}

std::string result_json(const sandbox::call_result& result, const std::optional<std::string>& state_before) {
  if (result.status != sandbox::call_status::ok) {
    std::string details = result.error_details_json.empty() ? "{}" : result.error_details_json;
    return std::string("{\"error\":{\"type\":\"") + error_type(result.status) +
           "\",\"message\":" + json_quote(result.error_message) + ",\"details\":" + details + "}}";
  }
  std::string out = "{\"outputs\":[";
  for (size_t i = 0; i < result.outputs.size(); ++i) out += (i ? "," : "") + result.outputs[i];
  out += "],\"state\":";
  switch (result.state) {
    case sandbox::state_change::set:
      out += result.state_json + ",\"stateChange\":\"set\"";
      break;
    case sandbox::state_change::erase:
      out += "null,\"stateChange\":\"deleted\"";
      break;
    case sandbox::state_change::unchanged:
      out += state_before.value_or("null") + ",\"stateChange\":\"unchanged\"";
      break;
  }
  out += ",\"logs\":[";
  for (size_t i = 0; i < result.logs.size(); ++i) out += (i ? "," : "") + json_quote(result.logs[i]);
  return out + "]}";
}

namespace {

struct invoke_options {
  std::string flow, block, key, input, project = ".", message_id = "invoke-00000000000000000001";
  std::optional<std::string> state;
  std::optional<int64_t> time_ms;
};

int invoke(const invoke_options& o) {
  std::error_code ec;
  const std::string dir = std::filesystem::weakly_canonical(std::filesystem::absolute(o.project), ec).string();
  auto revision = load_worktree(dir);
  if (!revision) {
    std::fprintf(stderr, "invoke: the project has problems:\n%s\n", revision.error().c_str());
    return 2;
  }
  auto flow = revision->flows.find(o.flow);
  if (flow == revision->flows.end()) {
    std::fprintf(stderr, "invoke: no flow \"%s\" in flows/\n", o.flow.c_str());
    return 2;
  }
  const block_def* block = nullptr;
  for (auto& b : flow->second.blocks)
    if (b.id == o.block || (!block && b.name == o.block)) block = &b;
  if (!block || !block->is_function) {
    std::fprintf(stderr, "invoke: %s has no function block \"%s\"\n", flow->second.file.c_str(), o.block.c_str());
    return 2;
  }
  auto function = revision->functions.find(block->name);
  if (function == revision->functions.end()) {
    std::fprintf(stderr, "invoke: no function \"%s\" in functions/\n", block->name.c_str());
    return 2;
  }
  auto runner = function_runner::start(dir, *revision, function->second);
  if (!runner) {
    std::fprintf(stderr, "invoke: %s\n", runner.error().c_str());
    return 2;
  }
  sandbox::call_request request;
  request.input_json = o.input;
  request.state_json = o.state;
  request.ctx.key = o.key;
  request.ctx.flow = o.flow;
  request.ctx.block = block->id;
  request.ctx.revision = "worktree";
  request.ctx.message_id = o.message_id;
  request.ctx.time_ms =
      o.time_ms
          ? *o.time_ms
          : std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                .count();
  auto result = (*runner)->call(std::move(request));
  std::printf("%s\n", result_json(result, o.state).c_str());
  return result.status == sandbox::call_status::ok ? 0 : 1;
}

}  // namespace

void register_invoke_command(CLI::App& app) {
  auto o = std::make_shared<invoke_options>();
  auto* cmd =
      app.add_subcommand("invoke", "Run one call of a block's function from the working tree (nothing is committed)");
  cmd->add_option("FLOW", o->flow, "the flow (flows/FLOW.yaml)")->required();
  cmd->add_option("BLOCK", o->block, "the block id (or the function's name)")->required();
  cmd->add_option("--key", o->key, "the message key (ctx.key)")->required();
  cmd->add_option("--input", o->input, "the input message, as JSON")->required();
  cmd->add_option("--state", o->state, "the key's current state, as JSON (default: none)");
  cmd->add_option("--project", o->project, "the project directory (default: .)");
  cmd->add_option("--message-id", o->message_id, "ctx.messageId (seeds Math.random)");
  cmd->add_option("--time", o->time_ms, "ctx.time and Date.now(), ms since the epoch (default: now)");
  cmd->callback([o] {
    int rc = invoke(*o);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace flowstate::cli
