// Streaming RFC 4180 CSV reader, used by the csv source and lookup.
//
// Reads the file in chunks (memory stays flat whatever the file size),
// decodes each value to UTF-8 and yields one SourceItem per record. A
// malformed row becomes a rejected item whose reason names the line (and
// column) and whose raw text is kept; reading then goes on with the next
// row. An unbalanced quote never swallows the rest of the file: a quoted
// field that runs to the end of the file, or over more than
// max_record_lines lines, rejects the row that opened it and reading
// resumes on the line after it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "connectors/common/encoding.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::csv {

struct CsvReaderOptions {
  char delimiter = ',';
  std::optional<char> quote = '"';    // nullopt: no quoting at all
  std::optional<Encoding> encoding;   // nullopt: auto-detect
  bool header = true;                 // the first row names the fields
  std::vector<std::string> columns;   // field names (header: false) or renames (header: true)
  int64_t skip_rows = 0;              // physical lines skipped before the header / first row
  bool trim = false;                  // strip spaces and tabs around values
  int64_t max_record_lines = 1000;    // a quoted field spanning more lines is unbalanced
  size_t chunk_size = 256 * 1024;     // bytes read at a time (small in tests)
  size_t sniff_bytes = 64 * 1024;     // bytes looked at to detect the encoding
  // A longer record stops reading; set from the recipe's limits.record_bytes.
  size_t max_record_bytes = 64u << 20;
  // A wider header (or `columns`) fails Open; set from the recipe's limits.columns. Rows are
  // held to the header's width: the reader keeps no place for a field beyond it.
  int64_t max_columns = 16384;
};

class CsvReader {
 public:
  explicit CsvReader(CsvReaderOptions options);
  ~CsvReader();
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Opens the file, detects the encoding, skips skip_rows lines and reads
  // the header. `log` (may be null) receives warnings about the file.
  Status Open(const std::filesystem::path& path, Log* log = nullptr);
  // Next record or rejected row; false at the end; an error when the file
  // cannot be read.
  Result<bool> Next(SourceItem* item);
  void Close();
  // The recipe's limits.record_bytes and limits.columns, from RunContext::limits.
  void SetLimits(const Limits& limits) {
    opt_.max_record_bytes = limits.record_bytes;
    opt_.max_columns = limits.columns;
  }

  // Field names, in order (after `columns` renames).
  std::vector<std::string> field_names() const {
    std::vector<std::string> names;
    names.reserve(prototype_.size());
    for (const auto& kv : prototype_) names.emplace_back(kv.key());
    return names;
  }
  // The encoding used (for auto: what was detected so far; UTF-8 while
  // only ASCII has been seen).
  Encoding encoding() const { return encoding_; }
  const std::string& file_name() const { return file_name_; }

 private:
  struct FieldRef {
    size_t begin = 0;  // buffer offsets of the value (inside quotes for a quoted field)
    size_t end = 0;
    size_t quote_pos = 0;  // opening quote (quoted fields)
    bool quoted = false;
    bool escaped = false;  // contains doubled quotes
  };
  enum class Parse { kRecord, kNeedMore, kError };
  enum class ErrorKind { kNone, kUnbalanced, kTooManyLines, kAfterQuote };

  Status Fill(size_t min_bytes);           // reads until end_-pos_ >= min_bytes or EOF
  Status Refill();                         // compacts and reads one more chunk
  Parse ParseRecord();                     // parses the record at pos_
  Result<bool> SkipLine();                 // skips one physical line; false at EOF
  bool IsBlankRecord() const;
  // Decodes field i to UTF-8: *out points into the buffer or into
  // decoded_, valid until the next call. Returns false and sets *bad_pos for
  // NUL / invalid UTF-8.
  bool DecodeField(size_t i, std::string_view* out, size_t* bad_pos, bool* nul);
  void DecideEncoding();
  void LogGuess(bool mixed, int64_t line);  // says how auto-detection read the file
  bool HasLineEnd(size_t pos) const;  // a complete line break at or after pos is buffered
  size_t LineEndAfter(size_t pos, size_t* next_line) const;
  void LineAndColumn(size_t pos, uint64_t* line, uint64_t* column) const;
  std::string RawText(size_t begin, size_t end) const;
  void Reject(SourceItem* item, uint64_t line, std::string reason, size_t raw_begin,
              size_t raw_end);
  void SetPosition(SourceItem* item, uint64_t line) const;
  Status ReadHeader();

  CsvReaderOptions opt_;
  Log* log_ = nullptr;
  std::string file_name_;
  int fd_ = -1;
  bool eof_ = false;

  std::string buf_;   // bytes [0, end_) valid
  size_t pos_ = 0;    // start of the next record
  size_t end_ = 0;
  uint64_t line_ = 1;  // physical line at pos_

  Encoding encoding_ = Encoding::kUtf8;
  bool encoding_decided_ = true;

  bool special_[256] = {};         // delimiter, CR, LF: end an unquoted field
  bool quoted_special_[256] = {};  // quote, CR, LF: stop the scan of a quoted field
  int quote_ = -1;                 // -1: no quoting

  std::vector<std::string> names_;   // while Open reads them; then the prototype holds them
  Record prototype_;                 // the field names with null values
  bool trailing_delimiter_ = false;  // the header ends with an empty column
  bool in_header_ = false;           // parsing the header: spaces around quotes allowed

  // Fields past field_cap_ are only counted: a row of millions of delimiters
  // costs no memory beyond its text.
  void AddField(const FieldRef& f) {
    if (nfields_ < field_cap_) {
      if (nfields_ == fields_.size()) fields_.resize(std::min(nfields_ * 2 + 16, field_cap_));
      fields_[nfields_] = f;
    }
    ++nfields_;
  }
  size_t stored_fields() const { return std::min(nfields_, field_cap_); }

  // The record ParseRecord found: nfields_ fields, the first stored_fields()
  // of them in fields_.
  std::vector<FieldRef> fields_;
  size_t nfields_ = 0;
  size_t field_cap_ = 0;        // the header: limits.columns + 1; rows: the header's width + 1
  size_t rec_content_end_ = 0;  // end of the record's text (before the line break)
  size_t rec_next_ = 0;         // start of the next record
  uint64_t rec_breaks_ = 0;     // line breaks consumed, terminator included
  ErrorKind err_ = ErrorKind::kNone;
  size_t err_pos_ = 0;          // the offending character
  size_t err_open_quote_ = 0;   // opening quote of the field in error
  size_t multiline_quote_ = 0;  // opening quote of the first field spanning lines

  std::string decoded_;  // DecodeField's buffers, reused
  std::string tmp_;
};

}  // namespace keyonce::connectors::csv
