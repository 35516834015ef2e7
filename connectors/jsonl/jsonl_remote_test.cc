// The jsonl connector on files on servers: a real OpenSSH sshd (SFTP) and a
// real FTP server (npm ftp-srv) on loopback. The protocol itself (part file,
// rename, recovery) is tested with the csv connector; here: jsonl reads and
// writes through it, append keeps the file's lines, replace does not.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "keyonce/connector.h"
#include "tests/support/ftp_server.h"
#include "tests/support/sshd.h"

namespace keyonce {
namespace {

namespace fs = std::filesystem;
namespace tu = testing_util;

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

Settings::Entry TmplEntry(const std::string& text) {
  TemplateError err;
  auto t = Template::Compile(text, TemplateContext::kText, &err);
  EXPECT_TRUE(t.has_value()) << text;
  Settings::Entry e;
  e.literal = Value(text);
  if (t) e.tmpl = std::move(*t);
  return e;
}

class JsonlRemoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("keyonce-jsonl-remote-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    drop_ = dir_ / "drop";
    fs::create_directories(drop_);
    secrets_ = boost::json::object{{"pw", "jsonl-ftp-secret"}};
    ctx_.run_id = "1";
    ctx_.log = &log_;
    ctx_.scope.secrets = &secrets_;
  }
  void TearDown() override {
    sshd_.Stop();
    ftp_.Stop();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  Settings Sftp(const std::string& name, const std::string& mode) {
    Settings s;
    s.where = "recipe.yaml: jsonl";
    s.base_dir = dir_;
    s.entries["mode"].literal = mode;
    s.entries["path"] = TmplEntry(sshd_.url() + drop_.string() + "/" + name);
    s.entries["username"] = TmplEntry(sshd_.user());
    s.entries["private_key"] = TmplEntry(sshd_.user_key().string());
    s.entries["known_hosts"] = TmplEntry(sshd_.known_hosts().string());
    return s;
  }
  Settings Ftp(const std::string& name, const std::string& mode) {
    Settings s;
    s.where = "recipe.yaml: jsonl";
    s.base_dir = dir_;
    s.entries["mode"].literal = mode;
    s.entries["path"] = TmplEntry(ftp_.url() + "/" + name);
    s.entries["username"] = TmplEntry(ftp_.user());
    s.entries["password"] = TmplEntry("{{ secrets.pw }}");
    return s;
  }

  const ConnectorDef& Jsonl() { return *Registry::Global().Find("jsonl"); }

  void Run(const Settings& s, const std::vector<Record>& records) {
    auto t = Jsonl().make_target(s);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    ASSERT_TRUE((*t)->Open(ctx_).ok());
    uint64_t batch = 0;
    for (const auto& rec : records) {
      Value v(rec);
      Scope scope = ctx_.scope;
      scope.record = &v;
      WriteOp op;
      op.record = &v.get_object();
      op.scope = &scope;
      op.batch = ++batch;
      ASSERT_TRUE((*t)->Write(op).status.ok());
      ASSERT_TRUE((*t)->Commit(batch, false).ok());
      EXPECT_FALSE(fs::exists(drop_ / "out.jsonl.part") &&
                   fs::file_size(drop_ / "out.jsonl.part") > 0)
          << "nothing is uploaded before the final commit";
    }
    auto c = (*t)->Commit(batch, true);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_TRUE((*t)->Close(true).ok());
    EXPECT_FALSE(fs::exists(drop_ / "out.jsonl.part"));
  }

  std::vector<SourceItem> ReadAll(const Settings& s) {
    std::vector<SourceItem> items;
    auto src = Jsonl().make_source(s);
    EXPECT_TRUE(src.ok()) << src.status().ToString();
    if (!src.ok()) return items;
    Status st = (*src)->Open(ctx_);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (!st.ok()) return items;
    SourceItem item;
    for (;;) {
      auto more = (*src)->Next(&item);
      EXPECT_TRUE(more.ok());
      if (!more.ok() || !*more) break;
      items.push_back(item);
    }
    EXPECT_TRUE((*src)->Close().ok());
    return items;
  }

  fs::path dir_, drop_;
  tu::Sshd sshd_;
  tu::FtpServer ftp_;
  Value secrets_;
  RunContext ctx_;
  NullLog log_;
};

TEST_F(JsonlRemoteTest, AppendKeepsLinesAndReplaceStartsOverOnSftp) {
  std::string why;
  ASSERT_TRUE(sshd_.Start(dir_ / "sshd", &why)) << why;
  Run(Sftp("out.jsonl", "append"), {Record{{"n", 1}}, Record{{"n", "Æ"}}});
  EXPECT_EQ(ReadBytes(drop_ / "out.jsonl"), "{\"n\":1}\n{\"n\":\"Æ\"}\n");
  Run(Sftp("out.jsonl", "append"), {Record{{"n", 3}}});
  EXPECT_EQ(ReadBytes(drop_ / "out.jsonl"), "{\"n\":1}\n{\"n\":\"Æ\"}\n{\"n\":3}\n");
  Run(Sftp("out.jsonl", "replace"), {Record{{"n", 4}}});
  EXPECT_EQ(ReadBytes(drop_ / "out.jsonl"), "{\"n\":4}\n");

  // And read back over SFTP, with positions naming the remote file.
  std::ofstream(drop_ / "in.jsonl") << "{\"a\":1}\nnot json\n";
  auto items = ReadAll(Sftp("in.jsonl", "append"));
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].position, sshd_.url() + drop_.string() + "/in.jsonl:1");
  EXPECT_TRUE(items[1].rejected);
  EXPECT_EQ(items[1].position, sshd_.url() + drop_.string() + "/in.jsonl:2");
}

TEST_F(JsonlRemoteTest, TargetAndSourceOnFtp) {
  std::string why;
  tu::FtpServer::Options o;
  o.password = "jsonl-ftp-secret";
  ASSERT_TRUE(ftp_.Start(dir_ / "ftp", drop_, o, &why)) << why;
  Run(Ftp("out.jsonl", "append"), {Record{{"n", 1}}});
  Run(Ftp("out.jsonl", "append"), {Record{{"n", 2}}});
  EXPECT_EQ(ReadBytes(drop_ / "out.jsonl"), "{\"n\":1}\n{\"n\":2}\n");
  auto items = ReadAll(Ftp("out.jsonl", "append"));
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[1].position, ftp_.url() + "/out.jsonl:2");
}

}  // namespace
}  // namespace keyonce
