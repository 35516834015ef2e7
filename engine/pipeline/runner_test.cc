// Engine behaviour with real local connectors (jsonl, sqlite) and, for the
// retry and in-doubt policies, a scripted target registered only here.
#include "pipeline/runner.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <new>
#include <set>
#include <sstream>
#include <thread>

#include "recipe/loader.h"

namespace keyonce {
namespace {

// The rows of a query on a SQLite file, each column as text ("" for NULL).
using Table = std::vector<std::vector<std::string>>;
Table Rows(const std::filesystem::path& file, const char* sql) {
  Table rows;
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    auto& row = rows.emplace_back();
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      const auto* text = sqlite3_column_text(st, c);
      row.emplace_back(text ? reinterpret_cast<const char*>(text) : "");
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

// A target whose behaviour the test scripts: how many transient failures
// each key gets before succeeding, keys that fail permanently, and whether
// Recover can tell what happened.
struct Script {
  std::map<std::string, int> transient_failures;
  std::set<std::string> permanent;
  std::vector<std::string> written;
  bool recover_known = true;
  bool idempotent = false;
  bool concurrent = false;
  bool in_order = false;  // writes_in_order: WriteMany returns after the first failed write
  double retry_after = 0;
  double write_seconds = 0;  // each write takes this long
  int commits = 0;
  std::vector<std::vector<std::string>> calls;  // keys of each WriteMany call
  std::string out_of_memory;                    // writing this key throws std::bad_alloc
  std::set<std::string> lost_answer;            // the write may have happened: in doubt (once)
  std::map<std::string, int> lost_answer_at;    // ... the n-th write of this key (1: the first)
  std::map<std::string, int> writes_of;         // writes tried, by key
  std::string stop_at;                          // writing this key: the target cannot go on (once)
  bool open_fails = false;                      // Open fails: the service is down
  // The scripted source: records {"id": "1"} ... {"id": "<records>"}.
  int records = 0;
  int fail_at = 0;   // reading this record fails (the source cannot go on)
  int throw_at = 0;  // reading this record throws std::bad_alloc
  // Source::Acknowledge calls: (items, end), and for each the quarantine
  // rows the state file held at that moment (read by another connection).
  std::vector<std::pair<uint64_t, bool>> acks;
  std::vector<int> quarantined_at_ack;
  std::vector<std::vector<std::string>> written_at_ack;
  std::filesystem::path state;
  bool ack_fails = false;
};
Script* g_script = nullptr;
// Written by the writing stage, read by the reading stage (own threads).
std::atomic<int> g_writes{0};
std::atomic<int> g_most_ahead{0};  // most records read but not yet written

class ScriptedTarget : public Target {
 public:
  TargetTraits Traits() const override {
    TargetTraits t;
    t.idempotent = g_script->idempotent;
    t.concurrent = g_script->concurrent;
    t.writes_in_order = g_script->in_order;
    return t;
  }
  std::vector<WriteResult> WriteMany(const std::vector<WriteOp>& ops) override {
    std::vector<std::string> keys;
    for (const auto& op : ops) keys.push_back(op.key);
    g_script->calls.push_back(keys);
    if (!g_script->in_order) return Target::WriteMany(ops);
    std::vector<WriteResult> out;
    for (const auto& op : ops) {
      out.push_back(Write(op));
      if (!out.back().status.ok()) break;
    }
    return out;
  }
  Status Open(const RunContext&) override {
    return g_script->open_fails ? Status::Io("the service is down") : Status::OK();
  }
  Result<Value> Render(const WriteOp& op) override { return Value(op.key); }
  WriteResult Write(const WriteOp& op) override {
    auto it = g_script->transient_failures.find(op.key);
    if (it != g_script->transient_failures.end() && it->second > 0) {
      --it->second;
      return {Status::Transient("service unavailable (503)"), {}, g_script->retry_after};
    }
    if (g_script->permanent.count(op.key)) return {Status::Permanent("rejected (400)"), {}};
    if (!g_script->stop_at.empty() && op.key == g_script->stop_at) {
      g_script->stop_at.clear();
      WriteResult r;
      r.status = Status::Permanent("the login was refused");
      r.stop_run = true;
      return r;
    }
    const int nth = ++g_script->writes_of[op.key];
    if (g_script->lost_answer.erase(op.key) ||
        (g_script->lost_answer_at.count(op.key) && g_script->lost_answer_at[op.key] == nth)) {
      WriteResult r{Status::Permanent("the connection was lost after the submit"), {}};
      r.in_doubt = true;
      return r;
    }
    if (op.key == g_script->out_of_memory) throw std::bad_alloc();
    if (g_script->write_seconds > 0) {
      std::this_thread::sleep_for(std::chrono::duration<double>(g_script->write_seconds));
    }
    g_script->written.push_back(op.key);
    ++g_writes;
    return {Status::OK(), Value({{"id", "case-" + op.key}})};
  }
  Result<CommitResult> Commit(uint64_t, bool) override {
    ++g_script->commits;
    return CommitResult{true, ""};
  }
  Result<RecoverResult> Recover(const RunContext&, uint64_t, const std::string&) override {
    return RecoverResult{g_script->recover_known, 0};
  }
};

class ScriptedSource : public Source {
 public:
  Status Open(const RunContext&) override { return Status::OK(); }
  Result<bool> Next(SourceItem* item) override {
    if (next_ > g_script->records) return false;
    const int k = next_++;
    if (k == g_script->fail_at) return Status::Io("the export was cut off");
    if (k == g_script->throw_at) throw std::bad_alloc();
    int ahead = k - g_writes.load();
    for (int most = g_most_ahead.load(); ahead > most;) {
      if (g_most_ahead.compare_exchange_weak(most, ahead)) break;
    }
    item->record = {{"id", std::to_string(k)}};
    item->position = "record " + std::to_string(k);
    return true;
  }
  Status Acknowledge(uint64_t items, bool end) override {
    g_script->acks.emplace_back(items, end);
    g_script->written_at_ack.push_back(g_script->written);
    if (!g_script->state.empty()) {
      g_script->quarantined_at_ack.push_back(
          static_cast<int>(Rows(g_script->state, "SELECT id FROM quarantine").size()));
    }
    return g_script->ack_fails ? Status::Io("the mail server went away") : Status::OK();
  }

 private:
  int next_ = 1;
};

// One connector, both roles: `type: scripted` as the source and as a target.
ConnectorDef ScriptedDef() {
  ConnectorDef d;
  d.name = "scripted";
  d.summary = "Test source and target.";
  d.source = ComponentSpec{"scripted", {}, ""};
  d.make_source = [](const Settings&) -> Result<std::unique_ptr<Source>> {
    return std::unique_ptr<Source>(new ScriptedSource());
  };
  d.target = ComponentSpec{"scripted", {}, ""};
  d.make_target = [](const Settings&) -> Result<std::unique_ptr<Target>> {
    return std::unique_ptr<Target>(new ScriptedTarget());
  };
  return d;
}
KEYONCE_REGISTER_CONNECTOR(ScriptedDef());

class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::path(testing::TempDir()) /
        ("runner_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    script_ = Script();
    g_script = &script_;
    g_writes = 0;
    g_most_ahead = 0;
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  std::string Read(const std::string& name) {
    std::ifstream in(dir_ / name, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  std::shared_ptr<const Recipe> Load(const std::string& text) {
    Diagnostics d;
    auto r = LoadRecipeText((dir_ / "r.yaml").string(), text, dir_, &d);
    for (const auto& x : d.items()) ADD_FAILURE() << x.ToString();
    return r;
  }
  RunSummary Run(const Recipe& r, std::map<std::string, std::string> params = {}) {
    RunOptions o;
    o.state_path = dir_ / "state.db";
    o.params = std::move(params);
    o.out = &out_;
    o.err = &err_;
    o.spill_intents = spill_intents_;
    auto s = RunRecipe(r, o);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? *s : RunSummary{};
  }
  // Records 1..script_.records from the scripted source, batches of two,
  // to the scripted target.
  std::shared_ptr<const Recipe> ScriptedSourceRecipe(const std::string& name) {
    return Load("recipe: " + name +
                "\nsource: {type: scripted}\nkey: \"{{ record.id }}\"\nbatch_records: 2\n"
                "targets:\n  - {name: api, type: scripted}\n");
  }
  static int Lines(const std::string& s) {
    return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
  }

  std::filesystem::path dir_;
  Script script_;
  std::ostringstream out_, err_;
  size_t spill_intents_ = RunOptions{}.spill_intents;
};

const char* kTwoTargets = R"(recipe: two
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
batch_records: 2
targets:
  - {name: file, type: jsonl, path: out.jsonl}
  - name: db
    type: sqlite
    path: out.db
    table: t
    create_table: true
    key_columns: [id]
    columns: {id: "{{ record.id }}", v: "{{ record.v }}"}
)";

TEST_F(RunnerTest, RerunAfterSuccessWritesNothing) {
  Write("in.jsonl",
        "{\"id\":\"1\",\"v\":\"a\"}\n{\"id\":\"2\",\"v\":\"b\"}\n{\"id\":\"3\",\"v\":\"c\"}\n");
  auto r = Load(kTwoTargets);
  ASSERT_TRUE(r);
  auto s1 = Run(*r);
  EXPECT_EQ(s1.exit_code, kExitOk);
  EXPECT_EQ(s1.targets[0].second.written, 3);
  EXPECT_EQ(s1.targets[1].second.written, 3);
  auto db_time = std::filesystem::last_write_time(dir_ / "out.db");
  auto file_time = std::filesystem::last_write_time(dir_ / "out.jsonl");
  auto s2 = Run(*r);
  EXPECT_EQ(std::filesystem::last_write_time(dir_ / "out.db"), db_time)
      << "a rerun leaves targets untouched";
  EXPECT_EQ(std::filesystem::last_write_time(dir_ / "out.jsonl"), file_time);
  EXPECT_EQ(s2.targets[0].second.written, 0);
  EXPECT_EQ(s2.targets[0].second.unchanged, 3);
  EXPECT_EQ(s2.targets[1].second.unchanged, 3);
  EXPECT_EQ(Lines(Read("out.jsonl")), 3);
}

TEST_F(RunnerTest, ChangedRecordFollowsEachTargetsPolicy) {
  Write("in.jsonl", "{\"id\":\"1\",\"v\":\"a\"}\n{\"id\":\"2\",\"v\":\"b\"}\n");
  auto r = Load(kTwoTargets);
  ASSERT_TRUE(r);
  Run(*r);
  Write("in.jsonl", "{\"id\":\"1\",\"v\":\"a\"}\n{\"id\":\"2\",\"v\":\"CHANGED\"}\n");
  auto s = Run(*r);
  // The file target appends the new version; the sqlite target updates in place.
  EXPECT_EQ(s.targets[0].second.written, 1);
  EXPECT_EQ(s.targets[1].second.updated, 1);
  EXPECT_EQ(Lines(Read("out.jsonl")), 3);
  EXPECT_EQ(Rows(dir_ / "out.db", "SELECT count(*), (SELECT v FROM t WHERE id = '2') FROM t"),
            (Table{{"2", "CHANGED"}}));
}

const char* kScripted = R"(recipe: scripted
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
on_error: {retry_attempts: 3, backoff_seconds: 0.001}
targets:
  - name: svc
    type: scripted
    capture: {case_id: "{{ reply.id }}"}
  - name: file
    type: jsonl
    path: out.jsonl
    body: {id: "{{ record.id }}", case: "{{ captures.svc.case_id }}"}
)";

TEST_F(RunnerTest, RetriesTransientErrorsThenSucceeds) {
  Write("in.jsonl", "{\"id\":\"1\"}\n{\"id\":\"2\"}\n");
  script_.transient_failures["1"] = 2;
  auto r = Load(kScripted);
  ASSERT_TRUE(r);
  auto s = Run(*r);
  EXPECT_EQ(s.exit_code, kExitOk);
  EXPECT_EQ(script_.written, (std::vector<std::string>{"1", "2"}));
  EXPECT_NE(err_.str().find("attempt 1 of 3"), std::string::npos);
  // The later target used the earlier target's capture.
  EXPECT_EQ(Read("out.jsonl"),
            "{\"id\":\"1\",\"case\":\"case-1\"}\n{\"id\":\"2\",\"case\":\"case-2\"}\n");
}

TEST_F(RunnerTest, ConcurrentTargetGetsManyWritesPerCallAndRetriesOnlyTheFailedOnes) {
  // Keys 1..5, key 3 twice (a changed record): one call must never hold a
  // key twice, since its writes may run at the same time.
  Write("in.jsonl",
        "{\"id\":\"1\"}\n{\"id\":\"2\"}\n{\"id\":\"3\"}\n{\"id\":\"4\"}\n"
        "{\"id\":\"3\",\"v\":2}\n{\"id\":\"5\"}\n");
  script_.concurrent = true;
  script_.transient_failures["2"] = 1;
  script_.retry_after = 0.3;  // the system asks for 300 ms
  auto r = Load(std::string(kScripted) + "batch_records: 100\n");
  ASSERT_TRUE(r);
  auto t0 = std::chrono::steady_clock::now();
  auto s = Run(*r);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(s.exit_code, kExitOk);
  ASSERT_GE(script_.calls.size(), 2u);
  EXPECT_EQ(script_.calls[0], (std::vector<std::string>{"1", "2", "3", "4", "5"}));
  // The second round: the transient failure and the key's second write.
  EXPECT_EQ(script_.calls[1], (std::vector<std::string>{"2", "3"}));
  EXPECT_EQ(script_.calls.size(), 2u);
  EXPECT_GE(secs, 0.3) << "Retry-After was not honoured";
  EXPECT_EQ(std::count(script_.written.begin(), script_.written.end(), "2"), 1);
}

TEST_F(RunnerTest, SequentialTargetGetsOneWritePerCallInOrder) {
  Write("in.jsonl", "{\"id\":\"1\"}\n{\"id\":\"2\"}\n{\"id\":\"3\"}\n");
  script_.transient_failures["2"] = 1;
  auto r = Load(kScripted);
  ASSERT_TRUE(r);
  Run(*r);
  for (const auto& c : script_.calls) EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(script_.written, (std::vector<std::string>{"1", "2", "3"}));
}

TEST_F(RunnerTest, AnInOrderTargetGetsRunsOfWritesAndWhatFollowsAFailureComesAfterIt) {
  // Key 3 twice (a changed record): its two writes stay in order.
  Write("in.jsonl",
        "{\"id\":\"1\"}\n{\"id\":\"2\"}\n{\"id\":\"3\"}\n{\"id\":\"4\"}\n"
        "{\"id\":\"3\",\"v\":2}\n{\"id\":\"5\"}\n");
  script_.in_order = true;
  script_.transient_failures["2"] = 1;
  script_.permanent.insert("4");
  auto r = Load(std::string(kScripted) + "batch_records: 100\n");
  ASSERT_TRUE(r);
  auto s = Run(*r);
  EXPECT_EQ(s.exit_code, kExitQuarantined);
  EXPECT_EQ(s.quarantined, 1);
  using Keys = std::vector<std::string>;
  EXPECT_EQ(script_.calls, (std::vector<Keys>{{"1", "2", "3", "4", "3", "5"},
                                              {"2"},  // the retry, alone, before what follows
                                              {"3", "4", "3", "5"},
                                              {"3", "5"}}));
  EXPECT_EQ(script_.written, (Keys{"1", "2", "3", "3", "5"}));
  EXPECT_EQ(Lines(Read("out.jsonl")), 5);
}

TEST_F(RunnerTest, PermanentErrorQuarantinesOneRecordAndTheRunGoesOn) {
  Write("in.jsonl", "{\"id\":\"1\"}\n{\"id\":\"2\"}\n{\"id\":\"3\"}\n");
  script_.permanent.insert("2");
  script_.transient_failures["3"] = 5;  // more than the attempts
  auto r = Load(kScripted);
  ASSERT_TRUE(r);
  auto s = Run(*r);
  EXPECT_EQ(s.exit_code, kExitQuarantined);
  EXPECT_EQ(s.quarantined, 2);
  EXPECT_EQ(script_.written, (std::vector<std::string>{"1"}));
  // Records that failed at the first target never reach the second.
  EXPECT_EQ(Lines(Read("out.jsonl")), 1);
  // A rerun once the service is fixed writes only what is missing.
  script_.permanent.clear();
  script_.transient_failures.clear();
  auto s2 = Run(*r);
  EXPECT_EQ(s2.exit_code, kExitOk);
  EXPECT_EQ(script_.written, (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(Lines(Read("out.jsonl")), 3);
}

// What the quarantine keeps is the record as read, however the steps changed
// it before it failed (at a later step or at a target), so that a person can
// fix it and retry it: a replaced field has its value as read, a field the
// steps added is not there, the fields keep their order. The same when a
// step (drop) rules out undoing the steps.
TEST_F(RunnerTest, TheQuarantineKeepsTheRecordAsReadWhateverTheStepsChanged) {
  const std::string rec1 = R"({"id":"1","navn":"Åse","timer":"7,5","afd":"Nord"})";
  const std::string rec2 = R"({"id":"2","navn":"Bo","timer":"1.110,5","afd":"Syd"})";
  const std::string rec3 = R"({"id":"3","navn":"Ea","timer":"3","afd":"lukket"})";
  Write("in.jsonl", rec1 + "\n" + rec2 + "\n" + rec3 + "\n");
  script_.permanent.insert("2");  // rejected at the target
  const std::string steps = R"(steps:
  - set: {timer: "{{ record.timer | number(',') }}", navn: "{{ record.navn | upper }}",
          ekstra: "x"}
  - set: {timer: "{{ record.timer }} t", afd: "{{ record.afd | upper }}"}
  - validate: {afd: {one_of: [NORD, SYD]}}
)";
  for (const std::string last_step : {"", "  - drop: [ekstra]\n"}) {
    SCOPED_TRACE(last_step.empty() ? "set, set, validate" : "and a drop");
    std::filesystem::remove(dir_ / "state.db");
    std::filesystem::remove(dir_ / "out.jsonl");
    std::filesystem::remove(dir_ / ".out.jsonl.keyonce");  // whose state file it knows
    script_.written.clear();
    auto r = Load(std::string(kScripted) + steps + last_step);
    ASSERT_TRUE(r);
    auto s = Run(*r);
    EXPECT_EQ(s.exit_code, kExitQuarantined) << err_.str();
    EXPECT_EQ(s.quarantined, 2);
    EXPECT_EQ(script_.written, (std::vector<std::string>{"1"}));
    EXPECT_EQ(Rows(dir_ / "state.db", "SELECT stage, record FROM quarantine ORDER BY position"),
              (Table{{"target", rec2}, {"step", rec3}}));
  }
}

TEST_F(RunnerTest, CapturesSurviveIntoLaterRuns) {
  Write("in.jsonl", "{\"id\":\"1\"}\n");
  script_.permanent.insert("never");
  auto r = Load(R"(recipe: caps
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
targets:
  - name: svc
    type: scripted
    on_change: skip
    capture: {case_id: "{{ reply.id }}"}
  - name: file
    type: jsonl
    path: out.jsonl
    when: "{{ record.ready == 'yes' }}"
    body: {case: "{{ captures.svc.case_id }}"}
)");
  ASSERT_TRUE(r);
  Run(*r);
  EXPECT_EQ(Read("out.jsonl"), "");
  Write("in.jsonl", "{\"id\":\"1\",\"ready\":\"yes\"}\n");
  Run(*r);
  // The service was not called again, yet its case id from the first run was used.
  EXPECT_EQ(script_.written.size(), 1u);
  EXPECT_EQ(Read("out.jsonl"), "{\"case\":\"case-1\"}\n");
}

TEST_F(RunnerTest, WatermarkIsStoredAndOffered) {
  Write("in.jsonl", "{\"id\":\"1\",\"t\":\"2026-01-02\"}\n{\"id\":\"2\",\"t\":\"2026-03-01\"}\n");
  auto r = Load(R"(recipe: wm
source: {type: jsonl, path: in.jsonl, watermark: "{{ record.t }}"}
key: "{{ record.id }}"
targets:
  - name: file
    type: jsonl
    path: out.jsonl
    body: {id: "{{ record.id }}", since: "{{ state.watermark }}"}
)");
  ASSERT_TRUE(r);
  Run(*r);
  Write("in.jsonl", "{\"id\":\"3\",\"t\":\"2026-04-01\"}\n");
  Run(*r);
  EXPECT_NE(Read("out.jsonl").find("{\"id\":\"3\",\"since\":\"2026-03-01\"}"), std::string::npos);
}

TEST_F(RunnerTest, ParamsAreCheckedAndNamed) {
  auto r = Load(R"(recipe: params
params:
  cpr: {type: string, required: true, pattern: '^[0-9]{6}-?[0-9]{4}$', label: Cpr-nummer}
  day: {type: date}
  n: {type: int, default: 5}
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
targets:
  - {name: file, type: jsonl, path: out.jsonl}
)");
  ASSERT_TRUE(r);
  auto missing = ResolveParams(*r, {});
  EXPECT_EQ(missing.status().message(), "parameter 'cpr' (Cpr-nummer) is required");
  auto bad = ResolveParams(*r, {{"cpr", "12345"}});
  EXPECT_EQ(bad.status().message().find("12345"), std::string::npos);
  auto typo = ResolveParams(*r, {{"cpr", "010203-1234"}, {"dya", "x"}});
  EXPECT_EQ(typo.status().message(), "unknown parameter; did you mean 'day'?");
  auto stranger = ResolveParams(*r, {{"cpr", "010203-1234"}, {"010203-1234", "x"}});
  EXPECT_EQ(stranger.status().message(),
            "unknown parameter; the recipe's parameters are 'cpr', 'day', 'n'");
  auto ok = ResolveParams(*r, {{"cpr", "010203-1234"}, {"day", "24-12-2026"}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->at("day"), "2026-12-24");
  EXPECT_EQ(ok->at("n"), 5);
  EXPECT_FALSE(ResolveParams(*r, {{"cpr", "010203-1234"}, {"day", "31-02-2026"}}).ok());
}

// Leaves record "1" journaled as an intent in a batch that never confirmed:
// its journal row (in the journal, or a recent run the run's end left)
// becomes the batch's one intent (key and content hash).
void SimulateCrashedBatch(const std::filesystem::path& state) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(state.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "SELECT key, written FROM journal UNION ALL "
                               "SELECT key, written FROM journal_recent",
                               -1, &s, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  std::string intent(static_cast<const char*>(sqlite3_column_blob(s, 0)), 16);
  intent.append(static_cast<const char*>(sqlite3_column_blob(s, 1)), 16);
  sqlite3_finalize(s);
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "INSERT INTO batches(id, target, run, state, intents) "
                               "VALUES(999, 1, 1, 0, ?)",
                               -1, &s, nullptr),
            SQLITE_OK);
  sqlite3_bind_blob(s, 1, intent.data(), static_cast<int>(intent.size()), SQLITE_TRANSIENT);
  ASSERT_EQ(sqlite3_step(s), SQLITE_DONE);
  sqlite3_finalize(s);
  ASSERT_EQ(sqlite3_exec(db, "DELETE FROM journal; DELETE FROM journal_recent", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
}

TEST_F(RunnerTest, InDoubtWritesToIdempotentTargetsAreRewritten) {
  Write("in.jsonl", "{\"id\":\"1\"}\n");
  script_.idempotent = true;
  auto r = Load(R"(recipe: doubt
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
targets:
  - {name: svc, type: scripted}
)");
  ASSERT_TRUE(r);
  Run(*r);
  SimulateCrashedBatch(dir_ / "state.db");
  script_.recover_known = false;
  script_.written.clear();
  auto s = Run(*r);
  EXPECT_EQ(s.exit_code, kExitOk);
  EXPECT_EQ(s.in_doubt, 0);
  EXPECT_EQ(script_.written, (std::vector<std::string>{"1"}));  // an upsert may be repeated safely
}

TEST_F(RunnerTest, InDoubtWritesAreQuarantinedUntilAPersonRetries) {
  Write("in.jsonl", "{\"id\":\"1\"}\n");
  auto r = Load(R"(recipe: doubt
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
targets:
  - {name: svc, type: scripted}
)");
  ASSERT_TRUE(r);
  Run(*r);  // creates the store and the journal row
  SimulateCrashedBatch(dir_ / "state.db");
  script_.recover_known = false;
  script_.written.clear();
  auto s = Run(*r);
  EXPECT_EQ(s.in_doubt, 1);
  EXPECT_EQ(s.exit_code, kExitQuarantined);
  EXPECT_TRUE(script_.written.empty());  // never blindly repeated
  auto again = Run(*r);
  EXPECT_EQ(again.in_doubt, 1) << "still in doubt until a person decides";
  EXPECT_TRUE(script_.written.empty());

  // A person checked the target and retries the record: now it is written, once.
  auto open =
      Rows(dir_ / "state.db", "SELECT id FROM quarantine WHERE stage='in_doubt' AND status='open'");
  ASSERT_EQ(open.size(), 1u);
  const int64_t id = std::stoll(open[0][0]);
  RunOptions o;
  o.state_path = dir_ / "state.db";
  o.out = &out_;
  o.err = &err_;
  o.retry_quarantine = {id};
  auto retried = RunRecipe(*r, o);
  ASSERT_TRUE(retried.ok());
  EXPECT_EQ(retried->exit_code, kExitOk);
  EXPECT_EQ(script_.written, (std::vector<std::string>{"1"}));
  auto last = Run(*r);
  EXPECT_EQ(last.exit_code, kExitOk);
  EXPECT_EQ(script_.written.size(), 1u);
}

TEST_F(RunnerTest, AWriteWhoseOutcomeIsUnknownIsNeverRepeatedByALaterRun) {
  Write("in.jsonl", "{\"id\":\"1\"}\n{\"id\":\"2\"}\n");
  auto r = Load(R"(recipe: lost
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
targets:
  - {name: svc, type: scripted}
)");
  ASSERT_TRUE(r);
  script_.lost_answer = {"1"};
  auto s = Run(*r);
  EXPECT_EQ(s.in_doubt, 1);
  EXPECT_EQ(s.exit_code, kExitQuarantined);
  EXPECT_EQ(script_.written, (std::vector<std::string>{"2"}));
  EXPECT_NE(err_.str().find("may have arrived"), std::string::npos) << err_.str();
  // The source still has it, the target could now take it: still not written.
  auto again = Run(*r);
  EXPECT_EQ(again.in_doubt, 1) << "in doubt until Check or a person decides";
  EXPECT_EQ(script_.written, (std::vector<std::string>{"2"}));
}

// The journal's doubt must outlive the merge of the key's earlier write in
// the same run (that merge once erased it, and the next run wrote it again).
TEST_F(RunnerTest, AKeysSecondWriteInARunWhoseOutcomeIsUnknownIsNeverRepeatedByALaterRun) {
  Write("in.jsonl", "{\"id\":\"1\",\"v\":\"a\"}\n{\"id\":\"2\"}\n{\"id\":\"1\",\"v\":\"b\"}\n");
  auto r = Load(R"(recipe: lost-twice
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
batch_records: 1
targets:
  - {name: svc, type: scripted}
)");
  ASSERT_TRUE(r);
  script_.lost_answer_at = {{"1", 2}};
  auto s = Run(*r);
  EXPECT_EQ(s.in_doubt, 1);
  EXPECT_EQ(script_.written, (std::vector<std::string>{"1", "2"}));
  auto again = Run(*r);
  EXPECT_EQ(script_.written, (std::vector<std::string>{"1", "2"}))
      << "key 1 is in doubt until Check or a person decides";
  EXPECT_GE(again.in_doubt, 1);
}

// A long run spills the journal on a thread of its own while the next batch
// is written. A write that fails, or whose outcome is unknown, in that batch
// changes the journal only once the spill is over: here the doubt of a key
// whose first write is in the very batch being spilled, found while it is
// (the second batch is two records, written long before 40,000 intents are).
TEST_F(RunnerTest, WritesThatFailWhileTheJournalSpillsAreJournaledOnceTheSpillIsOver) {
  std::string in;
  for (int i = 1; i <= 400; ++i) in += "{\"id\":\"" + std::to_string(i) + "\"}\n";
  in += "{\"id\":\"250\",\"v\":\"b\"}\n{\"id\":\"450\"}\n";
  Write("in.jsonl", in);
  auto r = Load(R"(recipe: spill
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
batch_records: 400
targets:
  - {name: svc, type: scripted, on_change: insert_new}
)");
  ASSERT_TRUE(r);
  spill_intents_ = 400;  // the first batch spills while the second is written
  script_.lost_answer_at = {{"250", 2}};
  script_.permanent = {"450"};
  auto s = Run(*r);
  EXPECT_EQ(s.in_doubt, 1);
  EXPECT_EQ(s.quarantined, 2);
  EXPECT_EQ(script_.written.size(), 400u);
  script_.written.clear();
  script_.permanent.clear();
  auto again = Run(*r);
  EXPECT_EQ(script_.written, (std::vector<std::string>{"450"}))
      << "only the failed write again: the doubt holds, and nothing spilled is written twice";
  EXPECT_EQ(again.in_doubt, 2) << "both records of key 250 wait for a person";
  auto third = Run(*r);
  EXPECT_EQ(script_.written, (std::vector<std::string>{"450"}));
  EXPECT_EQ(third.in_doubt, 2);
}

// The source is read while the targets get ready. A run whose targets cannot
// drops what it read: a record found bad is quarantined once, by the run that
// goes on to write.
TEST_F(RunnerTest, ARunWhoseTargetsCannotOpenKeepsNothingOfWhatItRead) {
  Write("in.jsonl", "{\"id\":\"1\"}\n{\"id\":\"2\",\"a\":1,\"b\":2}\n");
  auto r = Load(R"(recipe: down
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
limits: {columns: 2}
targets:
  - {name: svc, type: scripted}
)");
  ASSERT_TRUE(r);
  auto quarantined = [&] { return Rows(dir_ / "state.db", "SELECT count(*) FROM quarantine"); };
  script_.open_fails = true;
  auto s = Run(*r);
  EXPECT_EQ(s.status, "failed");
  EXPECT_NE(s.error.find("the service is down"), std::string::npos) << s.error;
  EXPECT_EQ(s.read, 0);
  EXPECT_EQ(s.quarantined, 0);
  EXPECT_EQ(quarantined(), (Table{{"0"}}));
  script_.open_fails = false;
  auto again = Run(*r);
  EXPECT_EQ(again.quarantined, 1);
  EXPECT_EQ(script_.written, (std::vector<std::string>{"1"}));
  EXPECT_EQ(quarantined(), (Table{{"1"}}));
}

TEST_F(RunnerTest, ATargetThatCannotGoOnStopsTheRunWithoutQuarantiningAnything) {
  Write("in.jsonl", "{\"id\":\"1\"}\n{\"id\":\"2\"}\n{\"id\":\"3\"}\n{\"id\":\"4\"}\n");
  auto r = Load(R"(recipe: stop
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
batch_records: 2
targets:
  - {name: svc, type: scripted}
)");
  ASSERT_TRUE(r);
  script_.stop_at = "2";
  auto s = Run(*r);
  EXPECT_EQ(s.status, "failed");
  EXPECT_EQ(s.exit_code, kExitFailed);
  EXPECT_NE(s.error.find("the login was refused"), std::string::npos) << s.error;
  EXPECT_EQ(s.quarantined, 0);
  EXPECT_EQ(script_.written, (std::vector<std::string>{"1"})) << "the run ends after its batch";
  // The next run writes what was left, each record once.
  auto again = Run(*r);
  EXPECT_EQ(again.exit_code, kExitOk);
  EXPECT_EQ(script_.written, (std::vector<std::string>{"1", "2", "3", "4"}));
}

// Source::Acknowledge: a source is told an item is safe only once every
// target committed it durably or it is kept in quarantine, never before.
TEST_F(RunnerTest, TheSourceHearsOfItemsOnlyOnceTheyAreCommittedOrQuarantined) {
  script_.records = 5;
  script_.permanent = {"3"};
  script_.state = dir_ / "state.db";
  auto r = ScriptedSourceRecipe("ack");
  ASSERT_TRUE(r);
  auto s = Run(*r);
  EXPECT_EQ(s.exit_code, kExitQuarantined);
  EXPECT_EQ(s.quarantined, 1);
  // Batches of two: after each, then the end.
  using Acks = std::vector<std::pair<uint64_t, bool>>;
  EXPECT_EQ(script_.acks, (Acks{{2, false}, {4, false}, {5, false}, {5, true}}));
  ASSERT_EQ(script_.written_at_ack.size(), 4u);
  EXPECT_EQ(script_.written_at_ack[0], (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(script_.written_at_ack[1], (std::vector<std::string>{"1", "2", "4"}));
  // Record 3 failed: it is in the quarantine table before the source hears
  // of it, so a crash right after cannot lose it.
  EXPECT_EQ(script_.quarantined_at_ack, (std::vector<int>{0, 1, 1, 1}));
}

TEST_F(RunnerTest, NothingIsAcknowledgedAfterARecordLeftForTheNextRun) {
  script_.records = 4;
  script_.stop_at = "3";
  script_.state = dir_ / "state.db";
  auto r = ScriptedSourceRecipe("ack_stop");
  ASSERT_TRUE(r);
  auto s = Run(*r);
  EXPECT_EQ(s.status, "failed");
  using Acks = std::vector<std::pair<uint64_t, bool>>;
  EXPECT_EQ(script_.acks, (Acks{{2, false}})) << "record 3 is written by the next run";
  script_.acks.clear();
  auto again = Run(*r);
  EXPECT_EQ(again.exit_code, kExitOk);
  EXPECT_EQ(script_.acks, (Acks{{2, false}, {4, false}, {4, true}}));
}

TEST_F(RunnerTest, ADryRunAcknowledgesNothing) {
  script_.records = 3;
  script_.state = dir_ / "state.db";
  auto r = ScriptedSourceRecipe("ack_dry");
  ASSERT_TRUE(r);
  RunOptions o;
  o.state_path = dir_ / "state.db";
  o.dry_run = true;
  o.out = &out_;
  o.err = &err_;
  auto s = RunRecipe(*r, o);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_TRUE(script_.acks.empty());
}

TEST_F(RunnerTest, ATargetCommittedOnlyAtTheRunsEndMakesTheEndTheOnlyAcknowledgement) {
  script_.records = 5;
  script_.state = dir_ / "state.db";
  auto r = Load(R"(recipe: ack_replace
source: {type: scripted}
key: "{{ record.id }}"
batch_records: 2
targets:
  - {name: api, type: scripted}
  - {name: snapshot, type: jsonl, mode: replace, path: snapshot.jsonl}
)");
  ASSERT_TRUE(r);
  auto s = Run(*r);
  EXPECT_EQ(s.exit_code, kExitOk);
  using Acks = std::vector<std::pair<uint64_t, bool>>;
  EXPECT_EQ(script_.acks, (Acks{{5, true}})) << "the file is replaced only at the end";
  EXPECT_EQ(Lines(Read("snapshot.jsonl")), 5);
}

TEST_F(RunnerTest, ASourceThatCannotMarkWarnsOnceAndTheRunSucceeds) {
  script_.records = 5;
  script_.state = dir_ / "state.db";
  script_.ack_fails = true;
  auto r = ScriptedSourceRecipe("ack_fails");
  ASSERT_TRUE(r);
  auto s = Run(*r);
  EXPECT_EQ(s.exit_code, kExitOk);
  EXPECT_EQ(script_.acks.size(), 1u) << "no more calls after a failure";
  EXPECT_NE(err_.str().find("could not mark what this run handled (the mail server went away)"),
            std::string::npos)
      << err_.str();
}

// move_to: the file leaves the inbox folder only when the run read it to its
// end and every record is written or quarantined; a run that a target
// stopped leaves it where it was, and the next run moves it.
TEST_F(RunnerTest, AReadFileIsMovedOnlyOnceEveryRecordIsSafe) {
  std::filesystem::create_directories(dir_ / "inbox");
  Write("inbox/in.jsonl", "{\"id\":\"1\"}\n{\"id\":\"2\"}\nnot json\n{\"id\":\"4\"}\n");
  auto r = Load(R"(recipe: move
source: {type: jsonl, path: inbox/in.jsonl, move_to: done}
key: "{{ record.id }}"
batch_records: 2
targets:
  - {name: svc, type: scripted}
)");
  ASSERT_TRUE(r);
  script_.stop_at = "4";
  auto s = Run(*r);
  EXPECT_EQ(s.status, "failed");
  EXPECT_TRUE(std::filesystem::exists(dir_ / "inbox/in.jsonl")) << "record 4 is not written yet";
  EXPECT_FALSE(std::filesystem::exists(dir_ / "done"));
  auto again = Run(*r);
  // The line that is not JSON is in quarantine: it does not keep the file.
  EXPECT_EQ(again.exit_code, kExitQuarantined);
  EXPECT_EQ(script_.written, (std::vector<std::string>{"1", "2", "4"}));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "inbox/in.jsonl"));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "done/in.jsonl"));
  // Tomorrow's export of the same name does not replace today's.
  Write("inbox/in.jsonl", "{\"id\":\"5\"}\n");
  auto third = Run(*r);
  EXPECT_EQ(third.exit_code, kExitOk);
  EXPECT_EQ(script_.written.back(), "5");
  EXPECT_TRUE(std::filesystem::exists(dir_ / "done/in.jsonl"));
  EXPECT_TRUE(std::filesystem::exists(dir_ / ("done/in." + std::to_string(third.run) + ".jsonl")));
}

TEST_F(RunnerTest, ADryRunOrAStoppedRunLeavesTheFileWhereItWas) {
  Write("in.jsonl", "{\"id\":\"1\"}\n{\"id\":\"2\"}\n{\"id\":\"3\"}\n");
  auto r = Load(R"(recipe: remove
source: {type: jsonl, path: in.jsonl, remove_after: true}
key: "{{ record.id }}"
batch_records: 1
targets:
  - {name: svc, type: scripted}
)");
  ASSERT_TRUE(r);
  RunOptions o;
  o.state_path = dir_ / "state.db";
  o.dry_run = true;
  o.out = &out_;
  o.err = &err_;
  ASSERT_TRUE(RunRecipe(*r, o).ok());
  EXPECT_TRUE(std::filesystem::exists(dir_ / "in.jsonl"));
  std::atomic<bool> stop{true};  // stops after the first batch
  o.dry_run = false;
  o.stop = &stop;
  auto s = RunRecipe(*r, o);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(std::filesystem::exists(dir_ / "in.jsonl")) << "read only in part";
  auto done = Run(*r);
  EXPECT_EQ(done.exit_code, kExitOk);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "in.jsonl"));
  EXPECT_EQ(script_.written, (std::vector<std::string>{"1", "2", "3"}));
}

// A lookup routes each record on the answer: continue, skip with a reason,
// or quarantine for a person.
TEST_F(RunnerTest, LookupRoutesOnTheAnswer) {
  Write("residents.csv", "id,municipality\n1,0101\n2,0999\n");
  Write("in.jsonl", "{\"id\":\"1\"}\n{\"id\":\"2\"}\n{\"id\":\"3\"}\n");
  auto r = Load(R"(recipe: route
tables:
  residents: {type: csv, path: residents.csv, key: id}
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
steps:
  - lookup:
      table: residents
      key: "{{ record.id }}"
      on_missing: quarantine
      require: "{{ lookup.municipality == '0101' }}"
      otherwise: skip
      reason: not resident in the municipality
      set: {municipality: "{{ lookup.municipality }}"}
targets:
  - {name: file, type: jsonl, path: out.jsonl}
)");
  ASSERT_TRUE(r);
  auto s = Run(*r);
  EXPECT_EQ(s.exit_code, kExitQuarantined);
  EXPECT_EQ(Read("out.jsonl"), "{\"id\":\"1\",\"municipality\":\"0101\"}\n");
  EXPECT_EQ(s.filtered, 1);
  EXPECT_EQ(s.quarantined, 1);  // 3: no row
}

// `notify`: the run's summary goes to a target once per run, only when
// one of its `on` conditions is met; the quarantine list goes along.
TEST_F(RunnerTest, NotifySendsTheSummaryWhenItsConditionIsMet) {
  Write("in.jsonl", "{\"id\":\"1\"}\n{\"id\":\"2\"}\n");
  script_.permanent.insert("2");
  auto r = Load(std::string(kScripted) + R"(notify:
  - name: it
    type: jsonl
    path: notify.jsonl
    on: [quarantined, failed]
    body:
      status: "{{ record.status }}"
      recipe: "{{ record.recipe }}"
      quarantined: "{{ record.quarantined }}"
      written: "{{ record.written }}"
      has_list: "{{ record.quarantine_file != '' }}"
  - name: never
    type: jsonl
    path: never.jsonl
    on: [completed]
)");
  ASSERT_TRUE(r);
  auto s = Run(*r);
  EXPECT_EQ(s.exit_code, kExitQuarantined);
  EXPECT_EQ(Read("notify.jsonl"),
            "{\"status\":\"completed_with_errors\",\"recipe\":\"scripted\",\"quarantined\":1,"
            "\"written\":2,\"has_list\":true}\n");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "never.jsonl"));
  // The quarantine list is a temporary file, gone after the run.
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().string().find("quarantine.csv"), std::string::npos) << e.path();
  }
}

// --- limits (docs/recipes.md, "Resource limits") ------------------------------

TEST_F(RunnerTest, RunSecondsStopsAtABatchBoundaryAndTheNextRunGoesOn) {
  std::string in;
  for (int i = 1; i <= 12; ++i) in += "{\"id\":\"" + std::to_string(i) + "\"}\n";
  Write("in.jsonl", in);
  script_.write_seconds = 0.25;
  auto r = Load(R"(recipe: slow
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
batch_records: 1
limits: {run_seconds: 1}
targets:
  - {name: api, type: scripted}
)");
  ASSERT_TRUE(r);
  RunSummary first = Run(*r);
  EXPECT_EQ(first.status, "interrupted");
  EXPECT_EQ(first.exit_code, kExitFailed);
  EXPECT_NE(first.error.find("the run reached limits.run_seconds (1 s)"), std::string::npos)
      << first.error;
  const size_t done = script_.written.size();
  EXPECT_GE(done, 2u);
  EXPECT_LT(done, 12u);
  // The next runs go on where it stopped: every record written exactly once.
  for (int i = 0; i < 10 && script_.written.size() < 12; ++i) Run(*r);
  std::vector<std::string> sorted = script_.written;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted.size(), 12u);
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end());
}

TEST_F(RunnerTest, RecordAndTemplateLimitsQuarantineThatRecordOnly) {
  Write("in.jsonl", "{\"id\":\"1\",\"v\":\"" + std::string(3000, 'x') +
                        "\"}\n{\"id\":\"2\",\"v\":\"" + std::string(1500, 'a') +
                        "\"}\n{\"id\":\"3\",\"v\":\"b\"}\n");
  auto r = Load(R"(recipe: limited
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
limits: {record_bytes: 2048, template_bytes: 4096}
steps:
  - set: {w: "{{ record.v | replace('a', 'aaaaaaaaaa') }}"}
targets:
  - {name: api, type: scripted}
)");
  ASSERT_TRUE(r);
  RunSummary s = Run(*r);
  EXPECT_EQ(s.exit_code, kExitQuarantined);
  EXPECT_EQ(s.quarantined, 2);
  EXPECT_EQ(script_.written, std::vector<std::string>{"3"});
  EXPECT_NE(err_.str().find("line 1: longer than limits.record_bytes (2 KiB)"), std::string::npos)
      << err_.str();
  EXPECT_NE(err_.str().find("the filter 'replace' would make a text of 15000 bytes, more than "
                            "limits.template_bytes (4 KiB)"),
            std::string::npos)
      << err_.str();
}

TEST_F(RunnerTest, LimitsAreCheckedWhenTheRecipeIsLoaded) {
  Diagnostics d;
  auto r = LoadRecipeText((dir_ / "r.yaml").string(), R"(recipe: x
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
batch_records: 5000
limits: {records_in_memory: 1000, record_bytes: 16, run_seconds: -1, columns: 0, batch_bytes: 100,
         bogus: 1}
targets:
  - {name: api, type: scripted}
)",
                          dir_, &d);
  EXPECT_FALSE(r);
  std::string all;
  for (const auto& x : d.items()) all += x.ToString() + "\n";
  EXPECT_NE(all.find("limits.record_bytes: must be at least 1024 (bytes)"), std::string::npos)
      << all;
  EXPECT_NE(all.find("limits.run_seconds: must be 0 (no limit) or more"), std::string::npos) << all;
  EXPECT_NE(all.find("limits.columns: must be at least 1"), std::string::npos) << all;
  EXPECT_NE(all.find("limits.batch_bytes: must be at least 1024 (bytes)"), std::string::npos)
      << all;
  EXPECT_NE(all.find("batch_records: 5000 is more than limits.records_in_memory (1000)"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("bogus"), std::string::npos) << all;
}

TEST_F(RunnerTest, BatchBytesWritesABatchBeforeItPassesTheBudget) {
  // Ten records of about 40 KB each; batch_records would take them all at once.
  std::string in;
  for (int i = 1; i <= 10; ++i) {
    in += "{\"id\":\"" + std::to_string(i) + "\",\"v\":\"" + std::string(40000, 'x') + "\"}\n";
  }
  Write("in.jsonl", in);
  script_.concurrent = true;  // one WriteMany call per batch
  auto r = Load(R"(recipe: budget
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
limits: {batch_bytes: 100000}
targets:
  - {name: api, type: scripted}
)");
  ASSERT_TRUE(r);
  RunSummary s = Run(*r);
  EXPECT_EQ(s.exit_code, kExitOk) << err_.str();
  EXPECT_EQ(script_.written.size(), 10u);
  ASSERT_GE(script_.calls.size(), 4u);
  for (const auto& call : script_.calls) EXPECT_LE(call.size(), 3u);
}

TEST_F(RunnerTest, ColumnsLimitQuarantinesAWiderRecord) {
  Write("in.jsonl", "{\"id\":\"1\",\"a\":1,\"b\":2,\"c\":3}\n{\"id\":\"2\",\"a\":1}\n");
  auto r = Load(R"(recipe: columns
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
limits: {columns: 3}
targets:
  - {name: api, type: scripted}
)");
  ASSERT_TRUE(r);
  RunSummary s = Run(*r);
  EXPECT_EQ(s.exit_code, kExitQuarantined);
  EXPECT_EQ(script_.written, std::vector<std::string>{"2"});
  EXPECT_NE(err_.str().find("the record has 4 fields, more than limits.columns (3)"),
            std::string::npos)
      << err_.str();
}

// Memory that runs out inside a run (an allocation fails under ulimit -v or the
// unit's LimitAS=) ends the run as failed, in the summary and in the history,
// instead of escaping as an exception that leaves the run `running` forever.
TEST_F(RunnerTest, RunOutOfMemoryEndsAsFailedInTheHistory) {
  Write("in.jsonl", "{\"id\":\"1\"}\n{\"id\":\"2\"}\n{\"id\":\"3\"}\n");
  script_.out_of_memory = "2";
  auto r = Load(R"(recipe: oom
source: {type: jsonl, path: in.jsonl}
key: "{{ record.id }}"
targets:
  - {name: api, type: scripted}
)");
  ASSERT_TRUE(r);
  RunSummary s = Run(*r);
  EXPECT_EQ(s.status, "failed");
  EXPECT_EQ(s.exit_code, kExitFailed);
  EXPECT_NE(s.error.find("the run ran out of memory"), std::string::npos) << s.error;
  EXPECT_EQ(Rows(dir_ / "state.db", "SELECT status FROM runs"), (Table{{"failed"}}));
  // The next run recovers the batch in flight, like after a crash, and finishes the work.
  script_.out_of_memory.clear();
  RunSummary again = Run(*r);
  EXPECT_EQ(again.exit_code, kExitOk) << err_.str();
  EXPECT_EQ(script_.written.back(), "3");
}

// Two stages: batch N+1 is read and planned while batch N is written, and
// the reading stage is never more than that one batch ahead (memory holds
// two batches, however fast the source).
TEST_F(RunnerTest, ReadingOverlapsWritingByAtMostOneBatch) {
  script_.records = 12;
  script_.write_seconds = 0.005;
  auto r = ScriptedSourceRecipe("stages");
  ASSERT_TRUE(r);
  RunSummary s = Run(*r);
  EXPECT_EQ(s.exit_code, kExitOk) << err_.str();
  EXPECT_EQ(s.read, 12);
  std::vector<std::string> in_order;
  for (int i = 1; i <= 12; ++i) in_order.push_back(std::to_string(i));
  EXPECT_EQ(script_.written, in_order) << "batches are written in the order read";
  // One after the other, a record is read when every earlier batch is
  // written: at most batch_records ahead. Overlapped: more.
  EXPECT_GT(g_most_ahead.load(), 2) << "the next batch was not read while one was written";
  EXPECT_LE(g_most_ahead.load(), 4) << "the reading stage ran more than one batch ahead";
}

// The source fails in the third batch: the two batches before it are written,
// the third is not (as when one stage did both), the run fails, and the next
// run writes the rest, each record once.
TEST_F(RunnerTest, ASourceFailureEndsTheRunAfterTheBatchesReadBeforeIt) {
  script_.records = 10;
  script_.fail_at = 6;
  auto r = ScriptedSourceRecipe("cut");
  ASSERT_TRUE(r);
  RunSummary s = Run(*r);
  EXPECT_EQ(s.status, "failed");
  EXPECT_NE(s.error.find("the export was cut off"), std::string::npos) << s.error;
  EXPECT_EQ(script_.written, (std::vector<std::string>{"1", "2", "3", "4"}));
  script_.fail_at = 0;
  RunSummary again = Run(*r);
  EXPECT_EQ(again.exit_code, kExitOk) << err_.str();
  EXPECT_EQ(script_.written,
            (std::vector<std::string>{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}));
}

// The reading stage runs out of memory: the run ends as failed (not a
// crash, not a hang), with what was written before kept.
TEST_F(RunnerTest, TheReadingStageRunningOutOfMemoryEndsTheRunAsFailed) {
  script_.records = 6;
  script_.throw_at = 4;
  auto r = ScriptedSourceRecipe("oom_reading");
  ASSERT_TRUE(r);
  RunSummary s = Run(*r);
  EXPECT_EQ(s.status, "failed");
  EXPECT_NE(s.error.find("the run ran out of memory"), std::string::npos) << s.error;
  EXPECT_EQ(script_.written, (std::vector<std::string>{"1", "2"}));
}

}  // namespace
}  // namespace keyonce
