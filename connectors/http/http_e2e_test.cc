// End to end: the keyonce binary runs recipes with http targets, sources and
// lookups against json-server; a rerun writes nothing; a dry run shows the
// requests without the token.

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "connectors/common/net/transfer.h"
#include "tests/cli_util.h"
#include "tests/support/http_servers.h"

namespace keyonce {
namespace {

using testing_util::Keyonce;
using testing_util::ReadFile;
using testing_util::WriteFile;
using testing_util::http::JsonServer;
using testing_util::http::ScratchDir;

Value GetJson(const std::string& url) {
  connectors::net::HttpClient c;
  auto r = c.Perform(connectors::net::HttpRequest{"GET", url, {}, "", ""});
  if (!r.ok()) throw std::runtime_error("GET " + url + ": " + r.status().message());
  return boost::json::parse(r->body);
}

const char* kRecipe = R"(recipe: http-e2e
params:
  base: {type: string, required: true}
secrets:
  token: {env: E2E_TOKEN}
source: {type: csv, path: people.csv, delimiter: ";"}
key: "{{ record.id }}"
tables:
  departments:
    type: http
    url: "{{ params.base }}/departments/{{ key }}"
steps:
  - set:
      dept_name: "{{ record.dept | lookup('departments', 'name') }}"
targets:
  - name: cases
    type: http
    url: "{{ params.base }}/cases"
    exists: "{{ params.base }}/cases/{{ record.id }}"
    auth: {type: bearer, token: "{{ secrets.token }}"}
    in_flight: 4
    body:
      id: "{{ record.id }}"
      name: "{{ record.name }}"
      dept: "{{ record.dept_name }}"
    capture:
      case_id: "{{ reply.body.id }}"
  - name: notes
    type: http
    url: "{{ params.base }}/notes"
    body: {case: "{{ captures.cases.case_id }}", text: "oprettet"}
)";

const char* kPeople =
    "id;name;dept\n"
    "1;Anne Hansen;a\n"
    "2;Bo Jensen;b\n"
    "3;Carl Æbelø;a\n";

TEST(HttpEndToEnd, RecipeWritesOnceThenNothing) {
  ScratchDir dir;
  JsonServer server;
  std::string why;
  ASSERT_TRUE(server.Start(
      dir.path() / "js",
      R"({"cases": [], "notes": [], "departments": [{"id": "a", "name": "Sundhed"}, {"id": "b", "name": "Skole"}]})",
      &why))
      << why;
  WriteFile(dir.path() / "people.csv", kPeople);
  WriteFile(dir.path() / "r.yaml", kRecipe);
  const std::map<std::string, std::string> env = {{"E2E_TOKEN", "e2e-hemmelig-token"}};
  const std::string param = "base=" + server.url();

  auto v = Keyonce({"validate", "r.yaml"}, dir.path(), env);
  ASSERT_EQ(v.exit_code, 0) << v.all();

  auto dry =
      Keyonce({"run", "r.yaml", "--dry-run", "--param", param, "--state", "s.db"}, dir.path(), env);
  ASSERT_EQ(dry.exit_code, 0) << dry.all();
  EXPECT_NE(dry.all().find(server.url() + "/cases"), std::string::npos) << dry.all();
  EXPECT_EQ(dry.all().find("e2e-hemmelig-token"), std::string::npos);
  EXPECT_EQ(GetJson(server.url() + "/cases").as_array().size(), 0u);

  auto r1 = Keyonce({"run", "r.yaml", "--param", param, "--state", "s.db"}, dir.path(), env);
  ASSERT_EQ(r1.exit_code, 0) << r1.all();
  Value cases = GetJson(server.url() + "/cases");
  ASSERT_EQ(cases.as_array().size(), 3u) << ToJson(cases);
  EXPECT_EQ(cases.as_array()[2].at("name").as_string(), "Carl Æbelø");
  EXPECT_EQ(cases.as_array()[1].at("dept").as_string(), "Skole");
  Value notes = GetJson(server.url() + "/notes");
  ASSERT_EQ(notes.as_array().size(), 3u);
  // The second target got the id the first one's reply carried.
  std::set<std::string> case_ids;
  for (const auto& n : notes.as_array()) case_ids.insert(ToText(n.at("case")));
  EXPECT_EQ(case_ids, (std::set<std::string>{"1", "2", "3"}));
  EXPECT_EQ(r1.all().find("e2e-hemmelig-token"), std::string::npos);

  auto r2 = Keyonce({"run", "r.yaml", "--param", param, "--state", "s.db"}, dir.path(), env);
  ASSERT_EQ(r2.exit_code, 0) << r2.all();
  EXPECT_EQ(GetJson(server.url() + "/cases").as_array().size(), 3u);
  EXPECT_EQ(GetJson(server.url() + "/notes").as_array().size(), 3u);
}

TEST(HttpEndToEnd, NewStateFileMeetingCasesAlreadyThereIsRefused) {
  ScratchDir dir;
  JsonServer server;
  std::string why;
  ASSERT_TRUE(server.Start(
      dir.path() / "js",
      R"({"cases": [], "notes": [], "departments": [{"id": "a", "name": "Sundhed"}, {"id": "b", "name": "Skole"}]})",
      &why))
      << why;
  WriteFile(dir.path() / "people.csv", kPeople);
  WriteFile(dir.path() / "r.yaml", kRecipe);
  const std::map<std::string, std::string> env = {{"E2E_TOKEN", "e2e-hemmelig-token"}};
  const std::string param = "base=" + server.url();
  auto r1 = Keyonce({"run", "r.yaml", "--param", param, "--state", "s.db"}, dir.path(), env);
  ASSERT_EQ(r1.exit_code, 0) << r1.all();
  ASSERT_EQ(GetJson(server.url() + "/cases").as_array().size(), 3u);

  // The state file is lost and a new one started: the case system cannot
  // keep a mark, but its `exists` check shows the cases are there.
  auto r2 = Keyonce({"run", "r.yaml", "--param", param, "--state", "new.db"}, dir.path(), env);
  EXPECT_EQ(r2.exit_code, 4) << r2.all();
  EXPECT_NE(r2.all().find("already holds record"), std::string::npos) << r2.all();
  EXPECT_EQ(GetJson(server.url() + "/cases").as_array().size(), 3u);
  EXPECT_EQ(GetJson(server.url() + "/notes").as_array().size(), 3u);

  // --adopt: the cases found there are recorded, not created again.
  auto r3 =
      Keyonce({"run", "r.yaml", "--param", param, "--state", "new.db", "--adopt"}, dir.path(), env);
  EXPECT_EQ(r3.exit_code, 0) << r3.all();
  EXPECT_EQ(GetJson(server.url() + "/cases").as_array().size(), 3u);
  auto r4 = Keyonce({"run", "r.yaml", "--param", param, "--state", "new.db"}, dir.path(), env);
  EXPECT_EQ(r4.exit_code, 0) << r4.all();
  EXPECT_EQ(GetJson(server.url() + "/cases").as_array().size(), 3u);
}

TEST(HttpEndToEnd, HttpSourceIntoJsonl) {
  ScratchDir dir;
  JsonServer server;
  std::string why;
  std::string db = R"({"people": [)";
  for (int i = 1; i <= 35; ++i) {
    db += (i > 1 ? "," : "") + std::string("{\"id\": ") + std::to_string(i) + "}";
  }
  db += "]}";
  ASSERT_TRUE(server.Start(dir.path() / "js", db, &why)) << why;
  WriteFile(dir.path() / "r.yaml",
            "recipe: http-source\n"
            "source:\n"
            "  type: http\n"
            "  url: '" +
                server.url() +
                "/people'\n"
                "  paging: {type: page, param: _page, size_param: _limit, size: 10}\n"
                "key: '{{ record.id }}'\n"
                "targets:\n"
                "  - {name: out, type: jsonl, path: out.jsonl, body: {id: '{{ record.id }}'}}\n");
  auto r = Keyonce({"run", "r.yaml", "--state", "s.db"}, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.all();
  std::string out = ReadFile(dir.path() / "out.jsonl");
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 35);
}

}  // namespace
}  // namespace keyonce
