#include "errors.hpp"

#include "flowstate/runtime/keys.hpp"

namespace flowstate::engine_detail {

std::string error_count_key(uint32_t tenant, uint32_t project) {
  return key_builder{}.u32(tenant).u32(project).str("errors").take();
}

error_fields make_error(store& db, const project_rt& p, uint32_t flow, const std::string& block, const message& msg,
                        std::string type, std::string text, std::string details) {
  error_fields e;
  e.seq = db.next_sequence();
  e.id = std::to_string(e.seq);
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
  batch.put(column::errors, error_key(p->tenant, p->project_id, e.seq), error_record_json(e));
  batch.add_count(error_count_key(p->tenant, p->project_id), 1);
  return nullptr;
}

}  // namespace flowstate::engine_detail
