#pragma once
// The control plane's schema: numbered migrations (manager/migrations/
// NNNN_name.sql, embedded), applied in order, each in its own transaction,
// under an advisory lock so that two managers starting together do not race;
// schema_migrations records each one with a checksum of its text.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flowstate/runtime/result.hpp"

namespace flowstate::manager {

class connection;

// (file name, SQL text), in order; generated from manager/migrations/.
const std::vector<std::pair<std::string_view, std::string_view>>& embedded_migrations();

// Brings the database up to the newest migration. Refuses a database that
// has a migration this binary does not know (a newer flowstate ran on it),
// or whose applied migration text changed. Returns how many it applied.
result<int> migrate(connection& c);

}  // namespace flowstate::manager
