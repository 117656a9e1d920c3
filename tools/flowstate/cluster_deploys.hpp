#pragma once
// Deploys in a cluster (docs/cluster.md "Deploys"): a deploy through any
// node is checked there (built, functions compiled, nothing activated),
// then recorded in etcd as the project's active revision (deploys/NAME, a
// transaction on the revision it replaces: one order of deploys for the
// whole cluster); every node, the deploying one included, activates what
// etcd records (fetching the git objects from the deploying node when it
// lacks them) and reports (deployed/NAME/NODE); the deploy answers once
// every registered node reported. A node that starts activates the
// recorded revisions before it serves.
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "flowstate/actors/engine.hpp"
#include "flowstate/cluster/membership.hpp"

namespace flowstate::cli {

class cluster_deployer {
 public:
  cluster_deployer(cluster::membership& m, engine& eng, std::string self);
  ~cluster_deployer();

  // Activates every recorded revision this node does not run yet (blocking;
  // before the node serves).
  void catch_up();
  // Starts following the records (after catch_up) and installs the
  // engine's deploy hook.
  void start();
  // The view changed: records may have (any thread, never blocks).
  void changed();

 private:
  deploy_outcome deploy(const std::string& project, const std::string& revision, const std::string& expected);
  // Activates what the view records for each project served here, reports it.
  void reconcile(const cluster::cluster_view& v);
  void loop();

  cluster::membership& membership_;
  engine& engine_;
  std::string self_;
  std::map<std::string, uint64_t> applied_;    // project -> epoch activated (reconcile only)
  std::map<std::string, std::string> failed_;  // project -> the activation error last reported ("" none)
  std::mutex mu_;
  std::condition_variable cv_;
  bool dirty_ = false, stopping_ = false;
  int deploys_in_progress_ = 0;  // under mu_; the destructor waits for them
  std::thread thread_;
};

}  // namespace flowstate::cli
