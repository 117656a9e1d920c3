// Upgrading a store from format 1 to format 2 (docs/operations.md
// "Upgrading a data directory"): records that belong to a message key move
// under its key group, so that a key-group range can later move between
// nodes as a set of key spans.
//
//   errors     (tenant, project, seq)      -> (tenant, project, group, seq),
//              and the record's id "seq"  -> "group-seq"
//   metering   (tenant, project)           -> (tenant, project, 0, "executions")
//              (tenant, project, "errors") -> (tenant, project, group, "errors"),
//              recounted from the migrated error records
//   idempotency: left where they are (their record does not name the
//              message key); the engine also reads them there until their
//              lifetime after the upgrade has passed (`upgraded_at_ms`).
//
// Every step is a batch that is atomic and synced, and recognises what it has
// already done (a format-2 key has a u32 where format 1 has a u64 or ends),
// so a crash anywhere during the upgrade resumes it at the next open. The
// format record is written last, in the same batch as the recounted errors.
#include <rocksdb/iterator.h>
#include <simdjson.h>

#include <map>
#include <memory>
#include <tuple>

#include "store_migrate.hpp"

namespace flowstate {

namespace {

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }
std::string_view view(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

constexpr std::size_t batch_records = 1000;

status write_synced(store::impl& s, rocksdb::WriteBatch& wb, std::string_view step) {
  rocksdb::WriteOptions o;
  o.sync = true;
  auto st = s.db->Write(o, &wb);
  if (!st.ok())
    return fail(s.options.path + ": upgrading the store to format 2 (" + std::string(step) + "): " + st.ToString());
  return status::success();
}

// The message key of a format-1 error record (its "key" field).
std::optional<std::string> record_message_key(simdjson::dom::parser& parser, const std::string& json) {
  simdjson::dom::element doc;
  std::string_view key;
  if (parser.parse(json).get(doc) || doc["key"].get_string().get(key)) return std::nullopt;
  return std::string(key);
}

// Error records: one pass (the iterator reads a snapshot, so the writes
// made meanwhile do not disturb it), written every batch_records records.
status move_errors(store::impl& s, uint32_t groups, migration_report& report) {
  simdjson::dom::parser parser;
  rocksdb::WriteBatch wb;
  std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(rocksdb::ReadOptions(), s.handle(column::errors)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    key_reader r(view(it->key()));
    auto tenant = r.u32();
    auto project = r.u32();
    if (!tenant || !project || r.peek() != key_tag::u64) continue;  // format 2 already
    auto seq = r.u64();
    if (!seq) continue;
    std::string value(view(it->value()));
    auto key = record_message_key(parser, value);
    if (!key)
      return fail(s.options.path + ": upgrading the store to format 2: error record " + std::to_string(*seq) +
                  " of project " + std::to_string(*project) +
                  " has no message key (\"key\"); it cannot be placed "
                  "in a key group. Keep the directory and report this.");
    const uint32_t group = key_group_of(*key, groups);
    const std::string old_id = "{\"id\":\"" + std::to_string(*seq) + "\"";
    if (value.rfind(old_id, 0) == 0) value.replace(0, old_id.size(), "{\"id\":\"" + error_id(group, *seq) + "\"");
    wb.Put(s.handle(column::errors), error_key(*tenant, *project, group, *seq), value);
    wb.Delete(s.handle(column::errors), it->key());
    ++report.errors_moved;
    if (wb.Count() >= 2 * batch_records) {
      if (auto st = write_synced(s, wb, "errors"); !st) return st;
      wb.Clear();
    }
  }
  if (!it->status().ok())
    return fail(s.options.path + ": upgrading the store to format 2: reading errors: " + it->status().ToString());
  return wb.Count() ? write_synced(s, wb, "errors") : status::success();
}

// Executions counters: (tenant, project) -> key group 0 of the project.
status move_execution_counters(store::impl& s, migration_report& report) {
  rocksdb::WriteBatch wb;
  std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(rocksdb::ReadOptions(), s.handle(column::metering)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    key_reader r(view(it->key()));
    auto tenant = r.u32();
    auto project = r.u32();
    if (!tenant || !project || !r.at_end()) continue;
    wb.Merge(s.handle(column::metering), executions_key(*tenant, *project, 0), it->value());
    wb.Delete(s.handle(column::metering), it->key());
    ++report.counters_moved;
  }
  if (!it->status().ok())
    return fail(s.options.path + ": upgrading the store to format 2: reading counters: " + it->status().ToString());
  it.reset();
  return wb.Count() ? write_synced(s, wb, "execution counters") : status::success();
}

}  // namespace

result<migration_report> migrate_format1_to_format2(store::impl& s, uint32_t groups, int64_t now_ms,
                                                    rocksdb::WriteBatch& finish) {
  migration_report report;
  if (auto st = move_errors(s, groups, report); !st) return fail(st.error());
  if (auto st = move_execution_counters(s, report); !st) return fail(st.error());

  // Error counters: the format-1 ones go, each key group's is recounted.
  std::map<std::tuple<uint32_t, uint32_t, uint32_t>, uint64_t> counts;
  {
    std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(rocksdb::ReadOptions(), s.handle(column::errors)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      key_reader r(view(it->key()));
      auto tenant = r.u32();
      auto project = r.u32();
      auto group = r.u32();
      if (tenant && project && group) ++counts[{*tenant, *project, *group}];
    }
    if (!it->status().ok())
      return fail(s.options.path + ": upgrading the store to format 2: counting errors: " + it->status().ToString());
  }
  {
    std::unique_ptr<rocksdb::Iterator> it(s.db->NewIterator(rocksdb::ReadOptions(), s.handle(column::metering)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      key_reader r(view(it->key()));
      auto tenant = r.u32();
      auto project = r.u32();
      if (!tenant || !project || r.peek() == key_tag::u32) continue;
      auto name = r.str();
      if (name && *name == "errors" && r.at_end()) finish.Delete(s.handle(column::metering), it->key());
    }
    if (!it->status().ok())
      return fail(s.options.path + ": upgrading the store to format 2: reading counters: " + it->status().ToString());
  }
  for (auto& [at, n] : counts) {
    auto [tenant, project, group] = at;
    finish.Put(s.handle(column::metering), error_count_key(tenant, project, group), encode_count(n));
  }
  finish.Put(s.handle(column::meta), slice(meta_upgraded_from_format1_at), std::to_string(now_ms));
  return report;
}

}  // namespace flowstate
