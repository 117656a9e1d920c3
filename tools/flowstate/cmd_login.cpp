// flowstate login: signs in to a hosted service's control plane, makes an
// API token for one team and keeps it for the other commands
// (docs/hosted.md).
#include <fcntl.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "admin_client.hpp"
#include "commands.hpp"
#include "flowstate/drivers/http_types.hpp"

namespace flowstate::cli {
namespace {

struct login_options {
  std::string service, email, team, role, name = "flowstate CLI";
};

int login(const login_options& o) {
  std::string password;
  std::getline(std::cin, password);  // from stdin: never on the command line
  if (o.service.rfind("https://", 0) != 0)
    std::fprintf(stderr, "login: %s is plain HTTP: the password and the token travel unencrypted\n", o.service.c_str());
  admin_target t;
  t.address = o.service;
  if (t.address.rfind("https://", 0) == 0) {
    t.tls = true;
    t.address = t.address.substr(8);
  } else if (t.address.rfind("http://", 0) == 0) {
    t.address = t.address.substr(7);
  }
  std::string body = "{\"email\":";
  http::append_json_string(body, o.email);
  body += ",\"password\":";
  http::append_json_string(body, password);
  auto signed_in = admin_request(t, "POST", "/api/v1/sessions", body + "}");
  if (!signed_in) {
    std::fprintf(stderr, "login: %s\n", signed_in.error().c_str());
    return 1;
  }
  if (signed_in->status != 200) {
    std::fprintf(stderr, "login refused: %s\n", problem_detail(signed_in->body).c_str());
    return 1;
  }
  simdjson::dom::parser parser;
  std::string_view csrf;
  if (parser.parse(signed_in->body)["csrf"].get(csrf)) {
    std::fprintf(stderr, "login: unexpected answer: %s\n", signed_in->body.c_str());
    return 1;
  }
  const std::string cookie = signed_in->set_cookie.substr(0, signed_in->set_cookie.find(';'));
  const std::vector<std::pair<std::string, std::string>> session{{"Cookie", cookie},
                                                                 {"X-CSRF-Token", std::string(csrf)}};
  std::string request = "{\"name\":";
  http::append_json_string(request, o.name);
  if (!o.role.empty()) {
    request += ",\"role\":";
    http::append_json_string(request, o.role);
  }
  auto made = admin_request(t, "POST", "/api/v1/teams/" + o.team + "/tokens", request + "}", session);
  (void)admin_request(t, "DELETE", "/api/v1/sessions/current", "", session);  // the token is what stays
  if (!made || made->status != 201) {
    std::fprintf(stderr, "login: no token for team %s: %s\n", o.team.c_str(),
                 made ? problem_detail(made->body).c_str() : made.error().c_str());
    return 1;
  }
  std::string_view token, role;
  simdjson::dom::element doc;
  if (parser.parse(made->body).get(doc) || doc["token"].get(token) || doc["role"].get(role)) {
    std::fprintf(stderr, "login: unexpected answer: %s\n", made->body.c_str());
    return 1;
  }
  const auto path = credentials_path();
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::string saved = "{\"service\":";
  http::append_json_string(saved, o.service);
  saved += ",\"team\":";
  http::append_json_string(saved, o.team);
  saved += ",\"token\":";
  http::append_json_string(saved, token);
  saved += "}\n";
  const auto tmp = path + ".tmp";
  // Private from its first byte: the token opens the team's projects.
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::fchmod(fd, 0600) != 0 || ::write(fd, saved.data(), saved.size()) != ssize_t(saved.size()) ||
      ::close(fd) != 0) {
    std::fprintf(stderr, "login: cannot write %s\n", tmp.c_str());
    return 1;
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::fprintf(stderr, "login: cannot write %s: %s\n", path.c_str(), ec.message().c_str());
    return 1;
  }
  std::printf("logged in as %s: a %.*s token for team %s, kept in %s\n", o.email.c_str(), int(role.size()), role.data(),
              o.team.c_str(), path.c_str());
  return 0;
}

}  // namespace

void register_login_command(CLI::App& app) {
  static login_options o;
  auto* cmd = app.add_subcommand(
      "login", "Sign in to a hosted service (the password from stdin) and keep an API token for one team");
  cmd->add_option("--service", o.service, "The control plane, HOST:PORT or https://HOST")->required();
  cmd->add_option("--email", o.email, "Your account's email")->required();
  cmd->add_option("--team", o.team, "The team whose projects the token reaches")->required();
  cmd->add_option("--role", o.role, "The token's role, up to yours (default: yours)");
  cmd->add_option("--name", o.name, "The token's name, to recognise it in the list")->capture_default_str();
  cmd->callback([] {
    if (int rc = login(o); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace flowstate::cli
