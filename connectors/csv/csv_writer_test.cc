// Tests of CSV field quoting, the formula guard and output encodings.
#include "connectors/csv/csv_writer.h"

#include <gtest/gtest.h>

namespace keyonce::connectors::csv {
namespace {

std::string Field(std::string_view v, char delimiter = ',') {
  std::string out;
  AppendField(v, delimiter, &out);
  return out;
}

TEST(CsvWriter, PlainFieldsAreNotQuoted) {
  EXPECT_EQ(Field("Søren"), "Søren");
  EXPECT_EQ(Field(""), "");
  EXPECT_EQ(Field("7,5", ';'), "7,5");
  EXPECT_EQ(Field("a b"), "a b");
}

TEST(CsvWriter, QuotesFieldsWithDelimiterQuoteOrLineBreak) {
  EXPECT_EQ(Field("7,5"), "\"7,5\"");
  EXPECT_EQ(Field("a;b", ';'), "\"a;b\"");
  EXPECT_EQ(Field("Firma \"Nord\""), "\"Firma \"\"Nord\"\"\"");
  EXPECT_EQ(Field("\""), "\"\"\"\"");
  EXPECT_EQ(Field("a\nb"), "\"a\nb\"");
  EXPECT_EQ(Field("a\r\nb"), "\"a\r\nb\"");
}

TEST(CsvWriter, QuotesFieldsWithLeadingOrTrailingSpaces) {
  EXPECT_EQ(Field(" a"), "\" a\"");
  EXPECT_EQ(Field("a "), "\"a \"");
  EXPECT_EQ(Field("\ta"), "\"\ta\"");
}

TEST(CsvWriter, FormulaGuardPrefixesFormulasButNotNumbers) {
  EXPECT_EQ(GuardFormula("=SUM(A1:A9)"), "'=SUM(A1:A9)");
  EXPECT_EQ(GuardFormula("+cmd|' /C calc'!A0"), "'+cmd|' /C calc'!A0");
  EXPECT_EQ(GuardFormula("-2+3"), "'-2+3");
  EXPECT_EQ(GuardFormula("@SUM(1)"), "'@SUM(1)");
  EXPECT_EQ(GuardFormula("\t=1"), "'\t=1");
  EXPECT_EQ(GuardFormula("-"), "'-");
  EXPECT_EQ(GuardFormula("-12,5"), "-12,5");
  EXPECT_EQ(GuardFormula("-1.234,50"), "-1.234,50");
  EXPECT_EQ(GuardFormula("+45 12 34 56 78"), "+45 12 34 56 78");
  EXPECT_EQ(GuardFormula("-1e5"), "-1e5");
  EXPECT_EQ(GuardFormula("Anna"), "Anna");
  EXPECT_EQ(GuardFormula(""), "");
  EXPECT_EQ(GuardFormula("a=b"), "a=b");
}

TEST(CsvWriter, Windows1252Output) {
  std::string out;
  EXPECT_FALSE(FromUtf8("æøå ÆØÅ € – ™", Encoding::kWindows1252, &out));
  EXPECT_EQ(out, "\xE6\xF8\xE5 \xC6\xD8\xC5 \x80 \x96 \x99");
}

TEST(CsvWriter, Windows1252CannotHoldEveryCharacter) {
  std::string out;
  auto bad = FromUtf8("ab\u0141cd", Encoding::kWindows1252, &out);  // Ł
  ASSERT_TRUE(bad);
  EXPECT_EQ(*bad, 2u);
  EXPECT_EQ(CodePointName("ab\u0141cd", *bad), "U+0141");
}

TEST(CsvWriter, Latin1Output) {
  std::string out;
  EXPECT_FALSE(FromUtf8("æ¤", Encoding::kLatin1, &out));
  EXPECT_EQ(out, "\xE6\xA4");
  EXPECT_TRUE(FromUtf8("€", Encoding::kLatin1, &out));
}

TEST(CsvWriter, AppendRowJoinsQuotesAndEnds) {
  std::string out;
  CsvWriteOptions opt;
  opt.delimiter = ';';
  ASSERT_TRUE(AppendRow({"a", "b", "c"}, {"1", "x;y", "Ø"}, opt, &out).ok());
  EXPECT_EQ(out, "1;\"x;y\";Ø\r\n");
  opt.line_ending = "\n";
  opt.encoding = Encoding::kWindows1252;
  out.clear();
  ASSERT_TRUE(AppendRow({"a", "b", "c"}, {"1", "x;y", "Ø"}, opt, &out).ok());
  EXPECT_EQ(out, "1;\"x;y\";\xD8\n");
}

TEST(CsvWriter, AppendRowNamesTheColumnThatCannotBeEncoded) {
  std::string out = "kept";
  CsvWriteOptions opt;
  opt.encoding = Encoding::kWindows1252;
  Status st = AppendRow({"id", "navn"}, {"1", "Łukasz"}, opt, &out);
  EXPECT_EQ(st.code(), Status::Code::kPermanent);
  EXPECT_EQ(st.message(), "column 'navn': character U+0141 cannot be written in windows-1252");
  EXPECT_EQ(out, "kept");
}

}  // namespace
}  // namespace keyonce::connectors::csv
