// The guards against what operators really do (issue 11): a recipe started
// twice at once, a state file that is empty, missing, foreign, damaged, older
// than its targets or another journal's, and a quarantine retry without the
// parameters of the run that read the record. Each case ends in a clear
// refusal or the right write, never in records written twice or lost.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli_util.h"

namespace keyonce::testing_util {
namespace {

namespace fs = std::filesystem;

constexpr int kExitRefused = 4;

// Two targets where a record written twice shows: a sqlite table in insert
// mode without a unique index, and a JSONL file appended in place.
const char* kRecipe = R"(recipe: guarded
source:
  type: csv
  path: in.csv
  delimiter: ";"
key: "{{ record.id }}"
batch_records: 500
targets:
  - name: db
    type: sqlite
    path: out/db.sqlite
    table: t
    mode: insert
    create_table: true
    columns: {id: "{{ record.id }}", v: "{{ record.v }}"}
  - name: lines
    type: jsonl
    path: out/lines.jsonl
    body: {id: "{{ record.id }}", v: "{{ record.v }}"}
)";

std::string Rows(int from, int to) {
  std::ostringstream s;
  for (int i = from; i <= to; ++i) s << i << ";value-" << i << "\n";
  return s.str();
}
std::string Csv(int n) { return "id;v\n" + Rows(1, n); }

// How often each id occurs in the JSONL target; -1 marks a line that is not
// one whole record (lines spliced into each other).
std::map<std::string, int> LineIds(const fs::path& file) {
  std::map<std::string, int> ids;
  std::istringstream in(ReadFile(file));
  std::string line;
  const std::string prefix = "{\"id\":\"";
  while (std::getline(in, line)) {
    size_t end = line.find('"', prefix.size());
    bool whole = line.rfind(prefix, 0) == 0 && end != std::string::npos &&
                 line.find('{', 1) == std::string::npos && line.back() == '}';
    if (!whole) {
      --ids["<broken line>"];
      continue;
    }
    ++ids[line.substr(prefix.size(), end - prefix.size())];
  }
  return ids;
}

// Every record exactly once in both targets.
void ExpectEachOnce(const fs::path& dir, int n) {
  EXPECT_EQ(QueryInt(dir / "out/db.sqlite", "SELECT count(*) FROM t"), n) << "sqlite rows";
  EXPECT_EQ(QueryInt(dir / "out/db.sqlite", "SELECT count(DISTINCT id) FROM t"), n);
  auto ids = LineIds(dir / "out/lines.jsonl");
  EXPECT_EQ(ids.count("<broken line>"), 0u) << "lines spliced into each other";
  EXPECT_EQ(ids.size(), static_cast<size_t>(n)) << "jsonl records";
  int twice = 0;
  for (const auto& [id, count] : ids) twice += count > 1;
  EXPECT_EQ(twice, 0) << "jsonl records written twice";
}

// Runs SQL on a database as another program would (no keyonce involved).
void Sql(const fs::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(db.c_str(), &h), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(h, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "") << " in: " << sql;
  sqlite3_free(err);
  sqlite3_close(h);
}

fs::path MakeCase(const std::string& name, int records) {
  fs::path dir = FreshDir(name);
  WriteFile(dir / "guarded.yaml", kRecipe);
  WriteFile(dir / "in.csv", Csv(records));
  return dir;
}

const std::vector<std::string> kRun = {"run", "guarded.yaml", "--state", "state.db",
                                       "--no-progress"};

std::vector<std::string> With(std::vector<std::string> args, std::vector<std::string> more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

// Writes `text` into the FIFO (blocks until a reader has it open).
void Feed(const fs::path& fifo, const std::string& text) {
  int fd = ::open(fifo.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w <= 0) break;
    done += static_cast<size_t>(w);
  }
  ::close(fd);
}

// A run whose source is a FIFO waits in the source until the test feeds it:
// it holds the recipe for as long as the test wants, with no timing guesses.
fs::path SetupHeld(const std::string& name) {
  fs::path dir = FreshDir(name);
  WriteFile(dir / "guarded.yaml", kRecipe);
  EXPECT_EQ(::mkfifo((dir / "in.csv").c_str(), 0600), 0);
  return dir;
}

// --- one run per recipe -------------------------------------------------

TEST(RecipeLock, SecondRunIsRefusedWhileTheFirstRuns) {
  fs::path dir = SetupHeld("lock_refused");
  Background first = StartKeyonce(kRun, dir, "first");
  ASSERT_TRUE(WaitForText(first.err, "started.")) << ReadFile(first.err);

  Background second = StartKeyonce(kRun, dir, "second");
  // The refusal comes at once, before the second run touches the source.
  bool refused = WaitForText(second.err, "already running", 30);
  Feed(dir / "in.csv", Csv(2000));
  Output b = Finish(second);
  Output a = Finish(first);
  EXPECT_TRUE(refused);
  EXPECT_EQ(b.exit_code, kExitRefused) << b.all();
  EXPECT_NE(b.err.find("pid " + std::to_string(first.pid)), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("since"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("--wait"), std::string::npos) << b.err;
  EXPECT_EQ(a.exit_code, 0) << a.all();
  ExpectEachOnce(dir, 2000);
  // The refused run is not a run: the history has one.
  EXPECT_EQ(QueryInt(dir / "state.db", "SELECT count(*) FROM runs"), 1);
}

TEST(RecipeLock, WaitTakesTheRecipeWhenTheFirstRunEnds) {
  fs::path dir = SetupHeld("lock_wait");
  Background first = StartKeyonce(kRun, dir, "first");
  ASSERT_TRUE(WaitForText(first.err, "started.")) << ReadFile(first.err);
  Background second = StartKeyonce(With(kRun, {"--wait"}), dir, "second");
  ASSERT_TRUE(WaitForText(second.err, "waiting")) << ReadFile(second.err);
  Feed(dir / "in.csv", Csv(1000));
  Output a = Finish(first);
  EXPECT_EQ(a.exit_code, 0) << a.all();
  // The second run reads the FIFO too once it holds the recipe: feed it again.
  ASSERT_TRUE(WaitForText(second.err, "started.")) << ReadFile(second.err);
  Feed(dir / "in.csv", Csv(1000));
  Output b = Finish(second);
  EXPECT_EQ(b.exit_code, 0) << b.all();
  EXPECT_NE(b.out.find("0 written, 1000 unchanged"), std::string::npos) << b.out;
  ExpectEachOnce(dir, 1000);
}

TEST(RecipeLock, TwoRunsStartedTogetherWriteEachRecordOnce) {
  // A fresh state file: creating it, registering the targets and the first
  // batches all race.
  for (int round = 0; round < 3; ++round) {
    fs::path dir = MakeCase("lock_race_" + std::to_string(round), 20000);
    Background a = StartKeyonce(kRun, dir, "a");
    Background b = StartKeyonce(kRun, dir, "b");
    Output ra = Finish(a), rb = Finish(b);
    for (const Output* o : {&ra, &rb}) {
      EXPECT_TRUE(o->exit_code == 0 || o->exit_code == kExitRefused) << o->all();
      EXPECT_EQ(o->all().find("UNIQUE constraint"), std::string::npos) << o->all();
    }
    EXPECT_TRUE(ra.exit_code == 0 || rb.exit_code == 0);
    ExpectEachOnce(dir, 20000);
    // Whatever happened, one more run finds nothing left to do.
    Output again = Keyonce(kRun, dir);
    EXPECT_EQ(again.exit_code, 0) << again.all();
    EXPECT_NE(again.out.find("0 written, 20000 unchanged"), std::string::npos) << again.out;
  }
}

TEST(RecipeLock, LockOfAKilledRunIsTakenOver) {
  fs::path dir = SetupHeld("lock_killed");
  Background first = StartKeyonce(kRun, dir, "first");
  ASSERT_TRUE(WaitForText(first.err, "started.")) << ReadFile(first.err);
  ::kill(first.pid, SIGKILL);
  Finish(first);
  Background second = StartKeyonce(kRun, dir, "second");
  ASSERT_TRUE(WaitForText(second.err, "started.")) << ReadFile(second.err);
  Feed(dir / "in.csv", Csv(500));
  Output b = Finish(second);
  EXPECT_EQ(b.exit_code, 0) << b.all();
  ExpectEachOnce(dir, 500);
  // The killed run is not shown running forever.
  EXPECT_EQ(QueryInt(dir / "state.db", "SELECT count(*) FROM runs WHERE status = 'running'"), 0);
  EXPECT_EQ(QueryInt(dir / "state.db", "SELECT count(*) FROM runs WHERE status = 'failed'"), 1);
  EXPECT_NE(b.err.find("ended without finishing"), std::string::npos) << b.err;
}

TEST(RecipeLock, OtherRecipesOnTheSameStateFileRunAtTheSameTime) {
  fs::path dir = SetupHeld("lock_other_recipe");
  Background first = StartKeyonce(kRun, dir, "first");
  ASSERT_TRUE(WaitForText(first.err, "started.")) << ReadFile(first.err);
  std::string other = kRecipe;
  other.replace(other.find("recipe: guarded"), 15, "recipe: other");
  other.replace(other.find("path: in.csv"), 12, "path: other.csv");
  other.replace(other.find("out/db.sqlite"), 13, "out/o.sqlite");
  other.replace(other.find("out/lines.jsonl"), 15, "out/o.jsonl");
  WriteFile(dir / "other.yaml", other);
  WriteFile(dir / "other.csv", Csv(10));
  Output o = Keyonce({"run", "other.yaml", "--state", "state.db", "--no-progress"}, dir);
  Feed(dir / "in.csv", Csv(10));
  Output a = Finish(first);
  EXPECT_EQ(o.exit_code, 0) << o.all();
  EXPECT_EQ(a.exit_code, 0) << a.all();
}

// --- a state file that knows itself -------------------------------------

// Runs and expects a refusal that names the state file and says what to do;
// nothing may be written to the targets.
void ExpectStateRefused(const fs::path& dir, const std::vector<std::string>& args,
                        const std::string& says) {
  Output o = Keyonce(args, dir);
  EXPECT_EQ(o.exit_code, kExitRefused) << o.all();
  EXPECT_NE(o.err.find(says), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("keyonce state"), std::string::npos) << "says what to do: " << o.err;
  EXPECT_FALSE(fs::exists(dir / "out/lines.jsonl") && LineIds(dir / "out/lines.jsonl").size() > 100)
      << "records written although the state file was refused";
}

TEST(StateFile, EmptyFileIsRefused) {
  fs::path dir = MakeCase("state_empty", 100);
  WriteFile(dir / "state.db", "");
  ExpectStateRefused(dir, kRun, "is empty");
  EXPECT_FALSE(fs::exists(dir / "out/lines.jsonl"));
  EXPECT_EQ(fs::file_size(dir / "state.db"), 0u) << "the empty file is left as it was";
}

TEST(StateFile, FolderThatDoesNotExistIsNotCreated) {
  fs::path dir = MakeCase("state_nofolder", 100);
  ExpectStateRefused(dir, {"run", "guarded.yaml", "--state", "typo/state.db", "--no-progress"},
                     "does not exist");
  EXPECT_FALSE(fs::exists(dir / "typo"));
  EXPECT_FALSE(fs::exists(dir / "out/lines.jsonl"));
}

TEST(StateFile, AnotherApplicationsDatabaseIsRefusedAndLeftUntouched) {
  fs::path dir = MakeCase("state_foreign", 100);
  fs::path db = dir / "state.db";
  Sql(db,
      "CREATE TABLE invoices(id INTEGER PRIMARY KEY, amount REAL);"
      "INSERT INTO invoices(amount) VALUES (10.5), (20);");
  std::string before = ReadFile(db);
  ExpectStateRefused(dir, kRun, "not a keyonce state file");
  EXPECT_EQ(ReadFile(db), before) << "the foreign database was changed";
  EXPECT_FALSE(fs::exists(dir / "state.db-wal")) << "WAL switched on in a foreign database";
  // Reading commands refuse it too, and change nothing.
  Output h2 = Keyonce({"history", "--state", "state.db"}, dir);
  EXPECT_NE(h2.exit_code, 0);
  EXPECT_NE(h2.err.find("not a keyonce state file"), std::string::npos) << h2.all();
  EXPECT_EQ(ReadFile(db), before);
}

TEST(StateFile, MissingJournalTableIsRefused) {
  fs::path dir = MakeCase("state_dropped", 100);
  ASSERT_EQ(Keyonce(kRun, dir).exit_code, 0);
  Sql(dir / "state.db", "DROP TABLE journal");
  ExpectStateRefused(dir, kRun, "journal");
  ExpectEachOnce(dir, 100);
}

TEST(StateFile, FileThatIsNotADatabaseOrCutShortIsRefused) {
  fs::path dir = MakeCase("state_damaged", 3000);
  ASSERT_EQ(Keyonce(kRun, dir).exit_code, 0);
  // Every change checkpointed into the main file, then a copy cut in half.
  Sql(dir / "state.db", "PRAGMA wal_checkpoint(TRUNCATE)");
  std::string whole = ReadFile(dir / "state.db");
  ASSERT_GT(whole.size(), 8192u);
  fs::path other = FreshDir("state_damaged_copy");
  WriteFile(other / "guarded.yaml", kRecipe);
  WriteFile(other / "in.csv", Csv(3000));
  fs::create_directories(other / "out");
  fs::copy_file(dir / "out/db.sqlite", other / "out/db.sqlite");
  fs::copy_file(dir / "out/lines.jsonl", other / "out/lines.jsonl");
  WriteFile(other / "state.db", whole.substr(0, whole.size() / 2));
  Output cut = Keyonce(kRun, other);
  EXPECT_EQ(cut.exit_code, kExitRefused) << cut.all();
  EXPECT_NE(cut.err.find("cut short"), std::string::npos) << cut.err;
  ExpectEachOnce(other, 3000);

  WriteFile(other / "state.db", "this is a text file, not a database\n" + std::string(5000, 'x'));
  Output text = Keyonce(kRun, other);
  EXPECT_EQ(text.exit_code, kExitRefused) << text.all();
  EXPECT_NE(text.err.find("not a SQLite database"), std::string::npos) << text.err;
  ExpectEachOnce(other, 3000);
}

// kill -9 during a checkpoint: SQLite copies the WAL's pages into the main
// file from page 1 on, so the header may already promise pages the file does
// not have yet. The WAL still holds them and SQLite finishes on the next
// open: that is a whole state file, not a copy cut short.
TEST(StateFile, AKillDuringACheckpointIsNotTakenForAFileCutShort) {
  fs::path dir = MakeCase("state_checkpoint", 300);
  ASSERT_EQ(Keyonce(kRun, dir).exit_code, 0);
  Sql(dir / "state.db", "PRAGMA wal_checkpoint(TRUNCATE)");
  fs::path other = FreshDir("state_checkpoint_crash");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir / "state.db").c_str(), &db), SQLITE_OK);
  // The state grows in the WAL only (no checkpoint) ...
  ASSERT_EQ(sqlite3_exec(db,
                         "PRAGMA wal_autocheckpoint=0; BEGIN; "
                         "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                         "WHERE i < 400) INSERT INTO runs(recipe, started_at, status, trigger, "
                         "params) SELECT 'other', '2026-12-06T00:00:00Z', 'completed', 'cli', "
                         "hex(randomblob(1000)) FROM n; COMMIT;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA page_count", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  const uint32_t pages = static_cast<uint32_t>(sqlite3_column_int64(st, 0));
  sqlite3_finalize(st);
  // ... and the process dies while page 1 (and so the header's new page
  // count) is in the main file, the pages after it not yet.
  WriteFile(other / "guarded.yaml", kRecipe);
  WriteFile(other / "in.csv", Csv(300));
  fs::copy(dir / "out", other / "out", fs::copy_options::recursive);
  fs::copy_file(dir / "state.db-wal", other / "state.db-wal");
  std::string main = ReadFile(dir / "state.db");
  sqlite3_close(db);
  const size_t page_size =
      (static_cast<unsigned char>(main[16]) << 8) | static_cast<unsigned char>(main[17]);
  ASSERT_LT(main.size(), pages * page_size) << "the WAL holds the growth";
  for (int i = 0; i < 4; ++i) main[28 + i] = static_cast<char>((pages >> (24 - 8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) main[92 + i] = main[24 + i];  // the page count is valid
  WriteFile(other / "state.db", main);

  Output run = Keyonce(kRun, other);
  EXPECT_EQ(run.exit_code, 0) << run.all();
  EXPECT_NE(run.out.find("0 written"), std::string::npos) << run.out;
  ExpectEachOnce(other, 300);
  Output check = Keyonce({"state", "check", "state.db"}, other);
  EXPECT_EQ(check.exit_code, 0) << check.all();
  EXPECT_NE(check.out.find("runs: 400"), std::string::npos) << check.out;
}

TEST(StateFile, InitStartsAJournalOnPurposeAndCheckReportsIt) {
  fs::path dir = MakeCase("state_init", 50);
  Output init = Keyonce({"state", "init", "state.db"}, dir);
  ASSERT_EQ(init.exit_code, 0) << init.all();
  Output again = Keyonce({"state", "init", "state.db"}, dir);
  EXPECT_NE(again.exit_code, 0) << "init never overwrites a state file";
  EXPECT_NE(again.err.find("already"), std::string::npos) << again.all();
  ASSERT_EQ(Keyonce(kRun, dir).exit_code, 0);
  Output check = Keyonce({"state", "check", "state.db"}, dir);
  EXPECT_EQ(check.exit_code, 0) << check.all();
  for (const char* says : {"state id", "schema version", "guarded", "runs: 1", "journal", "ok"}) {
    EXPECT_NE(check.out.find(says), std::string::npos) << says << " in:\n" << check.out;
  }
  WriteFile(dir / "empty.db", "");
  Output bad = Keyonce({"state", "check", "empty.db"}, dir);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("is empty"), std::string::npos) << bad.all();
  // An empty file (a failed copy) may be replaced by a new journal on purpose.
  Output over = Keyonce({"state", "init", "empty.db"}, dir);
  EXPECT_EQ(over.exit_code, 0) << over.all();
}

TEST(StateFile, TargetWrittenUnderAnotherStateFileIsRefused) {
  fs::path dir = MakeCase("state_other_id", 300);
  ASSERT_EQ(Keyonce(kRun, dir).exit_code, 0);
  // Another journal, started on purpose, meets targets the first one wrote.
  ASSERT_EQ(Keyonce({"state", "init", "new.db"}, dir).exit_code, 0);
  std::vector<std::string> with_new = {"run", "guarded.yaml", "--state", "new.db", "--no-progress"};
  Output o = Keyonce(with_new, dir);
  EXPECT_EQ(o.exit_code, kExitRefused) << o.all();
  EXPECT_NE(o.err.find("another state file"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("--adopt"), std::string::npos) << o.err;
  ExpectEachOnce(dir, 300);
  // Each target kind knows it: the jsonl file alone too.
  std::string jsonl_only = kRecipe;
  jsonl_only.erase(jsonl_only.find("  - name: db"),
                   jsonl_only.find("  - name: lines") - jsonl_only.find("  - name: db"));
  WriteFile(dir / "jsonl_only.yaml", jsonl_only);
  Output j = Keyonce({"run", "jsonl_only.yaml", "--state", "new.db", "--no-progress"}, dir);
  EXPECT_EQ(j.exit_code, kExitRefused) << j.all();
  EXPECT_NE(j.err.find("lines"), std::string::npos) << j.err;
  ExpectEachOnce(dir, 300);
}

TEST(StateFile, AdoptTakesTargetsOverWithoutWritingTwiceWhereTheTargetCanTell) {
  // A table with key columns can be asked whether a record is there.
  std::string keyed = kRecipe;
  keyed.replace(keyed.find("    mode: insert\n"), 17, "    mode: insert\n    key_columns: [id]\n");
  keyed.erase(keyed.find("  - name: lines"));
  fs::path dir = FreshDir("state_adopt");
  WriteFile(dir / "guarded.yaml", keyed);
  WriteFile(dir / "in.csv", Csv(200));
  ASSERT_EQ(Keyonce(kRun, dir).exit_code, 0);
  fs::remove(dir / "state.db");
  fs::remove(dir / "state.db-wal");
  fs::remove(dir / "state.db-shm");
  ASSERT_EQ(Keyonce({"state", "init", "state.db"}, dir).exit_code, 0);
  WriteFile(dir / "in.csv", Csv(250));
  Output refused = Keyonce(kRun, dir);
  EXPECT_EQ(refused.exit_code, kExitRefused) << refused.all();
  Output adopt = Keyonce(With(kRun, {"--adopt"}), dir);
  EXPECT_EQ(adopt.exit_code, 0) << adopt.all();
  EXPECT_NE(adopt.out.find("50 written, 200 unchanged"), std::string::npos) << adopt.out;
  EXPECT_EQ(QueryInt(dir / "out/db.sqlite", "SELECT count(*) FROM t"), 250);
  // From now on the target belongs to the new journal.
  Output next = Keyonce(kRun, dir);
  EXPECT_EQ(next.exit_code, 0) << next.all();
  EXPECT_NE(next.out.find("0 written, 250 unchanged"), std::string::npos) << next.out;
}

TEST(StateFile, StateOlderThanItsTargetsIsRefused) {
  // Last week's backup restored: the targets hold batches the journal never saw.
  fs::path dir = MakeCase("state_restored", 1000);
  ASSERT_EQ(Keyonce(kRun, dir).exit_code, 0);
  Sql(dir / "state.db", "PRAGMA wal_checkpoint(TRUNCATE)");
  fs::copy_file(dir / "state.db", dir / "backup.db");
  WriteFile(dir / "in.csv", Csv(2000));
  ASSERT_EQ(Keyonce(kRun, dir).exit_code, 0);
  fs::remove(dir / "state.db-wal");
  fs::remove(dir / "state.db-shm");
  fs::copy_file(dir / "backup.db", dir / "state.db", fs::copy_options::overwrite_existing);
  Output o = Keyonce(kRun, dir);
  EXPECT_EQ(o.exit_code, kExitRefused) << o.all();
  EXPECT_NE(o.err.find("older than"), std::string::npos) << o.err;
  ExpectEachOnce(dir, 2000);
}

TEST(StateFile, StateFileOfAnEarlierVersionIsUpgradedInPlace) {
  // The schema keyonce 0.1 wrote, with no application id or version.
  fs::path dir = MakeCase("state_legacy", 100);
  Sql(dir / "state.db", R"sql(
CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE runs(id INTEGER PRIMARY KEY, recipe TEXT NOT NULL, started_at TEXT NOT NULL,
  finished_at TEXT, status TEXT NOT NULL, trigger TEXT, params TEXT, counts TEXT, exit_code INTEGER);
CREATE TABLE targets(id INTEGER PRIMARY KEY, recipe TEXT NOT NULL, name TEXT NOT NULL,
  UNIQUE(recipe, name));
CREATE TABLE journal(target INTEGER NOT NULL, key BLOB NOT NULL, written BLOB,
  doubt INTEGER NOT NULL DEFAULT 0, captures TEXT, run INTEGER, updated_at INTEGER,
  PRIMARY KEY(target, key)) WITHOUT ROWID;
CREATE TABLE intents(id INTEGER PRIMARY KEY, target INTEGER NOT NULL, key BLOB NOT NULL,
  hash BLOB NOT NULL, batch INTEGER NOT NULL, run INTEGER, captures TEXT);
CREATE TABLE batches(id INTEGER PRIMARY KEY, target INTEGER NOT NULL, run INTEGER NOT NULL,
  state INTEGER NOT NULL, token_before TEXT, token_after TEXT, created_at INTEGER);
CREATE TABLE quarantine(id INTEGER PRIMARY KEY, recipe TEXT NOT NULL, run INTEGER, ref TEXT,
  stage TEXT NOT NULL, target TEXT, position TEXT, reason TEXT NOT NULL, record TEXT,
  status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT);
CREATE TABLE watermarks(recipe TEXT PRIMARY KEY, value TEXT, run INTEGER);
INSERT INTO meta VALUES('pseudonym_key', '00112233445566778899aabbccddeeff');
)sql");
  Output o = Keyonce(kRun, dir);
  EXPECT_EQ(o.exit_code, 0) << o.all();
  ExpectEachOnce(dir, 100);
  EXPECT_EQ(QueryInt(dir / "state.db", "PRAGMA application_id"), 0x4B594F31);
  EXPECT_GE(QueryInt(dir / "state.db", "PRAGMA user_version"), 2);
  Output again = Keyonce(kRun, dir);
  EXPECT_NE(again.out.find("0 written, 100 unchanged"), std::string::npos) << again.all();
}

// --- a retry is the same run's work -------------------------------------

// Records whose department is not in the lookup table are quarantined; a
// person adds the department and retries them.
const char* kParamRecipe = R"(recipe: routed
params:
  tag: {type: string, default: a}
  dir: {type: string, required: true}
source:
  type: csv
  path: in.csv
  delimiter: ";"
tables:
  departments: {type: csv, path: departments.csv, delimiter: ";", key: code}
steps:
  - lookup:
      table: departments
      key: "{{ record.dep }}"
      set: {department: "{{ lookup.name }}"}
      on_missing: quarantine
key: "{{ record.id }}"
targets:
  - name: out
    type: jsonl
    path: "{{ params.dir }}/{{ params.tag }}.jsonl"
    create_dirs: true
    body: {id: "{{ record.id }}", department: "{{ record.department }}"}
)";

fs::path SetupRouted(const std::string& name) {
  fs::path dir = FreshDir(name);
  WriteFile(dir / "routed.yaml", kParamRecipe);
  WriteFile(dir / "in.csv", "id;dep\n1;D1\n2;D2\n3;D9\n");
  WriteFile(dir / "departments.csv", "code;name\nD1;One\nD2;Two\n");
  Output first = Keyonce({"run", "routed.yaml", "--state", "state.db", "--no-progress", "--param",
                          "tag=b", "--param", "dir=outdir"},
                         dir);
  EXPECT_EQ(first.exit_code, 3) << first.all();
  EXPECT_EQ(LineIds(dir / "outdir/b.jsonl").size(), 2u);
  // The person adds the missing department.
  WriteFile(dir / "departments.csv", "code;name\nD1;One\nD2;Two\nD9;Nine\n");
  return dir;
}

TEST(QuarantineRetry, KeepsTheParametersOfTheRunThatReadTheRecord) {
  fs::path dir = SetupRouted("retry_params");
  Output retry =
      Keyonce({"quarantine", "routed.yaml", "--state", "state.db", "--retry", "all"}, dir);
  EXPECT_EQ(retry.exit_code, 0) << retry.all();
  EXPECT_EQ(retry.all().find("is required"), std::string::npos) << retry.all();
  auto b = LineIds(dir / "outdir/b.jsonl");
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(b["3"], 1);
  EXPECT_FALSE(fs::exists(dir / "outdir/a.jsonl")) << "written where the recipe's default points";
  Output list = Keyonce({"quarantine", "routed", "--state", "state.db"}, dir);
  EXPECT_NE(list.out.find("0 record(s)"), std::string::npos) << list.out;
}

TEST(QuarantineRetry, OperatorMayOverrideAParameter) {
  fs::path dir = SetupRouted("retry_override");
  Output retry = Keyonce(
      {"quarantine", "routed.yaml", "--state", "state.db", "--retry", "all", "--param", "tag=c"},
      dir);
  EXPECT_EQ(retry.exit_code, 0) << retry.all();
  EXPECT_EQ(LineIds(dir / "outdir/c.jsonl").size(), 1u);
  EXPECT_EQ(LineIds(dir / "outdir/b.jsonl").size(), 2u);
}

TEST(QuarantineRetry, RecordsFromRunsWithOtherParametersEachGoWhereTheirRunWould) {
  fs::path dir = SetupRouted("retry_groups");
  // A second run with other parameters quarantines the same kind of record.
  WriteFile(dir / "departments.csv", "code;name\nD1;One\nD2;Two\n");
  WriteFile(dir / "in.csv", "id;dep\n4;D9\n");
  Output second = Keyonce({"run", "routed.yaml", "--state", "state.db", "--no-progress", "--param",
                           "tag=e", "--param", "dir=outdir"},
                          dir);
  EXPECT_EQ(second.exit_code, 3) << second.all();
  WriteFile(dir / "departments.csv", "code;name\nD1;One\nD2;Two\nD9;Nine\n");
  Output retry =
      Keyonce({"quarantine", "routed.yaml", "--state", "state.db", "--retry", "all"}, dir);
  EXPECT_EQ(retry.exit_code, 0) << retry.all();
  EXPECT_EQ(LineIds(dir / "outdir/b.jsonl")["3"], 1);
  EXPECT_EQ(LineIds(dir / "outdir/e.jsonl")["4"], 1);
  EXPECT_EQ(LineIds(dir / "outdir/b.jsonl").count("4"), 0u);
}

}  // namespace
}  // namespace keyonce::testing_util
