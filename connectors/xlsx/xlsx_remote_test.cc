// The xlsx target on a file drop: a real OpenSSH sshd (SFTP) on loopback.
// The workbook is written locally and uploaded whole at the final commit
// (<name>.part, then a rename; connectors/common/net/remote_file.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "keyonce/connector.h"
#include "keyonce/testing.h"
#include "tests/support/sshd.h"

namespace keyonce {
namespace {

namespace fs = std::filesystem;

class NullLog : public Log {
 public:
  void Info(const std::string&) override {}
  void Warn(const std::string&) override {}
};

std::string Shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  EXPECT_EQ(::pclose(p), 0) << cmd << "\n" << out;
  return out;
}

TEST(XlsxRemoteTarget, AWorkbookUploadedBySftpAppearsWholeAtTheEndOfTheRun) {
  const fs::path dir =
      fs::temp_directory_path() / ("keyonce-xlsx-remote-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "drop");
  testing_util::Sshd sshd;
  std::string why;
  ASSERT_TRUE(sshd.Start(dir / "sshd", &why)) << why;

  const ConnectorDef* def = Registry::Global().Find("xlsx");
  ASSERT_TRUE(def && def->target);
  const std::string yaml = "path: " + sshd.url() + (dir / "drop").string() +
                           "/fravaer.xlsx\n"
                           "username: " +
                           sshd.user() + "\n" + "private_key: " + sshd.user_key().string() + "\n" +
                           "known_hosts: " + sshd.known_hosts().string() + "\n" +
                           "columns:\n"
                           "  - {field: cpr, header: CPR, type: text}\n"
                           "  - {field: fra, header: Fra dato, type: date}\n";
  testing::SettingsYaml opt;
  opt.base_dir = dir;
  auto settings = testing::SettingsFromYaml(def->target->fields, yaml, opt);
  ASSERT_TRUE(settings.ok()) << settings.status().ToString();
  auto t = def->make_target(*settings);
  ASSERT_TRUE(t.ok()) << t.status().ToString();

  NullLog log;
  RunContext ctx;
  ctx.recipe = "r";
  ctx.target_name = "sheet";
  ctx.run_id = "1";
  ctx.log = &log;
  ASSERT_TRUE((*t)->Open(ctx).ok());
  Value rec = boost::json::object{{"cpr", "0101901234"}, {"fra", "2024-03-01"}};
  Scope scope;
  scope.record = &rec;
  WriteOp op;
  op.record = &rec.get_object();
  op.scope = &scope;
  op.batch = 1;
  WriteResult w = (*t)->Write(op);
  ASSERT_TRUE(w.status.ok()) << w.status.ToString();
  ASSERT_TRUE((*t)->Commit(1, false).ok());
  EXPECT_FALSE(fs::exists(dir / "drop/fravaer.xlsx")) << "a reader must not see it before the end";
  auto c = (*t)->Commit(1, true);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->durable);
  ASSERT_TRUE((*t)->Close(true).ok());
  sshd.Stop();
  EXPECT_FALSE(fs::exists(dir / "drop/fravaer.xlsx.part"));
  // openpyxl reads the uploaded workbook: the CPR-like text stays text, the
  // date is a date.
  const std::string cells = Shell(
      "/usr/bin/python3 -c 'import sys, openpyxl\n"
      "ws = openpyxl.load_workbook(sys.argv[1]).worksheets[0]\n"
      "print([(c.value, c.data_type, c.number_format) for c in ws[2]])' '" +
      (dir / "drop/fravaer.xlsx").string() + "'");
  EXPECT_EQ(cells,
            "[('0101901234', 's', 'General'), (datetime.datetime(2024, 3, 1, 0, 0), 'd', "
            "'dd-mm-yyyy')]\n");
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace keyonce
