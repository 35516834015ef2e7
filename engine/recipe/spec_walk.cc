#include "recipe/spec_walk.h"

#include <algorithm>
#include <limits>

#include "template/internal.h"

namespace keyonce {

std::string Diagnostic::ToString() const {
  std::string s = file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " +
                  (warning ? "warning: " : "error: ");
  if (!path.empty()) s += path + ": ";
  return s + message;
}

bool Diagnostics::HasErrors() const {
  return std::any_of(items_.begin(), items_.end(), [](const Diagnostic& d) { return !d.warning; });
}

namespace {
const char* TypeName(FieldType t) {
  switch (t) {
    case FieldType::kString: return "a string";
    case FieldType::kInt: return "an integer";
    case FieldType::kNumber: return "a number";
    case FieldType::kBool: return "true or false";
    case FieldType::kEnum: return "one of the listed values";
    case FieldType::kStringList: return "a list of strings";
    case FieldType::kTemplate: return "a string (template)";
    case FieldType::kTemplateMap: return "a mapping of names to templates";
    case FieldType::kStructure: return "a mapping, list or value";
    case FieldType::kObject: return "a mapping";
    case FieldType::kObjectMap: return "a mapping of names to mappings";
    case FieldType::kObjectList: return "a list of mappings";
    case FieldType::kAny: return "any value";
  }
  return "?";
}

const char* RootName(unsigned bit) {
  switch (bit) {
    case kRootRecord: return "record";
    case kRootParams: return "params";
    case kRootSecrets: return "secrets";
    case kRootCaptures: return "captures";
    case kRootRun: return "run";
    case kRootState: return "state";
    case kRootReply: return "reply";
    case kRootLookup: return "lookup";
    case kRootKey: return "key";
  }
  return "?";
}

unsigned RootBit(const std::string& name) {
  for (unsigned bit = 1; bit <= kRootKey; bit <<= 1) {
    if (name == RootName(bit)) return bit;
  }
  return 0;
}

std::string AllowedRoots(unsigned mask) {
  std::string s;
  for (unsigned bit = 1; bit <= kRootKey; bit <<= 1) {
    if (mask & bit) s += (s.empty() ? "" : ", ") + std::string(RootName(bit));
  }
  return s;
}

bool IsQuoted(const YAML::Node& n) { return n.Tag() == "!"; }
}  // namespace

SpecWalker::SpecWalker(std::string file, std::string content, Diagnostics* diags)
    : file_(std::move(file)), content_(std::move(content)), diags_(diags) {
  line_starts_.push_back(0);
  for (size_t i = 0; i < content_.size(); ++i) {
    if (content_[i] == '\n') line_starts_.push_back(i + 1);
  }
}

void SpecWalker::ErrorAtMark(const YAML::Mark& mark, const std::string& path,
                             const std::string& msg) {
  diags_->Add({file_, mark.line + 1, mark.column + 1, path, msg, false});
}

void SpecWalker::Error(const YAML::Node& node, const std::string& path, const std::string& msg) {
  ErrorAtMark(node.Mark(), path, msg);
}

void SpecWalker::ErrorAt(const YAML::Node& scalar, size_t offset, const std::string& path,
                         const std::string& msg) {
  int line = 0, col = 0;
  Locate(scalar, offset, &line, &col);
  diags_->Add({file_, line, col, path, msg, false});
}

void SpecWalker::Warn(const YAML::Node& node, const std::string& path, const std::string& msg) {
  diags_->Add({file_, node.Mark().line + 1, node.Mark().column + 1, path, msg, true});
}

void SpecWalker::Locate(const YAML::Node& scalar, size_t offset, int* line, int* col) const {
  const YAML::Mark m = scalar.Mark();
  const std::string& text = scalar.Scalar();
  offset = std::min(offset, text.size());
  size_t line_start = text.rfind('\n', offset == 0 ? 0 : offset - 1);
  line_start = (line_start == std::string::npos || offset == 0) ? 0 : line_start + 1;
  size_t line_end = text.find('\n', line_start);
  std::string segment = text.substr(line_start, std::min<size_t>(
      (line_end == std::string::npos ? text.size() : line_end) - line_start, 60));
  if (m.pos >= 0 && !segment.empty()) {
    size_t p = content_.find(segment, static_cast<size_t>(m.pos));
    if (p != std::string::npos) {
      size_t abs = p + (offset - line_start);
      auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), abs);
      size_t li = static_cast<size_t>(it - line_starts_.begin()) - 1;
      *line = static_cast<int>(li) + 1;
      *col = static_cast<int>(abs - line_starts_[li]) + 1;
      return;
    }
  }
  *line = m.line + 1;
  *col = m.column + 1 + static_cast<int>(offset) + (IsQuoted(scalar) ? 1 : 0);
}

std::optional<Template> SpecWalker::CompileAt(const YAML::Node& scalar, TemplateContext ctx,
                                              unsigned roots, const std::string& path) {
  if (!scalar.IsScalar()) {
    Error(scalar, path,
          scalar.IsMap() ? "expected a string (template); quote a value that starts with {{, "
                           "e.g. \"{{ record.name }}\""
                         : "expected a string (template)");
    return std::nullopt;
  }
  TemplateError err;
  auto t = Template::Compile(scalar.Scalar(), ctx, &err);
  if (!t) {
    int line = 0, col = 0;
    Locate(scalar, err.offset, &line, &col);
    diags_->Add({file_, line, col, path, "template: " + err.message, false});
    return std::nullopt;
  }
  bool ok = true;
  for (const auto& ref : t->References()) {
    unsigned bit = RootBit(ref.root);
    auto report = [&](const std::string& msg, bool at_name = false) {
      int line = 0, col = 0;
      // Point at the misspelled name rather than at the root when there is one.
      size_t at = ref.offset;
      const std::string& src = scalar.Scalar();
      if (at_name && !ref.name.empty() && src.compare(at, ref.root.size(), ref.root) == 0 &&
          at + ref.root.size() < src.size() && src[at + ref.root.size()] == '.') {
        at += ref.root.size() + 1;
      }
      Locate(scalar, at, &line, &col);
      diags_->Add({file_, line, col, path, "template: " + msg, false});
      ok = false;
    };
    if (bit == 0) continue;  // unknown roots are compile errors already
    if (!(roots & bit)) {
      report("'" + ref.root + "' is not available here (available: " + AllowedRoots(roots) + ")");
      continue;
    }
    if (bit == kRootSecrets) {
      if (ref.name.empty()) {
        report("secrets must be named one by one (secrets.NAME)");
      } else if (std::find(secrets.begin(), secrets.end(), ref.name) == secrets.end()) {
        report("secret '" + ref.name + "' is not declared under secrets:" +
               DidYouMean(ref.name, secrets), true);
      }
    }
    if (bit == kRootParams && !ref.name.empty() &&
        std::find(params.begin(), params.end(), ref.name) == params.end()) {
      report("parameter '" + ref.name + "' is not declared under params:" +
             DidYouMean(ref.name, params), true);
    }
  }
  if (!ok) return std::nullopt;
  return t;
}

Value SpecWalker::ToValue(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return nullptr;
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (IsQuoted(node)) return Value(s);
      if (s == "~" || s == "null") return nullptr;
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False") return false;
      if (!s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-')) {
        // Keep leading-zero strings (postcodes, CPR) as text.
        bool leading_zero = s.size() > 1 && s[0] == '0' && s[1] != '.';
        if (!leading_zero) {
          try {
            size_t n = 0;
            long long i = std::stoll(s, &n);
            if (n == s.size()) return Value(static_cast<int64_t>(i));
            double d = std::stod(s, &n);
            if (n == s.size()) return Value(d);
          } catch (...) {
          }
        }
      }
      return Value(s);
    }
    case YAML::NodeType::Sequence: {
      boost::json::array a;
      for (const auto& c : node) a.push_back(ToValue(c));
      return a;
    }
    case YAML::NodeType::Map: {
      boost::json::object o;
      for (const auto& kv : node) o[kv.first.Scalar()] = ToValue(kv.second);
      return o;
    }
  }
  return nullptr;
}

namespace {
class StructNode : public StructureTemplate {
 public:
  enum class Kind { kConst, kTmpl, kObject, kArray };
  Kind kind = Kind::kConst;
  Value constant;
  std::optional<Template> tmpl;
  std::vector<std::pair<std::string, std::shared_ptr<StructNode>>> children;

  Result<Value> Evaluate(const Scope& scope) const override {
    switch (kind) {
      case Kind::kConst: return constant;
      case Kind::kTmpl: return tmpl->Evaluate(scope);
      case Kind::kObject: {
        boost::json::object o;
        o.reserve(children.size());
        for (const auto& [k, c] : children) {
          auto v = c->Evaluate(scope);
          if (!v.ok()) return v.status().Wrap(k);
          o.emplace(k, std::move(v).value());
        }
        return Value(std::move(o));
      }
      case Kind::kArray: {
        boost::json::array a;
        for (const auto& [k, c] : children) {
          auto v = c->Evaluate(scope);
          if (!v.ok()) return v.status();
          a.push_back(std::move(v).value());
        }
        return Value(std::move(a));
      }
    }
    return Value();
  }
};
}  // namespace

std::shared_ptr<StructureTemplate> SpecWalker::BuildStructure(const YAML::Node& node,
                                                              const std::string& path,
                                                              unsigned roots) {
  auto n = std::make_shared<StructNode>();
  if (node.IsMap()) {
    n->kind = StructNode::Kind::kObject;
    for (const auto& kv : node) {
      std::string k = kv.first.Scalar();
      auto c = BuildStructure(kv.second, path + "." + k, roots);
      if (!c) return nullptr;
      n->children.emplace_back(k, std::static_pointer_cast<StructNode>(c));
    }
  } else if (node.IsSequence()) {
    n->kind = StructNode::Kind::kArray;
    size_t i = 0;
    for (const auto& c : node) {
      auto cn = BuildStructure(c, path + "[" + std::to_string(i++) + "]", roots);
      if (!cn) return nullptr;
      n->children.emplace_back("", std::static_pointer_cast<StructNode>(cn));
    }
  } else if (node.IsScalar() && node.Scalar().find("{{") != std::string::npos) {
    n->kind = StructNode::Kind::kTmpl;
    n->tmpl = CompileAt(node, TemplateContext::kValue, roots, path);
    if (!n->tmpl) return nullptr;
  } else {
    n->constant = ToValue(node);
  }
  return n;
}

namespace {
// The line of every part of a structured setting (see Settings::Line).
void RecordLines(const YAML::Node& node, const std::string& part, std::map<std::string, int>* out) {
  (*out)[part] = node.Mark().line + 1;
  if (node.IsMap()) {
    for (const auto& kv : node) {
      RecordLines(kv.second, part.empty() ? kv.first.Scalar() : part + "." + kv.first.Scalar(), out);
    }
  } else if (node.IsSequence()) {
    size_t i = 0;
    for (const auto& c : node) RecordLines(c, part + "[" + std::to_string(i++) + "]", out);
  }
}
}  // namespace

bool SpecWalker::CheckType(const YAML::Node& node, const FieldSpec& f, const std::string& path,
                           Settings::Entry* out) {
  if (f.type == FieldType::kStructure || f.type == FieldType::kObjectList ||
      f.type == FieldType::kAny) {
    RecordLines(node, "", &out->lines);
  }
  auto bad = [&]() {
    Error(node, path, std::string("expected ") + TypeName(f.type));
    return false;
  };
  switch (f.type) {
    case FieldType::kString:
      if (!node.IsScalar()) return bad();
      if (node.Scalar().find("{{") != std::string::npos) {
        Error(node, path, "templates are not allowed here");
        return false;
      }
      out->literal = Value(node.Scalar());
      return true;
    case FieldType::kInt: {
      Value v = node.IsScalar() ? ToValue(node) : Value();
      if (!v.is_int64() || IsQuoted(node)) return bad();
      out->literal = v;
      return true;
    }
    case FieldType::kNumber: {
      Value v = node.IsScalar() ? ToValue(node) : Value();
      if ((!v.is_int64() && !v.is_double()) || IsQuoted(node)) return bad();
      out->literal = v;
      return true;
    }
    case FieldType::kBool: {
      Value v = node.IsScalar() ? ToValue(node) : Value();
      if (!v.is_bool()) return bad();
      out->literal = v;
      return true;
    }
    case FieldType::kEnum: {
      if (!node.IsScalar()) return bad();
      const std::string& s = node.Scalar();
      if (std::find(f.enum_values.begin(), f.enum_values.end(), s) == f.enum_values.end()) {
        std::string list;
        for (const auto& e : f.enum_values) list += (list.empty() ? "" : ", ") + e;
        Error(node, path, "'" + s + "' is not one of: " + list + DidYouMean(s, f.enum_values));
        return false;
      }
      out->literal = Value(s);
      return true;
    }
    case FieldType::kStringList: {
      boost::json::array a;
      if (node.IsScalar()) {
        a.push_back(Value(node.Scalar()));
      } else if (node.IsSequence()) {
        for (const auto& c : node) {
          if (!c.IsScalar()) {
            Error(c, path, "expected a string");
            return false;
          }
          a.push_back(Value(c.Scalar()));
        }
      } else {
        return bad();
      }
      out->literal = std::move(a);
      return true;
    }
    case FieldType::kTemplate: {
      auto t = CompileAt(node, f.template_context, f.template_roots, path);
      if (!t) return false;
      out->literal = Value(node.Scalar());
      out->tmpl = std::move(t);
      return true;
    }
    case FieldType::kTemplateMap: {
      if (!node.IsMap()) return bad();
      bool ok = true;
      for (const auto& kv : node) {
        std::string k = kv.first.Scalar();
        auto t = CompileAt(kv.second, f.template_context, f.template_roots, path + "." + k);
        if (!t) {
          ok = false;
          continue;
        }
        out->tmpl_map.emplace_back(k, std::move(*t));
      }
      return ok;
    }
    case FieldType::kStructure: {
      out->structure = BuildStructure(node, path, f.template_roots);
      out->literal = ToValue(node);
      return out->structure != nullptr;
    }
    case FieldType::kObject:
      if (!node.IsMap()) return bad();
      // Its keys are checked like a section's (unknown keys with a "did you
      // mean", types, secrets); the connector reads it as JSON.
      if (!f.children.empty()) Walk(node, f.children, path);
      out->literal = ToValue(node);
      return true;
    case FieldType::kObjectMap:
      if (!node.IsMap()) return bad();
      out->literal = ToValue(node);
      return true;
    case FieldType::kObjectList:
      if (!node.IsSequence()) return bad();
      out->literal = ToValue(node);
      return true;
    case FieldType::kAny: out->literal = ToValue(node); return true;
  }
  return true;
}

Settings SpecWalker::Walk(const YAML::Node& node, const std::vector<FieldSpec>& fields,
                          const std::string& path, const std::set<std::string>& handled) {
  Settings s;
  s.where = file_ + ": " + path;
  s.file = file_;
  s.base_dir = base_dir;
  if (!node.IsMap()) {
    Error(node, path, "expected a mapping of settings");
    return s;
  }
  std::vector<std::string> names(handled.begin(), handled.end());
  for (const auto& f : fields) names.push_back(f.name);
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const std::string kpath = path.empty() ? key : path + "." + key;
    if (handled.count(key)) continue;
    auto it = std::find_if(fields.begin(), fields.end(), [&](const FieldSpec& f) { return f.name == key; });
    if (it == fields.end()) {
      Error(kv.first, kpath, "unknown key '" + key + "'" + DidYouMean(key, names));
      continue;
    }
    Settings::Entry e;
    if (kv.second.IsNull() && it->type != FieldType::kAny) {
      Error(kv.first, kpath, "has no value");
      continue;
    }
    if (it->secret && kv.second.IsScalar() && kv.second.Scalar().find("{{") == std::string::npos) {
      Error(kv.second, kpath, "a secret must not be written in the recipe; use {{ secrets.NAME }}");
      continue;
    }
    if (!it->warn_message.empty() && kv.second.IsScalar() && kv.second.Scalar() == it->warn_value) {
      Warn(kv.second, kpath, it->warn_message);
    }
    if (CheckType(kv.second, *it, kpath, &e)) s.entries[key] = std::move(e);
  }
  for (const auto& f : fields) {
    if (s.entries.count(f.name) || node[f.name]) continue;
    if (f.required) {
      Error(node, path, "missing required key '" + f.name + "'");
      continue;
    }
    if (!f.default_yaml.empty()) {
      YAML::Node d = YAML::Load(f.default_yaml);
      Settings::Entry e;
      Diagnostics scratch;
      SpecWalker inner(file_, f.default_yaml, &scratch);
      inner.params = params;
      inner.secrets = secrets;
      if (inner.CheckType(d, f, path + "." + f.name, &e)) s.entries[f.name] = std::move(e);
    }
  }
  return s;
}

}  // namespace keyonce
