// `keyonce serve` for integration tests: started in a fresh temp folder
// (recipes/, state.db, tokens.yaml with SHA-256 hashes), its port read from
// the `listening on http://127.0.0.1:PORT` log line, signalled, stopped and
// restarted on the same state file; and a tiny blocking HTTP client (libcurl)
// that keeps its connection alive. Link CURL::libcurl and OpenSSL::Crypto.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keyonce::testing_util {

// Lower-case hex SHA-256 of `text` (what tokens.yaml holds for a token).
std::string Sha256Hex(std::string_view text);

struct HttpRequest {
  std::string method = "GET";
  std::string path;                  // "/api/v1/runs?limit=5"
  std::string body;                  // sent when not empty (or when method is POST/PATCH)
  std::vector<std::string> headers;  // "Name: value"
};

struct HttpReply {
  long status = 0;    // 0: no HTTP reply at all (error says why)
  std::string error;  // transport error (connection refused, timeout, ...)
  std::string body;
  std::multimap<std::string, std::string> headers;  // names in lower case
  // The first header of that (lower-case) name, "" if none.
  std::string Header(const std::string& name) const;
  std::vector<std::string> Headers(const std::string& name) const;
};

// One connection's worth of HTTP/1.1 to `base_url` (e.g. http://127.0.0.1:8080).
// Not thread-safe: one client per thread. Timeout per request: 60 s.
class HttpClient {
 public:
  explicit HttpClient(std::string base_url = "");
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  void set_base_url(std::string url) { base_url_ = std::move(url); }
  const std::string& base_url() const { return base_url_; }

  HttpReply Send(const HttpRequest& request);
  // GET with `Authorization: Bearer token` when token is not empty.
  HttpReply Get(const std::string& path, const std::string& token = "");
  // POST/PATCH of a JSON body (Content-Type: application/json) with a bearer token.
  HttpReply SendJson(const std::string& method, const std::string& path, const std::string& json,
                     const std::string& token = "");

 private:
  std::string base_url_;
  void* curl_ = nullptr;
};

// A token entry of tokens.yaml; `token` is the secret itself (only its hash is written).
struct ServiceToken {
  std::string name, role;
  std::vector<std::string> recipes;  // caseworker only
  std::string token;
};

// `keyonce serve` in a temp folder that is removed (after a SIGKILL of the
// service if it still runs) by the destructor. The service also dies with
// the test process (PR_SET_PDEATHSIG), so a killed test leaves no server.
// Set KEYONCE_KEEP_TEST_DIRS=1 to keep the folder for a post-mortem.
class Service {
 public:
  explicit Service(std::string binary);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path recipes_dir() const { return dir_ / "recipes"; }
  std::filesystem::path state_file() const { return dir_ / "state.db"; }
  std::filesystem::path tokens_file() const { return dir_ / "tokens.yaml"; }

  // Writes tokens.yaml (SHA-256 of each token, never the token).
  void WriteTokens(const std::vector<ServiceToken>& tokens);
  // Writes recipes/<file> (creating the folder).
  void WriteRecipe(const std::string& file, const std::string& yaml);

  // Starts `keyonce serve --recipes --state --tokens --listen 127.0.0.1:0`
  // plus `extra_args`, and waits (up to 60 s) for the listening line. False
  // with the log in *why when it exits or does not listen.
  bool Start(const std::vector<std::string>& extra_args, std::string* why,
             const std::map<std::string, std::string>& env = {});
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }
  // True while the process has not exited (reaps it when it has).
  bool Running();
  void Signal(int sig);
  // Sends `sig` and waits up to `timeout` for the exit: the exit code, or
  // 128+signal when a signal ended it, or nullopt when it did not exit in
  // time (it is then killed with SIGKILL).
  std::optional<int> Stop(int sig = SIGTERM,
                          std::chrono::seconds timeout = std::chrono::seconds(60));
  // Waits up to `timeout` for the exit without signalling (same results as Stop).
  std::optional<int> Wait(std::chrono::seconds timeout);
  // SIGKILL, and reaps it.
  void Kill();
  // Waits until the current log contains `text` (true) or `timeout` passes.
  bool WaitForLog(const std::string& text, std::chrono::seconds timeout);
  // stderr+stdout of every start so far, in order; CurrentLog(): this start's.
  std::string Log() const;
  std::string CurrentLog() const;

  // A client bound to the current port (rebound by each Start).
  HttpClient& client() { return client_; }

 private:
  std::string binary_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  int starts_ = 0;
  HttpClient client_;
};

}  // namespace keyonce::testing_util
