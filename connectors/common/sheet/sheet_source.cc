#include "connectors/common/sheet/sheet_source.h"

#include <cctype>
#include <charconv>
#include <utility>

#include "connectors/common/loaded_table.h"

namespace keyonce::connectors::sheet {

std::vector<FieldSpec> SheetFields(const SheetWords& words) {
  const std::string& file = words.file;
  return {
      FieldSpec::String("sheet")
          .Describe(
              "The sheet to read: its name (as on its tab), or its position among the visible "
              "sheets (1 is the first tab) when no sheet has that name. Absent: the first "
              "visible sheet. A hidden sheet is read only when named.")
          .Example("Ark1"),
      FieldSpec::Int("header_row")
          .Default("1")
          .Describe(
              "The row that names the fields. Each record then has every header field, in "
              "column order, an empty cell being null; an empty header cell is named by its "
              "column letter (C), a repeated name gets _2, _3 (Navn, Navn_2), and a value in a "
              "column without a header cell is kept under its column letter. 0: no header row; "
              "each record holds the row's non-empty cells named by column letter (A, B, ...), "
              "empty cells absent.")
          .Example("3"),
      FieldSpec::Int("first_row")
          .Describe("The first row that is data (rows above it, other than the header, are "
                    "ignored). Default: the row after header_row.")
          .Example("5"),
      FieldSpec::Bool("skip_empty_rows")
          .Default("true")
          .Describe("Leave out rows with no value in any cell (formatting alone does not count). "
                    "false: each such row is a record whose header fields are all null.")
          .Example("false"),
      FieldSpec::Bool("stop_at_empty_row")
          .Default("false")
          .Describe("End the sheet at the first empty row after first_row (notes below a table "
                    "are then not read).")
          .Example("true"),
      FieldSpec::Enum("merged_cells", {"top_left", "empty"})
          .Default("top_left")
          .Describe("top_left: every cell of a merged range has the value of its top-left cell (a "
                    "department merged over its people's rows is on each of them)." +
                    (words.merged_note.empty() ? std::string() : " " + words.merged_note) +
                    " empty: only the top-left cell has the value, as the file stores it." +
                    words.limits_note)
          .Example("empty"),
      FieldSpec::Enum("hidden_rows", {"read", "skip"})
          .Default("read")
          .Describe("read: hidden rows (hidden by hand or by a filter) are records like the "
                    "others. skip: they are left out (they do not count as empty rows)." +
                    words.limits_note)
          .Example("skip"),
      FieldSpec::Enum("errors", {"quarantine", "empty"})
          .Default("quarantine")
          .Describe("A cell holding an error (" + words.errors +
                    ", ...). quarantine: its row is quarantined with the reason \"cell " + file +
                    ":Ark1!B7 holds the error " + words.errors.substr(0, words.errors.find(',')) +
                    "\" and the run goes on. empty: the cell reads as empty (null)." +
                    words.limits_note)
          .Example("empty"),
  };
}

Result<SheetConfig> ReadSheetConfig(const Settings& s) {
  SheetConfig c;
  c.sheet = s.String("sheet").value_or("");
  c.rows.header_row = s.Int("header_row").value_or(1);
  if (c.rows.header_row < 0) return Status::Invalid(s.where + ": header_row must be 0 or more");
  c.rows.first_row = s.Int("first_row").value_or(c.rows.header_row + 1);
  if (c.rows.first_row <= c.rows.header_row) {
    return Status::Invalid(s.where + ": first_row (" + std::to_string(c.rows.first_row) +
                           ") must come after header_row (" + std::to_string(c.rows.header_row) +
                           ")");
  }
  c.rows.skip_empty_rows = s.Bool("skip_empty_rows").value_or(true);
  c.rows.stop_at_empty_row = s.Bool("stop_at_empty_row").value_or(false);
  c.merged_top_left = s.String("merged_cells").value_or("top_left") == "top_left";
  c.skip_hidden_rows = s.String("hidden_rows").value_or("read") == "skip";
  c.errors_empty = s.String("errors").value_or("quarantine") == "empty";
  return c;
}

std::string SheetRefName(const std::string& name) {
  bool plain = !name.empty();
  for (unsigned char ch : name) {
    plain = plain && (std::isalnum(ch) || ch == '_' || ch >= 0x80);
  }
  if (plain) return name;
  std::string out = "'";
  for (char ch : name) out += ch == '\'' ? std::string("''") : std::string(1, ch);
  return out + "'";
}

Result<size_t> ChooseSheet(const std::string& file, const std::vector<SheetName>& sheets,
                           const std::string& wanted) {
  if (wanted.empty()) {
    for (size_t i = 0; i < sheets.size(); ++i) {
      if (!sheets[i].hidden) return i;
    }
    return Status::Invalid(file + ": every sheet is hidden; name the one to read");
  }
  for (size_t i = 0; i < sheets.size(); ++i) {
    if (sheets[i].name == wanted) return i;
  }
  std::vector<size_t> visible;
  std::vector<std::string> names;
  for (size_t i = 0; i < sheets.size(); ++i) {
    if (sheets[i].hidden) continue;
    visible.push_back(i);
    names.push_back(sheets[i].name);
  }
  int64_t n = 0;
  auto [end, ec] = std::from_chars(wanted.data(), wanted.data() + wanted.size(), n);
  if (ec == std::errc() && end == wanted.data() + wanted.size()) {
    if (n >= 1 && n <= static_cast<int64_t>(visible.size())) {
      return visible[static_cast<size_t>(n - 1)];
    }
    return Status::Invalid(file + " has " + std::to_string(visible.size()) +
                           " visible sheet(s); there is no sheet " + wanted);
  }
  std::string list;
  for (const auto& v : names) list += (list.empty() ? "'" : ", '") + v + "'";
  return Status::Invalid(file + " has no sheet named '" + wanted + "'; its sheets: " + list +
                         DidYouMean(wanted, names));
}

Status SheetSource::Open(const RunContext& ctx) {
  auto path = settings_.ResolvePath("path", ctx.scope);
  if (!path.ok()) return path.status().Wrap(settings_.where);
  Status st = OpenWorkbook(*path, ctx);
  if (!st.ok()) return st;
  open_ = true;
  return Status::OK();
}

Status SheetSource::BrokenAt(const Status& st) const {
  return st.Wrap("reading " + sheet_where_ +
                 (last_row_ ? " after row " + std::to_string(last_row_) : ""));
}

void SheetSource::SetSheet(const std::string& file, const std::string& sheet) {
  sheet_where_ = file + ":" + SheetRefName(sheet);
  where_ = sheet_where_ + "!";
}

void SheetSource::Reject(int64_t row, std::string reason, const std::string& raw) {
  if (rejected_row_ == row) return;  // the first problem of a row is its reason
  rejected_row_ = row;
  rejected_reason_ = std::move(reason);
  rejected_raw_ = raw;
}

Result<bool> SheetSource::Next(SourceItem* item) {
  if (!open_) return Status::Internal("spreadsheet source read before Open");
  while (true) {
    Record rec;
    int64_t row = 0;
    switch (shaper_.NextRecord(&rec, &row, item->storage)) {
      case RowShaper::Step::kEnd:
        return false;
      case RowShaper::Step::kRecord: {
        boost::json::storage_ptr storage = std::move(item->storage);
        *item = SourceItem();
        item->storage = std::move(storage);
        item->position = where_ + std::to_string(row);
        if (row == rejected_row_) {
          item->rejected = true;
          item->reason = std::move(rejected_reason_);
          item->raw = std::move(rejected_raw_);
          rejected_row_ = -1;
        } else {
          item->SetRecord(std::move(rec));  // keeps the record in the batch's arena
        }
        return true;
      }
      case RowShaper::Step::kNeedRow:
        break;
    }
    SheetRow next;
    auto more = NextRow(&next);
    if (!more.ok()) return more.status();
    if (!*more) {
      shaper_.OfferEnd();
      continue;
    }
    last_row_ = next.number;
    // A skipped hidden row is neither a record nor an empty row.
    shaper_.Offer(next.number, std::move(next.cells),
                  /*skip=*/next.hidden && config_.skip_hidden_rows);
  }
}

Status SheetSource::Close() {
  CloseWorkbook();
  open_ = false;
  return Status::OK();
}

ComponentSpec SheetLookupSpec(const ComponentSpec& source, const std::string& summary,
                              FieldSpec path, const std::string& example_yaml) {
  ComponentSpec lookup;
  lookup.summary = summary;
  // A table is read, never taken away: no move_to or remove_after.
  for (const FieldSpec& f : source.fields) {
    if (f.name != "move_to" && f.name != "remove_after") lookup.fields.push_back(f);
  }
  lookup.fields.front() = std::move(path);
  lookup.fields.insert(lookup.fields.begin() + 1, LoadedTableKeyField("Afdelingskode"));
  lookup.example_yaml = example_yaml;
  return lookup;
}

Result<std::unique_ptr<Lookup>> MakeSheetLookup(
    const Settings& settings, const std::string& what,
    std::function<Result<std::unique_ptr<Source>>(const Settings&)> make_source) {
  return MakeLoadedTable(settings, what, std::move(make_source));
}

}  // namespace keyonce::connectors::sheet
