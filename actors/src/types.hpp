#pragma once
// Type names of blocks (docs/types-and-errors.md) compiled into validators:
// "Telemetry" is the project's schemas/Telemetry.json, a full URL comes
// from the node's schema registry, "std:..." are built in.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "flowstate/runtime/result.hpp"

namespace flowstate {
class file_source;
namespace schema {
class validator;
}
}  // namespace flowstate

namespace flowstate::engine_detail {

struct type_check {
  std::string name;
  std::shared_ptr<const schema::validator> validator;  // null: std:any
};

// Looks a fully qualified schema URL up in the node's registry.
using registry_lookup = std::function<std::optional<std::string>(std::string_view url)>;

// Compiles `name` for a revision; the error says what was not found or why
// the schema is invalid (the caller adds the file and line).
result<type_check> compile_type(const std::string& name, file_source& files, const registry_lookup& registry);

// Validates a JSON text; on failure fills `message` (one line naming the
// first instance path and keyword) and `details` ({"type", "errors": [...]}).
bool check_json(const type_check& t, std::string_view json, std::string& message, std::string& details);

// A schema text for the registry: nullopt when it compiles, else why not.
std::optional<std::string> schema_problem(std::string_view schema_json, const registry_lookup& registry);

}  // namespace flowstate::engine_detail
