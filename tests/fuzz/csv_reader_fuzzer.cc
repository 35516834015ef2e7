// Fuzzes the streaming CSV reader in every dialect and encoding. The first
// three bytes choose the options (delimiter, quote, encoding or auto-detect,
// header, trim, skip_rows, a tiny chunk size so that every buffer boundary is
// hit, max_record_lines); the rest is the file, written to a private temp
// file. Every record or rejected row must come back without a crash, and a
// rejected row must carry a reason and a position.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <string>

#include "connectors/csv/csv_reader.h"
#include "tests/fuzz/fuzz_util.h"

namespace csv = keyonce::connectors::csv;
using keyonce::connectors::Encoding;

namespace {

// Receives the reader's warnings (logging paths run too) and drops them.
class QuietLog : public keyonce::Log {
 public:
  void Info(const std::string& msg) override { lines += !msg.empty(); }
  void Warn(const std::string& msg) override { lines += !msg.empty(); }
  size_t lines = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3 || size > 256 * 1024) return -1;
  csv::CsvReaderOptions opt;
  static const char kDelimiters[] = {',', ';', '\t', '|', ' ', '"', 'a', '\n'};
  opt.delimiter = kDelimiters[data[0] & 7];
  switch ((data[0] >> 3) & 3) {
    case 0:
      opt.quote = '"';
      break;
    case 1:
      opt.quote = '\'';
      break;
    case 2:
      opt.quote = std::nullopt;
      break;
    default:
      opt.quote = opt.delimiter;
      break;  // a quote equal to the delimiter
  }
  switch ((data[0] >> 5) & 3) {
    case 0:
      opt.encoding = std::nullopt;
      break;
    case 1:
      opt.encoding = Encoding::kUtf8;
      break;
    case 2:
      opt.encoding = Encoding::kWindows1252;
      break;
    default:
      opt.encoding = Encoding::kLatin1;
      break;
  }
  opt.header = (data[0] & 0x80) == 0;
  opt.trim = data[1] & 1;
  opt.skip_rows = (data[1] >> 1) & 3;
  if (data[1] & 8) opt.columns = {"a", "b", "c"};
  opt.max_record_lines = 1 + ((data[1] >> 4) & 7);
  static const size_t kChunks[] = {1, 2, 3, 7, 16, 64, 4096, 256 * 1024};
  opt.chunk_size = kChunks[data[2] & 7];
  opt.sniff_bytes = (data[2] & 8) ? 4 : 64 * 1024;

  static const std::filesystem::path file = keyonce::fuzz::TempDir() / "input.csv";
  {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data + 3), static_cast<std::streamsize>(size - 3));
  }
  csv::CsvReader reader(opt);
  QuietLog log;
  keyonce::Status st = reader.Open(file, &log);
  if (!st.ok()) {
    if (st.message().empty()) __builtin_trap();
    return 0;
  }
  keyonce::SourceItem item;
  for (int n = 0; n < 100000; ++n) {
    item = keyonce::SourceItem{};
    auto more = reader.Next(&item);
    if (!more.ok() || !*more) break;
    if (item.rejected && (item.reason.empty() || item.position.empty())) __builtin_trap();
    if (!item.rejected && item.record.size() < reader.field_names().size() &&
        !reader.field_names().empty()) {
      // Short rows are filled with nulls or rejected, never returned short.
      __builtin_trap();
    }
  }
  reader.Close();
  return 0;
}
