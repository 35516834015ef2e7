// Sagsportalen (server.js) does what the browser connector's tests rely on, checked over plain
// HTTP without a browser: the CSRF token, the account lock, sessions that run out, validation,
// case creation with an upload, duplicates, search, the receipt download, the test controls and
// a log without personal data. The JavaScript parts (late select options, the iframe editor,
// confirm()) need a browser; the connector's own tests drive them.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http_servers.h"
#include "tests/support/service.h"
#include "tests/support/webapp_server.h"

namespace keyonce {
namespace {

using testing_util::HttpClient;
using testing_util::HttpReply;
using testing_util::HttpRequest;
using testing_util::WebappOptions;
using testing_util::WebappServer;
using Fields = std::vector<std::pair<std::string, std::string>>;

constexpr const char* kCpr = "010203-1234";
constexpr const char* kName = "Søren Ærø Ålund";
constexpr const char* kRemark = "Ønsker hurtig behandling – bor på 3. sal";

std::string UrlEncode(const std::string& text) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

struct Upload {
  std::string filename, type, data;
};

constexpr const char* kBoundary = "----SagsportalTestBoundary7MA4YWxk";

std::string Multipart(const Fields& fields, const Upload* file) {
  std::string body;
  for (const auto& [name, value] : fields) {
    body += std::string("--") + kBoundary + "\r\nContent-Disposition: form-data; name=\"" + name +
            "\"\r\n\r\n" + value + "\r\n";
  }
  body += std::string("--") + kBoundary + "\r\nContent-Disposition: form-data; name=\"bilag\"; ";
  if (file) {
    body += "filename=\"" + file->filename + "\"\r\nContent-Type: " + file->type + "\r\n\r\n" +
            file->data + "\r\n";
  } else {
    body += "filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n";
  }
  return body + "--" + kBoundary + "--\r\n";
}

std::string CsrfOf(const std::string& html) {
  std::smatch m;
  return std::regex_search(html, m, std::regex(R"re(name="_csrf" value="([^"]+)")re")) ? m[1].str()
                                                                                       : "";
}

// A browser without JavaScript: keeps the session cookie, follows no redirects.
class Visitor {
 public:
  explicit Visitor(const std::string& url) : http_(std::make_unique<HttpClient>(url)) {}

  HttpReply Get(const std::string& path) { return Send({"GET", path, "", {}}); }

  HttpReply PostForm(const std::string& path, const Fields& fields) {
    std::string body;
    for (const auto& [name, value] : fields) {
      body += (body.empty() ? "" : "&") + UrlEncode(name) + "=" + UrlEncode(value);
    }
    return Send({"POST", path, body, {"Content-Type: application/x-www-form-urlencoded"}});
  }

  HttpReply PostCase(const Fields& fields, const Upload* file = nullptr) {
    return Send({"POST",
                 "/cases",
                 Multipart(fields, file),
                 {std::string("Content-Type: multipart/form-data; boundary=") + kBoundary}});
  }

  // The login page's form, filled in and sent; the reply to the POST.
  HttpReply Login(const std::string& user, const std::string& password,
                  const std::string& next = "/") {
    HttpReply page = Get("/login?next=" + UrlEncode(next));
    return PostForm("/login", {{"_csrf", CsrfOf(page.body)},
                               {"next", next},
                               {"brugernavn", user},
                               {"adgangskode", password}});
  }

  // The case form's CSRF token (the form page counts as a page request).
  std::string FormToken() { return CsrfOf(Get("/cases/new").body); }

  Fields ValidCase(const std::string& cpr = kCpr, const std::string& name = kName) {
    return {{"_csrf", FormToken()},  {"cpr", cpr},
            {"navn", name},          {"ansoegningsdato", "2026-03-12"},
            {"ydelse", "101"},       {"samtykke", "ja"},
            {"bemaerkning", kRemark}};
  }

  std::string cookie() const { return cookie_; }

 private:
  HttpReply Send(HttpRequest request) {
    if (!cookie_.empty()) request.headers.push_back("Cookie: " + cookie_);
    HttpReply reply = http_->Send(request);
    for (const auto& set : reply.Headers("set-cookie")) cookie_ = set.substr(0, set.find(';'));
    return reply;
  }

  std::unique_ptr<HttpClient> http_;  // (HttpClient cannot move)
  std::string cookie_;
};

class Sagsportalen : public ::testing::Test {
 protected:
  void StartWith(const WebappOptions& options) {
    std::string why;
    ASSERT_TRUE(server_.Start(dir_.path(), &why, options)) << why;
  }
  void SetUp() override { StartWith({}); }

  boost::json::array Cases() { return boost::json::parse(server_.CasesJson()).as_array(); }
  boost::json::object State() { return boost::json::parse(server_.StateJson()).as_object(); }
  int64_t Counter(const char* name) { return State()["counters"].as_object()[name].as_int64(); }

  Visitor LoggedIn() {
    Visitor v(server_.url());
    HttpReply r = v.Login("robot", "Sommer2026!");
    EXPECT_EQ(r.status, 303) << r.body;
    EXPECT_EQ(r.Header("location"), "/");
    return v;
  }

  // Waits (up to 20 s) until `condition` holds.
  template <typename Condition>
  static bool Eventually(Condition condition) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!condition()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  // Sends a case submit on a raw connection and closes it without reading the reply, as a
  // browser killed mid-submit does.
  void SubmitAndHangUp(Visitor& v) {
    std::string body = Multipart(v.ValidCase(), nullptr);
    std::string request = std::string("POST /cases HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ") +
                          v.cookie() +
                          "\r\nContent-Type: multipart/form-data; boundary=" + kBoundary +
                          "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(server_.port()));
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ASSERT_EQ(send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
    close(fd);
  }

  testing_util::http::ScratchDir dir_;
  WebappServer server_;
};

TEST_F(Sagsportalen, PagesRedirectToTheLoginAndBackToTheirPath) {
  Visitor v(server_.url());
  HttpReply r = v.Get("/cases/new");
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(r.Header("location"), "/login?next=%2Fcases%2Fnew");

  HttpReply page = v.Get("/login?next=%2Fcases%2Fnew");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.Header("content-type").find("charset=utf-8"), std::string::npos);
  EXPECT_NE(page.body.find("<h1>Log ind</h1>"), std::string::npos);
  EXPECT_NE(page.body.find(R"(<label for="brugernavn">Brugernavn</label>)"), std::string::npos);
  EXPECT_NE(page.body.find(R"(<label for="adgangskode">Adgangskode</label>)"), std::string::npos);
  EXPECT_NE(page.body.find(R"(<button type="submit">Log ind</button>)"), std::string::npos);
  EXPECT_NE(page.body.find(R"(name="next" value="/cases/new")"), std::string::npos);
  EXPECT_FALSE(CsrfOf(page.body).empty());

  r = v.PostForm("/login", {{"_csrf", CsrfOf(page.body)},
                            {"next", "/cases/new"},
                            {"brugernavn", "robot"},
                            {"adgangskode", "Sommer2026!"}});
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(r.Header("location"), "/cases/new");
  EXPECT_NE(r.Header("set-cookie").find("HttpOnly"), std::string::npos);

  HttpReply form = v.Get("/cases/new");
  EXPECT_EQ(form.status, 200);
  for (const char* label :
       {R"(<label for="cpr">CPR-nummer</label>)", R"(<label for="navn">Navn</label>)",
        R"(<label for="ansoegningsdato">Ansøgningsdato</label>)",
        R"(<label for="ydelse">Ydelse</label>)", R"(<label for="samtykke">Samtykke givet</label>)",
        R"(<label for="bilag">Bilag</label>)", R"(<iframe title="Bemærkning")",
        R"(type="date" id="ansoegningsdato")", R"(<button type="submit">Opret sag</button>)"}) {
    EXPECT_NE(form.body.find(label), std::string::npos) << label;
  }
  // The page's script and editor need no login.
  EXPECT_EQ(v.Get("/static/sagsformular.js").status, 200);
  EXPECT_NE(v.Get("/static/editor.html").body.find(R"(contenteditable="true")"), std::string::npos);
  // An outside address is never a redirect target.
  Visitor other(server_.url());
  r = other.Login("robot", "Sommer2026!", "//evil.example/");
  EXPECT_EQ(r.Header("location"), "/");
}

TEST_F(Sagsportalen, LoginAndSubmitWithoutTheCsrfTokenAreRefused) {
  Visitor v(server_.url());
  v.Get("/login");
  HttpReply r = v.PostForm("/login", {{"brugernavn", "robot"}, {"adgangskode", "Sommer2026!"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("role=\"alert\""), std::string::npos);
  r = v.PostForm("/login",
                 {{"_csrf", "gaet"}, {"brugernavn", "robot"}, {"adgangskode", "Sommer2026!"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(v.Get("/").status, 303) << "not logged in";
  EXPECT_EQ(Counter("logins"), 0);
  EXPECT_EQ(Counter("failed_logins"), 0) << "a missing token is not a wrong password";

  Visitor robot = LoggedIn();
  Fields fields = robot.ValidCase();
  fields[0].second = "forkert";
  r = robot.PostCase(fields);
  EXPECT_EQ(r.status, 403);
  EXPECT_NE(r.body.find("Sikkerhedstokenet mangler eller er forkert"), std::string::npos);
  EXPECT_EQ(Cases().size(), 0u);
  EXPECT_EQ(Counter("csrf_failures"), 3);
}

TEST_F(Sagsportalen, ThreeWrongPasswordsInARowLockTheAccount) {
  Visitor v(server_.url());
  for (int i = 0; i < 2; ++i) {
    HttpReply r = v.Login("robot", "forkert");
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(
        r.body.find(R"(<div role="alert" class="fejl">Forkert brugernavn eller adgangskode</div>)"),
        std::string::npos)
        << r.body;
  }
  EXPECT_EQ(v.Login("robot", "Sommer2026!").status, 303) << "two in a row do not lock";
  for (int i = 0; i < 3; ++i) v.Login("robot", "forkert");
  HttpReply r = v.Login("robot", "Sommer2026!");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("Kontoen er låst"), std::string::npos) << r.body;
  auto state = State();
  EXPECT_TRUE(state["locked"].as_bool());
  EXPECT_EQ(state["counters"].as_object()["failed_logins"].as_int64(), 5);
  EXPECT_EQ(state["counters"].as_object()["locked_logins"].as_int64(), 1);

  ASSERT_TRUE(server_.Control(R"({"unlock": true})"));
  EXPECT_EQ(v.Login("robot", "Sommer2026!").status, 303);
}

TEST_F(Sagsportalen, TheSessionRunsOutAfterExpireEveryPagesAndTheLoginReturnsToNext) {
  ASSERT_TRUE(server_.Control(R"({"expire_every": 3})"));
  Visitor v = LoggedIn();
  EXPECT_EQ(v.Get("/").status, 200);
  EXPECT_EQ(v.Get("/search").status, 200);
  Fields fields = v.ValidCase();  // the third page: the form
  HttpReply r = v.PostCase(fields);
  EXPECT_EQ(r.status, 303);
  EXPECT_EQ(r.Header("location"), "/login?next=%2Fcases%2Fnew") << "a POST goes back to its form";
  EXPECT_EQ(Cases().size(), 0u) << "the submit of an expired session is dropped";
  r = v.Get("/search?cpr=010203-1234");
  EXPECT_EQ(r.Header("location"), "/login?next=%2Fsearch%3Fcpr%3D010203-1234");

  r = v.Login("robot", "Sommer2026!", "/search?cpr=010203-1234");
  EXPECT_EQ(r.Header("location"), "/search?cpr=010203-1234");
  EXPECT_EQ(v.Get(r.Header("location")).status, 200);
  EXPECT_EQ(Counter("expired"), 1);
  EXPECT_EQ(Counter("logins"), 2);

  ASSERT_TRUE(server_.Control(R"({"expire_all": true})"));
  EXPECT_EQ(v.Get("/").status, 303);
  ASSERT_TRUE(server_.Control(R"({"expire_every": 0})"));
  v.Login("robot", "Sommer2026!");
  for (int i = 0; i < 10; ++i) EXPECT_EQ(v.Get("/").status, 200);
}

TEST_F(Sagsportalen, ValidationErrorsAreNamedInDanishAndNothingIsSaved) {
  Visitor v = LoggedIn();
  HttpReply r = v.PostCase({{"_csrf", v.FormToken()},
                            {"cpr", "12345"},
                            {"navn", " "},
                            {"ansoegningsdato", ""},
                            {"ydelse", ""},
                            {"bemaerkning", kRemark}});
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find(R"(<div role="alert" class="fejl">)"), std::string::npos);
  for (const char* message :
       {"CPR-nummer skal skrives som DDMMÅÅ-XXXX", "Navn skal udfyldes",
        "Ansøgningsdato skal udfyldes", "Vælg en ydelse", "Samtykke skal være givet"}) {
    EXPECT_NE(r.body.find(message), std::string::npos) << message;
  }
  EXPECT_NE(r.body.find(R"(value="12345")"), std::string::npos) << "the form keeps what was typed";

  r = v.PostCase({{"_csrf", v.FormToken()},
                  {"cpr", "320103-1234"},
                  {"navn", kName},
                  {"ansoegningsdato", "2026-02-30"},
                  {"ydelse", "101"},
                  {"samtykke", "ja"}});
  EXPECT_NE(r.body.find("CPR-nummer indeholder ikke en gyldig fødselsdato"), std::string::npos);
  EXPECT_NE(r.body.find("Ansøgningsdato er ikke en gyldig dato"), std::string::npos);
  EXPECT_EQ(Cases().size(), 0u);
  EXPECT_EQ(Counter("invalid_submits"), 2);
}

TEST_F(Sagsportalen, ASubmitCreatesACaseWithItsNumberUploadAndReceipt) {
  Visitor v = LoggedIn();
  Upload file{"ansøgning.pdf", "application/pdf", "%PDF-1.4\nbilag\n"};
  HttpReply r = v.PostCase(v.ValidCase(), &file);
  ASSERT_EQ(r.status, 303) << r.body;
  EXPECT_EQ(r.Header("location"), "/cases/1/created");

  HttpReply page = v.Get("/cases/1/created");
  EXPECT_EQ(page.status, 200);
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(page.body, m, std::regex(R"(<dd id="sagsnummer">(SAG-\d{4}-00001)</dd>)")))
      << page.body;
  const std::string number = m[1].str();
  EXPECT_NE(page.body.find("<h1>Sagen er oprettet</h1>"), std::string::npos);
  EXPECT_NE(page.body.find(R"(<dt>Sagsnummer</dt>)"), std::string::npos);
  EXPECT_NE(page.body.find(R"(<span id="bilag-navn">ansøgning.pdf</span>)"), std::string::npos);
  EXPECT_NE(page.body.find(R"(<span id="bilag-stoerrelse">15 byte</span>)"), std::string::npos);
  EXPECT_NE(page.body.find(R"(<a href="/cases/1/kvittering">Hent kvittering</a>)"),
            std::string::npos);
  EXPECT_NE(page.body.find(R"(<a href="/cases/1" target="_blank">Vis sagen i nyt vindue</a>)"),
            std::string::npos);
  EXPECT_EQ(page.body.find(kCpr), std::string::npos) << "the confirmation masks the CPR number";

  HttpReply receipt = v.Get("/cases/1/kvittering");
  EXPECT_EQ(receipt.status, 200);
  EXPECT_EQ(receipt.Header("content-disposition"),
            "attachment; filename=\"kvittering-" + number + ".pdf\"");
  EXPECT_EQ(receipt.body.rfind("%PDF-1.4", 0), 0u);
  EXPECT_NE(receipt.body.find(number), std::string::npos);

  HttpReply detail = v.Get("/cases/1");
  EXPECT_NE(detail.body.find(kCpr), std::string::npos);
  EXPECT_NE(detail.body.find(kRemark), std::string::npos);
  EXPECT_EQ(v.Get("/cases/2").status, 404);

  auto cases = Cases();
  ASSERT_EQ(cases.size(), 1u);
  auto& c = cases[0].as_object();
  EXPECT_EQ(c["sagsnummer"].as_string(), number);
  EXPECT_EQ(c["cpr"].as_string(), kCpr);
  EXPECT_EQ(c["navn"].as_string(), kName);
  EXPECT_EQ(c["ansoegningsdato"].as_string(), "2026-03-12");
  EXPECT_EQ(c["ydelse"].as_string(), "Boligstøtte");
  EXPECT_EQ(c["ydelse_kode"].as_string(), "101");
  EXPECT_TRUE(c["samtykke"].as_bool());
  EXPECT_EQ(c["bemaerkning"].as_string(), kRemark);
  EXPECT_EQ(c["bilag"].as_object()["navn"].as_string(), "ansøgning.pdf");
  EXPECT_EQ(c["bilag"].as_object()["stoerrelse"].as_int64(), 15);
  EXPECT_EQ(c["bruger"].as_string(), "robot");
}

TEST_F(Sagsportalen, DuplicatesAreKeptAndSearchFindsThemAll) {
  Visitor v = LoggedIn();
  EXPECT_EQ(v.PostCase(v.ValidCase("0102031234")).status, 303);
  EXPECT_EQ(v.PostCase(v.ValidCase(kCpr)).status, 303);
  EXPECT_EQ(v.PostCase(v.ValidCase("220794-2826", "Eva Eg")).status, 303);
  auto cases = Cases();
  ASSERT_EQ(cases.size(), 3u);
  EXPECT_EQ(cases[0].as_object()["cpr"].as_string(), kCpr) << "stored as DDMMYY-SSSS";
  EXPECT_EQ(cases[1].as_object()["cpr"].as_string(), kCpr);

  for (const char* query : {"010203-1234", "0102031234"}) {
    HttpReply r = v.Get(std::string("/search?cpr=") + query);
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find(R"(<label for="soeg-cpr">Søg efter CPR-nummer</label>)"),
              std::string::npos);
    EXPECT_NE(r.body.find("<caption>2 sager fundet</caption>"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"(<th scope="col">Sagsnummer</th>)"), std::string::npos);
    EXPECT_NE(r.body.find("-00001</a></td><td>" + std::string(kName) + "</td><td>12-03-2026</td>"),
              std::string::npos);
    EXPECT_NE(r.body.find("-00002</a>"), std::string::npos);
    EXPECT_EQ(r.body.find("-00003</a>"), std::string::npos);
  }
  HttpReply none = v.Get("/search?cpr=111111-1111");
  EXPECT_NE(none.body.find("Ingen sager fundet"), std::string::npos);
  HttpReply bad = v.Get("/search?cpr=abc");
  EXPECT_NE(bad.body.find(R"(<div role="alert" class="fejl">)"), std::string::npos);
}

TEST_F(Sagsportalen, FailNextAnswersAnErrorPageBeforeOrAfterSaving) {
  Visitor v = LoggedIn();
  ASSERT_TRUE(server_.Control(R"({"fail_next": 1})"));
  HttpReply r = v.PostCase(v.ValidCase());
  EXPECT_EQ(r.status, 500);
  EXPECT_NE(r.body.find("Der opstod en fejl"), std::string::npos);
  EXPECT_EQ(Cases().size(), 0u);
  EXPECT_EQ(v.PostCase(v.ValidCase()).status, 303) << "only the next one fails";

  ASSERT_TRUE(server_.Control(R"({"fail_next": 1, "fail_status": 502, "fail_phase": "after"})"));
  EXPECT_EQ(v.PostCase(v.ValidCase()).status, 502);
  EXPECT_EQ(Cases().size(), 2u) << "saved, then the error page";
  EXPECT_EQ(Counter("failed_submits"), 2);
}

TEST_F(Sagsportalen, ASlowSubmitSavesBeforeOrAfterTheWaitWhenTheClientHangsUp) {
  Visitor v = LoggedIn();
  // "before": the client has gone when the wait ends, so nothing is saved.
  ASSERT_TRUE(server_.Control(R"({"slow_every": 1, "slow_ms": 1500, "slow_phase": "before"})"));
  SubmitAndHangUp(v);
  ASSERT_TRUE(Eventually([&] { return Counter("abandoned") == 1; })) << server_.Log();
  EXPECT_EQ(Cases().size(), 0u);
  EXPECT_NE(server_.Log().find("POST /cases - "), std::string::npos) << server_.Log();

  // "after": saved at once; only the reply waits.
  ASSERT_TRUE(server_.Control(R"({"slow_ms": 60000, "slow_phase": "after"})"));
  SubmitAndHangUp(v);
  EXPECT_TRUE(Eventually([&] { return Cases().size() == 1; })) << server_.Log();

  // Every second valid submit is slow.
  ASSERT_TRUE(server_.Control(R"({"slow_every": 2, "slow_ms": 1500})"));
  std::vector<double> seconds;
  for (int i = 0; i < 2; ++i) {
    Fields fields = v.ValidCase();
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(v.PostCase(fields).status, 303);
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  EXPECT_LT(seconds[0], 1.5);
  EXPECT_GE(seconds[1], 1.5);
}

TEST_F(Sagsportalen, AChangedPageRenamesTheCprFieldButNotTheSearch) {
  Visitor v = LoggedIn();
  ASSERT_TRUE(server_.Control(R"({"changed_page": true})"));
  HttpReply form = v.Get("/cases/new");
  EXPECT_NE(form.body.find(R"(<label for="personnummer">Personnummer</label>)"), std::string::npos);
  EXPECT_EQ(form.body.find("CPR-nummer"), std::string::npos);
  EXPECT_EQ(form.body.find(R"(id="cpr")"), std::string::npos);
  Fields fields = v.ValidCase();
  fields[1].first = "personnummer";
  EXPECT_EQ(v.PostCase(fields).status, 303);
  EXPECT_NE(v.Get("/search").body.find("Søg efter CPR-nummer"), std::string::npos);
}

TEST_F(Sagsportalen, ControlRejectsUnknownKeysAndResetRestoresTheStart) {
  std::string reply;
  EXPECT_FALSE(server_.Control(R"({"expire_evry": 3})", &reply));
  EXPECT_NE(reply.find("unknown setting expire_evry"), std::string::npos) << reply;
  EXPECT_FALSE(server_.Control(R"({"expire_every": "3"})", &reply));
  EXPECT_FALSE(server_.Control(R"({"slow_phase": "sometimes"})", &reply));
  EXPECT_FALSE(server_.Control("[1]", &reply));

  Visitor v = LoggedIn();
  EXPECT_EQ(v.PostCase(v.ValidCase()).status, 303);
  ASSERT_TRUE(server_.Control(R"({"password": "Vinter2026!", "expire_every": 7})"));
  Visitor w(server_.url());
  EXPECT_EQ(w.Login("robot", "Sommer2026!").status, 200) << "the old password no longer works";
  EXPECT_EQ(w.Login("robot", "Vinter2026!").status, 303);

  ASSERT_TRUE(server_.Control(R"({"reset": true})", &reply));
  auto state = boost::json::parse(reply).as_object();
  EXPECT_EQ(state["settings"].as_object()["expire_every"].as_int64(), 0);
  EXPECT_EQ(state["cases"].as_int64(), 0);
  EXPECT_EQ(state["sessions"].as_int64(), 0);
  EXPECT_FALSE(state["locked"].as_bool());
  EXPECT_EQ(v.Get("/").status, 303) << "sessions are gone";
  EXPECT_EQ(v.Login("robot", "Sommer2026!").status, 303) << "the start password again";
  EXPECT_EQ(v.PostCase(v.ValidCase()).status, 303);
  EXPECT_EQ(Cases()[0].as_object()["id"].as_int64(), 1) << "numbering starts again";
}

TEST_F(Sagsportalen, StartOptionsReachTheServer) {
  WebappOptions options;
  options.user = "sagsbehandler";
  options.password = "Æbleskive-24";
  options.expire_every = 2;
  options.settings = {{"lock_after", "5"}, {"first_number", "42"}};
  StartWith(options);
  auto settings = State()["settings"].as_object();
  EXPECT_EQ(settings["expire_every"].as_int64(), 2);
  EXPECT_EQ(settings["lock_after"].as_int64(), 5);
  Visitor v(server_.url());
  EXPECT_EQ(v.Login("sagsbehandler", "Æbleskive-24").status, 303);
  EXPECT_EQ(v.PostCase(v.ValidCase()).status, 303);
  EXPECT_NE(Cases()[0].as_object()["sagsnummer"].as_string().find("-00042"), std::string::npos);
  EXPECT_EQ(server_.Log().find("Æbleskive"), std::string::npos);
}

TEST_F(Sagsportalen, TheLogHasOneLinePerRequestAndNoFieldValues) {
  Visitor v = LoggedIn();
  EXPECT_EQ(v.PostCase(v.ValidCase()).status, 303);
  v.Get("/search?cpr=010203-1234");
  v.Get("/cases/0102031234");
  std::string log = server_.Log();
  EXPECT_TRUE(std::regex_search(log, std::regex(R"(\nPOST /cases 303 \d+ms\n)"))) << log;
  EXPECT_TRUE(std::regex_search(log, std::regex(R"(\nGET /search 200 \d+ms\n)"))) << log;
  for (const char* secret : {"010203", "0102031234", "Søren", "Sommer2026", "Ønsker"}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << secret << " in:\n" << log;
  }
}

}  // namespace
}  // namespace keyonce
