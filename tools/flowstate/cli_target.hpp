#pragma once
// What the commands that talk to a running node share: --data, --admin,
// --project and --json, finding the node, and failing with a message.
#include <cstdint>
#include <string>

#include "admin_client.hpp"

namespace CLI {
class App;
}

namespace flowstate::cli {

struct target_options {
  std::string data_dir;
  std::string admin;
  std::string project;
  bool json = false;
};

void add_target_options(CLI::App* cmd, target_options& o);

// Prints `message` and ends the command with exit status 1.
[[noreturn]] void die(const std::string& message);

// The node named by the options (else the one of the default data directory).
admin_target connect(const target_options& o);

// `given`, else the name of the node's only project.
std::string resolve_project(const admin_target& t, const std::string& given);

// "30s", "10m", "2h", "1d" -> milliseconds; -1 when malformed.
int64_t parse_age_ms(const std::string& text);

// Percent-encoding for a query parameter value.
std::string url_escape(const std::string& s);

}  // namespace flowstate::cli
