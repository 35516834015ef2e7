// The record planner: steps, key and each target's `when`, as a run, a dry
// run and `keyonce test` all see them.
#include "pipeline/planner.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "recipe/loader.h"

namespace keyonce {
namespace {

const char* kRecipe = R"(recipe: planned
source: {type: csv, path: in.csv}
steps:
  - validate:
      Afd: {one_of: [Nord, Syd, lukket], message: "must be a department of ours"}
  - filter: {when: "{{ record.Afd != 'lukket' }}", reason: closed}
key: "{{ record.id }}"
targets:
  - name: all
    type: jsonl
    path: all.jsonl
    body: {id: "{{ record.id }}"}
  - name: big
    type: jsonl
    path: big.jsonl
    when: "{{ record.Timer | number(',') > 10 }}"
    body: {id: "{{ record.id }}"}
)";

class Planner : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto dir = std::filesystem::path(::testing::TempDir()) / "keyonce_planner";
    std::filesystem::create_directories(dir);
    Diagnostics d;
    recipe_ = LoadRecipeText((dir / "r.yaml").string(), kRecipe, dir, &d);
    for (const auto& x : d.items()) ADD_FAILURE() << x.ToString();
    ASSERT_TRUE(recipe_);
  }
  RecordPlan Plan(boost::json::object fields) {
    record_ = Value(std::move(fields));
    RecordPlanner planner(*recipe_);
    auto p = planner.Plan(&record_, Scope{});
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? *p : RecordPlan{};
  }
  TargetPlan For(const std::string& target) {
    Scope s;
    s.record = &record_;
    for (const auto& t : recipe_->targets) {
      if (t.name == target) return RecordPlanner::ForTarget(t, s);
    }
    ADD_FAILURE() << "no target " << target;
    return {};
  }
  std::shared_ptr<const Recipe> recipe_;
  Value record_;
};

TEST_F(Planner, AKeyedRecordGoesToTheTargetsItsWhenChooses) {
  RecordPlan p = Plan({{"id", "7"}, {"Timer", "12,5"}, {"Afd", "Nord"}});
  EXPECT_EQ(p.kind, RecordPlan::Kind::kKeyed);
  EXPECT_EQ(p.key, "7");
  EXPECT_EQ(For("all").kind, TargetPlan::Kind::kTakes);
  EXPECT_EQ(For("big").kind, TargetPlan::Kind::kTakes);
  Plan({{"id", "8"}, {"Timer", "3"}, {"Afd", "Nord"}});
  EXPECT_EQ(For("big").kind, TargetPlan::Kind::kNotApplicable);
}

TEST_F(Planner, StepsFilterAndQuarantineWithTheirReasonAndTheKeyWhenThereIsOne) {
  EXPECT_EQ(Plan({{"id", "1"}, {"Timer", "2"}, {"Afd", "lukket"}}).kind,
            RecordPlan::Kind::kFiltered);
  RecordPlan q = Plan({{"id", "2"}, {"Timer", "3"}, {"Afd", "Vest"}});
  EXPECT_EQ(q.kind, RecordPlan::Kind::kQuarantined);
  EXPECT_STREQ(q.stage, "step");
  EXPECT_NE(q.reason.find("must be a department of ours"), std::string::npos) << q.reason;
  EXPECT_EQ(q.key, "2") << "for the reference a person finds it by";
}

TEST_F(Planner, AMissingKeyAndAWhenThatFailsAreQuarantinedWithTheSameWordsEverywhere) {
  RecordPlan k = Plan({{"id", ""}, {"Timer", "2"}, {"Afd", "Nord"}});
  EXPECT_EQ(k.kind, RecordPlan::Kind::kQuarantined);
  EXPECT_STREQ(k.stage, "key");
  EXPECT_EQ(k.reason, "the key is empty");
  // `when` reads Timer with a decimal comma: "1.5" is no such number.
  Plan({{"id", "3"}, {"Timer", "1.5"}, {"Afd", "Nord"}});
  TargetPlan w = For("big");
  EXPECT_EQ(w.kind, TargetPlan::Kind::kQuarantined);
  EXPECT_EQ(w.reason.rfind("evaluating `when` of big: ", 0), 0u) << w.reason;
  EXPECT_EQ(For("all").kind, TargetPlan::Kind::kTakes);
}

}  // namespace
}  // namespace keyonce
