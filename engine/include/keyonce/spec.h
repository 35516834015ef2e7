// Declarations of settings, as data.
//
// Every recipe section and every connector declares its settings once, as a
// list of FieldSpec. The validator (keyonce validate), the JSON Schema
// (keyonce schema) and the reference docs (docs/connectors/*.md) are all
// generated from these declarations; nothing is described twice.
//
//   FieldSpec::String("path").Required().Describe("File to read.").Example("in/x.csv")
#pragma once

#include <string>
#include <vector>

#include "keyonce/template.h"

namespace keyonce {

enum class FieldType {
  kString,        // a plain string (no templates)
  kInt,           // an integer
  kNumber,        // a number (int or decimal)
  kBool,          // true / false
  kEnum,          // one of enum_values
  kStringList,    // a list of plain strings (a single string is accepted too)
  kTemplate,      // a string that may contain {{ }} (compiled in template_context)
  kTemplateMap,   // a mapping name -> template, order kept
  kStructure,     // any YAML (mapping/list/scalars) whose strings are templates
  kObject,        // a nested mapping declared by `children`
  kObjectMap,     // a mapping name -> object declared by `children`
  kObjectList,    // a list of objects declared by `children`
  kAny,           // any YAML, not checked further (connector checks it)
};

// Roots a template may read, checked by the validator.
enum RootMask : unsigned {
  kRootRecord = 1u << 0,
  kRootParams = 1u << 1,
  kRootSecrets = 1u << 2,
  kRootCaptures = 1u << 3,
  kRootRun = 1u << 4,
  kRootState = 1u << 5,
  kRootReply = 1u << 6,
  kRootLookup = 1u << 7,
  kRootKey = 1u << 8,  // a lookup table's templates: the key asked for
  kRootsStatic = kRootParams | kRootSecrets | kRootRun | kRootState,
  kRootsRecord = kRootsStatic | kRootRecord | kRootCaptures,
};

struct FieldSpec {
  std::string name;
  FieldType type = FieldType::kString;
  std::string description;
  bool required = false;
  std::string default_yaml;  // default as YAML text ("" = none)
  std::string example;       // YAML text
  std::vector<std::string> enum_values;
  TemplateContext template_context = TemplateContext::kValue;
  unsigned template_roots = kRootsRecord;
  std::vector<FieldSpec> children;  // kObject, kObjectMap, kObjectList
  bool secret = false;              // value must come from `secrets`, never literal
  std::string warn_value, warn_message;  // see WarnIf

  static FieldSpec String(std::string n) { return Make(std::move(n), FieldType::kString); }
  static FieldSpec Int(std::string n) { return Make(std::move(n), FieldType::kInt); }
  static FieldSpec Number(std::string n) { return Make(std::move(n), FieldType::kNumber); }
  static FieldSpec Bool(std::string n) { return Make(std::move(n), FieldType::kBool); }
  static FieldSpec Enum(std::string n, std::vector<std::string> values) {
    FieldSpec f = Make(std::move(n), FieldType::kEnum);
    f.enum_values = std::move(values);
    return f;
  }
  static FieldSpec StringList(std::string n) { return Make(std::move(n), FieldType::kStringList); }
  static FieldSpec Tmpl(std::string n, TemplateContext c = TemplateContext::kValue) {
    FieldSpec f = Make(std::move(n), FieldType::kTemplate);
    f.template_context = c;
    return f;
  }
  static FieldSpec TmplMap(std::string n, TemplateContext c = TemplateContext::kValue) {
    FieldSpec f = Make(std::move(n), FieldType::kTemplateMap);
    f.template_context = c;
    return f;
  }
  static FieldSpec Structure(std::string n) { return Make(std::move(n), FieldType::kStructure); }
  static FieldSpec Object(std::string n, std::vector<FieldSpec> c) {
    FieldSpec f = Make(std::move(n), FieldType::kObject);
    f.children = std::move(c);
    return f;
  }
  static FieldSpec ObjectMap(std::string n, std::vector<FieldSpec> c) {
    FieldSpec f = Make(std::move(n), FieldType::kObjectMap);
    f.children = std::move(c);
    return f;
  }
  static FieldSpec ObjectList(std::string n, std::vector<FieldSpec> c) {
    FieldSpec f = Make(std::move(n), FieldType::kObjectList);
    f.children = std::move(c);
    return f;
  }
  static FieldSpec Any(std::string n) { return Make(std::move(n), FieldType::kAny); }

  FieldSpec& Required() { required = true; return *this; }
  FieldSpec& Describe(std::string d) { description = std::move(d); return *this; }
  FieldSpec& Default(std::string yaml) { default_yaml = std::move(yaml); return *this; }
  FieldSpec& Example(std::string yaml) { example = std::move(yaml); return *this; }
  FieldSpec& Roots(unsigned mask) { template_roots = mask; return *this; }
  // `keyonce validate` warns (with file:line:column) when the recipe gives
  // this scalar value, e.g. WarnIf("false", "...") on tls_verify.
  FieldSpec& WarnIf(std::string value, std::string message) {
    warn_value = std::move(value);
    warn_message = std::move(message);
    return *this;
  }

 private:
  static FieldSpec Make(std::string n, FieldType t) {
    FieldSpec f;
    f.name = std::move(n);
    f.type = t;
    return f;
  }
};

// What a connector offers: each role has its own settings.
struct ComponentSpec {
  std::string summary;            // one line
  std::vector<FieldSpec> fields;  // settings beside the common ones (type, name, ...)
  std::string example_yaml;       // a complete example of the section
};

// The closest candidate to `word` (edit distance <= max(2, len/3)), or "";
// DidYouMean gives it as "; did you mean 'x'?" (or "") for messages about
// misspelled keys and names.
std::string ClosestMatch(const std::string& word, const std::vector<std::string>& candidates);
std::string DidYouMean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace keyonce
