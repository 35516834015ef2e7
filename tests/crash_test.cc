// kill -9 at random points, then rerun: every target holds every record
// exactly once. The targets cover each recovery kind: a file appended in
// place (recovered by truncation), a file replaced atomically at the end
// (recovered by its identity), an Excel workbook replaced the same way, a
// CSV file, and a SQLite table in plain insert
// mode (recovered by its checkpoint row) with no unique index, so any
// duplicate would show.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "cli_util.h"

namespace keyonce::testing_util {
namespace {

constexpr int kRecords = 3000;

const char* kRecipe = R"(recipe: crash
source:
  type: csv
  path: in.csv
  delimiter: ";"
key: "{{ record.id }}"
batch_records: 37
targets:
  - name: lines
    type: jsonl
    path: out/lines.jsonl
    body: {id: "{{ record.id }}", cpr: "{{ record.cpr }}"}
  - name: snapshot
    type: jsonl
    mode: replace
    path: out/snapshot.jsonl
    body: {id: "{{ record.id }}"}
  - name: workbook
    type: xlsx
    path: out/workbook.xlsx
    columns: [{field: id, type: text}, {field: amount, type: number}]
  - name: sheet
    type: csv
    path: out/sheet.csv
    columns: {id: "{{ record.id }}", amount: "{{ record.amount }}"}
  - name: db
    type: sqlite
    path: out/db.sqlite
    table: t
    mode: insert
    create_table: true
    columns: {id: "{{ record.id }}", amount: "{{ record.amount }}"}
)";

std::string Input() {
  std::ostringstream s;
  s << "id;cpr;amount\n";
  for (int i = 1; i <= kRecords; ++i) {
    s << i << ";" << (100000 + i % 280000) << "-" << (1000 + i % 9000) << ";" << i * 3 << ",50\n";
  }
  return s.str();
}

// Column A of the workbook's first sheet below the header, one value a line,
// as openpyxl (Debian's python3-openpyxl) reads it.
std::string WorkbookColumnA(const std::filesystem::path& file) {
  const std::string cmd =
      "/usr/bin/python3 -c 'import sys, openpyxl\n"
      "ws = openpyxl.load_workbook(sys.argv[1], read_only=True).worksheets[0]\n"
      "for r in ws.iter_rows(min_row=2, max_col=1, values_only=True): print(r[0])' '" +
      file.string() + "'";
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(::pclose(p), 0) << cmd;
  return out;
}

// Counts how often each id occurs in a text output (one record per line).
std::map<std::string, int> CountIds(const std::string& text, const std::string& prefix,
                                    char end, bool skip_header) {
  std::map<std::string, int> counts;
  std::istringstream in(text);
  std::string line;
  if (skip_header) std::getline(in, line);
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) {
      ADD_FAILURE() << "unexpected line: " << line;
      continue;
    }
    std::string id = line.substr(prefix.size(), line.find(end, prefix.size()) - prefix.size());
    ++counts[id];
  }
  return counts;
}

void ExpectEachOnce(const std::map<std::string, int>& counts, const std::string& what) {
  EXPECT_EQ(counts.size(), static_cast<size_t>(kRecords)) << what << ": records missing";
  int dups = 0;
  for (const auto& [id, n] : counts) dups += n > 1;
  EXPECT_EQ(dups, 0) << what << ": duplicated records";
}

TEST(CrashRecovery, KillNineAtRandomPointsThenRerunWritesEachRecordOnce) {
  auto dir = FreshDir("crash");
  WriteFile(dir / "in.csv", Input());
  WriteFile(dir / "crash.yaml", kRecipe);
  std::vector<std::string> args = {"run", "crash.yaml", "--state", "state.db", "--no-progress"};

  // How long an uninterrupted run takes here, to spread the kills over it.
  auto probe = FreshDir("crash_probe");
  WriteFile(probe / "in.csv", Input());
  WriteFile(probe / "crash.yaml", kRecipe);
  auto t0 = std::chrono::steady_clock::now();
  auto full = Keyonce(args, probe);
  ASSERT_EQ(full.exit_code, 0) << full.all();
  auto run_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();

  std::mt19937 rng(20261126);
  int killed = 0;
  for (int i = 0; i < 25; ++i) {
    pid_t pid = Spawn(args, dir);
    // Early kills hit start-up and recovery; later ones hit writes and commits.
    int delay = std::uniform_int_distribution<int>(0, static_cast<int>(run_ms * 3 / 4) + 5)(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    if (kill(pid, SIGKILL) == 0) ++killed;
    int status = 0;
    waitpid(pid, &status, 0);
  }
  auto last = Keyonce(args, dir);
  ASSERT_EQ(last.exit_code, 0) << last.all();
  EXPECT_GT(killed, 10);

  ExpectEachOnce(CountIds(ReadFile(dir / "out/lines.jsonl"), "{\"id\":\"", '"', false), "jsonl append");
  ExpectEachOnce(CountIds(ReadFile(dir / "out/snapshot.jsonl"), "{\"id\":\"", '"', false), "jsonl replace");
  ExpectEachOnce(CountIds(ReadFile(dir / "out/sheet.csv"), "", ',', true), "csv");
  ExpectEachOnce(CountIds(WorkbookColumnA(dir / "out/workbook.xlsx"), "", ',', false), "xlsx");
  EXPECT_EQ(QueryInt(dir / "out/db.sqlite", "SELECT count(*) FROM t"), kRecords);
  EXPECT_EQ(QueryInt(dir / "out/db.sqlite", "SELECT count(DISTINCT id) FROM t"), kRecords);

  // And one more run has nothing left to do.
  auto again = Keyonce(args, dir);
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("0 written"), std::string::npos) << again.out;
}

}  // namespace
}  // namespace keyonce::testing_util
