#pragma once
// A real etcd (Debian's etcd-server) for tests: its own data directory and
// free loopback ports, stopped (SIGKILL) when the object goes.
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>

#include "flowstate/cluster/etcd.hpp"
#include "flowstate/cluster/loopback.hpp"

namespace flowstate::test {

class etcd_process {
 public:
  etcd_process() {
    char tmpl[] = "/tmp/flowstate-etcd-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    const int client = cluster::free_loopback_port(), peer = cluster::free_loopback_port();
    endpoint_ = "http://127.0.0.1:" + std::to_string(client);
    const std::string peer_url = "http://127.0.0.1:" + std::to_string(peer);
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string log = dir_ + "/etcd.log";
      FILE* f = std::freopen(log.c_str(), "w", stderr);
      (void)f;
      ::execlp("etcd", "etcd", "--name", "test", "--data-dir", (dir_ + "/data").c_str(), "--listen-client-urls",
               endpoint_.c_str(), "--advertise-client-urls", endpoint_.c_str(), "--listen-peer-urls", peer_url.c_str(),
               "--initial-advertise-peer-urls", peer_url.c_str(), "--initial-cluster", ("test=" + peer_url).c_str(),
               "--log-level", "error", static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) throw std::runtime_error("etcd exited at start: see " + dir_);
      auto c = cluster::etcd_client::connect(cluster::etcd_options::at(endpoint_));
      if (c && (*c)->get("probe")) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error("etcd did not start within 30 s: see " + dir_);
  }
  ~etcd_process() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // Returns once every thread of etcd is stopped: a SIGSTOP takes effect
  // when each thread is next scheduled, and a thread running on another
  // core could still answer a request sent right after kill() returns.
  void pause() {
    ::kill(pid_, SIGSTOP);
    for (int i = 0; i < 2000 && !all_stopped(); ++i) ::usleep(1000);
  }
  void resume() { ::kill(pid_, SIGCONT); }
  const std::string& endpoint() const { return endpoint_; }

 private:
  // True when every task of the process is in state T (stopped).
  bool all_stopped() const {
    const std::string tasks = "/proc/" + std::to_string(pid_) + "/task";
    DIR* d = ::opendir(tasks.c_str());
    if (!d) return true;
    bool stopped = true;
    while (auto* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::ifstream stat(tasks + "/" + e->d_name + "/stat");
      std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      auto close = text.rfind(')');
      if (close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'T' && text[close + 2] != 't')
        stopped = false;
    }
    ::closedir(d);
    return stopped;
  }

  std::string dir_, endpoint_;
  pid_t pid_ = -1;
};

}  // namespace flowstate::test
