// libFuzzer target: MQTT packets as a broker sends them
// (drivers/src/mqtt_codec.cpp), and topic filters. Must never crash or hang;
// a packet that decodes must encode back to bytes that decode the same, and
// topic matching must hold up on any filter and topic.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "flowstate/drivers/mqtt_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowstate::drivers::mqtt;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view rest = in;
  for (int i = 0; i < 64; ++i) {
    auto d = decode(rest, 1 << 16);
    if (!d || !d->has_value()) break;
    if ((*d)->size == 0) __builtin_trap();
    if ((*d)->size > rest.size()) {
      // Only a PUBLISH above the limit comes back before all of it is there
      // (its topic and packet id, to be acknowledged; the rest is skipped).
      const auto* p = std::get_if<publish>(&(*d)->value);
      if (!p || p->oversized != (*d)->size || !p->payload.empty()) __builtin_trap();
      break;
    }
    auto again = decode(encode((*d)->value), 1 << 17);
    if (!again || !again->has_value() || (*again)->value.index() != (*d)->value.index()) __builtin_trap();
    rest.remove_prefix((*d)->size);
  }
  auto slash = in.find('\n');
  if (slash != std::string_view::npos) {
    auto filter = in.substr(0, slash), topic = in.substr(slash + 1);
    const bool ok = !filter_problem(filter);
    const bool matches = topic_matches(filter, topic);
    // A name matches itself, unless the filter is a shared subscription
    // ($share/GROUP/FILTER matches what FILTER matches, not its own text).
    const bool shared = filter.rfind("$share/", 0) == 0;
    if (ok && !shared && filter == topic && valid_topic_name(topic) && !matches) __builtin_trap();
    if (ok && valid_topic_name(topic) && topic_matches("#", topic) != (topic[0] != '$')) __builtin_trap();
  }
  return 0;
}
