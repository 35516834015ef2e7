// Fuzzes the recipe loader and validator: YAML text in, a compiled recipe or
// diagnostics out, never a crash. Files named in the recipe are resolved
// against a private temp dir and are never read or written by validation.
#include <cstddef>
#include <cstdint>
#include <string>

#include "recipe/loader.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return -1;
  std::string text(keyonce::fuzz::AsText(data, size));
  keyonce::Diagnostics diags;
  auto recipe =
      keyonce::LoadRecipeText("fuzz.yaml", text, keyonce::fuzz::TempDir() / "recipes", &diags);
  for (const auto& d : diags.items()) {
    if (d.ToString().empty()) __builtin_trap();
  }
  if (recipe && diags.HasErrors()) __builtin_trap();  // a recipe is returned only when valid
  if (!recipe && !diags.HasErrors()) __builtin_trap();
  return 0;
}
