#include "recipe/loader.h"

#include "keyonce/testing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace keyonce {
namespace {

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Each broken recipe states the diagnostics it must produce in `# expect:` lines.
TEST(RecipeValidator, BrokenCorpusGivesExactLocations) {
  std::filesystem::path dir = std::filesystem::path(KEYONCE_SOURCE_DIR) / "tests/recipes/broken";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    std::string text = ReadFile(entry.path());
    std::set<std::string> expected;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("# expect: ", 0) == 0) expected.insert(line.substr(10));
    }
    ASSERT_FALSE(expected.empty()) << entry.path() << " has no # expect: line";
    Diagnostics diags;
    auto r = LoadRecipeText(entry.path().filename().string(), text, dir, &diags);
    EXPECT_EQ(r, nullptr) << entry.path();
    std::set<std::string> actual;
    for (const auto& d : diags.items()) actual.insert(d.ToString());
    EXPECT_EQ(actual, expected) << "in " << entry.path().filename();
  }
  EXPECT_GE(files, 10);
}

TEST(RecipeValidator, ValidRecipeCompilesEverything) {
  const char* text = R"(recipe: ok
params:
  month: {type: date, label: "Måned", required: true}
secrets:
  token: {env: TOKEN}
source:
  type: jsonl
  path: "in-{{ params.month }}.jsonl"
key: "{{ record.id }}"
steps:
  - set: {name: "{{ record.name | trim | upper }}"}
  - filter: {when: "{{ record.active }}"}
  - validate:
      id: {required: true, pattern: '^[0-9]+$'}
targets:
  - name: out
    type: jsonl
    path: out.jsonl
    body:
      id: "{{ record.id }}"
      auth: "{{ secrets.token }}"
)";
  Diagnostics diags;
  auto r = LoadRecipeText("ok.yaml", text, ".", &diags);
  for (const auto& d : diags.items()) ADD_FAILURE() << d.ToString();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->name, "ok");
  EXPECT_EQ(r->steps.size(), 3u);
  EXPECT_EQ(r->targets.size(), 1u);
  EXPECT_EQ(r->params[0].label, "Måned");
  EXPECT_EQ(r->targets[0].on_change, OnChange::kInsertNew);  // files cannot update
  // Parts of a structured setting know their recipe line (for messages at run time).
  const Settings& body = r->targets[0].settings;
  EXPECT_EQ(body.file, "ok.yaml");
  EXPECT_EQ(body.Line("body"), 20);
  EXPECT_EQ(body.Line("body", "id"), 20);
  EXPECT_EQ(body.Line("body", "auth"), 21);
  EXPECT_EQ(body.Line("body", "nothing"), 0);
  EXPECT_EQ(body.Line("path"), 0);
}

TEST(RecipeValidator, ReportsEveryProblemAtOnce) {
  const char* text = R"(recipe: Bad Name
source:
  type: jsonl
  pth: in.jsonl
key: "{{ record.id }}"
targets:
  - name: out
    type: jsonl
    path: out.jsonl
    colour: red
)";
  Diagnostics diags;
  auto r = LoadRecipeText("many.yaml", text, ".", &diags);
  EXPECT_EQ(r, nullptr);
  EXPECT_GE(diags.items().size(), 4u);  // name, pth (unknown + missing path), colour
}

// keyonce/testing.h, what connector tests use instead of the validator
// itself: the same checks, the same places in messages.
TEST(TestingApi, SettingsFromYamlChecksLikeARecipeAndSaysWhere) {
  const std::vector<FieldSpec> fields = {FieldSpec::String("url").Required(),
                                         FieldSpec::Int("timeout_seconds")};
  auto ok = testing::SettingsFromYaml(fields, "url: http://127.0.0.1/x\ntimeout_seconds: 5\n");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->Int("timeout_seconds").value_or(0), 5);
  auto bad = testing::SettingsFromYaml(fields, "url: http://127.0.0.1/x\ntimeout_secs: 5\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("test.yaml:2:1"), std::string::npos)
      << bad.status().message();
  EXPECT_NE(bad.status().message().find("timeout_seconds"), std::string::npos)
      << bad.status().message();
}

TEST(TestingApi, TargetFromRecipeMakesTheFirstTargetOrSaysWhyNot) {
  const auto dir = std::filesystem::path(::testing::TempDir());
  auto made = testing::TargetFromRecipe(
      "recipe: t\nsource: {type: jsonl, path: in.jsonl}\nkey: \"{{ record.id }}\"\n"
      "targets:\n  - {name: out, type: jsonl, path: out.jsonl}\n",
      dir);
  ASSERT_TRUE(made.ok()) << made.status().message();
  EXPECT_NE(made->target, nullptr);
  auto bad = testing::TargetFromRecipe(
      "recipe: t\nsource: {type: jsonl, path: in.jsonl}\nkey: \"{{ record.id }}\"\n"
      "targets:\n  - {name: out, type: jsonll, path: out.jsonl}\n",
      dir);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("test.yaml:5:"), std::string::npos)
      << bad.status().message();
}

}  // namespace
}  // namespace keyonce
