// Cron schedules for recipes: parsing a five-field cron expression and finding
// its next fire time in an IANA time zone, with precise rules for the days the
// clocks change.
//
// Syntax (Vixie cron): "minute hour day-of-month month day-of-week".
//   minute 0-59, hour 0-23, day-of-month 1-31, month 1-12 or JAN-DEC,
//   day-of-week 0-7 or SUN-SAT (0 and 7 are Sunday). Names are case-insensitive.
//   Each field is a comma-separated list of: `*`, `N`, `A-B`, `*/S`, `A-B/S`
//   and `A/S` (A through the field's maximum in steps of S). `?` is accepted
//   as `*` in day-of-month and day-of-week. Ranges may not run backwards.
//   Macros: @yearly = @annually = "0 0 1 1 *", @monthly = "0 0 1 * *",
//   @weekly = "0 0 * * 0", @daily = @midnight = "0 0 * * *", @hourly = "0 * * * *".
//   If both day-of-month and day-of-week are restricted (neither is `*`), a day
//   matches when EITHER matches ("0 0 13 * 5": every 13th and every Friday).
//   An expression whose day-of-month can never occur in its months
//   ("0 0 31 2 *", "0 0 31 4,6 *") is rejected by Parse. Next searches at
//   most kHorizonYears ahead (long enough for "0 0 29 2 *" across 2100).
//
// Daylight-saving rules. The schedule's times are wall-clock times in its zone.
// Two kinds of schedule are told apart by the hour field:
//   - fixed-hour: the hour field names specific hours (`2`, `1,13`, `8-16`),
//     e.g. "30 2 * * *", "*/15 2 * * *", "0 8-16 * * 1-5";
//   - interval: the hour field is `*` or has a step (`*/2`, `8-18/2`, `3/6`) or
//     names all 24 hours, e.g. "0 * * * *", "*/30 * * * *", "15 */2 * * *",
//     @hourly.
// Rule 1 (spring forward, fixed-hour): fire times on a local time that does not
//   exist (02:30 in Europe/Copenhagen on 2026-03-29) run once, at the first
//   valid instant after them: the end of the gap (03:00 local). All fire times
//   inside the same gap (`*/15 2 * * *`: 02:00, 02:15, 02:30, 02:45) collapse
//   into that one run, which is also the run of a fire time at the end of the
//   gap itself (`0 2,3 * * *` runs once at 03:00).
// Rule 2 (fall back, fixed-hour): a local time that occurs twice runs once, at
//   its first occurrence (02:30 CEST, not 02:30 CET; `*/15 2 * * *` runs four
//   times, all before the clocks go back).
// Rule 3 (spring forward, interval): the schedule follows elapsed real time.
//   A fire time that does not exist runs at the instant it would have had
//   without the change, i.e. read with the offset in force before the change:
//   shifted forward by the length of the gap (02:15 runs at 03:15 when an hour
//   is skipped; at 02:45 on Lord Howe Island where half an hour is skipped).
//   Where that instant is also a regular fire time it runs once, so
//   "0 * * * *" runs 01:00, 03:00, 04:00 (every 60 real minutes) and
//   "*/30 * * * *" every 30 real minutes: nothing is skipped or doubled.
// Rule 4 (fall back, interval): the repeated local times are distinct real
//   instants and each runs: "0 * * * *" runs at 02:00 CEST and again at
//   02:00 CET, 60 real minutes apart; "*/30 * * * *" every 30 real minutes.
// The same rules apply to any change of a zone's UTC offset, not only DST.
// Fire times are whole local minutes; Next always returns an instant strictly
// after the one it is given, so a collapsed run is returned once.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "keyonce/status.h"

namespace date {
class time_zone;
}  // namespace date

namespace keyonce {

class CronSchedule {
 public:
  // How far Next looks ahead before it gives up.
  static constexpr int kHorizonYears = 9;

  // Parses a five-field expression or a macro. Errors name the expression,
  // the field and the column (1-based):
  //   cron "61 * * * *": minute 61 is out of range 0-59 (column 1)
  static Result<CronSchedule> Parse(std::string_view expr);

  // The first fire time strictly after `after` in zone `tz` (nullptr = UTC),
  // following the daylight-saving rules above; nullopt when there is none
  // within kHorizonYears. Thread-safe (const, no shared state).
  std::optional<std::chrono::sys_seconds> Next(std::chrono::sys_seconds after,
                                               const date::time_zone* tz) const;

  // The normalised five-field expression, e.g. "0 9 * * 1-5" for "0 9 * * mon-fri"
  // and "0 0 * * *" for "@daily".
  std::string ToString() const;

  // True when the hour field makes this an interval schedule (rules 3 and 4).
  bool interval() const { return interval_; }

 private:
  friend class CronMatcher;
  uint64_t minutes_ = 0;       // bit m: minute m
  uint32_t hours_ = 0;         // bit h: hour h
  uint32_t days_ = 0;          // bit d: day-of-month d (1-31)
  uint16_t months_ = 0;        // bit m: month m (1-12)
  uint8_t weekdays_ = 0;       // bit w: day-of-week w (0 = Sunday ... 6)
  bool days_star_ = true;      // day-of-month is `*` (or `?`)
  bool weekdays_star_ = true;  // day-of-week is `*` (or `?`)
  bool interval_ = false;
  std::string normal_;  // ToString()
};

// Formats an instant as ISO 8601 with the zone's offset at that instant,
// e.g. "2026-03-29T03:00:00+02:00" (nullptr = UTC, "+00:00").
std::string FormatInZone(std::chrono::sys_seconds t, const date::time_zone* tz);

}  // namespace keyonce
