#include "tests/support/imap_server.h"

#include <curl/curl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace keyonce::testing_util {
namespace fs = std::filesystem;

namespace {

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct Upload {
  const std::string* text;
  size_t at = 0;
};

size_t Feed(char* buf, size_t size, size_t n, void* in) {
  auto* u = static_cast<Upload*>(in);
  size_t len = std::min(size * n, u->text->size() - u->at);
  std::copy_n(u->text->data() + u->at, len, buf);
  u->at += len;
  return len;
}

std::string UserName() {
  const passwd* pw = ::getpwuid(::geteuid());
  return pw ? pw->pw_name : "";
}

}  // namespace

bool ImapServer::Start(const fs::path& dir, const std::string& user, const std::string& password,
                       std::string* why, const std::string& introspection_url) {
  const std::string dovecot = FindProgram("dovecot", {"/usr/sbin"});
  if (dovecot.empty()) {
    *why = "Dovecot is not installed (apt-get install dovecot-imapd); the IMAP tests need it";
    return false;
  }
  dir_ = dir;
  user_ = user;
  password_ = password;
  std::error_code ec;
  // Dovecot's sockets live in base_dir, and a socket's path must be short
  // (108 bytes): a folder of its own under /tmp, removed in Stop.
  char run_dir[] = "/tmp/keyonce-dovecot-XXXXXX";
  if (!::mkdtemp(run_dir)) {
    *why = "cannot make a folder for Dovecot's sockets in /tmp";
    return false;
  }
  run_dir_ = run_dir;
  ::chmod(run_dir, 0755);
  fs::create_directories(dir / "mail", ec);
  if (!MakeLoopbackCert(dir / "tls", &cert_, why)) return false;
  // Dovecot's processes must reach the configuration, the certificate and
  // the Maildir; its login processes never run as root.
  const bool root = ::geteuid() == 0;
  std::string internal = UserName(), login = UserName(), mail_user = UserName();
  if (root) {
    internal = mail_user = "dovecot";
    login = "dovenull";
    const passwd* pw = ::getpwnam("dovecot");
    const uid_t uid = pw ? pw->pw_uid : 0;
    const gid_t gid = pw ? pw->pw_gid : 0;
    if (!pw || !::getpwnam("dovenull")) {
      *why = "the users dovecot and dovenull (made by Debian's dovecot-core) are missing";
      return false;
    }
    for (fs::path p = dir; !p.empty() && p != p.root_path(); p = p.parent_path()) {
      fs::permissions(p, fs::perms::others_exec | fs::perms::group_exec, fs::perm_options::add, ec);
    }
    fs::permissions(dir / "tls", fs::perms::others_exec, fs::perm_options::add, ec);
    if (::chown((dir / "mail").c_str(), uid, gid) != 0) {
      *why = "cannot give the Maildir to the dovecot user";
      return false;
    }
  }
  imaps_port_ = FreePort();
  imap_port_ = FreePort();
  std::ofstream(dir / "users") << user << ":{PLAIN}" << password << "::::::\n";
  // XOAUTH2: Dovecot asks the token's issuer whether it is active and whose.
  std::string oauth;
  if (!introspection_url.empty()) {
    std::ofstream(dir / "oauth2.conf.ext") << "introspection_mode = post\n"
                                           << "introspection_url = " << introspection_url << "\n"
                                           << "username_attribute = email\n"
                                           << "active_attribute = active\n"
                                           << "active_value = true\n";
    oauth = "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = " +
            (dir / "oauth2.conf.ext").string() + "\n}\n";
  }
  const fs::path conf = dir / "dovecot.conf";
  std::ofstream(conf)
      << "base_dir = " << run_dir_.string() << "\n"
      << "state_dir = " << run_dir_.string() << "\n"
      << "log_path = /dev/stderr\n"
      << "protocols = imap\n"
      << "listen = 127.0.0.1\n"
      << "ssl = required\n"
      << "ssl_cert = <" << cert_.cert.string() << "\n"
      << "ssl_key = <" << cert_.key.string() << "\n"
      << "disable_plaintext_auth = yes\n"
      << "auth_failure_delay = 0\n"
      << "auth_mechanisms = plain login" << (oauth.empty() ? "" : " xoauth2 oauthbearer") << "\n"
      << oauth << "mail_location = maildir:" << (dir / "mail").string() << "/%u\n"
      << "first_valid_uid = 0\n"
      << "default_internal_user = " << internal << "\n"
      << "default_login_user = " << login << "\n"
      << "passdb {\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u "
      << (dir / "users").string() << "\n}\n"
      << "userdb {\n  driver = static\n  args = uid=" << mail_user << " gid=" << mail_user
      << " home=" << (dir / "mail").string() << "/%u\n}\n"
      << "service imap-login {\n  chroot =\n"
      << "  inet_listener imap {\n    port = " << imap_port_ << "\n  }\n"
      << "  inet_listener imaps {\n    port = " << imaps_port_ << "\n    ssl = yes\n  }\n}\n"
      << "service anvil {\n  chroot =\n}\n"
      << "namespace inbox {\n  inbox = yes\n  separator = /\n}\n";
  if (root) {
    fs::permissions(dir / "users", fs::perms::others_read, fs::perm_options::add, ec);
  }
  // -F: stay in the foreground.
  if (!proc_.StartAndWait({dovecot, "-F", "-c", conf.string()}, imaps_port_, dir / "dovecot.log",
                          why)) {
    return false;
  }
  return WaitForPort(imap_port_) || (*why = "Dovecot did not open its IMAP port", false);
}

std::string ImapServer::Log() const { return proc_.Log(); }

void ImapServer::Stop() {
  proc_.Stop();
  if (!run_dir_.empty()) {
    std::error_code ec;
    fs::remove_all(run_dir_, ec);
    run_dir_.clear();
  }
}

bool ImapServer::Command(const std::string& folder, const std::string& command, std::string* out,
                         std::string* why) {
  CURL* easy = curl_easy_init();
  if (!easy) return false;
  char* esc = curl_easy_escape(easy, folder.c_str(), static_cast<int>(folder.size()));
  const std::string url = imaps_url() + "/" + (esc ? esc : "");
  curl_free(esc);
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_USERNAME, user_.c_str());
  curl_easy_setopt(easy, CURLOPT_PASSWORD, password_.c_str());
  curl_easy_setopt(easy, CURLOPT_CAINFO, cert_.cert.c_str());
  curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, command.c_str());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT, 20L);
  CURLcode rc = curl_easy_perform(easy);
  curl_easy_cleanup(easy);
  if (rc != CURLE_OK && why) *why = "IMAP " + command + ": " + curl_easy_strerror(rc);
  return rc == CURLE_OK;
}

bool ImapServer::Append(const std::string& folder, const std::string& mail, std::string* why) {
  std::string ignored;
  // CREATE fails when the folder is there: that is fine.
  Command("", "CREATE \"" + folder + "\"", &ignored, nullptr);
  CURL* easy = curl_easy_init();
  if (!easy) return false;
  char* esc = curl_easy_escape(easy, folder.c_str(), static_cast<int>(folder.size()));
  const std::string url = imaps_url() + "/" + (esc ? esc : "");
  curl_free(esc);
  Upload up{&mail};
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_USERNAME, user_.c_str());
  curl_easy_setopt(easy, CURLOPT_PASSWORD, password_.c_str());
  curl_easy_setopt(easy, CURLOPT_CAINFO, cert_.cert.c_str());
  curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(easy, CURLOPT_READFUNCTION, Feed);
  curl_easy_setopt(easy, CURLOPT_READDATA, &up);
  curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(mail.size()));
  curl_easy_setopt(easy, CURLOPT_TIMEOUT, 20L);
  CURLcode rc = curl_easy_perform(easy);
  curl_easy_cleanup(easy);
  if (rc != CURLE_OK) {
    *why = std::string("APPEND: ") + curl_easy_strerror(rc) + "\n" + Log();
    return false;
  }
  // libcurl appends with \Seen; a new mail is unseen. It has the folder's
  // highest UID.
  std::vector<long> all = Search(folder, "ALL");
  if (all.empty()) {
    *why = "the appended mail is not in " + folder;
    return false;
  }
  std::string out;
  return Command(folder, "UID STORE " + std::to_string(all.back()) + " -FLAGS (\\Seen)", &out, why);
}

std::vector<long> ImapServer::Search(const std::string& folder, const std::string& criteria) {
  std::string out;
  std::vector<long> uids;
  if (!Command(folder, "UID SEARCH " + criteria, &out, nullptr)) return uids;
  std::istringstream in(out);
  std::string word;
  while (in >> word) {
    if (!word.empty() && std::isdigit(static_cast<unsigned char>(word[0]))) {
      uids.push_back(std::stol(word));
    }
  }
  return uids;
}

std::map<long, std::string> ImapServer::Flags(const std::string& folder) {
  std::string out;
  std::map<long, std::string> flags;
  if (!Command(folder, "UID FETCH 1:* (FLAGS)", &out, nullptr)) return flags;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    size_t uid = line.find("UID ");
    size_t open = line.find("FLAGS (");
    if (uid == std::string::npos || open == std::string::npos) continue;
    size_t close = line.find(')', open);
    flags[std::stol(line.substr(uid + 4))] = line.substr(open + 7, close - open - 7);
  }
  return flags;
}

}  // namespace keyonce::testing_util
