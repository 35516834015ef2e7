// Servers for the SOAP and XML tests: the case system of tests/servers/soap
// (node + the npm `soap` package) and a canned-reply server (nginx) that
// answers fixed, possibly broken replies.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/servers.h"

namespace keyonce::testing_util {

// A plain HTTP/1.0 request to 127.0.0.1:port (no libcurl, so that every
// test binary can use it). Returns the status code (-1 when the request
// failed) with the body in *body.
int PlainHttp(int port, const std::string& method, const std::string& path,
              const std::string& body = "", std::string* reply_body = nullptr);

// The case system (tests/servers/soap/server.js): SOAP 1.1 on /case11,
// SOAP 1.2 on /case12, cases in memory, GET /cases, POST /control.
class CaseSystemServer {
 public:
  // Starts node on a free port; `wsse` ("user:password") makes it require a
  // WS-Security UsernameToken. False with a clear reason in *why when node
  // or the npm package is missing or the server does not come up.
  bool Start(const std::filesystem::path& dir, std::string* why, const std::string& wsse = "");
  void Stop() { process_.Stop(); }
  int port() const { return port_; }
  std::string Url(bool soap12 = false) const;
  // GET /cases: the JSON array of cases.
  std::string CasesJson() const;
  // POST /control with a JSON object, e.g. {"fail": 2, "status": 503}.
  bool Control(const std::string& json) const;
  std::string Log() const { return process_.Log(); }

 private:
  ServerProcess process_;
  int port_ = -1;
};

// nginx answering fixed replies: a POST (or GET) to /<name> gets `status`
// with `content_type` and `body`.
struct CannedReply {
  std::string name;
  int status = 200;
  std::string content_type = "text/xml";
  std::string body;
};

class CannedServer {
 public:
  // Writes the configuration and bodies into `dir` and starts nginx there.
  bool Start(const std::filesystem::path& dir, const std::vector<CannedReply>& replies,
             std::string* why);
  void Stop() { process_.Stop(); }
  std::string Url(const std::string& name) const;
  int port() const { return port_; }

 private:
  ServerProcess process_;
  int port_ = -1;
};

}  // namespace keyonce::testing_util
