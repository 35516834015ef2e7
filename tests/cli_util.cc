#include "cli_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace keyonce::testing_util {

std::string Binary() {
  const char* b = std::getenv("KEYONCE_BINARY");
  return b && *b ? b : KEYONCE_BINARY;
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

std::filesystem::path FreshDir(const std::string& name) {
  auto d = std::filesystem::path(::testing::TempDir()) / ("keyonce_" + name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

namespace {
pid_t Start(const std::vector<std::string>& args, const std::filesystem::path& cwd,
            const std::map<std::string, std::string>& env, const std::string& out_file,
            const std::string& err_file) {
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(cwd.c_str()) != 0) _exit(127);
    int o = open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::string bin = Binary();
    std::vector<char*> argv;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}
}  // namespace

Output Keyonce(const std::vector<std::string>& args, const std::filesystem::path& cwd,
               const std::map<std::string, std::string>& env) {
  std::string out_file = (cwd / ".stdout").string(), err_file = (cwd / ".stderr").string();
  pid_t pid = Start(args, cwd, env, out_file, err_file);
  int status = 0;
  waitpid(pid, &status, 0);
  Output o;
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  o.out = ReadFile(out_file);
  o.err = ReadFile(err_file);
  return o;
}

pid_t Spawn(const std::vector<std::string>& args, const std::filesystem::path& cwd) {
  return Start(args, cwd, {}, "/dev/null", "/dev/null");
}

Background StartKeyonce(const std::vector<std::string>& args, const std::filesystem::path& cwd,
                        const std::string& tag, const std::map<std::string, std::string>& env) {
  Background b;
  b.out = cwd / (".stdout." + tag);
  b.err = cwd / (".stderr." + tag);
  b.pid = Start(args, cwd, env, b.out.string(), b.err.string());
  return b;
}

Output Finish(const Background& b, int timeout_seconds) {
  Output o;
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  for (;;) {
    pid_t r = waitpid(b.pid, &status, WNOHANG);
    if (r == b.pid) break;
    if (r < 0) return o;
    if (std::chrono::steady_clock::now() > deadline) {
      kill(b.pid, SIGKILL);
      waitpid(b.pid, &status, 0);
      ADD_FAILURE() << "keyonce (pid " << b.pid << ") did not exit within " << timeout_seconds
                    << " s; killed";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  o.out = ReadFile(b.out);
  o.err = ReadFile(b.err);
  return o;
}

bool WaitForText(const std::filesystem::path& file, const std::string& text, int timeout_seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while (ReadFile(file).find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

long long QueryInt(const std::filesystem::path& db, const std::string& sql) {
  sqlite3* h = nullptr;
  if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(h);
    return -1;
  }
  sqlite3_stmt* st = nullptr;
  long long v = -1;
  if (sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    v = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  return v;
}

}  // namespace keyonce::testing_util
