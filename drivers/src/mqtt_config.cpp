#include "flowstate/drivers/mqtt_config.hpp"

#include <simdjson.h>

#include "config_values.hpp"
#include "flowstate/drivers/http_types.hpp"

namespace flowstate::drivers::mqtt {

namespace {

// broker, clientId, username, password, keepAlive, batchWindow: true when
// `name` is one of them (read into c), an error when its value is wrong.
result<bool> connection_field(std::string_view name, simdjson::dom::element v, connection_config& c) {
  std::string_view text;
  if (name == "broker") {
    if (v.get_string().get(text))
      return fail("broker: expected a URL like mqtt://127.0.0.1:1883, got " + detail::shown(v));
    auto b = parse_broker(text);
    if (!b) return fail(b.error());
    c.broker = std::move(*b);
    return true;
  }
  if (name == "clientId" || name == "username" || name == "password") {
    if (v.get_string().get(text) || (name == "clientId" && (text.empty() || text.size() > 200)))
      return fail(std::string(name) + ": expected a non-empty string, got " + detail::shown(v));
    auto& into = name == "clientId" ? c.client_id : name == "username" ? c.username : c.password;
    into = std::string(text);
    return true;
  }
  if (name == "keepAlive") {
    auto ms = detail::duration_ms(v, 65535000);
    if (!ms || *ms < 1000)
      return fail("keepAlive: expected a duration from 1s to 18h like 30s, got " + detail::shown(v));
    c.keep_alive_s = static_cast<uint16_t>(*ms / 1000);
    return true;
  }
  if (name == "batchWindow") {
    int64_t n = -1;
    const bool off = (!v.get_int64().get(n) && n == 0) || (!v.get_string().get(text) && (text == "0" || text == "0ms"));
    auto ms = off ? std::optional<uint64_t>(0) : detail::duration_ms(v, 100);
    if (!ms) return fail("batchWindow: expected a duration from 0ms to 100ms like 1ms, got " + detail::shown(v));
    c.batch_window_ms = static_cast<uint32_t>(*ms);
    return true;
  }
  return false;
}

result<uint8_t> qos_of(simdjson::dom::element v) {
  int64_t n;
  if (v.get_int64().get(n) || n < 0 || n > 2) return fail("qos: expected 0, 1 or 2, got " + detail::shown(v));
  return static_cast<uint8_t>(n);
}

bool is_pointer(std::string_view p) { return !p.empty() && p.front() == '/'; }

}  // namespace

result<subscribe_config> parse_subscribe(std::string_view config_json) {
  simdjson::dom::parser parser;
  auto parsed_doc = detail::config_object(parser, config_json);
  if (!parsed_doc) return fail(parsed_doc.error());
  simdjson::dom::object doc = *parsed_doc;
  subscribe_config c;
  bool has_broker = false;
  for (auto field : doc) {
    const std::string_view name = field.key;
    if (name == "kind") continue;
    auto known = connection_field(name, field.value, c.connection);
    if (!known) return fail(known.error());
    if (*known) {
      has_broker |= name == "broker";
      continue;
    }
    if (name == "topics" || name == "topic") {
      std::vector<std::string_view> list;
      simdjson::dom::array a;
      std::string_view one;
      if (!field.value.get_string().get(one)) {
        list.push_back(one);
      } else if (!field.value.get_array().get(a)) {
        for (auto t : a) {
          if (t.get_string().get(one))
            return fail("topics: each topic filter must be a string, got " + detail::shown(t));
          list.push_back(one);
        }
      } else {
        return fail("topics: expected a list of topic filters like [\"devices/+/telemetry\"], got " +
                    detail::shown(field.value));
      }
      for (auto t : list) {
        if (auto problem = filter_problem(t)) return fail("topics: \"" + std::string(t) + "\": " + *problem);
        c.topics.emplace_back(t);
      }
    } else if (name == "qos") {
      auto q = qos_of(field.value);
      if (!q) return fail(q.error());
      c.qos = *q;
    } else if (name == "key") {
      std::string_view k;
      if (field.value.get_string().get(k))
        return fail("key: expected topic:N (a level of the topic) or a JSON pointer like /deviceId, got " +
                    detail::shown(field.value));
      if (k.rfind("topic:", 0) == 0) {
        int n = -1;
        auto digits = k.substr(6);
        if (digits.empty() || digits.size() > 3 || digits.find_first_not_of("0123456789") != std::string_view::npos)
          return fail("key: topic:N needs a level number from 0, like topic:1, got \"" + std::string(k) + "\"");
        n = std::stoi(std::string(digits));
        c.key_level = n;
      } else if (is_pointer(k)) {
        c.key_pointer = std::string(k);
      } else {
        return fail("key: expected topic:N (a level of the topic) or a JSON pointer like /deviceId, got \"" +
                    std::string(k) + "\"");
      }
    } else if (name == "id") {
      simdjson::dom::array a;
      std::string_view one;
      if (!field.value.get_string().get(one)) {
        if (!is_pointer(one))
          return fail("id: expected JSON pointers like [/deviceId, /seq], got " + detail::shown(field.value));
        c.id_pointers.emplace_back(one);
      } else if (!field.value.get_array().get(a)) {
        for (auto p : a)
          if (p.get_string().get(one) || !is_pointer(one))
            return fail("id: expected JSON pointers like [/deviceId, /seq], got " + detail::shown(p));
          else
            c.id_pointers.emplace_back(one);
      } else {
        return fail("id: expected JSON pointers like [/deviceId, /seq], got " + detail::shown(field.value));
      }
    } else if (name == "cleanSession") {
      bool b;
      if (field.value.get_bool().get(b))
        return fail("cleanSession: expected true or false, got " + detail::shown(field.value));
      c.clean_session = b;
    } else {
      return fail("unknown field \"" + std::string(name) +
                  "\" (mqtt.Subscribe takes broker, topics, qos, key, id, clientId, username, password, keepAlive, "
                  "batchWindow and cleanSession)");
    }
  }
  if (!has_broker) return fail("broker: missing (the MQTT broker, like mqtt://127.0.0.1:1883)");
  if (c.topics.empty())
    return fail("topics: missing (the topic filters to subscribe to, like [\"devices/+/telemetry\"])");
  return c;
}

result<publish_config> parse_publish(std::string_view config_json) {
  simdjson::dom::parser parser;
  auto parsed_doc = detail::config_object(parser, config_json);
  if (!parsed_doc) return fail(parsed_doc.error());
  simdjson::dom::object doc = *parsed_doc;
  publish_config c;
  bool has_broker = false, has_topic = false;
  for (auto field : doc) {
    const std::string_view name = field.key;
    if (name == "kind") continue;
    auto known = connection_field(name, field.value, c.connection);
    if (!known) return fail(known.error());
    if (*known) {
      has_broker |= name == "broker";
      continue;
    }
    if (name == "topic") {
      std::string_view t;
      if (field.value.get_string().get(t) || t.empty())
        return fail("topic: expected a topic like alerts/{{key}}, got " + detail::shown(field.value));
      if (t.find_first_of("+#") != std::string_view::npos) return fail("topic: a topic to publish to has no wildcards");
      auto parsed = http_post::parse_template(t);
      if (!parsed) return fail("topic: " + parsed.error());
      c.topic = std::move(*parsed);
      has_topic = true;
    } else if (name == "qos") {
      auto q = qos_of(field.value);
      if (!q) return fail(q.error());
      c.qos = *q;
    } else if (name == "retain") {
      bool b;
      if (field.value.get_bool().get(b))
        return fail("retain: expected true or false, got " + detail::shown(field.value));
      c.retain = b;
    } else if (name == "payload") {
      std::string_view p;
      if (field.value.get_string().get(p) || (!p.empty() && !is_pointer(p)))
        return fail("payload: expected a JSON pointer into the output like /reading (or \"\"), got " +
                    detail::shown(field.value));
      c.payload_pointer = std::string(p);
    } else if (name == "retry") {
      // The same retry block as http.Post's.
      if (auto st = detail::parse_retry(field.value, c.retry); !st) return fail(st.error());
    } else {
      return fail("unknown field \"" + std::string(name) +
                  "\" (mqtt.Publish takes broker, topic, qos, retain, payload, retry, clientId, username, password, "
                  "keepAlive and batchWindow)");
    }
  }
  if (!has_broker) return fail("broker: missing (the MQTT broker, like mqtt://127.0.0.1:1883)");
  if (!has_topic) return fail("topic: missing (where each output goes, like alerts/{{key}})");
  return c;
}

std::string message_json(const publish& p) {
  std::string out = "{\"topic\":";
  http::append_json_string(out, p.topic);
  out += ",\"payload\":";
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (!p.payload.empty() && !parser.parse(p.payload.data(), p.payload.size()).get(doc))
    out += simdjson::minify(doc);
  else
    http::append_json_string(out, p.payload);
  out += ",\"qos\":" + std::to_string(p.qos) + ",\"retain\":" + (p.retain ? "true" : "false") + "}";
  return out;
}

namespace {

result<std::string> at_pointer(const publish& p, const std::string& pointer, const char* what) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc, v;
  if (parser.parse(p.payload.data(), p.payload.size()).get(doc))
    return fail(std::string(what) + ": the payload on " + p.topic + " is not JSON, so " + pointer + " finds nothing");
  if (doc.at_pointer(pointer).get(v))
    return fail(std::string(what) + ": the payload on " + p.topic + " has nothing at " + pointer);
  std::string_view s;
  if (!v.get_string().get(s)) return std::string(s);
  if (v.is_int64() || v.is_uint64()) return std::string(simdjson::minify(v));
  return fail(std::string(what) + ": the payload on " + p.topic + " has " +
              std::string(simdjson::minify(v)).substr(0, 40) + " at " + pointer +
              " (a string or an integer is needed)");
}

}  // namespace

result<std::string> message_key(const subscribe_config& c, const publish& p) {
  if (c.key_level >= 0) {
    std::size_t start = 0;
    for (int level = 0; level < c.key_level; ++level) {
      auto slash = p.topic.find('/', start);
      if (slash == std::string::npos)
        return fail("key: topic " + p.topic + " has no level " + std::to_string(c.key_level));
      start = slash + 1;
    }
    auto end = p.topic.find('/', start);
    auto key = p.topic.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (key.empty()) return fail("key: level " + std::to_string(c.key_level) + " of topic " + p.topic + " is empty");
    return key;
  }
  if (!c.key_pointer.empty()) {
    auto k = at_pointer(p, c.key_pointer, "key");
    if (k && k->empty()) return fail("key: the payload on " + p.topic + " has an empty string at " + c.key_pointer);
    return k;
  }
  return p.topic;
}

result<std::optional<std::string>> message_identity(const subscribe_config& c, const publish& p) {
  if (c.id_pointers.empty()) return std::optional<std::string>();
  std::string out;
  for (auto& pointer : c.id_pointers) {
    auto v = at_pointer(p, pointer, "id");
    if (!v) return fail(v.error());
    out += *v;
    out += '\0';
  }
  return std::optional<std::string>(std::move(out));
}

}  // namespace flowstate::drivers::mqtt
