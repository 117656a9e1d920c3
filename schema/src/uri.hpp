#pragma once
// RFC 3986 reference resolution, enough for "$id" and "$ref".

#include <string>
#include <string_view>

namespace flowstate::schema::detail {

// Resolves ref against an absolute base URI.
std::string resolve_uri(std::string_view base, std::string_view ref);

// Splits "a#b" into "a" and "b" (fragment without '#').
void split_fragment(std::string_view uri, std::string_view& without, std::string_view& fragment);

// Decodes %XX escapes (fragments of "$ref").
std::string percent_decode(std::string_view s);

}  // namespace flowstate::schema::detail
