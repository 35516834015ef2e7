#include "connectors/common/xml/xml_scanner.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "connectors/common/encoding.h"

namespace keyonce::connectors::xml {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsNameChar(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '_' || c == '-' || c == '.' || c == ':' || u >= 0x80;
}

void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// ------------------------------------------------------------ decoding

// Turns the file's bytes into UTF-8, chunk by chunk; a character split
// between chunks is carried over.
class Decoder {
 public:
  enum class Kind { kUtf8, kUtf16Le, kUtf16Be, kLatin1, kWindows1252 };

  // Decides the encoding from the first bytes of the file; returns the
  // number of BOM bytes to skip.
  Result<size_t> Detect(std::string_view head, XmlEncoding forced) {
    auto u = [&](size_t i) {
      return i < head.size() ? static_cast<unsigned char>(head[i]) : 0x100;
    };
    size_t bom = 0;
    std::optional<Kind> by_bytes;
    if (u(0) == 0xEF && u(1) == 0xBB && u(2) == 0xBF) {
      by_bytes = Kind::kUtf8;
      bom = 3;
    } else if (u(0) == 0xFF && u(1) == 0xFE) {
      by_bytes = Kind::kUtf16Le;
      bom = 2;
    } else if (u(0) == 0xFE && u(1) == 0xFF) {
      by_bytes = Kind::kUtf16Be;
      bom = 2;
    } else if (u(0) == '<' && u(1) == 0 && u(2) == '?' && u(3) == 0) {
      by_bytes = Kind::kUtf16Le;
    } else if (u(0) == 0 && u(1) == '<' && u(2) == 0 && u(3) == '?') {
      by_bytes = Kind::kUtf16Be;
    }
    switch (forced) {
      case XmlEncoding::kUtf8:
        kind_ = Kind::kUtf8;
        return by_bytes == Kind::kUtf8 ? bom : 0;
      case XmlEncoding::kLatin1:
        kind_ = Kind::kLatin1;
        return 0;
      case XmlEncoding::kWindows1252:
        kind_ = Kind::kWindows1252;
        return 0;
      case XmlEncoding::kUtf16:
        if (by_bytes != Kind::kUtf16Le && by_bytes != Kind::kUtf16Be) {
          return Status::Invalid(
              "encoding is utf-16 but the file starts neither with a UTF-16 "
              "byte order mark nor with \"<?\" in UTF-16");
        }
        kind_ = *by_bytes;
        return bom;
      case XmlEncoding::kAuto:
        break;
    }
    if (by_bytes) {
      kind_ = *by_bytes;
      return bom;
    }
    // An ASCII-compatible encoding: the XML declaration may name it.
    kind_ = Kind::kUtf8;
    if (head.substr(0, 5) != "<?xml") return 0;
    size_t end = head.find("?>");
    std::string_view decl = head.substr(0, end == std::string_view::npos ? head.size() : end);
    size_t at = decl.find("encoding");
    if (at == std::string_view::npos) return 0;
    size_t q = decl.find_first_of("\"'", at);
    if (q == std::string_view::npos) return 0;
    size_t qe = decl.find(decl[q], q + 1);
    if (qe == std::string_view::npos) return 0;
    std::string name = Lower(decl.substr(q + 1, qe - q - 1));
    if (name == "us-ascii" || name == "ascii") return 0;  // a subset of UTF-8
    if (auto e = ParseEncoding(name)) {
      kind_ = *e == Encoding::kUtf8          ? Kind::kUtf8
              : *e == Encoding::kWindows1252 ? Kind::kWindows1252
                                             : Kind::kLatin1;
      return 0;
    }
    if (name == "iso_8859-1" || name == "l1" || name == "iso-ir-100") {
      kind_ = Kind::kLatin1;
      return 0;
    }
    if (name.rfind("utf-16", 0) == 0) {
      return Status::Invalid("the XML declaration says " + name +
                             " but the file is not UTF-16 (no byte order mark, \"<?xml\" in single "
                             "bytes)");
    }
    return Status::Invalid("the XML declaration names encoding '" + name +
                           "', which is not supported (UTF-8, UTF-16, ISO-8859-1, Windows-1252)");
  }

  // Appends the UTF-8 form of `raw` (after what was carried over) to *out.
  // On invalid input appends what came before the bad bytes and returns an
  // error.
  Status Decode(std::string_view raw, bool eof, std::string* out) {
    switch (kind_) {
      case Kind::kLatin1:
      case Kind::kWindows1252:
        ToUtf8(raw, kind_ == Kind::kLatin1 ? Encoding::kLatin1 : Encoding::kWindows1252, out);
        return Status::OK();
      case Kind::kUtf8:
        return DecodeUtf8(raw, eof, out);
      case Kind::kUtf16Le:
      case Kind::kUtf16Be:
        return DecodeUtf16(raw, eof, out);
    }
    return Status::OK();
  }

 private:
  Status DecodeUtf8(std::string_view raw, bool eof, std::string* out) {
    std::string joined;
    if (!carry_.empty()) {
      joined = carry_ + std::string(raw);
      raw = joined;
      carry_.clear();
    }
    auto bad = FirstInvalidUtf8(raw);
    if (!bad) {
      out->append(raw);
      return Status::OK();
    }
    out->append(raw.substr(0, *bad));
    if (!eof && raw.size() - *bad < 4 && LooksLikeUtf8(raw.substr(*bad))) {
      carry_ = std::string(raw.substr(*bad));  // a character cut by the chunk boundary
      return Status::OK();
    }
    return Status::Invalid("invalid UTF-8 (the file is not in the encoding it declares)");
  }

  Status DecodeUtf16(std::string_view raw, bool eof, std::string* out) {
    std::string joined;
    if (!carry_.empty()) {
      joined = carry_ + std::string(raw);
      raw = joined;
      carry_.clear();
    }
    const bool le = kind_ == Kind::kUtf16Le;
    auto unit = [&](size_t i) -> char16_t {
      unsigned char a = static_cast<unsigned char>(raw[i]),
                    b = static_cast<unsigned char>(raw[i + 1]);
      return static_cast<char16_t>(le ? (a | (b << 8)) : ((a << 8) | b));
    };
    size_t i = 0;
    while (i + 2 <= raw.size()) {
      char16_t c = unit(i);
      if (c >= 0xD800 && c <= 0xDBFF) {
        if (i + 4 > raw.size()) break;  // the low surrogate is in the next chunk
        char16_t d = unit(i + 2);
        if (d < 0xDC00 || d > 0xDFFF) return Status::Invalid("invalid UTF-16 (unpaired surrogate)");
        AppendUtf8(0x10000 + ((static_cast<char32_t>(c) - 0xD800) << 10) + (d - 0xDC00), out);
        i += 4;
      } else if (c >= 0xDC00 && c <= 0xDFFF) {
        return Status::Invalid("invalid UTF-16 (unpaired surrogate)");
      } else {
        AppendUtf8(c, out);
        i += 2;
      }
    }
    if (i < raw.size()) {
      if (eof) return Status::Invalid("invalid UTF-16 (the file ends inside a character)");
      carry_ = std::string(raw.substr(i));
    }
    return Status::OK();
  }

  Kind kind_ = Kind::kUtf8;
  std::string carry_;
};

}  // namespace

// ------------------------------------------------------------ record path

Result<RecordPath> RecordPath::Parse(std::string_view text, const Namespaces& namespaces) {
  if (size_t bar = text.find('|'); bar != std::string_view::npos) {
    auto trim = [](std::string_view v) {
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
      return v;
    };
    auto first = Parse(trim(text.substr(0, bar)), namespaces);
    if (!first.ok()) return first.status();
    auto rest = Parse(trim(text.substr(bar + 1)), namespaces);
    if (!rest.ok()) return rest.status();
    RecordPath p = std::move(first).value();
    p.alternatives_.push_back(std::move(rest).value());
    return p;
  }
  RecordPath p;
  for (const auto& [prefix, uri] : namespaces) p.declared_uris_.push_back(uri);
  auto bad = [&](const std::string& why) {
    return Status::Invalid("record path '" + std::string(text) + "': " + why);
  };
  if (text.empty() || text[0] != '/') {
    return bad("must start with / (e.g. /Export/Persons/Person or //Person)");
  }
  size_t i = 0;
  while (i < text.size()) {
    Step step;
    if (text.substr(i, 2) == "//") {
      step.descendant = true;
      i += 2;
    } else if (text[i] == '/') {
      i += 1;
    } else {
      return bad("expected / at offset " + std::to_string(i));
    }
    size_t end = text.find('/', i);
    std::string_view name =
        text.substr(i, end == std::string_view::npos ? text.size() - i : end - i);
    if (name.empty()) return bad("an element name is missing at offset " + std::to_string(i));
    if (name.find_first_of("[]()@=' \"") != std::string_view::npos) {
      return bad(
          "only element names, prefixes and * are supported in a record path (no "
          "predicates or attributes; use `fields` for those)");
    }
    size_t colon = name.find(':');
    if (colon != std::string_view::npos) {
      std::string prefix(name.substr(0, colon));
      auto it = namespaces.find(prefix);
      if (it == namespaces.end()) {
        return bad("prefix '" + prefix + "' is not declared in namespaces");
      }
      step.uri = it->second;
      name = name.substr(colon + 1);
      if (name.empty() || name.find(':') != std::string_view::npos) {
        return bad("malformed name at offset " + std::to_string(i));
      }
    }
    step.any_name = name == "*";
    step.local = std::string(name);
    p.has_descendant_step_ = p.has_descendant_step_ || step.descendant;
    p.steps_.push_back(std::move(step));
    i = end == std::string_view::npos ? text.size() : end;
  }
  return p;
}

bool RecordPath::StepMatches(const Step& step, const Name& name) const {
  if (!step.any_name && step.local != name.local) return false;
  if (step.uri) return *step.uri == name.uri;
  if (step.any_name) return true;  // `*`: any element
  return name.uri.empty() ||
         std::find(declared_uris_.begin(), declared_uris_.end(), name.uri) == declared_uris_.end();
}

bool RecordPath::Match(const std::vector<Name>& stack, size_t si, size_t pi) const {
  if (pi == steps_.size()) return si == stack.size();
  if (si == stack.size()) return false;
  const Step& step = steps_[pi];
  if (StepMatches(step, stack[si]) && Match(stack, si + 1, pi + 1)) return true;
  // `//`: the step may match any deeper element.
  return step.descendant && Match(stack, si + 1, pi);
}

bool RecordPath::MayMatchBelow(const std::vector<Name>& stack) const {
  for (const auto& a : alternatives_) {
    if (a.MayMatchBelow(stack)) return true;
  }
  if (has_descendant_step_) return true;
  if (stack.size() >= steps_.size()) return false;
  for (size_t i = 0; i < stack.size(); ++i) {
    if (!StepMatches(steps_[i], stack[i])) return false;
  }
  return true;
}

bool RecordPath::Matches(const std::vector<Name>& stack) const {
  for (const auto& a : alternatives_) {
    if (a.Matches(stack)) return true;
  }
  if (steps_.empty() || stack.empty()) return false;
  // Quick reject: the last step must match the innermost element.
  if (!StepMatches(steps_.back(), stack.back())) return false;
  return Match(stack, 0, 0);
}

std::optional<XmlEncoding> ParseXmlEncoding(std::string_view name) {
  std::string n = Lower(name);
  if (n == "auto") return XmlEncoding::kAuto;
  if (n == "utf-16") return XmlEncoding::kUtf16;
  auto e = ParseEncoding(n);
  if (!e) return std::nullopt;
  switch (*e) {
    case Encoding::kUtf8:
      return XmlEncoding::kUtf8;
    case Encoding::kLatin1:
      return XmlEncoding::kLatin1;
    case Encoding::kWindows1252:
      return XmlEncoding::kWindows1252;
  }
  return std::nullopt;
}

// ------------------------------------------------------------ scanner

struct XmlScanner::Impl {
  struct Binding {
    std::string prefix, uri;
  };
  struct Open {
    std::string qname;
    size_t bindings_mark = 0;  // bindings_ size before this element's declarations
    uint64_t line = 0;
  };

  Options opt;
  ReadFn read;
  Decoder decoder;
  bool started = false;
  bool eof = false;
  Status decode_error;
  std::string raw;  // read buffer (file bytes)

  std::string buf;    // decoded UTF-8 not yet consumed (and the current record)
  size_t pos = 0;     // scan position in buf
  size_t resume = 0;  // for an incomplete token: where to go on searching its end
  // Line and column at buf[lc_pos].
  size_t lc_pos = 0;
  uint64_t line = 1, col = 1;

  std::vector<Open> stack;
  std::vector<RecordPath::Name> names;  // resolved names of `stack` (empty when quiet)
  size_t quiet_depth = SIZE_MAX;        // elements from this depth on are not named
  std::vector<Binding> bindings;
  bool seen_root = false, root_closed = false;

  std::string context;         // start tag of the innermost context element met
  uint64_t context_index = 0;  // how many context elements were met

  bool in_record = false;
  bool oversize = false;
  size_t rec_start = 0;
  size_t rec_depth = 0;  // stack size with the record element open
  uint64_t rec_line = 0, rec_col = 0;
  std::string rec_error;
  std::vector<std::pair<std::string, std::string>> rec_ns;

  Impl(Options o, ReadFn r) : opt(std::move(o)), read(std::move(r)) {}

  // Moves the line/column tracker to buf[to] (to >= lc_pos).
  void Advance(size_t to) {
    const char* p = buf.data();
    for (size_t i = lc_pos; i < to; ++i) {
      unsigned char c = static_cast<unsigned char>(p[i]);
      if (c == '\n') {
        ++line;
        col = 1;
      } else if ((c & 0xC0) != 0x80) {
        ++col;
      }
    }
    lc_pos = to;
  }

  std::string Where(size_t at) {
    if (at < lc_pos) at = lc_pos;
    Advance(at);
    return opt.name + ":" + std::to_string(line) + ":" + std::to_string(col);
  }
  std::string LineCol(size_t at) {
    if (at < lc_pos) at = lc_pos;
    Advance(at);
    return std::to_string(line) + ":" + std::to_string(col);
  }
  Status Fail(size_t at, const std::string& why) { return Status::Invalid(Where(at) + ": " + why); }

  Status Start() {
    started = true;
    raw.resize(std::max<size_t>(opt.chunk_bytes, 512));
    // Enough of the head to see a BOM and the XML declaration.
    size_t have = 0;
    while (have < 512) {
      auto n = read(raw.data() + have, raw.size() - have);
      if (!n.ok()) return n.status();
      if (*n == 0) {
        eof = true;
        break;
      }
      have += *n;
    }
    auto skip = decoder.Detect(std::string_view(raw.data(), have), opt.encoding);
    if (!skip.ok()) return skip.status().Wrap(opt.name);
    std::string_view body(raw.data() + *skip, have - *skip);
    Status st = decoder.Decode(body, eof, &buf);
    if (!st.ok()) decode_error = st;
    return Status::OK();
  }

  // Reads and decodes more input. False when there is none (the end of the
  // file or a decoding error, reported by the caller).
  Result<bool> Fill() {
    if (eof || !decode_error.ok()) return false;
    size_t keep = pos;
    if (in_record && !oversize) {
      if (buf.size() - rec_start > opt.max_record_bytes) {
        oversize = true;  // stop keeping its text; it is rejected at its end
      } else {
        keep = rec_start;
      }
    }
    if (keep > 0) {
      if (lc_pos < keep) Advance(keep);
      buf.erase(0, keep);
      pos -= keep;
      lc_pos -= keep;
      resume = resume >= keep ? resume - keep : 0;
      if (in_record && !oversize) rec_start -= keep;
    }
    auto n = read(raw.data(), raw.size());
    if (!n.ok()) return n.status();
    if (*n == 0) eof = true;
    size_t before = buf.size();
    Status st = decoder.Decode(std::string_view(raw.data(), *n), eof, &buf);
    if (!st.ok()) decode_error = st;
    return buf.size() > before || (!eof && decode_error.ok());
  }

  // At the end of the input (or at undecodable input) with `what` unfinished.
  Status Truncated(const std::string& what) {
    if (!decode_error.ok()) return Fail(buf.size(), decode_error.message());
    return Fail(pos, "the file ends inside " + what);
  }

  const std::string* Resolve(std::string_view prefix) const {
    for (auto it = bindings.rbegin(); it != bindings.rend(); ++it) {
      if (it->prefix == prefix) return &it->uri;
    }
    return nullptr;
  }

  void RecordError(size_t at, const std::string& why) {
    if (rec_error.empty()) rec_error = opt.name + ":" + LineCol(at) + ": " + why;
  }

  Status CheckBlank(size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      if (!IsSpace(buf[i])) return Fail(i, "text outside the root element");
    }
    return Status::OK();
  }

  // Checks the entity and character references in buf[from, to) (inside a
  // record); the first bad one makes the record malformed.
  void CheckReferences(size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      if (buf[i] != '&') continue;
      size_t semi = buf.find(';', i + 1);
      std::string_view ref;
      if (semi != std::string::npos && semi < to && semi - i <= 40) {
        ref = std::string_view(buf).substr(i + 1, semi - i - 1);
      }
      bool ok = false;
      if (ref == "lt" || ref == "gt" || ref == "amp" || ref == "quot" || ref == "apos") {
        ok = true;
      } else if (ref.size() >= 2 && ref[0] == '#') {
        std::string_view digits = ref.substr(1);
        bool hex = digits[0] == 'x';
        if (hex) digits.remove_prefix(1);
        ok = !digits.empty() && std::all_of(digits.begin(), digits.end(), [&](char c) {
          return hex ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                     : std::isdigit(static_cast<unsigned char>(c)) != 0;
        });
      }
      if (ok) {
        i = semi;
        continue;
      }
      bool named = !ref.empty() && std::all_of(ref.begin(), ref.end(), IsNameChar);
      RecordError(i, named ? "entity reference &" + std::string(ref) +
                                 "; is not defined (entities declared in a DTD are never "
                                 "expanded)"
                           : "unescaped '&' (write &amp;)");
      return;
    }
  }

  // Finds `end` from buf[pos + skip]; npos when not in the buffer yet.
  size_t FindEnd(std::string_view end, size_t skip) {
    size_t from = std::max(pos + skip, resume);
    size_t at = buf.find(end, from);
    if (at == std::string::npos) {
      resume = buf.size() >= end.size() ? buf.size() - end.size() + 1 : 0;
      return std::string::npos;
    }
    return at + end.size();
  }

  // The end (one past '>') of the start tag or DOCTYPE at pos, honouring
  // quotes (and brackets for a DOCTYPE); npos when not in the buffer yet.
  size_t FindTagEnd(bool doctype) {
    char quote = 0;
    int depth = 0;
    for (size_t i = pos + 1; i < buf.size(); ++i) {
      char c = buf[i];
      if (quote) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (doctype && c == '[') {
        ++depth;
      } else if (doctype && c == ']') {
        --depth;
      } else if (c == '>' && depth <= 0) {
        return i + 1;
      } else if (c == '<' && !doctype) {
        return i;  // a '<' inside a tag: the tag is malformed; stop here
      }
    }
    return std::string::npos;
  }

  // Parses the attributes of a start tag (text between the name and the
  // end) for namespace declarations. False when they are malformed.
  bool ScanAttributes(std::string_view text, std::vector<Binding>* decls) {
    size_t i = 0;
    while (true) {
      while (i < text.size() && IsSpace(text[i])) ++i;
      if (i >= text.size()) return true;
      size_t name_start = i;
      while (i < text.size() && !IsSpace(text[i]) && text[i] != '=') ++i;
      std::string_view name = text.substr(name_start, i - name_start);
      while (i < text.size() && IsSpace(text[i])) ++i;
      if (name.empty() || i >= text.size() || text[i] != '=') return false;
      ++i;
      while (i < text.size() && IsSpace(text[i])) ++i;
      if (i >= text.size() || (text[i] != '"' && text[i] != '\'')) return false;
      char q = text[i++];
      size_t vend = text.find(q, i);
      if (vend == std::string_view::npos) return false;
      std::string_view value = text.substr(i, vend - i);
      i = vend + 1;
      if (name == "xmlns") {
        decls->push_back({"", std::string(value)});
      } else if (name.substr(0, 6) == "xmlns:") {
        decls->push_back({std::string(name.substr(6)), std::string(value)});
      }
    }
  }

  // Handles a start tag buf[pos, end). Returns true when a record was
  // completed (a self-closing record element).
  Result<bool> StartTag(size_t end, ScannedRecord* out) {
    size_t close = end;  // one past '>' (or the '<' that cut a malformed tag short)
    bool well_ended = buf[close - 1] == '>';
    bool self_closing = well_ended && close >= pos + 3 && buf[close - 2] == '/';
    std::string_view inner(buf.data() + pos + 1,
                           close - pos - 1 - (well_ended ? 1 : 0) - (self_closing ? 1 : 0));
    size_t n = 0;
    while (n < inner.size() && !IsSpace(inner[n]) && inner[n] != '/') ++n;
    std::string qname(inner.substr(0, n));
    std::vector<Binding> decls;
    bool name_ok = !qname.empty() && std::all_of(qname.begin(), qname.end(), IsNameChar);
    bool ok = name_ok && well_ended && ScanAttributes(inner.substr(n), &decls);
    if (!name_ok) {
      if (!in_record) return Fail(pos, "malformed start tag");
      RecordError(pos, "malformed start tag");
      pos = close;
      return false;  // nothing to open
    }
    if (stack.empty()) {
      if (root_closed) return Fail(pos, "a second root element (an XML file has exactly one)");
      seen_root = true;
    }
    if (stack.size() >= static_cast<size_t>(kMaxDepth)) {
      return Fail(pos, "elements nest deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    Open open;
    open.qname = qname;
    open.bindings_mark = bindings.size();
    Advance(pos);
    open.line = line;
    for (auto& d : decls) bindings.push_back(std::move(d));
    // Inside a record, or inside an element that no record can be in, the
    // element is not named: nothing matches it (a sheet's cells, say).
    const bool quiet = in_record || stack.size() >= quiet_depth;
    RecordPath::Name name;
    if (!quiet) {
      size_t colon = qname.find(':');
      std::string_view prefix = colon == std::string::npos
                                    ? std::string_view()
                                    : std::string_view(qname).substr(0, colon);
      name.local = colon == std::string::npos ? qname : qname.substr(colon + 1);
      if (const std::string* uri = Resolve(prefix)) name.uri = *uri;
    }
    stack.push_back(std::move(open));
    names.push_back(std::move(name));

    const bool match = !quiet && opt.path.Matches(names);
    if (!quiet && !match && opt.context_path && opt.context_path->Matches(names)) {
      context.assign(buf, pos, close - pos);
      ++context_index;
    }
    if (!quiet && !match && !opt.path.MayMatchBelow(names)) quiet_depth = stack.size();
    if (match) {
      in_record = true;
      oversize = false;
      rec_start = pos;
      rec_depth = stack.size();
      rec_line = line;
      rec_col = col;
      rec_error.clear();
      rec_ns.clear();
      // The ancestors' declarations, the innermost binding of each prefix.
      for (size_t i = 0; i < stack.back().bindings_mark; ++i) {
        const Binding& b = bindings[i];
        auto it = std::find_if(rec_ns.begin(), rec_ns.end(),
                               [&](const auto& p) { return p.first == b.prefix; });
        if (it != rec_ns.end()) {
          it->second = b.uri;
        } else {
          rec_ns.emplace_back(b.prefix, b.uri);
        }
      }
    }
    if (in_record) CheckReferences(pos, close);
    if (!ok) {
      if (!in_record) return Fail(pos, "malformed start tag <" + qname + ">");
      RecordError(pos, "malformed start tag <" + qname + ">");
    }
    pos = close;
    if (self_closing) return Pop(stack.size() - 1, close, out);
    return false;
  }

  // Closes the elements from stack index `index` on; the record ends when
  // its element closes. Returns true when a record was completed.
  Result<bool> Pop(size_t index, size_t end, ScannedRecord* out) {
    bool completes = in_record && index < rec_depth;
    bindings.resize(stack[index].bindings_mark);
    stack.resize(index);
    names.resize(index);
    if (stack.size() < quiet_depth) quiet_depth = SIZE_MAX;
    if (stack.empty()) root_closed = true;
    if (!completes) return false;
    in_record = false;
    *out = ScannedRecord();
    out->line = rec_line;
    out->column = rec_col;
    out->namespaces = std::move(rec_ns);
    if (opt.context_path) {
      out->context = context;
      out->context_index = context_index;
    }
    if (!oversize && end - rec_start > opt.max_record_bytes) oversize = true;
    if (oversize) {
      out->error = opt.name + ":" + std::to_string(rec_line) + ":" + std::to_string(rec_col) +
                   ": the record is larger than max_record_bytes (" +
                   std::to_string(opt.max_record_bytes) + " bytes)";
    } else {
      out->text = buf.substr(rec_start, end - rec_start);
      out->error = std::move(rec_error);
    }
    rec_error.clear();
    return true;
  }

  Result<bool> EndTag(size_t end, ScannedRecord* out) {
    std::string_view inner(buf.data() + pos + 2, end - pos - 3);
    while (!inner.empty() && IsSpace(inner.back())) inner.remove_suffix(1);
    std::string name(inner);
    size_t at = pos;
    pos = end;
    if (stack.empty()) return Fail(at, "closing tag </" + name + "> without an opening tag");
    if (stack.back().qname == name) return Pop(stack.size() - 1, end, out);
    // Mismatched: the innermost open element of that name, if any.
    std::string why = "closing tag </" + name + "> does not match <" + stack.back().qname +
                      "> opened at line " + std::to_string(stack.back().line);
    size_t j = stack.size();
    while (j > 0 && stack[j - 1].qname != name) --j;
    if (!in_record) return Fail(at, why);
    RecordError(at, why);
    if (j == 0) return false;  // a stray closing tag: ignored
    return Pop(j - 1, end, out);
  }

  Result<bool> Next(ScannedRecord* out) {
    if (!started) KEYONCE_RETURN_IF_ERROR(Start());
    while (true) {
      if (pos >= buf.size()) {
        auto more = Fill();
        if (!more.ok()) return more.status();
        if (!*more) {
          if (!decode_error.ok()) return Fail(buf.size(), decode_error.message());
          if (!stack.empty()) {
            const Open& o = in_record ? stack[rec_depth - 1] : stack.back();
            return Fail(buf.size(), "the file ends before <" + o.qname + "> opened at line " +
                                        std::to_string(o.line) + " is closed");
          }
          if (!seen_root) return Status::Invalid(opt.name + ": no XML element found (empty file?)");
          return false;
        }
        continue;
      }
      if (buf[pos] != '<') {
        // Text. Inside a record it is kept (its references checked once the
        // whole text is in the buffer); outside it is skipped.
        size_t lt = buf.find('<', std::max(pos, resume));
        if (lt == std::string::npos) {
          if (in_record && !oversize) {
            resume = buf.size();
          } else {
            if (!in_record && (!seen_root || root_closed)) {
              KEYONCE_RETURN_IF_ERROR(CheckBlank(pos, buf.size()));
            }
            pos = buf.size();
          }
          auto more = Fill();
          if (!more.ok()) return more.status();
          if (!*more) {
            resume = 0;
            pos = buf.size();
          }
          continue;
        }
        if (in_record) {
          CheckReferences(pos, lt);
        } else if (!seen_root || root_closed) {
          KEYONCE_RETURN_IF_ERROR(CheckBlank(pos, lt));
        }
        pos = lt;
        resume = 0;
        continue;
      }
      // Markup: make sure the whole token is in the buffer.
      if (buf.size() - pos < 9 && !eof && decode_error.ok()) {
        auto more = Fill();  // enough to tell "<!--" from "<![CDATA[" and "<!DOCTYPE"
        if (!more.ok()) return more.status();
        continue;
      }
      std::string_view rest(buf.data() + pos, buf.size() - pos);
      enum class Kind { kStart, kEnd, kComment, kCdata, kPi, kDoctype } kind;
      size_t end = std::string::npos;
      std::string what;
      if (rest.size() < 2 || (rest[1] != '!' && rest[1] != '?' && rest[1] != '/')) {
        kind = Kind::kStart;  // most tokens: tested first, without comparing strings
        what = "a start tag";
        end = FindTagEnd(false);
      } else if (rest.substr(0, 4) == "<!--") {
        kind = Kind::kComment;
        what = "a comment";
        end = FindEnd("-->", 4);
      } else if (rest.substr(0, 9) == "<![CDATA[") {
        kind = Kind::kCdata;
        what = "a CDATA section";
        end = FindEnd("]]>", 9);
      } else if (rest.substr(0, 9) == "<!DOCTYPE") {
        kind = Kind::kDoctype;
        what = "the DOCTYPE";
        end = FindTagEnd(true);
      } else if (rest.substr(0, 2) == "<!") {
        if (!in_record) return Fail(pos, "unexpected markup \"<!\"");
        RecordError(pos, "unexpected markup \"<!\"");
        kind = Kind::kComment;
        what = "markup";
        end = FindEnd(">", 2);
      } else if (rest.substr(0, 2) == "<?") {
        kind = Kind::kPi;
        what = "a processing instruction";
        end = FindEnd("?>", 2);
      } else {
        kind = Kind::kEnd;
        what = "a closing tag";
        end = FindEnd(">", 2);
      }
      if (end == std::string::npos) {
        if (buf.size() - pos > opt.max_record_bytes) {
          return Fail(pos, what + " longer than max_record_bytes (" +
                               std::to_string(opt.max_record_bytes) + " bytes)");
        }
        auto more = Fill();
        if (!more.ok()) return more.status();
        if (!*more) return Truncated(what);
        continue;
      }
      resume = 0;
      switch (kind) {
        case Kind::kStart: {
          auto r = StartTag(end, out);
          if (!r.ok() || *r) return r;
          break;
        }
        case Kind::kEnd: {
          auto r = EndTag(end, out);
          if (!r.ok() || *r) return r;
          break;
        }
        case Kind::kDoctype: {
          std::string_view dt(buf.data() + pos, end - pos);
          if (seen_root) {
            if (!in_record) return Fail(pos, "a DOCTYPE inside the document");
            RecordError(pos, "a DOCTYPE inside the document");
          } else if (dt.find("<!ENTITY") != std::string_view::npos) {
            return Fail(pos,
                        "the DOCTYPE declares entities; keyonce never expands DTD entities "
                        "(remove the internal subset [...] from the DOCTYPE)");
          }
          pos = end;
          break;
        }
        case Kind::kCdata:
          if (!in_record && stack.empty())
            return Fail(pos, "a CDATA section outside the root element");
          pos = end;
          break;
        case Kind::kComment:
        case Kind::kPi:
          pos = end;
          break;
      }
    }
  }
};

XmlScanner::XmlScanner(Options options, ReadFn read)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(read))) {}
XmlScanner::~XmlScanner() = default;

Result<bool> XmlScanner::Next(ScannedRecord* out) { return impl_->Next(out); }

}  // namespace keyonce::connectors::xml
