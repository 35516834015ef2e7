// A real IMAP server for tests: Debian's Dovecot (dovecot-imapd) on a free
// loopback port with a throwaway configuration, certificate and Maildir
// under the test's folder: IMAPS (TLS from the first byte) and plain IMAP
// with STARTTLS, one user with a password. Mails are put in with APPEND
// (libcurl, as any mail client would), so Dovecot owns its Maildir; the
// test reads flags and folders back through IMAP too.
//
// As root (CI), Dovecot refuses to run its login processes as root: they
// run as Debian's dovecot/dovenull users, and the Maildir belongs to
// `dovecot`. As another user everything runs as that user.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tests/support/mail_server.h"
#include "tests/support/servers.h"

namespace keyonce::testing_util {

class ImapServer {
 public:
  ImapServer() = default;
  ImapServer(const ImapServer&) = delete;
  ImapServer& operator=(const ImapServer&) = delete;
  // Starts Dovecot with its files under `dir`, user `user` with
  // `password`; with `introspection_url` (RFC 7662, e.g. OAuthApi's) also
  // XOAUTH2 logins whose token that URL calls active for `user`. False
  // (with why) when Dovecot is not installed or does not start.
  bool Start(const std::filesystem::path& dir, const std::string& user, const std::string& password,
             std::string* why, const std::string& introspection_url = "");
  ~ImapServer() { Stop(); }
  void Stop();

  // imaps://127.0.0.1:port (TLS) and imap://127.0.0.1:port (STARTTLS).
  std::string imaps_url() const { return "imaps://127.0.0.1:" + std::to_string(imaps_port_); }
  std::string imap_url() const { return "imap://127.0.0.1:" + std::to_string(imap_port_); }
  // The server's certificate, to pass as ca_file.
  const TestCert& cert() const { return cert_; }

  // Puts a mail (RFC 5322 text, CRLF line ends) into `folder` (made if
  // missing), unseen; false with why on failure.
  bool Append(const std::string& folder, const std::string& mail, std::string* why);
  // The UIDs in `folder` that match an IMAP search (e.g. "ALL", "UNSEEN",
  // "SEEN", "KEYWORD $Done"); empty when the folder does not exist.
  std::vector<long> Search(const std::string& folder, const std::string& criteria);
  // A folder's flags by UID: {uid: "\\Seen $Done"}.
  std::map<long, std::string> Flags(const std::string& folder);
  std::string Log() const;

 private:
  // Runs an IMAP command through curl on `folder`; its untagged output.
  bool Command(const std::string& folder, const std::string& command, std::string* out,
               std::string* why);

  ServerProcess proc_;
  int imaps_port_ = 0, imap_port_ = 0;
  std::string user_, password_;
  std::filesystem::path dir_, run_dir_;
  TestCert cert_;
};

}  // namespace keyonce::testing_util
