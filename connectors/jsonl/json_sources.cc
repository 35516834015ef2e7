// Sources: `jsonl` (one JSON object per line) and `json` (an array of objects).
// Both stream: memory holds one read chunk and the records completed in it.

#include <fcntl.h>
#include <unistd.h>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/value_stack.hpp>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>

#include "connectors/common/encoding.h"
#include "connectors/jsonl/json_internal.h"

namespace keyonce::connectors::json {
namespace {

namespace fs = std::filesystem;

constexpr size_t kChunkBytes = 256 * 1024;

// Opens `path` for reading with errors in keyonce's words.
Result<int> OpenForReading(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return Status::NotFound("file not found: " + path.string());
    return Status::Io("opening " + path.string() + ": " + std::strerror(err));
  }
  return fd;
}

// Reads up to `n` bytes; 0 at the end of the file.
Result<size_t> ReadSome(int fd, char* data, size_t n, const fs::path& path) {
  while (true) {
    ssize_t r = ::read(fd, data, n);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno == EINTR) continue;
    return Status::Io("reading " + path.string() + ": " + std::strerror(errno));
  }
}

const char* KindName(const Value& v) {
  switch (v.kind()) {
    case boost::json::kind::null: return "null";
    case boost::json::kind::bool_: return "boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_: return "number";
    case boost::json::kind::string: return "string";
    case boost::json::kind::array: return "array";
    case boost::json::kind::object: return "object";
  }
  return "value";
}

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }


// ---------------------------------------------------------------------------
// jsonl

class JsonlSource : public Source {
 public:
  explicit JsonlSource(Settings settings) : settings_(std::move(settings)) {}
  ~JsonlSource() override { CloseFd(); }

  Status Open(const RunContext& ctx) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status();
    path_ = *path;
    name_ = path_.filename().string();
    auto fd = OpenForReading(path_);
    if (!fd.ok()) return fd.status();
    fd_ = *fd;
    buf_.assign(kChunkBytes, '\0');
    start_ = end_ = 0;
    eof_ = false;
    line_no_ = 0;
    max_line_ = ctx.limits.record_bytes;
    return Status::OK();
  }

  Result<bool> Next(SourceItem* item) override {
    if (fd_ < 0) return Status::Internal("jsonl source read before Open");
    while (true) {
      std::string_view line;
      bool too_long = false;
      auto got = ReadLine(&line, &too_long);
      if (!got.ok()) return got.status();
      if (!*got) return false;
      ++line_no_;
      if (too_long) {
        *item = SourceItem();
        item->position = name_ + ":" + std::to_string(line_no_);
        item->rejected = true;
        item->reason = "line " + std::to_string(line_no_) + ": longer than limits.record_bytes (" +
                       ByteSize(max_line_) + "); skipped without being held in memory";
        return true;
      }
      if (line_no_ == 1) line.remove_prefix(Utf8BomLength(line));
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      bool blank = true;
      for (char c : line) {
        if (!IsJsonSpace(c)) {
          blank = false;
          break;
        }
      }
      if (blank) continue;

      *item = SourceItem();
      item->position = name_ + ":" + std::to_string(line_no_);
      const std::string where = "line " + std::to_string(line_no_);
      if (auto bad = FirstInvalidUtf8(line)) {
        Reject(item, line,
               where + ", column " + std::to_string(CharCount(line, *bad) + 1) +
                   ": invalid UTF-8");
        return true;
      }
      parser_.reset();
      boost::json::error_code ec;
      size_t n = parser_.write_some(line.data(), line.size(), ec);
      if (ec) {
        Reject(item, line,
               where + ", column " + std::to_string(CharCount(line, n) + 1) + ": " + ec.message());
        return true;
      }
      if (n < line.size()) {
        Reject(item, line,
               where + ", column " + std::to_string(CharCount(line, n) + 1) +
                   ": unexpected text after the JSON value");
        return true;
      }
      Value v = parser_.release();
      if (!v.is_object()) {
        Reject(item, line, where + ": a JSON " + KindName(v) + ", not an object");
        return true;
      }
      item->record = std::move(v.get_object());
      return true;
    }
  }

  Status Close() override {
    CloseFd();
    return Status::OK();
  }

 private:
  static void Reject(SourceItem* item, std::string_view line, std::string reason) {
    item->rejected = true;
    item->reason = std::move(reason);
    item->raw = std::string(line);
  }

  void CloseFd() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // The next line without its '\n'; the view lives until the next call.
  // The next line. One longer than max_line_ is skipped to its end without
  // being held: *too_long is set and *line is empty.
  Result<bool> ReadLine(std::string_view* line, bool* too_long) {
    size_t scan = start_;
    while (true) {
      if (!*too_long && end_ - start_ > max_line_) {
        const void* nl = std::memchr(buf_.data() + start_, '\n', end_ - start_);
        if (!nl ||
            static_cast<size_t>(static_cast<const char*>(nl) - buf_.data()) - start_ > max_line_) {
          *too_long = true;
        }
      }
      if (*too_long) {
        // Drop what is buffered up to the line's end, reading on until it comes.
        const void* nl = std::memchr(buf_.data() + start_, '\n', end_ - start_);
        if (nl) {
          start_ = static_cast<size_t>(static_cast<const char*>(nl) - buf_.data()) + 1;
          *line = std::string_view();
          return true;
        }
        start_ = end_ = 0;
        if (eof_) {
          *line = std::string_view();
          return true;
        }
        auto n = ReadSome(fd_, buf_.data(), buf_.size(), path_);
        if (!n.ok()) return n.status();
        if (*n == 0) eof_ = true;
        end_ = *n;
        continue;
      }
      const void* nl = scan < end_ ? std::memchr(buf_.data() + scan, '\n', end_ - scan) : nullptr;
      if (nl) {
        size_t at = static_cast<size_t>(static_cast<const char*>(nl) - buf_.data());
        *line = std::string_view(buf_.data() + start_, at - start_);
        start_ = at + 1;
        return true;
      }
      if (eof_) {
        if (start_ == end_) return false;
        *line = std::string_view(buf_.data() + start_, end_ - start_);
        start_ = end_;
        return true;
      }
      if (start_ > 0) {
        std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
        end_ -= start_;
        start_ = 0;
      }
      scan = end_;
      if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);  // a line longer than the buffer
      auto n = ReadSome(fd_, buf_.data() + end_, buf_.size() - end_, path_);
      if (!n.ok()) return n.status();
      if (*n == 0) eof_ = true;
      end_ += *n;
    }
  }

  Settings settings_;
  fs::path path_;
  std::string name_;
  int fd_ = -1;
  std::string buf_;
  size_t start_ = 0, end_ = 0;
  bool eof_ = false;
  uint64_t line_no_ = 0;
  size_t max_line_ = Limits().record_bytes;
  boost::json::parser parser_;
};

// ---------------------------------------------------------------------------
// json: a handler for boost::json::basic_parser that follows records_path
// down to the records array and builds its elements one at a time with a
// value_stack; everything else in the file is only validated.

class RecordsHandler {
 public:
  static constexpr size_t max_object_size = boost::json::object::max_size();
  static constexpr size_t max_array_size = boost::json::array::max_size();
  static constexpr size_t max_key_size = boost::json::string::max_size();
  static constexpr size_t max_string_size = boost::json::string::max_size();

  struct Element {
    Value value;
    uint64_t line = 0;
    bool oversize = false;  // larger than max_element_bytes: not built, only skipped
  };

  explicit RecordsHandler(std::vector<std::string> path) : path_(std::move(path)) {}

  // An element larger than this (its texts, and a few bytes per value) is
  // skipped as it is read, never held whole: limits.record_bytes.
  size_t max_element_bytes = Limits().record_bytes;

  std::deque<Element> ready;  // completed elements, in order
  std::string failure;        // why the handler stopped the parser
  bool found = false;         // the records array was reached
  uint64_t line = 1;          // line being parsed, kept by the feeder

  bool on_document_begin(boost::json::error_code&) { return true; }
  bool on_document_end(boost::json::error_code&) { return true; }

  bool on_object_begin(boost::json::error_code& ec) { return BeginContainer(true, ec); }
  bool on_object_end(size_t n, boost::json::error_code&) { return EndContainer(true, n); }
  bool on_array_begin(boost::json::error_code& ec) { return BeginContainer(false, ec); }
  bool on_array_end(size_t n, boost::json::error_code&) { return EndContainer(false, n); }

  bool on_key_part(boost::json::string_view s, size_t, boost::json::error_code&) {
    if (capture_ > 0) {
      if (Grow(s.size())) st_.push_chars(s);
    } else if (OnPathObject()) {
      key_.append(s.data(), s.size());
    }
    return true;
  }
  bool on_key(boost::json::string_view s, size_t, boost::json::error_code&) {
    if (capture_ > 0) {
      if (Grow(s.size() + kValueBytes)) st_.push_key(s);
    } else if (OnPathObject()) {
      key_.append(s.data(), s.size());
      size_t level = static_cast<size_t>(frames_.back().level);
      key_on_path_ = level < path_.size() && key_ == path_[level];
      key_.clear();
    }
    return true;
  }

  bool on_string_part(boost::json::string_view s, size_t, boost::json::error_code& ec) {
    if (capture_ > 0) {
      if (Grow(s.size())) st_.push_chars(s);
      return true;
    }
    if (!in_string_) {
      in_string_ = true;
      if (!BeginScalar(&string_capture_, ec)) return false;
    }
    if (string_capture_ && Grow(s.size())) st_.push_chars(s);
    return true;
  }
  bool on_string(boost::json::string_view s, size_t, boost::json::error_code& ec) {
    if (capture_ > 0) {
      if (Grow(s.size() + kValueBytes)) st_.push_string(s);
      return true;
    }
    if (!in_string_ && !BeginScalar(&string_capture_, ec)) return false;
    in_string_ = false;
    if (string_capture_) {
      if (Grow(s.size() + kValueBytes)) st_.push_string(s);
      FinishElement();
    }
    string_capture_ = false;
    return true;
  }

  bool on_number_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_int64(int64_t i, boost::json::string_view, boost::json::error_code& ec) {
    return Scalar([&] { st_.push_int64(i); }, ec);
  }
  bool on_uint64(uint64_t u, boost::json::string_view, boost::json::error_code& ec) {
    return Scalar([&] { st_.push_uint64(u); }, ec);
  }
  bool on_double(double d, boost::json::string_view, boost::json::error_code& ec) {
    return Scalar([&] { st_.push_double(d); }, ec);
  }
  bool on_bool(bool b, boost::json::error_code& ec) {
    return Scalar([&] { st_.push_bool(b); }, ec);
  }
  bool on_null(boost::json::error_code& ec) {
    return Scalar([&] { st_.push_null(); }, ec);
  }
  bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }

 private:
  struct Frame {
    int level;     // depth along records_path; -1 when off the path
    bool records;  // this array holds the records
  };
  enum class Role { kSkip, kPath, kElement };

  bool OnPathObject() const {
    return !frames_.empty() && frames_.back().level >= 0 && !frames_.back().records;
  }

  // What the value starting now is.
  Role Classify(size_t* level) const {
    if (frames_.empty()) {
      *level = 0;
      return Role::kPath;
    }
    const Frame& f = frames_.back();
    if (f.records) return Role::kElement;
    if (f.level >= 0 && key_on_path_) {
      *level = static_cast<size_t>(f.level) + 1;
      return Role::kPath;
    }
    return Role::kSkip;
  }

  bool Fail(boost::json::error_code& ec) {
    failure = path_.empty()
                  ? "the file does not hold a JSON array (set records_path to read an array "
                    "inside an object)"
                  : "records_path '" + Joined() + "' is not an array";
    ec = boost::json::error::exception;
    return false;
  }

  std::string Joined() const {
    std::string s;
    for (const auto& p : path_) s += (s.empty() ? "" : ".") + p;
    return s;
  }

  // What a value costs besides its text, for max_element_bytes.
  static constexpr size_t kValueBytes = 8;

  void StartElement() {
    st_.reset();
    element_line_ = line;
    element_bytes_ = 0;
    oversize_ = false;
  }
  // Counts n more bytes of the element; false once it is past the limit, when
  // what was built is dropped and the rest is only parsed.
  bool Grow(size_t n) {
    element_bytes_ += n;
    if (!oversize_ && element_bytes_ > max_element_bytes) {
      oversize_ = true;
      st_.reset();
    }
    return !oversize_;
  }
  void FinishElement() {
    if (oversize_) {
      st_.reset();
      ready.push_back(Element{Value(), element_line_, true});
    } else {
      ready.push_back(Element{st_.release(), element_line_, false});
    }
  }

  bool BeginContainer(bool is_object, boost::json::error_code& ec) {
    if (capture_ > 0) {
      ++capture_;
      return true;
    }
    size_t level = 0;
    switch (Classify(&level)) {
      case Role::kElement:
        StartElement();
        capture_ = 1;
        return true;
      case Role::kPath:
        if (level == path_.size()) {
          if (is_object) return Fail(ec);
          frames_.push_back({static_cast<int>(level), true});
          found = true;
          return true;
        }
        if (is_object) {
          frames_.push_back({static_cast<int>(level), false});
          key_on_path_ = false;
          return true;
        }
        break;  // an array where the path wants an object: off the path
      case Role::kSkip: break;
    }
    frames_.push_back({-1, false});
    return true;
  }

  bool EndContainer(bool is_object, size_t n) {
    if (capture_ > 0) {
      if (Grow(kValueBytes)) {
        if (is_object) {
          st_.push_object(n);
        } else {
          st_.push_array(n);
        }
      }
      if (--capture_ == 0) FinishElement();
      return true;
    }
    frames_.pop_back();
    key_on_path_ = false;
    return true;
  }

  // A scalar outside any element: is it an element (capture it)?
  bool BeginScalar(bool* capture, boost::json::error_code& ec) {
    *capture = false;
    size_t level = 0;
    switch (Classify(&level)) {
      case Role::kElement:
        StartElement();
        *capture = true;
        return true;
      case Role::kPath:
        if (level == path_.size()) return Fail(ec);
        return true;
      case Role::kSkip: return true;
    }
    return true;
  }

  template <typename Push>
  bool Scalar(Push push, boost::json::error_code& ec) {
    if (capture_ > 0) {
      if (Grow(kValueBytes)) push();
      return true;
    }
    bool capture = false;
    if (!BeginScalar(&capture, ec)) return false;
    if (capture) {
      if (Grow(kValueBytes)) push();
      FinishElement();
    }
    return true;
  }

  std::vector<std::string> path_;
  boost::json::value_stack st_;
  std::vector<Frame> frames_;
  int capture_ = 0;
  uint64_t element_line_ = 0;
  size_t element_bytes_ = 0;
  bool oversize_ = false;
  std::string key_;
  bool key_on_path_ = false;
  bool in_string_ = false;
  bool string_capture_ = false;
};

boost::json::parse_options JsonOptions() {
  boost::json::parse_options opt;
  opt.max_depth = 128;
  return opt;
}

class JsonSource : public Source {
 public:
  explicit JsonSource(Settings settings, std::vector<std::string> records_path)
      : settings_(std::move(settings)), parser_(JsonOptions(), std::move(records_path)) {}
  ~JsonSource() override { CloseFd(); }

  Status Open(const RunContext& ctx) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status();
    path_ = *path;
    name_ = path_.filename().string();
    auto fd = OpenForReading(path_);
    if (!fd.ok()) return fd.status();
    fd_ = *fd;
    buf_.assign(kChunkBytes, '\0');
    parser_.handler().max_element_bytes = max_record_bytes_ = ctx.limits.record_bytes;
    return Status::OK();
  }

  Result<bool> Next(SourceItem* item) override {
    if (fd_ < 0 && !finished_) return Status::Internal("json source read before Open");
    auto& h = parser_.handler();
    while (h.ready.empty()) {
      // Records completed before an error are handed out first.
      if (!error_.ok()) return error_;
      if (finished_) return false;
      Status s = Feed();
      if (!s.ok()) {
        error_ = s;
        finished_ = true;
        CloseFd();
      }
    }
    RecordsHandler::Element e = std::move(h.ready.front());
    h.ready.pop_front();
    ++index_;
    *item = SourceItem();
    item->position = name_ + ":" + std::to_string(e.line);
    if (e.oversize) {
      // Not kept in the quarantine either: the state file is no place for it.
      item->rejected = true;
      item->reason = "line " + std::to_string(e.line) + ": item " + std::to_string(index_) +
                     " is larger than limits.record_bytes (" + ByteSize(max_record_bytes_) +
                     "); skipped without being held in memory";
      return true;
    }
    if (!e.value.is_object()) {
      item->rejected = true;
      item->reason = "line " + std::to_string(e.line) + ": item " + std::to_string(index_) +
                     " is a JSON " + KindName(e.value) + ", not an object";
      item->raw = ToJson(e.value);
      return true;
    }
    item->record = std::move(e.value.get_object());
    return true;
  }

  Status Close() override {
    CloseFd();
    return Status::OK();
  }

 private:
  void CloseFd() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  Status ParseError(std::string_view piece, size_t n, const std::string& message) {
    size_t col = col_chars_ + CharCount(piece, n) + 1;
    return Status::Invalid(path_.string() + ": line " + std::to_string(line_) + ", column " +
                           std::to_string(col) + ": " + message);
  }

  // Hands one piece (at most one line) to the parser.
  Status FeedPiece(std::string_view piece) {
    size_t n = 0;
    if (!parser_.done()) {
      parser_.handler().line = line_;
      boost::json::error_code ec;
      n = parser_.write_some(true, piece.data(), piece.size(), ec);
      if (ec) {
        const std::string& failure = parser_.handler().failure;
        if (!failure.empty()) return ParseError(piece, n, failure);
        if (n < piece.size() && static_cast<unsigned char>(piece[n]) >= 0x80) {
          return ParseError(piece, n, "invalid UTF-8");
        }
        return ParseError(piece, n, ec.message());
      }
    }
    // After the document only whitespace may follow.
    for (size_t i = n; i < piece.size(); ++i) {
      if (!IsJsonSpace(piece[i])) {
        return ParseError(piece, i, "unexpected text after the JSON document");
      }
    }
    col_chars_ += CharCount(piece, piece.size());
    return Status::OK();
  }

  // Reads one chunk and feeds it line by line (so positions know their line).
  Status Feed() {
    auto got = ReadSome(fd_, buf_.data(), buf_.size(), path_);
    if (!got.ok()) return got.status();
    std::string_view data(buf_.data(), *got);
    if (data.empty()) return Finish();
    if (first_chunk_) {
      first_chunk_ = false;
      data.remove_prefix(Utf8BomLength(data));
    }
    while (!data.empty()) {
      size_t nl = data.find('\n');
      std::string_view piece = data.substr(0, nl == std::string_view::npos ? data.size() : nl + 1);
      KEYONCE_RETURN_IF_ERROR(FeedPiece(piece));
      data.remove_prefix(piece.size());
      if (nl != std::string_view::npos) {
        ++line_;
        col_chars_ = 0;
      }
    }
    return Status::OK();
  }

  Status Finish() {
    finished_ = true;
    CloseFd();
    if (!parser_.done()) {
      boost::json::error_code ec;
      parser_.write_some(false, nullptr, 0, ec);
      if (ec) {
        if (!parser_.handler().failure.empty()) {
          return ParseError({}, 0, parser_.handler().failure);
        }
        if (ec == boost::json::error::incomplete) {
          return ParseError({}, 0,
                            seen_bytes() ? "the JSON ends too early" : "the file holds no JSON");
        }
        return ParseError({}, 0, ec.message());
      }
    }
    if (!parser_.handler().found) {
      return Status::Invalid(path_.string() + ": records_path '" + RecordsPath() +
                             "' not found");
    }
    return Status::OK();
  }

  bool seen_bytes() const { return line_ > 1 || col_chars_ > 0; }

  std::string RecordsPath() const {
    auto p = settings_.String("records_path");
    return p ? *p : std::string();
  }

  Settings settings_;
  fs::path path_;
  std::string name_;
  int fd_ = -1;
  std::string buf_;
  bool first_chunk_ = true;
  bool finished_ = false;
  Status error_;
  uint64_t line_ = 1;
  size_t col_chars_ = 0;
  uint64_t index_ = 0;
  size_t max_record_bytes_ = Limits().record_bytes;
  boost::json::basic_parser<RecordsHandler> parser_;
};

std::vector<std::string> SplitPath(const std::string& s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    out.push_back(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<Source>> MakeJsonlSource(const Settings& settings) {
  return std::unique_ptr<Source>(new JsonlSource(settings));
}

Result<std::unique_ptr<Source>> MakeJsonSource(const Settings& settings) {
  std::string rp = settings.String("records_path").value_or("");
  std::vector<std::string> path = SplitPath(rp);
  for (const auto& seg : path) {
    if (seg.empty()) {
      return Status::Invalid(settings.where + ": records_path '" + rp +
                             "' has an empty part (write it like data.items)");
    }
  }
  return std::unique_ptr<Source>(new JsonSource(settings, std::move(path)));
}

}  // namespace keyonce::connectors::json
