// Settings: a connector's validated configuration.
//
// The engine checks a recipe section against the connector's FieldSpecs
// before the connector sees it, fills in defaults and compiles templates, so
// a connector only reads typed values. Asking for a name that is not
// declared, or with the wrong getter, is a programming error (throws
// std::logic_error); an optional setting that is absent and has no default
// reads as nullopt / empty.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "keyonce/template.h"
#include "keyonce/value.h"

namespace keyonce {

// A YAML structure whose strings are templates, e.g. a JSON body.
class StructureTemplate {
 public:
  virtual ~StructureTemplate() = default;
  virtual Result<Value> Evaluate(const Scope& scope) const = 0;
};

class Settings {
 public:
  // Where this section sits in the recipe, e.g. "recipes/x.yaml: targets[1]".
  std::string where;
  // The recipe file, as given ("recipes/x.yaml").
  std::string file;
  // The folder of the recipe file: relative paths are resolved against it.
  std::filesystem::path base_dir;

  bool Has(const std::string& name) const;
  std::optional<std::string> String(const std::string& name) const;  // kString, kEnum
  std::optional<int64_t> Int(const std::string& name) const;
  std::optional<double> Number(const std::string& name) const;
  std::optional<bool> Bool(const std::string& name) const;
  std::vector<std::string> StringList(const std::string& name) const;
  const Template* Tmpl(const std::string& name) const;
  const std::vector<std::pair<std::string, Template>>& TmplMap(const std::string& name) const;
  const StructureTemplate* Structure(const std::string& name) const;
  const Value* Raw(const std::string& name) const;  // kAny / nested objects as JSON
  // A path setting that may be a template (`in/{{ params.month }}.csv`):
  // rendered against `scope` and resolved against base_dir. kInvalid when
  // the setting is missing or renders empty.
  Result<std::filesystem::path> ResolvePath(const std::string& name, const Scope& scope) const;
  // The recipe line of a part of a structured setting (kStructure,
  // kObjectList, kAny), for messages at run time: `part` is "" for the
  // setting itself, else a path inside it such as "[3]" or "[3].do[0]".
  // 0 when unknown.
  int Line(const std::string& name, const std::string& part = "") const;

  // Used by the engine when building Settings.
  struct Entry {
    Value literal;                                   // scalars, lists, kAny, objects
    std::optional<Template> tmpl;                    // kTemplate
    std::vector<std::pair<std::string, Template>> tmpl_map;  // kTemplateMap
    std::shared_ptr<StructureTemplate> structure;    // kStructure
    std::map<std::string, int> lines;  // part path -> recipe line (see Line)
  };
  std::map<std::string, Entry> entries;
};

}  // namespace keyonce
