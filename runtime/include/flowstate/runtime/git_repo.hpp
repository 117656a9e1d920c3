#pragma once
// Git operations on a project repository (libgit2). Every call opens and
// frees the repository: they run on a blocking thread, simplicity over speed.
// Commit ids are 40-hex strings.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/runtime/result.hpp"

namespace flowstate {

// Git's null object id: as the revision a deploy expects to replace, "the
// project does not exist yet" (as in a push that creates a ref).
inline constexpr std::string_view no_revision = "0000000000000000000000000000000000000000";

// The commit HEAD points at, or "" when the current branch has no commit yet.
result<std::string> head_commit(const std::string& repo_dir);

// Stages the working tree like `git add -A` (honouring .gitignore) in
// memory, writes its tree and creates a commit whose parent is HEAD's commit
// (none when unborn). Author and committer come from the repository's
// config, else "flowstate <flowstate@localhost>". Neither a ref nor the
// index file changes: publish the commit with update_head, then stage_commit.
// Returns the new commit id.
result<std::string> create_commit_from_worktree(const std::string& repo_dir, const std::string& message);

// Writes the index as `commit`'s tree (after update_head moved the branch
// to it, `git status` then shows only what changed since).
status stage_commit(const std::string& repo_dir, const std::string& commit);

// A commit on top of `base` holding `edits` (path -> new text, or nullopt
// to delete the file) and nothing else changed, by the given author; no ref
// moves, the working tree is not touched. A bad path (absolute, "..",
// under .git) or deleting a file `base` lacks is an error naming the path.
result<std::string> commit_edits(const std::string& repo_dir, const std::string& base,
                                 const std::map<std::string, std::optional<std::string>>& edits,
                                 const std::string& message, const std::string& author_name,
                                 const std::string& author_email);

// A commit whose files are exactly `tree_commit`'s, on top of
// `parent_commit` (a roll back as a new revision); no ref moves.
result<std::string> commit_tree_of(const std::string& repo_dir, const std::string& tree_commit,
                                   const std::string& parent_commit, const std::string& message,
                                   const std::string& author_name, const std::string& author_email);

// One commit of a project's history.
struct history_entry {
  std::string revision;
  std::vector<std::string> parents;
  std::string author, email;
  int64_t time_ms = 0;  // the author's time
  std::string message;
};

// The history from `from` back (newest first, parents after children), at
// most `limit` commits.
result<std::vector<history_entry>> history(const std::string& repo_dir, const std::string& from, std::size_t limit);

// The unified diff (git's patch format) from `from`'s files to `to`'s; an
// empty `from` is the empty tree.
result<std::string> diff(const std::string& repo_dir, const std::string& from, const std::string& to);

// Keeps `commit` reachable (refs/flowstate/edits/COMMIT), so that git gc
// never drops a revision the node may run.
status keep_commit(const std::string& repo_dir, const std::string& commit);

// Compare-and-swap of the current branch (HEAD's target, e.g. refs/heads/main;
// HEAD itself when detached): moves it to `new_commit` only if it still
// points at `expected_old_commit` ("" = the branch must be unborn, and is
// then created). A mismatch fails with a message naming both commits.
status update_head(const std::string& repo_dir, const std::string& new_commit, const std::string& expected_old_commit);

// The full message of `commit`, byte for byte as it was committed.
result<std::string> commit_message(const std::string& repo_dir, const std::string& commit);

// Whether `commit` (a 40-hex id) names a commit object in the repository;
// false for a missing object or one that is not a commit.
result<bool> commit_exists(const std::string& repo_dir, const std::string& commit);

// Whether `commit`'s history holds `ancestor` (or it is `ancestor`); false
// also when `ancestor` is not in the repository.
result<bool> contains(const std::string& repo_dir, const std::string& commit, const std::string& ancestor);

// The 40-hex commit id for "HEAD", a full or abbreviated hex id (or any
// other git revision expression, e.g. a branch name or "HEAD~1").
result<std::string> resolve(const std::string& repo_dir, const std::string& revision);

// The objects of `commit` and of everything it reaches, as one git
// packfile (a cluster node sends it to nodes that lack the revision).
// `have`: a commit the receiver holds (its history is left out), or "".
result<std::string> pack_commit(const std::string& repo_dir, const std::string& commit, const std::string& have = "");
// Adds the objects of a packfile to the repository's object store; no ref
// moves (a revision is named by its commit id).
status add_pack(const std::string& repo_dir, std::string_view pack);
// A new, empty repository at `dir` (created with its parents).
status init_repository(const std::string& dir);

// Proposed changes (the web UI's "Propose a change", git_proposals.cpp): a
// commit kept under refs/flowstate/proposals/NAME until it is merged onto
// the running revision or dropped. NAME: 1 to 64 of [A-Za-z0-9._-], not
// starting with a dot.
struct proposal {
  std::string name, revision;
};
status set_proposal(const std::string& repo_dir, const std::string& name, const std::string& commit);
result<std::vector<proposal>> list_proposals(const std::string& repo_dir);
// The proposal's commit, or "" when there is none of that name.
result<std::string> proposal_revision(const std::string& repo_dir, const std::string& name);
status delete_proposal(const std::string& repo_dir, const std::string& name);

// `theirs` merged onto `ours`: `theirs` itself when it already holds `ours`
// (nothing to merge), else a merge commit with parents ours and theirs, by
// the given author; no ref moves. Paths both sides changed differently are
// `conflicts` (and no commit is made): never resolved silently.
struct merge_outcome {
  std::string commit;
  std::vector<std::string> conflicts;
};
result<merge_outcome> merge_onto(const std::string& repo_dir, const std::string& ours, const std::string& theirs,
                                 const std::string& message, const std::string& author_name,
                                 const std::string& author_email);

}  // namespace flowstate
