// Git operations on a project repository (libgit2), one open per call.
#include "flowstate/runtime/git_repo.hpp"

#include <mutex>

#include "project_detail.hpp"

namespace flowstate {
namespace detail {

void ensure_libgit2() {
  static std::once_flag once;
  std::call_once(once, [] {
    git_libgit2_init();
    // Objects come from the project's own repository: re-hashing each one
    // read (SHA-1 with collision detection) was most of a deploy's time.
    git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
  });
}

std::string git_error_text(const std::string& what) {
  const git_error* e = git_error_last();
  if (e == nullptr || e->message == nullptr) return what;
  return what + ": " + e->message;
}

std::string oid_hex(const git_oid& oid) {
  char buffer[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buffer, sizeof buffer, &oid);
  return buffer;
}

result<repo_ptr> open_repo(const std::string& repo_dir) {
  ensure_libgit2();
  git_repository* raw = nullptr;
  if (git_repository_open(&raw, repo_dir.c_str()) != 0)
    return fail(git_error_text("expected a git repository at " + repo_dir));
  return repo_ptr(raw);
}

}  // namespace detail

namespace {

using namespace detail;

// HEAD's commit id; nullopt when unborn.
result<std::optional<git_oid>> head_oid(git_repository* repo, const std::string& repo_dir) {
  int unborn = git_repository_head_unborn(repo);
  if (unborn == 1) return std::optional<git_oid>();
  git_oid oid;
  if (unborn < 0 || git_reference_name_to_id(&oid, repo, "HEAD") != 0)
    return fail(git_error_text("cannot read HEAD of " + repo_dir));
  return std::optional<git_oid>(oid);
}

result<git_oid> parse_commit_id(const std::string& hex) {
  git_oid oid;
  if (hex.size() != GIT_OID_HEXSZ || git_oid_fromstr(&oid, hex.c_str()) != 0)
    return fail("expected a 40-hex commit id, found \"" + hex + "\"");
  return oid;
}

result<signature_ptr> default_signature(git_repository* repo) {
  git_signature* raw = nullptr;
  if (git_signature_default(&raw, repo) == 0) return signature_ptr(raw);
  if (git_signature_now(&raw, "flowstate", "flowstate@localhost") == 0) return signature_ptr(raw);
  return fail(git_error_text("cannot make a commit signature"));
}

}  // namespace

namespace detail {

result<commit_ptr> lookup_commit(git_repository* repo, const std::string& hex, const std::string& repo_dir) {
  auto oid = parse_commit_id(hex);
  if (!oid) return fail(oid.error());
  git_commit* raw = nullptr;
  if (git_commit_lookup(&raw, repo, &*oid) != 0)
    return fail(git_error_text("expected commit " + hex + " in " + repo_dir));
  return commit_ptr(raw);
}

}  // namespace detail

result<std::string> head_commit(const std::string& repo_dir) {
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  auto head = head_oid(repo->get(), repo_dir);
  if (!head) return fail(head.error());
  return *head ? oid_hex(**head) : std::string();
}

result<std::string> create_commit_from_worktree(const std::string& repo_dir, const std::string& message) {
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  git_repository* r = repo->get();
  if (git_repository_is_bare(r))
    return fail("expected a repository with a working tree at " + repo_dir + ", found a bare one");

  git_index* raw_index = nullptr;
  if (git_repository_index(&raw_index, r) != 0) return fail(git_error_text("cannot open the index of " + repo_dir));
  index_ptr index(raw_index);
  char everything[] = "*";
  char* patterns[] = {everything};
  git_strarray pathspec = {patterns, 1};
  // add_all picks up new and modified files (skipping ignored ones);
  // update_all drops entries whose files were deleted: together, `git add -A`,
  // in memory only: a deploy the node refuses leaves the user's index as it
  // was (stage_commit writes it once the branch has moved).
  if (git_index_read(index.get(), 1) != 0 ||
      git_index_add_all(index.get(), &pathspec, GIT_INDEX_ADD_DEFAULT, nullptr, nullptr) != 0 ||
      git_index_update_all(index.get(), &pathspec, nullptr, nullptr) != 0)
    return fail(git_error_text("cannot stage the working tree of " + repo_dir));

  git_oid tree_id;
  if (git_index_write_tree(&tree_id, index.get()) != 0)
    return fail(git_error_text("cannot write the tree of " + repo_dir));
  git_tree* raw_tree = nullptr;
  if (git_tree_lookup(&raw_tree, r, &tree_id) != 0)
    return fail(git_error_text("cannot read the tree just written in " + repo_dir));
  tree_ptr tree(raw_tree);

  auto head = head_oid(r, repo_dir);
  if (!head) return fail(head.error());
  commit_ptr parent;
  if (*head) {
    git_commit* raw_parent = nullptr;
    if (git_commit_lookup(&raw_parent, r, &**head) != 0)
      return fail(git_error_text("cannot read HEAD's commit in " + repo_dir));
    parent.reset(raw_parent);
  }
  auto signature = default_signature(r);
  if (!signature) return fail(signature.error());

  const git_commit* parents[] = {parent.get()};
  git_oid commit_id;
  if (git_commit_create(&commit_id, r, /*update_ref=*/nullptr, signature->get(), signature->get(),
                        /*message_encoding=*/nullptr, message.c_str(), tree.get(), parent ? 1 : 0, parents) != 0)
    return fail(git_error_text("cannot create a commit in " + repo_dir));
  return oid_hex(commit_id);
}

result<std::string> detail::commit_by(git_repository* r, const std::string& repo_dir, const git_tree* tree,
                                      const std::vector<const git_commit*>& parents, const std::string& message,
                                      const std::string& author_name, const std::string& author_email) {
  git_signature* raw_sig = nullptr;
  if (git_signature_now(&raw_sig, author_name.c_str(), author_email.c_str()) != 0)
    return fail(git_error_text("cannot make the signature " + author_name + " <" + author_email + ">"));
  signature_ptr sig(raw_sig);
  git_oid commit_id;
  auto list = parents;
  if (git_commit_create(&commit_id, r, nullptr, sig.get(), sig.get(), nullptr, message.c_str(), tree, list.size(),
                        list.data()) != 0)
    return fail(git_error_text("cannot create a commit in " + repo_dir));
  return oid_hex(commit_id);
}

namespace {

// A path an edit may name: relative, '/'-separated, no "." or ".." part,
// nothing under .git.
std::string edit_path_problem(const std::string& path) {
  if (path.empty() || path.size() > 4096) return "expected a relative file path";
  if (path.find('\0') != std::string::npos || path.find('\\') != std::string::npos)
    return "expected a path without NUL or backslash";
  if (path.front() == '/') return "expected a path relative to the project, found an absolute one";
  std::size_t at = 0;
  while (at <= path.size()) {
    auto end = path.find('/', at);
    if (end == std::string::npos) end = path.size();
    auto part = std::string_view(path).substr(at, end - at);
    if (part.empty() || part == "." || part == "..") return "expected a path without empty, \".\" or \"..\" parts";
    if (at == 0 && part == ".git") return "files under .git are not the project's";
    at = end + 1;
  }
  return {};
}

}  // namespace

result<std::string> commit_edits(const std::string& repo_dir, const std::string& base,
                                 const std::map<std::string, std::optional<std::string>>& edits,
                                 const std::string& message, const std::string& author_name,
                                 const std::string& author_email) {
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  git_repository* r = repo->get();
  auto parent = lookup_commit(r, base, repo_dir);
  if (!parent) return fail(parent.error());
  git_tree* raw_tree = nullptr;
  if (git_commit_tree(&raw_tree, parent->get()) != 0) return fail(git_error_text("cannot read the tree of " + base));
  tree_ptr base_tree(raw_tree);
  git_index* raw_index = nullptr;
  if (git_index_new(&raw_index) != 0) return fail(git_error_text("cannot make an index"));
  index_ptr index(raw_index);
  if (git_index_read_tree(index.get(), base_tree.get()) != 0)
    return fail(git_error_text("cannot read the tree of " + base));
  for (const auto& [path, text] : edits) {
    if (auto problem = edit_path_problem(path); !problem.empty()) return fail(path + ": " + problem);
    const git_index_entry* existing = git_index_get_bypath(index.get(), path.c_str(), 0);
    if (!text) {
      if (!existing) return fail(path + ": cannot delete it: no such file in " + base.substr(0, 12));
      if (git_index_remove(index.get(), path.c_str(), 0) != 0) return fail(git_error_text(path + ": cannot delete"));
      continue;
    }
    git_index_entry entry{};
    entry.mode = existing ? existing->mode : GIT_FILEMODE_BLOB;  // an executable stays executable
    entry.path = path.c_str();
    entry.file_size = static_cast<uint32_t>(text->size());
    if (git_blob_create_from_buffer(&entry.id, r, text->data(), text->size()) != 0 ||
        git_index_add(index.get(), &entry) != 0)
      return fail(git_error_text(path + ": cannot write it"));
  }
  git_oid tree_id;
  if (git_index_write_tree_to(&tree_id, index.get(), r) != 0)
    return fail(git_error_text("cannot write the edited tree in " + repo_dir));
  git_tree* raw_new_tree = nullptr;
  if (git_tree_lookup(&raw_new_tree, r, &tree_id) != 0) return fail(git_error_text("cannot read the edited tree"));
  tree_ptr tree(raw_new_tree);
  return commit_by(r, repo_dir, tree.get(), {parent->get()}, message, author_name, author_email);
}

result<std::string> commit_tree_of(const std::string& repo_dir, const std::string& tree_commit,
                                   const std::string& parent_commit, const std::string& message,
                                   const std::string& author_name, const std::string& author_email) {
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  git_repository* r = repo->get();
  auto source = lookup_commit(r, tree_commit, repo_dir);
  if (!source) return fail(source.error());
  auto parent = lookup_commit(r, parent_commit, repo_dir);
  if (!parent) return fail(parent.error());
  git_tree* raw_tree = nullptr;
  if (git_commit_tree(&raw_tree, source->get()) != 0)
    return fail(git_error_text("cannot read the tree of " + tree_commit));
  tree_ptr tree(raw_tree);
  return commit_by(r, repo_dir, tree.get(), {parent->get()}, message, author_name, author_email);
}

result<std::vector<history_entry>> history(const std::string& repo_dir, const std::string& from, std::size_t limit) {
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  git_repository* r = repo->get();
  auto start = parse_commit_id(from);
  if (!start) return fail(start.error());
  git_revwalk* raw_walk = nullptr;
  if (git_revwalk_new(&raw_walk, r) != 0) return fail(git_error_text("cannot walk the history of " + repo_dir));
  std::unique_ptr<git_revwalk, void (*)(git_revwalk*)> walk(raw_walk, git_revwalk_free);
  git_revwalk_sorting(walk.get(), GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
  if (git_revwalk_push(walk.get(), &*start) != 0) return fail(git_error_text("expected commit " + from));
  std::vector<history_entry> out;
  git_oid oid;
  while (out.size() < limit && git_revwalk_next(&oid, walk.get()) == 0) {
    git_commit* raw = nullptr;
    if (git_commit_lookup(&raw, r, &oid) != 0) return fail(git_error_text("cannot read a commit of " + from));
    commit_ptr c(raw);
    history_entry e;
    e.revision = oid_hex(oid);
    for (unsigned i = 0; i < git_commit_parentcount(c.get()); ++i)
      e.parents.push_back(oid_hex(*git_commit_parent_id(c.get(), i)));
    const git_signature* author = git_commit_author(c.get());
    e.author = author->name ? author->name : "";
    e.email = author->email ? author->email : "";
    e.time_ms = static_cast<int64_t>(author->when.time) * 1000;
    e.message = git_commit_message(c.get()) ? git_commit_message(c.get()) : "";
    out.push_back(std::move(e));
  }
  return out;
}

result<std::string> diff(const std::string& repo_dir, const std::string& from, const std::string& to) {
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  git_repository* r = repo->get();
  auto tree_of = [&](const std::string& hex) -> result<tree_ptr> {
    if (hex.empty()) return tree_ptr();  // the empty tree
    auto c = lookup_commit(r, hex, repo_dir);
    if (!c) return fail(c.error());
    git_tree* raw = nullptr;
    if (git_commit_tree(&raw, c->get()) != 0) return fail(git_error_text("cannot read the tree of " + hex));
    return tree_ptr(raw);
  };
  auto a = tree_of(from);
  if (!a) return fail(a.error());
  auto b = tree_of(to);
  if (!b) return fail(b.error());
  git_diff* raw_diff = nullptr;
  if (git_diff_tree_to_tree(&raw_diff, r, a->get(), b->get(), nullptr) != 0)
    return fail(git_error_text("cannot compare " + from + " and " + to));
  std::unique_ptr<git_diff, void (*)(git_diff*)> d(raw_diff, git_diff_free);
  git_buf buf = GIT_BUF_INIT;
  if (git_diff_to_buf(&buf, d.get(), GIT_DIFF_FORMAT_PATCH) != 0)
    return fail(git_error_text("cannot print the diff of " + from + " and " + to));
  std::string text(buf.ptr ? buf.ptr : "", buf.size);
  git_buf_dispose(&buf);
  return text;
}

status keep_commit(const std::string& repo_dir, const std::string& commit) {
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  auto oid = parse_commit_id(commit);
  if (!oid) return fail(oid.error());
  git_reference* raw = nullptr;
  const std::string name = "refs/flowstate/edits/" + commit;
  if (git_reference_create(&raw, repo->get(), name.c_str(), &*oid, 1, "flowstate: an edit from the admin API") != 0)
    return fail(git_error_text("cannot create " + name));
  git_reference_free(raw);
  return status::success();
}

status stage_commit(const std::string& repo_dir, const std::string& commit) {
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  git_repository* r = repo->get();
  auto target = lookup_commit(r, commit, repo_dir);
  if (!target) return fail(target.error());
  git_tree* raw_tree = nullptr;
  if (git_commit_tree(&raw_tree, target->get()) != 0) return fail(git_error_text("cannot read the tree of " + commit));
  tree_ptr tree(raw_tree);
  git_index* raw_index = nullptr;
  if (git_repository_index(&raw_index, r) != 0) return fail(git_error_text("cannot open the index of " + repo_dir));
  index_ptr index(raw_index);
  if (git_index_read_tree(index.get(), tree.get()) != 0 || git_index_write(index.get()) != 0)
    return fail(git_error_text("cannot write the index of " + repo_dir));
  return status::success();
}

status update_head(const std::string& repo_dir, const std::string& new_commit, const std::string& expected_old_commit) {
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  git_repository* r = repo->get();
  auto target = lookup_commit(r, new_commit, repo_dir);
  if (!target) return fail(target.error());
  const git_oid* new_id = git_commit_id(target->get());

  // The ref to move: HEAD's symbolic target (which may not exist yet), or
  // HEAD itself when it is detached.
  std::string ref_name = "HEAD";
  git_reference* raw_head = nullptr;
  if (git_reference_lookup(&raw_head, r, "HEAD") != 0) return fail(git_error_text("cannot read HEAD of " + repo_dir));
  reference_ptr head(raw_head);
  if (git_reference_type(head.get()) == GIT_REFERENCE_SYMBOLIC) ref_name = git_reference_symbolic_target(head.get());

  auto current = [&]() -> std::string {
    git_oid oid;
    if (git_reference_name_to_id(&oid, r, ref_name.c_str()) != 0) return "";
    return oid_hex(oid);
  };
  auto mismatch = [&](const std::string& found) {
    return fail(ref_name + " moved: expected it at " +
                (expected_old_commit.empty() ? std::string("no commit (unborn)") : expected_old_commit) + ", found " +
                (found.empty() ? std::string("no commit (unborn)") : found) + " in " + repo_dir);
  };

  const std::string log_message = "flowstate: update_head to " + new_commit;
  git_reference* raw_out = nullptr;
  int rc = 0;
  if (expected_old_commit.empty()) {
    rc = git_reference_create(&raw_out, r, ref_name.c_str(), new_id, /*force=*/0, log_message.c_str());
    if (rc == GIT_EEXISTS) return mismatch(current());
  } else {
    auto old_id = parse_commit_id(expected_old_commit);
    if (!old_id) return fail(old_id.error());
    rc = git_reference_create_matching(&raw_out, r, ref_name.c_str(), new_id, /*force=*/1, &*old_id,
                                       log_message.c_str());
    if (rc == GIT_EMODIFIED || rc == GIT_ENOTFOUND) return mismatch(current());
  }
  if (rc != 0) return fail(git_error_text("cannot move " + ref_name + " in " + repo_dir));
  git_reference_free(raw_out);
  return status::success();
}

result<std::string> commit_message(const std::string& repo_dir, const std::string& commit) {
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  auto c = lookup_commit(repo->get(), commit, repo_dir);
  if (!c) return fail(c.error());
  const char* text = git_commit_message_raw(c->get());
  return std::string(text ? text : "");
}

result<bool> commit_exists(const std::string& repo_dir, const std::string& commit) {
  auto oid = parse_commit_id(commit);
  if (!oid) return fail(oid.error());
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  git_object* raw = nullptr;
  int rc = git_object_lookup(&raw, repo->get(), &*oid, GIT_OBJECT_ANY);
  if (rc == GIT_ENOTFOUND) return false;
  if (rc != 0) return fail(git_error_text("cannot look up " + commit + " in " + repo_dir));
  object_ptr object(raw);
  return git_object_type(object.get()) == GIT_OBJECT_COMMIT;
}

result<bool> contains(const std::string& repo_dir, const std::string& commit, const std::string& ancestor) {
  auto a = parse_commit_id(commit);
  if (!a) return fail(a.error());
  auto b = parse_commit_id(ancestor);
  if (!b) return fail(b.error());
  if (git_oid_equal(&*a, &*b)) return true;
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  int rc = git_graph_descendant_of(repo->get(), &*a, &*b);
  if (rc < 0) return fail(git_error_text("cannot compare the histories of " + commit + " and " + ancestor));
  return rc == 1;
}

result<std::string> resolve(const std::string& repo_dir, const std::string& revision) {
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  git_repository* r = repo->get();
  if (revision == "HEAD") {
    auto head = head_oid(r, repo_dir);
    if (!head) return fail(head.error());
    if (!*head) return fail("expected HEAD to name a commit, found an unborn branch in " + repo_dir);
  }
  git_object* raw = nullptr;
  if (git_revparse_single(&raw, r, revision.c_str()) != 0)
    return fail(git_error_text("expected a commit named \"" + revision + "\" in " + repo_dir));
  object_ptr object(raw);
  git_object* raw_commit = nullptr;
  if (git_object_peel(&raw_commit, object.get(), GIT_OBJECT_COMMIT) != 0)
    return fail(git_error_text("expected \"" + revision + "\" to name a commit in " + repo_dir));
  object_ptr commit(raw_commit);
  return oid_hex(*git_object_id(commit.get()));
}

result<std::string> pack_commit(const std::string& repo_dir, const std::string& commit, const std::string& have) {
  auto oid = parse_commit_id(commit);
  if (!oid) return fail(oid.error());
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  git_packbuilder* raw = nullptr;
  if (git_packbuilder_new(&raw, repo->get()) != 0) return fail(git_error_text("packing " + commit));
  std::unique_ptr<git_packbuilder, void (*)(git_packbuilder*)> pb(raw, git_packbuilder_free);
  // The commit and its history (a repository receiving it stays whole:
  // `git log` there needs the parents).
  git_revwalk* walk_raw = nullptr;
  if (git_revwalk_new(&walk_raw, repo->get()) != 0) return fail(git_error_text("packing " + commit));
  std::unique_ptr<git_revwalk, void (*)(git_revwalk*)> walk(walk_raw, git_revwalk_free);
  if (!have.empty())
    if (auto theirs = parse_commit_id(have); theirs && git_revwalk_hide(walk.get(), &*theirs) != 0)
      return fail(git_error_text("packing " + commit + " for a holder of " + have));
  if (git_revwalk_push(walk.get(), &*oid) != 0 || git_packbuilder_insert_walk(pb.get(), walk.get()) != 0)
    return fail(git_error_text("packing " + commit + " of " + repo_dir));
  git_buf buf = GIT_BUF_INIT;
  if (git_packbuilder_write_buf(&buf, pb.get()) != 0) return fail(git_error_text("packing " + commit));
  std::string out(buf.ptr, buf.size);
  git_buf_dispose(&buf);
  return out;
}

status init_repository(const std::string& dir) {
  detail::ensure_libgit2();
  git_repository* raw = nullptr;
  if (git_repository_init(&raw, dir.c_str(), /*is_bare=*/0) != 0) return fail(git_error_text("creating " + dir));
  git_repository_free(raw);
  return status::success();
}

status add_pack(const std::string& repo_dir, std::string_view pack) {
  auto repo = open_repo(repo_dir);
  if (!repo) return fail(repo.error());
  git_odb* odb_raw = nullptr;
  if (git_repository_odb(&odb_raw, repo->get()) != 0) return fail(git_error_text("opening the objects of " + repo_dir));
  std::unique_ptr<git_odb, void (*)(git_odb*)> odb(odb_raw, git_odb_free);
  git_odb_writepack* wp = nullptr;
  if (git_odb_write_pack(&wp, odb.get(), nullptr, nullptr) != 0)
    return fail(git_error_text("adding objects to " + repo_dir));
  git_indexer_progress stats{};
  int rc = wp->append(wp, pack.data(), pack.size(), &stats);
  if (rc == 0) rc = wp->commit(wp, &stats);
  wp->free(wp);
  if (rc != 0) return fail(git_error_text("adding a pack of " + std::to_string(pack.size()) + " bytes to " + repo_dir));
  return status::success();
}

}  // namespace flowstate
