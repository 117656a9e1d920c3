#include "flowstate/drivers/mqtt_codec.hpp"

namespace flowstate::drivers::mqtt {

namespace {

constexpr std::size_t max_remaining_length = 268435455;  // four length bytes

void u16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}

void text(std::string& out, std::string_view s) {
  u16(out, static_cast<uint16_t>(s.size()));
  out.append(s);
}

std::string framed(uint8_t first_byte, const std::string& body) {
  std::string out(1, static_cast<char>(first_byte));
  std::size_t n = body.size();
  do {
    uint8_t digit = n % 128;
    n /= 128;
    if (n) digit |= 0x80;
    out.push_back(static_cast<char>(digit));
  } while (n);
  return out + body;
}

// Reads the fields of one packet's body, in order.
class reader {
 public:
  explicit reader(std::string_view in) : in_(in) {}
  std::optional<uint8_t> byte() {
    if (in_.empty()) return std::nullopt;
    auto b = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return b;
  }
  std::optional<uint16_t> u16() {
    if (in_.size() < 2) return std::nullopt;
    auto v = static_cast<uint16_t>((static_cast<uint8_t>(in_[0]) << 8) | static_cast<uint8_t>(in_[1]));
    in_.remove_prefix(2);
    return v;
  }
  std::optional<std::string> text() {
    auto n = u16();
    if (!n || *n > in_.size()) return std::nullopt;
    std::string out(in_.substr(0, *n));
    in_.remove_prefix(*n);
    return out;
  }
  std::string rest() {
    std::string out(in_);
    in_ = {};
    return out;
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

failure malformed(std::string_view what) { return fail("malformed MQTT packet: " + std::string(what)); }

struct encoder {
  std::string operator()(const connect& c) const {
    std::string body;
    text(body, "MQTT");
    body.push_back(4);  // protocol level 3.1.1
    uint8_t flags = c.clean_session ? 0x02 : 0;
    if (c.will) flags |= static_cast<uint8_t>(0x04 | (c.will->qos << 3) | (c.will->retain ? 0x20 : 0));
    if (c.password) flags |= 0x40;
    if (c.username) flags |= 0x80;
    body.push_back(static_cast<char>(flags));
    u16(body, c.keep_alive_s);
    text(body, c.client_id);
    if (c.will) {
      text(body, c.will->topic);
      text(body, c.will->payload);
    }
    if (c.username) text(body, *c.username);
    if (c.password) text(body, *c.password);
    return framed(0x10, body);
  }
  std::string operator()(const connack& c) const {
    std::string body{static_cast<char>(c.session_present ? 1 : 0), static_cast<char>(c.code)};
    return framed(0x20, body);
  }
  std::string operator()(const publish& p) const {
    std::string body;
    text(body, p.topic);
    if (p.qos) u16(body, p.packet_id);
    body += p.payload;
    return framed(static_cast<uint8_t>(0x30 | (p.dup ? 0x08 : 0) | (p.qos << 1) | (p.retain ? 1 : 0)), body);
  }
  std::string operator()(const ack& a) const {
    std::string body;
    u16(body, a.packet_id);
    const auto type = static_cast<uint8_t>(a.kind);
    return framed(static_cast<uint8_t>(type << 4 | (a.kind == ack_kind::pubrel ? 0x02 : 0)), body);
  }
  std::string operator()(const subscribe& s) const {
    std::string body;
    u16(body, s.packet_id);
    for (auto& [filter, qos] : s.filters) {
      text(body, filter);
      body.push_back(static_cast<char>(qos));
    }
    return framed(0x82, body);
  }
  std::string operator()(const suback& s) const {
    std::string body;
    u16(body, s.packet_id);
    for (auto c : s.codes) body.push_back(static_cast<char>(c));
    return framed(0x90, body);
  }
  std::string operator()(const unsubscribe& u) const {
    std::string body;
    u16(body, u.packet_id);
    for (auto& f : u.filters) text(body, f);
    return framed(0xA2, body);
  }
  std::string operator()(const bare& b) const {
    return framed(static_cast<uint8_t>(static_cast<uint8_t>(b.kind) << 4), {});
  }
};

result<packet> decode_body(uint8_t first, std::string_view body) {
  const uint8_t type = first >> 4, flags = first & 0x0F;
  reader r(body);
  switch (type) {
    case 1: {
      auto name = r.text();
      auto level = r.byte();
      auto f = r.byte();
      auto keep = r.u16();
      if (!name || *name != "MQTT" || !level || *level != 4) return malformed("CONNECT is not MQTT 3.1.1");
      if (!f || !keep || (*f & 0x01)) return malformed("CONNECT flags");
      connect c;
      c.clean_session = *f & 0x02;
      c.keep_alive_s = *keep;
      auto id = r.text();
      if (!id) return malformed("CONNECT client id");
      c.client_id = std::move(*id);
      if (*f & 0x04) {
        auto topic = r.text(), payload = r.text();
        const uint8_t qos = (*f >> 3) & 0x03;
        if (!topic || !payload || qos > 2) return malformed("CONNECT will");
        c.will = connect::will_message{std::move(*topic), std::move(*payload), qos, (*f & 0x20) != 0};
      } else if (*f & 0x38) {
        return malformed("CONNECT will flags without a will");
      }
      if (*f & 0x80) {
        auto u = r.text();
        if (!u) return malformed("CONNECT user name");
        c.username = std::move(*u);
      }
      if (*f & 0x40) {
        auto p = r.text();
        if (!p) return malformed("CONNECT password");
        c.password = std::move(*p);
      }
      if (!r.done()) return malformed("CONNECT has bytes after its fields");
      return packet(std::move(c));
    }
    case 2: {
      auto ack_flags = r.byte(), code = r.byte();
      if (flags || !ack_flags || !code || (*ack_flags & 0xFE) || !r.done()) return malformed("CONNACK");
      return packet(connack{(*ack_flags & 1) != 0, *code});
    }
    case 3: {
      publish p;
      p.dup = flags & 0x08;
      p.qos = (flags >> 1) & 0x03;
      p.retain = flags & 0x01;
      if (p.qos == 3) return malformed("PUBLISH with QoS 3");
      auto topic = r.text();
      if (!topic || !valid_topic_name(*topic)) return malformed("PUBLISH topic name");
      p.topic = std::move(*topic);
      if (p.qos) {
        auto id = r.u16();
        if (!id || *id == 0) return malformed("PUBLISH packet id");
        p.packet_id = *id;
      }
      p.payload = r.rest();
      return packet(std::move(p));
    }
    case 4:
    case 5:
    case 6:
    case 7:
    case 11: {
      if (flags != (type == 6 ? 0x02 : 0)) return malformed("acknowledgement flags");
      auto id = r.u16();
      if (!id || !r.done()) return malformed("acknowledgement");
      return packet(ack{static_cast<ack_kind>(type), *id});
    }
    case 8:
    case 10: {
      if (flags != 0x02) return malformed("SUBSCRIBE/UNSUBSCRIBE flags");
      auto id = r.u16();
      if (!id || *id == 0) return malformed("SUBSCRIBE/UNSUBSCRIBE packet id");
      if (type == 8) {
        subscribe s{*id, {}};
        while (!r.done()) {
          auto filter = r.text();
          auto qos = r.byte();
          if (!filter || !qos || *qos > 2 || filter_problem(*filter)) return malformed("SUBSCRIBE filter");
          s.filters.emplace_back(std::move(*filter), *qos);
        }
        if (s.filters.empty()) return malformed("SUBSCRIBE without filters");
        return packet(std::move(s));
      }
      unsubscribe u{*id, {}};
      while (!r.done()) {
        auto filter = r.text();
        if (!filter || filter_problem(*filter)) return malformed("UNSUBSCRIBE filter");
        u.filters.push_back(std::move(*filter));
      }
      if (u.filters.empty()) return malformed("UNSUBSCRIBE without filters");
      return packet(std::move(u));
    }
    case 9: {
      auto id = r.u16();
      if (flags || !id) return malformed("SUBACK");
      suback s{*id, {}};
      while (auto c = r.byte()) {
        if (*c > 2 && *c != 0x80) return malformed("SUBACK return code");
        s.codes.push_back(*c);
      }
      if (s.codes.empty()) return malformed("SUBACK without return codes");
      return packet(std::move(s));
    }
    case 12:
    case 13:
    case 14:
      if (flags || !r.done()) return malformed("PINGREQ/PINGRESP/DISCONNECT");
      return packet(bare{static_cast<bare_kind>(type)});
    default:
      return malformed("packet type " + std::to_string(type));
  }
}

// Splits a filter or topic into its levels.
std::vector<std::string_view> levels(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t at = 0;
  for (;;) {
    auto slash = s.find('/', at);
    out.push_back(s.substr(at, slash == std::string_view::npos ? std::string_view::npos : slash - at));
    if (slash == std::string_view::npos) return out;
    at = slash + 1;
  }
}

std::string_view unshared(std::string_view filter) {
  if (filter.rfind("$share/", 0) != 0) return filter;
  auto slash = filter.find('/', 7);
  return slash == std::string_view::npos ? std::string_view() : filter.substr(slash + 1);
}

}  // namespace

std::string encode(const packet& p) { return std::visit(encoder{}, p); }

result<std::optional<decoded>> decode(std::string_view bytes, std::size_t max_packet) {
  if (bytes.size() < 2) return std::optional<decoded>();
  std::size_t length = 0, multiplier = 1, at = 1;
  for (;; ++at) {
    if (at > 4) return malformed("remaining length longer than four bytes");
    if (at >= bytes.size()) return std::optional<decoded>();
    const auto digit = static_cast<uint8_t>(bytes[at]);
    length += (digit & 0x7F) * multiplier;
    multiplier *= 128;
    if (!(digit & 0x80)) break;
  }
  const std::size_t header = at + 1;
  if (length > max_remaining_length || (header + length > max_packet && (static_cast<uint8_t>(bytes[0]) >> 4) != 3))
    return fail("MQTT packet of " + std::to_string(header + length) + " bytes, above the limit of " +
                std::to_string(max_packet));
  if (header + length > max_packet) {
    // A PUBLISH too large to keep: its topic and packet id, the rest skipped.
    publish p;
    const auto flags = static_cast<uint8_t>(bytes[0]) & 0x0F;
    p.qos = (flags >> 1) & 3;
    p.retain = flags & 1;
    p.dup = flags & 8;
    if (p.qos == 3) return malformed("PUBLISH with QoS 3");
    if (bytes.size() < header + 2) return std::optional<decoded>();
    const std::size_t topic_length =
        (static_cast<std::size_t>(static_cast<uint8_t>(bytes[header])) << 8) | static_cast<uint8_t>(bytes[header + 1]);
    const std::size_t need = header + 2 + topic_length + (p.qos ? 2 : 0);
    if (bytes.size() < need) return std::optional<decoded>();
    p.topic = std::string(bytes.substr(header + 2, topic_length));
    if (p.qos)
      p.packet_id =
          static_cast<uint16_t>((static_cast<uint8_t>(bytes[need - 2]) << 8) | static_cast<uint8_t>(bytes[need - 1]));
    p.oversized = header + length;
    return std::optional<decoded>(decoded{std::move(p), header + length});
  }
  if (bytes.size() < header + length) return std::optional<decoded>();
  auto p = decode_body(static_cast<uint8_t>(bytes[0]), bytes.substr(header, length));
  if (!p) return fail(p.error());
  return std::optional<decoded>(decoded{std::move(*p), header + length});
}

bool valid_topic_name(std::string_view topic) {
  return !topic.empty() && topic.size() <= 65535 &&
         topic.find_first_of(std::string_view("+#\0", 3)) == std::string_view::npos;
}

std::optional<std::string> filter_problem(std::string_view filter) {
  if (filter.rfind("$share/", 0) == 0) {
    auto slash = filter.find('/', 7);
    auto group = filter.substr(7, slash == std::string_view::npos ? std::string_view::npos : slash - 7);
    if (group.empty() || group.find_first_of("+#") != std::string_view::npos || slash == std::string_view::npos)
      return "a shared subscription is $share/GROUP/FILTER with a group name without + or #";
    filter = filter.substr(slash + 1);
  }
  if (filter.empty()) return "a filter is not empty";
  if (filter.find('\0') != std::string_view::npos) return "a filter holds no NUL character";
  auto parts = levels(filter);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto level = parts[i];
    if (level.find('#') != std::string_view::npos && (level != "#" || i + 1 != parts.size()))
      return "'#' must be a whole level, and the last one";
    if (level.find('+') != std::string_view::npos && level != "+") return "'+' must be a whole level";
  }
  return std::nullopt;
}

bool topic_matches(std::string_view filter, std::string_view topic) {
  filter = unshared(filter);
  if (filter.empty() || topic.empty()) return false;
  auto f = levels(filter), t = levels(topic);
  // "$SYS/..." topics are not matched by a filter starting with a wildcard.
  if (topic[0] == '$' && (f[0] == "+" || f[0] == "#")) return false;
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return true;  // this level and every one below (the parent too)
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return f.size() == t.size();
}

}  // namespace flowstate::drivers::mqtt
