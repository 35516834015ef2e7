#include "template/cpr.h"

#include <array>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "template/internal.h"

namespace keyonce::cpr {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
int Digit(std::string_view s, size_t i) { return s[i] - '0'; }
int Two(std::string_view s, size_t i) { return Digit(s, i) * 10 + Digit(s, i + 1); }

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

// The one rule for "a date a CPR number can begin with": the calendar's
// (tmpl::IsValidDate) in a leap year, because DDMMYY alone does not tell the
// century and so whether its year was a leap year.
bool PossibleDayMonth(int day, int month, bool substitutes) {
  if (substitutes && day > 60) day -= 60;
  return tmpl::IsValidDate(2000, month, day);
}

// ASCII letters and digits: what a CPR number in free text may not be glued
// to (a longer number, a word, a hex id).
constexpr std::array<bool, 256> kWordChar = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 'a' + 'A'] = true;
  return t;
}();
bool IsWordChar(char c) { return kWordChar[static_cast<unsigned char>(c)]; }

// The first digit at or after s[i], or s.size(). Eight bytes at a time: most
// of a log line is letters, and this runs on every one.
size_t NextDigit(std::string_view s, size_t i) {
  const size_t n = s.size();
  if constexpr (std::endian::native == std::endian::little) {
    constexpr uint64_t kOnes = 0x0101010101010101ULL;
    constexpr uint64_t kLow7 = kOnes * 0x7F;
    while (i + 8 <= n) {
      uint64_t x;
      std::memcpy(&x, s.data() + i, 8);
      // The high bit of each byte that is '0'-'9' ("hasbetween" of the Bit
      // Twiddling Hacks: exact per byte, no carries between bytes; bytes of
      // 0x80 and above are never digits).
      const uint64_t digits = (kOnes * (127 + '9' + 1) - (x & kLow7)) & ~x &
                              ((x & kLow7) + kOnes * (127 - ('0' - 1))) & (kOnes * 0x80);
      if (digits) return i + static_cast<size_t>(std::countr_zero(digits) / 8);
      i += 8;
    }
  }
  while (i < n && !IsDigit(s[i])) ++i;
  return i;
}

// The number of digits at s[i], counting at most `max`.
size_t DigitsAt(std::string_view s, size_t i, size_t max) {
  size_t k = 0;
  while (k < max && i + k < s.size() && IsDigit(s[i + k])) ++k;
  return k;
}

// What people and systems put between the date and the serial number: at
// most one mark, with or without blanks around it, or blanks alone. Each also
// as a JSON reply, an HTML error page or an XML fault escapes it.
// clang-format off
constexpr std::string_view kBlanks[] = {
    " ", "\xC2\xA0",                                                // space, no-break space
    "\\u00a0", "\\u00A0", "&nbsp;", "&#160;", "&#xa0;", "&#xA0;",  // escaped no-break space
};
constexpr std::string_view kMarks[] = {
    "-", ".", "/",
    "\xE2\x80\x90", "\xE2\x80\x91", "\xE2\x80\x92",  // hyphen, no-break hyphen, figure dash
    "\xE2\x80\x93", "\xE2\x88\x92",                   // en dash (word processors), minus sign
    "\\u2010", "\\u2011", "\\u2012", "\\u2013", "\\u2212",  // the same escaped
    "&ndash;", "&#8211;", "&#x2013;",
};
// clang-format on
constexpr size_t kMaxBlanks = 3;  // on each side of the mark

// The length of the token of `tokens` at s[i], or 0.
template <size_t N>
size_t TokenAt(std::string_view s, size_t i, const std::string_view (&tokens)[N]) {
  for (std::string_view t : tokens) {
    if (s.compare(i, t.size(), t) == 0) return t.size();
  }
  return 0;
}

// The end of the separator that starts at s[i], or i when there is none.
size_t SkipSeparator(std::string_view s, size_t i) {
  size_t p = i;
  for (size_t k = 0, len; k < kMaxBlanks && p < s.size() && (len = TokenAt(s, p, kBlanks)); ++k) {
    p += len;
  }
  const size_t mark = p < s.size() ? TokenAt(s, p, kMarks) : 0;
  if (mark == 0) return p;
  p += mark;
  for (size_t k = 0, len; k < kMaxBlanks && p < s.size() && (len = TokenAt(s, p, kBlanks)); ++k) {
    p += len;
  }
  return p;
}

// A CPR number starting at s[i] (a digit that begins a word), or nullopt.
std::optional<TextMatch> MatchAt(std::string_view s, size_t i) {
  const size_t n = s.size();
  TextMatch m;
  m.begin = i;
  int day = 0, month = 0;
  const size_t run = DigitsAt(s, i, 11);
  if (run == 10 || run == 6) {
    day = Two(s, i);
    month = Two(s, i + 2);
    m.date_end = i + 6;
    if (run == 10) m.end = i + 10;
  } else if (run == 2 && i + 8 < n && (s[i + 2] == '.' || s[i + 2] == '-') &&
             DigitsAt(s, i + 3, 3) == 2 && s[i + 5] == s[i + 2] && DigitsAt(s, i + 6, 3) == 2) {
    // DD.MM.YY or DD-MM-YY, then a separator.
    day = Two(s, i);
    month = Two(s, i + 3);
    m.date_end = i + 8;
  } else {
    return std::nullopt;
  }
  if (m.end) {
    // A decimal number (a timestamp with its fraction) is not a CPR number.
    if (m.end + 1 < n && s[m.end] == '.' && IsDigit(s[m.end + 1])) return std::nullopt;
  } else {
    const size_t serial = SkipSeparator(s, m.date_end);
    if (serial == m.date_end || DigitsAt(s, serial, 5) != 4) return std::nullopt;
    m.end = serial + 4;
  }
  if (m.end < n && IsWordChar(s[m.end])) return std::nullopt;
  if (!PossibleDayMonth(day, month, /*substitutes=*/true)) return std::nullopt;
  return m;
}

}  // namespace

bool IsCprShape(std::string_view s) {
  if (s.size() == 10) return AllDigits(s);
  if (s.size() == 11) return s[6] == '-' && AllDigits(s.substr(0, 6)) && AllDigits(s.substr(7));
  return false;
}

std::optional<std::string> Normalize(std::string_view s) {
  if (!IsCprShape(s)) return std::nullopt;
  if (s.size() == 10) return std::string(s);
  std::string out(s.substr(0, 6));
  out.append(s.substr(7));
  return out;
}

std::string Dashed(std::string_view ten) {
  std::string out(ten.substr(0, 6));
  out.push_back('-');
  out.append(ten.substr(6));
  return out;
}

int BirthYear(std::string_view ten) {
  int yy = Two(ten, 4);
  int d7 = Digit(ten, 6);
  if (d7 <= 3) return 1900 + yy;
  if (d7 == 4 || d7 == 9) return (yy <= 36 ? 2000 : 1900) + yy;
  return (yy <= 57 ? 2000 : 1800) + yy;  // 5-8
}

std::optional<BirthDate> Birthdate(std::string_view ten) {
  BirthDate d{BirthYear(ten), Two(ten, 2), Two(ten, 0)};
  if (!tmpl::IsValidDate(d.year, d.month, d.day)) return std::nullopt;
  return d;
}

std::string IsoDate(const BirthDate& d) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", d.year, d.month, d.day);
  return buf;
}

bool IsMale(std::string_view ten) { return Digit(ten, 9) % 2 == 1; }

bool PassesMod11(std::string_view ten) {
  static constexpr int kWeights[] = {4, 3, 2, 7, 6, 5, 4, 3, 2, 1};
  int sum = 0;
  for (size_t i = 0; i < 10; ++i) sum += kWeights[i] * Digit(ten, i);
  return sum % 11 == 0;
}

bool IsValid(std::string_view s) {
  auto ten = Normalize(s);
  return ten && Birthdate(*ten).has_value();
}

bool HasPossibleBirthDate(std::string_view digits, bool substitutes) {
  if (digits.size() < 6 || !AllDigits(digits.substr(0, 6))) return false;
  return PossibleDayMonth(Two(digits, 0), Two(digits, 2), substitutes);
}

std::string TextMatch::Digits(std::string_view text) const {
  std::string out;
  out.reserve(10);
  for (size_t k = begin; k < date_end; ++k) {
    if (IsDigit(text[k])) out.push_back(text[k]);
  }
  out.append(text.substr(end - 4, 4));
  return out;
}

std::optional<TextMatch> FindInText(std::string_view s, size_t from) {
  const size_t n = s.size();
  for (size_t i = NextDigit(s, from); i < n; i = NextDigit(s, i)) {
    // A number begins a word: inside one (a longer number, a hex id) none can.
    if (i == 0 || !IsWordChar(s[i - 1])) {
      if (auto m = MatchAt(s, i)) return m;
    }
    while (i < n && IsWordChar(s[i])) ++i;
  }
  return std::nullopt;
}

}  // namespace keyonce::cpr
