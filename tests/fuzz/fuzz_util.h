// Helpers shared by the fuzz targets: splitting one input into parts, and a
// private temporary directory (the only place a fuzzer may write).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

namespace keyonce::fuzz {

// The input as text.
inline std::string_view AsText(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Splits at the first '\n': {before, after} (after is empty without one).
inline std::pair<std::string_view, std::string_view> SplitLine(std::string_view in) {
  size_t nl = in.find('\n');
  if (nl == std::string_view::npos) return {in, {}};
  return {in.substr(0, nl), in.substr(nl + 1)};
}

// A directory of its own under $TMPDIR (or /tmp), created on first use and
// removed at exit.
const std::filesystem::path& TempDir();

}  // namespace keyonce::fuzz
