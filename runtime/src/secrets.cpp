#include "flowstate/runtime/secrets.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "flowstate/runtime/json_text.hpp"

namespace flowstate::secrets {

namespace {

constexpr std::size_t nonce_bytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t tag_bytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
using data_key = std::array<unsigned char, crypto_aead_xchacha20poly1305_ietf_KEYBYTES>;

bool sodium_ready() {
  static const bool ok = sodium_init() >= 0;
  return ok;
}

std::string to_base64(std::string_view bytes) {
  std::string out(sodium_base64_encoded_len(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

std::optional<std::string> from_base64(std::string_view text) {
  std::string out(text.size(), '\0');
  std::size_t n = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), " \n", &n,
                        nullptr, sodium_base64_VARIANT_ORIGINAL) != 0)
    return std::nullopt;
  out.resize(n);
  return out;
}

std::string seal(const unsigned char* key, std::string_view plain, std::string_view ad) {
  std::string box(nonce_bytes + plain.size() + tag_bytes, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(box.data());
  randombytes_buf(nonce, nonce_bytes);
  unsigned long long n = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      nonce + nonce_bytes, &n, reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
      reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nullptr, nonce, key);
  return box;
}

std::optional<std::string> open(const unsigned char* key, std::string_view box, std::string_view ad) {
  if (box.size() < nonce_bytes + tag_bytes) return std::nullopt;
  std::string plain(box.size() - nonce_bytes - tag_bytes, '\0');
  unsigned long long n = 0;
  const auto* nonce = reinterpret_cast<const unsigned char*>(box.data());
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plain.data()), &n, nullptr, nonce + nonce_bytes, box.size() - nonce_bytes,
          reinterpret_cast<const unsigned char*>(ad.data()), ad.size(), nonce, key) != 0)
    return std::nullopt;
  plain.resize(n);
  return plain;
}

std::string key_ad(std::string_view project, uint32_t id) {
  return "flowstate-data-key\n" + std::string(project) + "\n" + std::to_string(id);
}
std::string value_ad(std::string_view project, std::string_view name) {
  return std::string(project) + '\0' + std::string(name);
}

result<data_key> unwrap(const store& s, uint32_t id, const master_key& master, std::string_view project) {
  auto it = s.wrapped_keys.find(id);
  if (it == s.wrapped_keys.end()) return fail("secrets.yaml: data key " + std::to_string(id) + " is missing");
  auto plain = open(master.data(), it->second, key_ad(project, id));
  if (!plain || plain->size() != data_key{}.size())
    return fail("secrets.yaml: data key " + std::to_string(id) +
                " does not open with this master key (another master key, or the project was renamed)");
  data_key k;
  std::copy(plain->begin(), plain->end(), k.begin());
  sodium_memzero(plain->data(), plain->size());
  return k;
}

// The newest data key, made when there is none.
result<std::pair<uint32_t, data_key>> current_key(store& s, const master_key& master, std::string_view project) {
  if (s.wrapped_keys.empty()) {
    data_key k;
    crypto_aead_xchacha20poly1305_ietf_keygen(k.data());
    s.wrapped_keys[1] =
        seal(master.data(), std::string_view(reinterpret_cast<const char*>(k.data()), k.size()), key_ad(project, 1));
    return std::pair{1u, k};
  }
  const uint32_t id = s.wrapped_keys.rbegin()->first;
  auto k = unwrap(s, id, master, project);
  if (!k) return fail(k.error());
  return std::pair{id, *k};
}

std::optional<master_key> parse_hex_key(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  master_key k;
  std::size_t n = 0;
  if (text.size() != 64 || sodium_hex2bin(k.data(), k.size(), text.data(), text.size(), nullptr, &n, nullptr) != 0 ||
      n != k.size())
    return std::nullopt;
  return k;
}

result<master_key> read_key_file(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) return fail(what + " " + path + ": cannot read it");
  std::stringstream text;
  text << in.rdbuf();
  auto k = parse_hex_key(text.str());
  if (!k) return fail(what + " " + path + ": expected 64 hex digits (a 32-byte key)");
  return *k;
}

}  // namespace

result<std::optional<master_key>> find_master_key(const std::string& file, const std::string& default_file) {
  if (!sodium_ready()) return fail("libsodium cannot start");
  if (!file.empty()) {
    auto k = read_key_file(file, "--master-key");
    if (!k) return fail(k.error());
    return std::optional<master_key>(*k);
  }
  if (const char* env = std::getenv("FLOWSTATE_MASTER_KEY"); env && *env) {
    auto k = parse_hex_key(env);
    if (!k) return fail("FLOWSTATE_MASTER_KEY: expected 64 hex digits (a 32-byte key)");
    return std::optional<master_key>(*k);
  }
  if (const char* env = std::getenv("FLOWSTATE_MASTER_KEY_FILE"); env && *env) {
    auto k = read_key_file(env, "FLOWSTATE_MASTER_KEY_FILE");
    if (!k) return fail(k.error());
    return std::optional<master_key>(*k);
  }
  if (!default_file.empty() && ::access(default_file.c_str(), F_OK) == 0) {
    auto k = read_key_file(default_file, "the master key");
    if (!k) return fail(k.error());
    return std::optional<master_key>(*k);
  }
  return std::optional<master_key>();
}

result<master_key> create_master_key(const std::string& path) {
  if (!sodium_ready()) return fail("libsodium cannot start");
  master_key k;
  randombytes_buf(k.data(), k.size());
  char hex[65];
  sodium_bin2hex(hex, sizeof hex, k.data(), k.size());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) return fail(path + ": cannot create the master key file");
  std::string text = std::string(hex) + "\n";
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  sodium_memzero(hex, sizeof hex);
  if (!ok) return fail(path + ": cannot write the master key");
  return k;
}

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

result<store> parse(std::string_view yaml_text) {
  store s;
  if (yaml_text.find_first_not_of(" \t\r\n") == std::string_view::npos) return s;
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    return fail("secrets.yaml:" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  auto where = [](const YAML::Node& n) { return "secrets.yaml:" + std::to_string(n.Mark().line + 1) + ": "; };
  try {
    if (auto keys = doc["keys"]) {
      for (const auto& k : keys) {
        auto id = k["id"].as<uint32_t>();
        auto bytes = from_base64(k["key"].as<std::string>());
        if (!bytes) return fail(where(k) + "key " + std::to_string(id) + " is not base64");
        s.wrapped_keys[id] = *bytes;
      }
    }
    if (auto values = doc["values"]) {
      for (const auto& v : values) {
        auto name = v.first.as<std::string>();
        if (!valid_name(name)) return fail(where(v.first) + "\"" + name + "\" is not a secret name");
        sealed one;
        one.key = v.second["key"].as<uint32_t>();
        auto bytes = from_base64(v.second["value"].as<std::string>());
        if (!bytes) return fail(where(v.second) + name + ": the value is not base64");
        if (!s.wrapped_keys.count(one.key))
          return fail(where(v.second) + name + ": data key " + std::to_string(one.key) + " is not in keys");
        one.box = *bytes;
        s.values[name] = std::move(one);
      }
    }
  } catch (const YAML::Exception& e) {
    return fail("secrets.yaml:" + std::to_string(e.mark.line + 1) +
                ": expected keys: [{id, key}] and values: {NAME: {key, value}} (" + e.msg + ")");
  }
  return s;
}

std::string render(const store& s) {
  std::string out =
      "# Secrets of this project (docs/secrets.md): each value encrypted with a data key\n"
      "# (XChaCha20-Poly1305), each data key wrapped by the operator's master key, which\n"
      "# is not in git. Change it with `flowstate secret set|rm|rotate-key`, not by hand.\n"
      "keys:\n";
  for (auto& [id, bytes] : s.wrapped_keys)
    out += "  - {id: " + std::to_string(id) + ", key: " + to_base64(bytes) + "}\n";
  out += s.values.empty() ? "values: {}\n" : "values:\n";
  for (auto& [name, v] : s.values)
    out += "  " + name + ": {key: " + std::to_string(v.key) + ", value: " + to_base64(v.box) + "}\n";
  return out;
}

status set(store& s, const master_key& master, std::string_view project, std::string_view name,
           std::string_view value) {
  if (!sodium_ready()) return fail("libsodium cannot start");
  if (!valid_name(name))
    return fail("\"" + std::string(name) +
                "\" is not a secret name: 1 to 64 letters, digits or _, not starting with a digit");
  auto k = current_key(s, master, project);
  if (!k) return fail(k.error());
  s.values[std::string(name)] = sealed{k->first, seal(k->second.data(), value, value_ad(project, name))};
  sodium_memzero(k->second.data(), k->second.size());
  return status::success();
}

status remove(store& s, std::string_view name) {
  if (!s.values.erase(std::string(name))) return fail("no secret named " + std::string(name));
  return status::success();
}

status rotate_key(store& s, const master_key& master, std::string_view project) {
  if (!sodium_ready()) return fail("libsodium cannot start");
  auto values = open_all(s, master, project);
  if (!values) return fail(values.error());
  const uint32_t id = s.wrapped_keys.empty() ? 1 : s.wrapped_keys.rbegin()->first + 1;
  data_key k;
  crypto_aead_xchacha20poly1305_ietf_keygen(k.data());
  s.wrapped_keys[id] =
      seal(master.data(), std::string_view(reinterpret_cast<const char*>(k.data()), k.size()), key_ad(project, id));
  for (auto& [name, value] : *values) {
    s.values[name] = sealed{id, seal(k.data(), value, value_ad(project, name))};
    sodium_memzero(value.data(), value.size());
  }
  sodium_memzero(k.data(), k.size());
  return status::success();
}

result<std::map<std::string, std::string>> open_all(const store& s, const master_key& master,
                                                    std::string_view project) {
  if (!sodium_ready()) return fail("libsodium cannot start");
  std::map<uint32_t, data_key> keys;
  std::map<std::string, std::string> out;
  for (auto& [name, v] : s.values) {
    if (!keys.count(v.key)) {
      auto k = unwrap(s, v.key, master, project);
      if (!k) return fail(k.error());
      keys[v.key] = *k;
    }
    auto plain = open(keys[v.key].data(), v.box, value_ad(project, name));
    if (!plain) return fail("secrets.yaml: secret " + name + " does not open (damaged, or moved from another project)");
    out[name] = std::move(*plain);
  }
  for (auto& [_, k] : keys) sodium_memzero(k.data(), k.size());
  return out;
}

std::vector<std::string> references(std::string_view text) {
  std::vector<std::string> out;
  for (std::size_t at = text.find("${secret:"); at != std::string_view::npos; at = text.find("${secret:", at + 1)) {
    auto end = text.find('}', at);
    if (end == std::string_view::npos) break;
    std::string name(text.substr(at + 9, end - at - 9));
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  }
  return out;
}

result<std::string> substitute(std::string_view config_json, const std::map<std::string, std::string>& values) {
  std::string out;
  std::size_t from = 0;
  for (std::size_t at = config_json.find("${secret:"); at != std::string_view::npos;
       at = config_json.find("${secret:", from)) {
    auto end = config_json.find('}', at);
    if (end == std::string_view::npos) return fail("\"${secret:\" is not closed with }");
    std::string name(config_json.substr(at + 9, end - at - 9));
    auto v = values.find(name);
    if (v == values.end())
      return fail("${secret:" + name + "}: no such secret in secrets.yaml (flowstate secret set " + name + ")");
    out.append(config_json.substr(from, at - from));
    std::string quoted;
    append_json_string(quoted, v->second);
    out.append(quoted, 1, quoted.size() - 2);  // inside the configuration's JSON string
    from = end + 1;
  }
  out.append(config_json.substr(from));
  return out;
}

std::string redact(std::string text, const std::vector<std::pair<std::string, std::string>>& values) {
  for (auto& [name, value] : values) {
    if (value.size() < 4) continue;  // too short to tell from ordinary text
    for (auto at = text.find(value); at != std::string::npos; at = text.find(value, at))
      text.replace(at, value.size(), "[secret " + name + "]");
  }
  return text;
}

}  // namespace flowstate::secrets
