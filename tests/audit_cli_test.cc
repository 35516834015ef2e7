// The audit log end to end: `keyonce run` of the sick-leave example appends
// what it did to each person, `keyonce audit --subject CPR` lists it for an
// access request, and no CPR number appears anywhere on the way.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cli_util.h"

namespace keyonce::testing_util {
namespace {

namespace fs = std::filesystem;

// Every CPR number in examples/sick_leave/data/sygefravaer.csv.
const std::vector<std::string> kCprs = {"010185-1233", "2502901234",  "120372-3457", "300699-4822",
                                        "151110-4011", "081288-2224", "291175-1113", "010203-4444",
                                        "110466-3335", "220794-2826"};

// Removes a test's folder when it ends, unless it failed (kept for a look).
struct Cleanup {
  fs::path dir;
  ~Cleanup() {
    std::error_code ec;
    if (!::testing::Test::HasFailure()) fs::remove_all(dir, ec);
  }
};

// The example copied into a fresh folder (its recipe reads data/ relative to itself).
fs::path CopyExample(const std::string& name) {
  fs::path dir = FreshDir(name);
  fs::path src = fs::path(KEYONCE_SOURCE_DIR) / "examples" / "sick_leave";
  fs::copy_file(src / "recipe.yaml", dir / "recipe.yaml");
  fs::copy(src / "data", dir / "data", fs::copy_options::recursive);
  return dir;
}

// How many rows the audit log holds: rows of their own and rows kept in chunks.
const std::string kAuditRows =
    "SELECT (SELECT count(*) FROM audit) + (SELECT IFNULL(sum(n), 0) FROM audit_chunks)";

// Every row of the audit log's tables as stored (blobs as their bytes), and
// the log as `keyonce audit` lists it, for scanning.
std::string DumpAudit(const fs::path& dir, const std::string& db) {
  sqlite3* h = nullptr;
  std::string all;
  if (sqlite3_open_v2((dir / db).c_str(), &h, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(h);
    return "cannot open " + (dir / db).string();
  }
  std::vector<std::string> recipes;
  for (const char* sql :
       {"SELECT * FROM audit", "SELECT * FROM audit_chunks",
        "SELECT DISTINCT recipe FROM audit UNION SELECT recipe FROM audit_chunks"}) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(h, sql, -1, &s, nullptr) == SQLITE_OK) {
      while (sqlite3_step(s) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(s); ++i) {
          const auto* t = static_cast<const char*>(sqlite3_column_blob(s, i));
          all += t ? std::string(t, static_cast<size_t>(sqlite3_column_bytes(s, i))) : "NULL";
          all += "|";
        }
        all += "\n";
        if (sqlite3_column_count(s) == 1) {
          recipes.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
        }
      }
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(h);
  for (const auto& r : recipes) {
    all += Keyonce({"audit", "--recipe", r, "--state", db, "--log-format", "json"}, dir).all();
  }
  return all;
}

// Fails the test when any form of any CPR number appears in `text`.
void ExpectNoCpr(const std::string& what, const std::string& text) {
  for (const auto& c : kCprs) {
    std::string plain = c.size() == 11 ? c.substr(0, 6) + c.substr(7) : c;
    std::string dashed = c.size() == 10 ? c.substr(0, 6) + "-" + c.substr(6) : c;
    EXPECT_EQ(text.find(plain), std::string::npos) << what << " holds a CPR number:\n" << text;
    EXPECT_EQ(text.find(dashed), std::string::npos) << what << " holds a CPR number:\n" << text;
  }
}

struct Row {
  std::string time, actor, recipe, system, operation, subject, detail;
  long long run = 0;
  std::string op() const { return operation + " " + system; }
};

std::vector<Row> ParseRows(const std::string& json_lines) {
  std::vector<Row> rows;
  size_t pos = 0;
  while (pos < json_lines.size()) {
    size_t end = json_lines.find('\n', pos);
    if (end == std::string::npos) end = json_lines.size();
    std::string line = json_lines.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) {
      ADD_FAILURE() << "not a JSON object: " << line;
      continue;
    }
    const auto& o = v.as_object();
    auto str = [&](const char* k) -> std::string {
      auto* f = o.if_contains(k);
      return f && f->is_string() ? std::string(f->as_string()) : "";
    };
    Row r{str("time"),      str("actor"),   str("recipe"), str("system"),
          str("operation"), str("subject"), str("detail")};
    if (auto* run = o.if_contains("run"); run && run->is_int64()) r.run = run->as_int64();
    rows.push_back(r);
  }
  return rows;
}

std::vector<std::string> Ops(const std::vector<Row>& rows, long long run = 0) {
  std::vector<std::string> out;
  for (const auto& r : rows) {
    if (!run || r.run == run) out.push_back(r.op());
  }
  return out;
}

long long RunId(const std::string& summary) {
  auto p = summary.find("Run ");
  return p == std::string::npos ? 0 : std::atoll(summary.c_str() + p + 4);
}

TEST(AuditCli, QuarantinedRecordIsAuditedUnderItsPerson) {
  fs::path dir = CopyExample("audit_quarantine");
  Cleanup cleanup{dir};
  auto r1 = Keyonce({"run", "recipe.yaml", "--state", "s.db"}, dir);
  ASSERT_EQ(r1.exit_code, 3) << r1.all();
  long long run1 = RunId(r1.out);
  // Nina (010203-4444): her hours are not a number, so the record waits in the
  // quarantine, which keeps her record: her trail says so.
  auto a = Keyonce({"audit", "--subject", "010203-4444", "--state", "s.db", "--log-format", "json"},
                   dir);
  ASSERT_EQ(a.exit_code, 0) << a.all();
  auto rows = ParseRows(a.out);
  std::vector<std::string> ops = Ops(rows, run1);
  EXPECT_NE(std::find(ops.begin(), ops.end(), "quarantine keyonce"), ops.end()) << a.out;
  for (const auto& r : rows) {
    if (r.operation != "quarantine") continue;
    EXPECT_EQ(r.subject.rfind("ref-", 0), 0u) << r.subject;
    EXPECT_NE(r.detail.find("quarantined record"), std::string::npos) << r.detail;
  }
  ExpectNoCpr("audit output", a.all() + DumpAudit(dir, "s.db"));
  // A rerun that meets the same record again keeps one quarantine entry, and
  // says again that it keeps it.
  auto r2 = Keyonce({"run", "recipe.yaml", "--state", "s.db"}, dir);
  ASSERT_EQ(r2.exit_code, 3) << r2.all();
  auto again = ParseRows(
      Keyonce({"audit", "--subject", "010203-4444", "--state", "s.db", "--log-format", "json"}, dir)
          .out);
  std::vector<std::string> ops2 = Ops(again, RunId(r2.out));
  EXPECT_NE(std::find(ops2.begin(), ops2.end(), "quarantine keyonce"), ops2.end());
}

TEST(AuditCli, AccessRequestListsEveryOperationOnThePersonAndNoCprAnywhere) {
  fs::path dir = CopyExample("audit_access");
  Cleanup cleanup{dir};
  std::string everything;  // all output, scanned at the end

  auto r1 = Keyonce({"run", "recipe.yaml", "--state", "s.db"}, dir);
  everything += r1.all();
  ASSERT_EQ(r1.exit_code, 3) << r1.all();  // the example has rows for a person
  // A fresh state file has nothing to prune, and says nothing about it.
  EXPECT_EQ(r1.all().find("older than"), std::string::npos) << r1.all();
  long long run1 = RunId(r1.out);
  ASSERT_GT(run1, 0) << r1.out;

  // Søren, 010185-1233: read, looked up (department), written to all three targets.
  auto a = Keyonce({"audit", "--subject", "010185-1233", "--state", "s.db", "--log-format", "json"},
                   dir);
  everything += a.all();
  ASSERT_EQ(a.exit_code, 0) << a.all();
  auto rows = ParseRows(a.out);
  EXPECT_EQ(Ops(rows),
            (std::vector<std::string>{"start_run keyonce", "read source:csv", "lookup departments",
                                      "create payroll", "create rota", "create audit"}))
      << a.out;
  ASSERT_EQ(rows.size(), 6u);
  std::string ref = rows[1].subject;
  EXPECT_EQ(ref.rfind("ref-", 0), 0u) << ref;
  EXPECT_NE(a.err.find("subject reference: " + ref), std::string::npos) << a.err;
  for (const auto& r : rows) {
    EXPECT_EQ(r.recipe, "sick-leave-to-payroll");
    EXPECT_EQ(r.run, run1);
    EXPECT_FALSE(r.actor.empty()) << "the Unix user who ran it";
    EXPECT_EQ(r.time.size(), 24u) << r.time;  // 2026-11-27T03:56:26.123Z
    if (r.operation != "start_run") {
      EXPECT_EQ(r.subject, ref);
    }
  }
  EXPECT_EQ(rows[0].detail, "trigger: cli; params: {\"file\":\"data/sygefravaer.csv\"}");
  EXPECT_EQ(rows[1].detail, "sygefravaer.csv:2");
  EXPECT_EQ(rows[2].detail, "key: {{ record.Afdeling }}; column: kode");
  EXPECT_EQ(rows[3].detail, "sqlite");

  // The same person without the dash, and from standard input: the same reference.
  auto t = Keyonce({"audit", "--subject", "0101851233", "--state", "s.db"}, dir);
  everything += t.all();
  EXPECT_EQ(t.exit_code, 0) << t.all();
  EXPECT_NE(t.out.find("Subject reference " + ref + ": 6 operation(s)"), std::string::npos)
      << t.out;
  EXPECT_NE(t.out.find("lookup"), std::string::npos) << t.out;
  WriteFile(dir / "cpr.txt", "010185-1233\n");
  std::string cmd = "cd '" + dir.string() + "' && '" + Binary() +
                    "' audit --subject - --state s.db > stdin.out 2> stdin.err < cpr.txt";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << ReadFile(dir / "stdin.err");
  everything += ReadFile(dir / "stdin.out") + ReadFile(dir / "stdin.err");
  EXPECT_NE(ReadFile(dir / "stdin.out").find("Subject reference " + ref), std::string::npos)
      << ReadFile(dir / "stdin.out");

  // Someone else: their own reference, their own rows.
  auto other =
      Keyonce({"audit", "--subject", "2502901234", "--state", "s.db", "--log-format", "json"}, dir);
  everything += other.all();
  auto other_rows = ParseRows(other.out);
  ASSERT_FALSE(other_rows.empty()) << other.all();
  EXPECT_NE(other_rows.back().subject, ref);

  // The auditor's view of the run: who started it, with which parameters.
  auto by_run = Keyonce(
      {"audit", "--run", std::to_string(run1), "--state", "s.db", "--log-format", "json"}, dir);
  everything += by_run.all();
  auto run_rows = ParseRows(by_run.out);
  ASSERT_FALSE(run_rows.empty()) << by_run.all();
  EXPECT_EQ(run_rows[0].op(), "start_run keyonce");
  EXPECT_GT(run_rows.size(), 20u);
  auto by_recipe = Keyonce({"audit", "--recipe", "recipe.yaml", "--state", "s.db"}, dir);
  everything += by_recipe.all();
  EXPECT_EQ(by_recipe.exit_code, 0) << by_recipe.all();
  EXPECT_NE(by_recipe.out.find("in recipe sick-leave-to-payroll"), std::string::npos)
      << by_recipe.out;

  // Søren's hours change: the rerun updates payroll (an upsert), the file targets get a new line.
  std::string csv = ReadFile(dir / "data" / "sygefravaer.csv");
  auto p = csv.find("03-11-2026;7,5;");
  ASSERT_NE(p, std::string::npos);
  csv.replace(p, 15, "03-11-2026;8,5;");
  WriteFile(dir / "data" / "sygefravaer.csv", csv);
  auto r2 = Keyonce({"run", "recipe.yaml", "--state", "s.db"}, dir);
  everything += r2.all();
  ASSERT_EQ(r2.exit_code, 3) << r2.all();
  long long run2 = RunId(r2.out);
  auto a2 = Keyonce(
      {"audit", "--subject", "010185-1233", "--state", "s.db", "--log-format", "json"}, dir);
  everything += a2.all();
  EXPECT_EQ(Ops(ParseRows(a2.out), run2),
            (std::vector<std::string>{"start_run keyonce", "read source:csv", "lookup departments",
                                      "update payroll", "create rota", "create audit"}))
      << a2.out;
  // Åse did not change: read and looked up again, written nowhere.
  auto ase = Keyonce(
      {"audit", "--subject", "250290-1234", "--state", "s.db", "--log-format", "json"}, dir);
  everything += ase.all();
  EXPECT_EQ(
      Ops(ParseRows(ase.out), run2),
      (std::vector<std::string>{"start_run keyonce", "read source:csv", "lookup departments"}))
      << ase.out;

  // A dry run and `keyonce test` append nothing.
  long long before = QueryInt(dir / "s.db", kAuditRows);
  auto dry = Keyonce({"run", "recipe.yaml", "--state", "s.db", "--dry-run"}, dir);
  everything += dry.all();
  EXPECT_EQ(dry.exit_code, 3) << dry.all();  // it would quarantine the same rows
  EXPECT_EQ(QueryInt(dir / "s.db", kAuditRows), before);

  // The CPR numbers are nowhere: not in the audit table, the run logs or any command's output.
  std::string dump = DumpAudit(dir, "s.db");
  EXPECT_NE(dump.find(ref), std::string::npos);
  ExpectNoCpr("the audit table", dump);
  ExpectNoCpr("the output", everything);
  EXPECT_EQ(dump.find("Søren"), std::string::npos);
  EXPECT_EQ(dump.find("Plejecenter"), std::string::npos) << "no field values";
}

TEST(AuditCli, MalformedCprIsRefusedWithoutEchoingIt) {
  fs::path dir = FreshDir("audit_malformed");
  Cleanup cleanup{dir};
  for (std::string bad : {"010185-12334", "991399-1234", "01018512", "Søren Ærø"}) {
    auto r = Keyonce({"audit", "--subject", bad, "--state", "none.db"}, dir);
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.all();
    EXPECT_NE(r.err.find("--subject is not a CPR number"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("010185"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("1399"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("Søren"), std::string::npos) << r.err;
  }
  auto none = Keyonce({"audit", "--subject", "010185-1233", "--state", "none.db"}, dir);
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("there is no state store at none.db"), std::string::npos) << none.err;
  EXPECT_EQ(Keyonce({"audit"}, dir).exit_code, 2);
  EXPECT_EQ(Keyonce({"audit", "--run", "x"}, dir).exit_code, 2);
  EXPECT_EQ(Keyonce({"audit", "--recipe", "r", "--from", "yesterday"}, dir).exit_code, 2);
  auto help = Keyonce({"audit", "--help"}, dir);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--subject -"), std::string::npos)
      << "stdin keeps it out of the shell history";
}

TEST(AuditCli, RetentionPrunesOldRowsAtTheStartOfARun) {
  fs::path dir = CopyExample("audit_retention");
  Cleanup cleanup{dir};
  auto r1 = Keyonce({"run", "recipe.yaml", "--state", "s.db"}, dir);
  ASSERT_EQ(r1.exit_code, 3) << r1.all();
  long long recent = QueryInt(dir / "s.db", kAuditRows);
  ASSERT_GT(recent, 0);
  // Rows from long ago and from 20 days ago, as if earlier runs had left them.
  std::string sql =
      "INSERT INTO audit(time, robot, actor, recipe, run, system, operation, subject) VALUES"
      " ('2020-01-01T00:00:00.000Z', 'r', 'a', 'old', 1, 'x', 'read', 'ref-oldoldoldold'),"
      " (strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-20 days'), 'r', 'a', 'old', 1, 'x', 'read', "
      "'ref-old')";
  ASSERT_EQ(std::system(("sqlite3 '" + (dir / "s.db").string() + "' \"" + sql + "\"").c_str()), 0);
  // Pruned once a day: the default retention (180 days) was applied today already.
  auto r2 = Keyonce({"run", "recipe.yaml", "--state", "s.db"}, dir);
  ASSERT_EQ(r2.exit_code, 3) << r2.all();
  EXPECT_EQ(QueryInt(dir / "s.db", "SELECT count(*) FROM audit WHERE recipe='old'"), 2);
  // A new retention applies at once: 30 days removes the 2020 row, keeps the 20-day-old one.
  auto r3 = Keyonce({"run", "recipe.yaml", "--state", "s.db", "--audit-retention-days", "30"}, dir);
  ASSERT_EQ(r3.exit_code, 3) << r3.all();
  EXPECT_NE(r3.err.find("Audit log: 1 row(s) older than 30 days deleted."), std::string::npos)
      << r3.err;
  EXPECT_EQ(QueryInt(dir / "s.db", "SELECT count(*) FROM audit WHERE recipe='old'"), 1);
  auto r4 = Keyonce({"run", "recipe.yaml", "--state", "s.db", "--audit-retention-days", "7"}, dir);
  ASSERT_EQ(r4.exit_code, 3) << r4.all();
  EXPECT_EQ(QueryInt(dir / "s.db", "SELECT count(*) FROM audit WHERE recipe='old'"), 0);
  EXPECT_GE(QueryInt(dir / "s.db", kAuditRows), recent * 2);
  auto bad = Keyonce({"run", "recipe.yaml", "--state", "s.db", "--audit-retention-days", "0"}, dir);
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--audit-retention-days"), std::string::npos) << bad.err;
}

// Evidence of failed records (screenshots of forms, pages: personal data) is
// kept as long as the audit log: a run removes the run folders under
// <state>.evidence/ older than the retention, and nothing else.
TEST(AuditCli, EvidenceOlderThanTheRetentionIsRemovedAtTheStartOfARun) {
  fs::path dir = CopyExample("evidence_retention");
  Cleanup cleanup{dir};
  const fs::path root = dir / "s.db.evidence";
  for (const char* run : {"run-1", "run-2", "run-3"}) {
    fs::create_directories(root / run);
    std::ofstream(root / run / "ref-abcdefghijkl-portal.png") << "png";
  }
  std::ofstream(root / "notes.txt") << "an operator's file";
  const auto now = fs::file_time_type::clock::now();
  fs::last_write_time(root / "run-1", now - std::chrono::hours(24 * 200));
  fs::last_write_time(root / "run-2", now - std::chrono::hours(24 * 20));
  auto r1 = Keyonce({"run", "recipe.yaml", "--state", "s.db"}, dir);
  ASSERT_EQ(r1.exit_code, 3) << r1.all();
  EXPECT_FALSE(fs::exists(root / "run-1")) << "200 days old, the retention is 180";
  EXPECT_TRUE(fs::exists(root / "run-2"));
  EXPECT_NE(r1.err.find("Evidence of 1 run(s) older than 180 days deleted."), std::string::npos)
      << r1.err;
  auto r2 = Keyonce({"run", "recipe.yaml", "--state", "s.db", "--audit-retention-days", "7"}, dir);
  ASSERT_EQ(r2.exit_code, 3) << r2.all();
  EXPECT_FALSE(fs::exists(root / "run-2"));
  EXPECT_TRUE(fs::exists(root / "run-3")) << "new evidence stays";
  EXPECT_TRUE(fs::exists(root / "notes.txt")) << "only run folders are removed";
}

TEST(AuditCli, AfterKillNineEveryWriteIsLoggedExactlyOnce) {
  // Each record a different person; the targets recover exactly (a file
  // appended in place, a SQLite table), so each write happened once.
  constexpr int kPeople = 1500;
  fs::path dir = FreshDir("audit_crash");
  Cleanup cleanup{dir};
  std::string csv = "cpr;hours\n";
  for (int i = 0; i < kPeople; ++i) {
    char line[40];
    std::snprintf(line, sizeof line, "%02d%02d%02d-%04d;%d\n", 1 + i % 28, 1 + (i / 28) % 12,
                  (i / 336) % 100, 1000 + i, i % 24);
    csv += line;
  }
  WriteFile(dir / "in.csv", csv);
  WriteFile(dir / "r.yaml", R"(recipe: crash-audit
source: {type: csv, path: in.csv, delimiter: ";"}
steps:
  - set: {cpr: "{{ record.cpr | cpr }}"}
key: "{{ record.cpr }}"
batch_records: 50
targets:
  - {name: lines, type: jsonl, path: out/lines.jsonl, body: {h: "{{ record.hours }}"}}
  - name: db
    type: sqlite
    path: out/db.sqlite
    table: t
    mode: insert
    create_table: true
    columns: {h: "{{ record.hours }}"}
)");
  std::vector<std::string> args = {"run", "r.yaml", "--state", "s.db", "--no-progress"};
  auto t0 = std::chrono::steady_clock::now();
  auto probe = Keyonce({"run", "r.yaml", "--state", "probe.db", "--dry-run"}, dir);
  ASSERT_EQ(probe.exit_code, 0) << probe.all();
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  std::mt19937 rng(20261127);
  for (int i = 0; i < 8; ++i) {
    pid_t pid = Spawn(args, dir);
    std::this_thread::sleep_for(std::chrono::milliseconds(
        std::uniform_int_distribution<int>(0, static_cast<int>(ms * 2) + 20)(rng)));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
  }
  auto last = Keyonce(args, dir);
  ASSERT_EQ(last.exit_code, 0) << last.all();
  ASSERT_EQ(QueryInt(dir / "out/db.sqlite", "SELECT count(*) FROM t"), kPeople);
  // Every write logged once, as `keyonce audit` lists the log.
  auto log =
      Keyonce({"audit", "--recipe", "crash-audit", "--state", "s.db", "--log-format", "json"}, dir);
  ASSERT_EQ(log.exit_code, 0) << log.all();
  std::map<std::string, std::vector<std::string>> subjects;  // "operation system" -> subjects
  for (const Row& r : ParseRows(log.out)) subjects[r.op()].push_back(r.subject);
  for (const char* op : {"create lines", "create db"}) {
    auto& s = subjects[op];
    EXPECT_EQ(s.size(), static_cast<size_t>(kPeople)) << op;
    std::sort(s.begin(), s.end());
    EXPECT_EQ(std::unique(s.begin(), s.end()) - s.begin(), kPeople) << op;
  }
  for (const char* table : {"audit", "audit_chunks"}) {
    EXPECT_EQ(QueryInt(dir / "s.db", std::string("SELECT count(*) FROM ") + table +
                                         " a JOIN batches b ON b.id = a.batch WHERE b.state <> 1"),
              0)
        << "every logged write is confirmed (" << table << ")";
  }
  auto& read = subjects["read source:csv"];
  std::sort(read.begin(), read.end());
  EXPECT_GE(std::unique(read.begin(), read.end()) - read.begin(), kPeople);
}

}  // namespace
}  // namespace keyonce::testing_util

namespace keyonce::testing_util {
namespace {

TEST(AuditCli, DismissingAQuarantinedRecordIsAuditedUnderItsPerson) {
  fs::path dir = CopyExample("audit_dismiss");
  Cleanup cleanup{dir};
  auto r = Keyonce({"run", "recipe.yaml", "--state", "s.db"}, dir);
  ASSERT_EQ(r.exit_code, 3) << r.all();
  // Nina (010203-4444) is quarantined: her hours are "mange".
  long long id = QueryInt(dir / "s.db", "SELECT id FROM quarantine WHERE reason LIKE '%Timer%'");
  ASSERT_GT(id, 0);
  auto d = Keyonce({"quarantine", "--dismiss", std::to_string(id), "--state", "s.db"}, dir);
  ASSERT_EQ(d.exit_code, 0) << d.all();
  auto a = Keyonce({"audit", "--subject", "010203-4444", "--state", "s.db", "--log-format", "json"},
                   dir);
  ASSERT_EQ(a.exit_code, 0) << a.all();
  auto ops = Ops(ParseRows(a.out));
  ASSERT_FALSE(ops.empty()) << a.out;
  EXPECT_EQ(ops.back(), "quarantine_dismiss keyonce") << a.out;
  EXPECT_EQ(a.all().find("010203"), std::string::npos);
}

}  // namespace
}  // namespace keyonce::testing_util
