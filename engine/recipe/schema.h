// Generated descriptions of the recipe format: the JSON Schema for editors
// (`keyonce schema`) and the Markdown reference (`keyonce docs`). Both come
// from the same FieldSpec declarations the validator uses.
#pragma once

#include <filesystem>
#include <string>

#include "keyonce/status.h"

namespace keyonce {

std::string RecipeJsonSchema();
// Writes docs/connectors/<name>.md for every connector and docs/reference.md.
Status WriteReferenceDocs(const std::filesystem::path& docs_dir);

}  // namespace keyonce
