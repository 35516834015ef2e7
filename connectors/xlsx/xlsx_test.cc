// The xlsx source against workbooks made by openpyxl (testdata/make_fixtures.py,
// run once per ctest run as the xlsx_fixtures fixture; run by the first test
// here when the binary is started by hand).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

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

// Peak resident set size of this process (VmHWM), in KiB.
long PeakRssKib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

const fs::path& Fixtures() {
  static const fs::path dir = [] {
    fs::path d = XLSX_FIXTURES;
    if (!fs::exists(d / "kinds.xlsx")) {
      std::string cmd = std::string("/usr/bin/python3 ") + XLSX_MAKE_FIXTURES + " " + d.string();
      if (std::system(cmd.c_str()) != 0) throw std::runtime_error("making fixtures failed");
    }
    return d;
  }();
  return dir;
}

struct Read : testing::SourceRead {
  std::string Json(size_t i) const { return ToJson(items.at(i).record); }
};

class XlsxSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ctx_.recipe = "r";
    ctx_.run_id = "1";
    ctx_.log = &log_;
  }

  Result<std::unique_ptr<Source>> Make(const std::string& yaml) {
    const ConnectorDef* def = Registry::Global().Find("xlsx");
    if (!def || !def->source) return Status::NotFound("xlsx connector not registered");
    testing::SettingsYaml opt;
    opt.base_dir = Fixtures();
    auto settings = testing::SettingsFromYaml(def->source->fields, yaml, opt);
    if (!settings.ok()) return settings.status();
    return def->make_source(*settings);
  }

  Read ReadAll(const std::string& yaml, size_t max_items = SIZE_MAX) {
    return Read{testing::ReadSource(Make(yaml), ctx_, max_items)};
  }

  NullLog log_;
  RunContext ctx_;
};

TEST_F(XlsxSourceTest, RegisteredWithDocumentedSettings) {
  const ConnectorDef* def = Registry::Global().Find("xlsx");
  ASSERT_NE(def, nullptr);
  ASSERT_TRUE(def->source);
  EXPECT_TRUE(def->target);  // xlsx_target_test.cc
  EXPECT_TRUE(def->lookup && def->make_lookup);
  std::string yaml;
  for (const auto& f : def->source->fields) {
    EXPECT_FALSE(f.description.empty()) << f.name;
    EXPECT_FALSE(f.example.empty()) << f.name;
    // move_to and remove_after exclude each other: the example moves.
    if (f.name != "remove_after") yaml += f.name + ": " + f.example + "\n";
  }
  // Every example is a valid value (first_row 5 follows header_row 3).
  testing::SettingsYaml opt;
  opt.params = {"month"};
  auto settings = testing::SettingsFromYaml(def->source->fields, yaml, opt);
  ASSERT_TRUE(settings.ok()) << settings.status().ToString();
  EXPECT_TRUE(def->make_source(*settings).ok());
}

TEST_F(XlsxSourceTest, CellsAreTypedAsExcelShowsThem) {
  Read r = ReadAll("path: kinds.xlsx\n");
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  ASSERT_EQ(r.items.size(), 5u);
  // Shared string with Danish letters, integer, decimal, boolean, dates by
  // built-in (14) and custom formats, a time (built-in 20), a Danish custom
  // date format, a formula's cached number.
  EXPECT_EQ(r.Json(0), R"({"Navn":"Søren Æblegård","Antal":42,"Beløb":12.5,"Aktiv":true,)"
                       R"("Dato":"2024-03-01","DatoTid":"2024-03-01T08:30:00","Tid":"08:30:00",)"
                       R"("Dansk":"2024-12-24","Formel":84})");
  EXPECT_EQ(r.items[0].position, "kinds.xlsx:Ark1!2");
  EXPECT_TRUE(r.items[0].record.at("Antal").is_int64());
  // Shared rich text runs joined; negative integer; a number stored as text
  // stays text; serial 60 is Excel's 1900-02-29, 59 is 1900-02-28;
  // elapsed hours; a [Red] format is not a date; a cached formula string.
  EXPECT_EQ(r.Json(1), R"({"Navn":"Kim Ågård","Antal":-7,"Beløb":"0042","Aktiv":false,)"
                       R"("Dato":"1900-02-29","DatoTid":"1900-02-28T00:00:00","Tid":"36:15:00",)"
                       R"("Dansk":3,"Formel":"Søren Æblegård!"})");
  // Inline rich text joined without its phonetic run; empty cells are null.
  EXPECT_EQ(r.Json(2),
            R"({"Navn":"Hans Ørsted","Antal":null,"Beløb":null,"Aktiv":null,"Dato":null,)"
            R"("DatoTid":null,"Tid":null,"Dansk":null,"Formel":null})");
  // The error cell quarantines its row, naming the cell, not the value of
  // any other cell; the rows after it are read.
  EXPECT_TRUE(r.items[3].rejected);
  EXPECT_EQ(r.items[3].reason, "cell kinds.xlsx:Ark1!B5 holds the error #DIV/0!");
  EXPECT_EQ(r.items[3].position, "kinds.xlsx:Ark1!5");
  EXPECT_EQ(r.items[3].reason.find("fejl"), std::string::npos);
  // A formula saved without a cached value is empty; an ISO date cell
  // (t="d") is its text.
  EXPECT_EQ(r.Json(4),
            R"({"Navn":"efter","Antal":1,"Beløb":null,"Aktiv":"2024-03-01T00:00:00","Dato":null,)"
            R"("DatoTid":null,"Tid":null,"Dansk":null,"Formel":null})");
}

TEST_F(XlsxSourceTest, ErrorCellsCanReadAsEmpty) {
  Read r = ReadAll("path: kinds.xlsx\nerrors: empty\n");
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  ASSERT_EQ(r.items.size(), 5u);
  EXPECT_FALSE(r.items[3].rejected);
  EXPECT_EQ(r.items[3].record.at("Navn"), Value("fejl"));
  EXPECT_TRUE(r.items[3].record.at("Antal").is_null());
}

TEST_F(XlsxSourceTest, DatesIn1904System) {
  Read r = ReadAll("path: date1904.xlsx\n");
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.Json(0), R"({"Dato":"2024-03-01"})");
}

TEST_F(XlsxSourceTest, SheetByNameOrVisiblePositionHiddenOnlyByName) {
  Read by_pos = ReadAll("path: kinds.xlsx\nsheet: \"2\"\n");  // Skjult is hidden: Fletning
  ASSERT_TRUE(by_pos.error.ok()) << by_pos.error.ToString();
  ASSERT_FALSE(by_pos.items.empty());
  EXPECT_EQ(by_pos.items[0].position, "kinds.xlsx:Fletning!2");
  Read hidden = ReadAll("path: kinds.xlsx\nsheet: Skjult\n");
  ASSERT_TRUE(hidden.error.ok()) << hidden.error.ToString();
  ASSERT_EQ(hidden.items.size(), 1u);
  EXPECT_EQ(hidden.Json(0), R"({"Hemmelig":"x"})");
  Read missing = ReadAll("path: kinds.xlsx\nsheet: Fletnig\n");
  EXPECT_EQ(missing.error.code(), Status::Code::kInvalid);
  EXPECT_NE(missing.error.message().find("did you mean 'Fletning'"), std::string::npos)
      << missing.error.message();
  Read too_far = ReadAll("path: kinds.xlsx\nsheet: \"4\"\n");
  EXPECT_NE(too_far.error.message().find("has 3 visible sheet(s); there is no sheet 4"),
            std::string::npos)
      << too_far.error.message();
}

TEST_F(XlsxSourceTest, MergedCellsTopLeftOrEmptyAndHiddenRows) {
  Read top = ReadAll("path: kinds.xlsx\nsheet: Fletning\n");
  ASSERT_TRUE(top.error.ok()) << top.error.ToString();
  ASSERT_EQ(top.items.size(), 4u);
  EXPECT_EQ(top.Json(1), R"({"Afdeling":"Skole","Navn":"Bo"})");  // row 3: hidden, merged
  EXPECT_EQ(top.Json(2), R"({"Afdeling":"Skole","Navn":"Carl"})");
  EXPECT_EQ(top.Json(3), R"({"Afdeling":"Rådhus","Navn":"Dorte"})");
  Read empty = ReadAll("path: kinds.xlsx\nsheet: Fletning\nmerged_cells: empty\n");
  ASSERT_TRUE(empty.error.ok()) << empty.error.ToString();
  EXPECT_EQ(empty.Json(2), R"({"Afdeling":null,"Navn":"Carl"})");
  Read skip = ReadAll("path: kinds.xlsx\nsheet: Fletning\nhidden_rows: skip\n");
  ASSERT_TRUE(skip.error.ok()) << skip.error.ToString();
  ASSERT_EQ(skip.items.size(), 3u);
  EXPECT_EQ(skip.items[1].position, "kinds.xlsx:Fletning!4");
}

TEST_F(XlsxSourceTest, HeaderRowFirstRowAndEmptyRows) {
  Read r =
      ReadAll("path: kinds.xlsx\nsheet: Rapport 2024\nheader_row: 3\nstop_at_empty_row: true\n");
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  ASSERT_EQ(r.items.size(), 2u);
  // Empty header cell: its column letter; repeated name: _2.
  EXPECT_EQ(r.Json(0), R"({"id":1,"navn":"Åse","C":"x","navn_2":"y"})");
  EXPECT_EQ(r.Json(1), R"({"id":2,"navn":"Øjvind","C":null,"navn_2":null})");
  EXPECT_EQ(r.items[1].position, "kinds.xlsx:'Rapport 2024'!5");
  // Without stop_at_empty_row the notes under the table are read too.
  Read all = ReadAll("path: kinds.xlsx\nsheet: Rapport 2024\nheader_row: 3\n");
  ASSERT_EQ(all.items.size(), 3u);
  EXPECT_EQ(all.Json(2), R"({"id":"Sum","navn":2,"C":null,"navn_2":null})");
  // Kept empty rows are records of nulls.
  Read keep =
      ReadAll("path: kinds.xlsx\nsheet: Rapport 2024\nheader_row: 3\nskip_empty_rows: false\n");
  ASSERT_EQ(keep.items.size(), 4u);
  EXPECT_EQ(keep.items[2].position, "kinds.xlsx:'Rapport 2024'!6");
  EXPECT_EQ(keep.Json(2), R"({"id":null,"navn":null,"C":null,"navn_2":null})");
  // No header: column letters, from first_row.
  Read letters = ReadAll("path: kinds.xlsx\nsheet: Rapport 2024\nheader_row: 0\nfirst_row: 4\n");
  ASSERT_EQ(letters.items.size(), 3u);
  EXPECT_EQ(letters.Json(0), R"({"A":1,"B":"Åse","C":"x","D":"y"})");
  EXPECT_EQ(letters.Json(1), R"({"A":2,"B":"Øjvind"})");
  // first_row must follow the header.
  Read bad = ReadAll("path: kinds.xlsx\nheader_row: 3\nfirst_row: 2\n");
  EXPECT_EQ(bad.error.code(), Status::Code::kInvalid);
}

TEST_F(XlsxSourceTest, MalformedRowIsQuarantinedAndTheSheetReadOn) {
  Read r = ReadAll("path: bad_row.xlsx\nerrors: empty\n");
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  ASSERT_EQ(r.items.size(), 5u);
  EXPECT_FALSE(r.items[0].rejected);
  EXPECT_TRUE(r.items[1].rejected);
  EXPECT_EQ(r.items[1].position, "bad_row.xlsx:Ark1!3");
  EXPECT_NE(r.items[1].reason.find("row 3 of bad_row.xlsx:Ark1 is malformed XML"),
            std::string::npos)
      << r.items[1].reason;
  EXPECT_EQ(r.items[2].record.at("Navn"), Value("Hans Ørsted"));
}

TEST_F(XlsxSourceTest, MalformedHeaderRowFailsTheRun) {
  // Without its header no row of the sheet has its field names.
  Read r = ReadAll("path: bad_header.xlsx\n");
  EXPECT_TRUE(r.items.empty());
  EXPECT_EQ(r.error.code(), Status::Code::kInvalid);
  EXPECT_EQ(
      r.error.message().rfind("the header row 1 of bad_header.xlsx:Ark1 is malformed XML: ", 0), 0u)
      << r.error.message();
}

TEST_F(XlsxSourceTest, BrokenSheetFailsNamingFileSheetAndRow) {
  Read r = ReadAll("path: broken_sheet.xlsx\n");
  // Each cell's value stays out of the message.
  EXPECT_EQ(r.error.message().find("Søren"), std::string::npos);
  EXPECT_EQ(r.items.size(), 1u);  // row 2 arrived before the break
  EXPECT_FALSE(r.error.ok());
  EXPECT_NE(r.error.message().find("reading broken_sheet.xlsx:Ark1 after row 2"), std::string::npos)
      << r.error.message();
}

TEST_F(XlsxSourceTest, FilesThatAreNotWorkbooksGetClearErrors) {
  Read missing = ReadAll("path: nothere.xlsx\n");
  EXPECT_EQ(missing.error.code(), Status::Code::kNotFound);
  Read truncated = ReadAll("path: truncated.xlsx\n");
  EXPECT_EQ(truncated.error.code(), Status::Code::kInvalid);
  EXPECT_NE(truncated.error.message().find("truncated.xlsx is not an xlsx file: not a zip "
                                           "archive, or a damaged one (truncated?)"),
            std::string::npos)
      << truncated.error.message();
  Read notzip = ReadAll("path: notzip.xlsx\n");
  EXPECT_NE(notzip.error.message().find("notzip.xlsx is not an xlsx file"), std::string::npos)
      << notzip.error.message();
  Read encrypted = ReadAll("path: encrypted.xlsx\n");
  EXPECT_EQ(encrypted.error.code(), Status::Code::kInvalid);
  EXPECT_NE(encrypted.error.message().find("encrypted (password-protected) or an old .xls file"),
            std::string::npos)
      << encrypted.error.message();
}

TEST_F(XlsxSourceTest, ZipBombIsRefusedEarly) {
  Read r = ReadAll("path: bomb.xlsx\nmerged_cells: empty\n");
  EXPECT_EQ(r.error.code(), Status::Code::kInvalid);
  EXPECT_NE(r.error.message().find("bomb.xlsx: xl/worksheets/sheet1.xml inflates more than 100 "
                                   "times its compressed size"),
            std::string::npos)
      << r.error.message();
  // The same with the merged ranges' pass (the default).
  Read merged = ReadAll("path: bomb.xlsx\n");
  EXPECT_NE(merged.error.message().find("refusing it as a zip bomb"), std::string::npos)
      << merged.error.message();
}

TEST_F(XlsxSourceTest, SharedStringTableBombIsRefused) {
  Read r = ReadAll("path: strings_bomb.xlsx\n");
  EXPECT_EQ(r.error.code(), Status::Code::kInvalid);
  EXPECT_NE(r.error.message().find("strings_bomb.xlsx: xl/sharedStrings.xml inflates more than "
                                   "100 times its compressed size"),
            std::string::npos)
      << r.error.message();
}

TEST_F(XlsxSourceTest, SharedStringTableIsBounded) {
  // The fixture's table: "Søren Æblegård" (17 bytes of UTF-8) and "Kim
  // Ågård" (11), each counted with 32 bytes of bookkeeping: 92 bytes.
  Read fits = ReadAll("path: kinds.xlsx\nmax_shared_strings_bytes: 92\n");
  EXPECT_TRUE(fits.error.ok()) << fits.error.ToString();
  Read over = ReadAll("path: kinds.xlsx\nmax_shared_strings_bytes: 91\n");
  EXPECT_EQ(over.error.code(), Status::Code::kInvalid);
  EXPECT_EQ(over.error.message(),
            "kinds.xlsx: the shared string table holds more than 91 bytes "
            "(max_shared_strings_bytes)");
}

TEST_F(XlsxSourceTest, ABigSheetStreamsInOrderWithFlatMemory) {
  const long before = PeakRssKib();
  auto src = Make("path: big.xlsx\nmerged_cells: empty\n");
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
  EXPECT_EQ(n, XLSX_BIG_ROWS);
  (*src)->Close();
  const long grown = PeakRssKib() - before;
#if defined(KEYONCE_ASAN) || defined(KEYONCE_TSAN)
  // A sanitizer's shadow memory and quarantine of freed blocks are resident:
  // RSS says nothing (and the sheet has a tenth of the rows).
  (void)grown;
#else
  // The sheet's XML is 9 MiB; reading it must not hold it (nor the records).
  EXPECT_LT(grown, 8 * 1024) << "peak RSS grew by " << grown << " KiB";
#endif
}

TEST_F(XlsxSourceTest, RowsArriveBeforeTheSheetIsInflatedWhole) {
  // big_bad_end.xlsx's sheet is spoilt only in its last compressed bytes
  // (its CRC no longer matches): a source that inflated the sheet before
  // giving rows would fail before the first; a streaming one gives every
  // row, then fails at the spoilt end (as garbage XML or as a damaged zip
  // entry, whichever inflate meets first), naming the file, sheet and row.
  Read r = ReadAll("path: big_bad_end.xlsx\nmerged_cells: empty\n");
  EXPECT_GT(r.items.size(), XLSX_BIG_ROWS * 99u / 100);
  ASSERT_FALSE(r.items.empty());
  EXPECT_EQ(r.items[0].record.at("id").as_int64(), 1);
  ASSERT_FALSE(r.error.ok());
  EXPECT_EQ(r.error.message().rfind("reading big_bad_end.xlsx:Data after row ", 0), 0u)
      << r.error.message();
  EXPECT_NE(r.error.message().find("xl/worksheets/sheet1.xml"), std::string::npos);
}

// ---------------------------------------------------------------- lookup

class WarningLog : public Log {
 public:
  void Info(const std::string&) override {}
  void Warn(const std::string& m) override { warnings.push_back(m); }
  std::vector<std::string> warnings;
};

class XlsxLookupTest : public XlsxSourceTest {
 protected:
  Result<std::unique_ptr<Lookup>> MakeLookup(const std::string& yaml) {
    const ConnectorDef* def = Registry::Global().Find("xlsx");
    if (!def || !def->lookup) return Status::NotFound("xlsx lookup not registered");
    testing::SettingsYaml opt;
    opt.base_dir = Fixtures();
    auto settings = testing::SettingsFromYaml(def->lookup->fields, yaml, opt);
    if (!settings.ok()) return settings.status();
    return def->make_lookup(*settings);
  }
  std::optional<Record> Find(Lookup& l, const Value& key) {
    auto found = l.Find(key);
    EXPECT_TRUE(found.ok()) << found.status().ToString();
    return found.ok() ? *found : std::nullopt;
  }
  WarningLog warnings_;
};

TEST_F(XlsxLookupTest, FindsRowsOfASheetByTheKeyColumnsText) {
  ctx_.log = &warnings_;
  auto l =
      MakeLookup("path: afdelinger.xlsx\nsheet: Afdelinger\nheader_row: 2\nkey: Afdelingskode\n");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  ASSERT_TRUE((*l)->Open(ctx_).ok());
  // A number cell matches the key 10 and the text "10"; a text cell " 20 " matches 20.
  auto ten = Find(**l, Value(10));
  ASSERT_TRUE(ten);
  EXPECT_EQ(ToJson(*ten), R"({"Afdelingskode":10,"Navn":"Børn og Unge","Leder":"Åse"})");
  ASSERT_TRUE(Find(**l, Value("10 ")));
  auto twenty = Find(**l, Value(20));
  ASSERT_TRUE(twenty);
  EXPECT_EQ(twenty->at("Navn").as_string(), "Teknik og Miljø");
  auto thirty = Find(**l, Value("30"));
  ASSERT_TRUE(thirty);
  EXPECT_TRUE(thirty->at("Leder").is_null());
  EXPECT_FALSE(Find(**l, Value(99)));
  // The repeated key: the first row wins, and the warning names rows, never the key.
  ASSERT_EQ(warnings_.warnings.size(), 1u);
  EXPECT_EQ(warnings_.warnings[0],
            "afdelinger.xlsx:Afdelinger!5: the key in column 'Afdelingskode' repeats "
            "afdelinger.xlsx:Afdelinger!3; the first row is used");
}

TEST_F(XlsxLookupTest, AMissingKeyColumnOrTooManyRowsFailWithTheirReason) {
  auto l = MakeLookup("path: afdelinger.xlsx\nheader_row: 2\nkey: Kode\n");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  Status st = (*l)->Open(ctx_);
  EXPECT_EQ(st.code(), Status::Code::kInvalid);
  EXPECT_NE(st.message().find("key column 'Kode' is not in afdelinger.xlsx (its columns: "
                              "'Afdelingskode', 'Navn', 'Leder')"),
            std::string::npos)
      << st.message();

  ctx_.limits.records_in_memory = 2;
  l = MakeLookup("path: afdelinger.xlsx\nheader_row: 2\nkey: Afdelingskode\n");
  ASSERT_TRUE(l.ok());
  st = (*l)->Open(ctx_);
  EXPECT_EQ(st.code(), Status::Code::kInvalid);
  EXPECT_NE(st.message().find("lookup table afdelinger.xlsx has more than "
                              "limits.records_in_memory (2) rows; an xlsx table"),
            std::string::npos)
      << st.message();

  // Settings are checked when the table is made, its file when it is opened.
  EXPECT_FALSE(MakeLookup("path: afdelinger.xlsx\n").ok());
  l = MakeLookup("path: missing.xlsx\nkey: a\n");
  ASSERT_TRUE(l.ok());
  EXPECT_NE((*l)->Open(ctx_).message().find("missing.xlsx"), std::string::npos);
}

}  // namespace
}  // namespace keyonce

namespace keyonce {
namespace {

// A workbook the npm exceljs package wrote (testdata/make_exceljs_fixture.js):
// its shared strings, rich text, cached formula results, error values, date
// formats, merged range and hidden row read as Excel shows them.
TEST_F(XlsxSourceTest, AWorkbookWrittenByExcelJsReadsAsExcelShowsIt) {
  ASSERT_TRUE(fs::exists(Fixtures() / "exceljs.xlsx"))
      << "made by the ctest fixture xlsx_exceljs_fixture (node, tests/node_modules/exceljs)";
  Read all = ReadAll("path: exceljs.xlsx\nsheet: Tilmeldinger\nerrors: empty\n");
  ASSERT_TRUE(all.error.ok()) << all.error.ToString();
  ASSERT_EQ(all.items.size(), 5u);
  EXPECT_EQ(
      all.Json(0),
      R"({"Navn":"Søren Æblegård","Antal":42,"Beløb":1234.5,"Aktiv":true,"Dato":"2026-12-07",)"
      R"("Tidspunkt":"2026-12-07T13:45:30","Formel":84,"Fejl":null,"Note":"Fed og almindelig"})");
  EXPECT_EQ(all.Json(1),
            R"({"Navn":"Åse Østergård","Antal":7,"Beløb":0.25,"Aktiv":false,"Dato":null,)"
            R"("Tidspunkt":null,"Formel":14,"Fejl":1,"Note":"0101901234"})");
  EXPECT_EQ(all.items[2].record.at("Beløb").as_string(), "Fælles afdeling") << "merged A4:C4";
  EXPECT_EQ(all.items[4].position, "exceljs.xlsx:Tilmeldinger!6");

  Read strict =
      ReadAll("path: exceljs.xlsx\nsheet: Tilmeldinger\nhidden_rows: skip\nmerged_cells: empty\n");
  ASSERT_TRUE(strict.error.ok()) << strict.error.ToString();
  ASSERT_EQ(strict.items.size(), 4u) << "the hidden row is left out";
  EXPECT_TRUE(strict.items[0].rejected);
  EXPECT_EQ(strict.items[0].reason, "cell exceljs.xlsx:Tilmeldinger!H2 holds the error #N/A");
  EXPECT_TRUE(strict.items[2].record.at("Beløb").is_null()) << "merged_cells: empty";
  EXPECT_EQ(strict.items[3].record.at("Navn").as_string(), "Sidste");
}

// move_to on a sheet source (AddAfterRead, the same for xlsx, ods and xls): the workbook
// leaves its folder only at the run's last acknowledgement; a lookup table
// has no such setting (it is read, never taken away).
TEST_F(XlsxSourceTest, MoveToTakesTheWorkbookAwayOnlyAtTheLastAcknowledgement) {
  const fs::path dir = fs::path(::testing::TempDir()) / "xlsx_move_to";
  fs::remove_all(dir);
  fs::create_directories(dir / "indbakke");
  fs::copy_file(Fixtures() / "kinds.xlsx", dir / "indbakke" / "kinds.xlsx");
  const ConnectorDef* def = Registry::Global().Find("xlsx");
  testing::SettingsYaml opt;
  opt.base_dir = dir;
  auto settings = testing::SettingsFromYaml(def->source->fields,
                                            "path: indbakke/kinds.xlsx\nmove_to: behandlet\n", opt);
  ASSERT_TRUE(settings.ok()) << settings.status().ToString();
  auto src = def->make_source(*settings);
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  ASSERT_TRUE((*src)->Open(ctx_).ok());
  SourceItem item;
  uint64_t n = 0;
  while (*(*src)->Next(&item)) ++n;
  ASSERT_TRUE((*src)->Acknowledge(n, false).ok());
  EXPECT_TRUE(fs::exists(dir / "indbakke" / "kinds.xlsx"));
  Status st = (*src)->Acknowledge(n, true);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE((*src)->Close().ok());
  EXPECT_FALSE(fs::exists(dir / "indbakke" / "kinds.xlsx"));
  EXPECT_TRUE(fs::exists(dir / "behandlet" / "kinds.xlsx"));

  // SheetLookupSpec (shared by xlsx, ods and xls) leaves them out.
  for (const char* type : {"xlsx"}) {
    const ConnectorDef* d = Registry::Global().Find(type);
    ASSERT_TRUE(d && d->lookup) << type;
    auto lookup =
        testing::SettingsFromYaml(d->lookup->fields, "path: x\nkey: id\nmove_to: behandlet\n", opt);
    EXPECT_FALSE(lookup.ok()) << type << ": a table has no move_to";
    auto source =
        testing::SettingsFromYaml(d->source->fields, "path: x\nremove_after: true\n", opt);
    EXPECT_TRUE(source.ok()) << type << ": " << source.status().ToString();
  }
}

}  // namespace
}  // namespace keyonce
