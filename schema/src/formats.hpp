#pragma once
// Checks of the "format" keyword's values (used when formats assert).

#include <string_view>

namespace flowstate::schema::detail {

using format_check = bool (*)(std::string_view value);

// The check for a format name, or null for an unknown format.
format_check find_format(std::string_view name);

}  // namespace flowstate::schema::detail
