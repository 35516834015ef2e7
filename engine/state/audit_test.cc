// The audit log: the table and its API, and what a real run (csv, jsonl,
// sqlite connectors and a scripted target) appends to it.
#include "state/audit.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "pipeline/runner.h"
#include "recipe/loader.h"
#include "state/journal.h"
#include "state/privacy.h"
#include "state/state_sql.h"
#include "state/store.h"

namespace keyonce {
namespace {

// A target that fails permanently for keys listed here and cannot tell
// after a crash what arrived (Recover: unknown).
std::set<std::string>* g_reject = nullptr;

class RejectingTarget : public Target {
 public:
  TargetTraits Traits() const override { return {}; }
  Status Open(const RunContext&) override { return Status::OK(); }
  Result<Value> Render(const WriteOp& op) override { return Value(op.key); }
  WriteResult Write(const WriteOp& op) override {
    if (g_reject && g_reject->count(op.key)) return {Status::Permanent("rejected (400)"), {}};
    return {Status::OK(), Value(boost::json::object())};
  }
  Result<CommitResult> Commit(uint64_t, bool) override { return CommitResult{true, ""}; }
  Result<RecoverResult> Recover(const RunContext&, uint64_t, const std::string&) override {
    return RecoverResult{false, 0};
  }
};

ConnectorDef RejectingDef() {
  ConnectorDef d;
  d.name = "audit_rejecting";
  d.summary = "Test target.";
  d.target = ComponentSpec{"audit_rejecting", {}, ""};
  d.make_target = [](const Settings&) -> Result<std::unique_ptr<Target>> {
    return std::unique_ptr<Target>(new RejectingTarget());
  };
  return d;
}
KEYONCE_REGISTER_CONNECTOR(RejectingDef());

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::path(testing::TempDir()) /
        ("audit_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    reject_.clear();
    g_reject = &reject_;
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  StateStore& Store() {
    if (!store_) {
      auto s = StateStore::Open(dir_ / "state.db");
      EXPECT_TRUE(s.ok()) << s.status().message();
      store_ = std::move(s).value();
    }
    return *store_;
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  std::shared_ptr<const Recipe> Load(const std::string& text) {
    Diagnostics d;
    auto r = LoadRecipeText((dir_ / "r.yaml").string(), text, dir_, &d);
    for (const auto& x : d.items()) ADD_FAILURE() << x.ToString();
    return r;
  }
  RunSummary Run(const Recipe& r, bool dry_run = false) {
    store_.reset();  // the run opens its own
    RunOptions o;
    o.state_path = dir_ / "state.db";
    o.out = &out_;
    o.err = &err_;
    o.dry_run = dry_run;
    o.started_by = "anna";
    o.robot = "robot-1";
    auto s = RunRecipe(r, o);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? *s : RunSummary{};
  }
  std::string Ref(const std::string& cpr) {
    Pseudonymizer p(Store().pseudonym_key());
    auto ten = NormalizeSubjectCpr(cpr);
    EXPECT_TRUE(ten) << "test CPR";
    return ten ? SubjectReference(p, *ten) : "";
  }
  std::vector<AuditEntry> Query(AuditQuery q) {
    auto rows = QueryAudit(Store(), q);
    EXPECT_TRUE(rows.ok()) << rows.status().message();
    return rows.ok() ? *rows : std::vector<AuditEntry>{};
  }
  static std::vector<std::string> Ops(const std::vector<AuditEntry>& rows) {
    std::vector<std::string> out;
    for (const auto& e : rows)
      out.push_back(e.operation + (e.system.empty() ? "" : " " + e.system));
    return out;
  }
  // Everything stored in the state file's audit tables (blobs as their
  // bytes), for scanning.
  std::string Dump() {
    std::string all;
    for (const char* sql : {"SELECT * FROM audit", "SELECT * FROM audit_chunks"}) {
      sqlite3_stmt* s = nullptr;
      sqlite3_prepare_v2(StateSql::Of(Store()), sql, -1, &s, nullptr);
      while (sqlite3_step(s) == SQLITE_ROW) {
        for (int i = 0; i < sqlite3_column_count(s); ++i) {
          const auto* t = static_cast<const char*>(sqlite3_column_blob(s, i));
          all += t ? std::string(t, static_cast<size_t>(sqlite3_column_bytes(s, i))) : "";
          all += "|";
        }
        all += "\n";
      }
      sqlite3_finalize(s);
    }
    return all;
  }
  int64_t Count(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    int64_t n = -1;
    if (sqlite3_prepare_v2(StateSql::Of(Store()), sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      n = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return n;
  }

  std::filesystem::path dir_;
  std::unique_ptr<StateStore> store_;
  std::set<std::string> reject_;
  std::ostringstream out_, err_;
};

AuditEntry Entry(const std::string& time, const std::string& recipe, int64_t run,
                 const std::string& op, const std::string& subject) {
  AuditEntry e;
  e.time = time;
  e.robot = "robot";
  e.actor = "anna";
  e.recipe = recipe;
  e.run = run;
  e.system = "payroll";
  e.operation = op;
  e.subject = subject;
  e.detail = "sqlite";
  return e;
}

TEST_F(AuditTest, AppendedRowsAreFoundBySubjectRecipeRunAndTime) {
  StateStore& db = Store();
  ASSERT_TRUE(AppendAudit(db, Entry("2026-11-02T10:00:00.000Z", "a", 1, "read", "ref-one")).ok());
  ASSERT_TRUE(AppendAudit(db, Entry("2026-11-02T10:00:01.000Z", "a", 1, "create", "ref-one")).ok());
  ASSERT_TRUE(AppendAudit(db, Entry("2026-11-03T09:00:00.000Z", "b", 2, "read", "ref-two")).ok());
  ASSERT_TRUE(AppendAudit(db, Entry("2026-11-04T23:59:59.999Z", "b", 3, "update", "ref-one")).ok());
  ASSERT_TRUE(AppendAudit(db, Entry("2026-11-04T23:00:00.000Z", "b", 3, "start_run", "")).ok());
  ASSERT_TRUE(AppendAudit(db, Entry("", "c", 4, "start_run", "")).ok());

  // A person's rows, and how each run that touched them was started.
  auto one = Query({.subject = "ref-one"});
  ASSERT_EQ(one.size(), 4u);
  EXPECT_EQ(Ops(one), (std::vector<std::string>{"read payroll", "create payroll",
                                                "start_run payroll", "update payroll"}));
  EXPECT_EQ(one[0].robot, "robot");
  EXPECT_EQ(one[0].actor, "anna");
  EXPECT_EQ(one[2].run, 3);
  EXPECT_EQ(Query({.recipe = "b"}).size(), 3u);
  EXPECT_EQ(Query({.run = 3}).size(), 2u);
  EXPECT_EQ(Query({.subject = "ref-one", .from = "2026-11-03"}).size(), 2u);
  EXPECT_EQ(Query({.subject = "ref-one", .to = "2026-11-02"}).size(), 2u)
      << "a day includes its end";
  EXPECT_EQ(Query({.subject = "ref-one", .from = "2026-11-02T10:00:00.500Z"}).size(), 3u);
  EXPECT_EQ(Query({.subject = "ref-one", .limit = 1}).size(), 1u);
  EXPECT_TRUE(Query({.subject = "ref-nobody"}).empty());
  // The row appended without a time got the current one, in the stored format.
  auto start = Query({.run = 4});
  ASSERT_EQ(start.size(), 1u);
  EXPECT_EQ(start[0].operation, "start_run");
  EXPECT_EQ(start[0].time.size(), std::string("2026-11-27T03:56:26.123Z").size()) << start[0].time;
  EXPECT_EQ(start[0].time.back(), 'Z');
}

TEST_F(AuditTest, DetailIsMaskedAndAStateFileWithoutAuditTableHasNoRows) {
  EXPECT_TRUE(Query({.subject = "ref-one"}).empty());
  AuditEntry e = Entry("2026-11-02T10:00:00.000Z", "a", 1, "quarantine_edit", "ref-one");
  e.detail = "fields: cpr was 010185-1233";
  ASSERT_TRUE(AppendAudit(Store(), e).ok());
  EXPECT_EQ(Query({.subject = "ref-one"})[0].detail, "fields: cpr was xxxxxx-xxxx");
}

TEST_F(AuditTest, ReferenceIsTheSameWithAndWithoutDashAndKeyedPerStateFile) {
  Pseudonymizer a("key-a"), b("key-b");
  auto dashed = NormalizeSubjectCpr(" 010185-1233 ");
  auto plain = NormalizeSubjectCpr("0101851233");
  ASSERT_TRUE(dashed && plain);
  EXPECT_EQ(*dashed, "0101851233");
  EXPECT_EQ(SubjectReference(a, *dashed), SubjectReference(a, *plain));
  EXPECT_NE(SubjectReference(a, *plain), SubjectReference(b, *plain));
  EXPECT_EQ(SubjectReference(a, *plain).rfind("ref-", 0), 0u);
  EXPECT_EQ(SubjectReference(a, *plain).find("0101851233"), std::string::npos);
  // Not CPR numbers: wrong length, no valid birth date, letters.
  EXPECT_FALSE(NormalizeSubjectCpr("010185-123"));
  EXPECT_FALSE(NormalizeSubjectCpr("991399-1234"));
  EXPECT_FALSE(NormalizeSubjectCpr("01018a1233"));
  EXPECT_FALSE(NormalizeSubjectCpr(""));
}

TEST_F(AuditTest, FindsTheFirstCprStandingAloneInAKey) {
  EXPECT_EQ(FindCpr("0101851233/2026-11-02").value_or(""), "0101851233");
  EXPECT_EQ(FindCpr("case 7/010185-1233").value_or(""), "0101851233");
  EXPECT_EQ(FindCpr("9913991234/0101851233").value_or(""), "0101851233") << "invalid dates skipped";
  EXPECT_FALSE(FindCpr("12345678901"));
  EXPECT_FALSE(FindCpr("2026-11-02/42"));
  EXPECT_FALSE(FindCpr("employee 100007"));
  // Every spelling the masking knows, as long as the birth date is real
  // (compared, never printed).
  const std::string ten = "0101851233";
  for (const std::string key : {"case 7/01.01.85-1233", "person 010185 1233"}) {
    EXPECT_TRUE(FindCpr(key) == ten);
  }
  const std::string substitute = "670185-1233";
  EXPECT_FALSE(FindCpr(substitute)) << "a substitute number is masked, not a subject";
}

TEST_F(AuditTest, PruneDeletesRowsOlderThanTheRetentionAtMostOncePerDay) {
  StateStore& db = Store();
  ASSERT_TRUE(AppendAudit(db, Entry("2020-01-01T00:00:00.000Z", "a", 1, "read", "ref-one")).ok());
  ASSERT_TRUE(AppendAudit(db, Entry(AuditTime(), "a", 2, "read", "ref-one")).ok());
  int64_t pruned = -1;
  ASSERT_TRUE(PruneAuditIfDue(db, 180, &pruned).ok());
  EXPECT_EQ(pruned, 1);
  EXPECT_EQ(Query({.subject = "ref-one"}).size(), 1u);
  // Pruned today: an old row added now stays until tomorrow's prune...
  ASSERT_TRUE(AppendAudit(db, Entry("2020-01-02T00:00:00.000Z", "a", 1, "read", "ref-one")).ok());
  ASSERT_TRUE(PruneAuditIfDue(db, 180, &pruned).ok());
  EXPECT_EQ(pruned, 0);
  EXPECT_EQ(Query({.subject = "ref-one"}).size(), 2u);
  // ...unless the retention changed.
  ASSERT_TRUE(PruneAuditIfDue(db, 30, &pruned).ok());
  EXPECT_EQ(pruned, 1);
  // A row 10 days old goes with a 7-day retention, not with 30.
  auto ten_days = Entry("", "a", 1, "read", "ref-two");
  {
    std::time_t t = std::time(nullptr) - 10 * 86400;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    ten_days.time = buf;
  }
  ASSERT_TRUE(AppendAudit(db, ten_days).ok());
  ASSERT_TRUE(PruneAudit(db, 30).ok());
  EXPECT_EQ(Query({.subject = "ref-two"}).size(), 1u);
  ASSERT_TRUE(PruneAudit(db, 7).ok());
  EXPECT_TRUE(Query({.subject = "ref-two"}).empty());
  EXPECT_EQ(PruneAudit(db, 0).code(), Status::Code::kInvalid);
}

TEST_F(AuditTest, WritesOfRolledBackBatchesAreDiscardedAndInDoubtOnesMarked) {
  StateStore& db = Store();
  Journal journal(db);
  auto target = journal.TargetId("r", "crm");
  ASSERT_TRUE(target.ok());
  auto b1 = journal.NewBatch(*target, 7, "");
  auto b2 = journal.NewBatch(*target, 7, "");
  auto b3 = journal.NewBatch(*target, 7, "");
  ASSERT_TRUE(b1.ok() && b2.ok() && b3.ok());
  auto w = AuditWriter::Open(db, "robot", "anna", "r", 7);
  ASSERT_TRUE(w.ok()) << w.status().message();
  ASSERT_TRUE((*w)->Append(AuditTime(), "crm", kAuditCreate, "ref-one", "http", *b1).ok());
  ASSERT_TRUE((*w)->Append(AuditTime(), "crm", kAuditCreate, "ref-one", "http", *b2).ok());
  ASSERT_TRUE((*w)->Append(AuditTime(), "crm", kAuditCreate, "ref-one", "http", *b3).ok());
  auto gone = (*w)->Append(AuditTime(), "crm", kAuditCreate, "ref-one", "http", *b1);
  ASSERT_TRUE(gone.ok());
  ASSERT_TRUE((*w)->Remove(*gone).ok());  // a write that failed
  ASSERT_EQ(Query({.subject = "ref-one"}).size(), 3u);
  EXPECT_EQ(Query({.subject = "ref-one"})[0].state, "pending");
  ASSERT_TRUE(journal.Settle(*b1, Journal::BatchState::kDone).ok());
  ASSERT_TRUE(journal.Settle(*b2, Journal::BatchState::kRolledBack).ok());
  ASSERT_TRUE(journal.Settle(*b3, Journal::BatchState::kInDoubt).ok());
  auto rows = Query({.subject = "ref-one"});
  ASSERT_EQ(rows.size(), 2u) << "a rolled-back write did not happen";
  EXPECT_EQ(rows[0].state, "");
  EXPECT_EQ(rows[1].state, "in doubt");
  ASSERT_TRUE((*w)->DiscardBatch(*b2).ok());
  EXPECT_EQ(Dump().find("|" + std::to_string(*b2) + "|\n"), std::string::npos) << Dump();
}

TEST_F(AuditTest, ChunkRowsAreListedLikeRowsTakenBackWhenAWriteFailsAndDiscardedWithTheirBatch) {
  StateStore& db = Store();
  Journal journal(db);
  auto target = journal.TargetId("r", "crm");
  ASSERT_TRUE(target.ok());
  auto b1 = journal.NewBatch(*target, 7, "");
  auto b2 = journal.NewBatch(*target, 7, "");
  ASSERT_TRUE(b1.ok() && b2.ok());
  auto w = AuditWriter::Open(db, "robot", "anna", "r", 7);
  ASSERT_TRUE(w.ok()) << w.status().message();
  Pseudonymizer p("key");
  const std::string ann = SubjectReference(p, "0101851233"), bo = SubjectReference(p, "0203901234");
  const std::string t1 = "2026-11-02T10:00:00.000Z";

  AuditChunk reads("source:csv", kAuditRead);
  EXPECT_EQ(reads.Add(bo, "in.csv:2"), 0);
  EXPECT_EQ(reads.Add(ann, "in.csv:3"), 1);
  EXPECT_EQ(reads.Add(ann, "in.csv:4"), 2);
  EXPECT_EQ(reads.Add("ref-one", "in.csv:5"), -1) << "not a reference: a row of its own";
  AuditChunk creates("crm", kAuditCreate, *b1);
  int gone = creates.Add(ann, "http");
  creates.Add(bo, "http");
  AuditChunk rolled_back("crm", kAuditCreate, *b2);
  rolled_back.Add(ann, "http");
  for (AuditChunk* c : {&reads, &creates, &rolled_back}) ASSERT_TRUE((*w)->Save(t1, *c).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM audit_chunks"), 3);

  // A write that failed is taken back; a chunk left empty goes.
  creates.Remove(gone);
  creates.Remove(gone);  // twice is once
  ASSERT_TRUE((*w)->Save(t1, creates).ok());
  EXPECT_EQ(creates.size(), 1u);
  creates.Remove(1);
  ASSERT_TRUE((*w)->Save(t1, creates).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM audit_chunks"), 2);
  ASSERT_TRUE(journal.Settle(*b2, Journal::BatchState::kRolledBack).ok());

  auto rows = Query({.subject = ann});
  ASSERT_EQ(rows.size(), 2u) << "the rolled-back write did not happen";
  EXPECT_EQ(Ops(rows), (std::vector<std::string>{"read source:csv", "read source:csv"}));
  EXPECT_EQ(rows[0].detail, "in.csv:3");
  EXPECT_EQ(rows[1].detail, "in.csv:4");
  EXPECT_EQ(rows[0].subject, ann);
  EXPECT_EQ(rows[0].robot, "robot");
  EXPECT_EQ(rows[0].actor, "anna");
  EXPECT_EQ(rows[0].recipe, "r");
  EXPECT_EQ(rows[0].run, 7);
  EXPECT_EQ(rows[0].time, t1);
  EXPECT_EQ(Query({.subject = bo}).size(), 1u);
  EXPECT_EQ(Query({.run = 7}).size(), 3u);
  EXPECT_TRUE(Query({.subject = ann, .from = "2026-11-03"}).empty());
  EXPECT_TRUE(Query({.subject = "ref-bbbbbbbbbbbb"}).empty());
  EXPECT_EQ(Query({.subject = ann, .limit = 1}).size(), 1u);

  // Rows of a batch rolled back are removed with it; pruning counts rows, not chunks.
  ASSERT_TRUE((*w)->DiscardBatch(*b2).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM audit_chunks"), 1);
  int64_t pruned = 0;
  ASSERT_TRUE(PruneAuditIfDue(db, 30, &pruned).ok());
  EXPECT_EQ(pruned, 3);
  EXPECT_TRUE(Query({.subject = ann}).empty());
}

TEST_F(AuditTest, AReferenceIsStoredAsItsBitsAndReadBackTheSame) {
  Pseudonymizer p("key");
  for (const char* cpr : {"0101851233", "0203901234", "3112999999"}) {
    std::string ref = SubjectReference(p, cpr);
    auto bits = Pseudonymizer::ReferenceBits(ref);
    ASSERT_TRUE(bits) << ref;
    EXPECT_LT(*bits, uint64_t{1} << 48);
    EXPECT_EQ(Pseudonymizer::ReferenceOfBits(*bits), ref);
  }
  for (const char* bad : {"", "ref-", "ref-one", "ref-bbbbbbbbbbb1", "ref-bbbbbbbbbbbbb",
                          "REF-bbbbbbbbbbbb", "ref-bbbbbbbbbbbA"}) {
    EXPECT_FALSE(Pseudonymizer::ReferenceBits(bad)) << bad;
  }
  EXPECT_FALSE(Pseudonymizer::ReferenceBits(std::string("ref-bbbbbbbbbbb\0", 16)));
  EXPECT_FALSE(Pseudonymizer::ReferenceBits(std::string("ref-bbbbbbbbbbb\xe9", 16)));
}

const char* kPeopleCsv =
    "cpr;navn;afdeling\n"
    "010185-1233;Søren;PLEJE\n"
    "0203901234;Åse;KØKKEN\n"
    "991399-1234;Bad;PLEJE\n"
    "040506-1237;Filtered;NONE\n";

TEST_F(AuditTest, ARunLogsReadsLookupsAndWritesWithTheSubjectNeverTheCpr) {
  Write("people.csv", kPeopleCsv);
  Write("afd.csv", "kode;navn\nPLEJE;Pleje\nKØKKEN;Køkken\n");
  auto r = Load(R"(recipe: people
tables:
  afd: {type: csv, path: afd.csv, delimiter: ";", key: kode}
source: {type: csv, path: people.csv, delimiter: ";"}
steps:
  - validate: {cpr: {type: cpr}}
  - filter: {when: "{{ record.afdeling != 'NONE' }}"}
  - lookup: {table: afd, key: "{{ record.afdeling }}", set: {dept: "{{ lookup.navn }}"}}
  - set: {cpr: "{{ record.cpr | cpr }}"}
key: "{{ record.cpr }}"
batch_records: 2
targets:
  - {name: trail, type: jsonl, path: out.jsonl}
  - name: crm
    type: audit_rejecting
)");
  ASSERT_TRUE(r);
  reject_.insert("0203901234");  // crm refuses Åse: no create row for crm
  auto s = Run(*r);
  EXPECT_EQ(s.exit_code, kExitQuarantined) << err_.str();

  auto soren = Query({.subject = Ref("0101851233")});
  EXPECT_EQ(Ops(soren), (std::vector<std::string>{"start_run keyonce", "read source:csv",
                                                  "lookup afd", "create trail", "create crm"}));
  for (const auto& e : soren) {
    EXPECT_EQ(e.robot, "robot-1");
    EXPECT_EQ(e.actor, "anna");
    EXPECT_EQ(e.recipe, "people");
    EXPECT_EQ(e.run, s.run);
  }
  EXPECT_EQ(soren[1].detail, "people.csv:2");
  EXPECT_EQ(soren[2].detail, "key: {{ record.afdeling }}; column: kode");
  EXPECT_EQ(soren[3].detail, "jsonl");
  EXPECT_EQ(Ops(Query({.subject = Ref("020390-1234")})),
            (std::vector<std::string>{"start_run keyonce", "read source:csv", "lookup afd",
                                      "create trail", "quarantine keyonce"}))
      << "the refused write is not claimed; the quarantine that keeps the record is";
  EXPECT_EQ(Ops(Query({.subject = Ref("040506-1237")})),
            (std::vector<std::string>{"start_run keyonce", "read source:csv"}))
      << "a filtered record was read";
  auto start = Query({.run = s.run});
  ASSERT_FALSE(start.empty());
  EXPECT_EQ(start[0].operation, "start_run");
  EXPECT_EQ(start[0].detail, "trigger: cli; params: {}");
  EXPECT_EQ(start[0].subject, "");

  std::string dump = Dump();
  for (const char* cpr : {"0101851233", "010185-1233", "0203901234", "020390-1234", "991399-1234",
                          "9913991234", "Søren", "Åse", "Pleje"}) {
    EXPECT_EQ(dump.find(cpr), std::string::npos) << cpr << " in\n" << dump;
  }

  // A rerun writes nothing new and logs only what it did: reads and lookups.
  size_t before = Query({.recipe = "people"}).size();
  auto s2 = Run(*r);
  auto again = Query({.subject = Ref("0101851233"), .run = s2.run});
  EXPECT_EQ(Ops(again),
            (std::vector<std::string>{"start_run keyonce", "read source:csv", "lookup afd"}));
  EXPECT_GT(Query({.recipe = "people"}).size(), before);

  // A dry run appends nothing.
  size_t all = Query({.recipe = "people"}).size();
  Run(*r, /*dry_run=*/true);
  EXPECT_EQ(Query({.recipe = "people"}).size(), all);
}

TEST_F(AuditTest, SubjectTemplateChoosesThePersonAndParamsCprMakesTheRunAboutThem) {
  Write("in.jsonl", "{\"id\":\"1\",\"who\":\"010185-1233\",\"other\":\"0203901234\"}\n");
  auto r = Load(R"(recipe: subj
params:
  person: {type: string}
source: {type: jsonl, path: in.jsonl}
subject: "{{ record.who }}"
key: "{{ record.other }}/{{ record.id }}"
targets:
  - {name: trail, type: jsonl, path: out.jsonl}
)");
  ASSERT_TRUE(r);
  store_.reset();
  RunOptions o;
  o.state_path = dir_ / "state.db";
  o.out = &out_;
  o.err = &err_;
  o.params = {{"person", "0101851233"}};
  o.trigger = "api";
  auto s = RunRecipe(*r, o);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(Ops(Query({.subject = Ref("0101851233")})),
            (std::vector<std::string>{"start_run keyonce", "read source:jsonl", "create trail"}));
  EXPECT_TRUE(Query({.subject = Ref("0203901234")}).empty()) << "the key's CPR is not the subject";
  auto start = Query({.run = s->run})[0];
  EXPECT_EQ(start.detail, "trigger: api; params: {\"person\":\"xxxxxxxxxx\"}");
  EXPECT_EQ(start.actor, LocalUserName()) << "the command line's user";
  EXPECT_EQ(start.robot, DefaultRobotName());
}

TEST_F(AuditTest, RetentionBelowOneDayIsRefused) {
  Write("in.jsonl", "{\"id\":\"1\"}\n");
  auto r = Load(
      "recipe: x\nsource: {type: jsonl, path: in.jsonl}\nkey: \"{{ record.id }}\"\n"
      "targets:\n  - {name: t, type: jsonl, path: out.jsonl}\n");
  ASSERT_TRUE(r);
  RunOptions o;
  o.state_path = dir_ / "state.db";
  o.out = &out_;
  o.err = &err_;
  o.audit_retention_days = 0;
  auto s = RunRecipe(*r, o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Status::Code::kInvalid);
  EXPECT_NE(s.status().message().find("audit retention"), std::string::npos);
}

}  // namespace
}  // namespace keyonce
