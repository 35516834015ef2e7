#include "connectors/smtp/mail_text.h"

#include <gtest/gtest.h>

namespace keyonce::connectors::smtp {
namespace {

TEST(MailText, ParsesAddressForms) {
  auto list = ParseAddressList(
      "a@x.dk, Anne Hansen <anne@x.dk>; \"Hansen, Bo\" <bo@x.dk>,Søren Ørsted <s@x.dk>", "to");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 4u);
  EXPECT_EQ((*list)[0].address, "a@x.dk");
  EXPECT_EQ((*list)[0].name, "");
  EXPECT_EQ((*list)[1].name, "Anne Hansen");
  EXPECT_EQ((*list)[2].name, "Hansen, Bo");
  EXPECT_EQ((*list)[2].address, "bo@x.dk");
  EXPECT_EQ((*list)[3].name, "Søren Ørsted");
  EXPECT_TRUE(ParseAddressList("  ", "cc")->empty());
}

TEST(MailText, RefusesBadAddressesWithoutNamingThem) {
  for (const char* bad :
       {"not-an-address", "a@", "@x.dk", "a b@x.dk", "x@y.dk, ", "A <a@x.dk", "a@x..dk"}) {
    auto r = ParseAddressList(bad, "to");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Status::Code::kPermanent);
    EXPECT_NE(r.status().message().find("`to`"), std::string::npos);
    if (std::string(bad) != "@x.dk") {
      EXPECT_EQ(r.status().message().find(bad), std::string::npos) << r.status().message();
    }
  }
}

TEST(MailText, RefusesLineBreaksInAddresses) {
  auto r = ParseAddressList("a@x.dk\r\nBcc: victim@y.dk", "to");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kPermanent);
  EXPECT_NE(r.status().message().find("line break"), std::string::npos);
  EXPECT_TRUE(HasControlCharacter("a\nb"));
  EXPECT_TRUE(HasControlCharacter("a\rb"));
  EXPECT_FALSE(HasControlCharacter("tab\tis fine, æøå too"));
}

TEST(MailText, EncodesNonAsciiAsRfc2047Words) {
  EXPECT_EQ(EncodeHeaderText("Plain subject"), "Plain subject");
  // "Sygefravær" in UTF-8, base64.
  EXPECT_EQ(EncodeHeaderText("Sygefravær"), "=?UTF-8?B?U3lnZWZyYXbDpnI=?=");
  // Long text: words of at most 75 characters, folded, never splitting a
  // UTF-8 character (ø is two bytes).
  std::string longtext;
  for (int i = 0; i < 40; ++i) longtext += "øl ";
  std::string enc = EncodeHeaderText(longtext);
  size_t start = 0;
  int words = 0;
  while (start < enc.size()) {
    size_t end = enc.find("\r\n ", start);
    std::string word =
        enc.substr(start, end == std::string::npos ? std::string::npos : end - start);
    EXPECT_LE(word.size(), 75u);
    EXPECT_EQ(word.rfind("=?UTF-8?B?", 0), 0u);
    ++words;
    start = end == std::string::npos ? enc.size() : end + 3;
  }
  EXPECT_GT(words, 1);
  // Text that looks like an encoded word is encoded, so it is read literally.
  EXPECT_NE(EncodeHeaderText("=?x?="), "=?x?=");
}

TEST(MailText, FormatsAddresses) {
  EXPECT_EQ(FormatAddress({"", "a@x.dk"}), "a@x.dk");
  EXPECT_EQ(FormatAddress({"Anne", "a@x.dk"}), "Anne <a@x.dk>");
  EXPECT_EQ(FormatAddress({"Hansen, Bo", "b@x.dk"}), "\"Hansen, Bo\" <b@x.dk>");
  EXPECT_EQ(FormatAddress({"Løn", "l@x.dk"}), "=?UTF-8?B?TMO4bg==?= <l@x.dk>");
}

TEST(MailText, DateAndLineEndings) {
  EXPECT_EQ(MailDate(0), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(ToCrlf("a\nb\r\nc\rd"), "a\r\nb\r\nc\r\nd");
  EXPECT_EQ(AttachmentDisposition("a \"b\".csv"),
            "Content-Disposition: attachment; filename=\"a \\\"b\\\".csv\"");
  EXPECT_EQ(AttachmentDisposition("æ x.csv"),
            "Content-Disposition: attachment; filename*=UTF-8''%C3%A6%20x.csv; "
            "filename=\"=?UTF-8?B?w6YgeC5jc3Y=?=\"");
  EXPECT_EQ(GuessContentType("afvist.CSV"), "text/csv");
  EXPECT_EQ(GuessContentType("x.pdf"), "application/pdf");
  EXPECT_EQ(GuessContentType("noext"), "application/octet-stream");
}

}  // namespace
}  // namespace keyonce::connectors::smtp
