// Writing CSV rows: quoting, spreadsheet formula guard, output encodings.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/common/encoding.h"
#include "keyonce/status.h"

namespace keyonce::connectors::csv {

struct CsvWriteOptions {
  char delimiter = ',';
  Encoding encoding = Encoding::kUtf8;
  std::string line_ending = "\r\n";
};

// True when a spreadsheet would read `text` as a formula: it starts with
// = + - @ (or a tab / carriage return) and is not a plain number such as
// "-12,5" or "+45 12 34 56 78".
bool LooksLikeFormula(std::string_view text);

// `text` with a leading apostrophe when LooksLikeFormula(text).
std::string GuardFormula(std::string text);

// Appends `value` as one CSV field: quoted (quotes doubled) when it holds the
// delimiter, a quote, CR or LF, or starts or ends with a space or tab.
void AppendField(std::string_view value, char delimiter, std::string* out);

// Appends UTF-8 `in` converted to `enc`. When a character has no byte in
// `enc` (or `in` is not UTF-8) returns its byte offset in `in`; *out is then
// left with the part before it.
std::optional<size_t> FromUtf8(std::string_view in, Encoding enc, std::string* out);

// The code point starting at in[offset], as "U+00E6" (for messages).
std::string CodePointName(std::string_view in, size_t offset);

// Appends a whole row (fields, delimiters, line ending) in the output
// encoding. On a character the encoding cannot hold, fails with kPermanent
// naming the column (never the value); *out is then unchanged.
Status AppendRow(const std::vector<std::string>& names, const std::vector<std::string>& values,
                 const CsvWriteOptions& options, std::string* out);

}  // namespace keyonce::connectors::csv
