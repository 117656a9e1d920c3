#pragma once
// A blocking client for etcd v3's JSON gateway (`/v3/kv/*`, `/v3/lease/*`,
// `/v3/watch`, `/v3/auth/authenticate`), the store of the cluster's
// membership, placement and controller election. Keys and values are bytes
// (base64 on the wire); revisions and lease ids are int64 (decimal strings
// on the wire). One client is one connection, used by one thread at a time;
// a watch takes its own client.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/runtime/result.hpp"

namespace flowstate::cluster {

struct etcd_kv {
  std::string key, value;
  int64_t create_revision = 0, mod_revision = 0, version = 0, lease = 0;
};

// One condition of a transaction: the key's version, create or mod
// revision compared with `number`, or its value with `value`. A key that
// does not exist has version and create revision 0.
struct etcd_compare {
  enum class target { version, create, mod, value };
  enum class result { equal, greater, less, not_equal };
  std::string key;
  target what = target::version;
  result op = result::equal;
  int64_t number = 0;
  std::string value;
};

// One operation of a transaction (or a plain request).
struct etcd_op {
  enum class kind { put, erase, range };
  kind what = kind::put;
  std::string key;
  std::string value;      // put
  std::string range_end;  // erase, range: [key, range_end); empty: key only
  int64_t lease = 0;      // put

  static etcd_op put(std::string key, std::string value, int64_t lease = 0) {
    etcd_op op;
    op.key = std::move(key);
    op.value = std::move(value);
    op.lease = lease;
    return op;
  }
  static etcd_op erase(std::string key, std::string range_end = {}) {
    etcd_op op;
    op.what = kind::erase;
    op.key = std::move(key);
    op.range_end = std::move(range_end);
    return op;
  }
  static etcd_op range(std::string key, std::string range_end = {}) {
    etcd_op op;
    op.what = kind::range;
    op.key = std::move(key);
    op.range_end = std::move(range_end);
    return op;
  }
};

struct etcd_txn_result {
  bool succeeded = false;
  int64_t revision = 0;
  std::vector<std::vector<etcd_kv>> ranges;  // the range operations' answers, in order
};

struct etcd_event {
  bool deleted = false;
  etcd_kv kv;  // for a deletion: key and mod_revision
};

struct etcd_options {
  std::string endpoint;        // http://HOST:PORT
  std::string user, password;  // etcd authentication, when enabled there
  int timeout_ms = 5000;       // per request

  static etcd_options at(std::string endpoint, int timeout_ms = 5000) {
    etcd_options o;
    o.endpoint = std::move(endpoint);
    o.timeout_ms = timeout_ms;
    return o;
  }
};

class etcd_client {
 public:
  // Fails when the endpoint is not http://HOST:PORT.
  static result<std::unique_ptr<etcd_client>> connect(etcd_options options);
  ~etcd_client();

  // The end of the range of every key starting with `prefix`.
  static std::string prefix_end(std::string_view prefix);

  result<int64_t> put(std::string_view key, std::string_view value, int64_t lease = 0);
  result<std::optional<etcd_kv>> get(std::string_view key);
  result<std::vector<etcd_kv>> get_prefix(std::string_view prefix, int64_t* revision = nullptr);
  result<etcd_txn_result> txn(const std::vector<etcd_compare>& compares, const std::vector<etcd_op>& success,
                              const std::vector<etcd_op>& failure = {});

  result<int64_t> lease_grant(int64_t ttl_seconds);
  // The lease's remaining TTL in seconds; 0 when the lease is gone (expired
  // or revoked): whatever was attached to it is deleted.
  result<int64_t> lease_keepalive(int64_t lease);
  status lease_revoke(int64_t lease);

  // Streams the changes of keys under `prefix` from `start_revision` on to
  // `on_events`, one call per answer of etcd (a transaction's changes come
  // together, so a reader never sees half of one), until it returns false,
  // `stop` becomes true (seen within a second) or the connection fails (an
  // error). Needs a client of its own.
  status watch(std::string_view prefix, int64_t start_revision,
               const std::function<bool(const std::vector<etcd_event>&)>& on_events, const std::atomic<bool>& stop);

  struct impl;

 private:
  explicit etcd_client(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

// Base64 (RFC 4648, with padding), as the gateway writes keys and values.
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace flowstate::cluster
