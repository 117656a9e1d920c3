// The flow listener's requests: the site and route a request is for, its
// trace id, the project's static files, Idempotency-Key repeats, and the
// work item it becomes.
#include <algorithm>
#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include "engine_impl.hpp"
#include "errors.hpp"
#include "flowstate/drivers/http_routes.hpp"
#include "flowstate/drivers/http_static.hpp"
#include "flowstate/runtime/decimal.hpp"
#include "flowstate/runtime/keys.hpp"
#include "peers.hpp"
#include "records.hpp"

namespace flowstate::engine_detail {
namespace {

// True when header name `name` is `lower` (lower case) in any case.
bool header_is(std::string_view name, std::string_view lower) {
  return name.size() == lower.size() && std::equal(name.begin(), name.end(), lower.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         });
}

// The request's host without its port.
std::string_view host_of(const http::request& req) {
  auto h = req.header("host");
  if (!h.empty() && h.front() == '[') return h.substr(0, h.find(']') + 1);
  return h.substr(0, h.find(':'));
}

// The path under the site's prefix, or nullopt when it is not under it.
std::optional<std::string_view> under_prefix(std::string_view path, const std::string& prefix) {
  if (prefix.empty()) return path;
  if (path.substr(0, prefix.size()) != prefix) return std::nullopt;
  auto rest = path.substr(prefix.size());
  if (rest.empty()) return std::string_view("/");
  if (rest.front() != '/') return std::nullopt;
  return rest;
}

// W3C traceparent "00-<32 hex trace id>-<16 hex parent>-<2 hex flags>".
std::string trace_id_from(std::string_view traceparent) {
  if (traceparent.size() < 55 || traceparent[2] != '-' || traceparent[35] != '-') return {};
  auto id = traceparent.substr(3, 32);
  for (char c : id)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return {};
  if (id == std::string_view("00000000000000000000000000000000")) return {};
  return std::string(id);
}

// True when some block of the flow answers the client; without one, the
// client gets 202 at acceptance and never waits for the flow's functions.
bool has_http_response(const flow_rt& flow) {
  for (const auto& b : flow.blocks)
    if (b.kind == block_kind::http_response) return true;
  return false;
}

// The route's `timeout:` passed: nothing is committed yet and the message
// goes on. Its problem type differs from a committed `Timeout` error's.
http::response route_timeout_problem(uint32_t timeout_ms) {
  return http::problem(504, "route timeout",
                       "no response within the route's timeout of " + std::to_string(timeout_ms) +
                           " ms; the message was accepted and is still processed (repeat it with the same "
                           "Idempotency-Key to get its response)",
                       problem_type_route_timeout);
}

}  // namespace

void engine_impl::handle_flow_request(http::request&& req, http::responder_ptr reply) {
  // In a cluster the request may belong to another node: kept as received
  // (routing below rewrites its target) to forward it whole.
  auto gate = core_.current_gate();
  std::optional<http::request> received;
  if (gate) received = req;
  if (core_.draining.load()) {
    auto r = http::problem(503, "draining", "the node is shutting down");
    r.headers.emplace_back("Retry-After", "1");
    reply->send(std::move(r));
    return;
  }
  // A node that cannot write refuses what it would run; in a cluster it
  // still forwards what other nodes run (checked once the gate says where).
  auto unwritable = [&] {
    if (store_writable()) return false;
    auto r = http::problem(503, "unavailable", "the node cannot write to its store (disk full?); retry later");
    r.headers.emplace_back("Retry-After", "5");
    reply->send(std::move(r));
    return true;
  };
  if (!gate && unwritable()) return;
  auto snap = std::atomic_load(&snapshot_);
  auto [path, query] = http::split_target(req.target);
  auto host = host_of(req);
  const site* fallback = nullptr;
  std::optional<http::route_match> m;
  const site* matched = nullptr;
  for (auto& s : snap->sites) {
    if (!s.host.empty() && s.host != host) continue;
    auto sub = under_prefix(path, s.prefix);
    if (!sub) continue;
    if (!fallback) fallback = &s;
    if ((m = s.routes.match(req.method, *sub))) {
      matched = &s;
      break;
    }
  }
  if (!m) {
    if (fallback && fallback->files) {
      auto sub = under_prefix(path, fallback->prefix);
      if (auto r = fallback->files->serve(req.method, *sub, req.header("if-none-match")))
        return reply->send(std::move(*r));
    }
    return reply->send(http::problem(404, "not found", "no route matches " + req.method + " " + std::string(path)));
  }
  auto pit = snap->projects.find(matched->project_id);
  if (pit == snap->projects.end()) {
    reply->send(http::problem(404, "not found", "the project of this route is not active"));
    return;
  }
  const auto& rt = pit->second;
  const auto& flow = rt->flows[m->matched->flow_index];
  // The message sees the path under the project's prefix.
  if (!matched->prefix.empty()) req.target = req.target.substr(matched->prefix.size());
  auto payload = http::build_request_message(req, *m);
  if (!payload) {
    reply->send(http::problem(400, "bad request", payload.error()));
    return;
  }
  if (flow.blocks.size() < 2 || flow.blocks[1].kind != block_kind::function) {
    http::response r;
    r.status = 202;
    r.content_type.clear();
    reply->send(std::move(r));
    return;
  }
  auto item = std::make_shared<work_item>();
  item->project = rt;
  item->flow = m->matched->flow_index;
  item->block = 1;
  item->msg.id = new_message_id();
  item->msg.key = std::move(m->key);
  item->msg.trace_id = trace_id_from(req.header("traceparent"));
  if (item->msg.trace_id.empty()) item->msg.trace_id = item->msg.id;
  item->msg.time_ms = now_ms();
  item->store_epoch = store_->epoch();
  item->msg.payload = std::move(*payload);
  if (const auto& kp = flow.blocks[1].key_pointer) {
    auto key = key_at_pointer(item->msg.payload, *kp);
    if (!key) {
      commit_batch b;
      auto e =
          make_error(*store_, *rt, item->flow, flow.blocks[1].id, item->msg, "PreconditionFailed", key.error(), "{}");
      auto routed = record_error(b, *store_, rt, item->flow, e);
      auto* core = &core_;
      store_->commit(
          std::move(b), rt->durability, [reply, r = error_response(e)]() mutable { reply->send(std::move(r)); },
          [core, reply](const std::string& reason) { answer_unwritten(core, reply, {}, false, reason); });
      if (routed) submit(std::move(routed));
      return;
    }
    item->msg.key = std::move(*key);
  }
  // Counted while it is being accepted, so that a move of its group waits
  // for it; a request for a group being moved waits for the move.
  struct admission {
    std::atomic<uint32_t>* count = nullptr;
    ~admission() {
      if (count) count->fetch_sub(1);
    }
  } admitted;
  if (gate) {
    const uint32_t group = key_group_of(item->msg.key);
    auto decision = (*gate)(group);
    if (decision.refuse) return reply->send(std::move(*decision.refuse));
    if (decision.forward_to.empty()) {
      if (decision.refuse_new) return reply->send(std::move(*decision.refuse_new));
      if (unwritable()) return;
      item->served_by = options_.node_name + "@" + std::to_string(decision.epoch);
      admitted.count = &core_.group_in_flight[group];
      admitted.count->fetch_add(1);
      if (core_.is_frozen(group)) return hold(std::move(*received), std::move(reply));
      // Sent by a node already running a later deploy of the project: held
      // until this one runs it too (one revision per request).
      if (auto sent = received->header(forwarded_header).empty()
                          ? std::nullopt
                          : parse_decimal<uint64_t>(received->header(deploy_header));
          sent && *sent > rt->cluster_deploy.load(std::memory_order_relaxed))
        return hold(std::move(*received), std::move(reply));
      // Counted now: a move of the group waits for it. The group may have
      // moved between the gate's answer and the count: ask again.
      if (!core_.runs_here(group)) {
        admitted.count->fetch_sub(1);
        admitted.count = nullptr;
        return handle_flow_request(std::move(*received), std::move(reply));
      }
    } else {
      std::size_t hops = 0;
      for (auto& [name, _] : received->headers) hops += header_is(name, forwarded_header);
      if (hops >= 2) {
        // Forwarded twice already: the nodes' views of the placement
        // disagree while it changes. Held until a view changes (or a second
        // passes), then sent on afresh; 503 after the hold limit, nothing
        // accepted.
        std::erase_if(received->headers, [](const auto& h) { return header_is(h.first, forwarded_header); });
        return hold(std::move(*received), std::move(reply));
      }
      if (!peers_) return reply->send(http::problem(500, "no peers", "this node cannot reach other nodes"));
      std::erase_if(received->headers, [](const auto& h) { return header_is(h.first, deploy_header); });
      if (auto n = rt->cluster_deploy.load(std::memory_order_relaxed))
        received->headers.emplace_back(std::string(deploy_header), std::to_string(n));
      const uint32_t timeout = m->matched->timeout_ms;
      if (timeout) reply->set_deadline(timeout, route_timeout_problem(timeout));
      // The owner's answer is waited for up to the route's timeout (plus a
      // margin for the hop), else two minutes.
      return peers_->forward(decision.forward_to, std::move(*received), std::move(reply),
                             timeout ? timeout + 5000 : 120000);
    }
  }
  auto shard = core_.shard_of(item->msg.key);
  if (core_.in_flight[shard].load() >= core_.max_in_flight) {
    auto r = http::problem(503, "overloaded", "too much work in flight; retry shortly");
    r.headers.emplace_back("Retry-After", "1");
    reply->send(std::move(r));
    return;
  }
  if (core_.sink_backed_up(rt->project_id)) {
    auto r = http::problem(503, "sink backed up",
                           "a sink of this project has " + std::to_string(core_.sink_backlog) +
                               " or more deliveries pending (its target is down or slow); nothing was accepted, "
                               "retry later");
    r.headers.emplace_back("Retry-After", "5");
    reply->send(std::move(r));
    return;
  }
  // Set before joining an Idempotency-Key, so that a repeat waiting for the
  // first request also gets its 504 in time.
  if (m->matched->timeout_ms)
    reply->set_deadline(m->matched->timeout_ms, route_timeout_problem(m->matched->timeout_ms));
  if (auto idem = req.header("idempotency-key"); !idem.empty())
    if (answered_by_idempotency_key(*item, idem, reply)) return;
  // Hosted mode: past its team's executions, nothing new is accepted (a
  // repeat of an accepted request's Idempotency-Key still gets its answer).
  if (auto refused = quota_refusal_of(*rt)) {
    if (!item->idempotency_key.empty()) core_.idempotency.complete(item->idempotency_key, *refused);
    reply->send(std::move(*refused));
    return;
  }
  if (!has_http_response(flow)) return accept_with_202(std::move(item), std::move(reply));
  item->reply = std::move(reply);
  submit(std::move(item));
}

bool engine_impl::answered_by_idempotency_key(work_item& item, std::string_view idempotency_key,
                                              const http::responder_ptr& reply) {
  const auto& rt = item.project;
  item.idempotency_key =
      flowstate::idempotency_key(rt->tenant, rt->project_id, key_group_of(item.msg.key), idempotency_key);
  if (core_.idempotency.join(item.idempotency_key, reply) == idempotency_registry::outcome::waiting) return true;
  auto stored = store_->read(column::idempotency, item.idempotency_key);
  if (stored && !*stored && now_ms() < legacy_idempotency_until_ms_)
    stored = store_->read(column::idempotency, legacy_idempotency_key(rt->tenant, rt->project_id, idempotency_key));
  if (!stored) {
    // Unknown whether it already ran: refuse rather than run it twice.
    auto r = http::problem(503, "unavailable", "cannot read the stored responses of Idempotency-Keys; retry later");
    r.headers.emplace_back("Retry-After", "5");
    core_.idempotency.complete(item.idempotency_key, r);
    reply->send(std::move(r));
    return true;
  }
  if (*stored && !idempotency_expired(**stored, options_.idempotency_ttl_ms, now_ms())) {
    if (auto r = decode_response(**stored)) {
      core_.idempotency.complete(item.idempotency_key, *r);
      r->headers.emplace_back("Idempotent-Replayed", "true");
      reply->send(std::move(*r));
      return true;
    }
  }
  return false;
}

void engine_impl::accept_with_202(work_ptr item, http::responder_ptr reply) {
  const auto& rt = item->project;
  const auto& flow = rt->flows[item->flow];
  commit_batch b;
  item->queue_seq = store_->next_sequence();
  b.put(column::queue, queue_key(rt->tenant, rt->project_id, key_group_of(item->msg.key), item->queue_seq),
        encode_queued({flow.name, flow.blocks[item->block].id, item->msg}));
  http::response accepted;
  accepted.status = 202;
  accepted.content_type.clear();
  if (!item->served_by.empty()) accepted.headers.emplace_back("Flowstate-Served-By", item->served_by);
  // The 202 is the request's response: a repeat of its Idempotency-Key gets
  // it again; what the functions do later answers no one.
  std::string idem = std::move(item->idempotency_key);
  item->idempotency_key.clear();
  if (!idem.empty()) b.put(column::idempotency, idem, encode_response(accepted, now_ms()));
  auto* core = &core_;
  // Never written (the disk is full, or in a cluster the node stopped
  // leading the key's group before its replicas acknowledged the commit):
  // 503, never a response dropped unanswered.
  store_->commit(
      std::move(b), rt->durability,
      [core, reply, idem, accepted = std::move(accepted)]() mutable {
        if (!idem.empty()) core->idempotency.complete(idem, accepted);
        reply->send(std::move(accepted));
      },
      [core, reply, idem](const std::string& reason) { answer_unwritten(core, reply, idem, false, reason); });
  // After the commit was handed to the store: its single writer keeps the
  // queue entry's put before the removal that the function's commit makes.
  submit(std::move(item));
}

}  // namespace flowstate::engine_detail
