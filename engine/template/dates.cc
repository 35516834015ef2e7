// Dates and times for templates: strftime-like formats, ISO 8601, IANA zones
// (Howard Hinnant's date/tz on the OS time-zone database).
#include <date/date.h>
#include <date/tz.h>

#include <chrono>
#include <cstdio>
#include <exception>

#include "template/internal.h"

namespace keyonce::tmpl {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && IsLeap(y)) return 29;
  return kDays[m - 1];
}

// Reads between min and max digits at s[*i].
bool ReadInt(std::string_view s, size_t* i, size_t min, size_t max, int* out) {
  size_t start = *i;
  int v = 0;
  while (*i < s.size() && *i - start < max && IsDigit(s[*i])) {
    v = v * 10 + (s[*i] - '0');
    ++*i;
  }
  if (*i - start < min) return false;
  *out = v;
  return true;
}

// Reads "Z", "±hh", "±hhmm" or "±hh:mm" into seconds east of UTC.
bool ReadOffset(std::string_view s, size_t* i, int* out) {
  if (*i < s.size() && (s[*i] == 'Z' || s[*i] == 'z')) {
    ++*i;
    *out = 0;
    return true;
  }
  if (*i >= s.size() || (s[*i] != '+' && s[*i] != '-')) return false;
  int sign = s[*i] == '-' ? -1 : 1;
  ++*i;
  int hh = 0, mm = 0;
  if (!ReadInt(s, i, 2, 2, &hh)) return false;
  if (*i < s.size() && s[*i] == ':') {
    ++*i;
    if (!ReadInt(s, i, 2, 2, &mm)) return false;
  } else if (*i + 1 < s.size() && IsDigit(s[*i]) && IsDigit(s[*i + 1])) {
    ReadInt(s, i, 2, 2, &mm);
  }
  if (hh > 23 || mm > 59) return false;
  *out = sign * (hh * 3600 + mm * 60);
  return true;
}

// Reads an optional ".digits" after seconds.
void ReadFraction(std::string_view s, size_t* i, std::string* out) {
  if (*i + 1 < s.size() && s[*i] == '.' && IsDigit(s[*i + 1])) {
    ++*i;
    size_t start = *i;
    while (*i < s.size() && IsDigit(s[*i])) ++*i;
    *out = std::string(s.substr(start, std::min<size_t>(*i - start, 9)));
  }
}

std::optional<std::string> CheckFields(const CivilTime& t) {
  if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > DaysInMonth(t.year, t.month)) {
    return std::string("value is not a valid calendar date");
  }
  if (t.hour > 23 || t.minute > 59 || t.second > 59) {
    return std::string("value is not a valid time of day");
  }
  return std::nullopt;
}

void Append2(std::string& out, int v) {
  out.push_back(static_cast<char>('0' + (v / 10) % 10));
  out.push_back(static_cast<char>('0' + v % 10));
}

void Append4(std::string& out, int v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d", v);
  out += buf;
}

void AppendOffset(std::string& out, int offset_sec, bool colon) {
  int off = offset_sec;
  out.push_back(off < 0 ? '-' : '+');
  if (off < 0) off = -off;
  Append2(out, off / 3600);
  if (colon) out.push_back(':');
  Append2(out, (off / 60) % 60);
}

}  // namespace

bool IsValidDate(int y, int m, int d) {
  return m >= 1 && m <= 12 && d >= 1 && d <= DaysInMonth(y, m);
}

std::optional<DateFormat> ParseDateFormat(std::string_view format, FormatUse use,
                                          std::string* error) {
  std::string_view f = format;
  DateFormat out;
  if (format == "dk") {
    f = use == FormatUse::kParseDateTime ? "%d-%m-%Y %H:%M:%S" : "%d-%m-%Y";
  } else if (format == "iso") {
    if (use == FormatUse::kParseDateTime) {
      out.iso_instant = true;
      out.has_date = true;
      out.has_time = true;
      return out;
    }
    f = "%Y-%m-%d";
  }
  bool y = false, m = false, d = false;
  for (size_t i = 0; i < f.size(); ++i) {
    char c = f[i];
    if (c != '%') {
      if (out.items.empty() || out.items.back().directive != 0) out.items.emplace_back();
      out.items.back().literal.push_back(c);
      continue;
    }
    if (i + 1 >= f.size()) {
      *error = "format '" + std::string(format) + "' ends with a lone '%'";
      return std::nullopt;
    }
    char dir = f[++i];
    bool colon = false;
    if (dir == ':' && i + 1 < f.size() && f[i + 1] == 'z') {
      colon = true;
      dir = f[++i];
    }
    auto add = [&](char directive) {
      DateFormat::Item item;
      item.directive = directive;
      item.colon = colon;
      out.items.push_back(std::move(item));
    };
    switch (dir) {
      case 'Y': y = true; add(dir); break;
      case 'm': m = true; add(dir); break;
      case 'd': d = true; add(dir); break;
      case 'H':
      case 'M':
      case 'S': out.has_time = true; add(dir); break;
      case 'z': out.has_offset = true; add(dir); break;
      case 'F':
        y = m = d = true;
        add('Y');
        out.items.emplace_back().literal = "-";
        add('m');
        out.items.emplace_back().literal = "-";
        add('d');
        break;
      case 'T':
        out.has_time = true;
        add('H');
        out.items.emplace_back().literal = ":";
        add('M');
        out.items.emplace_back().literal = ":";
        add('S');
        break;
      case 'y':
        if (use != FormatUse::kFormat) {
          *error = "format '" + std::string(format) +
                   "': '%y' (two-digit year) can only be used to format, not to read; use '%Y'";
          return std::nullopt;
        }
        add(dir);
        break;
      case '%':
        if (out.items.empty() || out.items.back().directive != 0) out.items.emplace_back();
        out.items.back().literal.push_back('%');
        break;
      default:
        *error = "format '" + std::string(format) + "' has an unknown directive '%" +
                 std::string(1, dir) + "' (known: %Y %m %d %H %M %S %z %:z %F %T %y %%)";
        return std::nullopt;
    }
  }
  out.has_date = y && m && d;
  if (use != FormatUse::kFormat && !out.has_date) {
    *error = "format '" + std::string(format) + "' must contain %Y, %m and %d";
    return std::nullopt;
  }
  if (use == FormatUse::kParseDate && out.has_offset) {
    *error = "format '" + std::string(format) + "': a date has no UTC offset (%z); use datetime";
    return std::nullopt;
  }
  return out;
}

const date::time_zone* FindZone(std::string_view name) {
  if (name.empty()) return nullptr;
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return nullptr;
  }
}

std::optional<std::string> ParseWithFormat(std::string_view text, const DateFormat& format,
                                           CivilTime* out) {
  if (format.iso_instant) return ParseIsoInstant(text, out);
  static const std::string kMismatch = "value does not match format";
  size_t i = 0;
  const auto& items = format.items;
  for (size_t k = 0; k < items.size(); ++k) {
    const auto& item = items[k];
    if (item.directive == 0) {
      // A trailing ":%S" is optional: "14:30" reads like "14:30:00".
      if (i == text.size() && item.literal == ":" && k + 2 == items.size() &&
          items[k + 1].directive == 'S') {
        break;
      }
      if (text.substr(i, item.literal.size()) != item.literal) return kMismatch;
      i += item.literal.size();
      continue;
    }
    bool ok = true;
    switch (item.directive) {
      case 'Y': ok = ReadInt(text, &i, 4, 4, &out->year); break;
      case 'm': ok = ReadInt(text, &i, 1, 2, &out->month); break;
      case 'd': ok = ReadInt(text, &i, 1, 2, &out->day); break;
      case 'H': ok = ReadInt(text, &i, 1, 2, &out->hour); out->has_time = true; break;
      case 'M': ok = ReadInt(text, &i, 1, 2, &out->minute); out->has_time = true; break;
      case 'S':
        ok = ReadInt(text, &i, 1, 2, &out->second);
        if (ok) ReadFraction(text, &i, &out->fraction);
        out->has_time = true;
        break;
      case 'z': {
        int off = 0;
        ok = ReadOffset(text, &i, &off);
        if (ok) out->offset_sec = off;
        break;
      }
      default: ok = false;
    }
    if (!ok) return kMismatch;
  }
  if (i != text.size()) return kMismatch;
  return CheckFields(*out);
}

std::optional<std::string> ParseIsoInstant(std::string_view s, CivilTime* out) {
  static const std::string kNotIso = "value is not an ISO 8601 date or date-time";
  size_t i = 0;
  if (!ReadInt(s, &i, 4, 4, &out->year) || i >= s.size() || s[i] != '-') return kNotIso;
  ++i;
  if (!ReadInt(s, &i, 2, 2, &out->month) || i >= s.size() || s[i] != '-') return kNotIso;
  ++i;
  if (!ReadInt(s, &i, 2, 2, &out->day)) return kNotIso;
  if (i < s.size()) {
    if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return kNotIso;
    ++i;
    if (!ReadInt(s, &i, 2, 2, &out->hour) || i >= s.size() || s[i] != ':') return kNotIso;
    ++i;
    if (!ReadInt(s, &i, 2, 2, &out->minute)) return kNotIso;
    if (i < s.size() && s[i] == ':') {
      ++i;
      if (!ReadInt(s, &i, 2, 2, &out->second)) return kNotIso;
      ReadFraction(s, &i, &out->fraction);
    }
    out->has_time = true;
    if (i < s.size()) {
      int off = 0;
      if (!ReadOffset(s, &i, &off)) return kNotIso;
      out->offset_sec = off;
    }
    if (i != s.size()) return kNotIso;
  }
  return CheckFields(*out);
}

std::optional<std::string> ToZone(const CivilTime& in, const date::time_zone* tz, CivilTime* out) {
  using namespace std::chrono;
  if (in.year < 1 || in.year > 9999) return std::string("year out of range");
  auto days = date::local_days{date::year{in.year} / date::month{static_cast<unsigned>(in.month)} /
                               date::day{static_cast<unsigned>(in.day)}};
  date::local_seconds local = days + hours{in.hour} + minutes{in.minute} + seconds{in.second};
  date::sys_seconds sys;
  try {
    if (in.offset_sec) {
      sys = date::sys_seconds{local.time_since_epoch() - seconds{*in.offset_sec}};
    } else if (!tz) {
      sys = date::sys_seconds{local.time_since_epoch()};
    } else {
      date::local_info info = tz->get_info(local);
      switch (info.result) {
        case date::local_info::unique:
        case date::local_info::ambiguous:  // the earliest instant: the first offset
          sys = date::sys_seconds{local.time_since_epoch() - info.first.offset};
          break;
        case date::local_info::nonexistent:  // forward to the end of the gap
          sys = info.first.end;
          break;
      }
    }
    seconds offset{0};
    if (tz) offset = tz->get_info(sys).offset;
    date::local_seconds shown{sys.time_since_epoch() + offset};
    auto day_point = date::floor<date::days>(shown);
    date::year_month_day ymd{day_point};
    date::hh_mm_ss<seconds> hms{shown - day_point};
    *out = CivilTime{};
    out->year = static_cast<int>(ymd.year());
    out->month = static_cast<int>(static_cast<unsigned>(ymd.month()));
    out->day = static_cast<int>(static_cast<unsigned>(ymd.day()));
    out->hour = static_cast<int>(hms.hours().count());
    out->minute = static_cast<int>(hms.minutes().count());
    out->second = static_cast<int>(hms.seconds().count());
    out->fraction = in.fraction;
    out->offset_sec = static_cast<int>(offset.count());
    out->has_time = true;
    if (out->year < 0 || out->year > 9999) return std::string("year out of range");
  } catch (const std::exception&) {
    return std::string("time zone conversion failed");
  }
  return std::nullopt;
}

std::string FormatIsoDate(const CivilTime& t) {
  std::string out;
  out.reserve(10);
  Append4(out, t.year);
  out.push_back('-');
  Append2(out, t.month);
  out.push_back('-');
  Append2(out, t.day);
  return out;
}

std::string FormatIsoInstant(const CivilTime& t) {
  std::string out = FormatIsoDate(t);
  out.push_back('T');
  Append2(out, t.hour);
  out.push_back(':');
  Append2(out, t.minute);
  out.push_back(':');
  Append2(out, t.second);
  if (!t.fraction.empty()) {
    out.push_back('.');
    out += t.fraction;
  }
  AppendOffset(out, t.offset_sec.value_or(0), true);
  return out;
}

std::string FormatWith(const CivilTime& t, const DateFormat& format) {
  std::string out;
  for (const auto& item : format.items) {
    switch (item.directive) {
      case 0: out += item.literal; break;
      case 'Y': Append4(out, t.year); break;
      case 'y': Append2(out, t.year % 100); break;
      case 'm': Append2(out, t.month); break;
      case 'd': Append2(out, t.day); break;
      case 'H': Append2(out, t.hour); break;
      case 'M': Append2(out, t.minute); break;
      case 'S': Append2(out, t.second); break;
      case 'z': AppendOffset(out, t.offset_sec.value_or(0), item.colon); break;
      default: break;
    }
  }
  return out;
}

}  // namespace keyonce::tmpl
