// flowstate cluster up: etcd and N nodes on loopback, for trying a cluster
// on one machine (docs/cluster.md "Trying it"). Ctrl-C stops them all.
#include <CLI/CLI.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "flowstate/cluster/loopback.hpp"
#include "flowstate/cluster/membership.hpp"
#include "node_files.hpp"

namespace flowstate::cli {

namespace {

struct up_options {
  int nodes = 3;
  std::string data_dir;
  std::vector<std::string> projects;
  int first_port = 0;       // 0: free ports
  std::string replication;  // "N" or "N/M" (min_in_sync): written before the nodes start
};

pid_t start(const std::vector<std::string>& argv, const std::string& log, const std::vector<std::string>& env) {
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::setpgid(0, 0);  // Ctrl-C reaches this process, which stops the children itself
  // And if this process dies without stopping them (kill -9), they stop.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (FILE* f = std::freopen(log.c_str(), "a", stdout)) (void)f;
  ::dup2(STDOUT_FILENO, STDERR_FILENO);
  for (auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execvp(args[0], args.data());
  std::_Exit(127);
}

std::string random_secret() {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 32; ++i) out += "0123456789abcdef"[rd() & 15];
  return out;
}

volatile sig_atomic_t stop_requested = 0;

int cluster_up(const up_options& o) {
  if (o.nodes < 1 || o.nodes > 16) {
    std::fprintf(stderr, "flowstate cluster up: --nodes must be from 1 to 16, found %d\n", o.nodes);
    return 2;
  }
  namespace fs = std::filesystem;
  const std::string dir = o.data_dir.empty() ? default_data_dir() + "/cluster-up" : o.data_dir;
  fs::create_directories(dir);
  // etcd keeps its data in the directory: a second `cluster up` on it
  // finds the same cluster (placement, project ids).
  std::string secret;
  if (auto s = read_file(dir + "/cluster.secret")) {
    secret = *s;
  } else {
    secret = random_secret();
    write_file(dir + "/cluster.secret", secret);
    fs::permissions(dir + "/cluster.secret", fs::perms::owner_read | fs::perms::owner_write);
  }
  const int client = cluster::free_loopback_port(), peer = cluster::free_loopback_port();
  const std::string etcd_url = "http://127.0.0.1:" + std::to_string(client);
  const std::string etcd_peer = "http://127.0.0.1:" + std::to_string(peer);
  std::vector<pid_t> children;
  auto stop_all = [&] {
    for (auto it = children.rbegin(); it != children.rend(); ++it) ::kill(*it, SIGTERM);
    for (auto pid : children) ::waitpid(pid, nullptr, 0);
  };
  children.push_back(
      start({"etcd", "--name", "flowstate-up", "--data-dir", dir + "/etcd", "--listen-client-urls", etcd_url,
             "--advertise-client-urls", etcd_url, "--listen-peer-urls", etcd_peer, "--initial-advertise-peer-urls",
             etcd_peer, "--initial-cluster", "flowstate-up=" + etcd_peer, "--log-level", "error"},
            dir + "/etcd.log", {}));
  bool etcd_up = false;
  for (int i = 0; i < 300 && !etcd_up; ++i) {
    if (::waitpid(children.front(), nullptr, WNOHANG) == children.front()) break;
    auto c = cluster::etcd_client::connect(cluster::etcd_options::at(etcd_url, 1000));
    etcd_up = c && (*c)->get("probe").ok();
    if (!etcd_up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!etcd_up) {
    std::fprintf(stderr, "flowstate cluster up: etcd did not start (is etcd-server installed?); see %s/etcd.log\n",
                 dir.c_str());
    stop_all();
    return 1;
  }
  if (!o.replication.empty()) {
    cluster::cluster_config c;
    unsigned n = 0, m = 0;
    const int got = std::sscanf(o.replication.c_str(), "%u/%u", &n, &m);
    c.replication = n;
    c.min_in_sync = got == 2 ? m : std::min(n, 2u);
    if (got < 1 || n < 1 || n > 7 || c.min_in_sync < 1 || c.min_in_sync > n) {
      std::fprintf(
          stderr,
          "flowstate cluster up: expected --replication N or N/MIN_IN_SYNC (1 <= MIN <= N <= 7), found \"%s\"\n",
          o.replication.c_str());
      stop_all();
      return 2;
    }
    if (auto st = cluster::write_cluster_config(cluster::etcd_options::at(etcd_url), "default", c); !st) {
      std::fprintf(stderr, "flowstate cluster up: %s\n", st.error().c_str());
      stop_all();
      return 1;
    }
  }
  const std::string self = executable_dir() + "/flowstate";
  for (int i = 1; i <= o.nodes; ++i) {
    const std::string name = "n" + std::to_string(i);
    fs::create_directories(dir + "/" + name);
    for (auto f : {"listen.addr", "admin.addr"}) fs::remove(dir + "/" + name + "/" + f);
    std::vector<std::string> argv{
        self,
        "serve",
        "--cluster",
        etcd_url,
        "--node",
        name,
        "--peer-listen",
        "127.0.0.1:0",
        "--listen",
        o.first_port ? "127.0.0.1:" + std::to_string(o.first_port + 2 * (i - 1)) : std::string("127.0.0.1:0"),
        "--admin-listen",
        o.first_port ? "127.0.0.1:" + std::to_string(o.first_port + 2 * (i - 1) + 1) : std::string("127.0.0.1:0"),
        "--data",
        dir + "/" + name,
        "--lease-ttl",
        "3s",
        "--cluster-settle",
        "5s"};
    argv.insert(argv.end(), o.projects.begin(), o.projects.end());
    children.push_back(start(argv, dir + "/" + name + "/node.log", {"FLOWSTATE_CLUSTER_SECRET=" + secret}));
  }
  // Each node writes its addresses once it serves.
  std::vector<std::string> listening(static_cast<std::size_t>(o.nodes));
  for (int tries = 0; tries < 1200; ++tries) {
    bool all = true;
    for (int i = 1; i <= o.nodes; ++i) {
      auto& slot = listening[static_cast<std::size_t>(i - 1)];
      if (slot.empty())
        if (auto a = read_file(dir + "/n" + std::to_string(i) + "/listen.addr")) slot = *a;
      all = all && !slot.empty();
    }
    for (std::size_t c = 1; c < children.size(); ++c)
      if (::waitpid(children[c], nullptr, WNOHANG) == children[c]) {
        std::fprintf(stderr, "flowstate cluster up: node n%zu exited at start; see %s/n%zu/node.log\n", c, dir.c_str(),
                     c);
        children.erase(children.begin() + static_cast<std::ptrdiff_t>(c));
        stop_all();
        return 1;
      }
    if (all) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::printf("flowstate: cluster of %d node(s), etcd %s (data in %s)\n", o.nodes, etcd_url.c_str(), dir.c_str());
  for (int i = 1; i <= o.nodes; ++i)
    std::printf("  n%d: flows on http://%s  (--data %s/n%d)\n", i, listening[static_cast<std::size_t>(i - 1)].c_str(),
                dir.c_str(), i);
  std::printf("flowstate cluster status --cluster %s\nCtrl-C stops the cluster.\n", etcd_url.c_str());
  std::fflush(stdout);
  ::signal(SIGINT, [](int) { stop_requested = 1; });
  ::signal(SIGTERM, [](int) { stop_requested = 1; });
  while (!stop_requested) {
    for (std::size_t c = 0; c < children.size(); ++c)
      if (::waitpid(children[c], nullptr, WNOHANG) == children[c]) {
        std::fprintf(stderr, "flowstate cluster up: %s exited; stopping the cluster\n",
                     c == 0 ? "etcd" : ("node n" + std::to_string(c)).c_str());
        children.erase(children.begin() + static_cast<std::ptrdiff_t>(c));
        stop_requested = 1;
        break;
      }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::printf("flowstate: stopping the cluster\n");
  std::fflush(stdout);
  stop_all();
  return 0;
}

}  // namespace

void register_cluster_up_command(CLI::App& cluster) {
  auto o = std::make_shared<up_options>();
  auto* up = cluster.add_subcommand(
      "up", "Start etcd and N nodes on loopback serving the given projects, to try a cluster (Ctrl-C stops them)");
  up->add_option("--nodes", o->nodes, "How many nodes")->capture_default_str();
  up->add_option("--replication", o->replication,
                 "Copies of each key group, as N or N/MIN_IN_SYNC (cluster config; default: 3/2 from three nodes, 2/2 "
                 "with two)");
  up->add_option("--data", o->data_dir, "Where etcd and the nodes keep their data (default: DATA/cluster-up)");
  up->add_option("--port", o->first_port,
                 "Node i's flows listen on PORT+2(i-1), its admin API on the next port (default: free ports)");
  up->add_option("PROJECT_DIR", o->projects, "Project repositories every node serves");
  up->callback([o] {
    int rc = cluster_up(*o);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace flowstate::cli
