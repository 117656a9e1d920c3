#pragma once
// The execution trace (docs/trace.md): one event per execution, written
// in the same commit as the result it describes (so never before it), kept
// as a small metadata record and a payload record (input, outputs, state,
// logs) under time-ordered keys. Retention drops whole time ranges: payloads
// after `trace.full`, metadata after `trace.keep`, the oldest first beyond
// `trace.quota`.
#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "flowstate/actors/engine.hpp"
#include "flowstate/runtime/store.hpp"

namespace flowstate::engine_detail {

struct trace_event {
  uint32_t tenant = 0, project = 0;
  int64_t time_ms = 0;  // when the result was committed
  std::string_view revision, flow, block, key, message_id, trace_id;
  double duration_ms = 0;          // the call, as the node saw it
  std::string_view status = "ok";  // or the error type
  std::string_view error_message, error_id, details_json;
  std::string_view input_json;
  const std::vector<std::string>* outputs = nullptr;
  std::string_view state_change = "unchanged";  // "set", "deleted"
  std::string_view state_json;                  // when set
  const std::vector<std::string>* logs = nullptr;
  bool with_payload = true;  // false: `trace.full: 0`, metadata only
};

// Bytes of trace records per (project, kind, second), counted in memory on
// the data path (a counter merge per event cost a third of the throughput)
// and written out by the maintenance thread every second. A crash loses at
// most the last second's counts: the quota is approximate by that much.
class trace_bytes {
 public:
  void add(uint32_t tenant, uint32_t project, uint64_t second, uint64_t meta, uint64_t payload);
  // Adds the counts since the last call to `batch`, as counter merges.
  void flush_into(commit_batch& batch);

 private:
  struct counts {
    uint64_t meta = 0, payload = 0;
  };
  std::mutex mutex_;
  std::map<std::tuple<uint32_t, uint32_t, uint64_t>, counts> pending_;
};

// Adds the event's two records to `batch`, and their size to `bytes`.
void record_trace(commit_batch& batch, store& db, trace_bytes& bytes, const trace_event& e);

// Events of one project matching `q`, oldest first, as JSON objects.
result<std::vector<std::string>> query_trace(const store& db, uint32_t tenant, uint32_t project, const trace_query& q);

// Bytes of a project's trace as counted so far (both kinds).
result<uint64_t> trace_bytes_total(const store& db, uint32_t tenant, uint32_t project);

// Removes what the retention (flowstate.yaml `trace:`) no longer keeps, as
// of `now_ms`.
// The quota is checked at every call; removal by age only when `by_age`
// (each removal is a range tombstone: the engine does it every
// trace_age_interval_ms, not every second).
// A failed store write stops there and is returned (the next round retries).
status enforce_trace_retention(store& db, uint32_t tenant, uint32_t project, uint64_t full_ms, uint64_t keep_ms,
                               uint64_t quota_bytes, int64_t now_ms, bool by_age);

// How often removal by age runs for these settings: a tenth of the shortest
// retention, between 1 s and 60 s.
inline int64_t trace_age_interval_ms(uint64_t full_ms, uint64_t keep_ms) {
  uint64_t shortest = full_ms > 0 ? std::min(full_ms, keep_ms) : keep_ms;
  return static_cast<int64_t>(std::clamp<uint64_t>(shortest / 10, 1000, 60000));
}

}  // namespace flowstate::engine_detail
