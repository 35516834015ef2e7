// What every spreadsheet source (xlsx, ods, xls) has in common: its
// settings, declared once as data; reading and checking them; choosing the
// sheet; and the record loop that turns the rows a format reads into
// records (through RowShaper), in the batch's arena, with quarantined rows.
//
// A format's source derives from SheetSource and supplies only its workbook
// (OpenWorkbook: the file, its sheet list, the chosen sheet) and the next
// row's cells (NextRow). Positions and messages are made here from the file's
// display name and the sheet's name: "staff.xlsx:Ark1!17", "cell
// staff.xlsx:'Ark 1'!B17 holds ...".
//
// Threading: a source is used from one thread at a time, as every Source.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "connectors/common/sheet/cells.h"
#include "connectors/common/sheet/sheet_rows.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::sheet {

struct SheetConfig {
  std::string sheet;  // "" = the first visible sheet
  RowOptions rows;
  bool merged_top_left = true;
  bool skip_hidden_rows = false;
  bool errors_empty = false;
};

// The words a format puts into the shared settings' descriptions.
struct SheetWords {
  std::string file = "staff.xlsx";                       // a file, in examples of messages
  std::string errors = "#N/A, #DIV/0!, #REF!, #VALUE!";  // error cells as the program shows them
  std::string merged_note;  // appended to merged_cells' top_left (cost, where merges come from)
  std::string
      limits_note;  // appended to merged_cells, hidden_rows and errors (what a format lacks)
};

// The settings after `path`: sheet, header_row, first_row, skip_empty_rows,
// stop_at_empty_row, merged_cells, hidden_rows, errors.
std::vector<FieldSpec> SheetFields(const SheetWords& words);

// The shared settings read and checked: kInvalid (naming s.where) when
// first_row does not follow header_row or header_row is negative.
Result<SheetConfig> ReadSheetConfig(const Settings& s);

// 'Ark 1' as a spreadsheet writes a sheet name in a reference; plain when
// it can be (Ark1).
std::string SheetRefName(const std::string& name);

struct SheetName {
  std::string name;
  bool hidden = false;
};
// The index of the sheet `wanted` names among `sheets` (in tab order):
// "" is the first visible sheet; a name is that sheet (hidden or not); a
// number that is no sheet's name is a position among the visible sheets
// (1 is the first). kInvalid naming `file` and listing the visible sheets
// (with a "did you mean") when there is no such sheet.
Result<size_t> ChooseSheet(const std::string& file, const std::vector<SheetName>& sheets,
                           const std::string& wanted);

// One row of a sheet as a format reads it.
struct SheetRow {
  int64_t number = 0;            // 1-based, increasing from row to row
  std::vector<SheetCell> cells;  // sorted by column; empty cells may be left out
  bool hidden = false;
};

class SheetSource : public Source {
 public:
  Status Open(const RunContext& ctx) final;
  Result<bool> Next(SourceItem* item) final;
  Status Close() final;

 protected:
  SheetSource(Settings settings, SheetConfig config)
      : settings_(std::move(settings)), config_(std::move(config)), shaper_(config_.rows) {}

  // Opens the workbook at `path`, chooses the sheet (ChooseSheet with
  // config().sheet) and calls SetSheet. Fails with kNotFound (no file) or
  // kInvalid (not such a workbook, damaged, no such sheet), naming the file.
  virtual Status OpenWorkbook(const std::filesystem::path& path, const RunContext& ctx) = 0;
  // The next row of the chosen sheet: true with *row filled, false at the
  // sheet's end. A row that cannot be read (malformed, a cell holding an
  // error) is given with Reject called for its number, so it is quarantined
  // with that reason instead of becoming a record. An error fails the run
  // (e.g. the file breaks off: BrokenAt names where).
  virtual Result<bool> NextRow(SheetRow* row) = 0;
  // Frees what OpenWorkbook holds.
  virtual void CloseWorkbook() = 0;

  // `file` is the workbook's display name ("staff.ods"), `sheet` the chosen
  // sheet's name.
  void SetSheet(const std::string& file, const std::string& sheet);
  // `st` (the sheet's file broke off) wrapped with the sheet and the last
  // row read: "reading staff.ods:Ark1 after row 17: ...".
  Status BrokenAt(const Status& st) const;
  // Quarantines row `row` (read now) with `reason`; the first reason of a
  // row is kept.
  void Reject(int64_t row, std::string reason, const std::string& raw);
  // "cell staff.ods:Ark1!B17".
  std::string CellWhere(int column, int64_t row) const {
    return "cell " + where_ + CellName(column, row);
  }

  const SheetConfig& config() const { return config_; }
  const Settings& settings() const { return settings_; }
  const std::string& sheet_where() const { return sheet_where_; }  // "staff.ods:Ark1"
  const std::string& where() const { return where_; }              // "staff.ods:Ark1!"

 private:
  Settings settings_;
  SheetConfig config_;
  RowShaper shaper_;
  bool open_ = false;
  std::string sheet_where_, where_;
  int64_t last_row_ = 0;
  int64_t rejected_row_ = -1;
  std::string rejected_reason_, rejected_raw_;
};

// The lookup table of a sheet source (`tables:` in a recipe): its spec is
// the source's settings with `path` described as the table's and `key`
// after it; the table is loaded with MakeLoadedTable. `what` names it in
// messages ("an ods table").
ComponentSpec SheetLookupSpec(const ComponentSpec& source, const std::string& summary,
                              FieldSpec path, const std::string& example_yaml);
Result<std::unique_ptr<Lookup>> MakeSheetLookup(
    const Settings& settings, const std::string& what,
    std::function<Result<std::unique_ptr<Source>>(const Settings&)> make_source);

}  // namespace keyonce::connectors::sheet
