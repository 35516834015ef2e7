#include "connectors/common/xml/xml_scanner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

namespace keyonce::connectors::xml {
namespace {

struct Scan {
  std::vector<ScannedRecord> records;
  Status error;
};

// Scans `doc` handing the scanner at most `piece` bytes per read.
Scan ScanAll(const std::string& doc, const std::string& path, size_t piece = 1 << 20,
             const Namespaces& ns = {}, size_t max_record = 16 << 20,
             XmlEncoding enc = XmlEncoding::kAuto) {
  auto p = RecordPath::Parse(path, ns);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  XmlScanner::Options o;
  o.path = *p;
  o.name = "t.xml";
  o.encoding = enc;
  o.max_record_bytes = max_record;
  o.chunk_bytes = std::max<size_t>(piece, 1);
  size_t at = 0;
  XmlScanner scanner(o, [&](char* data, size_t n) -> Result<size_t> {
    size_t k = std::min({n, piece, doc.size() - at});
    std::memcpy(data, doc.data() + at, k);
    at += k;
    return k;
  });
  Scan out;
  while (true) {
    ScannedRecord r;
    auto more = scanner.Next(&r);
    if (!more.ok()) {
      out.error = more.status();
      break;
    }
    if (!*more) break;
    out.records.push_back(std::move(r));
  }
  return out;
}

const std::string kDoc =
    "<?xml version=\"1.0\"?>\n"
    "<!-- export -->\n"
    "<Export xmlns:p=\"urn:p\" date=\"2026-11-01\">\n"
    "  <Persons>\n"
    "    <Person id=\"1\"><Name>Ann &amp; Bo</Name><![CDATA[<raw>]]></Person>\n"
    "    <?pi data?>\n"
    "    <Person id=\"2\"/>\n"
    "    <Person id='3' note=\"a > b\">\n"
    "      <p:Tag>x</p:Tag><!-- c --></Person>\n"
    "  </Persons>\n"
    "</Export>\n";

TEST(XmlScanner, CutsOutEachRecordWithItsPositionAndNamespaces) {
  Scan s = ScanAll(kDoc, "/Export/Persons/Person");
  ASSERT_TRUE(s.error.ok()) << s.error.ToString();
  ASSERT_EQ(s.records.size(), 3u);
  EXPECT_EQ(s.records[0].text,
            "<Person id=\"1\"><Name>Ann &amp; Bo</Name><![CDATA[<raw>]]></Person>");
  EXPECT_EQ(s.records[0].line, 5u);
  EXPECT_EQ(s.records[0].column, 5u);
  EXPECT_EQ(s.records[1].text, "<Person id=\"2\"/>");
  EXPECT_EQ(s.records[1].line, 7u);
  EXPECT_EQ(s.records[2].line, 8u);
  ASSERT_EQ(s.records[2].namespaces.size(), 1u);
  EXPECT_EQ(s.records[2].namespaces[0].first, "p");
  EXPECT_EQ(s.records[2].namespaces[0].second, "urn:p");
  for (const auto& r : s.records) EXPECT_TRUE(r.error.empty()) << r.error;
}

TEST(XmlScanner, SameResultWhateverTheChunkSize) {
  Scan whole = ScanAll(kDoc, "//Person");
  ASSERT_EQ(whole.records.size(), 3u);
  for (size_t piece : {1, 2, 3, 5, 7, 11, 64}) {
    Scan s = ScanAll(kDoc, "//Person", piece);
    ASSERT_TRUE(s.error.ok()) << piece << ": " << s.error.ToString();
    ASSERT_EQ(s.records.size(), 3u) << piece;
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(s.records[i].text, whole.records[i].text) << piece;
      EXPECT_EQ(s.records[i].line, whole.records[i].line) << piece;
      EXPECT_EQ(s.records[i].column, whole.records[i].column) << piece;
    }
  }
}

TEST(XmlScanner, PathsWithWildcardsDescendantsAndNamespaces) {
  const std::string doc =
      "<a:Root xmlns:a=\"urn:a\" xmlns=\"urn:default\"><a:G><Item>1</Item></a:G>"
      "<Other><Item>2</Item><Deep><Item>3</Item></Deep></Other></a:Root>";
  Namespaces ns{{"x", "urn:a"}};
  EXPECT_EQ(ScanAll(doc, "/x:Root/x:G/Item", 1 << 20, ns).records.size(), 1u);
  EXPECT_EQ(ScanAll(doc, "/x:Root/*/Item", 1 << 20, ns).records.size(), 2u);
  EXPECT_EQ(ScanAll(doc, "//Item", 1 << 20, ns).records.size(), 3u);
  EXPECT_EQ(ScanAll(doc, "/x:Root//Deep/Item", 1 << 20, ns).records.size(), 1u);
  // Unprefixed steps do not match elements in a declared namespace.
  EXPECT_EQ(ScanAll(doc, "/Root/G/Item", 1 << 20, ns).records.size(), 0u);
  // ... but do match the undeclared default namespace.
  EXPECT_EQ(ScanAll(doc, "/x:Root/Other/Item", 1 << 20, ns).records.size(), 1u);
  auto bad = RecordPath::Parse("/q:Root", ns);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("prefix 'q' is not declared"), std::string::npos);
  EXPECT_FALSE(RecordPath::Parse("Root/Item", ns).ok());
  EXPECT_FALSE(RecordPath::Parse("/Root/Item[1]", ns).ok());
}

TEST(XmlScanner, SubtreesNoRecordCanBeInAreSkippedButStillChecked) {
  // /R/Keep/Item: nothing inside Skip can match, though it holds Items; a
  // namespace declared inside a skipped subtree does not reach later records.
  const std::string doc =
      "<R xmlns:p=\"urn:p\"><Skip><Item>no</Item><Item><Item>deep</Item></Item></Skip>"
      "<Keep><Item>yes</Item><Skip2 xmlns:q=\"urn:q\"><Item/></Skip2><Item>yes2</Item></Keep>"
      "<Keep><Item>yes3</Item></Keep></R>";
  for (size_t piece : {1, 3, 1 << 20}) {
    Scan s = ScanAll(doc, "/R/Keep/Item", piece);
    ASSERT_TRUE(s.error.ok()) << s.error.ToString();
    ASSERT_EQ(s.records.size(), 3u) << piece;
    EXPECT_EQ(s.records[0].text, "<Item>yes</Item>");
    EXPECT_EQ(s.records[1].text, "<Item>yes2</Item>");
    ASSERT_EQ(s.records[1].namespaces.size(), 1u);
    EXPECT_EQ(s.records[1].namespaces[0].first, "p");
    EXPECT_EQ(s.records[2].text, "<Item>yes3</Item>");
  }
  EXPECT_EQ(ScanAll(doc, "//Item").records.size(), 6u);  // outermost Items only
  // A skipped subtree is still XML: a broken one fails the run where it breaks.
  Scan broken = ScanAll("<R><Skip><a></b></Skip><Keep><Item/></Keep></R>", "/R/Keep/Item");
  ASSERT_FALSE(broken.error.ok());
  EXPECT_NE(broken.error.message().find("closing tag </b> does not match <a>"), std::string::npos)
      << broken.error.message();
}

TEST(XmlScanner, MismatchedTagInsideARecordRejectsOnlyThatRecord) {
  const std::string doc =
      "<R>\n"
      "<P><N>a</N></P>\n"
      "<P><N>b</M></P>\n"     // stray closing tag: ignored, record malformed
      "<P><N>c<X></N></P>\n"  // unclosed <X>: closed by </N>, record malformed
      "<P><N>d</N></P>\n"
      "</R>\n";
  for (size_t piece : {1, 4, 1 << 20}) {
    Scan s = ScanAll(doc, "/R/P", piece);
    ASSERT_TRUE(s.error.ok()) << s.error.ToString();
    ASSERT_EQ(s.records.size(), 4u);
    EXPECT_TRUE(s.records[0].error.empty());
    EXPECT_EQ(s.records[1].error,
              "t.xml:3:8: closing tag </M> does not match <N> opened at line 3");
    EXPECT_NE(s.records[2].error.find("t.xml:4:11: closing tag </N> does not match <X>"),
              std::string::npos)
        << s.records[2].error;
    EXPECT_TRUE(s.records[3].error.empty());
    EXPECT_EQ(s.records[3].text, "<P><N>d</N></P>");
  }
}

TEST(XmlScanner, BrokenStructureOutsideRecordsFailsWithLineAndColumn) {
  Scan s = ScanAll("<R>\n <G>\n  <P/>\n </R>\n</G>", "/R/G/P");
  EXPECT_EQ(s.records.size(), 1u);
  EXPECT_EQ(s.error.message(), "t.xml:4:2: closing tag </R> does not match <G> opened at line 2");

  s = ScanAll("<R>\n<P>x</P>\n", "/R/P");
  EXPECT_EQ(s.records.size(), 1u);
  EXPECT_EQ(s.error.message(), "t.xml:3:1: the file ends before <R> opened at line 1 is closed");

  s = ScanAll("<R><P>x</P><!-- never ends", "/R/P");
  EXPECT_EQ(s.error.message(), "t.xml:1:12: the file ends inside a comment");

  s = ScanAll("<R/><R/>", "/R");
  EXPECT_EQ(s.error.message(), "t.xml:1:5: a second root element (an XML file has exactly one)");

  s = ScanAll("", "/R");
  EXPECT_NE(s.error.message().find("no XML element found"), std::string::npos);

  s = ScanAll("<R><P>x</P><Q a=1></Q></R>", "/R/P");
  EXPECT_EQ(s.error.message(), "t.xml:1:12: malformed start tag <Q>");
}

TEST(XmlScanner, EntityDeclarationsFailTheRunAtOnce) {
  std::string bomb =
      "<?xml version=\"1.0\"?>\n"
      "<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n";
  for (int i = 1; i < 10; ++i) {
    bomb += " <!ENTITY lol" + std::to_string(i) + " \"";
    for (int k = 0; k < 10; ++k)
      bomb += "&lol" + (i == 1 ? std::string() : std::to_string(i - 1)) + ";";
    bomb += "\">\n";
  }
  bomb += "]>\n<lolz><P>&lol9;</P></lolz>\n";
  Scan s = ScanAll(bomb, "/lolz/P");
  EXPECT_TRUE(s.records.empty());
  EXPECT_NE(s.error.message().find("t.xml:2:1: the DOCTYPE declares entities"), std::string::npos)
      << s.error.ToString();

  // An external DTD is never fetched; its entities are not defined here.
  s = ScanAll(
      "<!DOCTYPE R SYSTEM \"http://example.invalid/r.dtd\">\n<R><P>&ext;</P><P>&#65;&lt;</P></R>",
      "/R/P");
  ASSERT_TRUE(s.error.ok()) << s.error.ToString();
  ASSERT_EQ(s.records.size(), 2u);
  EXPECT_EQ(s.records[0].error,
            "t.xml:2:7: entity reference &ext; is not defined (entities declared in a DTD are "
            "never expanded)");
  EXPECT_TRUE(s.records[1].error.empty());
}

TEST(XmlScanner, BareAmpersandMakesTheRecordMalformed) {
  Scan s = ScanAll("<R><P>a & b</P><P a=\"x&y\"/></R>", "/R/P");
  ASSERT_EQ(s.records.size(), 2u);
  EXPECT_EQ(s.records[0].error, "t.xml:1:9: unescaped '&' (write &amp;)");
  EXPECT_EQ(s.records[1].error, "t.xml:1:23: unescaped '&' (write &amp;)");
}

TEST(XmlScanner, OversizedRecordIsRejectedWithoutHoldingIt) {
  std::string big(5000, 'x');
  std::string doc = "<R><P>a</P><P>" + big + "<Q>" + big + "</Q></P><P>c</P></R>";
  for (size_t piece : {100, 4096, 1 << 20}) {
    Scan s = ScanAll(doc, "/R/P", piece, {}, 2048);
    ASSERT_TRUE(s.error.ok()) << s.error.ToString();
    ASSERT_EQ(s.records.size(), 3u);
    EXPECT_TRUE(s.records[0].error.empty());
    EXPECT_EQ(s.records[1].error,
              "t.xml:1:12: the record is larger than max_record_bytes (2048 bytes)");
    EXPECT_TRUE(s.records[1].text.empty());
    EXPECT_EQ(s.records[2].text, "<P>c</P>");
  }
}

std::string Utf16(const std::string& ascii_and_latin1, bool le, bool bom) {
  std::string out;
  auto put = [&](char16_t u) {
    char a = static_cast<char>(u & 0xFF), b = static_cast<char>(u >> 8);
    if (le) {
      out += a;
      out += b;
    } else {
      out += b;
      out += a;
    }
  };
  if (bom) put(0xFEFF);
  for (unsigned char c : ascii_and_latin1) put(c);
  put(0xD83D);  // U+1F600 as a surrogate pair, inside the last record's text
  put(0xDE00);
  put('<'), put('/'), put('P'), put('>'), put('<'), put('/'), put('R'), put('>');
  return out;
}

TEST(XmlScanner, DecodesUtf16AndSingleByteEncodings) {
  for (bool le : {true, false}) {
    for (bool bom : {true, false}) {
      std::string doc =
          Utf16("<?xml version=\"1.0\" encoding=\"UTF-16\"?><R><P>\xE6</P><P>", le, bom);
      for (size_t piece : {1, 3, 1 << 20}) {
        Scan s = ScanAll(doc, "/R/P", piece);
        ASSERT_TRUE(s.error.ok()) << le << bom << piece << s.error.ToString();
        ASSERT_EQ(s.records.size(), 2u);
        EXPECT_EQ(s.records[0].text, "<P>\xC3\xA6</P>");
        EXPECT_EQ(s.records[1].text, "<P>\xF0\x9F\x98\x80</P>");
      }
    }
  }
  Scan latin =
      ScanAll("<?xml version='1.0' encoding='ISO-8859-1'?><R><P>\xE6\xF8\xE5</P></R>", "/R/P");
  ASSERT_EQ(latin.records.size(), 1u);
  EXPECT_EQ(latin.records[0].text, "<P>\xC3\xA6\xC3\xB8\xC3\xA5</P>");
  Scan cp = ScanAll("<?xml version=\"1.0\" encoding=\"windows-1252\"?><R><P>\x80</P></R>", "/R/P");
  ASSERT_EQ(cp.records.size(), 1u);
  EXPECT_EQ(cp.records[0].text, "<P>\xE2\x82\xAC</P>");
  Scan bom = ScanAll("\xEF\xBB\xBF<R><P>\xC3\xA6</P></R>", "/R/P", 2);
  ASSERT_EQ(bom.records.size(), 1u);
  EXPECT_EQ(bom.records[0].text, "<P>\xC3\xA6</P>");
}

TEST(XmlScanner, EncodingErrorsAreClear) {
  Scan s = ScanAll("<?xml version=\"1.0\" encoding=\"EBCDIC-DK\"?><R/>", "/R");
  EXPECT_EQ(s.error.message(),
            "t.xml: the XML declaration names encoding 'ebcdic-dk', which is not supported "
            "(UTF-8, UTF-16, ISO-8859-1, Windows-1252)");
  s = ScanAll("<R>\n<P>ok</P>\n<P>\xE6</P></R>", "/R/P");
  EXPECT_EQ(s.records.size(), 1u);
  EXPECT_EQ(s.error.message(),
            "t.xml:3:4: invalid UTF-8 (the file is not in the encoding it declares)");
}

TEST(XmlScanner, AlternativePathsAndTheContextEachRecordIsIn) {
  // Rows straight in a table or in a row group, styles before them; each
  // row knows the start tag of the table it is in.
  const std::string doc =
      "<doc><styles><s n='a'/></styles><body>"
      "<table name='T1'><row i='1'/><group><row i='2'/></group></table>"
      "<table name='T2'><row i='3'><row i='nested'/></row></table></body></doc>";
  auto path =
      RecordPath::Parse("/doc/styles/s | /doc/body/table/row | /doc/body/table/group/row", {});
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  auto context = RecordPath::Parse("/doc/body/table", {});
  ASSERT_TRUE(context.ok());
  XmlScanner::Options o;
  o.path = *path;
  o.context_path = *context;
  size_t at = 0;
  XmlScanner scanner(o, [&](char* data, size_t n) -> Result<size_t> {
    size_t k = std::min(n, doc.size() - at);
    std::memcpy(data, doc.data() + at, k);
    at += k;
    return k;
  });
  std::vector<std::string> seen;
  while (true) {
    ScannedRecord r;
    auto more = scanner.Next(&r);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    seen.push_back(r.text + " in " + std::to_string(r.context_index) + " " + r.context);
  }
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0], "<s n='a'/> in 0 ");
  EXPECT_EQ(seen[1], "<row i='1'/> in 1 <table name='T1'>");
  EXPECT_EQ(seen[2], "<row i='2'/> in 1 <table name='T1'>");
  EXPECT_EQ(seen[3], "<row i='3'><row i='nested'/></row> in 2 <table name='T2'>");
  EXPECT_FALSE(RecordPath::Parse("/doc/a | b", {}).ok());
}

}  // namespace
}  // namespace keyonce::connectors::xml
