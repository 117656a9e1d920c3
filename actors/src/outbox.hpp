#pragma once
// The outbox (docs/design.md "Exactly-once across nodes"): a function
// output for a key group another node owns is written as an outbox entry
// in the commit that produced it (under the source key group, numbered by
// the node's sequence). Once that commit is durable the entry reaches this
// actor, which sends it to the group's owner; the owner commits it into its
// queue with a de-duplication mark and acknowledges; only then is the entry
// deleted here. A node that restarts reads its outbox back and sends again;
// the marks make a repeat harmless.
//
// Order: entries of one (source group, destination group) pair are sent in
// sequence order with at most one delivery of the pair in flight, so the
// receiver's mark (the highest sequence accepted per pair) never skips one.
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/fwd.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "peer_frames.hpp"

namespace flowstate::engine_detail {

struct engine_core;

using outgoing_entries = std::shared_ptr<std::vector<delivery_entry>>;
using delivery_callback = std::function<void(std::optional<std::vector<delivery_status>>)>;

struct outbox_links {
  // Sends entries to node `name` (peers::deliver).
  std::function<void(const std::string& name, const std::vector<delivery_entry>&, delivery_callback)> send;
  // Accepts entries whose key group is now this node's (engine's receiver).
  std::function<void(std::vector<delivery_entry>&&, delivery_callback)> accept_here;
};

// Spawns the outbox; it reads the store's outbox column first, then takes
// outgoing_entries messages.
caf::actor spawn_outbox(caf::actor_system& sys, engine_core& core, outbox_links links);

}  // namespace flowstate::engine_detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flowstate::engine_detail::outgoing_entries)
