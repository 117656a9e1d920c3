#include "flowstate/cluster/membership.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "flowstate/runtime/git_repo.hpp"
#include "flowstate/runtime/thread_name.hpp"

namespace flowstate::cluster {

namespace {

using clock = std::chrono::steady_clock;

std::string hex8(uint32_t n) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", n);
  return buf;
}

// Applies one key's new value (or its deletion) to the view; false when the
// key is not one of the cluster's.
void apply(cluster_view& v, std::map<uint32_t, range_owner>& ranges, const std::string& prefix, const etcd_kv& kv,
           bool deleted) {
  if (kv.key.rfind(prefix, 0) != 0) return;
  std::string_view rest(kv.key);
  rest.remove_prefix(prefix.size());
  if (rest.rfind("nodes/", 0) == 0) {
    std::string name(rest.substr(6));
    if (deleted) {
      v.nodes.erase(name);
      v.registered_at.erase(name);
    } else if (auto n = decode_node(kv.value)) {
      v.nodes[name] = *n;
      v.registered_at[name] = kv.create_revision;
    } else {
      std::fprintf(stderr, "flowstate cluster: ignoring %s: %s\n", kv.key.c_str(), n.error().c_str());
    }
  } else if (rest == "controller") {
    v.controller = deleted ? std::string() : kv.value;
  } else if (rest.rfind("moves/", 0) == 0) {
    std::string id(rest.substr(6));
    if (deleted) {
      v.moves.erase(id);
    } else if (auto m = decode_move(kv.value)) {
      v.moves[id] = *m;
    } else {
      std::fprintf(stderr, "flowstate cluster: ignoring %s: %s\n", kv.key.c_str(), m.error().c_str());
    }
  } else if (rest.rfind("failed-over/", 0) == 0) {
    if (deleted)
      v.failed_over.erase(std::string(rest.substr(12)));
    else
      v.failed_over.insert(std::string(rest.substr(12)));
  } else if (rest.rfind("draining/", 0) == 0) {
    if (deleted)
      v.draining.erase(std::string(rest.substr(9)));
    else
      v.draining.insert(std::string(rest.substr(9)));
  } else if (rest.rfind("deploys/", 0) == 0) {
    std::string name(rest.substr(8));
    if (deleted) {
      v.deploys.erase(name);
    } else if (auto d = decode_deploy(kv.value)) {
      v.deploys[name] = *d;
    } else {
      std::fprintf(stderr, "flowstate cluster: ignoring %s: %s\n", kv.key.c_str(), d.error().c_str());
    }
  } else if (rest.rfind("deployed/", 0) == 0) {
    auto path = rest.substr(9);
    auto slash = path.rfind('/');
    if (slash == std::string_view::npos) return;
    std::string name(path.substr(0, slash)), node(path.substr(slash + 1));
    if (deleted) {
      v.deployed[name].erase(node);
    } else if (auto r = decode_report(kv.value)) {
      v.deployed[name][node] = *r;
    }
  } else if (rest == "rebalance") {
    v.rebalance = !deleted;
  } else if (rest == "config") {
    if (deleted) {
      v.config = {};
    } else if (auto c = decode_config(kv.value)) {
      v.config = *c;
    } else {
      std::fprintf(stderr, "flowstate cluster: ignoring %s: %s\n", kv.key.c_str(), c.error().c_str());
    }
  } else if (rest.rfind("placement/", 0) == 0) {
    auto first = static_cast<uint32_t>(std::strtoul(std::string(rest.substr(10)).c_str(), nullptr, 16));
    if (deleted) {
      v.placement_changed_at = std::max(v.placement_changed_at, kv.mod_revision);
      ranges.erase(first);
    } else if (auto r = decode_range(kv.value)) {
      // Who leads what changed (not only a range's followers or in-sync
      // set, which the leader and the controller change all the time).
      auto was = ranges.find(first);
      if (was == ranges.end() || was->second.end != r->end || was->second.node != r->node ||
          was->second.epoch != r->epoch)
        v.placement_changed_at = std::max(v.placement_changed_at, kv.mod_revision);
      ranges[first] = *r;
    } else {
      std::fprintf(stderr, "flowstate cluster: ignoring %s: %s\n", kv.key.c_str(), r.error().c_str());
    }
  }
}

void rebuild(cluster_view& v, const std::map<uint32_t, range_owner>& ranges) {
  v.ranges.ranges.clear();
  for (auto& [_, r] : ranges) v.ranges.ranges.push_back(r);
}

}  // namespace

std::string cluster_prefix(const std::string& cluster) { return "/flowstate/" + cluster + "/"; }

std::string placement_key(const std::string& cluster, uint32_t first_group) {
  return cluster_prefix(cluster) + "placement/" + hex8(first_group);
}

std::string move_key(const std::string& cluster, const std::string& id) {
  return cluster_prefix(cluster) + "moves/" + id;
}

result<uint32_t> cluster_project_id(const etcd_options& etcd, const std::string& cluster, const std::string& name) {
  auto client = etcd_client::connect(etcd);
  if (!client) return fail(client.error());
  auto& c = **client;
  const auto key = cluster_prefix(cluster) + "projects/" + name;
  const auto next_key = cluster_prefix(cluster) + "next-project-id";
  auto parse = [&](const std::string& text) -> result<uint32_t> {
    char* end = nullptr;
    auto n = std::strtoul(text.c_str(), &end, 10);
    if (text.empty() || *end || n == 0 || n > UINT32_MAX)
      return fail("etcd key " + key + " holds \"" + text + "\", not a project id");
    return static_cast<uint32_t>(n);
  };
  for (int attempt = 0; attempt < 50; ++attempt) {
    auto known = c.get(key);
    if (!known) return fail(known.error());
    if (*known) return parse((*known)->value);
    auto next = c.get(next_key);
    if (!next) return fail(next.error());
    uint32_t id = 1;
    if (*next) {
      auto n = parse((*next)->value);
      if (!n) return fail(n.error());
      id = *n;
    }
    etcd_compare absent{key, etcd_compare::target::create, etcd_compare::result::equal, 0, ""};
    etcd_compare counter_unchanged{next_key, etcd_compare::target::mod, etcd_compare::result::equal,
                                   *next ? (*next)->mod_revision : 0, ""};
    auto r = c.txn({absent, counter_unchanged},
                   {etcd_op::put(key, std::to_string(id)), etcd_op::put(next_key, std::to_string(id + 1))});
    if (!r) return fail(r.error());
    if (r->succeeded) return id;
    // Another node registered a project meanwhile: read again.
  }
  return fail("could not record project " + name +
              "'s id in etcd after 50 attempts (too many concurrent registrations)");
}

result<cluster_view> read_cluster_view(const etcd_options& etcd, const std::string& cluster) {
  auto client = etcd_client::connect(etcd);
  if (!client) return fail(client.error());
  const auto prefix = cluster_prefix(cluster);
  cluster_view v;
  auto kvs = (*client)->get_prefix(prefix, &v.revision);
  if (!kvs) return fail(kvs.error());
  std::map<uint32_t, range_owner> ranges;
  for (auto& kv : *kvs) apply(v, ranges, prefix, kv, false);
  rebuild(v, ranges);
  v.ranges.revision = v.revision;
  return v;
}

struct membership::impl {
  membership_options options;
  std::string prefix;
  std::unique_ptr<etcd_client> loop_client, watch_client;
  int64_t lease = 0;
  std::atomic<int64_t> election_revision{0};  // the controller key's create revision while we hold it

  // replace_range, with more conditions and writes in its transaction.
  status replace(const range_owner& old, const std::vector<range_owner>& replacement,
                 std::vector<etcd_compare> extra_conditions, std::vector<etcd_op> extra_ops);
  bool registered = false;  // nodes/NAME is ours under `lease` (loop thread)
  std::atomic<uint64_t> losses{0};
  std::atomic<bool> stepped_down{false};  // step_down(): stay unregistered

  mutable std::mutex mu;
  mutable std::condition_variable changed_cv;
  cluster_view current;
  std::map<uint32_t, range_owner> ranges;
  std::function<void(const cluster_view&)> on_change;
  clock::time_point nodes_changed_at = clock::now();

  std::atomic<bool> stopping{false};
  std::thread loop_thread, watch_thread;

  status register_node(clock::time_point deadline) {
    if (lease == 0) {
      auto granted = loop_client->lease_grant(options.lease_ttl_s);
      if (!granted) return fail(granted.error());
      lease = *granted;
    }
    const auto key = prefix + "nodes/" + options.self.name;
    for (;;) {
      // The wait for a dead predecessor's lease to lapse may outlast ours.
      auto ttl = loop_client->lease_keepalive(lease);
      if (!ttl) return fail(ttl.error());
      if (*ttl == 0) {
        auto granted = loop_client->lease_grant(options.lease_ttl_s);
        if (!granted) return fail(granted.error());
        lease = *granted;
      }
      etcd_compare absent{key, etcd_compare::target::create, etcd_compare::result::equal, 0, ""};
      auto r = loop_client->txn({absent}, {etcd_op::put(key, encode_node(options.self), lease)}, {etcd_op::range(key)});
      if (!r) return fail(r.error());
      if (r->succeeded) {
        registered = true;
        return status::success();
      }
      if (clock::now() >= deadline || stopping.load()) {
        std::string holder = "?";
        if (!r->ranges.empty() && !r->ranges[0].empty())
          if (auto n = decode_node(r->ranges[0][0].value))
            holder = "store " + n->store_id + ", incarnation " + n->incarnation + ", peer " + n->peer;
        (void)loop_client->lease_revoke(lease);
        lease = 0;
        return fail("a node named \"" + options.self.name + "\" is already in cluster \"" + options.cluster + "\" (" +
                    holder + "): another process with this name is running; give this one another --node name");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }

  // One round of the loop thread: the lease, the election, the controller's
  // duties.
  void tick() {
    if (stepped_down.load()) {
      if (registered || lease != 0) {
        // Revoked, not left to lapse: the controller sees the node go now.
        if (auto st = loop_client->lease_revoke(lease); !st) {
          std::fprintf(stderr, "flowstate cluster: node %s stepping down: %s (trying again)\n",
                       options.self.name.c_str(), st.error().c_str());
          return;
        }
        registered = false;
        lease = 0;
        election_revision = 0;
        std::fprintf(stderr, "flowstate cluster: node %s stepped down: not registered until it can write again\n",
                     options.self.name.c_str());
      }
      return;
    }
    auto ttl = loop_client->lease_keepalive(lease);
    if (ttl && *ttl == 0 && registered) {
      // The lease lapsed (a pause longer than the TTL): the node's keys are
      // gone. Register again, under a new lease, until it works.
      losses.fetch_add(1);
      registered = false;
      lease = 0;
      election_revision = 0;
      std::fprintf(stderr, "flowstate cluster: node %s lost its etcd lease; registering again\n",
                   options.self.name.c_str());
    }
    if (!registered) {
      if (auto st = register_node(clock::now() + std::chrono::seconds(options.lease_ttl_s + 5)); !st)
        std::fprintf(stderr, "flowstate cluster: %s\n", st.error().c_str());
      return;
    }
    if (!ttl) return;  // etcd unreachable: try again next round
    const auto controller_key = prefix + "controller";
    if (election_revision == 0) {
      etcd_compare absent{controller_key, etcd_compare::target::create, etcd_compare::result::equal, 0, ""};
      auto r = loop_client->txn({absent}, {etcd_op::put(controller_key, options.self.name, lease)});
      if (r && r->succeeded) {
        election_revision = r->revision;
      } else {
        // Lost, or won but the answer did not arrive: the key says which.
        auto held = loop_client->get(controller_key);
        if (held && *held && (*held)->value == options.self.name && (*held)->lease == lease)
          election_revision = (*held)->create_revision;
      }
    }
    if (election_revision != 0) controller_duties(controller_key);
  }

  void controller_duties(const std::string& controller_key) {
    std::vector<node_info> nodes;
    {
      std::lock_guard lock(mu);
      if (!current.ranges.ranges.empty() || current.nodes.empty()) return;
      if (clock::now() - nodes_changed_at < std::chrono::milliseconds(options.settle_ms)) return;
      for (auto& [_, n] : current.nodes) nodes.push_back(n);
    }
    auto p = initial_placement(nodes, options.key_groups);
    std::vector<etcd_op> puts;
    for (auto& r : p.ranges) puts.push_back(etcd_op::put(placement_key(options.cluster, r.first), encode_range(r)));
    etcd_compare mine{controller_key, etcd_compare::target::create, etcd_compare::result::equal, election_revision, ""};
    etcd_compare unplaced{placement_key(options.cluster, 0), etcd_compare::target::version, etcd_compare::result::equal,
                          0, ""};
    auto r = loop_client->txn({mine, unplaced}, puts);
    if (!r) {
      std::fprintf(stderr, "flowstate cluster: writing the first placement: %s\n", r.error().c_str());
    } else if (!r->succeeded) {
      // Deposed, or another controller placed first: ask again next round.
      election_revision = 0;
    } else {
      std::fprintf(stderr, "flowstate cluster: controller %s placed %u key groups on %zu node(s)\n",
                   options.self.name.c_str(), options.key_groups, p.ranges.size());
    }
  }

  void run_loop() {
    name_this_thread("fs-cluster");
    const auto period = std::chrono::milliseconds(std::max(300, options.lease_ttl_s * 1000 / 4));
    while (!stopping.load()) {
      tick();
      std::unique_lock lock(mu);
      changed_cv.wait_for(lock, period, [&] { return stopping.load(); });
    }
  }

  status load_view() {
    cluster_view v;
    auto kvs = watch_client->get_prefix(prefix, &v.revision);
    if (!kvs) return fail(kvs.error());
    std::map<uint32_t, range_owner> fresh;
    for (auto& kv : *kvs) apply(v, fresh, prefix, kv, false);
    rebuild(v, fresh);
    v.ranges.revision = v.revision;
    publish(std::move(v), std::move(fresh));
    return status::success();
  }

  void publish(cluster_view v, std::map<uint32_t, range_owner> fresh) {
    std::function<void(const cluster_view&)> notify;
    cluster_view copy;
    {
      std::lock_guard lock(mu);
      bool nodes_changed = v.nodes.size() != current.nodes.size();
      if (!nodes_changed)
        for (auto& [name, n] : v.nodes)
          if (!current.nodes.count(name) || current.nodes.at(name).incarnation != n.incarnation) nodes_changed = true;
      if (nodes_changed) nodes_changed_at = clock::now();
      current = std::move(v);
      ranges = std::move(fresh);
      notify = on_change;
      copy = current;
    }
    changed_cv.notify_all();
    if (notify) notify(copy);
  }

  void run_watch() {
    name_this_thread("fs-etcd-watch");
    while (!stopping.load()) {
      if (auto st = load_view(); !st) {
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        continue;
      }
      int64_t from;
      {
        std::lock_guard lock(mu);
        from = current.revision + 1;
      }
      auto st = watch_client->watch(
          prefix, from,
          [&](const std::vector<etcd_event>& events) {
            cluster_view v;
            std::map<uint32_t, range_owner> fresh;
            {
              std::lock_guard lock(mu);
              v = current;
              fresh = ranges;
            }
            for (auto& e : events) {
              apply(v, fresh, prefix, e.kv, e.deleted);
              v.revision = std::max(v.revision, e.kv.mod_revision);
            }
            rebuild(v, fresh);
            v.ranges.revision = v.revision;
            publish(std::move(v), std::move(fresh));
            return !stopping.load();
          },
          stopping);
      if (!st && !stopping.load()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
};

membership::membership(std::unique_ptr<impl> state) : impl_(std::move(state)) {}

result<std::unique_ptr<membership>> membership::join(membership_options options) {
  if (options.self.name.empty()) return fail("a cluster node needs a name (--node NAME)");
  if (options.lease_ttl_s < 1) return fail("the lease TTL must be at least 1 second");
  auto state = std::make_unique<impl>();
  state->prefix = cluster_prefix(options.cluster);
  state->options = std::move(options);
  auto a = etcd_client::connect(state->options.etcd);
  if (!a) return fail(a.error());
  auto b = etcd_client::connect(state->options.etcd);
  if (!b) return fail(b.error());
  state->loop_client = std::move(*a);
  state->watch_client = std::move(*b);
  if (auto st = state->register_node(clock::now() + std::chrono::seconds(state->options.lease_ttl_s + 5)); !st)
    return fail(st.error());
  if (auto st = state->load_view(); !st) return fail(st.error());
  auto* s = state.get();
  s->loop_thread = std::thread([s] { s->run_loop(); });
  s->watch_thread = std::thread([s] { s->run_watch(); });
  return std::unique_ptr<membership>(new membership(std::move(state)));
}

membership::~membership() {
  impl_->stopping = true;
  impl_->changed_cv.notify_all();
  if (impl_->loop_thread.joinable()) impl_->loop_thread.join();
  if (impl_->watch_thread.joinable()) impl_->watch_thread.join();
  (void)impl_->loop_client->lease_revoke(impl_->lease);
}

cluster_view membership::view() const {
  std::lock_guard lock(impl_->mu);
  return impl_->current;
}

bool membership::is_controller() const {
  std::lock_guard lock(impl_->mu);
  return impl_->current.controller == impl_->options.self.name;
}

void membership::on_change(std::function<void(const cluster_view&)> changed) {
  std::lock_guard lock(impl_->mu);
  impl_->on_change = std::move(changed);
}

bool membership::wait_for(const std::function<bool(const cluster_view&)>& pred, int timeout_ms) const {
  std::unique_lock lock(impl_->mu);
  return impl_->changed_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return pred(impl_->current); });
}

uint64_t membership::lease_losses() const { return impl_->losses.load(); }

void membership::step_down(bool out) {
  if (impl_->stepped_down.exchange(out) == out) return;
  impl_->changed_cv.notify_all();  // the loop thread acts now
}

status membership::replace_range(const range_owner& old, const std::vector<range_owner>& replacement) {
  return impl_->replace(old, replacement, {}, {});
}

status membership::fail_over(const range_owner& old, const range_owner& next, int64_t registered_at) {
  const auto node_key = cluster_prefix(impl_->options.cluster) + "nodes/" + old.node;
  etcd_compare same =
      registered_at == 0
          ? etcd_compare{node_key, etcd_compare::target::version, etcd_compare::result::equal, 0, ""}
          : etcd_compare{node_key, etcd_compare::target::create, etcd_compare::result::equal, registered_at, ""};
  return impl_->replace(old, {next}, {same},
                        {etcd_op::put(cluster_prefix(impl_->options.cluster) + "failed-over/" + old.node, "1")});
}

status membership::impl::replace(const range_owner& old, const std::vector<range_owner>& replacement,
                                 std::vector<etcd_compare> extra_conditions, std::vector<etcd_op> extra_ops) {
  const int64_t election = election_revision.load();
  if (election == 0) return fail("this node is not the controller");
  const auto& o = options;
  auto client = etcd_client::connect(o.etcd);
  if (!client) return fail(client.error());
  etcd_compare mine{cluster_prefix(o.cluster) + "controller", etcd_compare::target::create, etcd_compare::result::equal,
                    election, ""};
  etcd_compare unchanged{placement_key(o.cluster, old.first), etcd_compare::target::value, etcd_compare::result::equal,
                         0, encode_range(old)};
  const bool leader_checked = !extra_conditions.empty();
  std::vector<etcd_compare> conditions{mine, unchanged};
  for (auto& c : extra_conditions) conditions.push_back(std::move(c));
  std::vector<etcd_op> puts;
  for (auto& r : replacement) puts.push_back(etcd_op::put(placement_key(o.cluster, r.first), encode_range(r)));
  for (auto& op : extra_ops) puts.push_back(std::move(op));
  std::string last_error;
  const auto give_up_at = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (int attempt = 0; std::chrono::steady_clock::now() < give_up_at; ++attempt) {
    auto r = (*client)->txn(conditions, puts);
    if (r) {
      if (r->succeeded) return status::success();
      return fail(std::string("the placement changed meanwhile, ") +
                  (leader_checked ? "or node " + old.node + " registered again, " : "") +
                  "or this node is no longer the controller: nothing was written");
    }
    // No answer: the transaction may or may not have been applied. What
    // etcd holds now says which (a move must never be undone on one side
    // while the placement names the other).
    last_error = r.error();
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(200 * (attempt + 1), 2000)));
    bool written = true, untouched = true;
    for (auto& want : replacement) {
      auto kv = (*client)->get(placement_key(o.cluster, want.first));
      if (!kv) {
        written = untouched = false;  // unknown: ask again
        break;
      }
      if (!*kv || (*kv)->value != encode_range(want)) written = false;
    }
    if (written) return status::success();
    auto first = (*client)->get(placement_key(o.cluster, old.first));
    untouched = untouched && first && *first && (*first)->value == encode_range(old);
    if (!untouched && first) return fail("the placement changed meanwhile: nothing of this move was written");
  }
  return fail("placement outcome unknown: etcd did not answer whether the placement was written (" + last_error +
              "); the source settles the move from what the placement says");
}

status membership::update_range(const range_owner& old, const range_owner& now) {
  const auto& o = impl_->options;
  auto client = etcd_client::connect(o.etcd);
  if (!client) return fail(client.error());
  etcd_compare unchanged{placement_key(o.cluster, old.first), etcd_compare::target::value, etcd_compare::result::equal,
                         0, encode_range(old)};
  auto r = (*client)->txn({unchanged}, {etcd_op::put(placement_key(o.cluster, now.first), encode_range(now))});
  if (!r) return fail(r.error());
  if (!r->succeeded) return fail("the range's record changed meanwhile: nothing was written");
  return status::success();
}

status write_cluster_config(const etcd_options& etcd, const std::string& cluster, const cluster_config& c) {
  auto client = etcd_client::connect(etcd);
  if (!client) return fail(client.error());
  auto r = (*client)->put(cluster_prefix(cluster) + "config", encode_config(c));
  if (!r) return fail(r.error());
  return status::success();
}

result<deploy_record> membership::publish_deploy(const std::string& name, const std::string& revision,
                                                 const std::string& expected) {
  const auto key = cluster_prefix(impl_->options.cluster) + "deploys/" + name;
  auto client = etcd_client::connect(impl_->options.etcd);
  if (!client) return fail(client.error());
  auto current = (*client)->get(key);
  if (!current) return fail(current.error());
  deploy_record next{revision, 1, impl_->options.self.name};
  etcd_compare unchanged{key, etcd_compare::target::create, etcd_compare::result::equal, 0, ""};
  if (*current) {
    auto was = decode_deploy((*current)->value);
    if (!was) return fail(was.error());
    if (expected == no_revision)
      return fail("project " + name + " already exists in the cluster (created through node " + was->from +
                  " at revision " + was->revision + ")");
    if (!expected.empty() && was->revision != expected)
      return fail("the cluster's active revision of " + name + " is " + was->revision + ", not " + expected +
                  " (a concurrent deploy through another node?)");
    next.epoch = was->epoch + 1;
    unchanged = {key, etcd_compare::target::mod, etcd_compare::result::equal, (*current)->mod_revision, ""};
  }
  auto r = (*client)->txn({unchanged}, {etcd_op::put(key, encode_deploy(next))});
  if (!r) return fail(r.error());
  if (!r->succeeded) return fail("another deploy of " + name + " was recorded meanwhile; nothing was changed");
  return next;
}

status membership::report_deploy(const std::string& name, const deploy_report& r) {
  auto client = etcd_client::connect(impl_->options.etcd);
  if (!client) return fail(client.error());
  auto put = (*client)->put(
      cluster_prefix(impl_->options.cluster) + "deployed/" + name + "/" + impl_->options.self.name, encode_report(r));
  if (!put) return fail(put.error());
  return status::success();
}

status membership::remove(const std::string& key) {
  auto client = etcd_client::connect(impl_->options.etcd);
  if (!client) return fail(client.error());
  auto r = (*client)->txn({}, {etcd_op::erase(cluster_prefix(impl_->options.cluster) + key)});
  if (!r) return fail(r.error());
  return status::success();
}

status membership::write_move(const std::string& id, const move_request& m) {
  auto client = etcd_client::connect(impl_->options.etcd);
  if (!client) return fail(client.error());
  auto r = (*client)->put(move_key(impl_->options.cluster, id), encode_move(m));
  if (!r) return fail(r.error());
  return status::success();
}

}  // namespace flowstate::cluster
