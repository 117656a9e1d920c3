#include "node_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace flowstate::cli {

std::string default_data_dir() {
  if (const char* d = std::getenv("FLOWSTATE_DATA"); d && *d) return d;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.local/share/flowstate";
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  auto tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
  }
  std::filesystem::rename(tmp, path);
}

std::string read_or_create_token(const std::string& data_dir) {
  auto path = data_dir + "/admin.token";
  if (auto t = read_file(path); t && !t->empty()) {
    while (!t->empty() && (t->back() == '\n' || t->back() == '\r')) t->pop_back();
    return *t;
  }
  unsigned char bytes[24];
  int fd = ::open("/dev/urandom", O_RDONLY);
  if (fd < 0 || ::read(fd, bytes, sizeof bytes) != static_cast<ssize_t>(sizeof bytes)) std::abort();
  ::close(fd);
  static const char* hex = "0123456789abcdef";
  std::string token;
  for (auto b : bytes) {
    token.push_back(hex[b >> 4]);
    token.push_back(hex[b & 15]);
  }
  int out = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (out < 0 || ::write(out, token.data(), token.size()) != static_cast<ssize_t>(token.size())) std::abort();
  ::fsync(out);
  ::close(out);
  return token;
}

std::string executable_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

}  // namespace flowstate::cli
