#include "tests/support/sshd.h"

#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace keyonce::testing_util {
namespace fs = std::filesystem;
namespace {

std::string ReadText(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "ssh-ed25519 AAAA..." of a .pub file (its comment dropped).
std::string KeyTypeAndBlob(const fs::path& pub) {
  std::istringstream in(ReadText(pub));
  std::string type, blob;
  in >> type >> blob;
  return type + " " + blob;
}

bool KeyGen(const fs::path& file, std::string* why) {
  std::string out;
  if (RunProgram({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "keyonce-test", "-f",
                  file.string()},
                 &out) != 0) {
    *why = "ssh-keygen failed: " + out;
    return false;
  }
  return true;
}

}  // namespace

bool Sshd::Start(const fs::path& dir, std::string* why) {
  const std::string sshd = FindProgram("sshd", {"/usr/sbin"});
  if (sshd.empty() || FindProgram("ssh-keygen").empty()) {
    *why =
        "OpenSSH server is not installed (apt-get install openssh-server); the SFTP tests "
        "need /usr/sbin/sshd and ssh-keygen";
    return false;
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (::geteuid() == 0) fs::create_directories("/run/sshd", ec);  // privilege separation
  if (const passwd* pw = ::getpwuid(::geteuid())) user_ = pw->pw_name;
  if (user_.empty()) {
    *why = "cannot tell the name of the user running the test";
    return false;
  }
  const fs::path host_key = dir / "host_key", other_key = dir / "other_host_key";
  user_key_ = dir / "user_key";
  for (const auto& k : {host_key, other_key, user_key_}) {
    fs::remove(k, ec);
    fs::remove(fs::path(k.string() + ".pub"), ec);
    if (!KeyGen(k, why)) return false;
  }
  fs::copy_file(fs::path(user_key_.string() + ".pub"), dir / "authorized_keys",
                fs::copy_options::overwrite_existing, ec);
  port_ = FreePort();
  const std::string host = "[127.0.0.1]:" + std::to_string(port_);
  known_hosts_ = dir / "known_hosts";
  wrong_known_hosts_ = dir / "wrong_known_hosts";
  std::ofstream(known_hosts_) << host << " " << KeyTypeAndBlob(host_key.string() + ".pub") << "\n";
  std::ofstream(wrong_known_hosts_)
      << host << " " << KeyTypeAndBlob(other_key.string() + ".pub") << "\n";
  std::string fp;
  if (RunProgram({"ssh-keygen", "-l", "-E", "sha256", "-f", host_key.string() + ".pub"}, &fp) ==
      0) {
    std::istringstream in(fp);
    std::string bits;
    in >> bits >> host_key_sha256_;
  }

  const fs::path conf = dir / "sshd_config";
  std::ofstream(conf) << "Port " << port_ << "\n"
                      << "ListenAddress 127.0.0.1\n"
                      << "HostKey " << host_key.string() << "\n"
                      << "PidFile " << (dir / "sshd.pid").string() << "\n"
                      << "AuthorizedKeysFile " << (dir / "authorized_keys").string() << "\n"
                      << "PermitRootLogin prohibit-password\n"
                      << "PubkeyAuthentication yes\n"
                      << "PasswordAuthentication no\n"
                      << "KbdInteractiveAuthentication no\n"
                      << "UsePAM no\n"
                      << "StrictModes no\n"
                      << "Subsystem sftp internal-sftp\n"
                      << "LogLevel VERBOSE\n";
  // -e: log to stderr (the log file); -D: stay in the foreground.
  return proc_.StartAndWait({sshd, "-D", "-e", "-f", conf.string()}, port_, dir / "sshd.log", why);
}

}  // namespace keyonce::testing_util
