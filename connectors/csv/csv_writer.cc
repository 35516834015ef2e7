#include "connectors/csv/csv_writer.h"

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace keyonce::connectors::csv {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Windows-1252 bytes 0x80-0x9F, as code points (0x81, 0x8D, 0x8F, 0x90 and
// 0x9D are the C1 controls, as the reader maps them).
constexpr char32_t kCp1252High[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,
};

// Decodes the UTF-8 sequence at in[i] (already validated); sets *len.
char32_t Decode(std::string_view in, size_t i, size_t* len) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data()) + i;
  if (p[0] < 0x80) {
    *len = 1;
    return p[0];
  }
  if (p[0] < 0xE0) {
    *len = 2;
    return (char32_t(p[0] & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (p[0] < 0xF0) {
    *len = 3;
    return (char32_t(p[0] & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  *len = 4;
  return (char32_t(p[0] & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) |
         (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

std::optional<unsigned char> ToSingleByte(char32_t c, Encoding enc) {
  if (c < 0x80) return static_cast<unsigned char>(c);
  if (enc == Encoding::kLatin1) {
    if (c <= 0xFF) return static_cast<unsigned char>(c);
    return std::nullopt;
  }
  if (c >= 0xA0 && c <= 0xFF) return static_cast<unsigned char>(c);
  for (unsigned k = 0; k < 32; ++k) {
    if (kCp1252High[k] == c) return static_cast<unsigned char>(0x80 + k);
  }
  return std::nullopt;
}

}  // namespace

bool LooksLikeFormula(std::string_view text) {
  if (text.empty()) return false;
  const char c = text[0];
  if (c == '=' || c == '@' || c == '\t' || c == '\r') return true;
  if (c != '+' && c != '-') return false;
  // A signed number: digits with . , or spaces as separators, optional exponent.
  size_t i = 1;
  bool digit = false;
  while (i < text.size() && (IsDigit(text[i]) || text[i] == '.' || text[i] == ',' || text[i] == ' ')) {
    digit = digit || IsDigit(text[i]);
    ++i;
  }
  if (digit && i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    size_t j = i + 1;
    if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
    const size_t exp_start = j;
    while (j < text.size() && IsDigit(text[j])) ++j;
    if (j > exp_start) i = j;
  }
  return !(digit && i == text.size());
}

std::string GuardFormula(std::string text) {
  if (LooksLikeFormula(text)) text.insert(text.begin(), '\'');
  return text;
}

void AppendField(std::string_view value, char delimiter, std::string* out) {
  bool quote = !value.empty() && (value.front() == ' ' || value.front() == '\t' ||
                                  value.back() == ' ' || value.back() == '\t');
  if (!quote) {
    for (char c : value) {
      if (c == delimiter || c == '"' || c == '\n' || c == '\r') {
        quote = true;
        break;
      }
    }
  }
  if (!quote) {
    out->append(value);
    return;
  }
  out->push_back('"');
  size_t i = 0;
  while (i < value.size()) {
    const void* q = std::memchr(value.data() + i, '"', value.size() - i);
    if (!q) {
      out->append(value.data() + i, value.size() - i);
      break;
    }
    const size_t k = static_cast<size_t>(static_cast<const char*>(q) - value.data());
    out->append(value.data() + i, k + 1 - i);
    out->push_back('"');
    i = k + 1;
  }
  out->push_back('"');
}

std::optional<size_t> FromUtf8(std::string_view in, Encoding enc, std::string* out) {
  if (enc == Encoding::kUtf8) {
    std::string checked;
    if (auto bad = ToUtf8(in, Encoding::kUtf8, &checked)) {
      out->append(in.substr(0, *bad));
      return bad;
    }
    out->append(in);
    return std::nullopt;
  }
  // Validate first, so that Decode only sees well-formed sequences.
  {
    std::string scratch;
    if (auto bad = ToUtf8(in, Encoding::kUtf8, &scratch)) {
      std::string head;
      FromUtf8(in.substr(0, *bad), enc, &head);
      out->append(head);
      return bad;
    }
  }
  size_t i = 0;
  while (i < in.size()) {
    const unsigned char b = static_cast<unsigned char>(in[i]);
    if (b < 0x80) {
      out->push_back(static_cast<char>(b));
      ++i;
      continue;
    }
    size_t len = 1;
    const char32_t c = Decode(in, i, &len);
    auto byte = ToSingleByte(c, enc);
    if (!byte) return i;
    out->push_back(static_cast<char>(*byte));
    i += len;
  }
  return std::nullopt;
}

std::string CodePointName(std::string_view in, size_t offset) {
  std::string scratch;
  if (offset >= in.size()) return "?";
  const std::string_view rest = in.substr(offset);
  size_t len = 1;
  // Only decode a well-formed sequence; otherwise name the byte.
  const unsigned char b = static_cast<unsigned char>(rest[0]);
  size_t need = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
  char buf[16];
  if (need <= rest.size() && !ToUtf8(rest.substr(0, need), Encoding::kUtf8, &scratch)) {
    std::snprintf(buf, sizeof buf, "U+%04X", static_cast<unsigned>(Decode(rest, 0, &len)));
  } else {
    std::snprintf(buf, sizeof buf, "byte 0x%02X", b);
  }
  return buf;
}

Status AppendRow(const std::vector<std::string>& names, const std::vector<std::string>& values,
                 const CsvWriteOptions& options, std::string* out) {
  const size_t start = out->size();
  std::string field;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out->push_back(options.delimiter);
    if (options.encoding == Encoding::kUtf8) {
      AppendField(values[i], options.delimiter, out);
      continue;
    }
    field.clear();
    if (auto bad = FromUtf8(values[i], options.encoding, &field)) {
      out->resize(start);
      const char* enc = options.encoding == Encoding::kWindows1252 ? "windows-1252" : "ISO-8859-1";
      return Status::Permanent("column '" + (i < names.size() ? names[i] : std::to_string(i + 1)) +
                               "': character " + CodePointName(values[i], *bad) +
                               " cannot be written in " + enc);
    }
    // Quoting looks only at ASCII bytes, which every encoding keeps.
    AppendField(field, options.delimiter, out);
  }
  out->append(options.line_ending);
  return Status::OK();
}

}  // namespace keyonce::connectors::csv
