#include "connectors/common/sheet/cells.h"

#include <gtest/gtest.h>

namespace keyonce::connectors::sheet {
namespace {

TEST(SheetCells, ColumnLettersRoundTrip) {
  EXPECT_EQ(ColumnLetters(1), "A");
  EXPECT_EQ(ColumnLetters(26), "Z");
  EXPECT_EQ(ColumnLetters(27), "AA");
  EXPECT_EQ(ColumnLetters(16384), "XFD");
  for (int c : {1, 26, 27, 52, 53, 702, 703, 16384}) {
    auto ref = ParseCellRef(ColumnLetters(c) + "7");
    ASSERT_TRUE(ref) << c;
    EXPECT_EQ(ref->column, c);
    EXPECT_EQ(ref->row, 7);
  }
  EXPECT_EQ(ParseCellRef("$B$17")->column, 2);
  EXPECT_FALSE(ParseCellRef("17"));
  EXPECT_FALSE(ParseCellRef("B0"));
  EXPECT_FALSE(ParseCellRef("XFE1"));
  EXPECT_EQ(CellName(2, 17), "B17");
}

TEST(SheetCells, ClassifiesFormatCodes) {
  EXPECT_EQ(ClassifyFormatCode("General"), DateKind::kNone);
  EXPECT_EQ(ClassifyFormatCode("0.00"), DateKind::kNone);
  EXPECT_EQ(ClassifyFormatCode("0.00E+00"), DateKind::kNone);
  EXPECT_EQ(ClassifyFormatCode("[Red]0.0"), DateKind::kNone);
  EXPECT_EQ(ClassifyFormatCode("\"Dag \"0"), DateKind::kNone);  // d inside quotes
  EXPECT_EQ(ClassifyFormatCode("0\\d"), DateKind::kNone);       // escaped d
  EXPECT_EQ(ClassifyFormatCode("#,##0 \"kr.\";[Red]-#,##0"), DateKind::kNone);
  EXPECT_EQ(ClassifyFormatCode("dd-mm-yyyy"), DateKind::kDate);
  EXPECT_EQ(ClassifyFormatCode("[$-406]d. mmmm yyyy"), DateKind::kDate);
  EXPECT_EQ(ClassifyFormatCode("DD/MM/YYYY"), DateKind::kDate);
  EXPECT_EQ(ClassifyFormatCode("mmm-yy"), DateKind::kDate);
  EXPECT_EQ(ClassifyFormatCode("dd-mm-yyyy hh:mm"), DateKind::kDateTime);
  EXPECT_EQ(ClassifyFormatCode("h:mm AM/PM"), DateKind::kTime);
  EXPECT_EQ(ClassifyFormatCode("hh:mm:ss"), DateKind::kTime);
  EXPECT_EQ(ClassifyFormatCode("mm:ss"), DateKind::kTime);  // m beside s: minutes
  EXPECT_EQ(ClassifyFormatCode("mm"), DateKind::kDate);     // m alone: the month
  EXPECT_EQ(ClassifyFormatCode("[h]:mm:ss"), DateKind::kElapsedTime);
  EXPECT_EQ(ClassifyBuiltinFormat(14), DateKind::kDate);
  EXPECT_EQ(ClassifyBuiltinFormat(22), DateKind::kDateTime);
  EXPECT_EQ(ClassifyBuiltinFormat(20), DateKind::kTime);
  EXPECT_EQ(ClassifyBuiltinFormat(46), DateKind::kElapsedTime);
  EXPECT_EQ(ClassifyBuiltinFormat(2), DateKind::kNone);
  EXPECT_EQ(ClassifyBuiltinFormat(49), DateKind::kNone);  // "@", text
}

TEST(SheetCells, SerialsIn1900SystemKeepTheLeapYearBug) {
  auto d = [](double s) { return *SerialToIso(s, DateKind::kDate, DateSystem::k1900); };
  EXPECT_EQ(d(1), "1900-01-01");
  EXPECT_EQ(d(59), "1900-02-28");
  EXPECT_EQ(d(60), "1900-02-29");
  EXPECT_EQ(d(61), "1900-03-01");
  EXPECT_EQ(d(45352), "2024-03-01");
  EXPECT_EQ(*SerialToIso(45352.3541666667, DateKind::kDateTime, DateSystem::k1900),
            "2024-03-01T08:30:00");
  EXPECT_EQ(*SerialToIso(0.3541666667, DateKind::kTime, DateSystem::k1900), "08:30:00");
  EXPECT_EQ(*SerialToIso(1.5104166667, DateKind::kElapsedTime, DateSystem::k1900), "36:15:00");
  EXPECT_EQ(*SerialToIso(0.99999999, DateKind::kDateTime, DateSystem::k1900),
            "1900-01-01T00:00:00");  // rounds up into the next day
  EXPECT_FALSE(SerialToIso(-1, DateKind::kDate, DateSystem::k1900));
}

TEST(SheetCells, SerialsIn1904System) {
  EXPECT_EQ(*SerialToIso(0, DateKind::kDate, DateSystem::k1904), "1904-01-01");
  EXPECT_EQ(*SerialToIso(43890, DateKind::kDate, DateSystem::k1904), "2024-03-01");
}

TEST(SheetCells, NumbersStayIntegersWhenIntegral) {
  EXPECT_TRUE(ParseNumber("42")->is_int64());
  EXPECT_EQ(ParseNumber("-3")->as_int64(), -3);
  EXPECT_EQ(ParseNumber("1E+2")->as_int64(), 100);
  EXPECT_EQ(ParseNumber("7.0")->as_int64(), 7);
  EXPECT_DOUBLE_EQ(ParseNumber("2.5")->as_double(), 2.5);
  EXPECT_TRUE(ParseNumber("1E+300")->is_double());
  EXPECT_FALSE(ParseNumber("abc"));
  EXPECT_FALSE(ParseNumber(""));
}

}  // namespace
}  // namespace keyonce::connectors::sheet
