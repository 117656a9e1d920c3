#pragma once
// Hosted mode (docs/hosted.md "Metering and quotas"): a team's lease of
// executions on this node. The control plane grants a node a number of
// executions per team; the node's sources accept new input for the team's
// projects while what it has run since the grant is below the lease and the
// lease is fresh. Every execution is also counted durably in the commit of
// its effects (keys.hpp, metered_key); the lease only decides admission.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "flowstate/runtime/result.hpp"

namespace flowstate {

// A source's refusal of new input: 429 QuotaExceeded (the cap, or other
// nodes hold what is left), 503 while no lease can be trusted (the
// control plane has not answered), or 421 when the team's projects run on
// another pool of nodes (dedicated placement). Nothing accepted before is affected.
struct quota_refusal {
  int status = 429;
  unsigned retry_after_s = 1;
  std::string detail;
};

class quota_account {
 public:
  explicit quota_account(std::string team) : team_(std::move(team)) {}
  const std::string& team() const { return team_; }

  // Executions this node has written for the team since it started.
  uint64_t consumed() const { return consumed_.load(std::memory_order_acquire); }
  void add_consumed(uint64_t n) { consumed_.fetch_add(n, std::memory_order_acq_rel); }

  // Whether a source may accept new input now (nullopt), else its refusal.
  // Lock-free while the lease has room.
  std::optional<quota_refusal> admit() const;

  // A lease from the control plane: `lease` executions counted from `base`
  // (consumed() when it was asked for), usable until `until_ms` (steady
  // clock). `retry_after_s` is the control plane's advice for refusals.
  void renew(uint64_t base, uint64_t lease, bool cap_reached, unsigned retry_after_s, std::string month,
             int64_t until_ms);
  // Dedicated placement: the team's projects run on pool `pool`, which is
  // not this node's (its sources refuse with 421 until it is again); ""
  // when the team is placed on this node's pool.
  void placed_elsewhere(std::string pool);
  // Executions run since the last renewal (under the current lease).
  uint64_t used_since_renewal() const;
  // Whether to ask for a new lease before the next regular report: half of
  // this one is used, it has expired, or a source was refused for want of
  // room while the cap is not reached.
  bool wants_renewal() const;
  // Whether a source was refused for want of room since the last renewal
  // (the control plane then gives this node a share even near the cap).
  bool wanted() const { return refused_.load(std::memory_order_acquire) > 0; }
  // Whether a source was refused for want of room in the last
  // `refused_recently_ms`: the control plane keeps such a node's share near
  // the cap, so that a client retrying after Retry-After finds it (one
  // report later the node would otherwise look idle and lose it).
  bool refused_recently() const;
  static constexpr int64_t refused_recently_ms = 8000;
  // The control plane could not be asked: the lease stays until it expires.
  void unreachable(std::string why);
  // The steady clock, in ms, that until_ms is on.
  static int64_t steady_ms();

 private:
  std::string team_;
  std::atomic<uint64_t> consumed_{0};
  std::atomic<uint64_t> base_{0};                     // consumed() at the last renewal's question
  std::atomic<uint64_t> limit_{0};                    // base + lease
  std::atomic<int64_t> until_ms_{0};                  // steady clock
  std::atomic<bool> elsewhere_{false};                // the team is placed on another pool (pool_)
  mutable std::atomic<uint64_t> refused_{0};          // no-room refusals since the last renewal
  mutable std::atomic<int64_t> last_refused_ms_{-1};  // steady clock; -1: never
  mutable std::mutex mu_;
  bool cap_reached_ = false;
  unsigned retry_after_s_ = 1;
  std::string month_, why_ = "no lease has been granted yet";
  std::string pool_;
};

// What the engine asks in hosted mode, at each deploy of a project.
class usage_meter {
 public:
  virtual ~usage_meter() = default;
  // The account of a project's team (TEAM.PROJECT), with a lease (asked for
  // now when the team has none yet). An error refuses the deploy.
  virtual result<std::shared_ptr<quota_account>> account_for(const std::string& project) = 0;
};

}  // namespace flowstate
