#pragma once
// Values of driver configurations (drivers/<name>.yaml, as JSON): shared by
// the built-in drivers' parsers.
#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flowstate/drivers/sink.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate::drivers::detail {

// "500ms", "2s", "1m", "1h", or a whole number of milliseconds; nullopt
// unless it is above 0 and at most `max_ms`.
std::optional<uint64_t> duration_ms(simdjson::dom::element e, uint64_t max_ms);

// The element as short JSON text, for an error message.
std::string shown(simdjson::dom::element e);

// The driver file (as JSON) as an object, parsed by `parser` (which owns
// it); an error when it is not a mapping.
result<simdjson::dom::object> config_object(simdjson::dom::parser& parser, std::string_view config_json);

// `retry: {attempts, initial, max}` (the sinks' retry policy).
status parse_retry(simdjson::dom::element e, sinks::retry_policy& r);

// `{name: /pointer, ...}` (`field` names it in errors; `example` shows one).
result<std::vector<std::pair<std::string, std::string>>> pointer_map(simdjson::dom::element e, std::string_view field,
                                                                     std::string_view example);

}  // namespace flowstate::drivers::detail
