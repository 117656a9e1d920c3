// Did-you-mean suggestions for near-miss names.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "project_detail.hpp"

namespace flowstate::detail {

size_t edit_distance(const std::string& a_in, const std::string& b_in) {
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  const std::string a = lower(a_in), b = lower(b_in);
  const size_t n = a.size(), m = b.size();
  // Three rows suffice for the transposition case of OSA distance.
  std::vector<size_t> before(m + 1), previous(m + 1), current(m + 1);
  for (size_t j = 0; j <= m; ++j) previous[j] = j;
  for (size_t i = 1; i <= n; ++i) {
    current[0] = i;
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        current[j] = std::min(current[j], before[j - 2] + 1);
    }
    before.swap(previous);
    previous.swap(current);
  }
  return previous[m];
}

std::string closest_name(const std::string& wrong, const std::vector<std::string>& candidates) {
  // Allow roughly one typo per three characters, at least one, at most
  // three; a truncated name (a prefix of three or more characters) also counts.
  const size_t allowed = std::clamp<size_t>((wrong.size() + 1) / 3, 1, 3);
  std::string best;
  size_t best_distance = allowed + 1;
  for (const auto& candidate : candidates) {
    if (candidate == wrong) continue;
    size_t d = edit_distance(wrong, candidate);
    if (wrong.size() >= 3 && candidate.compare(0, wrong.size(), wrong) == 0) d = std::min(d, allowed);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::string did_you_mean(const std::string& wrong, const std::vector<std::string>& candidates) {
  std::string best = closest_name(wrong, candidates);
  return best.empty() ? "" : " (did you mean \"" + best + "\"?)";
}

}  // namespace flowstate::detail
