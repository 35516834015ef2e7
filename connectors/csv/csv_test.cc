// Tests of the csv connector through its ConnectorDef: source, target and
// lookup built from Settings, as the engine builds them.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cctype>
#include <fstream>
#include <limits>
#include <sstream>

#include "connectors/common/text_file.h"
#include "connectors/csv/csv_connector.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::csv {
namespace {

namespace fs = std::filesystem;

class CaptureLog : public Log {
 public:
  void Info(const std::string& msg) override { infos.push_back(msg); }
  void Warn(const std::string& msg) override { warnings.push_back(msg); }
  std::vector<std::string> infos, warnings;
};

std::string ReadBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteBytes(const fs::path& p, std::string_view bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

Template Compile(const std::string& text, TemplateContext ctx = TemplateContext::kText) {
  TemplateError err;
  auto t = Template::Compile(text, ctx, &err);
  EXPECT_TRUE(t.has_value()) << text << ": " << err.message;
  return t ? *t : Template();
}

class CsvConnectorTest : public testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = fs::path(testing::TempDir()) /
           ("csv_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ctx_.recipe = "test";
    ctx_.run_id = "run-1";
    ctx_.log = &log_;
    ctx_.scope.params = &params_;
  }

  // Settings with literal values (the engine fills in defaults; the
  // connector's fallbacks are the same).
  Settings Make(std::initializer_list<std::pair<std::string, Value>> literals) {
    Settings s;
    s.where = "test.yaml: csv";
    s.base_dir = dir_;
    for (const auto& [name, v] : literals) s.entries[name].literal = v;
    return s;
  }

  void SetColumns(Settings* s, std::vector<std::pair<std::string, std::string>> columns) {
    auto& e = s->entries["columns"];
    for (auto& [name, text] : columns) e.tmpl_map.emplace_back(name, Compile(text));
  }

  const ConnectorDef& Def() {
    const ConnectorDef* def = Registry::Global().Find("csv");
    EXPECT_NE(def, nullptr);
    return *def;
  }

  std::unique_ptr<Source> NewSource(const Settings& s) {
    auto r = Def().make_source(s);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  std::unique_ptr<Target> NewTarget(const Settings& s) {
    auto r = Def().make_target(s);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  std::vector<SourceItem> ReadAllItems(const Settings& s) {
    std::vector<SourceItem> items;
    auto src = NewSource(s);
    if (!src) return items;
    Status st = src->Open(ctx_);
    EXPECT_TRUE(st.ok()) << st.message();
    if (!st.ok()) return items;
    SourceItem item;
    while (true) {
      auto r = src->Next(&item);
      EXPECT_TRUE(r.ok());
      if (!r.ok() || !*r) break;
      items.push_back(item);
    }
    EXPECT_TRUE(src->Close().ok());
    return items;
  }

  // Writes `records` through `target` as one batch each.
  struct Writer {
    Target* target;
    std::vector<Value> values;  // keeps the scope's record alive
    WriteResult Write(const Record& rec, uint64_t batch) {
      values.emplace_back(rec);
      Scope scope;
      scope.record = &values.back();
      WriteOp op;
      op.record = &values.back().get_object();
      op.scope = &scope;
      op.batch = batch;
      op.key = "k";
      return target->Write(op);
    }
  };

  Value Render(Target* target, const Record& rec) {
    Value v(rec);
    Scope scope;
    scope.record = &v;
    WriteOp op;
    op.record = &v.get_object();
    op.scope = &scope;
    auto r = target->Render(op);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : Value();
  }

  fs::path dir_;
  CaptureLog log_;
  RunContext ctx_;
  Value params_ = boost::json::object{{"month", "2024-02"}};
};

// ---------------------------------------------------------------- spec

bool IsSnakeCase(const std::string& s) {
  if (s.empty() || !std::islower(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
          c == '_')) {
      return false;
    }
  }
  return true;
}

TEST_F(CsvConnectorTest, RegisteredWithDocumentedSettings) {
  const ConnectorDef& def = Def();
  EXPECT_EQ(def.name, "csv");
  EXPECT_FALSE(def.summary.empty());
  ASSERT_TRUE(def.source && def.target && def.lookup);
  ASSERT_TRUE(def.make_source && def.make_target && def.make_lookup);
  for (const ComponentSpec* spec : {&*def.source, &*def.target, &*def.lookup}) {
    EXPECT_FALSE(spec->summary.empty());
    EXPECT_FALSE(spec->example_yaml.empty());
    for (const FieldSpec& f : spec->fields) {
      EXPECT_TRUE(IsSnakeCase(f.name)) << f.name;
      EXPECT_GT(f.description.size(), 20u) << f.name;
      EXPECT_FALSE(f.example.empty()) << f.name;
      if (f.type == FieldType::kEnum) {
        EXPECT_FALSE(f.enum_values.empty()) << f.name;
      }
    }
  }
  auto find = [](const ComponentSpec& spec, const std::string& name) -> const FieldSpec* {
    for (const FieldSpec& f : spec.fields) {
      if (f.name == name) return &f;
    }
    return nullptr;
  };
  const FieldSpec* path = find(*def.source, "path");
  ASSERT_NE(path, nullptr);
  EXPECT_EQ(path->type, FieldType::kTemplate);
  EXPECT_EQ(path->template_context, TemplateContext::kText);
  EXPECT_EQ(path->template_roots, static_cast<unsigned>(kRootsStatic));
  EXPECT_TRUE(path->required);
  ASSERT_NE(find(*def.source, "encoding"), nullptr);
  EXPECT_EQ(find(*def.source, "encoding")->default_yaml, "auto");
  ASSERT_NE(find(*def.target, "columns"), nullptr);
  EXPECT_EQ(find(*def.target, "columns")->type, FieldType::kTemplateMap);
  ASSERT_NE(find(*def.lookup, "key"), nullptr);
  EXPECT_TRUE(find(*def.lookup, "key")->required);
}

// ---------------------------------------------------------------- source

TEST_F(CsvConnectorTest, SourceReadsWindows1252SemicolonFile) {
  WriteBytes(dir_ / "fravaer.csv",
             "Udtr\xE6k 2024\r\nid;navn;timer\r\n1;S\xF8ren;7,5\r\n2;\"\xC6 \"\"\xE5\"\"\";\x80\r\n");
  auto items = ReadAllItems(Make({{"path", "fravaer.csv"},
                                  {"delimiter", ";"},
                                  {"encoding", "windows-1252"},
                                  {"skip_rows", 1}}));
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].position, "fravaer.csv:3");
  EXPECT_EQ(ToJson(items[0].record), R"({"id":"1","navn":"Søren","timer":"7,5"})");
  EXPECT_EQ(items[1].position, "fravaer.csv:4");
  EXPECT_EQ(ToJson(items[1].record), R"({"id":"2","navn":"Æ \"å\"","timer":"€"})");
}

TEST_F(CsvConnectorTest, SourcePathIsATemplateOverParams) {
  fs::create_directories(dir_ / "in");
  WriteBytes(dir_ / "in" / "2024-02.csv", "a\n1\n");
  Settings s = Make({});
  s.entries["path"].tmpl = Compile("in/{{ params.month }}.csv");
  auto items = ReadAllItems(s);
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].position, "2024-02.csv:2");
}

TEST_F(CsvConnectorTest, SourceRejectsMalformedRowsAndGoesOn) {
  WriteBytes(dir_ / "x.csv", "a,b\n1,\"2\n3,4\n5,6,7\n8,9\n");
  auto items = ReadAllItems(Make({{"path", "x.csv"}}));
  ASSERT_EQ(items.size(), 4u);
  EXPECT_TRUE(items[0].rejected);
  EXPECT_EQ(items[0].position, "x.csv:2");
  EXPECT_EQ(items[0].reason, "line 2, column 3: quoted field is never closed (unbalanced quote)");
  EXPECT_EQ(items[0].raw, "1,\"2");
  EXPECT_EQ(ToJson(items[1].record), R"({"a":"3","b":"4"})");
  EXPECT_TRUE(items[2].rejected);
  EXPECT_EQ(items[2].reason, "line 4: 3 fields, the header has 2");
  EXPECT_EQ(ToJson(items[3].record), R"({"a":"8","b":"9"})");
}

TEST_F(CsvConnectorTest, SourceMissingFileIsNotFound) {
  auto src = NewSource(Make({{"path", "nope.csv"}}));
  EXPECT_EQ(src->Open(ctx_).code(), Status::Code::kNotFound);
}

TEST_F(CsvConnectorTest, SourceRejectsBadSettings) {
  EXPECT_FALSE(Def().make_source(Make({{"path", "x.csv"}, {"delimiter", ";;"}})).ok());
  EXPECT_FALSE(Def().make_source(Make({{"path", "x.csv"}, {"delimiter", "\""}})).ok());
  EXPECT_FALSE(Def().make_source(Make({{"path", "x.csv"}, {"header", false}})).ok());
  EXPECT_FALSE(Def().make_source(Make({{"path", "x.csv"}, {"max_record_lines", 0}})).ok());
  EXPECT_TRUE(Def().make_source(Make({{"path", "x.csv"}, {"delimiter", "\\t"}})).ok());
  EXPECT_TRUE(Def().make_source(Make({{"path", "x.csv"}, {"quote", ""}})).ok());
}

// ---------------------------------------------------------------- target

TEST_F(CsvConnectorTest, TargetWritesHeaderQuotesAndGuardsFormulas) {
  Settings s = Make({{"path", "out.csv"}, {"fsync", false}});
  SetColumns(&s, {{"Navn", "{{ record.name }}"},
                  {"Timer", "{{ record.hours }}"},
                  {"Note", "{{ record.note }}"}});
  auto t = NewTarget(s);
  ASSERT_TRUE(t->Open(ctx_).ok());
  Writer w{t.get(), {}};
  EXPECT_TRUE(w.Write({{"name", "Anna"}, {"hours", 7.5}, {"note", "a, \"b\""}}, 1).status.ok());
  EXPECT_TRUE(w.Write({{"name", " Bo"}, {"hours", -3}, {"note", "=HYPERLINK(\"x\")"}}, 1).status.ok());
  EXPECT_TRUE(w.Write({{"name", "Cy\nDe"}, {"hours", "-1,5"}, {"note", "@x"}}, 1).status.ok());
  auto c = t->Commit(1, true);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->durable);
  EXPECT_TRUE(t->Close(true).ok());
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"),
            "Navn,Timer,Note\r\n"
            "Anna,7.5,\"a, \"\"b\"\"\"\r\n"
            "\" Bo\",-3,\"'=HYPERLINK(\"\"x\"\")\"\r\n"
            "\"Cy\nDe\",\"-1,5\",'@x\r\n");
}

TEST_F(CsvConnectorTest, TargetFormulaGuardCanBeTurnedOff) {
  Settings s = Make({{"path", "out.csv"}, {"fsync", false}, {"formula_guard", false},
                     {"line_ending", "lf"}});
  auto t = NewTarget(s);
  ASSERT_TRUE(t->Open(ctx_).ok());
  Writer w{t.get(), {}};
  EXPECT_TRUE(w.Write({{"f", "=1+1"}}, 1).status.ok());
  ASSERT_TRUE(t->Commit(1, true).ok());
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "f\n=1+1\n");
}

TEST_F(CsvConnectorTest, TargetRenderIsWhatWriteWrites) {
  Settings s = Make({{"path", "out.csv"}, {"fsync", false}, {"delimiter", ";"}});
  SetColumns(&s, {{"B", "{{ record.b }}"}, {"A", "x{{ record.a }}"}});
  auto t = NewTarget(s);
  Record rec{{"a", 1}, {"b", "=2"}};
  // Render works before Open (dry run) and touches nothing.
  EXPECT_EQ(ToJson(Render(t.get(), rec)), R"({"B":"'=2","A":"x1"})");
  EXPECT_FALSE(fs::exists(dir_ / "out.csv"));
  ASSERT_TRUE(t->Open(ctx_).ok());
  Writer w{t.get(), {}};
  WriteResult r = w.Write(rec, 1);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(ToJson(r.reply), R"({"B":"'=2","A":"x1"})");
  ASSERT_TRUE(t->Commit(1, true).ok());
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "B;A\r\n'=2;x1\r\n");
}

TEST_F(CsvConnectorTest, TargetWithoutColumnsWritesRecordFieldsInOrder) {
  Settings s = Make({{"path", "out.csv"}, {"fsync", false}});
  auto t = NewTarget(s);
  ASSERT_TRUE(t->Open(ctx_).ok());
  Writer w{t.get(), {}};
  EXPECT_TRUE(w.Write({{"id", 1}, {"name", "Anna"}, {"ok", true}}, 1).status.ok());
  EXPECT_TRUE(w.Write({{"name", "Bo"}, {"id", 2}}, 1).status.ok());  // reordered, one missing
  WriteResult extra = w.Write({{"id", 3}, {"other", "x"}}, 1);
  EXPECT_EQ(extra.status.code(), Status::Code::kPermanent);
  EXPECT_NE(extra.status.message().find("field 'other' is not a column"), std::string::npos);
  ASSERT_TRUE(t->Commit(1, true).ok());
  ASSERT_TRUE(t->Close(true).ok());
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "id,name,ok\r\n1,Anna,true\r\n2,Bo,\r\n");
}

TEST_F(CsvConnectorTest, TargetAppendsToAnExistingFileWithoutASecondHeader) {
  WriteBytes(dir_ / "out.csv", "name,id\r\nOld,0");  // no final line break
  Settings s = Make({{"path", "out.csv"}, {"fsync", false}});
  auto t = NewTarget(s);
  ASSERT_TRUE(t->Open(ctx_).ok());
  Writer w{t.get(), {}};
  EXPECT_TRUE(w.Write({{"id", 1}, {"name", "New"}}, 1).status.ok());
  ASSERT_TRUE(t->Commit(1, true).ok());
  ASSERT_TRUE(t->Close(true).ok());
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "name,id\r\nOld,0\r\nNew,1\r\n");
}

TEST_F(CsvConnectorTest, TargetRefusesAFileWhoseHeaderDiffersFromColumns) {
  WriteBytes(dir_ / "out.csv", "a,b\r\n1,2\r\n");
  Settings s = Make({{"path", "out.csv"}});
  SetColumns(&s, {{"a", "{{ record.a }}"}, {"c", "{{ record.c }}"}});
  auto t = NewTarget(s);
  Status st = t->Open(ctx_);
  EXPECT_EQ(st.code(), Status::Code::kInvalid);
  EXPECT_NE(st.message().find("column 2 is 'b' in the file, 'c' in `columns`"), std::string::npos)
      << st.message();
}

TEST_F(CsvConnectorTest, TargetWindows1252AndUnencodableCharacters) {
  Settings s = Make({{"path", "out.csv"}, {"fsync", false}, {"encoding", "windows-1252"},
                     {"delimiter", ";"}});
  auto t = NewTarget(s);
  ASSERT_TRUE(t->Open(ctx_).ok());
  Writer w{t.get(), {}};
  EXPECT_TRUE(w.Write({{"navn", "Søren Æblø"}, {"beløb", "€ 5"}}, 1).status.ok());
  WriteResult bad = w.Write({{"navn", "Łukasz"}, {"beløb", "1"}}, 1);
  EXPECT_EQ(bad.status.code(), Status::Code::kPermanent);
  EXPECT_EQ(bad.status.message(), "column 'navn': character U+0141 cannot be written in windows-1252");
  ASSERT_TRUE(t->Commit(1, true).ok());
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "navn;bel\xF8" "b\r\nS\xF8ren \xC6" "bl\xF8;\x80 5\r\n");
  // The source reads it back as UTF-8 text.
  auto items = ReadAllItems(Make({{"path", "out.csv"}, {"delimiter", ";"}}));
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(ToJson(items[0].record), R"({"navn":"Søren Æblø","beløb":"€ 5"})");
}

TEST_F(CsvConnectorTest, TargetBomOnlyForANewUtf8File) {
  Settings s = Make({{"path", "out.csv"}, {"fsync", false}, {"bom", true}});
  for (int run = 0; run < 2; ++run) {
    auto t = NewTarget(s);
    ASSERT_TRUE(t->Open(ctx_).ok());
    Writer w{t.get(), {}};
    EXPECT_TRUE(w.Write({{"a", "æ"}}, 1).status.ok());
    ASSERT_TRUE(t->Commit(1, true).ok());
    ASSERT_TRUE(t->Close(true).ok());
  }
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "\xEF\xBB\xBF" "a\r\næ\r\næ\r\n");
  EXPECT_FALSE(Def().make_target(Make({{"path", "o.csv"}, {"bom", true},
                                       {"encoding", "windows-1252"}})).ok());
}

TEST_F(CsvConnectorTest, TargetAppendRecoverTruncatesToTheToken) {
  Settings s = Make({{"path", "out.csv"}});
  std::string token1;
  {
    auto t = NewTarget(s);
    EXPECT_FALSE(t->Traits().supports_update);
    EXPECT_FALSE(t->Traits().idempotent);
    ASSERT_TRUE(t->Open(ctx_).ok());
    auto cp = t->Checkpoint();
    ASSERT_TRUE(cp.ok());
    EXPECT_EQ(*cp, "0");
    Writer w{t.get(), {}};
    EXPECT_TRUE(w.Write({{"n", "1"}}, 1).status.ok());
    auto c1 = t->Commit(1, false);
    ASSERT_TRUE(c1.ok());
    EXPECT_TRUE(c1->durable);
    token1 = c1->token;
    EXPECT_EQ(token1, std::to_string(ReadBytes(dir_ / "out.csv").size()));
    EXPECT_TRUE(w.Write({{"n", "2"}}, 2).status.ok());
    // Batch 2 reaches the file but the engine crashes before marking it done.
    ASSERT_TRUE(t->Commit(2, false).ok());
    EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "n\r\n1\r\n2\r\n");
  }
  auto fresh = NewTarget(s);
  auto rec = fresh->Recover(ctx_, 2, token1);
  ASSERT_TRUE(rec.ok()) << rec.status().message();
  EXPECT_TRUE(rec->known);
  EXPECT_EQ(rec->applied_through, 1u);
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "n\r\n1\r\n");
  // The next run goes on from there.
  ASSERT_TRUE(fresh->Open(ctx_).ok());
  Writer w{fresh.get(), {}};
  EXPECT_TRUE(w.Write({{"n", "2"}}, 2).status.ok());
  ASSERT_TRUE(fresh->Commit(2, true).ok());
  ASSERT_TRUE(fresh->Close(true).ok());
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "n\r\n1\r\n2\r\n");
}

TEST_F(CsvConnectorTest, TargetAppendRecoverFromTheCheckpointRemovesTheHeaderToo) {
  Settings s = Make({{"path", "out.csv"}, {"fsync", false}});
  std::string checkpoint;
  {
    auto t = NewTarget(s);
    ASSERT_TRUE(t->Open(ctx_).ok());
    checkpoint = *t->Checkpoint();
    Writer w{t.get(), {}};
    EXPECT_TRUE(w.Write({{"n", "1"}}, 1).status.ok());
    ASSERT_TRUE(t->Commit(1, false).ok());
  }
  auto fresh = NewTarget(s);
  auto rec = fresh->Recover(ctx_, 1, checkpoint);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->applied_through, 0u);
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "");
  ASSERT_TRUE(fresh->Open(ctx_).ok());
  Writer w{fresh.get(), {}};
  EXPECT_TRUE(w.Write({{"n", "1"}}, 1).status.ok());
  ASSERT_TRUE(fresh->Commit(1, true).ok());
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "n\r\n1\r\n");
}

TEST_F(CsvConnectorTest, TargetCloseDiscardsUncommittedRows) {
  Settings s = Make({{"path", "out.csv"}, {"fsync", false}});
  auto t = NewTarget(s);
  ASSERT_TRUE(t->Open(ctx_).ok());
  Writer w{t.get(), {}};
  EXPECT_TRUE(w.Write({{"n", "1"}}, 1).status.ok());
  ASSERT_TRUE(t->Commit(1, false).ok());
  // Enough uncommitted data to overflow the write buffer onto the file.
  const std::string big(300000, 'x');
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(w.Write({{"n", big}}, 2).status.ok());
  ASSERT_TRUE(t->Close(false).ok());
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "n\r\n1\r\n");
}

struct stat StatOf(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st;
}

TEST_F(CsvConnectorTest, TargetReplaceIsInvisibleUntilTheFinalCommit) {
  WriteBytes(dir_ / "out.csv", "n\r\nold\r\n");
  Settings s = Make({{"path", "out.csv"}, {"mode", "replace"}});
  auto t = NewTarget(s);
  ASSERT_TRUE(t->Open(ctx_).ok());
  auto checkpoint = t->Checkpoint();
  ASSERT_TRUE(checkpoint.ok());
  Writer w{t.get(), {}};
  EXPECT_TRUE(w.Write({{"n", "new1"}}, 1).status.ok());
  auto c1 = t->Commit(1, false);
  ASSERT_TRUE(c1.ok());
  EXPECT_FALSE(c1->durable);
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "n\r\nold\r\n");
  EXPECT_TRUE(w.Write({{"n", "new2"}}, 2).status.ok());
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "n\r\nold\r\n");
  auto c2 = t->Commit(2, true);
  ASSERT_TRUE(c2.ok());
  EXPECT_TRUE(c2->durable);
  ASSERT_TRUE(t->Close(true).ok());
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "n\r\nold\r\nnew1\r\nnew2\r\n");
  EXPECT_EQ(c2->token, *ReplaceFile::Token(dir_ / "out.csv"));
  // No temporary file is left: the file and, beside it, the journal's mark.
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (e.is_regular_file()) files.insert(e.path().filename().string());
  }
  EXPECT_EQ(files, (std::set<std::string>{"out.csv", ".out.csv.keyonce"}));

  // A crash after the rename, before the engine marked the batches done:
  // Recover sees the file was replaced, so every pending batch arrived.
  auto fresh = NewTarget(s);
  auto rec = fresh->Recover(ctx_, 1, *checkpoint);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->known);
  EXPECT_EQ(rec->applied_through, std::numeric_limits<uint64_t>::max());
}

TEST_F(CsvConnectorTest, TargetReplaceCrashBeforeTheRenameChangesNothing) {
  WriteBytes(dir_ / "out.csv", "n\r\nold\r\n");
  const struct stat before = StatOf(dir_ / "out.csv");
  Settings s = Make({{"path", "out.csv"}, {"mode", "replace"}});
  std::string checkpoint;
  {
    auto t = NewTarget(s);
    ASSERT_TRUE(t->Open(ctx_).ok());
    checkpoint = *t->Checkpoint();
    Writer w{t.get(), {}};
    EXPECT_TRUE(w.Write({{"n", "new"}}, 3).status.ok());
    ASSERT_TRUE(t->Commit(3, false).ok());
    // Crash: no final commit. (The destructor cleans up in-process; a real
    // crash leaves the temporary file, which Recover removes.)
  }
  WriteBytes(dir_ / "out.csv.keyonce-tmp-99999", "leftover");
  auto fresh = NewTarget(s);
  auto rec = fresh->Recover(ctx_, 3, checkpoint);
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->known);
  EXPECT_EQ(rec->applied_through, 2u);
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "n\r\nold\r\n");
  EXPECT_EQ(StatOf(dir_ / "out.csv").st_ino, before.st_ino);
  EXPECT_FALSE(fs::exists(dir_ / "out.csv.keyonce-tmp-99999"));
}

TEST_F(CsvConnectorTest, TargetReplaceWithoutRowsLeavesTheFileAlone) {
  WriteBytes(dir_ / "out.csv", "n\r\nold\r\n");
  const struct stat before = StatOf(dir_ / "out.csv");
  auto t = NewTarget(Make({{"path", "out.csv"}, {"mode", "replace"}}));
  ASSERT_TRUE(t->Open(ctx_).ok());
  auto c = t->Commit(1, true);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->durable);
  ASSERT_TRUE(t->Close(true).ok());
  EXPECT_EQ(StatOf(dir_ / "out.csv").st_ino, before.st_ino);
  EXPECT_EQ(ReadBytes(dir_ / "out.csv"), "n\r\nold\r\n");
}

TEST_F(CsvConnectorTest, TargetMissingFolderFailsUnlessCreateDirs) {
  auto t = NewTarget(Make({{"path", "sub/dir/out.csv"}}));
  EXPECT_FALSE(t->Open(ctx_).ok());
  auto t2 = NewTarget(Make({{"path", "sub/dir/out.csv"}, {"create_dirs", true}, {"fsync", false}}));
  ASSERT_TRUE(t2->Open(ctx_).ok());
  Writer w{t2.get(), {}};
  EXPECT_TRUE(w.Write({{"a", "1"}}, 1).status.ok());
  ASSERT_TRUE(t2->Commit(1, true).ok());
  EXPECT_EQ(ReadBytes(dir_ / "sub/dir/out.csv"), "a\r\n1\r\n");
}

TEST_F(CsvConnectorTest, TargetThenSourceRoundTripsTrickyValues) {
  Settings s = Make({{"path", "rt.csv"}, {"fsync", false}, {"delimiter", ";"},
                     {"formula_guard", false}});
  auto t = NewTarget(s);
  ASSERT_TRUE(t->Open(ctx_).ok());
  Writer w{t.get(), {}};
  const std::vector<std::string> values = {"", " lead", "trail ", "semi;colon", "quote\"s",
                                           "multi\r\nline", "æøå €", "-12,5", "=1"};
  for (const std::string& v : values) EXPECT_TRUE(w.Write({{"v", v}, {"x", "y"}}, 1).status.ok());
  ASSERT_TRUE(t->Commit(1, true).ok());
  ASSERT_TRUE(t->Close(true).ok());
  auto items = ReadAllItems(Make({{"path", "rt.csv"}, {"delimiter", ";"}}));
  // The empty value makes a row "";y -- not blank, so it is read.
  ASSERT_EQ(items.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_FALSE(items[i].rejected) << items[i].reason;
    EXPECT_EQ(items[i].record.at("v").as_string(), values[i]);
  }
}

// ---------------------------------------------------------------- lookup

TEST_F(CsvConnectorTest, LookupFindsRowsByTrimmedKey) {
  WriteBytes(dir_ / "afd.csv", "id;navn\n 10 ;Børn\n20;Teknik\n10;Dublet\n30;Ældre\n");
  auto lk = Def().make_lookup(Make({{"path", "afd.csv"}, {"delimiter", ";"}, {"key", "id"}}));
  ASSERT_TRUE(lk.ok()) << lk.status().message();
  ASSERT_TRUE((*lk)->Open(ctx_).ok());
  auto a = (*lk)->Find(Value(10));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ(ToJson(**a), R"({"id":" 10 ","navn":"Børn"})");
  auto b = (*lk)->Find(Value(" 20"));
  ASSERT_TRUE(b.ok() && b->has_value());
  EXPECT_EQ((**b).at("navn").as_string(), "Teknik");
  auto none = (*lk)->Find(Value("99"));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  ASSERT_EQ(log_.warnings.size(), 1u);
  EXPECT_EQ(log_.warnings[0], "afd.csv:4: the key in column 'id' repeats afd.csv:2; the first row is used");
}

TEST_F(CsvConnectorTest, LookupFailsWhenTheKeyColumnIsMissing) {
  WriteBytes(dir_ / "afd.csv", "id,navn\n1,a\n");
  auto lk = Def().make_lookup(Make({{"path", "afd.csv"}, {"key", "code"}}));
  ASSERT_TRUE(lk.ok());
  Status st = (*lk)->Open(ctx_);
  EXPECT_EQ(st.code(), Status::Code::kInvalid);
  EXPECT_NE(st.message().find("key column 'code' is not in afd.csv"), std::string::npos) << st.message();
  EXPECT_FALSE(Def().make_lookup(Make({{"path", "afd.csv"}})).ok());
}

TEST_F(CsvConnectorTest, LookupFailsOnAMalformedRow) {
  WriteBytes(dir_ / "afd.csv", "id,navn\n1,a,b\n");
  auto lk = Def().make_lookup(Make({{"path", "afd.csv"}, {"key", "id"}}));
  ASSERT_TRUE(lk.ok());
  Status st = (*lk)->Open(ctx_);
  EXPECT_EQ(st.code(), Status::Code::kInvalid);
  EXPECT_NE(st.message().find("afd.csv:2: line 2: 3 fields, the header has 2"), std::string::npos)
      << st.message();
}

}  // namespace
}  // namespace keyonce::connectors::csv
