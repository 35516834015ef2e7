#include "connectors/common/xml/xml_dom.h"

#include <cmath>
#include <cstring>
#include <pugixml.hpp>

namespace keyonce::connectors::xml {
namespace {

bool IsBlank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsBlank(s.substr(0, 1))) s.remove_prefix(1);
  while (!s.empty() && IsBlank(s.substr(s.size() - 1))) s.remove_suffix(1);
  return s;
}

bool IsXmlnsAttribute(const char* name) {
  return std::strncmp(name, "xmlns", 5) == 0 && (name[5] == '\0' || name[5] == ':');
}

Status TooDeep() {
  return Status::Invalid("elements nest deeper than " + std::to_string(kMaxDepth) + " levels");
}

Result<Value> Convert(const pugi::xml_node& e, const ConvertOptions& options, bool as_object,
                      int depth) {
  if (depth > kMaxDepth) return TooDeep();
  std::string text;
  bool has_children = false;
  bool has_attributes = false;
  for (const pugi::xml_attribute& a : e.attributes()) {
    if (!IsXmlnsAttribute(a.name())) has_attributes = true;
  }
  for (const pugi::xml_node& c : e.children()) {
    if (c.type() == pugi::node_element) {
      has_children = true;
    } else if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) {
      text += c.value();
    }
  }
  if (!has_children && !has_attributes && !as_object) return Value(text);

  boost::json::object out;
  for (const pugi::xml_attribute& a : e.attributes()) {
    if (IsXmlnsAttribute(a.name())) continue;
    out["@" + LocalName(a.name())] = a.value();
  }
  for (const pugi::xml_node& c : e.children()) {
    if (c.type() != pugi::node_element) continue;
    auto v = Convert(c, options, false, depth + 1);
    if (!v.ok()) return v;
    std::string name = LocalName(c.name());
    auto it = out.find(name);
    if (it == out.end()) {
      if (options.lists.count(name)) {
        out[name] = boost::json::array{std::move(*v)};
      } else {
        out[name] = std::move(*v);
      }
    } else if (it->value().is_array()) {
      // Already a list (converted elements are never arrays themselves).
      it->value().as_array().push_back(std::move(*v));
    } else {
      // The second occurrence of a name turns it into a list.
      boost::json::array list;
      list.push_back(std::move(it->value()));
      list.push_back(std::move(*v));
      it->value() = std::move(list);
    }
  }
  if (!has_children) {
    if (!text.empty() || as_object) out["#text"] = text;
  } else if (!IsBlank(text)) {
    out["#text"] = std::string(Trim(text));
  }
  return Value(std::move(out));
}

struct Binding {
  std::string prefix;
  std::string uri;
};

const std::string* Resolve(const std::vector<Binding>& scope, std::string_view prefix) {
  for (auto it = scope.rbegin(); it != scope.rend(); ++it) {
    if (it->prefix == prefix) return &it->uri;
  }
  return nullptr;
}

// The recipe's name for a qualified name: `recipe_prefix:local` when its
// namespace is declared in the recipe, else `local`.
std::string Rename(const char* qname, bool is_element, const std::vector<Binding>& scope,
                   const std::map<std::string, std::string>& by_uri) {
  std::string_view q(qname);
  size_t colon = q.find(':');
  std::string_view prefix =
      colon == std::string_view::npos ? std::string_view() : q.substr(0, colon);
  std::string local(colon == std::string_view::npos ? q : q.substr(colon + 1));
  // Unprefixed attributes are in no namespace; unprefixed elements in the
  // default namespace.
  if (prefix.empty() && !is_element) return local;
  const std::string* uri = Resolve(scope, prefix);
  if (uri && !uri->empty()) {
    auto it = by_uri.find(*uri);
    if (it != by_uri.end()) return it->second + ":" + local;
  }
  return local;
}

Status Normalize(pugi::xml_node e, std::vector<Binding>& scope,
                 const std::map<std::string, std::string>& by_uri, int depth) {
  if (depth > kMaxDepth) return TooDeep();
  size_t mark = scope.size();
  for (pugi::xml_attribute a = e.first_attribute(); a;) {
    pugi::xml_attribute next = a.next_attribute();
    if (IsXmlnsAttribute(a.name())) {
      scope.push_back({a.name()[5] == ':' ? a.name() + 6 : "", a.value()});
    }
    a = next;
  }
  e.set_name(Rename(e.name(), true, scope, by_uri).c_str());
  for (pugi::xml_attribute a = e.first_attribute(); a;) {
    pugi::xml_attribute next = a.next_attribute();
    if (IsXmlnsAttribute(a.name())) {
      e.remove_attribute(a);
    } else if (std::strchr(a.name(), ':')) {
      a.set_name(Rename(a.name(), false, scope, by_uri).c_str());
    }
    a = next;
  }
  for (pugi::xml_node c = e.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    KEYONCE_RETURN_IF_ERROR(Normalize(c, scope, by_uri, depth + 1));
  }
  scope.resize(mark);
  return Status::OK();
}

Value NumberValue(double d) {
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0) {
    return Value(static_cast<int64_t>(d));
  }
  return Value(d);
}

Result<Value> NodeValue(const pugi::xpath_node& n, const ConvertOptions& options) {
  if (n.attribute()) return Value(n.attribute().value());
  pugi::xml_node node = n.node();
  switch (node.type()) {
    case pugi::node_element:
      return ElementToValue(node, options);
    case pugi::node_document:
      for (pugi::xml_node c = node.first_child(); c; c = c.next_sibling()) {
        if (c.type() == pugi::node_element) return ElementToValue(c, options);
      }
      return Value(nullptr);
    default:
      return Value(node.value());
  }
}

}  // namespace

Result<Namespaces> ParseNamespaces(const Value* raw, const std::string& what) {
  Namespaces out;
  if (!raw || raw->is_null()) return out;
  if (!raw->is_object()) {
    return Status::Invalid(what +
                           " must be a mapping of prefix to namespace URI, e.g. {c: "
                           "\"urn:example:case\"}");
  }
  for (const auto& kv : raw->as_object()) {
    std::string prefix(kv.key());
    if (!kv.value().is_string() || kv.value().as_string().empty()) {
      return Status::Invalid(what + "." + prefix + " must be a namespace URI (a non-empty string)");
    }
    if (prefix.empty() || prefix.find(':') != std::string::npos || prefix == "xmlns") {
      return Status::Invalid(what + ": '" + prefix + "' is not a usable namespace prefix");
    }
    out[prefix] = std::string(kv.value().as_string());
  }
  return out;
}

std::string_view LocalPart(const char* qname) {
  const char* colon = std::strchr(qname, ':');
  return colon ? std::string_view(colon + 1) : std::string_view(qname);
}

std::string LocalName(const char* qname) { return std::string(LocalPart(qname)); }

Result<Value> ElementToValue(const pugi::xml_node& element, const ConvertOptions& options,
                             bool as_object) {
  return Convert(element, options, as_object, 0);
}

Status NormalizeNames(pugi::xml_node root, const Namespaces& namespaces) {
  std::map<std::string, std::string> by_uri;
  for (const auto& [prefix, uri] : namespaces) by_uri.emplace(uri, prefix);
  std::vector<Binding> scope{{"xml", "http://www.w3.org/XML/1998/namespace"}};
  // Declarations on the ancestors of `root` are in scope too.
  std::vector<pugi::xml_node> ancestors;
  for (pugi::xml_node p = root.parent(); p && p.type() == pugi::node_element; p = p.parent()) {
    ancestors.push_back(p);
  }
  for (auto it = ancestors.rbegin(); it != ancestors.rend(); ++it) {
    for (const pugi::xml_attribute& a : it->attributes()) {
      if (IsXmlnsAttribute(a.name())) {
        scope.push_back({a.name()[5] == ':' ? a.name() + 6 : "", a.value()});
      }
    }
  }
  return Normalize(root, scope, by_uri, 0);
}

XPath::XPath() = default;
XPath::~XPath() = default;
XPath::XPath(XPath&&) noexcept = default;
XPath& XPath::operator=(XPath&&) noexcept = default;

Result<XPath> XPath::Compile(const std::string& text, const std::string& what) {
  XPath x;
  x.text_ = text;
  try {
    x.query_ = std::make_unique<pugi::xpath_query>(text.c_str());
  } catch (const pugi::xpath_exception& e) {
    return Status::Invalid(what + ": XPath error at offset " + std::to_string(e.result().offset) +
                           ": " + e.result().description());
  } catch (const std::bad_alloc&) {
    return Status::Invalid(what + ": XPath expression too large");
  }
  return x;
}

Result<Value> XPath::Evaluate(const pugi::xml_node& context, const ConvertOptions& options) const {
  try {
    switch (query_->return_type()) {
      case pugi::xpath_type_node_set: {
        pugi::xpath_node_set set = query_->evaluate_node_set(context);
        if (set.empty()) return Value(nullptr);
        set.sort();
        if (set.size() == 1) return NodeValue(set.first(), options);
        boost::json::array list;
        for (const pugi::xpath_node& n : set) {
          auto v = NodeValue(n, options);
          if (!v.ok()) return v;
          list.push_back(std::move(*v));
        }
        return Value(std::move(list));
      }
      case pugi::xpath_type_number:
        return NumberValue(query_->evaluate_number(context));
      case pugi::xpath_type_boolean:
        return Value(query_->evaluate_boolean(context));
      default:
        return Value(query_->evaluate_string(context));
    }
  } catch (const std::exception&) {
    return Status::Invalid("evaluating XPath '" + text_ + "' failed");
  }
}

bool XPath::Matches(const pugi::xml_node& context) const {
  try {
    return query_->evaluate_boolean(context);
  } catch (const std::exception&) {
    return false;
  }
}

Result<XPathMap> CompileXPathMap(const Value* raw, const std::string& what) {
  XPathMap out;
  if (!raw || raw->is_null()) return out;
  if (!raw->is_object()) {
    return Status::Invalid(what + " must be a mapping of name to XPath expression");
  }
  for (const auto& kv : raw->as_object()) {
    std::string name(kv.key());
    if (!kv.value().is_string()) {
      return Status::Invalid(what + "." + name + " must be an XPath expression (a string)");
    }
    auto x = XPath::Compile(std::string(kv.value().as_string()), what + "." + name);
    if (!x.ok()) return x.status();
    out.emplace_back(name, std::make_shared<const XPath>(std::move(x).value()));
  }
  return out;
}

Result<Value> EvaluateXPathMap(const XPathMap& map, const pugi::xml_node& context,
                               const ConvertOptions& options) {
  boost::json::object out;
  for (const auto& [name, xpath] : map) {
    auto v = xpath->Evaluate(context, options);
    if (!v.ok()) return v.status().Wrap(name);
    out[name] = std::move(*v);
  }
  return Value(std::move(out));
}

std::pair<uint64_t, uint64_t> LineColumn(std::string_view text, size_t offset, uint64_t line,
                                         uint64_t column) {
  if (offset > text.size()) offset = text.size();
  for (size_t i = 0; i < offset; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++column;
    }
  }
  return {line, column};
}

}  // namespace keyonce::connectors::xml
