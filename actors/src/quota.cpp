#include "flowstate/actors/quota.hpp"

#include <chrono>

namespace flowstate {

int64_t quota_account::steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::optional<quota_refusal> quota_account::admit() const {
  const bool has_room = consumed_.load(std::memory_order_acquire) < limit_.load(std::memory_order_acquire);
  const bool fresh = steady_ms() < until_ms_.load(std::memory_order_acquire);
  const bool elsewhere = elsewhere_.load(std::memory_order_acquire);
  if (has_room && fresh && !elsewhere) return std::nullopt;
  std::lock_guard lock(mu_);
  if (elsewhere)
    return quota_refusal{421, 60,
                         "team \"" + team_ + "\"'s projects run on pool \"" + pool_ +
                             "\" (its dedicated nodes), not on this node's; nothing was accepted: send it there"};
  if (!fresh)
    return quota_refusal{503, 2,
                         "this node holds no current lease of executions for team \"" + team_ +
                             "\" (the control plane: " + why_ + "); nothing was accepted, retry shortly"};
  if (cap_reached_)
    return quota_refusal{429, retry_after_s_,
                         "team \"" + team_ + "\" has used every execution of its plan and credits for " + month_ +
                             "; nothing was accepted"};
  refused_.fetch_add(1, std::memory_order_acq_rel);
  last_refused_ms_.store(steady_ms(), std::memory_order_release);
  return quota_refusal{429, retry_after_s_,
                       "team \"" + team_ + "\"'s executions left for " + month_ +
                           " are leased to other nodes right now; nothing was accepted, retry shortly"};
}

void quota_account::renew(uint64_t base, uint64_t lease, bool cap_reached, unsigned retry_after_s, std::string month,
                          int64_t until_ms) {
  std::lock_guard lock(mu_);
  cap_reached_ = cap_reached;
  retry_after_s_ = retry_after_s ? retry_after_s : 1;
  month_ = std::move(month);
  why_ = "answering";
  base_.store(base, std::memory_order_release);
  refused_.store(0, std::memory_order_release);
  limit_.store(base + lease, std::memory_order_release);
  until_ms_.store(until_ms, std::memory_order_release);
}

uint64_t quota_account::used_since_renewal() const {
  const uint64_t base = base_.load(std::memory_order_acquire);
  const uint64_t now = consumed_.load(std::memory_order_acquire);
  return now > base ? now - base : 0;
}

bool quota_account::wants_renewal() const {
  const uint64_t base = base_.load(std::memory_order_acquire);
  const uint64_t limit = limit_.load(std::memory_order_acquire);
  const uint64_t lease = limit > base ? limit - base : 0;
  return steady_ms() >= until_ms_.load(std::memory_order_acquire) || (lease > 0 && 2 * used_since_renewal() >= lease) ||
         wanted();
}

bool quota_account::refused_recently() const {
  const int64_t at = last_refused_ms_.load(std::memory_order_acquire);
  return at >= 0 && steady_ms() - at < refused_recently_ms;
}

void quota_account::placed_elsewhere(std::string pool) {
  std::lock_guard lock(mu_);
  elsewhere_.store(!pool.empty(), std::memory_order_release);
  pool_ = std::move(pool);
}

void quota_account::unreachable(std::string why) {
  std::lock_guard lock(mu_);
  why_ = std::move(why);
}

}  // namespace flowstate
