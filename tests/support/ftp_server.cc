#include "tests/support/ftp_server.h"

namespace keyonce::testing_util {
namespace fs = std::filesystem;

bool FtpServer::Start(const fs::path& dir, const fs::path& root, const Options& options,
                      std::string* why) {
  const std::string node = NodeForTestServers();
  if (node.empty()) {
    *why = "Node.js is not installed (apt-get install nodejs); the FTP tests need it";
    return false;
  }
  if (!fs::exists(NodeModules() / "ftp-srv")) {
    *why = "npm package ftp-srv is missing in " + NodeModules().string() +
           " (run: cd tests && npm ci)";
    return false;
  }
  options_ = options;
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::create_directories(root, ec);
  port_ = FreePort();
  std::vector<std::string> argv = {
      node,         (TestsDir() / "servers" / "ftp" / "server.js").string(),
      "--port",     std::to_string(port_),
      "--root",     root.string(),
      "--user",     options.user,
      "--password", options.password};
  if (options.implicit_tls) {
    if (!MakeLoopbackCert(dir / "cert", &cert_, why)) return false;
    argv.insert(argv.end(),
                {"--cert", cert_.cert.string(), "--key", cert_.key.string(), "--implicit"});
  }
  return proc_.StartAndWait(argv, port_, dir / "ftp-server.log", why,
                            {{"NODE_PATH", NodeModules().string()}}, TestsDir());
}

std::string FtpServer::url() const {
  return std::string(options_.implicit_tls ? "ftps" : "ftp") +
         "://127.0.0.1:" + std::to_string(port_);
}

}  // namespace keyonce::testing_util
