// Character encodings: windows-1252 and ISO-8859-1 to UTF-8, UTF-8 checks.
//
// Windows-1252 follows the WHATWG Encoding Standard: 0x80-0x9F are the
// typographic characters (0x80 -> U+20AC euro sign, 0x96 -> U+2013 en dash,
// ...) and the five bytes Windows leaves undefined (0x81, 0x8D, 0x8F, 0x90,
// 0x9D) map to the C1 control of the same number, so no byte is lost.
#include "connectors/common/encoding.h"

#include <openssl/evp.h>

#include <cstdint>
#include <cstring>

namespace keyonce::connectors {
namespace {

constexpr uint64_t kHighBits = 0x8080808080808080ull;

// Windows-1252 0x80-0x9F.
constexpr char16_t kCp1252High[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,  // 80-87
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,  // 88-8F
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,  // 90-97
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178,  // 98-9F
};

// Index of the first byte >= 0x80 at or after `i`, or in.size().
size_t SkipAscii(std::string_view in, size_t i) {
  const char* p = in.data();
  const size_t n = in.size();
  while (i + 8 <= n) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w & kHighBits) break;
    i += 8;
  }
  while (i < n && static_cast<unsigned char>(p[i]) < 0x80) ++i;
  return i;
}

void AppendCodePoint(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

bool IsCont(unsigned char c) { return (c & 0xC0) == 0x80; }

enum class SeqCheck { kOk, kBad, kTruncated };

// Checks the sequence starting at in[i] (a byte >= 0x80). On kOk sets *len.
// kTruncated: the bytes up to the end are a valid start of a sequence.
SeqCheck CheckSequence(std::string_view in, size_t i, size_t* len) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const size_t n = in.size();
  const unsigned char c = p[i];
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;  // no overlong 3-byte forms
    if (c == 0xED) hi = 0x9F;  // no UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;  // no overlong 4-byte forms
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return SeqCheck::kBad;  // continuation byte, C0/C1 overlong lead, F5-FF
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= n) return SeqCheck::kTruncated;
    const unsigned char b = p[i + k];
    if (k == 1 ? (b < lo || b > hi) : !IsCont(b)) return SeqCheck::kBad;
  }
  *len = need + 1;
  return SeqCheck::kOk;
}

// Offset of the first invalid sequence, or nullopt. *truncated is set when
// that sequence is only cut off by the end of `in`.
std::optional<size_t> FindInvalidUtf8(std::string_view in, bool* truncated) {
  size_t i = 0;
  const size_t n = in.size();
  while (true) {
    i = SkipAscii(in, i);
    if (i >= n) return std::nullopt;
    size_t len = 0;
    switch (CheckSequence(in, i, &len)) {
      case SeqCheck::kOk: i += len; break;
      case SeqCheck::kBad: *truncated = false; return i;
      case SeqCheck::kTruncated: *truncated = true; return i;
    }
  }
}

char ToLowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ToLowerAscii(a[i]) != ToLowerAscii(b[i])) return false;
  }
  return true;
}

}  // namespace

std::optional<Encoding> ParseEncoding(std::string_view name) {
  for (const char* n : {"utf-8", "utf8"}) {
    if (EqualsIgnoreCase(name, n)) return Encoding::kUtf8;
  }
  for (const char* n : {"windows-1252", "cp1252", "windows1252"}) {
    if (EqualsIgnoreCase(name, n)) return Encoding::kWindows1252;
  }
  for (const char* n : {"iso-8859-1", "latin1", "latin-1", "iso8859-1"}) {
    if (EqualsIgnoreCase(name, n)) return Encoding::kLatin1;
  }
  return std::nullopt;
}

std::optional<size_t> FirstInvalidUtf8(std::string_view s) {
  bool truncated = false;
  return FindInvalidUtf8(s, &truncated);
}

std::optional<size_t> ToUtf8(std::string_view in, Encoding enc, std::string* out) {
  if (enc == Encoding::kUtf8) {
    if (auto bad = FirstInvalidUtf8(in)) return bad;
    out->append(in);
    return std::nullopt;
  }
  out->reserve(out->size() + in.size() + in.size() / 8);
  size_t i = 0;
  const size_t n = in.size();
  while (i < n) {
    const size_t ascii_end = SkipAscii(in, i);
    out->append(in.data() + i, ascii_end - i);
    i = ascii_end;
    // A run of high bytes.
    while (i < n) {
      const unsigned char c = static_cast<unsigned char>(in[i]);
      if (c < 0x80) break;
      if (enc == Encoding::kWindows1252 && c < 0xA0) {
        AppendCodePoint(kCp1252High[c - 0x80], out);
      } else {
        out->push_back(static_cast<char>(0xC0 | (c >> 6)));
        out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
      }
      ++i;
    }
  }
  return std::nullopt;
}

size_t Utf8BomLength(std::string_view data) {
  return data.size() >= 3 && data.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
}

bool LooksLikeUtf8(std::string_view data) {
  bool truncated = false;
  auto bad = FindInvalidUtf8(data, &truncated);
  return !bad || truncated;
}

Encoding GuessEncoding(std::string_view data, bool* mixed) {
  bool truncated = false;
  *mixed = false;
  auto bad = FindInvalidUtf8(data, &truncated);
  if (!bad || truncated) return Encoding::kUtf8;
  // Not all UTF-8. A valid multi-byte sequence ("ø" as C3 B8) almost never
  // happens by chance in Windows-1252 text, so its presence means the file
  // mixes both: read it as UTF-8, and the rows that are not fail loudly
  // instead of every UTF-8 row silently turning into mojibake.
  for (size_t i = SkipAscii(data, 0); i < data.size(); i = SkipAscii(data, i)) {
    size_t len = 0;
    if (CheckSequence(data, i, &len) == SeqCheck::kOk) {
      *mixed = true;
      return Encoding::kUtf8;
    }
    ++i;
  }
  return Encoding::kWindows1252;
}

std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  if (bytes.empty()) return out;
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace keyonce::connectors
