// The acceptance test of keyonce's cron schedules: their fire times around the
// 2026 and 2027 clock changes of five zones agree with two npm references,
// croner and cron-parser (tests/schedule/reference.js), except for the cases
// listed in reference_differences.txt, where a reference deliberately differs
// from keyonce's documented DST rules (engine/schedule/cron.h); for those,
// keyonce must give exactly the listed times.
//
// To see the lines a new difference would need, run the test with
// KEYONCE_WRITE_DIFFERENCES=FILE: every differing case is written there.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "schedule/cron.h"
#include "template/internal.h"
#include "tests/support/servers.h"

namespace keyonce {
namespace {

namespace fs = std::filesystem;
namespace tu = testing_util;
using std::chrono::sys_seconds;

struct Case {
  std::string ref, expr, zone, from;
  std::vector<std::string> next;  // UTC, "2026-03-29T01:00:00Z"
  std::string error;
};

struct Difference {
  std::vector<std::string> keyonce;  // local ISO 8601 with offset
  std::string reason;
  int line = 0;
  bool used = false;
};

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, sep)) out.push_back(item);
  return out;
}

std::vector<std::string> Words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::string Key(const std::string& ref, const std::string& expr, const std::string& zone,
                const std::string& from) {
  return ref + " | " + expr + " | " + zone + " | " + from;
}

sys_seconds ParseUtc(const std::string& s) {
  int y, mo, d, h, mi, se;
  EXPECT_EQ(std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &se), 6) << s;
  using namespace std::chrono;
  return sys_days{year{y} / month{static_cast<unsigned>(mo)} / day{static_cast<unsigned>(d)}} +
         hours{h} + minutes{mi} + seconds{se};
}

std::string FormatUtc(sys_seconds t) {
  std::string s = FormatInZone(t, nullptr);  // ...+00:00
  return s.substr(0, s.size() - 6) + "Z";
}

// reference_differences.txt: "ref | expr | zone | from | keyonce times | reason".
std::map<std::string, Difference> LoadDifferences(const fs::path& file,
                                                  std::set<std::string>* reasons) {
  std::map<std::string, Difference> out;
  std::ifstream in(file);
  EXPECT_TRUE(in.good()) << "cannot read " << file;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::string t = Trim(line);
    if (t.empty()) continue;
    if (t[0] == '#') {
      // "# REASON-CODE: explanation" declares a reason.
      auto colon = t.find(':');
      auto words = Words(t.substr(1, colon == std::string::npos ? 0 : colon - 1));
      if (words.size() == 1 && words[0].find('-') != std::string::npos) reasons->insert(words[0]);
      continue;
    }
    auto parts = Split(t, '|');
    if (parts.size() != 6) {
      ADD_FAILURE() << file << ":" << n << ": expected 6 fields separated by '|'";
      continue;
    }
    for (auto& p : parts) p = Trim(p);
    Difference d;
    d.keyonce = Words(parts[4]);
    d.reason = parts[5];
    d.line = n;
    EXPECT_TRUE(reasons->count(d.reason)) << file << ":" << n << ": undeclared reason " << d.reason;
    auto key = Key(parts[0], parts[1], parts[2], parts[3]);
    EXPECT_TRUE(out.emplace(key, d).second) << file << ":" << n << ": listed twice";
  }
  return out;
}

std::vector<Case> RunReference(const std::string& node, const std::string& ref) {
  std::string output;
  int rc = tu::RunProgram({node, (tu::TestsDir() / "schedule" / "reference.js").string(), ref},
                          &output, {{"NODE_PATH", tu::NodeModules().string()}});
  EXPECT_EQ(rc, 0) << "reference.js " << ref << " failed:\n" << output.substr(0, 2000);
  std::vector<Case> cases;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] != '{') {
      if (!Trim(line).empty()) ADD_FAILURE() << "reference.js " << ref << " said: " << line;
      continue;
    }
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) {
      ADD_FAILURE() << "reference.js printed a line that is not JSON: " << line;
      continue;
    }
    const auto& o = v.as_object();
    Case c;
    c.ref = o.at("ref").as_string().c_str();
    c.expr = o.at("expr").as_string().c_str();
    c.zone = o.at("zone").as_string().c_str();
    c.from = o.at("from").as_string().c_str();
    if (auto* e = o.if_contains("error")) c.error = e->as_string().c_str();
    if (auto* n = o.if_contains("next")) {
      for (const auto& t : n->as_array()) c.next.push_back(t.as_string().c_str());
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

TEST(ScheduleReference, MatchesCronerAndCronParserExceptListedDstRules) {
  std::string node = tu::FindProgram("node");
  ASSERT_FALSE(node.empty()) << "node (Node.js) is not installed; CI installs it with "
                                ".ci/install-deps.sh (apt-get install nodejs)";
  for (const char* pkg : {"croner", "cron-parser"}) {
    ASSERT_TRUE(fs::exists(tu::NodeModules() / pkg))
        << "npm package " << pkg << " is missing from " << tu::NodeModules()
        << "; run `npm ci` in tests/ (.ci/install-deps.sh does)";
  }
  // The two references run in parallel: cron-parser takes several seconds.
  auto croner = std::async(std::launch::async, RunReference, node, "croner");
  auto cron_parser = std::async(std::launch::async, RunReference, node, "cron-parser");
  std::vector<Case> cases = croner.get();
  for (auto& c : cron_parser.get()) cases.push_back(std::move(c));

  std::set<std::string> reasons;
  const fs::path diff_file = tu::TestsDir() / "schedule" / "reference_differences.txt";
  auto differences = LoadDifferences(diff_file, &reasons);

  std::ofstream write_to;
  if (const char* w = std::getenv("KEYONCE_WRITE_DIFFERENCES")) write_to.open(w);

  struct Count {
    int cases = 0, matched = 0, listed = 0;
    std::set<std::string> exprs, zones;
  };
  std::map<std::string, Count> counts;
  std::map<std::string, CronSchedule> parsed;
  for (const auto& c : cases) {
    SCOPED_TRACE(Key(c.ref, c.expr, c.zone, c.from));
    Count& count = counts[c.ref];
    ++count.cases;
    count.exprs.insert(c.expr);
    count.zones.insert(c.zone);
    auto it = parsed.find(c.expr);
    if (it == parsed.end()) {
      auto p = CronSchedule::Parse(c.expr);
      ASSERT_TRUE(p.ok()) << p.status().message();
      it = parsed.emplace(c.expr, *p).first;
    }
    const date::time_zone* tz = tmpl::FindZone(c.zone);
    ASSERT_NE(tz, nullptr) << c.zone;
    std::vector<std::string> utc, local;
    sys_seconds t = ParseUtc(c.from);
    size_t n = c.next.empty() ? 5 : c.next.size();
    for (size_t i = 0; i < n; ++i) {
      auto next = it->second.Next(t, tz);
      ASSERT_TRUE(next.has_value());
      t = *next;
      utc.push_back(FormatUtc(t));
      local.push_back(FormatInZone(t, tz));
    }
    std::string key = Key(c.ref, c.expr, c.zone, c.from);
    bool same = c.error.empty() && utc == c.next;
    if (!same && write_to.is_open()) write_to << key << " | " << Join(local) << " | ?\n";
    auto d = differences.find(key);
    if (d == differences.end()) {
      if (same) {
        ++count.matched;
        continue;
      }
      std::vector<std::string> ref_local;
      for (const auto& r : c.next) ref_local.push_back(FormatInZone(ParseUtc(r), tz));
      ADD_FAILURE() << c.ref << " and keyonce differ and the case is not listed in " << diff_file
                    << "\n  " << c.ref << ": " << (c.error.empty() ? Join(ref_local) : c.error)
                    << "\n  keyonce: " << Join(local);
      continue;
    }
    d->second.used = true;
    ++count.listed;
    EXPECT_EQ(Join(local), Join(d->second.keyonce))
        << "keyonce differs from the expected times (" << diff_file.filename().string() << ":"
        << d->second.line << ")";
    EXPECT_FALSE(same) << c.ref << " now agrees with keyonce; remove line " << d->second.line
                       << " of " << diff_file;
  }
  for (const auto& [key, d] : differences) {
    EXPECT_TRUE(d.used) << diff_file << ":" << d.line << ": no such case (" << key << ")";
  }
  for (const char* ref : {"croner", "cron-parser"}) {
    const Count& c = counts[ref];
    std::printf(
        "%s: %d cases (%zu expressions, %zu zones), %d match exactly, %d listed "
        "differences\n",
        ref, c.cases, c.exprs.size(), c.zones.size(), c.matched, c.listed);
    EXPECT_GE(c.exprs.size(), 40u) << ref;
    EXPECT_GE(c.zones.size(), 5u) << ref;
  }
}

// `keyonce schedule next` prints what CronSchedule::Next finds, around the
// changes in every zone.
TEST(ScheduleReference, CommandPrintsTheSameTimes) {
  struct Sample {
    const char* expr;
    const char* zone;
    const char* from;
  } samples[] = {
      {"30 2 * * *", "Europe/Copenhagen", "2026-03-28T23:45:00Z"},
      {"*/30 * * * *", "Europe/Copenhagen", "2026-10-24T23:45:00Z"},
      {"0 * * * *", "America/New_York", "2026-11-01T04:45:00Z"},
      {"30 1 * * *", "Europe/London", "2027-10-30T23:45:00Z"},
      {"15 * * * *", "Australia/Lord_Howe", "2026-10-03T14:15:00Z"},
      {"0 9 * * MON-FRI", "Asia/Kolkata", "2027-03-27T23:45:00Z"},
  };
  for (const auto& s : samples) {
    SCOPED_TRACE(std::string(s.expr) + " " + s.zone + " " + s.from);
    const date::time_zone* tz = tmpl::FindZone(s.zone);
    auto cron = CronSchedule::Parse(s.expr);
    ASSERT_TRUE(cron.ok());
    std::string want;
    sys_seconds t = ParseUtc(s.from);
    for (int i = 0; i < 5; ++i) {
      t = *cron->Next(t, tz);
      want += FormatInZone(t, tz) + "\n";
    }
    std::string out;
    int rc = tu::RunProgram({KEYONCE_BINARY, "schedule", "next", s.expr, "--tz", s.zone, "--from",
                             s.from, "--count", "5"},
                            &out);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_EQ(out, want);
  }
}

int Schedule(const std::vector<std::string>& args, std::string* out) {
  std::vector<std::string> argv = {KEYONCE_BINARY, "schedule"};
  argv.insert(argv.end(), args.begin(), args.end());
  return tu::RunProgram(argv, out);
}

TEST(ScheduleCommand, PrintsTimesAndJson) {
  std::string out;
  EXPECT_EQ(Schedule({"next", "30 2 * * *", "--tz", "Europe/Copenhagen", "--from",
                      "2026-03-28T12:00:00Z", "--count", "2"},
                     &out),
            0);
  EXPECT_EQ(out, "2026-03-29T03:00:00+02:00\n2026-03-30T02:30:00+02:00\n");
  // An offset in --from, the default zone (Europe/Copenhagen) and --tz=.
  EXPECT_EQ(Schedule({"next", "@daily", "--from=2026-10-25T02:30:00+01:00", "--count=1"}, &out), 0);
  EXPECT_EQ(out, "2026-10-26T00:00:00+01:00\n");
  // A local --from in the zone; an ambiguous one is the first occurrence.
  EXPECT_EQ(Schedule({"next", "0 * * * *", "--tz=Europe/Copenhagen", "--from",
                      "2026-10-25T02:30:00", "--count", "2"},
                     &out),
            0);
  EXPECT_EQ(out, "2026-10-25T02:00:00+01:00\n2026-10-25T03:00:00+01:00\n");
  EXPECT_EQ(Schedule({"next", "0 9 * * mon-fri", "--tz", "UTC", "--from", "2026-06-05T10:00:00Z",
                      "--count", "2", "--format", "json"},
                     &out),
            0);
  EXPECT_EQ(out,
            "{\"cron\":\"0 9 * * 1-5\",\"timezone\":\"UTC\",\"from\":"
            "\"2026-06-05T10:00:00+00:00\",\"next\":[\"2026-06-08T09:00:00+00:00\","
            "\"2026-06-09T09:00:00+00:00\"]}\n");
  // Without --from: from now, five lines.
  EXPECT_EQ(Schedule({"next", "*/5 * * * *"}, &out), 0);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 5) << out;
  EXPECT_EQ(Schedule({"--help"}, &out), 0);
  EXPECT_NE(out.find("Usage: keyonce schedule next"), std::string::npos) << out;
}

TEST(ScheduleCommand, BadInputExitsTwoWithAClearMessage) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{"next", "61 * * * *"},
       "keyonce schedule: cron \"61 * * * *\": minute 61 is out of range 0-59 (column 1)\n"},
      {{"next", "0 0 31 2 *"},
       "keyonce schedule: cron \"0 0 31 2 *\": day-of-month 31 never occurs in February, so the "
       "schedule never fires (column 5)\n"},
      {{"next", "* * * * *", "--tz", "Europe/Copenhagn"},
       "keyonce schedule: --tz: unknown time zone \"Europe/Copenhagn\"; use an IANA name such as "
       "Europe/Copenhagen or UTC (keyonce schedule --help)\n"},
      {{"next", "* * * * *", "--from", "yesterday"},
       "keyonce schedule: --from must be an ISO 8601 time such as 2026-03-28T12:00:00Z or "
       "2026-03-28T13:00:00+01:00 (keyonce schedule --help)\n"},
      {{"next", "* * * * *", "--count", "0"},
       "keyonce schedule: --count must be a whole number from 1 to 1000 (keyonce schedule "
       "--help)\n"},
      {{"next", "* * * * *", "--count", "5x"},
       "keyonce schedule: --count must be a whole number from 1 to 1000 (keyonce schedule "
       "--help)\n"},
      {{"next", "* * * * *", "--format", "xml"},
       "keyonce schedule: --format must be json or text (keyonce schedule --help)\n"},
      {{"next", "* * * * *", "--zone", "UTC"},
       "keyonce schedule: unknown option --zone (keyonce schedule --help)\n"},
      {{"next", "* * * * *", "--tz"},
       "keyonce schedule: --tz needs a value (keyonce schedule --help)\n"},
      {{"next", "0", "*", "*", "*", "*"},
       "keyonce schedule: next takes exactly one cron expression; quote it: \"30 2 * * *\" "
       "(keyonce schedule --help)\n"},
      {{"prev", "* * * * *"},
       "keyonce schedule: unknown subcommand 'prev'; use next (keyonce schedule --help)\n"},
      {{}, "keyonce schedule: give a subcommand: next (keyonce schedule --help)\n"},
  };
  for (const auto& c : cases) {
    std::string out;
    EXPECT_EQ(Schedule(c.args, &out), 2) << out;
    EXPECT_EQ(out, c.message);
  }
}

}  // namespace
}  // namespace keyonce
