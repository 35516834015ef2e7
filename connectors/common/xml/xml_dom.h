// XML documents as keyonce values, shared by the `xml` source and the `soap`
// connector: parsing without DTDs, namespaces by the recipe's prefixes, the
// element -> JSON conversion and XPath selections.
//
// Namespaces. pugixml matches XPath names as written (prefix included), so a
// document is normalised before XPath: an element or attribute whose
// namespace URI the recipe declares (`namespaces: {c: "urn:case"}`) is
// renamed to that prefix (`c:CaseId`, whatever prefix the document used);
// every other name loses its prefix (`CaseId`). XPath expressions therefore
// address declared namespaces by the recipe's prefix and everything else by
// the local name.
//
// Conversion. An element with neither attributes nor child elements becomes
// its text (a string, "" when empty). Any other element becomes an object:
// attributes as "@name", child elements by local name (a repeated child, or
// one named in `lists`, becomes a list), and its own non-blank text as
// "#text". Namespace declarations are not fields.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keyonce/status.h"
#include "keyonce/value.h"

namespace pugi {
class xml_node;
class xml_document;
class xpath_query;
}  // namespace pugi

namespace keyonce::connectors::xml {

// The recipe's `namespaces`: prefix -> URI.
using Namespaces = std::map<std::string, std::string>;

// Reads a `namespaces` setting (an object of prefix -> URI strings; null or
// absent is empty). `what` names the setting in errors.
Result<Namespaces> ParseNamespaces(const Value* raw, const std::string& what);

// The part of a qualified name after the colon ("x:row" -> "row"): a view
// of `qname`, and the same as a string.
std::string_view LocalPart(const char* qname);
std::string LocalName(const char* qname);

// Deepest element nesting accepted (deeper documents are rejected, so that
// nothing recurses without bound).
constexpr int kMaxDepth = 1000;

struct ConvertOptions {
  std::set<std::string> lists;  // element local names always made lists
};

// The element as a value (see the file comment). With `as_object`, a leaf
// element becomes {"#text": text} (records are always objects).
// kInvalid when the element nests deeper than kMaxDepth.
Result<Value> ElementToValue(const pugi::xml_node& element, const ConvertOptions& options,
                             bool as_object = false);

// Renames every element and attribute below and including `root` as the file
// comment says, resolving prefixes through the xmlns attributes in the
// document (and on the ancestors of `root`), and removes the xmlns
// attributes. A prefix the document never declares counts as an unknown
// namespace. kInvalid for a nesting deeper than kMaxDepth.
Status NormalizeNames(pugi::xml_node root, const Namespaces& namespaces);

// A compiled XPath 1.0 expression (pugixml). Parse errors name the setting
// and the offset.
class XPath {
 public:
  XPath();
  ~XPath();
  XPath(XPath&&) noexcept;
  XPath& operator=(XPath&&) noexcept;
  static Result<XPath> Compile(const std::string& text, const std::string& what);

  // The result as a value: a node set of one node is that node's value (an
  // element converted as above, an attribute's or text node's text), of
  // several a list of them, empty null; numbers, strings and booleans as
  // they are. Evaluated with `context` as the context node.
  Result<Value> Evaluate(const pugi::xml_node& context, const ConvertOptions& options) const;
  // True when the expression selects at least one node (or is a true /
  // non-empty / non-zero scalar).
  bool Matches(const pugi::xml_node& context) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::unique_ptr<pugi::xpath_query> query_;
};

// name -> XPath, in the recipe's order (`fields`, `select`): compiled from an
// object of strings; `what` names the setting in errors.
using XPathMap = std::vector<std::pair<std::string, std::shared_ptr<const XPath>>>;
Result<XPathMap> CompileXPathMap(const Value* raw, const std::string& what);

// Evaluates each XPath of `map` into an object.
Result<Value> EvaluateXPathMap(const XPathMap& map, const pugi::xml_node& context,
                               const ConvertOptions& options);

// Line and column (1-based, columns in characters) of byte `offset` of the
// UTF-8 `text`, counted from `line`/`column` at its start.
std::pair<uint64_t, uint64_t> LineColumn(std::string_view text, size_t offset, uint64_t line = 1,
                                         uint64_t column = 1);

}  // namespace keyonce::connectors::xml
