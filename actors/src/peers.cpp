#include "peers.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <map>
#include <unordered_map>

#include "flowstate/runtime/decimal.hpp"

namespace flowstate::engine_detail {
// A forwarded request on its way to its node's link actor: a message to an
// actor that is gone (its connection was just lost) is dropped, and then
// the client hears "not accepted" from the destructor.
struct forward_ticket {
  http::responder_ptr reply;
  std::string name;
  forward_ticket() = default;
  forward_ticket(const forward_ticket&) = delete;
  forward_ticket& operator=(const forward_ticket&) = delete;
  ~forward_ticket();
};
using forward_ticket_ptr = std::shared_ptr<forward_ticket>;
}  // namespace flowstate::engine_detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flowstate::engine_detail::forward_ticket_ptr)

namespace flowstate::engine_detail {

using forward_atom = caf::atom_constant<caf::atom("fs_fwd")>;
using reply_atom = caf::atom_constant<caf::atom("fs_reply")>;
using query_atom = caf::atom_constant<caf::atom("fs_query")>;
using deliver_atom = caf::atom_constant<caf::atom("fs_dlvr")>;
using watch_atom = caf::atom_constant<caf::atom("fs_watch")>;
using batch_atom = caf::atom_constant<caf::atom("fs_batch")>;
using batch_reply_atom = caf::atom_constant<caf::atom("fs_breply")>;
using reply_to_atom = caf::atom_constant<caf::atom("fs_rto")>;
using flush_atom = caf::atom_constant<caf::atom("fs_flush")>;
using expire_atom = caf::atom_constant<caf::atom("fs_expire")>;

namespace {

struct ingress_state {
  uint64_t next = 0;
  std::unordered_map<uint64_t, caf::typed_response_promise<std::string>> pending;
  // Responses to batched requests, waiting to go back to the sending
  // node's link actor in one message (sent when the mailbox has been read).
  std::map<caf::actor, std::vector<std::pair<uint64_t, std::string>>> replies;
  bool flush_pending = false;
};

// At most this many forwarded requests (or responses) in one message.
constexpr std::size_t max_batch = 256;

// The responder of a request that came in a batch: its response goes back
// through the ingress, batched with the others for the same link.
class batch_responder final : public http::responder {
 public:
  batch_responder(caf::actor ingress, caf::actor link, uint64_t id)
      : ingress_(std::move(ingress)), link_(std::move(link)), id_(id) {}
  ~batch_responder() override {
    if (!sent_.load()) send(http::problem(500, "no response", "the request ended without a response"));
  }
  void send(http::response r) override {
    if (sent_.exchange(true)) return;
    caf::anon_send(ingress_, reply_to_atom::value, link_, id_, encode_response_frame(r));
  }
  std::shared_ptr<http::response_stream> stream(http::response) override {
    send(http::problem(501, "not forwardable", "a streamed response cannot be forwarded between nodes"));
    return nullptr;
  }
  bool sent() const override { return sent_.load(); }
  // The node holding the client's connection keeps the route's deadline.
  void set_deadline(uint32_t, http::response) override {}

 private:
  caf::actor ingress_, link_;
  uint64_t id_;
  std::atomic<bool> sent_{false};
};

void flush_replies(caf::stateful_actor<ingress_state>* self) {
  self->state.flush_pending = false;
  for (auto& [link, replies] : self->state.replies)
    if (!replies.empty()) self->send(link, batch_reply_atom::value, encode_response_batch(replies));
  self->state.replies.clear();
}

caf::behavior ingress_actor(caf::stateful_actor<ingress_state>* self, std::string secret,
                            std::shared_ptr<peers::handler> handle, std::shared_ptr<peers::query_handler> answer,
                            std::shared_ptr<peers::delivery_handler> accept, std::shared_ptr<peer_table> table) {
  self->set_down_handler([table](caf::down_msg& dm) {
    std::lock_guard lock(table->mu);
    for (auto it = table->remotes.begin(); it != table->remotes.end();)
      if (it->second.ingress.address() == dm.source) {
        std::fprintf(stderr, "flowstate cluster: lost the connection to node %s\n", it->first.c_str());
        it = table->remotes.erase(it);
      } else {
        ++it;
      }
  });
  return {[=](watch_atom, const caf::actor& remote) { self->monitor(remote); },
          [=](deliver_atom, const std::string& frame) -> caf::typed_response_promise<std::string> {
            auto rp = self->make_response_promise<std::string>();
            auto entries = decode_delivery(secret, frame);
            if (!entries) {
              rp.deliver(std::string());  // refused: the sender reads no statuses and retries later
              return rp;
            }
            const uint64_t id = ++self->state.next;
            self->state.pending.emplace(id, rp);
            caf::actor me = caf::actor_cast<caf::actor>(self);
            (*accept)(std::move(*entries), [me, id](std::vector<delivery_status> statuses) {
              caf::anon_send(me, reply_atom::value, id, encode_delivery_ack(statuses));
            });
            return rp;
          },
          [=](query_atom, const std::string& frame) -> caf::typed_response_promise<std::string> {
            auto rp = self->make_response_promise<std::string>();
            auto q = decode_query(secret, frame);
            if (!q) {
              rp.deliver(encode_response_frame(http::problem(403, "refused", "not a query of this cluster")));
              return rp;
            }
            const uint64_t id = ++self->state.next;
            self->state.pending.emplace(id, rp);
            caf::actor me = caf::actor_cast<caf::actor>(self);
            (*answer)(std::move(*q), [me, id](http::response r) {
              caf::anon_send(me, reply_atom::value, id, encode_response_frame(r));
            });
            return rp;
          },
          [=](batch_atom, const std::string& frame) {
            auto link = caf::actor_cast<caf::actor>(self->current_sender());
            auto batch = decode_request_batch(secret, frame);
            if (!link || !batch) {
              std::fprintf(stderr, "flowstate cluster: dropping an unreadable batch of forwarded requests\n");
              return;  // its sender answers "outcome unknown" at its timeout
            }
            caf::actor me = caf::actor_cast<caf::actor>(self);
            for (std::size_t i = 0; i < batch->ids.size(); ++i) {
              auto reply = std::make_shared<batch_responder>(me, link, batch->ids[i]);
              if (!batch->authentic)
                reply->send(http::problem(403, "refused",
                                          "not a request of this cluster (wrong cluster secret or a bad frame)"));
              else
                (*handle)(std::move(batch->requests[i]), std::move(reply));
            }
          },
          [=](reply_to_atom, const caf::actor& link, uint64_t id, std::string& frame) {
            auto& replies = self->state.replies[link];
            replies.emplace_back(id, std::move(frame));
            if (replies.size() >= max_batch) {
              self->send(link, batch_reply_atom::value, encode_response_batch(replies));
              replies.clear();
            }
            if (!self->state.flush_pending) {
              self->state.flush_pending = true;
              self->send(self, flush_atom::value);  // after what the mailbox holds now
            }
          },
          [=](flush_atom) { flush_replies(self); },
          [=](reply_atom, uint64_t id, std::string& frame) {
            auto it = self->state.pending.find(id);
            if (it == self->state.pending.end()) return;
            it->second.deliver(std::move(frame));
            self->state.pending.erase(it);
          }};
}

std::optional<std::pair<std::string, uint16_t>> split_address(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  auto port = parse_decimal<uint16_t>(address.substr(colon + 1));
  if (!port) return std::nullopt;
  return std::pair{address.substr(0, colon), *port};
}

// The sending side of the requests forwarded to one node: requests that
// arrive while its mailbox is being read go as one message; responses come
// back batched by the other node's ingress. A request not answered within
// its timeout, or whose node's connection is lost, gets "outcome unknown";
// one still waiting here to be sent gets "not accepted".
struct link_state {
  uint64_t next = 0;
  std::unordered_map<uint64_t, http::responder_ptr> waiting;  // sent or about to be
  std::vector<std::pair<uint64_t, std::string>> unsent;
  bool flush_pending = false;
};

http::response outcome_unknown(const std::string& name) {
  auto r = http::problem(503, "outcome unknown",
                         "node " + name +
                             ", which owns this key, did not answer: the request may or may not have run there. "
                             "Retry with the same Idempotency-Key to get its outcome without running it twice.",
                         "urn:flowstate:error:OutcomeUnknown");
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

http::response not_connected(const std::string& name) {
  auto r = http::problem(503, "owner not connected",
                         "the node that owns this key (" + name +
                             ") is not connected to this one yet; nothing was accepted: retry shortly");
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

}  // namespace

forward_ticket::~forward_ticket() {
  if (reply && !reply->sent()) reply->send(not_connected(name));
}

namespace {

caf::behavior link_actor(caf::stateful_actor<link_state>* self, caf::actor to, std::string name, std::string secret,
                         std::shared_ptr<peer_table> table) {
  auto send_unsent = [self, to, secret, table] {
    self->state.flush_pending = false;
    if (self->state.unsent.empty()) return;
    table->forwarded_requests += self->state.unsent.size();
    ++table->forwarded_batches;
    self->send(to, batch_atom::value, encode_request_batch(secret, self->state.unsent));
    self->state.unsent.clear();
  };
  // Every waiting request answered, then gone (the connection is lost, or
  // the node is replaced or stopping).
  auto end = [self, name](caf::scheduled_actor*, const auto&) {
    for (auto& [id, _] : self->state.unsent) {
      auto it = self->state.waiting.find(id);
      if (it != self->state.waiting.end()) it->second->send(not_connected(name));
      self->state.waiting.erase(id);
    }
    for (auto& [_, reply] : self->state.waiting) reply->send(outcome_unknown(name));
    self->state.waiting.clear();
    self->state.unsent.clear();
    self->quit();
  };
  self->monitor(to);
  self->set_down_handler([end](caf::scheduled_actor* s, caf::down_msg& dm) { end(s, dm); });
  self->set_exit_handler([end](caf::scheduled_actor* s, caf::exit_msg& em) { end(s, em); });
  return {[=](forward_atom, std::string& frame, forward_ticket_ptr& ticket, uint32_t timeout_ms) {
            const uint64_t id = ++self->state.next;
            self->state.waiting.emplace(id, std::move(ticket->reply));
            self->state.unsent.emplace_back(id, std::move(frame));
            self->delayed_send(self, std::chrono::milliseconds(timeout_ms), expire_atom::value, id);
            if (self->state.unsent.size() >= max_batch) send_unsent();
            if (!self->state.flush_pending) {
              self->state.flush_pending = true;
              self->send(self, flush_atom::value);  // after what the mailbox holds now
            }
          },
          [=](flush_atom) { send_unsent(); },
          [=](batch_reply_atom, const std::string& frame) {
            auto responses = decode_response_batch(frame);
            if (!responses) {
              std::fprintf(stderr, "flowstate cluster: node %s sent responses this node cannot read\n", name.c_str());
              return;  // their requests time out: outcome unknown
            }
            for (auto& [id, r] : *responses) {
              auto it = self->state.waiting.find(id);
              if (it == self->state.waiting.end()) continue;  // answered already (timed out)
              it->second->send(std::move(r));
              self->state.waiting.erase(it);
            }
          },
          [=](expire_atom, uint64_t id) {
            auto it = self->state.waiting.find(id);
            if (it == self->state.waiting.end()) return;
            it->second->send(outcome_unknown(name));
            self->state.waiting.erase(it);
          }};
}

}  // namespace

peers::peers(caf::actor_system& sys, std::string self, std::string secret, handler handle, query_handler answer,
             delivery_handler accept)
    : sys_(sys), self_(std::move(self)), secret_(std::move(secret)) {
  ingress_ = sys_.spawn(ingress_actor, secret_, std::make_shared<handler>(std::move(handle)),
                        std::make_shared<query_handler>(std::move(answer)),
                        std::make_shared<delivery_handler>(std::move(accept)), table_);
}

caf::actor peers::target(const std::string& name) const {
  std::lock_guard lock(table_->mu);
  if (auto it = table_->remotes.find(name); it != table_->remotes.end()) return it->second.ingress;
  return {};
}

void peers::deliver(const std::string& name, const std::vector<delivery_entry>& entries, uint32_t timeout_ms,
                    std::function<void(std::optional<std::vector<delivery_status>>)> done) {
  auto to = target(name);
  if (!to) return done(std::nullopt);
  sys_.spawn([to, frame = encode_delivery(secret_, entries), timeout_ms, done = std::move(done),
              n = entries.size()](caf::event_based_actor* self) {
    auto answered = std::make_shared<bool>(false);
    auto finish = [self, done, answered](std::optional<std::vector<delivery_status>> r) {
      if (*answered) return;
      *answered = true;
      done(std::move(r));
      self->quit();
    };
    self->monitor(to);
    self->set_down_handler([finish](caf::scheduled_actor*, caf::down_msg&) { finish(std::nullopt); });
    self->request(to, std::chrono::milliseconds(timeout_ms), deliver_atom::value, frame)
        .then(
            [finish, n](const std::string& answer) {
              auto statuses = decode_delivery_ack(answer);
              if (statuses && statuses->size() != n) statuses.reset();
              finish(std::move(statuses));
            },
            [finish](caf::error&) { finish(std::nullopt); });
  });
}

result<http::response> peers::ask(const std::string& name, const peer_query& q, uint32_t timeout_ms) {
  auto target = this->target(name);
  if (!target) return fail("node " + name + " is not connected to this node yet; retry shortly");
  // From an actor that monitors the node's ingress: a connection that dies
  // (the node was killed, paused past the heartbeat timeout, cut off) ends
  // the wait at once instead of at the timeout.
  auto answer = std::make_shared<std::promise<result<http::response>>>();
  auto future = answer->get_future();
  sys_.spawn(
      [target, frame = encode_query(secret_, q), timeout_ms, answer, name, &sys = sys_](caf::event_based_actor* self) {
        auto done = std::make_shared<bool>(false);
        auto finish = [self, answer, done](result<http::response> r) {
          if (*done) return;
          *done = true;
          answer->set_value(std::move(r));
          self->quit();
        };
        self->monitor(target);
        self->set_down_handler([finish, name](caf::scheduled_actor*, caf::down_msg&) {
          finish(fail("node " + name + " went away (its connection to this node was lost)"));
        });
        self->request(target, std::chrono::milliseconds(timeout_ms), query_atom::value, frame)
            .then(
                [finish, name](const std::string& reply) {
                  if (auto r = decode_response_frame(reply))
                    finish(std::move(*r));
                  else
                    finish(fail("node " + name + " answered what this node cannot read"));
                },
                [finish, name, &sys](caf::error& err) {
                  finish(fail("node " + name + " did not answer: " + sys.render(err)));
                });
      });
  try {
    return future.get();
  } catch (const std::future_error&) {  // the actor system stopped first
    return fail("node " + name + ": this node is shutting down");
  }
}

std::vector<std::string> peers::connected_names() const {
  std::lock_guard lock(table_->mu);
  std::vector<std::string> out;
  for (auto& [name, _] : table_->remotes) out.push_back(name);
  return out;
}

peers::~peers() {
  caf::anon_send_exit(ingress_, caf::exit_reason::user_shutdown);
  std::lock_guard lock(table_->mu);
  for (auto& [_, r] : table_->remotes)
    if (r.link) caf::anon_send_exit(r.link, caf::exit_reason::user_shutdown);
}

result<std::string> peers::listen(const std::string& address) {
  auto at = split_address(address);
  if (!at) return fail("--peer-listen: expected HOST:PORT, found \"" + address + "\"");
  auto port = sys_.middleman().publish(ingress_, at->second, at->first.c_str(), true);
  if (!port) return fail("--peer-listen " + address + ": " + sys_.render(port.error()));
  return at->first + ":" + std::to_string(*port);
}

status peers::connect(const std::string& name, const std::string& address, const std::string& incarnation) {
  std::lock_guard connecting(table_->connect_mu);
  {
    // Connected to this incarnation already, whichever address it was
    // reached at (a --peer-route may differ from the registered one).
    std::lock_guard lock(table_->mu);
    auto it = table_->remotes.find(name);
    if (it != table_->remotes.end() && it->second.incarnation == incarnation) return status::success();
  }
  auto at = split_address(address);
  if (!at) return fail("node " + name + ": peer address \"" + address + "\" is not HOST:PORT");
  auto remote = sys_.middleman().remote_actor(at->first, at->second);
  if (!remote) return fail("node " + name + " at " + address + ": " + sys_.render(remote.error()));
  caf::actor ingress = *remote;
  caf::actor link = sys_.spawn(link_actor, ingress, name, secret_, table_), replaced;
  {
    std::lock_guard lock(table_->mu);
    auto& r = table_->remotes[name];
    replaced = r.link;
    r = {address, incarnation, ingress, link};
  }
  if (replaced) caf::anon_send_exit(replaced, caf::exit_reason::user_shutdown);
  // The connection dies (heartbeats stopped, the node went): forgotten.
  caf::anon_send(ingress_, watch_atom::value, ingress);
  return status::success();
}

bool peers::connected(const std::string& name, const std::string& incarnation) const {
  std::lock_guard lock(table_->mu);
  auto it = table_->remotes.find(name);
  return it != table_->remotes.end() && it->second.incarnation == incarnation;
}

void peers::forward(const std::string& name, http::request req, http::responder_ptr reply, uint32_t timeout_ms) {
  caf::actor link;
  {
    std::lock_guard lock(table_->mu);
    if (auto it = table_->remotes.find(name); it != table_->remotes.end()) link = it->second.link;
  }
  if (!link) return reply->send(not_connected(name));
  req.headers.emplace_back(std::string(forwarded_header), self_);
  // Built in place: a temporary ticket's destructor would answer the client.
  auto ticket = std::make_shared<forward_ticket>();
  ticket->reply = std::move(reply);
  ticket->name = name;
  caf::anon_send(link, forward_atom::value, encode_request_frame("", req), std::move(ticket), timeout_ms);
}

}  // namespace flowstate::engine_detail
