#include "connectors/common/net/remote_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>
#include <utility>

#include "connectors/common/after_read.h"

namespace keyonce::connectors::net {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSchemes[] = {"sftp://", "ftp://", "ftps://", "smb://", "smbs://"};
constexpr const char* kPartSuffix = ".part";
constexpr const char* kBackupSuffix = ".keyonce-old";
// Tokens: "remote:1 <URL>". The URL is kept because the path may name a
// file per run (out/{{ run.id }}.csv): recovery must look at the file the
// interrupted run wrote, not at this run's.
constexpr const char* kTokenPrefix = "remote:1 ";

bool StartsWithNoCase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

std::string Scheme(const std::string& url) {
  size_t p = url.find("://");
  std::string s = p == std::string::npos ? "" : url.substr(0, p);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool IsSftp(const std::string& url) { return Scheme(url) == "sftp"; }
bool IsFtp(const std::string& url) {
  std::string s = Scheme(url);
  return s == "ftp" || s == "ftps";
}

void ReplaceAll(std::string* s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (size_t p = s->find(from); p != std::string::npos; p = s->find(from, p + to.size())) {
    s->replace(p, from.size(), to);
  }
}

// The path of a URL, percent-decoded ("" when it has none).
Result<std::string> UrlPath(const std::string& url) {
  CURLU* h = curl_url();
  if (!h) return Status::Internal("curl_url failed");
  std::string out;
  Status st;
  if (curl_url_set(h, CURLUPART_URL, url.c_str(), CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
    st = Status::Invalid("'" + SafeUrl(url) + "' is not a valid URL");
  } else {
    char* path = nullptr;
    if (curl_url_get(h, CURLUPART_PATH, &path, CURLU_URLDECODE) == CURLUE_OK && path) out = path;
    curl_free(path);
  }
  curl_url_cleanup(h);
  if (!st.ok()) return st;
  return out;
}

// The path as the server's file commands take it: SFTP paths are absolute
// (or "/~/x" = x in the home folder); FTP paths (with the no-CWD method)
// are relative to the login folder, "//abs" absolute.
Result<std::string> CommandPath(const std::string& url) {
  auto path = UrlPath(url);
  if (!path.ok()) return path.status();
  std::string p = *path;
  for (char c : p) {
    if (c == '\r' || c == '\n' || c == '\0') {
      return Status::Invalid("the path of " + SafeUrl(url) + " holds a line break");
    }
  }
  if (IsSftp(url)) {
    if (p.rfind("/~/", 0) == 0) p = p.substr(3);
    std::string q = "\"";
    for (char c : p) {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
    return q + "\"";
  }
  if (!p.empty() && p[0] == '/') p = p.substr(1);
  return p;
}

// The folder URL of a file URL ("sftp://h/a/b.csv" -> "sftp://h/a/").
std::string FolderUrl(const std::string& url) {
  size_t slash = url.rfind('/');
  size_t scheme = url.find("://");
  if (slash == std::string::npos || scheme == std::string::npos || slash < scheme + 3) {
    return url + "/";
  }
  return url.substr(0, slash + 1);
}

// The file name of a URL (percent-decoded), for the local copy.
std::string UrlFileName(const std::string& url) {
  auto path = UrlPath(url);
  std::string p = path.ok() ? *path : url;
  size_t slash = p.rfind('/');
  std::string name = slash == std::string::npos ? p : p.substr(slash + 1);
  return name.empty() || name == "." || name == ".." ? "remote-file" : name;
}

std::string ExpandHome(const std::string& path) {
  if (path.rfind("~/", 0) != 0) return path;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + path.substr(1);
}

// A private folder for local copies (0700), removed with the object.
class TempDir {
 public:
  static Result<std::unique_ptr<TempDir>> Make() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/keyonce-remote-XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      return Status::Io("creating a temporary folder in " + tmpl.substr(0, tmpl.rfind('/')) + ": " +
                        std::strerror(errno));
    }
    std::unique_ptr<TempDir> d(new TempDir());
    d->path_ = tmpl;
    return d;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  TempDir() = default;
  fs::path path_;
};

Result<std::string> RenderUrl(const Settings& settings, const Scope& scope) {
  const Template* t = settings.Tmpl("path");
  if (!t) return Status::Invalid(settings.where + ": path is missing");
  auto r = t->Render(scope);
  if (!r.ok()) return r.status().Wrap(settings.where + ": rendering path");
  return std::move(r).value();
}

// A copy of `settings` whose path is the local file `local`.
Result<Settings> WithLocalPath(const Settings& settings, const fs::path& local) {
  Settings s = settings;
  TemplateError err;
  auto t = Template::Compile(local.string(), TemplateContext::kText, &err);
  if (!t)
    return Status::Invalid("the local copy's name " + local.filename().string() +
                           " cannot be used: " + err.message);
  Settings::Entry e;
  e.literal = Value(local.string());
  e.tmpl = std::move(*t);
  s.entries["path"] = std::move(e);
  return s;
}

size_t WriteToFd(char* data, size_t size, size_t n, void* user) {
  int fd = *static_cast<int*>(user);
  size_t total = size * n, done = 0;
  while (done < total) {
    ssize_t w = ::write(fd, data + done, total - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      return 0;  // curl reports CURLE_WRITE_ERROR
    }
    done += static_cast<size_t>(w);
  }
  return total;
}

size_t ReadFromFd(char* data, size_t size, size_t n, void* user) {
  int fd = *static_cast<int*>(user);
  for (;;) {
    ssize_t r = ::read(fd, data, size * n);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno != EINTR) return CURL_READFUNC_ABORT;
  }
}

FieldSpec SecretTmpl(const std::string& name) {
  FieldSpec f = FieldSpec::Tmpl(name, TemplateContext::kText).Roots(kRootsStatic);
  f.secret = true;
  return f;
}

}  // namespace

bool IsRemotePath(const Settings& settings, const std::string& name) {
  const Template* t = settings.Tmpl(name);
  std::string text = t ? t->source() : settings.String(name).value_or("");
  for (const char* s : kSchemes) {
    if (StartsWithNoCase(text, s)) return true;
  }
  return false;
}

std::string RemotePathNote(bool target) {
  std::string note =
      "May also be a file on a server: sftp://host/folder/file, ftp://, ftps:// (TLS from the "
      "start) or smb://host/share/file (read only), with username, password or private_key; "
      "write the scheme literally, and no password in the URL.";
  if (target) {
    note +=
        " On a server the file is written whole once per run: built locally, uploaded at the "
        "end of the run as NAME.part and then renamed to NAME, so a reader never sees half a "
        "file.";
  } else {
    note += " The file is downloaded to a private temporary copy first.";
  }
  return note;
}

std::vector<FieldSpec> RemoteFields() {
  std::vector<FieldSpec> f = {
      FieldSpec::Tmpl("username", TemplateContext::kText)
          .Roots(kRootsStatic)
          .Describe("For a path on a server: the user to log in as (sftp, ftp, ftps, smb; "
                    "smb accepts DOMAIN\\user). May come from params or secrets.")
          .Example("keyonce"),
      SecretTmpl("password")
          .Describe("For a path on a server: the password (ftp, ftps, smb, or sftp without a "
                    "key); must come from secrets.")
          .Example("\"{{ secrets.drop_password }}\""),
      FieldSpec::Tmpl("private_key", TemplateContext::kText)
          .Roots(kRootsStatic)
          .Describe("For sftp: the user's private key file (OpenSSH format), relative to the "
                    "recipe's folder. Its public key is derived from it.")
          .Example("/etc/keyonce/id_ed25519"),
      SecretTmpl("private_key_password")
          .Describe("For sftp: the passphrase of private_key; must come from secrets.")
          .Example("\"{{ secrets.key_passphrase }}\""),
      FieldSpec::Tmpl("known_hosts", TemplateContext::kText)
          .Roots(kRootsStatic)
          .Default("\"~/.ssh/known_hosts\"")
          .Describe("For sftp: the OpenSSH known_hosts file that must name the server's host "
                    "key ([host]:port for other ports than 22); a server whose key is missing or "
                    "differs is refused. Ignored when host_key_sha256 is given.")
          .Example("/etc/keyonce/known_hosts"),
      FieldSpec::String("host_key_sha256")
          .Describe("For sftp, instead of known_hosts: the server's host key fingerprint as "
                    "`ssh-keygen -lf` prints it (SHA256:...).")
          .Example("\"SHA256:kJeBVKm6Phjz0nnlqDaXFvtXuQN3T3R0Ojls+0Om6uo\""),
      FieldSpec::Enum("ftp_tls", {"off", "optional", "required"})
          .Default("off")
          .Describe("For ftp:// paths: switch to TLS with AUTH TLS (explicit FTPS): required "
                    "fails when the server cannot, optional uses it when offered. ftps:// is TLS "
                    "from the start.")
          .Example("required"),
  };
  for (auto& t : TlsFields()) f.push_back(std::move(t));
  return f;
}

Result<RemoteOptions> ReadRemote(const Settings& settings, const Scope& scope, Log* log) {
  RemoteOptions o;
  auto text = [&](const char* name, std::string* out) -> Status {
    const Template* t = settings.Tmpl(name);
    if (!t) return Status::OK();
    auto r = t->Render(scope);
    if (!r.ok()) return r.status().Wrap(settings.where + ": rendering " + name);
    *out = std::move(r).value();
    return Status::OK();
  };
  KEYONCE_RETURN_IF_ERROR(text("username", &o.username));
  KEYONCE_RETURN_IF_ERROR(text("password", &o.password));
  KEYONCE_RETURN_IF_ERROR(text("private_key_password", &o.key_password));
  KEYONCE_RETURN_IF_ERROR(text("known_hosts", &o.known_hosts));
  if (log) {
    if (!o.password.empty()) log->AddSecret(o.password);
    if (!o.key_password.empty()) log->AddSecret(o.key_password);
  }
  if (settings.Tmpl("private_key")) {
    auto p = settings.ResolvePath("private_key", scope);
    if (!p.ok()) return p.status().Wrap(settings.where);
    o.private_key = p->string();
  }
  o.known_hosts = ExpandHome(o.known_hosts.empty() ? "~/.ssh/known_hosts" : o.known_hosts);
  if (fs::path(o.known_hosts).is_relative()) {
    o.known_hosts = (settings.base_dir / o.known_hosts).lexically_normal().string();
  }
  o.host_key_sha256 = settings.String("host_key_sha256").value_or("");
  if (o.host_key_sha256.rfind("SHA256:", 0) == 0) o.host_key_sha256 = o.host_key_sha256.substr(7);
  o.ftp_tls = settings.String("ftp_tls").value_or("off");
  auto tls = ReadTls(settings, scope);
  if (!tls.ok()) return tls.status().Wrap(settings.where);
  o.transfer.tls = std::move(tls).value();
  // Files may be large: no limit on the whole transfer, but a stalled one
  // (under 1 byte/s for 2 minutes, see Prepare) fails.
  o.transfer.timeout_seconds = 0;
  o.transfer.connect_timeout_seconds = 30;
  return o;
}

Status CheckRemoteSettings(const Settings& settings, bool for_target) {
  const Template* t = settings.Tmpl("path");
  const std::string text = t ? t->source() : "";
  size_t scheme = text.find("://");
  if (scheme != std::string::npos) {
    size_t host = scheme + 3;
    size_t end = text.find('/', host);
    std::string authority =
        text.substr(host, end == std::string::npos ? std::string::npos : end - host);
    size_t at = authority.rfind('@');
    if (at != std::string::npos && authority.substr(0, at).find(':') != std::string::npos) {
      return Status::Invalid(settings.where +
                             ": path must not hold a password; use `password` (from secrets)");
    }
    if (end == std::string::npos || end + 1 >= text.size() || text.back() == '/') {
      return Status::Invalid(settings.where + ": path must name a file on the server, e.g. " +
                             text.substr(0, scheme) + "://host/folder/file.csv");
    }
  }
  if (for_target && (StartsWithNoCase(text, "smb://") || StartsWithNoCase(text, "smbs://"))) {
    return Status::Invalid(settings.where +
                           ": smb:// can only be read: files on SMB shares cannot be renamed "
                           "through libcurl, so a reader could see a half-written file; write "
                           "to sftp:// or ftp(s):// instead");
  }
  if (!for_target && HasAfterRead(settings) &&
      (StartsWithNoCase(text, "smb://") || StartsWithNoCase(text, "smbs://"))) {
    return Status::Invalid(settings.where +
                           ": move_to and remove_after need a server that can rename and remove "
                           "files; libcurl cannot on smb://, so use sftp:// or ftp(s)://");
  }
  if (settings.Tmpl("private_key_password") && !settings.Tmpl("private_key")) {
    return Status::Invalid(settings.where + ": private_key_password is set but private_key is not");
  }
  if (settings.Tmpl("private_key") && !StartsWithNoCase(text, "sftp://")) {
    return Status::Invalid(settings.where + ": private_key is for sftp:// paths only");
  }
  if (auto fp = settings.String("host_key_sha256")) {
    std::string v = fp->rfind("SHA256:", 0) == 0 ? fp->substr(7) : *fp;
    bool ok = v.size() >= 43 && v.size() <= 44;
    for (char c : v)
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=');
    if (!ok) {
      return Status::Invalid(settings.where +
                             ": host_key_sha256 must be a SHA256 fingerprint as `ssh-keygen -lf` "
                             "prints it (SHA256: and 43 base64 characters)");
    }
  }
  return CheckTransferSettings(settings);
}

// ------------------------------------------------------------ RemoteFiles

RemoteFiles::RemoteFiles(RemoteOptions options) : options_(std::move(options)) {}

RemoteFiles::~RemoteFiles() {
  if (easy_) curl_easy_cleanup(easy_);
}

Status RemoteFiles::Prepare(const std::string& url) {
  if (!easy_) {
    easy_ = curl_easy_init();
    if (!easy_) return Status::Internal("curl_easy_init failed");
  } else {
    curl_easy_reset(easy_);  // keeps the connection
  }
  ConfigureEasy(easy_, options_.transfer, errbuf_);
  curl_easy_setopt(easy_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy_, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(easy_, CURLOPT_LOW_SPEED_TIME, 120L);
  if (!options_.username.empty())
    curl_easy_setopt(easy_, CURLOPT_USERNAME, options_.username.c_str());
  if (!options_.password.empty())
    curl_easy_setopt(easy_, CURLOPT_PASSWORD, options_.password.c_str());
  if (IsSftp(url)) {
    long auth = 0;
    if (!options_.private_key.empty()) {
      auth |= CURLSSH_AUTH_PUBLICKEY;
      curl_easy_setopt(easy_, CURLOPT_SSH_PRIVATE_KEYFILE, options_.private_key.c_str());
      if (!options_.key_password.empty()) {
        curl_easy_setopt(easy_, CURLOPT_KEYPASSWD, options_.key_password.c_str());
      }
    }
    if (!options_.password.empty()) auth |= CURLSSH_AUTH_PASSWORD | CURLSSH_AUTH_KEYBOARD;
    curl_easy_setopt(easy_, CURLOPT_SSH_AUTH_TYPES, auth ? auth : CURLSSH_AUTH_DEFAULT);
    if (!options_.host_key_sha256.empty()) {
      curl_easy_setopt(easy_, CURLOPT_SSH_HOST_PUBLIC_KEY_SHA256, options_.host_key_sha256.c_str());
    } else {
      if (::access(options_.known_hosts.c_str(), R_OK) != 0) {
        return Status::Invalid("known_hosts file " + options_.known_hosts +
                               " cannot be read; it must name the host key of " + SafeUrl(url) +
                               " (or set host_key_sha256)");
      }
      curl_easy_setopt(easy_, CURLOPT_SSH_KNOWNHOSTS, options_.known_hosts.c_str());
    }
  } else if (IsFtp(url)) {
    curl_easy_setopt(easy_, CURLOPT_FTP_FILEMETHOD, static_cast<long>(CURLFTPMETHOD_NOCWD));
    if (Scheme(url) == "ftp") {
      long use_ssl = options_.ftp_tls == "required"   ? CURLUSESSL_ALL
                     : options_.ftp_tls == "optional" ? CURLUSESSL_TRY
                                                      : CURLUSESSL_NONE;
      curl_easy_setopt(easy_, CURLOPT_USE_SSL, use_ssl);
    }
  }
  return Status::OK();
}

Status RemoteFiles::Fail(CURLcode rc, const std::string& url, const std::string& doing) const {
  const std::string where = SafeUrl(url);
  if (rc == CURLE_REMOTE_FILE_NOT_FOUND) return Status::NotFound(where + " does not exist");
  if (rc == CURLE_PEER_FAILED_VERIFICATION && IsSftp(url)) {
    return Status::Permanent(
        doing + " " + where + ": the server's SSH host key is not the one " +
        (options_.host_key_sha256.empty()
             ? "known_hosts (" + options_.known_hosts + ") names for it (missing or different)"
             : std::string("host_key_sha256 gives")) +
        "; if the server's key was changed on purpose, update it there");
  }
  if (rc == CURLE_QUOTE_ERROR) {
    std::string detail = Excerpt(errbuf_[0] ? errbuf_ : curl_easy_strerror(rc), 200);
    return Status::Permanent(doing + " " + where +
                             ": a file command failed on the server: " + detail);
  }
  return CurlStatus(rc, errbuf_, url).Wrap(doing);
}

Result<bool> RemoteFiles::Exists(const std::string& url) {
  KEYONCE_RETURN_IF_ERROR(Prepare(url));
  curl_easy_setopt(easy_, CURLOPT_NOBODY, 1L);
  CURLcode rc = curl_easy_perform(easy_);
  if (rc == CURLE_OK) return true;
  if (rc == CURLE_REMOTE_FILE_NOT_FOUND) return false;
  return Fail(rc, url, "looking for");
}

Status RemoteFiles::Download(const std::string& url, const fs::path& local) {
  KEYONCE_RETURN_IF_ERROR(Prepare(url));
  int fd = ::open(local.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Io("creating " + local.string() + ": " + std::strerror(errno));
  curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, WriteToFd);
  curl_easy_setopt(easy_, CURLOPT_WRITEDATA, &fd);
  CURLcode rc = curl_easy_perform(easy_);
  bool closed = ::close(fd) == 0;
  if (rc == CURLE_OK && !closed) {
    rc = CURLE_WRITE_ERROR;
    std::snprintf(errbuf_, sizeof errbuf_, "closing the local copy: %s", std::strerror(errno));
  }
  if (rc != CURLE_OK) {
    std::error_code ec;
    fs::remove(local, ec);
    if (rc == CURLE_WRITE_ERROR) {
      return Status::Io("downloading " + SafeUrl(url) + ": writing the local copy in " +
                        local.parent_path().string() + " failed (disk full?)");
    }
    return Fail(rc, url, "downloading");
  }
  return Status::OK();
}

Status RemoteFiles::Upload(const fs::path& local, const std::string& url,
                           const std::vector<std::string>& after) {
  KEYONCE_RETURN_IF_ERROR(Prepare(url));
  int fd = ::open(local.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Io("opening " + local.string() + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Status::Io("reading the size of " + local.string());
  }
  curl_slist* post = nullptr;
  for (const auto& c : after) post = curl_slist_append(post, c.c_str());
  curl_easy_setopt(easy_, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(easy_, CURLOPT_READFUNCTION, ReadFromFd);
  curl_easy_setopt(easy_, CURLOPT_READDATA, &fd);
  curl_easy_setopt(easy_, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(st.st_size));
  if (post) curl_easy_setopt(easy_, CURLOPT_POSTQUOTE, post);
  CURLcode rc = curl_easy_perform(easy_);
  curl_easy_setopt(easy_, CURLOPT_POSTQUOTE, nullptr);
  curl_slist_free_all(post);
  ::close(fd);
  if (rc != CURLE_OK) return Fail(rc, url, "uploading to");
  return Status::OK();
}

Status RemoteFiles::Run(const std::string& url, const std::vector<std::string>& commands) {
  if (commands.empty()) return Status::OK();
  const std::string folder = FolderUrl(url);
  KEYONCE_RETURN_IF_ERROR(Prepare(folder));
  curl_slist* list = nullptr;
  for (const auto& c : commands) list = curl_slist_append(list, c.c_str());
  curl_easy_setopt(easy_, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(easy_, CURLOPT_QUOTE, list);
  CURLcode rc = curl_easy_perform(easy_);
  curl_easy_setopt(easy_, CURLOPT_QUOTE, nullptr);
  curl_slist_free_all(list);
  if (rc != CURLE_OK) return Fail(rc, url, "changing files next to");
  return Status::OK();
}

Result<std::vector<std::string>> RemoteFiles::RenameCommands(const std::string& from_url,
                                                             const std::string& to_url,
                                                             bool may_fail) {
  auto from = CommandPath(from_url);
  if (!from.ok()) return from.status();
  auto to = CommandPath(to_url);
  if (!to.ok()) return to.status();
  const std::string star = may_fail ? "*" : "";
  if (IsSftp(from_url)) return std::vector<std::string>{star + "rename " + *from + " " + *to};
  if (IsFtp(from_url))
    return std::vector<std::string>{star + "RNFR " + *from, star + "RNTO " + *to};
  return Status::Invalid(SafeUrl(from_url) + ": files cannot be renamed with this protocol");
}

Result<std::vector<std::string>> RemoteFiles::RemoveCommands(const std::string& url,
                                                             bool may_fail) {
  auto path = CommandPath(url);
  if (!path.ok()) return path.status();
  const std::string star = may_fail ? "*" : "";
  if (IsSftp(url)) return std::vector<std::string>{star + "rm " + *path};
  if (IsFtp(url)) return std::vector<std::string>{star + "DELE " + *path};
  return Status::Invalid(SafeUrl(url) + ": files cannot be removed with this protocol");
}

// ------------------------------------------------------------ the source

namespace {

class RemoteSource : public Source {
 public:
  RemoteSource(Settings settings, LocalSourceFactory make_local)
      : settings_(std::move(settings)), make_local_(std::move(make_local)) {}

  Status Open(const RunContext& ctx) override {
    auto url = RenderUrl(settings_, ctx.scope);
    if (!url.ok()) return url.status();
    display_ = SafeUrl(*url);
    auto options = ReadRemote(settings_, ctx.scope, ctx.log);
    if (!options.ok()) return options.status();
    auto after = ReadAfterRead(settings_, ctx.scope, true);
    if (!after.ok()) return after.status();
    after_ = std::move(after).value();
    url_ = *url;
    run_id_ = ctx.run_id;
    auto dir = TempDir::Make();
    if (!dir.ok()) return dir.status();
    dir_ = std::move(dir).value();
    local_name_ = UrlFileName(*url);
    local_ = dir_->path() / local_name_;
    options_ = *options;
    RemoteFiles files(std::move(options).value());
    Status st = files.Download(*url, local_);
    if (!st.ok()) return st.code() == Status::Code::kNotFound ? st : st.Wrap(settings_.where);
    auto local_settings = WithLocalPath(settings_, local_);
    if (!local_settings.ok()) return local_settings.status();
    auto inner = make_local_(*local_settings);
    if (!inner.ok()) return inner.status();
    inner_ = std::move(inner).value();
    return Rewrite(inner_->Open(ctx));
  }

  Result<bool> Next(SourceItem* item) override {
    if (!inner_) return Status::Internal("remote source read before Open");
    auto more = inner_->Next(item);
    if (!more.ok()) return Rewrite(more.status());
    if (*more) {
      // "x.csv:12" -> "sftp://host/drop/x.csv:12"
      std::string& pos = item->position;
      if (pos.size() > local_name_.size() && pos.compare(0, local_name_.size(), local_name_) == 0 &&
          pos[local_name_.size()] == ':') {
        pos.replace(0, local_name_.size(), display_);
      }
      if (item->rejected) item->reason = RewriteText(item->reason);
    }
    return more;
  }

  Status Acknowledge(uint64_t items, bool end) override {
    if (!inner_) return Status::OK();
    KEYONCE_RETURN_IF_ERROR(Rewrite(inner_->Acknowledge(items, end)));
    if (!end || after_.kind == AfterRead::Kind::kKeep) return Status::OK();
    RemoteFiles files(options_);
    if (after_.kind == AfterRead::Kind::kRemove) {
      auto rm = RemoteFiles::RemoveCommands(url_, false);
      if (!rm.ok()) return rm.status();
      return files.Run(url_, *rm).Wrap("removing the file after the run");
    }
    // move_to: a folder on the same server, made if missing.
    std::string folder = after_.folder;
    for (size_t twice; (twice = folder.find("//")) != std::string::npos;) folder.erase(twice, 1);
    const bool absolute = !folder.empty() && folder[0] == '/';
    if (absolute) folder.erase(0, 1);
    while (!folder.empty() && folder.back() == '/') folder.pop_back();
    const std::string folder_url =
        (absolute ? Origin(url_) + "/" : FolderUrl(url_)) + UrlEncodePath(folder);
    auto mk = MakeFolderCommand(folder_url);
    if (!mk.ok()) return mk.status();
    KEYONCE_RETURN_IF_ERROR(files.Run(url_, {*mk}).Wrap("moving the file after the run"));
    const std::string name = UrlFileName(url_);
    std::string dest;
    for (int attempt = 0;; ++attempt) {
      if (attempt == kMoveAttempts) {
        return Status::Io("moving " + display_ + ": the folder holds " +
                          std::to_string(kMoveAttempts) + " files named like it already");
      }
      dest = folder_url + "/" + UrlEncode(MovedName(name, run_id_, attempt));
      auto taken = files.Exists(dest);
      if (!taken.ok()) return taken.status().Wrap("moving the file after the run");
      if (!*taken) break;
    }
    auto mv = RemoteFiles::RenameCommands(url_, dest, false);
    if (!mv.ok()) return mv.status();
    return files.Run(url_, *mv).Wrap("moving the file after the run");
  }

  Status Close() override {
    Status st = inner_ ? inner_->Close() : Status::OK();
    inner_.reset();
    dir_.reset();  // removes the local copy
    return Rewrite(st);
  }

 private:
  // "sftp://host:22/a/b.csv" -> "sftp://host:22"
  static std::string Origin(const std::string& url) {
    size_t scheme = url.find("://");
    size_t slash = scheme == std::string::npos ? std::string::npos : url.find('/', scheme + 3);
    return slash == std::string::npos ? url : url.substr(0, slash);
  }
  // Makes the folder; its failure (it is there already) is ignored.
  static Result<std::string> MakeFolderCommand(const std::string& folder_url) {
    auto path = CommandPath(folder_url);
    if (!path.ok()) return path.status();
    if (IsSftp(folder_url)) return "*mkdir " + *path;
    return "*MKD " + *path;
  }

  std::string RewriteText(std::string msg) const {
    ReplaceAll(&msg, local_.string(), display_);
    if (msg.rfind(local_name_ + ":", 0) == 0 || msg.rfind(local_name_ + " ", 0) == 0) {
      msg.replace(0, local_name_.size(), display_);
    }
    return msg;
  }
  Status Rewrite(const Status& st) const { return st.WithMessage(RewriteText(st.message())); }

  Settings settings_;
  LocalSourceFactory make_local_;
  RemoteOptions options_;
  AfterRead after_;
  std::string url_, run_id_;
  std::unique_ptr<TempDir> dir_;
  std::string display_, local_name_;
  fs::path local_;
  std::unique_ptr<Source> inner_;
};

// ------------------------------------------------------------ the target

class RemoteTarget : public Target {
 public:
  RemoteTarget(Settings settings, LocalTargetFactory make_local, bool keep_existing,
               std::unique_ptr<Target> renderer)
      : settings_(std::move(settings)),
        make_local_(std::move(make_local)),
        keep_existing_(keep_existing),
        renderer_(std::move(renderer)) {}

  ~RemoteTarget() override {
    if (inner_) inner_->Close(false);
  }

  TargetTraits Traits() const override { return renderer_->Traits(); }

  Result<RecoverResult> Recover(const RunContext& ctx, uint64_t first_pending,
                                const std::string& token) override {
    RecoverResult r;
    // Batches of a local file (the recipe changed since): nothing to tell.
    if (token.rfind(kTokenPrefix, 0) != 0) return r;
    KEYONCE_RETURN_IF_ERROR(Locate(ctx, token.substr(std::string_view(kTokenPrefix).size())));
    RemoteFiles files(options_);
    auto part = files.Exists(part_url_);
    if (!part.ok()) return part.status().Wrap("recovering " + display_);
    auto backup = files.Exists(backup_url_);
    if (!backup.ok()) return backup.status().Wrap("recovering " + display_);
    r.known = true;
    if (*part && !*backup) {  // the rename did not happen
      r.applied_through = first_pending > 0 ? first_pending - 1 : 0;
      return r;
    }
    std::vector<std::string> cmds;
    if (*part) {  // between moving the old file away and renaming: finish it
      auto rename = RemoteFiles::RenameCommands(part_url_, url_, false);
      if (!rename.ok()) return rename.status();
      cmds = *rename;
      if (ctx.log) ctx.log->Info("Finishing the interrupted upload of " + display_ + ".");
    }
    auto rm = RemoteFiles::RemoveCommands(backup_url_, false);
    if (!rm.ok()) return rm.status();
    if (*backup) cmds.insert(cmds.end(), rm->begin(), rm->end());
    Status st = files.Run(url_, cmds);
    if (!st.ok()) return st.Wrap("recovering " + display_);
    r.applied_through = std::numeric_limits<uint64_t>::max();
    return r;
  }

  Status Open(const RunContext& ctx) override {
    KEYONCE_RETURN_IF_ERROR(Locate(ctx, ""));
    auto dir = TempDir::Make();
    if (!dir.ok()) return dir.status();
    dir_ = std::move(dir).value();
    local_name_ = UrlFileName(url_);
    staging_ = dir_->path() / local_name_;
    files_ = std::make_unique<RemoteFiles>(options_);
    if (keep_existing_) {
      Status st = files_->Download(url_, staging_);
      if (!st.ok() && st.code() != Status::Code::kNotFound) return st.Wrap(settings_.where);
    }
    // A stale backup must not outlive a recovery (it would make the next
    // one finish a rename that never started); then the run's marker.
    auto backup = files_->Exists(backup_url_);
    if (!backup.ok()) return backup.status().Wrap(settings_.where);
    if (*backup) {
      auto rm = RemoteFiles::RemoveCommands(backup_url_, false);
      if (!rm.ok()) return rm.status();
      KEYONCE_RETURN_IF_ERROR(files_->Run(url_, *rm).Wrap(settings_.where));
    }
    const fs::path empty = dir_->path() / ".empty";
    int fd = ::open(empty.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Status::Io("creating " + empty.string() + ": " + std::strerror(errno));
    ::close(fd);
    KEYONCE_RETURN_IF_ERROR(files_->Upload(empty, part_url_).Wrap(settings_.where));
    part_created_ = true;

    auto local_settings = WithLocalPath(settings_, staging_);
    if (!local_settings.ok()) return local_settings.status();
    auto inner = make_local_(*local_settings);
    if (!inner.ok()) return inner.status();
    inner_ = std::move(inner).value();
    return Rewrite(inner_->Open(ctx));
  }

  Result<Value> Render(const WriteOp& op) override {
    return inner_ ? inner_->Render(op) : renderer_->Render(op);
  }

  Result<std::string> Checkpoint() override {
    if (!inner_) return Status::Internal("remote target: Checkpoint before Open");
    return kTokenPrefix + url_;
  }

  WriteResult Write(const WriteOp& op) override {
    if (!inner_) {
      WriteResult r;
      r.status = Status::Internal("remote target: Write before Open");
      return r;
    }
    WriteResult r = inner_->Write(op);
    if (r.status.ok()) ++written_;
    r.status = Rewrite(r.status);
    return r;
  }

  std::vector<WriteResult> WriteMany(const std::vector<WriteOp>& ops) override {
    if (!inner_) return Target::WriteMany(ops);
    std::vector<WriteResult> out = inner_->WriteMany(ops);
    for (auto& r : out) {
      if (r.status.ok()) ++written_;
      r.status = Rewrite(r.status);
    }
    return out;
  }

  Result<CommitResult> Commit(uint64_t batch, bool final) override {
    if (!inner_) return Status::Internal("remote target: Commit before Open");
    auto c = inner_->Commit(batch, final);
    if (!c.ok()) return Rewrite(c.status());
    CommitResult out;
    out.token = kTokenPrefix + url_;
    if (!final) return out;  // durable = false: only the upload at the end counts
    if (written_ == 0) {
      // Nothing new: the file on the server stays as it was.
      auto rm = RemoteFiles::RemoveCommands(part_url_, true);
      if (rm.ok()) (void)files_->Run(url_, *rm);
    } else {
      std::vector<std::string> after;
      for (auto cmds : {RemoteFiles::RenameCommands(url_, backup_url_, true),
                        RemoteFiles::RenameCommands(part_url_, url_, false),
                        RemoteFiles::RemoveCommands(backup_url_, true)}) {
        if (!cmds.ok()) return cmds.status();
        after.insert(after.end(), cmds->begin(), cmds->end());
      }
      Status st = files_->Upload(staging_, part_url_, after);
      if (!st.ok()) return st;
    }
    part_created_ = false;
    finished_ = true;
    out.durable = true;
    return out;
  }

  Status Close(bool success) override {
    Status st;
    if (inner_) st = Rewrite(inner_->Close(success));
    inner_.reset();
    // After a failure the marker stays: batches of this run may be pending,
    // and it tells the next run's Recover that nothing was renamed.
    if (success && part_created_ && !finished_ && files_) {
      auto rm = RemoteFiles::RemoveCommands(part_url_, true);
      if (rm.ok()) (void)files_->Run(url_, *rm);
    }
    files_.reset();
    dir_.reset();
    return st;
  }

 private:
  // The file's URLs: `url`, or the path rendered for this run when empty.
  Status Locate(const RunContext& ctx, const std::string& url) {
    if (url.empty()) {
      auto rendered = RenderUrl(settings_, ctx.scope);
      if (!rendered.ok()) return rendered.status();
      url_ = *rendered;
    } else {
      url_ = url;
    }
    part_url_ = url_ + kPartSuffix;
    backup_url_ = url_ + kBackupSuffix;
    display_ = SafeUrl(url_);
    auto options = ReadRemote(settings_, ctx.scope, ctx.log);
    if (!options.ok()) return options.status();
    options_ = std::move(options).value();
    return Status::OK();
  }

  Status Rewrite(const Status& st) const {
    if (st.ok() || staging_.empty()) return st;
    std::string msg = st.message();
    ReplaceAll(&msg, staging_.string(), display_);
    if (dir_) ReplaceAll(&msg, dir_->path().string(), FolderUrl(display_));
    return st.WithMessage(msg);
  }

  Settings settings_;
  LocalTargetFactory make_local_;
  bool keep_existing_;
  std::unique_ptr<Target> renderer_;  // renders dry runs (never opened)
  RemoteOptions options_;
  std::string url_, part_url_, backup_url_, display_, local_name_;
  std::unique_ptr<TempDir> dir_;
  fs::path staging_;
  std::unique_ptr<RemoteFiles> files_;
  std::unique_ptr<Target> inner_;
  uint64_t written_ = 0;
  bool part_created_ = false;
  bool finished_ = false;
};

}  // namespace

Result<std::unique_ptr<Source>> MakeRemoteSource(const Settings& settings,
                                                 LocalSourceFactory make_local) {
  KEYONCE_RETURN_IF_ERROR(CheckRemoteSettings(settings, /*for_target=*/false));
  KEYONCE_RETURN_IF_ERROR(CheckAfterRead(settings));
  // The local settings must be valid too (delimiter, encoding, ...).
  auto check = make_local(settings);
  if (!check.ok()) return check.status();
  return std::unique_ptr<Source>(new RemoteSource(settings, std::move(make_local)));
}

Result<std::unique_ptr<Source>> MakeFileSource(const Settings& settings,
                                               LocalSourceFactory make_local) {
  if (IsRemotePath(settings)) return MakeRemoteSource(settings, std::move(make_local));
  return WithAfterRead(settings, make_local(settings));
}

Result<std::unique_ptr<Target>> MakeRemoteTarget(const Settings& settings,
                                                 LocalTargetFactory make_local,
                                                 bool keep_existing) {
  KEYONCE_RETURN_IF_ERROR(CheckRemoteSettings(settings, /*for_target=*/true));
  auto renderer = make_local(settings);
  if (!renderer.ok()) return renderer.status();
  return std::unique_ptr<Target>(new RemoteTarget(settings, std::move(make_local), keep_existing,
                                                  std::move(renderer).value()));
}

}  // namespace keyonce::connectors::net
