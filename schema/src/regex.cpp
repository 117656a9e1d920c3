#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.hpp"

#include <pcre2.h>

#include <cstdio>

namespace flowstate::schema::detail {

namespace {

// ECMA-262 \s: WhiteSpace and LineTerminator (without the brackets).
constexpr std::string_view ecma_space =
    "\\t\\n\\x{0b}\\f\\r\\x{20}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"
    "\\x{feff}";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool read_hex(std::string_view s, size_t pos, size_t count, unsigned& value) {
  if (pos + count > s.size()) return false;
  value = 0;
  for (size_t k = 0; k < count; ++k) {
    int h = hex_value(s[pos + k]);
    if (h < 0) return false;
    value = value * 16 + static_cast<unsigned>(h);
  }
  return true;
}

void append_code_point(std::string& out, unsigned cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "\\x{%x}", cp);
  out += buf;
}

// ECMA-262 property names PCRE2 10.42 does not know, to its short names.
std::string pcre_property_name(std::string_view name) {
  for (std::string_view prefix : {"General_Category=", "gc=", "Script_Extensions=", "scx=", "Script=", "sc="})
    if (name.substr(0, prefix.size()) == prefix) return std::string(name.substr(prefix.size()));
  static const std::pair<std::string_view, std::string_view> long_names[] = {{"Letter", "L"},
                                                                             {"Cased_Letter", "L&"},
                                                                             {"Uppercase_Letter", "Lu"},
                                                                             {"Lowercase_Letter", "Ll"},
                                                                             {"Titlecase_Letter", "Lt"},
                                                                             {"Modifier_Letter", "Lm"},
                                                                             {"Other_Letter", "Lo"},
                                                                             {"Mark", "M"},
                                                                             {"Combining_Mark", "M"},
                                                                             {"Nonspacing_Mark", "Mn"},
                                                                             {"Spacing_Mark", "Mc"},
                                                                             {"Enclosing_Mark", "Me"},
                                                                             {"Number", "N"},
                                                                             {"Decimal_Number", "Nd"},
                                                                             {"digit", "Nd"},
                                                                             {"Letter_Number", "Nl"},
                                                                             {"Other_Number", "No"},
                                                                             {"Punctuation", "P"},
                                                                             {"punct", "P"},
                                                                             {"Connector_Punctuation", "Pc"},
                                                                             {"Dash_Punctuation", "Pd"},
                                                                             {"Open_Punctuation", "Ps"},
                                                                             {"Close_Punctuation", "Pe"},
                                                                             {"Initial_Punctuation", "Pi"},
                                                                             {"Final_Punctuation", "Pf"},
                                                                             {"Other_Punctuation", "Po"},
                                                                             {"Symbol", "S"},
                                                                             {"Math_Symbol", "Sm"},
                                                                             {"Currency_Symbol", "Sc"},
                                                                             {"Modifier_Symbol", "Sk"},
                                                                             {"Other_Symbol", "So"},
                                                                             {"Separator", "Z"},
                                                                             {"Space_Separator", "Zs"},
                                                                             {"Line_Separator", "Zl"},
                                                                             {"Paragraph_Separator", "Zp"},
                                                                             {"Other", "C"},
                                                                             {"Control", "Cc"},
                                                                             {"cntrl", "Cc"},
                                                                             {"Format", "Cf"},
                                                                             {"Surrogate", "Cs"},
                                                                             {"Private_Use", "Co"},
                                                                             {"Unassigned", "Cn"}};
  for (const auto& [long_name, short_name] : long_names)
    if (name == long_name) return std::string(short_name);
  return std::string(name);
}

struct match_data_holder {
  pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
  ~match_data_holder() { pcre2_match_data_free(data); }
};

}  // namespace

bool translate_ecma_regex(std::string_view in, std::string& out, std::string& error) {
  out.clear();
  bool in_class = false;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '[' && !in_class) {
      if (in.substr(i, 3) == "[^]") {
        out += "[\\s\\S]";
        i += 2;
        continue;
      }
      if (in.substr(i, 2) == "[]") {
        out += "(?!)";
        i += 1;
        continue;
      }
      in_class = true;
      out.push_back(c);
      if (i + 1 < in.size() && in[i + 1] == '^') out.push_back(in[++i]);
      continue;
    }
    if (c == ']' && in_class) {
      in_class = false;
      out.push_back(c);
      continue;
    }
    if (c == '(' && !in_class && i + 2 < in.size() && in[i + 1] == '?') {
      // ECMA-262 groups: (?: (?= (?! (?<= (?<! (?<name>; not Python's (?P
      // or inline flags and comments, which PCRE2 would accept.
      char g = in[i + 2];
      bool ecma = g == ':' || g == '=' || g == '!' || (g == '<' && i + 3 < in.size());
      if (!ecma) {
        error = "(?" + std::string(1, g) + " is not an ECMA-262 group";
        return false;
      }
    }
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (i + 1 >= in.size()) {
      error = "pattern ends with a backslash";
      return false;
    }
    char e = in[++i];
    switch (e) {
      case 's':
        if (in_class)
          out += ecma_space;
        else
          out += "[" + std::string(ecma_space) + "]";
        break;
      case 'S':
        if (in_class)
          out += "\\S";  // approximation inside a class
        else
          out += "[^" + std::string(ecma_space) + "]";
        break;
      case 'u': {
        unsigned cp = 0;
        if (i + 1 < in.size() && in[i + 1] == '{') {
          auto close = in.find('}', i + 2);
          if (close == std::string_view::npos || close - (i + 2) > 6 || !read_hex(in, i + 2, close - (i + 2), cp)) {
            error = "bad \\u{...} escape";
            return false;
          }
          i = close;
        } else {
          if (!read_hex(in, i + 1, 4, cp)) {
            error = "bad \\u escape";
            return false;
          }
          i += 4;
          unsigned low = 0;
          if (cp >= 0xD800 && cp < 0xDC00 && in.substr(i + 1, 2) == "\\u" && read_hex(in, i + 3, 4, low) &&
              low >= 0xDC00 && low < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            i += 6;
          }
        }
        append_code_point(out, cp);
        break;
      }
      case 'c':
        if (i + 1 < in.size() && ((in[i + 1] >= 'a' && in[i + 1] <= 'z') || (in[i + 1] >= 'A' && in[i + 1] <= 'Z'))) {
          append_code_point(out, static_cast<unsigned>(in[i + 1]) % 32);
          ++i;
        } else {
          error = "\\c must be followed by a letter";
          return false;
        }
        break;
      case 'p':
      case 'P': {
        auto close = i + 1 < in.size() && in[i + 1] == '{' ? in.find('}', i + 2) : std::string_view::npos;
        if (close == std::string_view::npos) {
          error = "\\p must be followed by {property}";
          return false;
        }
        out += std::string("\\") + e + "{" + pcre_property_name(in.substr(i + 2, close - (i + 2))) + "}";
        i = close;
        break;
      }
      case 'd':
      case 'D':
      case 'w':
      case 'W':
      case 'b':
      case 'B':
      case 't':
      case 'n':
      case 'v':
      case 'f':
      case 'r':
      case 'k':
      case '0':
        out.push_back('\\');
        out.push_back(e);
        break;
      case 'x': {
        unsigned cp = 0;
        if (!read_hex(in, i + 1, 2, cp)) {
          error = "bad \\x escape";
          return false;
        }
        append_code_point(out, cp);
        i += 2;
        break;
      }
      default:
        if (e >= '1' && e <= '9') {
          out.push_back('\\');
          out.push_back(e);
        } else if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9') || e == '_') {
          error = std::string("\\") + e + " is not an ECMA-262 escape";
          return false;
        } else {
          out.push_back('\\');
          out.push_back(e);
        }
    }
  }
  return true;
}

std::unique_ptr<regex> regex::compile(std::string_view ecma_pattern, std::string& error) {
  std::string translated;
  if (!translate_ecma_regex(ecma_pattern, translated, error)) return nullptr;
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_compile_context* cctx = pcre2_compile_context_create(nullptr);
  pcre2_set_newline(cctx, PCRE2_NEWLINE_ANY);
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                 PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &code, &offset, cctx);
  pcre2_compile_context_free(cctx);
  if (!re) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(code, buf, sizeof buf);
    error = std::string(reinterpret_cast<const char*>(buf)) + " at offset " + std::to_string(offset);
    return nullptr;
  }
  std::unique_ptr<regex> r(new regex());
  r->code_ = re;
  r->jit_ = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
  return r;
}

regex::~regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

bool regex::search(std::string_view text) const {
  thread_local match_data_holder md;
  auto* re = static_cast<pcre2_code*>(code_);
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  int rc = jit_ ? pcre2_jit_match(re, subject, text.size(), 0, 0, md.data, nullptr)
                : pcre2_match(re, subject, text.size(), 0, PCRE2_NO_UTF_CHECK, md.data, nullptr);
  return rc >= 0;
}

}  // namespace flowstate::schema::detail
