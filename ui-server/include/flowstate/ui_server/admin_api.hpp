#pragma once
// The admin API on --admin-listen: /healthz, /readyz, and /api/v1 (token
// required). Returns the HTTP handler to run on an http::server.
#include <string>

#include "flowstate/drivers/http_server.hpp"

namespace flowstate {
class engine;
}

namespace flowstate::admin {

http::handler make_handler(engine& e, std::string token);

}  // namespace flowstate::admin
