// Reading the entries of a zip archive (xlsx and ods files are zips) with
// bounded memory and bounded work, on libzip.
//
// A spreadsheet comes from outside, so its zip is not trusted: every entry
// is read through a ZipEntryReader that counts the bytes it inflates and
// stops with a clear error past an absolute cap or past a compression ratio
// no real sheet reaches (a "zip bomb": a small file that inflates to
// gigabytes). Small entries are read whole (ReadWhole, with its own cap);
// big ones (a worksheet) are read in chunks and never held.
//
// Messages name the file by its display name (e.g. "staff.xlsx") and the
// entry, never any content.
//
// Threading: one archive and its readers are used from one thread at a time.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "keyonce/status.h"

struct zip;
struct zip_file;

namespace keyonce::connectors::sheet {

struct ZipLimits {
  // Bytes an entry may inflate to, whatever its ratio.
  uint64_t max_entry_bytes = uint64_t{4} << 30;
  // Inflated bytes per compressed byte an entry may reach once it has
  // inflated more than ratio_floor_bytes (small entries compress as they
  // like). Real sheets stay far below 100:1; a run of zeros is about 1000:1.
  uint64_t max_ratio = 100;
  uint64_t ratio_floor_bytes = uint64_t{1} << 20;
};

// Streams one entry. Read returns up to n bytes, 0 at the end; kInvalid
// when the entry is damaged (bad deflate data, CRC mismatch) or passes a
// limit, naming the file and entry.
class ZipEntryReader {
 public:
  ~ZipEntryReader();
  ZipEntryReader(const ZipEntryReader&) = delete;
  ZipEntryReader& operator=(const ZipEntryReader&) = delete;

  Result<size_t> Read(char* data, size_t n);
  // Bytes inflated so far.
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  friend class ZipArchive;
  ZipEntryReader() = default;
  zip_file* file_ = nullptr;
  std::string what_;  // "staff.xlsx: xl/worksheets/sheet1.xml"
  uint64_t compressed_ = 0;
  uint64_t bytes_read_ = 0;
  ZipLimits limits_;
};

class ZipArchive {
 public:
  ~ZipArchive();
  ZipArchive(const ZipArchive&) = delete;
  ZipArchive& operator=(const ZipArchive&) = delete;

  // Opens `path`; `kind` names the expected format in messages ("xlsx").
  // kNotFound when the file does not exist; kInvalid when it is not a zip
  // archive: an OLE compound file (an encrypted workbook, or an old binary
  // .xls/.doc) gets its own message, anything else "not a zip archive, or
  // damaged (truncated?)".
  static Result<std::unique_ptr<ZipArchive>> Open(const std::filesystem::path& path,
                                                  const std::string& kind, ZipLimits limits = {});

  const std::string& name() const { return name_; }
  bool Has(const std::string& entry) const;
  // The entry's bytes, at most max_bytes of them (kInvalid past that, or
  // past the archive's limits). kNotFound when there is no such entry.
  Result<std::string> ReadWhole(const std::string& entry, uint64_t max_bytes);
  // A reader over the entry. kNotFound when there is no such entry.
  Result<std::unique_ptr<ZipEntryReader>> OpenEntry(const std::string& entry);
  // Whether `entry`'s bytes contain `needle` anywhere: a quick look (inflating
  // only, memory of one chunk) before a pass that parses the whole entry.
  Result<bool> Mentions(const std::string& entry, std::string_view needle);

 private:
  ZipArchive() = default;
  zip* zip_ = nullptr;
  std::string name_;
  ZipLimits limits_;
};

}  // namespace keyonce::connectors::sheet
