// flowstate serve: one embedded node (engine, flow listener, admin API).
#include <CLI/CLI.hpp>

#include <pthread.h>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>

#include "cli_target.hpp"
#include "commands.hpp"
#include "flowstate/actors/engine.hpp"
#include "flowstate/drivers/http_server.hpp"
#include "flowstate/ui_server/admin_api.hpp"
#include "node_files.hpp"

namespace flowstate::cli {
namespace {

struct serve_options {
  std::string data_dir;
  std::string listen = "127.0.0.1:8080";
  std::string admin_listen = "127.0.0.1:8081";
  std::vector<std::string> projects;
  std::string worker;
  std::string plan;  // the operator's plan file
  unsigned shards = 4;
  // Measured on 2 cores (benchmarks/): the worker processes and the I/O
  // threads need the cores; shards do little work between them, so one CAF
  // thread per two cores, two listener threads.
  unsigned http_threads = 2;
  std::size_t max_in_flight = 2048;
  std::size_t state_cache_mb = 256;
  std::string idempotency_ttl = "24h";
  unsigned scheduler_threads = std::max(1u, std::thread::hardware_concurrency() / 2);
  std::string scheduler_policy = "sharing";
  uint32_t drain_timeout_ms = 10000;
};

int serve(const serve_options& o) {
  // Every thread started from here on inherits this mask: SIGTERM and
  // SIGINT are taken by sigwait below, nowhere else.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  // One thread takes the signals. Before the node is up a signal ends the
  // process at once (nothing was accepted yet; the store is crash-safe);
  // afterwards it starts the drain.
  std::promise<int> stop_signal;
  auto stop_requested = stop_signal.get_future();
  std::atomic<bool> up{false};
  std::thread([&signals, &stop_signal, &up] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (!up.load()) {
      std::fprintf(stderr, "flowstate serve: %s during start-up, exiting\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      std::_Exit(128 + sig);
    }
    stop_signal.set_value(sig);
  }).detach();

  auto data_dir = o.data_dir.empty() ? default_data_dir() : o.data_dir;
  std::filesystem::create_directories(data_dir);
  auto token = read_or_create_token(data_dir);

  engine_options eo;
  if (!o.plan.empty()) {
    auto plan = load_plan_file(o.plan);
    if (!plan) {
      std::fprintf(stderr, "flowstate serve: %s\n", plan.error().c_str());
      return 1;
    }
    eo.plan_file = std::move(*plan);
  }
  int64_t ttl = parse_age_ms(o.idempotency_ttl);
  if (ttl <= 0) {
    std::fprintf(stderr, "flowstate serve: expected --idempotency-ttl like 24h, 30m or 7d, found \"%s\"\n",
                 o.idempotency_ttl.c_str());
    return 2;
  }
  eo.idempotency_ttl_ms = static_cast<uint64_t>(ttl);
  eo.data_dir = data_dir;
  eo.worker_binary = o.worker.empty() ? executable_dir() + "/flowstate-worker" : o.worker;
  eo.python_worker_binary = executable_dir() + "/flowstate-pyworker";
  eo.shards = o.shards;
  eo.max_in_flight_per_shard = o.max_in_flight;
  eo.state_cache_bytes = o.state_cache_mb << 20;
  eo.scheduler_threads = o.scheduler_threads;
  eo.scheduler_policy = o.scheduler_policy;
  auto started = engine::start(eo);
  if (!started) {
    std::fprintf(stderr, "flowstate serve: %s\n", started.error().c_str());
    return 1;
  }
  auto& eng = **started;
  // Fail closed: where the workers' sandbox cannot be set up, no project is
  // served (no function runs, queued inputs wait in the store) and /readyz
  // and every flow request say why, until the machine allows isolation or
  // the operator sets FLOWSTATE_SANDBOX=off.
  const auto& sandbox = eng.isolation();
  const bool refuse_functions = sandbox.level == sandbox::sandbox_level::none;
  if (refuse_functions)
    std::fprintf(stderr, "flowstate serve: not serving %zu project(s): the sandbox is unavailable (see /readyz)\n",
                 o.projects.size());
  for (auto& dir : refuse_functions ? std::vector<std::string>{} : o.projects) {
    if (auto st = eng.add_project(dir); !st) {
      std::fprintf(stderr, "flowstate serve: %s\n", st.error().c_str());
      return 1;
    }
  }
  if (auto st = refuse_functions ? status::success() : eng.recover(); !st) {
    std::fprintf(stderr, "flowstate serve: recovery failed: %s\n", st.error().c_str());
    return 1;
  }

  http::server_options flow_opts;
  flow_opts.listen = o.listen;
  flow_opts.threads = o.http_threads;
  auto flows = http::server::start(flow_opts, [&eng, refuse_functions](http::request&& r, http::responder_ptr p) {
    if (refuse_functions)
      return p->send(
          http::problem(503, "sandbox unavailable", "this node runs no function: " + eng.isolation().summary()));
    eng.handle_flow_request(std::move(r), std::move(p));
  });
  if (!flows) {
    std::fprintf(stderr, "flowstate serve: %s\n", flows.error().c_str());
    return 1;
  }
  http::server_options admin_opts;
  admin_opts.listen = o.admin_listen;
  admin::live_streams streams;  // stopped before the engine goes (declared after it)
  auto admin = http::server::start(admin_opts, admin::make_handler(eng, token, streams));
  if (!admin) {
    std::fprintf(stderr, "flowstate serve: %s\n", admin.error().c_str());
    return 1;
  }
  write_file(data_dir + "/listen.addr", (*flows)->address());
  write_file(data_dir + "/admin.addr", (*admin)->address());
  for (auto& p : eng.projects())
    std::printf("flowstate: project %s at revision %.12s (%s)\n", p.name.c_str(), p.revision.c_str(), p.dir.c_str());
  std::printf("flowstate: serving flows on http://%s, admin API on http://%s (data in %s)\n",
              (*flows)->address().c_str(), (*admin)->address().c_str(), data_dir.c_str());
  std::fflush(stdout);
  up = true;

  int sig = stop_requested.get();
  std::printf("flowstate: %s received, draining\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  std::fflush(stdout);
  (*flows)->stop_accepting();
  eng.drain(o.drain_timeout_ms);
  (*flows)->stop();
  streams.stop();
  (*admin)->stop();
  std::printf("flowstate: stopped\n");
  return 0;
}

}  // namespace

void register_serve_command(CLI::App& app) {
  auto o = std::make_shared<serve_options>();
  auto* cmd =
      app.add_subcommand("serve", "Run a node: flow routes and public/ on --listen, the admin API on --admin-listen");
  cmd->add_option("--data", o->data_dir,
                  "Data directory (store, admin token); default $FLOWSTATE_DATA or ~/.local/share/flowstate");
  cmd->add_option("--listen", o->listen, "Address of the flow listener (port 0 picks one)")->capture_default_str();
  cmd->add_option("--admin-listen", o->admin_listen, "Address of the admin API")->capture_default_str();
  cmd->add_option("--worker", o->worker, "Path of flowstate-worker (default: beside this binary)");
  cmd->add_option("--plan", o->plan,
                  "The operator's plan (YAML): limits every project runs within, and per project name; "
                  "see docs/security.md");
  cmd->add_option("--shards", o->shards, "Shard actors (key-group ranges)")->capture_default_str();
  cmd->add_option("--http-threads", o->http_threads, "Threads of the flow listener")->capture_default_str();
  cmd->add_option("--max-in-flight", o->max_in_flight, "Messages in flight per shard before sources get 503")
      ->capture_default_str();
  cmd->add_option("--state-cache-mb", o->state_cache_mb,
                  "MiB of the latest states kept in memory (all shards); the others are read from the store")
      ->capture_default_str();
  cmd->add_option("--idempotency-ttl", o->idempotency_ttl,
                  "How long the response stored for an HTTP Idempotency-Key answers repeats (30m, 24h, 7d)")
      ->capture_default_str();
  cmd->add_option("--scheduler-threads", o->scheduler_threads, "CAF scheduler threads")->capture_default_str();
  cmd->add_option("--scheduler", o->scheduler_policy, "CAF scheduling policy: sharing or stealing")
      ->check(CLI::IsMember({"sharing", "stealing"}))
      ->capture_default_str();
  cmd->add_option("PROJECT_DIR", o->projects, "Project repositories to serve");
  cmd->callback([o] {
    int rc = serve(*o);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace flowstate::cli
