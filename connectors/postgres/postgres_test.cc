// The postgres connector against a real throwaway PostgreSQL 15 cluster
// (tests/support/postgres.h): types, binds, streaming, insert/upsert with
// returning, per-record failures inside a batch, exact recovery after a crash
// or a killed backend, lookup, secrets in errors, and keyonce run killed with
// SIGKILL mid-run.
#include "tests/support/postgres.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "keyonce/connector.h"
#include "tests/cli_util.h"
#include "tests/support/sanitizers.h"
#include "tests/support/servers.h"

namespace keyonce {
namespace {

namespace fs = std::filesystem;
using testing_util::PostgresCluster;

// --- helpers ---------------------------------------------------------------

Settings::Entry Lit(Value v) {
  Settings::Entry e;
  e.literal = std::move(v);
  return e;
}

Template Compile(const std::string& text, TemplateContext c) {
  TemplateError err;
  auto t = Template::Compile(text, c, &err);
  if (!t) throw std::runtime_error("bad template in test: " + err.message);
  return std::move(*t);
}

Settings::Entry Tmpl(const std::string& text, TemplateContext c = TemplateContext::kText) {
  Settings::Entry e;
  e.tmpl = Compile(text, c);
  return e;
}

Settings::Entry TmplMap(const std::vector<std::pair<std::string, std::string>>& m) {
  Settings::Entry e;
  for (const auto& [k, v] : m) e.tmpl_map.emplace_back(k, Compile(v, TemplateContext::kValue));
  return e;
}

Settings::Entry List(std::initializer_list<const char*> items) {
  boost::json::array a;
  for (const char* i : items) a.emplace_back(i);
  return Lit(Value(std::move(a)));
}

class CollectLog : public Log {
 public:
  void Info(const std::string& m) override { lines.push_back(m); }
  void Warn(const std::string& m) override { lines.push_back(m); }
  void AddSecret(const std::string& v) override { secrets.push_back(v); }
  std::vector<std::string> lines, secrets;
};

long VmHwmKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

PostgresCluster* g_pg = nullptr;
std::string g_pg_error;

class PostgresTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_pg = new PostgresCluster();
    if (!g_pg->Start(&g_pg_error)) {
      delete g_pg;
      g_pg = nullptr;
    }
  }
  static void TearDownTestSuite() {
    delete g_pg;
    g_pg = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(g_pg, nullptr) << "the test PostgreSQL cluster did not start: " << g_pg_error;
    pg_ = g_pg;
    params_ = boost::json::object{{"dept", "IT"}, {"name", "x' OR '1'='1"}};
    ctx_.recipe = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ctx_.run_id = "run1";
    ctx_.target_name = "payroll";
    ctx_.scope.params = &params_;
    ctx_.log = &log_;
  }

  void Sql(const std::string& sql) {
    std::string err;
    ASSERT_TRUE(pg_->Exec(sql, &err)) << err;
  }

  const ConnectorDef& Def() {
    const ConnectorDef* d = Registry::Global().Find("postgres");
    if (!d) throw std::runtime_error("postgres connector not registered");
    return *d;
  }

  Settings Base() {
    Settings s;
    s.where = "targets[0]";
    s.entries["connection"] = Tmpl(pg_->ConnectionString(false));
    s.entries["password"] = Tmpl(pg_->password(), TemplateContext::kValue);
    return s;
  }

  Settings SourceSettings(const std::string& query) {
    Settings s = Base();
    s.where = "source";
    s.entries["query"] = Tmpl(query, TemplateContext::kSql);
    return s;
  }

  // A target writing people(id, name, dept).
  Settings PeopleTarget(const std::string& table, const std::string& mode = "upsert") {
    Settings s = Base();
    s.entries["table"] = Lit(Value(table));
    s.entries["columns"] = TmplMap(
        {{"id", "{{ record.id }}"}, {"name", "{{ record.name }}"}, {"dept", "{{ record.dept }}"}});
    s.entries["mode"] = Lit(Value(mode));
    s.entries["key_columns"] = List({"id"});
    return s;
  }

  std::unique_ptr<Source> OpenSource(const Settings& s) {
    auto src = Def().make_source(s);
    if (!src.ok()) throw std::runtime_error("make_source: " + src.status().ToString());
    Status st = (*src)->Open(ctx_);
    if (!st.ok()) throw std::runtime_error("Open: " + st.ToString());
    return std::move(src).value();
  }

  std::unique_ptr<Target> NewTarget(const Settings& s) {
    auto t = Def().make_target(s);
    if (!t.ok()) throw std::runtime_error("make_target: " + t.status().ToString());
    return std::move(t).value();
  }

  std::unique_ptr<Target> OpenTarget(const Settings& s) {
    auto t = NewTarget(s);
    Status st = t->Open(ctx_);
    if (!st.ok()) throw std::runtime_error("Open: " + st.ToString());
    return t;
  }

  struct Op {
    Record record;
    Value record_value;
    Scope scope;
    WriteOp op;
  };
  std::unique_ptr<Op> MakeOp(Record r, uint64_t batch = 1,
                             WriteOp::Kind kind = WriteOp::Kind::kInsert) {
    auto o = std::make_unique<Op>();
    o->record = std::move(r);
    o->record_value = o->record;
    o->scope = ctx_.scope;
    o->scope.record = &o->record_value;
    o->op.record = &o->record;
    o->op.scope = &o->scope;
    o->op.batch = batch;
    o->op.kind = kind;
    return o;
  }
  WriteResult Write(Target* t, Record r, uint64_t batch = 1,
                    WriteOp::Kind kind = WriteOp::Kind::kInsert) {
    auto o = MakeOp(std::move(r), batch, kind);
    return t->Write(o->op);
  }

  std::vector<SourceItem> ReadAll(Source* src) {
    std::vector<SourceItem> out;
    while (true) {
      SourceItem item;
      auto r = src->Next(&item);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok() || !*r) break;
      out.push_back(std::move(item));
    }
    return out;
  }

  // Ends the test user's sessions opened by keyonce, as an administrator would.
  void KillKeyonceBackends() {
    EXPECT_GE(pg_->QueryInt("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE usename = '" +
                            pg_->user() + "' AND application_name = 'keyonce'"),
              1);
  }

  PostgresCluster* pg_ = nullptr;
  Value params_;
  CollectLog log_;
  RunContext ctx_;
};

// --- registration ----------------------------------------------------------

TEST_F(PostgresTest, ConnectorIsRegisteredWithDocumentedSettings) {
  const ConnectorDef& d = Def();
  ASSERT_TRUE(d.source && d.target && d.lookup);
  for (const auto* spec : {&*d.source, &*d.target, &*d.lookup}) {
    EXPECT_FALSE(spec->summary.empty());
    EXPECT_FALSE(spec->example_yaml.empty());
    for (const auto& f : spec->fields) EXPECT_FALSE(f.description.empty()) << f.name;
    bool secret = false;
    for (const auto& f : spec->fields) secret |= f.name == "password" && f.secret;
    EXPECT_TRUE(secret) << "password must be declared secret";
  }
  // Settings are checked without connecting: a broken constant connection string.
  Settings s = PeopleTarget("t");
  s.entries["connection"] = Tmpl("host=x port");
  auto t = Def().make_target(s);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), Status::Code::kInvalid);
  EXPECT_NE(t.status().message().find("connection"), std::string::npos) << t.status().message();
  s = PeopleTarget("t");
  s.entries.erase("key_columns");
  EXPECT_FALSE(Def().make_target(s).ok()) << "upsert without key_columns";
}

// --- source ----------------------------------------------------------------

TEST_F(PostgresTest, SourceMapsTypesAndNulls) {
  Sql("CREATE TABLE types (i int, b bigint, n numeric, big numeric, f float8, ok boolean, t text, "
      "d date, ts timestamp, j json, jb jsonb, raw bytea, u uuid, nothing text, nan float8, "
      "arr int[])");
  Sql("INSERT INTO types VALUES (42, 9007199254740993, 7.50, 123456789012345678901234.5, 2.25, "
      "true, 'Åse', '2026-11-02', '2026-11-02 10:30:00', '{\"a\": [1, 2]}', '{\"b\": null}', "
      "'\\x00ff41', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', NULL, 'NaN', '{1,2}')");
  auto src = OpenSource(SourceSettings("SELECT * FROM types"));
  auto items = ReadAll(src.get());
  ASSERT_EQ(items.size(), 1u);
  const Record& r = items[0].record;
  EXPECT_EQ(items[0].position, "row 1");
  EXPECT_EQ(r.at("i"), Value(42));
  EXPECT_EQ(r.at("b"), Value(int64_t{9007199254740993}));
  EXPECT_EQ(r.at("n"), Value(7.5));
  EXPECT_EQ(r.at("big"), Value("123456789012345678901234.5")) << "text: a double would lose digits";
  EXPECT_EQ(r.at("f"), Value(2.25));
  EXPECT_EQ(r.at("ok"), Value(true));
  EXPECT_EQ(r.at("t"), Value("Åse"));
  EXPECT_EQ(r.at("d"), Value("2026-11-02"));
  EXPECT_EQ(r.at("ts"), Value("2026-11-02 10:30:00"));
  EXPECT_EQ(r.at("j"), boost::json::parse(R"({"a":[1,2]})"));
  EXPECT_EQ(r.at("jb"), boost::json::parse(R"({"b":null})"));
  EXPECT_EQ(r.at("raw"), Value("AP9B"));  // base64 of 00 ff 41
  EXPECT_EQ(r.at("u"), Value("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"));
  EXPECT_TRUE(r.at("nothing").is_null());
  EXPECT_EQ(r.at("nan"), Value("NaN"));
  EXPECT_EQ(r.at("arr"), Value("{1,2}"));
}

TEST_F(PostgresTest, SourceBindsParamsSoInjectionIsJustData) {
  Sql("CREATE TABLE staff (id int, name text, dept text)");
  Sql("INSERT INTO staff VALUES (1, 'Ann', 'IT'), (2, 'Bo', 'HR'), (3, 'x'' OR ''1''=''1', 'IT')");
  auto src = OpenSource(SourceSettings(
      "SELECT id FROM staff WHERE dept = {{ params.dept }} AND name <> '?' -- a ? in a comment\n"
      "ORDER BY id"));
  auto items = ReadAll(src.get());
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].record.at("id"), Value(1));

  // The "injection" is compared as a value: it finds exactly the row that holds it.
  src = OpenSource(SourceSettings("SELECT id FROM staff WHERE name = {{ params.name }}"));
  items = ReadAll(src.get());
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].record.at("id"), Value(3));
  params_ = boost::json::object{{"name", "'; DROP TABLE staff; --"}};
  src = OpenSource(SourceSettings("SELECT id FROM staff WHERE name = {{ params.name }}"));
  EXPECT_TRUE(ReadAll(src.get()).empty());
  EXPECT_EQ(pg_->QueryInt("SELECT count(*) FROM staff"), 3);

  // A ? of the query's own (jsonb operator) and $1 are refused with a clear reason.
  for (const char* q : {"SELECT '{}'::jsonb ? 'a'", "SELECT id FROM staff WHERE id = $1"}) {
    auto s = Def().make_source(SourceSettings(q));
    ASSERT_TRUE(s.ok());
    Status st = (*s)->Open(ctx_);
    EXPECT_EQ(st.code(), Status::Code::kInvalid) << q;
    EXPECT_NE(st.message().find("{{"), std::string::npos) << st.message();
  }
  // The source only reads.
  auto w = Def().make_source(SourceSettings("INSERT INTO staff VALUES (9, 'z', 'z') RETURNING id"));
  ASSERT_TRUE(w.ok());
  Status st = (*w)->Open(ctx_);
  SourceItem item;
  auto next = st.ok() ? (*w)->Next(&item) : Result<bool>(st);
  EXPECT_FALSE(next.ok());
  EXPECT_NE(next.status().message().find("read-only"), std::string::npos)
      << next.status().message();
  EXPECT_EQ(pg_->QueryInt("SELECT count(*) FROM staff"), 3);
}

TEST_F(PostgresTest, SourceStreams200kRowsWithFlatMemory) {
  constexpr int kRows = 200000;
  // About 60 MB of row data: held at once it would show in the peak RSS.
  params_ = boost::json::object{{"n", kRows}};
  auto src = OpenSource(SourceSettings(
      "SELECT g AS id, repeat('x', 300) AS pad, g * 0.5 AS half FROM generate_series(1, "
      "{{ params.n }}) g"));
  long before = VmHwmKb();
  int n = 0;
  int64_t sum = 0;
  auto start = std::chrono::steady_clock::now();
  for (;;) {
    SourceItem item;
    auto r = src->Next(&item);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (!*r) break;
    ++n;
    sum += item.record.at("id").as_int64();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  long after = VmHwmKb();
  std::printf("[ timing   ] postgres source: %d rows in %.2f s = %.0f rows/s; VmHWM +%ld kB\n", n,
              secs, n / secs, after - before);
  EXPECT_EQ(n, kRows);
  EXPECT_EQ(sum, int64_t{kRows} * (kRows + 1) / 2);
#if !defined(KEYONCE_ASAN)  // ASan keeps freed memory in quarantine: RSS says nothing
  EXPECT_LT(after - before, 20 * 1024) << "peak memory grew with the number of rows";
#endif
}

// --- target ----------------------------------------------------------------

TEST_F(PostgresTest, TargetInsertsWithReturningCaptures) {
  Sql("CREATE TABLE cases (case_id serial PRIMARY KEY, id int, name text, dept text)");
  auto t = OpenTarget(PeopleTarget("cases", "insert"));
  EXPECT_FALSE(t->Traits().supports_update);
  EXPECT_FALSE(t->Traits().idempotent);
  Settings s = PeopleTarget("cases", "insert");
  s.entries["returning"] = List({"case_id", "name"});
  t = OpenTarget(s);
  auto w1 = Write(t.get(), Record{{"id", 1}, {"name", "Ann"}, {"dept", "IT"}});
  ASSERT_TRUE(w1.status.ok()) << w1.status.ToString();
  auto w2 = Write(t.get(), Record{{"id", 2}, {"name", "Bo"}, {"dept", nullptr}});
  ASSERT_TRUE(w2.status.ok()) << w2.status.ToString();
  EXPECT_EQ(w1.reply, boost::json::parse(R"({"case_id":1,"name":"Ann"})"));
  EXPECT_EQ(w2.reply, boost::json::parse(R"({"case_id":2,"name":"Bo"})"));
  ASSERT_TRUE(t->Commit(1, true).ok());
  t->Close(true);
  EXPECT_EQ(pg_->QueryInt("SELECT count(*) FROM cases"), 2);
  EXPECT_EQ(pg_->QueryInt("SELECT count(*) FROM cases WHERE dept IS NULL"), 1);
  EXPECT_EQ(pg_->QueryInt("SELECT batch FROM keyonce_checkpoint WHERE target = '" + ctx_.recipe +
                          "/payroll'"),
            1);
}

TEST_F(PostgresTest, TargetUpsertUpdatesTheRowWithTheSameKey) {
  Settings s = PeopleTarget("people_up");
  s.entries["create_table"] = Lit(true);
  auto t = OpenTarget(s);
  EXPECT_TRUE(t->Traits().supports_update);
  EXPECT_TRUE(t->Traits().idempotent);
  ASSERT_TRUE(Write(t.get(), Record{{"id", 1}, {"name", "Ann"}, {"dept", "IT"}}).status.ok());
  ASSERT_TRUE(t->Commit(1, false).ok());
  auto w = Write(t.get(), Record{{"id", 1}, {"name", "Ann B"}, {"dept", "HR"}}, 2,
                 WriteOp::Kind::kUpdate);
  ASSERT_TRUE(w.status.ok()) << w.status.ToString();
  ASSERT_TRUE(Write(t.get(), Record{{"id", 2}, {"name", "Bo"}, {"dept", "HR"}}, 2).status.ok());
  ASSERT_TRUE(t->Commit(2, true).ok());
  t->Close(true);
  EXPECT_EQ(pg_->QueryInt("SELECT count(*) FROM people_up"), 2);
  EXPECT_EQ(pg_->QueryText("SELECT name || '/' || dept FROM people_up WHERE id = '1'"), "Ann B/HR");

  // Upsert into a table without a unique index on key_columns: a clear error at Open.
  Sql("CREATE TABLE no_index (id int, name text, dept text)");
  auto bad = NewTarget(PeopleTarget("no_index"));
  Status st = bad->Open(ctx_);
  EXPECT_EQ(st.code(), Status::Code::kInvalid);
  EXPECT_NE(st.message().find("unique index"), std::string::npos) << st.message();
  // A missing table names it.
  st = NewTarget(PeopleTarget("missing_table"))->Open(ctx_);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("missing_table"), std::string::npos) << st.message();
}

TEST_F(PostgresTest, BadRecordIsPermanentAndTheRestOfTheBatchCommits) {
  Sql("CREATE TABLE hours (id int PRIMARY KEY, cpr text NOT NULL, hours numeric CHECK (hours >= "
      "0))");
  Settings s = Base();
  s.entries["table"] = Lit("hours");
  s.entries["columns"] = TmplMap(
      {{"id", "{{ record.id }}"}, {"cpr", "{{ record.cpr }}"}, {"hours", "{{ record.h }}"}});
  s.entries["mode"] = Lit("insert");
  auto t = OpenTarget(s);
  ASSERT_TRUE(Write(t.get(), Record{{"id", 1}, {"cpr", "0101851233"}, {"h", 7.5}}).status.ok());
  // Check constraint, not-null, invalid input, duplicate key: each the record's own fault.
  std::vector<Record> bad = {
      Record{{"id", 2}, {"cpr", "0101851233"}, {"h", -1}},
      Record{{"id", 3}, {"cpr", nullptr}, {"h", 1}},
      Record{{"id", 4}, {"cpr", "0101851233"}, {"h", "seven-and-0101851234"}},
      Record{{"id", 1}, {"cpr", "0202851234"}, {"h", 1}},
  };
  for (const auto& r : bad) {
    auto w = Write(t.get(), r);
    ASSERT_FALSE(w.status.ok());
    EXPECT_EQ(w.status.code(), Status::Code::kPermanent) << w.status.ToString();
    const std::string& m = w.status.message();
    EXPECT_NE(m.find("hours"), std::string::npos) << m;
    EXPECT_NE(m.find("SQLSTATE 2"), std::string::npos) << m;
    for (const char* value : {"0101851233", "0202851234", "seven", "0101851234"}) {
      EXPECT_EQ(m.find(value), std::string::npos) << "value in message: " << m;
    }
  }
  ASSERT_TRUE(Write(t.get(), Record{{"id", 5}, {"cpr", "0303851233"}, {"h", 0}}).status.ok());
  ASSERT_TRUE(t->Commit(1, true).ok());
  t->Close(true);
  EXPECT_EQ(pg_->QueryText("SELECT string_agg(id::text, ',' ORDER BY id) FROM hours"), "1,5");
}

TEST_F(PostgresTest, RecoverIsExactAfterACrash) {
  auto fresh = NewTarget(PeopleTarget("crashy"));
  auto r0 = fresh->Recover(ctx_, 1, "");
  ASSERT_TRUE(r0.ok()) << r0.status().ToString();
  EXPECT_TRUE(r0->known);
  EXPECT_EQ(r0->applied_through, 0u) << "no checkpoint table yet: nothing arrived";

  Sql("CREATE TABLE crashy (id int PRIMARY KEY, name text, dept text)");
  auto t = OpenTarget(PeopleTarget("crashy"));
  ASSERT_TRUE(Write(t.get(), Record{{"id", 1}, {"name", "A"}, {"dept", "IT"}}, 1).status.ok());
  ASSERT_TRUE(t->Commit(1, false).ok());
  ASSERT_TRUE(Write(t.get(), Record{{"id", 2}, {"name", "B"}, {"dept", "IT"}}, 2).status.ok());
  // The process dies before committing batch 2: its connection just goes.
  KillKeyonceBackends();
  t.reset();
  auto r = NewTarget(PeopleTarget("crashy"))->Recover(ctx_, 2, "1");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->known);
  EXPECT_EQ(r->applied_through, 1u);
  EXPECT_EQ(pg_->QueryInt("SELECT count(*) FROM crashy"), 1);

  // Committed: the checkpoint says so.
  t = OpenTarget(PeopleTarget("crashy"));
  ASSERT_TRUE(Write(t.get(), Record{{"id", 2}, {"name", "B"}, {"dept", "IT"}}, 3).status.ok());
  ASSERT_TRUE(t->Commit(3, false).ok());
  t.reset();
  r = NewTarget(PeopleTarget("crashy"))->Recover(ctx_, 3, "1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->applied_through, 3u);
  // Another target's checkpoint is its own.
  RunContext other = ctx_;
  other.target_name = "other";
  r = NewTarget(PeopleTarget("crashy"))->Recover(other, 1, "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->applied_through, 0u);
}

TEST_F(PostgresTest, KilledBackendMidBatchIsTransientAndTheBatchIsWrittenOnce) {
  Sql("CREATE TABLE killed (id int PRIMARY KEY, name text, dept text)");
  auto t = OpenTarget(PeopleTarget("killed", "insert"));
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(Write(t.get(), Record{{"id", i}, {"name", "P"}, {"dept", "IT"}}).status.ok());
  }
  KillKeyonceBackends();
  auto w = Write(t.get(), Record{{"id", 4}, {"name", "P"}, {"dept", "IT"}});
  ASSERT_FALSE(w.status.ok());
  EXPECT_EQ(w.status.code(), Status::Code::kTransient) << w.status.ToString();
  // The engine retries: the target reconnects and writes records 1-3 again first.
  w = Write(t.get(), Record{{"id", 4}, {"name", "P"}, {"dept", "IT"}});
  ASSERT_TRUE(w.status.ok()) << w.status.ToString();
  ASSERT_TRUE(Write(t.get(), Record{{"id", 5}, {"name", "P"}, {"dept", "IT"}}).status.ok());
  // Killed again just before the commit: the commit reconnects and redoes the batch.
  KillKeyonceBackends();
  auto c = t->Commit(1, false);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(pg_->QueryText("SELECT string_agg(id::text, ',' ORDER BY id) FROM killed"),
            "1,2,3,4,5");
  bool warned = false;
  for (const auto& l : log_.lines) warned |= l.find("Reconnected") != std::string::npos;
  EXPECT_TRUE(warned);

  // A batch whose rows answer with new serial ids cannot be redone in place:
  // it fails, and Recover says it never arrived.
  Sql("CREATE TABLE serials (sid serial, id int, name text, dept text)");
  Settings s = PeopleTarget("serials", "insert");
  s.entries["returning"] = List({"sid"});
  t = OpenTarget(s);
  ASSERT_TRUE(Write(t.get(), Record{{"id", 1}, {"name", "P"}, {"dept", "IT"}}, 1).status.ok());
  ASSERT_TRUE(t->Commit(1, false).ok());
  ASSERT_TRUE(Write(t.get(), Record{{"id", 2}, {"name", "P"}, {"dept", "IT"}}, 2).status.ok());
  KillKeyonceBackends();
  w = Write(t.get(), Record{{"id", 3}, {"name", "P"}, {"dept", "IT"}}, 2);
  EXPECT_EQ(w.status.code(), Status::Code::kTransient);
  w = Write(t.get(), Record{{"id", 3}, {"name", "P"}, {"dept", "IT"}}, 2);
  EXPECT_FALSE(w.status.ok());
  EXPECT_FALSE(t->Commit(2, false).ok());
  t.reset();
  auto r = NewTarget(s)->Recover(ctx_, 2, "1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->applied_through, 1u);
  EXPECT_EQ(pg_->QueryInt("SELECT count(*) FROM serials"), 1);
}

TEST_F(PostgresTest, CheckFindsWrittenRowsByKey) {
  Sql("CREATE TABLE checked (rid serial, id int PRIMARY KEY, name text, dept text)");
  Settings s = PeopleTarget("checked");
  s.entries["returning"] = List({"rid"});
  auto t = OpenTarget(s);
  ASSERT_TRUE(Write(t.get(), Record{{"id", 7}, {"name", "A"}, {"dept", "IT"}}).status.ok());
  ASSERT_TRUE(t->Commit(1, false).ok());
  auto here = MakeOp(Record{{"id", 7}, {"name", "A"}, {"dept", "IT"}});
  auto c = t->Check(here->op);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->outcome, CheckResult::Outcome::kExists);
  EXPECT_EQ(c->reply, boost::json::parse(R"({"rid":1})"));
  auto gone = MakeOp(Record{{"id", 8}, {"name", "A"}, {"dept", "IT"}});
  c = t->Check(gone->op);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->outcome, CheckResult::Outcome::kAbsent);
}

TEST_F(PostgresTest, TargetWritesManyRecordsInBatches) {
  Sql("CREATE TABLE many (id int PRIMARY KEY, name text, dept text)");
  auto t = OpenTarget(PeopleTarget("many"));
  constexpr int kRecords = 20000, kBatch = 5000;
  std::vector<std::unique_ptr<Op>> ops;
  for (int i = 0; i < kRecords; ++i) {
    ops.push_back(MakeOp(
        Record{{"id", i}, {"name", "Person " + std::to_string(i)}, {"dept", i % 2 ? "IT" : "HR"}},
        static_cast<uint64_t>(i / kBatch + 1)));
  }
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRecords; ++i) {
    WriteResult w = t->Write(ops[i]->op);
    ASSERT_TRUE(w.status.ok()) << w.status.ToString();
    if ((i + 1) % kBatch == 0) {
      ASSERT_TRUE(t->Commit((i + 1) / kBatch, false).ok());
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  t->Close(true);
  std::printf("[ timing   ] postgres target: %d records in %.2f s = %.0f records/s\n", kRecords,
              secs, kRecords / secs);
  EXPECT_EQ(pg_->QueryInt("SELECT count(*) FROM many"), kRecords);
}

// --- lookup ----------------------------------------------------------------

TEST_F(PostgresTest, LookupFindsTheRowForTheKeyOrNone) {
  Sql("CREATE TABLE departments (code int PRIMARY KEY, name text, active boolean)");
  Sql("INSERT INTO departments VALUES (101, 'København', true), (147, 'Frederiksberg', false)");
  Settings s = Base();
  s.where = "tables.departments";
  s.entries["query"] = Tmpl(
      "SELECT name, active FROM departments WHERE code = {{ key }} AND name <> {{ params.name }}",
      TemplateContext::kSql);
  auto l = Def().make_lookup(s);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  ASSERT_TRUE((*l)->Open(ctx_).ok());
  auto hit = (*l)->Find(Value("147"));
  ASSERT_TRUE(hit.ok()) << hit.status().ToString();
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ((**hit).at("name"), Value("Frederiksberg"));
  EXPECT_EQ((**hit).at("active"), Value(false));
  auto miss = (*l)->Find(Value(999));
  ASSERT_TRUE(miss.ok());
  EXPECT_FALSE(miss->has_value());
  // A key that is not a number for an int column: the record's own fault, no value shown.
  auto bad = (*l)->Find(Value("1 OR 1=1"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kPermanent) << bad.status().ToString();
  EXPECT_EQ(bad.status().message().find("1 OR 1=1"), std::string::npos) << bad.status().message();
  // The server went away between lookups: transient, then it works again.
  KillKeyonceBackends();
  auto after = (*l)->Find(Value(101));
  if (!after.ok()) {
    EXPECT_EQ(after.status().code(), Status::Code::kTransient) << after.status().ToString();
    after = (*l)->Find(Value(101));
  }
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ((**after).at("name"), Value("København"));
}

// --- connection errors -----------------------------------------------------

TEST_F(PostgresTest, WrongPasswordIsAClearErrorWithoutThePassword) {
  const std::string wrong = "Wrong-Pass-4242";
  Settings s = PeopleTarget("people");
  s.entries["password"] = Tmpl(wrong, TemplateContext::kValue);
  Status st = NewTarget(s)->Open(ctx_);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Status::Code::kInvalid) << st.ToString();
  EXPECT_NE(st.message().find("password authentication failed"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("127.0.0.1:" + std::to_string(pg_->port()) + "/" + pg_->database()),
            std::string::npos)
      << st.message();
  EXPECT_EQ(st.message().find(wrong), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find(pg_->password()), std::string::npos) << st.message();

  // In the connection string itself (key=value and URI), echoed by a parse error or not.
  for (const std::string& conn : {pg_->ConnectionString(false) + " password=" + wrong,
                                  "postgresql://" + pg_->user() + ":" + wrong + "@127.0.0.1:" +
                                      std::to_string(pg_->port()) + "/" + pg_->database(),
                                  "host=127.0.0.1 password=" + wrong + " bogus_option=1"}) {
    Settings c = PeopleTarget("people");
    c.entries.erase("password");
    c.entries["connection"] = Tmpl(conn);
    auto t = Def().make_target(c);
    Status e = t.ok() ? (*t)->Open(ctx_) : t.status();
    ASSERT_FALSE(e.ok());
    EXPECT_EQ(e.message().find(wrong), std::string::npos) << e.message();
    EXPECT_EQ(e.message().find("Pass"), std::string::npos) << e.message();
  }
  bool registered = false;
  for (const auto& sec : log_.secrets) registered |= sec == wrong;
  EXPECT_TRUE(registered) << "the password is handed to the log as a secret";

  // Nobody listening: transient, naming the server.
  Settings down = PeopleTarget("people");
  int port = testing_util::FreePort();
  down.entries["connection"] =
      Tmpl("host=127.0.0.1 port=" + std::to_string(port) + " dbname=x user=y");
  st = NewTarget(down)->Open(ctx_);
  EXPECT_EQ(st.code(), Status::Code::kTransient) << st.ToString();
  EXPECT_NE(st.message().find("127.0.0.1:" + std::to_string(port)), std::string::npos);
}

// --- keyonce run, killed with SIGKILL --------------------------------------

TEST_F(PostgresTest, CheckpointKeepsTheStateIdAndAnOldCheckpointTableIsUpgraded) {
  Sql("CREATE TABLE marked (id int PRIMARY KEY, name text, dept text)");
  // The checkpoint table as keyonce 0.1 made it: no state id.
  Sql("CREATE TABLE keyonce_checkpoint (target text PRIMARY KEY, batch bigint NOT NULL)");
  Sql("INSERT INTO keyonce_checkpoint VALUES ('" + ctx_.recipe + "/payroll', 7)");
  Sql("ALTER TABLE keyonce_checkpoint OWNER TO " + pg_->user());  // made by keyonce's user
  auto m = NewTarget(PeopleTarget("marked"))->Mark(ctx_);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(m->has_value());
  EXPECT_EQ((*m)->batch, 7u);
  EXPECT_EQ((*m)->state_id, "");

  ctx_.state_id = "5eed5eed5eed5eed";
  auto t = OpenTarget(PeopleTarget("marked"));
  ASSERT_TRUE(Write(t.get(), Record{{"id", 1}, {"name", "A"}, {"dept", "IT"}}, 9).status.ok());
  ASSERT_TRUE(t->Commit(9, true).ok());
  t.reset();
  m = NewTarget(PeopleTarget("marked"))->Mark(ctx_);
  ASSERT_TRUE(m.ok() && m->has_value()) << m.status().ToString();
  EXPECT_EQ((*m)->batch, 9u);
  EXPECT_EQ((*m)->state_id, "5eed5eed5eed5eed");
  // Another target of the same database has no mark.
  RunContext other = ctx_;
  other.target_name = "other";
  m = NewTarget(PeopleTarget("marked"))->Mark(other);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->has_value());
}

TEST_F(PostgresTest, KeyonceRunKilledMidRunThenRerunWritesEachRowOnce) {
  using namespace testing_util;
  constexpr int kRecords = 3000;
  Sql("CREATE TABLE e2e (id int, amount text)");  // no unique index: a duplicate would show
  auto dir = FreshDir("postgres_e2e");
  std::ostringstream in;
  in << "id;amount\n";
  for (int i = 1; i <= kRecords; ++i) in << i << ";" << i * 3 << ",50\n";
  WriteFile(dir / "in.csv", in.str());
  WriteFile(dir / "r.yaml",
            "recipe: pg-e2e\n"
            "secrets:\n"
            "  pg: {env: KEYONCE_TEST_PG_PASSWORD}\n"
            "source: {type: csv, path: in.csv, delimiter: \";\"}\n"
            "key: \"{{ record.id }}\"\n"
            "batch_records: 37\n"
            "targets:\n"
            "  - name: db\n"
            "    type: postgres\n"
            "    connection: \"" +
                pg_->ConnectionString(false) +
                "\"\n"
                "    password: \"{{ secrets.pg }}\"\n"
                "    table: e2e\n"
                "    mode: insert\n"
                "    columns: {id: \"{{ record.id }}\", amount: \"{{ record.amount }}\"}\n");
  setenv("KEYONCE_TEST_PG_PASSWORD", pg_->password().c_str(), 1);
  std::vector<std::string> args = {"run", "r.yaml", "--state", "state.db", "--no-progress"};
  std::map<std::string, std::string> env = {{"KEYONCE_TEST_PG_PASSWORD", pg_->password()}};

  // How long a whole run takes here, to spread the kills over it.
  auto probe = FreshDir("postgres_e2e_probe");
  WriteFile(probe / "in.csv", in.str());
  WriteFile(probe / "r.yaml", ReadFile(dir / "r.yaml"));
  Sql("CREATE TABLE e2e_probe (LIKE e2e)");
  {
    std::string y = ReadFile(probe / "r.yaml");
    y.replace(y.find("table: e2e"), 10, "table: e2e_probe");
    // Its own recipe name: a checkpoint row belongs to one recipe of one state file.
    y.replace(y.find("recipe: pg-e2e"), 14, "recipe: pg-e2e-probe");
    WriteFile(probe / "r.yaml", y);
  }
  auto t0 = std::chrono::steady_clock::now();
  auto full = Keyonce(args, probe, env);
  ASSERT_EQ(full.exit_code, 0) << full.all();
  auto run_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_EQ(pg_->QueryInt("SELECT count(*) FROM e2e_probe"), kRecords);
  EXPECT_EQ(full.all().find(pg_->password()), std::string::npos);

  std::mt19937 rng(20261127);
  int killed = 0;
  for (int i = 0; i < 12; ++i) {
    pid_t pid = Spawn(args, dir);
    int delay = std::uniform_int_distribution<int>(0, static_cast<int>(run_ms * 3 / 4) + 5)(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    if (kill(pid, SIGKILL) == 0) ++killed;
    int status = 0;
    waitpid(pid, &status, 0);
  }
  auto last = Keyonce(args, dir, env);
  ASSERT_EQ(last.exit_code, 0) << last.all();
  EXPECT_GT(killed, 5);
  EXPECT_EQ(pg_->QueryInt("SELECT count(*) FROM e2e"), kRecords);
  EXPECT_EQ(pg_->QueryInt("SELECT count(DISTINCT id) FROM e2e"), kRecords);
  auto again = Keyonce(args, dir, env);
  EXPECT_EQ(again.exit_code, 0) << again.all();
  EXPECT_NE(again.out.find("0 written"), std::string::npos) << again.out;
  std::printf("[ timing   ] keyonce run csv -> postgres: %d records in %lld ms\n", kRecords,
              static_cast<long long>(run_ms));
  fs::remove_all(dir);
  fs::remove_all(probe);
}

}  // namespace
}  // namespace keyonce
