// A real FTP server for tests: npm ftp-srv started by
// tests/servers/ftp/server.js on a free loopback port, one user whose root is
// a folder of the test, passive data connections on loopback.
#pragma once

#include <filesystem>
#include <string>

#include "tests/support/mail_server.h"
#include "tests/support/servers.h"

namespace keyonce::testing_util {

class FtpServer {
 public:
  struct Options {
    std::string user = "keyonce";
    std::string password = "ftp-test-password";
    bool implicit_tls = false;  // ftps:// (TLS from the first byte, a certificate is made)
  };

  // Serves `root` (created if missing); the log and certificate go to `dir`.
  bool Start(const std::filesystem::path& dir, const std::filesystem::path& root,
             const Options& options, std::string* why);
  void Stop() { proc_.Stop(); }

  int port() const { return port_; }
  // ftp://127.0.0.1:port (ftps:// with implicit_tls), without credentials.
  std::string url() const;
  const std::string& user() const { return options_.user; }
  const std::string& password() const { return options_.password; }
  const TestCert& cert() const { return cert_; }
  std::string Log() const { return proc_.Log(); }

 private:
  ServerProcess proc_;
  Options options_;
  int port_ = 0;
  TestCert cert_;
};

}  // namespace keyonce::testing_util
