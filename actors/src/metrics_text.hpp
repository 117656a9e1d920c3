#pragma once
// Writing the Prometheus text exposition format (version 0.0.4).
#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "block_stats.hpp"

namespace flowstate::engine_detail {

class metrics_writer {
 public:
  using label = std::pair<std::string_view, std::string_view>;

  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }

  void sample(std::string_view name, std::initializer_list<label> labels, double value) {
    out_ += name;
    if (labels.size()) {
      out_ += '{';
      bool first = true;
      for (auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        escape(v);
        out_ += '"';
      }
      out_ += '}';
    }
    char buf[40];
    std::snprintf(buf, sizeof buf, " %.17g\n", value);
    out_ += buf;
  }

  // The executions and duration histogram of one block.
  void block(const std::string& project, const std::string& flow, const std::string& block, const block_stats& s) {
    for (std::size_t i = 0; i < outcome_names.size(); ++i) {
      auto n = s.executions[i].load(std::memory_order_relaxed);
      if (n == 0 && i != 0) continue;
      sample("flowstate_executions_total",
             {{"project", project}, {"flow", flow}, {"block", block}, {"outcome", outcome_names[i]}}, double(n));
    }
    uint64_t cumulative = 0;
    char le[32];
    for (std::size_t b = 0; b <= duration_buckets.size(); ++b) {
      cumulative += s.durations[b].load(std::memory_order_relaxed);
      if (b < duration_buckets.size())
        std::snprintf(le, sizeof le, "%g", duration_buckets[b]);
      else
        std::snprintf(le, sizeof le, "+Inf");
      sample("flowstate_execution_duration_seconds_bucket",
             {{"project", project}, {"flow", flow}, {"block", block}, {"le", le}}, double(cumulative));
    }
    sample("flowstate_execution_duration_seconds_sum", {{"project", project}, {"flow", flow}, {"block", block}},
           double(s.duration_sum_ns.load(std::memory_order_relaxed)) / 1e9);
    sample("flowstate_execution_duration_seconds_count", {{"project", project}, {"flow", flow}, {"block", block}},
           double(cumulative));
  }

  std::string take() { return std::move(out_); }

 private:
  void escape(std::string_view v) {
    for (char c : v) {
      if (c == '\\' || c == '"') {
        out_ += '\\';
        out_ += c;
      } else if (c == '\n') {
        out_ += "\\n";
      } else {
        out_ += c;
      }
    }
  }

  std::string out_;
};

}  // namespace flowstate::engine_detail
