// mqtt.Publish: a sink with its own clean session to the broker; each
// delivery is one PUBLISH, delivered on PUBACK (QoS 1), PUBCOMP (QoS 2) or
// once written (QoS 0). Not connected, or the connection lost before the
// broker's answer: the sinks actor tries again later.
#include <simdjson.h>

#include "flowstate/drivers/mqtt_config.hpp"

namespace flowstate::drivers::mqtt {

namespace {

class publish_sink final : public sinks::sink {
 public:
  publish_sink(sinks::io_thread& io, publish_config c, std::string client_id, std::string name,
               std::function<std::string(std::string)> redact)
      : c_(std::move(c)) {
    session_options o;
    o.broker = c_.connection.broker;
    o.client_id = c_.connection.client_id.value_or(client_id);
    o.clean_session = true;
    o.keep_alive_s = c_.connection.keep_alive_s;
    o.batch_window = std::chrono::milliseconds(c_.connection.batch_window_ms);
    o.username = c_.connection.username;
    o.password = c_.connection.password;
    o.name = std::move(name);
    o.redact = std::move(redact);
    session_ = start_session(io, std::move(o), {});
  }
  ~publish_sink() override { session_->stop(); }

  uint32_t concurrency() const override { return 64; }
  sinks::retry_policy retry() const override { return c_.retry; }

  void deliver(const sinks::delivery& d, sinks::done_fn done) override {
    auto refuse = [&](std::string why) { done(sinks::permanent(std::move(why))); };
    auto topic = http_post::render(c_.topic, d, false);
    if (!topic) return refuse("topic: " + topic.error());
    if (!valid_topic_name(*topic))
      return refuse("topic: \"" + *topic + "\" is not a topic name (empty, a wildcard or NUL)");
    publish p;
    p.topic = std::move(*topic);
    p.qos = c_.qos;
    p.retain = c_.retain;
    if (c_.payload_pointer.empty()) {
      p.payload = d.payload;
    } else {
      simdjson::dom::parser parser;
      simdjson::dom::element doc, v;
      if (parser.parse(d.payload.data(), d.payload.size()).get(doc) || doc.at_pointer(c_.payload_pointer).get(v))
        return refuse("payload: the output has nothing at " + c_.payload_pointer);
      p.payload = std::string(simdjson::minify(v));
    }
    session_->publish(std::move(p), std::move(done));
  }

 private:
  publish_config c_;
  std::shared_ptr<session> session_;
};

}  // namespace

std::shared_ptr<sinks::sink> make_publish_sink(sinks::io_thread& io, publish_config c, std::string client_id,
                                               std::string name, std::function<std::string(std::string)> redact) {
  return std::make_shared<publish_sink>(io, std::move(c), std::move(client_id), std::move(name), std::move(redact));
}

}  // namespace flowstate::drivers::mqtt
