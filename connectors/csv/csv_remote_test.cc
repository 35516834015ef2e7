// The csv connector on files on servers: a real OpenSSH sshd (SFTP) and a
// real FTP server (npm ftp-srv) on loopback. Source: download, positions
// naming the remote file, wrong host keys refused. Target: the run's file
// appears whole (<name>.part, then a rename), and each point where a crash
// can stop the final upload is recovered without loss or duplicates.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include "keyonce/connector.h"
#include "tests/support/ftp_server.h"
#include "tests/support/sshd.h"

namespace keyonce {
namespace {

namespace fs = std::filesystem;
namespace tu = testing_util;

constexpr const char* kFtpPassword = "ftp-pässword-123";

class CaptureLog : public Log {
 public:
  void Info(const std::string& m) override { lines.push_back(m); }
  void Warn(const std::string& m) override { lines.push_back(m); }
  void AddSecret(const std::string& v) override { secrets.push_back(v); }
  std::vector<std::string> lines, secrets;
};

std::string ReadBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteBytes(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
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

class CsvRemoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("keyonce-csv-remote-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "tmp");
    drop_ = dir_ / "drop";
    fs::create_directories(drop_);
    // Local copies go here, so the test can see that they are removed.
    old_tmpdir_ = std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "";
    setenv("TMPDIR", (dir_ / "tmp").c_str(), 1);
    secrets_ = boost::json::object{{"ftp_password", kFtpPassword}};
    ctx_.recipe = "remote";
    ctx_.run_id = "1";
    ctx_.log = &log_;
    ctx_.scope.secrets = &secrets_;
  }
  void TearDown() override {
    if (old_tmpdir_.empty())
      unsetenv("TMPDIR");
    else
      setenv("TMPDIR", old_tmpdir_.c_str(), 1);
    sshd_.Stop();
    ftp_.Stop();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  void StartSshd() {
    std::string why;
    ASSERT_TRUE(sshd_.Start(dir_ / "sshd", &why)) << why;
  }
  void StartFtp() {
    std::string why;
    tu::FtpServer::Options o;
    o.password = kFtpPassword;
    ASSERT_TRUE(ftp_.Start(dir_ / "ftp", drop_, o, &why)) << why;
  }

  // Settings for `name` in the drop folder over SFTP (key login).
  Settings Sftp(const std::string& name,
                std::initializer_list<std::pair<std::string, Value>> extra = {}) {
    Settings s = Base(extra);
    s.entries["path"] = TmplEntry(sshd_.url() + drop_.string() + "/" + name);
    s.entries["username"] = TmplEntry(sshd_.user());
    s.entries["private_key"] = TmplEntry(sshd_.user_key().string());
    s.entries["known_hosts"] = TmplEntry(sshd_.known_hosts().string());
    return s;
  }
  // Settings for `name` in the drop folder over FTP (password login).
  Settings Ftp(const std::string& name,
               std::initializer_list<std::pair<std::string, Value>> extra = {}) {
    Settings s = Base(extra);
    s.entries["path"] = TmplEntry(ftp_.url() + "/" + name);
    s.entries["username"] = TmplEntry(ftp_.user());
    s.entries["password"] = TmplEntry("{{ secrets.ftp_password }}");
    return s;
  }
  Settings Base(std::initializer_list<std::pair<std::string, Value>> extra) {
    Settings s;
    s.where = "recipe.yaml: csv";
    s.base_dir = dir_;
    s.entries["delimiter"].literal = ";";
    s.entries["line_ending"].literal = "lf";
    for (const auto& [k, v] : extra) s.entries[k].literal = v;
    return s;
  }

  const ConnectorDef& Csv() { return *Registry::Global().Find("csv"); }

  // Reads every item; the status of the first failure, if any.
  Status ReadAll(const Settings& s, std::vector<SourceItem>* items) {
    auto src = Csv().make_source(s);
    if (!src.ok()) return src.status();
    KEYONCE_RETURN_IF_ERROR((*src)->Open(ctx_));
    SourceItem item;
    for (;;) {
      auto more = (*src)->Next(&item);
      if (!more.ok()) return more.status();
      if (!*more) break;
      items->push_back(item);
    }
    return (*src)->Close();
  }

  WriteResult Write(Target* t, const Record& rec, uint64_t batch) {
    Value v(rec);
    Scope scope = ctx_.scope;
    scope.record = &v;
    WriteOp op;
    op.record = &v.get_object();
    op.scope = &scope;
    op.key = "k";
    op.batch = batch;
    return t->Write(op);
  }

  // One run of a target: Open, one batch per record, final commit, Close.
  void Run(const Settings& s, const std::vector<Record>& records) {
    auto t = Csv().make_target(s);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    ASSERT_TRUE((*t)->Open(ctx_).ok());
    ASSERT_TRUE((*t)->Checkpoint().ok());
    uint64_t batch = 0;
    for (const auto& r : records) {
      ASSERT_TRUE(Write(t->get(), r, ++batch).status.ok());
      auto c = (*t)->Commit(batch, false);
      ASSERT_TRUE(c.ok());
      EXPECT_FALSE(c->durable);
    }
    auto c = (*t)->Commit(batch, true);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_TRUE(c->durable);
    ASSERT_TRUE((*t)->Close(true).ok());
  }

  bool TmpIsEmpty() const { return fs::is_empty(dir_ / "tmp"); }

  fs::path dir_, drop_;
  std::string old_tmpdir_;
  tu::Sshd sshd_;
  tu::FtpServer ftp_;
  Value secrets_;
  RunContext ctx_;
  CaptureLog log_;
};

const std::string kCsv = "id;navn\n1;Åse\n2;\"Bo \"\"B\"\"\"\n3;\"never closed\n";

TEST_F(CsvRemoteTest, SourceReadsFromSftpWithRemotePositions) {
  StartSshd();
  WriteBytes(drop_ / "nye.csv", kCsv);
  std::vector<SourceItem> items;
  Status st = ReadAll(Sftp("nye.csv", {{"max_record_lines", 2}}), &items);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].record.at("navn").as_string(), "Åse");
  EXPECT_EQ(items[1].record.at("navn").as_string(), "Bo \"B\"");
  const std::string where = sshd_.url() + drop_.string() + "/nye.csv";
  EXPECT_EQ(items[0].position, where + ":2");
  EXPECT_TRUE(items[2].rejected);
  EXPECT_EQ(items[2].position, where + ":4");
  EXPECT_TRUE(TmpIsEmpty()) << "the local copy must be removed at Close";
}

TEST_F(CsvRemoteTest, SourceReadsFromFtpAndKeepsThePasswordOut) {
  StartFtp();
  WriteBytes(drop_ / "nye.csv", "id;navn\n1;Åse\n");
  std::vector<SourceItem> items;
  Status st = ReadAll(Ftp("nye.csv"), &items);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].position, ftp_.url() + "/nye.csv:2");
  EXPECT_EQ(log_.secrets, std::vector<std::string>{kFtpPassword});

  // A missing file: not found, naming the URL.
  items.clear();
  st = ReadAll(Ftp("missing.csv"), &items);
  EXPECT_EQ(st.code(), Status::Code::kNotFound) << st.ToString();
  EXPECT_NE(st.message().find(ftp_.url() + "/missing.csv"), std::string::npos) << st.message();

  // A wrong password: permanent, and no password in the message.
  Settings bad = Ftp("nye.csv");
  bad.entries["password"] = TmplEntry("wrong-{{ secrets.ftp_password }}");
  st = ReadAll(bad, &items);
  EXPECT_EQ(st.code(), Status::Code::kPermanent) << st.ToString();
  EXPECT_EQ(st.message().find("pässword"), std::string::npos) << st.message();
  EXPECT_TRUE(TmpIsEmpty());
}

// move_to / remove_after: the file on the server stays until the run's last
// acknowledgement (everything read is safe), then moves into a folder on
// the same server (made if missing) without replacing a file moved before.
TEST_F(CsvRemoteTest, MoveToMovesTheFileOnTheServerOnlyAtTheLastAcknowledgement) {
  StartSshd();
  auto read_and_ack = [&](const Settings& s, bool acknowledge) {
    auto src = Csv().make_source(s);
    ASSERT_TRUE(src.ok()) << src.status().ToString();
    ASSERT_TRUE((*src)->Open(ctx_).ok());
    SourceItem item;
    uint64_t n = 0;
    while (*(*src)->Next(&item)) ++n;
    ASSERT_TRUE((*src)->Acknowledge(n, false).ok());
    EXPECT_TRUE(fs::exists(drop_ / "nye.csv")) << "only the last acknowledgement moves it";
    if (acknowledge) {
      Status st = (*src)->Acknowledge(n, true);
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
    EXPECT_TRUE((*src)->Close().ok());
  };
  auto moving = [&](const std::string& folder) {
    Settings s = Sftp("nye.csv");
    s.entries["move_to"] = TmplEntry(folder);
    return s;
  };
  WriteBytes(drop_ / "nye.csv", "id;navn\n1;Åse\n");
  read_and_ack(moving("Behandlet filer"), false);
  EXPECT_TRUE(fs::exists(drop_ / "nye.csv")) << "never acknowledged: left where it was";
  read_and_ack(moving("Behandlet filer"), true);
  EXPECT_FALSE(fs::exists(drop_ / "nye.csv"));
  EXPECT_EQ(ReadBytes(drop_ / "Behandlet filer" / "nye.csv"), "id;navn\n1;Åse\n");
  // The next export of the same name keeps the first.
  WriteBytes(drop_ / "nye.csv", "id;navn\n2;Bo\n");
  read_and_ack(moving(drop_.string() + "/Behandlet filer"), true);
  EXPECT_EQ(ReadBytes(drop_ / "Behandlet filer" / "nye.csv"), "id;navn\n1;Åse\n");
  EXPECT_EQ(ReadBytes(drop_ / "Behandlet filer" / "nye.1.csv"), "id;navn\n2;Bo\n");
  EXPECT_TRUE(TmpIsEmpty());
}

TEST_F(CsvRemoteTest, RemoveAfterRemovesTheFileOnTheServerAtTheEnd) {
  StartFtp();
  WriteBytes(drop_ / "nye.csv", "id;navn\n1;Åse\n");
  auto src = Csv().make_source(Ftp("nye.csv", {{"remove_after", true}}));
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  ASSERT_TRUE((*src)->Open(ctx_).ok());
  SourceItem item;
  while (*(*src)->Next(&item)) {
  }
  EXPECT_TRUE(fs::exists(drop_ / "nye.csv"));
  Status st = (*src)->Acknowledge(1, true);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_FALSE(fs::exists(drop_ / "nye.csv"));
  EXPECT_TRUE((*src)->Close().ok());

  // Both at once, or on a share libcurl cannot rename on: refused up front.
  Settings two = Ftp("nye.csv", {{"remove_after", true}});
  two.entries["move_to"] = TmplEntry("x");
  auto both = Csv().make_source(two);
  EXPECT_EQ(both.status().code(), Status::Code::kInvalid);
  EXPECT_NE(both.status().message().find("move_to and remove_after cannot both be set"),
            std::string::npos);
  Settings smb = Base({{"remove_after", true}});
  smb.entries["path"] = TmplEntry("smb://fil01/drop/nye.csv");
  auto on_smb = Csv().make_source(smb);
  EXPECT_EQ(on_smb.status().code(), Status::Code::kInvalid);
  EXPECT_NE(on_smb.status().message().find("smb://"), std::string::npos);
}

TEST_F(CsvRemoteTest, SourceReadsFromFtpsWithTheServersCa) {
  std::string why;
  tu::FtpServer::Options o;
  o.password = kFtpPassword;
  o.implicit_tls = true;
  ASSERT_TRUE(ftp_.Start(dir_ / "ftp", drop_, o, &why)) << why;
  WriteBytes(drop_ / "nye.csv", "id;navn\n1;Åse\n");
  Settings s = Ftp("nye.csv");
  s.entries["ca_file"] = TmplEntry(ftp_.cert().cert.string());
  std::vector<SourceItem> items;
  Status st = ReadAll(s, &items);
  ASSERT_TRUE(st.ok()) << st.ToString() << ftp_.Log();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].position, ftp_.url() + "/nye.csv:2");
  // Without the CA the certificate is refused: permanent.
  items.clear();
  st = ReadAll(Ftp("nye.csv"), &items);
  EXPECT_EQ(st.code(), Status::Code::kPermanent) << st.ToString();
  EXPECT_NE(st.message().find("certificate"), std::string::npos) << st.message();
}

TEST_F(CsvRemoteTest, WrongOrUnknownHostKeyIsAClearPermanentError) {
  StartSshd();
  WriteBytes(drop_ / "nye.csv", "id\n1\n");
  std::vector<SourceItem> items;
  Settings wrong = Sftp("nye.csv");
  wrong.entries["known_hosts"] = TmplEntry(sshd_.wrong_known_hosts().string());
  Status st = ReadAll(wrong, &items);
  EXPECT_EQ(st.code(), Status::Code::kPermanent) << st.ToString();
  EXPECT_NE(st.message().find("host key"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("known_hosts"), std::string::npos) << st.message();

  // A server that known_hosts does not name at all is refused too.
  WriteBytes(dir_ / "empty_known_hosts", "");
  Settings unknown = Sftp("nye.csv");
  unknown.entries["known_hosts"] = TmplEntry((dir_ / "empty_known_hosts").string());
  st = ReadAll(unknown, &items);
  EXPECT_EQ(st.code(), Status::Code::kPermanent) << st.ToString();
  EXPECT_TRUE(items.empty());

  // The fingerprint instead of known_hosts: right one works, wrong one fails.
  Settings fp = Sftp("nye.csv", {{"host_key_sha256", Value(sshd_.host_key_sha256())}});
  fp.entries["known_hosts"] = TmplEntry((dir_ / "no-such-file").string());
  st = ReadAll(fp, &items);
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(items.size(), 1u);
  items.clear();
  Settings fp_bad =
      Sftp("nye.csv", {{"host_key_sha256", "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}});
  st = ReadAll(fp_bad, &items);
  EXPECT_EQ(st.code(), Status::Code::kPermanent) << st.ToString();
  EXPECT_NE(st.message().find("host_key_sha256"), std::string::npos) << st.message();
}

// The file appears whole at the final commit; until then only an empty
// <name>.part is there. A second run appends to the existing rows.
void CheckWholeFileProtocol(
    CsvRemoteTest* test, const Settings& s, const fs::path& drop,
    const std::function<WriteResult(Target*, const Record&, uint64_t)>& write,
    const RunContext& ctx) {
  auto t = Registry::Global().Find("csv")->make_target(s);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_TRUE((*t)->Open(ctx).ok());
  ASSERT_TRUE((*t)->Checkpoint().ok());
  ASSERT_TRUE(write(t->get(), Record{{"id", "1"}, {"navn", "Åse"}}, 1).status.ok());
  ASSERT_TRUE((*t)->Commit(1, false).ok());
  ASSERT_TRUE(write(t->get(), Record{{"id", "2"}, {"navn", "Bo"}}, 2).status.ok());
  ASSERT_TRUE((*t)->Commit(2, false).ok());
  EXPECT_FALSE(fs::exists(drop / "loen.csv")) << "a reader must not see the file before the end";
  ASSERT_TRUE(fs::exists(drop / "loen.csv.part"));
  EXPECT_EQ(fs::file_size(drop / "loen.csv.part"), 0u);
  auto c = (*t)->Commit(2, true);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->durable);
  ASSERT_TRUE((*t)->Close(true).ok());
  EXPECT_EQ(ReadBytes(drop / "loen.csv"), "id;navn\n1;Åse\n2;Bo\n");
  EXPECT_FALSE(fs::exists(drop / "loen.csv.part"));
  EXPECT_FALSE(fs::exists(drop / "loen.csv.keyonce-old"));
  (void)test;
}

TEST_F(CsvRemoteTest, TargetOnSftpAppearsWholeAndKeepsEarlierRows) {
  StartSshd();
  auto write = [this](Target* t, const Record& r, uint64_t b) { return Write(t, r, b); };
  CheckWholeFileProtocol(this, Sftp("loen.csv"), drop_, write, ctx_);
  // Second run: the existing rows stay (the file is replaced by old + new).
  Run(Sftp("loen.csv"), {Record{{"id", "3"}, {"navn", "Ærø"}}});
  EXPECT_EQ(ReadBytes(drop_ / "loen.csv"), "id;navn\n1;Åse\n2;Bo\n3;Ærø\n");
  EXPECT_FALSE(fs::exists(drop_ / "loen.csv.part"));
  EXPECT_FALSE(fs::exists(drop_ / "loen.csv.keyonce-old"));
  EXPECT_TRUE(TmpIsEmpty());
}

TEST_F(CsvRemoteTest, TargetOnFtpAppearsWholeAndKeepsEarlierRows) {
  StartFtp();
  auto write = [this](Target* t, const Record& r, uint64_t b) { return Write(t, r, b); };
  CheckWholeFileProtocol(this, Ftp("loen.csv"), drop_, write, ctx_);
  Run(Ftp("loen.csv"), {Record{{"id", "3"}, {"navn", "Ærø"}}});
  EXPECT_EQ(ReadBytes(drop_ / "loen.csv"), "id;navn\n1;Åse\n2;Bo\n3;Ærø\n");
  EXPECT_FALSE(fs::exists(drop_ / "loen.csv.part"));
  EXPECT_TRUE(TmpIsEmpty());
}

TEST_F(CsvRemoteTest, RunWithoutRowsLeavesTheRemoteFileUntouched) {
  StartSshd();
  WriteBytes(drop_ / "loen.csv", "id;navn\n1;Åse\n");
  auto t = Csv().make_target(Sftp("loen.csv"));
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE((*t)->Open(ctx_).ok());
  ASSERT_TRUE((*t)->Close(true).ok());  // the engine's path when nothing was written
  EXPECT_EQ(ReadBytes(drop_ / "loen.csv"), "id;navn\n1;Åse\n");
  EXPECT_FALSE(fs::exists(drop_ / "loen.csv.part"));
}

// A crash at each point of the final upload: before the rename (the part is
// there), between moving the old file away and renaming (part and backup),
// after the rename (no part). Recover must say exactly what arrived.
TEST_F(CsvRemoteTest, RecoverTellsWhetherTheRenameHappened) {
  StartSshd();
  const std::string old_content = "id;navn\n1;Åse\n";
  const std::string new_content = "id;navn\n1;Åse\n2;Bo\n";
  WriteBytes(drop_ / "loen.csv", old_content);

  // 1. A run that dies before its final commit.
  std::string token;
  {
    auto t = Csv().make_target(Sftp("loen.csv"));
    ASSERT_TRUE(t.ok());
    ASSERT_TRUE((*t)->Open(ctx_).ok());
    auto tok = (*t)->Checkpoint();
    ASSERT_TRUE(tok.ok());
    token = *tok;
    ASSERT_TRUE(Write(t->get(), Record{{"id", "2"}, {"navn", "Bo"}}, 5).status.ok());
    ASSERT_TRUE((*t)->Commit(5, false).ok());
    // killed here: no Close(true), no final commit
  }
  auto recover = [&](uint64_t first_pending) {
    auto t = Csv().make_target(Sftp("loen.csv"));
    EXPECT_TRUE(t.ok());
    auto r = (*t)->Recover(ctx_, first_pending, token);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : RecoverResult{};
  };
  RecoverResult r = recover(5);
  EXPECT_TRUE(r.known);
  EXPECT_EQ(r.applied_through, 4u);  // batch 5 did not arrive: written again
  EXPECT_EQ(ReadBytes(drop_ / "loen.csv"), old_content);

  // 2. Killed between "rename loen.csv -> loen.csv.keyonce-old" and
  // "rename loen.csv.part -> loen.csv" (the upload was complete).
  fs::rename(drop_ / "loen.csv", drop_ / "loen.csv.keyonce-old");
  WriteBytes(drop_ / "loen.csv.part", new_content);
  r = recover(5);
  EXPECT_TRUE(r.known);
  EXPECT_EQ(r.applied_through, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(ReadBytes(drop_ / "loen.csv"), new_content);
  EXPECT_FALSE(fs::exists(drop_ / "loen.csv.part"));
  EXPECT_FALSE(fs::exists(drop_ / "loen.csv.keyonce-old"));

  // 3. Killed after the rename, before removing the backup (or before the
  // journal heard of it).
  WriteBytes(drop_ / "loen.csv.keyonce-old", old_content);
  r = recover(5);
  EXPECT_TRUE(r.known);
  EXPECT_EQ(r.applied_through, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(ReadBytes(drop_ / "loen.csv"), new_content);
  EXPECT_FALSE(fs::exists(drop_ / "loen.csv.keyonce-old"));

  // Batches of a local file (the path changed to a URL since): cannot tell.
  auto t = Csv().make_target(Sftp("loen.csv"));
  auto local = (*t)->Recover(ctx_, 5, "1234");
  ASSERT_TRUE(local.ok());
  EXPECT_FALSE(local->known);

  // After a recovery the next run writes normally.
  Run(Sftp("loen.csv"), {Record{{"id", "3"}, {"navn", "Ærø"}}});
  EXPECT_EQ(ReadBytes(drop_ / "loen.csv"), new_content + "3;Ærø\n");
}

// A file per run (path with run.id): recovery looks at the file of the run
// that was interrupted, not at the file the next run would write.
TEST_F(CsvRemoteTest, RecoverLooksAtTheInterruptedRunsFile) {
  StartSshd();
  Settings s = Sftp("x");
  s.entries["path"] = TmplEntry(sshd_.url() + drop_.string() + "/loen_{{ run.id }}.csv");
  Value run1 = boost::json::object{{"id", "1"}}, run2 = boost::json::object{{"id", "2"}};
  std::string token;
  {
    ctx_.scope.run = &run1;
    auto t = Csv().make_target(s);
    ASSERT_TRUE(t.ok());
    ASSERT_TRUE((*t)->Open(ctx_).ok());
    token = *(*t)->Checkpoint();
    ASSERT_TRUE(Write(t->get(), Record{{"id", "1"}, {"navn", "Åse"}}, 1).status.ok());
    ASSERT_TRUE((*t)->Commit(1, false).ok());
  }  // killed before the final commit
  EXPECT_TRUE(fs::exists(drop_ / "loen_1.csv.part"));
  ctx_.scope.run = &run2;
  auto t = Csv().make_target(s);
  auto r = (*t)->Recover(ctx_, 1, token);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->known);
  EXPECT_EQ(r->applied_through, 0u);  // written again by run 2
  ctx_.scope.run = nullptr;
}

TEST_F(CsvRemoteTest, SettingsAreCheckedWithoutNetwork) {
  Settings s = Base({});
  s.entries["path"] = TmplEntry("smb://server/share/loen.csv");
  auto smb = Csv().make_target(s);
  ASSERT_FALSE(smb.ok());
  EXPECT_NE(smb.status().message().find("smb:// can only be read"), std::string::npos);
  EXPECT_TRUE(Csv().make_source(s).ok());  // reading from SMB is fine

  s.entries["path"] = TmplEntry("sftp://user:pw@host/drop/x.csv");
  auto pw = Csv().make_source(s);
  ASSERT_FALSE(pw.ok());
  EXPECT_NE(pw.status().message().find("password"), std::string::npos);
  EXPECT_EQ(pw.status().message().find(":pw@"), std::string::npos);

  s.entries["path"] = TmplEntry("sftp://host/drop/");
  EXPECT_FALSE(Csv().make_source(s).ok());

  s.entries["path"] = TmplEntry("sftp://host/drop/{{ params.month }}.csv");
  s.entries["delimiter"].literal = "ab";  // the local settings are checked too
  EXPECT_FALSE(Csv().make_source(s).ok());
}

}  // namespace
}  // namespace keyonce
