// The `xlsx` connector: a streaming source of the rows of one sheet of an
// Excel (Office Open XML) workbook. Settings are declared here once, as
// data. The zip, cell typing and row rules it shares with the other
// spreadsheet sources are in connectors/common/sheet; the workbook's small
// parts are read by xlsx_workbook.cc; the sheet itself streams through the
// XML scanner of connectors/common/xml, one <row> at a time.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <pugixml.hpp>

#include "connectors/common/fields.h"
#include "connectors/common/loaded_table.h"
#include "connectors/common/sheet/cells.h"
#include "connectors/common/sheet/sheet_rows.h"
#include "connectors/common/sheet/zip_archive.h"
#include "connectors/common/xml/xml_dom.h"
#include "connectors/common/xml/xml_scanner.h"
#include "connectors/xlsx/xlsx_workbook.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::xlsx {
namespace {

using sheet::SheetCell;

struct SourceConfig {
  std::string sheet;  // "" = the first visible sheet
  sheet::RowOptions rows;
  bool merged_top_left = true;
  bool skip_hidden_rows = false;
  bool errors_empty = false;
  uint64_t max_shared_strings_bytes = 0;
};

Result<SourceConfig> ReadConfig(const Settings& s) {
  SourceConfig c;
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
  int64_t max = s.Int("max_shared_strings_bytes").value_or(int64_t{256} << 20);
  if (max < 1) return Status::Invalid(s.where + ": max_shared_strings_bytes must be at least 1");
  c.max_shared_strings_bytes = static_cast<uint64_t>(max);
  return c;
}

// 'Ark 1' as Excel writes a sheet name in a reference, plain when it can be.
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

class XlsxSource : public Source {
 public:
  XlsxSource(Settings settings, SourceConfig config)
      : settings_(std::move(settings)), config_(std::move(config)), shaper_(config_.rows) {}

  Status Open(const RunContext& ctx) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status().Wrap(settings_.where);
    auto zip = sheet::ZipArchive::Open(*path, "xlsx");
    if (!zip.ok()) return zip.status();
    zip_ = std::move(zip).value();
    auto wb = ReadWorkbook(*zip_);
    if (!wb.ok()) return wb.status();
    workbook_ = std::move(wb).value();
    auto chosen = ChooseSheet();
    if (!chosen.ok()) return chosen.status();
    sheet_ = *chosen;
    sheet_where_ = zip_->name() + ":" + SheetRefName(sheet_.name);
    where_ = sheet_where_ + "!";
    auto kinds = ReadStyleKinds(*zip_, workbook_.styles_entry);
    if (!kinds.ok()) return kinds.status();
    style_kinds_ = std::move(kinds).value();
    auto strings =
        ReadSharedStrings(*zip_, workbook_.shared_strings_entry, config_.max_shared_strings_bytes);
    if (!strings.ok()) return strings.status();
    strings_ = std::move(strings).value();
    if (!zip_->Has(sheet_.entry)) {
      return Status::Invalid(zip_->name() + ": sheet '" + sheet_.name + "' has no part " +
                             sheet_.entry + " (damaged workbook)");
    }
    log_ = ctx.log;
    if (config_.merged_top_left) {
      Status st = ReadMergedRanges();
      if (!st.ok()) return st;
    }
    auto rows = ScanEntry(*zip_, sheet_.entry, "/worksheet/sheetData/row", ctx.limits.record_bytes);
    if (!rows.ok()) return rows.status();
    rows_ = std::move(rows).value();
    return Status::OK();
  }

  Result<bool> Next(SourceItem* item) override {
    if (!rows_.scanner) return Status::Internal("xlsx source read before Open");
    while (true) {
      Record rec;
      int64_t row = 0;
      switch (shaper_.NextRecord(&rec, &row, item->storage)) {
        case sheet::RowShaper::Step::kEnd:
          return false;
        case sheet::RowShaper::Step::kRecord: {
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
        case sheet::RowShaper::Step::kNeedRow:
          break;
      }
      Status st = ReadRow();
      if (!st.ok()) return st;
    }
  }

  Status Close() override {
    rows_ = {};
    zip_.reset();
    strings_.clear();
    return Status::OK();
  }

 private:
  Result<SheetInfo> ChooseSheet() const {
    const auto& sheets = workbook_.sheets;
    if (config_.sheet.empty()) {
      for (const auto& s : sheets) {
        if (!s.hidden) return s;
      }
      return Status::Invalid(zip_->name() + ": every sheet is hidden; name the one to read");
    }
    for (const auto& s : sheets) {
      if (s.name == config_.sheet) return s;
    }
    std::vector<std::string> visible;
    for (const auto& s : sheets) {
      if (!s.hidden) visible.push_back(s.name);
    }
    int64_t n = 0;
    auto [end, ec] =
        std::from_chars(config_.sheet.data(), config_.sheet.data() + config_.sheet.size(), n);
    if (ec == std::errc() && end == config_.sheet.data() + config_.sheet.size()) {
      if (n >= 1 && n <= static_cast<int64_t>(visible.size())) {
        for (const auto& s : sheets) {
          if (s.name == visible[static_cast<size_t>(n - 1)]) return s;
        }
      }
      return Status::Invalid(zip_->name() + " has " + std::to_string(visible.size()) +
                             " visible sheet(s); there is no sheet " + config_.sheet);
    }
    std::string names;
    for (const auto& v : visible) names += (names.empty() ? "'" : ", '") + v + "'";
    return Status::Invalid(zip_->name() + " has no sheet named '" + config_.sheet +
                           "'; its sheets: " + names + DidYouMean(config_.sheet, visible));
  }

  // mergeCells follow the rows in the sheet's XML, so they are read by a
  // pass of their own before the rows (only with merged_cells: top_left).
  Status ReadMergedRanges() {
    // Most sheets merge no cells: a sheet whose bytes never name mergeCell
    // (with any prefix) has none, and its XML is not parsed a second time.
    auto mentions = zip_->Mentions(sheet_.entry, "mergeCell");
    if (mentions.ok() && !*mentions) {
      merges_ = std::make_unique<sheet::MergeFill>(std::vector<sheet::MergedRange>());
      return Status::OK();
    }
    auto scan = ScanEntry(*zip_, sheet_.entry, "/worksheet/mergeCells/mergeCell",
                          xml::XmlScanner::Options().max_record_bytes);
    if (!scan.ok()) return scan.status();
    std::vector<sheet::MergedRange> ranges;
    constexpr size_t kMaxRanges = 1u << 20;
    while (true) {
      xml::ScannedRecord rec;
      auto more = scan->scanner->Next(&rec);
      if (!more.ok()) {
        // The rows' pass meets the same break and reports it where it is
        // (a malformed row is quarantined, a broken sheet fails); the
        // ranges after it are unknown.
        log_->Warn("reading the merged cells of " + sheet_where_ + ": " + more.status().message() +
                   "; merged cells after it read as empty");
        break;
      }
      if (!*more) break;
      pugi::xml_document doc;
      if (!rec.error.empty() || !doc.load_buffer(rec.text.data(), rec.text.size())) continue;
      for (pugi::xml_attribute a = doc.document_element().first_attribute(); a;
           a = a.next_attribute()) {
        if (xml::LocalPart(a.name()) != "ref") continue;
        if (auto m = sheet::ParseRange(a.value())) ranges.push_back(*m);
      }
      if (ranges.size() > kMaxRanges) {
        return Status::Invalid(where_ + " has more than " + std::to_string(kMaxRanges) +
                               " merged ranges; read it with merged_cells: empty");
      }
    }
    merges_ = std::make_unique<sheet::MergeFill>(std::move(ranges));
    return Status::OK();
  }

  void Reject(int64_t row, std::string reason, const std::string& raw) {
    if (rejected_row_ == row) return;  // the first problem of a row is its reason
    rejected_row_ = row;
    rejected_reason_ = std::move(reason);
    rejected_raw_ = raw;
  }

  // Reads the next <row> and offers it to the shaper (or the end).
  Status ReadRow() {
    xml::ScannedRecord rec;
    auto more = rows_.scanner->Next(&rec);
    if (!more.ok()) {
      return more.status().Wrap("reading " + sheet_where_ +
                                (last_row_ ? " after row " + std::to_string(last_row_) : ""));
    }
    if (!*more) {
      shaper_.OfferEnd();
      return Status::OK();
    }
    const int64_t guess = last_row_ + 1;
    pugi::xml_document doc;
    pugi::xml_parse_result parsed =
        rec.error.empty() ? doc.load_buffer(rec.text.data(), rec.text.size(),
                                            pugi::parse_default | pugi::parse_ws_pcdata)
                          : pugi::xml_parse_result();
    if (!rec.error.empty() || !parsed) {
      // Malformed: quarantined under the row it should be, read on.
      std::string why = !rec.error.empty() ? rec.error : parsed.description();
      if (guess == config_.rows.header_row) {
        // Without its header no row of the sheet has its field names.
        return Status::Invalid("the header row " + std::to_string(guess) + " of " + sheet_where_ +
                               " is malformed XML: " + why);
      }
      Reject(guess,
             "row " + std::to_string(guess) + " of " + sheet_where_ + " is malformed XML: " + why,
             rec.text);
      last_row_ = guess;
      shaper_.Offer(guess, {SheetCell{1, Value("#MALFORMED")}});
      return Status::OK();
    }
    pugi::xml_node row = doc.document_element();
    int64_t r = guess;
    bool hidden = false;
    for (pugi::xml_attribute a = row.first_attribute(); a; a = a.next_attribute()) {
      std::string_view name = xml::LocalPart(a.name());
      if (name == "r") {
        int64_t v = 0;
        std::string_view t = a.value();
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (ec == std::errc() && end == t.data() + t.size() && v > last_row_) r = v;
      } else if (name == "hidden") {
        hidden = std::string_view(a.value()) == "1" || std::string_view(a.value()) == "true";
      }
    }
    last_row_ = r;
    std::vector<SheetCell> cells;
    int col = 0;
    for (pugi::xml_node c = row.first_child(); c; c = c.next_sibling()) {
      if (c.type() != pugi::node_element || xml::LocalPart(c.name()) != "c") continue;
      int next = col + 1;
      std::string_view ref, type = "n";
      int style = 0;
      for (pugi::xml_attribute a = c.first_attribute(); a; a = a.next_attribute()) {
        std::string_view name = xml::LocalPart(a.name());
        if (name == "r") ref = a.value();
        if (name == "t") type = a.value();
        if (name == "s") style = a.as_int();
      }
      if (!ref.empty()) {
        auto cr = sheet::ParseCellRef(ref);
        if (cr && cr->column > col) next = cr->column;
      }
      col = next;
      std::optional<Value> v = CellValue(c, type, style, r, col, rec.text);
      if (v) cells.push_back(SheetCell{col, std::move(*v)});
    }
    if (merges_) merges_->Apply(r, &cells);
    // A skipped hidden row is neither a record nor an empty row.
    shaper_.Offer(r, std::move(cells), /*skip=*/hidden && config_.skip_hidden_rows);
    return Status::OK();
  }

  // The value of cell <c> as a person sees it; nullopt when it is empty.
  // A cell that cannot be a value (an error, a broken reference) marks its
  // row rejected and reads as its error text, so the row is not empty.
  std::optional<Value> CellValue(const pugi::xml_node& c, std::string_view type, int style,
                                 int64_t row, int col, const std::string& raw) {
    pugi::xml_node v, is;
    for (pugi::xml_node k = c.first_child(); k; k = k.next_sibling()) {
      if (k.type() != pugi::node_element) continue;
      std::string_view name = xml::LocalPart(k.name());
      if (name == "v") v = k;
      if (name == "is") is = k;
    }
    // The cell's position, for a reason (a string made only when one is).
    auto cell = [&] { return where_ + sheet::CellName(col, row); };
    if (type == "inlineStr") {
      if (!is) return std::nullopt;
      return Value(StringItemText(is));
    }
    if (!v) return std::nullopt;  // empty, or a formula without a cached value
    std::string_view text = v.child_value();
    if (type == "s") {
      size_t idx = 0;
      auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), idx);
      if (ec != std::errc() || end != text.data() + text.size() || idx >= strings_.size()) {
        Reject(row,
               "cell " + cell() + " refers to shared string " + std::string(text) +
                   ", which the workbook does not have",
               raw);
        return Value("#REF!");
      }
      return Value(strings_[idx]);
    }
    if (type == "str" || type == "d") return Value(std::string(text));
    if (type == "b") return Value(text == "1" || text == "true");
    if (type == "e") {
      if (config_.errors_empty) return std::nullopt;
      if (row >= config_.rows.first_row) {
        Reject(row, "cell " + cell() + " holds the error " + std::string(text), raw);
      }
      return Value(std::string(text));
    }
    auto number = sheet::ParseNumber(text);
    if (!number) {
      Reject(row, "cell " + cell() + " holds a number that cannot be read", raw);
      return Value("#VALUE!");
    }
    if (style >= 0 && static_cast<size_t>(style) < style_kinds_.size() &&
        style_kinds_[static_cast<size_t>(style)] != sheet::DateKind::kNone) {
      double serial =
          number->is_int64() ? static_cast<double>(number->as_int64()) : number->as_double();
      if (auto iso = sheet::SerialToIso(serial, style_kinds_[static_cast<size_t>(style)],
                                        workbook_.date_system)) {
        return Value(*iso);
      }
    }
    return std::move(*number);
  }

  Settings settings_;
  SourceConfig config_;
  sheet::RowShaper shaper_;
  Log* log_ = nullptr;
  std::unique_ptr<sheet::ZipArchive> zip_;
  Workbook workbook_;
  SheetInfo sheet_;
  std::string sheet_where_;  // "staff.xlsx:Ark1"
  std::string where_;        // "staff.xlsx:Ark1!"
  std::vector<sheet::DateKind> style_kinds_;
  std::vector<std::string> strings_;
  std::unique_ptr<sheet::MergeFill> merges_;
  EntryScanner rows_;  // the sheet's <row>s
  int64_t last_row_ = 0;
  int64_t rejected_row_ = -1;
  std::string rejected_reason_, rejected_raw_;
};

Result<std::unique_ptr<Source>> MakeSource(const Settings& settings) {
  auto config = ReadConfig(settings);
  if (!config.ok()) return config.status();
  return std::unique_ptr<Source>(new XlsxSource(settings, std::move(config).value()));
}

Result<std::unique_ptr<Lookup>> MakeLookup(const Settings& settings) {
  return MakeLoadedTable(settings, "an xlsx table", MakeSource);
}

ConnectorDef XlsxConnector() {
  ConnectorDef def;
  def.name = "xlsx";
  def.summary =
      "Excel workbooks (.xlsx): the rows of one sheet become records, streamed from files of "
      "any size.";

  ComponentSpec source;
  source.summary =
      "Reads the rows of one sheet of an .xlsx workbook as records, streaming: memory holds the "
      "workbook's shared string table and one row, however many rows the sheet has. Cells are "
      "typed as Excel shows them: text (shared, inline and rich text, its runs joined) as a "
      "string; a number as a JSON integer when it is integral, else a decimal; TRUE/FALSE as a "
      "boolean; a formula as its cached value (as Excel last computed it; a formula saved "
      "without one, e.g. by a program that does not compute formulas, reads as empty); a "
      "number with a date or time format (the built-in formats 14-22 and 45-47, or a custom "
      "format with d, m, y, h or s outside quotes and brackets) as ISO text: 2024-03-01, "
      "2024-03-01T08:30:00, or 08:30:00 for a time (seconds rounded; [h]:mm:ss gives the "
      "hours elapsed, e.g. 36:15:00), in the workbook's 1900 or 1904 date system. Excel's "
      "1900 leap-year bug is kept as Excel shows it: serial 60 is 1900-02-29, earlier serials "
      "count from 1899-12-31. An error cell (#N/A, #DIV/0!, ...) quarantines its row with the "
      "reason \"cell staff.xlsx:Ark1!B7 holds the error #N/A\" (or, with `errors: empty`, "
      "reads as empty). "
      "Positions and messages name the file, sheet and row or cell "
      "(staff.xlsx:Ark1!17, staff.xlsx:Ark1!B17; 'Sheet name'!B17 when the name has spaces), "
      "never a cell's value. A row that is not well-formed XML is quarantined and the sheet "
      "read on. The file is not trusted: a password-protected (encrypted) workbook or an old "
      ".xls file is refused with a message saying so, a damaged zip or sheet fails the run "
      "naming the file (and the sheet and the row after which it broke), and an entry that "
      "inflates more than 100 times its compressed size (past 1 MiB) or past 4 GiB is refused "
      "as a zip bomb.";
  source.fields = {
      FilePathField("Workbook to read.", "in/staff-{{ params.month }}.xlsx"),
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
          .Describe(
              "top_left: every cell of a merged range has the value of its top-left cell (a "
              "department merged over its people's rows is on each of them). Excel lists merged "
              "ranges after the rows, so this reads the sheet twice (once for the ranges). "
              "empty: only the top-left cell has the value, as Excel stores it.")
          .Example("empty"),
      FieldSpec::Enum("hidden_rows", {"read", "skip"})
          .Default("read")
          .Describe("read: hidden rows (hidden by hand or by a filter) are records like the "
                    "others. skip: they are left out (they do not count as empty rows).")
          .Example("skip"),
      FieldSpec::Enum("errors", {"quarantine", "empty"})
          .Default("quarantine")
          .Describe(
              "A cell holding an error (#N/A, #DIV/0!, #REF!, #VALUE!, ...). quarantine: "
              "its row is quarantined with the reason \"cell staff.xlsx:Ark1!B7 holds the error "
              "#N/A\" and "
              "the run goes on. empty: the cell reads as empty (null).")
          .Example("empty"),
      FieldSpec::Int("max_shared_strings_bytes")
          .Default("268435456")
          .Describe("Largest shared string table (the workbook's text, held in memory while the "
                    "sheet is read) accepted; a bigger one fails the run with a clear message. "
                    "Bytes of UTF-8 plus 32 per string.")
          .Example("536870912"),
  };
  source.example_yaml =
      "source:\n"
      "  type: xlsx\n"
      "  path: in/staff.xlsx\n"
      "  sheet: Ark1\n"
      "  header_row: 3\n"
      "  stop_at_empty_row: true\n";
  def.source = std::move(source);
  def.make_source = MakeSource;

  ComponentSpec lookup;
  lookup.summary =
      "A table kept on one sheet of an .xlsx workbook (the department list kept in Excel), "
      "loaded into memory once per run and matched on one column. The sheet is read as the "
      "source reads it, with the same settings.";
  lookup.fields = def.source->fields;
  lookup.fields.front() = FilePathField("Workbook holding the table.", "tables/afdelinger.xlsx");
  lookup.fields.insert(lookup.fields.begin() + 1, LoadedTableKeyField("Afdelingskode"));
  lookup.example_yaml =
      "departments:\n"
      "  type: xlsx\n"
      "  path: tables/afdelinger.xlsx\n"
      "  sheet: Afdelinger\n"
      "  key: Afdelingskode\n";
  def.lookup = std::move(lookup);
  def.make_lookup = MakeLookup;
  return def;
}

}  // namespace
}  // namespace keyonce::connectors::xlsx

KEYONCE_REGISTER_CONNECTOR(::keyonce::connectors::xlsx::XlsxConnector());
