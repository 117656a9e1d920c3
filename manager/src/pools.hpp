#pragma once
// Dedicated placement (pools.cpp): the nodes of a pool, for the plan answer
// and the usage reports (plans.cpp, metering.cpp).
#include <string>
#include <string_view>

#include "flowstate/runtime/result.hpp"

namespace flowstate::manager {

class connection;

// A pool's name: 1 to 63 of a-z, 0-9 and '-', not starting with '-', and
// not "shared" (the pool of the nodes started without --pool).
bool valid_pool_name(std::string_view n);

// The nodes of `pool` that reported lately, as a JSON array of
// {node, admin, flows, seenAt}.
result<std::string> pool_nodes(connection& db, const std::string& pool);

// Records what a node's usage report says of it (node: NAME@INCARNATION).
status record_node(connection& db, const std::string& node, const std::string& pool, const std::string& admin,
                   const std::string& flows);

}  // namespace flowstate::manager
