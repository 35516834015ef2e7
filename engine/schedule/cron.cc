// Cron expressions and their fire times across daylight-saving changes (the
// rules are in cron.h). Zone data: Howard Hinnant's date/tz on the OS tzdb.
#include "schedule/cron.h"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstdio>
#include <vector>

namespace keyonce {
namespace {

using std::chrono::days;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::sys_seconds;
using LocalSeconds = date::local_seconds;

constexpr std::array<const char*, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                     "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<const char*, 7> kDayNames = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};
constexpr std::array<const char*, 12> kMonthLong = {
    "January", "February", "March",     "April",   "May",      "June",
    "July",    "August",   "September", "October", "November", "December"};
// The most days each month can have (February: 29 in leap years).
constexpr std::array<int, 12> kMaxDays = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

struct FieldDef {
  const char* name;
  int min, max;  // values as written (day-of-week: 0-7)
  bool named_months = false;
  bool named_days = false;
  bool question = false;  // `?` allowed
};

constexpr FieldDef kFields[5] = {
    {"minute", 0, 59},
    {"hour", 0, 23},
    {"day-of-month", 1, 31, false, false, true},
    {"month", 1, 12, true},
    {"day-of-week", 0, 7, false, true, true},
};

// The expression as shown in messages: printable, at most 100 characters.
std::string Shown(std::string_view expr) {
  std::string out;
  for (char c : expr.substr(0, 100)) {
    out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
  }
  if (expr.size() > 100) out += "...";
  return out;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char Upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

// Parses one field's text; `column` is the 1-based column of its first
// character in the expression.
class FieldParser {
 public:
  FieldParser(const FieldDef& def, std::string_view text, size_t column)
      : def_(def), text_(text), column_(column) {}

  // Fills bits (bit v: value v; day-of-week 7 is stored as 0) and the
  // normalised text. Returns an error message without the "cron" prefix.
  std::optional<std::string> Parse() {
    size_t i = 0;
    while (true) {
      size_t start = i;
      while (i < text_.size() && text_[i] != ',') ++i;
      if (i == start) return Error("has an empty list item", start);
      if (auto e = Item(text_.substr(start, i - start), start)) return e;
      if (i == text_.size()) break;
      ++i;  // ','
      if (i == text_.size()) return Error("has an empty list item", i);
    }
    return std::nullopt;
  }

  uint64_t bits() const { return bits_; }
  bool star() const { return star_; }  // exactly `*` or `?`
  bool wildcard_or_step() const { return any_star_or_step_; }
  const std::string& normal() const { return normal_; }

 private:
  std::string Error(const std::string& what, size_t offset) const {
    return std::string(def_.name) + " " + what + " (column " + std::to_string(column_ + offset) +
           ")";
  }

  std::string Unexpected(char c, size_t offset) const {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02X", u);
      return Error(std::string("has an unexpected character ") + hex, offset);
    }
    return Error(std::string("has an unexpected '") + c + "'", offset);
  }

  // Reads a number or a name at item[*i]; the value as written (day-of-week 7 stays 7).
  std::optional<std::string> Value(std::string_view item, size_t base, size_t* i, int* out,
                                   bool range_end) {
    size_t start = *i;
    if (*i < item.size() && IsDigit(item[*i])) {
      long v = 0;
      while (*i < item.size() && IsDigit(item[*i])) {
        if (v < 100000) v = v * 10 + (item[*i] - '0');
        ++*i;
      }
      if (v < def_.min || v > def_.max) {
        std::string shown(item.substr(start, std::min<size_t>(*i - start, 12)));
        std::string range = std::to_string(def_.min) + "-" + std::to_string(def_.max);
        return Error(shown + " is out of range " + range, base + start);
      }
      *out = static_cast<int>(v);
      return std::nullopt;
    }
    if (*i < item.size() && IsAlpha(item[*i])) {
      while (*i < item.size() && IsAlpha(item[*i])) ++*i;
      std::string word;
      for (char c : item.substr(start, *i - start)) word.push_back(Upper(c));
      std::string shown(item.substr(start, std::min<size_t>(*i - start, 20)));
      if (def_.named_months) {
        for (size_t k = 0; k < kMonthNames.size(); ++k) {
          if (word == kMonthNames[k]) {
            *out = static_cast<int>(k) + 1;
            return std::nullopt;
          }
        }
        return Error("name \"" + shown + "\" is not a month; use JAN-DEC or 1-12", base + start);
      }
      if (def_.named_days) {
        for (size_t k = 0; k < kDayNames.size(); ++k) {
          if (word == kDayNames[k]) {
            // SUN ends a range as 7, so MON-SUN is Monday through Sunday.
            *out = (k == 0 && range_end) ? 7 : static_cast<int>(k);
            return std::nullopt;
          }
        }
        return Error("name \"" + shown + "\" is not a day; use SUN-SAT or 0-7", base + start);
      }
      return Error("\"" + shown + "\" is not a number", base + start);
    }
    if (*i >= item.size()) return Error("is missing a value", base + *i);
    return Unexpected(item[*i], base + *i);
  }

  std::optional<std::string> Item(std::string_view item, size_t base) {
    size_t i = 0;
    int lo = def_.min, hi = def_.max;
    bool is_star = false, single = false;
    std::string norm;
    if (item[0] == '*' || (item[0] == '?' && def_.question)) {
      is_star = true;
      any_star_or_step_ = true;
      norm = "*";
      ++i;
      if (def_.named_days) hi = 6;  // `*` is 0-6; 7 would repeat Sunday
    } else {
      if (auto e = Value(item, base, &i, &lo, false)) return e;
      hi = lo;
      single = true;
      if (i < item.size() && item[i] == '-') {
        ++i;
        if (auto e = Value(item, base, &i, &hi, true)) return e;
        single = false;
        if (hi < lo) {
          std::string shown(item.substr(0, i));
          return Error("range " + shown + " runs backwards; list it in two parts", base);
        }
      }
      norm = std::to_string(lo);
      if (!single) norm += "-" + std::to_string(hi);
    }
    int step = 1;
    if (i < item.size() && item[i] == '/') {
      ++i;
      size_t at = i;
      if (i >= item.size() || !IsDigit(item[i])) {
        return Error("step after '/' must be a number", base + at);
      }
      long v = 0;
      while (i < item.size() && IsDigit(item[i])) {
        if (v < 100000) v = v * 10 + (item[i] - '0');
        ++i;
      }
      int max_step = (def_.named_days ? 6 : def_.max) - def_.min;
      if (v < 1 || v > max_step) {
        return Error("step " + std::to_string(v) + " is out of range 1-" + std::to_string(max_step),
                     base + at);
      }
      step = static_cast<int>(v);
      any_star_or_step_ = true;
      if (single) hi = def_.named_days ? std::max(6, lo) : def_.max;  // A/S: A through the maximum
      norm += "/" + std::to_string(step);
    }
    if (i < item.size()) return Unexpected(item[i], base + i);
    for (int v = lo; v <= hi; v += step) {
      int stored = (def_.named_days && v == 7) ? 0 : v;
      bits_ |= uint64_t{1} << stored;
    }
    if (is_star && step == 1 && text_.size() == 1) star_ = true;
    if (!normal_.empty()) normal_ += ",";
    normal_ += norm;
    return std::nullopt;
  }

  const FieldDef& def_;
  std::string_view text_;
  size_t column_;
  uint64_t bits_ = 0;
  bool star_ = false;
  bool any_star_or_step_ = false;
  std::string normal_;
};

struct Macro {
  const char* name;
  const char* expansion;
};
constexpr Macro kMacros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Upper(a[i]) != Upper(b[i])) return false;
  }
  return true;
}

}  // namespace

// Finds matching local minutes; a friend of CronSchedule.
class CronMatcher {
 public:
  explicit CronMatcher(const CronSchedule& s) : s_(s) {}

  bool DayMatches(const date::year_month_day& ymd, date::local_days d) const {
    bool dom = (s_.days_ >> static_cast<unsigned>(ymd.day())) & 1u;
    bool dow = (s_.weekdays_ >> date::weekday(d).c_encoding()) & 1u;
    if (s_.days_star_ && s_.weekdays_star_) return true;
    if (s_.days_star_) return dow;
    if (s_.weekdays_star_) return dom;
    return dom || dow;
  }

  // The first matching whole local minute in [from, to).
  std::optional<LocalSeconds> First(LocalSeconds from, LocalSeconds to) const {
    if (from >= to) return std::nullopt;
    LocalSeconds start = date::ceil<minutes>(from);
    date::local_days d = date::floor<days>(start);
    auto tod = std::chrono::duration_cast<minutes>(start - d).count();
    int h0 = static_cast<int>(tod / 60), m0 = static_cast<int>(tod % 60);
    while (d < to) {
      date::year_month_day ymd{d};
      unsigned month = static_cast<unsigned>(ymd.month());
      if (!((s_.months_ >> month) & 1u)) {
        d = date::local_days{(ymd.year() / ymd.month() / 1) + date::months{1}};
        h0 = m0 = 0;
        continue;
      }
      if (DayMatches(ymd, d)) {
        for (int h = h0; h < 24; ++h) {
          if (!((s_.hours_ >> h) & 1u)) continue;
          int mstart = h == h0 ? m0 : 0;
          uint64_t rest = mstart >= 64 ? 0 : s_.minutes_ >> mstart;
          if (rest == 0) continue;
          int m = mstart + std::countr_zero(rest);
          LocalSeconds t = d + hours{h} + minutes{m};
          if (t >= to) return std::nullopt;
          return t;
        }
      }
      d += days{1};
      h0 = m0 = 0;
    }
    return std::nullopt;
  }

 private:
  const CronSchedule& s_;
};

Result<CronSchedule> CronSchedule::Parse(std::string_view expr) {
  const std::string prefix = "cron \"" + Shown(expr) + "\": ";
  static const std::string kFieldNames = "minute hour day-of-month month day-of-week";
  size_t b = expr.find_first_not_of(" \t");
  if (b == std::string_view::npos) {
    return Status::Invalid(prefix + "the expression is empty; expected 5 fields (" + kFieldNames +
                           ") or a macro such as @daily");
  }
  std::string_view body = expr;
  std::string expanded;
  if (expr[b] == '@') {
    size_t e = expr.find_last_not_of(" \t");
    std::string_view word = expr.substr(b, e - b + 1);
    for (const auto& m : kMacros) {
      if (EqualsIgnoreCase(word, m.name)) {
        expanded = m.expansion;
        break;
      }
    }
    if (expanded.empty()) {
      std::string what = EqualsIgnoreCase(word, "@reboot") ? "@reboot is not supported"
                                                           : "unknown macro " + Shown(word);
      return Status::Invalid(prefix + what +
                             "; use @yearly, @annually, @monthly, @weekly, @daily, @midnight or "
                             "@hourly (column " +
                             std::to_string(b + 1) + ")");
    }
    body = expanded;
  }
  // Split into fields, remembering each one's column.
  std::vector<std::pair<std::string_view, size_t>> fields;
  for (size_t i = 0; i < body.size();) {
    while (i < body.size() && (body[i] == ' ' || body[i] == '\t')) ++i;
    if (i >= body.size()) break;
    size_t start = i;
    while (i < body.size() && body[i] != ' ' && body[i] != '\t') ++i;
    fields.emplace_back(body.substr(start, i - start), start + 1);
  }
  if (fields.size() != 5) {
    std::string msg =
        prefix + "expected 5 fields (" + kFieldNames + "), found " + std::to_string(fields.size());
    if (fields.size() == 6 || fields.size() == 7) msg += "; seconds and years are not supported";
    return Status::Invalid(msg);
  }
  CronSchedule s;
  std::string normal;
  for (int f = 0; f < 5; ++f) {
    FieldParser p(kFields[f], fields[f].first, expanded.empty() ? fields[f].second : b + 1);
    if (auto e = p.Parse()) return Status::Invalid(prefix + *e);
    if (f) normal += " ";
    normal += p.normal();
    switch (f) {
      case 0:
        s.minutes_ = p.bits();
        break;
      case 1:
        s.hours_ = static_cast<uint32_t>(p.bits());
        s.interval_ = p.wildcard_or_step() || s.hours_ == 0xFFFFFFu;
        break;
      case 2:
        s.days_ = static_cast<uint32_t>(p.bits());
        s.days_star_ = p.star();
        break;
      case 3:
        s.months_ = static_cast<uint16_t>(p.bits());
        break;
      case 4:
        s.weekdays_ = static_cast<uint8_t>(p.bits());
        s.weekdays_star_ = p.star();
        break;
    }
  }
  s.normal_ = normal;
  // A day-of-month that no chosen month has never fires (unless day-of-week
  // may match instead).
  if (!s.days_star_ && s.weekdays_star_) {
    int first_day = std::countr_zero(s.days_);
    bool possible = false;
    std::vector<int> months;
    for (int m = 1; m <= 12; ++m) {
      if ((s.months_ >> m) & 1u) {
        months.push_back(m);
        if (first_day <= kMaxDays[m - 1]) possible = true;
      }
    }
    if (!possible) {
      std::string in = months.size() == 1 ? kMonthLong[months[0] - 1] : "any of the chosen months";
      size_t column = expanded.empty() ? fields[2].second : b + 1;
      return Status::Invalid(prefix + "day-of-month " + std::to_string(first_day) +
                             " never occurs in " + in + ", so the schedule never fires (column " +
                             std::to_string(column) + ")");
    }
  }
  return s;
}

std::optional<sys_seconds> CronSchedule::Next(sys_seconds after, const date::time_zone* tz) const {
  // Calendar arithmetic is valid for years 1-9999; beyond, nothing fires.
  static const sys_seconds kFirst{date::sys_days{date::year{1} / 1 / 1}};
  static const sys_seconds kEnd{date::sys_days{date::year{10000} / 1 / 1}};
  if (after < kFirst || after >= kEnd) return std::nullopt;
  CronMatcher match(*this);
  const sys_seconds horizon = std::min(after + days{366 * kHorizonYears}, kEnd);
  if (!tz) {
    auto l = match.First(LocalSeconds{after.time_since_epoch() + seconds{1}},
                         LocalSeconds{horizon.time_since_epoch()});
    if (!l) return std::nullopt;
    return sys_seconds{l->time_since_epoch()};
  }
  // Walk the zone's periods of constant offset; within one, local time maps
  // one to one onto real time. The change at a period's start is handled
  // by the rules in cron.h.
  sys_seconds t = after + seconds{1};
  while (t < horizon) {
    date::sys_info info = tz->get_info(t);
    const sys_seconds begin = info.begin, end = std::min(info.end, horizon);
    const seconds off = info.offset;
    std::optional<sys_seconds> best;
    auto consider = [&](sys_seconds c) {
      if (c > after && (!best || c < *best)) best = c;
    };
    LocalSeconds search_from{t.time_since_epoch() + off};
    // A change less than a day ago may still matter (a gap's runs, an overlap's
    // repeated times).
    if (begin > after - days{1}) {
      date::sys_info prev = tz->get_info(begin - seconds{1});
      const seconds delta = off - prev.offset;
      const LocalSeconds change_old{begin.time_since_epoch() + prev.offset};
      const LocalSeconds change_new{begin.time_since_epoch() + off};
      if (delta > seconds{0}) {  // local times [change_old, change_new) do not exist
        if (!interval_) {        // rule 1: one run at the end of the gap
          if (begin > after && match.First(change_old, change_new)) consider(begin);
        } else {  // rule 3: read with the old offset, i.e. shifted by the gap
          LocalSeconds from = std::max(
              change_old, LocalSeconds{after.time_since_epoch() + seconds{1} + prev.offset});
          if (auto l = match.First(from, change_new)) {
            consider(sys_seconds{l->time_since_epoch() - prev.offset});
          }
        }
      } else if (delta < seconds{0} && !interval_) {
        // Rule 2: [change_new, change_old) already ran before the change.
        search_from = std::max(search_from, change_old);
      }
    }
    if (auto l = match.First(search_from, LocalSeconds{end.time_since_epoch() + off})) {
      consider(sys_seconds{l->time_since_epoch() - off});
    }
    if (best) return best;
    t = info.end;
  }
  return std::nullopt;
}

std::string CronSchedule::ToString() const { return normal_; }

std::string FormatInZone(sys_seconds t, const date::time_zone* tz) {
  seconds off{0};
  if (tz) off = tz->get_info(t).offset;
  LocalSeconds local{t.time_since_epoch() + off};
  date::local_days d = date::floor<days>(local);
  date::year_month_day ymd{d};
  date::hh_mm_ss<seconds> tod{local - d};
  long o = off.count();
  char sign = o < 0 ? '-' : '+';
  if (o < 0) o = -o;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d%c%02ld:%02ld",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(tod.hours().count()),
                static_cast<int>(tod.minutes().count()), static_cast<int>(tod.seconds().count()),
                sign, o / 3600, (o / 60) % 60);
  std::string out = buf;
  if (o % 60) {
    std::snprintf(buf, sizeof buf, ":%02ld", o % 60);
    out += buf;
  }
  return out;
}

}  // namespace keyonce
