#include "connectors/common/sheet/cells.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>

namespace keyonce::connectors::sheet {

std::string ColumnLetters(int column) {
  std::string out;
  while (column > 0) {
    int rem = (column - 1) % 26;
    out.insert(out.begin(), static_cast<char>('A' + rem));
    column = (column - 1) / 26;
  }
  return out;
}

std::optional<CellRef> ParseCellRef(std::string_view text) {
  size_t i = 0;
  if (i < text.size() && text[i] == '$') ++i;
  CellRef ref;
  size_t letters = 0;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c < 'A' || c > 'Z') break;
    if (++letters > 3) return std::nullopt;
    ref.column = ref.column * 26 + (c - 'A' + 1);
  }
  if (letters == 0 || ref.column > 16384) return std::nullopt;
  if (i < text.size() && text[i] == '$') ++i;
  if (i == text.size()) return ref;
  auto [end, ec] = std::from_chars(text.data() + i, text.data() + text.size(), ref.row);
  if (ec != std::errc() || end != text.data() + text.size() || ref.row < 1) return std::nullopt;
  return ref;
}

std::string CellName(int column, int64_t row) {
  return ColumnLetters(column) + std::to_string(row);
}

DateKind ClassifyFormatCode(std::string_view code) {
  bool date = false, time = false, month = false, elapsed = false;
  auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
  auto starts = [&](size_t i, std::string_view word) {
    if (code.size() - i < word.size()) return false;
    for (size_t k = 0; k < word.size(); ++k) {
      if (lower(code[i + k]) != word[k]) return false;
    }
    return true;
  };
  for (size_t i = 0; i < code.size(); ++i) {
    char c = code[i];
    if (c == ';') break;  // only the first section (positive numbers) decides
    if (c == '"') {
      size_t close = code.find('"', i + 1);
      if (close == std::string_view::npos) break;
      i = close;
      continue;
    }
    if (c == '\\' || c == '_' || c == '*') {
      ++i;  // the next character is literal text or padding
      continue;
    }
    if (c == '[') {
      size_t close = code.find(']', i + 1);
      if (close == std::string_view::npos) break;
      std::string_view inner = code.substr(i + 1, close - i - 1);
      bool all_time = !inner.empty();
      char first = inner.empty() ? '\0' : lower(inner[0]);
      for (char k : inner) all_time = all_time && lower(k) == first;
      if (all_time && (first == 'h' || first == 'm' || first == 's')) elapsed = true;
      i = close;
      continue;
    }
    if (starts(i, "am/pm")) {
      i += 4;
      continue;
    }
    if (starts(i, "a/p")) {
      i += 2;
      continue;
    }
    switch (lower(c)) {
      case 'd':
      case 'y':
        date = true;
        break;
      case 'h':
      case 's':
        time = true;
        break;
      case 'm':
        month = true;
        break;
      default:
        break;
    }
  }
  // m is minutes next to h or s, else the month.
  if (month && !time) date = true;
  if (elapsed && !date) return DateKind::kElapsedTime;
  if (date && time) return DateKind::kDateTime;
  if (date) return DateKind::kDate;
  if (time) return DateKind::kTime;
  return DateKind::kNone;
}

DateKind ClassifyBuiltinFormat(int id) {
  if (id >= 14 && id <= 17) return DateKind::kDate;
  if ((id >= 18 && id <= 21) || id == 45 || id == 47) return DateKind::kTime;
  if (id == 22) return DateKind::kDateTime;
  if (id == 46) return DateKind::kElapsedTime;
  return DateKind::kNone;
}

namespace {
// `v` as at least `width` decimal digits (every cell of a 100,000-row sheet
// of dates passes here: no printf).
void AppendDigits(std::string& out, int64_t v, int width) {
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (n < width) tmp[n++] = '0';
  while (n > 0) out += tmp[--n];
}

void AppendClock(std::string& out, int64_t hours, int64_t seconds) {
  AppendDigits(out, hours, 2);
  out += ':';
  AppendDigits(out, seconds / 60 % 60, 2);
  out += ':';
  AppendDigits(out, seconds % 60, 2);
}
}  // namespace

std::optional<std::string> SerialToIso(double serial, DateKind kind, DateSystem system) {
  if (!std::isfinite(serial) || serial < 0 || serial > 3e6 || kind == DateKind::kNone) {
    return std::nullopt;
  }
  const int64_t total = std::llround(serial * 86400.0);
  std::string out;
  if (kind == DateKind::kElapsedTime) {
    AppendClock(out, total / 3600, total);
    return out;
  }
  const int64_t days = total / 86400;
  const int64_t secs = total % 86400;
  if (kind != DateKind::kTime) {
    using namespace std::chrono;
    if (system == DateSystem::k1900 && days == 60) {
      out = "1900-02-29";  // the day Lotus 1-2-3 and Excel count although it never was
    } else {
      sys_days base = system == DateSystem::k1904 ? sys_days(year{1904} / January / 1)
                      : days < 60                 ? sys_days(year{1899} / December / 31)
                                                  : sys_days(year{1899} / December / 30);
      year_month_day ymd(base + std::chrono::days(days));
      int y = static_cast<int>(ymd.year());
      if (y > 9999) return std::nullopt;
      AppendDigits(out, y, 4);
      out += '-';
      AppendDigits(out, static_cast<unsigned>(ymd.month()), 2);
      out += '-';
      AppendDigits(out, static_cast<unsigned>(ymd.day()), 2);
    }
    if (kind == DateKind::kDate) return out;
    out += 'T';
  }
  AppendClock(out, secs / 3600, secs);
  return out;
}

std::optional<Value> ParseNumber(std::string_view text) {
  if (text.empty()) return std::nullopt;
  const char* begin = text.data();
  const char* end = begin + text.size();
  int64_t i = 0;
  auto [iend, iec] = std::from_chars(begin, end, i);
  if (iec == std::errc() && iend == end) return Value(i);
  double d = 0;
  auto [dend, dec] = std::from_chars(begin, end, d);
  if (dec != std::errc() || dend != end || !std::isfinite(d)) return std::nullopt;
  if (d == std::trunc(d) && std::fabs(d) < 9007199254740992.0) {
    return Value(static_cast<int64_t>(d));
  }
  return Value(d);
}

}  // namespace keyonce::connectors::sheet
