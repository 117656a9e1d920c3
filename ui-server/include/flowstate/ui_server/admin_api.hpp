#pragma once
// The admin API on --admin-listen: /, /healthz, /readyz, /metrics and
// /api/v1 (token required), routed by one table (src/admin_routes.cpp) that
// also generates the OpenAPI description.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "flowstate/drivers/http_server.hpp"

namespace flowstate {
class engine;
}

namespace flowstate::admin {

struct admin_options {
  std::size_t pool_threads = 4;          // blocking admin requests (deploys, store reads) run at once
  std::size_t pool_queue = 64;           // and wait beyond those; more get 503 + Retry-After
  std::size_t max_trace_followers = 32;  // open GET /api/v1/trace?follow=true streams; more get 503
  // The author of commits made from edits (POST .../edits) until accounts exist.
  std::string edit_author_name = "flowstate";
  std::string edit_author_email = "flowstate@localhost";
  // Hosted mode (docs/hosted.md): the control plane's host:port and the
  // secret nodes share with it; tenants' API tokens are then checked there.
  std::string control_plane;
  std::string control_plane_secret;
};

// Owns the admin API's threads: a bounded pool for blocking requests and one
// thread for every trace follower. Call stop() (or destroy it) before the
// engine goes, and keep it alive while the server runs its handler.
class admin_api {
 public:
  admin_api(engine& e, std::string token, admin_options options = {});
  ~admin_api();
  admin_api(const admin_api&) = delete;
  admin_api& operator=(const admin_api&) = delete;

  // The handler to run on an http::server.
  http::handler handler();
  // Ends the streams and joins the threads; later requests get 503. Idempotent.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// The OpenAPI 3.1 description of every admin route (GET /api/v1/openapi.json).
const std::string& openapi_json();
// "METHOD /path" of every admin route, in table order.
std::vector<std::string> admin_route_list();

}  // namespace flowstate::admin
