#pragma once
// Helpers shared by the store tests: temporary directories and waiting for
// acknowledgements with a generous deadlock guard (not a timing assertion).
#include <doctest/doctest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <optional>
#include <string>

namespace flowstate::test {

class temp_dir {
 public:
  temp_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "flowstate-store-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Fails instead of hanging forever if an acknowledgement never comes.
template <class T>
void require_ready(std::future<T>& f) {
  REQUIRE(f.wait_for(std::chrono::minutes(2)) == std::future_status::ready);
}

// A read that must succeed: the value, or nullopt when absent.
template <class Store, class Column, class Key>
std::optional<std::string> value_of(const Store& db, Column c, const Key& key) {
  auto v = db.read(c, key);
  INFO((v.ok() ? std::string() : v.error()));
  REQUIRE(v.ok());
  return *v;
}

}  // namespace flowstate::test
