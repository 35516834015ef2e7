// BrowserProcess: chromedriver and chromium under a watchdog that outlives
// keyonce only long enough to end them (see the contract in the header).

#include "connectors/browser/browser_process.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "connectors/common/net/transfer.h"

extern char** environ;

namespace keyonce::connectors::browser {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// ---------------------------------------------------------------- the watchdog
//
// Everything from here to the end of RunWatchdog runs in the forked child of
// a multi-threaded process: system calls only (no allocation, no locks, no
// stdio, no exceptions), on memory prepared before the fork.

constexpr int32_t kReportStarted = 1;  // value: chromedriver's pid
constexpr int32_t kReportExited = 2;   // value: chromedriver's wait status

struct Report {
  int32_t kind;
  int32_t value;
};

struct WatchdogPlan {
  const char* driver_path;
  char* const* argv;
  char* const* envp;
  const char* folder;
  int control_fd;  // read end: EOF means keyonce is done with the browser (or dead)
  int report_fd;   // write end: Report records to keyonce
  int log_fd;      // chromedriver's (and so chromium's) stdout and stderr
  int null_fd;     // stdin
  int lock_fd;     // the folder's lock (held while the watchdog lives)
  int grace_ms;
};

volatile sig_atomic_t g_stop_requested = 0;

void OnStopSignal(int) { g_stop_requested = 1; }
void OnChild(int) {}

constexpr int kMaxPids = 4096;

struct PidSet {
  pid_t pids[kMaxPids];
  int n;
};

char* AppendStr(char* p, char* end, const char* s) {
  while (*s && p < end - 1) *p++ = *s++;
  *p = '\0';
  return p;
}

char* AppendInt(char* p, char* end, long v) {
  char digits[24];
  int n = 0;
  if (v < 0) v = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v && n < 23);
  while (n && p < end - 1) *p++ = digits[--n];
  *p = '\0';
  return p;
}

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void SleepMs(int ms) {
  timespec ts{ms / 1000, static_cast<long>(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

void AddPid(PidSet* set, pid_t pid) {
  for (int i = 0; i < set->n; ++i) {
    if (set->pids[i] == pid) return;
  }
  if (set->n < kMaxPids) set->pids[set->n++] = pid;
}

// Adds the children of every thread of `pid` (/proc/PID/task/TID/children).
void AddChildren(pid_t pid, PidSet* set) {
  char path[64];
  char* p = AppendStr(path, path + sizeof path, "/proc/");
  p = AppendInt(p, path + sizeof path, pid);
  AppendStr(p, path + sizeof path, "/task");
  int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  alignas(8) char buf[2048];
  for (;;) {
    long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<LinuxDirent64*>(buf + off);
      off += d->d_reclen;
      if (d->d_name[0] == '.') continue;
      char child_path[96];
      char* q = AppendStr(child_path, child_path + sizeof child_path, d->d_name);
      AppendStr(q, child_path + sizeof child_path, "/children");
      int fd = openat(dfd, child_path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      char text[4096];
      size_t len = 0;
      for (;;) {
        ssize_t k = read(fd, text + len, sizeof text - 1 - len);
        if (k > 0) {
          len += static_cast<size_t>(k);
          if (len < sizeof text - 1) continue;
        } else if (k < 0 && errno == EINTR) {
          continue;
        }
        break;
      }
      close(fd);
      long v = 0;
      bool in_number = false;
      for (size_t i = 0; i <= len; ++i) {
        char c = i < len ? text[i] : ' ';
        if (c >= '0' && c <= '9') {
          v = v * 10 + (c - '0');
          in_number = true;
        } else if (in_number) {
          AddPid(set, static_cast<pid_t>(v));
          v = 0;
          in_number = false;
        }
      }
    }
  }
  close(dfd);
}

// Every descendant of this process, parents before their children.
void Descendants(PidSet* set) {
  set->n = 0;
  AddChildren(getpid(), set);
  for (int i = 0; i < set->n; ++i) AddChildren(set->pids[i], set);
}

// chromedriver's process group (the browser's processes stay in it unless
// they leave it); -1 before chromedriver started.
pid_t g_driver_group = -1;

void SignalDescendants(int sig) {
  // The group too, for a kernel without /proc/PID/task/TID/children
  // (CONFIG_PROC_CHILDREN); a group id is not reused while the group lives.
  if (g_driver_group > 0) {
    if (sig == SIGTERM) kill(-g_driver_group, SIGCONT);
    kill(-g_driver_group, sig);
  }
  PidSet set;
  Descendants(&set);
  for (int i = 0; i < set.n; ++i) {
    if (sig == SIGTERM) kill(set.pids[i], SIGCONT);  // a stopped process cannot act on SIGTERM
    kill(set.pids[i], sig);
  }
}

// Reaps every child that has exited (as a subreaper, orphaned descendants
// are children too); notes chromedriver's status. True when no child is left.
bool ReapChildren(pid_t driver, bool* driver_done, int* driver_status) {
  for (;;) {
    int status = 0;
    pid_t p = waitpid(-1, &status, WNOHANG);
    if (p > 0) {
      if (p == driver && !*driver_done) {
        *driver_done = true;
        *driver_status = status;
      }
      continue;
    }
    if (p == 0) return false;
    if (errno == EINTR) continue;
    return errno == ECHILD;
  }
}

// SIGTERM to every descendant, a grace to exit, SIGKILL to what is left,
// until no child is left (bounded: a process stuck in the kernel is given up
// on after 10 s).
void EndDescendants(const WatchdogPlan& plan, pid_t driver, bool* driver_done, int* driver_status) {
  if (ReapChildren(driver, driver_done, driver_status)) return;
  SignalDescendants(SIGTERM);
  int64_t deadline = NowMs() + plan.grace_ms;
  while (NowMs() < deadline) {
    if (ReapChildren(driver, driver_done, driver_status)) return;
    SleepMs(10);
  }
  deadline = NowMs() + 10000;
  while (NowMs() < deadline) {
    SignalDescendants(SIGKILL);
    if (ReapChildren(driver, driver_done, driver_status)) return;
    SleepMs(10);
  }
}

bool IsDirectoryAt(int dirfd, const char* name) {
  struct stat st;
  return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

// Removes `name` (in `dirfd`) and everything under it; symlinks are removed,
// never followed.
void RemoveTree(int dirfd, const char* name, int depth) {
  int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    unlinkat(dirfd, name, 0);
    return;
  }
  alignas(8) char buf[2048];
  for (int pass = 0; pass < 3; ++pass) {
    lseek(fd, 0, SEEK_SET);
    bool any = false;
    for (;;) {
      long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
      if (n <= 0) break;
      for (long off = 0; off < n;) {
        auto* d = reinterpret_cast<LinuxDirent64*>(buf + off);
        off += d->d_reclen;
        const char* e = d->d_name;
        if (e[0] == '.' && (e[1] == '\0' || (e[1] == '.' && e[2] == '\0'))) continue;
        any = true;
        bool dir = d->d_type == DT_DIR || (d->d_type == DT_UNKNOWN && IsDirectoryAt(fd, e));
        if (dir && depth < 64) {
          RemoveTree(fd, e, depth + 1);
        } else {
          unlinkat(fd, e, 0);
        }
      }
    }
    if (!any) break;
  }
  close(fd);
  unlinkat(dirfd, name, AT_REMOVEDIR);
}

void CloseRange(unsigned lo, unsigned hi) {
  if (lo > hi) return;
  if (syscall(SYS_close_range, lo, hi, 0) == 0) return;
  rlimit rl{};
  unsigned max = 65536;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < max) {
    max = static_cast<unsigned>(rl.rlim_cur);
  }
  for (unsigned fd = lo; fd <= hi && fd < max; ++fd) close(static_cast<int>(fd));
}

void WriteReport(int fd, int32_t kind, int32_t value) {
  Report r{kind, value};
  while (write(fd, &r, sizeof r) < 0 && errno == EINTR) {
  }
}

[[noreturn]] void RunWatchdog(const WatchdogPlan& plan) {
  // Signals: defaults (the parent's handlers mean nothing here), SIGTERM and
  // friends end the browser like a closed pipe, SIGCHLD wakes the wait.
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &sa, nullptr);
  }
  sa.sa_handler = OnStopSignal;
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT}) sigaction(sig, &sa, nullptr);
  sa.sa_handler = OnChild;
  sigaction(SIGCHLD, &sa, nullptr);
  sa.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &sa, nullptr);
  sigset_t blocked, none;
  sigemptyset(&none);
  sigemptyset(&blocked);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD}) sigaddset(&blocked, sig);
  sigprocmask(SIG_SETMASK, &blocked, nullptr);

  setpgid(0, 0);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) _exit(120);

  // Files: stdin from /dev/null, stdout and stderr to the log, the two pipes;
  // everything else keyonce had open is closed (a lock file's flock would
  // otherwise outlive keyonce here).
  int control = fcntl(plan.control_fd, F_DUPFD, 3);
  int report = fcntl(plan.report_fd, F_DUPFD, 3);
  int lock = fcntl(plan.lock_fd, F_DUPFD, 3);
  int log = fcntl(plan.log_fd, F_DUPFD, 3);
  int null = fcntl(plan.null_fd, F_DUPFD, 3);
  if (control < 0 || report < 0 || lock < 0 || log < 0 || null < 0) _exit(121);
  dup2(null, 0);
  dup2(log, 1);
  dup2(log, 2);
  // Keeps the three (in order) and closes every other descriptor from 3 up.
  int keep[3] = {control, report, lock};
  for (int i = 1; i < 3; ++i) {
    for (int j = i; j > 0 && keep[j - 1] > keep[j]; --j) {
      int t = keep[j];
      keep[j] = keep[j - 1];
      keep[j - 1] = t;
    }
  }
  unsigned from = 3;
  for (int fd : keep) {
    CloseRange(from, static_cast<unsigned>(fd) - 1);
    from = static_cast<unsigned>(fd) + 1;
  }
  CloseRange(from, ~0U);
  for (int fd : keep) fcntl(fd, F_SETFD, FD_CLOEXEC);

  const pid_t self = getpid();
  pid_t driver = _Fork();
  if (driver == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != self) _exit(127);
    setpgid(0, 0);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &sa, nullptr);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(plan.driver_path, plan.argv, plan.envp);
    _exit(127);
  }
  if (driver > 0) {
    setpgid(driver, driver);  // as the child does: whichever runs first
    g_driver_group = driver;
  }
  bool driver_done = driver < 0;
  int driver_status = driver < 0 ? (127 << 8) : 0;
  if (driver > 0) WriteReport(report, kReportStarted, driver);
  bool reported_exit = false;

  for (;;) {
    if (ReapChildren(driver, &driver_done, &driver_status) || driver_done) {
      if (!reported_exit) {
        // chromedriver ended by itself: end its chromium too, but keep the
        // folder (its log) until keyonce lets go.
        reported_exit = true;
        WriteReport(report, kReportExited, driver_status);
        EndDescendants(plan, driver, &driver_done, &driver_status);
      }
    }
    if (g_stop_requested) break;
    pollfd pfd{control, POLLIN, 0};
    timespec timeout{1, 0};
    int n = ppoll(&pfd, 1, &timeout, &none);
    if (n < 0 && errno != EINTR) break;
    if (n > 0) {
      char b[64];
      ssize_t k = read(control, b, sizeof b);
      if (k == 0 || (k < 0 && errno != EINTR && errno != EAGAIN)) break;
    }
  }
  EndDescendants(plan, driver, &driver_done, &driver_status);
  RemoveTree(AT_FDCWD, plan.folder, 0);
  _exit(0);
}

// ---------------------------------------------------------------- keyonce's side

std::string FindExecutable(const std::string& given, const std::vector<std::string>& names) {
  if (!given.empty()) return given;
  std::vector<std::string> dirs = {"/usr/bin"};
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    for (std::string d; std::getline(ss, d, ':');) {
      if (!d.empty()) dirs.push_back(d);
    }
  }
  for (const auto& n : names) {
    for (const auto& d : dirs) {
      fs::path p = fs::path(d) / n;
      if (access(p.c_str(), X_OK) == 0) return p.string();
    }
  }
  return "/usr/bin/" + names.front();
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "ended";
}

// Lines of chromium's stderr that say nothing about why it failed.
bool IsNoise(std::string_view line) {
  for (std::string_view n : {"Failed to connect to the bus", "dbus", "object_proxy.cc",
                             "unexpected operator", "Fontconfig", "security-considerations",
                             "Only local connections are allowed", "started successfully"}) {
    if (line.find(n) != std::string_view::npos) return true;
  }
  return line.empty();
}

}  // namespace

// ---------------------------------------------------------------- BrowserProcess

Result<std::unique_ptr<BrowserProcess>> BrowserProcess::Start(const BrowserOptions& options) {
  std::unique_ptr<BrowserProcess> bp(new BrowserProcess());
  bp->options_ = options;
  bp->chromium_ =
      FindExecutable(options.chromium, {"chromium", "chromium-browser", "google-chrome"});
  bp->chromedriver_ = FindExecutable(options.chromedriver, {"chromedriver"});
  if (access(bp->chromium_.c_str(), X_OK) != 0) {
    return Status::Invalid("starting the browser: chromium is not installed or not executable (" +
                           bp->chromium_ + "; Debian package chromium)");
  }
  if (access(bp->chromedriver_.c_str(), X_OK) != 0) {
    return Status::Invalid(
        "starting the browser: chromedriver is not installed or not executable (" +
        bp->chromedriver_ + "; Debian package chromium-driver)");
  }
  if (!options.headless && !std::getenv("DISPLAY") && !std::getenv("WAYLAND_DISPLAY")) {
    return Status::Invalid(
        "starting the browser: a headed browser needs a display, and DISPLAY is not set (run "
        "under Xvfb, or headless)");
  }
  Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    int port = FreePort();
    if (port <= 0) return Status::Io("starting the browser: no free port on 127.0.0.1");
    bool port_taken = false;
    last = bp->StartOnce(port, &port_taken);
    if (last.ok()) return bp;
    if (!port_taken) return last;
  }
  return last;
}

void SweepStaleBrowserFolders(const fs::path& root) {
  // readdir, not directory_iterator: a temp root may hold thousands of
  // entries, and only ours need a path.
  DIR* d = opendir(root.c_str());
  if (!d) return;
  const auto now = fs::file_time_type::clock::now();
  const size_t prefix = std::strlen(kFolderPrefix);
  std::vector<fs::path> stale;
  while (const dirent* e = readdir(d)) {
    if (std::strncmp(e->d_name, kFolderPrefix, prefix) != 0) continue;
    const fs::path dir = root / e->d_name;
    struct stat st {};
    if (lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) continue;
    int fd = open((dir / "lock").c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
      if (flock(fd, LOCK_EX | LOCK_NB) == 0) stale.push_back(dir);  // its owners are gone
      close(fd);
    } else if (errno == ENOENT) {
      // Killed between making the folder and locking it (or an older keyonce's).
      std::error_code ec;
      auto written = fs::last_write_time(dir, ec);
      if (!ec && now - written > std::chrono::seconds(kUnlockedFolderGraceSeconds)) {
        stale.push_back(dir);
      }
    }
  }
  closedir(d);
  for (const auto& dir : stale) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
}

Status BrowserProcess::StartOnce(int port, bool* port_taken) {
  *port_taken = false;
  driver_exited_ = false;
  driver_pid_ = -1;
  fs::path root = options_.temp_root;
  if (root.empty()) {
    const char* t = std::getenv("TMPDIR");
    root = t && *t ? t : "/tmp";
  }
  SweepStaleBrowserFolders(root);
  std::string templ = (root / (std::string(kFolderPrefix) + "XXXXXX")).string();
  if (!mkdtemp(templ.data())) {
    return Status::Io("starting the browser: cannot make a temp folder in " + root.string() + ": " +
                      std::strerror(errno));
  }
  folder_ = templ;
  std::error_code ec;
  // The folder's lock, held by keyonce and its watchdog while either lives:
  // when both are gone and the folder is still there (keyonce killed before
  // the watchdog started, the watchdog killed), the next start removes it.
  // Locked before it gets its name, so a lock file is never free while in use.
  {
    const fs::path pending = folder_ / "lock.new";
    int fd = open(pending.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0 || rename(pending.c_str(), (folder_ / "lock").c_str())) {
      int err = errno;
      if (fd >= 0) close(fd);
      fs::remove_all(folder_, ec);
      return Status::Io("starting the browser: cannot lock its temp folder " + folder_.string() +
                        ": " + std::strerror(err));
    }
    lock_fd_ = fd;
  }
  for (const char* d : {"profile", "home/.config", "home/.cache", "tmp", "downloads"}) {
    fs::create_directories(folder_ / d, ec);
  }
  const std::string log_path = (folder_ / "driver.log").string();
  int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int control[2] = {-1, -1}, report[2] = {-1, -1};
  bool pipes = pipe2(control, O_CLOEXEC) == 0 && pipe2(report, O_CLOEXEC) == 0;
  auto close_all = [&] {
    for (int fd : {log_fd, null_fd, control[0], control[1], report[0], report[1]}) {
      if (fd >= 0) close(fd);
    }
  };
  if (log_fd < 0 || null_fd < 0 || !pipes) {
    int err = errno;
    close_all();
    fs::remove_all(folder_, ec);
    ReleaseLock();
    return Status::Io(std::string("starting the browser: ") + std::strerror(err));
  }

  // Everything the watchdog needs, made before the fork.
  // --enable-chrome-logs: chromium's stderr into the log too (why it did not start).
  std::vector<std::string> args = {chromedriver_, "--port=" + std::to_string(port),
                                   "--enable-chrome-logs"};
  // Only what a browser needs of keyonce's environment (which may hold
  // secrets): locale, time zone, display, proxies.
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    std::string_view name = kv.substr(0, kv.find('='));
    bool wanted = name.starts_with("LC_");
    for (std::string_view k :
         {"PATH", "LANG", "LANGUAGE", "TZ", "DISPLAY", "WAYLAND_DISPLAY", "XAUTHORITY",
          "XDG_RUNTIME_DIR", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
          "NO_PROXY", "all_proxy", "ALL_PROXY", "CHROMIUM_FLAGS"}) {
      wanted = wanted || name == k;
    }
    if (wanted) env.emplace_back(kv);
  }
  env.push_back("HOME=" + (folder_ / "home").string());
  env.push_back("XDG_CONFIG_HOME=" + (folder_ / "home/.config").string());
  env.push_back("XDG_CACHE_HOME=" + (folder_ / "home/.cache").string());
  env.push_back("TMPDIR=" + (folder_ / "tmp").string());
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string folder = folder_.string();
  WatchdogPlan plan{chromedriver_.c_str(),
                    argv.data(),
                    envp.data(),
                    folder.c_str(),
                    control[0],
                    report[1],
                    log_fd,
                    null_fd,
                    lock_fd_,
                    static_cast<int>(options_.kill_grace_seconds * 1000)};

  pid_t pid = fork();
  if (pid == 0) RunWatchdog(plan);
  int fork_errno = errno;
  close(control[0]);
  close(report[1]);
  close(log_fd);
  close(null_fd);
  if (pid < 0) {
    close(control[1]);
    close(report[0]);
    fs::remove_all(folder_, ec);
    ReleaseLock();
    return Status::Io(std::string("starting the browser: fork failed: ") +
                      std::strerror(fork_errno));
  }
  watchdog_pid_ = pid;
  control_fd_ = control[1];
  report_fd_ = report[0];
  fcntl(report_fd_, F_SETFL, fcntl(report_fd_, F_GETFL) | O_NONBLOCK);
  driver_url_ = "http://127.0.0.1:" + std::to_string(port);

  // Ready when /status says so; failed when chromedriver exits first.
  net::ClientOptions co;
  co.transfer.timeout_seconds = 2;
  co.transfer.connect_timeout_seconds = 1;
  net::HttpClient client(co);
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(options_.start_timeout_seconds));
  Status failure;
  for (;;) {
    ReadReports();
    if (driver_exited_ || !alive()) {
      std::string tail = LogTail();
      *port_taken = tail.find("ddress already in use") != std::string::npos ||
                    tail.find("port not available") != std::string::npos;
      failure = Status::Transient("starting the browser: chromedriver " +
                                  DescribeWaitStatus(driver_wait_status_) +
                                  (tail.empty() ? "" : ": " + tail));
      if (watchdog_failed_) {
        failure = Status::Internal(
            "starting the browser: the watchdog could not set itself up (a child subreaper "
            "needs Linux 3.4 or later)");
      } else if (WIFEXITED(driver_wait_status_) && WEXITSTATUS(driver_wait_status_) == 127) {
        failure = Status::Invalid("starting the browser: chromedriver could not be executed (" +
                                  chromedriver_ + ")");
      }
      break;
    }
    net::HttpRequest req;
    req.url = driver_url_ + "/status";
    auto r = client.Perform(req);
    if (r.ok() && r->status == 200) {
      boost::system::error_code jec;
      auto doc = boost::json::parse(r->body, jec);
      const auto* top = jec ? nullptr : doc.if_object();
      const auto* value = top ? top->if_contains("value") : nullptr;
      const auto* ready =
          value && value->is_object() ? value->get_object().if_contains("ready") : nullptr;
      if (ready && ready->is_bool() && ready->get_bool()) return Status::OK();
    }
    if (Clock::now() >= deadline) {
      std::string tail = LogTail();
      failure = Status::Transient("starting the browser: chromedriver did not answer within " +
                                  std::to_string(std::lround(options_.start_timeout_seconds)) +
                                  " s" + (tail.empty() ? "" : ": " + tail));
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  (void)Stop();
  return failure;
}

void BrowserProcess::ReadReports() {
  if (report_fd_ < 0) return;
  Report r;
  for (;;) {
    ssize_t n = read(report_fd_, &r, sizeof r);
    if (n == static_cast<ssize_t>(sizeof r)) {
      if (r.kind == kReportStarted) driver_pid_ = r.value;
      if (r.kind == kReportExited) {
        driver_exited_ = true;
        driver_wait_status_ = r.value;
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
}

bool BrowserProcess::alive() {
  if (watchdog_pid_ <= 0) return false;
  ReadReports();
  if (driver_exited_) return false;
  int status = 0;
  pid_t r = waitpid(watchdog_pid_, &status, WNOHANG);
  if (r == watchdog_pid_ || (r < 0 && errno == ECHILD && kill(watchdog_pid_, 0) != 0)) {
    // The watchdog itself is gone (killed from outside, or it could not set
    // itself up): nothing runs chromedriver.
    watchdog_pid_ = -1;
    if (!driver_exited_ && r > 0) driver_wait_status_ = status;  // what ended it, if not its driver
    driver_exited_ = true;
    watchdog_failed_ = r == watchdog_pid_ && WIFEXITED(status) && WEXITSTATUS(status) >= 120 &&
                       WEXITSTATUS(status) <= 121;
    return false;
  }
  return true;
}

Status BrowserProcess::Stop() {
  if (control_fd_ >= 0) {
    close(control_fd_);
    control_fd_ = -1;
  }
  Status st;
  if (watchdog_pid_ > 0) {
    const auto deadline =
        Clock::now() +
        std::chrono::milliseconds(static_cast<int>(options_.kill_grace_seconds * 1000) + 12000);
    bool gone = false;
    while (Clock::now() < deadline) {
      int status = 0;
      pid_t r = waitpid(watchdog_pid_, &status, WNOHANG);
      // ECHILD: reaped elsewhere (SIGCHLD ignored, or another waitpid(-1)).
      if (r == watchdog_pid_ || (r < 0 && errno == ECHILD && kill(watchdog_pid_, 0) != 0)) {
        gone = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!gone) {
      kill(-watchdog_pid_, SIGKILL);
      kill(watchdog_pid_, SIGKILL);
      int status = 0;
      waitpid(watchdog_pid_, &status, 0);
      st = Status::Internal("stopping the browser: the watchdog did not finish in time");
    }
    watchdog_pid_ = -1;
  }
  if (report_fd_ >= 0) {
    ReadReports();
    close(report_fd_);
    report_fd_ = -1;
  }
  if (!folder_.empty()) {
    std::error_code ec;
    if (fs::exists(folder_, ec)) fs::remove_all(folder_, ec);
    if (ec && st.ok()) {
      st = Status::Internal("stopping the browser: cannot remove " + folder_.string() + ": " +
                            ec.message());
    }
  }
  ReleaseLock();
  return st;
}

void BrowserProcess::ReleaseLock() {
  if (lock_fd_ >= 0) close(lock_fd_);
  lock_fd_ = -1;
}

BrowserProcess::~BrowserProcess() { (void)Stop(); }

std::string BrowserProcess::LogTail(size_t max_chars) const {
  std::ifstream in(folder_ / "driver.log", std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  std::streamoff from = std::max<std::streamoff>(0, size - 16384);
  in.seekg(from);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string_view> lines;
  std::string_view rest(text);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    if (!IsNoise(line) && !line.starts_with("Starting ChromeDriver")) lines.push_back(line);
    if (nl == std::string_view::npos) break;
    rest.remove_prefix(nl + 1);
  }
  std::string out;
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (out.size() + it->size() + 3 > max_chars) break;
    out = std::string(*it) + (out.empty() ? "" : " | ") + out;
  }
  return net::Excerpt(out, max_chars);
}

// Every chromium keyonce starts gets these.
constexpr const char* kChromiumFlags[] = {
    "--disable-gpu", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--password-store=basic",
    // A page waits with timers (kWaitScript): at full speed also in a window
    // that is hidden or in the background.
    "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    // Background features a robot has no use for (from the set Playwright
    // starts chromium with). No back-forward cache: a page gone back to is
    // loaded again, never shown with old form values.
    "--disable-field-trial-config", "--disable-back-forward-cache", "--disable-breakpad",
    "--disable-client-side-phishing-detection",
    "--disable-component-extensions-with-background-pages", "--disable-default-apps",
    "--disable-extensions", "--disable-hang-monitor", "--metrics-recording-only",
    "--no-service-autorun", "--disable-search-engine-choice-screen",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,"
    "AcceptCHFrame,LensOverlay,CertificateTransparencyComponentUpdater,"
    "AutofillServerCommunication,InterestFeedContentSuggestions",
    // Errors only: chromium's INFO lines quote the pages' console.
    "--log-level=2"};

SessionOptions BrowserProcess::session_options() const {
  SessionOptions s;
  s.binary = chromium_;
  if (options_.headless) s.args.push_back("--headless=new");
  if (geteuid() == 0) s.args.push_back("--no-sandbox");  // chromium's sandbox refuses root
  for (const char* a : kChromiumFlags) s.args.emplace_back(a);
  s.args.push_back("--user-data-dir=" + profile_dir().string());
  s.args.push_back("--window-size=" + std::to_string(options_.window_width) + "," +
                   std::to_string(options_.window_height));
  if (!options_.accept_language.empty()) {
    s.args.push_back("--lang=" + options_.accept_language);
    s.prefs["intl.accept_languages"] = options_.accept_language;
  }
  s.prefs["credentials_enable_service"] = false;
  s.prefs["profile.password_manager_enabled"] = false;
  s.prefs["translate.enabled"] = false;
  s.prefs["download.default_directory"] = downloads_dir().string();
  s.prefs["download.prompt_for_download"] = false;
  s.prefs["download.directory_upgrade"] = true;
  s.prefs["profile.default_content_setting_values.automatic_downloads"] = 1;
  for (const auto& a : options_.extra_args) s.args.push_back(a);
  return s;
}

// ---------------------------------------------------------------- Browser

Result<std::unique_ptr<Browser>> Browser::Launch(
    const BrowserOptions& options, const std::function<void(SessionOptions&)>& adjust) {
  const auto start = Clock::now();
  std::unique_ptr<Browser> b(new Browser());
  auto process = BrowserProcess::Start(options);
  if (!process.ok()) return process.status();
  b->process_ = std::move(*process);
  SessionOptions so = b->process_->session_options();
  if (adjust) adjust(so);
  auto driver = WebDriver::NewSession(b->process_->driver_url(), so);
  if (!driver.ok()) {
    std::string tail = b->process_->LogTail();
    return driver.status().WithMessage(driver.status().message() +
                                       (tail.empty() ? "" : "; chromium said: " + tail));
  }
  b->driver_ = std::move(*driver);
  b->launch_seconds_ = std::chrono::duration<double>(Clock::now() - start).count();
  return b;
}

Browser::~Browser() {
  driver_.reset();  // deletes the session: chromium shuts down cleanly
  process_.reset();
}

}  // namespace keyonce::connectors::browser
