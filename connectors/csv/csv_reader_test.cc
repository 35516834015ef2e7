// Tests of the streaming CSV reader (no settings or templates needed).
#include "connectors/csv/csv_reader.h"

#include <gtest/gtest.h>

#include <boost/json/monotonic_resource.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

namespace keyonce::connectors::csv {
namespace {

namespace fs = std::filesystem;

class CaptureLog : public Log {
 public:
  void Info(const std::string& msg) override { infos.push_back(msg); }
  void Warn(const std::string& msg) override { warnings.push_back(msg); }
  std::vector<std::string> infos, warnings;
};

fs::path TempDir() {
  static int counter = 0;
  fs::path dir = fs::path(testing::TempDir()) /
                 ("csv_reader_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::create_directories(dir);
  return dir;
}

fs::path WriteFile(std::string_view bytes, const std::string& name = "in.csv") {
  fs::path p = TempDir() / name;
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return p;
}

// One line per item: "in.csv:2 {json}" or "in.csv:3 REJECTED reason | raw".
std::string Describe(const SourceItem& item) {
  if (item.rejected) return item.position + " REJECTED " + item.reason + " | " + item.raw;
  return item.position + " " + ToJson(item.record);
}

struct ReadOutcome {
  Status open;
  std::vector<std::string> items;
  std::vector<std::string> names;
  Encoding encoding = Encoding::kUtf8;
};

ReadOutcome ReadAll(const fs::path& path, CsvReaderOptions opt = {}, Log* log = nullptr) {
  ReadOutcome out;
  CsvReader reader(opt);
  out.open = reader.Open(path, log);
  if (!out.open.ok()) return out;
  out.names = reader.field_names();
  SourceItem item;
  for (;;) {
    auto r = reader.Next(&item);
    if (!r.ok()) {
      out.items.push_back("ERROR " + r.status().message());
      break;
    }
    if (!*r) break;
    out.items.push_back(Describe(item));
  }
  out.encoding = reader.encoding();
  return out;
}

std::vector<std::string> Items(std::string_view bytes, CsvReaderOptions opt = {}) {
  ReadOutcome r = ReadAll(WriteFile(bytes), std::move(opt));
  EXPECT_TRUE(r.open.ok()) << r.open.message();
  return r.items;
}

using Lines = std::vector<std::string>;

CsvReaderOptions Semicolon() {
  CsvReaderOptions opt;
  opt.delimiter = ';';
  return opt;
}

TEST(CsvReader, CommaDialectWithHeader) {
  EXPECT_EQ(Items("id,name\n1,Anna\n2,Bo\n"),
            (Lines{R"(in.csv:2 {"id":"1","name":"Anna"})", R"(in.csv:3 {"id":"2","name":"Bo"})"}));
}

// The engine asks for each record in its batch's memory (SourceItem::storage);
// the reader builds it there, and the record keeps that memory.
TEST(CsvReader, BuildsTheRecordInTheMemoryTheEngineGives) {
  CsvReader reader{CsvReaderOptions{}};
  ASSERT_TRUE(reader.Open(WriteFile("id,name\n1,Åse Ørsted Christiansen\n"), nullptr).ok());
  boost::json::monotonic_resource arena;
  SourceItem item;
  item.storage = boost::json::storage_ptr(&arena);
  auto r = reader.Next(&item);
  ASSERT_TRUE(r.ok() && *r) << r.status().message();
  EXPECT_EQ(item.record.storage().get(), &arena);
  EXPECT_EQ(item.record.at("name").storage().get(), &arena);
  EXPECT_EQ(ToJson(item.record), R"({"id":"1","name":"Åse Ørsted Christiansen"})");
}

TEST(CsvReader, SemicolonDialectWithDecimalCommasKeptAsText) {
  CsvReaderOptions opt;
  opt.delimiter = ';';
  EXPECT_EQ(Items("id;timer;beløb\n1;7,5;1.234,50\n", opt),
            (Lines{R"(in.csv:2 {"id":"1","timer":"7,5","beløb":"1.234,50"})"}));
}

TEST(CsvReader, TabAndPipeDialects) {
  CsvReaderOptions tab;
  tab.delimiter = '\t';
  EXPECT_EQ(Items("a\tb\nx y\t2\n", tab), (Lines{R"(in.csv:2 {"a":"x y","b":"2"})"}));
  CsvReaderOptions pipe;
  pipe.delimiter = '|';
  EXPECT_EQ(Items("a|b\nx,y|2\n", pipe), (Lines{R"(in.csv:2 {"a":"x,y","b":"2"})"}));
}

TEST(CsvReader, QuotedFieldWithEmbeddedDelimiter) {
  EXPECT_EQ(Items("id,addr\n1,\"Vej 1, 2. th\"\n"),
            (Lines{R"(in.csv:2 {"id":"1","addr":"Vej 1, 2. th"})"}));
}

TEST(CsvReader, QuotedFieldWithEscapedQuotes) {
  EXPECT_EQ(Items("id,firm\n1,\"Firma \"\"Nord\"\" ApS\"\n2,\"\"\"\"\n3,\"\"\n"),
            (Lines{R"(in.csv:2 {"id":"1","firm":"Firma \"Nord\" ApS"})",
                   R"(in.csv:3 {"id":"2","firm":"\""})", R"(in.csv:4 {"id":"3","firm":""})"}));
}

TEST(CsvReader, QuotedFieldWithEmbeddedNewline) {
  EXPECT_EQ(Items("id,note\n1,\"line one\nline two\"\n2,x\n"),
            (Lines{R"(in.csv:2 {"id":"1","note":"line one\nline two"})",
                   R"(in.csv:4 {"id":"2","note":"x"})"}));
}

TEST(CsvReader, CrlfLineEndingsIncludingInsideQuotes) {
  EXPECT_EQ(Items("id,note\r\n1,\"a\r\nb\"\r\n2,c\r\n"),
            (Lines{R"(in.csv:2 {"id":"1","note":"a\r\nb"})", R"(in.csv:4 {"id":"2","note":"c"})"}));
}

TEST(CsvReader, LoneCarriageReturnEndsALine) {
  EXPECT_EQ(Items("id,n\r1,a\r2,b"),
            (Lines{R"(in.csv:2 {"id":"1","n":"a"})", R"(in.csv:3 {"id":"2","n":"b"})"}));
}

TEST(CsvReader, FinalLineWithoutNewline) {
  EXPECT_EQ(Items("id,n\n1,a\n2,\"b\""),
            (Lines{R"(in.csv:2 {"id":"1","n":"a"})", R"(in.csv:3 {"id":"2","n":"b"})"}));
  EXPECT_EQ(Items("id,n\n1,"), (Lines{R"(in.csv:2 {"id":"1","n":""})"}));
}

TEST(CsvReader, BlankLinesAndDelimiterOnlyLinesAreSkipped) {
  EXPECT_EQ(Items("\nid;n\n\n1;a\r\n\r\n;\n  \n2;b\n\n", Semicolon()),
            (Lines{R"(in.csv:4 {"id":"1","n":"a"})", R"(in.csv:8 {"id":"2","n":"b"})"}));
}

TEST(CsvReader, EmptyQuotedFieldsAreNotBlank) {
  EXPECT_EQ(Items("a,b\n\"\",\"\"\n"), (Lines{R"(in.csv:2 {"a":"","b":""})"}));
}

TEST(CsvReader, Utf8BomIsRemovedFromTheFirstHeaderName) {
  ReadOutcome r = ReadAll(WriteFile("\xEF\xBB\xBFid,navn\n1,S\xC3\xB8ren\n"));
  ASSERT_TRUE(r.open.ok()) << r.open.message();
  EXPECT_EQ(r.names, (Lines{"id", "navn"}));
  EXPECT_EQ(r.items, (Lines{R"(in.csv:2 {"id":"1","navn":"Søren"})"}));
  EXPECT_EQ(r.encoding, Encoding::kUtf8);
}

TEST(CsvReader, HeaderNamesAreTrimmed) {
  ReadOutcome r = ReadAll(WriteFile(" id ;\t\"navn\" ; Fra dato\n1;a;b\n"), Semicolon());
  ASSERT_TRUE(r.open.ok()) << r.open.message();
  EXPECT_EQ(r.names, (Lines{"id", "navn", "Fra dato"}));
}

TEST(CsvReader, Windows1252ConvertedToUtf8) {
  CsvReaderOptions opt;
  opt.delimiter = ';';
  opt.encoding = Encoding::kWindows1252;
  EXPECT_EQ(Items("navn;by;bel\xF8" "b\n\xC6" "be \xD8" "sterg\xE5" "rd;\xC5" "rhus;\x80 12,50\n", opt),
            (Lines{R"(in.csv:2 {"navn":"Æbe Østergård","by":"Århus","beløb":"€ 12,50"})"}));
}

TEST(CsvReader, Iso88591ConvertedToUtf8) {
  CsvReaderOptions opt;
  opt.encoding = Encoding::kLatin1;
  EXPECT_EQ(Items("n,s\n\xE6\xF8\xE5,\xA4\n", opt), (Lines{R"(in.csv:2 {"n":"æøå","s":"¤"})"}));
}

TEST(CsvReader, AutoDetectsWindows1252) {
  ReadOutcome r = ReadAll(WriteFile("navn\nS\xF8ren\n\xC6" "gir\n"));
  ASSERT_TRUE(r.open.ok());
  EXPECT_EQ(r.encoding, Encoding::kWindows1252);
  EXPECT_EQ(r.items, (Lines{R"(in.csv:2 {"navn":"Søren"})", R"(in.csv:3 {"navn":"Ægir"})"}));
}

TEST(CsvReader, AutoDetectsUtf8) {
  ReadOutcome r = ReadAll(WriteFile("navn\nSøren\n€\n"));
  ASSERT_TRUE(r.open.ok());
  EXPECT_EQ(r.encoding, Encoding::kUtf8);
  EXPECT_EQ(r.items, (Lines{R"(in.csv:2 {"navn":"Søren"})", R"(in.csv:3 {"navn":"€"})"}));
}

TEST(CsvReader, AutoDecidesAtTheFirstNonAsciiByteAfterAnAsciiStart) {
  // The sniff window sees only ASCII; the windows-1252 byte comes later.
  std::string data = "navn\n";
  for (int i = 0; i < 50; ++i) data += "Anna\n";
  data += "S\xF8ren\n";
  CsvReaderOptions opt;
  opt.sniff_bytes = 64;
  opt.chunk_size = 64;
  ReadOutcome r = ReadAll(WriteFile(data), opt);
  ASSERT_TRUE(r.open.ok());
  ASSERT_EQ(r.items.size(), 51u);
  EXPECT_EQ(r.items.back(), R"(in.csv:52 {"navn":"Søren"})");
  EXPECT_EQ(r.encoding, Encoding::kWindows1252);
}

TEST(CsvReader, ColumnsRenameTheHeader) {
  CsvReaderOptions opt;
  opt.columns = {"cpr", "from"};
  ReadOutcome r = ReadAll(WriteFile("CPR-nr,Fra dato\n0101,2024-01-01\n"), opt);
  ASSERT_TRUE(r.open.ok());
  EXPECT_EQ(r.names, (Lines{"cpr", "from"}));
  EXPECT_EQ(r.items, (Lines{R"(in.csv:2 {"cpr":"0101","from":"2024-01-01"})"}));
}

TEST(CsvReader, ColumnsWithTheWrongCountFailAtOpen) {
  CsvReaderOptions opt;
  opt.columns = {"a"};
  ReadOutcome r = ReadAll(WriteFile("x,y\n1,2\n"), opt);
  EXPECT_EQ(r.open.code(), Status::Code::kInvalid);
  EXPECT_NE(r.open.message().find("`columns` lists 1 names but the header has 2"), std::string::npos)
      << r.open.message();
}

TEST(CsvReader, HeaderFalseNamesFieldsByColumns) {
  CsvReaderOptions opt;
  opt.header = false;
  opt.columns = {"a", "b"};
  EXPECT_EQ(Items("1,2\n3,4\n", opt),
            (Lines{R"(in.csv:1 {"a":"1","b":"2"})", R"(in.csv:2 {"a":"3","b":"4"})"}));
}

TEST(CsvReader, HeaderFalseWithoutColumnsFailsAtOpen) {
  CsvReaderOptions opt;
  opt.header = false;
  EXPECT_EQ(ReadAll(WriteFile("1,2\n"), opt).open.code(), Status::Code::kInvalid);
}

TEST(CsvReader, SkipRowsBeforeTheHeader) {
  CsvReaderOptions opt;
  opt.skip_rows = 2;
  opt.delimiter = ';';
  EXPECT_EQ(Items("Udtræk fra Løn\r\nDato: 01-02-2024; \"x\r\nid;n\r\n1;a\r\n", opt),
            (Lines{R"(in.csv:4 {"id":"1","n":"a"})"}));
}

TEST(CsvReader, DuplicateHeaderNameFailsNamingTheColumn) {
  ReadOutcome r = ReadAll(WriteFile("id,navn,id\n1,2,3\n"));
  EXPECT_EQ(r.open.code(), Status::Code::kInvalid);
  EXPECT_NE(r.open.message().find("column 3 'id' repeats column 1"), std::string::npos)
      << r.open.message();
}

TEST(CsvReader, EmptyHeaderNameFailsNamingTheColumn) {
  ReadOutcome r = ReadAll(WriteFile("id, ,navn\n1,2,3\n"));
  EXPECT_EQ(r.open.code(), Status::Code::kInvalid);
  EXPECT_NE(r.open.message().find("header column 2 has no name"), std::string::npos)
      << r.open.message();
}

TEST(CsvReader, TrailingDelimiterOnEveryLineIsIgnored) {
  ReadOutcome r = ReadAll(WriteFile("id;n;\n1;a;\n2;b\n3;c;d\n"), Semicolon());
  ASSERT_TRUE(r.open.ok()) << r.open.message();
  EXPECT_EQ(r.names, (Lines{"id", "n"}));
  EXPECT_EQ(r.items, (Lines{R"(in.csv:2 {"id":"1","n":"a"})", R"(in.csv:3 {"id":"2","n":"b"})",
                            "in.csv:4 REJECTED line 4: 3 fields, the header has 2 | 3;c;d"}));
}

TEST(CsvReader, TrimStripsSpacesAroundValuesAndQuotes) {
  CsvReaderOptions opt;
  opt.trim = true;
  EXPECT_EQ(Items("a,b,c\n  x , \"y,z\"  ,\t \n", opt),
            (Lines{R"(in.csv:2 {"a":"x","b":"y,z","c":""})"}));
  EXPECT_EQ(Items("a,b\n x ,\" y\"\n"), (Lines{R"(in.csv:2 {"a":" x ","b":" y"})"}));
}

TEST(CsvReader, QuoteInsideAnUnquotedFieldIsLiteral) {
  EXPECT_EQ(Items("a,b\n5'11\",Firma \"Nord\"\n"),
            (Lines{R"(in.csv:2 {"a":"5'11\"","b":"Firma \"Nord\""})"}));
}

TEST(CsvReader, NoQuoteCharacterReadsQuotesLiterally) {
  CsvReaderOptions opt;
  opt.quote = std::nullopt;
  EXPECT_EQ(Items("a,b\n\"x,y\"\n", opt), (Lines{R"(in.csv:2 {"a":"\"x","b":"y\""})"}));
}

TEST(CsvReader, UnbalancedQuoteMidFileRejectsOnlyThatRow) {
  EXPECT_EQ(Items("id,n,x\n1,a,b\n2,\"oops,c\n3,d,e\n4,f,g\n"),
            (Lines{R"(in.csv:2 {"id":"1","n":"a","x":"b"})",
                   "in.csv:3 REJECTED line 3, column 3: quoted field is never closed (unbalanced "
                   "quote) | 2,\"oops,c",
                   R"(in.csv:4 {"id":"3","n":"d","x":"e"})", R"(in.csv:5 {"id":"4","n":"f","x":"g"})"}));
}

TEST(CsvReader, UnbalancedQuoteClosedByALaterQuoteRejectsOnlyTheOpeningRow) {
  // The stray quote on line 3 pairs with the quote on line 5.
  EXPECT_EQ(Items("id,n,x\n1,a,b\n2,\"oops,c\n3,d,e\n4,\"f\",g\n5,h,i\n"),
            (Lines{R"(in.csv:2 {"id":"1","n":"a","x":"b"})",
                   "in.csv:3 REJECTED line 3, column 3: quoted field is not closed on its line, and "
                   "the quote that ends it on line 5 is followed by an unexpected character "
                   "(unbalanced quote) | 2,\"oops,c",
                   R"(in.csv:4 {"id":"3","n":"d","x":"e"})", R"(in.csv:5 {"id":"4","n":"f","x":"g"})",
                   R"(in.csv:6 {"id":"5","n":"h","x":"i"})"}));
}

TEST(CsvReader, UnbalancedQuoteBeyondMaxRecordLines) {
  CsvReaderOptions opt;
  opt.max_record_lines = 3;
  std::string data = "id,n\n1,\"open\n";
  for (int i = 2; i <= 6; ++i) data += std::to_string(i) + ",v\n";
  data += "7,\"x\"\"\n";  // would close the field opened on line 2 far below
  ReadOutcome r = ReadAll(WriteFile(data), opt);
  ASSERT_TRUE(r.open.ok());
  ASSERT_EQ(r.items.size(), 7u);
  EXPECT_EQ(r.items[0],
            "in.csv:2 REJECTED line 2, column 3: quoted field is not closed within 3 lines "
            "(unbalanced quote; see max_record_lines) | 1,\"open");
  EXPECT_EQ(r.items[1], R"(in.csv:3 {"id":"2","n":"v"})");
  EXPECT_EQ(r.items[5], R"(in.csv:7 {"id":"6","n":"v"})");
  EXPECT_EQ(r.items[6].substr(0, 17), "in.csv:8 REJECTED");
}

TEST(CsvReader, MultiLineFieldWithinMaxRecordLinesIsRead) {
  CsvReaderOptions opt;
  opt.max_record_lines = 3;
  EXPECT_EQ(Items("a,b\n\"1\n2\n3\",x\n", opt), (Lines{R"(in.csv:2 {"a":"1\n2\n3","b":"x"})"}));
}

TEST(CsvReader, TextAfterClosingQuoteIsRejectedWithLineAndColumn) {
  EXPECT_EQ(Items("id,n,x\n1,\"a\"b,c\n2,d,e\n"),
            (Lines{"in.csv:2 REJECTED line 2, column 6: unexpected character after closing quote "
                   "| 1,\"a\"b,c",
                   R"(in.csv:3 {"id":"2","n":"d","x":"e"})"}));
}

TEST(CsvReader, WrongFieldCountsAreRejected) {
  EXPECT_EQ(Items("a,b,c\n1,2\n1,2,3,4\n\"x\ny\",2\n5,6,7\n"),
            (Lines{"in.csv:2 REJECTED line 2: 2 fields, the header has 3 | 1,2",
                   "in.csv:3 REJECTED line 3: 4 fields, the header has 3 | 1,2,3,4",
                   "in.csv:4 REJECTED line 4: 2 fields, the header has 3 (the row spans lines 4-5) "
                   "| \"x\ny\",2",
                   R"(in.csv:6 {"a":"5","b":"6","c":"7"})"}));
}

// limits.columns: a header wider than it fails Open at once, naming the file
// and line, before a name or a record entry is made for each column.
TEST(CsvReader, HeaderWiderThanLimitsColumnsFailsAtOpen) {
  CsvReaderOptions opt;
  opt.max_columns = 3;
  ReadOutcome r = ReadAll(WriteFile("a,b,c,d\n1,2,3,4\n"), opt);
  EXPECT_EQ(r.open.code(), Status::Code::kInvalid);
  EXPECT_EQ(r.open.message(),
            "in.csv: line 1: the header has 4 columns, more than limits.columns (3); raise "
            "limits.columns if the file really is this wide");
  // A trailing delimiter is not a column.
  EXPECT_TRUE(ReadAll(WriteFile("a,b,c,\n1,2,3,\n"), opt).open.ok());
  opt.header = false;
  opt.columns = {"a", "b", "c", "d"};
  EXPECT_EQ(ReadAll(WriteFile("1,2,3,4\n"), opt).open.message(),
            "in.csv: `columns` lists 4 names, more than limits.columns (3)");
}

// A row of far more fields than the header is rejected on its count (the
// reader keeps no place for the fields past the header's width); a row of
// nothing but delimiters is still a blank line.
TEST(CsvReader, RowOfManyMoreFieldsThanTheHeaderIsRejectedOnItsCount) {
  const std::string wide = "2" + std::string(100000, ',') + "x";
  const std::string blank(100000, ',');
  EXPECT_EQ(Items("a,b\n1,2\n" + wide + "\n" + blank + "\n3,4\n"),
            (Lines{R"(in.csv:2 {"a":"1","b":"2"})",
                   "in.csv:3 REJECTED line 3: 100001 fields, the header has 2 | " + wide,
                   R"(in.csv:5 {"a":"3","b":"4"})"}));
}

TEST(CsvReader, InvalidUtf8IsRejectedWithTheColumnOfTheBadByte) {
  CsvReaderOptions opt;
  opt.encoding = Encoding::kUtf8;
  opt.delimiter = ';';
  EXPECT_EQ(Items("id;navn\n1;Søren\n2;J\xF8rgen\n3;Åse\n", opt),
            (Lines{R"(in.csv:2 {"id":"1","navn":"Søren"})",
                   "in.csv:3 REJECTED line 3, column 4 (field 'navn'): invalid UTF-8 (byte 0xF8) | "
                   "2;Jørgen",
                   R"(in.csv:4 {"id":"3","navn":"Åse"})"}));
}

TEST(CsvReader, InvalidUtf8ColumnCountsCharactersNotBytes) {
  CsvReaderOptions opt;
  opt.encoding = Encoding::kUtf8;
  EXPECT_EQ(Items("a,b\nææ,x\xE6\n", opt),
            (Lines{"in.csv:2 REJECTED line 2, column 5 (field 'b'): invalid UTF-8 (byte 0xE6) | "
                   "ææ,xæ"}));
}

TEST(CsvReader, NulByteIsRejected) {
  EXPECT_EQ(Items(std::string("a,b\n1,x\0y\n2,z\n", 14)),
            (Lines{"in.csv:2 REJECTED line 2, column 4 (field 'b'): NUL byte | 1,x" +
                       std::string(1, '\0') + "y",
                   R"(in.csv:3 {"a":"2","b":"z"})"}));
}

TEST(CsvReader, RejectedWindows1252RowKeepsRawTextAsUtf8) {
  CsvReaderOptions opt;
  opt.encoding = Encoding::kWindows1252;
  EXPECT_EQ(Items("a,b\n\xE6,\xF8,\xE5\n", opt),
            (Lines{"in.csv:2 REJECTED line 2: 3 fields, the header has 2 | æ,ø,å"}));
}

// Reading with every small chunk size gives the same items as one big read.
void ExpectSameForAllChunkSizes(const std::string& data, CsvReaderOptions opt) {
  fs::path p = WriteFile(data);
  ReadOutcome reference = ReadAll(p, opt);
  ASSERT_TRUE(reference.open.ok()) << reference.open.message();
  for (size_t chunk = 1; chunk <= 24; ++chunk) {
    CsvReaderOptions small = opt;
    small.chunk_size = chunk;
    small.sniff_bytes = chunk;
    ReadOutcome r = ReadAll(p, small);
    ASSERT_TRUE(r.open.ok()) << "chunk " << chunk << ": " << r.open.message();
    EXPECT_EQ(r.items, reference.items) << "chunk " << chunk;
  }
}

TEST(CsvReader, ChunkBoundaryInsideQuotedField) {
  ExpectSameForAllChunkSizes(
      "id,note\r\n1,\"a \"\"quoted\"\" text, with\r\na line break\"\r\n2,\"x\"\r\n3,y\r\n"
      "4,\"unbalanced\r\n5,z",
      {});
}

TEST(CsvReader, ChunkBoundaryInsideARejectedRow) {
  ExpectSameForAllChunkSizes(
      "id,n,x\r\n1,\"a\"b and more text,c\r\n2,d,e\r\n3,\"f\ng\"h,i\r\n4,j,k\r\n5,\"open,l\r\n"
      "6,m,n\r\n7,o\r\n8,\"p\",q\r\n",
      {});
}

TEST(CsvReader, ChunkBoundaryInsideMultiByteUtf8Character) {
  ExpectSameForAllChunkSizes("navn,by\nSøren,Århus\n€€€,😀😀\nx,y\n", {});
  CsvReaderOptions declared;
  declared.encoding = Encoding::kUtf8;
  ExpectSameForAllChunkSizes("navn,by\nSøren,Århus\n€€€,😀😀\nJ\xF8rgen,x\n", declared);
}

TEST(CsvReader, ChunkBoundaryInsideCrLf) {
  ExpectSameForAllChunkSizes("a,b\r\n1,2\r\n\r\n3,\"4\r\n5\"\r\n", {});
}

TEST(CsvReader, MissingFileIsNotFound) {
  CsvReader reader({});
  EXPECT_EQ(reader.Open(TempDir() / "nope.csv").code(), Status::Code::kNotFound);
}

TEST(CsvReader, EmptyFileHasNoRecordsAndWarns) {
  CaptureLog log;
  ReadOutcome r = ReadAll(WriteFile(""), {}, &log);
  ASSERT_TRUE(r.open.ok());
  EXPECT_TRUE(r.items.empty());
  EXPECT_EQ(log.warnings.size(), 1u);
}

TEST(CsvReader, HeaderOnlyFileHasNoRecords) {
  ReadOutcome r = ReadAll(WriteFile("a,b\r\n"));
  ASSERT_TRUE(r.open.ok());
  EXPECT_EQ(r.names, (Lines{"a", "b"}));
  EXPECT_TRUE(r.items.empty());
}

TEST(CsvReader, MalformedHeaderFailsAtOpen) {
  ReadOutcome r = ReadAll(WriteFile("a,\"b\nc\n"));
  EXPECT_EQ(r.open.code(), Status::Code::kInvalid);
  EXPECT_NE(r.open.message().find("header row: line 1, column 3: quoted field is never closed"),
            std::string::npos)
      << r.open.message();
}

TEST(CsvReader, ManyRowsStreamThroughASmallBuffer) {
  std::string data = "id,v\n";
  for (int i = 0; i < 20000; ++i) data += std::to_string(i) + ",\"x\"\n";
  CsvReaderOptions opt;
  opt.chunk_size = 1000;
  CsvReader reader(opt);
  ASSERT_TRUE(reader.Open(WriteFile(data)).ok());
  SourceItem item;
  int n = 0;
  while (*reader.Next(&item)) {
    ASSERT_FALSE(item.rejected);
    ++n;
  }
  EXPECT_EQ(n, 20000);
  EXPECT_EQ(item.position, "in.csv:20001");
}

// A municipal-style file: 12 columns, Danish text, decimal commas, dates.
std::string MunicipalCsv(int rows) {
  std::string out =
      "Medarbejdernr;CPR;Fornavn;Efternavn;Afdeling;Fra dato;Til dato;Timer;Beløb;Fraværskode;"
      "Bemærkning;Oprettet\r\n";
  std::mt19937 rng(42);
  const char* first[] = {"Anna", "Søren", "Mette", "Jørgen", "Åse", "Lars"};
  const char* last[] = {"Hansen", "Østergård", "Nielsen", "Kjær", "Mølgaard"};
  const char* dept[] = {"Børn og Unge", "Teknik og Miljø", "Ældre", "Jobcenter"};
  char buf[512];
  for (int i = 0; i < rows; ++i) {
    const unsigned r = rng();
    std::snprintf(buf, sizeof buf,
                  "%06d;%02u%02u%02u-%04u;%s;%s;%s;2024-%02u-%02u;2024-%02u-%02u;%u,%u;%u.%03u,%02u;"
                  "%s;%s;2024-01-15T08:%02u:00\r\n",
                  i, r % 28 + 1, r % 12 + 1, r % 90 + 10, r % 10000, first[r % 6], last[r % 5],
                  dept[r % 4], r % 12 + 1, r % 28 + 1, r % 12 + 1, r % 28 + 1, r % 8, r % 10,
                  r % 100, r % 1000, r % 100, (r % 3) ? "SYG" : "FERIE",
                  (r % 7) ? "" : "\"Aftalt med leder; se sag\"", r % 60);
    out += buf;
  }
  return out;
}

TEST(CsvReader, BenchmarkMunicipalFile) {
  constexpr int kRows = 100000;
  fs::path p = WriteFile(MunicipalCsv(kRows));
  CsvReaderOptions opt;
  opt.delimiter = ';';
  double best = 1e9;
  for (int round = 0; round < 3; ++round) {
    CsvReader reader(opt);
    auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(reader.Open(p).ok());
    SourceItem item;
    int n = 0;
    while (*reader.Next(&item)) {
      ASSERT_FALSE(item.rejected) << item.reason;
      ++n;
    }
    ASSERT_EQ(n, kRows);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::printf("[ BENCH    ] CsvReader: %d rows x 12 columns (%.1f MB) in %.3f s = %.0f rows/s\n", kRows,
              static_cast<double>(fs::file_size(p)) / 1e6, best, kRows / best);
}

}  // namespace
}  // namespace keyonce::connectors::csv
