#pragma once
// Sinks after the commit (docs/drivers.md "Sinks"): an output for a sink
// block (http.Post, ...) is written as a sink entry in the commit that
// produced it, under the message key's group in the outbox column
// (sink_entry_key). Once durable it reaches this actor, which delivers it
// through the block's driver until the target takes it, then deletes it:
// in order per (flow, block, key), one delivery of a key at a time, up to
// the driver's concurrency per block, retries with backoff and jitter. A
// permanent refusal, or the last try failing, becomes a SinkFailed error
// record (in the commit that deletes the entry). At start, and when key
// groups arrive, the entries of groups that run here are read back.
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include <functional>
#include <memory>
#include <vector>

#include "model.hpp"

namespace flowstate::engine_detail {

struct engine_core;

struct sink_entry {
  uint32_t tenant = 0, project = 0, group = 0;
  uint64_t seq = 0;
  std::string queued;  // encode_queued: flow, block id, message
  // A query's client, waiting for the reply of the flow's end (in memory
  // only: a restart loses the connection anyway).
  http::responder_ptr reply;
  std::string idempotency_key;
};
using sink_entries = std::shared_ptr<std::vector<sink_entry>>;

struct sinks_links {
  std::function<project_ptr(uint32_t project)> active;  // the project's active revision, or null
  std::function<void(work_ptr)> submit;                 // a SinkFailed error routed into an on_error flow
};

caf::actor spawn_sinks(caf::actor_system& sys, engine_core& core, sinks_links links);

}  // namespace flowstate::engine_detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flowstate::engine_detail::sink_entries)
