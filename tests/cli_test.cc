// The keyonce command line, end to end, on real files and SQLite databases.
#include <gtest/gtest.h>

#include <regex>

#include "cli_util.h"

namespace keyonce::testing_util {
namespace {

int CountLines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

const char* kPeopleCsv =
    "id;cpr;email;amount\n"
    "1;010203-1234;a@example.dk;10,5\n"
    "2;0203041235;b@example.dk;20\n"
    "3;030405-1236;c@example.dk;30\n"
    "4;040506-1237;d@example.dk;40\n"
    "5;050607-1238;e@example.dk;50\n";

const char* kPartialRecipe = R"(recipe: partial
source: {type: csv, path: people.csv, delimiter: ";"}
key: "{{ record.id }}"
targets:
  - name: log
    type: jsonl
    path: log.jsonl
    body: {id: "{{ record.id }}"}
  - name: crm
    type: sqlite
    path: crm.db
    table: people
    mode: insert
    columns: {id: "{{ record.id }}", email: "{{ record.email }}"}
)";

TEST(Cli, PartialFailureThenRetryWritesOnlyWhatIsMissing) {
  auto dir = FreshDir("partial");
  WriteFile(dir / "people.csv", kPeopleCsv);
  WriteFile(dir / "r.yaml", kPartialRecipe);
  // The CRM already holds c@example.dk under another id: record 3 violates UNIQUE.
  WriteFile(dir / "setup.sql", "");
  ASSERT_EQ(std::system(("sqlite3 " + (dir / "crm.db").string() +
                         " \"CREATE TABLE people(id TEXT, email TEXT UNIQUE);"
                         " INSERT INTO people VALUES('x','c@example.dk');\"")
                            .c_str()),
            0);
  auto r1 = Keyonce({"run", "r.yaml", "--state", "s.db"}, dir);
  EXPECT_EQ(r1.exit_code, 3) << r1.all();
  EXPECT_EQ(QueryInt(dir / "crm.db", "SELECT count(*) FROM people"), 5);  // x + 4
  EXPECT_EQ(CountLines(ReadFile(dir / "log.jsonl")), 5);

  auto q = Keyonce({"quarantine", "partial", "--state", "s.db"}, dir);
  EXPECT_EQ(q.exit_code, 0);
  EXPECT_NE(q.out.find("UNIQUE constraint failed"), std::string::npos) << q.out;
  EXPECT_NE(q.out.find("people.csv:4"), std::string::npos) << q.out;
  EXPECT_EQ(q.out.find("c@example.dk"), std::string::npos) << "no values in the reason";

  // A person fixes the CRM, then retries the quarantined record.
  ASSERT_EQ(
      std::system(("sqlite3 " + (dir / "crm.db").string() + " \"DELETE FROM people WHERE id='x'\"")
                      .c_str()),
      0);
  auto retry = Keyonce({"quarantine", "r.yaml", "--retry", "all", "--state", "s.db"}, dir);
  EXPECT_EQ(retry.exit_code, 0) << retry.all();
  EXPECT_EQ(QueryInt(dir / "crm.db", "SELECT count(*) FROM people"), 5);
  EXPECT_EQ(CountLines(ReadFile(dir / "log.jsonl")), 5) << "the log target had it already";

  auto again = Keyonce({"run", "r.yaml", "--state", "s.db"}, dir);
  EXPECT_EQ(again.exit_code, 0) << again.all();
  EXPECT_EQ(QueryInt(dir / "crm.db", "SELECT count(*) FROM people"), 5);
  EXPECT_EQ(CountLines(ReadFile(dir / "log.jsonl")), 5);
  auto q2 = Keyonce({"quarantine", "partial", "--state", "s.db"}, dir);
  EXPECT_NE(q2.out.find("0 record(s)"), std::string::npos) << q2.out;
}

TEST(Cli, DryRunRendersWritesAndTouchesNothing) {
  auto dir = FreshDir("dry");
  WriteFile(dir / "people.csv", kPeopleCsv);
  WriteFile(dir / "r.yaml", kPartialRecipe);
  auto d = Keyonce({"run", "r.yaml", "--dry-run", "--state", "s.db"}, dir);
  EXPECT_EQ(d.exit_code, 0) << d.all();
  EXPECT_EQ(CountLines(d.out.substr(0, d.out.find("Dry run of"))), 10)
      << d.out;  // 5 records x 2 targets
  EXPECT_NE(d.out.find("crm insert"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir / "s.db"));
  EXPECT_FALSE(std::filesystem::exists(dir / "crm.db"));
  EXPECT_FALSE(std::filesystem::exists(dir / "log.jsonl"));
  ASSERT_EQ(std::system(("sqlite3 " + (dir / "crm.db").string() +
                         " \"CREATE TABLE people(id TEXT, email TEXT)\"")
                            .c_str()),
            0);
  ASSERT_EQ(Keyonce({"run", "r.yaml", "--state", "s.db"}, dir).exit_code, 0);
  auto after = Keyonce({"run", "r.yaml", "--dry-run", "--state", "s.db"}, dir);
  EXPECT_NE(after.out.find("log: 0 to write, 5 unchanged"), std::string::npos) << after.out;
}

TEST(Cli, NoCprOrSecretInAnyOutput) {
  auto dir = FreshDir("privacy");
  const std::string secret = "s3cr3t-Tok3n-value";
  WriteFile(dir / "people.csv", std::string(kPeopleCsv) +
                                    "6;060708-1239;bad-email;60\n"  // fails validation
                                    "7;\"070809-1230;x@y.dk;70\n"   // malformed row
                                    "8;080910-1231;h@example.dk;80\n");
  WriteFile(dir / "r.yaml", R"(recipe: privacy
params:
  who: {type: string, label: Cpr}
secrets:
  token: {env: KEYONCE_TEST_TOKEN}
source: {type: csv, path: people.csv, delimiter: ";"}
key: "{{ record.cpr }}"
steps:
  - validate:
      email: {type: email}
      cpr: {type: cpr}
targets:
  - name: out
    type: jsonl
    path: out.jsonl
    body: {cpr: "{{ record.cpr }}", auth: "{{ secrets.token }}", who: "{{ params.who }}"}
)");
  std::map<std::string, std::string> env = {{"KEYONCE_TEST_TOKEN", secret}};
  std::vector<Output> outputs;
  outputs.push_back(
      Keyonce({"run", "r.yaml", "--state", "s.db", "--param", "who=111111-1118"}, dir, env));
  EXPECT_EQ(outputs.back().exit_code, 3) << outputs.back().all();
  outputs.push_back(Keyonce(
      {"run", "r.yaml", "--state", "s.db", "--dry-run", "--param", "who=111111-1118"}, dir, env));
  outputs.push_back(Keyonce(
      {"run", "r.yaml", "--state", "s.db", "--log-format", "json", "--param", "who=1111111118"},
      dir, env));
  outputs.push_back(Keyonce({"history", "--state", "s.db"}, dir));
  outputs.push_back(Keyonce({"history", "--state", "s.db", "--log-format", "json"}, dir));
  outputs.push_back(Keyonce({"quarantine", "--state", "s.db", "--all"}, dir));
  outputs.push_back(Keyonce({"quarantine", "--state", "s.db", "--log-format", "json"}, dir));
  outputs.push_back(Keyonce({"run", "r.yaml", "--state", "s.db", "--param", "who=12"}, dir,
                            {}));  // secret missing
  // The records did reach the target (that is its job) ...
  EXPECT_NE(ReadFile(dir / "out.jsonl").find("010203-1234"), std::string::npos);
  // ... but no output a person or a log collector sees holds a CPR or the secret.
  static const std::regex cpr(R"((^|[^0-9])[0-9]{6}-?[0-9]{4}([^0-9]|$))");
  for (const auto& o : outputs) {
    EXPECT_FALSE(std::regex_search(o.all(), cpr)) << o.all();
    EXPECT_EQ(o.all().find(secret), std::string::npos) << o.all();
  }
  EXPECT_NE(outputs[0].all().find("ref-"), std::string::npos)
      << "records are referred to pseudonymously";
}

TEST(Cli, ValidateReportsEveryProblemAndExitCodes) {
  auto dir = FreshDir("validate");
  WriteFile(
      dir / "bad.yaml",
      "recipe: x\nsource: {type: csvv, path: a}\nkey: \"{{ record.id | trimm }}\"\ntargets: []\n");
  WriteFile(dir / "good.yaml", kPartialRecipe);
  auto v = Keyonce({"validate", "good.yaml", "bad.yaml"}, dir);
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_NE(v.out.find("good.yaml: ok"), std::string::npos);
  EXPECT_NE(v.out.find(
                "bad.yaml:2:16: error: source.type: unknown connector 'csvv'; did you mean 'csv'?"),
            std::string::npos)
      << v.out;
  EXPECT_NE(
      v.out.find(
          "bad.yaml:3:22: error: key: template: unknown filter 'trimm'; did you mean 'trim'?"),
      std::string::npos)
      << v.out;
  EXPECT_NE(v.out.find("bad.yaml:4:10: error: targets: expected a list of one or more targets"),
            std::string::npos)
      << v.out;
  EXPECT_EQ(Keyonce({"validate", "good.yaml"}, dir).exit_code, 0);
  EXPECT_EQ(Keyonce({"validate"}, dir).exit_code, 2);
  EXPECT_EQ(Keyonce({"run", "bad.yaml"}, dir).exit_code, 2);
  auto param = Keyonce({"quarantine", "good.yaml", "--retry", "all", "--param", "oops"}, dir);
  EXPECT_EQ(param.exit_code, 2);
  EXPECT_NE(param.err.find("--param takes NAME=VALUE"), std::string::npos) << param.err;
  auto typo = Keyonce({"run", "good.yaml", "--dry-rn"}, dir);
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_NE(typo.err.find("did you mean --dry-run?"), std::string::npos) << typo.err;
  for (const char* cmd :
       {"run", "validate", "test", "history", "quarantine", "schema", "docs", "connectors"}) {
    auto h = Keyonce({cmd, "--help"}, dir);
    EXPECT_EQ(h.exit_code, 0) << cmd;
    EXPECT_NE(h.out.find("Usage: keyonce"), std::string::npos) << cmd;
  }
}

// Turning TLS verification off is allowed, but validate says where and why
// it is dangerous.
TEST(Cli, ValidateWarnsWhenTlsVerificationIsOff) {
  auto dir = FreshDir("validate_tls");
  WriteFile(
      dir / "r.yaml",
      "recipe: x\nsource: {type: jsonl, path: in.jsonl}\nkey: \"{{ record.id }}\"\ntargets:\n"
      "  - name: api\n    type: http\n    url: https://api.example/cases\n    tls_verify: false\n");
  auto v = Keyonce({"validate", "r.yaml"}, dir);
  EXPECT_EQ(v.exit_code, 0) << v.all();
  EXPECT_NE(v.all().find("r.yaml:8:17: warning: targets[api].tls_verify: tls_verify is false"),
            std::string::npos)
      << v.all();
}

TEST(Cli, SchemaIsJsonAndNamesEveryConnector) {
  auto dir = FreshDir("schema");
  auto s = Keyonce({"schema"}, dir);
  EXPECT_EQ(s.exit_code, 0);
  for (const char* c :
       {"\"csv\"", "\"jsonl\"", "\"json\"", "\"sqlite\"", "\"on_change\"", "\"delimiter\""}) {
    EXPECT_NE(s.out.find(c), std::string::npos) << c;
  }
}

TEST(Cli, RecipeTestFailsWithADiff) {
  auto dir = FreshDir("recipetest");
  WriteFile(dir / "r.yaml", kPartialRecipe);
  WriteFile(dir / "r_test.yaml", R"(recipe: r.yaml
cases:
  - name: right
    input: [{id: "1", cpr: "010203-1234", email: a@b.dk, amount: "1"}]
    expect:
      log: [{id: "1"}]
  - name: wrong
    input: [{id: "2", cpr: "010203-1234", email: a@b.dk, amount: "1"}]
    expect:
      log: [{id: "3"}]
)");
  auto t = Keyonce({"test", "r_test.yaml"}, dir);
  EXPECT_EQ(t.exit_code, 1);
  EXPECT_NE(t.out.find("PASS right"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("FAIL wrong"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("expected {\"id\":\"3\"}"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("1 passed, 1 failed"), std::string::npos) << t.out;
}

// The run, the dry run and `keyonce test` plan a record with the same code
// (pipeline/planner.h): a target's `when` that cannot be evaluated (an
// amount that is no number) quarantines the record in all three with one
// reason, and the other records go on.
TEST(Cli, RunDryRunAndTestAgreeOnAWhenThatCannotBeEvaluated) {
  auto dir = FreshDir("planner");
  WriteFile(dir / "people.csv", kPeopleCsv + std::string("6;060708-1239;f@example.dk;tolv\n"));
  WriteFile(dir / "r.yaml", R"(recipe: planned
source: {type: csv, path: people.csv, delimiter: ";"}
steps:
  - filter: {when: "{{ record.id != '5' }}", reason: not this one}
key: "{{ record.id }}"
targets:
  - name: big
    type: jsonl
    path: big.jsonl
    when: "{{ record.amount | number(',') > 15 }}"
    body: {id: "{{ record.id }}"}
)");
  const std::string reason = "evaluating `when` of big: ";
  auto dry = Keyonce({"run", "r.yaml", "--state", "state.db", "--dry-run", "--no-progress"}, dir);
  EXPECT_NE(dry.all().find("would fail at big: " + reason), std::string::npos) << dry.all();
  EXPECT_EQ(CountLines(dry.out.substr(0, dry.out.find("Dry run of"))), 3)
      << "ids 2, 3, 4 would be written:\n"
      << dry.out;

  auto run = Keyonce({"run", "r.yaml", "--state", "state.db", "--no-progress"}, dir);
  EXPECT_EQ(run.exit_code, 3) << run.all();
  EXPECT_EQ(ReadFile(dir / "big.jsonl"), "{\"id\":\"2\"}\n{\"id\":\"3\"}\n{\"id\":\"4\"}\n");
  auto q = Keyonce({"quarantine", "planned", "--state", "state.db"}, dir);
  EXPECT_NE(q.out.find(reason), std::string::npos) << q.out;

  WriteFile(dir / "r_test.yaml", R"(recipe: r.yaml
cases:
  - name: an amount that is no number
    input:
      - {id: "6", cpr: "060708-1239", email: f@example.dk, amount: tolv}
      - {id: "5", cpr: "050607-1238", email: e@example.dk, amount: "50"}
      - {id: "1", cpr: "010203-1234", email: a@example.dk, amount: "10,5"}
    expect:
      big: []
    expect_filtered: 1
    expect_quarantined:
      - reason: "evaluating `when` of big: "
)");
  auto t = Keyonce({"test", "r_test.yaml"}, dir);
  EXPECT_EQ(t.exit_code, 0) << t.all();
}

}  // namespace
}  // namespace keyonce::testing_util
