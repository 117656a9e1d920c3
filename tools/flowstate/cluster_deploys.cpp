#include "cluster_deploys.hpp"

#include <chrono>
#include <cstdio>
#include <functional>

#include "flowstate/runtime/git_repo.hpp"
#include "flowstate/runtime/thread_name.hpp"

namespace flowstate::cli {

namespace {
constexpr int report_wait_ms = 60000;
}  // namespace

cluster_deployer::cluster_deployer(cluster::membership& m, engine& eng, std::string self)
    : membership_(m), engine_(eng), self_(std::move(self)) {}

cluster_deployer::~cluster_deployer() {
  engine_.set_deploy_hook(nullptr);
  std::unique_lock lock(mu_);
  stopping_ = true;
  cv_.notify_all();
  cv_.wait(lock, [&] { return deploys_in_progress_ == 0; });
  lock.unlock();
  if (thread_.joinable()) thread_.join();
}

void cluster_deployer::catch_up() { reconcile(membership_.view()); }

void cluster_deployer::start() {
  engine_.set_deploy_hook([this](const std::string& project, const std::string& revision, const std::string& expected) {
    return deploy(project, revision, expected);
  });
  thread_ = std::thread([this] { loop(); });
}

void cluster_deployer::changed() {
  {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  cv_.notify_all();
}

void cluster_deployer::loop() {
  name_this_thread("fs-deployer");
  std::unique_lock lock(mu_);
  while (!stopping_) {
    dirty_ = false;
    lock.unlock();
    reconcile(membership_.view());
    lock.lock();
    cv_.wait_for(lock, std::chrono::seconds(5), [&] { return stopping_ || dirty_; });
  }
}

void cluster_deployer::reconcile(const cluster::cluster_view& v) {
  for (auto& [project, rec] : v.deploys) {
    if (applied_[project] >= rec.epoch) continue;
    std::string active;
    for (auto& p : engine_.projects())
      if (p.name == project) active = p.revision;
    cluster::deploy_report report{rec.epoch, active, ""};
    // The git objects: from the deploying node, else from any node that
    // reported running the revision (the deploying one may have left).
    std::vector<std::string> sources{rec.from};
    if (auto reports = v.deployed.find(project); reports != v.deployed.end())
      for (auto& [node, r] : reports->second)
        if (node != rec.from && node != self_ && r.revision == rec.revision && r.error.empty()) sources.push_back(node);
    auto from_any = [&](const std::function<status(const std::string&)>& ask) {
      status got = fail("no node to fetch revision " + rec.revision + " from");
      for (auto& source : sources) {
        got = ask(source);
        if (!got && source != self_)
          if (auto from = v.nodes.find(source); from != v.nodes.end()) {
            // Not connected yet (this node is starting): connect and ask again.
            if (engine_.connect_peer(source, from->second.peer, from->second.incarnation)) got = ask(source);
          }
        if (got) return got;
      }
      return got;
    };
    if (active.empty()) {
      // A project new to this node (created by a push through another
      // node): created here from that node's repository, at the revision.
      auto made =
          from_any([&](const std::string& source) { return engine_.create_from_peer(project, rec.revision, source); });
      if (made) {
        report.revision = rec.revision;
        std::printf("flowstate: project %s created at revision %.12s (deploy %llu of the cluster, through node %s)\n",
                    project.c_str(), rec.revision.c_str(), static_cast<unsigned long long>(rec.epoch),
                    rec.from.c_str());
        std::fflush(stdout);
      } else {
        report.error = "cannot create project " + project + " here: " + made.error();
        if (failed_[project] != report.error)
          std::fprintf(stderr, "flowstate cluster: %s (trying again every 5 s)\n", report.error.c_str());
      }
    } else if (active != rec.revision) {
      status fetched =
          from_any([&](const std::string& source) { return engine_.fetch_revision(project, rec.revision, source); });
      if (!fetched) {
        report.error = fetched.error();
      } else {
        auto out = engine_.deploy_here(project, rec.revision, "", false, rec.epoch);
        report.revision = out.revision;
        if (out.http_status != 200) report.error = out.detail;
      }
      if (report.error.empty())
        std::printf("flowstate: project %s at revision %.12s (deploy %llu of the cluster, through node %s)\n",
                    project.c_str(), report.revision.c_str(), static_cast<unsigned long long>(rec.epoch),
                    rec.from.c_str());
      else if (failed_[project] != report.error)  // said once, tried again every round
        std::fprintf(stderr, "flowstate cluster: cannot activate revision %.12s of %s (trying again every 5 s): %s\n",
                     rec.revision.c_str(), project.c_str(), report.error.c_str());
      std::fflush(stdout);
    }
    if (report.error.empty() && report.revision == rec.revision)
      engine_.set_cluster_deploy(project, rec.revision, rec.epoch);
    if (!report.error.empty() && failed_[project] == report.error) continue;  // reported already
    failed_[project] = report.error;
    if (auto st = membership_.report_deploy(project, report); !st) {
      failed_.erase(project);
      std::fprintf(stderr, "flowstate cluster: reporting the deploy of %s: %s\n", project.c_str(), st.error().c_str());
      continue;  // again at the next round
    }
    // A failed activation is tried again at the next round (every 5 s):
    // until it succeeds, messages sent under this deploy wait for this node.
    if (report.error.empty()) applied_[project] = rec.epoch;
  }
}

deploy_outcome cluster_deployer::deploy(const std::string& project, const std::string& revision,
                                        const std::string& expected) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return {503, "the node is stopping", "", ""};
    ++deploys_in_progress_;
  }
  struct done_guard {
    cluster_deployer* d;
    ~done_guard() {
      std::lock_guard lock(d->mu_);
      --d->deploys_in_progress_;
      d->cv_.notify_all();
    }
  } guard{this};
  // Checked here first: a revision that cannot run is never recorded. A
  // project just created by a push (expected: no_revision) runs it already.
  const bool creating = expected == no_revision;
  auto checked = engine_.deploy_here(project, revision, creating ? "" : expected, true);
  if (checked.http_status != 200) return checked;
  auto v = membership_.view();
  if (auto it = v.deploys.find(project); !creating && it != v.deploys.end() &&
                                         it->second.revision == checked.revision &&
                                         checked.revision == checked.replaced)
    return checked;  // already the cluster's and this node's
  auto rec = membership_.publish_deploy(project, checked.revision, expected);
  if (!rec) return {409, rec.error(), checked.replaced, checked.replaced, checked.timings_ms};
  changed();  // this node activates it too, on its deployer thread
  const auto started = std::chrono::steady_clock::now();
  auto everyone = [&](const cluster::cluster_view& now) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return true;
    }
    auto reports = now.deployed.find(project);
    for (auto& [name, _] : now.nodes) {
      if (reports == now.deployed.end()) return false;
      auto r = reports->second.find(name);
      if (r == reports->second.end() || r->second.epoch < rec->epoch) return false;
    }
    return true;
  };
  bool all = false;
  for (int waited = 0; !all && waited < report_wait_ms; waited += 500) {
    all = membership_.wait_for(everyone, 500);
    std::lock_guard lock(mu_);
    if (stopping_) break;
  }
  deploy_outcome out = checked;
  out.revision = rec->revision;
  out.timings_ms.emplace_back(
      "cluster", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
  v = membership_.view();
  std::string problems, late;
  auto reports = v.deployed.find(project);
  for (auto& [name, _] : v.nodes) {
    const cluster::deploy_report* r = nullptr;
    if (reports != v.deployed.end())
      if (auto it = reports->second.find(name); it != reports->second.end() && it->second.epoch >= rec->epoch)
        r = &it->second;
    if (!r)
      late += (late.empty() ? "" : ", ") + name;
    else if (!r->error.empty())
      problems += "node " + name + ": " + r->error + "\n";
  }
  bool stopping = false;
  {
    std::lock_guard lock(mu_);
    stopping = stopping_;
  }
  if (stopping) {
    out.http_status = 503;
    out.detail = "revision " + rec->revision +
                 " is the cluster's active revision; this node stopped before every "
                 "node reported";
  } else if (!problems.empty()) {
    out.http_status = 502;
    out.detail = "revision " + rec->revision + " is the cluster's active revision, but not every node runs it:\n" +
                 problems + "(they try again at the next deploy)";
  } else if (!all) {
    out.http_status = 504;
    out.detail = "revision " + rec->revision + " is the cluster's active revision; nodes " + late +
                 " did not report within " + std::to_string(report_wait_ms / 1000) +
                 " s (they activate it when they can)";
  }
  return out;
}

}  // namespace flowstate::cli
