#include "tests/support/webapp_server.h"

#include <fstream>
#include <sstream>

#include "tests/support/soap_server.h"  // PlainHttp

namespace keyonce::testing_util {
namespace fs = std::filesystem;

bool WebappServer::Start(const fs::path& dir, std::string* why, const WebappOptions& options) {
  Stop();
  if (FindProgram("node").empty()) {
    *why =
        "node (Node.js) is not installed: the web application of the browser tests needs it "
        "(bash .ci/install-deps.sh)";
    return false;
  }
  options_ = options;
  log_ = dir / "webapp.log";
  std::vector<std::string> argv = {"node",
                                   (TestsDir() / "servers" / "webapp" / "server.js").string()};
  std::map<std::string, std::string> settings = options.settings;
  settings["expire_every"] = std::to_string(options.expire_every);
  settings["slow_every"] = std::to_string(options.slow_every);
  settings["slow_ms"] = std::to_string(options.slow_ms);
  for (const auto& [name, value] : settings) {
    argv.push_back("--" + name);
    argv.push_back(value);
  }
  argv.push_back("--port");
  const std::map<std::string, std::string> env = {{"WEBAPP_USER", options.user},
                                                  {"WEBAPP_PASSWORD", options.password}};
  // The free port may be taken before node binds it: try another one then.
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreePort();
    argv.push_back(std::to_string(port_));
    if (process_.StartAndWait(argv, port_, log_, why, env)) return true;
    argv.pop_back();
    if (Log().find("EADDRINUSE") == std::string::npos) break;
  }
  port_ = -1;
  return false;
}

std::string WebappServer::CasesJson() const {
  std::string body;
  return PlainHttp(port_, "GET", "/_test/cases", "", &body) == 200 ? body : "";
}

std::string WebappServer::StateJson() const {
  std::string body;
  return PlainHttp(port_, "GET", "/_test/state", "", &body) == 200 ? body : "";
}

bool WebappServer::Control(const std::string& json, std::string* reply) const {
  std::string body;
  int status = PlainHttp(port_, "POST", "/_test/control", json, &body);
  if (reply) *reply = body;
  return status == 200;
}

std::string WebappServer::Log() const {
  std::ifstream in(log_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace keyonce::testing_util
