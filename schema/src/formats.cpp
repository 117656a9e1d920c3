#include "formats.hpp"

#include <string>

#include "regex.hpp"

namespace flowstate::schema::detail {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Reads exactly n digits at pos.
bool digits(std::string_view s, size_t pos, size_t n, int& value) {
  if (pos + n > s.size()) return false;
  value = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!is_digit(s[pos + i])) return false;
    value = value * 10 + (s[pos + i] - '0');
  }
  return true;
}

bool check_date(std::string_view s) {
  int y, m, d;
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  if (!digits(s, 0, 4, y) || !digits(s, 5, 2, m) || !digits(s, 8, 2, d)) return false;
  if (m < 1 || m > 12 || d < 1) return false;
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  int max = days[m - 1] + (m == 2 && leap ? 1 : 0);
  return d <= max;
}

bool check_time(std::string_view s) {
  int h, mi, sec;
  if (s.size() < 9 || s[2] != ':' || s[5] != ':') return false;
  if (!digits(s, 0, 2, h) || !digits(s, 3, 2, mi) || !digits(s, 6, 2, sec)) return false;
  if (h > 23 || mi > 59 || sec > 60) return false;
  size_t i = 8;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i == start) return false;
  }
  if (i >= s.size()) return false;
  int offset_minutes = 0;
  if (s[i] == 'Z' || s[i] == 'z') {
    if (i + 1 != s.size()) return false;
  } else if (s[i] == '+' || s[i] == '-') {
    int oh, om;
    if (s.size() != i + 6 || s[i + 3] != ':' || !digits(s, i + 1, 2, oh) || !digits(s, i + 4, 2, om)) return false;
    if (oh > 23 || om > 59) return false;
    offset_minutes = (s[i] == '+' ? 1 : -1) * (oh * 60 + om);
  } else {
    return false;
  }
  if (sec == 60) {
    int utc = ((h * 60 + mi - offset_minutes) % 1440 + 1440) % 1440;
    if (utc != 23 * 60 + 59) return false;
  }
  return true;
}

bool check_date_time(std::string_view s) {
  if (s.size() < 11 || (s[10] != 'T' && s[10] != 't')) return false;
  return check_date(s.substr(0, 10)) && check_time(s.substr(11));
}

bool check_duration(std::string_view s) {
  if (s.size() < 2 || s[0] != 'P') return false;
  size_t i = 1;
  bool in_time = false, any = false, weeks = false, other = false;
  std::string_view date_units = "YMD", time_units = "HMS";
  size_t last_date = 0, last_time = 0;
  while (i < s.size()) {
    if (s[i] == 'T') {
      if (in_time) return false;
      in_time = true;
      ++i;
      if (i == s.size()) return false;
      continue;
    }
    size_t start = i;
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i == start || i == s.size()) return false;
    char unit = s[i++];
    any = true;
    if (!in_time && unit == 'W') {
      weeks = true;
      continue;
    }
    other = true;
    auto& units = in_time ? time_units : date_units;
    auto& last = in_time ? last_time : last_date;
    // Units come in order without gaps (RFC 3339 appendix A): Y[M[D]], H[M[S]].
    auto pos = units.find(unit);
    if (pos == std::string_view::npos || (last != 0 && pos != last)) return false;
    last = pos + 1;
  }
  return any && !(weeks && other);
}

bool check_ipv4(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (true) {
    size_t start = i;
    int value = 0;
    while (i < s.size() && is_digit(s[i]) && i - start < 4) value = value * 10 + (s[i++] - '0');
    size_t len = i - start;
    if (len == 0 || len > 3 || value > 255 || (len > 1 && s[start] == '0')) return false;
    ++parts;
    if (i == s.size()) break;
    if (s[i] != '.' || parts == 4) return false;
    ++i;
  }
  return parts == 4;
}

bool check_ipv6(std::string_view s) {
  int groups = 0;
  bool compressed = false;
  size_t i = 0;
  if (s.substr(0, 2) == "::") {
    compressed = true;
    i = 2;
    if (i == s.size()) return true;
  } else if (!s.empty() && s[0] == ':') {
    return false;
  }
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && is_hex(s[i])) ++i;
    size_t len = i - start;
    if (i < s.size() && s[i] == '.') {
      // Trailing IPv4.
      if (!check_ipv4(s.substr(start))) return false;
      groups += 2;
      i = s.size();
      break;
    }
    if (len == 0 || len > 4) return false;
    ++groups;
    if (i == s.size()) break;
    if (s[i] != ':') return false;
    ++i;
    if (i < s.size() && s[i] == ':') {
      if (compressed) return false;
      compressed = true;
      ++i;
      if (i == s.size()) break;
    } else if (i == s.size()) {
      return false;
    }
  }
  return compressed ? groups < 8 : groups == 8;
}

bool check_hostname_ascii(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    auto dot = s.find('.', start);
    auto label = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!is_alpha(c) && !is_digit(c) && c != '-') return false;
    if (label.size() >= 4 && label[2] == '-' && label[3] == '-') {
      bool xn = (label[0] == 'x' || label[0] == 'X') && (label[1] == 'n' || label[1] == 'N');
      if (!xn) return false;
    }
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

bool check_hostname_idn(std::string_view s) {
  if (s.empty()) return false;
  std::string ascii;
  for (unsigned char c : s) ascii.push_back(c >= 0x80 ? 'a' : static_cast<char>(c));
  return check_hostname_ascii(ascii);
}

bool check_email_with(std::string_view s, bool (*host)(std::string_view)) {
  auto at = s.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == s.size()) return false;
  auto local = s.substr(0, at), domain = s.substr(at + 1);
  if (local.front() == '"') {
    if (local.size() < 2 || local.back() != '"') return false;
  } else {
    if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) return false;
    for (unsigned char c : local)
      if (c < 0x80 && !is_alpha(c) && !is_digit(c) &&
          std::string_view("!#$%&'*+-/=?^_`{|}~.").find(c) == std::string_view::npos)
        return false;
  }
  if (domain.front() == '[') {
    if (domain.back() != ']') return false;
    auto inner = domain.substr(1, domain.size() - 2);
    if (inner.substr(0, 5) == "IPv6:") return check_ipv6(inner.substr(5));
    return check_ipv4(inner);
  }
  return host(domain);
}

bool check_email(std::string_view s) {
  for (unsigned char c : s)
    if (c >= 0x80) return false;
  return check_email_with(s, check_hostname_ascii);
}
bool check_idn_email(std::string_view s) { return check_email_with(s, check_hostname_idn); }

bool uri_char_ok(std::string_view s, size_t& i, std::string_view extra, bool iri) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c == '%') {
    if (i + 2 >= s.size()) return false;
    if (!is_hex(s[i + 1]) || !is_hex(s[i + 2])) return false;
    i += 2;
    return true;
  }
  if (c >= 0x80) return iri;
  if (is_alpha(c) || is_digit(c)) return true;
  if (std::string_view("-._~!$&'()*+,;=").find(c) != std::string_view::npos) return true;
  return extra.find(c) != std::string_view::npos;
}

bool check_uri_generic(std::string_view s, bool require_scheme, bool iri) {
  size_t i = 0;
  auto colon = s.find(':');
  auto first_delim = s.find_first_of("/?#");
  bool has_scheme = colon != std::string_view::npos && (first_delim == std::string_view::npos || colon < first_delim);
  if (has_scheme) {
    if (colon == 0 || !is_alpha(s[0])) return false;
    for (size_t k = 1; k < colon; ++k)
      if (!is_alpha(s[k]) && !is_digit(s[k]) && s[k] != '+' && s[k] != '-' && s[k] != '.') return false;
    i = colon + 1;
  } else if (require_scheme) {
    return false;
  }
  if (s.substr(i, 2) == "//") {
    i += 2;
    size_t end = s.find_first_of("/?#", i);
    auto authority = s.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
    auto at = authority.rfind('@');
    if (at != std::string_view::npos) {
      auto userinfo = authority.substr(0, at);
      for (size_t k = 0; k < userinfo.size(); ++k)
        if (!uri_char_ok(userinfo, k, ":", iri)) return false;
      authority = authority.substr(at + 1);
    }
    std::string_view host = authority, port;
    if (!authority.empty() && authority[0] == '[') {
      auto close = authority.find(']');
      if (close == std::string_view::npos) return false;
      if (!check_ipv6(authority.substr(1, close - 1))) return false;
      host = {};
      auto rest = authority.substr(close + 1);
      if (!rest.empty()) {
        if (rest[0] != ':') return false;
        port = rest.substr(1);
      }
    } else {
      auto pc = authority.rfind(':');
      if (pc != std::string_view::npos) {
        host = authority.substr(0, pc);
        port = authority.substr(pc + 1);
      }
    }
    for (char c : port)
      if (!is_digit(c)) return false;
    for (size_t k = 0; k < host.size(); ++k)
      if (!uri_char_ok(host, k, "", iri)) return false;
    i = end == std::string_view::npos ? s.size() : end;
  }
  bool in_query_or_fragment = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '#') {
      if (in_query_or_fragment && s.find('#', i + 1) != std::string_view::npos) return false;
      in_query_or_fragment = true;
      continue;
    }
    if (c == '?') {
      in_query_or_fragment = true;
      continue;
    }
    if (!uri_char_ok(s, i, ":@/", iri)) return false;
  }
  if (!has_scheme && !require_scheme) {
    // A relative reference's first segment must not contain ':'.
    auto seg_end = s.find_first_of("/?#");
    if (s.substr(0, seg_end).find(':') != std::string_view::npos) return false;
  }
  return true;
}

bool check_uri(std::string_view s) { return check_uri_generic(s, true, false); }
bool check_uri_reference(std::string_view s) { return check_uri_generic(s, false, false); }
bool check_iri(std::string_view s) { return check_uri_generic(s, true, true); }
bool check_iri_reference(std::string_view s) { return check_uri_generic(s, false, true); }

// RFC 6570 level 4 syntax.
bool check_uri_template(std::string_view s) {
  size_t i = 0;
  auto varchar = [&](size_t& k) {
    if (k < s.size() && (is_alpha(s[k]) || is_digit(s[k]) || s[k] == '_')) {
      ++k;
      return true;
    }
    if (k + 2 < s.size() && s[k] == '%' && is_hex(s[k + 1]) && is_hex(s[k + 2])) {
      k += 3;
      return true;
    }
    return false;
  };
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c != '{') {
      if (c <= 0x20 || c == 0x7f ||
          std::string_view("\"'<>\\^`|}").find(static_cast<char>(c)) != std::string_view::npos)
        return false;
      if (c == '%' && !(i + 2 < s.size() && is_hex(s[i + 1]) && is_hex(s[i + 2]))) return false;
      ++i;
      continue;
    }
    ++i;
    if (i < s.size() && std::string_view("+#./;?&=,!@|").find(s[i]) != std::string_view::npos) ++i;
    while (true) {
      if (!varchar(i)) return false;
      while (true) {
        if (i < s.size() && s[i] == '.') {
          ++i;
          if (!varchar(i)) return false;
        } else if (!varchar(i)) {
          break;
        }
      }
      if (i < s.size() && s[i] == ':') {
        size_t start = ++i;
        while (i < s.size() && is_digit(s[i])) ++i;
        if (i == start || i - start > 4 || s[start] == '0') return false;
      } else if (i < s.size() && s[i] == '*') {
        ++i;
      }
      if (i < s.size() && s[i] == ',') {
        ++i;
        continue;
      }
      break;
    }
    if (i >= s.size() || s[i] != '}') return false;
    ++i;
  }
  return true;
}

bool check_json_pointer(std::string_view s) {
  if (s.empty()) return true;
  if (s[0] != '/') return false;
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == '~' && (i + 1 >= s.size() || (s[i + 1] != '0' && s[i + 1] != '1'))) return false;
  return true;
}

bool check_relative_json_pointer(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && is_digit(s[i])) ++i;
  if (i == 0 || (i > 1 && s[0] == '0')) return false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    size_t start = ++i;
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i == start || (i - start > 1 && s[start] == '0')) return false;
  }
  auto rest = s.substr(i);
  return rest == "#" || check_json_pointer(rest);
}

bool check_regex(std::string_view s) {
  std::string error;
  return regex::compile(s, error) != nullptr;
}

bool check_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < 36; ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !is_hex(s[i])) return false;
  }
  return true;
}

}  // namespace

format_check find_format(std::string_view name) {
  struct entry {
    std::string_view name;
    format_check check;
  };
  static const entry table[] = {
      {"date", check_date},
      {"time", check_time},
      {"date-time", check_date_time},
      {"duration", check_duration},
      {"email", check_email},
      {"idn-email", check_idn_email},
      {"hostname", check_hostname_ascii},
      {"idn-hostname", check_hostname_idn},
      {"ipv4", check_ipv4},
      {"ipv6", check_ipv6},
      {"uri", check_uri},
      {"uri-reference", check_uri_reference},
      {"iri", check_iri},
      {"iri-reference", check_iri_reference},
      {"uri-template", check_uri_template},
      {"json-pointer", check_json_pointer},
      {"relative-json-pointer", check_relative_json_pointer},
      {"regex", check_regex},
      {"uuid", check_uuid},
  };
  for (const auto& e : table)
    if (e.name == name) return e.check;
  return nullptr;
}

}  // namespace flowstate::schema::detail
