// Driver processes (docs/drivers.md "Custom drivers"): the JS and Python
// hosts start in the sandbox, speak the protocol over fd 3, use a socket the
// node connected and handed over on fd 4, and cannot open one themselves.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "flowstate/runtime/json_text.hpp"
#include "flowstate/sandbox/driver_process.hpp"

using namespace flowstate;
using namespace flowstate::sandbox;

namespace {

struct listener {
  int fd = -1;
  uint16_t port = 0;
  listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd, 4);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~listener() { ::close(fd); }
};

int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  return fd;
}

// The next line from the driver, or "" after 20 s.
std::string read_line(int fd, std::string& buffered) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (true) {
    if (auto nl = buffered.find('\n'); nl != std::string::npos) {
      auto line = buffered.substr(0, nl);
      buffered.erase(0, nl + 1);
      return line;
    }
    if (std::chrono::steady_clock::now() > deadline) return {};
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 200);
    char chunk[4096];
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n == 0) return {};
    if (n > 0) buffered.append(chunk, static_cast<size_t>(n));
  }
}

void write_line(int fd, const std::string& line) {
  auto text = line + "\n";
  REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
}

// The lines up to one that contains `what` (logs may come first).
std::string until(int fd, std::string& buffered, const std::string& what) {
  for (int i = 0; i < 50; ++i) {
    auto line = read_line(fd, buffered);
    if (line.empty() || line.find(what) != std::string::npos) return line;
    MESSAGE("driver: " << line);
  }
  return {};
}

void run_source(driver_language language, const std::string& start_fields) {
  for (auto level : {sandbox_level::namespaces, sandbox_level::landlock}) {
    std::string level_text = level_name(level);
    CAPTURE(level_text);
    listener target;
    driver_launch launch;
    launch.level = level;
    launch.language = language;
    launch.js_binary = FLOWSTATE_DRIVER_JS_BINARY;
    auto child = spawn_driver(launch);
    if (!child && level == sandbox_level::namespaces &&
        child.error().find("user namespaces are refused here") != std::string::npos) {
      // A chroot or a container refuses user namespaces: the driver must
      // not start at this level (fail closed, saying why); Landlock next.
      MESSAGE("no user namespaces here: " << child.error());
      CHECK(child.error().find("namespaces: ") != std::string::npos);
      continue;
    }
    REQUIRE_MESSAGE(child, (child ? "" : child.error()));
    std::string buffered;
    write_line(child->control, "{\"type\":\"start\",\"role\":\"source\",\"name\":\"f/b\",\"config\":{\"port\":" +
                                   std::to_string(target.port) + "}," + start_fields + "}");
    CHECK(until(child->control, buffered, "\"ready\"").find("ready") != std::string::npos);
    // The driver's own socket() fails; it reports that as a log line.
    auto denied = until(child->control, buffered, "own socket");
    CHECK(denied.find("own socket: refused") != std::string::npos);
    // It asks the node to connect: the test connects and hands the socket over.
    auto request = until(child->control, buffered, "\"connect\"");
    REQUIRE(request.find("\"port\":" + std::to_string(target.port)) != std::string::npos);
    int ours = connect_to(target.port);
    REQUIRE(hand_over(*child, ours, "1"));
    ::close(ours);
    write_line(child->control, "{\"type\":\"connected\",\"ref\":1}");
    int accepted = ::accept(target.fd, nullptr, nullptr);
    REQUIRE(accepted >= 0);
    char hello[16] = {};
    pollfd p{accepted, POLLIN, 0};
    ::poll(&p, 1, 20000);
    CHECK(::read(accepted, hello, sizeof hello - 1) == 6);
    CHECK(std::string(hello) == "hello\n");
    ::close(accepted);
    auto emit = until(child->control, buffered, "\"emit\"");
    CHECK(emit.find("\"key\":\"k1\"") != std::string::npos);
    CHECK(emit.find("\"sent\":true") != std::string::npos);
    kill_driver(*child);
  }
}

}  // namespace

TEST_CASE("a JavaScript driver uses a socket the node hands it and cannot open one itself") {
  std::string code =
      "module.exports = { async start(ctx) {"
      " const s = require('net').connect(ctx.config.port, '127.0.0.1');"
      " await new Promise((resolve) => { s.on('error', (e) => { ctx.log('own socket: refused ' + e.code); resolve(); "
      "});"
      "   s.on('connect', () => { ctx.log('own socket: connected'); resolve(); }); });"
      " const c = await ctx.connect('127.0.0.1', ctx.config.port);"
      " c.write('hello\\n');"
      " await ctx.emit({ sent: true }, { key: 'k1' }); } };";
  run_source(driver_language::js, "\"package\":\"probe\",\"code\":" + json_quote(code));
}

TEST_CASE("a Python driver uses a socket the node hands it and cannot open one itself") {
  std::string code =
      "import socket\n"
      "def start(ctx):\n"
      "    try:\n"
      "        socket.create_connection(('127.0.0.1', ctx.config['port']), timeout=5)\n"
      "        ctx.log('own socket: connected')\n"
      "    except OSError as e:\n"
      "        ctx.log('own socket: refused', e)\n"
      "    c = ctx.connect('127.0.0.1', ctx.config['port'])\n"
      "    c.sendall(b'hello\\n')\n"
      "    ctx.emit({'sent': True}, key='k1')\n";
  run_source(driver_language::python, "\"package\":\"probe\",\"files\":{\"probe.py\":" + json_quote(code) + "}");
}
