#include "errors.hpp"

#include "flowstate/runtime/keys.hpp"

namespace flowstate::engine_detail {

void put_error(commit_batch& batch, const project_rt& p, const error_fields& e) {
  const uint32_t group = key_group_of(e.key);
  batch.put(column::errors, error_key(p.tenant, p.project_id, group, e.seq), error_record_json(e));
  batch.add_count(error_count_key(p.tenant, p.project_id, group), 1);
}

uint64_t error_seq_of(std::string_view key) {
  key_reader r(key);
  if (!r.u32() || !r.u32() || !r.u32()) return 0;
  auto seq = r.u64();
  return seq ? *seq : 0;
}

result<uint64_t> count_errors(const store& db, uint32_t tenant, uint32_t project) {
  auto [begin, end] = key_group_counters_range(tenant, project);
  uint64_t total = 0;
  auto st = db.scan_range(column::metering, begin, end, [&](std::string_view key, std::string_view value) {
    key_reader r(key);
    (void)r.u32(), (void)r.u32(), (void)r.u32();
    if (auto name = r.str(); name && *name == "errors") total += decode_count(value);
    return true;
  });
  if (!st) return fail(st.error());
  return total > (uint64_t{1} << 62) ? 0 : total;  // a transient negative sum reads as none
}

error_fields make_error(store& db, const project_rt& p, uint32_t flow, const std::string& block, const message& msg,
                        std::string type, std::string text, std::string details) {
  error_fields e;
  e.seq = db.next_sequence();
  e.id = error_id(key_group_of(msg.key), e.seq);
  e.type = std::move(type);
  e.message = std::move(text);
  e.flow = p.flows[flow].name;
  e.block = block;
  e.key = msg.key;
  e.message_id = msg.id;
  e.revision = p.revision;
  e.at_ms = now_ms();
  e.details_json = details.empty() ? "{}" : std::move(details);
  e.input_json = msg.payload.empty() ? "null" : msg.payload;
  e.trace_id = msg.trace_id;
  e.accepted_ms = msg.time_ms;
  return e;
}

work_ptr record_error(commit_batch& batch, store& db, const project_ptr& p, uint32_t flow, const error_fields& e) {
  const auto& f = p->flows[flow];
  if (f.on_error >= 0 && !f.receives_errors) {
    const auto& target = p->flows[static_cast<std::size_t>(f.on_error)];
    for (std::size_t b = 0; b < target.blocks.size(); ++b) {
      if (target.blocks[b].kind != block_kind::function) continue;
      auto item = std::make_shared<work_item>();
      item->project = p;
      item->flow = static_cast<uint32_t>(f.on_error);
      item->block = static_cast<uint32_t>(b);
      item->msg.id = derive_message_id(e.message_id, e.block + "/on_error", 0);
      item->msg.key = e.key;
      item->msg.trace_id = e.trace_id;
      item->msg.time_ms = e.accepted_ms;
      item->msg.payload = error_record_json(e);
      item->queue_seq = db.next_sequence();
      batch.put(column::queue, queue_key(p->tenant, p->project_id, key_group_of(item->msg.key), item->queue_seq),
                encode_queued({target.name, target.blocks[b].id, item->msg}));
      return item;
    }
  }
  put_error(batch, *p, e);
  return nullptr;
}

}  // namespace flowstate::engine_detail
