#include "template/cpr.h"

#include <cstdio>

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

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && IsLeap(y)) return 29;
  return kDays[m - 1];
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
  if (d.month < 1 || d.month > 12) return std::nullopt;
  if (d.day < 1 || d.day > DaysInMonth(d.year, d.month)) return std::nullopt;
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

}  // namespace keyonce::cpr
