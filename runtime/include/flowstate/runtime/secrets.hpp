#pragma once
// Project secrets (docs/secrets.md): values encrypted with the project's
// data key (libsodium XChaCha20-Poly1305, associated data = project name
// and secret name) in `secrets.yaml`, committed with the project, names in
// clear. The data key is stored wrapped by the operator's master key, which
// never enters git. Rotating the key adds a data key and re-encrypts every
// value with it; old data keys stay, so an older revision still opens.
// Driver configurations reference `${secret:NAME}`.
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/runtime/result.hpp"

namespace flowstate::secrets {

constexpr std::string_view file_name = "secrets.yaml";

using master_key = std::array<unsigned char, 32>;

// The master key: `file` when given, else $FLOWSTATE_MASTER_KEY (64 hex
// digits), else $FLOWSTATE_MASTER_KEY_FILE, else `default_file` when it
// exists; nullopt when none is set. An unreadable or malformed key is an
// error naming where it came from.
result<std::optional<master_key>> find_master_key(const std::string& file, const std::string& default_file);
// Writes a new random master key to `path` (mode 0600); fails if it exists.
result<master_key> create_master_key(const std::string& path);

struct sealed {
  uint32_t key = 0;  // the data key's id
  std::string box;   // nonce || ciphertext (raw bytes)
};

struct store {
  std::map<uint32_t, std::string> wrapped_keys;  // id -> nonce || wrapped data key
  std::map<std::string, sealed> values;          // by name
};

// Parses secrets.yaml (an empty text is an empty store); errors name the line.
result<store> parse(std::string_view yaml_text);
std::string render(const store& s);

// Secret names: 1 to 64 of [A-Za-z0-9_], not starting with a digit.
bool valid_name(std::string_view name);

status set(store& s, const master_key& master, std::string_view project, std::string_view name, std::string_view value);
status remove(store& s, std::string_view name);
// A new data key; every value re-encrypted with it; the old keys kept.
status rotate_key(store& s, const master_key& master, std::string_view project);
// Every value, decrypted; an error names the secret that does not open
// (another master key, another project name, a damaged file).
result<std::map<std::string, std::string>> open_all(const store& s, const master_key& master, std::string_view project);

// The `${secret:NAME}` references in a text, in order, without repeats.
std::vector<std::string> references(std::string_view text);
// `config_json` with every `${secret:NAME}` (inside its JSON strings)
// replaced by the value, JSON-escaped; an error names an unknown secret.
result<std::string> substitute(std::string_view config_json, const std::map<std::string, std::string>& values);
// `text` with every value of `values` replaced by `[secret NAME]` (for
// error records and logs).
std::string redact(std::string text, const std::vector<std::pair<std::string, std::string>>& values);

}  // namespace flowstate::secrets
