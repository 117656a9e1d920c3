#pragma once
// Node-to-node messages of a cluster (docs/cluster.md, step 2): each node
// publishes one ingress actor through CAF's middleman (BASP over TCP); a
// request accepted on one node for a key group another node owns is sent
// to that node's ingress by the link actor this node keeps for it, which
// batches the requests that arrive together into one message; it runs
// there like a local request, and its response comes back (batched with
// others the same way) to the node that holds the client's connection.
//
// Frames are our own encoding (peer_frames.hpp), so CAF only carries
// strings and no type needs registering; every request frame starts with
// the cluster secret, and an ingress refuses frames without it.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor.hpp>

#include "flowstate/drivers/http_types.hpp"
#include "flowstate/runtime/result.hpp"
#include "peer_frames.hpp"

namespace caf {
class actor_system;
}

namespace flowstate::engine_detail {

// The header a forwarded request carries (the name of the node that
// forwarded it): a node does not forward such a request again.
inline constexpr std::string_view forwarded_header = "flowstate-forwarded-by";
// The cluster deploy number of the revision the forwarding node runs the
// project at (engine::set_cluster_deploy).
inline constexpr std::string_view deploy_header = "flowstate-deploy";

// The nodes this one is connected to: shared with the ingress actor, which
// watches every connection and forgets a lost one, so that the node is
// connected to again.
struct peer_table {
  struct remote {
    std::string address, incarnation;
    caf::actor ingress;
    caf::actor link;  // sends the requests forwarded to it, batched
  };
  std::mutex mu;
  std::map<std::string, remote> remotes;
  // Held through a whole connect: two threads connecting to one node at
  // once (the peers loop, a deploy fetching from it) would make two links,
  // and the second would end the first with the requests it carries.
  std::mutex connect_mu;
  // Requests forwarded to other nodes, and the messages that carried them.
  std::atomic<uint64_t> forwarded_requests{0}, forwarded_batches{0};
};

class peers {
 public:
  using handler = std::function<void(http::request&&, http::responder_ptr)>;
  // Answers another node's question (about this node's records, or a step
  // of moving key groups): `done` takes the answer, from any thread.
  using query_handler = std::function<void(peer_query&&, std::function<void(http::response)> done)>;
  // Accepts outbox entries another node sends (the receiver's commit), then
  // calls `done` with one status per entry, from any thread.
  using delivery_done = std::function<void(std::vector<delivery_status>)>;
  using delivery_handler = std::function<void(std::vector<delivery_entry>&&, delivery_done)>;
  peers(caf::actor_system& sys, std::string self, std::string secret, handler handle, query_handler answer,
        delivery_handler accept);
  ~peers();

  // Publishes the ingress on HOST:PORT (port 0 picks one); the address bound.
  result<std::string> listen(const std::string& address);
  // Connects to node `name`'s ingress at HOST:PORT. Blocking: call it off
  // the I/O threads and CAF's.
  // A node restarted (another incarnation) is connected to again.
  status connect(const std::string& name, const std::string& address, const std::string& incarnation);
  bool connected(const std::string& name, const std::string& incarnation) const;
  // Sends the request to node `name`; the response, or a problem saying
  // whether the request may have run there, goes to `reply`.
  void forward(const std::string& name, http::request req, http::responder_ptr reply, uint32_t timeout_ms);
  // Sends outbox entries to node `name`; `done` gets its statuses, or
  // nullopt when it did not answer in time or is not connected (on a CAF
  // thread either way).
  void deliver(const std::string& name, const std::vector<delivery_entry>& entries, uint32_t timeout_ms,
               std::function<void(std::optional<std::vector<delivery_status>>)> done);
  // Asks node `name` (blocking: admin threads only); its answer, or why
  // there is none.
  result<http::response> ask(const std::string& name, const peer_query& q, uint32_t timeout_ms);
  // The nodes this one is connected to.
  std::vector<std::string> connected_names() const;
  // Requests forwarded since the start, and the batches they went in.
  std::pair<uint64_t, uint64_t> forwarded() const {
    return {table_->forwarded_requests.load(), table_->forwarded_batches.load()};
  }

 private:
  caf::actor_system& sys_;
  std::string self_, secret_;
  caf::actor ingress_;
  caf::actor target(const std::string& name) const;
  std::shared_ptr<peer_table> table_ = std::make_shared<peer_table>();
};

}  // namespace flowstate::engine_detail
