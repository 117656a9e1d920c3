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
  auto r =
      refused->status == 421
          ? http::problem(421, "Misdirected Request", refused->detail)
          : http::problem(refused->status, refused->status == 429 ? "QuotaExceeded" : "QuotaUnknown", refused->detail,
                          refused->status == 429 ? problem_type_quota_exceeded : problem_type_quota_unknown);
  r.headers.emplace_back("Retry-After", std::to_string(refused->retry_after_s));
  return r;
}

}  // namespace flowstate::engine_detail
