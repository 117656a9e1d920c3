#include "flowstate/drivers/flow_topics.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cctype>

#include "config_values.hpp"

namespace flowstate::drivers::flow_topics {

result<std::string> parse_topic(std::string_view config_json, std::string_view kind) {
  simdjson::dom::parser parser;
  auto parsed_doc = detail::config_object(parser, config_json);
  if (!parsed_doc) return fail(parsed_doc.error());
  simdjson::dom::object doc = *parsed_doc;
  std::string topic;
  bool seen = false;
  for (auto field : doc) {
    const std::string_view name = field.key;
    if (name == "kind") continue;
    if (name != "topic")
      return fail("unknown field \"" + std::string(name) + "\" (" + std::string(kind) + " takes topic)");
    std::string_view text;
    const bool ok =
        !field.value.get_string().get(text) && !text.empty() && text.size() <= 128 &&
        std::all_of(text.begin(), text.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '/';
        });
    if (!ok)
      return fail("topic: expected 1 to 128 letters, digits, '.', '_', '-' or '/' like \"alerts\", got " +
                  detail::shown(field.value));
    topic = std::string(text);
    seen = true;
  }
  if (!seen) return fail("topic: missing (the topic's name, like \"alerts\")");
  return topic;
}

}  // namespace flowstate::drivers::flow_topics
