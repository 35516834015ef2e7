// The xlsx target: workbooks it writes, read back by real readers (openpyxl,
// LibreOffice Calc headless, keyonce's own xlsx source), and its replace
// protocol (nothing visible before the final commit, recovery after a crash).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <boost/json/parse.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "connectors/common/text_file.h"
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

std::string ReadBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs a command and returns what it printed; fails the test on a non-zero exit.
std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    ADD_FAILURE() << "cannot run " << cmd;
    return out;
  }
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int rc = ::pclose(p);
  EXPECT_EQ(rc, 0) << cmd << "\n" << out;
  return out;
}

// The sheet's XML inside the workbook (Python's zipfile: no unzip needed).
std::string SheetXml(const fs::path& file) {
  return Shell(
      "/usr/bin/python3 -c 'import sys, zipfile\n"
      "sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(\"xl/worksheets/sheet1.xml\"))' "
      "'" +
      file.string() + "'");
}

struct stat StatOf(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st;
}

class XlsxTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = fs::path(::testing::TempDir()) /
           ("xlsx_target_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ctx_.recipe = "r";
    ctx_.target_name = "sheet";
    ctx_.run_id = "1";
    ctx_.log = &log_;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  Result<std::unique_ptr<Target>> Make(const std::string& yaml) {
    const ConnectorDef* def = Registry::Global().Find("xlsx");
    if (!def || !def->target) return Status::NotFound("xlsx target not registered");
    testing::SettingsYaml opt;
    opt.base_dir = dir_;
    auto settings = testing::SettingsFromYaml(def->target->fields, yaml, opt);
    if (!settings.ok()) return settings.status();
    return def->make_target(*settings);
  }

  std::unique_ptr<Target> New(const std::string& yaml) {
    auto t = Make(yaml);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? std::move(t).value() : nullptr;
  }

  WriteResult Write(Target* t, const std::string& json, uint64_t batch = 1) {
    values_.push_back(boost::json::parse(json));
    Scope scope;
    scope.record = &values_.back();
    WriteOp op;
    op.record = &values_.back().get_object();
    op.scope = &scope;
    op.batch = batch;
    return t->Write(op);
  }

  // Writes each record (one JSON object a line) in batch 1 and commits.
  void WriteAll(const std::string& yaml, const std::vector<std::string>& records) {
    auto t = New(yaml);
    ASSERT_TRUE(t);
    ASSERT_TRUE(t->Open(ctx_).ok());
    for (const auto& r : records) {
      WriteResult w = Write(t.get(), r);
      ASSERT_TRUE(w.status.ok()) << w.status.ToString();
    }
    auto c = t->Commit(1, true);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_TRUE(c->durable);
    ASSERT_TRUE(t->Close(true).ok());
  }

  boost::json::value Openpyxl(const fs::path& file) {
    return boost::json::parse(
        Shell("/usr/bin/python3 " XLSX_READ_BACK " '" + file.string() + "' 2>&1"));
  }

  // The sheet as LibreOffice Calc shows it, converted to CSV (UTF-8) headless.
  std::string LibreOfficeCsv(const fs::path& file) {
    const fs::path profile = dir_ / "lo-profile";
    Shell("cd '" + dir_.string() + "' && timeout 180 soffice --headless --norestore " +
          "-env:UserInstallation=file://" + profile.string() +
          " --convert-to 'csv:Text - txt - csv (StarCalc):44,34,76,1' --outdir '" +
          (dir_ / "lo").string() + "' '" + file.string() + "' 2>&1");
    return ReadBytes(dir_ / "lo" / (file.stem().string() + ".csv"));
  }

  fs::path dir_;
  NullLog log_;
  RunContext ctx_;
  std::vector<Value> values_;  // the records written, kept alive for the ops
};

// A row of every kind: typed values from a JSON source and text from a CSV
// source that looks like numbers, dates, formulas.
const std::vector<std::string> kKinds = {
    R"({"navn":"Søren Æblegård Ørsted-Åse","cpr":"0101901234","telefon":"+45 12 34 56 78",)"
    R"("kontonr":"12345678","lang":"12345678901234567890","antal":42,"beloeb":1234.5,)"
    R"("tekst_tal":"37","decimal_tekst":"7.25","dato":"2024-03-01",)"
    R"j("tid":"2024-03-01T08:30:00","aktiv":true,"formel":"=1+1","at":"@SUM(A1)",)j"
    R"("minus":"-x","plus":"+1","tom":null})",
};

TEST_F(XlsxTargetTest, RegisteredWithDocumentedSettings) {
  const ConnectorDef* def = Registry::Global().Find("xlsx");
  ASSERT_NE(def, nullptr);
  ASSERT_TRUE(def->target && def->make_target);
  std::string yaml;
  for (const auto& f : def->target->fields) {
    EXPECT_FALSE(f.description.empty()) << f.name;
    EXPECT_FALSE(f.example.empty()) << f.name;
    if (f.example.find("secrets.") != std::string::npos) continue;  // undeclared here
    yaml += f.name + ": " + f.example + "\n";
  }
  testing::SettingsYaml opt;
  auto settings = testing::SettingsFromYaml(def->target->fields, yaml, opt);
  ASSERT_TRUE(settings.ok()) << settings.status().ToString();
  EXPECT_TRUE(def->make_target(*settings).ok());
}

TEST_F(XlsxTargetTest, OpenpyxlReadsNumbersDatesBooleansAndTextThatLooksLikeNumbers) {
  WriteAll("path: out.xlsx\n", kKinds);
  auto book = Openpyxl(dir_ / "out.xlsx");
  const auto& rows = book.at("rows").as_array();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(book.at("sheets"), boost::json::parse(R"(["Ark1"])"));
  EXPECT_EQ(book.at("freeze"), "A2");  // the header stays in view
  // The header row, bold text in the first record's field order.
  EXPECT_EQ(rows[0].as_array()[0].as_array()[0], "navn");
  EXPECT_EQ(rows[0].as_array()[16].as_array()[0], "tom");
  const auto& r = rows[1].as_array();
  auto cell = [&](size_t i) { return ToJson(r.at(i)); };
  EXPECT_EQ(cell(0), R"(["Søren Æblegård Ørsted-Åse","s","General"])");
  // Identifiers stay text: leading zero (CPR-like), phone, 8 digits, 20 digits.
  EXPECT_EQ(cell(1), R"(["0101901234","s","General"])");
  EXPECT_EQ(cell(2), R"(["+45 12 34 56 78","s","General"])");
  EXPECT_EQ(cell(3), R"(["12345678","s","General"])");
  EXPECT_EQ(cell(4), R"(["12345678901234567890","s","General"])");
  // Numbers are numbers, also a quantity that came as text.
  EXPECT_EQ(cell(5), R"([42,"n","General"])");
  EXPECT_EQ(cell(6), R"([1234.5,"n","General"])");
  EXPECT_EQ(cell(7), R"([37,"n","General"])");
  EXPECT_EQ(cell(8), R"([7.25,"n","General"])");
  // Real dates with the Danish formats.
  EXPECT_EQ(cell(9), R"(["2024-03-01T00:00:00","d","dd-mm-yyyy"])");
  EXPECT_EQ(cell(10), R"(["2024-03-01T08:30:00","d","dd-mm-yyyy hh:mm"])");
  EXPECT_EQ(cell(11), R"([true,"b","General"])");
  // No formula injection: string cells holding the text.
  EXPECT_EQ(cell(12), R"(["=1+1","s","General"])");
  EXPECT_EQ(cell(13), R"j(["@SUM(A1)","s","General"])j");
  EXPECT_EQ(cell(14), R"(["-x","s","General"])");
  EXPECT_EQ(cell(15), R"(["+1","s","General"])");
  EXPECT_EQ(cell(16), R"([null,"n","General"])");
  // No formula anywhere in the sheet's XML.
  std::string xml = SheetXml(dir_ / "out.xlsx");
  EXPECT_EQ(xml.find("<f>"), std::string::npos);
}

TEST_F(XlsxTargetTest, LibreOfficeShowsTheSameValues) {
  WriteAll("path: out.xlsx\n", kKinds);
  std::string csv = LibreOfficeCsv(dir_ / "out.xlsx");
  std::istringstream in(csv);
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  // Calc quotes the cells that hold text, so the CSV shows the types too.
  EXPECT_EQ(header, R"("navn","cpr","telefon","kontonr","lang","antal","beloeb","tekst_tal",)"
                    R"("decimal_tekst","dato","tid","aktiv","formel","at","minus","plus","tom")");
  // Identifiers stay text (leading zero, phone, long digit strings); numbers,
  // dates in the Danish format and the boolean are values; =1+1 is the text,
  // not computed to 2.
  EXPECT_EQ(row, R"("Søren Æblegård Ørsted-Åse","0101901234","+45 12 34 56 78","12345678",)"
                 R"("12345678901234567890",42,1234.5,37,7.25,01-03-2024,01-03-2024 08:30,TRUE,)"
                 R"j("=1+1","@SUM(A1)","-x","+1",)j");
}

TEST_F(XlsxTargetTest, OwnSourceReadsItBack) {
  WriteAll("path: out.xlsx\n", kKinds);
  const ConnectorDef* def = Registry::Global().Find("xlsx");
  testing::SettingsYaml opt;
  opt.base_dir = dir_;
  auto settings = testing::SettingsFromYaml(def->source->fields, "path: out.xlsx\n", opt);
  ASSERT_TRUE(settings.ok());
  auto read = testing::ReadSource(def->make_source(*settings), ctx_);
  ASSERT_TRUE(read.error.ok()) << read.error.ToString();
  ASSERT_EQ(read.items.size(), 1u);
  EXPECT_EQ(ToJson(read.items[0].record),
            R"({"navn":"Søren Æblegård Ørsted-Åse","cpr":"0101901234","telefon":"+45 12 34 56 78",)"
            R"("kontonr":"12345678","lang":"12345678901234567890","antal":42,"beloeb":1234.5,)"
            R"("tekst_tal":37,"decimal_tekst":7.25,"dato":"2024-03-01",)"
            R"j("tid":"2024-03-01T08:30:00","aktiv":true,"formel":"=1+1","at":"@SUM(A1)",)j"
            R"("minus":"-x","plus":"+1","tom":null})");
}

TEST_F(XlsxTargetTest, ColumnsChooseOrderHeadersTypesAndWidths) {
  WriteAll(
      "path: out.xlsx\n"
      "sheet: Fravær\n"
      "autofilter: true\n"
      "number_format: '#,##0.00'\n"
      "columns:\n"
      "  - {field: id, header: Medarbejdernr, type: text, width: 14}\n"
      "  - {field: fra, header: Fra dato, type: date}\n"
      "  - {field: timer, header: Timer, type: number}\n"
      "  - {field: fast, header: Fastansat, type: boolean}\n"
      "  - {field: stk, header: Antal, type: integer}\n",
      {R"({"id":7,"fra":"2024-12-24","timer":"7,5","fast":"ja","stk":"3","andet":"ignored"})",
       R"({"id":"0042","fra":"2025-01-02T10:00:00","timer":8,"fast":0,"stk":4})"});
  auto book = Openpyxl(dir_ / "out.xlsx");
  EXPECT_EQ(book.at("sheets"), boost::json::parse(R"(["Fravær"])"));
  EXPECT_EQ(book.at("filter"), "A1:E3");
  EXPECT_EQ(book.at("widths").at("A"), boost::json::parse("14.7109375"));  // 14 + Excel's padding
  EXPECT_TRUE(book.at("widths").as_object().contains("B"));                // estimated
  EXPECT_EQ(ToJson(book.at("rows")),
            R"([[["Medarbejdernr","s","General"],["Fra dato","s","General"],)"
            R"(["Timer","s","General"],["Fastansat","s","General"],["Antal","s","General"]],)"
            R"([["7","s","General"],["2024-12-24T00:00:00","d","dd-mm-yyyy"],)"
            R"([7.5,"n","#,##0.00"],[true,"b","General"],[3,"n","General"]],)"
            R"([["0042","s","General"],["2025-01-02T00:00:00","d","dd-mm-yyyy"],)"
            R"([8,"n","General"],[false,"b","General"],[4,"n","General"]]])");
}

TEST_F(XlsxTargetTest, AValueThatDoesNotFitIsQuarantinedNamingFieldAndCell) {
  auto t =
      New("path: out.xlsx\n"
          "columns:\n"
          "  - {field: cpr, type: text}\n"
          "  - {field: beloeb, type: number}\n"
          "  - {field: note}\n");
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->Open(ctx_).ok());
  ASSERT_TRUE(Write(t.get(), R"({"cpr":"0101901234","beloeb":1,"note":"ok"})").status.ok());
  WriteResult bad = Write(t.get(), R"({"cpr":"0202902345","beloeb":"mange","note":"x"})");
  EXPECT_EQ(bad.status.code(), Status::Code::kPermanent);
  EXPECT_EQ(bad.status.message(), "field 'beloeb' (cell out.xlsx:Ark1!B3) is not a number");
  // Over Excel's 32,767 characters a cell.
  std::string big =
      std::string(R"({"cpr":"0303903456","beloeb":2,"note":")") + std::string(32768, 'x') + "\"}";
  WriteResult tall = Write(t.get(), big);
  EXPECT_EQ(tall.status.code(), Status::Code::kPermanent);
  EXPECT_EQ(tall.status.message(),
            "field 'note' (cell out.xlsx:Ark1!C3) has 32768 characters; an Excel cell holds at "
            "most 32,767");
  EXPECT_EQ(tall.status.message().find("0303903456"), std::string::npos);
  // Exactly 32,767 (æ is one character, two bytes) fits; the run goes on.
  std::string fits = R"({"cpr":"0404904567","beloeb":3,"note":")";
  for (int i = 0; i < 32767; ++i) fits += "æ";
  fits += "\"}";
  ASSERT_TRUE(Write(t.get(), fits).status.ok());
  ASSERT_TRUE(t->Commit(1, true).ok());
  ASSERT_TRUE(t->Close(true).ok());
  auto rows = Openpyxl(dir_ / "out.xlsx").at("rows").as_array();
  ASSERT_EQ(rows.size(), 3u);  // header, the first and the last record
  EXPECT_EQ(rows[2].as_array()[0].as_array()[0], "0404904567");
  EXPECT_EQ(rows[2].as_array()[2].as_array()[0].as_string().size(), 32767u * 2);
}

// A dry run and `keyonce test` show each row as the sheet will hold it,
// without opening the target; a value that would be quarantined fails alike.
TEST_F(XlsxTargetTest, RenderIsTheTypedRowWithoutTouchingTheFile) {
  auto t =
      New("path: out.xlsx\n"
          "columns:\n"
          "  - {field: cpr, header: CPR, type: text}\n"
          "  - {field: fra, header: Fra dato, type: date}\n"
          "  - {field: timer, header: Timer, type: number}\n");
  ASSERT_TRUE(t);
  values_.push_back(boost::json::parse(R"({"cpr":"0101901234","fra":"2024-03-01","timer":"7,5"})"));
  Scope scope;
  scope.record = &values_.back();
  WriteOp op;
  op.record = &values_.back().get_object();
  op.scope = &scope;
  auto v = t->Render(op);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(ToJson(*v), R"({"CPR":"0101901234","Fra dato":"2024-03-01","Timer":7.5})");
  values_.push_back(boost::json::parse(R"({"cpr":"x","fra":"1. marts","timer":1})"));
  scope.record = &values_.back();
  op.record = &values_.back().get_object();
  v = t->Render(op);
  EXPECT_EQ(v.status().code(), Status::Code::kPermanent);
  EXPECT_FALSE(fs::exists(dir_ / "out.xlsx"));
}

TEST_F(XlsxTargetTest, AFieldOutsideTheFirstRecordsColumnsIsQuarantined) {
  auto t = New("path: out.xlsx\n");
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->Open(ctx_).ok());
  ASSERT_TRUE(Write(t.get(), R"({"a":1})").status.ok());
  WriteResult w = Write(t.get(), R"({"a":2,"b":3})");
  EXPECT_EQ(w.status.code(), Status::Code::kPermanent);
  EXPECT_NE(w.status.message().find("field 'b' is not a column"), std::string::npos);
}

TEST_F(XlsxTargetTest, BadColumnSettingsAreRefusedBeforeTheRun) {
  auto r = Make("path: out.xlsx\ncolumns:\n  - {field: a, tpye: text}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown key 'tpye'; did you mean 'type'?"),
            std::string::npos)
      << r.status().message();
  r = Make("path: out.xlsx\ncolumns:\n  - {field: a, type: money}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not one of auto, text"), std::string::npos);
  r = Make("path: out.xlsx\nsheet: 'Ark[1]'\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not a valid Excel sheet name"), std::string::npos);
}

// Peak resident set size of this process (VmHWM), in KiB.
long PeakRssKib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// A full sheet, in flat memory (constant-memory mode: a row is on disk once
// the next one starts); the record after it is refused, not written past
// Excel's last row.
TEST_F(XlsxTargetTest, TheSheetIsFullAfter1048576RowsWrittenInFlatMemory) {
  auto t = New("path: out.xlsx\nheader: false\nwidth_sample_rows: 0\n");
  ASSERT_TRUE(t);
  ASSERT_TRUE(t->Open(ctx_).ok());
  boost::json::object rec{{"n", 0}, {"navn", "Søren Æblegård"}, {"dato", "2024-03-01"}};
  Scope scope;
  WriteOp op;
  op.record = &rec;
  op.scope = &scope;
  op.wants_reply = false;
  long before = 0;
  for (int64_t i = 0; i < 1048576; ++i) {
    if (i == 1000) before = PeakRssKib();
    rec["n"] = i;
    WriteResult w = t->Write(op);
    ASSERT_TRUE(w.status.ok()) << i << ": " << w.status.ToString();
  }
  const long grown = PeakRssKib() - before;
#if defined(KEYONCE_ASAN) || defined(KEYONCE_TSAN)
  (void)grown;  // a sanitizer's shadow memory and quarantine are resident: RSS says nothing
#else
  EXPECT_LT(grown, 4 * 1024) << "peak RSS grew by " << grown << " KiB over a million rows";
#endif
  rec["n"] = 1048576;
  WriteResult w = t->Write(op);
  EXPECT_EQ(w.status.code(), Status::Code::kPermanent);
  EXPECT_EQ(w.status.message(),
            "the sheet out.xlsx:Ark1 is full: Excel holds 1,048,576 rows; this record is not "
            "written");
  ASSERT_TRUE(t->Commit(1, true).ok());
  ASSERT_TRUE(t->Close(true).ok());
  // The file is whole: its last row is row 1,048,576.
  std::string xml = SheetXml(dir_ / "out.xlsx");
  xml = xml.substr(xml.size() - std::min<size_t>(xml.size(), 300));
  EXPECT_NE(xml.find("<row r=\"1048576\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("</worksheet>"), std::string::npos);
}

TEST_F(XlsxTargetTest, ReplaceIsInvisibleUntilTheFinalCommit) {
  WriteAll("path: out.xlsx\n", {R"({"n":"old"})"});
  const std::string old_bytes = ReadBytes(dir_ / "out.xlsx");
  auto t = New("path: out.xlsx\n");
  ASSERT_TRUE(t->Open(ctx_).ok());
  auto checkpoint = t->Checkpoint();
  ASSERT_TRUE(checkpoint.ok());
  ASSERT_TRUE(Write(t.get(), R"({"n":"new1"})", 1).status.ok());
  auto c1 = t->Commit(1, false);
  ASSERT_TRUE(c1.ok());
  EXPECT_FALSE(c1->durable);
  EXPECT_EQ(c1->token, *checkpoint);
  ASSERT_TRUE(Write(t.get(), R"({"n":"new2"})", 2).status.ok());
  EXPECT_EQ(ReadBytes(dir_ / "out.xlsx"), old_bytes);
  auto c2 = t->Commit(2, true);
  ASSERT_TRUE(c2.ok());
  EXPECT_TRUE(c2->durable);
  ASSERT_TRUE(t->Close(true).ok());
  EXPECT_EQ(c2->token, *connectors::ReplaceFile::Token(dir_ / "out.xlsx"));
  // The run's whole result: the old row is gone.
  auto rows = Openpyxl(dir_ / "out.xlsx").at("rows").as_array();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].as_array()[0].as_array()[0], "new1");
  EXPECT_EQ(rows[2].as_array()[0].as_array()[0], "new2");
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(dir_)) files.insert(e.path().filename().string());
  EXPECT_EQ(files, (std::set<std::string>{"out.xlsx", ".out.xlsx.keyonce"}));

  // A crash after the rename, before the journal marked the batches done.
  auto fresh = New("path: out.xlsx\n");
  auto rec = fresh->Recover(ctx_, 1, *checkpoint);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->known);
  EXPECT_EQ(rec->applied_through, std::numeric_limits<uint64_t>::max());
}

TEST_F(XlsxTargetTest, CrashBeforeTheRenameChangesNothing) {
  WriteAll("path: out.xlsx\n", {R"({"n":"old"})"});
  const std::string old_bytes = ReadBytes(dir_ / "out.xlsx");
  const ino_t inode = StatOf(dir_ / "out.xlsx").st_ino;
  std::string checkpoint;
  {
    auto t = New("path: out.xlsx\n");
    ASSERT_TRUE(t->Open(ctx_).ok());
    checkpoint = *t->Checkpoint();
    ASSERT_TRUE(Write(t.get(), R"({"n":"new"})", 3).status.ok());
    ASSERT_TRUE(t->Commit(3, false).ok());
    // The temporary workbook is beside the file while the run goes on.
    bool temp = false;
    for (const auto& e : fs::directory_iterator(dir_)) {
      temp = temp || e.path().filename().string().rfind("out.xlsx.keyonce-tmp-", 0) == 0;
    }
    EXPECT_TRUE(temp);
    // Crash: no final commit (a kill -9 leaves the temporary file).
  }
  std::ofstream(dir_ / "out.xlsx.keyonce-tmp-99999") << "leftover";
  auto fresh = New("path: out.xlsx\n");
  auto rec = fresh->Recover(ctx_, 3, checkpoint);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->known);
  EXPECT_EQ(rec->applied_through, 2u);
  EXPECT_EQ(ReadBytes(dir_ / "out.xlsx"), old_bytes);
  EXPECT_EQ(StatOf(dir_ / "out.xlsx").st_ino, inode);
  EXPECT_FALSE(fs::exists(dir_ / "out.xlsx.keyonce-tmp-99999"));
}

TEST_F(XlsxTargetTest, ARunWithoutRowsLeavesTheFileAlone) {
  WriteAll("path: out.xlsx\n", {R"({"n":"old"})"});
  const std::string old_bytes = ReadBytes(dir_ / "out.xlsx");
  const ino_t inode = StatOf(dir_ / "out.xlsx").st_ino;
  auto t = New("path: out.xlsx\n");
  ASSERT_TRUE(t->Open(ctx_).ok());
  auto c = t->Commit(1, true);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->durable);
  ASSERT_TRUE(t->Close(true).ok());
  EXPECT_EQ(StatOf(dir_ / "out.xlsx").st_ino, inode);
  EXPECT_EQ(ReadBytes(dir_ / "out.xlsx"), old_bytes);
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(dir_)) files.insert(e.path().filename().string());
  EXPECT_EQ(files.count("out.xlsx.keyonce-tmp-" + std::to_string(::getpid())), 0u);
}

TEST_F(XlsxTargetTest, AMissingFolderFailsAtOpenUnlessCreateDirs) {
  auto t = New("path: sub/dir/out.xlsx\n");
  Status st = t->Open(ctx_);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("sub/dir/out.xlsx.keyonce-tmp-"), std::string::npos) << st.message();
  WriteAll("path: sub/dir/out.xlsx\ncreate_dirs: true\n", {R"({"a":1})"});
  EXPECT_TRUE(fs::exists(dir_ / "sub/dir/out.xlsx"));
}

}  // namespace
}  // namespace keyonce
