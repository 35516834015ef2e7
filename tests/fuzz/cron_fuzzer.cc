// Fuzzes the cron parser and the next-fire-time search. The first line is the
// expression; the bytes after it choose the zone and the starting instant
// (deterministically). A parsed schedule must round-trip through ToString,
// and Next must move strictly forward.
#include <date/tz.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "schedule/cron.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 512) return -1;
  auto [expr, rest] = keyonce::fuzz::SplitLine(keyonce::fuzz::AsText(data, size));
  auto parsed = keyonce::CronSchedule::Parse(expr);
  if (!parsed.ok()) {
    if (parsed.status().message().empty()) __builtin_trap();
    return 0;
  }
  const keyonce::CronSchedule& cron = *parsed;
  auto again = keyonce::CronSchedule::Parse(cron.ToString());
  if (!again.ok() || again->ToString() != cron.ToString() || again->interval() != cron.interval()) {
    __builtin_trap();
  }

  static const char* const kZones[] = {nullptr, "Europe/Copenhagen", "Australia/Lord_Howe",
                                       "America/New_York", "Asia/Kolkata"};
  uint64_t seed = 0;
  for (unsigned char c : rest) seed = seed * 131 + c;
  const char* zone_name = kZones[seed % 5];
  const date::time_zone* tz = zone_name ? date::locate_zone(zone_name) : nullptr;
  // Somewhere between 2020 and 2040, often right at a daylight-saving change.
  using std::chrono::sys_seconds;
  static const int64_t kChanges[] = {1774746000, 1792890000, 1616893200, 1635642000};
  int64_t start = (seed / 5) % 2 == 0
                      ? kChanges[(seed / 10) % 4] + int64_t((seed / 40) % 7200) - 3600
                      : 1577836800 + int64_t((seed / 10) % (20LL * 365 * 86400));
  sys_seconds t{std::chrono::seconds(start)};
  for (int i = 0; i < 4; ++i) {
    auto next = cron.Next(t, tz);
    if (!next) break;
    if (*next <= t) __builtin_trap();
    if (keyonce::FormatInZone(*next, tz).empty()) __builtin_trap();
    t = *next;
  }
  return 0;
}
