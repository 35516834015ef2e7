// The leak check: every example and bundled recipe, and a secret-bearing probe
// recipe of our own (tests/leak/probe), run over known secret values and CPR
// numbers, on the command line and in `keyonce serve`; then every output a
// person or a log collector sees is scanned for them: stdout/stderr, history,
// quarantine and audit listings, the service log, GET /metrics, the runs, their
// logs, the quarantine listing and schedule, and every row of every table of
// the state file (runs, quarantine reasons, service_runs, audit, ...). Any hit
// fails. Excluded, by design, are exactly the places that hold the record for
// a person to fix it: the state file's quarantine.record column and the
// `record` of GET /api/v1/quarantine/{id} (and of the PATCH answer, which is
// that same item after an edit); and the field values (not the CPR numbers or
// secrets) a dry run shows as the writes it would make.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <set>
#include <thread>

#include "tests/cli_util.h"
#include "tests/support/servers.h"
#include "tests/support/service.h"

namespace keyonce::testing_util {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

const fs::path kSource = KEYONCE_SOURCE_DIR;
const std::string kApiToken = "leak-Api-T0ken-7f3a9c2e";
const std::string kDbPassword = "leak-Db-Passw0rd-91b2d4";
const std::string kAdminToken = "leak-admin-token-5e8d1f0a";
const std::string kOperatorToken = "leak-operator-token-2b7c9e4d";
const std::string kCaseworkerToken = "leak-caseworker-token-8a3f6b1c";
const std::string kParamCpr = "111111-1118";  // a caseworker's "register this citizen"

std::map<std::string, std::string> SecretEnv() {
  return {{"LEAK_API_TOKEN", kApiToken}, {"LEAK_DB_PASSWORD", kDbPassword}};
}

// Everything that must never be seen: the secrets, and every CPR number of the
// data (with and without the dash), and the probe's e-mail addresses (field
// values), also URL-encoded.
class Needles {
 public:
  Needles() {
    for (const auto& s : {kApiToken, kDbPassword, kAdminToken, kOperatorToken, kCaseworkerToken}) {
      Add(s, "a secret");
    }
    AddCpr(kParamCpr);
    for (const char* f :
         {"examples/sick_leave/data/sygefravaer.csv",
          "recipes/region-invoices/data/invoices-2026-11.csv",
          "recipes/region-invoices/data/residents.csv", "recipes/welcome-letters/data/movers.sql",
          "examples/case_flow/data/ansoegninger.csv", "tests/leak/probe/data/leak_people.csv"}) {
      std::string text = ReadFile(kSource / f);
      EXPECT_FALSE(text.empty()) << f;
      static const std::regex cpr(R"((^|[^0-9])([0-9]{6}-?[0-9]{4})(?=[^0-9]|$))");
      for (std::sregex_iterator it(text.begin(), text.end(), cpr), end; it != end; ++it)
        AddCpr((*it)[2]);
    }
    for (const char* email :
         {"a@example.dk", "b@example.dk", "not-an-email", "d@example.dk", "e2@example.dk"}) {
      Add(email, "a field value");
      std::string encoded = std::regex_replace(email, std::regex("@"), "%40");
      Add(encoded, "a field value (URL-encoded)");
    }
  }
  size_t cprs() const { return cprs_; }

  // Fails the test for every needle in `text`, naming where. A dry run shows
  // the writes it would make (field values, by design; never CPR numbers or
  // secrets): `writes_shown` skips the field values there.
  void Scan(const std::string& where, const std::string& text, bool writes_shown = false) const {
    ++scanned_;
    for (const auto& [needle, what] : needles_) {
      if (writes_shown && what.rfind("a field value", 0) == 0) continue;
      size_t at = text.find(needle);
      if (at == std::string::npos) continue;
      size_t from = at > 80 ? at - 80 : 0;
      ADD_FAILURE() << where << " holds " << what << " (" << needle << "):\n..."
                    << text.substr(from, 200) << "...";
    }
  }
  size_t scanned() const { return scanned_; }

 private:
  void Add(const std::string& s, const std::string& what) { needles_[s] = what; }
  void AddCpr(std::string c) {
    c.erase(std::remove(c.begin(), c.end(), '-'), c.end());
    if (needles_.count(c)) return;
    ++cprs_;
    Add(c, "a CPR number");
    Add(c.substr(0, 6) + "-" + c.substr(6), "a CPR number");
  }
  std::map<std::string, std::string> needles_;
  size_t cprs_ = 0;
  mutable size_t scanned_ = 0;
};

void CopyTree(const fs::path& from, const fs::path& to) {
  fs::create_directories(to);
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

void Sqlite(const fs::path& db, const std::string& sql) {
  ASSERT_EQ(RunProgram({"sqlite3", db.string(), sql}), 0)
      << "sqlite3 " << db << " failed (is sqlite3 installed?)";
}

// Every row of every table of the state file, one text per table, except the
// quarantine's `record` column (the record a person must be able to fix) and
// its `params` (the parameters of the run that read it, which its retry
// needs; kept with the record).
std::map<std::string, std::string> StateTables(const fs::path& db) {
  std::map<std::string, std::string> out;
  sqlite3* h = nullptr;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << db;
    sqlite3_close(h);
    return out;
  }
  std::vector<std::string> tables;
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(h, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &st, nullptr);
  while (sqlite3_step(st) == SQLITE_ROW)
    tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  for (const auto& t : tables) {
    std::string& text = out[t];
    sqlite3_prepare_v2(h, ("SELECT * FROM \"" + t + "\"").c_str(), -1, &st, nullptr);
    while (sqlite3_step(st) == SQLITE_ROW) {
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        std::string col = sqlite3_column_name(st, c);
        // The record itself and its run's parameters, by design.
        if (t == "quarantine" && (col == "record" || col == "params")) continue;
        const unsigned char* v = sqlite3_column_text(st, c);
        int n = sqlite3_column_bytes(st, c);
        text += col + "=" + (v ? std::string(reinterpret_cast<const char*>(v), n) : "NULL") + "\n";
      }
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(h);
  EXPECT_TRUE(out.count("runs") && out.count("quarantine") && out.count("audit")) << db;
  return out;
}

void ScanState(const Needles& needles, const fs::path& db, const std::string& label) {
  for (const auto& [table, text] : StateTables(db)) needles.Scan(label + " table " + table, text);
}

// Every listing the command line gives over a state file.
void ScanListings(const Needles& needles, const fs::path& dir, const fs::path& state,
                  const std::vector<std::string>& recipes) {
  std::vector<std::vector<std::string>> commands = {{"history"},
                                                    {"history", "--log-format", "json"},
                                                    {"quarantine", "--all"},
                                                    {"quarantine", "--all", "--log-format", "json"}};
  for (const auto& r : recipes) {
    commands.push_back({"audit", "--recipe", r});
    commands.push_back({"audit", "--recipe", r, "--log-format", "json"});
    commands.push_back({"quarantine", r});
  }
  for (auto args : commands) {
    std::string what = "keyonce";
    for (const auto& a : args) what += " " + a;
    args.push_back("--state");
    args.push_back(state.string());
    Output o = Keyonce(args, dir);
    EXPECT_EQ(o.exit_code, 0) << what << "\n" << o.all();
    needles.Scan(what, o.all());
  }
}

// The probe's folder: its recipe and data, and the sqlite table whose UNIQUE
// column makes one record fail.
void PrepareProbe(const fs::path& dir) {
  CopyTree(kSource / "tests" / "leak" / "probe", dir);
  fs::create_directories(dir / "out");
  Sqlite(dir / "out" / "leak_people.db",
         "CREATE TABLE people(cpr TEXT, email TEXT UNIQUE, pw TEXT);"
         " INSERT INTO people VALUES('x', 'e@example.dk', '');");
}

TEST(LeakCheck, EveryRecipeOnTheCommandLine) {
  Needles needles;
  ASSERT_GT(needles.cprs(), 10u);
  const fs::path dir = FreshDir("leak_cli");
  const fs::path state = dir / "state.db";
  struct Case {
    std::string name, folder;
    std::vector<std::string> params;
    std::string test_file;
  };
  const int closed_port = FreePort();  // nothing listens: the probe's api target fails
  std::vector<Case> cases = {
      {"sick-leave-to-payroll", "examples/sick_leave", {}, "sick_leave_test.yaml"},
      {"region-invoices",
       "recipes/region-invoices",
       {"file=data/invoices-2026-11.csv", "payment_date=2026-12-01"},
       "region_invoices_test.yaml"},
      {"welcome-letters", "recipes/welcome-letters", {}, "welcome_letters_test.yaml"},
      {"leak-probe",
       "tests/leak/probe",
       {"cpr=" + kParamCpr, "port=" + std::to_string(closed_port)},
       ""},
  };
  std::vector<std::string> names;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    names.push_back(c.name);
    const fs::path rdir = dir / c.name;
    if (c.name == "leak-probe") {
      PrepareProbe(rdir);
    } else {
      CopyTree(kSource / c.folder, rdir);
      fs::remove_all(rdir / "out");
    }
    if (c.name == "welcome-letters")
      Sqlite(rdir / "data" / "movers.db", ".read " + (rdir / "data" / "movers.sql").string());
    std::vector<std::string> params;
    for (const auto& p : c.params) {
      params.push_back("--param");
      params.push_back(p);
    }
    auto run = [&](std::vector<std::string> args) {
      std::string what = "keyonce";
      for (const auto& a : args) what += " " + a;
      args.insert(args.end(), params.begin(), params.end());
      args.push_back("--state");
      args.push_back(state.string());
      Output o = Keyonce(args, rdir, SecretEnv());
      EXPECT_LT(o.exit_code, 4) << what << "\n" << o.all();
      needles.Scan(what + " (" + c.name + ")", o.all(),
                   what.find("--dry-run") != std::string::npos);
      return o;
    };
    run({"validate", "recipe.yaml"});
    run({"run", "recipe.yaml", "--dry-run"});
    Output first = run({"run", "recipe.yaml"});
    EXPECT_TRUE(first.exit_code == 0 || first.exit_code == 3) << first.all();
    run({"run", "recipe.yaml", "--log-format", "json"});
    run({"quarantine", "recipe.yaml", "--retry", "all"});
    if (!c.test_file.empty()) {
      Output t = Keyonce({"test", c.test_file}, rdir);
      EXPECT_EQ(t.exit_code, 0) << t.all();
      needles.Scan("keyonce test " + c.test_file, t.all());
    }
  }
  // A run whose secrets are missing, and one with a bad parameter.
  Output missing = Keyonce({"run", "recipe.yaml", "--state", state.string(), "--param",
                            "cpr=" + kParamCpr, "--param", "port=1"},
                           dir / "leak-probe");
  EXPECT_EQ(missing.exit_code, 2) << missing.all();
  needles.Scan("a run without its secrets", missing.all());
  Output bad =
      Keyonce({"run", "recipe.yaml", "--state", state.string(), "--param", "port=" + kParamCpr},
              dir / "leak-probe", SecretEnv());
  EXPECT_EQ(bad.exit_code, 2) << bad.all();
  needles.Scan("a run with a CPR number as a bad int parameter", bad.all());

  ScanListings(needles, dir, state, names);
  ScanState(needles, state, "the command line's state file");
  // The records did reach the targets (that is their job), so the needles work.
  EXPECT_NE(ReadFile(dir / "leak-probe" / "out" / "leak_people.jsonl").find(kApiToken),
            std::string::npos);
  EXPECT_NE(ReadFile(dir / "leak-probe" / "out" / "leak_people.jsonl").find("010203-1234"),
            std::string::npos);
  std::cout << "scanned " << needles.scanned() << " outputs for secrets and " << needles.cprs()
            << " CPR numbers\n";
  // KEYONCE_KEEP_TEST_DIRS=1 keeps the folder for a post-mortem.
  if (!std::getenv("KEYONCE_KEEP_TEST_DIRS")) fs::remove_all(dir);
}

// The JSON of a reply, or null when it is not JSON.
json::value Lenient(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  return ec ? json::value() : v;
}

json::value Parse(const HttpReply& r, const std::string& what) {
  EXPECT_EQ(r.status, 200) << what << ": " << r.error << " " << r.body.substr(0, 300);
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  EXPECT_FALSE(ec) << what << ": not JSON";
  return v;
}

TEST(LeakCheck, ServiceRunsQuarantineMetricsAndAudit) {
  Needles needles;
  Service svc(Binary());
  svc.WriteTokens(
      {{"admin", "admin", {}, kAdminToken},
       {"olga", "operator", {}, kOperatorToken},
       {"anna", "caseworker", {"leak-probe", "sick-leave-to-payroll"}, kCaseworkerToken}});
  CopyTree(kSource / "examples" / "sick_leave" / "data", svc.recipes_dir() / "data");
  fs::copy_file(kSource / "examples" / "sick_leave" / "recipe.yaml",
                svc.recipes_dir() / "sick_leave.yaml");
  PrepareProbe(svc.recipes_dir());
  fs::rename(svc.recipes_dir() / "recipe.yaml", svc.recipes_dir() / "leak_probe.yaml");
  std::string why;
  ASSERT_TRUE(svc.Start({}, &why, SecretEnv())) << why;
  HttpClient& http = svc.client();

  const int closed_port = FreePort();
  std::vector<int64_t> runs;
  auto trigger = [&](const std::string& recipe, const std::string& params) {
    HttpReply r = http.SendJson("POST", "/api/v1/recipes/" + recipe + "/runs",
                                "{\"params\":" + params + "}", kCaseworkerToken);
    EXPECT_EQ(r.status, 202) << recipe << ": " << r.body.substr(0, 300);
    needles.Scan("POST /api/v1/recipes/" + recipe + "/runs", r.body);
    json::value v = Lenient(r.body);
    if (v.is_object() && v.as_object().contains("id"))
      runs.push_back(v.at("id").to_number<int64_t>());
  };
  auto wait_all = [&] {
    for (int64_t id : runs) {
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
      std::string status;
      while (std::chrono::steady_clock::now() < deadline) {
        json::value v = Parse(http.Get("/api/v1/runs/" + std::to_string(id), kAdminToken), "run");
        status = v.is_object() && v.as_object().contains("status")
                     ? json::value_to<std::string>(v.at("status"))
                     : "";
        if (status != "queued" && status != "running") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      EXPECT_TRUE(status != "queued" && status != "running") << "run " << id << " did not finish";
    }
  };
  trigger("sick-leave-to-payroll", R"({"file": "data/sygefravaer.csv"})");
  trigger("leak-probe",
          "{\"cpr\": \"" + kParamCpr + "\", \"port\": " + std::to_string(closed_port) + "}");
  // A bad parameter value: refused naming the parameter, never the value.
  HttpReply bad = http.SendJson(
      "POST", "/api/v1/recipes/leak-probe/runs",
      "{\"params\": {\"cpr\": \"" + kParamCpr + "\", \"port\": \"" + kParamCpr + "\"}}",
      kCaseworkerToken);
  EXPECT_EQ(bad.status, 400) << bad.body;
  needles.Scan("a refused run's answer", bad.body);
  wait_all();

  // The operator's inbox: each item, with its record excluded (by design), a fix and a retry.
  json::value inbox = Parse(http.Get("/api/v1/quarantine", kOperatorToken), "quarantine");
  needles.Scan("GET /api/v1/quarantine", json::serialize(inbox));
  ASSERT_TRUE(inbox.is_array() && !inbox.as_array().empty()) << json::serialize(inbox);
  std::string first;
  for (const auto& item : inbox.as_array()) {
    std::string id = std::to_string(item.at("id").to_number<int64_t>());
    json::value one =
        Parse(http.Get("/api/v1/quarantine/" + id, kOperatorToken), "quarantine item");
    // The item to fix below: the first whose record has an e-mail field (a
    // row the CSV reader could not read has none).
    if (first.empty() && one.is_object() && one.as_object().contains("record") &&
        one.at("record").is_object() && one.at("record").as_object().contains("email")) {
      first = id;
    }
    if (one.is_object()) one.as_object().erase("record");  // the record itself, by design
    needles.Scan("GET /api/v1/quarantine/" + id + " (without record)", json::serialize(one));
  }
  ASSERT_FALSE(first.empty()) << "no quarantined record with an email field";
  HttpReply patch = http.SendJson("PATCH", "/api/v1/quarantine/" + first,
                                  R"({"fields": {"email": "fixed@example.dk"}})", kOperatorToken);
  // PATCH answers with the same item as GET /api/v1/quarantine/{id}, its
  // corrected record included (api.md): that record is excluded like GET's.
  json::value patched = Lenient(patch.body);
  EXPECT_EQ(patch.status, 200) << patch.body.substr(0, 300);
  if (patched.is_object()) patched.as_object().erase("record");
  needles.Scan("PATCH /api/v1/quarantine/" + first + " (without record)", json::serialize(patched));
  HttpReply retry =
      http.SendJson("POST", "/api/v1/quarantine/" + first + "/retry", "{}", kOperatorToken);
  needles.Scan("POST /api/v1/quarantine/" + first + "/retry", retry.body);
  json::value retried = Lenient(retry.body);
  if (retried.is_object() && retried.as_object().contains("id"))
    runs.push_back(retried.at("id").to_number<int64_t>());
  wait_all();

  for (const std::string path : {"/metrics", "/api/v1/runs?limit=500", "/api/v1/schedule",
                                 "/api/v1/recipes", "/api/v1/quarantine?status=all"}) {
    HttpReply r = http.Get(path, kAdminToken);
    EXPECT_EQ(r.status, 200) << path << ": " << r.body.substr(0, 300);
    needles.Scan("GET " + path, r.body);
  }
  for (int64_t id : runs) {
    for (const std::string suffix : {"", "/log"}) {
      std::string path = "/api/v1/runs/" + std::to_string(id) + suffix;
      HttpReply r = http.Get(path, kAdminToken);
      EXPECT_EQ(r.status, 200) << path << ": " << r.body.substr(0, 300);
      needles.Scan("GET " + path, r.body);
      needles.Scan("GET " + path + " (caseworker)", http.Get(path, kCaseworkerToken).body);
    }
  }
  auto stopped = svc.Stop();
  EXPECT_EQ(stopped.value_or(-1), 0) << svc.Log();
  needles.Scan("the service's log", svc.Log());
  ScanListings(needles, svc.dir(), svc.state_file(), {"leak-probe", "sick-leave-to-payroll"});
  ScanState(needles, svc.state_file(), "the service's state file");
  std::cout << "scanned " << needles.scanned() << " outputs for secrets and " << needles.cprs()
            << " CPR numbers\n";
}

// The network example with its demo systems (REST, SOAP, PostgreSQL, SMTP):
// run.sh makes fresh secrets (case-<hex>, db-<hex>); no CPR number of its data
// and neither secret may appear in what it prints.
TEST(LeakCheck, CaseFlowExample) {
  Needles needles;
  std::string output;
  int rc = RunProgram({"bash", (kSource / "examples" / "case_flow" / "run.sh").string()}, &output,
                      {{"KEYONCE", Binary()}});
  EXPECT_EQ(rc, 0) << output;
  EXPECT_NE(output.find("cases in the case system after two runs: 4"), std::string::npos) << output;
  needles.Scan("examples/case_flow/run.sh", output);
  static const std::regex secret(R"((case|db)-[0-9a-f]{24})");
  EXPECT_FALSE(std::regex_search(output, secret)) << "a generated secret in the output:\n"
                                                  << output;
}

}  // namespace
}  // namespace keyonce::testing_util
