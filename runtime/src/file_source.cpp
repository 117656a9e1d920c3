// file_source implementations: a directory on disk, and a git commit's tree.
#include "flowstate/runtime/file_source.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <system_error>
#include <unordered_map>

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
    // As in a commit's tree: a symbolic link is not a file (the node reads
    // the commit, where git keeps the link, not what it points to).
    if (fs::is_symlink(full, ec) || !fs::is_regular_file(full, ec)) return std::nullopt;
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
          !entry.is_symlink(type_ec) && (folders ? entry.is_directory(type_ec) : entry.is_regular_file(type_ec));
      if (wanted) names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path root_;
};

// Blob contents by object id, shared by every revision the process reads:
// a deploy reads every file of the project, and git objects are immutable,
// so unchanged files come from memory instead of being inflated again.
class blob_cache {
 public:
  std::optional<std::string> get(const git_oid& id) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(key(id));
    if (it == entries_.end()) return std::nullopt;
    return it->second;
  }
  void put(const git_oid& id, const std::string& content) {
    if (content.size() > max_bytes / 16) return;
    std::lock_guard lock(mutex_);
    if (bytes_ + content.size() > max_bytes) {  // crude, and rare: start afresh
      entries_.clear();
      bytes_ = 0;
    }
    if (entries_.emplace(key(id), content).second) bytes_ += content.size() + 64;
  }

 private:
  static constexpr size_t max_bytes = size_t{64} << 20;
  static std::string key(const git_oid& id) { return std::string(reinterpret_cast<const char*>(id.id), GIT_OID_RAWSZ); }
  std::mutex mutex_;
  std::unordered_map<std::string, std::string> entries_;
  size_t bytes_ = 0;
};

blob_cache& blobs() {
  static blob_cache cache;
  return cache;
}

class git_commit_source final : public file_source {
 public:
  git_commit_source(detail::repo_ptr repo, detail::tree_ptr tree, std::string commit)
      : repo_(std::move(repo)), tree_(std::move(tree)), commit_(std::move(commit)) {}

  std::optional<std::string> read(const std::string& path) override {
    detail::tree_entry_ptr entry = find(path);
    if (!entry || git_tree_entry_type(entry.get()) != GIT_OBJECT_BLOB) return std::nullopt;
    const git_oid* id = git_tree_entry_id(entry.get());
    if (auto cached = blobs().get(*id)) return cached;
    git_blob* raw = nullptr;
    if (git_blob_lookup(&raw, repo_.get(), id) != 0) return std::nullopt;
    detail::blob_ptr blob(raw);
    const char* data = static_cast<const char*>(git_blob_rawcontent(blob.get()));
    std::string content(data, static_cast<size_t>(git_blob_rawsize(blob.get())));
    blobs().put(*id, content);
    return content;
  }

  std::vector<std::string> list(const std::string& dir) override { return entries(dir, false); }
  std::vector<std::string> list_dirs(const std::string& dir) override { return entries(dir, true); }

  std::vector<std::string> entries(const std::string& dir, bool folders) {
    std::vector<std::string> names;
    const git_tree* folder = tree_at(dir);
    if (!folder) return names;
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
    if (path.empty()) return {};
    auto slash = path.rfind('/');
    const git_tree* folder = tree_at(slash == std::string::npos ? std::string() : path.substr(0, slash));
    if (!folder) return {};
    const git_tree_entry* entry =
        git_tree_entry_byname(folder, path.c_str() + (slash == std::string::npos ? 0 : slash + 1));
    git_tree_entry* copy = nullptr;
    if (!entry || git_tree_entry_dup(&copy, entry) != 0) return {};
    return detail::tree_entry_ptr(copy);
  }

  // The tree of folder `dir` ("" is the root), looked up once per source: a
  // big folder's tree is read and inflated once, not for every file in it.
  const git_tree* tree_at(const std::string& dir) {
    if (dir.empty()) return tree_.get();
    if (auto it = subtrees_.find(dir); it != subtrees_.end()) return it->second.get();
    detail::tree_ptr& slot = subtrees_[dir];
    auto slash = dir.rfind('/');
    const git_tree* parent = tree_at(slash == std::string::npos ? std::string() : dir.substr(0, slash));
    if (!parent) return nullptr;
    const git_tree_entry* entry =
        git_tree_entry_byname(parent, dir.c_str() + (slash == std::string::npos ? 0 : slash + 1));
    if (!entry || git_tree_entry_type(entry) != GIT_OBJECT_TREE) return nullptr;
    git_tree* raw = nullptr;
    if (git_tree_lookup(&raw, repo_.get(), git_tree_entry_id(entry)) != 0) return nullptr;
    slot.reset(raw);
    return raw;
  }

  detail::repo_ptr repo_;
  detail::tree_ptr tree_;
  std::string commit_;
  std::unordered_map<std::string, detail::tree_ptr> subtrees_;
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
