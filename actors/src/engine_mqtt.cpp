// mqtt.Subscribe sources (docs/drivers.md "mqtt.Subscribe"): one MQTT
// session per subscribing block of an active revision (started and stopped
// by the timer actor's wake, at least every second). A message is accepted
// by one commit (the result of its first block, or an outbox entry for the
// node of its key; for QoS 2 the packet id's state; with `id:` its identity
// record), and the session's PUBACK or PUBREC leaves only once that commit
// is durable. A QoS 2 packet id whose state is stored is a redelivery:
// acknowledged again, not accepted twice. PUBREL erases the state, then
// PUBCOMP leaves.
#include <caf/send.hpp>

#include <cctype>

#include "engine_impl.hpp"
#include "errors.hpp"
#include "flowstate/drivers/mqtt_config.hpp"
#include "flowstate/runtime/decimal.hpp"
#include "flowstate/runtime/fault.hpp"
#include "flowstate/runtime/keys.hpp"
#include "flowstate/runtime/secrets.hpp"
#include "idempotency.hpp"
#include "outbox.hpp"
#include "peer_frames.hpp"
#include "peers.hpp"
#include "records.hpp"
#include "source_sync.hpp"

namespace flowstate::engine_detail {

namespace {

// "$share/flowstate-PROJECT-FLOW-BLOCK/FILTER", the names' characters other
// than letters, digits, "-" and "_" as "_" (a share name has no "/", "+" or "#").
std::string shared_filter(const std::string& project, const std::string& flow, const std::string& block,
                          const std::string& filter) {
  std::string group = "flowstate-" + project + "-" + flow + "-" + block;
  for (auto& c : group)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  return "$share/" + group + "/" + filter;
}

// A QoS 2 packet id's mark in a cluster: "GROUP TOKEN", the key group the
// acceptance went into and the token its record there holds; "1" (one
// node): {0, ""}.
std::pair<uint32_t, std::string> qos2_pointer(std::string_view value) {
  auto space = value.find(' ');
  if (space == std::string_view::npos) return {0, ""};
  auto group = parse_decimal<uint32_t>(value.substr(0, space));
  if (!group || *group >= key_group_count) return {0, ""};
  return {*group, std::string(value.substr(space + 1))};
}

}  // namespace

// The name of a QoS 2 packet id's record in the key group of its
// acceptance (an idempotency record, so it moves, fails over and expires
// like one).
std::string qos2_record_name(const std::string& client_id, uint16_t packet_id) {
  return "mqtt-qos2" + std::string(1, '\0') + client_id + '\0' + std::to_string(packet_id);
}

std::optional<bool> engine_impl::qos2_record_holds(const std::string& record, const std::string& token) const {
  auto stored = store_->read(column::idempotency, record);
  if (!stored) return std::nullopt;
  if (!*stored) return false;
  auto r = decode_response(**stored);
  return r && r->body == token;
}

struct engine_impl::mqtt_source {
  std::string identity;  // the block's configuration: a change restarts the session
  std::shared_ptr<drivers::mqtt::session> session;
};

void engine_impl::sync_mqtt_sources() {
  if (!ready_.load() || core_.draining.load()) return;
  auto wanted = active_sources(block_kind::mqtt_subscribe);
  std::vector<std::shared_ptr<mqtt_source>> stop;
  {
    std::lock_guard lock(mqtt_mutex_);
    stop = prune_sources(mqtt_sources_, wanted);
  }
  for (auto& s : stop) s->session->stop();
  for (auto& [id, at] : wanted) {
    auto source = std::make_shared<mqtt_source>();
    const auto& [rt, f] = at;
    const auto& flow = rt->flows[f];
    const auto& block = flow.blocks[0];
    source->identity = block.driver_config;
    auto cfg = block.mqtt;
    drivers::mqtt::session_options o;
    o.broker = cfg->connection.broker;
    o.client_id = cfg->connection.client_id.value_or(
        "flowstate-" + (options_.node_name.empty() ? std::string("node") : options_.node_name) + "-" + rt->name + "-" +
        flow.name + "-" + block.id);
    o.clean_session = cfg->clean_session;
    o.keep_alive_s = cfg->connection.keep_alive_s;
    o.batch_window = std::chrono::milliseconds(cfg->connection.batch_window_ms);
    o.username = cfg->connection.username;
    o.password = cfg->connection.password;
    // In a cluster every node subscribes, as one shared subscription: the
    // broker hands each message to one of them (a filter that is shared
    // already keeps its group).
    for (auto& t : cfg->topics)
      o.subscriptions.emplace_back(
          !options_.project_ids || t.rfind("$share/", 0) == 0 ? t : shared_filter(rt->name, flow.name, block.id, t),
          cfg->qos);
    o.name = "flow " + flow.name + ", block " + block.id;
    o.redact = [secrets = rt->secrets](std::string line) { return secrets::redact(std::move(line), secrets); };
    drivers::mqtt::session_handlers h;
    const uint32_t project = rt->project_id;
    const std::string flow_name = flow.name, client_id = o.client_id;
    h.on_publish = [this, project, flow_name, cfg, client_id](drivers::mqtt::publish&& p,
                                                              std::function<void(bool)> acked) {
      accept_mqtt(project, flow_name, *cfg, client_id, std::move(p), std::move(acked));
    };
    h.on_release = [this, client_id](uint16_t id, std::function<void(bool)> released) {
      commit_batch b;
      b.erase(column::meta, meta_key("mqtt-qos2", client_id + '\0' + std::to_string(id)));
      store_->commit(
          std::move(b), durability_mode::sync, [released] { released(true); },
          [released](const std::string&) { released(false); });
    };
    h.on_fresh_session = [this, client_id](std::function<void(bool)> done) {
      forget_mqtt_session(client_id, std::move(done));
    };
    h.may_read = [this, project] { return sources_may_read(project); };
    std::lock_guard lock(mqtt_mutex_);
    o.subscribed = !leaving_;
    source->session = drivers::mqtt::start_session(*sink_io_, std::move(o), std::move(h));
    mqtt_sources_[id] = std::move(source);
  }
}

void engine_impl::set_leaving(bool leaving) {
  std::lock_guard lock(mqtt_mutex_);
  if (std::exchange(leaving_, leaving) == leaving) return;
  for (auto& [_, s] : mqtt_sources_) s->session->set_subscribed(!leaving);
}

void engine_impl::stop_mqtt_sources() {
  std::map<std::string, std::shared_ptr<mqtt_source>> all;
  {
    std::lock_guard lock(mqtt_mutex_);
    all.swap(mqtt_sources_);
  }
  for (auto& [_, s] : all) s->session->stop();
}

void engine_impl::accept_mqtt(uint32_t project, const std::string& flow_name,
                              const drivers::mqtt::subscribe_config& cfg, const std::string& client_id,
                              drivers::mqtt::publish&& p, std::function<void(bool)> acked) {
  fault_pause("mqtt.accept-late");  // after the session's may_read, before the message counts as pending
  auto snap = std::atomic_load(&snapshot_);
  auto found = snap->projects.find(project);
  if (found == snap->projects.end()) return acked(false);  // the broker keeps it
  const project_ptr rt = found->second;
  const int fi = rt->find_flow(flow_name);
  if (fi < 0 || rt->flows[static_cast<std::size_t>(fi)].blocks.size() < 2) return acked(false);
  const auto f = static_cast<uint32_t>(fi);
  // What makes this message "the same one again": its QoS 2 packet id
  // (until PUBREL), and its `id:` identity. A copy arriving while the
  // first one's commit is pending waits for that commit.
  std::vector<std::string> marks;
  if (p.qos == 2) {
    auto qos2_key = meta_key("mqtt-qos2", client_id + '\0' + std::to_string(p.packet_id));
    if (join_pending(qos2_key, acked)) return;
    auto stored = store_->read(column::meta, qos2_key);
    if (!stored) return acked(false);  // cannot tell: not now
    if (*stored) {
      // A redelivery of a message accepted before. On one node (or in a
      // store from before clusters ran MQTT: "1") this store has its
      // acceptance. In a cluster the acceptance is in key group `group`,
      // which may have failed over since without it: that group's record
      // of the packet id, written by the same commit, says whether it did.
      auto [group, token] = qos2_pointer(**stored);
      if (token.empty()) return acked(true);
      return recheck_qos2(rt, f, client_id, std::move(p), std::move(qos2_key), group, token, std::move(acked));
    }
    marks.push_back(std::move(qos2_key));
  }
  accept_publish(rt, f, cfg, client_id, std::move(p), std::move(marks), std::move(acked));
}

void engine_impl::accept_publish(const project_ptr& rt, uint32_t f, const drivers::mqtt::subscribe_config& cfg,
                                 const std::string& client_id, drivers::mqtt::publish&& p,
                                 std::vector<std::string> marks, std::function<void(bool)> acked) {
  // Too large to keep: acknowledged with an error record, so that it does
  // not come back with every connection.
  auto key = p.oversized ? result<std::string>(fail("the message is " + std::to_string(p.oversized) +
                                                    " bytes, above the limit of 1 MiB (1048576 bytes): its payload "
                                                    "was not kept"))
                         : drivers::mqtt::message_key(cfg, p);
  auto identity = key ? drivers::mqtt::message_identity(cfg, p) : result<std::optional<std::string>>(std::nullopt);
  std::string record = marks.empty() ? std::string() : qos2_record_name(client_id, p.packet_id);
  accept_message(rt, f, commit_batch{}, std::move(marks), drivers::mqtt::message_json(p), std::move(key),
                 std::move(identity), p.topic, "mqtt", std::move(acked), std::move(record));
}

void engine_impl::recheck_qos2(const project_ptr& rt, uint32_t f, const std::string& client_id,
                               drivers::mqtt::publish&& p, std::string qos2_key, uint32_t group, std::string token,
                               std::function<void(bool)> acked) {
  auto cfg = rt->flows[f].blocks[0].mqtt;
  auto finish = [this, rt, f, cfg, client_id, qos2_key, group, p = std::move(p),
                 acked](std::optional<bool> survived) mutable {
    if (!survived) return acked(false);  // cannot tell now: the broker sends it again
    if (*survived) return acked(true);
    std::fprintf(stderr,
                 "flowstate mqtt %s: packet %u was accepted into key group %u, whose copy with it was lost in a "
                 "failover: accepted again\n",
                 client_id.c_str(), static_cast<unsigned>(p.packet_id), static_cast<unsigned>(group));
    accept_publish(rt, f, *cfg, client_id, std::move(p), {qos2_key}, std::move(acked));
  };
  const std::string record =
      idempotency_key(rt->tenant, rt->project_id, group, qos2_record_name(client_id, p.packet_id));
  group_admission admitted(core_, group);
  if (admitted.here()) return finish(qos2_record_holds(record, token));
  run_job([this, rt, group, client_id, packet = p.packet_id, token, finish = std::move(finish)]() mutable {
    auto gate = core_.current_gate();
    auto d = gate ? (*gate)(group) : engine::gate_decision{};
    if (d.forward_to.empty()) return finish(std::nullopt);
    auto a = peers_->ask(d.forward_to,
                         {"qos2-check",
                          {std::to_string(rt->tenant), std::to_string(rt->project_id), std::to_string(group), client_id,
                           std::to_string(packet), token}},
                         5000);
    if (!a || a->status != 200) return finish(std::nullopt);
    finish(a->body == "yes");
  });
}

// One source message (an MQTT publish, a custom source's emit) accepted by
// one commit: the commit of its first block's result (it runs first, and
// nothing of it is written before: a crash before that commit leaves the
// message with its source, which sends it again), or an error record when
// it has no key or identity; with an identity, its idempotency record (a
// repeat is only acknowledged). `b` and `marks` may hold the source's own
// marks already (a QoS 2 packet id). `acked` once the commit is durable
// (true) or failed.
//
// In a cluster, a message whose key group another node runs (or that is
// being moved) is accepted here as an outbox entry instead, under a key
// group this node runs, so that it moves with that group; the outbox takes
// it to the key's owner, which queues it (and checks and writes its
// identity record, or writes its error record) exactly once.
void engine_impl::accept_message(const project_ptr& rt, uint32_t f, commit_batch b, std::vector<std::string> marks,
                                 std::string payload, result<std::string> key,
                                 result<std::optional<std::string>> identity, const std::string& fallback_key,
                                 const std::string& tag, std::function<void(bool)> acked, std::string qos2_record) {
  const auto& flow = rt->flows[f];
  const uint64_t epoch = store_->epoch();
  message m;
  m.time_ms = now_ms();
  m.payload = std::move(payload);
  const bool runnable = key && identity;
  // Counted while accepted, so that a move of the group waits for it.
  std::optional<group_admission> at_key, at_source;
  outgoing_entries outgoing;
  uint32_t entry_group = key_group_of(runnable ? *key : fallback_key);  // where the acceptance goes
  // Lane entries are numbered in the order their commits are handed over.
  std::unique_lock lane(lane_mutex_, std::defer_lock);
  if (core_.has_gate.load(std::memory_order_acquire)) {
    at_key.emplace(core_, entry_group);
    if (!at_key->here()) {
      at_key.reset();
      auto group = outbox_source_group(at_source);
      if (!group) return acked(false);  // runs no key group now: the broker keeps it
      entry_group = *group;
      lane.lock();
      const uint32_t source_group = *group | source_lane;
      queued_input q{flow.name, flow.blocks[1].id, {}, rt->cluster_deploy.load(std::memory_order_relaxed)};
      q.msg = std::move(m);
      if (!runnable) {
        q.msg.key = fallback_key;
        q.precondition_failed = key ? identity.error() : key.error();
      } else {
        q.msg.key = std::move(*key);
        if (*identity) q.identity = tag + flow.name + '\0' + flow.blocks[0].id + '\0' + **identity;
      }
      q.msg.id = *identity && runnable ? derive_message_id(**identity, flow.name + '\0' + flow.blocks[0].id, 0)
                                       : new_message_id();
      q.msg.trace_id = q.msg.id;
      const uint64_t seq = store_->next_sequence();
      auto queued = encode_queued(q);
      b.put(column::outbox, outbox_key(rt->tenant, rt->project_id, source_group, seq), queued);
      outgoing = std::make_shared<std::vector<delivery_entry>>();
      outgoing->push_back({rt->tenant, rt->project_id, source_group, seq, std::move(queued)});
    }
  }
  // A QoS 2 packet id's mark says where the acceptance went; in a cluster,
  // with a record in that key group, written by the same commit (so it
  // survives a failover exactly when the acceptance does).
  if (!qos2_record.empty() && !marks.empty()) {
    if (!core_.has_gate.load(std::memory_order_acquire)) {
      b.put(column::meta, marks.front(), "1");
    } else {
      const std::string token = new_message_id();
      b.put(column::meta, marks.front(), std::to_string(entry_group) + " " + token);
      http::response r;
      r.status = 202;
      r.body = token;
      b.put(column::idempotency, idempotency_key(rt->tenant, rt->project_id, entry_group, qos2_record),
            encode_response(r, now_ms()));
    }
  }
  work_ptr item;
  bool direct = false;  // item runs before anything is committed
  if (outgoing) {
    // Accepted for another node: the commit below holds its outbox entry.
  } else if (!runnable) {
    // Nothing to run it for: an error record, acknowledged like an acceptance.
    m.id = new_message_id();
    m.trace_id = m.id;
    m.key = fallback_key;
    auto e = make_error(*store_, *rt, f, flow.blocks[1].id, m, "PreconditionFailed",
                        key ? identity.error() : key.error(), "{}");
    item = record_error(b, *store_, rt, f, e);
  } else {
    m.key = std::move(*key);
    bool repeat = false;
    if (*identity) {
      m.id = derive_message_id(**identity, flow.name + '\0' + flow.blocks[0].id, 0);
      auto idem = idempotency_key(rt->tenant, rt->project_id, key_group_of(m.key),
                                  tag + flow.name + '\0' + flow.blocks[0].id + '\0' + **identity);
      if (marks.empty() && join_pending(idem, acked)) return;
      auto seen = store_->read(column::idempotency, idem);
      if (!seen) return acked(false);
      if (*seen && !idempotency_expired(**seen, options_.idempotency_ttl_ms, now_ms())) {
        repeat = true;  // accepted before: only its packet id (QoS 2) is recorded
        if (marks.empty()) return acked(true);
      } else {
        http::response r;
        r.status = 202;
        b.put(column::idempotency, idem, encode_response(r, now_ms()));
        marks.push_back(std::move(idem));
      }
    } else {
      m.id = new_message_id();
    }
    if (!repeat) {
      m.trace_id = m.id;
      item = std::make_shared<work_item>();
      item->project = rt;
      item->flow = f;
      item->block = 1;
      // No queue entry: the message is accepted by the commit of its first
      // block's result, with the records above (docs/drivers.md "When a
      // message counts as received").
      item->msg = std::move(m);
      direct = true;
    }
  }
  if (item) item->store_epoch = epoch;
  {
    std::lock_guard lock(mqtt_mutex_);
    for (auto& mark : marks) mqtt_pending_[mark];
    if (!marks.empty()) mqtt_pending_[marks.front()].push_back(acked);
  }
  // Once durable: the acknowledgement (with any copy that came meanwhile).
  // Not written: not acknowledged, the broker sends it again.
  sources_pending_.fetch_add(1);
  auto done = [this, marks, tag, outgoing, acked = marks.empty() ? acked : nullptr](bool ok) mutable {
    std::vector<std::function<void(bool)>> waiting;
    if (acked) waiting.push_back(std::move(acked));
    {
      std::lock_guard lock(mqtt_mutex_);
      for (auto& mark : marks)
        if (auto w = mqtt_pending_.find(mark); w != mqtt_pending_.end()) {
          for (auto& a : w->second) waiting.push_back(std::move(a));
          mqtt_pending_.erase(w);
        }
    }
    if (ok && outgoing) caf::anon_send(core_.outbox, std::move(outgoing));
    // Durable, not acknowledged: the broker (or the custom source) sends it again.
    if (ok) fault_point(tag == "mqtt" ? "mqtt.before_ack" : "custom.before_ack");
    for (auto& a : waiting) a(ok);
    sources_pending_.fetch_sub(1);
  };
  auto shared_done = std::make_shared<decltype(done)>(std::move(done));
  if (direct) {
    item->acceptance = std::make_shared<commit_batch>(std::move(b));
    item->accepted = [shared_done](bool ok) { (*shared_done)(ok); };
    return submit(std::move(item));
  }
  store_->commit(
      std::move(b), rt->durability, [shared_done] { (*shared_done)(true); },
      [shared_done](const std::string&) { (*shared_done)(false); }, epoch);
  if (item) submit(std::move(item));
}

// In a cluster: a key group this node runs and is not moving, counted in
// `admitted` until the caller's commit is handed to the store (the home of
// an outbox entry written here); nullopt when it runs none.
std::optional<uint32_t> engine_impl::outbox_source_group(std::optional<group_admission>& admitted) {
  const uint32_t start = outbox_group_hint_.load(std::memory_order_relaxed);
  for (uint32_t i = 0; i < key_group_count; ++i) {
    const uint32_t g = (start + i) % key_group_count;
    admitted.emplace(core_, g);
    if (admitted->here()) {
      outbox_group_hint_.store(g, std::memory_order_relaxed);
      return g;
    }
    admitted.reset();
  }
  return std::nullopt;
}

source_blocks engine_impl::active_sources(block_kind kind) {
  auto snap = std::atomic_load(&snapshot_);
  source_blocks wanted;
  for (auto& [id, rt] : snap->projects)
    for (uint32_t f = 0; f < rt->flows.size(); ++f) {
      const auto& blocks = rt->flows[f].blocks;
      if (blocks.size() < 2 || blocks[0].kind != kind || !(blocks[0].mqtt || blocks[0].custom)) continue;
      auto name = std::to_string(id) + '/' + rt->flows[f].name + '/' + blocks[0].id;
      // In a cluster a custom source runs on one node: the one that runs the
      // key group of its name (it moves when that group moves).
      if (kind == block_kind::custom_source && core_.has_gate.load() && !core_.runs_here(key_group_of(name))) continue;
      wanted[name] = {rt, f};
    }
  return wanted;
}

// Whether a source may take another message now: not while draining,
// paused, backed up behind the project's sinks or over the in-flight limit.
// In a cluster, also not while this node runs no key group (after a restart,
// until the placement gives it some): it would have nowhere to keep a
// message for another node's key.
bool engine_impl::sources_may_read(uint32_t project) {
  if (core_.draining.load() || core_.writes_paused.load() || core_.sink_backed_up(project) ||
      core_.total_in_flight() >= core_.max_in_flight * core_.shards.size() || !runs_a_key_group())
    return false;
  // Hosted mode: not past the team's lease of executions (the broker keeps
  // what is not read for the session).
  if (options_.meter) {
    auto snap = std::atomic_load(&snapshot_);
    auto it = snap->projects.find(project);
    if (it != snap->projects.end() && quota_refusal_of(*it->second)) return false;
  }
  return true;
}

bool engine_impl::runs_a_key_group() {
  if (!core_.has_gate.load(std::memory_order_acquire)) return true;
  const uint32_t hint = outbox_group_hint_.load(std::memory_order_relaxed);
  if (core_.runs_here(hint)) return true;
  for (uint32_t g = 0; g < key_group_count; ++g)
    if (core_.runs_here(g)) {
      outbox_group_hint_.store(g, std::memory_order_relaxed);
      return true;
    }
  return false;
}

// A copy of a message whose first commit is pending: `acked` waits for
// that commit (true: there was one).
bool engine_impl::join_pending(const std::string& mark, const std::function<void(bool)>& acked) {
  std::lock_guard lock(mqtt_mutex_);
  auto w = mqtt_pending_.find(mark);
  if (w == mqtt_pending_.end()) return false;
  w->second.push_back(acked);
  return true;
}

// The broker kept no session for `client_id`: the packet ids of the one
// before mean nothing now (the broker numbers from 1 again).
void engine_impl::forget_mqtt_session(const std::string& client_id, std::function<void(bool)> done) {
  auto prefix = meta_key("mqtt-qos2", client_id + '\0');
  prefix.resize(prefix.size() - 2);  // without the string's terminator: every packet id after it
  commit_batch b;
  auto st = store_->scan_prefix(column::meta, prefix, [&](std::string_view key, std::string_view) {
    b.erase(column::meta, std::string(key));
    return true;
  });
  if (!st) {
    std::fprintf(stderr, "flowstate mqtt %s: reading the session's packet ids: %s\n", client_id.c_str(),
                 st.error().c_str());
    return done(false);  // not subscribed on this connection; the next one tries again
  }
  if (b.empty()) return done(true);
  store_->commit(
      std::move(b), durability_mode::sync, [done] { done(true); }, [done](const std::string&) { done(false); });
}

}  // namespace flowstate::engine_detail
