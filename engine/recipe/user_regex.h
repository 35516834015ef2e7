// A regular expression a recipe gives (a parameter's or a rule's `pattern`,
// on_error.permanent), compiled in one place: checked before std::regex sees
// it, as libstdc++'s regex compiler reads a repetition count such as
// {99999999999999999999} into a signed long without a bound (undefined
// behaviour; found by the recipe fuzzer).
#pragma once

#include <cctype>
#include <optional>
#include <regex>
#include <string>
#include <string_view>

namespace keyonce {

// Why `pattern` cannot be compiled safely, or nullopt: a repetition count
// over 9999 (outside a [...] class, where braces and digits are letters).
inline std::optional<std::string> UserRegexProblem(std::string_view pattern) {
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      ++i;
    } else if (in_class) {
      in_class = c != ']';
    } else if (c == '[') {
      in_class = true;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') ++i;
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') ++i;  // a leading ] is a letter
    } else if (c == '{') {
      size_t digits = 0;
      for (size_t j = i + 1; j < pattern.size(); ++j) {
        if (std::isdigit(static_cast<unsigned char>(pattern[j]))) {
          if (++digits > 4) return std::string("a repetition count over 9999 in {...}");
        } else if (pattern[j] == ',') {
          digits = 0;
        } else {
          break;
        }
      }
    }
  }
  return std::nullopt;
}

// Compiles `pattern` (ECMAScript) into *out, or says why it cannot.
inline std::optional<std::string> CompileUserRegex(const std::string& pattern, std::regex* out) {
  if (auto bad = UserRegexProblem(pattern)) return "invalid regular expression: " + *bad;
  try {
    *out = std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    return std::string("invalid regular expression: ") + e.what();
  }
  return std::nullopt;
}

}  // namespace keyonce
