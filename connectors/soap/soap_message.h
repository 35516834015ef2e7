// SOAP messages: building request envelopes (SOAP 1.1 and 1.2, WS-Security
// UsernameToken) and reading replies (faults, the Body as a value, XPath
// selections). No I/O; the connector (soap.cc) sends them with the shared
// network layer.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/common/net/transfer.h"
#include "connectors/common/xml/xml_dom.h"
#include "keyonce/status.h"
#include "keyonce/value.h"

namespace pugi {
class xml_document;
}

namespace keyonce::connectors::soap {

enum class SoapVersion { k11, k12 };

inline constexpr char kSoap11Ns[] = "http://schemas.xmlsoap.org/soap/envelope/";
inline constexpr char kSoap12Ns[] = "http://www.w3.org/2003/05/soap-envelope";
inline constexpr char kWsseNs[] =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
inline constexpr char kWsuNs[] =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";

// <soapenv:Envelope> with an optional <soapenv:Header> (when `header` is not
// empty) and the <soapenv:Body> holding `body` (XML, inserted as it is).
std::string BuildEnvelope(SoapVersion version, std::string_view header, std::string_view body);

// Content-Type (and SOAPAction for 1.1) for a request.
net::Headers RequestHeaders(SoapVersion version, const std::string& action);

// WS-Security UsernameToken Profile 1.0/1.1.
struct UsernameToken {
  std::string username;
  std::string password;
  bool digest = false;  // PasswordDigest = Base64(SHA-1(nonce + created + password))
};
// The <wsse:Security> header block, with a random 16-byte Nonce and Created
// = now (UTC, seconds); `nonce` and `created` override them (for tests).
// The password is XML-escaped; with `mask_password` it is written as ***
// (for dry-run renders).
std::string SecurityHeader(SoapVersion version, const UsernameToken& token,
                           bool mask_password = false, std::optional<std::string> nonce = {},
                           std::optional<std::string> created = {});
// Base64(SHA-1(nonce + created + password)).
std::string PasswordDigest(std::string_view nonce, std::string_view created,
                           std::string_view password);

struct SoapFault {
  std::string code;     // faultcode (1.1) or Code/Value (1.2), as written ("soap:Client")
  std::string subcode;  // Code/Subcode/Value (1.2), "" when none
  std::string reason;   // faultstring (1.1) or the first Reason/Text (1.2)
  // "SOAP Fault soap:Client: <reason>" with the reason cut to 200
  // characters and CPR numbers masked.
  std::string Message() const;
  // True when one of `codes` names this fault: equal to the code or
  // subcode, to its local part (after the prefix) or to its last dotted
  // part ("NotFound" matches soap:Client.NotFound and cs:NotFound).
  bool Matches(const std::vector<std::string>& codes) const;
};

// A parsed reply envelope.
class SoapReply {
 public:
  SoapReply();
  ~SoapReply();
  SoapReply(SoapReply&&) noexcept;
  SoapReply& operator=(SoapReply&&) noexcept;

  // Parses `xml` (any encoding pugixml detects). Errors (kPermanent) read
  // "not well-formed XML at line 3, column 7: ..." or "not a SOAP envelope
  // ..."; a DOCTYPE is refused (SOAP forbids it; entities are never
  // expanded).
  static Result<SoapReply> Parse(std::string_view xml);

  const std::optional<SoapFault>& fault() const { return fault_; }
  // The Body converted like the xml source converts records:
  // {"CreateCaseResponse": {"CaseId": "..."}}.
  Result<Value> Body() const;
  // Evaluates `select` with the Body element as the context node, names
  // normalised to the recipe's `namespaces` (see connectors/common/xml/xml_dom.h).
  // The first call renames the document's elements for good: later calls
  // must pass the same namespaces.
  Result<Value> Select(const xml::XPathMap& select, const xml::Namespaces& namespaces);
  // True when `xpath` selects something (evaluated like Select).
  Result<bool> Matches(const xml::XPath& xpath, const xml::Namespaces& namespaces);

 private:
  Status Normalize(const xml::Namespaces& namespaces);
  std::unique_ptr<pugi::xml_document> doc_;
  std::optional<SoapFault> fault_;
  bool normalized_ = false;
};

}  // namespace keyonce::connectors::soap
