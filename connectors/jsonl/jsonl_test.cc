#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "keyonce/connector.h"

namespace keyonce {
namespace {

namespace fs = std::filesystem;

// --- helpers ---------------------------------------------------------------

Settings::Entry Lit(Value v) {
  Settings::Entry e;
  e.literal = std::move(v);
  return e;
}

Settings::Entry Tmpl(const std::string& text, TemplateContext c = TemplateContext::kText) {
  TemplateError err;
  auto t = Template::Compile(text, c, &err);
  if (!t) throw std::runtime_error("bad template in test: " + err.message);
  Settings::Entry e;
  e.tmpl = std::move(*t);
  return e;
}

// A minimal structure template: strings with {{ are kValue templates.
class TestStructure : public StructureTemplate {
 public:
  explicit TestStructure(const Value& shape) : shape_(shape) { Compile(shape_); }
  Result<Value> Evaluate(const Scope& scope) const override {
    size_t i = 0;
    return Eval(shape_, scope, &i);
  }

 private:
  void Compile(const Value& v) {
    if (v.is_string() && std::string_view(v.get_string()).find("{{") != std::string_view::npos) {
      TemplateError err;
      auto t = Template::Compile(std::string(v.get_string()), TemplateContext::kValue, &err);
      if (!t) throw std::runtime_error("bad template in test: " + err.message);
      tmpls_.push_back(std::move(*t));
    } else if (v.is_object()) {
      for (const auto& kv : v.get_object()) Compile(kv.value());
    } else if (v.is_array()) {
      for (const auto& c : v.get_array()) Compile(c);
    }
  }
  Result<Value> Eval(const Value& v, const Scope& scope, size_t* i) const {
    if (v.is_string() && std::string_view(v.get_string()).find("{{") != std::string_view::npos) {
      return tmpls_[(*i)++].Evaluate(scope);
    }
    if (v.is_object()) {
      boost::json::object o;
      for (const auto& kv : v.get_object()) {
        auto r = Eval(kv.value(), scope, i);
        if (!r.ok()) return r;
        o[kv.key()] = std::move(*r);
      }
      return Value(std::move(o));
    }
    if (v.is_array()) {
      boost::json::array a;
      for (const auto& c : v.get_array()) {
        auto r = Eval(c, scope, i);
        if (!r.ok()) return r;
        a.push_back(std::move(*r));
      }
      return Value(std::move(a));
    }
    return v;
  }
  Value shape_;
  std::vector<Template> tmpls_;
};

class NullLog : public Log {
 public:
  void Info(const std::string&) override {}
  void Warn(const std::string&) override {}
};

std::string Read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

class JsonConnectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("keyonce_jsonl_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    params_ = boost::json::object{{"month", "2024-05"}};
    ctx_.recipe = "test";
    ctx_.run_id = "run1";
    ctx_.target_name = "out";
    ctx_.scope.params = &params_;
    ctx_.log = &log_;
  }
  void TearDown() override { fs::remove_all(dir_); }

  Settings Base(const std::string& path) {
    Settings s;
    s.where = "test";
    s.base_dir = dir_;
    s.entries["path"] = Tmpl(path);
    return s;
  }

  const ConnectorDef& Def(const std::string& name) {
    const ConnectorDef* d = Registry::Global().Find(name);
    if (!d) throw std::runtime_error("connector not registered: " + name);
    return *d;
  }

  std::unique_ptr<Source> OpenSource(const std::string& type, const Settings& s) {
    auto src = Def(type).make_source(s);
    EXPECT_TRUE(src.ok()) << src.status().ToString();
    Status st = (*src)->Open(ctx_);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return std::move(src).value();
  }

  static std::vector<SourceItem> ReadAll(Source* src, Status* end = nullptr) {
    std::vector<SourceItem> out;
    while (true) {
      SourceItem item;
      auto r = src->Next(&item);
      if (!r.ok()) {
        if (end) *end = r.status();
        break;
      }
      if (!*r) break;
      out.push_back(std::move(item));
    }
    return out;
  }

  std::unique_ptr<Target> MakeTarget(const std::string& type, const Settings& s) {
    auto t = Def(type).make_target(s);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return std::move(t).value();
  }

  // Writes records to a target, as the engine would.
  void WriteRecords(Target* t, const std::vector<Record>& records, uint64_t batch) {
    for (const auto& r : records) {
      Value rv = r;
      Scope scope = ctx_.scope;
      scope.record = &rv;
      WriteOp op;
      op.record = &r;
      op.scope = &scope;
      op.batch = batch;
      WriteResult w = t->Write(op);
      ASSERT_TRUE(w.status.ok()) << w.status.ToString();
    }
  }

  static std::vector<Value> Lines(const std::string& text) {
    std::vector<Value> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) out.push_back(boost::json::parse(line));
    return out;
  }

  fs::path dir_;
  Value params_;
  NullLog log_;
  RunContext ctx_;
};

// --- registration ----------------------------------------------------------

TEST_F(JsonConnectorTest, BothConnectorsAreRegisteredWithDocumentedSettings) {
  for (const char* name : {"jsonl", "json"}) {
    const ConnectorDef& d = Def(name);
    EXPECT_FALSE(d.summary.empty());
    ASSERT_TRUE(d.source && d.target) << name;
    EXPECT_FALSE(d.lookup);
    for (const auto* spec : {&*d.source, &*d.target}) {
      EXPECT_FALSE(spec->summary.empty());
      EXPECT_FALSE(spec->example_yaml.empty());
      for (const auto& f : spec->fields) {
        EXPECT_FALSE(f.description.empty()) << name << "." << f.name;
      }
      EXPECT_EQ(spec->fields[0].name, "path");
      EXPECT_TRUE(spec->fields[0].required);
      EXPECT_EQ(spec->fields[0].template_roots, kRootsStatic);
    }
  }
}

// --- jsonl source ----------------------------------------------------------

TEST_F(JsonConnectorTest, JsonlSourceReadsObjectsAndSkipsBlankLines) {
  WriteFile(dir_ / "in.jsonl",
            "\xEF\xBB\xBF{\"a\": 1, \"b\": \"x\"}\n"
            "\n"
            "   \r\n"
            "{\"a\": 2, \"nested\": {\"c\": [1, 2]}}\r\n"
            "{\"a\": 3}");  // no final newline
  auto src = OpenSource("jsonl", Base("in.jsonl"));
  Status end;
  auto items = ReadAll(src.get(), &end);
  EXPECT_TRUE(end.ok()) << end.ToString();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_FALSE(items[0].rejected);
  EXPECT_EQ(items[0].record.at("a").as_int64(), 1);
  EXPECT_EQ(items[0].record.at("b").as_string(), "x");
  EXPECT_EQ(items[0].position, "in.jsonl:1");
  EXPECT_EQ(items[1].position, "in.jsonl:4");
  EXPECT_EQ(items[1].record.at("nested").at("c").at(1).as_int64(), 2);
  EXPECT_EQ(items[2].position, "in.jsonl:5");
  EXPECT_EQ(items[2].record.at("a").as_int64(), 3);
  EXPECT_TRUE(src->Close().ok());
}

TEST_F(JsonConnectorTest, JsonlSourceRejectsBadLinesWithLineAndColumnAndGoesOn) {
  WriteFile(dir_ / "in.jsonl",
            "{\"a\": 1}\n"
            "{\"a\": \n"
            "[1, 2]\n"
            "{\"a\": 2} trailing\n"
            "{\"name\": \"\xC3\xA6\xC3\xB8\xFF\"}\n"
            "{\"a\" 5}\n"
            "{\"a\": 3}\n");
  auto src = OpenSource("jsonl", Base("in.jsonl"));
  Status end;
  auto items = ReadAll(src.get(), &end);
  EXPECT_TRUE(end.ok());
  ASSERT_EQ(items.size(), 7u);
  EXPECT_FALSE(items[0].rejected);

  EXPECT_TRUE(items[1].rejected);
  EXPECT_EQ(items[1].position, "in.jsonl:2");
  EXPECT_EQ(items[1].reason.rfind("line 2, column 7: ", 0), 0u) << items[1].reason;
  EXPECT_EQ(items[1].raw, "{\"a\": ");

  EXPECT_TRUE(items[2].rejected);
  EXPECT_NE(items[2].reason.find("line 3"), std::string::npos);
  EXPECT_NE(items[2].reason.find("not an object"), std::string::npos);
  EXPECT_EQ(items[2].raw, "[1, 2]");

  EXPECT_TRUE(items[3].rejected);
  EXPECT_EQ(items[3].reason, "line 4, column 10: unexpected text after the JSON value");

  EXPECT_TRUE(items[4].rejected);
  // Column counts characters: {"name": "æø is 12 characters before the bad byte.
  EXPECT_EQ(items[4].reason, "line 5, column 13: invalid UTF-8");

  EXPECT_TRUE(items[5].rejected);
  EXPECT_EQ(items[5].reason.rfind("line 6, column 6: ", 0), 0u) << items[5].reason;

  EXPECT_FALSE(items[6].rejected);
  EXPECT_EQ(items[6].record.at("a").as_int64(), 3);
  EXPECT_EQ(items[6].position, "in.jsonl:7");
}

TEST_F(JsonConnectorTest, JsonlSourceReadsLinesLongerThanItsBuffer) {
  std::string big(700 * 1024, 'q');
  std::string text;
  for (int i = 0; i < 3; ++i) text += "{\"i\": " + std::to_string(i) + ", \"s\": \"" + big + "\"}\n";
  for (int i = 3; i < 20000; ++i) text += "{\"i\": " + std::to_string(i) + "}\n";
  WriteFile(dir_ / "big.jsonl", text);
  auto src = OpenSource("jsonl", Base("big.jsonl"));
  auto items = ReadAll(src.get());
  ASSERT_EQ(items.size(), 20000u);
  for (int i = 0; i < 20000; ++i) {
    ASSERT_FALSE(items[i].rejected) << i;
    ASSERT_EQ(items[i].record.at("i").as_int64(), i);
  }
  EXPECT_EQ(items[1].record.at("s").as_string().size(), big.size());
}

TEST_F(JsonConnectorTest, JsonlSourcePathIsATemplateAndMissingFileIsNotFound) {
  WriteFile(dir_ / "in-2024-05.jsonl", "{\"a\": 1}\n");
  auto src = OpenSource("jsonl", Base("in-{{ params.month }}.jsonl"));
  EXPECT_EQ(ReadAll(src.get()).size(), 1u);

  auto missing = Def("jsonl").make_source(Base("nope.jsonl"));
  ASSERT_TRUE(missing.ok());
  Status st = (*missing)->Open(ctx_);
  EXPECT_EQ(st.code(), Status::Code::kNotFound);
}

// --- json source -----------------------------------------------------------

TEST_F(JsonConnectorTest, JsonSourceStreamsAnArrayWithLinePositions) {
  WriteFile(dir_ / "in.json",
            "[\n"
            "  {\"id\": 1, \"name\": \"Åse\"},\n"
            "  {\"id\": 2, \"tags\": [\"a\", {\"b\": null}]},\n"
            "  {\"id\": 3, \"x\": 1.5, \"y\": true, \"z\": -7, \"u\": 18446744073709551615}\n"
            "]\n");
  auto src = OpenSource("json", Base("in.json"));
  Status end;
  auto items = ReadAll(src.get(), &end);
  EXPECT_TRUE(end.ok()) << end.ToString();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].record.at("name").as_string(), "Åse");
  EXPECT_EQ(items[0].position, "in.json:2");
  EXPECT_EQ(items[1].record.at("tags").at(1).at("b"), Value(nullptr));
  EXPECT_EQ(items[1].position, "in.json:3");
  EXPECT_EQ(items[2].record.at("x").as_double(), 1.5);
  EXPECT_EQ(items[2].record.at("y").as_bool(), true);
  EXPECT_EQ(items[2].record.at("z").as_int64(), -7);
  EXPECT_EQ(items[2].record.at("u").as_uint64(), 18446744073709551615ull);
}

TEST_F(JsonConnectorTest, JsonSourceFollowsRecordsPath) {
  WriteFile(dir_ / "in.json",
            "{\"meta\": {\"items\": [{\"wrong\": 1}], \"count\": 2},\n"
            " \"items\": [{\"wrong\": 2}],\n"
            " \"data\": {\"total\": 2, \"list\": [[1]], \"items\": [\n"
            "   {\"id\": \"a\"},\n"
            "   {\"id\": \"b\", \"items\": [{\"deep\": 1}]}\n"
            " ], \"after\": {\"items\": []}},\n"
            " \"tail\": \"x\"}\n");
  Settings s = Base("in.json");
  s.entries["records_path"] = Lit("data.items");
  auto src = OpenSource("json", s);
  Status end;
  auto items = ReadAll(src.get(), &end);
  EXPECT_TRUE(end.ok()) << end.ToString();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].record.at("id").as_string(), "a");
  EXPECT_EQ(items[0].position, "in.json:4");
  EXPECT_EQ(items[1].record.at("items").at(0).at("deep").as_int64(), 1);
}

TEST_F(JsonConnectorTest, JsonSourceRejectsElementsThatAreNotObjects) {
  WriteFile(dir_ / "in.json", "[{\"a\": 1}, 42, \"text\", [1], null, {\"a\": 2}]");
  auto src = OpenSource("json", Base("in.json"));
  auto items = ReadAll(src.get());
  ASSERT_EQ(items.size(), 6u);
  EXPECT_FALSE(items[0].rejected);
  for (int i = 1; i <= 4; ++i) {
    EXPECT_TRUE(items[i].rejected) << i;
    EXPECT_NE(items[i].reason.find("not an object"), std::string::npos);
  }
  EXPECT_EQ(items[1].raw, "42");
  EXPECT_EQ(items[2].raw, "\"text\"");
  EXPECT_EQ(items[3].raw, "[1]");
  EXPECT_FALSE(items[5].rejected);
  EXPECT_EQ(items[5].record.at("a").as_int64(), 2);
}

TEST_F(JsonConnectorTest, JsonSourceMalformedFileIsInvalidWithLineAndColumn) {
  WriteFile(dir_ / "in.json", "[{\"a\": 1},\n {\"a\": 2,,}]\n");
  auto src = OpenSource("json", Base("in.json"));
  Status end;
  auto items = ReadAll(src.get(), &end);
  ASSERT_EQ(items.size(), 1u);  // the record before the error is still handed out
  EXPECT_EQ(end.code(), Status::Code::kInvalid);
  EXPECT_NE(end.message().find("line 2, column 10"), std::string::npos) << end.message();
}

TEST_F(JsonConnectorTest, JsonSourceShapeErrors) {
  struct Case {
    std::string text, records_path, expect;
  } cases[] = {
      {"{\"a\": 1}", "", "does not hold a JSON array"},
      {"{\"data\": {\"items\": {}}}", "data.items", "records_path 'data.items' is not an array"},
      {"{\"data\": {\"other\": []}}", "data.items", "records_path 'data.items' not found"},
      {"[1, 2", "", "ends too early"},
      {"", "", "holds no JSON"},
      {"[] []", "", "line 1, column 4: unexpected text after the JSON document"},
  };
  for (const auto& c : cases) {
    WriteFile(dir_ / "in.json", c.text);
    Settings s = Base("in.json");
    if (!c.records_path.empty()) s.entries["records_path"] = Lit(Value(c.records_path));
    auto src = OpenSource("json", s);
    Status end;
    auto items = ReadAll(src.get(), &end);
    EXPECT_EQ(end.code(), Status::Code::kInvalid) << c.text;
    EXPECT_NE(end.message().find(c.expect), std::string::npos) << c.text << " -> " << end.message();
  }
  Settings bad = Base("in.json");
  bad.entries["records_path"] = Lit("data..items");
  EXPECT_FALSE(Def("json").make_source(bad).ok());
}

TEST_F(JsonConnectorTest, JsonSourceStreamsManyRecordsAcrossChunks) {
  std::string text = "{\"data\": [";
  for (int i = 0; i < 50000; ++i) {
    if (i) text += ",";
    text += "{\"i\": " + std::to_string(i) + ", \"s\": \"" + std::string(i % 50, 'x') + "\"}";
  }
  text += "]}";
  WriteFile(dir_ / "in.json", text);
  Settings s = Base("in.json");
  s.entries["records_path"] = Lit("data");
  auto src = OpenSource("json", s);
  Status end;
  auto items = ReadAll(src.get(), &end);
  EXPECT_TRUE(end.ok()) << end.ToString();
  ASSERT_EQ(items.size(), 50000u);
  for (int i = 0; i < 50000; ++i) ASSERT_EQ(items[i].record.at("i").as_int64(), i);
}

// --- jsonl target ----------------------------------------------------------

TEST_F(JsonConnectorTest, JsonlTargetWritesWholeRecordWithoutBody) {
  auto t = MakeTarget("jsonl", Base("out/{{ params.month }}.jsonl"));
  EXPECT_FALSE(t->Traits().supports_update);
  EXPECT_FALSE(t->Traits().idempotent);
  ASSERT_TRUE(t->Open(ctx_).ok());
  WriteRecords(t.get(), {Record{{"a", 1}, {"b", "ø"}}, Record{{"a", 2}}}, 1);
  auto c = t->Commit(1, true);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->durable);
  EXPECT_TRUE(t->Close(true).ok());
  EXPECT_EQ(Read(dir_ / "out" / "2024-05.jsonl"), "{\"a\":1,\"b\":\"ø\"}\n{\"a\":2}\n");
  EXPECT_EQ(c->token, std::to_string(Read(dir_ / "out" / "2024-05.jsonl").size()));
}

TEST_F(JsonConnectorTest, JsonlTargetRendersBodyExactlyAsWritten) {
  Settings s = Base("out.jsonl");
  s.entries["body"].structure = std::make_shared<TestStructure>(boost::json::parse(
      R"({"id": "{{ record.a }}", "label": "n={{ record.a }}", "fixed": [1, "two"],
          "period": {"month": "{{ params.month }}"}})"));
  auto t = MakeTarget("jsonl", s);
  ASSERT_TRUE(t->Open(ctx_).ok());
  Record r{{"a", 7}, {"secret", "not written"}};
  Value rv = r;
  Scope scope = ctx_.scope;
  scope.record = &rv;
  WriteOp op;
  op.record = &r;
  op.scope = &scope;
  auto rendered = t->Render(op);
  ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
  EXPECT_EQ(*rendered, boost::json::parse(
                           R"({"id": 7, "label": "n=7", "fixed": [1, "two"],
                               "period": {"month": "2024-05"}})"));
  ASSERT_TRUE(t->Write(op).status.ok());
  ASSERT_TRUE(t->Commit(1, true).ok());
  ASSERT_TRUE(t->Close(true).ok());
  EXPECT_EQ(Read(dir_ / "out.jsonl"), ToJson(*rendered) + "\n");
}

TEST_F(JsonConnectorTest, JsonlTargetWritesNumbersAndStringsAsPeopleWriteThem) {
  auto t = MakeTarget("jsonl", Base("out.jsonl"));
  ASSERT_TRUE(t->Open(ctx_).ok());
  Record r{{"hours", 7.5},
           {"whole", 8.0},
           {"big", 1e21},
           {"tiny", 0.0001},
           {"tinier", 1.5e-9},
           {"neg", -2},
           {"u", 18446744073709551615ull},
           {"nan", std::nan("")},
           {"text", "a\"b\\c\nd\te\x01" "f/æø€😀"},
           {"list", boost::json::array{1, "x", nullptr, true}},
           {"obj", boost::json::object{{"k\"ey", false}}}};
  WriteRecords(t.get(), {r}, 1);
  ASSERT_TRUE(t->Commit(1, true).ok());
  std::string text = Read(dir_ / "out.jsonl");
  EXPECT_EQ(text,
            "{\"hours\":7.5,\"whole\":8.0,\"big\":1e+21,\"tiny\":0.0001,\"tinier\":1.5e-09,\"neg\":-2,"
            "\"u\":18446744073709551615,\"nan\":null,"
            "\"text\":\"a\\\"b\\\\c\\nd\\te\\u0001f/æø€😀\","
            "\"list\":[1,\"x\",null,true],\"obj\":{\"k\\\"ey\":false}}\n");
  Value back = boost::json::parse(text);
  Record expected = r;
  expected["nan"] = nullptr;
  EXPECT_EQ(back, Value(expected));
}

TEST_F(JsonConnectorTest, JsonlTargetAppendsToExistingFileAddingMissingNewline) {
  WriteFile(dir_ / "out.jsonl", "{\"old\":1}");
  auto t = MakeTarget("jsonl", Base("out.jsonl"));
  ASSERT_TRUE(t->Open(ctx_).ok());
  EXPECT_EQ(*t->Checkpoint(), "9");
  WriteRecords(t.get(), {Record{{"new", 2}}}, 1);
  ASSERT_TRUE(t->Commit(1, true).ok());
  ASSERT_TRUE(t->Close(true).ok());
  EXPECT_EQ(Read(dir_ / "out.jsonl"), "{\"old\":1}\n{\"new\":2}\n");
}

TEST_F(JsonConnectorTest, JsonlTargetAppendRecoversByTruncatingUncommittedLines) {
  fs::path out = dir_ / "out.jsonl";
  std::string token1, crash_image;
  {
    auto t = MakeTarget("jsonl", Base("out.jsonl"));
    ASSERT_TRUE(t->Open(ctx_).ok());
    auto cp = t->Checkpoint();
    ASSERT_TRUE(cp.ok());
    EXPECT_EQ(*cp, "0");
    WriteRecords(t.get(), {Record{{"n", 1}}, Record{{"n", 2}}}, 1);
    auto c1 = t->Commit(1, false);
    ASSERT_TRUE(c1.ok());
    token1 = c1->token;
    // Batch 2 is written but never committed; it is big enough to reach the file.
    std::vector<Record> more;
    for (int i = 0; i < 30000; ++i) more.push_back(Record{{"n", i}, {"pad", std::string(40, 'p')}});
    WriteRecords(t.get(), more, 2);
    crash_image = Read(out);  // what a crash right now would leave behind
    ASSERT_GT(crash_image.size(), std::stoull(token1));
    t->Close(false);
  }
  EXPECT_EQ(Read(out).size(), std::stoull(token1));  // Close(false) drops the uncommitted lines
  WriteFile(out, crash_image);                       // ... but a crash would not have

  auto t2 = MakeTarget("jsonl", Base("out.jsonl"));
  auto rec = t2->Recover(ctx_, 2, token1);
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  EXPECT_TRUE(rec->known);
  EXPECT_EQ(rec->applied_through, 1u);
  EXPECT_EQ(Read(out), "{\"n\":1}\n{\"n\":2}\n");
  // The new run appends after the recovered point.
  ASSERT_TRUE(t2->Open(ctx_).ok());
  WriteRecords(t2.get(), {Record{{"n", 3}}}, 2);
  ASSERT_TRUE(t2->Commit(2, true).ok());
  ASSERT_TRUE(t2->Close(true).ok());
  EXPECT_EQ(Read(out), "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
}

TEST_F(JsonConnectorTest, JsonlTargetReplaceSwapsFileOnlyAtFinalCommit) {
  fs::path out = dir_ / "out.jsonl";
  WriteFile(out, "{\"old\":1}\n");
  Settings s = Base("out.jsonl");
  s.entries["mode"] = Lit("replace");
  auto t = MakeTarget("jsonl", s);
  ASSERT_TRUE(t->Open(ctx_).ok());
  auto cp = t->Checkpoint();
  ASSERT_TRUE(cp.ok());
  WriteRecords(t.get(), {Record{{"n", 1}}}, 1);
  auto c1 = t->Commit(1, false);
  ASSERT_TRUE(c1.ok());
  EXPECT_FALSE(c1->durable);
  EXPECT_EQ(Read(out), "{\"old\":1}\n");
  WriteRecords(t.get(), {Record{{"n", 2}}}, 2);
  auto c2 = t->Commit(2, true);
  ASSERT_TRUE(c2.ok());
  EXPECT_TRUE(c2->durable);
  ASSERT_TRUE(t->Close(true).ok());
  EXPECT_EQ(Read(out), "{\"n\":1}\n{\"n\":2}\n");

  // After the rename, a recovery sees that everything reached the file.
  auto t2 = MakeTarget("jsonl", s);
  auto rec = t2->Recover(ctx_, 1, *cp);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->known);
  EXPECT_EQ(rec->applied_through, UINT64_MAX);
}

TEST_F(JsonConnectorTest, JsonlTargetReplaceCrashBeforeRenameLeavesOldFile) {
  fs::path out = dir_ / "out.jsonl";
  WriteFile(out, "{\"old\":1}\n");
  Settings s = Base("out.jsonl");
  s.entries["mode"] = Lit("replace");
  std::string cp;
  {
    auto t = MakeTarget("jsonl", s);
    ASSERT_TRUE(t->Open(ctx_).ok());
    cp = *t->Checkpoint();
    WriteRecords(t.get(), {Record{{"n", 1}}}, 1);
    ASSERT_TRUE(t->Commit(1, false).ok());
  }
  WriteFile(dir_ / "out.jsonl.keyonce-tmp-4242", "{\"n\":1}\n");  // left by a crashed run
  auto t2 = MakeTarget("jsonl", s);
  auto rec = t2->Recover(ctx_, 1, cp);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->known);
  EXPECT_EQ(rec->applied_through, 0u);
  EXPECT_EQ(Read(out), "{\"old\":1}\n");
  EXPECT_FALSE(fs::exists(dir_ / "out.jsonl.keyonce-tmp-4242"));
}

TEST_F(JsonConnectorTest, JsonlTargetReplaceWithNothingWrittenLeavesFileAlone) {
  fs::path out = dir_ / "out.jsonl";
  WriteFile(out, "{\"old\":1}\n");
  Settings s = Base("out.jsonl");
  s.entries["mode"] = Lit("replace");
  auto t = MakeTarget("jsonl", s);
  ASSERT_TRUE(t->Open(ctx_).ok());
  std::string before = *t->Checkpoint();
  auto c = t->Commit(1, true);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->durable);
  EXPECT_EQ(c->token, before);
  ASSERT_TRUE(t->Close(true).ok());
  EXPECT_EQ(Read(out), "{\"old\":1}\n");
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_EQ(e.path().filename(), "out.jsonl");
  }
}

// --- json target -----------------------------------------------------------

TEST_F(JsonConnectorTest, JsonTargetCreatesArrayFile) {
  auto t = MakeTarget("json", Base("out.json"));
  ASSERT_TRUE(t->Open(ctx_).ok());
  WriteRecords(t.get(), {Record{{"a", 1}}, Record{{"a", 2}}}, 1);
  auto c1 = t->Commit(1, false);
  ASSERT_TRUE(c1.ok());
  EXPECT_FALSE(c1->durable);
  EXPECT_FALSE(fs::exists(dir_ / "out.json"));
  ASSERT_TRUE(t->Commit(2, true).ok());
  ASSERT_TRUE(t->Close(true).ok());
  EXPECT_EQ(Read(dir_ / "out.json"), "[\n{\"a\":1},\n{\"a\":2}\n]\n");
}

TEST_F(JsonConnectorTest, JsonTargetKeepsExistingElements) {
  WriteFile(dir_ / "out.json", "[ {\"old\": 1} ,\n  {\"old\": [2]}  ]  \n");
  auto t = MakeTarget("json", Base("out.json"));
  ASSERT_TRUE(t->Open(ctx_).ok());
  WriteRecords(t.get(), {Record{{"new", 3}}}, 1);
  ASSERT_TRUE(t->Commit(1, true).ok());
  ASSERT_TRUE(t->Close(true).ok());
  Value v = boost::json::parse(Read(dir_ / "out.json"));
  EXPECT_EQ(v, boost::json::parse(R"([{"old": 1}, {"old": [2]}, {"new": 3}])"));

  // An existing empty array is treated as no elements.
  WriteFile(dir_ / "empty.json", " [ ] ");
  auto t2 = MakeTarget("json", Base("empty.json"));
  ASSERT_TRUE(t2->Open(ctx_).ok());
  WriteRecords(t2.get(), {Record{{"x", 1}}}, 1);
  ASSERT_TRUE(t2->Commit(1, true).ok());
  EXPECT_EQ(boost::json::parse(Read(dir_ / "empty.json")), boost::json::parse(R"([{"x": 1}])"));
}

TEST_F(JsonConnectorTest, JsonTargetRefusesAFileThatIsNotAnArray) {
  WriteFile(dir_ / "out.json", "{\"a\": 1}");
  auto t = MakeTarget("json", Base("out.json"));
  Status st = t->Open(ctx_);
  EXPECT_EQ(st.code(), Status::Code::kInvalid);
  EXPECT_NE(st.message().find("not a JSON array"), std::string::npos);
  WriteFile(dir_ / "bad.json", "[1, 2");
  auto t2 = MakeTarget("json", Base("bad.json"));
  EXPECT_EQ(t2->Open(ctx_).code(), Status::Code::kInvalid);
}

TEST_F(JsonConnectorTest, JsonTargetRecoverTellsWhetherTheRenameHappened) {
  WriteFile(dir_ / "out.json", "[]");
  std::string cp;
  {
    auto t = MakeTarget("json", Base("out.json"));
    ASSERT_TRUE(t->Open(ctx_).ok());
    cp = *t->Checkpoint();
    WriteRecords(t.get(), {Record{{"a", 1}}}, 3);
    ASSERT_TRUE(t->Commit(3, false).ok());
    ASSERT_TRUE(t->Close(false).ok());
  }
  auto t2 = MakeTarget("json", Base("out.json"));
  auto rec = t2->Recover(ctx_, 3, cp);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->applied_through, 2u);
  EXPECT_EQ(Read(dir_ / "out.json"), "[]");

  ASSERT_TRUE(t2->Open(ctx_).ok());
  WriteRecords(t2.get(), {Record{{"a", 1}}}, 3);
  ASSERT_TRUE(t2->Commit(3, true).ok());
  auto t3 = MakeTarget("json", Base("out.json"));
  auto rec3 = t3->Recover(ctx_, 3, cp);
  ASSERT_TRUE(rec3.ok());
  EXPECT_EQ(rec3->applied_through, UINT64_MAX);
}

}  // namespace
}  // namespace keyonce
