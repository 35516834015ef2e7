#include "connectors/common/text_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace keyonce::connectors {
namespace {

namespace fs = std::filesystem;

class TextFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("keyonce_text_file_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string Read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static void WriteFile(const fs::path& p, const std::string& s) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << s;
  }
  std::vector<std::string> TempFiles() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      std::string n = e.path().filename().string();
      if (n.find(".keyonce-tmp-") != std::string::npos) out.push_back(n);
    }
    return out;
  }

  fs::path dir_;
};

TEST_F(TextFileTest, AppendCreatesFoldersAndCommitReturnsSize) {
  fs::path p = dir_ / "a" / "b" / "out.txt";
  auto f = AppendFile::Open(p, /*create_dirs=*/true);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(*(*f)->Token(), "0");
  ASSERT_TRUE((*f)->Write("hello\n").ok());
  EXPECT_EQ((*f)->size(), 6u);
  auto tok = (*f)->Commit(true);
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(*tok, "6");
  EXPECT_EQ(Read(p), "hello\n");
}

TEST_F(TextFileTest, AppendWithoutCreateDirsFailsWhenFolderMissing) {
  auto f = AppendFile::Open(dir_ / "missing" / "out.txt", false);
  EXPECT_FALSE(f.ok());
}

TEST_F(TextFileTest, AppendKeepsExistingContentAndAppends) {
  fs::path p = dir_ / "out.txt";
  WriteFile(p, "old\n");
  auto f = AppendFile::Open(p, false);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*(*f)->Token(), "4");
  ASSERT_TRUE((*f)->Write("new\n").ok());
  EXPECT_EQ(*(*f)->Commit(false), "8");
  EXPECT_EQ(Read(p), "old\nnew\n");
}

TEST_F(TextFileTest, AppendLargeWritesSpanningBufferAreKeptInOrder) {
  fs::path p = dir_ / "big.txt";
  auto f = AppendFile::Open(p, false);
  ASSERT_TRUE(f.ok());
  std::string expected;
  for (int i = 0; i < 3000; ++i) {
    std::string line(1000, static_cast<char>('a' + i % 26));
    line += "\n";
    ASSERT_TRUE((*f)->Write(line).ok());
    expected += line;
  }
  std::string huge(3 << 20, 'z');  // bigger than the buffer
  ASSERT_TRUE((*f)->Write(huge).ok());
  expected += huge;
  ASSERT_TRUE((*f)->Write("tail").ok());
  expected += "tail";
  EXPECT_EQ(*(*f)->Commit(true), std::to_string(expected.size()));
  EXPECT_EQ(Read(p), expected);
}

TEST_F(TextFileTest, RecoverTruncatesToCommittedSize) {
  fs::path p = dir_ / "out.txt";
  std::string token;
  {
    auto f = AppendFile::Open(p, false);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Write("committed\n").ok());
    token = *(*f)->Commit(true);
    std::string big(2 << 20, 'x');  // forces bytes to the OS without a commit
    ASSERT_TRUE((*f)->Write(big).ok());
  }  // "crash"
  EXPECT_GT(fs::file_size(p), 10u);
  ASSERT_TRUE(AppendFile::Recover(p, token).ok());
  EXPECT_EQ(Read(p), "committed\n");
}

TEST_F(TextFileTest, RecoverLeavesShorterOrMissingFileAndEmptyToken) {
  fs::path p = dir_ / "out.txt";
  EXPECT_TRUE(AppendFile::Recover(p, "10").ok());  // missing
  EXPECT_FALSE(fs::exists(p));
  WriteFile(p, "abc");
  EXPECT_TRUE(AppendFile::Recover(p, "10").ok());
  EXPECT_EQ(Read(p), "abc");
  EXPECT_TRUE(AppendFile::Recover(p, "").ok());
  EXPECT_EQ(Read(p), "abc");
  EXPECT_FALSE(AppendFile::Recover(p, "not-a-size").ok());
}

TEST_F(TextFileTest, ReplaceLeavesTargetUnchangedUntilFinish) {
  fs::path p = dir_ / "out.txt";
  WriteFile(p, "original\n");
  auto before = ReplaceFile::Token(p);
  ASSERT_TRUE(before.ok());
  auto rf = ReplaceFile::Open(p, false, false);
  ASSERT_TRUE(rf.ok()) << rf.status().ToString();
  EXPECT_TRUE((*rf)->empty_run());
  ASSERT_TRUE((*rf)->Write("new content\n").ok());
  EXPECT_FALSE((*rf)->empty_run());
  EXPECT_EQ(Read(p), "original\n");
  EXPECT_EQ(TempFiles().size(), 1u);
  EXPECT_EQ(*ReplaceFile::Token(p), *before);
  ASSERT_TRUE((*rf)->Finish().ok());
  EXPECT_EQ(Read(p), "new content\n");
  EXPECT_NE(*ReplaceFile::Token(p), *before);
}

TEST_F(TextFileTest, ReplaceFinishRenamesAndReplacedSeesIt) {
  fs::path p = dir_ / "out.txt";
  WriteFile(p, "original\n");
  std::string before = *ReplaceFile::Token(p);
  {
    auto rf = ReplaceFile::Open(p, false, false);
    ASSERT_TRUE(rf.ok());
    ASSERT_TRUE((*rf)->Write("new\n").ok());
    EXPECT_FALSE(*ReplaceFile::Replaced(dir_ / "other.txt", "absent"));
    ASSERT_TRUE((*rf)->Finish().ok());
  }
  EXPECT_EQ(Read(p), "new\n");
  EXPECT_TRUE(TempFiles().empty());
  EXPECT_TRUE(*ReplaceFile::Replaced(p, before));
  EXPECT_FALSE(*ReplaceFile::Replaced(p, *ReplaceFile::Token(p)));
}

TEST_F(TextFileTest, ReplaceKeepExistingCopiesOldContent) {
  fs::path p = dir_ / "out.txt";
  WriteFile(p, "one\n");
  auto rf = ReplaceFile::Open(p, true, false);
  ASSERT_TRUE(rf.ok());
  EXPECT_TRUE((*rf)->empty_run());  // copied bytes are not the run's writes
  ASSERT_TRUE((*rf)->Write("two\n").ok());
  ASSERT_TRUE((*rf)->Finish().ok());
  EXPECT_EQ(Read(p), "one\ntwo\n");
}

TEST_F(TextFileTest, ReplaceOfAbsentFileAndTokenAbsent) {
  fs::path p = dir_ / "sub" / "new.txt";
  EXPECT_EQ(*ReplaceFile::Token(p), "absent");
  auto rf = ReplaceFile::Open(p, true, true);
  ASSERT_TRUE(rf.ok());
  ASSERT_TRUE((*rf)->Write("x").ok());
  EXPECT_EQ(*ReplaceFile::Token(p), "absent");
  ASSERT_TRUE((*rf)->Finish().ok());
  EXPECT_TRUE(*ReplaceFile::Replaced(p, "absent"));
  EXPECT_EQ(Read(p), "x");
}

TEST_F(TextFileTest, ReplaceAbortAndDestructorRemoveTempFile) {
  fs::path p = dir_ / "out.txt";
  WriteFile(p, "original\n");
  {
    auto rf = ReplaceFile::Open(p, false, false);
    ASSERT_TRUE(rf.ok());
    ASSERT_TRUE((*rf)->Write("x").ok());
    EXPECT_EQ(TempFiles().size(), 1u);
  }
  EXPECT_TRUE(TempFiles().empty());
  auto rf = ReplaceFile::Open(p, false, false);
  ASSERT_TRUE(rf.ok());
  (*rf)->Abort();
  EXPECT_TRUE(TempFiles().empty());
  EXPECT_EQ(Read(p), "original\n");
}

TEST_F(TextFileTest, ReplacedRemovesLeftoverTempFiles) {
  fs::path p = dir_ / "out.txt";
  WriteFile(p, "original\n");
  std::string before = *ReplaceFile::Token(p);
  WriteFile(dir_ / "out.txt.keyonce-tmp-12345", "half written");
  WriteFile(dir_ / "out.txt.keyonce-tmp-999", "half written");
  WriteFile(dir_ / "other.txt.keyonce-tmp-1", "not ours");
  auto r = ReplaceFile::Replaced(p, before);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  auto left = TempFiles();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0], "other.txt.keyonce-tmp-1");
  EXPECT_EQ(Read(p), "original\n");
}

TEST_F(TextFileTest, ReplaceKeepsFilePermissions) {
  fs::path p = dir_ / "out.txt";
  WriteFile(p, "x");
  fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);
  auto rf = ReplaceFile::Open(p, false, false);
  ASSERT_TRUE(rf.ok());
  ASSERT_TRUE((*rf)->Write("y").ok());
  ASSERT_TRUE((*rf)->Finish().ok());
  EXPECT_EQ(fs::status(p).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

// The protocol csv, jsonl and xlsx share: batches are durable only with the
// final commit's rename; Recover tells from the file whether it happened.
TEST_F(TextFileTest, ReplaceRunIsDurableOnlyAtTheFinalCommit) {
  const fs::path target = dir_ / "out.txt";
  WriteFile(target, "old");
  ReplaceRun run;
  ASSERT_TRUE(run.Begin(target, /*keep_existing=*/false, false).ok());
  const std::string before = *run.Checkpoint();
  ASSERT_TRUE(run.file()->Write("new").ok());
  run.Wrote();
  auto c1 = run.Commit(1, false, nullptr);
  ASSERT_TRUE(c1.ok());
  EXPECT_FALSE(c1->durable);
  EXPECT_EQ(c1->token, before);
  EXPECT_EQ(Read(target), "old");
  // A crash now: the rename did not happen, batch 1 is written again.
  auto r = ReplaceRun::Recover(target, 1, before);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->known);
  EXPECT_EQ(r->applied_through, 0u);

  ReplaceRun again;
  ASSERT_TRUE(again.Begin(target, false, false).ok());
  ASSERT_TRUE(again.file()->Write("new").ok());
  again.Wrote();
  auto c2 = again.Commit(1, true, nullptr);
  ASSERT_TRUE(c2.ok());
  EXPECT_TRUE(c2->durable);
  EXPECT_EQ(Read(target), "new");
  EXPECT_EQ(c2->token, *ReplaceFile::Token(target));
  r = ReplaceRun::Recover(target, 1, before);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->applied_through, UINT64_MAX);
  // No identity journaled: it cannot tell.
  r = ReplaceRun::Recover(target, 1, "");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->known);
}

TEST_F(TextFileTest, ReplaceRunWithoutRecordsLeavesTheFileAlone) {
  const fs::path target = dir_ / "out.txt";
  WriteFile(target, "old");
  const std::string before = *ReplaceFile::Token(target);
  ReplaceRun run;
  ASSERT_TRUE(run.Begin(target, false, false).ok());
  auto c = run.Commit(1, true, nullptr);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->durable);
  EXPECT_EQ(c->token, before);
  EXPECT_EQ(Read(target), "old");
  EXPECT_TRUE(TempFiles().empty());
}

// A library that writes by file name (libxlsxwriter) fills temp_path().
TEST_F(TextFileTest, ReplaceRunForAWriterByNameRenamesWhatItWrote) {
  const fs::path target = dir_ / "out.bin";
  WriteFile(target, "old");
  fs::permissions(target, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  ReplaceRun run;
  ASSERT_TRUE(run.BeginForWriter(target, false).ok());
  const fs::path temp = run.file()->temp_path();
  EXPECT_EQ(temp.parent_path(), dir_);
  EXPECT_TRUE(fs::exists(temp));  // made at the start: a bad folder fails early
  WriteFile(temp, "written by name");
  run.Wrote();
  ASSERT_TRUE(run.Commit(1, true, nullptr).ok());
  EXPECT_EQ(Read(target), "written by name");
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_EQ(fs::status(target).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  // A missing folder fails at the start.
  ReplaceRun missing;
  Status st = missing.BeginForWriter(dir_ / "no/such/out.bin", false);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no/such/out.bin.keyonce-tmp-"), std::string::npos) << st.message();
}

TEST_F(TextFileTest, FileMarksKeepOneMarkPerTargetBesideTheFile) {
  fs::path p = dir_ / "out.jsonl";
  EXPECT_FALSE(FileMarks::Read(p, "r/t").has_value());
  ASSERT_TRUE(FileMarks::Write(p, "r/t", TargetMark{"aaaa", 3}).ok());
  ASSERT_TRUE(FileMarks::Write(p, "other/t", TargetMark{"bbbb", 9}).ok());
  ASSERT_TRUE(FileMarks::Write(p, "r/t", TargetMark{"aaaa", 4}).ok());
  auto m = FileMarks::Read(p, "r/t");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->state_id, "aaaa");
  EXPECT_EQ(m->batch, 4u);
  EXPECT_EQ(FileMarks::Read(p, "other/t")->batch, 9u);
  EXPECT_EQ(FileMarks::PathFor(p), dir_ / ".out.jsonl.keyonce");
  EXPECT_TRUE(TempFiles().empty());
  // A damaged marks file is no mark (a guard lost, not a run stopped).
  WriteFile(FileMarks::PathFor(p), "{not json");
  EXPECT_FALSE(FileMarks::Read(p, "r/t").has_value());
}

}  // namespace
}  // namespace keyonce::connectors
