// flowstate serve: one embedded node (engine, flow listener, admin API).
#include <CLI/CLI.hpp>

#include <pthread.h>
#include <sys/resource.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>

#include "cli_target.hpp"
#include "cluster_node.hpp"
#include "commands.hpp"
#include "flowstate/actors/engine.hpp"
#include "flowstate/drivers/http_server.hpp"
#include "flowstate/drivers/outbound.hpp"
#include "flowstate/runtime/secrets.hpp"
#include "flowstate/ui_server/admin_api.hpp"
#include "flowstate/ui_server/control_plane.hpp"
#include "flowstate/ui_server/usage_reporter.hpp"
#include "node_files.hpp"

namespace flowstate::cli {
namespace {

struct serve_options {
  std::string data_dir;
  std::string listen = "127.0.0.1:8080";
  std::string admin_listen = "127.0.0.1:8081";
  std::vector<std::string> projects;
  std::string worker;
  std::string edit_author = "flowstate <flowstate@localhost>";
  std::string plan;                                 // the operator's plan file
  std::string control_plane, control_plane_secret;  // hosted mode (docs/hosted.md)
  std::string hosted_domain;                        // hosted mode: PROJECT.TEAM.DOMAIN; "": /TEAM/PROJECT
  std::string pool;                                 // hosted mode: dedicated placement; "": the shared pool
  std::vector<std::string> hosted_allow_internal;   // hosted mode: internal networks drivers may reach
  unsigned shards = 4;
  // Measured on 2 cores (benchmarks/): the worker processes and the I/O
  // threads need the cores; shards do little work between them, so one CAF
  // thread per two cores, two listener threads.
  unsigned http_threads = 2;
  std::size_t max_in_flight = 2048;
  std::size_t sink_backlog = 10000;
  std::string master_key;
  std::size_t state_cache_mb = 256;
  std::string idempotency_ttl = "24h";
  unsigned scheduler_threads = std::max(1u, std::thread::hardware_concurrency() / 2);
  std::string scheduler_policy = "sharing";
  uint32_t drain_timeout_ms = 10000;
  // The listeners' defences (docs/http.md, "Limits").
  std::string header_timeout = "10s";
  std::string body_timeout = "30s";
  std::string idle_timeout = "60s";
  std::size_t max_connections = 4096;
  std::size_t max_connections_per_client = 256;
  double rate_limit = 0;
  double rate_burst = 0;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 1 << 20;
  std::string tls_cert, tls_key;
  std::string admin_tls_cert, admin_tls_key;
  cluster_flags cluster;
};

// The flow and admin listeners' options from the flags; an error names the
// flag.
result<std::pair<http::server_options, http::server_options>> listener_options(const serve_options& o) {
  http::server_options flows;
  struct duration_flag {
    const char* name;
    const std::string& text;
    uint32_t& out;
  } durations[] = {{"--header-timeout", o.header_timeout, flows.header_timeout_ms},
                   {"--body-timeout", o.body_timeout, flows.body_timeout_ms},
                   {"--idle-timeout", o.idle_timeout, flows.idle_timeout_ms}};
  for (auto& d : durations) {
    int64_t ms = parse_age_ms(d.text);
    if (ms <= 0 || ms > int64_t{24} * 3600 * 1000)
      return fail(std::string("expected ") + d.name + " like 10s or 2m (at most 24h), found \"" + d.text + "\"");
    d.out = static_cast<uint32_t>(ms);
  }
  if (o.rate_limit < 0 || o.rate_burst < 0) return fail("--rate-limit and --rate-burst cannot be negative");
  flows.listen = o.listen;
  flows.threads = o.http_threads;
  flows.max_connections = o.max_connections;
  flows.max_connections_per_client = o.max_connections_per_client;
  flows.requests_per_second = o.rate_limit;
  flows.request_burst = o.rate_burst;
  flows.header_limit = o.max_header_bytes;
  flows.body_limit = o.max_body_bytes;
  flows.tls_cert = o.tls_cert;
  flows.tls_key = o.tls_key;
  // The admin listener: the same deadlines, its own smaller caps, and its
  // own certificate (the same files may be given to both).
  http::server_options admin = flows;
  admin.listen = o.admin_listen;
  admin.threads = 1;
  admin.thread_name = "fs-admin-http";
  admin.max_connections = std::min<std::size_t>(flows.max_connections, 256);
  admin.max_connections_per_client = std::min<std::size_t>(flows.max_connections_per_client, 64);
  admin.requests_per_second = 200;
  admin.request_burst = 400;
  admin.header_limit = 16 * 1024;
  admin.body_limit = 32 << 20;  // a remote deploy's pack of git objects (POST .../push)
  admin.tls_cert = o.admin_tls_cert;
  admin.tls_key = o.admin_tls_key;
  return std::make_pair(std::move(flows), std::move(admin));
}

// Connections are file descriptors: use what the hard limit allows.
void raise_descriptor_limit() {
  rlimit l{};
  if (getrlimit(RLIMIT_NOFILE, &l) == 0 && l.rlim_cur < l.rlim_max) {
    l.rlim_cur = l.rlim_max;
    setrlimit(RLIMIT_NOFILE, &l);
  }
}

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

  auto listeners = listener_options(o);
  if (!listeners) {
    std::fprintf(stderr, "flowstate serve: %s\n", listeners.error().c_str());
    return 2;
  }
  raise_descriptor_limit();
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
  if (!o.control_plane.empty() && o.control_plane_secret.empty()) {
    std::fprintf(stderr,
                 "--control-plane needs the node secret it shares with the control plane "
                 "(FLOWSTATE_NODE_SECRET, or --control-plane-secret)\n");
    return 2;
  }
  std::shared_ptr<admin::usage_reporter> usage;  // hosted mode's metering
  if (!o.control_plane.empty()) {
    // Hosted mode: each project's ceiling is its team's plan, and its
    // sources take new input within its team's lease of executions
    // (docs/hosted.md).
    auto plane = std::make_shared<admin::control_plane>(o.control_plane, o.control_plane_secret);
    eo.hosted_plan = [plane](const std::string& project) { return plane->plan_limits(project); };
    usage = std::make_shared<admin::usage_reporter>(plane);
    eo.meter = usage;
    if (!o.pool.empty()) {
      eo.pool = o.pool;
      usage->set_pool(o.pool);
    }
    // Tenants' drivers reach public addresses only (SSRF; outbound.hpp).
    drivers::outbound::set_public_only(true);
    for (auto& cidr : o.hosted_allow_internal)
      if (auto bad = drivers::outbound::allow_network(cidr); !bad.empty()) {
        std::fprintf(stderr, "--hosted-allow-internal: %s\n", bad.c_str());
        return 2;
      }
    eo.hosted_domain = o.hosted_domain;
  }
  int64_t ttl = parse_age_ms(o.idempotency_ttl);
  if (ttl <= 0) {
    std::fprintf(stderr, "flowstate serve: expected --idempotency-ttl like 24h, 30m or 7d, found \"%s\"\n",
                 o.idempotency_ttl.c_str());
    return 2;
  }
  eo.idempotency_ttl_ms = static_cast<uint64_t>(ttl);
  cluster_flags cluster = o.cluster;
  if (const char* u = std::getenv("FLOWSTATE_ETCD_USER")) cluster.etcd_user = u;
  if (const char* p = std::getenv("FLOWSTATE_ETCD_PASSWORD")) cluster.etcd_password = p;
  if (!cluster.etcd.empty()) {
    eo.project_ids = project_ids_in(cluster);
    eo.node_name = cluster.node;
    eo.cluster_name = cluster.name;
    if (!cluster.peer_listen.empty()) {
      auto secret = cluster_secret(cluster);
      if (!secret) {
        std::fprintf(stderr, "flowstate serve: %s\n", secret.error().c_str());
        return 2;
      }
      eo.peer_listen = cluster.peer_listen;
      eo.cluster_secret = std::move(*secret);
    }
  }
  eo.data_dir = data_dir;
  {
    auto key = secrets::find_master_key(o.master_key, data_dir + "/master.key");
    if (!key) {
      std::fprintf(stderr, "flowstate serve: %s\n", key.error().c_str());
      return 1;
    }
    eo.master_key = *key;
  }
  eo.worker_binary = o.worker.empty() ? executable_dir() + "/flowstate-worker" : o.worker;
  eo.python_worker_binary = executable_dir() + "/flowstate-pyworker";
  eo.shards = o.shards;
  eo.max_in_flight_per_shard = o.max_in_flight;
  eo.sink_backlog = o.sink_backlog;
  eo.state_cache_bytes = o.state_cache_mb << 20;
  eo.scheduler_threads = o.scheduler_threads;
  eo.scheduler_policy = o.scheduler_policy;
  auto started = engine::start(eo);
  if (!started) {
    std::fprintf(stderr, "flowstate serve: %s\n", started.error().c_str());
    return 1;
  }
  auto& eng = **started;
  // The reports read the engine's store: they stop before the engine goes.
  struct stop_reports {
    std::shared_ptr<admin::usage_reporter> u;
    ~stop_reports() {
      if (u) u->stop();
    }
  } stop_usage{usage};
  if (usage) usage->set_node((cluster.node.empty() ? eng.store_id() : cluster.node) + "@" + eng.incarnation());
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
  // Projects created by remote deploys (flowstate deploy to this node).
  // One that cannot be served any more (its team moved to another pool,
  // its plan shrank) is skipped, named: the node serves the others.
  for (auto& dir : refuse_functions ? std::vector<std::string>{} : engine::pushed_projects(data_dir))
    if (auto st = eng.add_project(dir); !st)
      std::fprintf(stderr, "flowstate serve: not serving %s: %s\n", dir.c_str(), st.error().c_str());
  if (auto st = refuse_functions ? status::success() : eng.recover(); !st) {
    std::fprintf(stderr, "flowstate serve: recovery failed: %s\n", st.error().c_str());
    return 1;
  }
  if (usage) usage->start([&eng] { return eng.metered_counts(); });

  if (!cluster.etcd.empty()) {
    // Until the node has joined and seen the placement, no key group is
    // known to be its own: nothing runs here.
    eng.set_key_group_gate([](uint32_t) {
      engine::gate_decision d;
      d.refuse = http::problem(503, "joining the cluster", "this node is joining its cluster; retry shortly");
      d.refuse->headers.emplace_back("Retry-After", "1");
      return d;
    });
  }
  auto flows =
      http::server::start(listeners->first, [&eng, refuse_functions](http::request&& r, http::responder_ptr p) {
        if (refuse_functions)
          return p->send(
              http::problem(503, "sandbox unavailable", "this node runs no function: " + eng.isolation().summary()));
        eng.handle_flow_request(std::move(r), std::move(p));
      });
  if (!flows) {
    std::fprintf(stderr, "flowstate serve: %s\n", flows.error().c_str());
    return 1;
  }
  admin::admin_options admin_opts;
  {
    // "Name <email>": the author of commits made from edits (the UI).
    const auto& a = o.edit_author;
    auto lt = a.find('<');
    auto gt = a.rfind('>');
    if (lt == std::string::npos || gt == std::string::npos || gt < lt || lt == 0) {
      std::fprintf(stderr, "--edit-author: expected \"Name <email>\", got \"%s\"\n", a.c_str());
      return 2;
    }
    auto name = a.substr(0, lt);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    admin_opts.edit_author_name = name;
    admin_opts.edit_author_email = a.substr(lt + 1, gt - lt - 1);
  }
  if (!o.control_plane.empty() && o.control_plane_secret.empty()) {
    std::fprintf(stderr,
                 "--control-plane needs the node secret it shares with the control plane "
                 "(FLOWSTATE_NODE_SECRET, or --control-plane-secret)\n");
    return 2;
  }
  admin_opts.control_plane = o.control_plane;
  admin_opts.control_plane_secret = o.control_plane_secret;
  admin::admin_api api(eng, token, admin_opts);  // stopped before the engine goes (declared after it)
  auto admin = http::server::start(listeners->second, api.handler());
  if (!admin) {
    std::fprintf(stderr, "flowstate serve: %s\n", admin.error().c_str());
    return 1;
  }
  write_file(data_dir + "/listen.addr", (*flows)->address());
  if (!o.admin_tls_cert.empty()) {
    // The CLI reads these: it speaks TLS to the admin API and trusts this
    // certificate (pinned beside the admin token).
    std::error_code ec;
    std::filesystem::copy_file(o.admin_tls_cert, data_dir + "/admin.crt",
                               std::filesystem::copy_options::overwrite_existing, ec);
    write_file(data_dir + "/admin.addr", "https://" + (*admin)->address());
    if (usage) usage->set_addresses("https://" + (*admin)->address(), (*flows)->address());
  } else {
    std::error_code ec;
    std::filesystem::remove(data_dir + "/admin.crt", ec);
    write_file(data_dir + "/admin.addr", (*admin)->address());
    if (usage) usage->set_addresses((*admin)->address(), (*flows)->address());
  }
  for (auto& p : eng.projects())
    std::printf("flowstate: project %s at revision %.12s (%s)\n", p.name.c_str(), p.revision.c_str(), p.dir.c_str());
  std::unique_ptr<cluster_node> member;  // leaves the cluster before the engine stops
  if (!cluster.etcd.empty()) {
    auto joined = join_cluster(cluster, eng, (*flows)->address(), (*admin)->address());
    if (!joined) {
      std::fprintf(stderr, "flowstate serve: %s\n", joined.error().c_str());
      return 1;
    }
    member = std::move(*joined);
  }
  std::printf("flowstate: serving flows on %s://%s, admin API on %s://%s (data in %s)\n",
              o.tls_cert.empty() ? "http" : "https", (*flows)->address().c_str(),
              o.admin_tls_cert.empty() ? "http" : "https", (*admin)->address().c_str(), data_dir.c_str());
  std::fflush(stdout);
  up = true;

  int sig = stop_requested.get();
  std::printf("flowstate: %s received, draining\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  std::fflush(stdout);
  (*flows)->stop_accepting();
  member.reset();
  eng.drain(o.drain_timeout_ms);
  (*flows)->stop();
  api.stop();
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
  cmd->add_option("--edit-author", o->edit_author,
                  "\"Name <email>\": the author of revisions committed from edits (the admin API's /edits, the UI)")
      ->capture_default_str();
  cmd->add_option("--control-plane", o->control_plane,
                  "Hosted mode: host:port of `flowstate manager`; tenants' API tokens reach their team's projects "
                  "(named TEAM.PROJECT) here, checked there (docs/hosted.md)");
  cmd->add_option("--hosted-domain", o->hosted_domain,
                  "Hosted mode: serve project TEAM.PROJECT at host PROJECT.TEAM.DOMAIN (default: under the path "
                  "/TEAM/PROJECT)");
  cmd->add_option("--pool", o->pool,
                  "Hosted mode: the pool of nodes this node belongs to; it runs only the projects of the team the "
                  "control plane places on it (dedicated placement; default: the shared pool)")
      ->check([](const std::string& p) {
        bool ok = !p.empty() && p.size() <= 63 && p.front() != '-' && p != "shared";
        for (char ch : p) ok = ok && ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-');
        return ok ? std::string() : "a pool's name: 1 to 63 of a-z, 0-9 and -, not starting with -, not \"shared\"";
      });
  cmd->add_option("--hosted-allow-internal", o->hosted_allow_internal,
                  "Hosted mode: an internal network tenants' drivers may reach all the same (the operator's own "
                  "services), ADDRESS/PREFIX; repeatable")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--control-plane-secret", o->control_plane_secret,
                  "The secret nodes share with the control plane (or FLOWSTATE_NODE_SECRET)")
      ->envname("FLOWSTATE_NODE_SECRET");
  cmd->add_option("--plan", o->plan,
                  "The operator's plan (YAML): limits every project runs within, and per project name; "
                  "see docs/security.md");
  cmd->add_option("--shards", o->shards, "Shard actors (key-group ranges)")->capture_default_str();
  cmd->add_option("--http-threads", o->http_threads, "Threads of the flow listener")->capture_default_str();
  cmd->add_option("--max-in-flight", o->max_in_flight, "Messages in flight per shard before sources get 503")
      ->capture_default_str();
  cmd->add_option("--master-key", o->master_key,
                  "File holding the master key that opens the projects' secrets (default: $FLOWSTATE_MASTER_KEY, "
                  "$FLOWSTATE_MASTER_KEY_FILE, or DATA/master.key)");
  cmd->add_option("--sink-backlog", o->sink_backlog,
                  "Deliveries a project's sinks may have pending (a target down) before its sources get 503")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000000}));
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
  auto* limits = "Listener limits (docs/http.md)";
  cmd->add_option("--header-timeout", o->header_timeout,
                  "A request's line and headers must arrive within this (a new connection's first request: "
                  "from the connection)")
      ->group(limits)
      ->capture_default_str();
  cmd->add_option("--body-timeout", o->body_timeout,
                  "A request's body must arrive, and its response be taken by the client, within this")
      ->group(limits)
      ->capture_default_str();
  cmd->add_option("--idle-timeout", o->idle_timeout, "A kept-alive connection without a new request is closed after")
      ->group(limits)
      ->capture_default_str();
  cmd->add_option("--max-connections", o->max_connections,
                  "Connections the flow listener keeps open at once (0: no cap); the admin listener: at most 256")
      ->group(limits)
      ->capture_default_str();
  cmd->add_option("--max-connections-per-client", o->max_connections_per_client,
                  "Connections per client IP address (0: no cap); the admin listener: at most 64")
      ->group(limits)
      ->capture_default_str();
  cmd->add_option("--rate-limit", o->rate_limit,
                  "Requests per second per client IP address on the flow listener, beyond which 429 (0: no limit)")
      ->group(limits)
      ->capture_default_str();
  cmd->add_option("--rate-burst", o->rate_burst, "Requests a client may send at once above --rate-limit (0: twice it)")
      ->group(limits)
      ->capture_default_str();
  cmd->add_option("--max-header-bytes", o->max_header_bytes, "Request line and headers; larger get 431")
      ->group(limits)
      ->capture_default_str();
  cmd->add_option("--max-body-bytes", o->max_body_bytes, "Request body; larger get 413")
      ->group(limits)
      ->capture_default_str();
  auto* tls = "TLS (docs/operations.md)";
  cmd->add_option("--tls-cert", o->tls_cert, "PEM certificate (chain) of the flow listener: it then speaks HTTPS only")
      ->group(tls);
  cmd->add_option("--tls-key", o->tls_key, "PEM private key of --tls-cert")->group(tls);
  cmd->add_option("--admin-tls-cert", o->admin_tls_cert,
                  "PEM certificate (chain) of the admin listener (may be the same file as --tls-cert)")
      ->group(tls);
  cmd->add_option("--admin-tls-key", o->admin_tls_key, "PEM private key of --admin-tls-cert")->group(tls);
  auto* cluster = "Cluster (docs/cluster.md)";
  cmd->add_option("--cluster", o->cluster.etcd,
                  "Join the cluster kept in this etcd (http://HOST:PORT); without it the node is embedded")
      ->group(cluster);
  cmd->add_option("--node", o->cluster.node, "This node's name in the cluster")->group(cluster);
  cmd->add_option("--peer-listen", o->cluster.peer_listen,
                  "Address other nodes reach this one at (HOST:PORT; port 0 picks one): requests for keys another "
                  "node owns are forwarded through it")
      ->group(cluster);
  cmd->add_option("--peer-advertise", o->cluster.peer_advertise,
                  "Address to register for other nodes instead of the one --peer-listen bound (HOST:PORT of a "
                  "proxy or NAT in front of it)")
      ->group(cluster);
  cmd->add_option("--peer-route", o->cluster.peer_routes,
                  "NODE=HOST:PORT[,NODE=HOST:PORT...]: reach node NODE there instead of at the address it "
                  "registered (a proxy between the two)")
      ->group(cluster);
  cmd->add_option("--cluster-secret-file", o->cluster.secret_file,
                  "File holding the secret every node of the cluster shares (else $FLOWSTATE_CLUSTER_SECRET)")
      ->group(cluster);
  cmd->add_option("--cluster-name", o->cluster.name, "The cluster's name in etcd (several may share one etcd)")
      ->group(cluster)
      ->capture_default_str();
  cmd->add_option("--lease-ttl", o->cluster.lease_ttl,
                  "A node whose etcd lease is not renewed within this is out of the cluster")
      ->group(cluster)
      ->capture_default_str();
  cmd->add_option("--cluster-settle", o->cluster.settle,
                  "The first placement waits until the set of nodes has been stable this long")
      ->group(cluster)
      ->capture_default_str();
  cmd->add_option("PROJECT_DIR", o->projects, "Project repositories to serve");
  cmd->callback([o] {
    int rc = serve(*o);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace flowstate::cli
