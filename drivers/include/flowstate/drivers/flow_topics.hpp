#pragma once
// flow.Publish and flow.Subscribe (docs/drivers.md "flow.Publish and
// flow.Subscribe"): named topics between the flows of one project. The
// engine delivers what reaches a flow.Publish block to every flow whose
// first block subscribes to its topic, in the producing commit.
#include <string>
#include <string_view>

#include "flowstate/runtime/result.hpp"

namespace flowstate::drivers::flow_topics {

// The `topic:` of a flow.Publish or flow.Subscribe configuration (as JSON):
// 1 to 128 letters, digits, '.', '_', '-' or '/'; the error names the field.
result<std::string> parse_topic(std::string_view config_json, std::string_view kind);

}  // namespace flowstate::drivers::flow_topics
