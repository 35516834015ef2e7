// The browser target end to end: the keyonce binary keys records into
// Sagsportalen (tests/servers/webapp, a server-rendered legacy case system on
// loopback) through Debian's chromium: login with a CSRF token, fields found
// by label, an option list filled late by script, a confirm() dialog, an
// iframe editor, an upload, the case number read back; and what goes wrong:
// a session that expires, a wrong password, a changed page, the site's own
// validation message, a submit whose answer is lost.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "tests/cli_util.h"
#include "tests/support/sanitizers.h"
#include "tests/support/webapp_server.h"

namespace keyonce::testing_util {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

const char* kRecipe = R"(recipe: ansoegninger
params:
  portal: {type: string, required: true}
secrets:
  portal_user: {env: PORTAL_USER}
  portal_password: {env: PORTAL_PASSWORD}
source: {type: csv, path: in.csv, delimiter: ";"}
key: "{{ record.cpr }}"
targets:
  - name: portal
    type: browser
    url: "{{ params.portal }}"
    timeout_seconds: @TIMEOUT@
    sessions: @SESSIONS@
    login:
      - goto: /login
      - fill: {label: Brugernavn, value: "{{ secrets.portal_user }}"}
      - fill: {label: Adgangskode, value: "{{ secrets.portal_password }}"}
      - click: {role: button, name: Log ind}
      - expect: {text: Log ud}
    logged_out: {role: heading, name: Log ind}
    errors: {css: "[role=alert]"}
    write:
      - goto: /cases/new
      - fill: {label: @CPR_LABEL@, value: "{{ record.cpr }}"}
      - fill: {label: Navn, value: "{{ record.navn }}"}
      - fill: {label: Ansøgningsdato, value: "{{ record.dato }}"}
      - select: {label: Ydelse, option: "{{ record.ydelse }}"}
      - check: {label: Samtykke givet}
      - upload: {label: Bilag, file: bilag.txt}
      - in_frame: {title: Bemærkning}
        do:
          - fill: {css: body, value: "Oprettet af keyonce"}
      - click: {role: button, name: Opret sag, dialog: accept, submits: true}
      - expect: {text: Sagen er oprettet}
      - read: {sagsnummer: {label: Sagsnummer}}
    exists:
      actions:
        - goto: "/search?cpr={{ record.cpr | urlencode }}"
      found: {css: "#resultater tbody td"}
      absent: {text: Ingen sager fundet}
      read: {sagsnummer: {css: "#resultater tbody td", nth: 1}}
    capture: {sagsnummer: "{{ reply.sagsnummer }}"}
  - name: trail
    type: jsonl
    path: out/trail.jsonl
    body: {cpr: "{{ record.cpr }}", sag: "{{ captures.portal.sagsnummer }}"}
)";

struct Case {
  std::string cpr, navn, dato, ydelse;
};

std::string Cpr(int i) {
  char b[48];  // room for any int: -Og does not narrow the ranges for -Wformat-truncation
  std::snprintf(b, sizeof b, "%02d%02d%02d-%04d", 1 + i % 28, 1 + (i / 28) % 12, 50 + i % 40,
                1000 + i);
  return b;
}

std::vector<Case> Cases(int n) {
  static const char* kYdelser[] = {"Boligstøtte", "Boligydelse", "Huslejetilskud"};
  std::vector<Case> out;
  for (int i = 0; i < n; ++i) {
    out.push_back({Cpr(i), "Borger Nr " + std::to_string(i),
                   "2026-11-" + std::to_string(10 + i % 18), kYdelser[i % 3]});
  }
  return out;
}

std::string Csv(const std::vector<Case>& cases) {
  std::ostringstream s;
  s << "cpr;navn;dato;ydelse\n";
  for (const auto& c : cases)
    s << c.cpr << ";" << c.navn << ";" << c.dato << ";" << c.ydelse << "\n";
  return s.str();
}

// Every process below `pid` (its children, their children, ...).
std::vector<pid_t> Descendants(pid_t pid) {
  std::vector<pid_t> out, todo = {pid};
  while (!todo.empty()) {
    pid_t p = todo.back();
    todo.pop_back();
    std::error_code ec;
    for (const auto& task : fs::directory_iterator("/proc/" + std::to_string(p) + "/task", ec)) {
      std::istringstream in(ReadFile(task.path() / "children"));
      for (pid_t c; in >> c;) {
        out.push_back(c);
        todo.push_back(c);
      }
    }
  }
  return out;
}

std::string Comm(pid_t pid) {
  std::string c = ReadFile("/proc/" + std::to_string(pid) + "/comm");
  while (!c.empty() && c.back() == '\n') c.pop_back();
  return c;
}

// Kills (SIGKILL) the chromium processes `pid` started; how many.
int KillChromium(pid_t pid) {
  int n = 0;
  for (pid_t p : Descendants(pid)) {
    if (Comm(p).rfind("chrom", 0) == 0 && Comm(p) != "chromedriver" && ::kill(p, SIGKILL) == 0) ++n;
  }
  return n;
}

// Processes whose command line names `tmp` (the browsers keyonce started
// with TMPDIR there keep their profile below it): none may be left once the
// watchdogs finished (they have a few seconds after their keyonce died).
std::vector<pid_t> BrowsersLeft(const fs::path& tmp) {
  std::vector<pid_t> left;
  for (int i = 0; i < 200; ++i) {
    left.clear();
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
      std::string name = e.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      if (ReadFile(e.path() / "cmdline").find(tmp.string()) != std::string::npos) {
        left.push_back(std::stoi(name));
      }
    }
    if (left.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return left;
}

class BrowserTarget : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir(std::string("browser_") +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
    WriteFile(dir_ / "bilag.txt", "Ansøgning, side 1\n");
    // Short: chromium's sockets live below TMPDIR, and a socket path may not
    // exceed 107 bytes.
    tmp_ = fs::path("/tmp") /
           ("kb" + std::to_string(::getpid()) + "-" + std::to_string(++tests_started_));
    fs::remove_all(tmp_);
    fs::create_directories(tmp_);
  }
  void TearDown() override {
    // No browser outlives its run, however the run ended.
    EXPECT_TRUE(BrowsersLeft(tmp_).empty()) << "chromium or chromedriver left running";
    // The watchdog of a killed keyonce removes its browser's folder after the
    // browser has gone (thousands of files): wait for it as for the processes.
    std::error_code ec;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!fs::is_empty(tmp_, ec) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::string left;
    for (const auto& e : fs::directory_iterator(tmp_, ec)) {
      left += " " + e.path().filename().string();
      for (const auto& f : fs::directory_iterator(e.path(), ec)) {
        left += " /" + f.path().filename().string();
      }
    }
    EXPECT_TRUE(left.empty()) << "a browser's folder was left behind:" << left;
    fs::remove_all(tmp_, ec);
  }
  void StartApp(const WebappOptions& o = {}) {
    WebappOptions opts = o;
    opts.settings.emplace("form_delay_ms", "30");
    opts.settings.emplace("select_delay_ms", "60");
    std::string why;
    ASSERT_TRUE(app_.Start(dir_ / "app", &why, opts)) << why;
  }
  // kRecipe (or a test's variant of it) with its @PLACEHOLDERS@ filled in.
  void WriteRecipe(std::map<std::string, std::string> subst = {}, std::string r = kRecipe) {
    subst.emplace("@TIMEOUT@", "5");
    subst.emplace("@SESSIONS@", "1");
    subst.emplace("@CPR_LABEL@", "CPR-nummer");
    for (const auto& [from, to] : subst) {
      for (size_t p; (p = r.find(from)) != std::string::npos;) r.replace(p, from.size(), to);
    }
    WriteFile(dir_ / "recipe.yaml", r);
  }
  Output Run(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {
        "run",     "recipe.yaml",         "--state", "state.db", "--no-progress",
        "--param", "portal=" + app_.url()};
    args.insert(args.end(), extra.begin(), extra.end());
    return Keyonce(args, dir_, Env());
  }
  std::map<std::string, std::string> Env() const {
    return {{"PORTAL_USER", "robot"}, {"PORTAL_PASSWORD", password_}, {"TMPDIR", tmp_.string()}};
  }
  json::array AppCases() {
    boost::system::error_code ec;
    json::value v = json::parse(app_.CasesJson(), ec);
    return !ec && v.is_array() ? v.as_array() : json::array();
  }
  json::object AppState() {
    boost::system::error_code ec;
    json::value v = json::parse(app_.StateJson(), ec);
    return !ec && v.is_object() ? v.as_object() : json::object();
  }
  // cpr -> how many cases the application holds for it.
  std::map<std::string, int> CasesPerCpr() {
    std::map<std::string, int> n;
    for (const auto& c : AppCases()) ++n[std::string(c.at("cpr").as_string())];
    return n;
  }
  // cpr -> case number written to the trail (the captured reply).
  std::map<std::string, std::string> Trail() {
    std::map<std::string, std::string> out;
    std::istringstream in(ReadFile(dir_ / "out/trail.jsonl"));
    for (std::string line; std::getline(in, line);) {
      boost::system::error_code ec;
      json::value v = json::parse(line, ec);
      if (ec) continue;
      out[std::string(v.at("cpr").as_string())] = std::string(v.at("sag").as_string());
    }
    return out;
  }

  fs::path dir_, tmp_;
  static inline int tests_started_ = 0;
  WebappServer app_;
  std::string password_ = "Sommer2026!";
};

TEST_F(BrowserTarget, KeysEachRecordOnceAndCapturesItsCaseNumber) {
  StartApp();
  WriteRecipe();
  auto cases = Cases(4);
  WriteFile(dir_ / "in.csv", Csv(cases));
  Output v = Keyonce({"validate", "recipe.yaml"}, dir_);
  ASSERT_EQ(v.exit_code, 0) << v.all();

  Output dry = Run({"--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.all();
  EXPECT_NE(dry.out.find("\"action\":\"fill\",\"element\":\"label 'CPR-nummer'\""),
            std::string::npos)
      << dry.out;
  EXPECT_TRUE(AppCases().empty()) << "a dry run opens no browser";

  Output r = Run();
  ASSERT_EQ(r.exit_code, 0) << r.all();
  json::array got = AppCases();
  ASSERT_EQ(got.size(), cases.size());
  auto trail = Trail();
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = got[i].as_object();
    EXPECT_EQ(c.at("cpr").as_string(), cases[i].cpr);
    EXPECT_EQ(c.at("navn").as_string(), cases[i].navn);
    EXPECT_EQ(c.at("ansoegningsdato").as_string(), cases[i].dato);
    EXPECT_EQ(c.at("ydelse").as_string(), cases[i].ydelse);
    EXPECT_TRUE(c.at("samtykke").as_bool());
    EXPECT_EQ(c.at("bemaerkning").as_string(), "Oprettet af keyonce");
    EXPECT_EQ(c.at("bilag").at("navn").as_string(), "bilag.txt");
    EXPECT_EQ(trail[cases[i].cpr], c.at("sagsnummer").as_string()) << "the captured case number";
  }
  // Nothing twice.
  Output again = Run();
  EXPECT_EQ(again.exit_code, 0) << again.all();
  EXPECT_EQ(AppCases().size(), cases.size());
  // No CPR number in the output.
  for (const auto& c : cases) EXPECT_EQ(r.all().find(c.cpr), std::string::npos) << r.all();
}

TEST_F(BrowserTarget, AnExpiredSessionLogsInAgainWithoutLosingOrRepeatingARecord) {
  WebappOptions o;
  // A session serves four pages (the page after the login, the form, its submit, the
  // confirmation): every record after the first meets the login page.
  o.expire_every = 4;
  StartApp(o);
  WriteRecipe();
  auto cases = Cases(5);
  WriteFile(dir_ / "in.csv", Csv(cases));
  Output r = Run();
  ASSERT_EQ(r.exit_code, 0) << r.all();
  auto per = CasesPerCpr();
  EXPECT_EQ(per.size(), cases.size());
  for (const auto& [cpr, n] : per) EXPECT_EQ(n, 1) << "a case was made twice";
  EXPECT_EQ(Trail().size(), cases.size());
  EXPECT_GT(AppState().at("counters").at("expired").as_int64(), 0);
}

TEST_F(BrowserTarget, AWrongPasswordFailsTheRunAtOnceAndIsNotTriedAgain) {
  StartApp();
  WriteRecipe();
  WriteFile(dir_ / "in.csv", Csv(Cases(3)));
  password_ = "forkert-kodeord";
  Output r = Run();
  EXPECT_EQ(r.exit_code, 1) << r.all();
  EXPECT_NE(r.all().find("logging in to portal failed"), std::string::npos) << r.all();
  EXPECT_EQ(r.all().find("forkert-kodeord"), std::string::npos) << "the password is never shown";
  json::object st = AppState();
  EXPECT_EQ(st.at("counters").at("failed_logins").as_int64(), 1) << "tried once";
  EXPECT_FALSE(st.at("locked").as_bool());
  EXPECT_TRUE(AppCases().empty());
}

TEST_F(BrowserTarget, AMissingElementTimesOutNamingItsLineWithAScreenshotAndThePage) {
  StartApp();
  WriteRecipe({{"@TIMEOUT@", "1"}});
  WriteFile(dir_ / "in.csv", Csv(Cases(2)));
  ASSERT_TRUE(app_.Control(R"({"changed_page": true})"));  // the vendor renamed the CPR field
  Output r = Run();
  EXPECT_EQ(r.exit_code, 3) << r.all();
  Output q = Keyonce({"quarantine", "ansoegninger", "--state", "state.db"}, dir_);
  EXPECT_NE(q.out.find("write[1] (recipe.yaml:25): fill label 'CPR-nummer': nothing matches "
                       "label 'CPR-nummer' after 1 s"),
            std::string::npos)
      << q.out;
  EXPECT_TRUE(AppCases().empty());
  // The person who must fix it sees what the browser showed: a screenshot and
  // the page, in the run's evidence folder, named in the quarantine item by the
  // record's reference (never by its CPR number).
  const fs::path evidence = dir_ / "state.db.evidence" / "run-1";
  int pngs = 0, pages = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(evidence, ec)) {
    const std::string name = e.path().filename().string();
    EXPECT_EQ(name.rfind("ref-", 0), 0u) << name;
    EXPECT_NE(q.out.find(e.path().string()), std::string::npos) << "not named: " << e.path() << "\n"
                                                                << q.out;
    if (e.path().extension() == ".png") {
      ++pngs;
      EXPECT_EQ(ReadFile(e.path()).substr(0, 8), "\x89PNG\r\n\x1a\n") << name;
    } else if (e.path().extension() == ".html") {
      ++pages;
      EXPECT_NE(ReadFile(e.path()).find("Opret ny sag"), std::string::npos) << name;
    }
  }
  EXPECT_EQ(pngs, 2) << "a screenshot per quarantined record";
  EXPECT_EQ(pages, 2);
  for (const auto& c : Cases(2)) EXPECT_EQ(q.all().find(c.cpr), std::string::npos) << q.all();
}

// A file the site hands out (the receipt on the confirmation page) is saved
// in the recipe's folder under the site's name, and its path captured.
TEST_F(BrowserTarget, ADownloadIsSavedAndItsPathCaptured) {
  StartApp();
  std::string r = kRecipe;
  auto put = [&](const std::string& after, const std::string& text) {
    size_t p = r.find(after);
    ASSERT_NE(p, std::string::npos) << after;
    r.insert(p + after.size(), text);
  };
  put("      - read: {sagsnummer: {label: Sagsnummer}}\n",
      "      - download: {role: link, name: Hent kvittering, as: kvittering, "
      "folder: out/kvitteringer}\n");
  put("    capture: {sagsnummer: \"{{ reply.sagsnummer }}\"",
      ", kvittering: \"{{ reply.kvittering }}\"");
  put("sag: \"{{ captures.portal.sagsnummer }}\"",
      ", kvittering: \"{{ captures.portal.kvittering }}\"");
  WriteRecipe({}, r);
  auto cases = Cases(2);
  WriteFile(dir_ / "in.csv", Csv(cases));
  Output out = Run();
  ASSERT_EQ(out.exit_code, 0) << out.all();
  std::istringstream trail(ReadFile(dir_ / "out/trail.jsonl"));
  int n = 0;
  for (std::string line; std::getline(trail, line); ++n) {
    json::object t = json::parse(line).as_object();
    const std::string sag(t.at("sag").as_string()), path(t.at("kvittering").as_string());
    EXPECT_EQ(fs::path(path),
              fs::absolute(dir_ / "out/kvitteringer" / ("kvittering-" + sag + ".pdf")))
        << line;
    EXPECT_EQ(ReadFile(path).substr(0, 5), "%PDF-") << path;
  }
  EXPECT_EQ(n, 2);
}

// A lookup table in the web application: each key found through its search
// page, its values read; a key the site does not know gives null.
TEST_F(BrowserTarget, ALookupTableFindsKeysThroughTheSitesSearchPage) {
  StartApp();
  WriteRecipe();
  auto cases = Cases(3);
  WriteFile(dir_ / "in.csv", Csv({cases[0], cases[1]}));
  ASSERT_EQ(Run().exit_code, 0);  // two cases in Sagsportalen
  WriteFile(dir_ / "lookup.yaml", R"(recipe: sagsopslag
params:
  portal: {type: string, required: true}
secrets:
  portal_user: {env: PORTAL_USER}
  portal_password: {env: PORTAL_PASSWORD}
tables:
  sager:
    type: browser
    url: "{{ params.portal }}"
    login:
      - goto: /login
      - fill: {label: Brugernavn, value: "{{ secrets.portal_user }}"}
      - fill: {label: Adgangskode, value: "{{ secrets.portal_password }}"}
      - click: {role: button, name: Log ind}
    logged_out: {role: heading, name: Log ind}
    find:
      actions:
        - goto: "/search?cpr={{ key | urlencode }}"
      found: {css: "#resultater tbody td"}
      absent: {text: Ingen sager fundet}
      read: {sagsnummer: {css: "#resultater tbody td", nth: 1}, navn: {css: "#resultater tbody td", nth: 2}}
source: {type: csv, path: all.csv, delimiter: ";"}
key: "{{ record.cpr }}"
targets:
  - name: opslag
    type: jsonl
    path: out/opslag.jsonl
    body:
      cpr: "{{ record.cpr }}"
      sag: "{{ record.cpr | lookup('sager', 'sagsnummer') | default('ingen') }}"
      navn: "{{ record.cpr | lookup('sager', 'navn') | default('') }}"
)");
  WriteFile(dir_ / "all.csv", Csv(cases));
  Output v = Keyonce({"validate", "lookup.yaml"}, dir_);
  ASSERT_EQ(v.exit_code, 0) << v.all();
  Output r = Keyonce({"run", "lookup.yaml", "--state", "state.db", "--no-progress", "--param",
                      "portal=" + app_.url()},
                     dir_, Env());
  ASSERT_EQ(r.exit_code, 0) << r.all();
  std::map<std::string, std::pair<std::string, std::string>> got;
  std::istringstream in(ReadFile(dir_ / "out/opslag.jsonl"));
  for (std::string line; std::getline(in, line);) {
    json::object o = json::parse(line).as_object();
    got[std::string(o.at("cpr").as_string())] = {std::string(o.at("sag").as_string()),
                                                 std::string(o.at("navn").as_string())};
  }
  auto trail = Trail();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[cases[0].cpr].first, trail[cases[0].cpr]);
  EXPECT_EQ(got[cases[0].cpr].second, cases[0].navn);
  EXPECT_EQ(got[cases[1].cpr].first, trail[cases[1].cpr]);
  EXPECT_EQ(got[cases[2].cpr].first, "ingen") << "not in Sagsportalen";
  for (const auto& c : cases) EXPECT_EQ(r.all().find(c.cpr), std::string::npos) << r.all();
}

TEST_F(BrowserTarget, TheSitesValidationMessageQuarantinesTheRecordWithThatMessage) {
  StartApp();
  WriteRecipe();
  auto cases = Cases(2);
  cases[1].cpr = "451399-1234";  // no such birth date: the site refuses it
  WriteFile(dir_ / "in.csv", Csv(cases));
  Output r = Run();
  EXPECT_EQ(r.exit_code, 3) << r.all();
  EXPECT_EQ(AppCases().size(), 1u);
  Output q = Keyonce({"quarantine", "ansoegninger", "--state", "state.db"}, dir_);
  EXPECT_NE(q.out.find("the site says: "), std::string::npos) << q.out;
  EXPECT_NE(q.out.find("gyldig fødselsdato"), std::string::npos) << q.out;
}

// A page with fields as legacy pages have them (tests/servers/webapp/static/felter.html).
const char* kFieldsRecipe = R"(recipe: felter
params:
  portal: {type: string, required: true}
source: {type: csv, path: in.csv, delimiter: ";"}
key: "{{ record.id }}"
targets:
  - name: portal
    type: browser
    url: "{{ params.portal }}"
    timeout_seconds: 3
    write:
      - goto: /static/felter.html
      - fill: {label: Telefon, value: "{{ record.telefon }}", keys: true}
      - fill: {label: Mobil, value: "{{ record.telefon }}"}
      - fill: {label: Postnummer, value: "{{ record.postnummer }}"}
      - fill: {label: Dato, value: "{{ record.dato }}"}
      - click: {role: button, name: Gem, submits: true}
      - expect: {text: Gemt}
      - read: {telefon: {label: Telefon}, mobil: {label: Mobil}, dato: {label: Dato}}
    capture: {telefon: "{{ reply.telefon }}", mobil: "{{ reply.mobil }}", dato: "{{ reply.dato }}"}
  - name: trail
    type: jsonl
    path: out/felter.jsonl
    body: {id: "{{ record.id }}", telefon: "{{ captures.portal.telefon }}", mobil: "{{ captures.portal.mobil }}", dato: "{{ captures.portal.dato }}"}
)";

TEST_F(BrowserTarget, FillSetsAFieldAtOnceOrKeyByKeyAndRefusesWhatTheFieldCannotHold) {
  StartApp();
  WriteRecipe({}, kFieldsRecipe);
  WriteFile(dir_ / "in.csv",
            "id;telefon;postnummer;dato\n"
            "1;12345678;8000;2026-11-02\n"
            "2;12345678;80000;2026-11-02\n"   // a person typing would be cut off at 4
            "3;12345678;8000;02-11-2026\n");  // not the form a date field takes
  Output r = Run();
  EXPECT_EQ(r.exit_code, 3) << r.all();
  std::string trail = ReadFile(dir_ / "out/felter.jsonl");
  // keys: true types key by key, so the page's mask formats the number; a
  // fill at once sets the value as given (and fires input, which enabled Gem).
  EXPECT_EQ(trail,
            "{\"id\":\"1\",\"telefon\":\"12 34 56 78\",\"mobil\":\"12345678\","
            "\"dato\":\"2026-11-02\"}\n");
  Output q = Keyonce({"quarantine", "felter", "--state", "state.db"}, dir_);
  EXPECT_NE(q.out.find("fill label 'Postnummer': the value is longer than the field takes (at "
                       "most 4 characters)"),
            std::string::npos)
      << q.out;
  EXPECT_NE(q.out.find("fill label 'Dato': the field does not take the value (not in the form "
                       "a 'date' field takes, e.g. 2026-11-02)"),
            std::string::npos)
      << q.out;
  // The values themselves are not repeated in any message.
  EXPECT_EQ(q.out.find("80000"), std::string::npos) << q.out;
  EXPECT_EQ(q.out.find("02-11-2026"), std::string::npos) << q.out;
  EXPECT_EQ(r.all().find("80000"), std::string::npos) << r.all();
}

// A changed page: the confirmation no longer says what the recipe expects.
TEST_F(BrowserTarget, AnExpectThatFailsQuarantinesWithItsMessageAndAScreenshot) {
  StartApp();
  WriteRecipe({{"- expect: {text: Gemt}",
                "- expect: {text: Gemt i sagen, message: \"siden bekræftede ikke\"}"}},
              kFieldsRecipe);
  WriteFile(dir_ / "in.csv", "id;telefon;postnummer;dato\n1;12345678;8000;2026-11-02\n");
  Output r = Run();
  EXPECT_EQ(r.exit_code, 3) << r.all();
  Output q = Keyonce({"quarantine", "felter", "--state", "state.db"}, dir_);
  EXPECT_NE(q.out.find("expect text 'Gemt i sagen': siden bekræftede ikke"), std::string::npos)
      << q.out;
  int pngs = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_ / "state.db.evidence" / "run-1", ec)) {
    if (e.path().extension() == ".png") ++pngs;
  }
  EXPECT_EQ(pngs, 1) << q.out;
}

TEST_F(BrowserTarget, ASubmitWhoseAnswerIsLostIsSettledByExistsNotRepeated) {
  StartApp();
  WriteRecipe();
  auto cases = Cases(3);
  WriteFile(dir_ / "in.csv", Csv(cases));
  // The second submit is saved, then answered with an error page.
  ASSERT_TRUE(app_.Control(R"({"fail_next": 1, "fail_phase": "after"})"));
  Output r = Run();
  EXPECT_EQ(r.exit_code, 0) << r.all();
  auto per = CasesPerCpr();
  EXPECT_EQ(per.size(), cases.size());
  for (const auto& [cpr, n] : per) EXPECT_EQ(n, 1) << "a case was made twice";
  auto trail = Trail();
  EXPECT_EQ(trail.size(), cases.size());
  for (const auto& c : AppCases()) {
    EXPECT_EQ(trail[std::string(c.at("cpr").as_string())], c.at("sagsnummer").as_string());
  }
}

TEST_F(BrowserTarget, WithoutExistsALostAnswerLeavesTheRecordInDoubtForAPerson) {
  StartApp();
  std::string r = kRecipe;
  r.erase(r.find("    exists:"), r.find("    capture:") - r.find("    exists:"));
  WriteFile(dir_ / "in.csv", Csv(Cases(2)));
  WriteRecipe({}, r);
  ASSERT_TRUE(app_.Control(R"({"fail_next": 1, "fail_phase": "after"})"));
  Output first = Run();
  EXPECT_EQ(first.exit_code, 3) << first.all();
  EXPECT_EQ(AppCases().size(), 2u) << "both were saved by the site";
  // The next run does not key it again.
  Output second = Run();
  EXPECT_EQ(second.exit_code, 3) << second.all();
  EXPECT_EQ(AppCases().size(), 2u) << "keyed again although it may have arrived";
  Output q = Keyonce({"quarantine", "ansoegninger", "--state", "state.db"}, dir_);
  EXPECT_NE(q.out.find("in_doubt"), std::string::npos) << q.out;
}

// keyonce's own memory (the browsers are other processes) stays flat while
// 1,000 records go through the browser in one run: what it holds after the
// first 100 is what it holds at the end, within a few MiB. The page is
// Sagsportalen's smallest (the remark editor: go, fill, click, read), so that
// 1,000 records take a minute, not a quarter of an hour; the engine and the
// connector hold the same per record whatever the form. Batches of 100: the first batch is all
// that is read when the first 100 are keyed, so growth after it is growth
// with the input.
// Every record goes through goto, fill, click and read; the goto changes only
// the URL's fragment after the first record (no new document): what is
// measured is keyonce, and a page load per record would make chromium the
// cost of this test (a third of a CPU second a record).
TEST_F(BrowserTarget, KeyoncesOwnMemoryStaysFlatOver1000Records) {
#if defined(KEYONCE_ASAN) || defined(KEYONCE_TSAN)
  GTEST_SKIP() << "a sanitizer's shadow memory and quarantine make RSS say nothing";
#endif
  StartApp();
  WriteFile(dir_ / "recipe.yaml", R"(recipe: noter
params:
  portal: {type: string, required: true}
source: {type: csv, path: in.csv, delimiter: ";"}
key: "{{ record.cpr }}"
batch_records: 100
targets:
  - name: portal
    type: browser
    url: "{{ params.portal }}"
    sessions: 3
    write:
      - goto: "/static/editor.html#n={{ record.cpr | urlencode }}"
      - fill: {label: Bemærkning, value: "{{ record.navn }}"}
      - click: {label: Bemærkning, submits: true}
      - read: {svar: {label: Bemærkning}}
    capture: {svar: "{{ reply.svar }}"}
  - name: trail
    type: jsonl
    path: out/trail.jsonl
    body: {cpr: "{{ record.cpr }}", sag: "{{ captures.portal.svar }}"}
)");
  const int kRecords = 1000;
  WriteFile(dir_ / "in.csv", Csv(Cases(kRecords)));
  Background b = StartKeyonce({"run", "recipe.yaml", "--state", "state.db", "--no-progress",
                               "--param", "portal=" + app_.url()},
                              dir_, "flat", Env());
  auto kib = [&](const std::string& status, const std::string& field) {
    size_t p = status.find(field);
    return p == std::string::npos ? 0L : std::stol(status.substr(p + field.size()));
  };
  const fs::path trail = dir_ / "out/trail.jsonl";
  long after_100 = 0, peak = 0;
  // Until it has exited (a zombie until Finish reaps it).
  for (;;) {
    const std::string status = ReadFile("/proc/" + std::to_string(b.pid) + "/status");
    if (status.empty() || status.find("State:\tZ") != std::string::npos) break;
    peak = std::max(peak, kib(status, "VmHWM:"));
    if (!after_100) {
      const std::string t = ReadFile(trail);
      if (std::count(t.begin(), t.end(), '\n') >= 100) after_100 = peak;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  Output out = Finish(b, 60);
  ASSERT_EQ(out.exit_code, 0) << out.all();
  EXPECT_EQ(Trail().size(), static_cast<size_t>(kRecords));
  ASSERT_GT(after_100, 0);
  std::printf("[ memory   ] keyonce's peak RSS: %ld KiB after 100 records, %ld KiB after %d\n",
              after_100, peak, kRecords);
  EXPECT_LT(peak - after_100, 8 * 1024) << "keyonce's memory grew with the records";
}

// 200 records through three browsers while keyonce is killed at random
// moments and chromium is killed in the middle of submits (every fifth
// submit is saved at once and answered 1.5 s later): after the reruns the
// application holds each case exactly once, and every case number is
// captured.
TEST_F(BrowserTarget, ExactlyOnceThroughKillsOfKeyonceAndOfChromiumMidSubmit) {
  WebappOptions o;
  o.slow_every = 5;
  o.slow_ms = 1500;
  o.settings["slow_phase"] = "after";
  StartApp(o);
  std::string r = kRecipe;
  // A shorter form than the other tests: this one is about the protocol.
  const std::string submit = "      - click: {role: button, name: Opret sag";
  r.erase(r.find("      - fill: {label: Ansøgningsdato"),
          r.find(submit) - r.find("      - fill: {label: Ansøgningsdato"));
  r.replace(r.find(submit), 0,
            "      - fill: {label: Ansøgningsdato, value: \"{{ record.dato }}\"}\n"
            "      - select: {label: Ydelse, option: \"{{ record.ydelse }}\"}\n"
            "      - check: {label: Samtykke givet}\n");
  r.replace(r.find("key: "), 0, "batch_records: 12\n");
  WriteRecipe({{"@TIMEOUT@", "10"}, {"@SESSIONS@", "3"}}, r);
  auto cases = Cases(200);
  WriteFile(dir_ / "in.csv", Csv(cases));
  std::vector<std::string> args = {
      "run",     "recipe.yaml",         "--state", "state.db", "--no-progress",
      "--param", "portal=" + app_.url()};
  std::mt19937 rng(20261206);
  int keyonce_kills = 0, chromium_kills = 0;
  for (int round = 0; round < 8; ++round) {
    Background b = StartKeyonce(args, dir_, "round" + std::to_string(round), Env());
    // Let it key a few records, then kill chromium or keyonce.
    size_t before = AppCases().size();
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    size_t target = before + std::uniform_int_distribution<size_t>(3, 12)(rng);
    while (AppCases().size() < target && std::chrono::steady_clock::now() < until &&
           ::waitpid(b.pid, nullptr, WNOHANG) == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (round % 2 == 0) {
      chromium_kills += KillChromium(b.pid) > 0;
      // ... and then the run goes on with new browsers, until keyonce is killed too.
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::uniform_int_distribution<int>(200, 2500)(rng)));
    }
    if (::kill(b.pid, SIGKILL) == 0) ++keyonce_kills;
    Finish(b);
  }
  Output last = Keyonce(args, dir_, Env());
  EXPECT_TRUE(last.exit_code == 0 || last.exit_code == 3) << last.all();
  // Records left in doubt without an answer get theirs from `exists` now.
  Output again = Keyonce(args, dir_, Env());
  EXPECT_EQ(again.exit_code, 0) << again.all();
  EXPECT_GT(keyonce_kills, 4);
  EXPECT_GT(chromium_kills, 2);
  auto per = CasesPerCpr();
  EXPECT_EQ(per.size(), cases.size()) << "cases missing";
  int twice = 0;
  for (const auto& [cpr, n] : per) twice += n > 1;
  EXPECT_EQ(twice, 0) << "cases made twice";
  auto trail = Trail();
  EXPECT_EQ(trail.size(), cases.size()) << "case numbers not captured";
  for (const auto& c : AppCases()) {
    EXPECT_EQ(trail[std::string(c.at("cpr").as_string())], c.at("sagsnummer").as_string());
  }
  std::printf("[ counts   ] killed keyonce %d times and chromium %d times\n", keyonce_kills,
              chromium_kills);
}

}  // namespace
}  // namespace keyonce::testing_util
