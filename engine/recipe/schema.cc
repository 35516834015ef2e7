#include "recipe/schema.h"

#include <boost/json/serialize.hpp>

#include "keyonce/connector.h"
#include "recipe/recipe_spec.h"
#include "recipe/spec_walk.h"

namespace keyonce {
namespace {

using boost::json::array;
using boost::json::object;

Value FieldSchema(const FieldSpec& f);

object ObjectSchema(const std::vector<FieldSpec>& fields, bool closed) {
  object props;
  array required;
  for (const auto& f : fields) {
    props[f.name] = FieldSchema(f);
    if (f.required) required.push_back(Value(f.name));
  }
  object o{{"type", "object"}, {"properties", std::move(props)}};
  if (!required.empty()) o["required"] = std::move(required);
  if (closed) o["additionalProperties"] = false;
  return o;
}

Value FieldSchema(const FieldSpec& f) {
  object o;
  switch (f.type) {
    case FieldType::kString: o["type"] = "string"; break;
    case FieldType::kInt: o["type"] = "integer"; break;
    case FieldType::kNumber: o["type"] = "number"; break;
    case FieldType::kBool: o["type"] = "boolean"; break;
    case FieldType::kEnum: {
      array e;
      for (const auto& v : f.enum_values) e.push_back(Value(v));
      o["enum"] = std::move(e);
      break;
    }
    case FieldType::kStringList:
      o["oneOf"] = array{object{{"type", "string"}},
                         object{{"type", "array"}, {"items", object{{"type", "string"}}}}};
      break;
    case FieldType::kTemplate: o["type"] = "string"; break;
    case FieldType::kTemplateMap:
      o["type"] = "object";
      o["additionalProperties"] = object{{"type", "string"}};
      break;
    case FieldType::kStructure:
    case FieldType::kAny: break;
    case FieldType::kObject: o = ObjectSchema(f.children, true); break;
    case FieldType::kObjectMap:
      o["type"] = "object";
      o["additionalProperties"] = ObjectSchema(f.children, true);
      break;
    case FieldType::kObjectList:
      o["type"] = "array";
      o["items"] = ObjectSchema(f.children, true);
      break;
  }
  if (!f.description.empty()) o["description"] = f.description;
  return o;
}

// A connector section: `type` picks the settings (if/then per connector).
Value ComponentSchema(const std::vector<FieldSpec>& common, const char* role, const std::string& what) {
  array names, branches;
  for (const auto* d : Registry::Global().All()) {
    const ComponentSpec* spec = RoleSpec(*d, role);
    if (!spec) continue;
    names.push_back(Value(d->name));
    std::vector<FieldSpec> all = common;
    all.insert(all.end(), spec->fields.begin(), spec->fields.end());
    object then = ObjectSchema(all, true);
    branches.push_back(object{{"if", object{{"properties", object{{"type", object{{"const", d->name}}}}}}},
                              {"then", std::move(then)}});
  }
  object o{{"type", "object"},
           {"description", what},
           {"required", array{"type"}},
           {"properties", object{{"type", object{{"enum", std::move(names)}}}}},
           {"allOf", std::move(branches)}};
  return o;
}

std::string TypeText(const FieldSpec& f) {
  switch (f.type) {
    case FieldType::kString: return "string";
    case FieldType::kInt: return "integer";
    case FieldType::kNumber: return "number";
    case FieldType::kBool: return "bool";
    case FieldType::kEnum: {
      std::string s;
      for (const auto& v : f.enum_values) s += (s.empty() ? "" : " \\| ") + v;
      return s;
    }
    case FieldType::kStringList: return "list of strings";
    case FieldType::kTemplate: return "template";
    case FieldType::kTemplateMap: return "map of templates";
    case FieldType::kStructure: return "structure with templates";
    case FieldType::kObject: return "mapping";
    case FieldType::kObjectMap: return "map of mappings";
    case FieldType::kObjectList: return "list of mappings";
    case FieldType::kAny: return "any";
  }
  return "";
}

std::string Cell(std::string s) {
  for (size_t p = 0; (p = s.find('|', p)) != std::string::npos; p += 2) s.replace(p, 1, "\\|");
  for (auto& c : s) {
    if (c == '\n') c = ' ';
  }
  return s;
}

std::string FieldTable(const std::vector<FieldSpec>& fields) {
  std::string md = "| key | type | default | description |\n|---|---|---|---|\n";
  for (const auto& f : fields) {
    std::string desc = f.description;
    if (!f.example.empty()) desc += " Example: `" + f.example + "`.";
    md += "| `" + f.name + "`" + (f.required ? " (required)" : "") + " | " + TypeText(f) + " | " +
          (f.default_yaml.empty() ? "" : "`" + Cell(f.default_yaml) + "`") + " | " + Cell(desc) + " |\n";
  }
  return md;
}

Status WriteFile(const std::filesystem::path& p, const std::string& text) {
  FILE* f = std::fopen(p.c_str(), "wb");
  if (!f) return Status::Io("cannot write " + p.string());
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  return Status::OK();
}

}  // namespace

std::string RecipeJsonSchema() {
  object root = ObjectSchema(RecipeFields(), true);
  root["$schema"] = "https://json-schema.org/draft/2020-12/schema";
  root["$id"] = "https://keyonce.dev/schema/recipe.json";
  root["title"] = "keyonce recipe";
  auto& props = root["properties"].as_object();
  props["source"] = ComponentSchema(SourceCommonFields(), "source", "Where records are read from.");
  props["tables"] = object{{"type", "object"},
                           {"description", "Lookup tables."},
                           {"additionalProperties", ComponentSchema(TableCommonFields(), "lookup", "A lookup table.")}};
  props["targets"] = object{{"type", "array"},
                            {"description", "Ordered targets."},
                            {"items", ComponentSchema(TargetCommonFields(), "target", "A target.")}};
  props["notify"] = object{{"type", "array"},
                           {"description", "Messages about the run itself."},
                           {"items", ComponentSchema(NotifyCommonFields(), "target", "A notification.")}};
  array steps;
  for (const auto& s : StepSpecs()) {
    steps.push_back(object{{"type", "object"},
                           {"description", s.summary},
                           {"properties", object{{s.name, FieldSchema(s.value)}}},
                           {"required", array{Value(s.name)}},
                           {"additionalProperties", false}});
  }
  props["steps"] = object{{"type", "array"}, {"description", "Ordered steps."}, {"items", object{{"oneOf", std::move(steps)}}}};
  return boost::json::serialize(root);
}

Status WriteReferenceDocs(const std::filesystem::path& docs_dir) {
  std::error_code ec;
  std::filesystem::create_directories(docs_dir / "connectors", ec);
  const std::string kGenerated =
      "<!-- Generated by `keyonce docs docs/` from the declarations in the code; do not edit. -->\n\n";
  std::string index = kGenerated + "# Connectors\n\n| connector | source | target | lookup | what |\n|---|---|---|---|---|\n";
  for (const auto* d : Registry::Global().All()) {
    std::string md = kGenerated + "# `" + d->name + "` connector\n\n" + d->summary + "\n";
    auto section = [&](const char* title, const std::optional<ComponentSpec>& spec,
                       const std::vector<FieldSpec>& common) {
      if (!spec) return;
      md += std::string("\n## As a ") + title + "\n\n" + spec->summary + "\n\n";
      md += FieldTable(spec->fields);
      md += "\nCommon " + std::string(title) + " keys: ";
      for (size_t i = 0; i < common.size(); ++i) md += (i ? ", " : "") + std::string("`") + common[i].name + "`";
      md += " (see [the recipe reference](../reference.md)).\n";
      if (!spec->example_yaml.empty()) md += "\n```yaml\n" + spec->example_yaml + "\n```\n";
    };
    section("source", d->source, SourceCommonFields());
    section("target", d->target, TargetCommonFields());
    section("lookup table", d->lookup, TableCommonFields());
    KEYONCE_RETURN_IF_ERROR(WriteFile(docs_dir / "connectors" / (d->name + ".md"), md));
    index += "| [" + d->name + "](" + d->name + ".md) | " + (d->source ? "yes" : "") + " | " +
             (d->target ? "yes" : "") + " | " + (d->lookup ? "yes" : "") + " | " + Cell(d->summary) + " |\n";
  }
  KEYONCE_RETURN_IF_ERROR(WriteFile(docs_dir / "connectors" / "README.md", index));

  std::string ref =
      kGenerated +
      "# Recipe reference\n\nEvery key a recipe may hold. "
      "[docs/recipes.md](recipes.md) explains them with complete examples.\n\n## Top level\n\n" +
      FieldTable(RecipeFields()) + "\n## `params.<name>`\n\n" + FieldTable(ParamFields()) +
      "\n## `secrets.<name>`\n\n" + FieldTable(SecretFields()) + "\n## `source`\n\n" +
      FieldTable(SourceCommonFields()) +
      "\nplus the settings of the source connector.\n\n## `targets[]`\n\n" +
      FieldTable(TargetCommonFields()) +
      "\nplus the settings of the target connector.\n\n## `tables.<name>`\n\n" +
      FieldTable(TableCommonFields()) +
      "\nplus the settings of the lookup connector.\n\n## `notify[]`\n\n" +
      FieldTable(NotifyCommonFields()) +
      "\nplus the settings of the target connector. The record is the run's summary: "
      "`recipe`, `run`, `status` (completed, completed_with_errors, failed, "
      "interrupted), `read`, `written`, `updated`, `unchanged`, `quarantined`, "
      "`in_doubt`, `rejected`, `filtered`, `seconds`, `error`, `targets` (per target "
      "counts), `quarantine_file` (a CSV of this run's quarantined records: "
      "reference, stage, target, position, reason; no field values; empty when "
      "none).\n\n## `on_error`\n\n" +
      FieldTable(ErrorFields()) +
      "\n## `limits`\n\nWhat happens when one is reached: "
      "[docs/recipes.md](recipes.md#resource-limits).\n\n" +
      FieldTable(LimitFields()) + "\n## Steps\n";
  for (const auto& s : StepSpecs()) {
    ref += "\n### `" + s.name + "`\n\n" + s.summary + "\n\n";
    if (s.value.type == FieldType::kObject || s.value.type == FieldType::kObjectMap) {
      ref += FieldTable(s.value.children);
    } else {
      ref += "Value: " + TypeText(s.value) + ".\n";
    }
    ref += "\n```yaml\nsteps:\n  " + [&] {
      std::string e = s.example_yaml, out;
      for (char c : e) {
        out += c;
        if (c == '\n') out += "  ";
      }
      return out;
    }() + "\n```\n";
  }
  return WriteFile(docs_dir / "reference.md", ref);
}

}  // namespace keyonce
