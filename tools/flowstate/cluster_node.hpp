#pragma once
// `flowstate serve --cluster ...`: the node's membership (cluster/) and the
// gate that keeps requests for key groups it does not own from running here.
#include <memory>
#include <string>
#include <vector>

#include "flowstate/actors/engine.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate::cli {

struct cluster_flags {
  std::string etcd;         // --cluster http://HOST:PORT; empty: the embedded node
  std::string node;         // --node NAME
  std::string peer_listen;  // --peer-listen HOST:PORT
  // --peer-advertise HOST:PORT: what this node registers for others to
  // reach it at (a proxy or NAT in front of --peer-listen); default: the
  // address --peer-listen bound.
  std::string peer_advertise;
  // --peer-route NODE=HOST:PORT[,...]: reach node NODE there instead of at
  // the address it registered (a proxy between this node and that one).
  std::string peer_routes;
  std::string name = "default";
  std::string lease_ttl = "5s";
  std::string settle = "2s";
  std::string
      secret_file;  // --cluster-secret-file  // the first placement waits until the node set was stable this long
  std::string etcd_user, etcd_password;  // FLOWSTATE_ETCD_USER / FLOWSTATE_ETCD_PASSWORD
};

class cluster_node {
 public:
  virtual ~cluster_node() = default;  // leaves the cluster
};

// The cluster secret: --cluster-secret-file's content (trailing newlines
// dropped), else $FLOWSTATE_CLUSTER_SECRET; at least 16 characters.
result<std::string> cluster_secret(const cluster_flags& flags);

// The engine's project ids in this cluster (engine_options::project_ids).
std::function<result<uint32_t>(const std::string&)> project_ids_in(const cluster_flags& flags);

// Joins the cluster and installs the key-group gate on `eng`; a description
// of what is wrong with the flags or etcd otherwise.
result<std::unique_ptr<cluster_node>> join_cluster(const cluster_flags& flags, engine& eng,
                                                   const std::string& http_address, const std::string& admin_address);

}  // namespace flowstate::cli
