// Tests of connectors/common/encoding.cc.
#include "connectors/common/encoding.h"

#include <gtest/gtest.h>

namespace keyonce::connectors {
namespace {

std::string Convert(std::string_view in, Encoding enc) {
  std::string out;
  EXPECT_FALSE(ToUtf8(in, enc, &out).has_value());
  return out;
}

TEST(Encoding, ParsesNamesCaseInsensitively) {
  EXPECT_EQ(ParseEncoding("UTF-8"), Encoding::kUtf8);
  EXPECT_EQ(ParseEncoding("utf-8"), Encoding::kUtf8);
  EXPECT_EQ(ParseEncoding("Windows-1252"), Encoding::kWindows1252);
  EXPECT_EQ(ParseEncoding("CP1252"), Encoding::kWindows1252);
  EXPECT_EQ(ParseEncoding("ISO-8859-1"), Encoding::kLatin1);
  EXPECT_EQ(ParseEncoding("Latin1"), Encoding::kLatin1);
  EXPECT_FALSE(ParseEncoding("ebcdic").has_value());
  EXPECT_FALSE(ParseEncoding("").has_value());
}

TEST(Encoding, Windows1252DanishLettersAndEuro) {
  EXPECT_EQ(Convert("\xE6\xF8\xE5 \xC6\xD8\xC5 \x80", Encoding::kWindows1252),
            "æøå ÆØÅ €");
}

TEST(Encoding, Windows1252TypographicRange) {
  EXPECT_EQ(Convert("\x96\x97\x84\x93\x94\x99\x8A\x9F", Encoding::kWindows1252),
            "\u2013\u2014\u201E\u201C\u201D\u2122\u0160\u0178");
}

TEST(Encoding, Windows1252UndefinedBytesBecomeC1Controls) {
  EXPECT_EQ(Convert("\x81\x8D\x8F\x90\x9D", Encoding::kWindows1252),
            "\u0081\u008D\u008F\u0090\u009D");
}

TEST(Encoding, Latin1MapsEveryByteToItsCodePoint) {
  EXPECT_EQ(Convert("\x80\xA4\xE6\xFF", Encoding::kLatin1), "\u0080\u00A4\u00E6\u00FF");
}

TEST(Encoding, AsciiPassesThroughAndAppends) {
  std::string out = "x";
  EXPECT_FALSE(ToUtf8("plain ascii text, longer than eight bytes", Encoding::kWindows1252, &out));
  EXPECT_EQ(out, "xplain ascii text, longer than eight bytes");
}

TEST(Encoding, Utf8ValidIsCopied) {
  std::string out;
  EXPECT_FALSE(ToUtf8("Søren 😀 €", Encoding::kUtf8, &out));
  EXPECT_EQ(out, "Søren 😀 €");
}

TEST(Encoding, Utf8InvalidReportsOffsetOfFirstBadByte) {
  std::string out;
  EXPECT_EQ(ToUtf8("S\xF8ren", Encoding::kUtf8, &out), 1u);          // latin-1 ø
  EXPECT_EQ(ToUtf8("abcdefghij\xC3(", Encoding::kUtf8, &out), 10u);  // missing continuation
  EXPECT_EQ(ToUtf8("ab\xC3", Encoding::kUtf8, &out), 2u);            // cut off at the end
  EXPECT_EQ(ToUtf8("\x80", Encoding::kUtf8, &out), 0u);              // lone continuation
  EXPECT_EQ(ToUtf8("\xFF", Encoding::kUtf8, &out), 0u);
}

TEST(Encoding, Utf8RejectsOverlongsAndSurrogates) {
  std::string out;
  EXPECT_TRUE(ToUtf8("\xC0\xAF", Encoding::kUtf8, &out));          // overlong '/'
  EXPECT_TRUE(ToUtf8("\xC1\xBF", Encoding::kUtf8, &out));
  EXPECT_TRUE(ToUtf8("\xE0\x80\xAF", Encoding::kUtf8, &out));      // overlong 3-byte
  EXPECT_TRUE(ToUtf8("\xF0\x80\x80\xAF", Encoding::kUtf8, &out));  // overlong 4-byte
  EXPECT_TRUE(ToUtf8("\xED\xA0\x80", Encoding::kUtf8, &out));      // U+D800
  EXPECT_TRUE(ToUtf8("\xED\xBF\xBF", Encoding::kUtf8, &out));      // U+DFFF
  EXPECT_TRUE(ToUtf8("\xF4\x90\x80\x80", Encoding::kUtf8, &out));  // above U+10FFFF
  EXPECT_EQ(out, "");
  EXPECT_FALSE(ToUtf8("\xED\x9F\xBF", Encoding::kUtf8, &out));     // U+D7FF is fine
  EXPECT_FALSE(ToUtf8("\xF4\x8F\xBF\xBF", Encoding::kUtf8, &out)); // U+10FFFF is fine
}

TEST(Encoding, BomLength) {
  EXPECT_EQ(Utf8BomLength("\xEF\xBB\xBFid"), 3u);
  EXPECT_EQ(Utf8BomLength("\xEF\xBB"), 0u);
  EXPECT_EQ(Utf8BomLength("id"), 0u);
}

TEST(Encoding, LooksLikeUtf8IgnoresSequenceCutAtTheEnd) {
  EXPECT_TRUE(LooksLikeUtf8("Søren"));
  EXPECT_TRUE(LooksLikeUtf8("S\xC3"));          // first byte of ø, then the buffer ends
  EXPECT_TRUE(LooksLikeUtf8("x\xF0\x9F\x98"));  // 3 of 4 bytes
  EXPECT_FALSE(LooksLikeUtf8("S\xF8ren"));
  EXPECT_FALSE(LooksLikeUtf8("S\xC3x"));
  EXPECT_FALSE(LooksLikeUtf8("\xE0\x80"));  // cut, but already overlong
}

}  // namespace
}  // namespace keyonce::connectors
