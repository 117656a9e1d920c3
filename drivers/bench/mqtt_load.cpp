// mqtt-load: the MQTT benchmark's load generator and bare relay
// (benchmarks/run, scenario mqtt-relay), on the drivers' own MQTT session.
//
//   mqtt-load --broker mqtt://127.0.0.1:1883 --rate 10000 --seconds 10 --devices 100 --qos 1
//     publishes {"deviceId","seq","t0"} to devices/<id>/telemetry at --rate (0: as fast as the broker
//     takes them, --window unacknowledged at most), subscribes to counts/# and prints one JSON line:
//     sent, received, achieved rates, and end-to-end latency percentiles (t0 to receipt).
//   mqtt-load --broker ... --relay
//     the bare relay client: republishes every devices/+/telemetry message to counts/<id>, until killed.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "flowstate/drivers/mqtt_session.hpp"

using namespace flowstate::drivers;

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct options {
  std::string broker = "mqtt://127.0.0.1:1883";
  double rate = 1000;
  double seconds = 10;
  int devices = 100;
  int qos = 1;
  int window = 1000;
  bool relay = false;
};

std::string field(const std::string& json, const char* name) {
  auto at = json.find(std::string("\"") + name + "\":");
  if (at == std::string::npos) return "";
  at += std::strlen(name) + 3;
  auto end = json.find_first_of(",}", at);
  return json.substr(at, end - at);
}

// One thread per direction: the subscribing session on one, the publishing
// one on the other (publish() posts to its own thread), as a relay written
// to be fast would be.
int relay(const options& o, const mqtt::broker_address& b) {
  sinks::io_thread io, io_out;
  std::shared_ptr<mqtt::session> out;
  mqtt::session_options po;
  po.broker = b;
  po.client_id = "mqtt-load-relay-out";
  po.clean_session = true;
  po.name = "relay out";
  out = mqtt::start_session(io_out, po, {});
  mqtt::session_options so;
  so.broker = b;
  so.client_id = "mqtt-load-relay-in";
  so.clean_session = true;
  so.subscriptions = {{"devices/+/telemetry", static_cast<uint8_t>(o.qos)}};
  so.name = "relay in";
  mqtt::session_handlers h;
  h.on_publish = [&out, &o](mqtt::publish&& p, std::function<void(bool)> accepted) {
    auto first = p.topic.find('/'), second = p.topic.find('/', first + 1);
    mqtt::publish r;
    r.topic = "counts/" + p.topic.substr(first + 1, second - first - 1);
    r.payload = std::move(p.payload);
    r.qos = static_cast<uint8_t>(o.qos);
    // A bare relay: acknowledged at once, republished with nothing kept.
    accepted(true);
    out->publish(std::move(r), [](sinks::outcome) {});
  };
  auto in = mqtt::start_session(io, so, h);
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(3600));
}

int load(const options& o, const mqtt::broker_address& b) {
  sinks::io_thread io;
  std::mutex mu;
  std::vector<int64_t> latencies;
  std::atomic<int64_t> received{0}, acked{0}, sent{0};
  std::atomic<bool> subscribed{false};
  mqtt::session_options so;
  so.broker = b;
  so.client_id = "mqtt-load-sub";
  so.clean_session = true;
  so.subscriptions = {{"counts/#", static_cast<uint8_t>(o.qos)}};
  so.name = "load sub";
  mqtt::session_handlers h;
  h.on_publish = [&](mqtt::publish&& p, std::function<void(bool)> accepted) {
    subscribed = true;
    auto t0 = field(p.payload, "t0");
    if (!t0.empty()) {
      const int64_t lat = now_ns() - std::stoll(t0);
      std::lock_guard lock(mu);
      latencies.push_back(lat);
    }
    ++received;
    accepted(true);
  };
  auto sub = mqtt::start_session(io, so, h);
  mqtt::session_options po;
  po.broker = b;
  po.client_id = "mqtt-load-pub";
  po.clean_session = true;
  po.name = "load pub";
  auto pub = mqtt::start_session(io, po, {});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // connected and subscribed
  const int64_t start = now_ns();
  const int64_t end = start + static_cast<int64_t>(o.seconds * 1e9);
  std::vector<int64_t> seq(static_cast<std::size_t>(o.devices), 0);
  int64_t n = 0;
  while (now_ns() < end) {
    const int64_t due = o.rate > 0 ? static_cast<int64_t>((now_ns() - start) * o.rate / 1e9) : n + 1;
    if (n >= due || sent - acked >= o.window) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      continue;
    }
    const int d = static_cast<int>(n % o.devices);
    mqtt::publish p;
    p.topic = "devices/dev" + std::to_string(d) + "/telemetry";
    p.payload = "{\"deviceId\":\"dev" + std::to_string(d) + "\",\"seq\":" + std::to_string(seq[d]++) +
                ",\"temperature\":21.5,\"t0\":" + std::to_string(now_ns()) + "}";
    p.qos = static_cast<uint8_t>(o.qos);
    ++sent;
    pub->publish(std::move(p), [&acked](sinks::outcome) { ++acked; });
    ++n;
  }
  const double took = (now_ns() - start) / 1e9;
  // The stragglers: until nothing arrives for a second (at most 30 s).
  int64_t last = -1;
  for (int i = 0; i < 30 && received.load() != last; ++i) {
    last = received.load();
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  std::vector<int64_t> lat;
  {
    std::lock_guard lock(mu);
    lat = latencies;
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, std::size_t(p * lat.size()))] / 1e6;
  };
  std::printf(
      "{\"sent\":%lld,\"acked\":%lld,\"received\":%lld,\"seconds\":%.3f,\"sent_rate\":%.1f,\"received_rate\":%.1f,"
      "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
      static_cast<long long>(sent.load()), static_cast<long long>(acked.load()),
      static_cast<long long>(received.load()), took, sent / took, received / took, pct(0.5), pct(0.99),
      lat.empty() ? 0.0 : lat.back() / 1e6);
  std::fflush(stdout);
  pub->stop();
  sub->stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--broker")
      o.broker = next();
    else if (a == "--rate")
      o.rate = std::stod(next());
    else if (a == "--seconds")
      o.seconds = std::stod(next());
    else if (a == "--devices")
      o.devices = std::stoi(next());
    else if (a == "--qos")
      o.qos = std::stoi(next());
    else if (a == "--window")
      o.window = std::stoi(next());
    else if (a == "--relay")
      o.relay = true;
    else {
      std::fprintf(stderr, "mqtt-load: unknown argument %s (see the comment at the top of mqtt_load.cpp)\n", a.c_str());
      return 2;
    }
  }
  auto b = mqtt::parse_broker(o.broker);
  if (!b) {
    std::fprintf(stderr, "mqtt-load: %s\n", b.error().c_str());
    return 2;
  }
  return o.relay ? relay(o, *b) : load(o, *b);
}
