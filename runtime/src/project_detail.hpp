#pragma once
#include "flowstate/runtime/json_text.hpp"
// Private helpers shared by the project loader, the file sources and the git
// operations. Not part of the public API (may include yaml-cpp and libgit2).
#include <git2.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flowstate/runtime/limit_settings.hpp"

namespace flowstate::detail {

// ---- libgit2 ---------------------------------------------------------------

// Initialises libgit2 once per process (never shut down).
void ensure_libgit2();

// "what: libgit2's last error text".
std::string git_error_text(const std::string& what);

template <class T, void (*Free)(T*)>
struct git_deleter {
  void operator()(T* p) const { Free(p); }
};
template <class T, void (*Free)(T*)>
using git_ptr = std::unique_ptr<T, git_deleter<T, Free>>;

using repo_ptr = git_ptr<git_repository, git_repository_free>;
using commit_ptr = git_ptr<git_commit, git_commit_free>;
using tree_ptr = git_ptr<git_tree, git_tree_free>;
using object_ptr = git_ptr<git_object, git_object_free>;
using reference_ptr = git_ptr<git_reference, git_reference_free>;
using index_ptr = git_ptr<git_index, git_index_free>;
using signature_ptr = git_ptr<git_signature, git_signature_free>;
using blob_ptr = git_ptr<git_blob, git_blob_free>;
using tree_entry_ptr = git_ptr<git_tree_entry, git_tree_entry_free>;

std::string oid_hex(const git_oid& oid);
// The repository at `repo_dir`, or an error naming it.
result<repo_ptr> open_repo(const std::string& repo_dir);
// The commit `hex` (40 hex digits) of `repo`, or an error naming it.
result<commit_ptr> lookup_commit(git_repository* repo, const std::string& hex, const std::string& repo_dir);
// A commit of `tree` with `parents`, by the given author; no ref moves.
result<std::string> commit_by(git_repository* r, const std::string& repo_dir, const git_tree* tree,
                              const std::vector<const git_commit*>& parents, const std::string& message,
                              const std::string& author_name, const std::string& author_email);

// ---- YAML ------------------------------------------------------------------

// The node as JSON text. Plain scalars that read as YAML 1.2 core null,
// bools, ints and floats become JSON null/bools/numbers; quoted or
// explicitly !!str-tagged scalars stay strings; map keys are always strings.
std::string yaml_to_json(const YAML::Node& node);

// JSON string literal (with quotes) for UTF-8 text.
using flowstate::json_quote;

// 1-based line of a node, or `fallback` for nodes without a position.
int line_of(const YAML::Node& node, int fallback);
// How a node reads to a user, for "found ..." in messages.
std::string describe(const YAML::Node& node);
// "5s", "500ms", "2m" -> milliseconds; nullopt when not a positive duration.
std::optional<uint64_t> parse_duration_ms(const std::string& text);
// "90s", "15m", "24h", "30d" -> milliseconds, up to 10 years; for retention.
std::optional<uint64_t> parse_retention_ms(const std::string& text);
// "64MiB", "512KiB", "1MB", "4096" (bytes) -> bytes; nullopt when not a
// positive size.
std::optional<uint64_t> parse_size_bytes(const std::string& text);

// The keys of a limits map (`wall`, `memory`, `output`, `state`, `logs`, and
// `timeout` when `with_timeout`) into `out`; `where` prefixes key names in
// messages ("limits."); a key `skip` is left to the caller. Problems go to
// `problem(line, message)`.
void read_limits(const YAML::Node& map, const std::string& where, bool with_timeout, limit_settings& out,
                 const std::function<void(int, std::string)>& problem, const char* skip = nullptr);

// ---- suggestions -----------------------------------------------------------

// Optimal-string-alignment edit distance, case-insensitive.
size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `wrong` if it is near enough to be a likely typo,
// else "".
std::string closest_name(const std::string& wrong, const std::vector<std::string>& candidates);

// " (did you mean \"x\"?)" or "" when nothing is close.
std::string did_you_mean(const std::string& wrong, const std::vector<std::string>& candidates);

}  // namespace flowstate::detail
