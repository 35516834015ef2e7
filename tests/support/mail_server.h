// A real SMTP server for tests: npm smtp-server + mailparser, started by
// tests/servers/mail/server.js on a free loopback port. Every accepted mail
// lands, parsed, as a JSON file in out_dir() (see server.js for the fields).
// Recipients unknown@... get 550, busy@... get 451.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/servers.h"

namespace keyonce::testing_util {

// A throwaway self-signed certificate for 127.0.0.1 and localhost (openssl),
// usable as its own CA file. False with the reason in *why on failure.
struct TestCert {
  std::filesystem::path cert, key;
};
bool MakeLoopbackCert(const std::filesystem::path& dir, TestCert* out, std::string* why);

// Node.js: "node" or "nodejs" on PATH; empty when neither is installed.
std::string NodeForTestServers();

class MailServer {
 public:
  struct Options {
    std::string user, password;  // AUTH required when user is set
    bool starttls = false;       // offer STARTTLS (a certificate is made)
    bool secure = false;         // TLS from the first byte (smtps://)
    bool require_tls = false;    // refuse MAIL FROM before STARTTLS
  };

  // Starts the server with its files under `dir`. False (with why) when
  // node, the npm packages or openssl are missing or it does not start.
  bool Start(const std::filesystem::path& dir, const Options& options, std::string* why);
  void Stop() { proc_.Stop(); }

  int port() const { return port_; }
  // smtp://127.0.0.1:port (smtps:// with Options::secure).
  std::string url() const;
  // The certificate (with starttls/secure), to pass as ca_file.
  const TestCert& cert() const { return cert_; }
  const std::filesystem::path& out_dir() const { return out_; }

  // The mails received so far, in arrival order.
  std::vector<boost::json::value> Messages() const;
  // Waits until at least `n` mails arrived (or the timeout passed).
  std::vector<boost::json::value> WaitForMessages(
      size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
  std::string Log() const { return proc_.Log(); }

 private:
  ServerProcess proc_;
  int port_ = 0;
  bool secure_ = false;
  TestCert cert_;
  std::filesystem::path out_;
};

}  // namespace keyonce::testing_util
