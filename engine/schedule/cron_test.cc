#include "schedule/cron.h"

#include <date/tz.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace keyonce {
namespace {

using std::chrono::sys_seconds;
using Strings = std::vector<std::string>;

const date::time_zone* Zone(const std::string& name) {
  if (name == "UTC") return nullptr;
  return date::locate_zone(name);
}

// "2026-03-28T12:00Z" (UTC) as an instant.
sys_seconds Utc(const std::string& s) {
  int y, mo, d, h, mi;
  EXPECT_EQ(std::sscanf(s.c_str(), "%d-%d-%dT%d:%dZ", &y, &mo, &d, &h, &mi), 5) << s;
  using namespace std::chrono;
  return sys_days{year{y} / month{static_cast<unsigned>(mo)} / day{static_cast<unsigned>(d)}} +
         hours{h} + minutes{mi};
}

CronSchedule Cron(const std::string& expr) {
  auto c = CronSchedule::Parse(expr);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.ok() ? *c : *CronSchedule::Parse("* * * * *");
}

// The next n fire times after `from` (UTC), formatted in the zone.
Strings NextN(const std::string& expr, const std::string& zone, const std::string& from, int n) {
  CronSchedule c = Cron(expr);
  const date::time_zone* tz = Zone(zone);
  Strings out;
  sys_seconds t = Utc(from);
  for (int i = 0; i < n; ++i) {
    auto next = c.Next(t, tz);
    if (!next) break;
    EXPECT_GT(*next, t);
    t = *next;
    out.push_back(FormatInZone(t, tz));
  }
  return out;
}

std::string ParseError(const std::string& expr) {
  auto c = CronSchedule::Parse(expr);
  return c.ok() ? "parsed as " + c->ToString() : c.status().message();
}

// ---------------------------------------------------------------- parsing

TEST(CronParse, NormalisesEverySyntax) {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {
      {"* * * * *", "* * * * *"},
      {"  5   4 *  * *  ", "5 4 * * *"},
      {"\t0\t12 * * *", "0 12 * * *"},
      {"0-10 * * * *", "0-10 * * * *"},
      {"*/15 * * * *", "*/15 * * * *"},
      {"10-50/20 * * * *", "10-50/20 * * * *"},
      {"5/15 * * * *", "5/15 * * * *"},
      {"1,2,5-7 * * * *", "1,2,5-7 * * * *"},
      {"0 0 1 jan,Jul,DEC *", "0 0 1 1,7,12 *"},
      {"0 0 * JAN-mar *", "0 0 * 1-3 *"},
      {"0 9 * * mon-fri", "0 9 * * 1-5"},
      {"0 9 * * MON-SUN", "0 9 * * 1-7"},
      {"0 9 * * sun,SAT", "0 9 * * 0,6"},
      {"0 9 * * 7", "0 9 * * 7"},
      {"0 9 ? * 1", "0 9 * * 1"},
      {"0 9 1 * ?", "0 9 1 * *"},
      {"@yearly", "0 0 1 1 *"},
      {"@annually", "0 0 1 1 *"},
      {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"},
      {"@daily", "0 0 * * *"},
      {"@midnight", "0 0 * * *"},
      {" @HOURLY ", "0 * * * *"},
  };
  for (const auto& c : cases) {
    auto r = CronSchedule::Parse(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.status().message();
    EXPECT_EQ(r->ToString(), c.out) << c.in;
  }
}

TEST(CronParse, ErrorsNameFieldAndColumn) {
  struct Case {
    const char* in;
    const char* error;
  } cases[] = {
      {"61 * * * *", "cron \"61 * * * *\": minute 61 is out of range 0-59 (column 1)"},
      {"0 24 * * *", "cron \"0 24 * * *\": hour 24 is out of range 0-23 (column 3)"},
      {"0 0 0 * *", "cron \"0 0 0 * *\": day-of-month 0 is out of range 1-31 (column 5)"},
      {"0 0 32 * *", "cron \"0 0 32 * *\": day-of-month 32 is out of range 1-31 (column 5)"},
      {"0 0 * 13 *", "cron \"0 0 * 13 *\": month 13 is out of range 1-12 (column 7)"},
      {"0 0 * * 8", "cron \"0 0 * * 8\": day-of-week 8 is out of range 0-7 (column 9)"},
      {"0 0 * 0 *", "cron \"0 0 * 0 *\": month 0 is out of range 1-12 (column 7)"},
      {"5-61 * * * *", "cron \"5-61 * * * *\": minute 61 is out of range 0-59 (column 3)"},
      {"99999999999 * * * *",
       "cron \"99999999999 * * * *\": minute 99999999999 is out of range 0-59 (column 1)"},
      {"30-10 * * * *",
       "cron \"30-10 * * * *\": minute range 30-10 runs backwards; list it in two parts "
       "(column 1)"},
      {"0 0 * * FRI-MON",
       "cron \"0 0 * * FRI-MON\": day-of-week range FRI-MON runs backwards; list it in two parts "
       "(column 9)"},
      {"*/0 * * * *", "cron \"*/0 * * * *\": minute step 0 is out of range 1-59 (column 3)"},
      {"*/60 * * * *", "cron \"*/60 * * * *\": minute step 60 is out of range 1-59 (column 3)"},
      {"0 */24 * * *", "cron \"0 */24 * * *\": hour step 24 is out of range 1-23 (column 5)"},
      {"0 0 * * */7", "cron \"0 0 * * */7\": day-of-week step 7 is out of range 1-6 (column 11)"},
      {"*/ * * * *", "cron \"*/ * * * *\": minute step after '/' must be a number (column 3)"},
      {"1,,2 * * * *", "cron \"1,,2 * * * *\": minute has an empty list item (column 3)"},
      {"1, * * * *", "cron \"1, * * * *\": minute has an empty list item (column 3)"},
      {",1 * * * *", "cron \",1 * * * *\": minute has an empty list item (column 1)"},
      {"5x * * * *", "cron \"5x * * * *\": minute has an unexpected 'x' (column 2)"},
      {"1- * * * *", "cron \"1- * * * *\": minute is missing a value (column 3)"},
      {"-1 * * * *", "cron \"-1 * * * *\": minute has an unexpected '-' (column 1)"},
      {"** * * * *", "cron \"** * * * *\": minute has an unexpected '*' (column 2)"},
      {"? * * * *", "cron \"? * * * *\": minute has an unexpected '?' (column 1)"},
      {"0 0 L * *", "cron \"0 0 L * *\": day-of-month \"L\" is not a number (column 5)"},
      {"0 0 * * 1#2", "cron \"0 0 * * 1#2\": day-of-week has an unexpected '#' (column 10)"},
      {"abc * * * *", "cron \"abc * * * *\": minute \"abc\" is not a number (column 1)"},
      {"0 0 * JANUARY *",
       "cron \"0 0 * JANUARY *\": month name \"JANUARY\" is not a month; use JAN-DEC or 1-12 "
       "(column 7)"},
      {"0 0 * * monday",
       "cron \"0 0 * * monday\": day-of-week name \"monday\" is not a day; use SUN-SAT or 0-7 "
       "(column 9)"},
      {"0 0 * MON *",
       "cron \"0 0 * MON *\": month name \"MON\" is not a month; use JAN-DEC or 1-12 (column 7)"},
      {"* * * *",
       "cron \"* * * *\": expected 5 fields (minute hour day-of-month month day-of-week), found "
       "4"},
      {"0 * * * * *",
       "cron \"0 * * * * *\": expected 5 fields (minute hour day-of-month month day-of-week), "
       "found 6; seconds and years are not supported"},
      {"",
       "cron \"\": the expression is empty; expected 5 fields (minute hour day-of-month month "
       "day-of-week) or a macro such as @daily"},
      {"   ",
       "cron \"   \": the expression is empty; expected 5 fields (minute hour day-of-month "
       "month day-of-week) or a macro such as @daily"},
      {"@reboot",
       "cron \"@reboot\": @reboot is not supported; use @yearly, @annually, @monthly, @weekly, "
       "@daily, @midnight or @hourly (column 1)"},
      {"@dayly",
       "cron \"@dayly\": unknown macro @dayly; use @yearly, @annually, @monthly, @weekly, @daily, "
       "@midnight or @hourly (column 1)"},
      {"@daily 5",
       "cron \"@daily 5\": unknown macro @daily 5; use @yearly, @annually, @monthly, @weekly, "
       "@daily, @midnight or @hourly (column 1)"},
      {"0 0 31 2 *",
       "cron \"0 0 31 2 *\": day-of-month 31 never occurs in February, so the schedule never "
       "fires (column 5)"},
      {"0 0 30 FEB *",
       "cron \"0 0 30 FEB *\": day-of-month 30 never occurs in February, so the schedule never "
       "fires (column 5)"},
      {"0 0 31 4,6,9,11 *",
       "cron \"0 0 31 4,6,9,11 *\": day-of-month 31 never occurs in any of the chosen months, so "
       "the schedule never fires (column 5)"},
      {"0 0 \x01 * *",
       "cron \"0 0 ? * *\": day-of-month has an unexpected character 0x01 (column 5)"},
      {"0 0 \xc3\xa6 * *",
       "cron \"0 0 \xc3\xa6 * *\": day-of-month has an unexpected character 0xC3 (column 5)"},
  };
  for (const auto& c : cases) EXPECT_EQ(ParseError(c.in), c.error) << c.in;
}

TEST(CronParse, LongAndHostileInputNeverCrashes) {
  std::string long_expr(5000, '1');
  EXPECT_EQ(ParseError(long_expr).substr(0, 12), "cron \"111111");
  EXPECT_LT(ParseError(long_expr).size(), 300u);
  std::mt19937 rng(42);
  const std::string alphabet = "0123456789*/-,? \tMONJAFEB@L#x";
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    int len = static_cast<int>(rng() % 24);
    for (int k = 0; k < len; ++k) s.push_back(alphabet[rng() % alphabet.size()]);
    auto c = CronSchedule::Parse(s);
    if (!c.ok()) {
      EXPECT_EQ(c.status().message().rfind("cron \"", 0), 0u) << s;
      continue;
    }
    // A parsed schedule fires, and strictly later.
    sys_seconds from = Utc("2026-03-28T22:00Z");
    auto n = c->Next(from, date::locate_zone("Europe/Copenhagen"));
    ASSERT_TRUE(n.has_value()) << s;
    EXPECT_GT(*n, from);
    // Its normal form means the same.
    auto again = CronSchedule::Parse(c->ToString());
    ASSERT_TRUE(again.ok()) << s;
    EXPECT_EQ(again->ToString(), c->ToString());
    EXPECT_EQ(again->interval(), c->interval());
    EXPECT_EQ(again->Next(from, nullptr), c->Next(from, nullptr)) << s;
  }
}

TEST(CronParse, IntervalIsDecidedByTheHourField) {
  for (const char* e : {"0 * * * *", "*/30 * * * *", "15 */2 * * *", "0 8-18/2 * * *",
                        "0 3/6 * * *", "0 0-23 * * *", "@hourly", "* * * * *"}) {
    EXPECT_TRUE(Cron(e).interval()) << e;
  }
  for (const char* e : {"30 2 * * *", "*/15 2 * * *", "0 8-16 * * 1-5", "0 1,13 * * *", "* 2 * * *",
                        "@daily", "@weekly", "@monthly", "@yearly"}) {
    EXPECT_FALSE(Cron(e).interval()) << e;
  }
}

// ---------------------------------------------------------------- Next, no DST

TEST(CronNext, UtcBasics) {
  EXPECT_EQ(NextN("*/15 * * * *", "UTC", "2026-06-01T10:07Z", 3),
            (Strings{"2026-06-01T10:15:00+00:00", "2026-06-01T10:30:00+00:00",
                     "2026-06-01T10:45:00+00:00"}));
  // Strictly after: a fire time equal to `from` is not returned.
  EXPECT_EQ(NextN("0 12 * * *", "UTC", "2026-06-01T12:00Z", 1),
            (Strings{"2026-06-02T12:00:00+00:00"}));
  EXPECT_EQ(NextN("5/20 1 * * *", "UTC", "2026-06-01T00:00Z", 4),
            (Strings{"2026-06-01T01:05:00+00:00", "2026-06-01T01:25:00+00:00",
                     "2026-06-01T01:45:00+00:00", "2026-06-02T01:05:00+00:00"}));
  EXPECT_EQ(NextN("0 9 * * mon-fri", "UTC", "2026-06-05T10:00Z", 2),  // a Friday
            (Strings{"2026-06-08T09:00:00+00:00", "2026-06-09T09:00:00+00:00"}));
  EXPECT_EQ(NextN("0 0 * * 7", "UTC", "2026-06-01T00:00Z", 1),
            (Strings{"2026-06-07T00:00:00+00:00"}));
  EXPECT_EQ(NextN("0 0 * * 5-7", "UTC", "2026-06-05T00:00Z", 3),
            (Strings{"2026-06-06T00:00:00+00:00", "2026-06-07T00:00:00+00:00",
                     "2026-06-12T00:00:00+00:00"}));
  EXPECT_EQ(NextN("@monthly", "UTC", "2026-12-15T00:00Z", 2),
            (Strings{"2027-01-01T00:00:00+00:00", "2027-02-01T00:00:00+00:00"}));
  EXPECT_EQ(NextN("@yearly", "UTC", "2026-06-01T00:00Z", 1),
            (Strings{"2027-01-01T00:00:00+00:00"}));
  EXPECT_EQ(NextN("@weekly", "UTC", "2026-06-01T00:00Z", 1),
            (Strings{"2026-06-07T00:00:00+00:00"}));
  EXPECT_EQ(NextN("59 23 31 12 *", "UTC", "2026-06-01T00:00Z", 1),
            (Strings{"2026-12-31T23:59:00+00:00"}));
}

TEST(CronNext, DayOfMonthOrDayOfWeekWhenBothRestricted) {
  // Every 13th and every Friday (June 2026: Fridays 5, 12, 19; the 13th a Saturday).
  EXPECT_EQ(NextN("0 0 13 * 5", "UTC", "2026-06-01T00:00Z", 4),
            (Strings{"2026-06-05T00:00:00+00:00", "2026-06-12T00:00:00+00:00",
                     "2026-06-13T00:00:00+00:00", "2026-06-19T00:00:00+00:00"}));
  // A step is a restriction too: odd days or Mondays.
  EXPECT_EQ(NextN("0 0 */2 * 1", "UTC", "2026-06-01T00:00Z", 4),
            (Strings{"2026-06-03T00:00:00+00:00", "2026-06-05T00:00:00+00:00",
                     "2026-06-07T00:00:00+00:00", "2026-06-08T00:00:00+00:00"}));
  // Only day-of-week restricted: Mondays only.
  EXPECT_EQ(NextN("0 0 * * 1", "UTC", "2026-06-01T00:00Z", 1),
            (Strings{"2026-06-08T00:00:00+00:00"}));
  // February 31st never comes, but Mondays in February do.
  EXPECT_EQ(NextN("0 0 31 2 1", "UTC", "2026-06-01T00:00Z", 1),
            (Strings{"2027-02-01T00:00:00+00:00"}));
}

TEST(CronNext, RareAndNeverFiring) {
  // Leap days: eight years apart across 2100, within the horizon.
  EXPECT_EQ(NextN("0 0 29 2 *", "UTC", "2026-06-01T00:00Z", 2),
            (Strings{"2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"}));
  EXPECT_EQ(NextN("0 0 29 2 *", "UTC", "2096-03-01T00:00Z", 1),
            (Strings{"2104-02-29T00:00:00+00:00"}));
  EXPECT_EQ(NextN("0 12 29 2 *", "Europe/Copenhagen", "2026-06-01T00:00Z", 1),
            (Strings{"2028-02-29T12:00:00+01:00"}));
  // Rejected at parse time instead of searching forever.
  EXPECT_FALSE(CronSchedule::Parse("0 0 30 2 *").ok());
  EXPECT_FALSE(CronSchedule::Parse("0 0 31 11 *").ok());
  // Nothing beyond the calendar's end (year 9999): nullopt, quickly.
  EXPECT_FALSE(Cron("0 0 29 2 *").Next(Utc("9997-03-01T00:00Z"), nullptr).has_value());
  EXPECT_FALSE(Cron("* * * * *").Next(Utc("9999-12-31T23:59Z"), nullptr).has_value());
  EXPECT_FALSE(Cron("* * * * *")
                   .Next(Utc("9999-12-31T23:59Z"), date::locate_zone("Europe/Copenhagen"))
                   .has_value());
}

TEST(CronNext, KolkataHasNoDst) {
  for (const char* from : {"2026-03-28T12:00Z", "2026-10-24T12:00Z", "2026-11-01T00:00Z"}) {
    auto got = NextN("30 2 * * *", "Asia/Kolkata", from, 2);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].substr(10), "T02:30:00+05:30");
    EXPECT_EQ(got[1].substr(10), "T02:30:00+05:30");
  }
  EXPECT_EQ(NextN("0 * * * *", "Asia/Kolkata", "2026-03-28T23:00Z", 2),
            (Strings{"2026-03-29T05:00:00+05:30", "2026-03-29T06:00:00+05:30"}));
  EXPECT_EQ(NextN("*/45 * * * *", "Asia/Kolkata", "2026-03-28T23:00Z", 3),
            (Strings{"2026-03-29T04:45:00+05:30", "2026-03-29T05:00:00+05:30",
                     "2026-03-29T05:45:00+05:30"}));
}

// ---------------------------------------------------------------- DST rules

// Europe/Copenhagen: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
TEST(CronDst, CopenhagenSpringFixedTimeRunsAtEndOfGap) {  // rule 1
  EXPECT_EQ(NextN("30 2 * * *", "Europe/Copenhagen", "2026-03-28T12:00Z", 3),
            (Strings{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00",
                     "2026-03-31T02:30:00+02:00"}));
  EXPECT_EQ(NextN("*/15 2 * * *", "Europe/Copenhagen", "2026-03-28T12:00Z", 3),
            (Strings{"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00",
                     "2026-03-30T02:15:00+02:00"}));
  EXPECT_EQ(NextN("0 2,3 * * *", "Europe/Copenhagen", "2026-03-28T12:00Z", 3),
            (Strings{"2026-03-29T03:00:00+02:00", "2026-03-30T02:00:00+02:00",
                     "2026-03-30T03:00:00+02:00"}));
  EXPECT_EQ(NextN("59 2 * * *", "Europe/Copenhagen", "2026-03-28T12:00Z", 1),
            (Strings{"2026-03-29T03:00:00+02:00"}));
  // Asked from inside the gap's instant: the collapsed run is not repeated.
  EXPECT_EQ(NextN("*/15 2 * * *", "Europe/Copenhagen", "2026-03-29T01:00Z", 1),
            (Strings{"2026-03-30T02:00:00+02:00"}));
  // The same in 2027 (2027-03-28).
  EXPECT_EQ(NextN("30 2 * * *", "Europe/Copenhagen", "2027-03-27T12:00Z", 2),
            (Strings{"2027-03-28T03:00:00+02:00", "2027-03-29T02:30:00+02:00"}));
}

TEST(CronDst, CopenhagenFallFixedTimeRunsAtFirstOccurrence) {  // rule 2
  EXPECT_EQ(NextN("30 2 * * *", "Europe/Copenhagen", "2026-10-24T12:00Z", 2),
            (Strings{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}));
  EXPECT_EQ(NextN("*/15 2 * * *", "Europe/Copenhagen", "2026-10-24T12:00Z", 5),
            (Strings{"2026-10-25T02:00:00+02:00", "2026-10-25T02:15:00+02:00",
                     "2026-10-25T02:30:00+02:00", "2026-10-25T02:45:00+02:00",
                     "2026-10-26T02:00:00+01:00"}));
  // Asked from inside the repeated hour's second pass: nothing more that day.
  EXPECT_EQ(NextN("45 2 * * *", "Europe/Copenhagen", "2026-10-25T01:10Z", 1),
            (Strings{"2026-10-26T02:45:00+01:00"}));
  EXPECT_EQ(NextN("0 3 * * *", "Europe/Copenhagen", "2026-10-24T12:00Z", 2),
            (Strings{"2026-10-25T03:00:00+01:00", "2026-10-26T03:00:00+01:00"}));
  EXPECT_EQ(NextN("30 2 * * *", "Europe/Copenhagen", "2027-10-30T12:00Z", 2),
            (Strings{"2027-10-31T02:30:00+02:00", "2027-11-01T02:30:00+01:00"}));
}

TEST(CronDst, CopenhagenIntervalFollowsRealTime) {  // rules 3 and 4
  // Spring: every 60 real minutes, 02:00 does not exist and 03:00 runs once.
  EXPECT_EQ(NextN("0 * * * *", "Europe/Copenhagen", "2026-03-28T23:30Z", 3),
            (Strings{"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00",
                     "2026-03-29T04:00:00+02:00"}));
  EXPECT_EQ(NextN("*/30 * * * *", "Europe/Copenhagen", "2026-03-29T00:10Z", 4),
            (Strings{"2026-03-29T01:30:00+01:00", "2026-03-29T03:00:00+02:00",
                     "2026-03-29T03:30:00+02:00", "2026-03-29T04:00:00+02:00"}));
  // 02:15 runs at 03:15 (60 real minutes after 01:15), not also at 03:00.
  EXPECT_EQ(NextN("15 * * * *", "Europe/Copenhagen", "2026-03-28T23:30Z", 3),
            (Strings{"2026-03-29T01:15:00+01:00", "2026-03-29T03:15:00+02:00",
                     "2026-03-29T04:15:00+02:00"}));
  EXPECT_EQ(NextN("0 */2 * * *", "Europe/Copenhagen", "2026-03-28T22:30Z", 3),
            (Strings{"2026-03-29T00:00:00+01:00", "2026-03-29T03:00:00+02:00",
                     "2026-03-29T04:00:00+02:00"}));
  // Fall: the repeated hour runs twice, 60 real minutes apart.
  EXPECT_EQ(NextN("0 * * * *", "Europe/Copenhagen", "2026-10-24T23:30Z", 3),
            (Strings{"2026-10-25T02:00:00+02:00", "2026-10-25T02:00:00+01:00",
                     "2026-10-25T03:00:00+01:00"}));
  EXPECT_EQ(NextN("*/30 * * * *", "Europe/Copenhagen", "2026-10-24T23:40Z", 5),
            (Strings{"2026-10-25T02:00:00+02:00", "2026-10-25T02:30:00+02:00",
                     "2026-10-25T02:00:00+01:00", "2026-10-25T02:30:00+01:00",
                     "2026-10-25T03:00:00+01:00"}));
  EXPECT_EQ(NextN("@hourly", "Europe/Copenhagen", "2027-10-31T00:30Z", 2),
            (Strings{"2027-10-31T02:00:00+01:00", "2027-10-31T03:00:00+01:00"}));
}

// America/New_York: 2026-03-08 02:00 EST -> 03:00 EDT; 2026-11-01 02:00 EDT -> 01:00 EST.
TEST(CronDst, NewYork) {
  EXPECT_EQ(NextN("30 2 * * *", "America/New_York", "2026-03-07T12:00Z", 2),
            (Strings{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"}));
  EXPECT_EQ(NextN("30 1 * * *", "America/New_York", "2026-10-31T12:00Z", 2),
            (Strings{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"}));
  EXPECT_EQ(NextN("30 2 * * *", "America/New_York", "2026-10-31T12:00Z", 1),
            (Strings{"2026-11-01T02:30:00-05:00"}));
  EXPECT_EQ(NextN("0 * * * *", "America/New_York", "2026-11-01T04:30Z", 3),
            (Strings{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00",
                     "2026-11-01T02:00:00-05:00"}));
  EXPECT_EQ(NextN("0 * * * *", "America/New_York", "2026-03-08T05:30Z", 2),
            (Strings{"2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00"}));
  EXPECT_EQ(NextN("30 2 * * *", "America/New_York", "2027-03-13T12:00Z", 1),
            (Strings{"2027-03-14T03:00:00-04:00"}));
}

// Europe/London: 2026-03-29 01:00 GMT -> 02:00 BST; 2026-10-25 02:00 BST -> 01:00 GMT.
TEST(CronDst, London) {
  EXPECT_EQ(NextN("30 1 * * *", "Europe/London", "2026-03-28T12:00Z", 2),
            (Strings{"2026-03-29T02:00:00+01:00", "2026-03-30T01:30:00+01:00"}));
  EXPECT_EQ(NextN("30 1 * * *", "Europe/London", "2026-10-24T12:00Z", 2),
            (Strings{"2026-10-25T01:30:00+01:00", "2026-10-26T01:30:00+00:00"}));
  EXPECT_EQ(NextN("0 0 * * *", "Europe/London", "2026-03-28T12:00Z", 1),
            (Strings{"2026-03-29T00:00:00+00:00"}));
  EXPECT_EQ(NextN("*/20 * * * *", "Europe/London", "2026-10-25T00:30Z", 5),
            (Strings{"2026-10-25T01:40:00+01:00", "2026-10-25T01:00:00+00:00",
                     "2026-10-25T01:20:00+00:00", "2026-10-25T01:40:00+00:00",
                     "2026-10-25T02:00:00+00:00"}));
}

// Australia/Lord_Howe moves by 30 minutes: 2026-04-05 02:00 (+11) -> 01:30 (+10:30);
// 2026-10-04 02:00 (+10:30) -> 02:30 (+11).
TEST(CronDst, LordHoweHalfHourShift) {
  // Spring: the gap is 02:00-02:30.
  EXPECT_EQ(NextN("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00Z", 2),
            (Strings{"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"}));
  EXPECT_EQ(NextN("45 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00Z", 1),
            (Strings{"2026-10-04T02:45:00+11:00"}));
  EXPECT_EQ(NextN("*/10 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00Z", 3),
            (Strings{"2026-10-04T02:30:00+11:00", "2026-10-04T02:40:00+11:00",
                     "2026-10-04T02:50:00+11:00"}));
  EXPECT_EQ(NextN("0 * * * *", "Australia/Lord_Howe", "2026-10-03T14:00Z", 3),
            (Strings{"2026-10-04T01:00:00+10:30", "2026-10-04T02:30:00+11:00",
                     "2026-10-04T03:00:00+11:00"}));
  EXPECT_EQ(NextN("15 * * * *", "Australia/Lord_Howe", "2026-10-03T14:00Z", 3),
            (Strings{"2026-10-04T01:15:00+10:30", "2026-10-04T02:45:00+11:00",
                     "2026-10-04T03:15:00+11:00"}));
  // Fall: 01:30-02:00 occurs twice.
  EXPECT_EQ(NextN("45 1 * * *", "Australia/Lord_Howe", "2026-04-04T12:00Z", 2),
            (Strings{"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"}));
  EXPECT_EQ(NextN("15 1 * * *", "Australia/Lord_Howe", "2026-04-04T12:00Z", 1),
            (Strings{"2026-04-05T01:15:00+11:00"}));
  EXPECT_EQ(NextN("*/30 * * * *", "Australia/Lord_Howe", "2026-04-04T13:40Z", 4),
            (Strings{"2026-04-05T01:00:00+11:00", "2026-04-05T01:30:00+11:00",
                     "2026-04-05T01:30:00+10:30", "2026-04-05T02:00:00+10:30"}));
  EXPECT_EQ(NextN("0 * * * *", "Australia/Lord_Howe", "2026-04-04T13:40Z", 2),
            (Strings{"2026-04-05T01:00:00+11:00", "2026-04-05T02:00:00+10:30"}));
}

// ---------------------------------------------------------------- an independent check

// The rules of cron.h computed the slow way: walk every real minute, read
// the wall clock, and match it with the (DST-free) UTC schedule.
std::vector<sys_seconds> BruteForce(const CronSchedule& c, const date::time_zone* tz,
                                    sys_seconds from, sys_seconds to) {
  using namespace std::chrono;
  auto matches = [&](date::local_seconds l) {
    sys_seconds as_utc{l.time_since_epoch()};
    return c.Next(as_utc - seconds{1}, nullptr) == as_utc;
  };
  std::set<sys_seconds> fires;
  for (sys_seconds s = from; s < to; s += minutes{1}) {
    date::sys_info info = tz->get_info(s);
    date::local_seconds l{s.time_since_epoch() + info.offset};
    if (matches(l)) {
      date::local_info li = tz->get_info(l);
      bool second_pass =
          li.result == date::local_info::ambiguous && info.offset == li.second.offset;
      if (!second_pass || c.interval()) fires.insert(s);
    }
    if (s == info.begin) {
      date::sys_info prev = tz->get_info(s - seconds{1});
      if (prev.offset < info.offset) {  // a gap
        for (date::local_seconds g{s.time_since_epoch() + prev.offset};
             g < date::local_seconds{s.time_since_epoch() + info.offset}; g += minutes{1}) {
          if (!matches(g)) continue;
          fires.insert(c.interval() ? sys_seconds{g.time_since_epoch() - prev.offset} : s);
        }
      }
    }
  }
  return {fires.begin(), fires.end()};
}

TEST(CronDst, AgreesWithBruteForceAroundEveryChange) {
  const char* exprs[] = {"30 2 * * *",   "*/15 2 * * *",    "0 2,3 * * *", "0 * * * *",
                         "*/30 * * * *", "15 * * * *",      "0 */2 * * *", "*/20 1-3 * * *",
                         "45 1 * * *",   "10,40 0-4 * * *", "7 * * * *",   "0 0-23 * * *",
                         "*/7 2 * * *",  "59 1,2 * * 0",    "0 2 29 3 *",  "30 2 * 10 sun"};
  struct Change {
    const char* zone;
    const char* from;
  } changes[] = {
      {"Europe/Copenhagen", "2026-03-28T20:00Z"},   {"Europe/Copenhagen", "2026-10-24T20:00Z"},
      {"America/New_York", "2026-03-08T02:00Z"},    {"America/New_York", "2026-11-01T00:00Z"},
      {"Europe/London", "2027-03-27T20:00Z"},       {"Europe/London", "2027-10-30T20:00Z"},
      {"Australia/Lord_Howe", "2026-04-04T10:00Z"}, {"Australia/Lord_Howe", "2026-10-03T10:00Z"},
      {"Asia/Kolkata", "2026-03-28T20:00Z"},
  };
  size_t compared = 0;
  for (const auto& ch : changes) {
    const date::time_zone* tz = date::locate_zone(ch.zone);
    sys_seconds from = Utc(ch.from), to = from + std::chrono::hours{12};
    for (const char* e : exprs) {
      CronSchedule c = Cron(e);
      std::vector<sys_seconds> want = BruteForce(c, tz, from, to), got;
      for (sys_seconds t = from - std::chrono::seconds{1};;) {
        auto n = c.Next(t, tz);
        if (!n || *n >= to) break;
        got.push_back(t = *n);
      }
      EXPECT_EQ(got, want) << e << " in " << ch.zone << " from " << ch.from;
      compared += want.size();
    }
  }
  EXPECT_GT(compared, 1000u);
}

}  // namespace
}  // namespace keyonce
