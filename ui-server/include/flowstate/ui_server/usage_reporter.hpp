#pragma once
// A hosted node's side of metering (docs/hosted.md "Metering and quotas").
// Once a second it sends the control plane every metered counter in its
// store (cumulative per project, month and key group) and gets back, per
// team with a project here, a lease: how many more executions it may start.
// A lease is used for at most 8 seconds without renewal (the control plane
// counts it as taken for 10), so a node cut off from the control plane
// stops accepting new input for its tenants rather than run past a cap.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "flowstate/actors/engine.hpp"
#include "flowstate/actors/quota.hpp"

namespace flowstate::admin {

class control_plane;

class usage_reporter final : public usage_meter {
 public:
  explicit usage_reporter(std::shared_ptr<control_plane> plane);
  ~usage_reporter() override;

  result<std::shared_ptr<quota_account>> account_for(const std::string& project) override;
  // This node's name and incarnation, the control plane's key for its
  // leases (a restarted node is a new one; its old leases age out). Before
  // the first deploy.
  void set_node(std::string node);
  // Dedicated placement: this node's pool ("shared" without --pool) and
  // where it answers, said in every report (the control plane tells a
  // team where its pool is; a team placed on another pool is refused).
  void set_pool(std::string pool);
  void set_addresses(std::string admin, std::string flows);

  // Where the counters come from (the engine, once started); reports start.
  using counters_source = std::function<result<std::vector<engine::metered_count>>()>;
  void start(counters_source counters);
  void stop();

 private:
  std::shared_ptr<control_plane> plane_;
  std::string node_;
  std::string pool_ = "shared", admin_, flows_;
  std::mutex mu_;                                                   // accounts_, counters_
  std::map<std::string, std::shared_ptr<quota_account>> accounts_;  // by team
  counters_source counters_;
  std::mutex report_mu_;  // one report at a time
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<bool> failing_{false};  // the last report failed (logged once per outage)
  std::thread thread_;

  // One round trip: the counters and leases for `teams`.
  status report(const std::vector<std::shared_ptr<quota_account>>& teams);
};

}  // namespace flowstate::admin
