#include "connectors/soap/soap_message.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <pugixml.hpp>

#include "connectors/common/encoding.h"

namespace keyonce::connectors::soap {
namespace {

const char* EnvelopeNs(SoapVersion v) { return v == SoapVersion::k11 ? kSoap11Ns : kSoap12Ns; }

std::string XmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

bool HasLocalName(const pugi::xml_node& n, std::string_view local) {
  return n.type() == pugi::node_element && xml::LocalName(n.name()) == local;
}

pugi::xml_node ChildByLocalName(const pugi::xml_node& parent, std::string_view local) {
  for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling()) {
    if (HasLocalName(c, local)) return c;
  }
  return {};
}

pugi::xml_node FirstElement(const pugi::xml_node& parent) {
  for (pugi::xml_node c = parent.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element) return c;
  }
  return {};
}

// The namespace URI of an element, from the xmlns attributes of it and its
// ancestors.
std::string NamespaceOf(const pugi::xml_node& e) {
  std::string_view name(e.name());
  size_t colon = name.find(':');
  std::string attr = colon == std::string_view::npos
                         ? std::string("xmlns")
                         : "xmlns:" + std::string(name.substr(0, colon));
  for (pugi::xml_node n = e; n && n.type() == pugi::node_element; n = n.parent()) {
    if (pugi::xml_attribute a = n.attribute(attr.c_str())) return a.value();
  }
  return "";
}

std::string Text(const pugi::xml_node& n) {
  std::string out;
  for (pugi::xml_node c = n.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) out += c.value();
  }
  size_t b = out.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = out.find_last_not_of(" \t\r\n");
  return out.substr(b, e - b + 1);
}

SoapFault ReadFault(const pugi::xml_node& f) {
  SoapFault fault;
  if (pugi::xml_node code = ChildByLocalName(f, "Code")) {  // SOAP 1.2
    fault.code = Text(ChildByLocalName(code, "Value"));
    if (pugi::xml_node sub = ChildByLocalName(code, "Subcode")) {
      fault.subcode = Text(ChildByLocalName(sub, "Value"));
    }
    fault.reason = Text(ChildByLocalName(ChildByLocalName(f, "Reason"), "Text"));
  } else {  // SOAP 1.1
    fault.code = Text(ChildByLocalName(f, "faultcode"));
    fault.reason = Text(ChildByLocalName(f, "faultstring"));
  }
  return fault;
}

pugi::xml_node FindBody(const pugi::xml_document& doc) {
  return ChildByLocalName(doc.document_element(), "Body");
}

std::string_view AfterLast(std::string_view s, char c) {
  size_t at = s.rfind(c);
  return at == std::string_view::npos ? s : s.substr(at + 1);
}

}  // namespace

std::string BuildEnvelope(SoapVersion version, std::string_view header, std::string_view body) {
  std::string out =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"";
  out += EnvelopeNs(version);
  out += "\">";
  if (!header.empty()) {
    out += "<soapenv:Header>";
    out += header;
    out += "</soapenv:Header>";
  }
  out += "<soapenv:Body>";
  out += body;
  out += "</soapenv:Body></soapenv:Envelope>";
  return out;
}

net::Headers RequestHeaders(SoapVersion version, const std::string& action) {
  net::Headers h;
  // The action is a URI; quotes and line breaks in it would break the header.
  std::string a;
  for (char c : action) {
    if (c != '"' && c != '\r' && c != '\n') a += c;
  }
  if (version == SoapVersion::k11) {
    h.emplace_back("Content-Type", "text/xml; charset=utf-8");
    h.emplace_back("SOAPAction", "\"" + a + "\"");
  } else {
    std::string ct = "application/soap+xml; charset=utf-8";
    if (!a.empty()) ct += "; action=\"" + a + "\"";
    h.emplace_back("Content-Type", ct);
  }
  h.emplace_back("Accept", "text/xml, application/soap+xml, application/xml");
  return h;
}

std::string PasswordDigest(std::string_view nonce, std::string_view created,
                           std::string_view password) {
  std::string data;
  data.append(nonce).append(created).append(password);
  unsigned char md[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return Base64(std::string_view(reinterpret_cast<const char*>(md), sizeof(md)));
}

std::string SecurityHeader(SoapVersion version, const UsernameToken& token, bool mask_password,
                           std::optional<std::string> nonce, std::optional<std::string> created) {
  if (!nonce) {
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
      // Never a fixed nonce: fall back to the clock mixed with the address.
      auto t = std::chrono::steady_clock::now().time_since_epoch().count();
      std::memcpy(raw, &t, sizeof(t));
      auto p = reinterpret_cast<uintptr_t>(&raw);
      std::memcpy(raw + 8, &p, sizeof(p));
    }
    nonce = std::string(reinterpret_cast<const char*>(raw), sizeof(raw));
  }
  if (!created) {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    created = buf;
  }
  const char* profile =
      "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0";
  std::string password = mask_password  ? std::string("***")
                         : token.digest ? PasswordDigest(*nonce, *created, token.password)
                                        : token.password;
  std::string out = "<wsse:Security xmlns:wsse=\"";
  out += kWsseNs;
  out += "\" xmlns:wsu=\"";
  out += kWsuNs;
  out += "\" soapenv:mustUnderstand=\"";
  out += version == SoapVersion::k11 ? "1" : "true";
  out += "\"><wsse:UsernameToken wsu:Id=\"UsernameToken-1\"><wsse:Username>";
  out += XmlEscape(token.username);
  out += "</wsse:Username><wsse:Password Type=\"";
  out += profile;
  out += token.digest ? "#PasswordDigest" : "#PasswordText";
  out += "\">";
  out += XmlEscape(password);
  out += "</wsse:Password><wsse:Nonce EncodingType=\"";
  out +=
      "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0"
      "#Base64Binary\">";
  out += Base64(*nonce);
  out += "</wsse:Nonce><wsu:Created>";
  out += *created;
  out += "</wsu:Created></wsse:UsernameToken></wsse:Security>";
  return out;
}

std::string SoapFault::Message() const {
  std::string out =
      "SOAP Fault " + (code.empty() ? std::string("(no code)") : net::Excerpt(code, 80));
  if (!subcode.empty()) out += " (" + net::Excerpt(subcode, 80) + ")";
  if (!reason.empty()) out += ": " + net::Excerpt(reason, 200);
  return out;
}

bool SoapFault::Matches(const std::vector<std::string>& codes) const {
  for (const std::string& want : codes) {
    for (const std::string* have : {&code, &subcode}) {
      if (have->empty()) continue;
      std::string_view h(*have);
      if (h == want || AfterLast(h, ':') == want || AfterLast(AfterLast(h, ':'), '.') == want) {
        return true;
      }
    }
  }
  return false;
}

SoapReply::SoapReply() = default;
SoapReply::~SoapReply() = default;
SoapReply::SoapReply(SoapReply&&) noexcept = default;
SoapReply& SoapReply::operator=(SoapReply&&) noexcept = default;

Result<SoapReply> SoapReply::Parse(std::string_view xml) {
  SoapReply r;
  r.doc_ = std::make_unique<pugi::xml_document>();
  // parse_doctype keeps a DOCTYPE as a node so that it can be refused;
  // pugixml never expands DTD entities nor fetches anything.
  pugi::xml_parse_result parsed = r.doc_->load_buffer(
      xml.data(), xml.size(), pugi::parse_default | pugi::parse_doctype, pugi::encoding_auto);
  if (!parsed) {
    auto [line, col] =
        xml::LineColumn(xml, parsed.offset > 0 ? static_cast<size_t>(parsed.offset) : 0);
    return Status::Permanent("reply is not well-formed XML at line " + std::to_string(line) +
                             ", column " + std::to_string(col) + ": " + parsed.description());
  }
  for (pugi::xml_node c = r.doc_->first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_doctype) {
      return Status::Permanent(
          "reply contains a DOCTYPE, which SOAP forbids; refused (entities are never expanded)");
    }
  }
  pugi::xml_node root = r.doc_->document_element();
  if (!root) return Status::Permanent("reply holds no XML element");
  std::string ns = NamespaceOf(root);
  if (!HasLocalName(root, "Envelope") || (ns != kSoap11Ns && ns != kSoap12Ns)) {
    return Status::Permanent("reply is not a SOAP envelope (its root element is <" +
                             net::Excerpt(root.name(), 60) + ">)");
  }
  pugi::xml_node body = FindBody(*r.doc_);
  if (!body) return Status::Permanent("reply is a SOAP envelope without a Body");
  pugi::xml_node first = FirstElement(body);
  if (first && HasLocalName(first, "Fault") && NamespaceOf(first) == ns) {
    r.fault_ = ReadFault(first);
  }
  return r;
}

Result<Value> SoapReply::Body() const {
  pugi::xml_node body = FindBody(*doc_);
  auto v = xml::ElementToValue(body, {});
  if (!v.ok()) return Status::Permanent("reading the reply: " + v.status().message());
  if (!v->is_object()) return Value(boost::json::object());
  return v;
}

Status SoapReply::Normalize(const xml::Namespaces& namespaces) {
  if (normalized_) return Status::OK();
  Status st = xml::NormalizeNames(doc_->document_element(), namespaces);
  if (!st.ok()) return Status::Permanent("reading the reply: " + st.message());
  normalized_ = true;
  return Status::OK();
}

Result<Value> SoapReply::Select(const xml::XPathMap& select, const xml::Namespaces& namespaces) {
  KEYONCE_RETURN_IF_ERROR(Normalize(namespaces));
  auto v = xml::EvaluateXPathMap(select, FindBody(*doc_), {});
  if (!v.ok()) return Status::Permanent("select." + v.status().message());
  return v;
}

Result<bool> SoapReply::Matches(const xml::XPath& xpath, const xml::Namespaces& namespaces) {
  KEYONCE_RETURN_IF_ERROR(Normalize(namespaces));
  return xpath.Matches(FindBody(*doc_));
}

}  // namespace keyonce::connectors::soap
