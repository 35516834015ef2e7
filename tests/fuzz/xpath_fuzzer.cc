// Fuzzes the XML helpers shared by the xml and soap connectors: the first
// line is an XPath expression, the rest an XML document (parsed as the xml
// source does: no DOCTYPE). The document's names are normalised with a
// declared namespace, converted to a value, and the XPath evaluated on it.
// Errors (bad XPath, too deep) are fine; crashes and unbounded recursion are
// not.
#include <cstddef>
#include <cstdint>
#include <pugixml.hpp>
#include <string>

#include "connectors/common/xml/xml_dom.h"
#include "tests/fuzz/fuzz_util.h"

namespace xml = keyonce::connectors::xml;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return -1;
  auto [expr, doc_text] = keyonce::fuzz::SplitLine(keyonce::fuzz::AsText(data, size));
  auto xpath = xml::XPath::Compile(std::string(expr), "fields.x");
  if (!xpath.ok() && xpath.status().message().empty()) __builtin_trap();

  pugi::xml_document doc;
  pugi::xml_parse_result parsed =
      doc.load_buffer(doc_text.data(), doc_text.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!parsed) {
    auto [line, column] = xml::LineColumn(doc_text, static_cast<size_t>(parsed.offset));
    if (line == 0 || column == 0) __builtin_trap();
    return 0;
  }
  pugi::xml_node root = doc.document_element();
  if (!root) return 0;
  xml::ConvertOptions options;
  options.lists = {"item"};
  (void)xml::ElementToValue(root, options, /*as_object=*/true);
  static const xml::Namespaces kNamespaces = {{"c", "urn:case"}, {"s", "urn:soap"}};
  keyonce::Status st = xml::NormalizeNames(root, kNamespaces);
  if (!st.ok()) return 0;
  if (xpath.ok()) {
    (void)xpath->Evaluate(root, options);
    (void)xpath->Matches(root);
  }
  return 0;
}
