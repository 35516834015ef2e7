#include "connectors/soap/soap_message.h"

#include <gtest/gtest.h>

namespace keyonce::connectors::soap {
namespace {

TEST(SoapMessage, EnvelopeFor11And12) {
  std::string e11 = BuildEnvelope(SoapVersion::k11, "", "<a:X xmlns:a=\"urn:a\"/>");
  EXPECT_EQ(e11,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope "
            "xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><a:X "
            "xmlns:a=\"urn:a\"/></soapenv:Body></soapenv:Envelope>");
  std::string e12 = BuildEnvelope(SoapVersion::k12, "<h/>", "<b/>");
  EXPECT_NE(e12.find("xmlns:soapenv=\"http://www.w3.org/2003/05/soap-envelope\""),
            std::string::npos);
  EXPECT_NE(e12.find("<soapenv:Header><h/></soapenv:Header><soapenv:Body><b/>"), std::string::npos);

  auto h11 = RequestHeaders(SoapVersion::k11, "urn:a/Op");
  EXPECT_EQ(h11[0],
            (std::pair<std::string, std::string>{"Content-Type", "text/xml; charset=utf-8"}));
  EXPECT_EQ(h11[1], (std::pair<std::string, std::string>{"SOAPAction", "\"urn:a/Op\""}));
  auto h12 = RequestHeaders(SoapVersion::k12, "urn:a/Op");
  EXPECT_EQ(h12[0].second, "application/soap+xml; charset=utf-8; action=\"urn:a/Op\"");
}

TEST(SoapMessage, UsernameTokenAsTheProfileSays) {
  UsernameToken t{"user<1>", "p&w", false};
  std::string h = SecurityHeader(SoapVersion::k11, t, false, std::string("0123456789abcdef"),
                                 std::string("2026-11-02T10:00:00Z"));
  EXPECT_NE(h.find("<wsse:Username>user&lt;1&gt;</wsse:Username>"), std::string::npos) << h;
  EXPECT_NE(h.find("#PasswordText\">p&amp;w</wsse:Password>"), std::string::npos) << h;
  EXPECT_NE(h.find("<wsse:Nonce EncodingType=\"http://docs.oasis-open.org/wss/2004/01/"
                   "oasis-200401-wss-soap-message-security-1.0#Base64Binary\">"
                   "MDEyMzQ1Njc4OWFiY2RlZg==</wsse:Nonce>"),
            std::string::npos)
      << h;
  EXPECT_NE(h.find("<wsu:Created>2026-11-02T10:00:00Z</wsu:Created>"), std::string::npos);
  EXPECT_NE(h.find("soapenv:mustUnderstand=\"1\""), std::string::npos);

  // Digest: Base64(SHA-1(nonce + created + password)); reference value
  // computed with `printf %s ... | openssl sha1 -binary | base64`.
  EXPECT_EQ(PasswordDigest("0123456789abcdef", "2026-11-02T10:00:00Z", "secret"),
            "izEyO51DebAkQbTmycTVminupTw=");
  t.digest = true;
  t.password = "secret";
  h = SecurityHeader(SoapVersion::k12, t, false, std::string("0123456789abcdef"),
                     std::string("2026-11-02T10:00:00Z"));
  EXPECT_NE(h.find("#PasswordDigest\">izEyO51DebAkQbTmycTVminupTw=</wsse:Password>"),
            std::string::npos)
      << h;
  EXPECT_EQ(h.find("secret"), std::string::npos);
  EXPECT_NE(h.find("soapenv:mustUnderstand=\"true\""), std::string::npos);

  // Fresh nonces.
  std::string a = SecurityHeader(SoapVersion::k11, t), b = SecurityHeader(SoapVersion::k11, t);
  EXPECT_NE(a, b);
  // A masked header never holds the password.
  t.digest = false;
  EXPECT_EQ(SecurityHeader(SoapVersion::k11, t, true).find("secret"), std::string::npos);
}

TEST(SoapMessage, Fault11And12) {
  auto r = SoapReply::Parse(
      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><s:Fault>"
      "<faultcode>s:Client.Duplicate</faultcode><faultstring>A case for CPR 0101851233 exists"
      "</faultstring></s:Fault></s:Body></s:Envelope>");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->fault().has_value());
  EXPECT_EQ(r->fault()->Message(),
            "SOAP Fault s:Client.Duplicate: A case for CPR xxxxxxxxxx exists");
  EXPECT_TRUE(r->fault()->Matches({"Duplicate"}));
  EXPECT_TRUE(r->fault()->Matches({"s:Client.Duplicate"}));
  EXPECT_FALSE(r->fault()->Matches({"NotFound"}));

  r = SoapReply::Parse(
      "<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\"><env:Body><env:Fault>"
      "<env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>cs:NotFound</env:Value>"
      "</env:Subcode></env:Code><env:Reason><env:Text xml:lang=\"en\">No such case</env:Text>"
      "</env:Reason></env:Fault></env:Body></env:Envelope>");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->fault().has_value());
  EXPECT_EQ(r->fault()->Message(), "SOAP Fault env:Sender (cs:NotFound): No such case");
  EXPECT_TRUE(r->fault()->Matches({"NotFound"}));

  std::string long_reason(1000, 'x');
  SoapFault f{"c", "", long_reason};
  EXPECT_LE(f.Message().size(), 230u);
}

TEST(SoapMessage, BodyAndSelectWithTheRecipesPrefixes) {
  auto r = SoapReply::Parse(
      "<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/"
      "envelope/\"><soap:Body><ns7:CreateCaseResponse xmlns:ns7=\"urn:case\"><ns7:CaseId>SAG-1"
      "</ns7:CaseId><ns7:Status>Created</ns7:Status></ns7:CreateCaseResponse></soap:Body>"
      "</soap:Envelope>");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->fault().has_value());
  auto body = r->Body();
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(ToJson(*body), R"({"CreateCaseResponse":{"CaseId":"SAG-1","Status":"Created"}})");
  auto map = xml::CompileXPathMap(
      &static_cast<const Value&>(Value(boost::json::object{
          {"a", "c:CreateCaseResponse/c:CaseId"}, {"b", "//c:Status"}, {"none", "//CaseId"}})),
      "select");
  ASSERT_TRUE(map.ok());
  auto sel = r->Select(*map, {{"c", "urn:case"}});
  ASSERT_TRUE(sel.ok()) << sel.status().ToString();
  EXPECT_EQ(ToJson(*sel), R"({"a":"SAG-1","b":"Created","none":null})");
}

TEST(SoapMessage, BadRepliesAreClearPermanentErrors) {
  auto r = SoapReply::Parse("<broken");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kPermanent);
  EXPECT_NE(r.status().message().find("not well-formed XML at line 1, column"), std::string::npos)
      << r.status().message();
  r = SoapReply::Parse("<html><body>Gateway</body></html>");
  EXPECT_EQ(r.status().message(), "reply is not a SOAP envelope (its root element is <html>)");
  r = SoapReply::Parse("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"/>");
  EXPECT_EQ(r.status().message(), "reply is a SOAP envelope without a Body");
  // XXE: a DOCTYPE is refused before anything could read the entity.
  r = SoapReply::Parse(
      "<?xml version=\"1.0\"?><!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><r>&xxe;</r>"
      "</s:Body></s:Envelope>");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kPermanent);
  EXPECT_NE(r.status().message().find("DOCTYPE"), std::string::npos);
}

}  // namespace
}  // namespace keyonce::connectors::soap
