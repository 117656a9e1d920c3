// bench_worker_call: µs per identity-function call through a worker process
// (client, batching, protobuf, socket, V8 in the worker) against the same
// call made in-process (JSON parse + call + stringify). Not a test.
// Wall time on a shared two-core machine is noisy, so it also reports CPU
// time per call: the client process (all its threads) plus the worker
// process, against the in-process thread's CPU time.
//   bench_worker_call [calls] [outstanding]
#include <libplatform/libplatform.h>
#include <v8.h>

#include <sys/resource.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <vector>

#include "flowstate/sandbox/worker_client.hpp"

using namespace flowstate::sandbox;
using clock_type = std::chrono::steady_clock;

namespace {

const std::string input = R"({"id":123,"body":{"x":1.5,"name":"abc","tags":["a","b"]}})";

double micros_per_call(clock_type::duration elapsed, int calls) {
  return std::chrono::duration<double, std::micro>(elapsed).count() / calls;
}

struct timing {
  double wall_us = 0;
  double cpu_us = 0;
};

double process_cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double thread_cpu_seconds() {
  timespec t{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

// utime + stime of another process, from /proc/PID/stat.
double other_process_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; fields >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);
    if (i == 15) break;
  }
  return ticks / ::sysconf(_SC_CLK_TCK);
}

// A sandboxed worker runs as a child of the process we spawned (its PID
// namespace's init): count the whole tree.
void add_tree(pid_t pid, std::vector<pid_t>& out) {
  out.push_back(pid);
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  pid_t child;
  while (in >> child) add_tree(child, out);
}

double workers_cpu_seconds(const worker_client& client) {
  double total = 0;
  std::vector<pid_t> pids;
  for (pid_t pid : client.worker_pids()) add_tree(pid, pids);
  for (pid_t pid : pids) total += other_process_cpu_seconds(pid);
  return total;
}

const char* const identity_source = "export default function (input) { return {output: input}; }";

// A function with the top-level code of a typical one (constants, a lookup
// table, helpers, a class), which runs again for every call.
const char* const module_source = R"JS(
const LIMITS = Object.freeze({ maxItems: 100, maxName: 64 });
const CODES = {};
for (let i = 0; i < 50; i++) CODES['c' + i] = i * 3;
let calls = 0;
function clamp(value, low, high) { return Math.min(high, Math.max(low, value)); }
const normalise = (name) => String(name).trim().slice(0, LIMITS.maxName);
class Tally {
  constructor(state) { this.items = (state && state.items) || []; }
  add(name, code) { this.items.push({ name: normalise(name), code: clamp(code, 0, 999) }); return this; }
  toJSON() { return { items: this.items.slice(-LIMITS.maxItems) }; }
}
export default function (input, state) {
  calls++;
  const tally = new Tally(state).add(input.body.name, CODES['c' + (input.id % 50)] || 0);
  return { output: input, state: tally.toJSON() };
}
)JS";

timing through_worker(int calls, int outstanding, const char* source = identity_source) {
  worker_options options;
  options.worker_binary = FLOWSTATE_WORKER_BINARY;
  auto client = worker_client::start(options);
  if (!client) {
    std::fprintf(stderr, "%s\n", client.error().c_str());
    std::exit(1);
  }
  std::promise<void> loaded;
  (*client)->load(1, "identity", "functions/identity.js", source, [&](bool ok, std::string error) {
    if (!ok) std::fprintf(stderr, "%s\n", error.c_str()), std::exit(1);
    loaded.set_value();
  });
  loaded.get_future().get();

  std::atomic<int> issued{0}, completed{0};
  std::promise<void> finished;
  std::function<void()> issue = [&] {
    if (issued.fetch_add(1) >= calls) return;
    call_request request;
    request.function_id = 1;
    request.input_json = input;
    request.ctx.message_id = "m";
    (*client)->call(std::move(request), [&](call_result&& result) {
      if (result.status != call_status::ok) std::fprintf(stderr, "call failed: %s\n", result.error_message.c_str());
      issue();
      if (completed.fetch_add(1) + 1 == calls) finished.set_value();
    });
  };
  // Warm-up so that compilation and the first allocations are not measured.
  {
    std::promise<void> warm;
    std::atomic<int> left{1000};
    for (int i = 0; i < 1000; ++i) {
      call_request request;
      request.function_id = 1;
      request.input_json = input;
      (*client)->call(std::move(request), [&](call_result&&) {
        if (--left == 0) warm.set_value();
      });
    }
    warm.get_future().get();
  }
  const double cpu_before = process_cpu_seconds() + workers_cpu_seconds(**client);
  auto start = clock_type::now();
  for (int i = 0; i < outstanding; ++i) issue();
  finished.get_future().get();
  timing result;
  result.wall_us = micros_per_call(clock_type::now() - start, calls);
  result.cpu_us = (process_cpu_seconds() + workers_cpu_seconds(**client) - cpu_before) * 1e6 / calls;
  (*client)->stop();  // no callback may run once the locals it uses are gone
  return result;
}

timing in_process(int calls) {
  v8::Isolate::CreateParams params;
  std::unique_ptr<v8::ArrayBuffer::Allocator> allocator(v8::ArrayBuffer::Allocator::NewDefaultAllocator());
  params.array_buffer_allocator = allocator.get();
  v8::Isolate* isolate = v8::Isolate::New(params);
  timing result;
  {
    v8::Isolate::Scope isolate_scope(isolate);
    v8::HandleScope scope(isolate);
    auto context = v8::Context::New(isolate);
    v8::Context::Scope context_scope(context);
    auto source = v8::String::NewFromUtf8Literal(isolate, "(function (input) { return {output: input}; })");
    auto function =
        v8::Script::Compile(context, source).ToLocalChecked()->Run(context).ToLocalChecked().As<v8::Function>();
    auto output_key = v8::String::NewFromUtf8Literal(isolate, "output");
    size_t bytes = 0;
    auto run = [&](int n) {
      for (int i = 0; i < n; ++i) {
        v8::HandleScope call_scope(isolate);
        auto text = v8::String::NewFromUtf8(isolate, input.data(), v8::NewStringType::kNormal, (int)input.size())
                        .ToLocalChecked();
        v8::Local<v8::Value> arg = v8::JSON::Parse(context, text).ToLocalChecked();
        auto returned = function->Call(context, v8::Undefined(isolate), 1, &arg).ToLocalChecked();
        auto output = returned.As<v8::Object>()->Get(context, output_key).ToLocalChecked();
        v8::String::Utf8Value json(isolate, v8::JSON::Stringify(context, output).ToLocalChecked());
        bytes += json.length();
      }
    };
    run(1000);
    const double cpu_before = thread_cpu_seconds();
    auto start = clock_type::now();
    run(calls);
    result.wall_us = micros_per_call(clock_type::now() - start, calls);
    result.cpu_us = (thread_cpu_seconds() - cpu_before) * 1e6 / calls;
    if (bytes == 0) std::puts("");
  }
  isolate->Dispose();
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  const int calls = argc > 1 ? std::atoi(argv[1]) : 200000;
  const int outstanding = argc > 2 ? std::atoi(argv[2]) : 64;
  v8::V8::SetFlagsFromString("--single-threaded");
  auto platform = v8::platform::NewSingleThreadedDefaultPlatform();
  v8::V8::InitializePlatform(platform.get());
  v8::V8::Initialize();

  timing local = in_process(calls);
  timing worker = through_worker(calls, outstanding);
  timing module = through_worker(calls, outstanding, module_source);
  std::printf("%-36s %12s %12s\n", "identity call, JSON in/out", "wall µs/call", "CPU µs/call");
  std::printf("%-36s %12.3f %12.3f\n", "in-process V8", local.wall_us, local.cpu_us);
  std::printf("%-36s %12.3f %12.3f\n", ("worker, " + std::to_string(outstanding) + " outstanding").c_str(),
              worker.wall_us, worker.cpu_us);
  std::printf("%-36s %11.2fx %11.2fx   (target ≤ 3x)\n", "ratio worker / in-process", worker.wall_us / local.wall_us,
              worker.cpu_us / local.cpu_us);
  // Its top-level code (a 50-entry table, helpers, a class) runs per call.
  std::printf("%-36s %12.3f %12.3f\n", "worker, function with top-level code", module.wall_us, module.cpu_us);
  v8::V8::Dispose();
  v8::V8::DisposePlatform();
  return 0;
}
