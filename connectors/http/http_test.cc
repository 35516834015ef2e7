// The http connector against real servers on 127.0.0.1: json-server (REST
// with paging), nginx (TLS with a test CA, mutual TLS, canned faulty
// replies, slow replies), oauth2-mock-server (tokens) and a server that cuts
// replies short.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <boost/json/parse.hpp>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "connectors/common/net/transfer.h"
#include "keyonce/connector.h"
#include "keyonce/testing.h"
#include "tests/support/http_servers.h"

namespace keyonce {
namespace {

namespace fs = std::filesystem;
namespace net = connectors::net;
using testing_util::FreePort;
using testing_util::http::JsonServer;
using testing_util::http::Nginx;
using testing_util::http::OAuthApi;
using testing_util::http::ScratchDir;
using testing_util::http::TestCerts;
using testing_util::http::TruncatingServer;
using Clock = std::chrono::steady_clock;

// --- helpers -----------------------------------------------------------------

class TestLog : public Log {
 public:
  void Info(const std::string& m) override { Add("info: " + m); }
  void Warn(const std::string& m) override { Add("warn: " + m); }
  void AddSecret(const std::string& v) override {
    std::lock_guard<std::mutex> l(mu_);
    secrets.push_back(v);
  }
  void Add(const std::string& m) {
    std::lock_guard<std::mutex> l(mu_);
    lines.push_back(m);
  }
  std::string All() {
    std::lock_guard<std::mutex> l(mu_);
    std::string s;
    for (const auto& x : lines) s += x + "\n";
    return s;
  }
  std::vector<std::string> lines, secrets;

 private:
  std::mutex mu_;
};

const ConnectorDef& Http() {
  const ConnectorDef* d = Registry::Global().Find("http");
  if (!d) throw std::runtime_error("the http connector is not registered");
  return *d;
}

// Settings from YAML, checked by the engine's own walker like a recipe.
Settings Walk(const std::vector<FieldSpec>& fields, const std::string& yaml,
              const fs::path& base = {}) {
  testing::SettingsYaml options;
  options.params = {"base", "user"};
  options.secrets = {"token", "password", "client_secret", "api_key", "key_password"};
  options.base_dir = base;
  auto s = testing::SettingsFromYaml(fields, yaml, options);
  if (!s.ok()) throw std::runtime_error(s.status().message());
  return std::move(s).value();
}

// The values templates see: params, secrets and a record.
struct Env {
  Value params = boost::json::object{{"base", ""}, {"user", "sagsbehandler"}};
  Value secrets = boost::json::object{{"token", "tok-hemmelig-123"},
                                      {"password", "pw-hemmelig-456"},
                                      {"client_secret", "cs-hemmelig-789"},
                                      {"api_key", "key-hemmelig-000"},
                                      {"key_password", testing_util::http::kClientKeyPassword}};
  TestLog log;
  RunContext Ctx() {
    RunContext c;
    c.recipe = "test";
    c.run_id = "1";
    c.target_name = "api";
    c.scope.params = &params;
    c.scope.secrets = &secrets;
    c.log = &log;
    return c;
  }
};

// Records and their write ops (scopes point into this object: keep it alive).
struct Ops {
  std::vector<Value> records;
  std::vector<Scope> scopes;
  std::vector<WriteOp> ops;
  Ops(Env& env, const std::vector<Value>& recs, WriteOp::Kind kind = WriteOp::Kind::kInsert) {
    records = recs;
    scopes.resize(records.size());
    for (size_t i = 0; i < records.size(); ++i) {
      scopes[i].record = &records[i];
      scopes[i].params = &env.params;
      scopes[i].secrets = &env.secrets;
    }
    for (size_t i = 0; i < records.size(); ++i) {
      WriteOp op;
      op.kind = kind;
      op.record = &records[i].get_object();
      op.scope = &scopes[i];
      op.key = "key-" + std::to_string(i) + ToJson(records[i]);
      op.batch = 1;
      ops.push_back(op);
    }
  }
};

Value Rec(const std::string& json) { return boost::json::parse(json); }

std::unique_ptr<Target> MakeTarget(const std::string& yaml, const fs::path& base = {}) {
  auto t = Http().make_target(Walk(Http().target->fields, yaml, base));
  if (!t.ok()) throw std::runtime_error("make_target: " + t.status().message());
  return std::move(t).value();
}

std::unique_ptr<Source> MakeSource(const std::string& yaml) {
  auto s = Http().make_source(Walk(Http().source->fields, yaml));
  if (!s.ok()) throw std::runtime_error("make_source: " + s.status().message());
  return std::move(s).value();
}

std::unique_ptr<Lookup> MakeLookup(const std::string& yaml) {
  auto l = Http().make_lookup(Walk(Http().lookup->fields, yaml));
  if (!l.ok()) throw std::runtime_error("make_lookup: " + l.status().message());
  return std::move(l).value();
}

// A plain GET through the transfer layer, for checking server state.
Value GetJson(const std::string& url) {
  net::HttpClient c;
  auto r = c.Perform(net::HttpRequest{"GET", url, {}, "", ""});
  if (!r.ok()) throw std::runtime_error("GET " + url + ": " + r.status().message());
  return boost::json::parse(r->body);
}

std::vector<Record> ReadAll(Source& s, std::vector<std::string>* positions = nullptr) {
  std::vector<Record> out;
  SourceItem item;
  while (true) {
    auto r = s.Next(&item);
    if (!r.ok()) throw std::runtime_error("source: " + r.status().message());
    if (!*r) break;
    if (item.rejected) throw std::runtime_error("rejected: " + item.reason);
    out.push_back(item.record);
    if (positions) positions->push_back(item.position);
  }
  return out;
}

std::string CasesDb(int n) {
  boost::json::array a;
  for (int i = 1; i <= n; ++i) {
    a.push_back(boost::json::object{{"id", i}, {"name", "Sag " + std::to_string(i)}});
  }
  return ToJson(boost::json::object{{"cases", std::move(a)}});
}

// --- target against json-server ---------------------------------------------

class JsonServerTest : public ::testing::Test {
 protected:
  void StartDb(const std::string& db) {
    std::string why;
    ASSERT_TRUE(server.Start(dir.path() / "js", db, &why)) << why;
    env.params.as_object()["base"] = server.url();
  }
  ScratchDir dir;
  JsonServer server;
  Env env;
};

TEST_F(JsonServerTest, PostsRecordsConcurrentlyAndCapturesReplies) {
  StartDb(CasesDb(0));
  auto t = MakeTarget(
      "url: '{{ params.base }}/cases'\n"
      "body: {id: '{{ record.id }}', name: '{{ record.name }}'}\n"
      "in_flight: 8\n");
  EXPECT_FALSE(t->Traits().idempotent);
  ASSERT_TRUE(t->Open(env.Ctx()).ok());
  std::vector<Value> recs;
  for (int i = 1; i <= 20; ++i)
    recs.push_back(
        Rec("{\"id\": " + std::to_string(i) + ", \"name\": \"Ø " + std::to_string(i) + "\"}"));
  Ops ops(env, recs);
  auto res = t->WriteMany(ops.ops);
  ASSERT_EQ(res.size(), 20u);
  for (size_t i = 0; i < res.size(); ++i) {
    ASSERT_TRUE(res[i].status.ok()) << res[i].status.message();
    EXPECT_EQ(res[i].reply.at("status").as_int64(), 201);
    EXPECT_EQ(res[i].reply.at("body").at("id").as_int64(), static_cast<int64_t>(i + 1));
    EXPECT_NE(res[i].reply.at("headers").as_object().if_contains("content-type"), nullptr);
  }
  auto commit = t->Commit(1, true);
  ASSERT_TRUE(commit.ok());
  EXPECT_TRUE(commit->durable);
  Value all = GetJson(server.url() + "/cases");
  EXPECT_EQ(all.as_array().size(), 20u);
  EXPECT_EQ(all.as_array()[0].at("name").as_string(), "Ø 1");
}

TEST_F(JsonServerTest, PutPatchDeleteAndUpdates) {
  StartDb(CasesDb(3));
  auto put = MakeTarget(
      "url: '{{ params.base }}/cases/{{ record.id }}'\n"
      "method: PUT\n");
  EXPECT_TRUE(put->Traits().idempotent);
  EXPECT_FALSE(put->Traits().supports_update);
  ASSERT_TRUE(put->Open(env.Ctx()).ok());
  Ops a(env, {Rec(R"({"id": 1, "name": "ny"})")});
  auto r = put->Write(a.ops[0]);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(GetJson(server.url() + "/cases/1").at("name").as_string(), "ny");

  auto patch = MakeTarget(
      "url: '{{ params.base }}/cases'\n"
      "update_url: '{{ params.base }}/cases/{{ record.id }}'\n"
      "update_method: PATCH\n"
      "body: {name: '{{ record.name }}'}\n");
  EXPECT_TRUE(patch->Traits().supports_update);
  ASSERT_TRUE(patch->Open(env.Ctx()).ok());
  Ops b(env, {Rec(R"({"id": 2, "name": "rettet"})")}, WriteOp::Kind::kUpdate);
  r = patch->Write(b.ops[0]);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(r.reply.at("status").as_int64(), 200);
  EXPECT_EQ(GetJson(server.url() + "/cases/2").at("name").as_string(), "rettet");

  auto del = MakeTarget(
      "url: '{{ params.base }}/cases/{{ record.id }}'\n"
      "method: DELETE\n");
  ASSERT_TRUE(del->Open(env.Ctx()).ok());
  Ops c(env, {Rec(R"({"id": 3})")});
  r = del->Write(c.ops[0]);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  EXPECT_EQ(GetJson(server.url() + "/cases").as_array().size(), 2u);
}

TEST_F(JsonServerTest, ClientErrorsArePermanentAndNameTheUrl) {
  StartDb(CasesDb(1));
  auto t = MakeTarget(
      "url: '{{ params.base }}/cases/{{ record.id }}?api_key={{ secrets.api_key }}"
      "&mail={{ record.mail }}'\n"
      "method: PUT\n");
  ASSERT_TRUE(t->Open(env.Ctx()).ok());
  Ops ops(env, {Rec(R"({"id": 999, "mail": "anna@example.dk"})")});
  auto r = t->Write(ops.ops[0]);
  EXPECT_EQ(r.status.code(), Status::Code::kPermanent);
  // The base URL from params is shown; the record's values are not (they
  // would reach the quarantine reason, the log and the run history): the
  // URL reads as the recipe wrote it.
  EXPECT_EQ(
      r.status.message().rfind("HTTP 404 from " + server.url() +
                                   "/cases/{{ record.id }}?api_key=***&mail={{ record.mail }}",
                               0),
      0u)
      << r.status.message();
  EXPECT_EQ(r.status.message().find("key-hemmelig"), std::string::npos);
  EXPECT_EQ(r.status.message().find("anna"), std::string::npos);
}

TEST_F(JsonServerTest, TransportErrorsDoNotNameRecordValues) {
  auto t = MakeTarget("url: 'http://127.0.0.1:" + std::to_string(FreePort()) +
                      "/people/{{ record.mail }}'\nmethod: PUT\n");
  ASSERT_TRUE(t->Open(env.Ctx()).ok());
  Ops ops(env, {Rec(R"({"id": 1, "mail": "anna@example.dk"})")});
  auto r = t->Write(ops.ops[0]);
  ASSERT_FALSE(r.status.ok());
  EXPECT_NE(r.status.message().find("/people/{{ record.mail }}"), std::string::npos)
      << r.status.message();
  EXPECT_EQ(r.status.message().find("anna"), std::string::npos) << r.status.message();
}

TEST_F(JsonServerTest, ExistsChecksWhetherARecordIsThere) {
  StartDb(CasesDb(2));
  auto t = MakeTarget(
      "url: '{{ params.base }}/cases'\n"
      "exists: '{{ params.base }}/cases/{{ record.id }}'\n");
  ASSERT_TRUE(t->Open(env.Ctx()).ok());
  Ops ops(env, {Rec(R"({"id": 2})"), Rec(R"({"id": 7})")});
  auto there = t->Check(ops.ops[0]);
  ASSERT_TRUE(there.ok()) << there.status().message();
  EXPECT_EQ(there->outcome, CheckResult::Outcome::kExists);
  EXPECT_EQ(there->reply.at("body").at("name").as_string(), "Sag 2");
  auto absent = t->Check(ops.ops[1]);
  ASSERT_TRUE(absent.ok()) << absent.status().message();
  EXPECT_EQ(absent->outcome, CheckResult::Outcome::kAbsent);
  // A search URL: 200 with an empty list is absent too.
  auto search = MakeTarget(
      "url: '{{ params.base }}/cases'\n"
      "exists: '{{ params.base }}/cases?name={{ record.name }}'\n");
  ASSERT_TRUE(search->Open(env.Ctx()).ok());
  Ops named(env, {Rec(R"({"name": "Sag 1"})"), Rec(R"({"name": "Sag & 9"})")});
  EXPECT_EQ(search->Check(named.ops[0])->outcome, CheckResult::Outcome::kExists);
  EXPECT_EQ(search->Check(named.ops[1])->outcome, CheckResult::Outcome::kAbsent);
  // Without `exists` the target cannot tell.
  auto plain = MakeTarget("url: '{{ params.base }}/cases'\n");
  ASSERT_TRUE(plain->Open(env.Ctx()).ok());
  EXPECT_EQ(plain->Check(ops.ops[0])->outcome, CheckResult::Outcome::kUnsupported);
  auto rec = plain->Recover(env.Ctx(), 1, "");
  ASSERT_TRUE(rec.ok());
  EXPECT_FALSE(rec->known);
}

TEST_F(JsonServerTest, RenderShowsTheRequestWithEncodedUrlAndNoAuth) {
  StartDb(CasesDb(0));
  auto t = MakeTarget(
      "url: '{{ params.base }}/cases/{{ record.id }}?q={{ record.name }}'\n"
      "method: PUT\n"
      "headers: {X-Sag: 'sag-{{ record.id }}'}\n"
      "auth: {type: bearer, token: '{{ secrets.token }}'}\n");
  Ops ops(env, {Rec(R"({"id": "a b/../c", "name": "x&y=z"})")});
  auto r = t->Render(ops.ops[0]);  // no Open: a dry run never opens targets
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->at("method").as_string(), "PUT");
  EXPECT_EQ(r->at("url").as_string(), server.url() + "/cases/a%20b%2F..%2Fc?q=x%26y%3Dz");
  EXPECT_EQ(r->at("headers").at("X-Sag").as_string(), "sag-a b/../c");
  EXPECT_EQ(r->at("headers").as_object().if_contains("Authorization"), nullptr);
  EXPECT_EQ(r->at("body").at("name").as_string(), "x&y=z");  // default body: the record
  EXPECT_EQ(ToJson(*r).find("tok-hemmelig"), std::string::npos);
}

TEST_F(JsonServerTest, BodyJsonIsRenderedWithJsonEscaping) {
  StartDb(CasesDb(0));
  auto t = MakeTarget(
      "url: '{{ params.base }}/cases'\n"
      "body_json: '{\"name\": {{ record.name }}, \"n\": {{ record.n }}}'\n");
  ASSERT_TRUE(t->Open(env.Ctx()).ok());
  Ops ops(env, {Rec(R"({"name": "quote \" and \\ back", "n": 3})")});
  auto r = t->Write(ops.ops[0]);
  ASSERT_TRUE(r.status.ok()) << r.status.message();
  Value all = GetJson(server.url() + "/cases");
  EXPECT_EQ(all.as_array()[0].at("name").as_string(), "quote \" and \\ back");
  EXPECT_EQ(all.as_array()[0].at("n").as_int64(), 3);
}

TEST(HttpSettings, InvalidCombinationsFailInMakeWithoutIo) {
  // Refused by the recipe's validation (the auth mapping's keys are checked
  // like a section's), else by make_target: either way before any I/O.
  auto bad = [](const std::string& yaml) {
    testing::SettingsYaml options;
    options.secrets = {"token"};
    auto settings = testing::SettingsFromYaml(Http().target->fields, yaml, options);
    if (!settings.ok()) return settings.status().message();
    auto t = Http().make_target(*settings);
    EXPECT_FALSE(t.ok()) << yaml;
    return t.ok() ? std::string() : t.status().message();
  };
  EXPECT_NE(bad("url: 'ftp://x/y'\n").find("url must start with http"), std::string::npos);
  EXPECT_NE(bad("url: 'http://x'\nauth: {type: bearer}\n").find("auth.token is required"),
            std::string::npos);
  EXPECT_NE(bad("url: 'http://x'\nauth: {type: bearer, token: plain-text}\n")
                .find("must not be written in the recipe"),
            std::string::npos);
  EXPECT_NE(bad("url: 'http://x'\nauth: {type: basic, username: u, pasword: x}\n")
                .find("unknown key 'pasword'"),
            std::string::npos);
  EXPECT_NE(bad("url: 'http://x'\nauth: {type: bearer, token: '{{ record.t }}'}\n")
                .find("auth.token: template: 'record' is not available here"),
            std::string::npos);
  EXPECT_NE(bad("url: 'http://x'\nin_flight: 0\n").find("in_flight"), std::string::npos);
  EXPECT_NE(bad("url: 'http://x'\nclient_key: k.pem\n").find("client_cert"), std::string::npos);
  auto s =
      Http().make_source(Walk(Http().source->fields, "url: 'http://x'\npaging: {type: cursor}\n"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("paging.cursor"), std::string::npos);
  s = Http().make_source(Walk(Http().source->fields, "url: 'http://x'\nrecords: 'a[b'\n"));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("records: JSON path 'a[b'"), std::string::npos)
      << s.status().message();
}

// --- source and lookup against json-server -----------------------------------

TEST_F(JsonServerTest, SourceFollowsLinkHeaderPages) {
  StartDb(CasesDb(25));
  auto s = MakeSource(
      "url: '{{ params.base }}/cases?_page=1&_limit=10'\n"
      "paging: {type: next_link}\n");
  ASSERT_TRUE(s->Open(env.Ctx()).ok());
  std::vector<std::string> pos;
  auto recs = ReadAll(*s, &pos);
  ASSERT_EQ(recs.size(), 25u);
  EXPECT_EQ(recs[24].at("id").as_int64(), 25);
  EXPECT_EQ(pos[0], "page 1, record 1");
  EXPECT_EQ(pos[24], "page 3, record 5");
}

TEST_F(JsonServerTest, SourcePageAndOffsetParameters) {
  StartDb(CasesDb(23));
  auto pages = MakeSource(
      "url: '{{ params.base }}/cases'\n"
      "paging: {type: page, param: _page, size_param: _limit, size: 5}\n");
  ASSERT_TRUE(pages->Open(env.Ctx()).ok());
  auto recs = ReadAll(*pages);
  ASSERT_EQ(recs.size(), 23u);
  for (int i = 0; i < 23; ++i) {
    EXPECT_EQ(recs[i].at("id").as_int64(), i + 1);
  }

  auto offsets = MakeSource(
      "url: '{{ params.base }}/cases'\n"
      "paging: {type: offset, param: _start, size_param: _limit, size: 10}\n");
  ASSERT_TRUE(offsets->Open(env.Ctx()).ok());
  recs = ReadAll(*offsets);
  ASSERT_EQ(recs.size(), 23u);
  EXPECT_EQ(recs[22].at("id").as_int64(), 23);
}

TEST_F(JsonServerTest, LookupHitMissAndSearch) {
  StartDb(CasesDb(3));
  auto l = MakeLookup("url: '{{ params.base }}/cases/{{ key }}'\n");
  ASSERT_TRUE(l->Open(env.Ctx()).ok());
  auto hit = l->Find(Value(2));
  ASSERT_TRUE(hit.ok()) << hit.status().message();
  ASSERT_TRUE(hit->has_value());
  EXPECT_EQ((**hit).at("name").as_string(), "Sag 2");
  auto miss = l->Find(Value("404 me"));
  ASSERT_TRUE(miss.ok()) << miss.status().message();
  EXPECT_FALSE(miss->has_value());

  auto search = MakeLookup("url: '{{ params.base }}/cases?name={{ key }}'\n");
  ASSERT_TRUE(search->Open(env.Ctx()).ok());
  auto found = search->Find(Value("Sag 3"));
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((**found).at("id").as_int64(), 3);
  auto none = search->Find(Value("Sag 9"));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(HttpLookup, ConnectionRefusedIsTransient) {
  Env env;
  auto l = MakeLookup("url: 'http://127.0.0.1:" + std::to_string(FreePort()) + "/x/{{ key }}'\n");
  ASSERT_TRUE(l->Open(env.Ctx()).ok());
  auto r = l->Find(Value("k"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsTransient()) << r.status().message();
  EXPECT_NE(r.status().message().find("connecting to http://127.0.0.1:"), std::string::npos);
}

// --- nginx: TLS, canned replies, slow replies ---------------------------------

class NginxTest : public ::testing::Test {
 protected:
  // One plain and one TLS server (and a mutual-TLS one) with canned replies.
  void Start() {
    std::string why;
    ASSERT_TRUE(testing_util::http::MakeTestCerts(dir.path() / "certs", &certs, &why)) << why;
    port = FreePort();
    tls_port = FreePort();
    mtls_port = FreePort();
    fs::create_directories(dir.path() / "ngx" / "www");
    std::ofstream(dir.path() / "ngx" / "www" / "huge.json")
        << "[\"" << std::string(300000, 'x') << "\"]";
    std::ofstream(dir.path() / "ngx" / "www" / "p1.json")
        << R"({"items": [{"n": 1}, {"n": 2}], "links": {"next": "/www/p2.json"}})";
    std::ofstream(dir.path() / "ngx" / "www" / "p2.json")
        << R"({"items": [{"n": 3}], "links": {"next": null}})";
    std::ofstream(dir.path() / "ngx" / "www" / "loop.json")
        << R"({"items": [{"n": 1}], "links": {"next": "/www/loop.json"}})";
    std::ofstream(dir.path() / "ngx" / "www" / "ping.json")
        << R"({"items": [{"n": 1}], "links": {"next": "/www/pong.json"}})";
    std::ofstream(dir.path() / "ngx" / "www" / "pong.json")
        << R"({"items": [{"n": 2}], "links": {"next": "/www/ping.json"}})";
    std::ofstream(dir.path() / "ngx" / "www" / "cur_.json")
        << R"({"data": [{"n": 1}, {"n": 2}], "meta": {"next_cursor": "abc"}})";
    std::ofstream(dir.path() / "ngx" / "www" / "cur_abc.json")
        << R"({"data": [{"n": 3}], "meta": {"next_cursor": ""}})";
    std::ofstream(dir.path() / "ngx" / "www" / "mixed.json") << R"([{"n": 1}, 7, "x", {"n": 2}])";
    std::ofstream(dir.path() / "ngx" / "www" / "slow.json") << '"' << std::string(6000, 'x') << '"';
    std::string locations =
        "    location = /created { default_type application/json; return 201 '{\"id\": 42}'; }\n"
        "    location = /malformed { default_type application/json; return 201 '{\"id\": 42,'; }\n"
        "    location = /wrongtype { default_type text/html; return 200 '<html>oops</html>'; }\n"
        "    location = /huge { default_type application/json; error_page 405 =200 $uri; "
        "alias {dir}/www/huge.json; }\n"
        "    location = /brief { keepalive_timeout 150ms; default_type application/json; "
        "return 201 '{\"id\": 7}'; }\n"
        "    location = /once { keepalive_requests 1; default_type application/json; "
        "return 201 '{\"id\": 8}'; }\n"
        "    location = /r429 { add_header Retry-After 7 always; return 429 'slow down'; }\n"
        "    location = /r503 { return 503 'maintenance'; }\n"
        "    location = /r500 { return 500 'oops 010185-1233'; }\n"
        "    location = /r400 { return 400 'bad field'; }\n"
        "    location = /echo { default_type text/plain; return 400 'you sent $http_authorization "
        "$http_x_api_key'; }\n"
        "    location = /slow { default_type application/json; limit_rate 4k; limit_rate_after 0; "
        "error_page 405 =200 $uri; alias {dir}/www/slow.json; }\n"
        "    location /www/ { default_type application/json; alias {dir}/www/; }\n"
        "    location = /cursor { default_type application/json; alias "
        "{dir}/www/cur_$arg_cursor.json; }\n";
    std::string tls = "    ssl_certificate " + certs.server_cert.string() + ";\n" +
                      "    ssl_certificate_key " + certs.server_key.string() + ";\n";
    std::string conf =
        "  server {\n    listen 127.0.0.1:" + std::to_string(port) + ";\n" + locations + "  }\n" +
        "  server {\n    listen 127.0.0.1:" + std::to_string(tls_port) + " ssl;\n" + tls +
        locations + "  }\n" + "  server {\n    listen 127.0.0.1:" + std::to_string(mtls_port) +
        " ssl;\n" + tls + "    ssl_client_certificate " + certs.ca.string() + ";\n" +
        "    ssl_verify_client optional;\n" +
        "    location / { if ($ssl_client_verify != SUCCESS) { return 403 'client certificate "
        "required'; } default_type application/json; return 201 '{\"who\": \"$ssl_client_s_dn\"}'; "
        "}\n"
        "  }\n";
    ASSERT_TRUE(nginx.Start(dir.path() / "ngx", conf, port, &why)) << why;
    ASSERT_TRUE(testing_util::WaitForPort(tls_port));
    ASSERT_TRUE(testing_util::WaitForPort(mtls_port));
  }
  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }
  std::string TlsUrl(const std::string& path, int p = 0) const {
    return "https://127.0.0.1:" + std::to_string(p ? p : tls_port) + path;
  }
  WriteResult PostOne(const std::string& yaml) {
    auto t = MakeTarget(yaml);
    Status st = t->Open(env.Ctx());
    if (!st.ok()) return WriteResult{st, {}, 0};
    Ops ops(env, {Rec(R"({"id": 1})")});
    return t->Write(ops.ops[0]);
  }
  // [start, end] of the requests nginx logged for `uri` (seconds; start is
  // $msec - $request_time), waiting a little for `expect` lines (nginx logs
  // a request just after answering it).
  std::vector<std::pair<double, double>> Intervals(const std::string& uri, size_t expect) {
    std::vector<std::pair<double, double>> out;
    for (int tries = 0; tries < 50; ++tries) {
      out.clear();
      std::ifstream in(nginx.access_log());
      double end = 0, took = 0;
      std::string status, method, u;
      while (in >> end >> took >> status >> method >> u) {
        if (u == uri) out.emplace_back(end - took, end);
      }
      if (out.size() >= expect) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return out;
  }

  ScratchDir dir;
  TestCerts certs;
  Nginx nginx;
  int port = 0, tls_port = 0, mtls_port = 0;
  Env env;
};

TEST_F(NginxTest, TlsWithTheRightCaWorksAndTheWrongCaIsAClearPermanentError) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto ok = PostOne("url: '" + TlsUrl("/created") + "'\nca_file: '" + certs.ca.string() + "'\n");
  ASSERT_TRUE(ok.status.ok()) << ok.status.message();
  EXPECT_EQ(ok.reply.at("body").at("id").as_int64(), 42);

  auto wrong =
      PostOne("url: '" + TlsUrl("/created") + "'\nca_file: '" + certs.other_ca.string() + "'\n");
  EXPECT_EQ(wrong.status.code(), Status::Code::kPermanent) << wrong.status.message();
  EXPECT_EQ(wrong.status.message().rfind(
                "TLS certificate verification failed for " + TlsUrl("/created"), 0),
            0u)
      << wrong.status.message();

  auto system_ca = PostOne("url: '" + TlsUrl("/created") + "'\n");
  EXPECT_EQ(system_ca.status.code(), Status::Code::kPermanent) << system_ca.status.message();

  // tls_verify: false works without the CA, and the run is warned.
  auto off = PostOne("url: '" + TlsUrl("/created") + "'\ntls_verify: false\n");
  ASSERT_TRUE(off.status.ok()) << off.status.message();
  EXPECT_NE(env.log.All().find("tls_verify is false"), std::string::npos) << env.log.All();
}

TEST_F(NginxTest, MutualTlsNeedsTheClientCertificate) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const std::string base =
      "url: '" + TlsUrl("/cases", mtls_port) + "'\nca_file: '" + certs.ca.string() + "'\n";
  auto without = PostOne(base);
  EXPECT_EQ(without.status.code(), Status::Code::kPermanent);
  EXPECT_NE(without.status.message().find("HTTP 403 from"), std::string::npos)
      << without.status.message();

  auto with = PostOne(base + "client_cert: '" + certs.client_cert.string() + "'\nclient_key: '" +
                      certs.client_key.string() + "'\n");
  ASSERT_TRUE(with.status.ok()) << with.status.message();
  EXPECT_EQ(with.reply.at("status").as_int64(), 201);
  EXPECT_NE(with.reply.at("body").at("who").as_string().find("keyonce client"), std::string::npos);

  auto encrypted = PostOne(base + "client_cert: '" + certs.client_cert.string() +
                           "'\nclient_key: '" + certs.client_key_enc.string() +
                           "'\nclient_key_password: '{{ secrets.key_password }}'\n");
  ASSERT_TRUE(encrypted.status.ok()) << encrypted.status.message();

  auto bad_key = PostOne(base + "client_cert: '" + certs.client_cert.string() + "'\nclient_key: '" +
                         certs.other_ca.string() + "'\n");
  EXPECT_EQ(bad_key.status.code(), Status::Code::kPermanent) << bad_key.status.message();
}

// A kept-alive connection the server closes while it is idle (keep-alive
// timeout) must not take the next request: written into a dead connection,
// a POST ends in doubt although the server never saw it.
TEST_F(NginxTest, AConnectionTheServerClosedWhileIdleIsNotUsedSoNothingIsInDoubt) {
  ASSERT_NO_FATAL_FAILURE(Start());
  for (const std::string& url : {Url("/brief"), TlsUrl("/brief")}) {
    SCOPED_TRACE(url);
    auto t = MakeTarget("url: '" + url + "'\nca_file: '" + certs.ca.string() + "'\n");
    ASSERT_TRUE(t->Open(env.Ctx()).ok());
    Ops ops(env, {Rec(R"({"id": 1})"), Rec(R"({"id": 2})")});
    WriteResult first = t->Write(ops.ops[0]);
    ASSERT_TRUE(first.status.ok()) << first.status.message();
    // nginx closes the idle connection after 150 ms.
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    WriteResult second = t->Write(ops.ops[1]);
    EXPECT_TRUE(second.status.ok()) << second.status.message();
    EXPECT_FALSE(second.in_doubt);
  }
  EXPECT_EQ(Intervals("/brief", 4).size(), 4u) << "each POST reached nginx once";
}

// A reply with "Connection: close" ends that connection: the next requests
// go out on new ones, none lost or in doubt.
TEST_F(NginxTest, AConnectionTheServerEndsAfterItsReplyIsNotUsedAgain) {
  ASSERT_NO_FATAL_FAILURE(Start());
  for (const std::string& url : {Url("/once"), TlsUrl("/once")}) {
    SCOPED_TRACE(url);
    auto t = MakeTarget("url: '" + url + "'\nca_file: '" + certs.ca.string() + "'\nin_flight: 2\n");
    ASSERT_TRUE(t->Open(env.Ctx()).ok());
    std::vector<std::string> json;
    for (int i = 0; i < 6; ++i) json.push_back("{\"id\": " + std::to_string(i) + "}");
    Ops ops(env,
            {Rec(json[0]), Rec(json[1]), Rec(json[2]), Rec(json[3]), Rec(json[4]), Rec(json[5])});
    for (int round = 0; round < 2; ++round) {
      for (const WriteResult& r : t->WriteMany(ops.ops)) {
        EXPECT_TRUE(r.status.ok()) << r.status.message();
        EXPECT_FALSE(r.in_doubt);
      }
    }
  }
  EXPECT_EQ(Intervals("/once", 24).size(), 24u) << "each POST reached nginx once";
}

TEST_F(NginxTest, FaultyRepliesGiveClearPerRecordErrors) {
  ASSERT_NO_FATAL_FAILURE(Start());
  TruncatingServer trunc;
  std::string why;
  ASSERT_TRUE(trunc.Start(dir.path(), &why)) << why;

  auto malformed = PostOne("url: '" + Url("/malformed") + "'\n");
  EXPECT_EQ(malformed.status.code(), Status::Code::kPermanent);
  EXPECT_NE(malformed.status.message().find("is not valid JSON"), std::string::npos);
  EXPECT_NE(malformed.status.message().find("line 1, column 11"), std::string::npos)
      << malformed.status.message();
  EXPECT_NE(malformed.status.message().find("the write was accepted"), std::string::npos);

  auto wrongtype = PostOne("url: '" + Url("/wrongtype") + "'\nreply_format: json\n");
  EXPECT_EQ(wrongtype.status.code(), Status::Code::kPermanent);
  EXPECT_NE(wrongtype.status.message().find("expected a JSON reply from " + Url("/wrongtype") +
                                            ", got content type text/html"),
            std::string::npos)
      << wrongtype.status.message();
  auto as_text = PostOne("url: '" + Url("/wrongtype") + "'\n");
  ASSERT_TRUE(as_text.status.ok());
  EXPECT_EQ(as_text.reply.at("body").as_string(), "<html>oops</html>");

  auto huge = PostOne("url: '" + Url("/huge") + "'\nmethod: PUT\nmax_reply_bytes: 100000\n");
  EXPECT_EQ(huge.status.code(), Status::Code::kPermanent);
  EXPECT_NE(huge.status.message().find("larger than max_reply_bytes (100000 bytes)"),
            std::string::npos)
      << huge.status.message();

  auto cut =
      PostOne("url: 'http://127.0.0.1:" + std::to_string(trunc.port()) + "/x'\nmethod: PUT\n");
  EXPECT_TRUE(cut.status.IsTransient()) << cut.status.message();
  EXPECT_NE(cut.status.message().find("http://127.0.0.1:" + std::to_string(trunc.port()) + "/x"),
            std::string::npos)
      << cut.status.message();

  auto r429 = PostOne("url: '" + Url("/r429") + "'\n");
  EXPECT_TRUE(r429.status.IsTransient());
  EXPECT_EQ(r429.retry_after_seconds, 7);
  EXPECT_EQ(r429.status.message(),
            "HTTP 429 from " + Url("/r429") + ": slow down (retry after 7 s)");

  auto r503 = PostOne("url: '" + Url("/r503") + "'\n");
  EXPECT_TRUE(r503.status.IsTransient()) << r503.status.message();

  auto r400 = PostOne("url: '" + Url("/r400") + "'\n");
  EXPECT_EQ(r400.status.code(), Status::Code::kPermanent);
  EXPECT_EQ(r400.status.message(), "HTTP 400 from " + Url("/r400") + ": bad field");

  auto refused = PostOne("url: 'http://127.0.0.1:" + std::to_string(FreePort()) + "/x'\n");
  EXPECT_TRUE(refused.status.IsTransient()) << refused.status.message();
}

TEST_F(NginxTest, AnAmbiguousFailureIsNeverBlindlyResent) {
  ASSERT_NO_FATAL_FAILURE(Start());
  // A 500 after a POST may have created the record: without `exists` a
  // person decides; CPR numbers in the reply are masked.
  auto post = PostOne("url: '" + Url("/r500") + "'\n");
  EXPECT_EQ(post.status.code(), Status::Code::kPermanent);
  EXPECT_NE(post.status.message().find("may have arrived, so it is not sent again"),
            std::string::npos)
      << post.status.message();
  EXPECT_NE(post.status.message().find("oops xxxxxx-xxxx"), std::string::npos);
  EXPECT_TRUE(post.in_doubt) << "the engine keeps it in doubt: no later run resends it blindly";
  // With `exists` it is retried (and checked first)...
  auto checked = PostOne("url: '" + Url("/r500") + "'\nexists: '" + Url("/created") + "'\n");
  EXPECT_TRUE(checked.status.IsTransient()) << checked.status.message();
  EXPECT_TRUE(checked.in_doubt) << "in doubt should this be the engine's last attempt";
  // ... and an idempotent PUT is simply retried.
  auto put = PostOne("url: '" + Url("/r500") + "'\nmethod: PUT\n");
  EXPECT_TRUE(put.status.IsTransient()) << put.status.message();
  // A timeout after sending is ambiguous too.
  auto slow = PostOne("url: '" + Url("/slow") + "'\ntimeout_seconds: 0.3\n");
  EXPECT_EQ(slow.status.code(), Status::Code::kPermanent) << slow.status.message();
  EXPECT_NE(slow.status.message().find("timed out talking to " + Url("/slow")), std::string::npos)
      << slow.status.message();

  // The retry of an ambiguous write asks `exists` first: here the record is
  // there (200), so it is not sent again and the check's reply is returned.
  auto t = MakeTarget("url: '" + Url("/r500") + "'\nexists: '" + Url("/www/p2.json") + "'\n");
  ASSERT_TRUE(t->Open(env.Ctx()).ok());
  Ops ops(env, {Rec(R"({"id": 1})")});
  auto first = t->Write(ops.ops[0]);
  ASSERT_TRUE(first.status.IsTransient());
  auto second = t->Write(ops.ops[0]);
  ASSERT_TRUE(second.status.ok()) << second.status.message();
  EXPECT_EQ(second.reply.at("body").at("items").as_array().size(), 1u);
  auto r500s = Intervals("/r500", 4);
  EXPECT_EQ(r500s.size(), 4u);  // three PostOne, the first write; never the second
}

TEST_F(NginxTest, SourcePagesByJsonPathAndCursorWithGuards) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto s = MakeSource("url: '" + Url("/www/p1.json") +
                      "'\nrecords: $.items\npaging: {type: next_link, next: $.links.next}\n");
  ASSERT_TRUE(s->Open(env.Ctx()).ok());
  auto recs = ReadAll(*s);
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_EQ(recs[2].at("n").as_int64(), 3);

  auto cur = MakeSource("url: '" + Url("/cursor") +
                        "'\nrecords: data\npaging: {type: cursor, cursor: meta.next_cursor}\n");
  ASSERT_TRUE(cur->Open(env.Ctx()).ok());
  recs = ReadAll(*cur);
  ASSERT_EQ(recs.size(), 3u);

  auto same = MakeSource("url: '" + Url("/www/loop.json") +
                         "'\nrecords: items\npaging: {type: next_link, next: links.next}\n");
  ASSERT_TRUE(same->Open(env.Ctx()).ok());
  EXPECT_THROW(
      {
        try {
          ReadAll(*same);
        } catch (const std::runtime_error& e) {
          EXPECT_NE(std::string(e.what()).find("the next page is the same page again"),
                    std::string::npos)
              << e.what();
          throw;
        }
      },
      std::runtime_error);

  auto ping =
      MakeSource("url: '" + Url("/www/ping.json") +
                 "'\nrecords: items\npaging: {type: next_link, next: links.next, max_pages: 5}\n");
  ASSERT_TRUE(ping->Open(env.Ctx()).ok());
  SourceItem item;
  int n = 0;
  Status end;
  while (true) {
    auto r = ping->Next(&item);
    if (!r.ok()) {
      end = r.status();
      break;
    }
    if (!*r) break;
    ++n;
  }
  EXPECT_EQ(n, 5);
  EXPECT_NE(end.message().find("stopped after 5 pages (paging.max_pages)"), std::string::npos)
      << end.message();

  // Elements that are not objects are rejected one by one; the rest is read.
  auto mixed = MakeSource("url: '" + Url("/www/mixed.json") + "'\n");
  ASSERT_TRUE(mixed->Open(env.Ctx()).ok());
  std::vector<bool> rejected;
  while (true) {
    auto r = mixed->Next(&item);
    ASSERT_TRUE(r.ok()) << r.status().message();
    if (!*r) break;
    rejected.push_back(item.rejected);
    if (item.rejected) {
      EXPECT_NE(item.reason.find("not a JSON object"), std::string::npos);
    }
  }
  EXPECT_EQ(rejected, (std::vector<bool>{false, true, true, false}));

  // A reply that is not JSON stops the source with a clear error.
  auto html = MakeSource("url: '" + Url("/wrongtype") + "'\nretry_attempts: 1\n");
  ASSERT_TRUE(html->Open(env.Ctx()).ok());
  auto r = html->Next(&item);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("expected a JSON reply"), std::string::npos);
}

TEST_F(NginxTest, ManyRequestsAreInFlightAtOnce) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto t = MakeTarget("url: '" + Url("/slow") + "'\nmethod: PUT\nin_flight: 8\n");
  ASSERT_TRUE(t->Open(env.Ctx()).ok());
  std::vector<Value> recs;
  for (int i = 0; i < 16; ++i) recs.push_back(Rec("{\"id\": " + std::to_string(i) + "}"));
  Ops ops(env, recs);
  auto res = t->WriteMany(ops.ops);
  for (const auto& r : res) {
    ASSERT_TRUE(r.status.ok()) << r.status.message();
  }
  auto iv = Intervals("/slow", 16);
  ASSERT_EQ(iv.size(), 16u);
  // The most requests nginx was serving at the same moment.
  int most = 0;
  for (const auto& [start, end] : iv) {
    int n = 0;
    double mid = (start + end) / 2;
    for (const auto& [s2, e2] : iv) n += (s2 <= mid && mid <= e2) ? 1 : 0;
    most = std::max(most, n);
  }
  EXPECT_GE(most, 4) << "requests did not overlap";
}

TEST_F(NginxTest, RateLimitSpacesRequests) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto t = MakeTarget("url: '" + Url("/created") + "'\nin_flight: 8\nrate_limit: 20\n");
  ASSERT_TRUE(t->Open(env.Ctx()).ok());
  std::vector<Value> recs;
  for (int i = 0; i < 21; ++i) recs.push_back(Rec("{\"id\": " + std::to_string(i) + "}"));
  Ops ops(env, recs);
  auto t0 = Clock::now();
  auto res = t->WriteMany(ops.ops);
  double took = std::chrono::duration<double>(Clock::now() - t0).count();
  for (const auto& r : res) {
    ASSERT_TRUE(r.status.ok()) << r.status.message();
  }
  EXPECT_GE(took, 0.99);  // 21 requests at 20/s: the last starts 1 s after the first
  auto iv = Intervals("/created", 21);
  ASSERT_EQ(iv.size(), 21u);
  std::vector<double> starts;
  for (const auto& p : iv) starts.push_back(p.first);
  std::sort(starts.begin(), starts.end());
  for (size_t i = 0; i + 20 < starts.size(); ++i) {
    EXPECT_GE(starts[i + 20] - starts[i], 0.9);  // never 21 in (a little under) a second
  }
}

// --- OAuth2 and privacy --------------------------------------------------------

class OAuthTest : public ::testing::Test {
 protected:
  void Start(int expires_in = 3600) {
    std::string why;
    ASSERT_TRUE(api.Start(dir.path(), "cs-hemmelig-789", "sagsbehandler", "pw-hemmelig-456",
                          expires_in, &why))
        << why;
  }
  Value Stats() { return GetJson(api.api_url() + "/stats"); }
  std::string Auth(const std::string& grant, const std::string& secret_name = "client_secret") {
    std::string y = "auth:\n  type: " + grant + "\n  token_url: '" + api.token_url() +
                    "'\n  client_id: keyonce\n";
    if (grant == "oauth2_client_credentials") {
      y += "  client_secret: '{{ secrets." + secret_name + " }}'\n  scope: cases.write\n";
    } else {
      y += "  username: '{{ params.user }}'\n  password: '{{ secrets.password }}'\n";
    }
    return y;
  }
  std::vector<WriteResult> Write(Target& t, int n) {
    std::vector<Value> recs;
    for (int i = 0; i < n; ++i) recs.push_back(Rec("{\"id\": " + std::to_string(i) + "}"));
    Ops ops(env, recs);
    return t.WriteMany(ops.ops);
  }
  ScratchDir dir;
  OAuthApi api;
  Env env;
};

TEST_F(OAuthTest, ClientCredentialsTokenIsCachedAndRefreshedOn401) {
  ASSERT_NO_FATAL_FAILURE(Start());
  auto t = MakeTarget("url: '" + api.api_url() + "/cases'\nin_flight: 4\n" +
                      Auth("oauth2_client_credentials"));
  ASSERT_TRUE(t->Open(env.Ctx()).ok());
  for (const auto& r : Write(*t, 6)) {
    ASSERT_TRUE(r.status.ok()) << r.status.message();
  }
  for (const auto& r : Write(*t, 2)) {
    ASSERT_TRUE(r.status.ok()) << r.status.message();
  }
  Value s = Stats();
  EXPECT_EQ(s.at("token_requests").as_int64(), 1);
  EXPECT_EQ(s.at("api_requests").as_int64(), 8);
  // The fetched token was registered as a secret.
  ASSERT_FALSE(env.log.secrets.empty());
  EXPECT_GT(env.log.secrets.back().size(), 20u);

  // The API forgets its tokens: every request gets a 401 once, the token
  // is fetched again once, and the requests are sent again.
  GetJson(api.api_url() + "/revoke");
  for (const auto& r : Write(*t, 4)) {
    ASSERT_TRUE(r.status.ok()) << r.status.message();
  }
  s = Stats();
  EXPECT_EQ(s.at("token_requests").as_int64(), 2);
  EXPECT_EQ(s.at("api_requests").as_int64(), 12);
  EXPECT_EQ(s.at("rejected").as_int64(), 4);
}

TEST_F(OAuthTest, ShortLivedTokensAreFetchedAgainBeforeTheyExpire) {
  ASSERT_NO_FATAL_FAILURE(Start(/*expires_in=*/1));
  auto t = MakeTarget("url: '" + api.api_url() + "/cases'\n" + Auth("oauth2_password"));
  ASSERT_TRUE(t->Open(env.Ctx()).ok());
  for (const auto& r : Write(*t, 1)) {
    ASSERT_TRUE(r.status.ok()) << r.status.message();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  for (const auto& r : Write(*t, 1)) {
    ASSERT_TRUE(r.status.ok()) << r.status.message();
  }
  Value s = Stats();
  EXPECT_EQ(s.at("token_requests").as_int64(), 2);
  EXPECT_EQ(s.at("grants").as_array()[0].as_string(), "password");
  EXPECT_EQ(s.at("rejected").as_int64(), 0);
}

TEST_F(OAuthTest, RefusedCredentialsArePermanentAndSecretFree) {
  ASSERT_NO_FATAL_FAILURE(Start());
  env.secrets.as_object()["wrong_secret"] = "cs-falsk-hemmelig";
  auto t = MakeTarget("url: '" + api.api_url() + "/cases'\n" +
                      Auth("oauth2_client_credentials", "token"));
  ASSERT_TRUE(t->Open(env.Ctx()).ok());
  auto r = Write(*t, 1)[0];
  EXPECT_EQ(r.status.code(), Status::Code::kPermanent);
  EXPECT_NE(
      r.status.message().find("OAuth2 token request was refused: HTTP 401 from " + api.token_url()),
      std::string::npos)
      << r.status.message();
  EXPECT_EQ(r.status.message().find("tok-hemmelig"), std::string::npos);
}

TEST_F(NginxTest, SecretsNeverAppearInErrorMessages) {
  ASSERT_NO_FATAL_FAILURE(Start());
  OAuthApi oauth;
  std::string why;
  ASSERT_TRUE(
      oauth.Start(dir.path(), "cs-hemmelig-789", "sagsbehandler", "pw-hemmelig-456", 3600, &why))
      << why;
  // /echo answers 400 with the Authorization and X-API-Key headers it got.
  const std::vector<std::string> auths = {
      "auth: {type: basic, username: '{{ params.user }}', password: '{{ secrets.password }}'}\n",
      "auth: {type: bearer, token: '{{ secrets.token }}'}\n",
      "auth: {type: api_key, value: '{{ secrets.api_key }}'}\n",
      "auth: {type: oauth2_client_credentials, token_url: '" + oauth.token_url() +
          "', client_id: keyonce, client_secret: '{{ secrets.client_secret }}'}\n",
  };
  std::vector<std::string> messages;
  for (const auto& a : auths) {
    auto w = PostOne("url: '" + Url("/echo") + "'\n" + a);
    EXPECT_EQ(w.status.code(), Status::Code::kPermanent) << a;
    messages.push_back(w.status.message());
    auto s = MakeSource("url: '" + Url("/echo") + "'\nretry_attempts: 1\n" + a);
    ASSERT_TRUE(s->Open(env.Ctx()).ok());
    SourceItem item;
    auto r = s->Next(&item);
    ASSERT_FALSE(r.ok());
    messages.push_back(r.status().message());
    auto l = MakeLookup("url: '" + Url("/echo") + "?k={{ key }}'\n" + a);
    ASSERT_TRUE(l->Open(env.Ctx()).ok());
    auto f = l->Find(Value("x"));
    ASSERT_FALSE(f.ok());
    messages.push_back(f.status().message());
  }
  // A failing token endpoint (wrong URL) and a wrong secret.
  auto bad = PostOne("url: '" + Url("/echo") + "'\nauth: {type: oauth2_password, token_url: '" +
                     Url("/r400") +
                     "', client_id: keyonce, username: u, password: "
                     "'{{ secrets.password }}'}\n");
  messages.push_back(bad.status.message());
  std::vector<std::string> secrets = {"pw-hemmelig-456", "tok-hemmelig-123", "cs-hemmelig-789",
                                      "key-hemmelig-000"};
  for (const auto& s : env.log.secrets) secrets.push_back(s);  // fetched tokens, basic credentials
  ASSERT_GE(env.log.secrets.size(), 5u);
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& m = messages[i];
    if (i < 3 * auths.size()) {
      EXPECT_NE(m.find("you sent"), std::string::npos) << m;
    }
    for (const auto& s : secrets) {
      EXPECT_EQ(m.find(s), std::string::npos) << s << " in: " << m;
    }
  }
  EXPECT_NE(messages[0].find("you sent Basic ***"), std::string::npos) << messages[0];
}

}  // namespace
}  // namespace keyonce
