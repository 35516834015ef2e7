// From a sheet's rows to records: the header row, the first data row, empty
// rows and merged cells, the same for every spreadsheet source (xlsx, ods,
// xls). A source reads its format's rows in order and offers them here
// (through SheetSource); what comes out is records, each with its row
// number.
//
// Rules (documented in each source's settings):
// - header_row > 0: that row names the fields. A header cell is trimmed; an
//   empty one is named by its column letter (C); a repeated name gets _2,
//   _3 ... (Name, Name_2). Each record has every header field, in column
//   order, an empty cell being null; a value in a column with no header cell
//   is kept under its column letter.
// - header_row = 0: no header; a record holds the row's non-empty cells
//   under their column letters (A, B, ...); empty cells are absent.
// - Rows before first_row (and the header row) are not records. A row is
//   empty when it holds no value ("" counts as none); a row missing from the
//   file is an empty row. skip_empty_rows drops empty rows (else each
//   becomes a record of nulls); stop_at_empty_row ends the sheet at the
//   first empty row after first_row.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keyonce/status.h"
#include "keyonce/value.h"

namespace keyonce::connectors::sheet {

struct SheetCell {
  int column = 0;  // 1-based
  Value value;     // never null
};

struct RowOptions {
  int64_t header_row = 1;  // 0: none
  int64_t first_row = 2;   // > header_row
  bool skip_empty_rows = true;
  bool stop_at_empty_row = false;
};

class RowShaper {
 public:
  explicit RowShaper(RowOptions options) : options_(options) {}

  // Offers the next row of the sheet (row numbers increase; `cells` sorted
  // by column). Call only when NextRecord said kNeedRow. A `skip` row (e.g.
  // a hidden one the recipe skips) gives no record and is not empty.
  void Offer(int64_t row, std::vector<SheetCell> cells, bool skip = false);
  // The sheet has no more rows.
  void OfferEnd() { at_end_ = true; }

  enum class Step { kRecord, kNeedRow, kEnd };
  // The next record (*out, and its row number in *row), or kNeedRow when a
  // row must be offered first, or kEnd. The record is built in `storage`
  // (SourceItem::storage: the batch's arena), the offered cells moved in.
  Step NextRecord(Record* out, int64_t* row, boost::json::storage_ptr storage = {});

 private:
  void SetHeader(const std::vector<SheetCell>& cells);
  Record Build(std::vector<SheetCell>& cells, boost::json::storage_ptr storage) const;

  RowOptions options_;
  std::vector<std::string> header_;  // by column - 1; "" = no header cell there
  bool has_offered_ = false;
  bool offered_skip_ = false;
  int64_t offered_row_ = 0;
  std::vector<SheetCell> offered_;
  bool at_end_ = false;
  bool stopped_ = false;
  int64_t cursor_ = 0;  // the next data row to give out
};

// A merged range: first_column..last_column x first_row..last_row.
struct MergedRange {
  int first_column = 0, last_column = 0;
  int64_t first_row = 0, last_row = 0;
};

// Gives every cell of a merged range the value of its top-left cell. Ranges
// are applied to rows offered in increasing order; memory holds the ranges
// and the values of those the current row is inside.
class MergeFill {
 public:
  explicit MergeFill(std::vector<MergedRange> ranges);
  void Apply(int64_t row, std::vector<SheetCell>* cells);

 private:
  std::vector<MergedRange> ranges_;  // sorted by first_row
  size_t next_ = 0;                  // first range not yet started
  struct Active {
    MergedRange range;
    Value value;  // null: the top-left cell is empty
  };
  std::vector<Active> active_;
};

// "A1:C3" (or "B2") as a range; nullopt when it is not one.
std::optional<MergedRange> ParseRange(const std::string& text);

}  // namespace keyonce::connectors::sheet
