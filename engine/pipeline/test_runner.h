// `keyonce test`: a recipe's behaviour checked against fixture records.
//
// A test file names a recipe, parameters, secrets (dummy values) and cases;
// each case feeds input records through the steps and the key, renders what
// every target would receive (Target::Render, nothing is opened or written,
// no journal) and compares it with the expected writes. Replies for capture
// templates can be given per target, so chains are testable without
// servers. See docs/testing.md.
#pragma once

#include <filesystem>
#include <iosfwd>

namespace keyonce {

// Returns 0 if every case passes, 1 if any fails, 2 if the test file or its
// recipe is invalid.
int RunRecipeTest(const std::filesystem::path& test_file, std::ostream& out, std::ostream& err);

}  // namespace keyonce
