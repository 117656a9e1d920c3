#include <doctest/doctest.h>
#include <simdjson.h>

#include "flowstate/schema/schema.hpp"

using namespace flowstate::schema;

TEST_CASE("placeholder") { CHECK(parse_draft("07") == draft::draft7); }
