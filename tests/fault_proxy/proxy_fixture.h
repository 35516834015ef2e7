// What the fault proxy's tests share: a temporary folder, json-server as the
// real upstream, the proxy in front of it, and a small libcurl client.
#pragma once

#include <curl/curl.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tests/support/servers.h"

namespace keyonce::fault_proxy_test {

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it
// (kept, and its path printed, when KEYONCE_KEEP_TEST_DIRS is set).
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// json-server on a free loopback port, serving `dir`/db.json with an empty
// "cases" collection. With `post_log`, every POST that reaches it is appended
// to that file as a JSON line {"path", "id", "status"} (post_log.js).
class JsonServer {
 public:
  // False with the reason in *why (e.g. json-server not installed).
  bool Start(const std::filesystem::path& dir, std::string* why,
             const std::filesystem::path& post_log = {});
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string Log() const { return process_.Log(); }
  void Stop() { process_.Stop(); }

 private:
  testing_util::ServerProcess process_;
  int port_ = -1;
};

// keyonce_fault_proxy in front of `upstream_port` with extra `args`, logging
// its decisions to `dir`/proxy-<port>.jsonl.
class FaultProxy {
 public:
  bool Start(const std::filesystem::path& dir, int upstream_port,
             const std::vector<std::string>& args, std::string* why);
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::filesystem::path& decisions() const { return decisions_; }
  std::string Log() const { return process_.Log(); }
  void Stop() { process_.Stop(); }

 private:
  testing_util::ServerProcess process_;
  int port_ = -1;
  std::filesystem::path decisions_;
};

std::string ProxyBinary();

struct Reply {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  double seconds = 0;
  long new_connections = 0;  // 0: an open connection was reused
};

// One request with libcurl; `handle` (optional) keeps its connection alive
// between calls.
class Client {
 public:
  Client();
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  Reply Call(const std::string& method, const std::string& url, const std::string& json_body = "",
             long timeout_ms = 20000);

 private:
  CURL* curl_;
};

// The proxy's decision log, one parsed line per request: field -> value as
// text (numbers as written).
std::vector<std::map<std::string, std::string>> ReadDecisions(const std::filesystem::path& file);

}  // namespace keyonce::fault_proxy_test
