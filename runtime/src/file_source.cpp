// file_source implementations: a directory on disk, and a git commit's tree.
#include "flowstate/runtime/file_source.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "project_detail.hpp"

namespace flowstate {
namespace {

namespace fs = std::filesystem;

class worktree_source final : public file_source {
 public:
  explicit worktree_source(std::string dir) : root_(std::move(dir)) {}

  std::optional<std::string> read(const std::string& path) override {
    std::error_code ec;
    fs::path full = root_ / path;
    if (!fs::is_regular_file(full, ec)) return std::nullopt;
    std::ifstream in(full, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream content;
    content << in.rdbuf();
    return content.str();
  }

  std::vector<std::string> list(const std::string& dir) override { return entries(dir, false); }
  std::vector<std::string> list_dirs(const std::string& dir) override { return entries(dir, true); }

  std::string revision() const override { return ""; }

 private:
  std::vector<std::string> entries(const std::string& dir, bool folders) {
    std::vector<std::string> names;
    std::error_code ec;
    fs::directory_iterator it(dir.empty() ? root_ : root_ / dir, ec);
    if (ec) return names;
    for (const auto& entry : it) {
      std::error_code type_ec;
      bool wanted =
          folders ? entry.is_directory(type_ec) && !entry.is_symlink(type_ec) : entry.is_regular_file(type_ec);
      if (wanted) names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path root_;
};

class git_commit_source final : public file_source {
 public:
  git_commit_source(detail::repo_ptr repo, detail::tree_ptr tree, std::string commit)
      : repo_(std::move(repo)), tree_(std::move(tree)), commit_(std::move(commit)) {}

  std::optional<std::string> read(const std::string& path) override {
    detail::tree_entry_ptr entry = find(path);
    if (!entry || git_tree_entry_type(entry.get()) != GIT_OBJECT_BLOB) return std::nullopt;
    git_blob* raw = nullptr;
    if (git_blob_lookup(&raw, repo_.get(), git_tree_entry_id(entry.get())) != 0) return std::nullopt;
    detail::blob_ptr blob(raw);
    const char* data = static_cast<const char*>(git_blob_rawcontent(blob.get()));
    return std::string(data, static_cast<size_t>(git_blob_rawsize(blob.get())));
  }

  std::vector<std::string> list(const std::string& dir) override { return entries(dir, false); }
  std::vector<std::string> list_dirs(const std::string& dir) override { return entries(dir, true); }

  std::vector<std::string> entries(const std::string& dir, bool folders) {
    std::vector<std::string> names;
    const git_tree* folder = tree_.get();
    detail::tree_ptr subtree;
    if (!dir.empty()) {
      detail::tree_entry_ptr entry = find(dir);
      if (!entry || git_tree_entry_type(entry.get()) != GIT_OBJECT_TREE) return names;
      git_tree* raw = nullptr;
      if (git_tree_lookup(&raw, repo_.get(), git_tree_entry_id(entry.get())) != 0) return names;
      subtree.reset(raw);
      folder = raw;
    }
    for (size_t i = 0, n = git_tree_entrycount(folder); i < n; ++i) {
      const git_tree_entry* entry = git_tree_entry_byindex(folder, i);
      // Blobs only: symlinks (GIT_FILEMODE_LINK) are blobs too but not files.
      bool wanted = folders ? git_tree_entry_type(entry) == GIT_OBJECT_TREE
                            : git_tree_entry_type(entry) == GIT_OBJECT_BLOB &&
                                  git_tree_entry_filemode(entry) != GIT_FILEMODE_LINK;
      if (wanted) names.emplace_back(git_tree_entry_name(entry));
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string revision() const override { return commit_; }

 private:
  detail::tree_entry_ptr find(const std::string& path) {
    git_tree_entry* raw = nullptr;
    if (path.empty() || git_tree_entry_bypath(&raw, tree_.get(), path.c_str()) != 0) return {};
    return detail::tree_entry_ptr(raw);
  }

  detail::repo_ptr repo_;
  detail::tree_ptr tree_;
  std::string commit_;
};

}  // namespace

std::unique_ptr<file_source> open_worktree(std::string dir) {
  return std::make_unique<worktree_source>(std::move(dir));
}

result<std::unique_ptr<file_source>> open_git_commit(const std::string& repo_dir, const std::string& commit_hex) {
  detail::ensure_libgit2();
  git_repository* raw_repo = nullptr;
  if (git_repository_open(&raw_repo, repo_dir.c_str()) != 0)
    return fail(detail::git_error_text("expected a git repository at " + repo_dir));
  detail::repo_ptr repo(raw_repo);

  git_object* raw_object = nullptr;
  if (git_revparse_single(&raw_object, repo.get(), commit_hex.c_str()) != 0)
    return fail(detail::git_error_text("expected a commit \"" + commit_hex + "\" in " + repo_dir));
  detail::object_ptr object(raw_object);
  git_object* raw_commit = nullptr;
  if (git_object_peel(&raw_commit, object.get(), GIT_OBJECT_COMMIT) != 0)
    return fail(detail::git_error_text("expected \"" + commit_hex + "\" to name a commit in " + repo_dir));
  detail::commit_ptr commit(reinterpret_cast<git_commit*>(raw_commit));

  git_tree* raw_tree = nullptr;
  if (git_commit_tree(&raw_tree, commit.get()) != 0)
    return fail(detail::git_error_text("cannot read the tree of commit " + commit_hex));
  std::string hex = detail::oid_hex(*git_commit_id(commit.get()));
  std::unique_ptr<file_source> source =
      std::make_unique<git_commit_source>(std::move(repo), detail::tree_ptr(raw_tree), hex);
  return source;
}

std::vector<std::string> file_source::list_tree(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& name : list(dir)) out.push_back(dir.empty() ? name : dir + "/" + name);
  for (auto& sub : list_dirs(dir)) {
    auto nested = list_tree(dir.empty() ? sub : dir + "/" + sub);
    out.insert(out.end(), nested.begin(), nested.end());
  }
  return out;
}

}  // namespace flowstate
