// Number parsing and formatting for templates: plain and locale-formatted
// numbers, rounding half away from zero on the decimal digits.
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "template/internal.h"

namespace keyonce::tmpl {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Builds a Number from canonical text "[-]digits[.digits]".
std::optional<Number> FromCanonical(std::string_view s, bool has_fraction) {
  Number n;
  if (!has_fraction) {
    auto r = std::from_chars(s.data(), s.data() + s.size(), n.i);
    if (r.ec == std::errc() && r.ptr == s.data() + s.size()) {
      n.is_int = true;
      return n;
    }
  }
  n.is_int = false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), n.d);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(n.d)) {
    return std::nullopt;
  }
  return n;
}

// Shortest decimal text of a double in fixed notation.
std::string FixedText(double d) {
  char buf[1100];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed);
  if (r.ec != std::errc()) return "0";
  return std::string(buf, r.ptr);
}

}  // namespace

std::optional<Number> ParsePlainNumber(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  size_t int_start = i;
  while (i < s.size() && IsDigit(s[i])) ++i;
  if (i == int_start) return std::nullopt;
  bool fraction = false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t frac_start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == frac_start) return std::nullopt;
    fraction = true;
  }
  if (i != s.size()) return std::nullopt;
  return FromCanonical(s, fraction);
}

bool IsPlainNumber(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && s[i] == '-') ++i;
  size_t int_start = i;
  while (i < s.size() && IsDigit(s[i])) ++i;
  if (i == int_start) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t frac_start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == frac_start) return false;
  }
  return i == s.size();
}

int CompareDecimalText(std::string_view a, std::string_view b) {
  struct Parts {
    bool negative;
    std::string_view ip, fp;
  };
  auto split = [](std::string_view s) {
    Parts p{false, {}, {}};
    if (!s.empty() && s[0] == '-') {
      p.negative = true;
      s.remove_prefix(1);
    }
    size_t dot = s.find('.');
    p.ip = s.substr(0, dot);
    p.fp = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
    while (p.ip.size() > 1 && p.ip[0] == '0') p.ip.remove_prefix(1);
    while (!p.fp.empty() && p.fp.back() == '0') p.fp.remove_suffix(1);
    if (p.ip == "0" && p.fp.empty()) p.negative = false;  // -0 == 0
    return p;
  };
  Parts x = split(a), y = split(b);
  if (x.negative != y.negative) return x.negative ? -1 : 1;
  int magnitude;  // compare |x| with |y|
  if (x.ip.size() != y.ip.size()) {
    magnitude = x.ip.size() < y.ip.size() ? -1 : 1;
  } else if (int c = x.ip.compare(y.ip); c != 0) {
    magnitude = c < 0 ? -1 : 1;
  } else {
    int c2 = x.fp.compare(y.fp);  // no trailing zeros, so text order is numeric order
    magnitude = c2 < 0 ? -1 : (c2 > 0 ? 1 : 0);
  }
  return x.negative ? -magnitude : magnitude;
}

std::optional<std::string> DecimalText(const Value& v) {
  switch (v.kind()) {
    case boost::json::kind::int64: return std::to_string(v.get_int64());
    case boost::json::kind::uint64: return std::to_string(v.get_uint64());
    case boost::json::kind::double_:
      if (!std::isfinite(v.get_double())) return std::nullopt;
      return FixedText(v.get_double());
    default: return std::nullopt;
  }
}

std::optional<Number> NumericValue(const Value& v) {
  switch (v.kind()) {
    case boost::json::kind::int64: return Number{true, v.get_int64(), 0};
    case boost::json::kind::uint64: {
      uint64_t u = v.get_uint64();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Number{true, static_cast<int64_t>(u), 0};
      }
      return Number{false, 0, static_cast<double>(u)};
    }
    case boost::json::kind::double_: return Number{false, 0, v.get_double()};
    case boost::json::kind::string: {
      std::string_view s = v.get_string();
      if (s.empty() || s.size() > 400) return std::nullopt;
      char c = s[0];
      if (!IsDigit(c) && c != '-') return std::nullopt;
      return ParsePlainNumber(s);
    }
    default: return std::nullopt;
  }
}

std::optional<Number> ParseLocaleNumber(std::string_view s, char decimal) {
  const char thousands = decimal == ',' ? '.' : ',';
  std::string canon;
  canon.reserve(s.size());
  size_t i = 0;
  auto skip_spaces = [&] {
    for (;;) {
      if (i < s.size() && (s[i] == ' ' || s[i] == '\t')) {
        ++i;
      } else if (i + 1 < s.size() && s.compare(i, 2, "\xC2\xA0") == 0) {
        i += 2;  // no-break space
      } else if (i + 2 < s.size() && (s.compare(i, 3, "\xE2\x80\xAF") == 0 ||    // narrow nbsp
                                      s.compare(i, 3, "\xE2\x80\x89") == 0)) {  // thin space
        i += 3;
      } else {
        return;
      }
    }
  };
  skip_spaces();
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) {
    if (s[i] == '-') canon.push_back('-');
    ++i;
    skip_spaces();
  }
  // Integer part: digit groups; with thousands separators the first group
  // has 1-3 digits and every later group exactly 3.
  size_t int_digits = 0;
  size_t group = 0;
  bool grouped = false;
  for (;;) {
    skip_spaces();
    if (i >= s.size()) break;
    char c = s[i];
    if (IsDigit(c)) {
      canon.push_back(c);
      ++int_digits;
      ++group;
      ++i;
    } else if (c == thousands) {
      if (group == 0 || (grouped && group != 3) || (!grouped && group > 3)) return std::nullopt;
      grouped = true;
      group = 0;
      ++i;
      if (i >= s.size() || !IsDigit(s[i])) return std::nullopt;
    } else {
      break;
    }
  }
  if (grouped && group != 3) return std::nullopt;
  bool fraction = false;
  if (i < s.size() && s[i] == decimal) {
    ++i;
    if (int_digits == 0) canon.push_back('0');
    canon.push_back('.');
    size_t frac = 0;
    for (;;) {
      skip_spaces();
      if (i < s.size() && IsDigit(s[i])) {
        canon.push_back(s[i]);
        ++frac;
        ++i;
      } else {
        break;
      }
    }
    if (frac == 0) return std::nullopt;
    fraction = true;
  } else if (int_digits == 0) {
    return std::nullopt;
  }
  skip_spaces();
  if (i != s.size()) return std::nullopt;
  return FromCanonical(canon, fraction);
}

std::string RoundDecimal(const Number& n, int decimals) {
  std::string text = n.is_int ? std::to_string(n.i) : FixedText(n.d);
  bool negative = !text.empty() && text[0] == '-';
  if (negative) text.erase(0, 1);
  size_t dot = text.find('.');
  std::string ip = dot == std::string::npos ? text : text.substr(0, dot);
  std::string fp = dot == std::string::npos ? std::string() : text.substr(dot + 1);
  if (fp.size() > static_cast<size_t>(decimals)) {
    bool up = fp[static_cast<size_t>(decimals)] >= '5';
    fp.resize(static_cast<size_t>(decimals));
    if (up) {
      // Add one unit in the last kept place, carrying into the integer part.
      std::string digits = ip + fp;
      size_t k = digits.size();
      for (;;) {
        if (k == 0) {
          digits.insert(digits.begin(), '1');
          break;
        }
        --k;
        if (digits[k] == '9') {
          digits[k] = '0';
        } else {
          ++digits[k];
          break;
        }
      }
      ip = digits.substr(0, digits.size() - fp.size());
      fp = digits.substr(digits.size() - fp.size());
    }
  } else {
    fp.append(static_cast<size_t>(decimals) - fp.size(), '0');
  }
  bool zero = ip.find_first_not_of('0') == std::string::npos &&
              fp.find_first_not_of('0') == std::string::npos;
  std::string out;
  if (negative && !zero) out.push_back('-');
  out += ip.empty() ? "0" : ip;
  if (!fp.empty()) {
    out.push_back('.');
    out += fp;
  }
  return out;
}

std::string FormatNumber(const Number& n, int decimals, std::string_view decimal_sep,
                         std::string_view thousands_sep) {
  std::string r = RoundDecimal(n, decimals);
  bool negative = r[0] == '-';
  size_t start = negative ? 1 : 0;
  size_t dot = r.find('.');
  std::string_view ip = std::string_view(r).substr(start, (dot == std::string::npos ? r.size() : dot) - start);
  std::string out;
  if (negative) out.push_back('-');
  for (size_t k = 0; k < ip.size(); ++k) {
    if (k > 0 && !thousands_sep.empty() && (ip.size() - k) % 3 == 0) out += thousands_sep;
    out.push_back(ip[k]);
  }
  if (dot != std::string::npos) {
    out += decimal_sep;
    out += std::string_view(r).substr(dot + 1);
  }
  return out;
}

Value RoundNumber(const Number& n, int decimals) {
  if (n.is_int) return Value(n.i);
  std::string r = RoundDecimal(n, decimals);
  if (auto parsed = FromCanonical(r, decimals > 0)) {
    if (parsed->is_int) return Value(parsed->i);
    return Value(parsed->d);
  }
  return Value(n.d);
}

Value NumberToValue(const Number& n) { return n.is_int ? Value(n.i) : Value(n.d); }

}  // namespace keyonce::tmpl
