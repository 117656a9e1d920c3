// Hosted mode's metering on the node (docs/hosted.md "Metering and
// quotas"): the counters the control plane is told, and the sources'
// admission by the team's lease.
#include "engine_impl.hpp"
#include "flowstate/actors/quota.hpp"
#include "flowstate/runtime/keys.hpp"
#include "records.hpp"

namespace flowstate::engine_detail {

result<std::vector<engine::metered_count>> engine_impl::metered_counts() const {
  std::vector<metered_count> out;
  auto snap = std::atomic_load(&snapshot_);
  for (const auto& [_, rt] : snap->projects) {
    if (!rt->quota) continue;
    auto [begin, end] = key_group_counters_range(rt->tenant, rt->project_id);
    auto st = store_->scan_range(column::metering, begin, end, [&](std::string_view key, std::string_view value) {
      key_reader r(key);
      (void)r.u32(), (void)r.u32();
      auto group = r.u32();
      auto name = r.str();
      if (!group || !name) return true;
      if (auto month = metered_month(*name))
        out.push_back({rt->name, std::string(*month), *group, decode_count(value)});
      return true;
    });
    if (!st) return fail(st.error());
  }
  return out;
}

std::optional<http::response> quota_refusal_of(const project_rt& rt) {
  if (!rt.quota) return std::nullopt;
  auto refused = rt.quota->admit();
  if (!refused) return std::nullopt;
  // 429: the cap (QuotaExceeded, typed as an error); 503: no lease to trust;
  // 421: the team's projects run on another pool.
  http::response r =
      refused->status == 429   ? http::problem(429, "QuotaExceeded", refused->detail, problem_type_quota_exceeded)
      : refused->status == 503 ? http::problem(503, "QuotaUnknown", refused->detail, problem_type_quota_unknown)
                               : http::problem(refused->status, "Misdirected Request", refused->detail);
  r.headers.emplace_back("Retry-After", std::to_string(refused->retry_after_s));
  return r;
}

}  // namespace flowstate::engine_detail
