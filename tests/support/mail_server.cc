#include "tests/support/mail_server.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <fstream>
#include <sstream>
#include <thread>

namespace keyonce::testing_util {
namespace fs = std::filesystem;

std::string NodeForTestServers() {
  std::string node = FindProgram("node");
  return node.empty() ? FindProgram("nodejs") : node;
}

bool MakeLoopbackCert(const fs::path& dir, TestCert* out, std::string* why) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  out->cert = dir / "server.crt";
  out->key = dir / "server.key";
  if (FindProgram("openssl").empty()) {
    *why = "openssl is not installed (apt-get install openssl)";
    return false;
  }
  std::string output;
  int rc = RunProgram({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                       out->key.string(), "-out", out->cert.string(), "-days", "2", "-subj",
                       "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"},
                      &output);
  if (rc != 0) {
    *why = "openssl could not make a test certificate: " + output;
    return false;
  }
  return true;
}

bool MailServer::Start(const fs::path& dir, const Options& options, std::string* why) {
  const std::string node = NodeForTestServers();
  if (node.empty()) {
    *why = "Node.js is not installed (apt-get install nodejs); the SMTP tests need it";
    return false;
  }
  if (!fs::exists(NodeModules() / "smtp-server") || !fs::exists(NodeModules() / "mailparser")) {
    *why = "npm packages smtp-server and mailparser are missing in " + NodeModules().string() +
           " (run: cd tests && npm ci)";
    return false;
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  out_ = dir / "mail";
  fs::create_directories(out_, ec);
  port_ = FreePort();
  secure_ = options.secure;
  std::vector<std::string> argv = {
      node,     (TestsDir() / "servers" / "mail" / "server.js").string(),
      "--port", std::to_string(port_),
      "--out",  out_.string()};
  if (!options.user.empty()) {
    argv.insert(argv.end(), {"--user", options.user, "--password", options.password});
  }
  if (options.starttls || options.secure) {
    if (!MakeLoopbackCert(dir / "cert", &cert_, why)) return false;
    argv.insert(argv.end(), {"--cert", cert_.cert.string(), "--key", cert_.key.string()});
  }
  if (options.secure) argv.push_back("--secure");
  if (options.require_tls) argv.push_back("--require-tls");
  return proc_.StartAndWait(argv, port_, dir / "mail-server.log", why,
                            {{"NODE_PATH", NodeModules().string()}}, TestsDir());
}

std::string MailServer::url() const {
  return std::string(secure_ ? "smtps" : "smtp") + "://127.0.0.1:" + std::to_string(port_);
}

std::vector<boost::json::value> MailServer::Messages() const {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(out_, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".json") files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  std::vector<boost::json::value> out;
  for (const auto& f : files) {
    std::ifstream in(f);
    std::stringstream ss;
    ss << in.rdbuf();
    boost::system::error_code pec;
    auto v = boost::json::parse(ss.str(), pec);
    if (!pec) out.push_back(std::move(v));
  }
  return out;
}

std::vector<boost::json::value> MailServer::WaitForMessages(
    size_t n, std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto m = Messages();
    if (m.size() >= n || std::chrono::steady_clock::now() > deadline) return m;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace keyonce::testing_util
