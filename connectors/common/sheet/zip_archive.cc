#include "connectors/common/sheet/zip_archive.h"

#include <zip.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>
#include <vector>

namespace keyonce::connectors::sheet {

namespace {

// The first bytes of an OLE compound file: Excel saves a password-protected
// workbook as one (the encrypted zip inside), and the old .xls format is one.
constexpr unsigned char kOleSignature[8] = {0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1};

std::string ZipErrorText(int code) {
  zip_error_t err;
  zip_error_init_with_code(&err, code);
  std::string text = zip_error_strerror(&err);
  zip_error_fini(&err);
  return text;
}

}  // namespace

ZipEntryReader::~ZipEntryReader() {
  if (file_) zip_fclose(file_);
}

Result<size_t> ZipEntryReader::Read(char* data, size_t n) {
  zip_int64_t got = zip_fread(file_, data, n);
  if (got < 0) {
    return Status::Invalid(what_ + " is damaged (" + zip_file_strerror(file_) + ")");
  }
  bytes_read_ += static_cast<uint64_t>(got);
  if (bytes_read_ > limits_.max_entry_bytes) {
    return Status::Invalid(what_ + " inflates to more than " +
                           ByteSize(static_cast<size_t>(limits_.max_entry_bytes)) +
                           "; refusing it as a zip bomb");
  }
  if (bytes_read_ > limits_.ratio_floor_bytes &&
      bytes_read_ / (compressed_ ? compressed_ : 1) > limits_.max_ratio) {
    return Status::Invalid(what_ + " inflates more than " + std::to_string(limits_.max_ratio) +
                           " times its compressed size (" +
                           ByteSize(static_cast<size_t>(compressed_)) +
                           "); no spreadsheet does, refusing it as a zip bomb");
  }
  return static_cast<size_t>(got);
}

ZipArchive::~ZipArchive() {
  if (zip_) zip_discard(zip_);
}

Result<std::unique_ptr<ZipArchive>> ZipArchive::Open(const std::filesystem::path& path,
                                                     const std::string& kind, ZipLimits limits) {
  const std::string name = path.filename().string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return Status::NotFound("file not found: " + path.string());
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::Io("opening " + path.string() + ": " + std::strerror(errno));
    unsigned char head[8] = {};
    in.read(reinterpret_cast<char*>(head), sizeof head);
    if (in.gcount() == sizeof head && std::memcmp(head, kOleSignature, sizeof head) == 0) {
      return Status::Invalid(name + " is not an " + kind +
                             " file: it is encrypted (password-protected) or an old .xls file "
                             "(an OLE compound file); save it from the spreadsheet program as " +
                             kind + " without a password");
    }
  }
  int code = 0;
  zip* z = zip_open(path.c_str(), ZIP_RDONLY, &code);
  if (!z) {
    if (code == ZIP_ER_NOZIP || code == ZIP_ER_INCONS || code == ZIP_ER_CRC) {
      return Status::Invalid(name + " is not an " + kind +
                             " file: not a zip archive, or a damaged one (truncated?)");
    }
    return Status::Io("opening " + path.string() + ": " + ZipErrorText(code));
  }
  std::unique_ptr<ZipArchive> a(new ZipArchive());
  a->zip_ = z;
  a->name_ = name;
  a->limits_ = limits;
  return a;
}

bool ZipArchive::Has(const std::string& entry) const {
  return zip_name_locate(zip_, entry.c_str(), 0) >= 0;
}

Result<std::unique_ptr<ZipEntryReader>> ZipArchive::OpenEntry(const std::string& entry) {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat(zip_, entry.c_str(), 0, &st) != 0) {
    return Status::NotFound(name_ + " has no entry " + entry);
  }
  zip_file* f = zip_fopen(zip_, entry.c_str(), 0);
  if (!f) {
    return Status::Invalid(name_ + ": " + entry + " cannot be read (" + zip_strerror(zip_) + ")");
  }
  std::unique_ptr<ZipEntryReader> r(new ZipEntryReader());
  r->file_ = f;
  r->what_ = name_ + ": " + entry;
  r->compressed_ = (st.valid & ZIP_STAT_COMP_SIZE) ? st.comp_size : 0;
  r->limits_ = limits_;
  return r;
}

Result<std::string> ZipArchive::ReadWhole(const std::string& entry, uint64_t max_bytes) {
  auto r = OpenEntry(entry);
  if (!r.ok()) return r.status();
  std::string out;
  char buf[64 << 10];
  while (true) {
    auto got = (*r)->Read(buf, sizeof buf);
    if (!got.ok()) return got.status();
    if (*got == 0) break;
    if (out.size() + *got > max_bytes) {
      return Status::Invalid(name_ + ": " + entry + " is larger than " +
                             ByteSize(static_cast<size_t>(max_bytes)));
    }
    out.append(buf, *got);
  }
  return out;
}

Result<bool> ZipArchive::Mentions(const std::string& entry, std::string_view needle) {
  auto r = OpenEntry(entry);
  if (!r.ok()) return r.status();
  const size_t keep = needle.empty() ? 0 : needle.size() - 1;  // a match across two chunks
  std::string window;
  std::vector<char> buf(256 << 10);
  while (true) {
    auto got = (*r)->Read(buf.data(), buf.size());
    if (!got.ok()) return got.status();
    if (*got == 0) return false;
    window.append(buf.data(), *got);
    if (window.find(needle) != std::string::npos) return true;
    window.erase(0, window.size() > keep ? window.size() - keep : 0);
  }
}

}  // namespace keyonce::connectors::sheet
