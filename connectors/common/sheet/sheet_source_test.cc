#include "connectors/common/sheet/sheet_source.h"

#include <gtest/gtest.h>

namespace keyonce::connectors::sheet {
namespace {

const std::vector<SheetName> kSheets = {
    {"Skjult", true}, {"Ark1", false}, {"2", false}, {"Rapport 2024", false}};

TEST(ChooseSheet, FirstVisibleByDefaultNameBeforePositionHiddenOnlyByName) {
  EXPECT_EQ(*ChooseSheet("a.ods", kSheets, ""), 1u);
  EXPECT_EQ(*ChooseSheet("a.ods", kSheets, "Skjult"), 0u);
  // "2" is a sheet's name: the name wins over the position.
  EXPECT_EQ(*ChooseSheet("a.ods", kSheets, "2"), 2u);
  // Positions count visible sheets only.
  EXPECT_EQ(*ChooseSheet("a.ods", kSheets, "3"), 3u);
  auto none = ChooseSheet("a.ods", kSheets, "4");
  EXPECT_EQ(none.status().message(), "a.ods has 3 visible sheet(s); there is no sheet 4");
  auto typo = ChooseSheet("a.ods", kSheets, "Ark2");
  EXPECT_EQ(typo.status().message(),
            "a.ods has no sheet named 'Ark2'; its sheets: 'Ark1', '2', 'Rapport 2024'; did you "
            "mean 'Ark1'?");
  auto hidden = ChooseSheet("a.ods", {{"Skjult", true}}, "");
  EXPECT_EQ(hidden.status().message(), "a.ods: every sheet is hidden; name the one to read");
}

TEST(SheetRefName, QuotedWhenNotPlain) {
  EXPECT_EQ(SheetRefName("Ark1"), "Ark1");
  EXPECT_EQ(SheetRefName("Fravær"), "Fravær");
  EXPECT_EQ(SheetRefName("Ark 1"), "'Ark 1'");
  EXPECT_EQ(SheetRefName("Bo's"), "'Bo''s'");
}

}  // namespace
}  // namespace keyonce::connectors::sheet
