#include "service/request_util.h"

#include <gtest/gtest.h>

#include <boost/json/value.hpp>

namespace keyonce::service {
namespace {

TEST(ServiceRequest, PercentDecodeTurnsEscapesAndPlusIntoBytes) {
  EXPECT_EQ(PercentDecode("a%20b+c"), "a b c");
  EXPECT_EQ(PercentDecode("%C3%A6%c3%b8"), "\xC3\xA6\xC3\xB8");
  EXPECT_EQ(PercentDecode("100%"), "100%");    // no digits after '%'
  EXPECT_EQ(PercentDecode("%4"), "%4");        // one digit only
  EXPECT_EQ(PercentDecode("%zz%41"), "%zzA");  // not hex, then hex
  EXPECT_EQ(PercentDecode("%00"), std::string(1, '\0'));
  EXPECT_EQ(PercentDecode(""), "");
}

TEST(ServiceRequest, ParseFormDecodesKeysAndValuesLastOneWins) {
  auto f = ParseForm("a=1&b=x%20y&c&&d=&a=2&e=f=g");
  EXPECT_EQ(f.size(), 5u);
  EXPECT_EQ(f["a"], "2");  // the last one wins
  EXPECT_EQ(f["b"], "x y");
  EXPECT_EQ(f["c"], "");
  EXPECT_EQ(f["d"], "");
  EXPECT_EQ(f["e"], "f=g");
  EXPECT_TRUE(ParseForm("").empty());
  EXPECT_TRUE(ParseForm("&&&").empty());
  EXPECT_EQ(ParseForm("na%6De=K%C3%B8ge")["name"], "K\xC3\xB8ge");
}

TEST(ServiceRequest, SplitPathDropsEmptySegmentsAndDecodes) {
  EXPECT_EQ(SplitPath("/api/runs/7"), (std::vector<std::string>{"api", "runs", "7"}));
  EXPECT_EQ(SplitPath("//api///recipes/sick%20leave/"),
            (std::vector<std::string>{"api", "recipes", "sick leave"}));
  EXPECT_TRUE(SplitPath("/").empty());
  EXPECT_TRUE(SplitPath("").empty());
  EXPECT_EQ(SplitPath("a%2Fb"), (std::vector<std::string>{"a/b"}));  // decoded after splitting
}

TEST(ServiceRequest, ToIdAcceptsOnlyUpTo18Digits) {
  EXPECT_EQ(ToId("0"), 0);
  EXPECT_EQ(ToId("42"), 42);
  EXPECT_EQ(ToId("999999999999999999"), 999999999999999999LL);  // 18 digits
  EXPECT_EQ(ToId("1000000000000000000"), std::nullopt);         // 19 digits
  EXPECT_EQ(ToId(""), std::nullopt);
  EXPECT_EQ(ToId("-1"), std::nullopt);
  EXPECT_EQ(ToId("+1"), std::nullopt);
  EXPECT_EQ(ToId("1a"), std::nullopt);
  EXPECT_EQ(ToId(" 1"), std::nullopt);
}

TEST(ServiceRequest, CookieValueMatchesTheWholeName) {
  EXPECT_EQ(CookieValue("keyonce_session=abc", "keyonce_session"), "abc");
  EXPECT_EQ(CookieValue("theme=dark;  keyonce_session=abc; x=y", "keyonce_session"), "abc");
  EXPECT_EQ(CookieValue("keyonce_session_old=1; keyonce_session=2", "keyonce_session"), "2");
  EXPECT_EQ(CookieValue("keyonce_session", "keyonce_session"), "");
  EXPECT_EQ(CookieValue("keyonce_session=", "keyonce_session"), "");
  EXPECT_EQ(CookieValue("", "keyonce_session"), "");
  EXPECT_EQ(CookieValue(";;;", "keyonce_session"), "");
}

TEST(ServiceRequest, ParseOrFallsBackOnEmptyOrInvalidJson) {
  EXPECT_EQ(ParseOr("{\"a\":1}", boost::json::object{}).as_object().at("a").as_int64(), 1);
  EXPECT_TRUE(ParseOr("", boost::json::array{}).is_array());
  EXPECT_TRUE(ParseOr("{not json", boost::json::array{}).is_array());
  EXPECT_TRUE(ParseOr("[1,2", boost::json::object{}).is_object());
  EXPECT_TRUE(ParseOr("null", boost::json::object{}).is_null());
}

TEST(ServiceRequest, FieldOfNamesOnlyADeclaredParameter) {
  EXPECT_EQ(FieldOf("parameter 'from' must be a date"), "from");
  EXPECT_EQ(FieldOf("parameter 'from' (Fra) is required"), "from");
  EXPECT_EQ(FieldOf("unknown parameter; did you mean 'y'?"), "");
  EXPECT_EQ(FieldOf("unknown parameter 'x' (did you mean 'y'?)"), "");
  EXPECT_EQ(FieldOf("no quotes here"), "");
  EXPECT_EQ(FieldOf("an unclosed 'quote"), "");
  EXPECT_EQ(FieldOf("''"), "");
}

}  // namespace
}  // namespace keyonce::service
