// CPR numbers in every spelling, through every path a system's reply takes to
// a person: an HTTP 422 body (nginx), a SQLite trigger's message, a PostgreSQL
// exception and a SOAP fault (nginx). The keyonce binary runs each recipe; no
// output a person or a log collector sees (the run's output as text and as
// JSON, `keyonce quarantine` as text and JSON, `keyonce history` as text and
// JSON) may hold any of the numbers, while harmless numbers (no date in their
// first six digits) stay readable.
//
// The source records hold no CPR number at all: only the reply carries it, so
// a number that shows up came through the reply path under test. A failure
// names the spelling and the output, never the number.
#include <gtest/gtest.h>

#include <sstream>

#include "tests/cli_util.h"
#include "tests/support/http_servers.h"
#include "tests/support/postgres.h"
#include "tests/support/soap_server.h"

namespace keyonce::testing_util {
namespace {

namespace fs = std::filesystem;

struct Spelling {
  const char* kind;  // the record's kind, and the reply's name on the server
  std::string text;  // as the server writes it
  std::string date;  // its first part, as written
};

// One birth date per spelling, so that each can be told apart.
const std::vector<Spelling>& Spellings() {
  static const std::vector<Spelling> kSpellings = {
      {"dash", "010185-1233", "010185"},
      {"plain", "0202861234", "020286"},
      {"space", "030387 1235", "030387"},
      {"dots_dash", "04.04.88-1236", "04.04.88"},
      {"dots_space", "05.05.89 1237", "05.05.89"},
      {"dot", "060690.1238", "060690"},
      {"dashes", "07-07-91-1239", "07-07-91"},
      {"dots", "08.08.92.1240", "08.08.92"},
      {"nbsp",
       "090993\xC2\xA0"
       "1241",
       "090993"},
      {"en_dash",
       "101094\xE2\x80\x93"
       "1242",
       "101094"},
      {"spaced_dash", "111195 - 1243", "111195"},
      {"slash", "121296/1244", "121296"},
      {"json_escape", "131297\\u00a01245", "131297"},
      {"html_entity", "140198&nbsp;1246", "140198"},
      {"leap_day", "290201-1247", "290201"},    // 29 February: the century is unknown
      {"substitute", "750199-1248", "750199"},  // erstatningspersonnummer: day + 60
  };
  return kSpellings;
}

// Numbers that cannot be CPR numbers (no date in the first six digits) are
// left alone, so that messages about sizes and counts stay readable.
const char* kHarmless = "made a text of 1048576000 bytes; order 3213991234 has 4000000000 rows";

std::string Digits(const std::string& s) {
  std::string d;
  for (char c : s) {
    if (c >= '0' && c <= '9') d.push_back(c);
  }
  return d;
}

struct Shown {
  std::string what;  // which command, for the failure message
  std::string text;
};

// Fails (naming the spelling and the command, never the number) when any
// output holds a spelling, its ten digits or its date as written.
void ExpectNoCpr(const std::vector<Shown>& shown, const std::vector<Spelling>& spellings) {
  for (const auto& s : shown) {
    for (const auto& sp : spellings) {
      std::string ten = Digits(sp.date) + sp.text.substr(sp.text.size() - 4);
      EXPECT_EQ(s.text.find(sp.text), std::string::npos)
          << s.what << " shows the CPR number spelled '" << sp.kind << "'";
      EXPECT_EQ(s.text.find(ten), std::string::npos)
          << s.what << " shows the digits of the CPR number spelled '" << sp.kind << "'";
      EXPECT_EQ(s.text.find(sp.date), std::string::npos)
          << s.what << " shows the birth date of the CPR number spelled '" << sp.kind << "'";
    }
  }
}

std::string SourceCsv(const std::vector<Spelling>& spellings, bool harmless) {
  std::ostringstream csv;
  csv << "id;kind\n";
  int id = 1;
  for (const auto& sp : spellings) csv << id++ << ";" << sp.kind << "\n";
  if (harmless) csv << id << ";harmless\n";
  return csv.str();
}

// One `keyonce run` of recipe.yaml: its parameters and the source file it reads.
struct RunOf {
  std::vector<std::string> params;
  std::string csv;
};

// Runs every RunOf twice (text and JSON output, each series on its own state
// file), then reads the quarantine and history of the first state as text and
// JSON.
std::vector<Shown> RunEverywhere(const fs::path& dir, const std::vector<RunOf>& runs,
                                 const std::map<std::string, std::string>& env,
                                 size_t expect_quarantined) {
  std::vector<Shown> shown;
  // The JSON series is another recipe of the same targets (a target's
  // checkpoint belongs to one recipe of one state file).
  std::string recipe = ReadFile(dir / "recipe.yaml");
  size_t name = recipe.find('\n');
  WriteFile(dir / "recipe-json.yaml", recipe.substr(0, name) + "-json" + recipe.substr(name));
  auto run = [&](const RunOf& r, const std::string& state, bool json) {
    WriteFile(dir / "in.csv", r.csv);
    std::vector<std::string> args = {"run", json ? "recipe-json.yaml" : "recipe.yaml", "--state",
                                     state, "--no-progress"};
    if (json) args.insert(args.end(), {"--log-format", "json"});
    for (const auto& p : r.params) args.insert(args.end(), {"--param", p});
    Output o = Keyonce(args, dir, env);
    EXPECT_EQ(o.exit_code, 3) << "keyonce run (" << (json ? "json" : "text")
                              << ") should quarantine every record";
    shown.push_back({std::string("keyonce run") + (json ? " --log-format json" : ""), o.all()});
  };
  for (const auto& r : runs) run(r, "s.db", false);
  for (const auto& r : runs) run(r, "s2.db", true);
  Output q = Keyonce({"quarantine", "--state", "s.db", "--all", "--limit", "1000"}, dir);
  EXPECT_EQ(q.exit_code, 0);
  shown.push_back({"keyonce quarantine", q.all()});
  Output qj =
      Keyonce({"quarantine", "--state", "s.db", "--log-format", "json", "--limit", "1000"}, dir);
  EXPECT_EQ(qj.exit_code, 0);
  shown.push_back({"keyonce quarantine --log-format json", qj.all()});
  // Every record reached the quarantine with the server's reply as its reason.
  size_t lines = std::count(qj.out.begin(), qj.out.end(), '\n');
  EXPECT_EQ(lines, expect_quarantined) << "quarantined records";
  shown.push_back({"keyonce history", Keyonce({"history", "--state", "s.db"}, dir).all()});
  shown.push_back({"keyonce history --log-format json",
                   Keyonce({"history", "--state", "s.db", "--log-format", "json"}, dir).all()});
  return shown;
}

void ExpectHarmlessNumbersShown(const std::vector<Shown>& shown) {
  // The quarantine (text) shows the reply's harmless numbers as they are.
  for (const auto& s : shown) {
    if (s.what != "keyonce quarantine") continue;
    for (const char* n : {"1048576000", "3213991234", "4000000000"}) {
      EXPECT_NE(s.text.find(n), std::string::npos) << s.what << " masks the harmless " << n;
    }
  }
}

TEST(CprSpellings, HttpReplyBodyNeverShowsTheNumber) {
  http::ScratchDir dir;
  std::vector<CannedReply> replies;
  for (const auto& sp : Spellings()) {
    replies.push_back({sp.kind, 422, "application/json",
                       "{\"error\":\"the person " + sp.text + " is not known here\"}"});
  }
  replies.push_back({"harmless", 422, "text/plain", kHarmless});
  CannedServer nginx;
  std::string why;
  ASSERT_TRUE(nginx.Start(dir.path() / "nginx", replies, &why)) << why;
  WriteFile(dir.path() / "recipe.yaml", R"(recipe: cpr-http
params:
  base: {type: string, required: true}
source: {type: csv, path: in.csv, delimiter: ";"}
key: "{{ record.id }}"
targets:
  - name: register
    type: http
    url: "{{ params.base }}/{{ record.kind }}"
    body: {id: "{{ record.id }}"}
)");
  std::string base = nginx.Url("");
  base.pop_back();
  auto shown = RunEverywhere(dir.path(), {{{"base=" + base}, SourceCsv(Spellings(), true)}}, {},
                             Spellings().size() + 1);
  ExpectNoCpr(shown, Spellings());
  ExpectHarmlessNumbersShown(shown);
}

TEST(CprSpellings, SqliteErrorNeverShowsTheNumber) {
  auto dir = FreshDir("cpr_sqlite");
  // The target's triggers refuse each record with a message naming a person,
  // as a database that checks its own rules does.
  std::string sql = "CREATE TABLE people(id TEXT PRIMARY KEY, kind TEXT);\n";
  for (const auto& sp : Spellings()) {
    std::string msg = sp.text;
    sql += std::string("CREATE TRIGGER refuse_") + sp.kind +
           " BEFORE INSERT ON people WHEN NEW.kind = '" + sp.kind +
           "' BEGIN SELECT RAISE(ABORT, 'person " + msg + " is blocked'); END;\n";
  }
  sql += std::string("CREATE TRIGGER refuse_harmless BEFORE INSERT ON people WHEN NEW.kind = ") +
         "'harmless' BEGIN SELECT RAISE(ABORT, '" + kHarmless + "'); END;\n";
  WriteFile(dir / "schema.sql", sql);
  ASSERT_EQ(std::system(("sqlite3 '" + (dir / "crm.db").string() + "' < '" +
                         (dir / "schema.sql").string() + "'")
                            .c_str()),
            0);
  WriteFile(dir / "recipe.yaml", R"(recipe: cpr-sqlite
source: {type: csv, path: in.csv, delimiter: ";"}
key: "{{ record.id }}"
targets:
  - name: crm
    type: sqlite
    path: crm.db
    table: people
    mode: insert
    columns: {id: "{{ record.id }}", kind: "{{ record.kind }}"}
)");
  auto shown = RunEverywhere(dir, {{{}, SourceCsv(Spellings(), true)}}, {}, Spellings().size() + 1);
  ExpectNoCpr(shown, Spellings());
  ExpectHarmlessNumbersShown(shown);
}

TEST(CprSpellings, PostgresErrorNeverShowsTheNumber) {
  PostgresCluster pg;
  std::string why;
  ASSERT_TRUE(pg.Start(&why)) << why;
  // The person's number comes from the database, not from the record: the
  // message is the server's own text.
  std::string sql =
      "CREATE TABLE people(id text PRIMARY KEY, kind text);\n"
      "CREATE TABLE blocked(kind text PRIMARY KEY, person text);\n"
      "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN\n"
      "  RAISE EXCEPTION 'person % is blocked', (SELECT person FROM blocked WHERE kind = "
      "NEW.kind);\n"
      "END $$;\n"
      "CREATE TRIGGER refuse BEFORE INSERT ON people FOR EACH ROW EXECUTE FUNCTION refuse();\n"
      "GRANT ALL ON people TO " +
      pg.user() + ";\n";
  for (const auto& sp : Spellings()) {
    sql += std::string("INSERT INTO blocked VALUES ('") + sp.kind + "', '" + sp.text + "');\n";
  }
  sql += std::string("INSERT INTO blocked VALUES ('harmless', '") + kHarmless + "');\n";
  ASSERT_TRUE(pg.Exec(sql, &why)) << why;
  auto dir = FreshDir("cpr_postgres");
  WriteFile(dir / "recipe.yaml",
            "recipe: cpr-postgres\n"
            "secrets:\n"
            "  pg: {env: CPR_TEST_PG_PASSWORD}\n"
            "source: {type: csv, path: in.csv, delimiter: \";\"}\n"
            "key: \"{{ record.id }}\"\n"
            "targets:\n"
            "  - name: register\n"
            "    type: postgres\n"
            "    connection: \"" +
                pg.ConnectionString(false) +
                "\"\n"
                "    password: \"{{ secrets.pg }}\"\n"
                "    table: people\n"
                "    mode: insert\n"
                "    columns: {id: \"{{ record.id }}\", kind: \"{{ "
                "record.kind }}\"}\n");
  auto shown = RunEverywhere(dir, {{{}, SourceCsv(Spellings(), true)}},
                             {{"CPR_TEST_PG_PASSWORD", pg.password()}}, Spellings().size() + 1);
  ExpectNoCpr(shown, Spellings());
  ExpectHarmlessNumbersShown(shown);
}

TEST(CprSpellings, SoapFaultNeverShowsTheNumber) {
  http::ScratchDir dir;
  auto fault = [](const std::string& text) {
    return "<?xml version=\"1.0\"?>\n<soap:Envelope "
           "xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><soap:Fault>"
           "<faultcode>soap:Client</faultcode><faultstring>" +
           text + "</faultstring></soap:Fault></soap:Body></soap:Envelope>";
  };
  std::vector<CannedReply> replies;
  for (const auto& sp : Spellings()) {
    replies.push_back({sp.kind, 500, "text/xml; charset=utf-8",
                       fault("No case may be made for CPR " + sp.text + " today")});
  }
  replies.push_back({"harmless", 500, "text/xml; charset=utf-8", fault(kHarmless)});
  CannedServer nginx;
  std::string why;
  ASSERT_TRUE(nginx.Start(dir.path() / "nginx", replies, &why)) << why;
  // A SOAP target has one URL for the run: one run per reply, each with a
  // record of its own.
  WriteFile(dir.path() / "recipe.yaml", R"(recipe: cpr-soap
params:
  base: {type: string, required: true}
  kind: {type: string, required: true}
source: {type: csv, path: in.csv, delimiter: ";"}
key: "{{ record.id }}"
targets:
  - name: cases
    type: soap
    url: "{{ params.base }}/{{ params.kind }}"
    action: urn:keyonce:casesystem:1/CreateCase
    body: >-
      <c:CreateCase xmlns:c="urn:keyonce:casesystem:1"><c:ExternalId>{{ record.id }}</c:ExternalId></c:CreateCase>
)");
  std::string base = nginx.Url("");
  base.pop_back();
  std::vector<RunOf> runs;
  for (const auto& sp : Spellings()) {
    runs.push_back({{"base=" + base, std::string("kind=") + sp.kind},
                    "id;kind\n" + std::to_string(runs.size() + 1) + ";" + sp.kind + "\n"});
  }
  runs.push_back({{"base=" + base, "kind=harmless"},
                  "id;kind\n" + std::to_string(runs.size() + 1) + ";harmless\n"});
  auto shown = RunEverywhere(dir.path(), runs, {}, Spellings().size() + 1);
  ExpectNoCpr(shown, Spellings());
  ExpectHarmlessNumbersShown(shown);
}

}  // namespace
}  // namespace keyonce::testing_util
