#pragma once
// Proposed changes from the web UI (docs/operations.md "The web UI"): edits
// saved as a proposal (a kept commit, git_repo.hpp) instead of applied; its
// diff against the running revision; its `flowstate test` cases run on it;
// merged onto the running revision and deployed once they passed.
#include <map>
#include <mutex>
#include <string>

#include "admin_routes.hpp"

namespace flowstate::admin {

// The last test run of each proposal commit (in memory: a restarted node
// runs them again).
class proposal_checks {
 public:
  struct outcome {
    bool passed = false;
    std::string output;
  };
  void record(const std::string& commit, outcome o);
  bool find(const std::string& commit, outcome& out) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, outcome> by_commit_;
};

void get_proposals(admin_services& s, const admin_call& call, const http::responder_ptr& reply);
void post_proposal(admin_services& s, const admin_call& call, const http::responder_ptr& reply);
void get_proposal_diff(admin_services& s, const admin_call& call, const http::responder_ptr& reply);
void post_proposal_test(admin_services& s, const admin_call& call, const http::responder_ptr& reply);
void post_proposal_merge(admin_services& s, const admin_call& call, const http::responder_ptr& reply);
void delete_proposal_route(admin_services& s, const admin_call& call, const http::responder_ptr& reply);

}  // namespace flowstate::admin
