#pragma once
// Where a project's files come from: a directory on disk (for validation
// before a deploy) or the tree of a git commit (what the node runs).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flowstate/runtime/result.hpp"

namespace flowstate {

// Read-only view of a project tree. Paths are relative and '/'-separated
// ("flows/counter.yaml"). Not thread-safe: one user at a time.
class file_source {
 public:
  virtual ~file_source() = default;
  // The file's bytes, or nullopt when it does not exist or is not a file.
  virtual std::optional<std::string> read(const std::string& path) = 0;
  // Names of the regular files directly in `dir` ("" is the root), sorted;
  // empty when the folder does not exist.
  virtual std::vector<std::string> list(const std::string& dir) = 0;
  // Names of the folders directly in `dir`, sorted.
  virtual std::vector<std::string> list_dirs(const std::string& dir) = 0;
  // Every file under `dir`, recursively, as paths relative to the root.
  std::vector<std::string> list_tree(const std::string& dir);
  // The 40-hex commit id the files come from, or "" for a working tree.
  virtual std::string revision() const = 0;
};

// The files under `dir` as they are now (edits show through).
std::unique_ptr<file_source> open_worktree(std::string dir);

// The files of `commit_hex` (full or abbreviated id) in the repository at
// `repo_dir`, read from git objects; the working tree is never looked at.
result<std::unique_ptr<file_source>> open_git_commit(const std::string& repo_dir, const std::string& commit_hex);

}  // namespace flowstate
