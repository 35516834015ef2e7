// Real servers for integration tests: start a program on a free loopback
// port, wait until it accepts connections, stop it (and its children) when
// the test ends. Used by connector tests that talk to PostgreSQL, nginx,
// json-server, the SOAP case system, smtp-server, ftp-srv, sshd, ...
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace keyonce::testing_util {

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// True once something accepts TCP connections on 127.0.0.1:port.
bool WaitForPort(int port, std::chrono::milliseconds timeout = std::chrono::seconds(20));

// The first executable named `name` on PATH or in `extra_dirs` (e.g.
// /usr/sbin, /usr/lib/postgresql/15/bin); empty when there is none.
std::string FindProgram(const std::string& name, const std::vector<std::string>& extra_dirs = {});

// tests/node_modules of the source tree (npm ci by .ci/install-deps.sh).
std::filesystem::path NodeModules();
// The source tree's tests/ folder.
std::filesystem::path TestsDir();

// Forks `exe` with `argv` (argv[0] included) in its own process group, stdout
// and stderr into `log` (truncated first), stdin from /dev/null,
// `env` added to the environment, in `cwd` when not empty. With
// `die_with_parent` the child is killed when the test process dies (even by a
// ctest timeout). Returns the pid, or -1 when fork fails.
pid_t SpawnLogged(const std::string& exe, const std::vector<std::string>& argv,
                  const std::filesystem::path& log, const std::map<std::string, std::string>& env,
                  const std::filesystem::path& cwd, bool die_with_parent);

// A child process in its own process group. Its stdout and stderr go to
// `log` (shown by Log() when a test needs to explain a failure). The
// destructor sends SIGTERM to the group, waits up to 5 s, then SIGKILL.
class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess() { Stop(); }

  // Starts argv[0] (a path, or a name looked up on PATH) with argv; `env`
  // is added to this process's environment.
  bool Start(const std::vector<std::string>& argv, const std::filesystem::path& log,
             const std::map<std::string, std::string>& env = {},
             const std::filesystem::path& cwd = {});
  // Starts and waits for `port`; false (with the log in *why) on failure.
  bool StartAndWait(const std::vector<std::string>& argv, int port,
                    const std::filesystem::path& log, std::string* why,
                    const std::map<std::string, std::string>& env = {},
                    const std::filesystem::path& cwd = {});
  void Stop();
  // Sends `sig` to the process group (e.g. SIGSTOP to make a server hang).
  void Signal(int sig);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  std::filesystem::path log_;
};

// Runs a program to completion (e.g. openssl, initdb); returns its exit
// code, with its output in *output when given.
int RunProgram(const std::vector<std::string>& argv, std::string* output = nullptr,
               const std::map<std::string, std::string>& env = {});

}  // namespace keyonce::testing_util
