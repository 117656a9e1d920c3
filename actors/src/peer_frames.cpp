#include "peer_frames.hpp"

#include <cstdint>

#include "flowstate/runtime/decimal.hpp"

namespace flowstate::engine_detail {

namespace {

constexpr std::string_view request_magic = "FSRQ1", response_magic = "FSRS1", query_magic = "FSQY1",
                           delivery_magic = "FSDL1", ack_magic = "FSAK1", request_batch_magic = "FSRB1",
                           response_batch_magic = "FSRR1";

void put(std::string& out, std::string_view field) {
  const auto n = static_cast<uint32_t>(field.size());
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xFF));
  out.append(field);
}

// The count first, so that a frame cut at a field boundary is not read as
// one with fewer headers.
void put_headers(std::string& out, const http::header_list& headers) {
  put(out, std::to_string(headers.size()));
  for (auto& [name, value] : headers) {
    put(out, name);
    put(out, value);
  }
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
  // The headers' count, then that many (name, value) pairs, ending the
  // frame; false otherwise.
  bool headers(http::header_list& out) {
    auto count_field = next();
    auto count = count_field ? parse_decimal<uint32_t>(*count_field) : std::nullopt;
    if (!count || *count > in_.size() / 8) return false;  // each pair takes at least 8 bytes
    for (uint32_t i = 0; i < *count; ++i) {
      auto name = next(), value = next();
      if (!name || !value) return false;
      out.emplace_back(std::string(*name), std::string(*value));
    }
    return in_.empty();
  }

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

}  // namespace

std::string encode_request_frame(std::string_view secret, const http::request& r) {
  std::string out;
  put(out, request_magic);
  put(out, secret);
  put(out, r.method);
  put(out, r.target);
  put(out, r.body);
  put_headers(out, r.headers);
  return out;
}

std::optional<http::request> decode_request_frame(std::string_view secret, std::string_view frame) {
  fields f(frame);
  auto magic = f.next();
  auto s = f.next();
  if (!magic || *magic != request_magic || !s || !same_secret(*s, secret)) return std::nullopt;
  auto method = f.next(), target = f.next(), body = f.next();
  if (!method || !target || !body) return std::nullopt;
  http::request r;
  r.method = std::string(*method);
  r.target = std::string(*target);
  r.body = std::string(*body);
  if (!f.headers(r.headers)) return std::nullopt;
  return r;
}

std::string encode_query(std::string_view secret, const peer_query& q) {
  std::string out;
  put(out, query_magic);
  put(out, secret);
  put(out, q.kind);
  put(out, std::to_string(q.args.size()));
  for (auto& a : q.args) put(out, a);
  return out;
}

std::optional<peer_query> decode_query(std::string_view secret, std::string_view frame) {
  fields f(frame);
  auto magic = f.next();
  auto s = f.next();
  if (!magic || *magic != query_magic || !s || !same_secret(*s, secret)) return std::nullopt;
  auto kind = f.next(), count_field = f.next();
  auto count = count_field ? parse_decimal<uint32_t>(*count_field) : std::nullopt;
  if (!kind || !count || *count > frame.size() / 4) return std::nullopt;  // each field takes at least 4 bytes
  peer_query q;
  q.kind = std::string(*kind);
  for (uint32_t i = 0; i < *count; ++i) {
    auto v = f.next();
    if (!v) return std::nullopt;
    q.args.emplace_back(*v);
  }
  if (f.next()) return std::nullopt;  // nothing may follow
  return q;
}

std::string encode_delivery(std::string_view secret, const std::vector<delivery_entry>& entries) {
  std::string out;
  put(out, delivery_magic);
  put(out, secret);
  put(out, std::to_string(entries.size()));
  for (auto& e : entries) {
    put(out, std::to_string(e.tenant));
    put(out, std::to_string(e.project));
    put(out, std::to_string(e.source_group));
    put(out, std::to_string(e.seq));
    put(out, e.queued);
  }
  return out;
}

std::optional<std::vector<delivery_entry>> decode_delivery(std::string_view secret, std::string_view frame) {
  fields f(frame);
  auto magic = f.next();
  auto s = f.next();
  if (!magic || *magic != delivery_magic || !s || !same_secret(*s, secret)) return std::nullopt;
  auto count_field = f.next();
  auto count = count_field ? parse_decimal<uint32_t>(*count_field) : std::nullopt;
  if (!count || *count > frame.size() / 20) return std::nullopt;  // each entry takes at least 20 bytes
  std::vector<delivery_entry> out(*count);
  for (auto& e : out) {
    auto t = f.next(), p = f.next(), g = f.next(), q = f.next(), v = f.next();
    if (!t || !p || !g || !q || !v) return std::nullopt;
    auto tenant = parse_decimal<uint32_t>(*t), project = parse_decimal<uint32_t>(*p);
    auto group = parse_decimal<uint32_t>(*g);
    auto seq = parse_decimal<uint64_t>(*q);
    if (!tenant || !project || !group || !seq) return std::nullopt;
    e.tenant = *tenant;
    e.project = *project;
    e.source_group = *group;
    e.seq = *seq;
    e.queued = std::string(*v);
  }
  if (f.next()) return std::nullopt;
  return out;
}

std::string encode_delivery_ack(const std::vector<delivery_status>& statuses) {
  std::string out, codes;
  for (auto s : statuses) codes.push_back(static_cast<char>('0' + static_cast<int>(s)));
  put(out, ack_magic);
  put(out, codes);
  return out;
}

std::optional<std::vector<delivery_status>> decode_delivery_ack(std::string_view frame) {
  fields f(frame);
  auto magic = f.next(), codes = f.next();
  if (!magic || *magic != ack_magic || !codes || f.next()) return std::nullopt;
  std::vector<delivery_status> out;
  for (char c : *codes) {
    if (c < '0' || c > '2') return std::nullopt;
    out.push_back(static_cast<delivery_status>(c - '0'));
  }
  return out;
}

std::string encode_response_frame(const http::response& r) {
  std::string out;
  put(out, response_magic);
  put(out, std::to_string(r.status));
  put(out, r.content_type);
  put(out, r.body);
  put_headers(out, r.headers);
  return out;
}

std::optional<http::response> decode_response_frame(std::string_view frame) {
  fields f(frame);
  auto magic = f.next();
  if (!magic || *magic != response_magic) return std::nullopt;
  auto status = f.next(), type = f.next(), body = f.next();
  if (!status || !type || !body) return std::nullopt;
  auto code = parse_decimal<uint16_t>(*status);
  if (!code || *code < 100 || *code > 599) return std::nullopt;
  http::response r;
  r.status = *code;
  r.content_type = std::string(*type);
  r.body = std::string(*body);
  if (!f.headers(r.headers)) return std::nullopt;
  return r;
}

std::string encode_request_batch(std::string_view secret, const std::vector<std::pair<uint64_t, std::string>>& frames) {
  std::string out;
  put(out, request_batch_magic);
  put(out, std::to_string(frames.size()));
  for (auto& [id, _] : frames) put(out, std::to_string(id));
  put(out, secret);
  for (auto& [_, frame] : frames) put(out, frame);
  return out;
}

std::optional<request_batch> decode_request_batch(std::string_view secret, std::string_view frame) {
  fields f(frame);
  auto magic = f.next(), count_field = f.next();
  auto count = count_field ? parse_decimal<uint32_t>(*count_field) : std::nullopt;
  if (!magic || *magic != request_batch_magic || !count || *count > frame.size() / 5) return std::nullopt;
  request_batch b;
  for (uint32_t i = 0; i < *count; ++i) {
    auto id_field = f.next();
    auto id = id_field ? parse_decimal<uint64_t>(*id_field) : std::nullopt;
    if (!id) return std::nullopt;
    b.ids.push_back(*id);
  }
  auto s = f.next();
  if (!s) return std::nullopt;
  b.authentic = same_secret(*s, secret);
  if (!b.authentic) return b;
  for (uint32_t i = 0; i < *count; ++i) {
    auto inner = f.next();
    auto req = inner ? decode_request_frame("", *inner) : std::nullopt;
    if (!req) return std::nullopt;
    b.requests.push_back(std::move(*req));
  }
  if (f.next()) return std::nullopt;
  return b;
}

std::string encode_response_batch(const std::vector<std::pair<uint64_t, std::string>>& responses) {
  std::string out;
  put(out, response_batch_magic);
  put(out, std::to_string(responses.size()));
  for (auto& [id, frame] : responses) {
    put(out, std::to_string(id));
    put(out, frame);
  }
  return out;
}

std::optional<std::vector<std::pair<uint64_t, http::response>>> decode_response_batch(std::string_view frame) {
  fields f(frame);
  auto magic = f.next(), count_field = f.next();
  auto count = count_field ? parse_decimal<uint32_t>(*count_field) : std::nullopt;
  if (!magic || *magic != response_batch_magic || !count || *count > frame.size() / 8) return std::nullopt;
  std::vector<std::pair<uint64_t, http::response>> out;
  for (uint32_t i = 0; i < *count; ++i) {
    auto id_field = f.next(), inner = f.next();
    auto id = id_field ? parse_decimal<uint64_t>(*id_field) : std::nullopt;
    auto r = inner ? decode_response_frame(*inner) : std::nullopt;
    if (!id || !r) return std::nullopt;
    out.emplace_back(*id, std::move(*r));
  }
  if (f.next()) return std::nullopt;
  return out;
}

}  // namespace flowstate::engine_detail
