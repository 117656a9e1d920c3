// Runs probes through real workers and prints one JSON line per probe.
//   probe_runner --js WORKER --py PYWORKER [--no-isolation] [--cpu-ms N] DIR...
// Each DIR holds `lang` (js|py), `source`, and optionally `input` and `state`
// (JSON texts). After each probe the same client runs a known-good function,
// so the line also says whether the worker (or its replacement) still answers.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "flowstate/sandbox/limits.hpp"
#include "flowstate/sandbox/worker_client.hpp"

using namespace flowstate::sandbox;

namespace {

std::string read_file(const std::string& path, const std::string& otherwise) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return otherwise;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string quote(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"')
      out += "\\\"";
    else if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else
      out += static_cast<char>(c);
  }
  return out + "\"";
}

const char* status_name(call_status s) {
  switch (s) {
    case call_status::ok:
      return "ok";
    case call_status::exception:
      return "Exception";
    case call_status::timeout:
      return "Timeout";
    case call_status::resource_exhausted:
      return "ResourceExhausted";
    case call_status::not_loaded:
      return "NotLoaded";
    case call_status::worker_crashed:
      return "WorkerCrashed";
  }
  return "?";
}

call_result call_once(worker_client& client, uint64_t id, std::string input, std::optional<std::string> state) {
  call_request request;
  request.function_id = id;
  request.input_json = std::move(input);
  request.state_json = std::move(state);
  request.ctx = {"k1", "flow", "block", "rev1", "msg-1", 1700000000000};
  std::promise<call_result> done;
  client.call(std::move(request), [&](call_result&& r) { done.set_value(std::move(r)); });
  return done.get_future().get();
}

std::string load(worker_client& client, uint64_t id, const std::string& filename, const std::string& source) {
  std::promise<std::string> loaded;
  client.load(id, "probe", filename, source,
              [&](bool ok, std::string error) { loaded.set_value(ok ? std::string() : "load: " + error); });
  return loaded.get_future().get();
}

}  // namespace

int main(int argc, char** argv) {
  std::string js_binary, py_binary;
  bool isolation = true;
  // V8's limit is wall-clock time: on a loaded machine a probe that should
  // end in ResourceExhausted needs room not to time out first.
  limits lim;
  lim.cpu_ms_per_call = 1000;
  std::vector<std::string> dirs;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--js" && i + 1 < argc)
      js_binary = argv[++i];
    else if (arg == "--py" && i + 1 < argc)
      py_binary = argv[++i];
    else if (arg == "--no-isolation")
      isolation = false;
    else if (lim.parse_flag(argc, argv, i))
      continue;
    else
      dirs.push_back(arg);
  }
  auto start = [&](const std::string& binary, bool python) {
    worker_options options;
    options.worker_binary = binary;
    options.default_timeout_ms = lim.cpu_ms_per_call;
    options.wall_ms = lim.wall_ms();
    options.extra_args = lim.worker_args();
    options.isolation.enabled = isolation;
    options.isolation.python = python;
    options.isolation.memory_mb = lim.memory_mb;
    auto client = worker_client::start(options);
    if (!client) {
      std::fprintf(stderr, "probe_runner: %s\n", client.error().c_str());
      std::exit(1);
    }
    return std::move(*client);
  };
  auto js = start(js_binary, false);
  auto py = start(py_binary, true);
  const uint64_t canary = 1;
  if (!load(*js, canary, "functions/canary.js", "export default function (input) { return {output: input}; }")
           .empty() ||
      !load(*py, canary, "functions/canary.py", "def entrypoint(input, state):\n    return {'output': input}\n")
           .empty()) {
    std::fprintf(stderr, "probe_runner: the canary functions did not load\n");
    return 1;
  }
  uint64_t next_id = 2;
  for (const auto& dir : dirs) {
    std::string lang = read_file(dir + "/lang", "py");
    while (!lang.empty() && (lang.back() == '\n' || lang.back() == ' ')) lang.pop_back();
    worker_client& client = lang == "js" ? *js : *py;
    std::string source = read_file(dir + "/source", "");
    std::string input = read_file(dir + "/input", "{}");
    std::string state_text = read_file(dir + "/state", "");
    std::optional<std::string> state;
    if (!state_text.empty()) state = state_text;
    uint64_t id = next_id++;
    std::string line = "{\"dir\":" + quote(dir);
    std::string error = load(client, id, lang == "js" ? "functions/probe.js" : "functions/probe.py", source);
    if (!error.empty()) {
      line += ",\"status\":\"LoadFailed\",\"error\":" + quote(error);
    } else {
      call_result r = call_once(client, id, input, state);
      line += std::string(",\"status\":\"") + status_name(r.status) + "\",\"error\":" + quote(r.error_message);
      line += ",\"outputs\":[";
      for (size_t i = 0; i < r.outputs.size(); ++i) line += (i ? "," : "") + r.outputs[i];
      line += "],\"state\":";
      line += r.state == state_change::set ? r.state_json : (r.state == state_change::erase ? "\"<deleted>\"" : "null");
      line += ",\"logs\":[";
      for (size_t i = 0; i < r.logs.size(); ++i) line += (i ? "," : "") + quote(r.logs[i]);
      line += "],\"details\":" + quote(r.error_details_json);
      client.unload(id);
    }
    call_result alive = call_once(client, canary, "{\"still\":\"here\"}", std::nullopt);
    bool answered =
        alive.status == call_status::ok && alive.outputs.size() == 1 && alive.outputs[0] == "{\"still\":\"here\"}";
    line += std::string(",\"alive\":") + (answered ? "true" : "false");
    line += ",\"worker_pid\":" + std::to_string(client.worker_pid()) + "}";
    std::cout << line << std::endl;
  }
  return 0;
}
