#pragma once
// mqtt.Subscribe and mqtt.Publish configurations (docs/drivers.md), what a
// subscription hands to its flow, and the mqtt.Publish sink.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/drivers/http_post.hpp"
#include "flowstate/drivers/mqtt_session.hpp"

namespace flowstate::drivers::mqtt {

// How a connection signs in (both kinds).
struct connection_config {
  broker_address broker;
  std::optional<std::string> client_id;  // default: from the node, project and block
  std::optional<std::string> username, password;
  uint16_t keep_alive_s = 30;
  // `batchWindow:` after a read that emptied the socket, how long the
  // session waits before reading again (0: at once). See session_options.
  uint32_t batch_window_ms = 1;
};

struct subscribe_config {
  connection_config connection;
  std::vector<std::string> topics;  // filters; "$share/GROUP/..." allowed
  uint8_t qos = 1;
  int key_level = -1;                    // `key: topic:N`: level N of the topic (0-based)
  std::string key_pointer;               // `key: /deviceId`: in the JSON payload
  std::vector<std::string> id_pointers;  // `id:`: what makes a message the same one again
  bool clean_session = false;
};
result<subscribe_config> parse_subscribe(std::string_view config_json);

struct publish_config {
  connection_config connection;
  http_post::template_text topic;  // "alerts/{{key}}"
  uint8_t qos = 1;
  bool retain = false;
  std::string payload_pointer;  // "" = the whole output
  sinks::retry_policy retry;
};
result<publish_config> parse_publish(std::string_view config_json);

// The input of the flow's first function: {"topic","payload","qos","retain"},
// the payload as JSON when it is JSON, else as a string.
std::string message_json(const publish& p);
// The message key: the topic level or the payload's value named by `key:`
// (the whole topic when neither is set); an error says what is missing.
result<std::string> message_key(const subscribe_config& c, const publish& p);
// With `id:`, the values that identify a message (joined), for an
// idempotent acceptance; nullopt without `id:`, an error when missing.
result<std::optional<std::string>> message_identity(const subscribe_config& c, const publish& p);

// The mqtt.Publish sink: its own session (clean, `client_id`).
std::shared_ptr<sinks::sink> make_publish_sink(sinks::io_thread& io, publish_config c, std::string client_id,
                                               std::string name, std::function<std::string(std::string)> redact = {});

}  // namespace flowstate::drivers::mqtt
