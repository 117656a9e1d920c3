#pragma once
// Errors as values on the data path: result<T> holds a T or an error message
// that says what was expected, what was found, and where.
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace flowstate {

struct failure {
  std::string message;
};

template <class T>
class [[nodiscard]] result {
 public:
  result(T value) : v_(std::move(value)) {}
  result(failure f) : v_(std::move(f)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const std::string& error() const { return std::get<1>(v_).message; }

 private:
  std::variant<T, failure> v_;
};

class [[nodiscard]] status {
 public:
  status() = default;
  status(failure f) : error_(std::move(f.message)) {}
  static status success() { return {}; }
  bool ok() const { return !error_; }
  explicit operator bool() const { return ok(); }
  const std::string& error() const { return *error_; }

 private:
  std::optional<std::string> error_;
};

inline failure fail(std::string message) { return failure{std::move(message)}; }

}  // namespace flowstate
