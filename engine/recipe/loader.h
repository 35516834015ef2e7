// Loading and validating recipe files.
//
// LoadRecipe reads a recipe, checks it completely (unknown keys, types,
// connectors, templates, references between sections) without touching the
// network, files named in it, or secrets, and returns the compiled Recipe, or
// nullptr with every problem in *diags.
#pragma once

#include <filesystem>
#include <memory>

#include "recipe/recipe.h"
#include "recipe/spec_walk.h"

namespace keyonce {

std::shared_ptr<const Recipe> LoadRecipe(const std::filesystem::path& file, Diagnostics* diags);
std::shared_ptr<const Recipe> LoadRecipeText(const std::string& display_name,
                                             const std::string& text,
                                             const std::filesystem::path& base_dir,
                                             Diagnostics* diags);

}  // namespace keyonce
