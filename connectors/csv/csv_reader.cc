#include "connectors/csv/csv_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace keyonce::connectors::csv {
namespace {

constexpr size_t kNpos = static_cast<size_t>(-1);
// A record longer than this is not a CSV record (e.g. a binary file, or a
// file with no line breaks at all): reading stops with an error rather than
// holding it all in memory.
constexpr uint64_t kHighBits = 0x8080808080808080ull;
constexpr uint64_t kOnes = 0x0101010101010101ull;

// Index of the first byte that is >= 0x80 or NUL, or s.size().
size_t FindHighOrNul(std::string_view s) {
  const char* p = s.data();
  const size_t n = s.size();
  size_t i = 0;
  while (i + 8 <= n) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    const uint64_t zero = (w - kOnes) & ~w & kHighBits;
    if ((w & kHighBits) | zero) break;
    i += 8;
  }
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(p[i]);
    if (c == 0 || c >= 0x80) return i;
    ++i;
  }
  return n;
}

// Index of the first byte in [i, n) for which table[byte] is set; a, b, c
// are the (at most three) bytes the table holds, for the 16-byte SIMD scan.
inline size_t ScanTo(const char* p, size_t i, size_t n, const bool* table, char a, char b,
                     char c) {
#if defined(__SSE2__)
  const __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b), vc = _mm_set1_epi8(c);
  while (i + 16 <= n) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, va), _mm_cmpeq_epi8(x, vb)),
                                   _mm_cmpeq_epi8(x, vc));
    const int mask = _mm_movemask_epi8(m);
    if (mask) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
    i += 16;
  }
#else
  (void)a;
  (void)b;
  (void)c;
#endif
  while (i < n && !table[static_cast<unsigned char>(p[i])]) ++i;
  return i;
}

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view v) {
  size_t a = 0, b = v.size();
  while (a < b && IsSpace(v[a])) ++a;
  while (b > a && IsSpace(v[b - 1])) --b;
  return v.substr(a, b - a);
}

// Appends `in` with each doubled quote made single.
void Unescape(std::string_view in, char quote, std::string* out) {
  out->clear();
  size_t i = 0;
  while (i < in.size()) {
    const void* q = std::memchr(in.data() + i, quote, in.size() - i);
    if (!q) {
      out->append(in.data() + i, in.size() - i);
      break;
    }
    const size_t k = static_cast<size_t>(static_cast<const char*>(q) - in.data());
    out->append(in.data() + i, k + 1 - i);  // up to and including one quote
    i = k + 1;
    if (i < in.size() && in[i] == quote) ++i;  // skip its double
  }
}

std::string ErrnoText() { return std::strerror(errno); }

void AppendUint(std::string* out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

std::string Hex(unsigned char c) {
  static const char* kDigits = "0123456789ABCDEF";
  std::string s = "0x";
  s.push_back(kDigits[c >> 4]);
  s.push_back(kDigits[c & 15]);
  return s;
}

const char* EncodingName(Encoding e) {
  switch (e) {
    case Encoding::kUtf8: return "UTF-8";
    case Encoding::kWindows1252: return "windows-1252";
    case Encoding::kLatin1: return "ISO-8859-1";
  }
  return "?";
}

}  // namespace

CsvReader::CsvReader(CsvReaderOptions options) : opt_(std::move(options)) {
  if (opt_.chunk_size == 0) opt_.chunk_size = 1;
  if (opt_.max_record_lines < 1) opt_.max_record_lines = 1;
  if (opt_.sniff_bytes == 0) opt_.sniff_bytes = 1;
  special_[static_cast<unsigned char>(opt_.delimiter)] = true;
  special_[static_cast<unsigned char>('\n')] = true;
  special_[static_cast<unsigned char>('\r')] = true;
  if (opt_.quote) {
    quote_ = static_cast<unsigned char>(*opt_.quote);
    quoted_special_[quote_] = true;
  }
  quoted_special_[static_cast<unsigned char>('\n')] = true;
  quoted_special_[static_cast<unsigned char>('\r')] = true;
}

CsvReader::~CsvReader() { Close(); }

void CsvReader::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status CsvReader::Refill() {
  if (eof_) return Status::OK();
  if (pos_ > 0) {
    if (end_ > pos_) std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  if (end_ > opt_.max_record_bytes) {
    // One record fills the whole buffer: there is no telling where the next
    // one starts, so reading stops here with a clear message.
    return Status::Invalid(file_name_ + ": line " + std::to_string(line_) +
                           ": a record longer than limits.record_bytes (" +
                           ByteSize(opt_.max_record_bytes) + "); is this a CSV file?");
  }
  if (buf_.size() - end_ < opt_.chunk_size) buf_.resize(end_ + opt_.chunk_size);
  ssize_t r;
  do {
    r = ::read(fd_, buf_.data() + end_, opt_.chunk_size);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return Status::Io("reading " + file_name_ + ": " + ErrnoText());
  if (r == 0) {
    eof_ = true;
  } else {
    end_ += static_cast<size_t>(r);
  }
  return Status::OK();
}

Status CsvReader::Fill(size_t min_bytes) {
  while (!eof_ && end_ - pos_ < min_bytes) KEYONCE_RETURN_IF_ERROR(Refill());
  return Status::OK();
}

Status CsvReader::Open(const std::filesystem::path& path, Log* log) {
  Close();
  log_ = log;
  file_name_ = path.filename().string();
  eof_ = false;
  pos_ = end_ = 0;
  line_ = 1;
  names_.clear();
  trailing_delimiter_ = false;

  if (opt_.quote && *opt_.quote == opt_.delimiter) {
    return Status::Invalid("the quote character must differ from the delimiter");
  }
  if (opt_.delimiter == '\n' || opt_.delimiter == '\r' ||
      (opt_.quote && (*opt_.quote == '\n' || *opt_.quote == '\r'))) {
    return Status::Invalid("the delimiter and quote cannot be line breaks");
  }

  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) {
    if (errno == ENOENT) return Status::NotFound("file " + path.string() + " does not exist");
    return Status::Io("opening " + path.string() + ": " + ErrnoText());
  }
  buf_.clear();
  buf_.resize(std::max(opt_.chunk_size, opt_.sniff_bytes));

  // Encoding: a BOM, else a look at the first bytes.
  KEYONCE_RETURN_IF_ERROR(Fill(opt_.sniff_bytes));
  const std::string_view head(buf_.data(), end_);
  const size_t bom = Utf8BomLength(head);
  if (opt_.encoding) {
    encoding_ = *opt_.encoding;
    encoding_decided_ = true;
    if (bom && encoding_ != Encoding::kUtf8 && log_) {
      log_->Warn(file_name_ + " starts with a UTF-8 byte order mark but is read as " +
                 EncodingName(encoding_) + "; set encoding: utf-8 (or auto) if it is UTF-8");
    }
  } else if (bom) {
    encoding_ = Encoding::kUtf8;
    encoding_decided_ = true;
  } else {
    const std::string_view window = head.substr(0, std::min(head.size(), opt_.sniff_bytes));
    bool any_high = false;
    for (char c : window) any_high = any_high || static_cast<unsigned char>(c) >= 0x80;
    bool mixed = false;
    encoding_ = GuessEncoding(window, &mixed);
    // Only ASCII so far: both readings agree; decide at the first other byte.
    encoding_decided_ = any_high;
    if (any_high) LogGuess(mixed, 1);
  }
  pos_ = bom;

  for (int64_t i = 0; i < opt_.skip_rows; ++i) {
    auto r = SkipLine();
    if (!r.ok()) return r.status();
    if (!*r) break;
  }

  if (opt_.max_columns < 1) opt_.max_columns = 1;
  const size_t max_columns = static_cast<size_t>(opt_.max_columns);
  if (opt_.columns.size() > max_columns) {
    return Status::Invalid(file_name_ + ": `columns` lists " + std::to_string(opt_.columns.size()) +
                           " names, more than limits.columns (" + std::to_string(max_columns) +
                           ")");
  }
  if (opt_.header) {
    in_header_ = true;
    // One more than the limit: a header ending in a delimiter has an empty last column.
    field_cap_ = max_columns + 1;
    const Status header = ReadHeader();
    in_header_ = false;
    KEYONCE_RETURN_IF_ERROR(header);
    if (!opt_.columns.empty()) {
      if (opt_.columns.size() != names_.size() && !names_.empty()) {
        return Status::Invalid(file_name_ + ": `columns` lists " +
                               std::to_string(opt_.columns.size()) + " names but the header has " +
                               std::to_string(names_.size()) + " columns");
      }
      names_ = opt_.columns;
    }
  } else {
    if (opt_.columns.empty()) {
      return Status::Invalid("header: false needs `columns` to name the fields");
    }
    names_ = opt_.columns;
  }
  // Names must be unique and non-empty (after renames too). The prototype
  // record (names, null values) is its own index of the names seen.
  prototype_ = Record();
  prototype_.reserve(names_.size());
  for (size_t i = 0; i < names_.size(); ++i) {
    const std::string what = opt_.header && opt_.columns.empty() ? "header" : "`columns`";
    if (names_[i].empty()) {
      return Status::Invalid(file_name_ + ": " + what + " column " + std::to_string(i + 1) +
                             " has no name");
    }
    auto [it, fresh] = prototype_.emplace(names_[i], nullptr);
    if (!fresh) {
      return Status::Invalid(file_name_ + ": " + what + " column " + std::to_string(i + 1) + " '" +
                             names_[i] + "' repeats column " +
                             std::to_string(it - prototype_.begin() + 1));
    }
  }
  // A row may have one field more than the header (a trailing delimiter);
  // a wider one is rejected on its count alone.
  field_cap_ = names_.size() + 1;
  // One copy of the names is enough (a few hundred bytes, or megabytes for a
  // file a million columns wide).
  names_.clear();
  names_.shrink_to_fit();
  return Status::OK();
}

Result<bool> CsvReader::SkipLine() {
  for (;;) {
    if (pos_ >= end_) {
      if (eof_) return false;
      KEYONCE_RETURN_IF_ERROR(Refill());
      continue;
    }
    size_t i = pos_;
    while (i < end_ && buf_[i] != '\n' && buf_[i] != '\r') ++i;
    if (i >= end_ || (buf_[i] == '\r' && i + 1 >= end_)) {
      if (!eof_) {
        KEYONCE_RETURN_IF_ERROR(Refill());
        continue;
      }
      pos_ = end_;
      if (i < end_) ++line_;
      return true;
    }
    if (buf_[i] == '\r' && buf_[i + 1] == '\n') ++i;
    pos_ = i + 1;
    ++line_;
    return true;
  }
}

Status CsvReader::ReadHeader() {
  for (;;) {
    if (pos_ >= end_) {
      if (eof_) {
        if (log_) log_->Warn(file_name_ + " is empty (no header row)");
        return Status::OK();
      }
      KEYONCE_RETURN_IF_ERROR(Refill());
      continue;
    }
    Parse p = ParseRecord();
    if (p == Parse::kNeedMore) {
      KEYONCE_RETURN_IF_ERROR(Refill());
      continue;
    }
    if (p == Parse::kError) {
      SourceItem tmp;
      const uint64_t start = line_;
      Reject(&tmp, start, "", pos_, pos_);
      return Status::Invalid(file_name_ + ": header row: " + tmp.reason);
    }
    if (IsBlankRecord()) {
      pos_ = rec_next_;
      line_ += rec_breaks_;
      continue;
    }
    if (nfields_ > field_cap_) {
      return Status::Invalid(file_name_ + ": line " + std::to_string(line_) + ": the header has " +
                             std::to_string(nfields_) + " columns, more than limits.columns (" +
                             std::to_string(opt_.max_columns) +
                             "); raise limits.columns if the file really is this wide");
    }
    names_.clear();
    names_.reserve(nfields_);
    for (size_t i = 0; i < nfields_; ++i) {
      std::string_view v;
      size_t bad = 0;
      bool nul = false;
      if (!DecodeField(i, &v, &bad, &nul)) {
        uint64_t line, col;
        LineAndColumn(bad, &line, &col);
        return Status::Invalid(file_name_ + ": header row, line " + std::to_string(line) +
                               ", column " + std::to_string(col) + ": " +
                               (nul ? "NUL byte" : "invalid UTF-8"));
      }
      names_.emplace_back(Trim(v));
    }
    if (names_.size() > 1 && names_.back().empty()) {
      // Every line ends with a delimiter: ignore the empty last column.
      names_.pop_back();
      trailing_delimiter_ = true;
    }
    if (names_.size() > static_cast<size_t>(opt_.max_columns)) {
      return Status::Invalid(file_name_ + ": line " + std::to_string(line_) + ": the header has " +
                             std::to_string(names_.size()) +
                             " columns, more than limits.columns (" +
                             std::to_string(opt_.max_columns) +
                             "); raise limits.columns if the file really is this wide");
    }
    pos_ = rec_next_;
    line_ += rec_breaks_;
    return Status::OK();
  }
}

CsvReader::Parse CsvReader::ParseRecord() {
  nfields_ = 0;
  err_ = ErrorKind::kNone;
  const char* b = buf_.data();
  const size_t n = end_;
  const char delim = opt_.delimiter;
  const uint64_t max_breaks = static_cast<uint64_t>(opt_.max_record_lines);
  // Spaces around quotes are allowed when trimming, and always in the header.
  const bool trim = opt_.trim || in_header_;
  size_t i = pos_;
  uint64_t breaks = 0;
  multiline_quote_ = kNpos;

  for (;;) {
    FieldRef f;
    bool quoted = false;
    if (quote_ >= 0) {
      size_t j = i;
      if (trim) {
        while (j < n && IsSpace(b[j]) && b[j] != delim) ++j;
        if (j >= n && !eof_) return Parse::kNeedMore;
      }
      if (j < n && static_cast<unsigned char>(b[j]) == quote_) {
        quoted = true;
        i = j;
      }
    }
    if (quoted) {
      const char q = static_cast<char>(quote_);
      f.quoted = true;
      f.quote_pos = i;
      ++i;
      f.begin = i;
      for (;;) {
        i = ScanTo(b, i, n, quoted_special_, q, '\n', '\r');
        if (i >= n) {
          if (!eof_) return Parse::kNeedMore;
          err_ = ErrorKind::kUnbalanced;
          err_open_quote_ = f.quote_pos;
          return Parse::kError;
        }
        const char c = b[i];
        if (c == q) {
          if (i + 1 >= n && !eof_) return Parse::kNeedMore;
          if (i + 1 < n && b[i + 1] == q) {
            f.escaped = true;
            i += 2;
            continue;
          }
          f.end = i;
          ++i;
          break;
        }
        // A line break inside the quotes.
        if (c == '\r') {
          if (i + 1 >= n && !eof_) return Parse::kNeedMore;
          if (i + 1 < n && b[i + 1] == '\n') ++i;
        }
        ++i;
        ++breaks;
        if (multiline_quote_ == kNpos) multiline_quote_ = f.quote_pos;
        if (breaks >= max_breaks) {
          err_ = ErrorKind::kTooManyLines;
          err_open_quote_ = f.quote_pos;
          return Parse::kError;
        }
      }
      if (trim) {
        while (i < n && IsSpace(b[i]) && b[i] != delim) ++i;
      }
      if (i >= n) {
        if (!eof_) return Parse::kNeedMore;
        AddField(f);
        rec_content_end_ = rec_next_ = n;
        break;
      }
      const char c = b[i];
      if (c == delim) {
        AddField(f);
        ++i;
        continue;
      }
      if (c != '\n' && c != '\r') {
        err_ = ErrorKind::kAfterQuote;
        err_pos_ = i;
        err_open_quote_ = f.quote_pos;
        return Parse::kError;
      }
      AddField(f);
    } else {
      f.begin = i;
      i = ScanTo(b, i, n, special_, delim, '\n', '\r');
      if (i >= n) {
        if (!eof_) return Parse::kNeedMore;
        f.end = n;
        AddField(f);
        rec_content_end_ = rec_next_ = n;
        break;
      }
      f.end = i;
      AddField(f);
      if (b[i] == delim) {
        ++i;
        continue;
      }
    }
    // The line break that ends the record.
    rec_content_end_ = i;
    if (b[i] == '\r') {
      if (i + 1 >= n && !eof_) return Parse::kNeedMore;
      if (i + 1 < n && b[i + 1] == '\n') ++i;
    }
    ++i;
    ++breaks;
    rec_next_ = i;
    break;
  }
  rec_breaks_ = breaks;
  return Parse::kRecord;
}

bool CsvReader::IsBlankRecord() const {
  if (nfields_ > field_cap_) {
    // Not every field is stored: blank means nothing but spaces and delimiters.
    for (size_t k = pos_; k < rec_content_end_; ++k) {
      if (!IsSpace(buf_[k]) && buf_[k] != opt_.delimiter) return false;
    }
    return true;
  }
  for (size_t i = 0; i < nfields_; ++i) {
    const FieldRef& f = fields_[i];
    if (f.quoted) return false;
    for (size_t k = f.begin; k < f.end; ++k) {
      if (!IsSpace(buf_[k])) return false;
    }
  }
  return true;
}

void CsvReader::DecideEncoding() {
  const std::string_view rest(buf_.data() + pos_, end_ - pos_);
  bool mixed = false;
  encoding_ = GuessEncoding(rest, &mixed);
  encoding_decided_ = true;
  LogGuess(mixed, line_);
}

void CsvReader::LogGuess(bool mixed, int64_t line) {
  if (!log_) return;
  const std::string from = line > 1 ? " from line " + std::to_string(line) : "";
  if (mixed) {
    log_->Warn(file_name_ + " mixes UTF-8 with bytes that are not UTF-8" + from +
               "; reading it as UTF-8, so rows with other bytes are quarantined (set encoding: "
               "windows-1252 if the file is Windows-1252)");
  } else if (encoding_ != Encoding::kUtf8) {
    log_->Info(file_name_ + " is not valid UTF-8" + from + "; reading it as windows-1252");
  }
}

bool CsvReader::DecodeField(size_t i, std::string_view* out, size_t* bad_pos, bool* nul) {
  const FieldRef& f = fields_[i];
  const std::string_view raw(buf_.data() + f.begin, f.end - f.begin);
  std::string& s = decoded_;
  std::string_view v = raw;
  const size_t k = FindHighOrNul(raw);
  if (k < raw.size()) {
    if (const void* z = std::memchr(raw.data() + k, 0, raw.size() - k)) {
      *bad_pos = f.begin + static_cast<size_t>(static_cast<const char*>(z) - raw.data());
      *nul = true;
      return false;
    }
    if (!encoding_decided_) DecideEncoding();
    s.clear();
    if (auto bad = ToUtf8(raw, encoding_, &s)) {
      *bad_pos = f.begin + *bad;
      *nul = false;
      return false;
    }
    if (encoding_ != Encoding::kUtf8) v = s;  // UTF-8: the bytes are already right
  }
  if (f.escaped) {
    if (v.data() == s.data()) {
      tmp_.swap(s);
      v = tmp_;
    }
    Unescape(v, static_cast<char>(quote_), &s);
    v = s;
  }
  if (opt_.trim) v = Trim(v);
  *out = v;
  return true;
}

void CsvReader::LineAndColumn(size_t pos, uint64_t* line, uint64_t* column) const {
  uint64_t l = line_;
  size_t start = pos_;
  for (size_t k = pos_; k < pos; ++k) {
    const char c = buf_[k];
    if (c == '\n' || c == '\r') {
      if (c == '\r' && k + 1 < pos && buf_[k + 1] == '\n') ++k;
      ++l;
      start = k + 1;
    }
  }
  uint64_t col = 1;
  for (size_t k = start; k < pos; ++k) {
    const unsigned char c = static_cast<unsigned char>(buf_[k]);
    if (encoding_ != Encoding::kUtf8 || (c & 0xC0) != 0x80) ++col;
  }
  *line = l;
  *column = col;
}

bool CsvReader::HasLineEnd(size_t pos) const {
  for (size_t i = pos; i < end_; ++i) {
    if (buf_[i] == '\n') return true;
    if (buf_[i] == '\r') return i + 1 < end_;  // CR LF must not be split
  }
  return false;
}

size_t CsvReader::LineEndAfter(size_t pos, size_t* next_line) const {
  size_t i = pos;
  while (i < end_ && buf_[i] != '\n' && buf_[i] != '\r') ++i;
  const size_t line_end = i;
  if (i < end_) {
    if (buf_[i] == '\r' && i + 1 < end_ && buf_[i + 1] == '\n') ++i;
    ++i;
  }
  *next_line = i;
  return line_end;
}

std::string CsvReader::RawText(size_t begin, size_t end) const {
  std::string out;
  std::string_view rest(buf_.data() + begin, end - begin);
  if (encoding_ != Encoding::kUtf8) {
    ToUtf8(rest, encoding_, &out);
    return out;
  }
  // UTF-8: keep valid text; show each invalid byte as windows-1252 would.
  while (!rest.empty()) {
    auto bad = ToUtf8(rest, Encoding::kUtf8, &out);
    if (!bad) break;
    out.append(rest.substr(0, *bad));
    ToUtf8(rest.substr(*bad, 1), Encoding::kWindows1252, &out);
    rest.remove_prefix(*bad + 1);
  }
  return out;
}

void CsvReader::SetPosition(SourceItem* item, uint64_t line) const {
  item->position.clear();
  item->position.reserve(file_name_.size() + 12);
  item->position.append(file_name_);
  item->position.push_back(':');
  AppendUint(&item->position, line);
}

// Fills a rejected item for the error ParseRecord reported (when `reason` is
// empty) or for `reason` with the raw text [raw_begin, raw_end), and moves
// past the rejected text.
void CsvReader::Reject(SourceItem* item, uint64_t line, std::string reason, size_t raw_begin,
                       size_t raw_end) {
  size_t next = rec_next_;
  uint64_t next_line = line + rec_breaks_;
  if (reason.empty()) {
    uint64_t ql, qc;
    LineAndColumn(err_open_quote_, &ql, &qc);
    size_t after_quote_line;
    const size_t quote_line_end = LineEndAfter(err_open_quote_, &after_quote_line);
    raw_begin = pos_;
    if (err_ == ErrorKind::kAfterQuote) {
      uint64_t el, ec;
      LineAndColumn(err_pos_, &el, &ec);
      if (el == ql) {
        // The quoted field closed on its own line: the rest of that line is bad.
        reason = "line " + std::to_string(el) + ", column " + std::to_string(ec) +
                 ": unexpected character after closing quote";
        raw_end = LineEndAfter(err_pos_, &next);
        next_line = el + 1;
      } else {
        // The field ran on over line breaks: most likely its quote is unbalanced.
        reason = "line " + std::to_string(ql) + ", column " + std::to_string(qc) +
                 ": quoted field is not closed on its line, and the quote that ends it on line " +
                 std::to_string(el) + " is followed by an unexpected character (unbalanced quote)";
        raw_end = quote_line_end;
        next = after_quote_line;
        next_line = ql + 1;
      }
    } else {
      if (err_ == ErrorKind::kTooManyLines) {
        reason = "line " + std::to_string(ql) + ", column " + std::to_string(qc) +
                 ": quoted field is not closed within " + std::to_string(opt_.max_record_lines) +
                 " lines (unbalanced quote; see max_record_lines)";
      } else {
        reason = "line " + std::to_string(ql) + ", column " + std::to_string(qc) +
                 ": quoted field is never closed (unbalanced quote)";
      }
      raw_end = quote_line_end;
      next = after_quote_line;
      next_line = ql + 1;
    }
  }
  item->record = Record();
  item->rejected = true;
  item->reason = std::move(reason);
  item->raw = RawText(raw_begin, raw_end);
  SetPosition(item, line);
  pos_ = next;
  line_ = next_line;
}

Result<bool> CsvReader::Next(SourceItem* item) {
  if (fd_ < 0) return Status::Internal("CsvReader::Next before Open");
  for (;;) {
    if (pos_ >= end_) {
      if (eof_) return false;
      KEYONCE_RETURN_IF_ERROR(Refill());
      continue;
    }
    const Parse p = ParseRecord();
    if (p == Parse::kNeedMore) {
      KEYONCE_RETURN_IF_ERROR(Refill());
      continue;
    }
    const uint64_t line = line_;
    if (p == Parse::kError) {
      // Text after a closing quote rejects the rest of its line: read up to
      // the line's end first.
      if (err_ == ErrorKind::kAfterQuote && !eof_ && !HasLineEnd(err_pos_)) {
        KEYONCE_RETURN_IF_ERROR(Refill());
        continue;
      }
      Reject(item, line, "", pos_, pos_);
      return true;
    }
    if (IsBlankRecord()) {
      pos_ = rec_next_;
      line_ += rec_breaks_;
      continue;
    }

    size_t count = nfields_;
    const size_t width = prototype_.size();
    if (trailing_delimiter_ && count == width + 1) {
      const FieldRef& last = fields_[count - 1];
      if (!last.quoted && last.begin == last.end) --count;
    }
    if (count != width) {
      std::string reason = "line " + std::to_string(line) + ": " + std::to_string(count) +
                           (count == 1 ? " field, " : " fields, ") +
                           (opt_.header ? "the header has " : "`columns` names ") +
                           std::to_string(width);
      if (multiline_quote_ != kNpos) {
        // Line breaks inside quotes: the row's last line is the one before its end.
        const bool terminated = rec_content_end_ < rec_next_;
        reason += " (the row spans lines " + std::to_string(line) + "-" +
                  std::to_string(line + rec_breaks_ - (terminated ? 1 : 0)) + ")";
      }
      Reject(item, line, std::move(reason), pos_, rec_content_end_);
      return true;
    }

    // Copying the prototype (names, null values) skips the duplicate-key
    // checks of emplace; then each value is decoded straight into its place
    // (a row that fails is dropped whole).
    Record rec(prototype_, item->storage);
    auto it = rec.begin();
    bool ok = true;
    for (size_t i = 0; i < count; ++i, ++it) {
      size_t bad = 0;
      bool nul = false;
      std::string_view value;
      if (!DecodeField(i, &value, &bad, &nul)) {
        uint64_t bl, bc;
        LineAndColumn(bad, &bl, &bc);
        std::string reason = "line " + std::to_string(bl) + ", column " + std::to_string(bc) +
                             " (field '" + std::string((prototype_.begin() + i)->key()) + "'): ";
        if (nul) {
          reason += "NUL byte";
        } else {
          reason += "invalid UTF-8 (byte " +
                    Hex(static_cast<unsigned char>(buf_[bad])) + ")";
          if (!opt_.encoding) {
            reason += "; the file was detected as UTF-8, set encoding: windows-1252 if it is not";
          }
        }
        Reject(item, line, std::move(reason), pos_, rec_content_end_);
        ok = false;
        break;
      }
      it->value().emplace_string().assign(value.data(), value.size());
    }
    if (!ok) return true;
    item->SetRecord(std::move(rec));
    item->rejected = false;
    item->reason.clear();
    item->raw.clear();
    SetPosition(item, line);
    pos_ = rec_next_;
    line_ += rec_breaks_;
    return true;
  }
}

}  // namespace keyonce::connectors::csv
