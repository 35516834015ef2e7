// The hostile-input corpus: each folder of tests/hostile/ holds a recipe, its
// data and expect.yaml (the commands to run, their exit codes and the exact
// messages a user must see). Each case runs in a copy of its folder, three
// levels below a fresh sandbox, with a timeout (no hang) and a memory limit; a
// crash, a hang, a wrong exit code, a missing message, a peak RSS over the
// step's bound or a file written outside the case's allowed folders fails it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/sanitizers.h"

namespace fs = std::filesystem;

namespace {

std::string Binary() {
  const char* b = std::getenv("KEYONCE_BINARY");
  return b && *b ? b : KEYONCE_BINARY;
}

fs::path CorpusDir() { return fs::path(KEYONCE_SOURCE_DIR) / "tests" / "hostile"; }

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Result {
  int exit_code = -1;  // 128+signal when a signal ended it
  bool timed_out = false;
  long peak_rss_kb = 0;  // the child's largest resident set (its own rusage)
  std::string output;    // stdout then stderr
};

// The address-space limit of every command, in MiB: KEYONCE_HOSTILE_MEMORY_LIMIT_MB
// (default 2048), or a case's `memory_limit_mb`; 0 (the variable, e.g. for an
// ASan build, which reserves far more address space) turns the limits and the
// peak-RSS checks off.
long MemoryLimitMb(long case_limit_mb) {
  long limit_mb = 2048;
  if (const char* l = std::getenv("KEYONCE_HOSTILE_MEMORY_LIMIT_MB")) limit_mb = std::atol(l);
  if (limit_mb <= 0) return 0;
  return case_limit_mb > 0 ? case_limit_mb : limit_mb;
}

// Whether a peak RSS says something: not under a sanitizer (its shadow
// memory and quarantine of freed blocks are resident too) and not with the
// limits turned off.
bool RssChecked() {
#if defined(KEYONCE_ASAN) || defined(KEYONCE_TSAN)
  return false;
#else
  return MemoryLimitMb(0) > 0;
#endif
}

// Runs keyonce in `cwd` with a deadline; the whole process group is killed when
// it passes. The address space is limited to `limit_mb` (0: none) so a blow-up
// is an allocation failure, and the child's peak RSS is reported.
// `program` empty: keyonce; else a program looked up on PATH (sqlite3, ...).
Result RunProgram(const std::string& program, const std::vector<std::string>& args,
                  const fs::path& cwd, const std::map<std::string, std::string>& env,
                  std::chrono::seconds timeout, long limit_mb) {
  fs::path out = cwd.parent_path() / ".stdout", err = cwd.parent_path() / ".stderr";
  // The child would write out what this process has buffered when it reopens stdout.
  std::cout.flush();
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    if (chdir(cwd.c_str()) != 0) _exit(127);
    if (!freopen(out.c_str(), "w", stdout) || !freopen(err.c_str(), "w", stderr) ||
        !freopen("/dev/null", "r", stdin)) {
      _exit(127);
    }
    if (limit_mb > 0) {
      rlimit rl{static_cast<rlim_t>(limit_mb) << 20, static_cast<rlim_t>(limit_mb) << 20};
      setrlimit(RLIMIT_AS, &rl);
    }
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::string bin = program.empty() ? Binary() : program;
    std::vector<std::string> copy = args;
    std::vector<char*> argv{bin.data()};
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(bin.c_str(), argv.data());
    _exit(127);
  }
  Result r;
  int status = 0;
  rusage usage{};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (wait4(pid, &status, WNOHANG, &usage) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      r.timed_out = true;
      kill(-pid, SIGKILL);
      wait4(pid, &status, 0, &usage);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  r.peak_rss_kb = usage.ru_maxrss;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.output = ReadFile(out) + ReadFile(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

// Every regular file under `root` with its size and modification time.
std::map<std::string, std::string> Snapshot(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    auto t = e.last_write_time().time_since_epoch().count();
    files[fs::relative(e.path(), root).generic_string()] =
        std::to_string(e.file_size()) + "@" + std::to_string(t);
  }
  return files;
}

std::vector<std::string> Cases() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(CorpusDir(), ec)) {
    if (e.is_directory() && fs::exists(e.path() / "expect.yaml"))
      names.push_back(e.path().filename());
  }
  std::sort(names.begin(), names.end());
  return names;
}

class Hostile : public ::testing::TestWithParam<std::string> {};

TEST_P(Hostile, Case) {
  const std::string name = GetParam();
  const fs::path src = CorpusDir() / name;
  YAML::Node expect = YAML::LoadFile((src / "expect.yaml").string());
  // A case about memory itself (a peak RSS, running out of address space) says nothing
  // without the limits, e.g. under AddressSanitizer.
  if (expect["memory_case"].as<bool>(false) && !RssChecked()) {
    GTEST_SKIP() << name << " asserts memory, which needs the address-space limit "
                 << "(KEYONCE_HOSTILE_MEMORY_LIMIT_MB is 0, or a sanitizer build)";
  }

  // sandbox/a/b/<case>: "../../x" from the case still lands inside the sandbox.
  const fs::path sandbox = fs::path(::testing::TempDir()) / ("keyonce_hostile_" + name);
  fs::remove_all(sandbox);
  const fs::path dir = sandbox / "a" / "b" / name;
  fs::create_directories(dir.parent_path());
  fs::copy(src, dir, fs::copy_options::recursive);
  fs::remove(dir / "expect.yaml");
  // Big inputs are made here instead of being stored: text, then `repeat` `times` times, then
  // `end`; all that `copies` times (default 1), appended to the file with `append: true`. In
  // `repeat`, {i} is the repetition (0, 1, ...); in `text` and `end`, {n} is the copy (1, 2, ...).
  for (const auto& g : expect["generate"]) {
    std::ofstream f(
        dir / g["file"].as<std::string>(),
        std::ios::binary | (g["append"].as<bool>(false) ? std::ios::app : std::ios::trunc));
    auto numbered = [](std::string text, const char* mark, long n) {
      for (size_t at; (at = text.find(mark)) != std::string::npos;)
        text.replace(at, 3, std::to_string(n));
      return text;
    };
    const std::string chunk = g["repeat"].as<std::string>("");
    const bool counted = chunk.find("{i}") != std::string::npos;
    for (long c = 1, copies = g["copies"].as<long>(1); c <= copies; ++c) {
      f << numbered(g["text"].as<std::string>(""), "{n}", c);
      for (long i = 0, n = g["times"].as<long>(0); i < n; ++i)
        f << (counted ? numbered(chunk, "{i}", i) : chunk);
      f << numbered(g["end"].as<std::string>(""), "{n}", c);
    }
  }
  const long limit_mb = MemoryLimitMb(expect["memory_limit_mb"].as<long>(0));
  std::map<std::string, std::string> env;
  if (expect["env"]) env = expect["env"].as<std::map<std::string, std::string>>();
  std::vector<std::string> allowed = {"a/b/" + name + "/state.db"};
  for (const auto& a : expect["allowed_writes"])
    allowed.push_back("a/b/" + name + "/" + a.as<std::string>());

  // Setup commands (e.g. sqlite3 creating a database), before the snapshot.
  for (const auto& p : expect["prepare"]) {
    auto argv = p.as<std::vector<std::string>>();
    Result r = RunProgram(argv[0], {argv.begin() + 1, argv.end()}, dir, {},
                          std::chrono::seconds(60), limit_mb);
    ASSERT_EQ(r.exit_code, 0) << name << ": preparing with " << argv[0]
                              << " failed (is it installed?)\n"
                              << r.output;
  }
  const auto before = Snapshot(sandbox);
  int i = 0;
  for (const auto& step : expect["steps"]) {
    ++i;
    auto args = step["command"].as<std::vector<std::string>>();
    std::string what = name + " step " + std::to_string(i) + ": keyonce";
    for (const auto& a : args) what += " " + a;
    Result r = RunProgram("", args, dir, env,
                          std::chrono::seconds(step["timeout_seconds"].as<int>(30)), limit_mb);
    ASSERT_FALSE(r.timed_out) << what << ": did not finish (a hang); output:\n" << r.output;
    EXPECT_LT(r.exit_code, 128) << what << ": crashed with signal " << r.exit_code - 128 << "\n"
                                << r.output;
    EXPECT_EQ(r.exit_code, step["exit_code"].as<int>()) << what << "\n" << r.output;
    for (const auto& m : step["output"]) {
      EXPECT_NE(r.output.find(m.as<std::string>()), std::string::npos)
          << what << ": expected the message\n  " << m.as<std::string>() << "\nin the output:\n"
          << r.output;
    }
    for (const auto& m : step["not_output"]) {
      EXPECT_EQ(r.output.find(m.as<std::string>()), std::string::npos)
          << what << ": must not print\n  " << m.as<std::string>() << "\noutput:\n"
          << r.output;
    }
    // Memory, never time: the largest resident set the command reached.
    if (const long max_mb = step["max_rss_mb"].as<long>(0); max_mb > 0 && RssChecked()) {
      EXPECT_LE(r.peak_rss_kb, max_mb * 1024) << what << ": peak RSS " << r.peak_rss_kb / 1024
                                              << " MiB, more than max_rss_mb " << max_mb << "\n"
                                              << r.output;
    }
    std::cout << "[ memory   ] " << what << ": peak RSS " << r.peak_rss_kb / 1024 << " MiB\n";
  }
  // What the targets received.
  for (const auto& f : expect["files"]) {
    const std::string text = ReadFile(dir / f["path"].as<std::string>());
    for (const auto& m : f["contains"]) {
      EXPECT_NE(text.find(m.as<std::string>()), std::string::npos)
          << name << ": " << f["path"].as<std::string>() << " should hold\n  "
          << m.as<std::string>() << "\nbut holds:\n"
          << text;
    }
  }
  // Nothing written or changed outside the allowed places (the state file and
  // its -wal/-shm/-journal siblings, and the case's `allowed_writes`).
  for (const auto& [file, stamp] : Snapshot(sandbox)) {
    auto old = before.find(file);
    if (old != before.end() && old->second == stamp) continue;
    bool ok = false;
    for (const auto& a : allowed) ok = ok || file.rfind(a, 0) == 0;
    EXPECT_TRUE(ok) << name << ": wrote " << file
                    << " (relative to the sandbox; the case runs in a/b/" << name
                    << "), outside its allowed folders";
  }
  // KEYONCE_KEEP_TEST_DIRS=1 keeps the sandbox for a post-mortem.
  if (!std::getenv("KEYONCE_KEEP_TEST_DIRS")) fs::remove_all(sandbox);
}

INSTANTIATE_TEST_SUITE_P(Corpus, Hostile, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
