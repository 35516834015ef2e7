// The `ods` connector: a streaming source of the rows of one sheet of an
// OpenDocument spreadsheet (LibreOffice Calc, .ods). Settings, sheet choice
// and the rows-to-records loop are shared with the other spreadsheet
// sources (connectors/common/sheet/sheet_source); this file reads
// content.xml, one <table:table-row> at a time, through the XML scanner of
// connectors/common/xml.
//
// ODF stores each cell's value typed (office:value-type) next to its shown
// text, so no number format is needed: a date is ISO text already, a time
// an ISO duration, a percentage or an amount a plain number.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <pugixml.hpp>
#include <set>

#include "connectors/common/after_read.h"
#include "connectors/common/fields.h"
#include "connectors/common/sheet/cells.h"
#include "connectors/common/sheet/sheet_rows.h"
#include "connectors/common/sheet/sheet_source.h"
#include "connectors/common/sheet/zip_archive.h"
#include "connectors/common/xml/xml_dom.h"
#include "connectors/common/xml/xml_scanner.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::ods {
namespace {

using sheet::SheetCell;

// The widest sheet LibreOffice makes (XFD); a cell repeated past it is cut.
constexpr int64_t kMaxColumns = 16384;
// The longest (LibreOffice's "jumbo" sheets); a row repeated past it is cut,
// so a crafted file cannot repeat a row without end.
constexpr int64_t kMaxRows = int64_t{1} << 24;

std::string Two(int64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "%02lld", static_cast<long long>(v));
  return b;
}

// "2024-03-01" or "2024-03-01T08:30:00.4" (office:date-value) as ISO text,
// seconds rounded: "2024-03-01", "2024-03-01T08:30:00". nullopt when it is
// not such a date.
std::optional<std::string> DateValue(std::string_view t) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0;
  double s = 0;
  std::string text(t);
  int n = 0;
  if (std::sscanf(text.c_str(), "%5d-%2d-%2d%n", &y, &mo, &d, &n) != 3) return std::nullopt;
  if (static_cast<size_t>(n) == text.size()) {
    char b[32];
    std::snprintf(b, sizeof b, "%04d-%02d-%02d", y, mo, d);
    return std::string(b);
  }
  int m = 0;
  if (std::sscanf(text.c_str() + n, "T%2d:%2d:%lf%n", &h, &mi, &s, &m) != 3) return std::nullopt;
  using namespace std::chrono;
  year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
  if (!ymd.ok()) return std::nullopt;
  int64_t secs = static_cast<int64_t>(std::llround(h * 3600.0 + mi * 60.0 + s));
  sys_days days = sys_days(ymd) + std::chrono::days(secs / 86400);
  secs %= 86400;
  year_month_day out(days);
  char b[48];
  std::snprintf(b, sizeof b, "%04d-%02u-%02uT%02lld:%02lld:%02lld", static_cast<int>(out.year()),
                static_cast<unsigned>(out.month()), static_cast<unsigned>(out.day()),
                static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                static_cast<long long>(secs % 60));
  return std::string(b);
}

// "PT08H30M00S" (office:time-value, an ISO 8601 duration) as "08:30:00";
// hours past 24 are kept ("PT36H15M00S" is "36:15:00"), seconds rounded.
std::optional<std::string> TimeValue(std::string_view t) {
  if (t.substr(0, 2) != "PT" && t.substr(0, 3) != "P0D") return std::nullopt;
  double total = 0, num = 0;
  bool in_time = false, have = false;
  std::string digits;
  for (char ch : t) {
    if (ch == 'P') continue;
    if (ch == 'T') {
      in_time = true;
      continue;
    }
    if ((ch >= '0' && ch <= '9') || ch == '.' || ch == ',') {
      digits += ch == ',' ? '.' : ch;
      continue;
    }
    if (digits.empty()) return std::nullopt;
    num = std::strtod(digits.c_str(), nullptr);
    digits.clear();
    have = true;
    if (!in_time && ch == 'D')
      total += num * 86400;
    else if (in_time && ch == 'H')
      total += num * 3600;
    else if (in_time && ch == 'M')
      total += num * 60;
    else if (in_time && ch == 'S')
      total += num;
    else
      return std::nullopt;
  }
  if (!have || !digits.empty()) return std::nullopt;
  int64_t secs = std::llround(total);
  return Two(secs / 3600) + ":" + Two(secs / 60 % 60) + ":" + Two(secs % 60);
}

// The text of a <text:p> (or <text:h>): its text, <text:s text:c="n"/> as n
// spaces, <text:tab/> a tab, <text:line-break/> a newline, spans and links
// as their text; notes and annotations left out.
void AppendText(const pugi::xml_node& node, std::string* out) {
  for (pugi::xml_node k = node.first_child(); k; k = k.next_sibling()) {
    if (k.type() == pugi::node_pcdata || k.type() == pugi::node_cdata) {
      out->append(k.value());
      continue;
    }
    if (k.type() != pugi::node_element) continue;
    std::string_view name = xml::LocalPart(k.name());
    if (name == "s") {
      int64_t c = 1;
      for (pugi::xml_attribute a = k.first_attribute(); a; a = a.next_attribute()) {
        if (xml::LocalPart(a.name()) == "c") c = a.as_llong(1);
      }
      out->append(static_cast<size_t>(std::clamp<int64_t>(c, 0, 1024)), ' ');
    } else if (name == "tab") {
      out->push_back('\t');
    } else if (name == "line-break") {
      out->push_back('\n');
    } else if (name == "note" || name == "annotation" || name == "bookmark" ||
               name == "bookmark-start" || name == "bookmark-end" || name == "soft-page-break") {
      continue;
    } else {
      AppendText(k, out);
    }
  }
}

// The cell's paragraphs joined by newlines.
std::string CellText(const pugi::xml_node& cell) {
  std::string out;
  bool first = true;
  for (pugi::xml_node k = cell.first_child(); k; k = k.next_sibling()) {
    if (k.type() != pugi::node_element) continue;
    std::string_view name = xml::LocalPart(k.name());
    if (name != "p" && name != "h") continue;
    if (!first) out.push_back('\n');
    first = false;
    AppendText(k, &out);
  }
  return out;
}

// A merged range met in a row (number-columns-spanned / -rows-spanned):
// its covered cells, in this row and the rows below, take its value.
struct Span {
  int64_t first_column = 0, last_column = 0, last_row = 0;
  Value value;
};

class OdsSource : public sheet::SheetSource {
 public:
  OdsSource(Settings settings, sheet::SheetConfig config)
      : SheetSource(std::move(settings), std::move(config)) {}

 protected:
  Status OpenWorkbook(const std::filesystem::path& path, const RunContext& ctx) override {
    auto zip = sheet::ZipArchive::Open(path, "ods");
    if (!zip.ok()) return zip.status();
    zip_ = std::move(zip).value();
    const std::string& file = zip_->name();
    auto mime = zip_->ReadWhole("mimetype", 256);
    if (mime.ok() && *mime != "application/vnd.oasis.opendocument.spreadsheet") {
      return Status::Invalid(file + " is not an ods file: it is an OpenDocument file of type " +
                             (mime->size() < 80 ? *mime : std::string("(unknown)")) +
                             ", not a spreadsheet");
    }
    auto encrypted = zip_->Has("META-INF/manifest.xml")
                         ? zip_->Mentions("META-INF/manifest.xml", "encryption-data")
                         : Result<bool>(false);
    if (!encrypted.ok()) return encrypted.status();
    if (*encrypted) {
      return Status::Invalid(file +
                             " is encrypted (password-protected); save it without a password");
    }
    if (!zip_->Has("content.xml")) {
      return Status::Invalid(file + " is not an ods file: it has no content.xml");
    }
    auto reader = zip_->OpenEntry("content.xml");
    if (!reader.ok()) return reader.status();
    reader_ = std::move(reader).value();
    xml::Namespaces ns = {
        {"office", "urn:oasis:names:tc:opendocument:xmlns:office:1.0"},
        {"style", "urn:oasis:names:tc:opendocument:xmlns:style:1.0"},
        {"table", "urn:oasis:names:tc:opendocument:xmlns:table:1.0"},
    };
    const std::string body = "/office:document-content/office:body/office:spreadsheet/table:table";
    // Rows sit in a table, in its header rows, its row groups (nested) or
    // its table:table-rows; table styles (hidden sheets) come first.
    auto rows = xml::RecordPath::Parse(
        "/office:document-content/office:automatic-styles/style:style | " + body +
            "/table:table-row | " + body + "/table:table-header-rows/table:table-row | " + body +
            "/table:table-rows/table:table-row | " + body +
            "//table:table-row-group//table:table-row",
        ns);
    if (!rows.ok()) return rows.status();
    auto context = xml::RecordPath::Parse(body, ns);
    if (!context.ok()) return context.status();
    xml::XmlScanner::Options o;
    o.path = std::move(rows).value();
    o.context_path = std::move(context).value();
    o.name = file + ": content.xml";
    o.max_record_bytes = ctx.limits.record_bytes;
    sheet::ZipEntryReader* r = reader_.get();
    scanner_ = std::make_unique<xml::XmlScanner>(
        std::move(o), [r](char* data, size_t n) { return r->Read(data, n); });
    return FindSheet();
  }

  void CloseWorkbook() override {
    scanner_.reset();
    reader_.reset();
    zip_.reset();
  }

  Result<bool> NextRow(sheet::SheetRow* out) override {
    while (true) {
      if (repeat_left_ > 0) {  // the next copy of a repeated row
        --repeat_left_;
        *out = repeated_;
        out->number = ++row_;
        if (repeated_rejected_) Reject(row_, repeated_reason_, "");
        return true;
      }
      if (done_ || row_ >= kMaxRows) return false;
      if (!have_pending_) {
        auto more = scanner_->Next(&pending_);
        if (!more.ok()) return BrokenAt(more.status());
        if (!*more || pending_.context_index != table_index_) {
          done_ = true;  // the end of the document, or of the chosen table
          return false;
        }
      }
      have_pending_ = false;
      auto got = ReadRow(pending_, out);
      if (!got.ok()) return got.status();
      if (*got) return true;
    }
  }

 private:
  // Reads records until the first row of the chosen table (the table styles
  // before it are read for hidden sheets). Sheets are met in tab order, so
  // the choice is made on the sheets met so far; at the end of the document
  // ChooseSheet says which exist.
  Status FindSheet() {
    const std::string& wanted = config().sheet;
    std::vector<sheet::SheetName> seen;
    int64_t position = 0;
    bool numeric = !wanted.empty() && wanted.find_first_not_of("0123456789") == std::string::npos;
    if (numeric) position = std::strtoll(wanted.c_str(), nullptr, 10);
    int64_t visible = 0;
    uint64_t last_index = 0;
    while (true) {
      auto more = scanner_->Next(&pending_);
      if (!more.ok()) return more.status().Wrap("reading the sheets of " + zip_->name());
      if (!*more) break;
      if (pending_.context_index == 0) {  // a style
        ReadStyle(pending_);
        continue;
      }
      if (pending_.context_index == last_index) continue;
      last_index = pending_.context_index;
      sheet::SheetName table = TableOf(pending_.context);
      seen.push_back(table);
      if (!table.hidden) ++visible;
      bool chosen = wanted.empty()
                        ? !table.hidden
                        : table.name == wanted || (numeric && !table.hidden && visible == position);
      if (chosen) {
        table_index_ = pending_.context_index;
        have_pending_ = true;
        SetSheet(zip_->name(), table.name);
        return Status::OK();
      }
    }
    auto chosen = sheet::ChooseSheet(zip_->name(), seen, wanted);
    if (!chosen.ok()) return chosen.status();
    return Status::Invalid(zip_->name() + " has no sheets");  // no table has rows
  }

  // A table style that hides its sheet: <style:style style:name="ta2"
  // style:family="table"><style:table-properties table:display="false"/>.
  void ReadStyle(const xml::ScannedRecord& rec) {
    pugi::xml_document doc;
    if (!rec.error.empty() || !doc.load_buffer(rec.text.data(), rec.text.size())) return;
    pugi::xml_node s = doc.document_element();
    std::string name;
    for (pugi::xml_attribute a = s.first_attribute(); a; a = a.next_attribute()) {
      if (xml::LocalPart(a.name()) == "name") name = a.value();
    }
    for (pugi::xml_node k = s.first_child(); k; k = k.next_sibling()) {
      if (xml::LocalPart(k.name()) != "table-properties") continue;
      for (pugi::xml_attribute a = k.first_attribute(); a; a = a.next_attribute()) {
        if (xml::LocalPart(a.name()) == "display" && std::string_view(a.value()) == "false") {
          hidden_styles_.insert(name);
        }
      }
    }
  }

  // The name and visibility of a <table:table ...> start tag.
  sheet::SheetName TableOf(const std::string& start_tag) const {
    std::string tag = start_tag;
    if (tag.size() >= 2 && tag.compare(tag.size() - 2, 2, "/>") != 0)
      tag.insert(tag.size() - 1, "/");
    pugi::xml_document doc;
    sheet::SheetName out;
    if (!doc.load_buffer(tag.data(), tag.size())) return out;
    for (pugi::xml_attribute a = doc.document_element().first_attribute(); a;
         a = a.next_attribute()) {
      std::string_view name = xml::LocalPart(a.name());
      if (name == "name") out.name = a.value();
      if (name == "style-name") out.hidden = hidden_styles_.count(a.value()) > 0;
    }
    return out;
  }

  // Reads one <table:table-row> into *out: false when it holds only empty
  // cells (its rows are left out: the shaper counts missing rows as empty,
  // so a block of a million repeated empty rows costs nothing).
  Result<bool> ReadRow(const xml::ScannedRecord& rec, sheet::SheetRow* out) {
    const int64_t first = row_ + 1;
    pugi::xml_document doc;
    pugi::xml_parse_result parsed =
        rec.error.empty() ? doc.load_buffer(rec.text.data(), rec.text.size(),
                                            pugi::parse_default | pugi::parse_ws_pcdata)
                          : pugi::xml_parse_result();
    if (!rec.error.empty() || !parsed) {
      std::string why = !rec.error.empty() ? rec.error : parsed.description();
      if (first == config().rows.header_row) {
        return Status::Invalid("the header row " + std::to_string(first) + " of " + sheet_where() +
                               " is malformed XML: " + why);
      }
      row_ = first;
      Reject(first,
             "row " + std::to_string(first) + " of " + sheet_where() + " is malformed XML: " + why,
             rec.text);
      out->number = first;
      out->cells = {SheetCell{1, Value("#MALFORMED")}};
      out->hidden = false;
      return true;
    }
    pugi::xml_node row = doc.document_element();
    int64_t repeat = 1;
    bool hidden = false;
    for (pugi::xml_attribute a = row.first_attribute(); a; a = a.next_attribute()) {
      std::string_view name = xml::LocalPart(a.name());
      if (name == "number-rows-repeated") repeat = std::max<int64_t>(1, a.as_llong(1));
      if (name == "visibility") hidden = std::string_view(a.value()) != "visible";
    }
    // Spans that ended above this row are done.
    std::erase_if(spans_, [&](const Span& s) { return s.last_row < first; });
    rejected_ = false;
    reason_.clear();
    std::vector<SheetCell> cells;
    int64_t col = 0;
    for (pugi::xml_node c = row.first_child(); c; c = c.next_sibling()) {
      if (c.type() != pugi::node_element) continue;
      std::string_view kind = xml::LocalPart(c.name());
      const bool covered = kind == "covered-table-cell";
      if (!covered && kind != "table-cell") continue;
      int64_t times = 1, colspan = 1, rowspan = 1;
      for (pugi::xml_attribute a = c.first_attribute(); a; a = a.next_attribute()) {
        std::string_view name = xml::LocalPart(a.name());
        if (name == "number-columns-repeated") times = std::max<int64_t>(1, a.as_llong(1));
        if (name == "number-columns-spanned") colspan = std::max<int64_t>(1, a.as_llong(1));
        if (name == "number-rows-spanned") rowspan = std::max<int64_t>(1, a.as_llong(1));
      }
      const int64_t at = col + 1;
      if (at > kMaxColumns) break;
      times = std::min(times, kMaxColumns - col);
      col += times;
      std::optional<Value> v;
      if (covered) {
        if (config().merged_top_left) {
          for (const Span& s : spans_) {
            if (at >= s.first_column && at <= s.last_column) v = s.value;
          }
        }
      } else {
        v = CellValue(c, first, static_cast<int>(at), rec.text);
        if ((colspan > 1 || rowspan > 1) && v && config().merged_top_left) {
          spans_.push_back(Span{at, at + colspan - 1, first + rowspan - 1, *v});
        }
      }
      if (!v) continue;
      for (int64_t i = 0; i < times; ++i) cells.push_back(SheetCell{static_cast<int>(at + i), *v});
    }
    const bool empty = std::all_of(cells.begin(), cells.end(), [](const SheetCell& c) {
      return c.value.is_null() || (c.value.is_string() && c.value.get_string().empty());
    });
    repeat = std::min(repeat, std::max<int64_t>(kMaxRows - row_, 1));
    if (empty) {
      row_ += repeat;
      return false;
    }
    out->number = first;
    out->cells = std::move(cells);
    out->hidden = hidden;
    row_ = first;
    if (repeat > 1) {
      repeat_left_ = repeat - 1;
      repeated_ = *out;
      repeated_rejected_ = rejected_;
      repeated_reason_ = reason_;
    }
    return true;
  }

  void RejectCell(int64_t row, std::string reason, const std::string& raw) {
    if (!rejected_) {
      rejected_ = true;
      reason_ = reason;
    }
    Reject(row, std::move(reason), raw);
  }

  // The value of a cell as LibreOffice shows it, typed; nullopt when empty.
  std::optional<Value> CellValue(const pugi::xml_node& c, int64_t row, int col,
                                 const std::string& raw) {
    std::string_view type, value, date, time, boolean, string_value, calc_type;
    bool has_string_value = false;
    for (pugi::xml_attribute a = c.first_attribute(); a; a = a.next_attribute()) {
      std::string_view qname = a.name();
      std::string_view name = xml::LocalPart(a.name());
      if (name == "value-type") {
        if (qname.substr(0, 7) == "calcext") {
          calc_type = a.value();
        } else {
          type = a.value();
        }
      } else if (name == "value") {
        value = a.value();
      } else if (name == "date-value") {
        date = a.value();
      } else if (name == "time-value") {
        time = a.value();
      } else if (name == "boolean-value") {
        boolean = a.value();
      } else if (name == "string-value") {
        string_value = a.value();
        has_string_value = true;
      }
    }
    if (calc_type == "error") {
      if (config().errors_empty) return std::nullopt;
      std::string text = CellText(c);
      if (text.empty()) text = "#VALUE!";
      if (row >= config().rows.first_row) {
        RejectCell(row, CellWhere(col, row) + " holds the error " + text, raw);
      }
      return Value(text);
    }
    auto unreadable = [&](const char* what) {
      RejectCell(row, CellWhere(col, row) + " holds " + what + " that cannot be read", raw);
      return Value("#VALUE!");
    };
    if (type == "float" || type == "percentage" || type == "currency") {
      auto number = sheet::ParseNumber(value);
      if (!number) return unreadable("a number");
      return std::move(*number);
    }
    if (type == "date") {
      auto iso = DateValue(date);
      if (!iso) return unreadable("a date");
      return Value(*iso);
    }
    if (type == "time") {
      auto iso = TimeValue(time);
      if (!iso) return unreadable("a time");
      return Value(*iso);
    }
    if (type == "boolean") return Value(boolean == "true" || boolean == "1");
    // A string's text is its paragraphs (string-value, when given, wins).
    if (has_string_value) return Value(std::string(string_value));
    std::string text = CellText(c);
    if (text.empty()) return std::nullopt;
    return Value(std::move(text));
  }

  std::unique_ptr<sheet::ZipArchive> zip_;
  std::unique_ptr<sheet::ZipEntryReader> reader_;
  std::unique_ptr<xml::XmlScanner> scanner_;
  std::set<std::string> hidden_styles_;
  uint64_t table_index_ = 0;
  xml::ScannedRecord pending_;
  bool have_pending_ = false;
  bool done_ = false;
  int64_t row_ = 0;  // the last row read (or skipped)
  std::vector<Span> spans_;
  // A row with number-rows-repeated: its copies still to give.
  int64_t repeat_left_ = 0;
  sheet::SheetRow repeated_;
  bool repeated_rejected_ = false;
  std::string repeated_reason_;
  // The current row's first problem (for its repeated copies).
  bool rejected_ = false;
  std::string reason_;
};

Result<std::unique_ptr<Source>> MakeSource(const Settings& settings) {
  auto config = sheet::ReadSheetConfig(settings);
  if (!config.ok()) return config.status();
  return std::unique_ptr<Source>(new OdsSource(settings, std::move(config).value()));
}

Result<std::unique_ptr<Lookup>> MakeLookup(const Settings& settings) {
  return sheet::MakeSheetLookup(settings, "an ods table", MakeSource);
}

ConnectorDef OdsConnector() {
  ConnectorDef def;
  def.name = "ods";
  def.summary =
      "OpenDocument spreadsheets (.ods, LibreOffice Calc): the rows of one sheet become "
      "records, streamed from files of any size.";

  ComponentSpec source;
  source.summary =
      "Reads the rows of one sheet of an .ods spreadsheet as records, streaming: memory holds "
      "one row, however many rows the sheet has. Cells are typed as LibreOffice stores them: "
      "text (its paragraphs joined by newlines; spaces, tabs, line breaks and formatted runs "
      "kept as text) as a string; a number, percentage (0.25 for 25 %) or currency amount as "
      "a JSON integer when it is integral, else a decimal; a boolean as true/false; a date as "
      "ISO text, 2024-03-01 or 2024-03-01T08:30:00 (seconds rounded); a time as 08:30:00 "
      "(hours past 24 kept: 36:15:00); a formula as its cached value (as LibreOffice last "
      "computed it). An error cell (Err:502, #DIV/0!, #N/A, ...) quarantines its row with the "
      "reason \"cell staff.ods:Ark1!B7 holds the error #N/A\" (or, with `errors: empty`, "
      "reads as empty). Repeated rows and cells (number-rows-repeated, "
      "number-columns-repeated) are read as that many rows and cells (up to column XFD and "
      "row 16,777,216); repeated empty rows (LibreOffice writes the million empty rows under "
      "a table as one) cost nothing. Hidden "
      "rows are those with table:visibility collapse or filter; a hidden sheet is one whose "
      "table style has table:display=\"false\" (how LibreOffice hides a sheet). Dates are "
      "stored as dates, so the document's null date (1899-12-30 or 1904-01-01) does not "
      "change them. Positions and messages name the file, sheet and row or cell "
      "(staff.ods:Ark1!17, staff.ods:Ark1!B17; 'Sheet name'!B17 when the name has spaces), "
      "never a cell's value. A row that is not well-formed XML is quarantined and the sheet "
      "read on. The file is not trusted: a password-protected ods, an .xlsx or an old .xls "
      "given as .ods is refused with a message saying so, a damaged zip or content.xml fails "
      "the run naming the file (and the sheet and the row after which it broke), and an entry "
      "that inflates more than 100 times its compressed size (past 1 MiB) or past 4 GiB is "
      "refused as a zip bomb. Sheets are found in one pass: a sheet named by a number that is "
      "also a visible sheet's position is taken by position when that sheet comes first.";
  sheet::SheetWords words;
  words.file = "staff.ods";
  words.errors = "#N/A, Err:502, #DIV/0!, #REF!, #VALUE!";
  words.merged_note =
      "The covered cells of a range below its top-left cell are filled as they are read.";
  source.fields = {FilePathField("Spreadsheet to read.", "in/staff-{{ params.month }}.ods")};
  for (auto& f : sheet::SheetFields(words)) source.fields.push_back(std::move(f));
  source.example_yaml =
      "source:\n"
      "  type: ods\n"
      "  path: in/staff.ods\n"
      "  sheet: Ark1\n"
      "  header_row: 3\n"
      "  stop_at_empty_row: true\n";
  def.make_source = MakeSource;
  AddAfterRead(source, def.make_source);
  def.source = std::move(source);
  def.lookup = sheet::SheetLookupSpec(
      *def.source,
      "A table kept on one sheet of an .ods spreadsheet (the department list kept in "
      "LibreOffice Calc), loaded into memory once per run and matched on one column. The sheet "
      "is read as the source reads it, with the same settings.",
      FilePathField("Spreadsheet holding the table.", "tables/afdelinger.ods"),
      "departments:\n"
      "  type: ods\n"
      "  path: tables/afdelinger.ods\n"
      "  sheet: Afdelinger\n"
      "  key: Afdelingskode\n");
  def.make_lookup = MakeLookup;
  return def;
}

}  // namespace
}  // namespace keyonce::connectors::ods

KEYONCE_REGISTER_CONNECTOR(::keyonce::connectors::ods::OdsConnector());
