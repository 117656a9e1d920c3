// bench_cold_start: how fast a new function answers in a running worker, and
// what an idle function costs in memory (benchmarks/README.md: ≤ 5 ms to the
// first result, ≤ 1 MiB resident per idle function with 1,000 functions).
// Not a test.
//   bench_cold_start [functions=1000]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "flowstate/sandbox/worker_client.hpp"

using namespace flowstate::sandbox;
using clock_type = std::chrono::steady_clock;

namespace {

double ms_since(clock_type::time_point start) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

// A small function of the usual shape, different for each id.
std::string source_of(uint64_t id) {
  return "export default function (input, state = {count: 0}, ctx) {\n"
         "  const count = state.count + (input.by || 1);\n"
         "  if (count > 1e9) throw new Error('too many: ' + ctx.key);\n"
         "  return {output: {status: 200, body: {count, id: " +
         std::to_string(id) + "}}, state: {count}};\n}\n";
}

// Of the process and its descendants (a sandboxed worker runs as a child
// of its PID namespace's init, the process we spawned).
long rss_kib(pid_t pid) {
  long total = 0;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) total += std::atol(line.c_str() + 6);
  std::ifstream children("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  pid_t child;
  while (children >> child) total += rss_kib(child);
  return total;
}

call_request request_for(uint64_t id) {
  call_request request;
  request.function_id = id;
  request.input_json = R"({"by": 2})";
  request.ctx = {"k", "flow", "block", "rev", "m-1", 1700000000000};
  return request;
}

// Loads `count` new functions (ids from `first`) and waits for all.
double load_many(worker_client& client, uint64_t first, int count) {
  std::promise<void> all;
  std::atomic<int> left{count};
  auto start = clock_type::now();
  for (int i = 0; i < count; ++i) {
    uint64_t id = first + static_cast<uint64_t>(i);
    client.load(id, "f" + std::to_string(id), "functions/f" + std::to_string(id) + ".js", source_of(id),
                [&](bool ok, std::string error) {
                  if (!ok) std::fprintf(stderr, "load failed: %s\n", error.c_str()), std::exit(1);
                  if (--left == 0) all.set_value();
                });
  }
  all.get_future().get();
  return ms_since(start);
}

// Load of one new function and its first call, sent together as a deploy
// does: ms until the call's result.
double first_result(worker_client& client, uint64_t id) {
  std::promise<void> done;
  auto start = clock_type::now();
  client.load(id, "f", "functions/f.js", source_of(id), [](bool ok, std::string error) {
    if (!ok) std::fprintf(stderr, "load failed: %s\n", error.c_str()), std::exit(1);
  });
  client.call(request_for(id), [&](call_result&& result) {
    if (result.status != call_status::ok) std::fprintf(stderr, "call failed: %s\n", result.error_message.c_str());
    done.set_value();
  });
  done.get_future().get();
  return ms_since(start);
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int functions = argc > 1 ? std::atoi(argv[1]) : 1000;
  worker_options options;
  options.worker_binary = FLOWSTATE_WORKER_BINARY;
  options.max_workers = 1;
  auto client = worker_client::start(options);
  if (!client) {
    std::fprintf(stderr, "%s\n", client.error().c_str());
    return 1;
  }
  worker_client& worker = **client;
  // Warm the worker up with one function and call, as a running project's is.
  load_many(worker, 1, 1);
  first_result(worker, 2);
  const pid_t pid = worker.worker_pid();
  const long rss_before = rss_kib(pid);

  std::printf("%-52s %10s\n", "new functions in a running worker", "ms");
  uint64_t next_id = 100;
  for (int count : {1, 100, functions}) {
    double ms = load_many(worker, next_id, count);
    next_id += static_cast<uint64_t>(count);
    std::printf("load %-5d functions %-32s %10.2f   (%.3f ms each)\n", count, "", ms, ms / count);
  }
  std::vector<double> firsts;
  for (int i = 0; i < 21; ++i) firsts.push_back(first_result(worker, next_id++));
  std::printf("%-52s %10.2f   (target ≤ 5 ms)\n", "load + first result, median of 21", median(firsts));

  // Only the last batch: rss_before already holds the warm-up and the
  // runtime itself.
  const long rss_after = rss_kib(pid);
  const int loaded = static_cast<int>(next_id - 100);
  std::printf("%-52s %10ld\n", "worker RSS before loading, KiB", rss_before);
  std::printf("%-52s %10ld\n", ("worker RSS with " + std::to_string(loaded) + " more functions, KiB").c_str(),
              rss_after);
  std::printf("%-52s %10.1f   (target ≤ 1024 KiB)\n", "RSS per idle function, KiB",
              static_cast<double>(rss_after - rss_before) / loaded);
  worker.stop();
  return 0;
}
