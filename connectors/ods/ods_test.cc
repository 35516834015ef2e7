// The ods source against spreadsheets made by LibreOffice from the
// hand-written testdata/kinds.fods, and by testdata/make_fixtures.py (run
// once per ctest run as the ods_fixtures fixture; run by the first test here
// when the binary is started by hand). The acceptance test reads the same
// sheet through the ods and xlsx sources and compares both with the csv
// LibreOffice exported.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "keyonce/connector.h"
#include "keyonce/testing.h"
#include "tests/support/sanitizers.h"

namespace keyonce {
namespace {

namespace fs = std::filesystem;

class NullLog : public Log {
 public:
  void Info(const std::string&) override {}
  void Warn(const std::string&) override {}
};

long PeakRssKib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

const fs::path& Fixtures() {
  static const fs::path dir = [] {
    fs::path d = ODS_FIXTURES;
    if (!fs::exists(d / "big.ods")) {
      std::string cmd = std::string("/usr/bin/python3 ") + ODS_MAKE_FIXTURES + " " + d.string() +
                        " " + std::to_string(ODS_BIG_ROWS);
      if (std::system(cmd.c_str()) != 0) throw std::runtime_error("making fixtures failed");
    }
    return d;
  }();
  return dir;
}

struct Read : testing::SourceRead {
  std::string Json(size_t i) const { return ToJson(items.at(i).record); }
};

class OdsSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_.recipe = "r";
    ctx_.run_id = "1";
    ctx_.log = &log_;
  }

  Result<std::unique_ptr<Source>> Make(const std::string& yaml, const std::string& type = "ods") {
    const ConnectorDef* def = Registry::Global().Find(type);
    if (!def || !def->source) return Status::NotFound(type + " connector not registered");
    testing::SettingsYaml opt;
    opt.base_dir = Fixtures();
    auto settings = testing::SettingsFromYaml(def->source->fields, yaml, opt);
    if (!settings.ok()) return settings.status();
    return def->make_source(*settings);
  }

  Read ReadAll(const std::string& yaml, const std::string& type = "ods") {
    return Read{testing::ReadSource(Make(yaml, type), ctx_)};
  }

  NullLog log_;
  RunContext ctx_;
};

TEST_F(OdsSourceTest, RegisteredWithDocumentedSettings) {
  const ConnectorDef* def = Registry::Global().Find("ods");
  ASSERT_NE(def, nullptr);
  ASSERT_TRUE(def->source);
  EXPECT_FALSE(def->target);
  EXPECT_TRUE(def->lookup && def->make_lookup);
  std::string yaml;
  for (const auto& f : def->source->fields) {
    EXPECT_FALSE(f.description.empty()) << f.name;
    EXPECT_FALSE(f.example.empty()) << f.name;
    // move_to and remove_after exclude each other: the example moves.
    if (f.name != "remove_after") yaml += f.name + ": " + f.example + "\n";
  }
  testing::SettingsYaml opt;
  opt.params = {"month"};
  auto settings = testing::SettingsFromYaml(def->source->fields, yaml, opt);
  ASSERT_TRUE(settings.ok()) << settings.status().ToString();
  EXPECT_TRUE(def->make_source(*settings).ok());
}

TEST_F(OdsSourceTest, CellsAreTypedAsLibreOfficeStoresThem) {
  Read r = ReadAll("path: kinds.ods\n");
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  ASSERT_EQ(r.items.size(), 6u);
  // Text with Danish letters, integer, decimal, percentage, currency,
  // boolean, date, time, date and time, a formula's cached number.
  EXPECT_EQ(r.Json(0), R"({"Navn":"Søren Æblegård","Antal":42,"Decimal":12.5,"Procent":0.25,)"
                       R"("Beløb":1234.5,"Aktiv":true,"Dato":"2024-03-01","Tid":"08:30:00",)"
                       R"("DatoTid":"2024-03-01T08:30:00","Formel":84,"Note":"æøå ÆØÅ"})");
  EXPECT_EQ(r.items[0].position, "kinds.ods:Ark1!2");
  EXPECT_TRUE(r.items[0].record.at("Antal").is_int64());
  // Two paragraphs joined by a newline, two spaces (text:s) kept; an empty
  // cell inside the row is null; hours past 24; a formula's cached text.
  EXPECT_EQ(r.Json(1),
            R"({"Navn":"Kim Ågård  jr.\nlinje 2","Antal":-7,"Decimal":null,"Procent":1.5,)"
            R"("Beløb":-20,"Aktiv":false,"Dato":"1999-12-31","Tid":"36:15:00",)"
            R"("DatoTid":"2024-12-24T23:59:59","Formel":"Søren Æblegård!","Note":"tabher"})");
  // The hidden row is read (hidden_rows: read).
  EXPECT_EQ(r.items[2].record.at("Navn"), Value("Skjult række"));
  // Error cells quarantine their rows, naming the cell, not other values.
  EXPECT_TRUE(r.items[3].rejected);
  EXPECT_EQ(r.items[3].reason, "cell kinds.ods:Ark1!B5 holds the error #DIV/0!");
  EXPECT_EQ(r.items[3].position, "kinds.ods:Ark1!5");
  EXPECT_TRUE(r.items[4].rejected);
  EXPECT_EQ(r.items[4].reason, "cell kinds.ods:Ark1!B6 holds the error Err:502");
  // The million repeated empty rows under the table are nothing.
  EXPECT_EQ(r.Json(5), R"({"Navn":"sidst","Antal":3,"Decimal":0.1,"Procent":null,"Beløb":null,)"
                       R"("Aktiv":null,"Dato":null,"Tid":null,"DatoTid":null,"Formel":null,)"
                       R"("Note":null})");
  EXPECT_EQ(r.items[5].position, "kinds.ods:Ark1!7");
}

TEST_F(OdsSourceTest, ErrorCellsCanReadAsEmptyAndHiddenRowsBeSkipped) {
  Read r = ReadAll("path: kinds.ods\nerrors: empty\nhidden_rows: skip\n");
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  ASSERT_EQ(r.items.size(), 5u);
  EXPECT_FALSE(r.items[2].rejected);
  EXPECT_EQ(r.items[2].record.at("Navn"), Value("fejl"));
  EXPECT_TRUE(r.items[2].record.at("Antal").is_null());
  EXPECT_EQ(r.items[2].position, "kinds.ods:Ark1!5");
}

TEST_F(OdsSourceTest, SheetByNameOrVisiblePositionHiddenOnlyByName) {
  Read by_pos = ReadAll("path: kinds.ods\nsheet: \"2\"\n");  // Skjult is hidden: Fletning
  ASSERT_TRUE(by_pos.error.ok()) << by_pos.error.ToString();
  ASSERT_FALSE(by_pos.items.empty());
  EXPECT_EQ(by_pos.items[0].position, "kinds.ods:Fletning!2");
  Read hidden = ReadAll("path: kinds.ods\nsheet: Skjult\n");
  ASSERT_TRUE(hidden.error.ok()) << hidden.error.ToString();
  ASSERT_EQ(hidden.items.size(), 1u);
  EXPECT_EQ(hidden.Json(0), R"({"Hemmelig":"x"})");
  Read missing = ReadAll("path: kinds.ods\nsheet: Fletnig\n");
  EXPECT_EQ(missing.error.code(), Status::Code::kInvalid);
  EXPECT_EQ(missing.error.message(),
            "kinds.ods has no sheet named 'Fletnig'; its sheets: 'Ark1', 'Fletning', "
            "'Afdelinger'; did you mean 'Fletning'?");
  Read too_far = ReadAll("path: kinds.ods\nsheet: \"4\"\n");
  EXPECT_NE(too_far.error.message().find("has 3 visible sheet(s); there is no sheet 4"),
            std::string::npos)
      << too_far.error.message();
}

TEST_F(OdsSourceTest, MergedCellsTopLeftOrEmpty) {
  Read top = ReadAll("path: kinds.ods\nsheet: Fletning\n");
  ASSERT_TRUE(top.error.ok()) << top.error.ToString();
  ASSERT_EQ(top.items.size(), 4u);
  EXPECT_EQ(top.Json(1), R"({"Afdeling":"Skole","Navn":"Bo"})");  // row 3: hidden, covered
  EXPECT_EQ(top.Json(2), R"({"Afdeling":"Skole","Navn":"Carl"})");
  EXPECT_EQ(top.Json(3), R"({"Afdeling":"Rådhus","Navn":"Dorte"})");
  Read empty = ReadAll("path: kinds.ods\nsheet: Fletning\nmerged_cells: empty\n");
  ASSERT_TRUE(empty.error.ok()) << empty.error.ToString();
  EXPECT_EQ(empty.Json(2), R"({"Afdeling":null,"Navn":"Carl"})");
  Read skip = ReadAll("path: kinds.ods\nsheet: Fletning\nhidden_rows: skip\n");
  ASSERT_EQ(skip.items.size(), 3u);
  EXPECT_EQ(skip.items[1].position, "kinds.ods:Fletning!4");
}

TEST_F(OdsSourceTest, RepeatedRowsAndCellsAreThatManyAndColumnsStopAtXfd) {
  Read r = ReadAll("path: repeated.ods\nheader_row: 0\nfirst_row: 2\n");
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  ASSERT_EQ(r.items.size(), 4u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r.Json(i), R"({"A":7,"B":7})");
    EXPECT_EQ(r.items[i].position, "repeated.ods:Ark1!" + std::to_string(i + 2));
  }
  // Two empty rows (5 and 6), then a cell repeated past column XFD: cut there.
  EXPECT_EQ(r.items[3].position, "repeated.ods:Ark1!7");
  EXPECT_EQ(r.items[3].record.size(), 16384u);
  EXPECT_EQ(r.items[3].record.at("XFD"), Value("y"));
}

TEST_F(OdsSourceTest, MalformedRowIsQuarantinedAndTheSheetReadOn) {
  Read r = ReadAll("path: bad_row.ods\n");
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  ASSERT_EQ(r.items.size(), 3u);
  EXPECT_FALSE(r.items[0].rejected);
  EXPECT_TRUE(r.items[1].rejected);
  EXPECT_EQ(r.items[1].position, "bad_row.ods:Ark1!3");
  EXPECT_EQ(r.items[1].reason.rfind("row 3 of bad_row.ods:Ark1 is malformed XML", 0), 0u)
      << r.items[1].reason;
  EXPECT_EQ(r.items[2].record.at("Navn"), Value("Hans Ørsted"));
  Read header = ReadAll("path: bad_header.ods\n");
  EXPECT_EQ(header.error.code(), Status::Code::kInvalid);
  EXPECT_EQ(header.error.message().rfind("the header row 1 of bad_header.ods:Ark1 is malformed", 0),
            0u)
      << header.error.message();
}

TEST_F(OdsSourceTest, FilesThatAreNotSpreadsheetsGetClearErrors) {
  Read missing = ReadAll("path: nothere.ods\n");
  EXPECT_EQ(missing.error.code(), Status::Code::kNotFound);
  Read truncated = ReadAll("path: truncated.ods\n");
  EXPECT_EQ(truncated.error.code(), Status::Code::kInvalid);
  EXPECT_NE(truncated.error.message().find("truncated.ods is not an ods file"), std::string::npos)
      << truncated.error.message();
  Read notzip = ReadAll("path: notzip.ods\n");
  EXPECT_NE(notzip.error.message().find("notzip.ods is not an ods file"), std::string::npos)
      << notzip.error.message();
  // An Excel workbook named .ods.
  fs::copy_file(Fixtures() / "kinds.xlsx", Fixtures() / "excel.ods",
                fs::copy_options::overwrite_existing);
  Read excel = ReadAll("path: excel.ods\n");
  EXPECT_EQ(excel.error.message(), "excel.ods is not an ods file: it has no content.xml");
}

TEST_F(OdsSourceTest, TextRunsTabsLineBreaksAndSpacesAreKept) {
  Read r = ReadAll("path: text.ods\n");
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  ASSERT_EQ(r.items.size(), 1u);
  // The annotation (a comment on the cell) is not its text.
  EXPECT_EQ(r.items[0].record.at("Tekst"), Value("a\tb\nc d  e"));
}

TEST_F(OdsSourceTest, PasswordProtectedFileIsRefusedSayingSo) {
  Read r = ReadAll("path: encrypted.ods\n");
  EXPECT_EQ(r.error.code(), Status::Code::kInvalid);
  EXPECT_EQ(r.error.message(),
            "encrypted.ods is encrypted (password-protected); save it without a password");
}

TEST_F(OdsSourceTest, ZipBombIsRefused) {
  Read r = ReadAll("path: bomb.ods\n");
  EXPECT_EQ(r.error.code(), Status::Code::kInvalid);
  EXPECT_NE(r.error.message().find("bomb.ods: content.xml inflates more than 100 times its "
                                   "compressed size"),
            std::string::npos)
      << r.error.message();
}

TEST_F(OdsSourceTest, ABigSheetStreamsInOrderWithFlatMemory) {
  const long before = PeakRssKib();
  auto src = Make("path: big.ods\n");
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  ASSERT_TRUE((*src)->Open(ctx_).ok());
  int64_t n = 0;
  while (true) {
    SourceItem item;
    auto r = (*src)->Next(&item);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (!*r) break;
    ++n;
    ASSERT_EQ(item.record.at("id").as_int64(), n);
    ASSERT_EQ(item.record.at("beløb").as_double(), static_cast<double>(n) + 0.5);
  }
  EXPECT_EQ(n, ODS_BIG_ROWS);
  (*src)->Close();
  const long grown = PeakRssKib() - before;
#if defined(KEYONCE_ASAN) || defined(KEYONCE_TSAN)
  (void)grown;  // a sanitizer's shadow memory is resident: RSS says nothing
#else
  // content.xml inflates to about 30 MiB; reading it must not hold it.
  EXPECT_LT(grown, 8 * 1024) << "peak RSS grew by " << grown << " KiB";
#endif
}

// ------------------------------------------------- the same sheet, three ways

std::vector<std::vector<std::string>> ReadCsv(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  std::vector<std::vector<std::string>> rows(1);
  std::string cell;
  bool quoted = false, row_open = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    row_open = true;
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(std::move(cell));
      cell.clear();
    } else if (c == '\n') {
      rows.back().push_back(std::move(cell));
      cell.clear();
      rows.emplace_back();
      row_open = false;
    } else {
      cell += c;
    }
  }
  if (row_open) rows.back().push_back(cell);
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

// A value as the csv LibreOffice exported (cells as shown) has it. The
// differences are the sources' design, kept on purpose: a boolean is
// true/false (shown TRUE/FALSE), a percentage the fraction 0.25 (shown 25%),
// an amount a number (shown "1234.50 kr."), so the column's display format
// is applied here; dates and times match because the fixture shows them in
// ISO form (a source gives ISO whatever the display format).
std::string Shown(const Value& v, const std::string& column) {
  if (v.is_null()) return "";
  if (v.is_bool()) return v.as_bool() ? "TRUE" : "FALSE";
  if (v.is_string()) return std::string(v.get_string());
  double d = v.is_int64() ? static_cast<double>(v.as_int64()) : v.as_double();
  char b[64];
  if (column == "Procent") {
    std::snprintf(b, sizeof b, "%.0f%%", d * 100);
  } else if (column == "Beløb") {
    std::snprintf(b, sizeof b, "%.2f kr.", d);
  } else {
    std::snprintf(b, sizeof b, "%.15g", d);
  }
  return b;
}

// What the xls source gives instead of the csv's text, where FreeXL cannot
// read what LibreOffice wrote (documented in the xls connector): formulas
// and error cells read as empty (FreeXL gives no cached values), a boolean
// as 1/0, an elapsed time past 24 hours as its time of day.
std::string XlsShown(const std::string& column, const std::string& csv) {
  if (column == "Formel") return "";
  if (csv == "#DIV/0!" || csv == "Err:502") return "";
  if (csv == "TRUE") return "1";
  if (csv == "FALSE") return "0";
  if (csv == "36:15:00") return "12:15:00";
  return csv;
}

TEST_F(OdsSourceTest, TheSameSheetThroughOdsXlsxAndXlsMatchesLibreOfficesCsv) {
  auto csv = ReadCsv(Fixtures() / "kinds-Ark1.csv");
  ASSERT_EQ(csv.size(), 7u);  // the header and 6 rows
  const std::vector<std::string>& header = csv[0];
  for (const std::string type : {"ods", "xlsx", "xls"}) {
    SCOPED_TRACE(type);
    Read r = ReadAll("path: kinds." + type + "\n", type);
    ASSERT_TRUE(r.error.ok()) << r.error.ToString();
    ASSERT_EQ(r.items.size(), csv.size() - 1);
    for (size_t i = 0; i < r.items.size(); ++i) {
      const SourceItem& item = r.items[i];
      const std::vector<std::string>& want = csv[i + 1];
      EXPECT_EQ(item.position, "kinds." + type + ":Ark1!" + std::to_string(i + 2));
      if (item.rejected) {
        // An error cell: the reason names the cell and the error as shown.
        // Excel has no Err:502 (invalid argument): LibreOffice saves it to
        // xlsx as #VALUE!, which the xlsx source then reports.
        std::string shown = type == "xlsx" && want[1] == "Err:502" ? "#VALUE!" : want[1];
        EXPECT_NE(item.reason.find("holds the error " + shown), std::string::npos) << item.reason;
        EXPECT_NE(type, "xls");
        continue;
      }
      ASSERT_EQ(item.record.size(), header.size());
      for (size_t c = 0; c < header.size(); ++c) {
        std::string expected = c < want.size() ? want[c] : "";
        if (type == "xls") expected = XlsShown(header[c], expected);
        EXPECT_EQ(Shown(item.record.at(header[c]), header[c]), expected)
            << "row " << i + 2 << " column " << header[c];
      }
    }
  }
}

TEST_F(OdsSourceTest, DatesOfA1904WorkbookAreTheSameInEveryFormat) {
  // date1904.fods counts from 1904-01-01: its .xlsx and .xls carry the 1904
  // flag, and their serials are 1,462 days smaller than in the 1900 system.
  for (const std::string type : {"ods", "xlsx", "xls"}) {
    SCOPED_TRACE(type);
    Read r = ReadAll("path: date1904." + type + "\n", type);
    ASSERT_TRUE(r.error.ok()) << r.error.ToString();
    ASSERT_EQ(r.items.size(), 1u);
    EXPECT_EQ(r.Json(0), R"({"Dato":"2024-03-01","Serie":7})");
  }
}

TEST_F(OdsSourceTest, XlsSheetsByNameOrPositionAndClearErrors) {
  // FreeXL does not say which sheets are hidden: Skjult counts.
  Read by_pos = ReadAll("path: kinds.xls\nsheet: \"3\"\n", "xls");
  ASSERT_TRUE(by_pos.error.ok()) << by_pos.error.ToString();
  ASSERT_EQ(by_pos.items.size(), 4u);
  EXPECT_EQ(by_pos.items[0].position, "kinds.xls:Fletning!2");
  EXPECT_EQ(by_pos.Json(2), R"({"Afdeling":null,"Navn":"Carl"})");  // merges as stored
  Read missing = ReadAll("path: kinds.xls\nsheet: Fletnig\n", "xls");
  EXPECT_NE(missing.error.message().find("kinds.xls has no sheet named 'Fletnig'; its sheets: "
                                         "'Ark1', 'Skjult', 'Fletning', 'Afdelinger'; did you "
                                         "mean 'Fletning'?"),
            std::string::npos)
      << missing.error.message();
  Read nothere = ReadAll("path: nothere.xls\n", "xls");
  EXPECT_EQ(nothere.error.code(), Status::Code::kNotFound);
  fs::copy_file(Fixtures() / "kinds.ods", Fixtures() / "zip.xls",
                fs::copy_options::overwrite_existing);
  Read zip = ReadAll("path: zip.xls\n", "xls");
  EXPECT_EQ(zip.error.code(), Status::Code::kInvalid);
  EXPECT_NE(zip.error.message().find("zip.xls cannot be read: it is a zip archive (an .xlsx or "
                                     ".ods file?), not an .xls file; use type xlsx or ods"),
            std::string::npos)
      << zip.error.message();
  {
    std::ifstream in(Fixtures() / "kinds.xls", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(Fixtures() / "half.xls", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  Read half = ReadAll("path: half.xls\n", "xls");
  EXPECT_EQ(half.error.code(), Status::Code::kInvalid);
  EXPECT_NE(half.error.message().find("half.xls"), std::string::npos) << half.error.message();
  Read big = ReadAll("path: kinds.xls\nmax_file_bytes: 1000\n", "xls");
  EXPECT_EQ(big.error.code(), Status::Code::kInvalid);
  EXPECT_NE(big.error.message().find("kinds.xls is 0 MiB; an .xls file is read into memory "
                                     "whole, and max_file_bytes allows 1000 bytes"),
            std::string::npos)
      << big.error.message();
}

// ---------------------------------------------------------------- lookup

TEST_F(OdsSourceTest, LookupTableFromASheetOfAnOdsOrXlsFile) {
  for (const std::string type : {"ods", "xls"}) {
    SCOPED_TRACE(type);
    const ConnectorDef* def = Registry::Global().Find(type);
    ASSERT_TRUE(def && def->lookup);
    testing::SettingsYaml opt;
    opt.base_dir = Fixtures();
    auto settings = testing::SettingsFromYaml(
        def->lookup->fields, "path: kinds." + type + "\nsheet: Afdelinger\nkey: Afdelingskode\n",
        opt);
    ASSERT_TRUE(settings.ok()) << settings.status().ToString();
    auto l = def->make_lookup(*settings);
    ASSERT_TRUE(l.ok()) << l.status().ToString();
    ASSERT_TRUE((*l)->Open(ctx_).ok());
    auto twenty = (*l)->Find(Value("20"));
    ASSERT_TRUE(twenty.ok() && *twenty);
    EXPECT_EQ(ToJson(**twenty), R"({"Afdelingskode":20,"Navn":"Teknik og Miljø"})");
    auto none = (*l)->Find(Value(99));
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(*none);
  }
}

}  // namespace
}  // namespace keyonce
