#include "connectors/common/sheet/sheet_rows.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace keyonce::connectors::sheet {
namespace {

struct Out {
  std::vector<int64_t> rows;
  std::vector<std::string> json;
};

// Feeds `rows` (row number -> cells) through a shaper and collects the records.
Out Shape(RowOptions o, const std::vector<std::pair<int64_t, std::vector<SheetCell>>>& rows,
          const std::vector<int64_t>& skipped = {}) {
  RowShaper s(o);
  Out out;
  size_t i = 0;
  while (true) {
    Record r;
    int64_t row = 0;
    auto step = s.NextRecord(&r, &row);
    if (step == RowShaper::Step::kEnd) break;
    if (step == RowShaper::Step::kRecord) {
      out.rows.push_back(row);
      out.json.push_back(ToJson(r));
      continue;
    }
    if (i == rows.size()) {
      s.OfferEnd();
    } else {
      bool skip = std::find(skipped.begin(), skipped.end(), rows[i].first) != skipped.end();
      s.Offer(rows[i].first, rows[i].second, skip);
      ++i;
    }
  }
  return out;
}

std::vector<SheetCell> Cells(std::vector<std::pair<int, Value>> v) {
  std::vector<SheetCell> out;
  for (auto& [c, x] : v) out.push_back(SheetCell{c, x});
  return out;
}

TEST(RowShaper, HeaderNamesFieldsEmptyAndDuplicateNamesAreMadeUnique) {
  auto out = Shape({}, {{1, Cells({{1, Value("Navn")}, {2, Value("")}, {3, Value(" Navn ")}})},
                        {2, Cells({{1, Value("Åse")}, {3, Value(7)}, {5, Value(true)}})}});
  ASSERT_EQ(out.json.size(), 1u);
  EXPECT_EQ(out.json[0], R"({"Navn":"Åse","B":null,"Navn_2":7,"E":true})");
  EXPECT_EQ(out.rows[0], 2);
}

TEST(RowShaper, WithoutHeaderFieldsAreColumnLetters) {
  RowOptions o;
  o.header_row = 0;
  o.first_row = 1;
  auto out = Shape(o, {{1, Cells({{2, Value(1)}})}, {3, Cells({{1, Value("x")}})}});
  ASSERT_EQ(out.json.size(), 2u);
  EXPECT_EQ(out.json[0], R"({"B":1})");
  EXPECT_EQ(out.json[1], R"({"A":"x"})");
  EXPECT_EQ(out.rows[1], 3);
}

TEST(RowShaper, EmptyRowsSkippedKeptOrEndTheSheet) {
  std::vector<std::pair<int64_t, std::vector<SheetCell>>> rows = {
      {1, Cells({{1, Value("a")}})},
      {2, Cells({{1, Value(1)}})},
      {3, Cells({{1, Value("")}})},  // present but empty
      {5, Cells({{1, Value(5)}})},   // row 4 missing from the file
  };
  EXPECT_EQ(Shape({}, rows).rows, (std::vector<int64_t>{2, 5}));
  RowOptions keep;
  keep.skip_empty_rows = false;
  auto kept = Shape(keep, rows);
  EXPECT_EQ(kept.rows, (std::vector<int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(kept.json[2], R"({"a":null})");
  RowOptions stop;
  stop.stop_at_empty_row = true;
  EXPECT_EQ(Shape(stop, rows).rows, (std::vector<int64_t>{2}));
  // A skipped (hidden) row is not an empty one.
  EXPECT_EQ(Shape(stop,
                  {{1, Cells({{1, Value("a")}})},
                   {2, Cells({{1, Value(1)}})},
                   {3, Cells({{1, Value(2)}})},
                   {4, Cells({{1, Value(3)}})}},
                  {3})
                .rows,
            (std::vector<int64_t>{2, 4}));
}

TEST(RowShaper, RowsBeforeFirstRowAreIgnored) {
  RowOptions o;
  o.header_row = 2;
  o.first_row = 4;
  auto out = Shape(o, {{1, Cells({{1, Value("Title")}})},
                       {2, Cells({{1, Value("id")}})},
                       {3, Cells({{1, Value("units")}})},
                       {4, Cells({{1, Value(10)}})}});
  ASSERT_EQ(out.json.size(), 1u);
  EXPECT_EQ(out.json[0], R"({"id":10})");
}

TEST(MergeFill, TopLeftValueFillsTheRange) {
  MergeFill m({*ParseRange("A2:A4"), *ParseRange("B2:C2")});
  std::vector<SheetCell> r2 = Cells({{1, Value("Dept")}, {2, Value("x")}});
  m.Apply(2, &r2);
  ASSERT_EQ(r2.size(), 3u);
  EXPECT_EQ(r2[2].column, 3);
  EXPECT_EQ(r2[2].value, Value("x"));
  std::vector<SheetCell> r4 = Cells({{2, Value(1)}});
  m.Apply(4, &r4);
  ASSERT_EQ(r4.size(), 2u);
  EXPECT_EQ(r4[0].column, 1);
  EXPECT_EQ(r4[0].value, Value("Dept"));
  std::vector<SheetCell> r5;
  m.Apply(5, &r5);
  EXPECT_TRUE(r5.empty());
  EXPECT_FALSE(ParseRange("nonsense"));
}

}  // namespace
}  // namespace keyonce::connectors::sheet
