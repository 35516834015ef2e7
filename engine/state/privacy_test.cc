#include "state/privacy.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace keyonce {

// Compares without printing the input or what came out: a failing test must
// not print a CPR number either. Says where the first difference is.
::testing::AssertionResult MasksTo(const std::string& input, const std::string& expected) {
  const std::string got = MaskCpr(input);
  if (got == expected) return ::testing::AssertionSuccess();
  size_t at = 0;
  while (at < got.size() && at < expected.size() && got[at] == expected[at]) ++at;
  return ::testing::AssertionFailure()
         << "masked differently from " << expected << " at byte " << at;
}

TEST(Redactor, MasksCprWithAndWithoutDash) {
  EXPECT_EQ(MaskCpr("cpr 010203-1234 and 0102031234."), "cpr xxxxxx-xxxx and xxxxxxxxxx.");
}

// Every spelling a person or a system writes: the digits go, the separators
// stay, and the text around is untouched.
TEST(Redactor, MasksEverySpellingOfACprNumber) {
  const std::string kNbsp = "\xC2\xA0", kEnDash = "\xE2\x80\x93", kNbHyphen = "\xE2\x80\x91",
                    kMinus = "\xE2\x88\x92";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"010185-1233", "xxxxxx-xxxx"},
      {"0101851233", "xxxxxxxxxx"},
      {"010185 1233", "xxxxxx xxxx"},
      {"010185.1233", "xxxxxx.xxxx"},
      {"010185/1233", "xxxxxx/xxxx"},
      {"010185 - 1233", "xxxxxx - xxxx"},
      {"010185  1233", "xxxxxx  xxxx"},
      {"010185- 1233", "xxxxxx- xxxx"},
      {"01.01.85-1233", "xx.xx.xx-xxxx"},
      {"01.01.85 1233", "xx.xx.xx xxxx"},
      {"01.01.85.1233", "xx.xx.xx.xxxx"},
      {"01-01-85-1233", "xx-xx-xx-xxxx"},
      {"01-01-85 1233", "xx-xx-xx xxxx"},
      {"010185" + kNbsp + "1233", "xxxxxx" + kNbsp + "xxxx"},
      {"010185" + kEnDash + "1233", "xxxxxx" + kEnDash + "xxxx"},
      {"010185" + kNbHyphen + "1233", "xxxxxx" + kNbHyphen + "xxxx"},
      {"010185" + kMinus + "1233", "xxxxxx" + kMinus + "xxxx"},
      {"010185 \xE2\x80\x93 1233", "xxxxxx \xE2\x80\x93 xxxx"},
      {"010185\\u00a01233", "xxxxxx\\u00a0xxxx"},  // JSON
      {"010185\\u20131233", "xxxxxx\\u2013xxxx"},
      {"010185&nbsp;1233", "xxxxxx&nbsp;xxxx"},  // HTML
      {"010185&#160;1233", "xxxxxx&#160;xxxx"},
      {"010185&#xA0;1233", "xxxxxx&#xA0;xxxx"},  // XML
      {"010185&ndash;1233", "xxxxxx&ndash;xxxx"},
  };
  // Where numbers stand in messages, replies and file names.
  const std::vector<std::pair<std::string, std::string>> kAround = {{"", ""},
                                                                    {"CPR: ", "."},
                                                                    {"(", ")"},
                                                                    {"\"", "\","},
                                                                    {"person ", " is not known"},
                                                                    {"<Cpr>", "</Cpr>"},
                                                                    {"cpr=", "&x=1"},
                                                                    {"\n", "\n"},
                                                                    {"_", "_"},
                                                                    {"-", "-"}};
  for (const auto& [cpr, masked] : cases) {
    for (const auto& [before, after] : kAround) {
      EXPECT_TRUE(MasksTo(before + cpr + after, before + masked + after))
          << "between '" << before << "' and '" << after << "'";
    }
  }
}

// The first six digits decide: a possible birth date in any century.
TEST(Redactor, MasksEveryPossibleBirthDateAndSubstituteNumbers) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"290201-1247", "xxxxxx-xxxx"},  // 29 February: the century is unknown
      {"311299 1357", "xxxxxx xxxx"},
      {"300485.4321", "xxxxxx.xxxx"},
      // Substitute numbers (erstatningspersonnumre): the day raised by 60.
      {"670185-1233", "xxxxxx-xxxx"},
      {"91.12.85-1233", "xx.xx.xx-xxxx"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_TRUE(MasksTo(cases[i].first, cases[i].second)) << "case " << i;
  }
}

TEST(Redactor, LeavesNumbersThatCannotBeCprNumbersAlone) {
  const std::vector<std::string> texts = {
      "made a text of 1048576000 bytes",  // month 48
      "order 3213991234",                 // day 32
      "4000000000 rows",                  // day 40
      "0001851233",                       // day 0
      "0100851233",                       // month 0
      "3002851233 and 300285-1233",       // 30 February
      "310485 1233",                      // 31 April
      "9201851233",                       // day 92: no substitute either
      "timestamp 1712345678.123",         // a decimal number
      "line 12345678901 id 123456 date 2024-01-02",
      "a1234567890 x0101851233 0101851233y 010185-1233z",    // glued to letters
      "sha 3f0101851233ab9c and 010185-12334",               // inside a hex id; five digits
      "01.01.1985-1233 and 01.01.851233 and 01.01-85-1233",  // not a CPR spelling
      "01:01:85-1233 and 010185--1233 and 010185    1233 and 010185\n1233",
      "ref-bcdfghjkmnpq",
  };
  for (size_t i = 0; i < texts.size(); ++i) {
    // Some hold CPR digits on purpose (glued to letters): compared, never printed.
    EXPECT_TRUE(MaskCpr(texts[i]) == texts[i]) << "case " << i << " was changed";
  }
}

TEST(Redactor, MasksEveryNumberInALongText) {
  std::string text, masked;
  for (int i = 0; i < 1000; ++i) {
    text += "line " + std::to_string(i) + ": 01.01.85-1233, 0101851233;";
    masked += "line " + std::to_string(i) + ": xx.xx.xx-xxxx, xxxxxxxxxx;";
  }
  EXPECT_TRUE(MasksTo(text, masked));
  EXPECT_EQ(MaskCpr(""), "");
  EXPECT_EQ(MaskCpr("010185-123"), "010185-123");  // cut short: no serial number
}

TEST(Redactor, RemovesSecretValues) {
  Redactor r;
  r.AddSecret("s3cr3t-token");
  EXPECT_EQ(r.Apply("Authorization: Bearer s3cr3t-token"), "Authorization: Bearer [secret]");
}

TEST(Pseudonymizer, StableAndKeyed) {
  Pseudonymizer a("key-one"), b("key-one"), c("key-two");
  auto ha = a.KeyHash("recipe", "0102031234");
  EXPECT_EQ(ha, b.KeyHash("recipe", "0102031234"));
  EXPECT_NE(ha, c.KeyHash("recipe", "0102031234"));
  EXPECT_NE(ha, a.KeyHash("other", "0102031234"));
  EXPECT_EQ(Pseudonymizer::Reference(ha).size(), 16u);
  EXPECT_EQ(Pseudonymizer::Reference(ha).find("0102031234"), std::string::npos);
}

// A reference is what people use to find a record again, so it must survive
// the redactor unchanged and never look like a CPR number itself.
TEST(Pseudonymizer, ReferencesNeverLookLikeCprNumbers) {
  Digest all_digits{};
  for (size_t i = 0; i < all_digits.size(); ++i) all_digits[i] = 0x12;  // hex "1212..."
  std::string ref = Pseudonymizer::Reference(all_digits);
  EXPECT_EQ(MaskCpr(ref), ref);
  EXPECT_EQ(ref.find_first_of("0123456789"), std::string::npos) << ref;
  Pseudonymizer p("k");
  for (int i = 0; i < 2000; ++i) {
    std::string r = Pseudonymizer::Reference(p.KeyHash("r", std::to_string(i)));
    ASSERT_EQ(MaskCpr(r), r);
  }
}

}  // namespace keyonce
