// A real SFTP server for tests: Debian's OpenSSH sshd (internal-sftp) on a
// free loopback port, with a throwaway host key and a throwaway user key,
// logging in as the user running the test (root in CI: PermitRootLogin
// prohibit-password, keys only). Everything lives in the test's folder; as
// root, sshd's privilege separation folder /run/sshd is created if missing.
#pragma once

#include <filesystem>
#include <string>

#include "tests/support/servers.h"

namespace keyonce::testing_util {

class Sshd {
 public:
  // False (with why) when sshd or ssh-keygen is missing or sshd does not start.
  bool Start(const std::filesystem::path& dir, std::string* why);
  void Stop() { proc_.Stop(); }

  int port() const { return port_; }
  // sftp://127.0.0.1:port (paths follow: sftp://127.0.0.1:port/abs/path).
  std::string url() const { return "sftp://127.0.0.1:" + std::to_string(port_); }
  const std::string& user() const { return user_; }
  const std::filesystem::path& user_key() const { return user_key_; }
  // known_hosts naming this server's host key.
  const std::filesystem::path& known_hosts() const { return known_hosts_; }
  // known_hosts naming another key for this server (a host key mismatch).
  const std::filesystem::path& wrong_known_hosts() const { return wrong_known_hosts_; }
  // The host key's fingerprint as OpenSSH prints it: "SHA256:base64...".
  const std::string& host_key_sha256() const { return host_key_sha256_; }
  std::string Log() const { return proc_.Log(); }

 private:
  ServerProcess proc_;
  int port_ = 0;
  std::string user_;
  std::filesystem::path user_key_, known_hosts_, wrong_known_hosts_;
  std::string host_key_sha256_;
};

}  // namespace keyonce::testing_util
