#pragma once
// An MQTT 3.1.1 client session (docs/drivers.md "mqtt.Subscribe"), written
// here on Asio because no packaged client can hold an acknowledgement back
// until the engine has committed the message without blocking its network
// thread. It runs on the drivers' I/O thread (sink.hpp's io_thread); no
// CAF. It connects (plain or TLS), subscribes, keeps the connection alive,
// reconnects with backoff and jitter, and:
//   - hands each PUBLISH it receives to on_publish; for QoS 1 and 2 the
//     PUBACK or PUBREC leaves only when the engine calls `accepted`, and
//     acknowledgements leave in the order the PUBLISH packets came (MQTT
//     3.1.1 §4.6), whatever order the commits finish in;
//   - for QoS 2, hands each PUBREL to on_release and sends PUBCOMP when the
//     engine calls `released` (it forgets the packet id's state first);
//   - publishes for mqtt.Publish, reporting delivered on PUBACK (QoS 1),
//     PUBCOMP (QoS 2) or once written (QoS 0).
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flowstate/drivers/mqtt_codec.hpp"
#include "flowstate/drivers/sink.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate::drivers::mqtt {

struct broker_address {
  std::string host, port;
  bool tls = false;
};
// mqtt://host[:1883] or mqtts://host[:8883]; errors name the field "broker".
result<broker_address> parse_broker(std::string_view url);

struct session_options {
  broker_address broker;
  std::string client_id;
  bool clean_session = false;  // false: a persistent session (the broker keeps what arrives while away)
  uint16_t keep_alive_s = 30;
  std::optional<std::string> username, password;
  std::vector<std::pair<std::string, uint8_t>> subscriptions;  // (filter, QoS); empty for a publisher
  // False: hold none of `subscriptions` at the broker (set_subscribed).
  bool subscribed = true;
  uint64_t reconnect_initial_ms = 200, reconnect_max_ms = 30000;
  std::size_t max_packet = 1u << 20;
  // After a read that emptied the socket, wait this long before reading
  // again, so that packets arriving close together are handled together
  // (fewer wake-ups, commits and acknowledgement writes per message under
  // load). A packet that arrives after a quiet spell is read at once; one
  // that follows another within the window waits at most the window.
  std::chrono::milliseconds batch_window{1};
  std::string name;  // for log lines: "flow readings, block in"
  // Applied to every log line (the engine redacts the project's secrets:
  // a broker address or a user name may be one).
  std::function<std::string(std::string)> redact;
};

struct session_handlers {
  // A PUBLISH arrived. For QoS 1 and 2, call `accepted(true)` (any thread,
  // once) when it is durably accepted, or `accepted(false)` when it cannot
  // be now: the connection is then dropped and the broker sends it again
  // (later acknowledgements could not leave in order otherwise).
  std::function<void(publish&& p, std::function<void(bool)> accepted)> on_publish;
  // The broker kept no session (a first connection, a clean session, a
  // broker that lost it): forget the QoS 2 packet ids of the session
  // before, then call `done(true)` (any thread); SUBSCRIBE waits for it.
  // `done(false)` (not written): the connection is dropped and made again.
  std::function<void(std::function<void(bool ok)> done)> on_fresh_session;
  // QoS 2: the broker released packet id `id`; call `released(true)` once
  // its state is forgotten (durably): PUBCOMP follows. `released(false)`
  // (not written): the connection is dropped, and the broker sends the
  // PUBREL again on the next one.
  std::function<void(uint16_t id, std::function<void(bool ok)> released)> on_release;
  // False: do not read more now (the engine is pushing back); asked again
  // shortly.
  std::function<bool()> may_read;
};

class session {
 public:
  virtual ~session() = default;
  // Closes the connection and stops reconnecting; no handler is called
  // once it returns (blocks until the I/O thread has seen it).
  virtual void stop() = 0;
  // Publishes; `done` (on the I/O thread) says delivered, or retry when
  // not connected or the connection was lost before the broker's answer.
  virtual void publish(mqtt::publish p, sinks::done_fn done) = 0;
  // Whether the broker should hand this session messages. False: the
  // session unsubscribes its filters (now, or right after its next CONNACK,
  // since a persistent session keeps them) and still reads what the broker
  // handed it before; true: it subscribes again. A shared subscription's
  // other members get every message meanwhile. Any thread.
  virtual void set_subscribed(bool on) = 0;
};

std::shared_ptr<session> start_session(sinks::io_thread& io, session_options o, session_handlers h);

}  // namespace flowstate::drivers::mqtt
