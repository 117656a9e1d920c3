#pragma once
// Driver configurations against their kinds' JSON Schemas
// (drivers/schemas/KIND.json): the deploy's second check of a driver file,
// after the kind's own parser accepted it.
#include <string>
#include <string_view>
#include <vector>

namespace flowstate::engine_detail {

// "FILE:LINE: /pointer: message" for each way `config_json` (the driver
// file as JSON, before secrets are put in) breaks its kind's schema; none
// for a kind without one (custom drivers). `yaml` is the file's text, for
// the line.
std::vector<std::string> config_schema_problems(const std::string& file, std::string_view kind,
                                                std::string_view config_json, std::string_view yaml);

// The line (1-based) of the value at a JSON pointer in a YAML document, as
// near as indentation tells (the nearest enclosing key found; 1 at worst).
int yaml_line_of(std::string_view yaml, std::string_view pointer);

}  // namespace flowstate::engine_detail
