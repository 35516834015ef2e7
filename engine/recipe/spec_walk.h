// Checking YAML against FieldSpec declarations and building Settings.
//
// The same walk serves `keyonce validate` and recipe loading: every problem
// is collected (not only the first), each with file:line:column, the key
// path and, for misspelled names, a "did you mean" hint.
#pragma once

#include <yaml-cpp/yaml.h>

#include <set>
#include <string>
#include <vector>

#include "keyonce/settings.h"
#include "keyonce/spec.h"

namespace keyonce {

struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based
  int column = 0;  // 1-based
  std::string path;  // key path, e.g. targets[1].on_change
  std::string message;
  bool warning = false;
  std::string ToString() const;
};

class Diagnostics {
 public:
  void Add(Diagnostic d) { items_.push_back(std::move(d)); }
  bool HasErrors() const;
  const std::vector<Diagnostic>& items() const { return items_; }

 private:
  std::vector<Diagnostic> items_;
};


class SpecWalker {
 public:
  SpecWalker(std::string file, std::string content, Diagnostics* diags);

  // Names templates may use under params./secrets. (declared by the recipe).
  std::vector<std::string> params, secrets;
  std::filesystem::path base_dir;

  // Checks mapping `node` against `fields` and returns the Settings.
  // Keys in `handled` are known but left to the caller.
  Settings Walk(const YAML::Node& node, const std::vector<FieldSpec>& fields,
                const std::string& path, const std::set<std::string>& handled = {});

  // Compiles one template scalar, reporting errors at their exact column.
  std::optional<Template> CompileAt(const YAML::Node& scalar, TemplateContext ctx, unsigned roots,
                                    const std::string& path);

  void Error(const YAML::Node& node, const std::string& path, const std::string& msg);
  // An error at `offset` inside a scalar's text.
  void ErrorAt(const YAML::Node& scalar, size_t offset, const std::string& path, const std::string& msg);
  void Warn(const YAML::Node& node, const std::string& path, const std::string& msg);
  void ErrorAtMark(const YAML::Mark& mark, const std::string& path, const std::string& msg);

  // YAML (any shape) to a JSON value; plain scalars get their natural type.
  static Value ToValue(const YAML::Node& node);

 private:
  bool CheckType(const YAML::Node& node, const FieldSpec& f, const std::string& path,
                 Settings::Entry* out);
  std::shared_ptr<StructureTemplate> BuildStructure(const YAML::Node& node, const std::string& path,
                                                    unsigned roots);
  void Locate(const YAML::Node& scalar, size_t offset, int* line, int* col) const;

  std::string file_;
  std::string content_;
  std::vector<size_t> line_starts_;
  Diagnostics* diags_;
};

}  // namespace keyonce
