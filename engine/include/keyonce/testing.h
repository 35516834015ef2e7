// For connectors' own tests: a component's settings checked from YAML the
// way a recipe's are, and a target made from recipe text, without the
// engine's internals (the validator, the recipe model). Implemented in
// keyonce_engine, which the tests link; connector code itself never
// includes this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "keyonce/connector.h"
#include "keyonce/settings.h"
#include "keyonce/spec.h"
#include "keyonce/status.h"

namespace keyonce::testing {

struct SettingsYaml {
  // Names templates may use under params. and secrets. (what a recipe declares).
  std::vector<std::string> params, secrets;
  std::filesystem::path base_dir;  // relative paths in settings start here
};

// `yaml` (a mapping) checked against `fields` by the recipe validator, as
// the section `section` of test.yaml; kInvalid with every problem, one per
// line with its line and column, when it does not validate.
Result<Settings> SettingsFromYaml(const std::vector<FieldSpec>& fields, std::string_view yaml,
                                  const SettingsYaml& options = {},
                                  const std::string& section = "section");

// The first target of a recipe, made from its text as a run would (the
// recipe validated, secrets and params declared there). `dir` is the
// recipe's folder. The target keeps what it was made from.
struct MadeTarget {
  std::shared_ptr<const void> recipe;  // kept alive for the target
  std::unique_ptr<Target> target;
};
Result<MadeTarget> TargetFromRecipe(std::string_view recipe_yaml, const std::filesystem::path& dir,
                                    const std::string& file_name = "test.yaml");

// What a source gave: its items in order, and the status that ended the
// reading (OK when it ran to its end or to `max_items`).
struct SourceRead {
  std::vector<SourceItem> items;
  Status error;
};
// Opens `source` (or takes the error that made it), reads up to `max_items`
// items and closes it.
SourceRead ReadSource(Result<std::unique_ptr<Source>> source, const RunContext& ctx,
                      size_t max_items = SIZE_MAX);

}  // namespace keyonce::testing
