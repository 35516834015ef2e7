#include "keyonce/testing.h"

#include <yaml-cpp/yaml.h>

#include "recipe/loader.h"
#include "recipe/spec_walk.h"

namespace keyonce::testing {
namespace {

Status Invalid(const Diagnostics& diags, const std::string& what) {
  std::string text = what;
  for (const auto& d : diags.items()) text += "\n" + d.ToString();
  return Status::Invalid(text);
}

}  // namespace

Result<Settings> SettingsFromYaml(const std::vector<FieldSpec>& fields, std::string_view yaml,
                                  const SettingsYaml& options, const std::string& section) {
  Diagnostics diags;
  SpecWalker w("test.yaml", std::string(yaml), &diags);
  w.params = options.params;
  w.secrets = options.secrets;
  w.base_dir = options.base_dir;
  YAML::Node node;
  try {
    node = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return Status::Invalid(std::string("settings are not YAML: ") + e.what());
  }
  Settings s = w.Walk(node, fields, section);
  if (diags.HasErrors()) return Invalid(diags, "settings do not validate:");
  return s;
}

Result<MadeTarget> TargetFromRecipe(std::string_view recipe_yaml, const std::filesystem::path& dir,
                                    const std::string& file_name) {
  Diagnostics diags;
  std::shared_ptr<const Recipe> recipe =
      LoadRecipeText(file_name, std::string(recipe_yaml), dir, &diags);
  if (!recipe) return Invalid(diags, "the recipe does not validate:");
  if (recipe->targets.empty()) return Status::Invalid("the recipe has no target");
  const auto& t = recipe->targets.front();
  auto made = t.def->make_target(t.settings);
  if (!made.ok()) return made.status();
  return MadeTarget{recipe, std::move(made).value()};
}

SourceRead ReadSource(Result<std::unique_ptr<Source>> source, const RunContext& ctx,
                      size_t max_items) {
  SourceRead out;
  if (!source.ok()) {
    out.error = source.status();
    return out;
  }
  Source& src = **source;
  out.error = src.Open(ctx);
  if (!out.error.ok()) return out;
  while (out.items.size() < max_items) {
    SourceItem item;
    auto more = src.Next(&item);
    if (!more.ok()) {
      out.error = more.status();
      break;
    }
    if (!*more) break;
    out.items.push_back(std::move(item));
  }
  src.Close();
  return out;
}

}  // namespace keyonce::testing
