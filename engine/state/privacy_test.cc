#include "state/privacy.h"

#include <gtest/gtest.h>

namespace keyonce {

TEST(Redactor, MasksCprWithAndWithoutDash) {
  EXPECT_EQ(Redactor::MaskCpr("cpr 010203-1234 and 0102031234."),
            "cpr xxxxxx-xxxx and xxxxxxxxxx.");
}

TEST(Redactor, LeavesOtherNumbersAlone) {
  EXPECT_EQ(Redactor::MaskCpr("line 12345678901 id 123456 date 2024-01-02"),
            "line 12345678901 id 123456 date 2024-01-02");
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
  EXPECT_EQ(Redactor::MaskCpr(ref), ref);
  EXPECT_EQ(ref.find_first_of("0123456789"), std::string::npos) << ref;
  Pseudonymizer p("k");
  for (int i = 0; i < 2000; ++i) {
    std::string r = Pseudonymizer::Reference(p.KeyHash("r", std::to_string(i)));
    ASSERT_EQ(Redactor::MaskCpr(r), r);
  }
}

}  // namespace keyonce
