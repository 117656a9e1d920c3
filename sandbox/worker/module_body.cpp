#include "module_body.hpp"

#include <algorithm>
#include <string_view>
#include <vector>

namespace flowstate::worker {
namespace {

bool is_identifier_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$' ||
         c == '\\' || c >= 0x80;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Words after which a `/` starts a regular expression, not a division.
bool expression_follows(std::string_view word) {
  static constexpr std::string_view words[] = {"return", "typeof", "instanceof", "in", "of",   "new",   "delete",
                                               "void",   "throw",  "case",       "do", "else", "yield", "await"};
  return std::find(std::begin(words), std::end(words), word) != std::end(words);
}

// One change to the source: `erase` bytes at `at` become spaces (newlines
// kept, so that lines keep their numbers), then `insert` goes before them.
struct edit {
  size_t at = 0;
  size_t erase = 0;
  std::string insert;
};

class rewriter {
 public:
  explicit rewriter(const std::string& source) : s_(source) {}

  std::optional<std::string> run() {
    while (i_ < s_.size()) {
      if (!in_template() ? !step() : !step_template()) return std::nullopt;
    }
    if (!stack_.empty() || default_name_.empty() || default_body_pending_ || close_default_body_) return std::nullopt;
    std::string out = s_;
    std::sort(edits_.begin(), edits_.end(), [](const edit& a, const edit& b) { return a.at > b.at; });
    for (const auto& e : edits_) {
      for (size_t k = e.at; k < e.at + e.erase; ++k)
        if (out[k] != '\n' && out[k] != '\r') out[k] = ' ';
      out.insert(e.at, e.insert);
    }
    return "'use strict';" + out + "\n;return " + default_name_ + ";\n";
  }

 private:
  bool in_template() const { return !stack_.empty() && stack_.back() == '`'; }

  // Skips spaces and comments from `at`; returns where the next token starts.
  size_t skip_space(size_t at) const {
    while (at < s_.size()) {
      if (is_space(s_[at])) {
        ++at;
      } else if (s_.compare(at, 2, "//") == 0) {
        while (at < s_.size() && s_[at] != '\n') ++at;
      } else if (s_.compare(at, 2, "/*") == 0) {
        size_t end = s_.find("*/", at + 2);
        at = end == std::string::npos ? s_.size() : end + 2;
      } else {
        break;
      }
    }
    return at;
  }

  std::string_view word_at(size_t at) const {
    size_t end = at;
    while (end < s_.size() && is_identifier_char(static_cast<unsigned char>(s_[end]))) ++end;
    return std::string_view(s_).substr(at, end - at);
  }

  bool step_template() {
    char c = s_[i_];
    if (c == '\\') {
      i_ += 2;
    } else if (c == '`') {
      stack_.pop_back();
      ++i_;
      regex_allowed_ = false;
    } else if (c == '$' && i_ + 1 < s_.size() && s_[i_ + 1] == '{') {
      stack_.push_back('$');
      i_ += 2;
      regex_allowed_ = true;
    } else {
      ++i_;
    }
    return true;
  }

  bool step() {
    const char c = s_[i_];
    if (is_space(c) || s_.compare(i_, 2, "//") == 0 || s_.compare(i_, 2, "/*") == 0) {
      i_ = skip_space(i_);
      return true;
    }
    if (c == '/') return regex_allowed_ ? skip_regex() : (++i_, regex_allowed_ = true);
    if (c == '\'' || c == '"') return skip_string(c);
    if (c == '`') {
      stack_.push_back('`');
      ++i_;
      return true;
    }
    if (c == '{' || c == '(' || c == '[') {
      if (c == '{' && stack_.empty() && default_body_pending_) {
        default_body_pending_ = false;
        close_default_body_ = true;
      }
      stack_.push_back(c);
      ++i_;
      regex_allowed_ = true;
      return true;
    }
    if (c == '}' || c == ')' || c == ']') {
      const char open = c == '}' ? '{' : c == ')' ? '(' : '[';
      if (c == '}' && !stack_.empty() && stack_.back() == '$') {
        stack_.pop_back();  // back inside the template literal
        ++i_;
        return true;
      }
      if (stack_.empty() || stack_.back() != open) return false;
      stack_.pop_back();
      ++i_;
      if (c == '}' && stack_.empty() && close_default_body_) {
        edits_.push_back({i_, 0, "}).default;"});
        close_default_body_ = false;
      }
      regex_allowed_ = c == '}';
      return true;
    }
    if (c >= '0' && c <= '9') {
      while (i_ < s_.size() && (is_identifier_char(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.')) ++i_;
      regex_allowed_ = false;
      return true;
    }
    if (is_identifier_char(static_cast<unsigned char>(c))) {
      const size_t start = i_;
      std::string_view word = word_at(i_);
      i_ += word.size();
      const bool property = start > 0 && s_[skip_back(start)] == '.';
      regex_allowed_ = !property && expression_follows(word);
      if (word == "export" && stack_.empty() && !property) return rewrite_export(start);
      return true;
    }
    if ((c == '+' || c == '-') && i_ + 1 < s_.size() && s_[i_ + 1] == c) {
      i_ += 2;  // ++/--: postfix after a value, prefix before one
      return true;
    }
    ++i_;
    regex_allowed_ = true;
    return true;
  }

  // The last non-space byte before `at` (comments are not skipped: a
  // comment between `.` and a name is not worth the code).
  size_t skip_back(size_t at) const {
    while (at > 0 && is_space(s_[at - 1])) --at;
    return at > 0 ? at - 1 : 0;
  }

  bool skip_string(char quote) {
    ++i_;
    while (i_ < s_.size() && s_[i_] != quote) {
      if (s_[i_] == '\\') ++i_;
      if (i_ < s_.size() && s_[i_] == '\n') return false;
      ++i_;
    }
    if (i_ >= s_.size()) return false;
    ++i_;
    regex_allowed_ = false;
    return true;
  }

  bool skip_regex() {
    ++i_;
    bool in_class = false;
    while (i_ < s_.size()) {
      const char ch = s_[i_];
      if (ch == '\n') return false;
      if (ch == '\\') {
        i_ += 2;
        continue;
      }
      ++i_;
      if (ch == '[') in_class = true;
      if (ch == ']') in_class = false;
      if (ch == '/' && !in_class) break;
    }
    i_ += word_at(i_).size();  // flags
    regex_allowed_ = false;
    return true;
  }

  // `export` at the module's top level, starting at `start`; i_ is after it.
  bool rewrite_export(size_t start) {
    size_t at = skip_space(i_);
    std::string_view next = word_at(at);
    if (next == "default") {
      const size_t after_default = at + next.size();
      size_t k = skip_space(after_default);
      std::string_view kind = word_at(k);
      if (kind == "async") {
        size_t f = skip_space(k + kind.size());
        if (word_at(f) == "function") {
          k = f;
          kind = "function";
        } else {
          kind = {};
        }
      }
      if (kind == "function" || kind == "class") {
        size_t after_kind = k + kind.size();
        if (kind == "function") {
          size_t star = skip_space(after_kind);
          if (star < s_.size() && s_[star] == '*') after_kind = star + 1;
        }
        size_t name_at = skip_space(after_kind);
        std::string_view name = word_at(name_at);
        if (kind == "function" && name.empty()) {
          // A method named `default`: stacks show "at default", as for the module.
          edits_.push_back(
              {start, after_default - start, std::string("const ") + anonymous_default_name + " = ({default:"});
          default_name_ = anonymous_default_name;
          default_body_pending_ = true;
        } else if (name.empty() || name == "extends") {
          edits_.push_back({start, after_default - start, {}});
          edits_.push_back({after_kind, 0, std::string(" ") + anonymous_default_name});
          default_name_ = anonymous_default_name;
        } else {
          edits_.push_back({start, after_default - start, {}});
          default_name_ = std::string(name);
        }
      } else {
        edits_.push_back({start, after_default - start, std::string("const ") + anonymous_default_name + " ="});
        default_name_ = anonymous_default_name;
      }
      i_ = after_default;
      regex_allowed_ = true;
      return true;
    }
    if (next == "const" || next == "let" || next == "var" || next == "function" || next == "async" || next == "class") {
      edits_.push_back({start, i_ - start, {}});
      return true;
    }
    if (at < s_.size() && s_[at] == '{') return rewrite_export_clause(start, at);
    return false;  // `export * from`, or what this scanner does not know
  }

  // export { a, b as c, d as default };
  bool rewrite_export_clause(size_t start, size_t brace) {
    size_t k = brace + 1;
    for (;;) {
      k = skip_space(k);
      if (k >= s_.size()) return false;
      if (s_[k] == '}') break;
      std::string_view local = word_at(k);
      if (local.empty()) return false;  // a string name: not rewritten
      k = skip_space(k + local.size());
      std::string_view exported = local;
      if (word_at(k) == "as") {
        k = skip_space(k + 2);
        exported = word_at(k);
        if (exported.empty()) return false;
        k = skip_space(k + exported.size());
      }
      if (exported == "default") default_name_ = std::string(local);
      if (k < s_.size() && s_[k] == ',') ++k;
    }
    const size_t end = k + 1;
    if (word_at(skip_space(end)) == "from") return false;
    edits_.push_back({start, end - start, {}});
    i_ = end;
    regex_allowed_ = true;
    return true;
  }

  const std::string& s_;
  size_t i_ = 0;
  bool regex_allowed_ = true;
  std::vector<char> stack_;  // { ( [ open, ` inside a template, $ inside ${ }
  std::vector<edit> edits_;
  std::string default_name_;
  bool default_body_pending_ = false;  // after `export default function (`: its body's { is next at the top
  bool close_default_body_ = false;    // inside that body: close the object literal after its }
};

}  // namespace

std::optional<std::string> module_as_function_body(const std::string& source) { return rewriter(source).run(); }

std::string script_as_function_body(const std::string& source) {
  return source + "\n;return typeof entrypoint === 'function' ? entrypoint : undefined;\n";
}

}  // namespace flowstate::worker
