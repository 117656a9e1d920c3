#pragma once
// Where drivers may connect. On a hosted node (docs/hosted.md, "SSRF"),
// tenants' drivers reach public addresses only: never loopback, private,
// link-local or other internal ones, which would reach the provider's own
// network (the node's admin port, the control plane, cloud metadata).
// Checked on the address a name resolved to, right before connecting.
#include <string>

namespace flowstate::drivers::outbound {

// Whether `address` (text, as resolved) is loopback, private, shared
// (CGNAT), link-local, benchmarking, reserved, multicast, unspecified, or
// an IPv6 form of one. Not an address: true.
bool is_internal(const std::string& address);

// Process-wide, set once at start: refuse internal addresses to every driver.
void set_public_only(bool on);
bool public_only();
// Set at start: internal networks drivers may reach all the same (the
// operator's own services, e.g. a shared MQTT broker): "10.1.2.0/24",
// "127.0.0.1/32", "fd00::/8". An error names what is not a network.
std::string allow_network(const std::string& cidr);

// Empty when a driver may connect to `address` for `host`; else why not.
std::string check(const std::string& host, const std::string& address);
// Whether an error is check()'s refusal: a permanent failure, not retried.
bool is_refusal(const std::string& error);

}  // namespace flowstate::drivers::outbound
