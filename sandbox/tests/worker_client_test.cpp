#include <doctest/doctest.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "test_support.hpp"

using namespace flowstate::sandbox;
using namespace flowstate::sandbox::testing;

TEST_CASE("a module's default export gets input, state and ctx") {
  auto r = run_once(
      "export default function (input, state = {count: 0}, ctx) {\n"
      "  const count = state.count + input.by;\n"
      "  return {output: {count, key: ctx.key, id: ctx.messageId, time: ctx.time}, state: {count}};\n"
      "}\n",
      R"({"by": 2})");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs[0] == R"({"count":2,"key":"k1","id":"msg-1","time":1700000000000})");
  CHECK(r.state_json == R"({"count":2})");
}

TEST_CASE("a classic script's global entrypoint gets the existing state") {
  auto r = run_once("function entrypoint(input, state) { return {output: state.count + input.by}; }", R"({"by": 2})",
                    R"({"count": 40})");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs[0] == "42");
}

TEST_CASE("an import is refused at load with a clear error") {
  auto client = start_worker();
  std::string error = load(*client, 1, "import _ from 'lodash';\nexport default function () {}\n");
  CHECK_MESSAGE(error.find("functions/f.js:1: import of \"lodash\" is not supported") != std::string::npos, error);
  auto r = call(*client, request(1, "{}"));
  CHECK(r.status == call_status::not_loaded);
}

TEST_CASE("a syntax error is reported at load with file and line") {
  auto client = start_worker();
  std::string error = load(*client, 1, "function entrypoint(input) {\n  return {output: input\n}\n");
  CHECK_MESSAGE(error.find("functions/f.js:") == 0, error);
  CHECK_MESSAGE(error.find("SyntaxError") != std::string::npos, error);
}

TEST_CASE("a throw is an exception with the error's message and stack") {
  auto r = run_once("export default function () {\n  throw new TypeError('boom');\n}\n");
  CHECK(r.status == call_status::exception);
  CHECK_MESSAGE(r.error_message == "TypeError: boom", r.error_message);
  CHECK_MESSAGE(
      r.error_details_json.find("\"stack\":\"TypeError: boom\\n    at default (functions/f.js:2") != std::string::npos,
      r.error_details_json);
}

TEST_CASE("an infinite loop times out and the function answers correctly afterwards") {
  auto client = start_worker();
  REQUIRE(load(*client, 1,
               "let calls = 0;\n"
               "export default function (input) {\n"
               "  calls++;\n"
               "  if (input.loop) for (;;) {}\n"
               "  return {output: {calls}};\n"
               "}\n")
              .empty());
  auto looping = request(1, R"({"loop": true})");
  looping.timeout_ms = 200;
  std::promise<call_result> first, second, third;
  client->call(request(1, "{}"), [&](call_result&& r) { first.set_value(std::move(r)); });
  client->call(looping, [&](call_result&& r) { second.set_value(std::move(r)); });
  client->call(request(1, "{}"), [&](call_result&& r) { third.set_value(std::move(r)); });
  auto r1 = first.get_future().get();
  auto r2 = second.get_future().get();
  auto r3 = third.get_future().get();
  CHECK(r1.status == call_status::ok);
  CHECK(r1.outputs[0] == R"({"calls":1})");
  CHECK(r2.status == call_status::timeout);
  CHECK_MESSAGE(r2.error_message.find("200 ms") != std::string::npos, r2.error_message);
  REQUIRE(r3.status == call_status::ok);
  // A fresh context: the module-level counter started again.
  CHECK(r3.outputs[0] == R"({"calls":1})");
}

TEST_CASE("other functions in the same batch as a timeout answer correctly") {
  auto client = start_worker(300);
  REQUIRE(load(*client, 1, "export default function () { for (;;) {} }").empty());
  REQUIRE(load(*client, 2, "function entrypoint(input) { return {output: input.n * 2}; }").empty());
  std::vector<std::promise<call_result>> results(5);
  for (int i = 0; i < 5; ++i) {
    auto r = i == 2 ? request(1, "{}") : request(2, "{\"n\": " + std::to_string(i) + "}");
    client->call(r, [&results, i](call_result&& result) { results[i].set_value(std::move(result)); });
  }
  for (int i = 0; i < 5; ++i) {
    auto r = results[i].get_future().get();
    if (i == 2) {
      CHECK(r.status == call_status::timeout);
    } else {
      REQUIRE(r.status == call_status::ok);
      CHECK(r.outputs[0] == std::to_string(i * 2));
    }
  }
}

TEST_CASE("Date and Math.random are the same for the same ctx in two different workers") {
  const std::string source =
      "export default function () {\n"
      "  return {output: [Date.now(), new Date().getTime(), Math.random(), Math.random()]};\n"
      "}\n";
  auto a = run_once(source);
  auto b = run_once(source);
  REQUIRE(a.status == call_status::ok);
  REQUIRE(b.status == call_status::ok);
  CHECK(a.outputs[0] == b.outputs[0]);
  CHECK(a.outputs[0].find("[1700000000000,1700000000000,") == 0);
}

TEST_CASE("a different message id gives different random numbers") {
  auto client = start_worker();
  REQUIRE(load(*client, 1, "export default function () { return {output: Math.random()}; }").empty());
  auto first = request(1, "{}");
  auto second = request(1, "{}");
  second.ctx.message_id = "msg-2";
  CHECK(call(*client, first).outputs[0] != call(*client, second).outputs[0]);
}

TEST_CASE("timers, fetch, process and require do not exist; console.log is captured") {
  auto r = run_once(
      "export default function () {\n"
      "  console.log('hello', {a: 1});\n"
      "  return {output: [typeof setTimeout, typeof fetch, typeof process, typeof require]};\n"
      "}\n");
  REQUIRE(r.status == call_status::ok);
  CHECK(r.outputs[0] == R"(["undefined","undefined","undefined","undefined"])");
  REQUIRE(r.logs.size() == 1);
  CHECK(r.logs[0] == R"(hello {"a":1})");
}

TEST_CASE("console output is capped") {
  auto r = run_once("export default function () { for (let i = 0; i < 1000; i++) console.log('x'.repeat(5000)); }");
  REQUIRE(r.status == call_status::ok);
  REQUIRE(r.logs.size() > 2);
  CHECK(r.logs[0].size() < 1100);
  size_t kept = 0;
  for (size_t i = 0; i + 1 < r.logs.size(); ++i) kept += r.logs[i].size();
  CHECK(kept <= 64 * 1024);
  CHECK(r.logs.back() ==
        "... " + std::to_string(1000 - (r.logs.size() - 1)) + " more lines dropped (log limit 65536 bytes)");
}

TEST_CASE("unbounded allocation is resource exhausted and the worker keeps answering") {
  auto client = start_worker();
  REQUIRE(load(*client, 1,
               "export default function (input) {\n"
               "  if (input.grow) { const a = []; for (;;) a.push({x: a.length, s: 'y'.repeat(10)}); }\n"
               "  return {output: 'fine'};\n"
               "}\n")
              .empty());
  auto grow = request(1, R"({"grow": true})");
  grow.timeout_ms = 60000;
  auto r = call(*client, grow);
  CHECK_MESSAGE(r.status == call_status::resource_exhausted, r.error_message);
  auto after = call(*client, request(1, "{}"));
  REQUIRE_MESSAGE(after.status == call_status::ok, after.error_message);
  CHECK(after.outputs[0] == "\"fine\"");
}

TEST_CASE("1000 calls from 4 threads all complete exactly once") {
  auto client = start_worker();
  REQUIRE(load(*client, 1, "export default function (input) { return {output: input.i}; }").empty());
  std::mutex mutex;
  std::vector<int> seen(1000, 0);
  std::atomic<int> completed{0};
  std::promise<void> all_done;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < 1000; i += 4) {
        client->call(request(1, "{\"i\": " + std::to_string(i) + "}"), [&, i](call_result&& r) {
          {
            std::lock_guard lock(mutex);
            if (r.status == call_status::ok && r.outputs.size() == 1 && r.outputs[0] == std::to_string(i))
              ++seen[i];
            else
              seen[i] += 1000;
          }
          if (++completed == 1000) all_done.set_value();
        });
      }
    });
  }
  for (auto& thread : threads) thread.join();
  all_done.get_future().get();
  for (int i = 0; i < 1000; ++i) CHECK(seen[i] == 1);
}

TEST_CASE("killing the worker while calls are in flight: every call still completes once") {
  auto client = start_worker();
  REQUIRE(load(*client, 1,
               "export default function (input) {\n"
               "  const until = input.spin; let x = 0; for (let i = 0; i < until; i++) x += i;\n"
               "  return {output: input.i};\n"
               "}\n")
              .empty());
  const pid_t first_pid = client->worker_pid();
  std::mutex mutex;
  std::vector<int> seen(200, 0);
  std::atomic<int> completed{0};
  std::promise<void> all_done;
  for (int i = 0; i < 200; ++i) {
    client->call(request(1, "{\"i\": " + std::to_string(i) + ", \"spin\": 200000}"), [&, i](call_result&& r) {
      {
        std::lock_guard lock(mutex);
        seen[i] += (r.status == call_status::ok && r.outputs[0] == std::to_string(i)) ? 1 : 1000;
      }
      if (++completed == 200) all_done.set_value();
    });
  }
  ::kill(first_pid, SIGKILL);
  all_done.get_future().get();
  for (int i = 0; i < 200; ++i) CHECK(seen[i] == 1);
  CHECK(client->worker_pid() != first_pid);
  CHECK(client->worker_pid() > 0);
}

TEST_CASE("a call in flight during two crashes of its worker gets worker_crashed") {
  auto client = start_worker();
  REQUIRE(load(*client, 1, "export default function () { for (;;) {} }").empty());
  auto stuck = request(1, "{}");
  stuck.timeout_ms = 60000;
  std::promise<call_result> done;
  client->call(stuck, [&](call_result&& r) { done.set_value(std::move(r)); });
  auto future = done.get_future();
  for (int crash = 0; crash < 2; ++crash) {
    pid_t pid = client->worker_pid();
    while (pid <= 0) pid = client->worker_pid();
    // Give the client a moment to hand the call to this worker before the kill.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::kill(pid, SIGKILL);
    while (client->worker_pid() == pid) std::this_thread::yield();
  }
  auto r = future.get();
  CHECK(r.status == call_status::worker_crashed);
  CHECK(r.error_message == "the call crashed its worker twice");
}

TEST_CASE("--check reports a syntax error with FILE:LINE") {
  const std::string bad = "check_bad_fn.js", good = "check_good_fn.mjs";
  std::ofstream(bad) << "function entrypoint(input) {\n  return {output: input;\n}\n";
  std::ofstream(good) << "export default function (input) { return {output: input}; }\n";
  std::string command = std::string(FLOWSTATE_WORKER_BINARY) + " --check " + bad + " " + good;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe);
  std::string out;
  char buffer[512];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  int status = ::pclose(pipe);
  CHECK(WEXITSTATUS(status) == 1);
  CHECK_MESSAGE(out.find("check_bad_fn.js:2: SyntaxError:") == 0, out);
  CHECK(out.find("check_good_fn") == std::string::npos);
  std::remove(bad.c_str());
  std::remove(good.c_str());
}

TEST_CASE("while one key's call loops, calls of other keys and functions complete on a second worker") {
  auto client = start_worker();
  REQUIRE(load(*client, 1, "export default function () { for (;;) {} }").empty());
  REQUIRE(
      load(*client, 2, "export default function (input, state, ctx) { return {output: ctx.key + ':' + input.n * 2}; }")
          .empty());
  REQUIRE(load(*client, 3, "function entrypoint(input) { return {output: input.n}; }").empty());
  auto looping = request(1, "{}");
  looping.ctx.key = "stuck";
  looping.timeout_ms = 60000;  // far longer than the test: only the pool can answer the others
  std::promise<call_result> loop_done;
  client->call(looping, [&](call_result&& r) { loop_done.set_value(std::move(r)); });
  auto loop_future = loop_done.get_future();
  // Sent right behind the endless call, so at first they queue on its worker.
  std::vector<std::promise<call_result>> results(20);
  for (int i = 0; i < 20; ++i) {
    auto r = request(i % 2 ? 3 : 2, "{\"n\": " + std::to_string(i) + "}");
    r.ctx.key = "key-" + std::to_string(i);
    client->call(r, [&results, i](call_result&& result) { results[i].set_value(std::move(result)); });
  }
  for (int i = 0; i < 20; ++i) {
    auto r = results[i].get_future().get();
    REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
    CHECK(r.outputs[0] ==
          (i % 2 ? std::to_string(i) : "\"key-" + std::to_string(i) + ":" + std::to_string(i * 2) + "\""));
  }
  CHECK(loop_future.wait_for(std::chrono::seconds(0)) != std::future_status::ready);
  CHECK(client->worker_pids().size() == 2);
  // A function loaded now answers too, while the loop still runs.
  REQUIRE(load(*client, 4, "export default function (input) { return {output: 'new'}; }").empty());
  auto fresh = call(*client, request(4, "{}"));
  REQUIRE_MESSAGE(fresh.status == call_status::ok, fresh.error_message);
  CHECK(fresh.outputs[0] == "\"new\"");
  CHECK(loop_future.wait_for(std::chrono::seconds(0)) != std::future_status::ready);
  client->stop();
  CHECK(loop_future.get().status == call_status::worker_crashed);
}

TEST_CASE("more functions than live contexts: each still answers, made again from its code cache") {
  auto client = start_worker();
  const int count = 100;  // above the worker's 64 live contexts
  for (int id = 1; id <= count; ++id)
    REQUIRE(
        load(*client, id, "export default function (input) { return {output: input.n + " + std::to_string(id) + "}; }")
            .empty());
  REQUIRE(load(*client, 1000, "function entrypoint(input) { return {output: 'script ' + input.n}; }").empty());
  for (int round = 0; round < 2; ++round) {
    for (int id = 1; id <= count; ++id) {
      auto r = call(*client, request(id, "{\"n\": 1}"));
      REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
      CHECK(r.outputs[0] == std::to_string(1 + id));
    }
    auto r = call(*client, request(1000, "{\"n\": 1}"));
    REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
    CHECK(r.outputs[0] == "\"script 1\"");
  }
}

TEST_CASE("a key and input text that are not UTF-8 do not crash the worker") {
  auto client = start_worker();
  REQUIRE(
      load(*client, 1, "export default function (input, state, ctx) { return {output: [ctx.key, input]}; }\n").empty());
  auto bad = request(1, "\"a\xFF\xFE\"");
  bad.ctx.key = "k\xFF\xFE";
  auto r = call(*client, bad);
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs[0] == "[\"k\xEF\xBF\xBD\xEF\xBF\xBD\",\"a\xEF\xBF\xBD\xEF\xBF\xBD\"]");
  auto after = call(*client, request(1, "1"));
  CHECK(after.status == call_status::ok);
}
