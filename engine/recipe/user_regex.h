// A regular expression a recipe gives (a parameter's or a rule's `pattern`,
// on_error.permanent), checked before std::regex sees it: libstdc++'s regex
// compiler reads a repetition count such as {99999999999999999999} into a
// signed long without a bound (undefined behaviour; found by the recipe
// fuzzer).
#pragma once

#include <cctype>
#include <optional>
#include <string>
#include <string_view>

namespace keyonce {

// Why `pattern` cannot be compiled safely, or nullopt: a repetition count
// over 9999.
inline std::optional<std::string> UserRegexProblem(std::string_view pattern) {
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      ++i;
      continue;
    }
    if (pattern[i] != '{') continue;
    size_t digits = 0;
    for (size_t j = i + 1; j < pattern.size(); ++j) {
      const char c = pattern[j];
      if (std::isdigit(static_cast<unsigned char>(c))) {
        if (++digits > 4) return std::string("a repetition count over 9999 in {...}");
      } else if (c == ',') {
        digits = 0;
      } else {
        break;
      }
    }
  }
  return std::nullopt;
}

}  // namespace keyonce
