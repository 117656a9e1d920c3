#include "peers.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include <atomic>
#include <chrono>
#include <unordered_map>

#include "flowstate/runtime/decimal.hpp"

namespace flowstate::engine_detail {

using forward_atom = caf::atom_constant<caf::atom("fs_fwd")>;
using reply_atom = caf::atom_constant<caf::atom("fs_reply")>;

namespace {

constexpr std::string_view request_magic = "FSRQ1", response_magic = "FSRS1";

void put(std::string& out, std::string_view field) {
  const auto n = static_cast<uint32_t>(field.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xFF));
  out.append(field);
}

// Reads the fields `put` wrote, in order; nullopt past the end or on a
// length that runs past it.
class fields {
 public:
  explicit fields(std::string_view in) : in_(in) {}
  std::optional<std::string_view> next() {
    if (in_.size() < 4) return std::nullopt;
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<unsigned char>(in_[static_cast<std::size_t>(i)]);
    in_.remove_prefix(4);
    if (n > in_.size()) return std::nullopt;
    auto out = in_.substr(0, n);
    in_.remove_prefix(n);
    return out;
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

// Secrets compared without an early exit.
bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

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
                            std::shared_ptr<peers::handler> handle) {
  return {
      [=](forward_atom, const std::string& frame) -> caf::typed_response_promise<std::string> {
        auto rp = self->make_response_promise<std::string>();
        auto req = decode_request_frame(secret, frame);
        if (!req) {
          rp.deliver(encode_response_frame(
              http::problem(403, "refused", "not a request of this cluster (wrong cluster secret or a bad frame)")));
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

std::string encode_request_frame(std::string_view secret, const http::request& r) {
  std::string out;
  put(out, request_magic);
  put(out, secret);
  put(out, r.method);
  put(out, r.target);
  put(out, r.body);
  for (auto& [name, value] : r.headers) {
    put(out, name);
    put(out, value);
  }
  return out;
}

std::optional<http::request> decode_request_frame(std::string_view secret, std::string_view frame) {
  fields f(frame);
  auto magic = f.next();
  auto s = f.next();
  if (!magic || *magic != request_magic || !s || !same_secret(*s, secret)) return std::nullopt;
  http::request r;
  auto method = f.next(), target = f.next(), body = f.next();
  if (!method || !target || !body) return std::nullopt;
  r.method = std::string(*method);
  r.target = std::string(*target);
  r.body = std::string(*body);
  while (!f.done()) {
    auto name = f.next(), value = f.next();
    if (!name || !value) return std::nullopt;
    r.headers.emplace_back(std::string(*name), std::string(*value));
  }
  return r;
}

std::string encode_response_frame(const http::response& r) {
  std::string out;
  put(out, response_magic);
  put(out, std::to_string(r.status));
  put(out, r.content_type);
  put(out, r.body);
  for (auto& [name, value] : r.headers) {
    put(out, name);
    put(out, value);
  }
  return out;
}

std::optional<http::response> decode_response_frame(std::string_view frame) {
  fields f(frame);
  auto magic = f.next();
  if (!magic || *magic != response_magic) return std::nullopt;
  auto status = f.next(), type = f.next(), body = f.next();
  if (!status || !type || !body) return std::nullopt;
  http::response r;
  auto code = parse_decimal<uint16_t>(*status);
  if (!code || *code < 100 || *code > 599) return std::nullopt;
  r.status = *code;
  r.content_type = std::string(*type);
  r.body = std::string(*body);
  while (!f.done()) {
    auto name = f.next(), value = f.next();
    if (!name || !value) return std::nullopt;
    r.headers.emplace_back(std::string(*name), std::string(*value));
  }
  return r;
}

peers::peers(caf::actor_system& sys, std::string self, std::string secret, handler handle)
    : sys_(sys), self_(std::move(self)), secret_(std::move(secret)) {
  ingress_ = sys_.spawn(ingress_actor, secret_, std::make_shared<handler>(std::move(handle)));
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
    std::lock_guard lock(mu_);
    auto it = remotes_.find(name);
    if (it != remotes_.end() && it->second.address == address && it->second.incarnation == incarnation)
      return status::success();
  }
  auto at = split_address(address);
  if (!at) return fail("node " + name + ": peer address \"" + address + "\" is not HOST:PORT");
  auto remote = sys_.middleman().remote_actor(at->first, at->second);
  if (!remote) return fail("node " + name + " at " + address + ": " + sys_.render(remote.error()));
  std::lock_guard lock(mu_);
  remotes_[name] = {address, incarnation, *remote};
  return status::success();
}

bool peers::connected(const std::string& name, const std::string& incarnation) const {
  std::lock_guard lock(mu_);
  auto it = remotes_.find(name);
  return it != remotes_.end() && it->second.incarnation == incarnation;
}

void peers::forward(const std::string& name, http::request req, http::responder_ptr reply, uint32_t timeout_ms) {
  caf::actor target;
  {
    std::lock_guard lock(mu_);
    if (auto it = remotes_.find(name); it != remotes_.end()) target = it->second.ingress;
  }
  if (!target) {
    auto r = http::problem(503, "owner not connected",
                           "the node that owns this key (" + name + ") is not connected to this one yet; nothing was "
                           "accepted: retry shortly");
    r.headers.emplace_back("Retry-After", "1");
    return reply->send(std::move(r));
  }
  req.headers.emplace_back(std::string(forwarded_header), self_);
  auto frame = encode_request_frame(secret_, req);
  sys_.spawn([target, frame = std::move(frame), reply, timeout_ms, name](caf::event_based_actor* self) {
    // Sent, but no answer: the owner may have accepted and run it.
    auto unknown = [reply, name] {
      auto r = http::problem(
          503, "outcome unknown",
          "node " + name + ", which owns this key, did not answer: the request may or may not have run there. "
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
