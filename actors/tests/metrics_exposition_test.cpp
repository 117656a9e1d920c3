#include <doctest/doctest.h>

#include <string>

#include "../src/block_stats.hpp"
#include "../src/metrics_exposition.hpp"

using namespace flowstate::engine_detail;

namespace {

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

TEST_CASE("a block's executions and durations are a counter by outcome and a cumulative histogram") {
  block_stats s;
  s.record("ok", 200'000);                // 0.2 ms: the first bucket (0.5 ms)
  s.record("ok", 3'000'000);              // 3 ms: the 5 ms bucket
  s.record("Exception", 20'000'000'000);  // 20 s: only +Inf
  s.record("Timeout", -1);                // not run: counted, not timed
  metrics_exposition m;
  m.block("shop", "orders", "count", s);
  auto text = m.text();
  INFO(text);  // labels come sorted by name
  const std::string at = "block=\"count\",flow=\"orders\",project=\"shop\"";
  CHECK(has_line(text, "# TYPE flowstate_executions_total counter"));
  CHECK(
      has_line(text, "flowstate_executions_total{block=\"count\",flow=\"orders\",outcome=\"ok\",project=\"shop\"} 2"));
  CHECK(has_line(
      text, "flowstate_executions_total{block=\"count\",flow=\"orders\",outcome=\"Exception\",project=\"shop\"} 1"));
  CHECK(has_line(text,
                 "flowstate_executions_total{block=\"count\",flow=\"orders\",outcome=\"Timeout\",project=\"shop\"} 1"));
  CHECK(text.find("outcome=\"ResourceExhausted\"") == std::string::npos);
  CHECK(has_line(text, "# TYPE flowstate_execution_duration_seconds histogram"));
  CHECK(has_line(text, "flowstate_execution_duration_seconds_bucket{" + at + ",le=\"0.0005\"} 1"));
  CHECK(has_line(text, "flowstate_execution_duration_seconds_bucket{" + at + ",le=\"0.0025\"} 1"));
  CHECK(has_line(text, "flowstate_execution_duration_seconds_bucket{" + at + ",le=\"0.005\"} 2"));
  CHECK(has_line(text, "flowstate_execution_duration_seconds_bucket{" + at + ",le=\"10\"} 2"));
  CHECK(has_line(text, "flowstate_execution_duration_seconds_bucket{" + at + ",le=\"+Inf\"} 3"));
  CHECK(has_line(text, "flowstate_execution_duration_seconds_count{" + at + "} 3"));
  CHECK(has_line(text, "flowstate_execution_duration_seconds_sum{" + at + "} 20.0032"));
}

TEST_CASE("every documented family is described once, with node, project and worker samples") {
  metrics_exposition m;
  m.node(3, 4096);
  m.project("shop", "0123abcd", 2, 1500);
  m.workers("shop", "js", 1);
  m.workers("shop", "py", 0);
  auto text = m.text();
  for (auto* family : {"flowstate_in_flight_messages", "flowstate_state_cache_bytes", "flowstate_project_info",
                       "flowstate_errors_queued", "flowstate_trace_bytes", "flowstate_worker_processes"}) {
    CHECK_MESSAGE(count_of(text, std::string("# TYPE ") + family + " gauge\n") == 1, family);
    CHECK_MESSAGE(count_of(text, std::string("# HELP ") + family + " ") == 1, family);
  }
  CHECK(has_line(text, "flowstate_in_flight_messages 3"));
  CHECK(has_line(text, "flowstate_state_cache_bytes 4096"));
  CHECK(has_line(text, "flowstate_project_info{project=\"shop\",revision=\"0123abcd\"} 1"));
  CHECK(has_line(text, "flowstate_errors_queued{project=\"shop\"} 2"));
  CHECK(has_line(text, "flowstate_trace_bytes{project=\"shop\"} 1500"));
  CHECK(has_line(text, "flowstate_worker_processes{language=\"js\",project=\"shop\"} 1"));
  CHECK(has_line(text, "flowstate_worker_processes{language=\"py\",project=\"shop\"} 0"));
}

TEST_CASE("label values from project files are escaped, so a name cannot forge a sample") {
  block_stats s;
  s.record("ok", 1000);
  metrics_exposition m;
  m.block("p", "a\"} 1\nflowstate_fake 9", "b\\", s);
  auto text = m.text();
  CHECK(text.find("\nflowstate_fake 9") == std::string::npos);
  CHECK(text.find(R"(flow="a\"} 1\nflowstate_fake 9")") != std::string::npos);
  CHECK(text.find(R"(block="b\\")") != std::string::npos);
}
