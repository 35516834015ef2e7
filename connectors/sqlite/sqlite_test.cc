#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "keyonce/connector.h"

namespace keyonce {
namespace {

namespace fs = std::filesystem;

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

class NullLog : public Log {
 public:
  void Info(const std::string&) override {}
  void Warn(const std::string&) override {}
};

// A plain connection for setting up and inspecting databases.
class Db {
 public:
  explicit Db(const fs::path& p) {
    if (sqlite3_open(p.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("open");
    sqlite3_busy_timeout(db_, 5000);
  }
  ~Db() { sqlite3_close_v2(db_); }
  void Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error("sql failed: " + msg + " in " + sql);
    }
  }
  // First column of all rows, as text ("NULL" for null).
  std::vector<std::string> Column(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      throw std::runtime_error(std::string("prepare failed: ") + sqlite3_errmsg(db_));
    }
    std::vector<std::string> out;
    while (sqlite3_step(s) == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(s, 0);
      out.push_back(t ? reinterpret_cast<const char*>(t) : "NULL");
    }
    sqlite3_finalize(s);
    return out;
  }
  std::string One(const std::string& sql) {
    auto c = Column(sql);
    return c.empty() ? "<none>" : c[0];
  }
  sqlite3* get() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

class SqliteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("keyonce_sqlite_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    params_ = boost::json::object{{"dept", "IT"}, {"name", "x' OR '1'='1"}};
    ctx_.recipe = "absence";
    ctx_.run_id = "run1";
    ctx_.target_name = "payroll";
    ctx_.scope.params = &params_;
    ctx_.log = &log_;
  }
  void TearDown() override { fs::remove_all(dir_); }

  const ConnectorDef& Def() {
    const ConnectorDef* d = Registry::Global().Find("sqlite");
    if (!d) throw std::runtime_error("sqlite connector not registered");
    return *d;
  }

  Settings Base(const std::string& path = "db.sqlite") {
    Settings s;
    s.where = "targets[0]";
    s.base_dir = dir_;
    s.entries["path"] = Tmpl(path);
    return s;
  }

  // A target writing people(id, name, dept).
  Settings PeopleTarget(const std::string& mode = "upsert") {
    Settings s = Base();
    s.entries["table"] = Lit("people");
    s.entries["columns"] = TmplMap(
        {{"id", "{{ record.id }}"}, {"name", "{{ record.name }}"}, {"dept", "{{ record.dept }}"}});
    s.entries["mode"] = Lit(Value(mode));
    s.entries["key_columns"] = List({"id"});
    s.entries["create_table"] = Lit(true);
    return s;
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

  // Holds a record and the scope that points at it.
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

  // WriteMany as the runner calls a target that writes in order: each call
  // returns after its first failed write, and the next starts after it.
  std::vector<WriteResult> WriteInOrder(Target* t, const std::vector<WriteOp>& ops) {
    std::vector<WriteResult> out;
    while (out.size() < ops.size()) {
      std::vector<WriteOp> rest(ops.begin() + static_cast<std::ptrdiff_t>(out.size()), ops.end());
      std::vector<WriteResult> got = t->WriteMany(rest);
      EXPECT_FALSE(got.empty());
      if (got.empty()) break;
      for (size_t i = 0; i + 1 < got.size(); ++i) {
        EXPECT_TRUE(got[i].status.ok()) << "a failure that is not the call's last";
      }
      for (auto& r : got) out.push_back(std::move(r));
    }
    return out;
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

  fs::path dir_;
  Value params_;
  NullLog log_;
  RunContext ctx_;
};

// --- registration ----------------------------------------------------------

TEST_F(SqliteTest, ConnectorIsRegisteredWithDocumentedSettings) {
  const ConnectorDef& d = Def();
  ASSERT_TRUE(d.source && d.target && d.lookup);
  for (const auto* spec : {&*d.source, &*d.target, &*d.lookup}) {
    EXPECT_FALSE(spec->summary.empty());
    EXPECT_FALSE(spec->example_yaml.empty());
    for (const auto& f : spec->fields) {
      EXPECT_FALSE(f.description.empty()) << f.name;
      EXPECT_FALSE(f.example.empty()) << f.name;
    }
  }
  EXPECT_EQ(d.source->fields[1].name, "query");
  EXPECT_EQ(d.source->fields[1].template_context, TemplateContext::kSql);
  EXPECT_EQ(d.source->fields[1].template_roots, kRootsStatic);
}

// --- source ----------------------------------------------------------------

TEST_F(SqliteTest, SourceStreamsRowsTypedAsStored) {
  {
    Db db(dir_ / "in.sqlite");
    db.Exec("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n)");
    db.Exec("INSERT INTO t VALUES (42, 1.5, 'Ærø', x'00FF10', NULL), (-1, 0.25, '', x'', NULL)");
  }
  Settings s = Base("in.sqlite");
  s.entries["query"] = Tmpl("SELECT i, r, s, b, n FROM t ORDER BY i DESC", TemplateContext::kSql);
  auto src = Def().make_source(s);
  ASSERT_TRUE(src.ok());
  ASSERT_TRUE((*src)->Open(ctx_).ok());
  auto items = ReadAll(src->get());
  ASSERT_EQ(items.size(), 2u);
  const Record& r = items[0].record;
  EXPECT_EQ(items[0].position, "row 1");
  EXPECT_EQ(items[1].position, "row 2");
  EXPECT_EQ(r.at("i"), Value(42));
  EXPECT_EQ(r.at("r"), Value(1.5));
  EXPECT_EQ(r.at("s"), Value("Ærø"));
  EXPECT_EQ(r.at("b"), Value("AP8Q"));  // base64 of 00 FF 10
  EXPECT_TRUE(r.at("n").is_null());
  EXPECT_EQ(items[1].record.at("b"), Value(""));
  EXPECT_TRUE((*src)->Close().ok());
}

TEST_F(SqliteTest, SourceBindsTemplateValuesSoInjectionIsJustData) {
  {
    Db db(dir_ / "in.sqlite");
    db.Exec("CREATE TABLE people (id INTEGER, name TEXT, dept TEXT)");
    db.Exec(
        "INSERT INTO people VALUES (1, 'Anna', 'IT'), (2, 'Bo', 'HR'), "
        "(3, 'x'' OR ''1''=''1', 'IT')");
  }
  Settings s = Base("in.sqlite");
  s.entries["query"] =
      Tmpl("SELECT id FROM people WHERE name = {{ params.name }}", TemplateContext::kSql);
  auto src = Def().make_source(s);
  ASSERT_TRUE(src.ok());
  Status st = (*src)->Open(ctx_);
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto items = ReadAll(src->get());
  // Spliced into the SQL it would match every row; bound it matches only the
  // person whose name is literally that text.
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].record.at("id"), Value(3));

  Settings s2 = Base("in.sqlite");
  s2.entries["query"] = Tmpl("SELECT id FROM people WHERE dept = {{ params.dept }} ORDER BY id",
                             TemplateContext::kSql);
  auto src2 = Def().make_source(s2);
  ASSERT_TRUE((*src2)->Open(ctx_).ok());
  auto items2 = ReadAll(src2->get());
  ASSERT_EQ(items2.size(), 2u);
  EXPECT_EQ(items2[1].record.at("id"), Value(3));
}

TEST_F(SqliteTest, SourceRefusesQueriesThatWriteAndMissingDatabases) {
  {
    Db db(dir_ / "in.sqlite");
    db.Exec("CREATE TABLE t (a)");
  }
  Settings s = Base("in.sqlite");
  s.entries["query"] = Tmpl("DELETE FROM t", TemplateContext::kSql);
  auto src = Def().make_source(s);
  EXPECT_EQ((*src)->Open(ctx_).code(), Status::Code::kInvalid);

  Settings two = Base("in.sqlite");
  two.entries["query"] = Tmpl("SELECT 1; SELECT 2", TemplateContext::kSql);
  EXPECT_EQ((*Def().make_source(two))->Open(ctx_).code(), Status::Code::kInvalid);

  Settings missing = Base("nope.sqlite");
  missing.entries["query"] = Tmpl("SELECT 1", TemplateContext::kSql);
  EXPECT_EQ((*Def().make_source(missing))->Open(ctx_).code(), Status::Code::kNotFound);
  EXPECT_FALSE(fs::exists(dir_ / "nope.sqlite"));
}

// --- target: writing -------------------------------------------------------

TEST_F(SqliteTest, TargetTraitsFollowMode) {
  EXPECT_TRUE(NewTarget(PeopleTarget("upsert"))->Traits().supports_update);
  EXPECT_TRUE(NewTarget(PeopleTarget("upsert"))->Traits().idempotent);
  EXPECT_FALSE(NewTarget(PeopleTarget("insert"))->Traits().supports_update);
  EXPECT_FALSE(NewTarget(PeopleTarget("insert"))->Traits().idempotent);
}

TEST_F(SqliteTest, TargetCreatesTableAndInsertsWithReturning) {
  Settings s = PeopleTarget("insert");
  s.entries["path"] = Tmpl("out/new/db.sqlite");  // create_table creates the folder too
  s.entries["returning"] = List({"name"});
  auto t = OpenTarget(s);
  WriteResult w = Write(t.get(), Record{{"id", 1}, {"name", "Anna"}, {"dept", "IT"}});
  ASSERT_TRUE(w.status.ok()) << w.status.ToString();
  EXPECT_EQ(w.reply, boost::json::parse(R"({"rowid": 1, "name": "Anna"})"));
  // kUpdate with mode insert is still a plain insert (a new row).
  w = Write(t.get(), Record{{"id", 2}, {"name", "Bo"}, {"dept", nullptr}}, 1,
            WriteOp::Kind::kUpdate);
  ASSERT_TRUE(w.status.ok()) << w.status.ToString();
  EXPECT_EQ(w.reply.at("rowid"), Value(2));
  auto c = t->Commit(1, true);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->durable);
  EXPECT_EQ(c->token, "1");
  ASSERT_TRUE(t->Close(true).ok());

  Db db(dir_ / "out" / "new" / "db.sqlite");
  EXPECT_EQ(db.Column("SELECT name || '/' || ifnull(dept, 'NULL') FROM people ORDER BY id"),
            (std::vector<std::string>{"Anna/IT", "Bo/NULL"}));
  EXPECT_EQ(db.One("SELECT typeof(id) FROM people LIMIT 1"), "integer");
  EXPECT_EQ(db.One("PRAGMA journal_mode"), "wal");
  // create_table made a unique index on key_columns.
  EXPECT_EQ(db.One("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = "
                   "'people' AND sql LIKE 'CREATE UNIQUE INDEX%'"),
            "1");
}

TEST_F(SqliteTest, TargetUpsertUpdatesTheRowWithTheSameKey) {
  Settings s = PeopleTarget("upsert");
  s.entries["returning"] = List({"dept"});
  auto t = OpenTarget(s);
  ASSERT_TRUE(Write(t.get(), Record{{"id", 1}, {"name", "Anna"}, {"dept", "IT"}}).status.ok());
  ASSERT_TRUE(Write(t.get(), Record{{"id", 2}, {"name", "Bo"}, {"dept", "HR"}}).status.ok());
  WriteResult w = Write(t.get(), Record{{"id", 1}, {"name", "Anna B"}, {"dept", "Løn"}}, 1,
                        WriteOp::Kind::kUpdate);
  ASSERT_TRUE(w.status.ok()) << w.status.ToString();
  EXPECT_EQ(w.reply, boost::json::parse(R"({"rowid": 1, "dept": "Løn"})"));
  ASSERT_TRUE(t->Commit(1, true).ok());
  t->Close(true);
  Db db(dir_ / "db.sqlite");
  EXPECT_EQ(db.Column("SELECT id || ':' || name || ':' || dept FROM people ORDER BY id"),
            (std::vector<std::string>{"1:Anna B:Løn", "2:Bo:HR"}));
}

TEST_F(SqliteTest, TargetReplyCarriesRowidWithoutReturning) {
  auto t = OpenTarget(PeopleTarget("upsert"));
  WriteResult a = Write(t.get(), Record{{"id", 10}, {"name", "A"}, {"dept", "X"}});
  WriteResult b = Write(t.get(), Record{{"id", 20}, {"name", "B"}, {"dept", "X"}});
  WriteResult a2 =
      Write(t.get(), Record{{"id", 10}, {"name", "A2"}, {"dept", "Y"}}, 1, WriteOp::Kind::kUpdate);
  ASSERT_TRUE(a.status.ok() && b.status.ok() && a2.status.ok()) << a2.status.ToString();
  EXPECT_EQ(a.reply, boost::json::parse(R"({"rowid": 1})"));
  EXPECT_EQ(b.reply, boost::json::parse(R"({"rowid": 2})"));
  EXPECT_EQ(a2.reply, boost::json::parse(R"({"rowid": 1})"));
  ASSERT_TRUE(t->Commit(1, true).ok());
}

TEST_F(SqliteTest, TargetUpsertWithOnlyKeyColumnsStillReplies) {
  Settings s = Base();
  s.entries["table"] = Lit("ids");
  s.entries["columns"] = TmplMap({{"id", "{{ record.id }}"}});
  s.entries["key_columns"] = List({"id"});
  s.entries["create_table"] = Lit(true);
  auto t = OpenTarget(s);
  WriteResult a = Write(t.get(), Record{{"id", 5}});
  WriteResult b = Write(t.get(), Record{{"id", 5}});
  ASSERT_TRUE(a.status.ok() && b.status.ok()) << b.status.ToString();
  EXPECT_EQ(a.reply.at("rowid"), b.reply.at("rowid"));
  ASSERT_TRUE(t->Commit(1, true).ok());
  t->Close(true);
  EXPECT_EQ(Db(dir_ / "db.sqlite").One("SELECT count(*) FROM ids"), "1");
}

TEST_F(SqliteTest, TargetUpsertNeedsUniqueIndexAndKeyColumns) {
  {
    Db db(dir_ / "db.sqlite");
    db.Exec("CREATE TABLE people (id, name, dept)");
  }
  Settings s = PeopleTarget("upsert");
  s.entries["create_table"] = Lit(false);
  auto t = NewTarget(s);
  Status st = t->Open(ctx_);
  EXPECT_EQ(st.code(), Status::Code::kInvalid);
  EXPECT_NE(st.message().find("UNIQUE index"), std::string::npos) << st.message();

  Settings no_keys = PeopleTarget("upsert");
  no_keys.entries.erase("key_columns");
  EXPECT_EQ(Def().make_target(no_keys).status().code(), Status::Code::kInvalid);

  Settings bad_key = PeopleTarget("upsert");
  bad_key.entries["key_columns"] = List({"nope"});
  EXPECT_EQ(Def().make_target(bad_key).status().code(), Status::Code::kInvalid);

  // Without create_table the table must exist.
  Settings missing = PeopleTarget("insert");
  missing.entries["create_table"] = Lit(false);
  missing.entries["table"] = Lit("absent");
  EXPECT_FALSE(NewTarget(missing)->Open(ctx_).ok());
}

TEST_F(SqliteTest, TargetRenderShowsTheValuesWriteBinds) {
  Settings s = Base();
  s.entries["table"] = Lit("t");
  s.entries["columns"] = TmplMap({{"n", "{{ record.n }}"},
                                  {"label", "no. {{ record.n }}"},
                                  {"flag", "{{ record.flag }}"},
                                  {"missing", "{{ record.nothing }}"}});
  s.entries["mode"] = Lit("insert");
  s.entries["create_table"] = Lit(true);
  auto t = OpenTarget(s);
  auto o = MakeOp(Record{{"n", 7}, {"flag", true}});
  auto r = t->Render(o->op);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, boost::json::parse(R"({"table": "t", "op": "insert",
      "values": {"n": 7, "label": "no. 7", "flag": true, "missing": null}})"));
  ASSERT_TRUE(t->Write(o->op).status.ok());
  ASSERT_TRUE(t->Commit(1, true).ok());
  t->Close(true);
  Db db(dir_ / "db.sqlite");
  EXPECT_EQ(db.One("SELECT n || '|' || label || '|' || flag || '|' || typeof(missing) FROM t"),
            "7|no. 7|1|null");
  EXPECT_EQ(NewTarget(PeopleTarget())->Render(o->op)->at("op"), Value("upsert"));
}

TEST_F(SqliteTest, TargetQuotesIdentifiersAndRejectsBadOnes) {
  Settings s = Base();
  s.entries["table"] = Lit("t\"; DROP TABLE keep; --");
  s.entries["columns"] = TmplMap({{"we\"ird col", "{{ record.a }}"}, {"id", "{{ record.id }}"}});
  s.entries["key_columns"] = List({"id"});
  s.entries["returning"] = List({"we\"ird col"});
  s.entries["create_table"] = Lit(true);
  {
    Db db(dir_ / "db.sqlite");
    db.Exec("CREATE TABLE keep (x)");
  }
  auto t = OpenTarget(s);
  WriteResult w = Write(t.get(), Record{{"a", "v"}, {"id", 1}});
  ASSERT_TRUE(w.status.ok()) << w.status.ToString();
  EXPECT_EQ(w.reply.at("we\"ird col"), Value("v"));
  ASSERT_TRUE(t->Commit(1, true).ok());
  t->Close(true);
  Db db(dir_ / "db.sqlite");
  EXPECT_EQ(db.One("SELECT count(*) FROM sqlite_master WHERE name = 'keep'"), "1");
  EXPECT_EQ(db.One("SELECT \"we\"\"ird col\" FROM \"t\"\"; DROP TABLE keep; --\""), "v");

  for (const char* bad : {"", "tab\nle", "nul\x01"}) {
    Settings b = PeopleTarget();
    b.entries["table"] = Lit(bad);
    EXPECT_EQ(Def().make_target(b).status().code(), Status::Code::kInvalid) << bad;
  }
  Settings bc = PeopleTarget();
  bc.entries["columns"] = TmplMap({{"id", "{{ record.id }}"}, {"bad\tcol", "x"}});
  EXPECT_EQ(Def().make_target(bc).status().code(), Status::Code::kInvalid);
  Settings own = PeopleTarget();
  own.entries["table"] = Lit("keyonce_checkpoint");
  EXPECT_EQ(Def().make_target(own).status().code(), Status::Code::kInvalid);
}

// --- target: errors --------------------------------------------------------

TEST_F(SqliteTest, TargetConstraintErrorIsPermanentAndNamesNoValue) {
  {
    Db db(dir_ / "db.sqlite");
    // The last CHECK quotes a value in its own text: SQLite's message would
    // echo it, so it is masked.
    db.Exec(
        "CREATE TABLE people (id INTEGER, cpr TEXT NOT NULL UNIQUE, hours INTEGER "
        "CHECK (hours >= 0), CHECK (cpr <> '9902801234'))");
    db.Exec(
        "CREATE TRIGGER no_test BEFORE INSERT ON people WHEN NEW.cpr LIKE '88%' "
        "BEGIN SELECT RAISE(ABORT, 'test persons are refused'); END");
  }
  Settings s = Base();
  s.entries["table"] = Lit("people");
  s.entries["columns"] = TmplMap(
      {{"id", "{{ record.id }}"}, {"cpr", "{{ record.cpr }}"}, {"hours", "{{ record.hours }}"}});
  s.entries["mode"] = Lit("insert");
  auto t = OpenTarget(s);
  ASSERT_TRUE(Write(t.get(), Record{{"id", 1}, {"cpr", "0101901234"}, {"hours", 8}}).status.ok());

  struct Case {
    Record record;
    std::string expect;
  } cases[] = {
      {Record{{"id", 2}, {"cpr", "0101901234"}, {"hours", 8}}, "UNIQUE constraint failed"},
      {Record{{"id", 3}, {"cpr", nullptr}, {"hours", 8}}, "NOT NULL constraint failed"},
      {Record{{"id", 4}, {"cpr", "0202801234"}, {"hours", -5}}, "CHECK constraint failed"},
      {Record{{"id", 5}, {"cpr", "9902801234"}, {"hours", 1}},
       "CHECK constraint failed: cpr <> '<value>'"},
      {Record{{"id", 6}, {"cpr", "8802801234"}, {"hours", 1}}, "test persons are refused"},
  };
  for (const auto& c : cases) {
    WriteResult w = Write(t.get(), c.record);
    EXPECT_EQ(w.status.code(), Status::Code::kPermanent) << w.status.ToString();
    EXPECT_NE(w.status.message().find(c.expect), std::string::npos) << w.status.message();
    for (const auto& kv : c.record) {
      if (kv.value().is_string()) {
        EXPECT_EQ(w.status.message().find(std::string(kv.value().get_string())), std::string::npos)
            << w.status.message();
      }
    }
  }
  // The failed statements did not spoil the batch.
  ASSERT_TRUE(Write(t.get(), Record{{"id", 7}, {"cpr", "0303701234"}, {"hours", 0}}).status.ok());
  ASSERT_TRUE(t->Commit(1, true).ok());
  t->Close(true);
  EXPECT_EQ(Db(dir_ / "db.sqlite").One("SELECT group_concat(id) FROM people"), "1,7");
}

// Without a capture, WriteMany puts many rows in one statement; a row that
// fails must still fail alone, with Write's message, and nothing be written twice.
TEST_F(SqliteTest, TargetWritesManyRowsAStatementAndTellsAFailedRowApart) {
  {
    Db db(dir_ / "db.sqlite");
    db.Exec("CREATE TABLE people (id INTEGER, name TEXT, hours INTEGER CHECK (hours >= 0))");
    // RAISE(FAIL) keeps the rows a statement wrote before the failing one.
    db.Exec(
        "CREATE TRIGGER no_test BEFORE INSERT ON people WHEN NEW.name = 'TEST' "
        "BEGIN SELECT RAISE(FAIL, 'test persons are refused'); END");
  }
  Settings s = Base();
  s.entries["table"] = Lit("people");
  s.entries["columns"] = TmplMap({{"id", "{{ record.id }}"},
                                  {"name", "{{ record.name | upper }}"},
                                  {"hours", "{{ record.hours }}"}});
  s.entries["mode"] = Lit("insert");
  auto t = OpenTarget(s);
  std::vector<std::unique_ptr<Op>> held;
  std::vector<WriteOp> ops;
  for (int i = 0; i < 200; ++i) {
    held.push_back(MakeOp(Record{{"id", i},
                                 {"name", i == 70 ? "test" : "p" + std::to_string(i)},
                                 {"hours", i == 40 ? -1 : i}}));
    held.back()->op.wants_reply = false;
    ops.push_back(held.back()->op);
  }
  // `upper` makes each name: values made for the rows of a statement stay theirs.
  std::vector<WriteResult> res = WriteInOrder(t.get(), ops);
  ASSERT_EQ(res.size(), ops.size());
  for (int i = 0; i < 200; ++i) {
    if (i == 40 || i == 70) {
      EXPECT_EQ(res[i].status.code(), Status::Code::kPermanent) << i;
    } else {
      EXPECT_TRUE(res[i].status.ok()) << i << ": " << res[i].status.ToString();
    }
  }
  EXPECT_NE(res[40].status.message().find("CHECK constraint failed"), std::string::npos);
  ASSERT_TRUE(t->Commit(1, true).ok());
  t->Close(true);
  Db db(dir_ / "db.sqlite");
  EXPECT_EQ(db.One("SELECT count(*) || ' ' || count(DISTINCT id) FROM people"), "198 198");
  EXPECT_EQ(db.One("SELECT name FROM people WHERE id = 133"), "P133");
  EXPECT_EQ(db.One("SELECT count(*) FROM people WHERE id IN (40, 70)"), "0");
}

// A chunk runs in a savepoint, so SQLite keeps the pages it changes in a
// statement journal. Chunks into a unique index on random keys change a page
// per row: that journal must stay in memory, not be a temporary file written
// and truncated for every chunk (it was 12% of a large run's CPU).
TEST_F(SqliteTest, TargetKeepsAChunksStatementJournalOutOfTemporaryFiles) {
  auto temp_files = [] {
    int n = 0;
    for (const auto& fd : fs::directory_iterator("/proc/self/fd")) {
      std::error_code ec;
      if (fs::read_symlink(fd.path(), ec).string().find("etilqs_") != std::string::npos) ++n;
    }
    return n;
  };
  auto t = OpenTarget(PeopleTarget());
  std::vector<std::unique_ptr<Op>> held;
  std::vector<WriteOp> ops;
  // Keys spread over the index; names long enough for a few rows a page.
  for (int batch = 1; batch <= 2; ++batch) {
    for (int i = 0; i < 3000; ++i) {
      held.push_back(MakeOp(Record{{"id", (i * 7919 + batch) % 100003},
                                   {"name", std::string(300, 'a' + i % 26)},
                                   {"dept", "X"}},
                            static_cast<uint64_t>(batch)));
      held.back()->op.wants_reply = false;
      ops.push_back(held.back()->op);
    }
    for (const WriteResult& r : WriteInOrder(t.get(), ops)) ASSERT_TRUE(r.status.ok());
    // Before the commit: SQLite keeps a statement journal's file open until then.
    EXPECT_EQ(temp_files(), 0) << "batch " << batch;
    ASSERT_TRUE(t->Commit(static_cast<uint64_t>(batch), true).ok());
    ops.clear();
  }
  t->Close(true);
  Db db(dir_ / "db.sqlite");
  EXPECT_EQ(db.One("SELECT count(*) FROM people"), "6000");
}

TEST_F(SqliteTest, TargetUpsertOfTheSameKeyTwiceInOneStatementKeepsTheLater) {
  auto t = OpenTarget(PeopleTarget());
  std::vector<std::unique_ptr<Op>> held;
  std::vector<WriteOp> ops;
  for (int i = 0; i < 100; ++i) {
    held.push_back(
        MakeOp(Record{{"id", i % 50}, {"name", "v" + std::to_string(i)}, {"dept", "X"}}));
    held.back()->op.wants_reply = false;
    ops.push_back(held.back()->op);
  }
  std::vector<WriteResult> res = WriteInOrder(t.get(), ops);
  EXPECT_EQ(res.size(), ops.size());
  for (const WriteResult& r : res) EXPECT_TRUE(r.status.ok()) << r.status.ToString();
  ASSERT_TRUE(t->Commit(1, true).ok());
  t->Close(true);
  Db db(dir_ / "db.sqlite");
  EXPECT_EQ(db.One("SELECT count(*) FROM people"), "50");
  EXPECT_EQ(db.One("SELECT name FROM people WHERE id = 7"), "v57");
}

TEST_F(SqliteTest, TargetBusyDatabaseIsTransient) {
  Settings s = PeopleTarget("insert");
  s.entries["busy_timeout_seconds"] = Lit(0.05);
  auto t = OpenTarget(s);
  Db other(dir_ / "db.sqlite");
  other.Exec("BEGIN IMMEDIATE");
  WriteResult w = Write(t.get(), Record{{"id", 1}, {"name", "A"}, {"dept", "X"}});
  EXPECT_EQ(w.status.code(), Status::Code::kTransient) << w.status.ToString();
  other.Exec("ROLLBACK");
  w = Write(t.get(), Record{{"id", 1}, {"name", "A"}, {"dept", "X"}});
  EXPECT_TRUE(w.status.ok()) << w.status.ToString();
  ASSERT_TRUE(t->Commit(1, true).ok());
}

// --- target: exactly once --------------------------------------------------

TEST_F(SqliteTest, CommitStoresCheckpointAndRecoverReadsIt) {
  // Before anything: no database, no checkpoint.
  {
    auto t = NewTarget(PeopleTarget());
    auto r = t->Recover(ctx_, 1, "");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->known);
    EXPECT_EQ(r->applied_through, 0u);
  }
  auto t = OpenTarget(PeopleTarget());
  ASSERT_TRUE(Write(t.get(), Record{{"id", 1}, {"name", "A"}, {"dept", "X"}}, 6).status.ok());
  auto c6 = t->Commit(6, false);
  ASSERT_TRUE(c6.ok());
  EXPECT_EQ(c6->token, "6");
  auto c7 = t->Commit(7, true);  // a batch without writes still moves the checkpoint
  ASSERT_TRUE(c7.ok());
  t->Close(true);

  Db db(dir_ / "db.sqlite");
  EXPECT_EQ(db.One("SELECT target || '=' || batch FROM keyonce_checkpoint"), "absence/payroll=7");

  auto t2 = NewTarget(PeopleTarget());
  auto r = t2->Recover(ctx_, 8, "7");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->known);
  EXPECT_EQ(r->applied_through, 7u);

  // Another target in the same database has its own row.
  RunContext other = ctx_;
  other.target_name = "archive";
  auto r2 = t2->Recover(other, 1, "");
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->applied_through, 0u);
}

TEST_F(SqliteTest, CheckpointKeepsTheStateIdAndAnOldCheckpointTableIsUpgraded) {
  {
    // The checkpoint table as keyonce 0.1 made it: no state id.
    Db db(dir_ / "db.sqlite");
    db.Exec(
        "CREATE TABLE keyonce_checkpoint (target TEXT PRIMARY KEY, batch INTEGER);"
        "INSERT INTO keyonce_checkpoint VALUES ('absence/payroll', 4)");
  }
  auto m = NewTarget(PeopleTarget())->Mark(ctx_);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(m->has_value());
  EXPECT_EQ((*m)->batch, 4u);
  EXPECT_EQ((*m)->state_id, "");

  ctx_.state_id = "0123abcd0123abcd";
  auto t = OpenTarget(PeopleTarget());
  ASSERT_TRUE(Write(t.get(), Record{{"id", 1}, {"name", "A"}, {"dept", "X"}}, 5).status.ok());
  ASSERT_TRUE(t->Commit(5, true).ok());
  t->Close(true);
  m = NewTarget(PeopleTarget())->Mark(ctx_);
  ASSERT_TRUE(m.ok() && m->has_value()) << m.status().ToString();
  EXPECT_EQ((*m)->batch, 5u);
  EXPECT_EQ((*m)->state_id, "0123abcd0123abcd");
  // No database at all: no mark, and nothing is created by asking.
  Settings elsewhere = PeopleTarget();
  elsewhere.entries["path"] = Tmpl("none/db.sqlite");
  m = NewTarget(elsewhere)->Mark(ctx_);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE(m->has_value());
  EXPECT_FALSE(fs::exists(dir_ / "none"));
}

TEST_F(SqliteTest, UncommittedBatchIsRolledBackOnCloseAndRecoverSaysSo) {
  auto t = OpenTarget(PeopleTarget());
  ASSERT_TRUE(Write(t.get(), Record{{"id", 1}, {"name", "A"}, {"dept", "X"}}, 1).status.ok());
  ASSERT_TRUE(t->Commit(1, false).ok());
  ASSERT_TRUE(Write(t.get(), Record{{"id", 2}, {"name", "B"}, {"dept", "X"}}, 2).status.ok());
  ASSERT_TRUE(Write(t.get(), Record{{"id", 3}, {"name", "C"}, {"dept", "X"}}, 2).status.ok());
  // Another connection does not see the open transaction.
  EXPECT_EQ(Db(dir_ / "db.sqlite").One("SELECT count(*) FROM people"), "1");
  ASSERT_TRUE(t->Close(false).ok());

  Db db(dir_ / "db.sqlite");
  EXPECT_EQ(db.One("SELECT group_concat(id) FROM people"), "1");
  EXPECT_EQ(db.One("SELECT batch FROM keyonce_checkpoint"), "1");
  auto r = NewTarget(PeopleTarget())->Recover(ctx_, 2, "1");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->applied_through, 1u);
}

TEST_F(SqliteTest, CheckFindsWrittenRowsByKey) {
  Settings s = PeopleTarget();
  s.entries["returning"] = List({"name"});
  auto t = OpenTarget(s);
  ASSERT_TRUE(Write(t.get(), Record{{"id", 1}, {"name", "Anna"}, {"dept", "X"}}).status.ok());
  ASSERT_TRUE(t->Commit(1, true).ok());
  t->Close(true);

  auto t2 = OpenTarget(s);
  auto o = MakeOp(Record{{"id", 1}, {"name", "changed"}, {"dept", "Y"}});
  auto c = t2->Check(o->op);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->outcome, CheckResult::Outcome::kExists);
  EXPECT_EQ(c->reply, boost::json::parse(R"({"rowid": 1, "name": "Anna"})"));
  auto o2 = MakeOp(Record{{"id", 2}, {"name", "B"}, {"dept", "Y"}});
  auto c2 = t2->Check(o2->op);
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c2->outcome, CheckResult::Outcome::kAbsent);

  Settings no_keys = PeopleTarget("insert");
  no_keys.entries.erase("key_columns");
  auto t3 = OpenTarget(no_keys);
  auto c3 = t3->Check(o->op);
  ASSERT_TRUE(c3.ok());
  EXPECT_EQ(c3->outcome, CheckResult::Outcome::kUnsupported);
}

TEST_F(SqliteTest, SourceReadsAWalDatabaseWhileTheTargetHasItOpen) {
  auto t = OpenTarget(PeopleTarget());
  ASSERT_TRUE(Write(t.get(), Record{{"id", 1}, {"name", "A"}, {"dept", "X"}}).status.ok());
  ASSERT_TRUE(t->Commit(1, false).ok());
  ASSERT_TRUE(Write(t.get(), Record{{"id", 2}, {"name", "B"}, {"dept", "X"}}).status.ok());
  Settings s = Base();
  s.entries["query"] = Tmpl("SELECT count(*) AS n FROM people", TemplateContext::kSql);
  auto src = Def().make_source(s);
  Status st = (*src)->Open(ctx_);
  ASSERT_TRUE(st.ok()) << st.ToString();
  auto items = ReadAll(src->get());
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].record.at("n"), Value(1));  // only the committed batch
  (*src)->Close();
  t->Close(false);
}

// --- lookup ----------------------------------------------------------------

TEST_F(SqliteTest, LookupFindsRowByKey) {
  {
    Db db(dir_ / "hr.sqlite");
    db.Exec("CREATE TABLE departments (code INTEGER PRIMARY KEY, name TEXT)");
    db.Exec("INSERT INTO departments VALUES (10, 'Løn'), (20, 'IT')");
  }
  Settings s = Base("hr.sqlite");
  s.entries["table"] = Lit("departments");
  s.entries["key"] = Lit("code");
  auto l = Def().make_lookup(s);
  ASSERT_TRUE(l.ok());
  ASSERT_TRUE((*l)->Open(ctx_).ok());
  auto r = (*l)->Find(Value(20));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((**r).at("name"), Value("IT"));
  // A text key meets the INTEGER column's affinity.
  auto r2 = (*l)->Find(Value("10"));
  ASSERT_TRUE(r2.ok() && r2->has_value());
  EXPECT_EQ((**r2).at("name"), Value("Løn"));
  auto r3 = (*l)->Find(Value("x' OR '1'='1"));
  ASSERT_TRUE(r3.ok());
  EXPECT_FALSE(r3->has_value());
}

// --- speed -----------------------------------------------------------------

TEST_F(SqliteTest, TargetWritesManyRecordsInBatches) {
  auto t = OpenTarget(PeopleTarget());
  constexpr int kRecords = 100000, kBatch = 5000;
  std::vector<std::unique_ptr<Op>> ops;
  ops.reserve(kRecords);
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
  std::printf("[ timing   ] sqlite target: %d records in %.3f s = %.0f records/s\n", kRecords, secs,
              kRecords / secs);
  EXPECT_EQ(Db(dir_ / "db.sqlite").One("SELECT count(*) FROM people"), std::to_string(kRecords));
}

}  // namespace
}  // namespace keyonce
