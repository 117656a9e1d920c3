#include "flowstate/drivers/registry.hpp"

namespace flowstate::drivers {

void register_builtin_drivers(registry& r) {
  r.add({"http.Request", role::source, "HTTP requests on the flow listener (method + path, or routes)"});
  r.add({"http.Response", role::sink, "replies to the request that started the message"});
  r.add({"mqtt.Subscribe", role::source, "messages from MQTT topics (QoS 0, 1, 2), acknowledged once committed"});
  r.add({"mqtt.Publish", role::sink, "publishes each output to an MQTT topic"});
  r.add({"influxdb.Write", role::sink, "writes each output as a point (line protocol, batched)"});
  r.add({"influxdb.Query", role::source, "an InfluxQL query whose answer is the next block's input"});
  r.add({"postgres.Insert", role::sink, "inserts each output as a row (ON CONFLICT DO NOTHING on its id)"});
  r.add({"postgres.Upsert", role::sink, "inserts or updates each output's row by its key"});
  r.add({"postgres.Query", role::source, "a SQL query whose rows are the next block's input"});
  r.add({"http.Post", role::sink, "sends each output to a URL (webhooks), retried until the target takes it"});
}

}  // namespace flowstate::drivers
