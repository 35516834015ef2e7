// The xlsx target. Each record is one row of the sheet; cells are typed per
// column (see CellOf). libxlsxwriter writes the workbook in constant-memory
// mode: a row goes to a temporary file as soon as the next one starts, so
// memory stays flat however many rows the run writes, but the column widths
// must be known before the first row. They are set from `columns`, or
// estimated from the header and the first `width_sample_rows` rows, which
// are held back (in memory) until the widths are set.
//
// Exactly once: the workbook is the run's whole result. It is written to a
// temporary file beside the destination and renamed over it by the final
// commit (ReplaceRun); a crash before the rename leaves the old file and the
// run is written again, a crash after it is told by the file's identity.
#include "connectors/xlsx/xlsx_target.h"

#include <xlsxwriter.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "connectors/common/fields.h"
#include "connectors/common/net/remote_file.h"
#include "connectors/common/text_file.h"
#include "connectors/xlsx/xlsx_workbook.h"

namespace keyonce::connectors::xlsx {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kMaxRows = 1048576;     // rows of an Excel sheet
constexpr size_t kMaxCellChars = 32767;    // characters of an Excel cell
constexpr size_t kMaxColumns = 16384;      // columns of an Excel sheet
constexpr double kMaxExactInteger = 1e15;  // Excel keeps 15 significant digits

enum class ColumnType { kAuto, kText, kNumber, kInteger, kDate, kDateTime, kBoolean };

struct ColumnConfig {
  std::string field;
  std::string header;
  ColumnType type = ColumnType::kAuto;
  double width = 0;  // 0: estimated
};

struct TargetConfig {
  std::string sheet = "Ark1";
  std::vector<ColumnConfig> columns;  // empty: every field, in the first record's order
  bool header = true;
  std::string date_format = "dd-mm-yyyy";
  std::string datetime_format = "dd-mm-yyyy hh:mm";
  std::string number_format;  // "" = General
  bool freeze_header = true;
  bool autofilter = false;
  int64_t width_sample_rows = 100;
  bool create_dirs = false;
};

struct Cell {
  enum class Kind { kBlank, kText, kNumber, kDate, kDateTime, kBoolean };
  Kind kind = Kind::kBlank;
  std::string text;   // kText
  double number = 0;  // kNumber
  bool integral = false;
  lxw_datetime when{};  // kDate, kDateTime
  bool flag = false;    // kBoolean
};

std::optional<ColumnType> ParseType(const std::string& s) {
  if (s == "auto") return ColumnType::kAuto;
  if (s == "text") return ColumnType::kText;
  if (s == "number") return ColumnType::kNumber;
  if (s == "integer") return ColumnType::kInteger;
  if (s == "date") return ColumnType::kDate;
  if (s == "datetime") return ColumnType::kDateTime;
  if (s == "boolean") return ColumnType::kBoolean;
  return std::nullopt;
}

// Column letters of a 0-based column: 0 -> A, 27 -> AB.
std::string ColumnLetters(size_t col) {
  std::string out;
  for (size_t n = col + 1; n > 0; n = (n - 1) / 26) {
    out.insert(out.begin(), static_cast<char>('A' + (n - 1) % 26));
  }
  return out;
}

size_t Utf8Chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int Int(std::string_view s) {
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// ISO 8601 dates and date-times as written by keyonce's sources and
// format_date: 2024-03-01, 2024-03-01T08:30, 2024-03-01 08:30:15(.250). A
// zone suffix (Z, +01:00) is not taken: Excel's dates have no zone.
bool ParseIso(std::string_view s, lxw_datetime* out, bool* has_time) {
  if (s.size() < 10 || s[4] != '-' || s[7] != '-' || !AllDigits(s.substr(0, 4)) ||
      !AllDigits(s.substr(5, 2)) || !AllDigits(s.substr(8, 2))) {
    return false;
  }
  lxw_datetime dt{};
  dt.year = Int(s.substr(0, 4));
  dt.month = Int(s.substr(5, 2));
  dt.day = Int(s.substr(8, 2));
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (dt.year < 1900 || dt.month < 1 || dt.month > 12 || dt.day < 1 ||
      dt.day > kDays[dt.month - 1]) {
    return false;
  }
  bool leap = (dt.year % 4 == 0 && dt.year % 100 != 0) || dt.year % 400 == 0;
  if (dt.month == 2 && dt.day == 29 && !leap) return false;
  *has_time = false;
  if (s.size() > 10) {
    std::string_view t = s.substr(11);
    if ((s[10] != 'T' && s[10] != ' ') || t.size() < 5 || t[2] != ':' ||
        !AllDigits(t.substr(0, 2)) || !AllDigits(t.substr(3, 2))) {
      return false;
    }
    dt.hour = Int(t.substr(0, 2));
    dt.min = Int(t.substr(3, 2));
    if (t.size() > 5) {
      if (t[5] != ':' || t.size() < 8 || !AllDigits(t.substr(6, 2))) return false;
      dt.sec = Int(t.substr(6, 2));
      if (t.size() > 8) {
        if (t[8] != '.' || !AllDigits(t.substr(9))) return false;
        double frac = 0;
        std::string digits = "0." + std::string(t.substr(9));
        std::from_chars(digits.data(), digits.data() + digits.size(), frac);
        dt.sec += frac;
      }
    }
    if (dt.hour > 23 || dt.min > 59 || dt.sec >= 60) return false;
    *has_time = true;
  }
  *out = dt;
  return true;
}

// A number written as text: what `auto` takes as a number, and what `number`
// accepts. `strict` (auto): -?(0|[1-9]\d{0,6})(\.\d+)?, so an identifier that
// happens to be digits stays text: a leading zero (0101901234, 007), eight or
// more integer digits (phone numbers, CPR numbers, account numbers, EAN),
// a sign other than minus, spaces, exponents. Otherwise any decimal with a
// point or a comma (12,5) and at most 15 significant digits.
std::optional<double> ParseNumberText(std::string_view s, bool strict) {
  std::string_view body = s;
  bool negative = !body.empty() && body[0] == '-';
  if (negative) body.remove_prefix(1);
  if (!strict && !negative && !body.empty() && body[0] == '+') body.remove_prefix(1);
  size_t sep = body.find_first_of(strict ? "." : ".,");
  std::string_view whole = body.substr(0, sep);
  std::string_view frac = sep == std::string_view::npos ? std::string_view() : body.substr(sep + 1);
  if (!AllDigits(whole) || (sep != std::string_view::npos && !AllDigits(frac))) {
    return std::nullopt;
  }
  if (strict && (whole.size() > 7 || (whole.size() > 1 && whole[0] == '0'))) return std::nullopt;
  size_t lead = whole.find_first_not_of('0');
  size_t significant = (lead == std::string_view::npos ? 0 : whole.size() - lead) + frac.size();
  if (significant > 15) return std::nullopt;
  std::string text(whole);
  if (!frac.empty()) text += "." + std::string(frac);
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return negative ? -v : v;
}

std::optional<bool> ParseBoolText(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "true" || s == "1" || s == "ja" || s == "yes" || s == "sand") return true;
  if (s == "false" || s == "0" || s == "nej" || s == "no" || s == "falsk") return false;
  return std::nullopt;
}

Cell Text(std::string s) {
  Cell c;
  c.kind = Cell::Kind::kText;
  c.text = std::move(s);
  return c;
}

Cell Number(double v) {
  Cell c;
  c.kind = Cell::Kind::kNumber;
  c.number = v;
  c.integral = std::floor(v) == v && std::fabs(v) < kMaxExactInteger;
  return c;
}

// The cell for one value in a column of `type`. A failure is a reason that
// names no value (values may be personal data).
Result<Cell> CellOf(const Value& v, ColumnType type) {
  if (v.is_null()) return Cell();
  switch (type) {
    case ColumnType::kText:
      return Text(v.is_string() ? std::string(v.get_string()) : ToText(v));
    case ColumnType::kAuto: {
      if (v.is_bool()) {
        Cell c;
        c.kind = Cell::Kind::kBoolean;
        c.flag = v.get_bool();
        return c;
      }
      if (v.is_int64() || v.is_uint64()) {
        // Digits Excel would round away (more than 15) are kept as text.
        double d = v.to_number<double>();
        if (std::fabs(d) >= kMaxExactInteger) return Text(ToText(v));
        return Number(d);
      }
      if (v.is_double()) {
        double d = v.get_double();
        if (!std::isfinite(d)) return Text(ToText(v));
        return Number(d);
      }
      if (v.is_string()) {
        std::string_view s = v.get_string();
        lxw_datetime dt;
        bool has_time = false;
        if (ParseIso(s, &dt, &has_time)) {
          Cell c;
          c.kind = has_time ? Cell::Kind::kDateTime : Cell::Kind::kDate;
          c.when = dt;
          return c;
        }
        if (auto n = ParseNumberText(s, /*strict=*/true)) return Number(*n);
        return Text(std::string(s));
      }
      return Text(ToText(v));  // objects and lists as JSON
    }
    case ColumnType::kNumber:
    case ColumnType::kInteger: {
      std::optional<double> d;
      if (v.is_int64() || v.is_uint64() || v.is_double()) {
        d = v.to_number<double>();
      } else if (v.is_string()) {
        if (v.get_string().empty()) return Cell();
        d = ParseNumberText(v.get_string(), /*strict=*/false);
      }
      if (!d || !std::isfinite(*d)) return Status::Permanent("is not a number");
      if (type == ColumnType::kInteger && std::floor(*d) != *d) {
        return Status::Permanent("is not a whole number");
      }
      if (std::fabs(*d) >= kMaxExactInteger && std::floor(*d) == *d &&
          (v.is_int64() || v.is_uint64() || v.is_string())) {
        return Status::Permanent(
            "has more than 15 digits, which Excel would round (use type: text)");
      }
      return Number(*d);
    }
    case ColumnType::kDate:
    case ColumnType::kDateTime: {
      if (!v.is_string()) return Status::Permanent("is not an ISO date (YYYY-MM-DD)");
      if (v.get_string().empty()) return Cell();
      lxw_datetime dt;
      bool has_time = false;
      if (!ParseIso(v.get_string(), &dt, &has_time)) {
        return Status::Permanent(type == ColumnType::kDate
                                     ? "is not an ISO date (YYYY-MM-DD) from 1900 on"
                                     : "is not an ISO date-time (YYYY-MM-DDTHH:MM[:SS]) from "
                                       "1900 on");
      }
      Cell c;
      c.kind = type == ColumnType::kDate ? Cell::Kind::kDate : Cell::Kind::kDateTime;
      if (type == ColumnType::kDate) dt.hour = dt.min = 0, dt.sec = 0;
      c.when = dt;
      return c;
    }
    case ColumnType::kBoolean: {
      std::optional<bool> b;
      if (v.is_bool()) {
        b = v.get_bool();
      } else if (v.is_int64() || v.is_uint64()) {
        if (v.to_number<int64_t>() == 0 || v.to_number<int64_t>() == 1) b = v.to_number<int64_t>();
      } else if (v.is_string()) {
        if (v.get_string().empty()) return Cell();
        b = ParseBoolText(std::string(v.get_string()));
      }
      if (!b) return Status::Permanent("is not a boolean (true/false, 1/0, ja/nej)");
      Cell c;
      c.kind = Cell::Kind::kBoolean;
      c.flag = *b;
      return c;
    }
  }
  return Cell();
}

// The cell's value as JSON, for Render and replies: what the sheet holds.
Value CellValue(const Cell& c) {
  char buf[32];
  switch (c.kind) {
    case Cell::Kind::kBlank:
      return nullptr;
    case Cell::Kind::kText:
      return Value(c.text);
    case Cell::Kind::kNumber:
      if (c.integral) return Value(static_cast<int64_t>(c.number));
      return Value(c.number);
    case Cell::Kind::kDate:
      std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", c.when.year % 10000, c.when.month % 100,
                    c.when.day % 100);
      return Value(buf);
    case Cell::Kind::kDateTime:
      std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", c.when.year % 10000,
                    c.when.month % 100, c.when.day % 100, c.when.hour % 100, c.when.min % 100,
                    static_cast<int>(c.when.sec) % 100);
      return Value(buf);
    case Cell::Kind::kBoolean:
      return Value(c.flag);
  }
  return nullptr;
}

// How many characters wide the cell shows (for estimated widths).
size_t DisplayChars(const Cell& c, const TargetConfig& cfg) {
  switch (c.kind) {
    case Cell::Kind::kBlank:
      return 0;
    case Cell::Kind::kText: {
      // The longest line of a multi-line text.
      size_t best = 0, start = 0;
      while (start <= c.text.size()) {
        size_t end = c.text.find('\n', start);
        if (end == std::string::npos) end = c.text.size();
        best = std::max(best, Utf8Chars(std::string_view(c.text).substr(start, end - start)));
        start = end + 1;
      }
      return best;
    }
    case Cell::Kind::kNumber:
      return ToText(CellValue(c)).size();
    case Cell::Kind::kDate:
      return cfg.date_format.size();
    case Cell::Kind::kDateTime:
      return cfg.datetime_format.size();
    case Cell::Kind::kBoolean:
      return 5;  // FALSE
  }
  return 0;
}

class XlsxTarget : public Target {
 public:
  XlsxTarget(Settings settings, TargetConfig config)
      : settings_(std::move(settings)), cfg_(std::move(config)) {}

  ~XlsxTarget() override { Discard(); }

  TargetTraits Traits() const override { return TargetTraits{}; }

  Status Open(const RunContext& ctx) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status().Wrap(settings_.where);
    path_ = *path;
    where_ = path_.filename().string() + ":" + SheetRefName(cfg_.sheet) + "!";
    marks_.Open(ctx);
    KEYONCE_RETURN_IF_ERROR(run_.BeginForWriter(path_, cfg_.create_dirs));

    lxw_workbook_options options{};
    options.constant_memory = LXW_TRUE;
    options.use_zip64 = LXW_TRUE;  // a sheet's XML may pass 4 GiB
    // The rows wait in an (unlinked) file beside the workbook, not in a /tmp
    // that may be memory.
    fs::path folder = path_.parent_path().empty() ? fs::path(".") : path_.parent_path();
    tmpdir_ = folder.string();  // kept for the workbook's life
    options.tmpdir = tmpdir_.data();
    const std::string temp = run_.file()->temp_path().string();
    workbook_ = workbook_new_opt(temp.c_str(), &options);
    if (workbook_ == nullptr) {
      run_.Abort();
      return Status::Io("creating the workbook " + temp);
    }
    sheet_ = workbook_add_worksheet(workbook_, cfg_.sheet.c_str());
    if (sheet_ == nullptr) {
      Discard();
      return Status::Invalid(settings_.where + ": sheet '" + cfg_.sheet +
                             "' cannot be added (a sheet name has at most 31 characters and "
                             "none of [ ] : * ? / \\)");
    }
    date_format_ = workbook_add_format(workbook_);
    format_set_num_format(date_format_, cfg_.date_format.c_str());
    datetime_format_ = workbook_add_format(workbook_);
    format_set_num_format(datetime_format_, cfg_.datetime_format.c_str());
    if (!cfg_.number_format.empty()) {
      number_format_ = workbook_add_format(workbook_);
      format_set_num_format(number_format_, cfg_.number_format.c_str());
    }
    header_format_ = workbook_add_format(workbook_);
    format_set_bold(header_format_);
    columns_ = cfg_.columns;
    rows_ = 0;
    layout_done_ = false;
    held_.clear();
    return Status::OK();
  }

  Result<Value> Render(const WriteOp& op) override {
    if (!op.record) return Status::Internal("xlsx target: write without a record");
    const std::vector<ColumnConfig> columns = !columns_.empty()       ? columns_
                                              : !cfg_.columns.empty() ? cfg_.columns
                                                                      : ColumnsOf(*op.record);
    std::vector<Cell> cells;
    KEYONCE_RETURN_IF_ERROR(RowOf(*op.record, columns, 0, &cells));
    return RowValue(columns, cells);
  }

  Result<std::string> Checkpoint() override { return run_.Checkpoint(); }

  WriteResult Write(const WriteOp& op) override {
    WriteResult res;
    if (!workbook_) {
      res.status = Status::Internal("xlsx target: Write outside an open run");
      return res;
    }
    if (!op.record) {
      res.status = Status::Internal("xlsx target: write without a record");
      return res;
    }
    if (columns_.empty()) {
      columns_ = ColumnsOf(*op.record);
      if (columns_.size() > kMaxColumns) {
        res.status = Status::Permanent("the record has " + std::to_string(columns_.size()) +
                                       " fields; an Excel sheet holds at most 16,384 columns");
        columns_.clear();
        return res;
      }
    }
    const uint32_t first_data = cfg_.header ? 1 : 0;
    const uint64_t row = first_data + rows_ + held_.size();
    if (row >= kMaxRows) {
      res.status = Status::Permanent("the sheet " + where_.substr(0, where_.size() - 1) +
                                     " is full: Excel holds 1,048,576 rows; this record is not "
                                     "written");
      return res;
    }
    std::vector<Cell> cells;
    res.status = RowOf(*op.record, columns_, row, &cells);
    if (!res.status.ok()) return res;
    if (op.wants_reply) res.reply = RowValue(columns_, cells);
    if (!layout_done_) {
      held_.push_back(std::move(cells));
      if (held_.size() >= static_cast<size_t>(std::max<int64_t>(cfg_.width_sample_rows, 0))) {
        res.status = Layout();
      }
    } else {
      res.status = WriteRow(static_cast<uint32_t>(row), cells);
      if (res.status.ok()) ++rows_;
    }
    if (res.status.ok()) run_.Wrote();
    return res;
  }

  Result<CommitResult> Commit(uint64_t batch, bool final) override {
    if (final && workbook_) {
      if (run_.records() > 0) {
        if (!layout_done_) KEYONCE_RETURN_IF_ERROR(Layout());
        if (cfg_.autofilter && cfg_.header) {
          worksheet_autofilter(sheet_, 0, 0, rows_,
                               static_cast<lxw_col_t>(std::max<size_t>(columns_.size(), 1) - 1));
        }
      }
      lxw_error err = workbook_close(workbook_);
      workbook_ = nullptr;
      if (err != LXW_NO_ERROR) {
        run_.Abort();
        return Status::Io("writing the workbook " + path_.string() + ": " + lxw_strerror(err));
      }
    }
    return run_.Commit(batch, final, &marks_);
  }

  Result<std::optional<TargetMark>> Mark(const RunContext& ctx) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status().Wrap(settings_.where);
    return FileMarks::Read(*path, MarkKeeper::Key(ctx));
  }

  Result<RecoverResult> Recover(const RunContext& ctx, uint64_t first_pending,
                                const std::string& token) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status().Wrap(settings_.where);
    return ReplaceRun::Recover(*path, first_pending, token);
  }

  Status Close(bool /*success*/) override {
    Discard();
    return Status::OK();
  }

 private:
  static std::vector<ColumnConfig> ColumnsOf(const Record& rec) {
    std::vector<ColumnConfig> out;
    out.reserve(rec.size());
    for (const auto& kv : rec) {
      ColumnConfig c;
      c.field = kv.key();
      c.header = c.field;
      out.push_back(std::move(c));
    }
    return out;
  }

  // The cells of one record, checked against Excel's limits before any is
  // written. `row` (0-based) names the cells in messages.
  Status RowOf(const Record& rec, const std::vector<ColumnConfig>& columns, uint64_t row,
               std::vector<Cell>* cells) const {
    cells->clear();
    cells->reserve(columns.size());
    for (size_t i = 0; i < columns.size(); ++i) {
      const ColumnConfig& col = columns[i];
      auto it = rec.find(col.field);
      if (it == rec.end()) {
        cells->emplace_back();
        continue;
      }
      auto cell = CellOf(it->value(), col.type);
      if (!cell.ok()) {
        return Status::Permanent("field '" + col.field + "' (cell " + CellName(i, row) + ") " +
                                 cell.status().message());
      }
      if (cell->kind == Cell::Kind::kText) {
        size_t chars = Utf8Chars(cell->text);
        if (chars > kMaxCellChars) {
          return Status::Permanent("field '" + col.field + "' (cell " + CellName(i, row) +
                                   ") has " + std::to_string(chars) +
                                   " characters; an Excel cell holds at most 32,767");
        }
      }
      cells->push_back(std::move(cell).value());
    }
    if (cfg_.columns.empty()) {
      // Every field, in the first record's order: a later record with a field
      // that has no column would lose it silently.
      for (const auto& kv : rec) {
        bool known = false;
        for (const ColumnConfig& c : columns) known = known || c.field == kv.key();
        if (!known) {
          return Status::Permanent("field '" + std::string(kv.key()) +
                                   "' is not a column of the sheet (its columns come from the "
                                   "first record; set `columns` to choose them)");
        }
      }
    }
    return Status::OK();
  }

  std::string CellName(size_t col, uint64_t row) const {
    return where_ + ColumnLetters(col) + std::to_string(row + 1);
  }

  static Value RowValue(const std::vector<ColumnConfig>& columns, const std::vector<Cell>& cells) {
    Record out;
    out.reserve(columns.size());
    for (size_t i = 0; i < columns.size() && i < cells.size(); ++i) {
      out[columns[i].header] = CellValue(cells[i]);
    }
    return Value(std::move(out));
  }

  // Column widths, the header row and the frozen pane, then the rows held
  // back: constant-memory mode writes a row once the next one starts, so
  // what goes before the rows must be set first.
  Status Layout() {
    for (size_t i = 0; i < columns_.size(); ++i) {
      double width = columns_[i].width;
      if (width <= 0 && cfg_.width_sample_rows > 0) {
        size_t chars = cfg_.header ? Utf8Chars(columns_[i].header) : 0;
        for (const auto& cells : held_) {
          if (i < cells.size()) chars = std::max(chars, DisplayChars(cells[i], cfg_));
        }
        // Room for the autofilter's button; Excel's default is 8.43.
        width = std::clamp(static_cast<double>(chars) + (cfg_.autofilter ? 4 : 2), 8.43, 60.0);
      }
      if (width > 0) {
        lxw_col_t c = static_cast<lxw_col_t>(i);
        lxw_error err = worksheet_set_column(sheet_, c, c, std::min(width, 255.0), nullptr);
        if (err != LXW_NO_ERROR)
          return Failed(err, "setting the width of column " + ColumnLetters(i));
      }
    }
    if (cfg_.header) {
      for (size_t i = 0; i < columns_.size(); ++i) {
        lxw_error err = worksheet_write_string(sheet_, 0, static_cast<lxw_col_t>(i),
                                               columns_[i].header.c_str(), header_format_);
        if (err != LXW_NO_ERROR) return Failed(err, "writing the header cell " + CellName(i, 0));
      }
      if (cfg_.freeze_header) worksheet_freeze_panes(sheet_, 1, 0);
    }
    layout_done_ = true;
    const uint32_t first_data = cfg_.header ? 1 : 0;
    for (auto& cells : held_) {
      KEYONCE_RETURN_IF_ERROR(WriteRow(static_cast<uint32_t>(first_data + rows_), cells));
      ++rows_;
    }
    held_.clear();
    held_.shrink_to_fit();
    return Status::OK();
  }

  Status WriteRow(uint32_t row, const std::vector<Cell>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      const Cell& c = cells[i];
      const lxw_col_t col = static_cast<lxw_col_t>(i);
      lxw_error err = LXW_NO_ERROR;
      switch (c.kind) {
        case Cell::Kind::kBlank:
          break;
        case Cell::Kind::kText:
          // Always a string cell, never a formula: "=1+1" or "@SUM(A1)" is
          // the text itself (no formula injection).
          if (!c.text.empty())
            err = worksheet_write_string(sheet_, row, col, c.text.c_str(), nullptr);
          break;
        case Cell::Kind::kNumber:
          err = worksheet_write_number(sheet_, row, col, c.number,
                                       c.integral ? nullptr : number_format_);
          break;
        case Cell::Kind::kDate: {
          lxw_datetime dt = c.when;
          err = worksheet_write_datetime(sheet_, row, col, &dt, date_format_);
          break;
        }
        case Cell::Kind::kDateTime: {
          lxw_datetime dt = c.when;
          err = worksheet_write_datetime(sheet_, row, col, &dt, datetime_format_);
          break;
        }
        case Cell::Kind::kBoolean:
          err = worksheet_write_boolean(sheet_, row, col, c.flag ? 1 : 0, nullptr);
          break;
      }
      if (err != LXW_NO_ERROR) return Failed(err, "writing cell " + CellName(i, row));
    }
    return Status::OK();
  }

  // Values are checked against Excel's limits before a row is written, so
  // libxlsxwriter failing here is the file's trouble (a full disk), not the
  // record's: the run stops, and the half-written sheet is never renamed.
  Status Failed(lxw_error err, const std::string& doing) const {
    return Status::Io(doing + " of " + path_.string() + ": " + lxw_strerror(err));
  }

  void Discard() {
    if (workbook_) {
      lxw_workbook_free(workbook_);
      workbook_ = nullptr;
    }
    run_.Abort();
    held_.clear();
  }

  Settings settings_;
  TargetConfig cfg_;
  fs::path path_;
  std::string where_;   // "out.xlsx:Ark1!"
  std::string tmpdir_;  // libxlsxwriter's folder for the rows
  ReplaceRun run_;
  MarkKeeper marks_;
  lxw_workbook* workbook_ = nullptr;
  lxw_worksheet* sheet_ = nullptr;
  lxw_format* date_format_ = nullptr;
  lxw_format* datetime_format_ = nullptr;
  lxw_format* number_format_ = nullptr;
  lxw_format* header_format_ = nullptr;
  std::vector<ColumnConfig> columns_;
  std::vector<std::vector<Cell>> held_;  // rows held back until the widths are set
  bool layout_done_ = false;
  uint64_t rows_ = 0;  // data rows written to the sheet
};

Result<TargetConfig> ReadConfig(const Settings& s) {
  TargetConfig c;
  c.sheet = s.String("sheet").value_or("Ark1");
  if (c.sheet.empty() || Utf8Chars(c.sheet) > 31 ||
      c.sheet.find_first_of("[]:*?/\\") != std::string::npos || c.sheet.front() == '\'' ||
      c.sheet.back() == '\'') {
    return Status::Invalid(s.where + ": sheet '" + c.sheet +
                           "' is not a valid Excel sheet name (1 to 31 characters, none of "
                           "[ ] : * ? / \\, not starting or ending with ')");
  }
  c.header = s.Bool("header").value_or(true);
  c.date_format = s.String("date_format").value_or(c.date_format);
  c.datetime_format = s.String("datetime_format").value_or(c.datetime_format);
  c.number_format = s.String("number_format").value_or("");
  c.freeze_header = s.Bool("freeze_header").value_or(true);
  c.autofilter = s.Bool("autofilter").value_or(false);
  c.width_sample_rows = s.Int("width_sample_rows").value_or(100);
  if (c.width_sample_rows < 0 || c.width_sample_rows > 10000) {
    return Status::Invalid(s.where + ": width_sample_rows must be from 0 to 10000");
  }
  c.create_dirs = s.Bool("create_dirs").value_or(false);
  const Value* raw = s.Raw("columns");
  if (raw && !raw->is_null()) {
    if (!raw->is_array()) return Status::Invalid(s.where + ": columns must be a list");
    size_t i = 0;
    for (const Value& v : raw->get_array()) {
      const std::string part = "[" + std::to_string(i++) + "]";
      const int line = s.Line("columns", part);
      const std::string where =
          s.where + ": columns" + part + (line > 0 ? " (line " + std::to_string(line) + ")" : "");
      ColumnConfig col;
      if (v.is_object()) {
        for (const auto& kv : v.get_object()) {
          const std::string key(kv.key());
          if (key == "width") {
            if (!kv.value().is_number()) return Status::Invalid(where + ".width must be a number");
            col.width = kv.value().to_number<double>();
            if (col.width <= 0 || col.width > 255) {
              return Status::Invalid(where + ".width must be above 0 and at most 255");
            }
            continue;
          }
          if (key != "field" && key != "header" && key != "type") {
            return Status::Invalid(where + ": unknown key '" + key + "'" +
                                   DidYouMean(key, {"field", "header", "type", "width"}));
          }
          if (kv.value().is_null() || kv.value().is_object() || kv.value().is_array()) {
            return Status::Invalid(where + "." + key + " must be text");
          }
          std::string text =
              kv.value().is_string() ? std::string(kv.value().get_string()) : ToText(kv.value());
          if (key == "field") {
            col.field = text;
          } else if (key == "header") {
            col.header = text;
          } else if (key == "type") {
            auto t = ParseType(text);
            if (!t) {
              return Status::Invalid(where + ".type '" + text +
                                     "' is not one of auto, text, number, integer, date, "
                                     "datetime, boolean");
            }
            col.type = *t;
          }
        }
      } else {
        return Status::Invalid(where + " must be a mapping with a field");
      }
      if (col.field.empty()) return Status::Invalid(where + " has no field");
      if (col.header.empty()) col.header = col.field;
      for (const ColumnConfig& seen : c.columns) {
        if (seen.header == col.header) {
          return Status::Invalid(where + ": header '" + col.header + "' is used twice");
        }
      }
      c.columns.push_back(std::move(col));
    }
    if (c.columns.size() > kMaxColumns) {
      return Status::Invalid(s.where + ": columns: an Excel sheet holds at most 16,384 columns");
    }
  }
  return c;
}

Result<std::unique_ptr<Target>> MakeLocalTarget(const Settings& settings) {
  auto cfg = ReadConfig(settings);
  if (!cfg.ok()) return cfg.status();
  return std::unique_ptr<Target>(new XlsxTarget(settings, std::move(cfg).value()));
}

}  // namespace

Result<std::unique_ptr<Target>> MakeTarget(const Settings& settings) {
  // sftp://, ftp://: the workbook is written locally and uploaded whole at
  // the end of the run; the file on the server is not read (replace).
  if (net::IsRemotePath(settings)) {
    return net::MakeRemoteTarget(settings, MakeLocalTarget, /*keep_existing=*/false);
  }
  return MakeLocalTarget(settings);
}

ComponentSpec TargetSpec() {
  ComponentSpec spec;
  spec.summary =
      "Writes the run's records as the rows of one sheet of a new .xlsx workbook, which "
      "replaces the file atomically at the end of the run (a run that writes no rows leaves the "
      "file untouched). The workbook holds the records this run wrote: the journal keeps a "
      "record from being written twice, so a rerun with nothing new leaves the file alone and a "
      "run that finds 3 new records makes a workbook of those 3. Written with libxlsxwriter in "
      "constant-memory mode: memory stays flat "
      "however many rows. Cells are typed: numbers as numbers, ISO dates and date-times as real "
      "Excel dates with a Danish format (dd-mm-yyyy, dd-mm-yyyy hh:mm), booleans as TRUE/FALSE, "
      "and text as text cells, never as formulas: a value such as =1+1, +45, -x or @SUM(A1) is "
      "the text itself (Excel shows it as typed and does not run it; it would only become a "
      "formula if a person edited the cell and pressed Enter). A record that Excel cannot hold "
      "(a cell over 32,767 characters, a row past 1,048,576, a value that does not fit its "
      "column's type) is quarantined with a message naming the field and the cell "
      "(out.xlsx:Ark1!C17), never its value.";
  FieldSpec path =
      FilePathField("Workbook to write (replaced whole at the end of the run).", "out/fravaer.xlsx",
                    "out/fravaer_{{ run.started_at | format_date('%Y-%m') }}.xlsx");
  path.description +=
      " " + net::RemotePathNote(/*target=*/true) + " The file on the server is replaced, not read.";
  spec.fields = {
      path,
      FieldSpec::String("sheet")
          .Default("Ark1")
          .Describe("Name of the sheet (its tab): 1 to 31 characters, none of [ ] : * ? / \\.")
          .Example("Fravær"),
      FieldSpec::ObjectList(
          "columns",
          {
              FieldSpec::String("field")
                  .Required()
                  .Describe("The record field written in this column.")
                  .Example("employee_id"),
              FieldSpec::String("header")
                  .Describe("Text of the header cell. Default: the field's name.")
                  .Example("Medarbejdernr"),
              FieldSpec::Enum("type",
                              {"auto", "text", "number", "integer", "date", "datetime", "boolean"})
                  .Default("auto")
                  .Describe(
                      "How the value becomes a cell. auto: JSON numbers and booleans as they "
                      "are (integers over 15 digits, which Excel would round, as text), ISO "
                      "dates (2024-03-01) and date-times (2024-03-01T08:30) as dates, text that "
                      "is plainly a quantity (-?(0|[1-9] and at most 6 more digits)(.digits)?, "
                      "e.g. 37, 7.5, -12.25) as a number, all other text as text: a leading "
                      "zero (0101901234, 007), eight or more digits (phone, CPR and account "
                      "numbers), +, spaces. text: always text. number / integer: a number (text "
                      "with . or , as decimal mark is converted; an integer over 15 digits is "
                      "refused). date / datetime: an ISO date or date-time, as an Excel date. "
                      "boolean: true/false, 1/0, ja/nej. Empty text and null leave the cell "
                      "empty; a value that does not fit quarantines the record.")
                  .Example("text"),
              FieldSpec::Number("width")
                  .Describe("Column width in Excel's units (characters of the default font). "
                            "Default: estimated (see width_sample_rows).")
                  .Example("14"),
          })
          .Describe(
              "The sheet's columns, in order, each a mapping: field (required: the record "
              "field), header (the header cell's text; default the field's name), width (in "
              "Excel's units, characters of the default font; default estimated, see "
              "width_sample_rows) and type, how the value becomes a cell: "
              "auto (default): JSON numbers and booleans as they are (an integer over 15 digits, "
              "which Excel would round, as text), ISO dates (2024-03-01) and date-times "
              "(2024-03-01T08:30) as dates, text that is plainly a quantity (an optional minus, "
              "0 or up to 7 digits not starting with 0, optional .decimals: 37, 7.5, -12.25) as "
              "a number, all other text as text: a leading zero (0101901234, 007), 8 or more "
              "digits (phone, CPR and account numbers), a +, spaces. text: always text. number, "
              "integer: a number (text with . or , as decimal mark is converted; an integer over "
              "15 digits is refused). date, datetime: an ISO date or date-time as an Excel date "
              "(date drops the time). boolean: true/false, 1/0, ja/nej, yes/no. Null and empty "
              "text leave the cell empty; a value that does not fit its type quarantines the "
              "record. Absent: every field of the first record, in its order, with type auto; a "
              "later record with a field not among them is quarantined (set `columns` to "
              "choose).")
          .Example("[{field: employee_id, header: Medarbejdernr, type: text, width: 14}, "
                   "{field: from_date, header: Fra dato, type: date}]"),
      FieldSpec::Bool("header")
          .Default("true")
          .Describe("Write a header row (bold) above the data. false: the first row is data.")
          .Example("false"),
      FieldSpec::String("date_format")
          .Default("dd-mm-yyyy")
          .Describe("Excel number format of date cells (what the cell shows; the value is a "
                    "real date).")
          .Example("dd.mm.yyyy"),
      FieldSpec::String("datetime_format")
          .Default("dd-mm-yyyy hh:mm")
          .Describe("Excel number format of date-time cells.")
          .Example("dd-mm-yyyy hh:mm:ss"),
      FieldSpec::String("number_format")
          .Describe("Excel number format of numbers with decimals (whole numbers stay General). "
                    "Default: General. Excel shows the decimal mark of the reader's locale, "
                    "so #,##0.00 reads 1.234,50 in a Danish Excel.")
          .Example("\"#,##0.00\""),
      FieldSpec::Bool("freeze_header")
          .Default("true")
          .Describe("Keep the header row in view while scrolling (with header: true).")
          .Example("false"),
      FieldSpec::Bool("autofilter")
          .Default("false")
          .Describe("Put filter buttons on the header row over all the rows written.")
          .Example("true"),
      FieldSpec::Int("width_sample_rows")
          .Default("100")
          .Describe(
              "Columns without a width get one estimated from the header and the first this "
              "many rows (the longest text, 8.43 to 60 characters). In constant-memory mode a "
              "column's width must be set before the first row is written, so these rows are "
              "held in memory until the widths are known; rows after them do not widen a "
              "column. 0: no estimate, Excel's default width.")
          .Example("500"),
      CreateDirsField(),
  };
  for (auto& f : net::RemoteFields()) spec.fields.push_back(std::move(f));
  spec.example_yaml =
      "- name: absence_sheet\n"
      "  type: xlsx\n"
      "  path: out/fravaer.xlsx\n"
      "  sheet: Fravær\n"
      "  autofilter: true\n"
      "  columns:\n"
      "    - {field: employee_id, header: Medarbejdernr, type: text}\n"
      "    - {field: from_date, header: Fra dato, type: date}\n"
      "    - {field: hours, header: Timer, type: number}\n";
  return spec;
}

}  // namespace keyonce::connectors::xlsx
