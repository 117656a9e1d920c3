#pragma once
// Values of driver configurations (drivers/<name>.yaml, as JSON): shared by
// the built-in drivers' parsers.
#include <simdjson.h>

#include <cstdint>
#include <optional>
#include <string>

namespace flowstate::drivers::detail {

// "500ms", "2s", "1m", "1h", or a whole number of milliseconds; nullopt
// unless it is above 0 and at most `max_ms`.
std::optional<uint64_t> duration_ms(simdjson::dom::element e, uint64_t max_ms);

// The element as short JSON text, for an error message.
std::string shown(simdjson::dom::element e);

}  // namespace flowstate::drivers::detail
