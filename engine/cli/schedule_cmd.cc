// `keyonce schedule next`: prints a cron expression's next fire times.
#include "cli/schedule_cmd.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "schedule/cron.h"
#include "template/internal.h"

namespace keyonce {
namespace {

constexpr const char* kDefaultZone = "Europe/Copenhagen";
constexpr int kMaxCount = 1000;

const char* kScheduleHelp =
    R"(Usage: keyonce schedule next "CRON" [--tz ZONE] [--from TIME] [--count N] [--format json]

Prints the next N times a cron expression fires, one per line, as ISO 8601
with the zone's offset (2026-03-29T03:00:00+02:00), following the same
daylight-saving rules as the schedules of `keyonce serve`.

  CRON           five fields "minute hour day-of-month month day-of-week"
                 (*, N, A-B, */S, A-B/S, A/S, lists, JAN-DEC, SUN-SAT, 0 and 7
                 = Sunday) or @yearly @annually @monthly @weekly @daily
                 @midnight @hourly
  --tz ZONE      IANA time zone (default Europe/Copenhagen)
  --from TIME    start after this instant: 2026-03-28T12:00:00Z, with an
                 offset (2026-03-28T13:00:00+01:00), or local in ZONE without
                 one (default: now)
  --count N      how many fire times, 1-1000 (default 5)
  --format json  print {"cron","timezone","from","next":[...]} instead

Daylight-saving rules: a fixed-hour schedule ("30 2 * * *") whose time does
not exist runs once at the end of the gap (03:00), and a time that occurs
twice runs at its first occurrence; an interval schedule (`*` or a step in
the hour field: "0 * * * *", "*/30 * * * *") follows real time: a skipped
time runs as if the clocks had not changed and a repeated time runs twice.

Exit codes: 0 done; 1 no further fire time within 9 years; 2 usage error, bad
expression, zone or time.
)";

int Usage(const std::string& msg) {
  std::cerr << "keyonce schedule: " << msg << " (keyonce schedule --help)\n";
  return 2;
}

// Reads "2026-03-28T12:00:00Z", "...+01:00" or a local time in tz.
std::optional<std::chrono::sys_seconds> ParseFrom(const std::string& text,
                                                  const date::time_zone* tz) {
  tmpl::CivilTime in, out;
  if (tmpl::ParseIsoInstant(text, &in)) return std::nullopt;
  if (tmpl::ToZone(in, tz, &out)) return std::nullopt;
  using namespace std::chrono;
  sys_days d{year{out.year} / month{static_cast<unsigned>(out.month)} /
             day{static_cast<unsigned>(out.day)}};
  return sys_seconds{d} + hours{out.hour} + minutes{out.minute} + seconds{out.second} -
         seconds{out.offset_sec.value_or(0)};
}

}  // namespace

int ScheduleCommand(int argc, char** argv, int start) {
  std::vector<std::string> positional;
  std::optional<std::string> tz_name, from, count_text, format;
  for (int i = start; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--help" || s == "-h") {
      std::cout << kScheduleHelp;
      return 0;
    }
    if (s.rfind("--", 0) != 0 || s.size() == 2) {
      positional.push_back(s);
      continue;
    }
    std::string name = s, value;
    bool has_value = false;
    if (auto eq = s.find('='); eq != std::string::npos) {
      name = s.substr(0, eq);
      value = s.substr(eq + 1);
      has_value = true;
    }
    std::optional<std::string>* slot = name == "--tz"       ? &tz_name
                                       : name == "--from"   ? &from
                                       : name == "--count"  ? &count_text
                                       : name == "--format" ? &format
                                                            : nullptr;
    if (!slot) return Usage("unknown option " + name);
    if (!has_value) {
      if (i + 1 >= argc) return Usage(name + " needs a value");
      value = argv[++i];
    }
    *slot = value;
  }
  if (positional.empty()) return Usage("give a subcommand: next");
  if (positional[0] != "next") return Usage("unknown subcommand '" + positional[0] + "'; use next");
  if (positional.size() != 2) {
    return Usage("next takes exactly one cron expression; quote it: \"30 2 * * *\"");
  }
  auto cron = CronSchedule::Parse(positional[1]);
  if (!cron.ok()) {
    std::cerr << "keyonce schedule: " << cron.status().message() << "\n";
    return 2;
  }
  std::string zone = tz_name.value_or(kDefaultZone);
  const date::time_zone* tz = tmpl::FindZone(zone);
  if (!tz) {
    return Usage("--tz: unknown time zone \"" + zone +
                 "\"; use an IANA name such as Europe/Copenhagen or UTC");
  }
  int count = 5;
  if (count_text) {
    char* end = nullptr;
    long v = std::strtol(count_text->c_str(), &end, 10);
    if (count_text->empty() || *end != '\0' || v < 1 || v > kMaxCount) {
      return Usage("--count must be a whole number from 1 to " + std::to_string(kMaxCount));
    }
    count = static_cast<int>(v);
  }
  if (format && *format != "json" && *format != "text") {
    return Usage("--format must be json or text");
  }
  bool json = format && *format == "json";
  std::chrono::sys_seconds t =
      std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  if (from) {
    auto f = ParseFrom(*from, tz);
    if (!f) {
      return Usage(
          "--from must be an ISO 8601 time such as 2026-03-28T12:00:00Z or "
          "2026-03-28T13:00:00+01:00");
    }
    t = *f;
  }
  const std::string from_text = FormatInZone(t, tz);
  boost::json::array next;
  bool ended = false;
  for (int i = 0; i < count; ++i) {
    auto n = cron->Next(t, tz);
    if (!n) {
      ended = true;
      break;
    }
    t = *n;
    std::string s = FormatInZone(t, tz);
    if (json) {
      next.emplace_back(s);
    } else {
      std::cout << s << "\n";
    }
  }
  if (json) {
    boost::json::object o;
    o["cron"] = cron->ToString();
    o["timezone"] = zone;
    o["from"] = from_text;
    o["next"] = std::move(next);
    std::cout << boost::json::serialize(o) << "\n";
  }
  if (ended) {
    std::cerr << "keyonce schedule: no further fire time within " << CronSchedule::kHorizonYears
              << " years (or before the year 10000)\n";
    return 1;
  }
  return 0;
}

}  // namespace keyonce
