// The `xlsx` connector: a streaming source of the rows of one sheet of an
// Excel (Office Open XML) workbook, and a target writing one (xlsx_target.cc). Settings are
// declared here once, as data. The zip, cell typing and row rules it shares with the other
// spreadsheet sources are in connectors/common/sheet; the workbook's small
// parts are read by xlsx_workbook.cc; the sheet itself streams through the
// XML scanner of connectors/common/xml, one <row> at a time.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <pugixml.hpp>

#include "connectors/common/after_read.h"
#include "connectors/common/fields.h"
#include "connectors/common/sheet/cells.h"
#include "connectors/common/sheet/sheet_rows.h"
#include "connectors/common/sheet/sheet_source.h"
#include "connectors/common/sheet/zip_archive.h"
#include "connectors/common/xml/xml_dom.h"
#include "connectors/common/xml/xml_scanner.h"
#include "connectors/xlsx/xlsx_target.h"
#include "connectors/xlsx/xlsx_workbook.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::xlsx {
namespace {

using sheet::SheetCell;

struct SourceConfig {
  sheet::SheetConfig sheet;
  uint64_t max_shared_strings_bytes = 0;
};

Result<SourceConfig> ReadConfig(const Settings& s) {
  SourceConfig c;
  auto shared = sheet::ReadSheetConfig(s);
  if (!shared.ok()) return shared.status();
  c.sheet = std::move(shared).value();
  int64_t max = s.Int("max_shared_strings_bytes").value_or(int64_t{256} << 20);
  if (max < 1) return Status::Invalid(s.where + ": max_shared_strings_bytes must be at least 1");
  c.max_shared_strings_bytes = static_cast<uint64_t>(max);
  return c;
}

class XlsxSource : public sheet::SheetSource {
 public:
  XlsxSource(Settings settings, SourceConfig config)
      : SheetSource(std::move(settings), config.sheet),
        max_shared_strings_bytes_(config.max_shared_strings_bytes) {}

 protected:
  Status OpenWorkbook(const std::filesystem::path& path, const RunContext& ctx) override {
    auto zip = sheet::ZipArchive::Open(path, "xlsx");
    if (!zip.ok()) return zip.status();
    zip_ = std::move(zip).value();
    auto wb = ReadWorkbook(*zip_);
    if (!wb.ok()) return wb.status();
    workbook_ = std::move(wb).value();
    std::vector<sheet::SheetName> names;
    for (const auto& s : workbook_.sheets) names.push_back({s.name, s.hidden});
    auto chosen = sheet::ChooseSheet(zip_->name(), names, config().sheet);
    if (!chosen.ok()) return chosen.status();
    sheet_ = workbook_.sheets[*chosen];
    SetSheet(zip_->name(), sheet_.name);
    auto kinds = ReadStyleKinds(*zip_, workbook_.styles_entry);
    if (!kinds.ok()) return kinds.status();
    style_kinds_ = std::move(kinds).value();
    auto strings =
        ReadSharedStrings(*zip_, workbook_.shared_strings_entry, max_shared_strings_bytes_);
    if (!strings.ok()) return strings.status();
    strings_ = std::move(strings).value();
    if (!zip_->Has(sheet_.entry)) {
      return Status::Invalid(zip_->name() + ": sheet '" + sheet_.name + "' has no part " +
                             sheet_.entry + " (damaged workbook)");
    }
    log_ = ctx.log;
    if (config().merged_top_left) {
      Status st = ReadMergedRanges();
      if (!st.ok()) return st;
    }
    auto rows = ScanEntry(*zip_, sheet_.entry, "/worksheet/sheetData/row", ctx.limits.record_bytes);
    if (!rows.ok()) return rows.status();
    rows_ = std::move(rows).value();
    return Status::OK();
  }

  void CloseWorkbook() override {
    rows_ = {};
    zip_.reset();
    strings_.clear();
  }

 private:
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
        log_->Warn("reading the merged cells of " + sheet_where() + ": " + more.status().message() +
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
        return Status::Invalid(where() + " has more than " + std::to_string(kMaxRanges) +
                               " merged ranges; read it with merged_cells: empty");
      }
    }
    merges_ = std::make_unique<sheet::MergeFill>(std::move(ranges));
    return Status::OK();
  }

  // Reads the next <row>.
  Result<bool> NextRow(sheet::SheetRow* out) override {
    if (!rows_.scanner) return Status::Internal("xlsx source read before Open");
    xml::ScannedRecord rec;
    auto more = rows_.scanner->Next(&rec);
    if (!more.ok()) return BrokenAt(more.status());
    if (!*more) return false;
    const int64_t guess = last_row_ + 1;
    pugi::xml_document doc;
    pugi::xml_parse_result parsed =
        rec.error.empty() ? doc.load_buffer(rec.text.data(), rec.text.size(),
                                            pugi::parse_default | pugi::parse_ws_pcdata)
                          : pugi::xml_parse_result();
    if (!rec.error.empty() || !parsed) {
      // Malformed: quarantined under the row it should be, read on.
      std::string why = !rec.error.empty() ? rec.error : parsed.description();
      if (guess == config().rows.header_row) {
        // Without its header no row of the sheet has its field names.
        return Status::Invalid("the header row " + std::to_string(guess) + " of " + sheet_where() +
                               " is malformed XML: " + why);
      }
      Reject(guess,
             "row " + std::to_string(guess) + " of " + sheet_where() + " is malformed XML: " + why,
             rec.text);
      last_row_ = guess;
      out->number = guess;
      out->cells = {SheetCell{1, Value("#MALFORMED")}};
      return true;
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
    out->number = r;
    out->cells = std::move(cells);
    out->hidden = hidden;
    return true;
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
    auto cell = [&] { return where() + sheet::CellName(col, row); };
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
      if (config().errors_empty) return std::nullopt;
      if (row >= config().rows.first_row) {
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

  uint64_t max_shared_strings_bytes_;
  Log* log_ = nullptr;
  std::unique_ptr<sheet::ZipArchive> zip_;
  Workbook workbook_;
  SheetInfo sheet_;
  std::vector<sheet::DateKind> style_kinds_;
  std::vector<std::string> strings_;
  std::unique_ptr<sheet::MergeFill> merges_;
  EntryScanner rows_;  // the sheet's <row>s
  int64_t last_row_ = 0;
};

Result<std::unique_ptr<Source>> MakeSource(const Settings& settings) {
  auto config = ReadConfig(settings);
  if (!config.ok()) return config.status();
  return std::unique_ptr<Source>(new XlsxSource(settings, std::move(config).value()));
}

Result<std::unique_ptr<Lookup>> MakeLookup(const Settings& settings) {
  return sheet::MakeSheetLookup(settings, "an xlsx table", MakeSource);
}

ConnectorDef XlsxConnector() {
  ConnectorDef def;
  def.name = "xlsx";
  def.summary =
      "Excel workbooks (.xlsx): the rows of one sheet become records, streamed from files of "
      "any size; a run's records become a new sheet, typed, replaced atomically.";

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
  sheet::SheetWords words;
  words.merged_note =
      "Excel lists merged ranges after the rows, so this reads the sheet twice (once for the "
      "ranges).";
  source.fields = {FilePathField("Workbook to read.", "in/staff-{{ params.month }}.xlsx")};
  for (auto& f : sheet::SheetFields(words)) source.fields.push_back(std::move(f));
  source.fields.push_back(
      FieldSpec::Int("max_shared_strings_bytes")
          .Default("268435456")
          .Describe("Largest shared string table (the workbook's text, held in memory while the "
                    "sheet is read) accepted; a bigger one fails the run with a clear message. "
                    "Bytes of UTF-8 plus 32 per string.")
          .Example("536870912"));
  source.example_yaml =
      "source:\n"
      "  type: xlsx\n"
      "  path: in/staff.xlsx\n"
      "  sheet: Ark1\n"
      "  header_row: 3\n"
      "  stop_at_empty_row: true\n";
  def.make_source = MakeSource;
  AddAfterRead(source, def.make_source);
  def.source = std::move(source);

  def.lookup = sheet::SheetLookupSpec(
      *def.source,
      "A table kept on one sheet of an .xlsx workbook (the department list kept in Excel), "
      "loaded into memory once per run and matched on one column. The sheet is read as the "
      "source reads it, with the same settings.",
      FilePathField("Workbook holding the table.", "tables/afdelinger.xlsx"),
      "departments:\n"
      "  type: xlsx\n"
      "  path: tables/afdelinger.xlsx\n"
      "  sheet: Afdelinger\n"
      "  key: Afdelingskode\n");
  def.make_lookup = MakeLookup;
  def.target = TargetSpec();
  def.make_target = MakeTarget;
  return def;
}

}  // namespace
}  // namespace keyonce::connectors::xlsx

KEYONCE_REGISTER_CONNECTOR(::keyonce::connectors::xlsx::XlsxConnector());
