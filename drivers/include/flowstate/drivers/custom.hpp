#pragma once
// Custom drivers (docs/drivers.md "Custom drivers"): a project's own driver,
// an npm package (`kind: npm:@acme/flowstate-modbus`) or a Python package
// in vendor/ (`kind: python:acme_graphite`), run in a driver process (the
// workers' sandbox, sandbox/driver_process.hpp) and spoken to with the
// driver protocol. The driver has no network of its own: it asks, and the
// node connects to hosts the configuration names and hands the socket over.
// A source's messages are acknowledged to it after their commit; a sink's
// deliveries are the outbox's (sink.hpp). No CAF here.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flowstate/drivers/sink.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate::drivers::custom {

enum class language { js, python };

struct kind_name {
  language lang = language::js;
  std::string package;  // "@acme/flowstate-modbus", "acme_graphite"
};

// A custom kind ("npm:NAME", "python:NAME"); nullopt for any other kind; an
// error for a malformed name.
result<std::optional<kind_name>> parse_kind(const std::string& kind);

// A host the configuration names; port 0: any port.
struct endpoint {
  std::string host;
  uint16_t port = 0;
};

// A driver file: the fields the node reads, and the rest for the driver.
struct driver_config {
  std::string driver_json = "{}";  // the file without kind, hosts, listen, memory, concurrency, retry
  std::vector<endpoint> named;     // what it may connect to (see check_named)
  // Where the node accepts connections for it (`listen:`): an address
  // (0.0.0.0 when only a port is given) and a port each.
  std::vector<endpoint> listen;
  uint32_t memory_mb = 128;
  uint32_t concurrency = 16;  // a sink's deliveries at once
  // A sink's delivery unanswered after this is retried (the driver may
  // still be at it: the delivery id lets the target drop a repeat); after
  // three in a row with no answer at all the process is restarted.
  uint32_t timeout_ms = 30000;
  sinks::retry_policy retry;
};

// The hosts it names: `hosts: ["host:port", "host", "[::1]:80"]`, every
// URL among its values (scheme://host[:port], default ports by scheme) and
// every object with `host` and `port`.
result<driver_config> parse_config(const std::string& config_json);

// Empty when a connection to (host, port) is allowed by name; else why not.
std::string check_named(const driver_config& c, const std::string& host, uint16_t port);

// Empty when the address (text, as resolved) may be connected to for a host
// named `host`: loopback, private, link-local and unspecified addresses
// only when the configuration names that address itself (not a name that
// resolves to it).
std::string check_address(const std::string& host, const std::string& address);

// What runs in the process.
struct package_code {
  kind_name kind;
  std::string js_bundle;                     // js: the package bundled with its dependencies
  std::map<std::string, std::string> files;  // python: "acme/__init__.py" -> source
  std::vector<std::string> wheels;           // python: .whl bytes
};

struct driver_options {
  package_code code;
  driver_config config;
  std::string name;                                // "flow telemetry, block meter": for logs
  std::string js_binary;                           // flowstate-driver-js
  std::function<std::string(std::string)> redact;  // the project's secrets out of log lines
};

// A source's message. `acked(ok, why)` once it is committed (ok) or refused.
struct emitted {
  std::optional<std::string> key, id;
  std::string payload_json;
};
struct source_handlers {
  std::function<void(emitted&&, std::function<void(bool, std::string)> acked)> on_emit;
  std::function<bool()> may_read;  // false: the node is backed up, do not read more messages now
};

class source {
 public:
  virtual ~source() = default;
  virtual void stop() = 0;
};

// Starts the source's process on the I/O thread (restarted with backoff when
// it dies). Stops when stop() is called or the handle is dropped.
std::shared_ptr<source> start_source(sinks::io_thread& io, driver_options options, source_handlers handlers);

// A sink whose process starts now; it stops when the sink is destroyed.
std::shared_ptr<sinks::sink> make_sink(sinks::io_thread& io, driver_options options);

}  // namespace flowstate::drivers::custom
