#include "connectors/common/net/json_path.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <random>

namespace keyonce::connectors::net {
namespace {

Value Doc() {
  return boost::json::parse(
      R"({"data": {"items": [{"id": 1}, {"id": 2}, {"id": 3}]}, "meta": {"next page": "p2"},
          "a.b": 7, "list": [[1, 2], [3]]})");
}

std::vector<std::string> Sel(const std::string& path, const Value& v) {
  auto p = JsonPath::Parse(path);
  EXPECT_TRUE(p.ok()) << path << ": " << p.status().message();
  std::vector<std::string> out;
  if (!p.ok()) return out;
  for (const Value* x : p->Select(v)) out.push_back(ToJson(*x));
  return out;
}

TEST(JsonPath, SelectsMembersIndexesAndWildcards) {
  Value d = Doc();
  EXPECT_EQ(Sel("$.data.items[*].id", d), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(Sel("data.items[*]", d).size(), 3u);
  EXPECT_EQ(Sel("data.items", d).size(), 1u);
  EXPECT_EQ(Sel("data.items[0].id", d), (std::vector<std::string>{"1"}));
  EXPECT_EQ(Sel("data.items[-1].id", d), (std::vector<std::string>{"3"}));
  EXPECT_EQ(Sel("meta['next page']", d), (std::vector<std::string>{"\"p2\""}));
  EXPECT_EQ(Sel("[\"a.b\"]", d), (std::vector<std::string>{"7"}));
  EXPECT_EQ(Sel("list[*][*]", d), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(Sel("$.meta.*", d), (std::vector<std::string>{"\"p2\""}));
  EXPECT_EQ(Sel("$", d).size(), 1u);
  EXPECT_EQ(Sel("", d).size(), 1u);
  Value arr = boost::json::parse(R"([{"id": 5}])");
  EXPECT_EQ(Sel("[0].id", arr), (std::vector<std::string>{"5"}));
}

TEST(JsonPath, WhatDoesNotApplySelectsNothing) {
  Value d = Doc();
  EXPECT_TRUE(Sel("data.items.id", d).empty());
  EXPECT_TRUE(Sel("data.items[9]", d).empty());
  EXPECT_TRUE(Sel("data.items[-9]", d).empty());
  EXPECT_TRUE(Sel("nope.deeper[*]", d).empty());
  EXPECT_TRUE(Sel("a.b", d).empty());
}

TEST(JsonPath, BadSyntaxIsAClearError) {
  for (const char* bad :
       {"data.", "x[", "x[1", "x['a", "x[a]", "x..y", "x]", "x[99999999999999999999]", "x y"}) {
    auto p = JsonPath::Parse(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_NE(p.status().message().find("offset"), std::string::npos) << p.status().message();
  }
}

// Random input never crashes and either parses or errs.
TEST(JsonPath, RandomInputIsTotal) {
  std::mt19937 rng(42);
  const std::string alphabet = "$.[]*'\"\\-0123456789abc _";
  Value d = Doc();
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    int len = static_cast<int>(rng() % 16);
    for (int j = 0; j < len; ++j) s.push_back(alphabet[rng() % alphabet.size()]);
    auto p = JsonPath::Parse(s);
    if (p.ok()) (void)p->Select(d);
  }
}

}  // namespace
}  // namespace keyonce::connectors::net
