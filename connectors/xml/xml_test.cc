#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "keyonce/connector.h"
#include "keyonce/testing.h"
#include "tests/support/sanitizers.h"

namespace keyonce {
namespace {

namespace fs = std::filesystem;

Settings::Entry Lit(Value v) {
  Settings::Entry e;
  e.literal = std::move(v);
  return e;
}

Settings::Entry Tmpl(const std::string& text) {
  TemplateError err;
  auto t = Template::Compile(text, TemplateContext::kText, &err);
  if (!t) throw std::runtime_error("bad template in test: " + err.message);
  Settings::Entry e;
  e.tmpl = std::move(*t);
  return e;
}

class NullLog : public Log {
 public:
  void Info(const std::string&) override {}
  void Warn(const std::string&) override {}
};

// Resets the peak RSS to the current RSS (Linux 4.0+), so that a
// measurement is not hidden by an earlier peak.
void ResetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5"; }

// Peak resident set size of this process (VmHWM), in KiB.
long PeakRssKib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

class XmlSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("keyonce_xml_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ctx_.recipe = "r";
    ctx_.run_id = "1";
    ctx_.log = &log_;
  }
  void TearDown() override { fs::remove_all(dir_); }

  const ConnectorDef& Def() {
    const ConnectorDef* d = Registry::Global().Find("xml");
    if (!d) throw std::runtime_error("xml connector not registered");
    return *d;
  }

  void WriteFile(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / name, std::ios::binary) << content;
  }

  Settings Base(const std::string& records, const std::string& file = "in.xml") {
    Settings s;
    s.where = "source";
    s.base_dir = dir_;
    s.entries["path"] = Tmpl(file);
    s.entries["records"] = Lit(Value(records));
    return s;
  }

  testing::SourceRead ReadAll(const Settings& s) {
    return testing::ReadSource(Def().make_source(s), ctx_);
  }

  fs::path dir_;
  NullLog log_;
  RunContext ctx_;
};

TEST_F(XmlSourceTest, ConnectorIsRegisteredWithDocumentedSettings) {
  const ConnectorDef& d = Def();
  ASSERT_TRUE(d.source.has_value());
  EXPECT_FALSE(d.target.has_value());
  for (const auto& f : d.source->fields) {
    EXPECT_FALSE(f.description.empty()) << f.name;
  }
  // make_source checks settings without touching the file.
  Settings s = Base("/Export/Person", "missing.xml");
  EXPECT_TRUE(d.make_source(s).ok());
  s.entries["records"] = Lit(Value("Export/Person"));
  EXPECT_FALSE(d.make_source(s).ok());
  s = Base("/Export/Person");
  s.entries["fields"] = Lit(boost::json::parse(R"({"a": "Name[", "b": "x"})"));
  auto bad = d.make_source(s);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("fields.a: XPath error at offset"), std::string::npos)
      << bad.status().message();
}

TEST_F(XmlSourceTest, ConvertsRecordElementsToRecords) {
  WriteFile("in.xml",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<Export>\n"
            "  <Person id=\"7\" xmlns:x=\"urn:x\">\n"
            "    <CPR>010185-1233</CPR>\n"
            "    <Name><First>Ann</First><Last>Berg</Last></Name>\n"
            "    <Phone>1</Phone><Phone>2</Phone>\n"
            "    <Child/>\n"
            "    <Note lang=\"da\">Hej &amp; farvel</Note>\n"
            "    <x:Tag><![CDATA[<b>]]></x:Tag>\n"
            "  </Person>\n"
            "  <Person id=\"8\"><Phone>3</Phone></Person>\n"
            "</Export>\n");
  Settings s = Base("/Export/Person");
  auto r = ReadAll(s);
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_EQ(r.items[0].position, "in.xml:3");
  EXPECT_EQ(ToJson(r.items[0].record),
            R"({"@id":"7","CPR":"010185-1233","Name":{"First":"Ann","Last":"Berg"},)"
            R"("Phone":["1","2"],"Child":"","Note":{"@lang":"da","#text":"Hej & farvel"},)"
            R"("Tag":"<b>"})");
  EXPECT_EQ(ToJson(r.items[1].record), R"({"@id":"8","Phone":"3"})");

  s.entries["lists"] = Lit(boost::json::parse(R"(["Phone"])"));
  r = ReadAll(s);
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_EQ(ToJson(r.items[1].record), R"({"@id":"8","Phone":["3"]})");
}

TEST_F(XmlSourceTest, FieldsAreXPathsWithTheRecipesPrefixes) {
  // The file uses prefix `a` for the namespace the recipe calls `p`, and a
  // default namespace the recipe does not declare.
  WriteFile("in.xml",
            "<a:Export xmlns:a=\"urn:persons\" xmlns=\"urn:other\">\n"
            "  <a:Person a:id=\"1\"><a:Name>Ann</a:Name><City>Aarhus</City>"
            "<a:Phone>1</a:Phone><a:Phone>2</a:Phone></a:Person>\n"
            "  <a:Person a:id=\"2\"><a:Name>Bo</a:Name></a:Person>\n"
            "</a:Export>\n");
  Settings s = Base("/p:Export/p:Person");
  s.entries["namespaces"] = Lit(boost::json::parse(R"({"p": "urn:persons"})"));
  s.entries["fields"] = Lit(boost::json::parse(
      R"J({"id": "@p:id", "name": "p:Name", "city": "City", "phones": "p:Phone",
          "n": "count(p:Phone)", "missing": "p:Nope"})J"));
  auto r = ReadAll(s);
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  ASSERT_EQ(r.items.size(), 2u);
  EXPECT_EQ(ToJson(r.items[0].record),
            R"({"id":"1","name":"Ann","city":"Aarhus","phones":["1","2"],"n":2,"missing":null})");
  EXPECT_EQ(ToJson(r.items[1].record),
            R"({"id":"2","name":"Bo","city":null,"phones":null,"n":0,"missing":null})");
}

TEST_F(XmlSourceTest, MalformedRecordIsQuarantinedAndTheRestIsRead) {
  WriteFile("in.xml",
            "<Export>\n"
            "<Person><Name>a</Name></Person>\n"
            "<Person><Name>b</Nme></Person>\n"
            "<Person><Name a=\"1\"b=\"2\">c</Name></Person>\n"
            "<Person><Name>d</Name></Person>\n"
            "</Export>\n");
  auto r = ReadAll(Base("/Export/Person"));
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  ASSERT_EQ(r.items.size(), 4u);
  EXPECT_FALSE(r.items[0].rejected);
  EXPECT_TRUE(r.items[1].rejected);
  EXPECT_EQ(r.items[1].position, "in.xml:3");
  EXPECT_EQ(r.items[1].reason,
            "in.xml:3:16: closing tag </Nme> does not match <Name> opened at line 3");
  EXPECT_EQ(r.items[1].raw, "<Person><Name>b</Nme></Person>");
  EXPECT_TRUE(r.items[2].rejected);  // pugixml finds the missing space
  EXPECT_NE(r.items[2].reason.find("in.xml:4:"), std::string::npos) << r.items[2].reason;
  EXPECT_FALSE(r.items[3].rejected);
  EXPECT_EQ(ToJson(r.items[3].record), R"({"Name":"d"})");
}

TEST_F(XmlSourceTest, BrokenFileFailsWithFileLineAndColumn) {
  WriteFile("in.xml", "<Export>\n  <Persons>\n    <Person/>\n  </Export>\n");
  auto r = ReadAll(Base("/Export/Persons/Person"));
  EXPECT_EQ(r.items.size(), 1u);
  EXPECT_EQ(r.error.message(),
            "in.xml:4:3: closing tag </Export> does not match <Persons> opened at line 2");
  r = ReadAll(Base("/Export/Person", "nope.xml"));
  EXPECT_EQ(r.error.code(), Status::Code::kNotFound);
}

TEST_F(XmlSourceTest, BillionLaughsGivesAClearErrorFastWithBoundedMemory) {
  std::string bomb = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n";
  for (int i = 1; i < 10; ++i) {
    bomb += "<!ENTITY lol" + std::to_string(i) + " \"";
    for (int k = 0; k < 10; ++k) {
      bomb += "&lol" + (i == 1 ? std::string() : std::to_string(i - 1)) + ";";
    }
    bomb += "\">\n";
  }
  bomb += "]>\n<lolz><lol>&lol9;</lol></lolz>\n";
  WriteFile("in.xml", bomb);
  ResetPeakRss();
  long rss_before = PeakRssKib();
  auto start = std::chrono::steady_clock::now();
  auto r = ReadAll(Base("/lolz/lol"));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(r.items.empty());
  EXPECT_NE(r.error.message().find("in.xml:2:1: the DOCTYPE declares entities"), std::string::npos)
      << r.error.ToString();
  EXPECT_LT(seconds, 5.0);
  EXPECT_LT(PeakRssKib() - rss_before, 10 * 1024);
}

TEST_F(XmlSourceTest, Latin1FileDeclaredInTheXmlDeclaration) {
  WriteFile("in.xml",
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<R><P><By>\xC6r\xF8sk\xF8"
            "bing</By></P></R>");
  auto r = ReadAll(Base("/R/P"));
  ASSERT_TRUE(r.error.ok()) << r.error.ToString();
  ASSERT_EQ(r.items.size(), 1u);
  EXPECT_EQ(ToJson(r.items[0].record),
            "{\"By\":\"\xC3\x86r\xC3\xB8sk\xC3\xB8"
            "bing\"}");
}

// A ~64 MB file is read with memory that does not grow with it.
TEST_F(XmlSourceTest, LargeFileStreamsWithFlatMemory) {
  const fs::path file = dir_ / "in.xml";
#if defined(KEYONCE_ASAN)
  // Under AddressSanitizer RSS says nothing (below): a smaller file still
  // streams every buffer boundary through the checked code, in a tenth of
  // the time.
  const int kRecords = 30000;
#else
  const int kRecords = 300000;
#endif
  {
    std::ofstream out(file, std::ios::binary);
    out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Export xmlns=\"urn:export\">\n<Persons>\n";
    std::string filler(120, 'z');
    for (int i = 0; i < kRecords; ++i) {
      out << "<Person id=\"" << i << "\"><CPR>0101851233</CPR><Name><First>Person " << i
          << "</First><Last>Lastname</Last></Name><Note>" << filler << "</Note>"
          << "<Phone>12345678</Phone><Phone>87654321</Phone></Person>\n";
    }
    out << "</Persons>\n</Export>\n";
  }
  const auto size = fs::file_size(file);
  ASSERT_GT(size, static_cast<uintmax_t>(kRecords) * 200);
  ResetPeakRss();
  long rss_before = PeakRssKib();
  auto src = Def().make_source(Base("/Export/Persons/Person"));
  ASSERT_TRUE(src.ok());
  ASSERT_TRUE((*src)->Open(ctx_).ok());
  int count = 0;
  std::string last_id;
  while (true) {
    SourceItem item;
    auto r = (*src)->Next(&item);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (!*r) break;
    ASSERT_FALSE(item.rejected) << item.reason;
    last_id = item.record.at("@id").as_string().c_str();
    ++count;
  }
  long growth_kib = PeakRssKib() - rss_before;
  EXPECT_EQ(count, kRecords);
  EXPECT_EQ(last_id, std::to_string(kRecords - 1));
#if defined(KEYONCE_ASAN)
  // AddressSanitizer keeps freed memory in quarantine: RSS says nothing.
  (void)growth_kib;
  return;
#endif
  // The file is > 60 MB; reading it may use a few MB of buffers.
  EXPECT_LT(growth_kib, 16 * 1024)
      << "peak RSS grew by " << growth_kib << " KiB reading " << size / (1 << 20) << " MB";
}

std::string RunKeyonce(const fs::path& dir, const std::string& args, int* rc) {
  const char* env = std::getenv("KEYONCE_BINARY");
  std::string keyonce = env && *env ? env : KEYONCE_BINARY;
  std::string cmd = "cd '" + dir.string() + "' && '" + keyonce + "' " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  int status = pclose(p);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// The keyonce binary: a namespaced Windows-1252 XML export -> JSONL, with a
// malformed record quarantined by its position.
TEST_F(XmlSourceTest, EndToEndRecipeReadsRecordsAndQuarantinesTheMalformedOne) {
  WriteFile("in.xml",
            "<?xml version=\"1.0\" encoding=\"windows-1252\"?>\n"
            "<e:Export xmlns:e=\"urn:export\">\n"
            "  <e:Person id=\"1\"><e:Name>\xC6gir</e:Name><e:Phone>1</e:Phone></e:Person>\n"
            "  <e:Person id=\"2\"><e:Name>Bo</e:Nme></e:Person>\n"
            "  <e:Person id=\"3\"><e:Name>Cia \x80</e:Name></e:Person>\n"
            "</e:Export>\n");
  WriteFile("recipe.yaml",
            "recipe: xml-export\n"
            "source:\n"
            "  type: xml\n"
            "  path: in.xml\n"
            "  records: /x:Export/x:Person\n"
            "  namespaces: {x: \"urn:export\"}\n"
            "  lists: [Phone]\n"
            "key: \"{{ record['@id'] }}\"\n"
            "targets:\n"
            "  - name: out\n"
            "    type: jsonl\n"
            "    path: out.jsonl\n");
  int rc = 0;
  std::string state = "--state '" + (dir_ / "state.db").string() + "'";
  std::string out = RunKeyonce(dir_, "run " + state + " recipe.yaml", &rc);
  EXPECT_EQ(rc, 3) << out;
  std::ifstream in(dir_ / "out.jsonl");
  std::string all((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(all,
            "{\"@id\":\"1\",\"Name\":\"\xC3\x86gir\",\"Phone\":[\"1\"]}\n"
            "{\"@id\":\"3\",\"Name\":\"Cia \xE2\x82\xAC\"}\n");
  out = RunKeyonce(dir_, "quarantine " + state + " xml-export", &rc);
  EXPECT_NE(out.find("in.xml:4"), std::string::npos) << out;
  EXPECT_NE(out.find("closing tag </e:Nme> does not match <e:Name>"), std::string::npos) << out;
}

}  // namespace
}  // namespace keyonce
