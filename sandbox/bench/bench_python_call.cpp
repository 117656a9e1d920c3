// Not a test: Python worker figures, with and without the sandbox, same run.
//   bench_python_call [--calls N]
// Prints, for isolation on and off: worker start to first answer, a new
// function loaded into a running worker to its first result (target in
// benchmarks/README.md: <= 20 ms), and call throughput with 64 calls outstanding.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "flowstate/sandbox/limits.hpp"
#include "flowstate/sandbox/worker_client.hpp"

using namespace flowstate::sandbox;
using clock_type = std::chrono::steady_clock;

namespace {

double ms_since(clock_type::time_point start) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

std::unique_ptr<worker_client> start(bool isolated) {
  limits lim;
  worker_options options;
  options.worker_binary = FLOWSTATE_PYWORKER_BINARY;
  options.default_timeout_ms = lim.cpu_ms_per_call;
  options.extra_args = lim.worker_args();
  options.isolation.enabled = isolated;
  options.isolation.python = true;
  options.isolation.memory_mb = lim.memory_mb;
  auto client = worker_client::start(options);
  if (!client) {
    std::fprintf(stderr, "bench_python_call: %s\n", client.error().c_str());
    std::exit(1);
  }
  return std::move(*client);
}

bool load(worker_client& client, uint64_t id, const std::string& source) {
  std::promise<bool> loaded;
  client.load(id, "f" + std::to_string(id), "functions/f.py", source, [&](bool ok, std::string error) {
    if (!ok) std::fprintf(stderr, "load failed: %s\n", error.c_str());
    loaded.set_value(ok);
  });
  return loaded.get_future().get();
}

call_request request(uint64_t id, uint64_t n) {
  call_request r;
  r.function_id = id;
  r.input_json = R"({"body":{"by":1},"n":)" + std::to_string(n) + "}";
  r.state_json = R"({"count":41})";
  r.ctx = {"k", "flow", "block", "rev", "m-" + std::to_string(n), 1700000000000};
  return r;
}

call_result call_sync(worker_client& client, call_request r) {
  std::promise<call_result> done;
  client.call(std::move(r), [&](call_result&& result) { done.set_value(std::move(result)); });
  return done.get_future().get();
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

const char* counter_source =
    "def entrypoint(input, state, ctx):\n"
    "    state = state or {'count': 0}\n"
    "    state['count'] += input['body']['by']\n"
    "    return {'output': {'status': 200, 'body': {'count': state['count']}}, 'state': state}\n";

struct figures {
  double start_ms = 0, load_p50 = 0, load_p90 = 0, calls_per_s = 0;
};

figures measure(bool isolated, int calls) {
  figures f;
  auto t0 = clock_type::now();
  auto client = start(isolated);
  load(*client, 1, counter_source);
  call_sync(*client, request(1, 0));
  f.start_ms = ms_since(t0);

  // A new function into the running worker, to its first result.
  std::vector<double> loads;
  for (int i = 0; i < 30; ++i) {
    uint64_t id = 100 + static_cast<uint64_t>(i);
    std::string source = "import json, re, datetime\n# revision " + std::to_string(i) + "\n" + counter_source;
    auto t = clock_type::now();
    std::promise<void> first;
    client->load(id, "f", "functions/f.py", source, [](bool, std::string) {});
    client->call(request(id, 1), [&](call_result&&) { first.set_value(); });
    first.get_future().get();
    loads.push_back(ms_since(t));
  }
  f.load_p50 = percentile(loads, 0.5);
  f.load_p90 = percentile(loads, 0.9);

  // Throughput: keep 64 calls outstanding.
  std::mutex mutex;
  std::condition_variable cv;
  int outstanding = 0, completed = 0, failed = 0;
  auto t = clock_type::now();
  for (int i = 0; i < calls; ++i) {
    {
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return outstanding < 64; });
      ++outstanding;
    }
    client->call(request(1, static_cast<uint64_t>(i)), [&](call_result&& r) {
      std::lock_guard lock(mutex);
      --outstanding;
      ++completed;
      if (r.status != call_status::ok) ++failed;
      cv.notify_all();
    });
  }
  {
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return completed == calls; });
  }
  f.calls_per_s = calls / (ms_since(t) / 1000.0);
  if (failed) std::fprintf(stderr, "%d calls failed\n", failed);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 20000;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--calls") calls = std::atoi(argv[++i]);
  figures on = measure(true, calls);
  figures off = measure(false, calls);
  std::printf("%-44s %14s %14s %8s\n", "python worker (counter function)", "isolated", "not isolated", "ratio");
  std::printf("%-44s %11.1f ms %11.1f ms %7.2fx\n", "start to first answer", on.start_ms, off.start_ms,
              on.start_ms / off.start_ms);
  std::printf("%-44s %11.1f ms %11.1f ms %7.2fx\n", "new function to first result, p50 (<= 20 ms)", on.load_p50,
              off.load_p50, on.load_p50 / off.load_p50);
  std::printf("%-44s %11.1f ms %11.1f ms %7.2fx\n", "new function to first result, p90", on.load_p90, off.load_p90,
              on.load_p90 / off.load_p90);
  std::printf("%-44s %12.0f/s %12.0f/s %7.2fx\n", "calls, 64 outstanding", on.calls_per_s, off.calls_per_s,
              on.calls_per_s / off.calls_per_s);
  return 0;
}
