#include "flowstate/drivers/outbound.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <vector>

namespace flowstate::drivers::outbound {
namespace {

std::atomic<bool> hosted{false};
// Written at start only (before any driver runs), read after.
std::vector<boost::asio::ip::network_v4> allowed_v4;
std::vector<boost::asio::ip::network_v6> allowed_v6;

bool allowed(const std::string& text) {
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(text, ec);
  if (ec) return false;
  if (a.is_v4()) {
    for (auto& n : allowed_v4)
      if (n == boost::asio::ip::network_v4(a.to_v4(), n.prefix_length()).canonical()) return true;
    return false;
  }
  for (auto& n : allowed_v6)
    if (n == boost::asio::ip::network_v6(a.to_v6(), n.prefix_length()).canonical()) return true;
  return false;
}

bool special_v4(const std::array<unsigned char, 4>& b) {
  return b[0] == 127 || b[0] == 10 || b[0] == 0 || (b[0] == 172 && (b[1] & 0xf0) == 16) ||
         (b[0] == 192 && b[1] == 168) || (b[0] == 169 && b[1] == 254) || (b[0] == 100 && (b[1] & 0xc0) == 64) ||
         (b[0] == 198 && (b[1] & 0xfe) == 18) || (b[0] == 192 && b[1] == 0 && b[2] == 0) || b[0] >= 224;
}

}  // namespace

bool is_internal(const std::string& text) {
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(text, ec);
  if (ec) return true;
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    address = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
  bool special = address.is_loopback() || address.is_unspecified() || address.is_multicast();
  if (address.is_v4()) return special || special_v4(address.to_v4().to_bytes());
  auto v6 = address.to_v6();
  auto b = v6.to_bytes();
  special |= v6.is_link_local() || v6.is_site_local() || (b[0] & 0xfe) == 0xfc;
  // An IPv4 address inside: NAT64 (64:ff9b::/96), 6to4 (2002::/16),
  // IPv4-compatible (::/96).
  const bool nat64 = b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b &&
                     std::all_of(b.begin() + 4, b.begin() + 12, [](unsigned char x) { return x == 0; });
  const bool compatible = std::all_of(b.begin(), b.begin() + 12, [](unsigned char x) { return x == 0; });
  if (nat64 || compatible) special |= special_v4({b[12], b[13], b[14], b[15]});
  if (b[0] == 0x20 && b[1] == 0x02) special |= special_v4({b[2], b[3], b[4], b[5]});
  return special;
}

void set_public_only(bool on) { hosted.store(on, std::memory_order_release); }

bool public_only() { return hosted.load(std::memory_order_acquire); }

std::string allow_network(const std::string& cidr) {
  boost::system::error_code ec;
  if (cidr.find(':') == std::string::npos) {
    auto n = boost::asio::ip::make_network_v4(cidr, ec);
    if (!ec) allowed_v4.push_back(n.canonical());
  } else {
    auto n = boost::asio::ip::make_network_v6(cidr, ec);
    if (!ec) allowed_v6.push_back(n.canonical());
  }
  return ec ? "\"" + cidr + "\" is not a network (ADDRESS/PREFIX, e.g. 10.1.2.0/24)" : "";
}

constexpr const char* refusal = "a hosted node's drivers reach public addresses only";

std::string check(const std::string& host, const std::string& address) {
  if (!public_only() || !is_internal(address) || allowed(address)) return {};
  return host + (host == address ? std::string(" is ") : " is at ") + address +
         ", an internal (loopback, private or link-local) address: " + refusal;
}

bool is_refusal(const std::string& error) { return error.find(refusal) != std::string::npos; }

}  // namespace flowstate::drivers::outbound
