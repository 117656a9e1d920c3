#include "trace.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>

#include "flowstate/runtime/json_text.hpp"
#include "flowstate/runtime/keys.hpp"
#include "records.hpp"

namespace flowstate::engine_detail {
namespace {

enum : uint32_t { meta_kind = 1, payload_kind = 2 };

// A JSON text bigger than this is traced as a note saying its size.
constexpr std::size_t max_traced_value = 64 * 1024;
// A query looks at no more metadata records than this.
constexpr std::size_t max_scanned = 1'000'000;

std::string kind_prefix(uint32_t tenant, uint32_t project, uint32_t kind) {
  return key_builder{}.u32(tenant).u32(project).u32(kind).take();
}

std::string at_time(uint32_t tenant, uint32_t project, uint32_t kind, uint64_t time_ms) {
  return key_builder{}.u32(tenant).u32(project).u32(kind).u64(time_ms).take();
}

std::string event_key(uint32_t tenant, uint32_t project, uint32_t kind, uint64_t time_ms, uint64_t seq) {
  return key_builder{}.u32(tenant).u32(project).u32(kind).u64(time_ms).u64(seq).take();
}

// Bytes of trace records per (kind, second), and per kind in total, in
// `metering` (merge counters): retention and the quota read these instead of
// scanning the trace.
std::string bytes_key(uint32_t tenant, uint32_t project, uint32_t kind, uint64_t second) {
  return key_builder{}.u32(tenant).u32(project).str("trace").u32(kind).u64(second).take();
}
std::string bytes_prefix(uint32_t tenant, uint32_t project, uint32_t kind) {
  return key_builder{}.u32(tenant).u32(project).str("trace").u32(kind).take();
}
std::string total_key(uint32_t tenant, uint32_t project, uint32_t kind) {
  return key_builder{}.u32(tenant).u32(project).str("trace-total").u32(kind).take();
}

uint64_t second_of(std::string_view key) {
  key_reader r(key);
  (void)r.u32();
  (void)r.u32();
  (void)r.str();
  (void)r.u32();
  auto s = r.u64();
  return s ? *s : 0;
}

void field(std::string& out, const char* name, std::string_view value) {
  out += ",\"";
  out += name;
  out += "\":";
  append_json_string(out, value);
}

void json_value(std::string& out, const char* name, std::string_view json) {
  out += ",\"";
  out += name;
  out += "\":";
  if (json.size() > max_traced_value)
    append_json_string(out, "(not traced: " + std::to_string(json.size()) + " bytes)");
  else
    out += json.empty() ? std::string_view("null") : json;
}

void string_list(std::string& out, const char* name, const std::vector<std::string>* items, bool json) {
  out += ",\"";
  out += name;
  out += "\":[";
  std::size_t bytes = 0;
  if (items) {
    for (std::size_t i = 0; i < items->size(); ++i) {
      const auto& item = (*items)[i];
      if (i) out += ',';
      bytes += item.size();
      if (bytes > max_traced_value)
        append_json_string(out, "(not traced: " + std::to_string(item.size()) + " bytes)");
      else if (json)
        out += item;
      else
        append_json_string(out, item);
    }
  }
  out += ']';
}

// Credentials a request carries are not kept in the trace: the string value
// of any member named like one (an HTTP request's headers are lower-case)
// becomes "(redacted)". The function still got them; the trace only keeps
// the rest for `trace.full`.
std::string redact_credentials(std::string_view json) {
  static constexpr std::string_view names[] = {"\"authorization\":\"", "\"proxy-authorization\":\"", "\"cookie\":\"",
                                               "\"set-cookie\":\"", "\"x-api-key\":\""};
  std::string out;
  std::size_t copied = 0;
  for (;;) {
    std::size_t next = std::string_view::npos, length = 0;
    for (auto name : names) {
      auto at = json.find(name, copied);
      if (at < next) next = at, length = name.size();
    }
    if (next == std::string_view::npos) break;
    std::size_t value = next + length, end = value;
    while (end < json.size() && json[end] != '"') end += json[end] == '\\' ? 2 : 1;
    if (end >= json.size()) break;
    out.append(json.substr(copied, value - copied));
    out += "(redacted)";
    copied = end;  // from the closing quote
  }
  if (copied == 0) return std::string(json);
  out.append(json.substr(copied));
  return out;
}

// "time-seq" from an event key.
std::string cursor_of(std::string_view key) {
  key_reader r(key);
  (void)r.u32();
  (void)r.u32();
  (void)r.u32();
  auto time = r.u64();
  auto seq = r.u64();
  if (!time || !seq) return "";
  return std::to_string(*time) + "-" + std::to_string(*seq);
}

bool parse_cursor(const std::string& cursor, uint64_t& time, uint64_t& seq) {
  auto dash = cursor.find('-');
  if (dash == std::string::npos) return false;
  auto a = std::from_chars(cursor.data(), cursor.data() + dash, time);
  auto b = std::from_chars(cursor.data() + dash + 1, cursor.data() + cursor.size(), seq);
  return a.ec == std::errc() && b.ec == std::errc() && b.ptr == cursor.data() + cursor.size();
}

struct meta_fields {
  uint64_t time_ms = 0, duration_us = 0;
  std::string status, revision, flow, block, key, message_id, trace_id, state_change, error, error_id;
  uint32_t outputs = 0;
};

bool decode_meta(std::string_view bytes, meta_fields& m) {
  key_reader r(bytes);
  auto time = r.u64();
  auto duration = r.u64();
  if (!time || !duration) return false;
  m.time_ms = *time;
  m.duration_us = *duration;
  for (std::string* field : {&m.status, &m.revision, &m.flow, &m.block, &m.key, &m.message_id, &m.trace_id}) {
    auto v = r.str();
    if (!v) return false;
    *field = std::move(*v);
  }
  if (m.trace_id.empty()) m.trace_id = m.message_id;
  auto outputs = r.u32();
  auto change = r.str();
  if (!outputs || !change) return false;
  m.outputs = *outputs;
  m.state_change = std::move(*change);
  if (!r.at_end()) {
    auto error = r.str();
    auto id = r.str();
    if (error) m.error = std::move(*error);
    if (id) m.error_id = std::move(*id);
  }
  return true;
}

bool matches(const meta_fields& m, const trace_query& q) {
  auto is = [](const std::string& got, const std::string& want) { return want.empty() || got == want; };
  if (!is(m.flow, q.flow) || !is(m.block, q.block) || !is(m.key, q.key) || !is(m.trace_id, q.trace_id)) return false;
  return !q.errors_only || m.status != "ok";
}

// The event as the API shows it: the metadata, its cursor, and the payload
// (or "payload": "expired" once retention dropped it).
result<std::string> render(const store& db, std::string_view key, const meta_fields& m, uint32_t tenant,
                           uint32_t project) {
  std::string out = "{\"time\":";
  append_json_string(out, iso_time(static_cast<int64_t>(m.time_ms)));
  out += ",\"timeMs\":" + std::to_string(m.time_ms);
  field(out, "revision", m.revision);
  field(out, "flow", m.flow);
  field(out, "block", m.block);
  field(out, "key", m.key);
  field(out, "messageId", m.message_id);
  field(out, "traceId", m.trace_id);
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.3f", double(m.duration_us) / 1000);
  out += ",\"durationMs\":";
  out += duration;
  field(out, "status", m.status);
  if (m.status != "ok") {
    field(out, "error", m.error);
    field(out, "errorId", m.error_id);
  }
  out += ",\"outputCount\":" + std::to_string(m.outputs);
  field(out, "stateChange", m.state_change);
  field(out, "cursor", cursor_of(key));
  // The payload key differs from the metadata key in the kind's last byte.
  std::string payload_key(key);
  payload_key[kind_prefix(tenant, project, meta_kind).size() - 1] = static_cast<char>(payload_kind);
  auto payload = db.read(column::trace, payload_key);
  if (!payload) return fail(payload.error());
  if (*payload && (*payload)->size() > 2) {
    out += ',';
    out.append(**payload, 1, (*payload)->size() - 1);
  } else {
    out += ",\"payload\":\"expired\"}";
  }
  return out;
}

}  // namespace

void trace_bytes::add(uint32_t tenant, uint32_t project, uint64_t second, uint64_t meta, uint64_t payload) {
  std::lock_guard lock(mutex_);
  auto& c = pending_[{tenant, project, second}];
  c.meta += meta;
  c.payload += payload;
}

void trace_bytes::flush_into(commit_batch& batch) {
  std::map<std::tuple<uint32_t, uint32_t, uint64_t>, counts> taken;
  {
    std::lock_guard lock(mutex_);
    taken.swap(pending_);
  }
  std::map<std::pair<uint32_t, uint32_t>, counts> totals;
  for (auto& [at, c] : taken) {
    auto [tenant, project, second] = at;
    batch.add_count(bytes_key(tenant, project, meta_kind, second), c.meta);
    if (c.payload) batch.add_count(bytes_key(tenant, project, payload_kind, second), c.payload);
    auto& t = totals[{tenant, project}];
    t.meta += c.meta;
    t.payload += c.payload;
  }
  for (auto& [p, t] : totals) {
    batch.add_count(total_key(p.first, p.second, meta_kind), t.meta);
    batch.add_count(total_key(p.first, p.second, payload_kind), t.payload);
  }
}

void record_trace(commit_batch& batch, store& db, trace_bytes& bytes, const trace_event& e) {
  const uint64_t seq = db.next_sequence();
  // The metadata as a compact tuple (rendered to JSON when queried): every
  // execution writes one, so bytes and formatting here cost throughput.
  key_builder m;
  m.u64(static_cast<uint64_t>(e.time_ms))
      .u64(static_cast<uint64_t>(e.duration_ms * 1000))
      .str(e.status)
      .str(e.revision)
      .str(e.flow)
      .str(e.block)
      .str(e.key)
      .str(e.message_id)
      .str(e.trace_id == e.message_id ? std::string_view() : e.trace_id)
      .u32(static_cast<uint32_t>(e.outputs ? e.outputs->size() : 0))
      .str(e.state_change);
  if (e.status != "ok") m.str(e.error_message).str(e.error_id);
  std::string meta = m.take();

  const auto time = static_cast<uint64_t>(e.time_ms);
  auto meta_key = event_key(e.tenant, e.project, meta_kind, time, seq);
  if (!e.with_payload) {
    bytes.add(e.tenant, e.project, time / 1000, meta_key.size() + meta.size(), 0);
    batch.put(column::trace, std::move(meta_key), std::move(meta));
    return;
  }
  std::string payload = "{";
  payload += "\"input\":";
  payload += e.input_json.size() > max_traced_value
                 ? json_quote("(not traced: " + std::to_string(e.input_json.size()) + " bytes)")
             : e.input_json.empty() ? std::string("null")
                                    : redact_credentials(e.input_json);
  string_list(payload, "outputs", e.outputs, true);
  if (e.state_change == "set") json_value(payload, "state", e.state_json);
  string_list(payload, "logs", e.logs, false);
  if (!e.details_json.empty() && e.details_json != "{}") json_value(payload, "details", e.details_json);
  payload += '}';

  auto payload_key = event_key(e.tenant, e.project, payload_kind, time, seq);
  const uint64_t meta_bytes = meta_key.size() + meta.size(), payload_bytes = payload_key.size() + payload.size();
  batch.put(column::trace, std::move(meta_key), std::move(meta));
  batch.put(column::trace, std::move(payload_key), std::move(payload));
  bytes.add(e.tenant, e.project, time / 1000, meta_bytes, payload_bytes);
}

result<std::vector<std::string>> query_trace(const store& db, uint32_t tenant, uint32_t project, const trace_query& q) {
  const auto prefix = kind_prefix(tenant, project, meta_kind);
  std::string begin = q.since_ms > 0 ? at_time(tenant, project, meta_kind, static_cast<uint64_t>(q.since_ms)) : prefix;
  std::string end = q.until_ms > 0 ? at_time(tenant, project, meta_kind, static_cast<uint64_t>(q.until_ms) + 1)
                                   : prefix_successor(prefix);
  std::vector<std::string> out;
  std::size_t scanned = 0;
  const std::size_t limit = std::max<std::size_t>(1, q.limit);
  meta_fields m;
  std::optional<std::string> unreadable;
  auto visit = [&](std::string_view key, std::string_view meta) {
    if (++scanned > max_scanned) return false;
    if (!decode_meta(meta, m) || !matches(m, q)) return true;
    auto event = render(db, key, m, tenant, project);
    if (!event) {
      unreadable = event.error();
      return false;
    }
    out.push_back(std::move(*event));
    return out.size() < limit;
  };
  uint64_t time = 0, seq = 0;
  if (!q.after.empty() && !parse_cursor(q.after, time, seq))
    return fail("after: \"" + q.after.substr(0, 64) + "\" is not a cursor (an event's `cursor`, TIME-SEQUENCE)");
  if (!q.after.empty()) {
    // Strictly after the cursor's key: the key followed by a zero byte.
    auto after = event_key(tenant, project, meta_kind, time, seq) + '\0';
    auto st = db.scan_range(column::trace, std::max(begin, after), end, visit);
    if (!st) return fail(st.error());
    if (unreadable) return fail(*unreadable);
    return out;
  }
  auto st = db.scan_range_reverse(column::trace, begin, end, visit);
  if (!st) return fail(st.error());
  if (unreadable) return fail(*unreadable);
  std::reverse(out.begin(), out.end());
  return out;
}

namespace {

result<uint64_t> total_of(const store& db, uint32_t tenant, uint32_t project, uint32_t kind) {
  auto v = db.read(column::metering, total_key(tenant, project, kind));
  if (!v) return fail(v.error());
  uint64_t n = *v ? decode_count(**v) : 0;
  return n > (uint64_t{1} << 62) ? 0 : n;  // a transient negative while counters settle
}

// Removes the records of `kind` before `second` and their byte counters.
status remove_before(store& db, uint32_t tenant, uint32_t project, uint32_t kind, uint64_t second) {
  const auto prefix = bytes_prefix(tenant, project, kind);
  const auto end = bytes_key(tenant, project, kind, second);
  uint64_t bytes = 0;
  bool any = false;
  auto st = db.scan_range(column::metering, prefix, end, [&](std::string_view, std::string_view value) {
    bytes += decode_count(value);
    any = true;
    return true;
  });
  if (!st || !any) return st;
  // Each step only once the one before it succeeded: the byte counters
  // never go down for records that are still there.
  if (st = db.delete_range(column::trace, kind_prefix(tenant, project, kind),
                           at_time(tenant, project, kind, second * 1000));
      !st)
    return st;
  if (st = db.delete_range(column::metering, prefix, end); !st) return st;
  commit_batch b;
  b.add_count(total_key(tenant, project, kind), ~bytes + 1);  // subtracts
  return db.write_now(std::move(b), false);
}

// Removes the oldest records of `kind` until the newest fit `budget` bytes:
// whole seconds first, then the oldest records of the second that straddles.
status keep_newest(store& db, uint32_t tenant, uint32_t project, uint32_t kind, uint64_t budget) {
  const auto prefix = bytes_prefix(tenant, project, kind);
  uint64_t kept = 0, straddling = 0, straddling_bytes = 0;
  bool over = false;
  auto st = db.scan_range_reverse(column::metering, prefix, prefix_successor(prefix),
                                  [&](std::string_view key, std::string_view value) {
                                    straddling_bytes = decode_count(value);
                                    kept += straddling_bytes;
                                    straddling = second_of(key);
                                    over = kept > budget;
                                    return !over;
                                  });
  if (!st || !over) return st;
  if (st = remove_before(db, tenant, project, kind, straddling); !st) return st;
  // Of the straddling second, drop the oldest `excess` bytes.
  const uint64_t excess = kept - budget;
  uint64_t dropped = 0;
  std::string last;
  st = db.scan_range(column::trace, at_time(tenant, project, kind, straddling * 1000),
                     at_time(tenant, project, kind, (straddling + 1) * 1000),
                     [&](std::string_view key, std::string_view value) {
                       dropped += key.size() + value.size();
                       last = std::string(key);
                       return dropped < excess;
                     });
  if (!st || last.empty()) return st;
  if (st = db.delete_range(column::trace, at_time(tenant, project, kind, straddling * 1000), last + '\0'); !st)
    return st;
  dropped = std::min(dropped, straddling_bytes);
  commit_batch b;
  b.add_count(bytes_key(tenant, project, kind, straddling), ~dropped + 1);
  b.add_count(total_key(tenant, project, kind), ~dropped + 1);
  return db.write_now(std::move(b), false);
}

}  // namespace

result<uint64_t> trace_bytes_total(const store& db, uint32_t tenant, uint32_t project) {
  auto metas = total_of(db, tenant, project, meta_kind);
  if (!metas) return metas;
  auto payloads = total_of(db, tenant, project, payload_kind);
  if (!payloads) return payloads;
  return *metas + *payloads;
}

status enforce_trace_retention(store& db, uint32_t tenant, uint32_t project, uint64_t full_ms, uint64_t keep_ms,
                               uint64_t quota_bytes, int64_t now_ms, bool by_age) {
  auto cutoff_second = [&](uint64_t age_ms) {
    return now_ms > int64_t(age_ms) ? (uint64_t(now_ms) - age_ms) / 1000 : 0;
  };
  if (by_age) {
    if (auto s = cutoff_second(full_ms))
      if (auto st = remove_before(db, tenant, project, payload_kind, s); !st) return st;
    if (auto s = cutoff_second(keep_ms))
      if (auto st = remove_before(db, tenant, project, meta_kind, s); !st) return st;
  }
  if (quota_bytes == 0) return status::success();
  // Over the quota: the oldest payloads go first, then the oldest metadata,
  // down to 90% of it.
  auto metas = total_of(db, tenant, project, meta_kind);
  if (!metas) return fail(metas.error());
  auto payloads = total_of(db, tenant, project, payload_kind);
  if (!payloads) return fail(payloads.error());
  if (*metas + *payloads <= quota_bytes) return status::success();
  const uint64_t target = quota_bytes / 10 * 9;
  if (*metas < target) return keep_newest(db, tenant, project, payload_kind, target - *metas);
  if (auto st = keep_newest(db, tenant, project, payload_kind, 0); !st) return st;
  return keep_newest(db, tenant, project, meta_kind, target);
}

}  // namespace flowstate::engine_detail
