// Mails as real mail programs send them, read by ParseMail (vmime).
#include "connectors/imap/mail_message.h"

#include <gtest/gtest.h>

namespace keyonce::connectors::imap {
namespace {

TEST(ParseMail, Latin1QuotedPrintableBodyAndEncodedWordsBecomeUtf8) {
  const std::string raw =
      "From: =?ISO-8859-1?Q?S=F8ren_J=F8rgensen?= <soren@example.dk>\r\n"
      "To: Ansøgninger <ansoegninger@kommune.dk>, kopi@kommune.dk\r\n"
      "Cc: =?UTF-8?B?w4VzZQ==?= <aase@example.dk>\r\n"
      "Subject: =?UTF-8?B?QW5zw7hnbmluZyBvbSBiw7hybmVoYXZlcGxhZHM=?=\r\n"
      "Date: Mon, 7 Dec 2026 10:00:00 +0100\r\n"
      "Message-ID: <abc.123@example.dk>\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: text/plain; charset=ISO-8859-1\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n"
      "\r\n"
      "K=E6re kommune,\r\n"
      "her er min ans=F8gning.\r\n";
  auto m = ParseMail(raw);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->from, "soren@example.dk");
  EXPECT_EQ(m->from_name, "Søren Jørgensen");
  EXPECT_EQ(m->to, (std::vector<std::string>{"ansoegninger@kommune.dk", "kopi@kommune.dk"}));
  EXPECT_EQ(m->cc, (std::vector<std::string>{"aase@example.dk"}));
  EXPECT_EQ(m->subject, "Ansøgning om børnehaveplads");
  EXPECT_EQ(m->date, "2026-12-07T10:00:00+01:00");
  EXPECT_EQ(m->message_id, "abc.123@example.dk");
  EXPECT_EQ(m->text, "Kære kommune,\nher er min ansøgning.\n");
  EXPECT_TRUE(m->html.empty());
  EXPECT_TRUE(m->attachments.empty());
}

TEST(ParseMail, AttachmentsKeepTheirBytesTypeAndRfc2231Name) {
  const std::string raw =
      "From: borger@example.dk\r\n"
      "Subject: Skema\r\n"
      "MIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
      "\r\n"
      "--b1\r\n"
      "Content-Type: multipart/alternative; boundary=\"b2\"\r\n"
      "\r\n"
      "--b2\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      "Content-Transfer-Encoding: base64\r\n"
      "\r\n"
      "U2UgdmVkaMOmZnRldCBza2VtYS4=\r\n"
      "--b2\r\n"
      "Content-Type: text/html; charset=utf-8\r\n"
      "\r\n"
      "<p>Se vedh&aelig;ftet skema.</p>\r\n"
      "--b2--\r\n"
      "--b1\r\n"
      "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n"
      "Content-Disposition: attachment; filename*=UTF-8''ans%C3%B8gning%20uge%2049.xlsx\r\n"
      "Content-Transfer-Encoding: base64\r\n"
      "\r\n"
      "UEsDBBQAAAAIAAAAIQD/AAEC\r\n"
      "--b1--\r\n";
  auto m = ParseMail(raw);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->text, "Se vedhæftet skema.");
  EXPECT_EQ(m->html, "<p>Se vedh&aelig;ftet skema.</p>");
  ASSERT_EQ(m->attachments.size(), 1u);
  EXPECT_EQ(m->attachments[0].name, "ansøgning uge 49.xlsx");
  EXPECT_EQ(m->attachments[0].content_type,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet");
  EXPECT_EQ(m->attachments[0].data,
            std::string("PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00!\x00\xff\x00\x01\x02", 18));
  EXPECT_TRUE(m->date.empty()) << "no Date header: no date";
}

TEST(ParseMail, AnHtmlOnlyMailInWindows1252GivesItsText) {
  const std::string raw =
      "From: sag@example.dk\r\n"
      "Subject: =?windows-1252?Q?Afg=F8relse?=\r\n"
      "Content-Type: text/html; charset=windows-1252\r\n"
      "Content-Transfer-Encoding: quoted-printable\r\n"
      "\r\n"
      "<html><head><title>x</title><style>p{color:red}</style></head><body>"
      "<p>K=E6re borger</p><p>Bel=F8b:&nbsp;1.234,50&nbsp;kr.<br>Venlig hilsen</p>"
      "<ul><li>=C6ble</li><li>&#248;l &amp; &#x00E5;l</li></ul></body></html>\r\n";
  auto m = ParseMail(raw);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->subject, "Afgørelse");
  EXPECT_EQ(m->text, "Kære borger\n\nBeløb: 1.234,50 kr.\nVenlig hilsen\n\n- Æble\n- øl & ål");
}

TEST(ParseMail, BrokenInputNeverCrashes) {
  for (const std::string& raw :
       {std::string(), std::string("\r\n\r\n"),
        std::string("From: <<<@@@>>>\r\nSubject: =?x?Q?\r\n"),
        std::string("Content-Type: multipart/mixed; boundary=\"z\"\r\n\r\n--z\r\n--z--"),
        std::string("\0\xff\xfe garbage \x80\x81", 12)}) {
    auto m = ParseMail(raw);
    EXPECT_TRUE(m.ok() || m.status().code() == Status::Code::kInvalid);
  }
}

TEST(HtmlToText, BlocksBreaksAndReferences) {
  EXPECT_EQ(HtmlToText("<div>a<br/>b</div><div>c</div>"), "a\nb\nc");
  EXPECT_EQ(HtmlToText("x &lt;y&gt; &unknown; &#65;"), "x <y> &unknown; A");
  EXPECT_EQ(HtmlToText("<script>alert(1)</script>tekst   med\n\nmellemrum"), "tekst med mellemrum");
  EXPECT_EQ(HtmlToText("<table><tr><td>Navn</td><td>Beløb</td></tr><tr><td>Åse</td><td>10</td>"
                       "</tr></table>"),
            "Navn Beløb\nÅse 10");
  EXPECT_EQ(HtmlToText("<!-- skjult --><p>synlig"), "synlig");
}

}  // namespace
}  // namespace keyonce::connectors::imap
