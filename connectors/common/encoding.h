// Character encodings of the files municipal systems export.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "keyonce/status.h"

namespace keyonce::connectors {

enum class Encoding { kUtf8, kWindows1252, kLatin1 };

// Parses "utf-8", "windows-1252" (also "cp1252"), "iso-8859-1" (also "latin1"),
// case-insensitively.
std::optional<Encoding> ParseEncoding(std::string_view name);

// Appends `in` converted to UTF-8 to *out. For kUtf8 validates instead: on
// invalid UTF-8 returns the byte offset of the first bad byte.
std::optional<size_t> ToUtf8(std::string_view in, Encoding enc, std::string* out);

// Offset of the first byte of `s` that is not valid UTF-8 (a sequence cut
// off by the end of `s` counts as invalid), nullopt when all of it is valid.
std::optional<size_t> FirstInvalidUtf8(std::string_view s);

// Length of a UTF-8 BOM at the start of `data` (3 or 0).
size_t Utf8BomLength(std::string_view data);

// True if `data` is valid UTF-8, ignoring a sequence cut off at its very end
// (so a buffer boundary inside a character is not an error).
bool LooksLikeUtf8(std::string_view data);

// The encoding of text whose encoding was not given: UTF-8 when `data` is
// valid UTF-8 (a sequence cut off at its end ignored) or holds at least one
// valid multi-byte UTF-8 sequence among invalid bytes (*mixed is then set),
// else Windows-1252.
Encoding GuessEncoding(std::string_view data, bool* mixed);

// Standard base64 (RFC 4648, with padding), e.g. for binary columns.
std::string Base64(std::string_view bytes);

}  // namespace keyonce::connectors
