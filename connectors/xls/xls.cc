// The `xls` connector: the rows of one sheet of an old Excel 97-2003
// workbook (.xls: BIFF5/BIFF8 in an OLE compound file), read by Debian's
// libfreexl. Settings, sheet choice and the rows-to-records loop are shared
// with the other spreadsheet sources (connectors/common/sheet/sheet_source).
//
// FreeXL reads the whole workbook into memory at open (its cells as a grid
// of the used range), so this source is bounded by the file's size
// (max_file_bytes) and by the format (65,536 rows, 256 columns), not
// streamed like xlsx and ods.

#include <freexl.h>

#include <cmath>
#include <fstream>
#include <string_view>
#include <system_error>

#include "connectors/common/after_read.h"
#include "connectors/common/fields.h"
#include "connectors/common/sheet/cells.h"
#include "connectors/common/sheet/sheet_source.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::xls {
namespace {

using sheet::SheetCell;

// Why FreeXL could not open a file, in words.
std::string OpenError(int code) {
  switch (code) {
    case FREEXL_INSUFFICIENT_MEMORY:
      return "not enough memory to read it";
    case FREEXL_INVALID_CFBF_HEADER:
      return "not an .xls file (no OLE compound file header)";
    case FREEXL_BIFF_INVALID_BOF:
    case FREEXL_BIFF_WORKBOOK_NOT_FOUND:
      return "not an Excel 97-2003 (BIFF5/BIFF8) workbook (an encrypted one, or another "
             "Office file?)";
    case FREEXL_CRAFTED_FILE:
      return "damaged or crafted to harm readers";
    default:
      return "damaged (truncated?) or not an .xls file (FreeXL error " + std::to_string(code) + ")";
  }
}

struct Config {
  sheet::SheetConfig sheet;
  uint64_t max_file_bytes = 0;
};

class XlsSource : public sheet::SheetSource {
 public:
  XlsSource(Settings settings, Config config)
      : SheetSource(std::move(settings), config.sheet), max_file_bytes_(config.max_file_bytes) {}
  ~XlsSource() override { CloseWorkbook(); }

 protected:
  Status OpenWorkbook(const std::filesystem::path& path, const RunContext&) override {
    const std::string file = path.filename().string();
    std::error_code ec;
    const uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) return Status::NotFound(file + ": cannot read it: " + ec.message());
    if (size > max_file_bytes_) {
      return Status::Invalid(file + " is " + std::to_string(size >> 20) +
                             " MiB; an .xls file is read into memory whole, and max_file_bytes "
                             "allows " +
                             std::to_string(max_file_bytes_) + " bytes");
    }
    char magic[8] = {};
    std::ifstream(path, std::ios::binary).read(magic, sizeof magic);
    if (std::string_view(magic, 4) == "PK\x03\x04") {
      return Status::Invalid(file +
                             " cannot be read: it is a zip archive (an .xlsx or .ods "
                             "file?), not an .xls file; use type xlsx or ods");
    }
    if (std::string_view(magic, 8) != "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1") {
      return Status::Invalid(file +
                             " cannot be read: not an .xls file (no OLE compound file "
                             "header)");
    }
    int rc = freexl_open(path.c_str(), &handle_);
    if (rc != FREEXL_OK) {
      handle_ = nullptr;
      if (rc == FREEXL_FILE_NOT_FOUND) return Status::NotFound(file + " does not exist");
      return Status::Invalid(file + " cannot be read: " + OpenError(rc));
    }
    unsigned int password = 0, sheets = 0;
    if (freexl_get_info(handle_, FREEXL_BIFF_PASSWORD, &password) == FREEXL_OK &&
        password == FREEXL_BIFF_OBFUSCATED) {
      return Status::Invalid(file +
                             " is encrypted (password-protected); save it without a "
                             "password");
    }
    freexl_get_info(handle_, FREEXL_BIFF_SHEET_COUNT, &sheets);
    std::vector<sheet::SheetName> names;
    for (unsigned int i = 0; i < sheets; ++i) {
      const char* name = nullptr;
      if (freexl_get_worksheet_name(handle_, static_cast<unsigned short>(i), &name) != FREEXL_OK) {
        return Status::Invalid(file + " is damaged: sheet " + std::to_string(i + 1) +
                               " has no name");
      }
      names.push_back({name ? name : "", false});  // FreeXL does not say which are hidden
    }
    auto chosen = sheet::ChooseSheet(file, names, config().sheet);
    if (!chosen.ok()) return chosen.status();
    if (freexl_select_active_worksheet(handle_, static_cast<unsigned short>(*chosen)) !=
            FREEXL_OK ||
        freexl_worksheet_dimensions(handle_, &rows_, &columns_) != FREEXL_OK) {
      return Status::Invalid(file + " is damaged: its sheet '" + names[*chosen].name +
                             "' cannot be read");
    }
    SetSheet(file, names[*chosen].name);
    next_ = 0;
    return Status::OK();
  }

  void CloseWorkbook() override {
    if (handle_) freexl_close(handle_);
    handle_ = nullptr;
  }

  Result<bool> NextRow(sheet::SheetRow* out) override {
    while (next_ < rows_) {
      const unsigned int r = next_++;
      std::vector<SheetCell> cells;
      for (unsigned short c = 0; c < columns_; ++c) {
        FreeXL_CellValue v;
        if (freexl_get_cell_value(handle_, r, c, &v) != FREEXL_OK) {
          return Status::Invalid("cell " + where() + sheet::CellName(c + 1, r + 1) +
                                 " cannot be read (damaged file)");
        }
        std::optional<Value> value = CellValue(v);
        if (value) cells.push_back(SheetCell{c + 1, std::move(*value)});
      }
      if (cells.empty()) continue;  // an empty row: missing rows are empty rows
      out->number = r + 1;
      out->cells = std::move(cells);
      out->hidden = false;
      return true;
    }
    return false;
  }

 private:
  static std::optional<Value> CellValue(const FreeXL_CellValue& v) {
    switch (v.type) {
      case FREEXL_CELL_INT:
        return Value(static_cast<int64_t>(v.value.int_value));
      case FREEXL_CELL_DOUBLE: {
        double d = v.value.double_value;
        // An integral number is an integer, as in the other sources.
        if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.0e15) {
          return Value(static_cast<int64_t>(d));
        }
        return Value(d);
      }
      case FREEXL_CELL_TEXT:
      case FREEXL_CELL_SST_TEXT:
      case FREEXL_CELL_DATE:
      case FREEXL_CELL_TIME: {
        if (!v.value.text_value || !*v.value.text_value) return std::nullopt;
        return Value(std::string(v.value.text_value));
      }
      case FREEXL_CELL_DATETIME: {
        if (!v.value.text_value) return std::nullopt;
        std::string s = v.value.text_value;  // "2024-03-01 08:30:00"
        if (s.size() > 10 && s[10] == ' ') s[10] = 'T';
        return Value(std::move(s));
      }
      default:
        return std::nullopt;
    }
  }

  uint64_t max_file_bytes_;
  const void* handle_ = nullptr;
  unsigned int rows_ = 0;
  unsigned short columns_ = 0;
  unsigned int next_ = 0;
};

Result<std::unique_ptr<Source>> MakeSource(const Settings& settings) {
  Config c;
  auto shared = sheet::ReadSheetConfig(settings);
  if (!shared.ok()) return shared.status();
  c.sheet = std::move(shared).value();
  int64_t max = settings.Int("max_file_bytes").value_or(int64_t{64} << 20);
  if (max < 1) return Status::Invalid(settings.where + ": max_file_bytes must be at least 1");
  c.max_file_bytes = static_cast<uint64_t>(max);
  return std::unique_ptr<Source>(new XlsSource(settings, std::move(c)));
}

Result<std::unique_ptr<Lookup>> MakeLookup(const Settings& settings) {
  return sheet::MakeSheetLookup(settings, "an xls table", MakeSource);
}

ConnectorDef XlsConnector() {
  ConnectorDef def;
  def.name = "xls";
  def.summary =
      "Old Excel 97-2003 workbooks (.xls): the rows of one sheet become records, read by "
      "FreeXL.";

  ComponentSpec source;
  source.summary =
      "Reads the rows of one sheet of an .xls workbook (Excel 97-2003, BIFF5 or BIFF8) as "
      "records, through Debian's libfreexl. FreeXL reads the whole workbook into memory when it "
      "is opened (an .xls sheet has at most 65,536 rows and 256 columns), so a file above "
      "max_file_bytes is refused with a message saying so. Cells as FreeXL reports them: text "
      "(UTF-8, whatever the workbook's code page) as a string; a number as a JSON integer when "
      "it is integral, else a decimal; a number with a date or time format as ISO text, "
      "2024-03-01, 2024-03-01T08:30:00 or 08:30:00, in the workbook's 1900 or 1904 date "
      "system. What FreeXL does not read, this source cannot give: a formula cell reads as "
      "empty (FreeXL gives no cached values), a boolean as 1 or 0, an error cell as empty; an "
      "elapsed time past 24 hours ([h]:mm) as its time of day; every sheet counts as visible "
      "and every row as shown (FreeXL does not say which are hidden), and merged cells read "
      "as stored (only the top-left cell has the value), whatever merged_cells and "
      "hidden_rows say. Save the workbook as .xlsx for those. A password-protected, damaged "
      "or non-.xls file fails with a message naming it. Positions name the file, sheet and "
      "row (old.xls:Ark1!17).";
  sheet::SheetWords words;
  words.file = "old.xls";
  words.limits_note =
      " In an .xls file FreeXL reports no merged ranges, hidden rows or error cells: only a "
      "range's top-left cell has a value, every row is read and an error cell is empty, "
      "whatever this says.";
  source.fields = {FilePathField("Workbook to read.", "in/staff-{{ params.month }}.xls")};
  for (auto& f : sheet::SheetFields(words)) source.fields.push_back(std::move(f));
  source.fields.push_back(
      FieldSpec::Int("max_file_bytes")
          .Default("67108864")
          .Describe("Largest .xls file accepted (FreeXL holds the whole workbook in memory, "
                    "several times its size); a bigger one fails the run with a clear message.")
          .Example("134217728"));
  source.example_yaml =
      "source:\n"
      "  type: xls\n"
      "  path: in/staff.xls\n"
      "  sheet: Ark1\n";
  def.make_source = MakeSource;
  AddAfterRead(source, def.make_source);
  def.source = std::move(source);
  def.lookup = sheet::SheetLookupSpec(
      *def.source,
      "A table kept on one sheet of an old .xls workbook, loaded into memory once per run and "
      "matched on one column. The sheet is read as the source reads it, with the same "
      "settings.",
      FilePathField("Workbook holding the table.", "tables/afdelinger.xls"),
      "departments:\n"
      "  type: xls\n"
      "  path: tables/afdelinger.xls\n"
      "  sheet: Afdelinger\n"
      "  key: Afdelingskode\n");
  def.make_lookup = MakeLookup;
  return def;
}

}  // namespace
}  // namespace keyonce::connectors::xls

KEYONCE_REGISTER_CONNECTOR(::keyonce::connectors::xls::XlsConnector());
