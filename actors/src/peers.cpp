#include "peers.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <unordered_map>

#include "flowstate/runtime/decimal.hpp"

namespace flowstate::engine_detail {

using forward_atom = caf::atom_constant<caf::atom("fs_fwd")>;
using reply_atom = caf::atom_constant<caf::atom("fs_reply")>;
using query_atom = caf::atom_constant<caf::atom("fs_query")>;
using deliver_atom = caf::atom_constant<caf::atom("fs_dlvr")>;
using watch_atom = caf::atom_constant<caf::atom("fs_watch")>;

namespace {

struct ingress_state {
  uint64_t next = 0;
  std::unordered_map<uint64_t, caf::typed_response_promise<std::string>> pending;
};

// The responder of a request that came from another node: its response
// goes back through the ingress actor, which holds the promise.
class promise_responder final : public http::responder {
 public:
  promise_responder(caf::actor ingress, uint64_t id) : ingress_(std::move(ingress)), id_(id) {}
  ~promise_responder() override {
    if (!sent_.load()) send(http::problem(500, "no response", "the request ended without a response"));
  }
  void send(http::response r) override {
    if (sent_.exchange(true)) return;
    caf::anon_send(ingress_, reply_atom::value, id_, encode_response_frame(r));
  }
  std::shared_ptr<http::response_stream> stream(http::response) override {
    send(http::problem(501, "not forwardable", "a streamed response cannot be forwarded between nodes"));
    return nullptr;
  }
  bool sent() const override { return sent_.load(); }
  // The node holding the client's connection keeps the route's deadline.
  void set_deadline(uint32_t, http::response) override {}

 private:
  caf::actor ingress_;
  uint64_t id_;
  std::atomic<bool> sent_{false};
};

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
          [=](forward_atom, const std::string& frame) -> caf::typed_response_promise<std::string> {
            auto rp = self->make_response_promise<std::string>();
            auto req = decode_request_frame(secret, frame);
            if (!req) {
              rp.deliver(encode_response_frame(http::problem(
                  403, "refused", "not a request of this cluster (wrong cluster secret or a bad frame)")));
              return rp;
            }
            const uint64_t id = ++self->state.next;
            self->state.pending.emplace(id, rp);
            (*handle)(std::move(*req), std::make_shared<promise_responder>(caf::actor_cast<caf::actor>(self), id));
            return rp;
          },
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

peers::~peers() { caf::anon_send_exit(ingress_, caf::exit_reason::user_shutdown); }

result<std::string> peers::listen(const std::string& address) {
  auto at = split_address(address);
  if (!at) return fail("--peer-listen: expected HOST:PORT, found \"" + address + "\"");
  auto port = sys_.middleman().publish(ingress_, at->second, at->first.c_str(), true);
  if (!port) return fail("--peer-listen " + address + ": " + sys_.render(port.error()));
  return at->first + ":" + std::to_string(*port);
}

status peers::connect(const std::string& name, const std::string& address, const std::string& incarnation) {
  {
    std::lock_guard lock(table_->mu);
    auto it = table_->remotes.find(name);
    if (it != table_->remotes.end() && it->second.address == address && it->second.incarnation == incarnation)
      return status::success();
  }
  auto at = split_address(address);
  if (!at) return fail("node " + name + ": peer address \"" + address + "\" is not HOST:PORT");
  auto remote = sys_.middleman().remote_actor(at->first, at->second);
  if (!remote) return fail("node " + name + " at " + address + ": " + sys_.render(remote.error()));
  caf::actor ingress = *remote;
  {
    std::lock_guard lock(table_->mu);
    table_->remotes[name] = {address, incarnation, ingress};
  }
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
  auto target = this->target(name);
  if (!target) {
    auto r = http::problem(503, "owner not connected",
                           "the node that owns this key (" + name +
                               ") is not connected to this one yet; nothing was "
                               "accepted: retry shortly");
    r.headers.emplace_back("Retry-After", "1");
    return reply->send(std::move(r));
  }
  req.headers.emplace_back(std::string(forwarded_header), self_);
  auto frame = encode_request_frame(secret_, req);
  sys_.spawn([target, frame = std::move(frame), reply, timeout_ms, name](caf::event_based_actor* self) {
    // Sent, but no answer: the owner may have accepted and run it.
    auto unknown = [reply, name] {
      auto r = http::problem(503, "outcome unknown",
                             "node " + name +
                                 ", which owns this key, did not answer: the request may or may not have run there. "
                                 "Retry with the same Idempotency-Key to get its outcome without running it twice.",
                             "urn:flowstate:error:OutcomeUnknown");
      r.headers.emplace_back("Retry-After", "1");
      reply->send(std::move(r));
    };
    // A lost connection to the owner (it died, or its heartbeats stopped)
    // kills its proxy: the monitor says so at once instead of the timeout.
    self->monitor(target);
    self->set_down_handler([unknown](caf::scheduled_actor* s, caf::down_msg&) {
      unknown();
      s->quit();
    });
    self->request(target, std::chrono::milliseconds(timeout_ms), forward_atom::value, frame)
        .then(
            [self, reply](const std::string& answer) {
              auto r = decode_response_frame(answer);
              reply->send(r ? std::move(*r)
                            : http::problem(502, "bad answer", "the owning node's answer could not be read"));
              self->quit();
            },
            [self, unknown](caf::error&) {
              unknown();
              self->quit();
            });
  });
}

}  // namespace flowstate::engine_detail
