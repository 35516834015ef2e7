// `keyonce serve` end to end, written to the contract in docs/operations.md
// and the API description: the real binary in a temp folder, real recipes
// writing to a real HTTP server (nginx) and SQLite, requests over loopback.
//
// The slow recipe (tests/service/fixtures/recipes/slow.yaml) PUTs each record
// to nginx at a fixed rate, so a run takes a known while; nginx's access log
// ($msec per request, the recipe and the run's tag in the path) shows
// exactly when each run wrote, independent of the service's own timestamps.
#include "tests/support/service.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/cli_util.h"
#include "tests/support/http_servers.h"
#include "tests/support/sanitizers.h"

namespace keyonce::testing_util {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

// Tokens: "ko_" + 40 hex characters, as `keyonce token new` makes them.
const std::string kAdmin = "ko_" + std::string(40, 'a');
const std::string kOperator = "ko_" + std::string(40, 'b');
const std::string kAnna = "ko_" + std::string(40, 'c');  // caseworker: forms
const std::string kBent = "ko_" + std::string(40, 'd');  // caseworker: forms, slow
const std::string kUnknown = "ko_" + std::string(40, 'e');

// The CPR numbers of fixtures/recipes/data/people.csv and the one given as a
// parameter, with and without the hyphen.
const std::vector<std::string> kCprs = {"010185-1233", "0101851233", "150290-2468", "1502902468",
                                        "311299-1357", "3112991357", "240404-4321", "2404044321",
                                        "121270-1111", "1212701111"};

fs::path Fixtures() { return TestsDir() / "service" / "fixtures" / "recipes"; }

std::string Replace(std::string text, const std::map<std::string, std::string>& subst) {
  for (const auto& [from, to] : subst) {
    for (size_t pos; (pos = text.find(from)) != std::string::npos;)
      text.replace(pos, from.size(), to);
  }
  return text;
}

json::value Json(const HttpReply& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec) return nullptr;
  return v;
}

std::string Str(const json::value& v, const char* key) {
  if (!v.is_object()) return "";
  const json::value* f = v.as_object().if_contains(key);
  if (!f) return "";
  if (f->is_string()) return std::string(f->as_string());
  if (f->is_null()) return "";
  return json::serialize(*f);
}

int64_t Int(const json::value& v, const char* key) {
  if (!v.is_object()) return -1;
  const json::value* f = v.as_object().if_contains(key);
  if (!f) return -1;
  if (f->is_int64()) return f->as_int64();
  if (f->is_uint64()) return static_cast<int64_t>(f->as_uint64());
  return -1;
}

std::string Show(const HttpReply& r) {
  std::string body = r.body.size() > 600 ? r.body.substr(0, 600) + "..." : r.body;
  return "HTTP " + std::to_string(r.status) + (r.error.empty() ? "" : " (" + r.error + ")") + ": " +
         body;
}

// A 4xx reply as the contract describes errors: JSON {"error": sentence, "field"?}.
void ExpectError(const HttpReply& r, long status, const std::string& what) {
  EXPECT_EQ(r.status, status) << what << ": " << Show(r);
  json::value v = Json(r);
  ASSERT_TRUE(v.is_object()) << what << ": not a JSON object: " << Show(r);
  EXPECT_FALSE(Str(v, "error").empty()) << what << ": no error sentence: " << Show(r);
  EXPECT_NE(r.Header("content-type").find("application/json"), std::string::npos)
      << what << ": " << r.Header("content-type");
}

bool WaitUntil(const std::function<bool()>& done, seconds timeout) {
  auto deadline = Clock::now() + timeout;
  do {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (Clock::now() < deadline);
  return done();
}

bool Finished(const std::string& status) {
  return status == "completed" || status == "completed_with_errors" || status == "failed" ||
         status == "interrupted" || status == "cancelled";
}

// One request of nginx's access log: when, and which recipe/tag/id it wrote.
struct SinkHit {
  double at = 0;
  std::string recipe, tag, id;
};

class ServiceTest : public ::testing::Test {
 protected:
  ServiceTest() : svc_(Binary()) {}

  void SetUp() override {
    svc_.WriteTokens({{"adam", "admin", {}, kAdmin},
                      {"olga", "operator", {}, kOperator},
                      {"anna", "caseworker", {"forms"}, kAnna},
                      {"bent", "caseworker", {"forms", "slow"}, kBent}});
    fs::create_directories(svc_.recipes_dir() / "data");
    for (const char* f : {"people.csv", "ticks.csv"}) {
      fs::copy_file(Fixtures() / "data" / f, svc_.recipes_dir() / "data" / f,
                    fs::copy_options::overwrite_existing);
    }
  }

  // Copies fixture `fixture` to recipes/<as> with the placeholders replaced.
  void Install(const std::string& fixture, const std::string& as,
               std::map<std::string, std::string> subst = {}) {
    subst["@SINK@"] = "http://127.0.0.1:" + std::to_string(sink_port_);
    svc_.WriteRecipe(as, Replace(ReadFile(Fixtures() / fixture), subst));
  }
  void InstallSlow(const std::string& name, const std::string& overlap, int rate) {
    Install("slow.yaml", name + ".yaml",
            {{"@NAME@", name}, {"@OVERLAP@", overlap}, {"@RATE@", std::to_string(rate)}});
  }
  // data/items.csv with ids 1..n, read by every slow recipe.
  void WriteItems(int n) {
    std::ostringstream s;
    s << "id;name\n";
    for (int i = 1; i <= n; ++i) s << i << ";item " << i << "\n";
    WriteFile(svc_.recipes_dir() / "data" / "items.csv", s.str());
  }

  // nginx answering 204 to every request: the slow recipes' target.
  void StartSink() {
    sink_port_ = FreePort();
    std::string why;
    ASSERT_TRUE(sink_.Start(sink_dir_.path() / "nginx",
                            "server { listen 127.0.0.1:" + std::to_string(sink_port_) +
                                "; location / { return 204; } }",
                            sink_port_, &why))
        << why;
  }
  std::vector<SinkHit> SinkHits() {
    std::vector<SinkHit> hits;
    std::istringstream in(ReadFile(sink_.access_log()));
    static const std::regex kLine(R"(^(\d+\.\d+) \S+ \d+ PUT /sink/([^/]+)/([^/]+)/(\S+)$)");
    for (std::string line; std::getline(in, line);) {
      std::smatch m;
      if (std::regex_match(line, m, kLine)) {
        hits.push_back({std::stod(m[1].str()), m[2].str(), m[3].str(), m[4].str()});
      }
    }
    return hits;
  }

  void StartService(const std::vector<std::string>& extra = {}) {
    std::string why;
    ASSERT_TRUE(svc_.Start(extra, &why)) << why;
  }

  HttpReply Get(const std::string& path, const std::string& token = kAdmin) {
    return svc_.client().Get(path, token);
  }
  HttpReply Post(const std::string& path, const std::string& body,
                 const std::string& token = kAdmin) {
    return svc_.client().SendJson("POST", path, body, token);
  }

  // Starts a run; returns its id (or -1 with a test failure).
  int64_t Trigger(const std::string& recipe, const std::string& params_json = "{}",
                  const std::string& token = kAdmin) {
    HttpReply r =
        Post("/api/v1/recipes/" + recipe + "/runs", "{\"params\":" + params_json + "}", token);
    EXPECT_EQ(r.status, 202) << "starting " << recipe << ": " << Show(r);
    json::value v = Json(r);
    EXPECT_EQ(Str(v, "status"), "queued") << Show(r);
    return Int(v, "id");
  }

  json::value Run(int64_t id, const std::string& token = kAdmin) {
    return Json(Get("/api/v1/runs/" + std::to_string(id), token));
  }

  // Waits until run `id` has finished; returns the run object.
  json::value WaitRun(int64_t id, seconds timeout = seconds(120)) {
    json::value run;
    bool done = WaitUntil(
        [&] {
          run = Run(id);
          return Finished(Str(run, "status"));
        },
        timeout);
    EXPECT_TRUE(done) << "run " << id << " did not finish within " << timeout.count()
                      << " s: " << json::serialize(run) << "\n"
                      << svc_.CurrentLog();
    return run;
  }

  std::vector<json::value> Runs(const std::string& query = "", const std::string& token = kAdmin) {
    HttpReply r = Get("/api/v1/runs?limit=200" + query, token);
    EXPECT_EQ(r.status, 200) << Show(r);
    json::value v = Json(r);
    std::vector<json::value> out;
    if (v.is_array()) out.assign(v.as_array().begin(), v.as_array().end());
    return out;
  }

  // Runs forms as admin: completes with one record quarantined. Returns the
  // run id; *quarantine_id: that record's quarantine id.
  int64_t RunForms(int64_t* quarantine_id = nullptr, const std::string& token = kAdmin) {
    int64_t id = Trigger("forms", R"({"count": 2, "cpr": "121270-1111"})", token);
    json::value run = WaitRun(id);
    EXPECT_EQ(Str(run, "status"), "completed_with_errors") << json::serialize(run);
    if (quarantine_id) {
      json::value q = Json(Get("/api/v1/quarantine?recipe=forms&status=open", kOperator));
      EXPECT_TRUE(q.is_array() && !q.as_array().empty()) << json::serialize(q);
      *quarantine_id = q.is_array() && !q.as_array().empty() ? Int(q.as_array()[0], "id") : -1;
    }
    return id;
  }

  long long SqliteCount(const fs::path& db, const std::string& sql) { return QueryInt(db, sql); }

  http::ScratchDir sink_dir_;
  http::Nginx sink_;
  int sink_port_ = 1;  // fixtures that need no sink still get a syntactically valid URL
  Service svc_;
};

// --- 1. authentication, roles, malformed requests --------------------------------

struct Endpoint {
  std::string method, path, body;
};

// Every endpoint of the contract's table but /health (ids filled in by the test).
std::vector<Endpoint> Endpoints(int64_t run, int64_t quarantine) {
  std::string r = std::to_string(run), q = std::to_string(quarantine);
  return {
      {"GET", "/metrics", ""},
      {"GET", "/api/v1/session", ""},
      {"GET", "/api/v1/recipes", ""},
      {"GET", "/api/v1/recipes/forms", ""},
      {"POST", "/api/v1/recipes/forms/runs", R"({"params":{"count":1}})"},
      {"GET", "/api/v1/runs", ""},
      {"GET", "/api/v1/runs/" + r, ""},
      {"GET", "/api/v1/runs/" + r + "/log", ""},
      {"POST", "/api/v1/runs/" + r + "/cancel", "{}"},
      {"GET", "/api/v1/schedule", ""},
      {"GET", "/api/v1/quarantine", ""},
      {"GET", "/api/v1/quarantine/" + q, ""},
      {"PATCH", "/api/v1/quarantine/" + q, R"({"fields":{"Timer":"7,5"}})"},
      {"POST", "/api/v1/quarantine/" + q + "/retry", "{}"},
      {"POST", "/api/v1/quarantine/" + q + "/dismiss", "{}"},
      {"POST", "/api/v1/reload", "{}"},
  };
}

HttpReply Call(HttpClient& c, const Endpoint& e, const std::string& token) {
  HttpRequest req;
  req.method = e.method;
  req.path = e.path;
  req.body = e.body;
  if (!e.body.empty()) req.headers.push_back("Content-Type: application/json");
  if (!token.empty()) req.headers.push_back("Authorization: Bearer " + token);
  return c.Send(req);
}

TEST_F(ServiceTest, EveryEndpointWithoutATokenIs401AndWrongRolesAre403) {
  Install("forms.yaml", "forms.yaml");
  InstallSlow("slow", "queue", 1000);
  WriteItems(3);
  StartService();

  HttpReply health = svc_.client().Get("/health");
  EXPECT_EQ(health.status, 200) << Show(health);
  EXPECT_EQ(Str(Json(health), "status"), "ok");
  EXPECT_EQ(Str(Json(health), "version"), "0.1.0");

  int64_t quarantine = -1;
  int64_t run = RunForms(&quarantine);
  ASSERT_GT(quarantine, 0);

  for (const auto& e : Endpoints(run, quarantine)) {
    for (const std::string& token : {std::string(), kUnknown}) {
      HttpReply r = Call(svc_.client(), e, token);
      std::string what =
          e.method + " " + e.path + (token.empty() ? " without a token" : " with an unknown token");
      ExpectError(r, 401, what);
      EXPECT_EQ(Str(Json(r), "error"), "a token is required") << what;
    }
  }

  // A caseworker: no metrics, schedule, quarantine, cancel or reload.
  for (const auto& e : Endpoints(run, quarantine)) {
    bool staff_only = e.path == "/metrics" || e.path.find("/schedule") != std::string::npos ||
                      e.path.find("/quarantine") != std::string::npos ||
                      e.path.find("/cancel") != std::string::npos ||
                      e.path.find("/reload") != std::string::npos;
    // Cancelling is refused before the run is looked up: 403 for another's run too, so
    // the answer tells her nothing about runs that are not hers (docs/api.md, Roles).
    if (staff_only) ExpectError(Call(svc_.client(), e, kAnna), 403, "caseworker: " + e.path);
  }
  ExpectError(Post("/api/v1/runs/999999/cancel", "{}", kAnna), 403,
              "anna cancelling a run that does not exist");
  // An operator may not reload.
  ExpectError(Post("/api/v1/reload", "{}", kOperator), 403, "operator reloading");
  // A caseworker may start only the recipes listed for its token.
  ExpectError(Post("/api/v1/recipes/slow/runs", R"({"params":{}})", kAnna), 403,
              "anna starting slow");
  // ... sees only those ...
  json::value listed = Json(Get("/api/v1/recipes", kAnna));
  ASSERT_TRUE(listed.is_array()) << json::serialize(listed);
  ASSERT_EQ(listed.as_array().size(), 1u) << json::serialize(listed);
  EXPECT_EQ(Str(listed.as_array()[0], "name"), "forms");
  HttpReply other_recipe = Get("/api/v1/recipes/slow", kAnna);
  EXPECT_TRUE(other_recipe.status == 403 || other_recipe.status == 404) << Show(other_recipe);
  // ... and only the runs it started: the admin's run is not anna's.
  HttpReply foreign = Get("/api/v1/runs/" + std::to_string(run), kAnna);
  ExpectError(foreign, 404, "anna reading the admin's run");
  HttpReply foreign_log = Get("/api/v1/runs/" + std::to_string(run) + "/log", kAnna);
  ExpectError(foreign_log, 404, "anna reading the admin's run log");
  EXPECT_TRUE(Runs("", kAnna).empty());
  int64_t own = Trigger("forms", R"({"count": 1})", kAnna);
  WaitRun(own);
  json::value own_run = Run(own, kAnna);
  EXPECT_EQ(Int(own_run, "id"), own) << json::serialize(own_run);
  EXPECT_EQ(Str(own_run, "started_by"), "anna");
  std::vector<json::value> annas = Runs("", kAnna);
  ASSERT_EQ(annas.size(), 1u);
  EXPECT_EQ(Int(annas[0], "id"), own);
  EXPECT_EQ(Get("/api/v1/runs/" + std::to_string(own) + "/log", kAnna).status, 200);
  // Her own run: she may read it, not cancel it.
  ExpectError(Post("/api/v1/runs/" + std::to_string(own) + "/cancel", "{}", kAnna), 403,
              "anna cancelling her own run");
  // Operators see everyone's runs and may read the metrics.
  EXPECT_GE(Runs("", kOperator).size(), 2u);
  EXPECT_EQ(Get("/metrics", kOperator).status, 200);
  EXPECT_EQ(Get("/api/v1/schedule", kOperator).status, 200);
}

TEST_F(ServiceTest, MalformedRequestsGetTheDocumented4xxNever5xx) {
  Install("forms.yaml", "forms.yaml");
  StartService();
  const std::string runs = "/api/v1/recipes/forms/runs";
  auto& c = svc_.client();

  ExpectError(Post(runs, "{\"params\": {\"count\": 1"), 400, "truncated JSON");
  ExpectError(Post(runs, "not json at all"), 400, "not JSON");
  ExpectError(Post(runs, "[1, 2]"), 400, "a list instead of an object");
  ExpectError(Post(runs, R"({"params": 5})"), 400, "params not an object");
  HttpReply list_value = Post(runs, R"({"params": {"count": [1]}})");
  ExpectError(list_value, 400, "a list as a param value");
  EXPECT_EQ(Str(Json(list_value), "field"), "count");

  HttpRequest text;
  text.method = "POST";
  text.path = runs;
  text.body = R"({"params":{"count":1}})";
  text.headers = {"Content-Type: text/plain", "Authorization: Bearer " + kAdmin};
  ExpectError(c.Send(text), 415, "text/plain body");

  HttpRequest huge = text;
  huge.headers = {"Content-Type: application/json", "Authorization: Bearer " + kAdmin};
  huge.body = R"({"params":{"count":1,"cpr":")" + std::string(1536 * 1024, '1') + "\"}}";
  HttpReply too_big = c.Send(huge);
  EXPECT_EQ(too_big.status, 413) << Show(too_big);

  HttpReply unknown = Post(runs, R"({"params": {"count": 1, "nope": "x"}})");
  ExpectError(unknown, 400, "unknown param");
  EXPECT_EQ(Str(Json(unknown), "field"), "") << "a name the recipe does not declare is not echoed";
  EXPECT_EQ(unknown.body.find("nope"), std::string::npos) << unknown.body;

  // Quarantine edits are JSON too.
  HttpRequest patch;
  patch.method = "PATCH";
  patch.path = "/api/v1/quarantine/1";
  patch.body = "{\"fields\": ";
  patch.headers = {"Content-Type: application/json", "Authorization: Bearer " + kAdmin};
  HttpReply bad_patch = c.Send(patch);
  EXPECT_TRUE(bad_patch.status == 400 || bad_patch.status == 404) << Show(bad_patch);

  // Query parameters are checked as well.
  HttpReply bad_limit = Get("/api/v1/runs?limit=lots");
  ExpectError(bad_limit, 400, "limit=lots");
  EXPECT_EQ(Str(Json(bad_limit), "field"), "limit");
  EXPECT_EQ(Json(bad_limit).as_object().at("error").as_string().find("lots"), std::string::npos);

  // Unknown things are 404, known paths with the wrong method 405.
  ExpectError(Get("/api/v1/nothing-here"), 404, "unknown API path");
  EXPECT_EQ(Get("/no/such/page").status, 404);
  ExpectError(Get("/api/v1/recipes/no-such-recipe"), 404, "unknown recipe");
  ExpectError(Post("/api/v1/recipes/no-such-recipe/runs", R"({"params":{}})"), 404,
              "starting an unknown recipe");
  ExpectError(Get("/api/v1/runs/999999"), 404, "unknown run");
  ExpectError(Get("/api/v1/runs/999999/log"), 404, "unknown run's log");
  ExpectError(Get("/api/v1/quarantine/999999"), 404, "unknown quarantine id");
  ExpectError(Post("/api/v1/runs/999999/cancel", "{}"), 404, "cancelling an unknown run");

  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{{"DELETE", "/api/v1/recipes"},
                                                        {"POST", "/api/v1/recipes"},
                                                        {"PUT", "/api/v1/recipes/forms"},
                                                        {"GET", "/api/v1/recipes/forms/runs/x"},
                                                        {"GET", "/api/v1/reload"},
                                                        {"DELETE", "/api/v1/runs"},
                                                        {"POST", "/health"},
                                                        {"POST", "/metrics"},
                                                        {"GET", "/logout"}}) {
    HttpRequest r;
    r.method = method;
    r.path = path;
    r.headers = {"Authorization: Bearer " + kAdmin};
    HttpReply reply = c.Send(r);
    std::string what = method + " " + path;
    if (path == "/api/v1/recipes/forms/runs/x") {
      EXPECT_EQ(reply.status, 404) << what << ": " << Show(reply);
    } else {
      EXPECT_EQ(reply.status, 405) << what << ": " << Show(reply);
    }
  }
  // Nothing above was a server error, and the service still answers.
  EXPECT_EQ(c.Get("/health").status, 200);
}

TEST_F(ServiceTest, LoginSetsAStrictHttpOnlyCookieAndMutationsNeedTheCsrfToken) {
  Install("forms.yaml", "forms.yaml");
  StartService();
  auto& c = svc_.client();

  HttpRequest bad;
  bad.method = "POST";
  bad.path = "/login";
  bad.body = "token=" + kUnknown;
  bad.headers = {"Content-Type: application/x-www-form-urlencoded"};
  HttpReply failed = c.Send(bad);
  EXPECT_EQ(failed.status, 303) << Show(failed);
  EXPECT_EQ(failed.Header("location"), "/?login=failed");
  for (const auto& cookie : failed.Headers("set-cookie")) {
    EXPECT_EQ(cookie.find("keyonce_session=ko"), std::string::npos) << cookie;
  }

  HttpRequest good = bad;
  good.body = "token=" + kAnna;
  HttpReply ok = c.Send(good);
  EXPECT_EQ(ok.status, 303) << Show(ok);
  EXPECT_EQ(ok.Header("location"), "/");
  std::string session;
  for (const auto& cookie : ok.Headers("set-cookie")) {
    if (cookie.rfind("keyonce_session=", 0) != 0) continue;
    session = cookie.substr(0, cookie.find(';'));
    EXPECT_NE(cookie.find("; HttpOnly"), std::string::npos) << cookie;
    EXPECT_NE(cookie.find("; SameSite=Strict"), std::string::npos) << cookie;
    EXPECT_NE(cookie.find("; Path=/"), std::string::npos) << cookie;
    EXPECT_EQ(cookie.find("Secure"), std::string::npos) << "no TLS here: " << cookie;
    EXPECT_EQ(cookie.find(kAnna), std::string::npos) << "the cookie is not the token";
  }
  ASSERT_FALSE(session.empty()) << "no keyonce_session cookie: " << Show(ok);
  ASSERT_GT(session.size(), std::string("keyonce_session=").size() + 16) << session;

  HttpRequest who;
  who.path = "/api/v1/session";
  who.headers = {"Cookie: " + session};
  HttpReply me = c.Send(who);
  ASSERT_EQ(me.status, 200) << Show(me);
  json::value s = Json(me);
  EXPECT_EQ(Str(s, "name"), "anna");
  EXPECT_EQ(Str(s, "role"), "caseworker");
  EXPECT_EQ(Str(s, "recipes"), "[\"forms\"]");
  std::string csrf = Str(s, "csrf");
  ASSERT_GE(csrf.size(), 16u) << me.body;

  HttpRequest start;
  start.method = "POST";
  start.path = "/api/v1/recipes/forms/runs";
  start.body = R"({"params":{"count":1}})";
  start.headers = {"Cookie: " + session, "Content-Type: application/json"};
  HttpReply no_csrf = c.Send(start);
  ExpectError(no_csrf, 403, "cookie without X-CSRF-Token");
  EXPECT_EQ(Str(Json(no_csrf), "error"), "missing or wrong CSRF token");
  HttpRequest wrong = start;
  wrong.headers.push_back("X-CSRF-Token: " + std::string(csrf.size(), 'x'));
  ExpectError(c.Send(wrong), 403, "cookie with a wrong X-CSRF-Token");
  HttpRequest right = start;
  right.headers.push_back("X-CSRF-Token: " + csrf);
  HttpReply started = c.Send(right);
  EXPECT_EQ(started.status, 202) << Show(started);
  WaitRun(Int(Json(started), "id"));
  // Reads need no CSRF token.
  HttpRequest list;
  list.path = "/api/v1/runs";
  list.headers = {"Cookie: " + session};
  EXPECT_EQ(c.Send(list).status, 200);

  // The page itself.
  HttpReply page = c.Get("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.Header("content-type").find("text/html"), std::string::npos);

  // Logging out ends the session.
  HttpRequest logout;
  logout.method = "POST";
  logout.path = "/logout";
  logout.headers = {"Cookie: " + session, "X-CSRF-Token: " + csrf};
  HttpReply out = c.Send(logout);
  EXPECT_LT(out.status, 400) << Show(out);
  ExpectError(c.Send(who), 401, "session after logout");
}

// --- 2. parameter validation --------------------------------------------------------

TEST_F(ServiceTest, ParamsAreCheckedByTypeAndErrorsNameTheParamNeverTheValue) {
  Install("forms.yaml", "forms.yaml");
  StartService();

  json::value recipe = Json(Get("/api/v1/recipes/forms"));
  ASSERT_TRUE(recipe.is_object()) << json::serialize(recipe);
  EXPECT_EQ(Str(recipe, "label"), "Registrer borger");
  EXPECT_EQ(Str(recipe, "overlap"), "queue");
  EXPECT_EQ(Str(recipe, "schedule"), "");  // null: no schedule
  std::map<std::string, json::object> params;
  for (const auto& p : recipe.at("params").as_array()) {
    params[std::string(p.at("name").as_string())] = p.as_object();
  }
  ASSERT_EQ(params.size(), 5u) << json::serialize(recipe);
  EXPECT_EQ(Str(params["count"], "type"), "int");
  EXPECT_EQ(Str(params["count"], "label"), "Antal breve");
  EXPECT_EQ(Str(params["count"], "required"), "true");
  EXPECT_EQ(Str(params["month"], "type"), "date");
  EXPECT_EQ(Str(params["month"], "default"), "2026-11-01");
  EXPECT_EQ(Str(params["letter"], "type"), "enum");
  EXPECT_EQ(Str(params["letter"], "values"), "[\"standard\",\"short\"]");
  EXPECT_EQ(Str(params["urgent"], "type"), "bool");
  EXPECT_EQ(Str(params["cpr"], "pattern"), "^\\d{6}-?\\d{4}$");
  EXPECT_EQ(Str(params["cpr"], "help"), "Med eller uden bindestreg.");

  struct Bad {
    std::string params, field, value;
  };
  const std::vector<Bad> bad = {
      {R"({})", "count", ""},
      {R"({"count": "zq-not-a-number"})", "count", "zq-not-a-number"},
      {R"({"count": 2.5})", "count", "2.5"},
      {R"({"count": 1, "month": "2026-13-45"})", "month", "2026-13-45"},
      {R"({"count": 1, "month": "zq-31-02-2026"})", "month", "zq-31-02-2026"},
      {R"({"count": 1, "letter": "zq-long"})", "letter", "zq-long"},
      {R"({"count": 1, "urgent": "zq-maybe"})", "urgent", "zq-maybe"},
      {R"({"count": 1, "cpr": "12345"})", "cpr", "12345"},
      {R"({"count": 1, "cpr": "0101851233zq"})", "cpr", "0101851233zq"},
      // An unknown name is the caller's text: neither named nor echoed.
      {R"({"count": 1, "zq_unknown": "1"})", "", "zq_unknown"},
  };
  for (const auto& b : bad) {
    HttpReply r = Post("/api/v1/recipes/forms/runs", "{\"params\":" + b.params + "}");
    ExpectError(r, 400, b.params);
    json::value v = Json(r);
    EXPECT_EQ(Str(v, "field"), b.field) << b.params << ": " << r.body;
    std::string error = Str(v, "error");
    EXPECT_NE(error.find(b.field), std::string::npos) << "names the param: " << error;
    if (!b.value.empty()) {
      EXPECT_EQ(r.body.find(b.value), std::string::npos) << "shows the value: " << r.body;
    }
  }
  // Nothing was queued by the bad requests.
  EXPECT_TRUE(Runs().empty());

  // Good values of each type: strings, numbers and bools, both date forms.
  for (const std::string& good : {
           std::string(R"({"count": 3})"),
           std::string(
               R"({"count": "3", "month": "31-12-2026", "letter": "short", "urgent": true})"),
           std::string(
               R"({"count": 0, "month": "2026-02-28", "urgent": "false", "cpr": "0101851233"})"),
       }) {
    int64_t id = Trigger("forms", good);
    json::value run = WaitRun(id);
    EXPECT_EQ(Str(run, "status"), "completed_with_errors") << good << ": " << json::serialize(run);
    EXPECT_EQ(Str(run, "trigger"), "api");
    EXPECT_EQ(Str(run, "started_by"), "adam");
  }
}

// --- 3. runs never overlap ---------------------------------------------------------

// The [first, last] request time of each run (by recipe and tag) at the sink.
std::map<std::pair<std::string, std::string>, std::pair<double, double>> Spans(
    const std::vector<SinkHit>& hits) {
  std::map<std::pair<std::string, std::string>, std::pair<double, double>> spans;
  for (const auto& h : hits) {
    auto key = std::make_pair(h.recipe, h.tag);
    auto it = spans.find(key);
    if (it == spans.end()) {
      spans[key] = {h.at, h.at};
    } else {
      it->second.first = std::min(it->second.first, h.at);
      it->second.second = std::max(it->second.second, h.at);
    }
  }
  return spans;
}

void ExpectNoOverlap(
    const std::map<std::pair<std::string, std::string>, std::pair<double, double>>& spans) {
  std::vector<std::pair<std::pair<double, double>, std::string>> sorted;
  for (const auto& [k, v] : spans) sorted.push_back({v, k.first + "/" + k.second});
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 1; i < sorted.size(); ++i) {
    EXPECT_LT(sorted[i - 1].first.second, sorted[i].first.first)
        << sorted[i - 1].second << " still wrote when " << sorted[i].second << " started";
  }
}

// Runs as the service reports them: started_at/finished_at do not overlap.
void ExpectRunsDoNotOverlap(const std::vector<json::value>& runs) {
  std::vector<std::pair<std::string, std::string>> spans;
  for (const auto& r : runs) spans.push_back({Str(r, "started_at"), Str(r, "finished_at")});
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) {
    EXPECT_LE(spans[i - 1].second, spans[i].first) << "a run finished at " << spans[i - 1].second
                                                   << ", the next started at " << spans[i].first;
  }
}

TEST_F(ServiceTest, QueuedTriggersOfOneRecipeNeverOverlapAndAllComplete) {
  StartSink();
  InstallSlow("slow", "queue", 40);
  WriteItems(40);  // about a second per run
  StartService();

  // Ten triggers at once, from ten connections.
  std::vector<std::future<HttpReply>> replies;
  for (int i = 0; i < 10; ++i) {
    replies.push_back(std::async(std::launch::async, [this, i] {
      HttpClient c(svc_.url());
      return c.SendJson("POST", "/api/v1/recipes/slow/runs",
                        "{\"params\":{\"tag\":\"t" + std::to_string(i) + "\"}}", kAdmin);
    }));
  }
  std::vector<int64_t> ids;
  for (auto& f : replies) {
    HttpReply r = f.get();
    EXPECT_EQ(r.status, 202) << Show(r);
    ids.push_back(Int(Json(r), "id"));
  }
  std::vector<json::value> runs;
  for (int64_t id : ids) {
    json::value run = WaitRun(id, seconds(150));
    EXPECT_EQ(Str(run, "status"), "completed") << json::serialize(run);
    runs.push_back(run);
  }
  ExpectRunsDoNotOverlap(runs);
  auto spans = Spans(SinkHits());
  EXPECT_EQ(spans.size(), 10u);
  ExpectNoOverlap(spans);
  EXPECT_EQ(SqliteCount(svc_.recipes_dir() / "out/slow.db", "SELECT count(*) FROM items"), 400);
}

TEST_F(ServiceTest, RefusedTriggersWhileARecipeRunsGet409) {
  StartSink();
  InstallSlow("slow", "refuse", 20);
  WriteItems(60);  // about three seconds
  StartService();

  std::vector<std::future<HttpReply>> replies;
  for (int i = 0; i < 10; ++i) {
    replies.push_back(std::async(std::launch::async, [this, i] {
      HttpClient c(svc_.url());
      return c.SendJson("POST", "/api/v1/recipes/slow/runs",
                        "{\"params\":{\"tag\":\"t" + std::to_string(i) + "\"}}", kAdmin);
    }));
  }
  int accepted = 0, refused = 0;
  int64_t id = -1;
  for (auto& f : replies) {
    HttpReply r = f.get();
    if (r.status == 202) {
      ++accepted;
      id = Int(Json(r), "id");
    } else {
      ExpectError(r, 409, "a trigger while the recipe runs");
      ++refused;
    }
  }
  EXPECT_EQ(accepted, 1);
  EXPECT_EQ(refused, 9);
  ASSERT_GT(id, 0);
  EXPECT_EQ(Str(WaitRun(id), "status"), "completed");
  EXPECT_EQ(Runs("&recipe=slow").size(), 1u);
  // Once it has finished, the recipe may run again.
  int64_t again = Trigger("slow", R"({"tag": "again"})");
  EXPECT_EQ(Str(WaitRun(again), "status"), "completed");
}

TEST_F(ServiceTest, MaxRunsOneNeverRunsTwoRecipesAtOnce) {
  StartSink();
  InstallSlow("slow", "queue", 40);
  InstallSlow("other", "queue", 40);
  WriteItems(40);
  StartService({"--max-runs", "1"});

  std::vector<std::future<HttpReply>> replies;
  for (int i = 0; i < 4; ++i) {
    replies.push_back(std::async(std::launch::async, [this, i] {
      HttpClient c(svc_.url());
      return c.SendJson("POST",
                        std::string("/api/v1/recipes/") + (i % 2 ? "slow" : "other") + "/runs",
                        "{\"params\":{\"tag\":\"m" + std::to_string(i) + "\"}}", kAdmin);
    }));
  }
  std::vector<json::value> runs;
  for (auto& f : replies) {
    HttpReply r = f.get();
    ASSERT_EQ(r.status, 202) << Show(r);
    runs.push_back(WaitRun(Int(Json(r), "id"), seconds(120)));
    EXPECT_EQ(Str(runs.back(), "status"), "completed") << json::serialize(runs.back());
  }
  ExpectRunsDoNotOverlap(runs);
  auto spans = Spans(SinkHits());
  EXPECT_EQ(spans.size(), 4u);
  ExpectNoOverlap(spans);
}

// --- 4. missed schedules across a restart ----------------------------------------------

// The UTC minute ("2026-11-27T03:59") of an ISO-8601 time.
std::string Minute(const std::string& iso) { return iso.substr(0, 16); }

TEST_F(ServiceTest, MissedRunOnceRunsOnceAfterARestartAndSkipRunsNone) {
  Install("tick.yaml", "tick-once.yaml", {{"@NAME@", "tick-once"}, {"@MISSED@", "run_once"}});
  Install("tick.yaml", "tick-skip.yaml", {{"@NAME@", "tick-skip"}, {"@MISSED@", "skip"}});
  StartService();

  json::value schedule = Json(Get("/api/v1/schedule", kOperator));
  ASSERT_TRUE(schedule.is_array()) << json::serialize(schedule);
  ASSERT_EQ(schedule.as_array().size(), 2u) << json::serialize(schedule);
  for (const auto& s : schedule.as_array()) {
    EXPECT_EQ(Str(s, "cron"), "* * * * *");
    EXPECT_EQ(Str(s, "timezone"), "Europe/Copenhagen");
    EXPECT_FALSE(Str(s, "next_run").empty()) << json::serialize(s);
  }

  // One scheduled run of each (the next minute boundary: at most a minute away).
  auto scheduled = [&](const std::string& recipe) {
    std::vector<json::value> out;
    for (const auto& r : Runs("&recipe=" + recipe, kOperator)) {
      if (Str(r, "trigger") == "schedule") out.push_back(r);
    }
    return out;
  };
  ASSERT_TRUE(
      WaitUntil([&] { return !scheduled("tick-once").empty() && !scheduled("tick-skip").empty(); },
                seconds(75)))
      << svc_.CurrentLog();
  // Restart at once, within the same minute: that minute must not fire again.
  ASSERT_EQ(svc_.Stop(SIGTERM, seconds(60)), std::optional<int>(0)) << svc_.CurrentLog();
  StartService();
  std::this_thread::sleep_for(seconds(3));
  for (const char* recipe : {"tick-once", "tick-skip"}) {
    std::map<std::string, int> per_minute;
    for (const auto& r : scheduled(recipe)) ++per_minute[Minute(Str(r, "queued_at"))];
    for (const auto& [minute, n] : per_minute) {
      EXPECT_EQ(n, 1) << recipe << " fired " << n << " times for " << minute;
    }
  }
  size_t before_once = Runs("&recipe=tick-once").size();
  ASSERT_EQ(svc_.Stop(SIGTERM, seconds(60)), std::optional<int>(0)) << svc_.CurrentLog();

  // Down for an hour: sixty fire times missed.
  std::string out;
  ASSERT_EQ(RunProgram({"sqlite3", svc_.state_file().string(),
                        "UPDATE schedule_state SET last_fire = last_fire - 3600"},
                       &out),
            0)
      << out;
  StartService();
  auto missed = [&](const std::string& recipe) {
    std::vector<json::value> out;
    for (const auto& r : Runs("&recipe=" + recipe, kOperator)) {
      if (Str(r, "trigger") == "missed") out.push_back(r);
    }
    return out;
  };
  ASSERT_TRUE(WaitUntil([&] { return !missed("tick-once").empty(); }, seconds(30)))
      << svc_.CurrentLog();
  std::this_thread::sleep_for(seconds(3));  // room for a wrong second one
  auto once = missed("tick-once");
  ASSERT_EQ(once.size(), 1u);
  EXPECT_EQ(Str(WaitRun(Int(once[0], "id")), "status"), "completed");
  EXPECT_TRUE(missed("tick-skip").empty());
  EXPECT_GE(Runs("&recipe=tick-once").size(), before_once + 1);
  for (const char* recipe : {"tick-once", "tick-skip"}) {
    std::map<std::string, int> per_minute;
    for (const auto& r : scheduled(recipe)) ++per_minute[Minute(Str(r, "queued_at"))];
    for (const auto& [minute, n] : per_minute) {
      EXPECT_EQ(n, 1) << recipe << " fired " << n << " times for " << minute;
    }
  }
}

// --- 5./7. crash and SIGTERM mid-run ----------------------------------------------------

TEST_F(ServiceTest, KillNineMidRunThenRestartResumesAndWritesEachRecordOnce) {
  StartSink();
  InstallSlow("slow", "queue", 100);
  WriteItems(400);  // four seconds
  StartService();
  int64_t id = Trigger("slow", R"({"tag": "k"})");
  ASSERT_TRUE(WaitUntil([&] { return SinkHits().size() >= 120; }, seconds(60)));
  svc_.Kill();
  size_t at_kill = SinkHits().size();
  EXPECT_LT(at_kill, 400u) << "the run had finished before the kill";

  StartService();
  json::value run = WaitRun(id, seconds(120));
  EXPECT_EQ(Str(run, "status"), "completed") << json::serialize(run);
  EXPECT_EQ(Str(run, "trigger"), "resume") << json::serialize(run);
  fs::path db = svc_.recipes_dir() / "out/slow.db";
  EXPECT_EQ(SqliteCount(db, "SELECT count(*) FROM items"), 400);
  EXPECT_EQ(SqliteCount(db, "SELECT count(DISTINCT id) FROM items"), 400);
  std::set<std::string> at_sink;
  for (const auto& h : SinkHits()) at_sink.insert(h.id);
  EXPECT_EQ(at_sink.size(), 400u);
  // Only the batch in flight is sent again (PUT: idempotent), not the whole run.
  EXPECT_LT(SinkHits().size(), 400u + 60u);
  // The engine run the kill cut off is failed in the history (saying why), not running forever.
  EXPECT_EQ(svc_.Stop().value_or(-1), 0) << svc_.CurrentLog();
  Output history = Keyonce({"history", "slow", "--state", svc_.state_file().string()}, svc_.dir());
  EXPECT_EQ(history.exit_code, 0) << history.all();
  EXPECT_EQ(history.out.find("running"), std::string::npos) << history.all();
  EXPECT_NE(history.out.find("failed"), std::string::npos) << history.all();
  EXPECT_NE(history.out.find("the service stopped during this run"), std::string::npos)
      << history.all();
}

TEST_F(ServiceTest, SigtermDuringARunExitsZeroAndTheRestartCompletesIt) {
  StartSink();
  InstallSlow("slow", "queue", 20);  // a batch of 10 takes half a second
  WriteItems(100);
  StartService();
  int64_t id = Trigger("slow", R"({"tag": "t"})");
  ASSERT_TRUE(WaitUntil([&] { return SinkHits().size() >= 30; }, seconds(60)));
  auto t0 = Clock::now();
  svc_.Signal(SIGTERM);
  // Once it has begun to stop, new runs are refused (while it still answers at all).
  if (svc_.WaitForLog("stopping", seconds(10))) {
    HttpReply late = Post("/api/v1/recipes/slow/runs", R"({"params":{"tag":"late"}})");
    if (late.status != 0) {
      ExpectError(late, 503, "starting a run while the service stops");
    }
  }
  std::optional<int> code = svc_.Wait(seconds(60));
  ASSERT_TRUE(code.has_value()) << "no exit within 60 s of SIGTERM:\n" << svc_.CurrentLog();
  EXPECT_EQ(*code, 0) << svc_.CurrentLog();
  EXPECT_LT(Clock::now() - t0, seconds(30));
  size_t at_stop = SinkHits().size();
  EXPECT_LT(at_stop, 100u) << "the run had finished before SIGTERM";
  EXPECT_EQ(SqliteCount(svc_.state_file(), "SELECT count(*) FROM service_runs WHERE id = " +
                                               std::to_string(id) + " AND status = 'interrupted'"),
            1);

  StartService();
  json::value run = WaitRun(id, seconds(120));
  EXPECT_EQ(Str(run, "status"), "completed") << json::serialize(run);
  EXPECT_EQ(Str(run, "trigger"), "resume") << json::serialize(run);
  fs::path db = svc_.recipes_dir() / "out/slow.db";
  EXPECT_EQ(SqliteCount(db, "SELECT count(*) FROM items"), 100);
  EXPECT_EQ(SqliteCount(db, "SELECT count(DISTINCT id) FROM items"), 100);
  // SIGTERM stops after the batch in flight: nothing is sent twice.
  EXPECT_EQ(SinkHits().size(), 100u);
  EXPECT_EQ(SqliteCount(svc_.state_file(), "SELECT count(*) FROM service_runs"), 1);
}

// --- 6. reloading -----------------------------------------------------------------------

TEST_F(ServiceTest, SighupKeepsTheOldVersionOfABrokenRecipeAndLoadsTheFixedOne) {
  Install("forms.yaml", "forms.yaml");
  StartService();
  auto description = [&] { return Str(Json(Get("/api/v1/recipes/forms")), "description"); };
  ASSERT_EQ(description(), "version one");
  std::string v1 = ReadFile(svc_.recipes_dir() / "forms.yaml");

  // An unknown key on line 3, column 1.
  svc_.WriteRecipe("forms.yaml", Replace(v1, {{"description: version one", "bogus_key: 1"}}));
  svc_.Signal(SIGHUP);
  ASSERT_TRUE(svc_.WaitForLog("forms.yaml:3:1", seconds(30))) << svc_.CurrentLog();
  std::string log = svc_.CurrentLog();
  std::string line = log.substr(log.rfind('\n', log.find("forms.yaml:3:1")) + 1);
  line = line.substr(0, line.find('\n'));
  EXPECT_NE(line.find("bogus_key"), std::string::npos) << line;
  EXPECT_NE(line.find(" error "), std::string::npos) << line;
  EXPECT_NE(line.find("keeping the previous version"), std::string::npos) << line;
  EXPECT_EQ(description(), "version one");
  EXPECT_EQ(Str(WaitRun(Trigger("forms", R"({"count": 1})")), "status"), "completed_with_errors");

  // Fixed: the new version is loaded.
  svc_.WriteRecipe("forms.yaml",
                   Replace(v1, {{"description: version one", "description: version two"}}));
  svc_.Signal(SIGHUP);
  EXPECT_TRUE(WaitUntil([&] { return description() == "version two"; }, seconds(30)))
      << svc_.CurrentLog();

  // A new broken recipe is not loaded; the API reload says why.
  svc_.WriteRecipe("newbie.yaml",
                   "recipe: newbie\nbogus_key: 1\n"
                   "source: {type: csv, path: data/ticks.csv, delimiter: \";\"}\n"
                   "key: \"{{ record.id }}\"\n"
                   "targets:\n  - {name: out, type: jsonl, path: out/newbie.jsonl}\n");
  HttpReply reload = Post("/api/v1/reload", "{}");
  ASSERT_EQ(reload.status, 200) << Show(reload);
  json::value v = Json(reload);
  ASSERT_TRUE(v.is_object()) << reload.body;
  std::string loaded = json::serialize(v.at("loaded"));
  EXPECT_NE(loaded.find("forms"), std::string::npos) << reload.body;
  EXPECT_EQ(loaded.find("newbie"), std::string::npos) << reload.body;
  ASSERT_EQ(v.at("rejected").as_array().size(), 1u) << reload.body;
  const json::value& rejected = v.at("rejected").as_array()[0];
  EXPECT_NE(Str(rejected, "file").find("newbie.yaml"), std::string::npos) << reload.body;
  EXPECT_NE(Str(rejected, "error").find("newbie.yaml:2:1"), std::string::npos) << reload.body;
  json::value listed = Json(Get("/api/v1/recipes"));
  ASSERT_TRUE(listed.is_array());
  ASSERT_EQ(listed.as_array().size(), 1u) << json::serialize(listed);
  EXPECT_EQ(Str(listed.as_array()[0], "name"), "forms");
  ExpectError(Get("/api/v1/recipes/newbie"), 404, "a rejected new recipe");
}

// --- 8. metrics -------------------------------------------------------------------------

TEST_F(ServiceTest, MetricsAfterARunAreValidPrometheusText) {
  Install("forms.yaml", "forms.yaml");
  StartService();
  RunForms();
  HttpReply m = Get("/metrics", kOperator);
  ASSERT_EQ(m.status, 200) << Show(m);
  EXPECT_NE(m.Header("content-type").find("text/plain"), std::string::npos);
  EXPECT_NE(m.Header("content-type").find("version=0.0.4"), std::string::npos)
      << m.Header("content-type");

  // The text format: HELP and TYPE before a family's samples, samples `name{labels} value`.
  static const std::regex kHelp(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
  static const std::regex kType(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)( -?[0-9]+)?$)");
  std::map<std::string, std::string> types;
  std::set<std::string> helped;
  std::map<std::string, std::vector<std::string>> samples;  // family -> sample lines
  std::istringstream in(m.body);
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    std::smatch s;
    if (line.empty()) continue;
    if (line.rfind("# HELP ", 0) == 0) {
      ASSERT_TRUE(std::regex_match(line, s, kHelp)) << line_no << ": " << line;
      EXPECT_TRUE(helped.insert(s[1].str()).second) << "HELP twice: " << line;
    } else if (line.rfind("# TYPE ", 0) == 0) {
      ASSERT_TRUE(std::regex_match(line, s, kType)) << line_no << ": " << line;
      EXPECT_TRUE(types.emplace(s[1].str(), s[2].str()).second) << "TYPE twice: " << line;
    } else if (line[0] == '#') {
      continue;
    } else {
      ASSERT_TRUE(std::regex_match(line, s, kSample)) << line_no << ": " << line;
      std::string name = s[1].str(), family = name;
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        std::string base = name.size() > strlen(suffix) && name.ends_with(suffix)
                               ? name.substr(0, name.size() - strlen(suffix))
                               : "";
        if (!base.empty() && types.count(base) &&
            (types[base] == "histogram" || types[base] == "summary")) {
          family = base;
        }
      }
      EXPECT_TRUE(types.count(family)) << "sample before its TYPE: " << line;
      EXPECT_TRUE(helped.count(family)) << "sample without HELP: " << line;
      samples[family].push_back(line);
    }
  }
  auto has = [&](const std::string& family, const std::vector<std::string>& parts) {
    for (const auto& line : samples[family]) {
      bool all = true;
      for (const auto& p : parts) all = all && line.find(p) != std::string::npos;
      if (all) return true;
    }
    return false;
  };
  EXPECT_EQ(types["keyonce_runs_total"], "counter");
  EXPECT_TRUE(
      has("keyonce_runs_total", {"recipe=\"forms\"", "status=\"completed_with_errors\"", "} 1"}))
      << m.body;
  EXPECT_TRUE(has("keyonce_records_read_total", {"recipe=\"forms\"", "} 4"})) << m.body;
  EXPECT_TRUE(
      has("keyonce_records_written_total", {"recipe=\"forms\"", "target=\"letters\"", "} 3"}))
      << m.body;
  EXPECT_TRUE(has("keyonce_records_quarantined_total", {"recipe=\"forms\"", "} 1"})) << m.body;
  ASSERT_TRUE(types.count("keyonce_run_duration_seconds")) << m.body;
  EXPECT_TRUE(types["keyonce_run_duration_seconds"] == "histogram" ||
              types["keyonce_run_duration_seconds"] == "summary");
  EXPECT_TRUE(has("keyonce_run_duration_seconds", {"_count", "recipe=\"forms\"", "} 1"})) << m.body;
  EXPECT_TRUE(types.count("keyonce_scheduler_lag_seconds")) << m.body;
  for (const auto& [family, type] : types) {
    if (type == "counter") {
      EXPECT_TRUE(family.ends_with("_total")) << family;
    }
  }
}

// --- 9. privacy ---------------------------------------------------------------------------

TEST_F(ServiceTest, NoCprNumberLeavesTheServiceOutsideTheQuarantineDetail) {
  Install("forms.yaml", "forms.yaml");
  StartService();
  int64_t quarantine = -1;
  int64_t run = RunForms(&quarantine);
  ASSERT_GT(quarantine, 0);
  std::string r = std::to_string(run), q = std::to_string(quarantine);

  std::vector<std::pair<std::string, HttpReply>> replies;
  for (const std::string& path :
       {std::string("/health"), std::string("/metrics"), std::string("/api/v1/session"),
        std::string("/api/v1/recipes"), std::string("/api/v1/recipes/forms"),
        std::string("/api/v1/runs"), "/api/v1/runs/" + r, "/api/v1/runs/" + r + "/log",
        std::string("/api/v1/schedule"), std::string("/api/v1/quarantine"),
        std::string("/api/v1/quarantine?recipe=forms&status=open")}) {
    replies.push_back({path, Get(path)});
    EXPECT_EQ(replies.back().second.status, 200) << path << ": " << Show(replies.back().second);
  }
  // A bad CPR parameter is refused without echoing it.
  replies.push_back({"bad cpr param", Post("/api/v1/recipes/forms/runs",
                                           R"({"params":{"count":1,"cpr":"010185-12334"}})")});
  EXPECT_EQ(replies.back().second.status, 400);
  // Dismissing returns the item without the record.
  HttpReply dismissed = Post("/api/v1/quarantine/" + q + "/dismiss", "{}", kOperator);
  EXPECT_EQ(dismissed.status, 200) << Show(dismissed);
  EXPECT_EQ(Str(Json(dismissed), "status"), "dismissed");
  replies.push_back({"dismiss", dismissed});

  json::value log = Json(Get("/api/v1/runs/" + r + "/log"));
  ASSERT_TRUE(log.is_object() && log.at("lines").is_array()) << json::serialize(log);
  EXPECT_FALSE(log.at("lines").as_array().empty());
  json::value masked = Run(run);
  EXPECT_FALSE(Str(masked, "params").empty()) << json::serialize(masked);

  for (const auto& [what, reply] : replies) {
    for (const auto& cpr : kCprs) {
      EXPECT_EQ(reply.body.find(cpr), std::string::npos)
          << what << " shows a CPR number: " << reply.body;
      EXPECT_EQ(reply.body.find(cpr.substr(0, 6) + " " + cpr.substr(6)), std::string::npos);
    }
  }
  std::string stderr_text = svc_.Log();
  for (const auto& cpr : kCprs) {
    EXPECT_EQ(stderr_text.find(cpr), std::string::npos) << "the service's log shows a CPR number";
  }

  // The one place a CPR number may be seen: the record of a quarantine item, by staff.
  HttpReply detail = Get("/api/v1/quarantine/" + q, kOperator);
  ASSERT_EQ(detail.status, 200) << Show(detail);
  json::value d = Json(detail);
  EXPECT_EQ(Str(d.at("record"), "CPR"), "240404-4321") << detail.body;
  EXPECT_EQ(Str(d, "stage"), "step") << detail.body;
  EXPECT_NE(Str(d, "reason").find("Timer"), std::string::npos) << detail.body;
}

// What a browser target saved for a failed record (its screenshot and page,
// in the run's evidence folder) is listed with the item and served to staff
// only: the PNG as an image, the page as text (never as a page of this
// site), and nothing the record's listing does not name.
TEST_F(ServiceTest, EvidenceOfAQuarantinedRecordIsServedToStaffOnly) {
  Install("forms.yaml", "forms.yaml");
  StartService();
  int64_t quarantine = -1;
  int64_t run = RunForms(&quarantine);
  ASSERT_GT(quarantine, 0);
  const std::string q = std::to_string(quarantine);
  json::value item = Json(Get("/api/v1/quarantine/" + q, kOperator));
  ASSERT_TRUE(item.at("evidence").is_array()) << json::serialize(item);
  EXPECT_TRUE(item.at("evidence").as_array().empty());
  // As a browser target's record would have it (a step's quarantine has none).
  const std::string ref = "ref-abcdefghijkl";
  std::string out;
  ASSERT_EQ(RunProgram({"sqlite3", svc_.state_file().string(),
                        "UPDATE quarantine SET ref = '" + ref + "' WHERE id = " + q},
                       &out),
            0)
      << out;
  const fs::path dir = svc_.dir() / "state.db.evidence" / ("run-" + std::to_string(run));
  fs::create_directories(dir);
  const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + "pixels";
  WriteFile(dir / (ref + "-portal.png"), png);
  WriteFile(dir / (ref + "-portal.html"), "<script>alert(1)</script>");
  WriteFile(dir / "ref-someoneelse-portal.png", "another record's");
  WriteFile(svc_.dir() / "secret.png", "not evidence");

  item = Json(Get("/api/v1/quarantine/" + q, kOperator));
  EXPECT_EQ(json::serialize(item.at("evidence")),
            "[\"" + ref + "-portal.html\",\"" + ref + "-portal.png\"]");
  const std::string base = "/api/v1/quarantine/" + q + "/evidence/";
  HttpReply shot = Get(base + ref + "-portal.png", kOperator);
  EXPECT_EQ(shot.status, 200) << Show(shot);
  EXPECT_EQ(shot.body, png);
  HttpReply page = Get(base + ref + "-portal.html", kAdmin);
  EXPECT_EQ(page.status, 200) << Show(page);
  EXPECT_EQ(page.body, "<script>alert(1)</script>");
  EXPECT_EQ(page.Header("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(page.Header("x-content-type-options"), "nosniff");
  EXPECT_EQ(shot.Header("content-type"), "image/png");
  EXPECT_EQ(Get(base + ref + "-portal.png", kAnna).status, 403) << "caseworkers see no evidence";
  for (const std::string& other :
       {std::string("ref-someoneelse-portal.png"), std::string("..%2F..%2Fsecret.png"),
        std::string("%2E%2E"), ref + "-portal.txt"}) {
    EXPECT_EQ(Get(base + other, kOperator).status, 404) << other;
  }
}

// --- 9b. memory --------------------------------------------------------------------------

// The service's address space now, in bytes (VmSize).
long long VmSizeBytes(pid_t pid) {
  std::istringstream in(ReadFile("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmSize:", 0) == 0) return std::stoll(line.substr(7)) * 1024;
  }
  return 0;
}

// A run that runs out of memory (the service's address space limited, as the unit's LimitAS=
// does) ends as failed, in the API and in the state file's history, and the service goes on:
// /health answers and the next run completes.
TEST_F(ServiceTest, RunOutOfMemoryFailsThatRunAndTheServiceGoesOn) {
#if defined(KEYONCE_ASAN) || defined(KEYONCE_TSAN)
  GTEST_SKIP() << "a sanitizer reserves far more address space than any limit, and its "
                  "allocator stops the process instead of failing the allocation";
#endif
  Install("forms.yaml", "forms.yaml");
  const std::string a48(48, 'a');
  std::string filter;
  for (int i = 0; i < 5; ++i) filter += " | replace('a', '" + a48 + "')";
  // Limits raised past what the machine gives: the fifth replace makes 243 MiB.
  svc_.WriteRecipe("hungry.yaml", R"(recipe: hungry
source: {type: csv, path: data/hungry.csv, delimiter: ";"}
key: "{{ record.id }}"
limits: {template_bytes: 1073741824}
targets:
  - {name: out, type: jsonl, path: out/hungry.jsonl, body: {n: "{{ record.text)" +
                                      filter + R"( | length }}"}}
)");
  WriteFile(svc_.recipes_dir() / "data" / "hungry.csv", "id;text\n1;" + a48 + "\n");
  StartService();
  rlimit limit{};
  limit.rlim_cur = limit.rlim_max = static_cast<rlim_t>(VmSizeBytes(svc_.pid()) + (192ll << 20));
  ASSERT_EQ(prlimit(svc_.pid(), RLIMIT_AS, &limit, nullptr), 0) << std::strerror(errno);

  json::value run = WaitRun(Trigger("hungry"));
  EXPECT_EQ(Str(run, "status"), "failed") << json::serialize(run);
  EXPECT_NE(Str(run, "error").find("the run ran out of memory"), std::string::npos)
      << json::serialize(run);
  EXPECT_TRUE(svc_.Running());
  EXPECT_EQ(Get("/health").status, 200);
  EXPECT_EQ(Str(WaitRun(Trigger("forms", R"({"count": 1})")), "status"), "completed_with_errors");
  EXPECT_EQ(svc_.Stop().value_or(-1), 0) << svc_.CurrentLog();

  Output history =
      Keyonce({"history", "hungry", "--state", svc_.state_file().string()}, svc_.dir());
  EXPECT_EQ(history.exit_code, 0) << history.all();
  EXPECT_NE(history.out.find("failed"), std::string::npos) << history.all();
  EXPECT_EQ(history.out.find("running"), std::string::npos) << history.all();
}

// --- 10. load -----------------------------------------------------------------------------

TEST_F(ServiceTest, LoadTwentyThousandRequestsFromFiftyConnectionsWithoutErrors) {
  Install("forms.yaml", "forms.yaml");
  StartService();
  for (int i = 0; i < 3; ++i) WaitRun(Trigger("forms", R"({"count": 1})"));
  std::string out;
  int code = RunProgram({KEYONCE_API_LOAD, "--url", svc_.url() + "/api/v1/runs?limit=20", "--token",
                         kOperator, "--requests", "20000", "--connections", "50"},
                        &out);
  std::cout << out;
  EXPECT_EQ(code, 0) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(errors: (\d+))"))) << out;
  EXPECT_EQ(m[1].str(), "0") << out;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(requests: (\d+))"))) << out;
  EXPECT_EQ(m[1].str(), "20000") << out;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(p99: ([0-9.]+) ms)"))) << out;
  EXPECT_LT(std::stod(m[1].str()), 5000.0) << "a sanity bound only: " << out;
  EXPECT_TRUE(svc_.Running());
  EXPECT_EQ(Get("/health").status, 200);
}

// --- 11. nothing a caller sends comes back ----------------------------------------------

// CPR numbers in the spellings people write, sent where a name or an id
// belongs: as the text itself (in JSON) and as a path segment or query value.
struct Sent {
  std::string text, in_url;
};
const std::vector<Sent> kSentCprs = {{"010185-1233", "010185-1233"},
                                     {"0101851233", "0101851233"},
                                     {"010185 1233", "010185%201233"},
                                     {"01.01.85-1233", "01.01.85-1233"},
                                     {"010185\xC2\xA0"
                                      "1233",
                                      "010185%C2%A01233"}};

// What must not appear where those were sent: each spelling, its digits, its
// date, and the id a run or quarantine number would be read as.
std::vector<std::string> SentForbidden() {
  std::vector<std::string> f = {"0101851233", "101851233", "010185", "01.01.85"};
  for (const auto& s : kSentCprs) f.push_back(s.text);
  return f;
}

TEST_F(ServiceTest, ErrorsNeverEchoWhatTheCallerSent) {
  Install("forms.yaml", "forms.yaml");
  StartService();
  int64_t quarantine = -1;
  RunForms(&quarantine);
  ASSERT_GT(quarantine, 0);
  const std::string q = std::to_string(quarantine);
  const std::string runs = "/api/v1/recipes/forms/runs";

  struct Sending {
    std::string what;
    HttpReply reply;
  };
  std::vector<Sending> replies;
  auto call = [&](const std::string& what, const std::string& method, const std::string& path,
                  const std::string& body = "", const std::string& token = kAdmin,
                  const std::string& content_type = "application/json") {
    HttpRequest r;
    r.method = method;
    r.path = path;
    r.body = body;
    if (!body.empty()) r.headers.push_back("Content-Type: " + content_type);
    if (!token.empty()) r.headers.push_back("Authorization: Bearer " + token);
    HttpReply reply = svc_.client().Send(r);
    EXPECT_GE(reply.status, 400) << what;
    EXPECT_LT(reply.status, 500) << what;
    replies.push_back({what, reply});
  };
  for (size_t i = 0; i < kSentCprs.size(); ++i) {
    const std::string& t = kSentCprs[i].text;
    const std::string& u = kSentCprs[i].in_url;
    const std::string n = " (spelling " + std::to_string(i) + ")";
    call("as a parameter's name" + n, "POST", runs, R"({"params":{"count":1,")" + t + R"(":"1"}})");
    call("as the name of a parameter with a list" + n, "POST", runs,
         R"({"params":{")" + t + R"(":[1]}})");
    call("as a key of the body" + n, "POST", runs, "{\"" + t + "\":1}");
    call("in a body that is not valid JSON" + n, "POST", runs,
         R"({"params":{"count":1,"cpr":")" + t + "\"");
    call("as a recipe" + n, "GET", "/api/v1/recipes/" + u);
    call("as a recipe to start" + n, "POST", "/api/v1/recipes/" + u + "/runs", "{}");
    call("as a run" + n, "GET", "/api/v1/runs/" + u);
    call("as a run's log" + n, "GET", "/api/v1/runs/" + u + "/log");
    call("as a run to cancel" + n, "POST", "/api/v1/runs/" + u + "/cancel", "{}");
    call("as a quarantine id" + n, "GET", "/api/v1/quarantine/" + u);
    call("as a quarantine id to edit" + n, "PATCH", "/api/v1/quarantine/" + u, R"({"fields":{}})");
    call("as a quarantine id to retry" + n, "POST", "/api/v1/quarantine/" + u + "/retry", "{}");
    call("as a record field to edit" + n, "PATCH", "/api/v1/quarantine/" + q,
         R"({"fields":{")" + t + R"(":"x"}})");
    call("as query values" + n, "GET", "/api/v1/runs?limit=" + u + "&before=" + u);
    call("as a quarantine query value" + n, "GET", "/api/v1/quarantine?limit=" + u);
    call("as an endpoint" + n, "GET", "/api/v1/" + u);
    call("as a page" + n, "GET", "/static/" + u);
    call("as a token" + n, "GET", "/api/v1/session", "", t);
    call("as a caseworker's run to cancel" + n, "POST", "/api/v1/runs/" + u + "/cancel", "{}",
         kAnna);
  }
  std::vector<std::string> forbidden = SentForbidden();
  for (const auto& [what, reply] : replies) {
    for (size_t i = 0; i < forbidden.size(); ++i) {
      // Never print the number itself, only which one leaked.
      EXPECT_EQ(reply.body.find(forbidden[i]), std::string::npos)
          << "the reply to a CPR number sent " << what << " holds forbidden text #" << i;
    }
  }
  // The login form, and the service's own log of all of the above.
  for (const auto& s : kSentCprs) {
    HttpRequest login;
    login.method = "POST";
    login.path = "/login";
    login.body = "token=" + s.in_url;
    login.headers = {"Content-Type: application/x-www-form-urlencoded"};
    EXPECT_EQ(svc_.client().Send(login).status, 303);
  }
  std::string log = svc_.Log();
  for (size_t i = 0; i < forbidden.size(); ++i) {
    EXPECT_EQ(log.find(forbidden[i]), std::string::npos)
        << "the service's log holds forbidden text #" << i;
  }
}

// --- 12. connections -----------------------------------------------------------------------

// A TCP connection to 127.0.0.1:port that sends nothing; -1 if it failed.
// `from`: the client's own address (another one of 127.0.0.0/8 is another client).
int ConnectRaw(int port, const char* from = nullptr) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (from) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    inet_pton(AF_INET, from, &local.sin_addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      close(fd);
      return -1;
    }
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Room for `n` more descriptors in this process (and the service it starts).
bool RaiseOpenFiles(rlim_t n) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  if (rl.rlim_cur >= n) return true;
  if (rl.rlim_max < n) return false;
  rl.rlim_cur = n;
  return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

// /health (from a connection of its own, never a kept-alive one) and how long it took.
std::pair<HttpReply, double> TimedHealth(const std::string& url) {
  HttpClient fresh(url);
  auto start = Clock::now();
  HttpReply r = fresh.Get("/health");
  return {r, std::chrono::duration<double>(Clock::now() - start).count()};
}

TEST_F(ServiceTest, HealthAnswersWhileTwoThousandIdleConnectionsAreOpen) {
  constexpr int kIdle = 2000;
  ASSERT_TRUE(RaiseOpenFiles(2 * kIdle + 1024)) << "the open-files limit is too low for this test";
  StartService();
  std::vector<int> idle;
  for (int i = 0; i < kIdle; ++i) {
    int fd = ConnectRaw(svc_.port());
    ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
    idle.push_back(fd);
  }
  // Every connection is open and silent, all from this client's address.
  double slowest = 0;
  for (int i = 0; i < 3; ++i) {
    auto [health, seconds] = TimedHealth(svc_.url());
    EXPECT_EQ(health.status, 200) << Show(health);
    EXPECT_LT(seconds, 2.0) << "/health took " << seconds << " s";
    slowest = std::max(slowest, seconds);
  }
  std::cout << "/health with " << kIdle << " idle connections open: slowest of 3 took "
            << slowest * 1000 << " ms\n";
  HttpClient fresh(svc_.url());
  HttpReply session = fresh.Get("/api/v1/session", kAdmin);
  EXPECT_EQ(session.status, 200) << "an API request from the same address: " << Show(session);
  for (int fd : idle) close(fd);
  EXPECT_TRUE(svc_.Running());
}

// The whole reply on `fd` (the request asked for Connection: close).
std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST_F(ServiceTest, WhenOneClientsConnectionsAreAllBusyHealthIsAnsweredFromTheReserve) {
  WriteFile(svc_.dir() / "serve.yaml",
            "http:\n  header_timeout_seconds: 120\n  max_connections_per_client: 4\n"
            "  reserve_connections: 2\n");
  StartService({"--config", (svc_.dir() / "serve.yaml").string()});
  // Four connections of 127.0.0.1 each begin a request and never finish it:
  // busy, so none may be evicted for a newcomer.
  std::vector<int> busy;
  const std::string partial = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (int i = 0; i < 4; ++i) {
    int fd = ConnectRaw(svc_.port());
    ASSERT_GE(fd, 0);
    ASSERT_EQ(send(fd, partial.data(), partial.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(partial.size()));
    busy.push_back(fd);
  }
  // Another client is not limited by them. Its answer also tells that the
  // service has read the four partial requests: they were accepted and their
  // bytes were waiting before this connection was made.
  int other = ConnectRaw(svc_.port(), "127.0.0.2");
  ASSERT_GE(other, 0) << std::strerror(errno);
  const std::string session =
      "GET /api/v1/session HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Authorization: Bearer " +
      kAdmin + "\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(send(other, session.data(), session.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(session.size()));
  std::string answer = ReadAll(other);
  close(other);
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << "another client: " << answer.substr(0, 200);

  // 127.0.0.1 is at its cap with every connection busy: /health comes from the reserve ...
  auto [health, seconds] = TimedHealth(svc_.url());
  EXPECT_EQ(health.status, 200) << Show(health);
  EXPECT_LT(seconds, 2.0);
  // ... which answers nothing else: 503, try again.
  HttpClient fresh(svc_.url());
  HttpReply refused = fresh.Get("/api/v1/session", kAdmin);
  ExpectError(refused, 503, "an API request over the client's cap");
  EXPECT_EQ(refused.Header("retry-after"), "1");
  // The busy connections were left alone.
  for (int fd : busy) {
    pollfd p{fd, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 0), 0) << "a busy connection was closed";
    close(fd);
  }
}

TEST_F(ServiceTest, ASlowHeaderClientIsCutOffAfterTheHeaderTimeout) {
  WriteFile(svc_.dir() / "serve.yaml", "http:\n  header_timeout_seconds: 2\n");
  StartService({"--config", (svc_.dir() / "serve.yaml").string()});
  int fd = ConnectRaw(svc_.port());
  ASSERT_GE(fd, 0);
  const std::string start = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  ASSERT_EQ(send(fd, start.data(), start.size(), MSG_NOSIGNAL), static_cast<ssize_t>(start.size()));
  // A header line every quarter second, never the blank line that ends them:
  // the wait for the server to close the connection is the test's only pause.
  auto begun = Clock::now();
  bool closed = false;
  while (!closed && Clock::now() - begun < seconds(15)) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 250) > 0) {
      char buf[512];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      closed = n <= 0 || std::string(buf, static_cast<size_t>(n)).find("HTTP/1.1 4") == 0;
      continue;
    }
    const std::string line = "X-Slow: a\r\n";
    if (send(fd, line.data(), line.size(), MSG_NOSIGNAL) < 0) closed = true;
  }
  double took = std::chrono::duration<double>(Clock::now() - begun).count();
  close(fd);
  EXPECT_TRUE(closed) << "a client sending its headers slowly kept its connection for " << took
                      << " s";
  EXPECT_GE(took, 1.5) << "cut off before the header timeout";
  EXPECT_LT(took, 10.0) << "the header timeout is 2 s";
  auto [health, secs] = TimedHealth(svc_.url());
  EXPECT_EQ(health.status, 200) << Show(health);
}

}  // namespace
}  // namespace keyonce::testing_util
