#include "tests/support/servers.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace keyonce::testing_util {
namespace fs = std::filesystem;

namespace {
int BindAnyLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  int port = -1;
  socklen_t len = sizeof(a);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}
}  // namespace

int FreePort() {
  // The kernel may hand the same free port out twice once its socket is closed, and two test
  // servers would then race for it (the loser exits, the test talks to the winner): never give
  // a port out twice in one process.
  static std::mutex mu;
  static std::set<int> given;
  std::lock_guard lock(mu);
  for (int attempt = 0; attempt < 100; ++attempt) {
    int port = BindAnyLoopbackPort();
    if (port < 0) return -1;
    if (given.insert(port).second) return port;
  }
  return -1;
}

bool WaitForPort(int port, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(fd);
    if (ok) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string FindProgram(const std::string& name, const std::vector<std::string>& extra_dirs) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  std::vector<std::string> dirs;
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    for (std::string d; std::getline(ss, d, ':');) dirs.push_back(d);
  }
  for (const auto& d : {"/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin"}) dirs.emplace_back(d);
  dirs.insert(dirs.end(), extra_dirs.begin(), extra_dirs.end());
  for (const auto& d : dirs) {
    fs::path p = fs::path(d) / name;
    if (access(p.c_str(), X_OK) == 0 && !fs::is_directory(p)) return p.string();
  }
  return "";
}

fs::path TestsDir() { return fs::path(KEYONCE_SOURCE_DIR) / "tests"; }
fs::path NodeModules() { return TestsDir() / "node_modules"; }

pid_t SpawnLogged(const std::string& exe, const std::vector<std::string>& argv, const fs::path& log,
                  const std::map<std::string, std::string>& env, const fs::path& cwd,
                  bool die_with_parent) {
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (die_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);  // the parent died before prctl
    }
    setpgid(0, 0);
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(exe.c_str(), args.data());
    _exit(127);
  }
  setpgid(pid, pid);
  return pid;
}

bool ServerProcess::Start(const std::vector<std::string>& argv, const fs::path& log,
                          const std::map<std::string, std::string>& env, const fs::path& cwd) {
  Stop();
  log_ = log;
  std::string exe = FindProgram(argv.at(0));
  if (exe.empty()) {
    std::ofstream(log) << "program not found: " << argv[0] << "\n";
    return false;
  }
  pid_t pid = SpawnLogged(exe, argv, log, env, cwd, false);
  if (pid < 0) return false;
  pid_ = pid;
  return true;
}

bool ServerProcess::StartAndWait(const std::vector<std::string>& argv, int port,
                                 const fs::path& log, std::string* why,
                                 const std::map<std::string, std::string>& env,
                                 const fs::path& cwd) {
  if (!Start(argv, log, env, cwd)) {
    if (why) *why = "could not start " + argv.at(0) + ": " + Log();
    return false;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (WaitForPort(port, std::chrono::milliseconds(200))) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      if (why)
        *why =
            argv.at(0) + " exited before listening on port " + std::to_string(port) + ":\n" + Log();
      return false;
    }
  }
  if (why)
    *why =
        argv.at(0) + " did not listen on port " + std::to_string(port) + " within 30 s:\n" + Log();
  Stop();
  return false;
}

void ServerProcess::Signal(int sig) {
  if (pid_ > 0) kill(-pid_, sig);
}

void ServerProcess::Stop() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGCONT);
  kill(-pid_, SIGTERM);
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool gone = false;
  while (std::chrono::steady_clock::now() < deadline) {
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || r < 0) {
      gone = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(-pid_, SIGKILL);  // the group's other members too
  if (!gone) waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string ServerProcess::Log() const {
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.size() > 4000) s = "..." + s.substr(s.size() - 4000);
  return s;
}

int RunProgram(const std::vector<std::string>& argv, std::string* output,
               const std::map<std::string, std::string>& env) {
  std::string exe = FindProgram(argv.at(0));
  if (exe.empty()) {
    if (output) *output = "program not found: " + argv[0];
    return 127;
  }
  int pipefd[2];
  if (pipe(pipefd) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    close(pipefd[0]);
    close(pipefd[1]);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(exe.c_str(), args.data());
    _exit(127);
  }
  close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace keyonce::testing_util
