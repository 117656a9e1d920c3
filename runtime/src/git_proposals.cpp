// Proposed changes: commits kept under refs/flowstate/proposals/NAME, and
// the merge of one onto the running revision (git_repo.hpp).
#include <cctype>
#include <set>

#include "flowstate/runtime/git_repo.hpp"
#include "project_detail.hpp"

namespace flowstate {
namespace {

using namespace detail;

constexpr const char* prefix = "refs/flowstate/proposals/";

status check_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 64 && name.front() != '.' && name.find("..") == std::string::npos &&
            name.back() != '.';
  for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-');
  if (!ok)
    return fail("proposal \"" + name +
                "\": expected 1 to 64 letters, digits, '.', '_' or '-', not starting "
                "or ending with a dot");
  return status::success();
}

}  // namespace

status set_proposal(const std::string& repo_dir, const std::string& name, const std::string& commit) {
  if (auto st = check_name(name); !st) return st;
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  auto c = lookup_commit(repo->get(), commit, repo_dir);
  if (!c) return fail(c.error());
  git_reference* raw = nullptr;
  const std::string ref = prefix + name;
  if (git_reference_create(&raw, repo->get(), ref.c_str(), git_commit_id(c->get()), 1, "flowstate: a proposal") != 0)
    return fail(git_error_text("cannot create " + ref));
  git_reference_free(raw);
  return status::success();
}

result<std::vector<proposal>> list_proposals(const std::string& repo_dir) {
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  git_reference_iterator* raw = nullptr;
  if (git_reference_iterator_glob_new(&raw, repo->get(), "refs/flowstate/proposals/*") != 0)
    return fail(git_error_text("cannot list the proposals of " + repo_dir));
  std::vector<proposal> out;
  git_reference* ref = nullptr;
  while (git_reference_next(&ref, raw) == 0) {
    reference_ptr owned(ref);
    const git_oid* id = git_reference_target(ref);
    if (id)
      out.push_back(
          {std::string(git_reference_name(ref)).substr(std::char_traits<char>::length(prefix)), oid_hex(*id)});
  }
  git_reference_iterator_free(raw);
  return out;
}

result<std::string> proposal_revision(const std::string& repo_dir, const std::string& name) {
  if (auto st = check_name(name); !st) return fail(st.error());
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  git_oid id;
  const std::string ref = prefix + name;
  if (git_reference_name_to_id(&id, repo->get(), ref.c_str()) != 0) return std::string();
  return oid_hex(id);
}

status delete_proposal(const std::string& repo_dir, const std::string& name) {
  if (auto st = check_name(name); !st) return st;
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  const std::string ref = prefix + name;
  if (git_reference_remove(repo->get(), ref.c_str()) != 0) return fail(git_error_text("no proposal " + name));
  return status::success();
}

result<merge_outcome> merge_onto(const std::string& repo_dir, const std::string& ours, const std::string& theirs,
                                 const std::string& message, const std::string& author_name,
                                 const std::string& author_email) {
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  git_repository* r = repo->get();
  auto our = lookup_commit(r, ours, repo_dir);
  if (!our) return fail(our.error());
  auto their = lookup_commit(r, theirs, repo_dir);
  if (!their) return fail(their.error());
  const int holds = git_graph_descendant_of(r, git_commit_id(their->get()), git_commit_id(our->get()));
  if (holds < 0) return fail(git_error_text("cannot compare " + ours + " and " + theirs));
  if (holds == 1 || ours == theirs) return merge_outcome{theirs, {}};
  git_index* raw_index = nullptr;
  git_merge_options options = GIT_MERGE_OPTIONS_INIT;
  if (git_merge_commits(&raw_index, r, our->get(), their->get(), &options) != 0)
    return fail(git_error_text("cannot merge " + theirs.substr(0, 12) + " onto " + ours.substr(0, 12)));
  index_ptr index(raw_index);
  merge_outcome out;
  if (git_index_has_conflicts(index.get())) {
    git_index_conflict_iterator* it = nullptr;
    if (git_index_conflict_iterator_new(&it, index.get()) != 0) return fail(git_error_text("cannot read conflicts"));
    const git_index_entry *ancestor = nullptr, *mine = nullptr, *other = nullptr;
    std::set<std::string> paths;
    while (git_index_conflict_next(&ancestor, &mine, &other, it) == 0) {
      for (auto* e : {ancestor, mine, other})
        if (e) {
          paths.insert(e->path);
          break;
        }
    }
    git_index_conflict_iterator_free(it);
    out.conflicts.assign(paths.begin(), paths.end());
    return out;
  }
  git_oid tree_id;
  if (git_index_write_tree_to(&tree_id, index.get(), r) != 0) return fail(git_error_text("cannot write the merge"));
  git_tree* raw_tree = nullptr;
  if (git_tree_lookup(&raw_tree, r, &tree_id) != 0) return fail(git_error_text("cannot read the merged tree"));
  tree_ptr tree(raw_tree);
  auto commit = commit_by(r, repo_dir, tree.get(), {our->get(), their->get()}, message, author_name, author_email);
  if (!commit) return fail(commit.error());
  out.commit = *commit;
  return out;
}

}  // namespace flowstate
