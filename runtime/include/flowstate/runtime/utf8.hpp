#pragma once
// UTF-8 validity of untrusted text (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF). Text that reaches a worker must be
// valid UTF-8: the wire protocol's strings and the languages' strings are.
// One implementation, invalid_utf8_at in json_text.hpp, shared with the
// JSON writer.
#include <string_view>

#include "flowstate/runtime/json_text.hpp"

namespace flowstate {

inline bool is_valid_utf8(std::string_view text) { return invalid_utf8_at(text) == std::string_view::npos; }

}  // namespace flowstate
