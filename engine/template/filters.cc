// The filter table. Each filter reads its input from the slot and replaces it
// with its result. Error messages name the filter but never the value.
#include <boost/regex.hpp>
#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <mutex>
#include <unordered_map>

#include "template/cpr.h"
#include "template/internal.h"

namespace keyonce::tmpl {

Status FilterError(const FilterContext& ctx, std::string_view message) {
  std::string m = "filter '";
  m += ctx.name;
  m += "': ";
  m += message;
  return Status::Invalid(std::move(m));
}

namespace {

using Args = std::span<const Value* const>;

const char* KindName(const Value& v) {
  switch (v.kind()) {
    case boost::json::kind::null: return "null";
    case boost::json::kind::bool_: return "a boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_: return "a number";
    case boost::json::kind::string: return "text";
    case boost::json::kind::array: return "a list";
    case boost::json::kind::object: return "an object";
  }
  return "a value";
}

// The text of a scalar input: strings as they are, numbers and booleans in
// text form. Lists and objects are an error.
Status TextOf(const Value& v, const FilterContext& ctx, std::string_view* out, std::string* buf) {
  if (v.is_string()) {
    *out = v.get_string();
    return Status::OK();
  }
  if (v.is_array() || v.is_object()) {
    return FilterError(ctx, std::string("expects text, got ") + KindName(v));
  }
  *buf = ToText(v);
  *out = *buf;
  return Status::OK();
}

Value Str(std::string_view s) { return Value(boost::json::string(s)); }

// A filter that can grow its input checks the size it would make before it
// makes it (limits.template_bytes), so memory never holds the oversized text.
Status CheckSize(const FilterContext& ctx, size_t bytes) {
  if (bytes <= ctx.scope.max_text_bytes) return Status::OK();
  return TextWouldBeTooLong("the filter '" + std::string(ctx.name) + "'", bytes,
                            ctx.scope.max_text_bytes);
}

// An output iterator that appends to a string and throws PastLimit when the
// string would pass a limit, for algorithms (regex_replace) whose output size
// is known only as they write it. PastLimit is no std::exception, so no
// handler on the way (a library's or ours) mistakes it for another failure.
struct PastLimit {};
class LimitedAppender {
 public:
  using iterator_category = std::output_iterator_tag;
  using value_type = void;
  using difference_type = std::ptrdiff_t;
  using pointer = void;
  using reference = void;
  LimitedAppender(boost::json::string* out, size_t limit) : out_(out), limit_(limit) {}
  LimitedAppender& operator=(char c) {
    if (out_->size() >= limit_) throw PastLimit{};
    out_->push_back(c);
    return *this;
  }
  LimitedAppender& operator*() { return *this; }
  LimitedAppender& operator++() { return *this; }
  LimitedAppender operator++(int) { return *this; }

 private:
  boost::json::string* out_;
  size_t limit_;
};

// ------------------------------------------------------------------ UTF-8

// Decodes one code point at s[i]; invalid bytes decode as themselves with
// length 1 (and are copied through unchanged by the case mappings).
uint32_t Decode(std::string_view s, size_t i, size_t* len) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  auto cont = [&](size_t k) {
    return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  };
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i + k]) & 0x3F); };
  if (c < 0x80) {
    *len = 1;
    return c;
  }
  if ((c & 0xE0) == 0xC0 && c >= 0xC2 && cont(1)) {
    *len = 2;
    return ((c & 0x1Fu) << 6) | byte(1);
  }
  if ((c & 0xF0) == 0xE0 && cont(1) && cont(2)) {
    *len = 3;
    return ((c & 0x0Fu) << 12) | (byte(1) << 6) | byte(2);
  }
  if ((c & 0xF8) == 0xF0 && cont(1) && cont(2) && cont(3)) {
    *len = 4;
    return ((c & 0x07u) << 18) | (byte(1) << 12) | (byte(2) << 6) | byte(3);
  }
  *len = 1;
  return 0xFFFFFFFF;  // invalid
}


// Latin-1, Latin Extended-A, Greek and Cyrillic case pairs.
uint32_t ToUpperCp(uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c < 0xE0) return c;
  if (c <= 0xFE) return c == 0xF7 ? c : c - 32;  // à..þ (not ÷)
  if (c == 0xFF) return 0x178;
  if (c >= 0x100 && c <= 0x17F) {
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return (c % 2 == 1) ? c - 1 : c;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c % 2 == 0) ? c - 1 : c;
    return c;
  }
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}

uint32_t ToLowerCp(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c < 0xC0) return c;
  if (c <= 0xDE) return c == 0xD7 ? c : c + 32;  // À..Þ (not ×)
  if (c == 0x178) return 0xFF;
  if (c >= 0x100 && c <= 0x17F) {
    if ((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) return (c % 2 == 0) ? c + 1 : c;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return (c % 2 == 1) ? c + 1 : c;
    return c;
  }
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

template <uint32_t (*Map)(uint32_t)>
std::string MapCase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      out.push_back(static_cast<char>(Map(b)));
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp = Decode(s, i, &len);
    if (cp == 0xFFFFFFFF) {
      out.push_back(s[i]);
    } else {
      AppendUtf8(out, Map(cp));
    }
    i += len;
  }
  return out;
}

// Length in bytes of leading/trailing whitespace: ASCII, no-break space and BOM.
size_t SpaceAt(std::string_view s, size_t i) {
  char c = s[i];
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') return 1;
  if (s.compare(i, 2, "\xC2\xA0") == 0) return 2;
  if (s.compare(i, 3, "\xEF\xBB\xBF") == 0) return 3;
  return 0;
}

std::string_view TrimView(std::string_view s) {
  size_t b = 0;
  while (b < s.size()) {
    size_t n = SpaceAt(s, b);
    if (!n) break;
    b += n;
  }
  size_t e = s.size();
  while (e > b) {
    size_t n = 0;
    if (SpaceAt(s, e - 1) == 1) n = 1;
    else if (e - b >= 2 && SpaceAt(s, e - 2) == 2) n = 2;
    else if (e - b >= 3 && SpaceAt(s, e - 3) == 3) n = 3;
    if (!n) break;
    e -= n;
  }
  return s.substr(b, e - b);
}

// ------------------------------------------------------------------ text filters

// Runs fn on the text of a scalar input; null passes through.
template <typename Fn>
Status OnText(Slot& io, const FilterContext& ctx, Fn&& fn) {
  const Value& v = io.get();
  if (v.is_null()) return Status::OK();
  std::string_view s;
  std::string buf;
  KEYONCE_RETURN_IF_ERROR(TextOf(v, ctx, &s, &buf));
  return fn(s);
}

Status FTrim(Slot& io, Args, const FilterContext& ctx) {
  return OnText(io, ctx, [&](std::string_view s) {
    std::string_view t = TrimView(s);
    if (t.size() != s.size() || !io.get().is_string()) io.Set(Str(t));
    return Status::OK();
  });
}

Status FUpper(Slot& io, Args, const FilterContext& ctx) {
  return OnText(io, ctx, [&](std::string_view s) {
    io.Set(Str(MapCase<ToUpperCp>(s)));
    return Status::OK();
  });
}

Status FLower(Slot& io, Args, const FilterContext& ctx) {
  return OnText(io, ctx, [&](std::string_view s) {
    io.Set(Str(MapCase<ToLowerCp>(s)));
    return Status::OK();
  });
}

Status FDefault(Slot& io, Args args, const FilterContext&) {
  const Value& v = io.get();
  if (v.is_null() || (v.is_string() && v.get_string().empty())) io.Set(*args[0]);
  return Status::OK();
}

// ------------------------------------------------------------------ argument helpers

Status StrArg(const Value& v, const FilterContext& ctx, std::string_view what,
              std::string_view* out, std::string* buf) {
  if (v.is_string()) {
    *out = v.get_string();
    return Status::OK();
  }
  if (v.is_array() || v.is_object()) {
    return FilterError(ctx, std::string(what) + " must be text, got " + KindName(v));
  }
  *buf = ToText(v);
  *out = *buf;
  return Status::OK();
}

Status IntArg(const Value& v, const FilterContext& ctx, std::string_view what, int min, int max,
              int* out) {
  auto n = NumericValue(v);
  if (!n || !n->is_int || n->i < min || n->i > max) {
    return FilterError(ctx, std::string(what) + " must be a whole number from " + std::to_string(min) +
                                " to " + std::to_string(max));
  }
  *out = static_cast<int>(n->i);
  return Status::OK();
}

std::optional<PrepareError> LiteralInt(std::span<const Value* const> lit, size_t i,
                                       std::string_view what, int min, int max) {
  if (i >= lit.size() || !lit[i]) return std::nullopt;
  auto n = NumericValue(*lit[i]);
  if (!n || !n->is_int || n->i < min || n->i > max) {
    return PrepareError{i, std::string(what) + " must be a whole number from " + std::to_string(min) +
                               " to " + std::to_string(max)};
  }
  return std::nullopt;
}

std::optional<PrepareError> LiteralText(std::span<const Value* const> lit, size_t i,
                                        std::string_view what, bool non_empty) {
  if (i >= lit.size() || !lit[i]) return std::nullopt;
  if (!lit[i]->is_string()) return PrepareError{i, std::string(what) + " must be a string"};
  if (non_empty && lit[i]->get_string().empty()) {
    return PrepareError{i, std::string(what) + " must not be empty"};
  }
  return std::nullopt;
}

// ------------------------------------------------------------------ replace, digits, split, join

Status FReplace(Slot& io, Args args, const FilterContext& ctx) {
  return OnText(io, ctx, [&](std::string_view s) {
    std::string_view from, to;
    std::string fb, tb;
    KEYONCE_RETURN_IF_ERROR(StrArg(*args[0], ctx, "the text to replace", &from, &fb));
    KEYONCE_RETURN_IF_ERROR(StrArg(*args[1], ctx, "the replacement", &to, &tb));
    if (from.empty()) return FilterError(ctx, "the text to replace must not be empty");
    if (to.size() > from.size() &&
        s.size() + s.size() / from.size() * (to.size() - from.size()) > ctx.scope.max_text_bytes) {
      // It could pass the limit: count the replacements first.
      size_t hits = 0;
      for (size_t at = s.find(from); at != std::string_view::npos;
           at = s.find(from, at + from.size()))
        ++hits;
      KEYONCE_RETURN_IF_ERROR(CheckSize(ctx, s.size() + hits * (to.size() - from.size())));
    }
    boost::json::string out;  // built in place: no second copy of a large text
    out.reserve(s.size());
    size_t pos = 0;
    for (;;) {
      size_t hit = s.find(from, pos);
      if (hit == std::string_view::npos) break;
      out.append(s.substr(pos, hit - pos));
      out.append(to);
      pos = hit + from.size();
    }
    out.append(s.substr(pos));
    io.Set(Value(std::move(out)));
    return Status::OK();
  });
}

std::optional<PrepareError> PReplace(std::span<const Value* const> lit, std::shared_ptr<const void>*) {
  if (auto e = LiteralText(lit, 0, "the text to replace", true)) return e;
  return LiteralText(lit, 1, "the replacement", false);
}

Status FDigits(Slot& io, Args, const FilterContext& ctx) {
  return OnText(io, ctx, [&](std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
      if (c >= '0' && c <= '9') out.push_back(c);
    }
    io.Set(Str(out));
    return Status::OK();
  });
}

// RFC 3986: everything but the unreserved characters is percent-encoded
// (UTF-8 bytes), so a value can go into a URL's path or query.
Status FUrlencode(Slot& io, Args, const FilterContext& ctx) {
  return OnText(io, ctx, [&](std::string_view s) {
    static const char* kHex = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size() * 3);
    for (unsigned char c : s) {
      if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '-' ||
          c == '.' || c == '_' || c == '~') {
        out.push_back(static_cast<char>(c));
      } else {
        out.push_back('%');
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
      }
    }
    io.Set(Str(out));
    return Status::OK();
  });
}

Status FSplit(Slot& io, Args args, const FilterContext& ctx) {
  return OnText(io, ctx, [&](std::string_view s) {
    std::string_view sep;
    std::string buf;
    KEYONCE_RETURN_IF_ERROR(StrArg(*args[0], ctx, "the separator", &sep, &buf));
    if (sep.empty()) return FilterError(ctx, "the separator must not be empty");
    // A list costs a value's size per item besides its text: that too is held
    // to limits.template_bytes, counted before the list is made.
    constexpr size_t kItemBytes = sizeof(Value);
    if ((s.size() / sep.size() + 1) * kItemBytes + s.size() > ctx.scope.max_text_bytes) {
      size_t items = 1;
      for (size_t at = s.find(sep); at != std::string_view::npos; at = s.find(sep, at + sep.size()))
        ++items;
      if (size_t bytes = items * kItemBytes + s.size(); bytes > ctx.scope.max_text_bytes) {
        return Status::Invalid("the filter 'split' would make a list of " + std::to_string(items) +
                               " items (about " + ByteSize(bytes) +
                               " in memory), more than limits.template_bytes (" +
                               ByteSize(ctx.scope.max_text_bytes) + ")");
      }
    }
    boost::json::array arr;
    if (!s.empty()) {
      size_t pos = 0;
      for (;;) {
        size_t hit = s.find(sep, pos);
        if (hit == std::string_view::npos) {
          arr.emplace_back(boost::json::string(s.substr(pos)));
          break;
        }
        arr.emplace_back(boost::json::string(s.substr(pos, hit - pos)));
        pos = hit + sep.size();
      }
    }
    io.Set(Value(std::move(arr)));
    return Status::OK();
  });
}

std::optional<PrepareError> PSplit(std::span<const Value* const> lit, std::shared_ptr<const void>*) {
  return LiteralText(lit, 0, "the separator", true);
}

Status FJoin(Slot& io, Args args, const FilterContext& ctx) {
  const Value& v = io.get();
  if (v.is_null()) return Status::OK();
  if (!v.is_array()) return FilterError(ctx, std::string("expects a list, got ") + KindName(v));
  std::string_view sep;
  std::string buf;
  KEYONCE_RETURN_IF_ERROR(StrArg(*args[0], ctx, "the separator", &sep, &buf));
  const auto& items = v.get_array();
  size_t size = items.empty() ? 0 : (items.size() - 1) * sep.size();
  for (const auto& item : items) size += TextSize(item);
  KEYONCE_RETURN_IF_ERROR(CheckSize(ctx, size));
  boost::json::string out;
  out.reserve(size);
  bool first = true;
  for (const auto& item : items) {
    if (!first) out.append(sep);
    first = false;
    if (item.is_string()) {
      out.append(item.get_string());
    } else if (!item.is_null()) {
      out.append(ToText(item));
    }
  }
  io.Set(Value(std::move(out)));
  return Status::OK();
}

std::optional<PrepareError> PJoin(std::span<const Value* const> lit, std::shared_ptr<const void>*) {
  return LiteralText(lit, 0, "the separator", false);
}

// ------------------------------------------------------------------ length, first, last, string, json

Status FLength(Slot& io, Args, const FilterContext&) {
  const Value& v = io.get();
  int64_t n = 0;
  switch (v.kind()) {
    case boost::json::kind::null: n = 0; break;
    case boost::json::kind::string: n = static_cast<int64_t>(CodePoints(v.get_string())); break;
    case boost::json::kind::array: n = static_cast<int64_t>(v.get_array().size()); break;
    case boost::json::kind::object: n = static_cast<int64_t>(v.get_object().size()); break;
    default: n = static_cast<int64_t>(CodePoints(ToText(v))); break;
  }
  io.Set(Value(n));
  return Status::OK();
}

template <bool kFirst>
Status FFirstLast(Slot& io, Args, const FilterContext& ctx) {
  const Value& v = io.get();
  if (v.is_null()) return Status::OK();
  if (v.is_array()) {
    const auto& arr = v.get_array();
    if (arr.empty()) {
      io.Ref(&NullValue());
      return Status::OK();
    }
    const Value& item = kFirst ? arr.front() : arr.back();
    if (io.is_ref()) {
      io.Ref(&item);
    } else {
      Value copy = item;
      io.Set(std::move(copy));
    }
    return Status::OK();
  }
  if (v.is_object()) return FilterError(ctx, "expects a list or text, got an object");
  std::string buf;
  std::string_view s;
  KEYONCE_RETURN_IF_ERROR(TextOf(v, ctx, &s, &buf));
  if (s.empty()) {
    io.Set(Str(""));
    return Status::OK();
  }
  size_t start = 0, len = 0;
  if (kFirst) {
    Decode(s, 0, &len);
  } else {
    start = s.size() - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 && s.size() - start < 4) {
      --start;
    }
    Decode(s, start, &len);
    if (start + len != s.size()) {  // an invalid sequence: take the last byte
      start = s.size() - 1;
      len = 1;
    }
  }
  io.Set(Str(s.substr(start, len)));
  return Status::OK();
}

Status FString(Slot& io, Args, const FilterContext& ctx) {
  if (io.get().is_array() || io.get().is_object()) {
    KEYONCE_RETURN_IF_ERROR(CheckSize(ctx, TextSize(io.get())));
  }
  if (!io.get().is_string()) io.Set(Str(ToText(io.get())));
  return Status::OK();
}

Status FJson(Slot& io, Args, const FilterContext& ctx) {
  KEYONCE_RETURN_IF_ERROR(CheckSize(ctx, JsonSize(io.get())));
  std::string out;
  AppendJson(out, io.get());
  io.Set(Str(out));
  return Status::OK();
}

// ------------------------------------------------------------------ numbers

std::optional<PrepareError> PDecimalSep(std::span<const Value* const> lit, size_t i) {
  if (i >= lit.size() || !lit[i]) return std::nullopt;
  if (!lit[i]->is_string() || (lit[i]->get_string() != "." && lit[i]->get_string() != ",")) {
    return PrepareError{i, "the decimal separator must be '.' or ','"};
  }
  return std::nullopt;
}

Status DecimalSepArg(Args args, size_t i, const FilterContext& ctx, char* out) {
  *out = '.';
  if (i >= args.size()) return Status::OK();
  const Value& v = *args[i];
  if (!v.is_string() || (v.get_string() != "." && v.get_string() != ",")) {
    return FilterError(ctx, "the decimal separator must be '.' or ','");
  }
  *out = v.get_string()[0];
  return Status::OK();
}

// Reads a number from a number or from text with the given decimal
// separator. Sets *absent for null and "".
Status NumberInput(const Value& v, char decimal, const FilterContext& ctx, Number* out, bool* absent) {
  *absent = false;
  if (v.is_null() || (v.is_string() && TrimView(v.get_string()).empty())) {
    *absent = true;
    return Status::OK();
  }
  if (v.is_string()) {
    auto n = ParseLocaleNumber(v.get_string(), decimal);
    if (!n) {
      return FilterError(ctx, std::string("value is not a number with decimal separator '") + decimal + "'");
    }
    *out = *n;
    return Status::OK();
  }
  auto n = NumericValue(v);
  if (!n) return FilterError(ctx, std::string("expects a number or numeric text, got ") + KindName(v));
  *out = *n;
  return Status::OK();
}

std::optional<PrepareError> PNumber(std::span<const Value* const> lit, std::shared_ptr<const void>*) {
  return PDecimalSep(lit, 0);
}

Status FNumber(Slot& io, Args args, const FilterContext& ctx) {
  const Value& v = io.get();
  if (v.is_int64() || v.is_uint64() || v.is_double()) return Status::OK();
  char decimal;
  KEYONCE_RETURN_IF_ERROR(DecimalSepArg(args, 0, ctx, &decimal));
  Number n;
  bool absent;
  KEYONCE_RETURN_IF_ERROR(NumberInput(v, decimal, ctx, &n, &absent));
  if (absent) {
    io.Ref(&NullValue());
    return Status::OK();
  }
  io.Set(NumberToValue(n));
  return Status::OK();
}

Status FInt(Slot& io, Args args, const FilterContext& ctx) {
  const Value& v = io.get();
  if (v.is_int64()) return Status::OK();
  char decimal;
  KEYONCE_RETURN_IF_ERROR(DecimalSepArg(args, 0, ctx, &decimal));
  Number n;
  bool absent;
  KEYONCE_RETURN_IF_ERROR(NumberInput(v, decimal, ctx, &n, &absent));
  if (absent) {
    io.Ref(&NullValue());
    return Status::OK();
  }
  if (!n.is_int) {
    if (n.d != std::trunc(n.d)) {
      return FilterError(ctx, "value is not a whole number (use round first to drop decimals)");
    }
    if (!(n.d >= -9.2e18 && n.d <= 9.2e18)) return FilterError(ctx, "value is out of range");
    n.i = static_cast<int64_t>(n.d);
  }
  io.Set(Value(n.i));
  return Status::OK();
}

std::optional<PrepareError> PFormatNumber(std::span<const Value* const> lit, std::shared_ptr<const void>*) {
  if (auto e = LiteralInt(lit, 0, "the number of decimals", 0, 20)) return e;
  if (auto e = LiteralText(lit, 1, "the decimal separator", true)) return e;
  return LiteralText(lit, 2, "the thousands separator", false);
}

Status FFormatNumber(Slot& io, Args args, const FilterContext& ctx) {
  Number n;
  bool absent;
  KEYONCE_RETURN_IF_ERROR(NumberInput(io.get(), '.', ctx, &n, &absent));
  if (absent) {
    io.Ref(&NullValue());
    return Status::OK();
  }
  int decimals;
  KEYONCE_RETURN_IF_ERROR(IntArg(*args[0], ctx, "the number of decimals", 0, 20, &decimals));
  std::string_view dec = ",", thou;
  std::string db, tb;
  if (args.size() > 1) KEYONCE_RETURN_IF_ERROR(StrArg(*args[1], ctx, "the decimal separator", &dec, &db));
  if (args.size() > 2) KEYONCE_RETURN_IF_ERROR(StrArg(*args[2], ctx, "the thousands separator", &thou, &tb));
  io.Set(Str(FormatNumber(n, decimals, dec, thou)));
  return Status::OK();
}

std::optional<PrepareError> PRound(std::span<const Value* const> lit, std::shared_ptr<const void>*) {
  return LiteralInt(lit, 0, "the number of decimals", 0, 15);
}

Status FRound(Slot& io, Args args, const FilterContext& ctx) {
  Number n;
  bool absent;
  KEYONCE_RETURN_IF_ERROR(NumberInput(io.get(), '.', ctx, &n, &absent));
  if (absent) {
    io.Ref(&NullValue());
    return Status::OK();
  }
  int decimals = 0;
  if (!args.empty()) KEYONCE_RETURN_IF_ERROR(IntArg(*args[0], ctx, "the number of decimals", 0, 15, &decimals));
  io.Set(RoundNumber(n, decimals));
  return Status::OK();
}

// ------------------------------------------------------------------ regex

struct RegexState {
  std::shared_ptr<const boost::regex> re;
};

// Limits that keep a backtracking match bounded. Boost.Regex gives up (and
// the filter reports "too complex") after about pattern length² × text length
// steps, which for a long pattern on a long text takes many seconds; so the
// pattern, the text and that product are capped up front.
constexpr size_t kMaxRegexPattern = 1000;      // bytes
constexpr size_t kMaxRegexText = 10000;        // bytes
constexpr size_t kMaxRegexWork = 10'000'000;  // pattern length² × text length

// Compiles a pattern. *error names the pattern only when it is config
// (a literal); patterns computed at run time may come from data.
std::shared_ptr<const boost::regex> CompileRegex(std::string_view pattern, bool literal,
                                                 std::string* error) {
  if (pattern.size() > kMaxRegexPattern) {
    *error = "the pattern is longer than " + std::to_string(kMaxRegexPattern) + " bytes";
    return nullptr;
  }
  try {
    return std::make_shared<const boost::regex>(pattern.begin(), pattern.end(), boost::regex::perl);
  } catch (const boost::regex_error& e) {
    *error = literal ? std::string("invalid regular expression: ") + e.what()
                     : std::string("invalid regular expression");
    return nullptr;
  }
}

// Patterns computed at run time, compiled once each (bounded).
std::shared_ptr<const boost::regex> CachedRegex(std::string_view pattern, std::string* error) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::shared_ptr<const boost::regex>> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(std::string(pattern));
    if (it != cache.end()) return it->second;
  }
  auto re = CompileRegex(pattern, false, error);
  if (!re) return nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() >= 256) cache.clear();
  cache.emplace(std::string(pattern), re);
  return re;
}

std::optional<PrepareError> PRegex(std::span<const Value* const> lit, std::shared_ptr<const void>* state) {
  if (auto e = LiteralText(lit, 0, "the pattern", false)) return e;
  if (lit.empty() || !lit[0]) return std::nullopt;
  std::string error;
  auto re = CompileRegex(lit[0]->get_string(), true, &error);
  if (!re) return PrepareError{0, error};
  *state = std::make_shared<const RegexState>(RegexState{std::move(re)});
  return std::nullopt;
}

std::optional<PrepareError> PRegexExtract(std::span<const Value* const> lit,
                                          std::shared_ptr<const void>* state) {
  if (auto e = PRegex(lit, state)) return e;
  if (auto e = LiteralInt(lit, 1, "the group", 0, 99)) return e;
  if (*state && lit.size() > 1 && lit[1]) {
    const auto* rs = static_cast<const RegexState*>(state->get());
    if (NumericValue(*lit[1])->i > static_cast<int64_t>(rs->re->mark_count())) {
      return PrepareError{1, "the pattern has only " + std::to_string(rs->re->mark_count()) + " group(s)"};
    }
  }
  return std::nullopt;
}

Status RegexArg(Args args, const FilterContext& ctx, const boost::regex** re,
                std::shared_ptr<const boost::regex>* hold) {
  if (ctx.prepared) {
    *re = static_cast<const RegexState*>(ctx.prepared)->re.get();
    return Status::OK();
  }
  std::string_view pattern;
  std::string buf;
  KEYONCE_RETURN_IF_ERROR(StrArg(*args[0], ctx, "the pattern", &pattern, &buf));
  std::string error;
  *hold = CachedRegex(pattern, &error);
  if (!*hold) return FilterError(ctx, error);
  *re = hold->get();
  return Status::OK();
}

Status RegexRunError(const FilterContext& ctx) {
  return FilterError(ctx, "the regular expression is too complex for the value");
}

// The text and pattern limits above, checked before matching `s`.
Status RegexTextLimits(const boost::regex& re, std::string_view s, const FilterContext& ctx) {
  if (s.size() > kMaxRegexText) {
    return FilterError(ctx, "the value is longer than " + std::to_string(kMaxRegexText) +
                                " bytes, the limit for regular expressions");
  }
  size_t p = std::max<size_t>(re.size(), 1);
  if (p * p * std::max<size_t>(s.size(), 1) > kMaxRegexWork) {
    return FilterError(
        ctx, "the pattern (" + std::to_string(re.size()) + " bytes) is too long for a value of " +
                 std::to_string(s.size()) +
                 " bytes (pattern length squared times value length may be at most " +
                 std::to_string(kMaxRegexWork) + ")");
  }
  return Status::OK();
}

Status FRegexMatch(Slot& io, Args args, const FilterContext& ctx) {
  const Value& v = io.get();
  if (v.is_null()) {
    io.Set(Value(false));
    return Status::OK();
  }
  const boost::regex* re;
  std::shared_ptr<const boost::regex> hold;
  KEYONCE_RETURN_IF_ERROR(RegexArg(args, ctx, &re, &hold));
  std::string_view s;
  std::string buf;
  KEYONCE_RETURN_IF_ERROR(TextOf(v, ctx, &s, &buf));
  KEYONCE_RETURN_IF_ERROR(RegexTextLimits(*re, s, ctx));
  try {
    bool found = boost::regex_search(s.begin(), s.end(), *re);
    io.Set(Value(found));
  } catch (const std::runtime_error&) {
    return RegexRunError(ctx);
  }
  return Status::OK();
}

Status FRegexExtract(Slot& io, Args args, const FilterContext& ctx) {
  const boost::regex* re;
  std::shared_ptr<const boost::regex> hold;
  return OnText(io, ctx, [&](std::string_view s) {
    KEYONCE_RETURN_IF_ERROR(RegexArg(args, ctx, &re, &hold));
    int group = re->mark_count() >= 1 ? 1 : 0;
    if (args.size() > 1) KEYONCE_RETURN_IF_ERROR(IntArg(*args[1], ctx, "the group", 0, 99, &group));
    if (static_cast<size_t>(group) > re->mark_count()) {
      return FilterError(ctx, "the pattern has only " + std::to_string(re->mark_count()) + " group(s)");
    }
    KEYONCE_RETURN_IF_ERROR(RegexTextLimits(*re, s, ctx));
    try {
      boost::match_results<std::string_view::const_iterator> m;
      if (boost::regex_search(s.begin(), s.end(), m, *re) && m[group].matched) {
        size_t at = static_cast<size_t>(m[group].first - s.begin());
        io.Set(Str(s.substr(at, static_cast<size_t>(m[group].length()))));
      } else {
        io.Ref(&NullValue());
      }
    } catch (const std::runtime_error&) {
      return RegexRunError(ctx);
    }
    return Status::OK();
  });
}

Status FRegexReplace(Slot& io, Args args, const FilterContext& ctx) {
  const boost::regex* re;
  std::shared_ptr<const boost::regex> hold;
  return OnText(io, ctx, [&](std::string_view s) {
    KEYONCE_RETURN_IF_ERROR(RegexArg(args, ctx, &re, &hold));
    std::string_view repl;
    std::string rb;
    KEYONCE_RETURN_IF_ERROR(StrArg(*args[1], ctx, "the replacement", &repl, &rb));
    KEYONCE_RETURN_IF_ERROR(RegexTextLimits(*re, s, ctx));
    try {
      boost::json::string out;
      out.reserve(s.size());
      boost::regex_replace(LimitedAppender(&out, ctx.scope.max_text_bytes), s.begin(), s.end(), *re,
                           repl, boost::format_perl);
      io.Set(Value(std::move(out)));
    } catch (const PastLimit&) {
      return Status::Invalid(
          "the filter 'regex_replace' would make a text longer than "
          "limits.template_bytes (" +
          ByteSize(ctx.scope.max_text_bytes) + ")");
    } catch (const std::runtime_error&) {
      return RegexRunError(ctx);
    }
    return Status::OK();
  });
}

std::optional<PrepareError> PRegexReplace(std::span<const Value* const> lit,
                                          std::shared_ptr<const void>* state) {
  if (auto e = PRegex(lit, state)) return e;
  return LiteralText(lit, 1, "the replacement", false);
}

// ------------------------------------------------------------------ dates

struct DateState {
  std::optional<DateFormat> format;   // when the format is a literal
  std::string format_text;            // that literal, for messages
  bool zone_literal = false;          // when the zone is a literal (zone may be UTC = nullptr)
  const date::time_zone* zone = nullptr;
};

std::optional<PrepareError> PrepareDate(std::span<const Value* const> lit,
                                        std::shared_ptr<const void>* state, FormatUse use) {
  auto st = std::make_shared<DateState>();
  if (!lit.empty() && lit[0]) {
    if (!lit[0]->is_string()) return PrepareError{0, "the format must be a string"};
    std::string error;
    st->format = ParseDateFormat(lit[0]->get_string(), use, &error);
    st->format_text = std::string(lit[0]->get_string());
    if (!st->format) return PrepareError{0, error};
  }
  if (lit.size() > 1 && lit[1]) {
    if (!lit[1]->is_string() && !lit[1]->is_null()) return PrepareError{1, "the time zone must be a string"};
    st->zone_literal = true;
    if (lit[1]->is_string() && !lit[1]->get_string().empty()) {
      std::string_view name = lit[1]->get_string();
      st->zone = FindZone(name);
      if (!st->zone) {
        return PrepareError{1, "unknown time zone '" + std::string(name) +
                                   "' (use an IANA name such as 'Europe/Copenhagen' or 'UTC')"};
      }
    }
  }
  *state = std::move(st);
  return std::nullopt;
}

std::optional<PrepareError> PDate(std::span<const Value* const> lit, std::shared_ptr<const void>* state) {
  return PrepareDate(lit, state, FormatUse::kParseDate);
}
std::optional<PrepareError> PDateTime(std::span<const Value* const> lit, std::shared_ptr<const void>* state) {
  return PrepareDate(lit, state, FormatUse::kParseDateTime);
}
std::optional<PrepareError> PFormatDate(std::span<const Value* const> lit, std::shared_ptr<const void>* state) {
  return PrepareDate(lit, state, FormatUse::kFormat);
}

// The format and zone for a call: precompiled or read from the arguments.
Status DateArgs(Args args, const FilterContext& ctx, FormatUse use, DateFormat* scratch,
                const DateFormat** format, const date::time_zone** zone) {
  const auto* st = static_cast<const DateState*>(ctx.prepared);
  if (st && st->format) {
    *format = &*st->format;
  } else {
    std::string_view f;
    std::string buf;
    KEYONCE_RETURN_IF_ERROR(StrArg(*args[0], ctx, "the format", &f, &buf));
    std::string error;
    auto parsed = ParseDateFormat(f, use, &error);
    if (!parsed) return FilterError(ctx, "invalid format");
    *scratch = std::move(*parsed);
    *format = scratch;
  }
  *zone = nullptr;
  if (st && st->zone_literal) {
    *zone = st->zone;
  } else if (args.size() > 1 && !args[1]->is_null()) {
    std::string_view name;
    std::string buf;
    KEYONCE_RETURN_IF_ERROR(StrArg(*args[1], ctx, "the time zone", &name, &buf));
    if (!name.empty()) {
      *zone = FindZone(name);
      if (!*zone) return FilterError(ctx, "unknown time zone");
    }
  }
  return Status::OK();
}

// Date input text: trimmed; null and "" mean absent.
Status DateInput(const Value& v, const FilterContext& ctx, std::string_view* out, bool* absent) {
  *absent = v.is_null();
  if (*absent) return Status::OK();
  if (!v.is_string()) return FilterError(ctx, std::string("expects text, got ") + KindName(v));
  *out = TrimView(v.get_string());
  *absent = out->empty();
  return Status::OK();
}

// A parse error; names the format when it is a literal (config, not data).
Status ParseError(const FilterContext& ctx, const std::string& err) {
  const auto* st = static_cast<const DateState*>(ctx.prepared);
  if (err == "value does not match format" && st && st->format) {
    return FilterError(ctx, err + " '" + st->format_text + "'");
  }
  return FilterError(ctx, err);
}

Status FDate(Slot& io, Args args, const FilterContext& ctx) {
  std::string_view text;
  bool absent;
  KEYONCE_RETURN_IF_ERROR(DateInput(io.get(), ctx, &text, &absent));
  if (absent) {
    io.Ref(&NullValue());
    return Status::OK();
  }
  DateFormat scratch;
  const DateFormat* format;
  const date::time_zone* zone;
  KEYONCE_RETURN_IF_ERROR(DateArgs(args, ctx, FormatUse::kParseDate, &scratch, &format, &zone));
  CivilTime t;
  if (auto err = ParseWithFormat(text, *format, &t)) {
    return ParseError(ctx, *err);
  }
  io.Set(Str(FormatIsoDate(t)));
  return Status::OK();
}

Status FDateTime(Slot& io, Args args, const FilterContext& ctx) {
  std::string_view text;
  bool absent;
  KEYONCE_RETURN_IF_ERROR(DateInput(io.get(), ctx, &text, &absent));
  if (absent) {
    io.Ref(&NullValue());
    return Status::OK();
  }
  DateFormat scratch;
  const DateFormat* format;
  const date::time_zone* zone;
  KEYONCE_RETURN_IF_ERROR(DateArgs(args, ctx, FormatUse::kParseDateTime, &scratch, &format, &zone));
  CivilTime t, shown;
  if (auto err = ParseWithFormat(text, *format, &t)) {
    return ParseError(ctx, *err);
  }
  if (auto err = ToZone(t, zone, &shown)) return FilterError(ctx, *err);
  io.Set(Str(FormatIsoInstant(shown)));
  return Status::OK();
}

Status FFormatDate(Slot& io, Args args, const FilterContext& ctx) {
  std::string_view text;
  bool absent;
  KEYONCE_RETURN_IF_ERROR(DateInput(io.get(), ctx, &text, &absent));
  if (absent) {
    io.Ref(&NullValue());
    return Status::OK();
  }
  DateFormat scratch;
  const DateFormat* format;
  const date::time_zone* zone;
  KEYONCE_RETURN_IF_ERROR(DateArgs(args, ctx, FormatUse::kFormat, &scratch, &format, &zone));
  CivilTime t;
  if (auto err = ParseIsoInstant(text, &t)) return FilterError(ctx, *err);
  if (!t.has_time && !format->has_time && !format->has_offset) {
    io.Set(Str(FormatWith(t, *format)));  // a calendar date: no zone conversion
    return Status::OK();
  }
  CivilTime shown;
  if (auto err = ToZone(t, zone, &shown)) return FilterError(ctx, *err);
  io.Set(Str(FormatWith(shown, *format)));
  return Status::OK();
}

// ------------------------------------------------------------------ CPR

// The 10 digits of a CPR input, or absent for null/"".
Status CprInput(const Value& v, const FilterContext& ctx, std::string* ten, bool* absent) {
  *absent = v.is_null() || (v.is_string() && TrimView(v.get_string()).empty());
  if (*absent) return Status::OK();
  if (!v.is_string()) return FilterError(ctx, "not a CPR number");
  auto n = cpr::Normalize(TrimView(v.get_string()));
  if (!n) return FilterError(ctx, "not a CPR number");
  *ten = std::move(*n);
  return Status::OK();
}

void WarnMod11(const std::string& ten, const FilterContext& ctx) {
  if (ctx.scope.warnings && !cpr::PassesMod11(ten)) {
    ctx.scope.warnings->Warn(std::string(cpr::kMod11Warning));
  }
}

template <typename Fn>
Status OnCpr(Slot& io, const FilterContext& ctx, Fn&& fn) {
  std::string ten;
  bool absent;
  KEYONCE_RETURN_IF_ERROR(CprInput(io.get(), ctx, &ten, &absent));
  if (absent) {
    io.Ref(&NullValue());
    return Status::OK();
  }
  return fn(ten);
}

Status FCpr(Slot& io, Args, const FilterContext& ctx) {
  return OnCpr(io, ctx, [&](const std::string& ten) {
    WarnMod11(ten, ctx);
    io.Set(Str(ten));
    return Status::OK();
  });
}

Status FCprDashed(Slot& io, Args, const FilterContext& ctx) {
  return OnCpr(io, ctx, [&](const std::string& ten) {
    WarnMod11(ten, ctx);
    io.Set(Str(cpr::Dashed(ten)));
    return Status::OK();
  });
}

Status FCprBirthdate(Slot& io, Args, const FilterContext& ctx) {
  return OnCpr(io, ctx, [&](const std::string& ten) {
    auto d = cpr::Birthdate(ten);
    if (!d) return FilterError(ctx, "CPR number has no valid birth date");
    io.Set(Str(cpr::IsoDate(*d)));
    return Status::OK();
  });
}

Status FCprSex(Slot& io, Args, const FilterContext& ctx) {
  return OnCpr(io, ctx, [&](const std::string& ten) {
    io.Set(Str(cpr::IsMale(ten) ? "male" : "female"));
    return Status::OK();
  });
}

Status FCprMod11(Slot& io, Args, const FilterContext& ctx) {
  return OnCpr(io, ctx, [&](const std::string& ten) {
    io.Set(Value(cpr::PassesMod11(ten)));
    return Status::OK();
  });
}

Status FCprValid(Slot& io, Args, const FilterContext& ctx) {
  const Value& v = io.get();
  bool valid = false;
  if (v.is_string()) {
    auto ten = cpr::Normalize(TrimView(v.get_string()));
    if (ten && cpr::Birthdate(*ten)) {
      valid = true;
      WarnMod11(*ten, ctx);
    }
  }
  io.Set(Value(valid));
  return Status::OK();
}

// ------------------------------------------------------------------ mask

Status FMask(Slot& io, Args, const FilterContext& ctx) {
  return OnText(io, ctx, [&](std::string_view s) {
    std::string_view t = TrimView(s);
    if (cpr::IsCprShape(t)) {
      io.Set(Str("xxxxxx-xxxx"));
      return Status::OK();
    }
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
      size_t len;
      uint32_t cp = Decode(s, i, &len);
      bool keep = cp < 0x80 && !((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
                                 (cp >= 'A' && cp <= 'Z'));
      if (keep) {
        out.push_back(s[i]);
      } else {
        out.push_back('x');
      }
      i += len;
    }
    io.Set(Str(out));
    return Status::OK();
  });
}

// ------------------------------------------------------------------ lookup

std::optional<PrepareError> PLookup(std::span<const Value* const> lit, std::shared_ptr<const void>*) {
  if (auto e = LiteralText(lit, 0, "the table name", true)) return e;
  return LiteralText(lit, 1, "the column name", true);
}

Status FLookup(Slot& io, Args args, const FilterContext& ctx) {
  if (!ctx.scope.tables) return FilterError(ctx, "no lookup tables are available here");
  if (io.get().is_null()) return Status::OK();
  std::string_view table, column;
  std::string tb, cb;
  KEYONCE_RETURN_IF_ERROR(StrArg(*args[0], ctx, "the table name", &table, &tb));
  KEYONCE_RETURN_IF_ERROR(StrArg(*args[1], ctx, "the column name", &column, &cb));
  auto row = ctx.scope.tables->Find(table, io.get());
  if (!row.ok()) {
    std::string prefix = "filter '";
    prefix += ctx.name;
    prefix += "'";
    return row.status().Wrap(prefix);
  }
  if (!row.value()) {
    io.Ref(&NullValue());
    return Status::OK();
  }
  const Record& rec = *row.value();
  auto it = rec.find(column);
  if (it == rec.end()) {
    return FilterError(ctx, "table '" + std::string(table) + "' has no column '" + std::string(column) + "'");
  }
  Value result = it->value();
  io.Set(std::move(result));
  return Status::OK();
}

// ------------------------------------------------------------------ table

constexpr FilterSpec kFilters[] = {
    {"trim", 0, 0, FTrim, nullptr},
    {"upper", 0, 0, FUpper, nullptr},
    {"lower", 0, 0, FLower, nullptr},
    {"default", 1, 1, FDefault, nullptr},
    {"replace", 2, 2, FReplace, PReplace},
    {"regex_match", 1, 1, FRegexMatch, PRegex},
    {"regex_extract", 1, 2, FRegexExtract, PRegexExtract},
    {"regex_replace", 2, 2, FRegexReplace, PRegexReplace},
    {"digits", 0, 0, FDigits, nullptr},
    {"urlencode", 0, 0, FUrlencode, nullptr},
    {"split", 1, 1, FSplit, PSplit},
    {"join", 1, 1, FJoin, PJoin},
    {"length", 0, 0, FLength, nullptr},
    {"first", 0, 0, FFirstLast<true>, nullptr},
    {"last", 0, 0, FFirstLast<false>, nullptr},
    {"string", 0, 0, FString, nullptr},
    {"int", 0, 1, FInt, PNumber},
    {"number", 0, 1, FNumber, PNumber},
    {"format_number", 1, 3, FFormatNumber, PFormatNumber},
    {"round", 0, 1, FRound, PRound},
    {"date", 1, 1, FDate, PDate},
    {"datetime", 1, 2, FDateTime, PDateTime},
    {"format_date", 1, 2, FFormatDate, PFormatDate},
    {"cpr", 0, 0, FCpr, nullptr},
    {"cpr_dashed", 0, 0, FCprDashed, nullptr},
    {"cpr_birthdate", 0, 0, FCprBirthdate, nullptr},
    {"cpr_sex", 0, 0, FCprSex, nullptr},
    {"cpr_mod11", 0, 0, FCprMod11, nullptr},
    {"cpr_valid", 0, 0, FCprValid, nullptr},
    {"lookup", 2, 2, FLookup, PLookup},
    {"mask", 0, 0, FMask, nullptr},
    {"json", 0, 0, FJson, nullptr},
};

constexpr bool ArgLimitsHold() {
  for (const auto& f : kFilters) {
    if (f.max_args > kMaxFilterArgs || f.min_args > f.max_args) return false;
  }
  return true;
}
static_assert(ArgLimitsHold(), "a filter takes more than kMaxFilterArgs arguments");

}  // namespace

const FilterSpec* FindFilter(std::string_view name) {
  for (const auto& f : kFilters) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::span<const FilterSpec> AllFilters() { return kFilters; }

size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

}  // namespace keyonce::tmpl
