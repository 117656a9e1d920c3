#pragma once
// ECMA-262 regular expressions ("pattern", "patternProperties", format
// "regex") on PCRE2 with UTF and JIT.

#include <memory>
#include <string>
#include <string_view>

namespace flowstate::schema::detail {

class regex {
 public:
  // Compiles an ECMA-262 pattern; on failure returns null and sets error.
  static std::unique_ptr<regex> compile(std::string_view ecma_pattern, std::string& error);
  ~regex();
  regex(const regex&) = delete;
  regex& operator=(const regex&) = delete;

  // True when the pattern matches somewhere in text (valid UTF-8).
  [[nodiscard]] bool search(std::string_view text) const;

 private:
  regex() = default;
  void* code_ = nullptr;  // pcre2_code_8
  bool jit_ = false;
};

// Translates ECMA-262 syntax to PCRE2 syntax; false (with error) when the
// pattern is not valid ECMA-262 as far as the translation can tell.
bool translate_ecma_regex(std::string_view in, std::string& out, std::string& error);

}  // namespace flowstate::schema::detail
