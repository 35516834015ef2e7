#include "tests/support/service.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/servers.h"

namespace keyonce::testing_util {
namespace fs = std::filesystem;

namespace {

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void InitCurl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  std::string line(data, size * n);
  auto* headers = static_cast<std::multimap<std::string, std::string>*>(user);
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();  // a new reply (e.g. after 100 Continue)
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string::npos) return size * n;
  std::string name = line.substr(0, colon);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string value = line.substr(colon + 1);
  size_t b = value.find_first_not_of(" \t");
  size_t e = value.find_last_not_of(" \t\r\n");
  value = b == std::string::npos ? "" : value.substr(b, e - b + 1);
  headers->emplace(std::move(name), std::move(value));
  return size * n;
}

}  // namespace

std::string Sha256Hex(std::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string HttpReply::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

std::vector<std::string> HttpReply::Headers(const std::string& name) const {
  std::vector<std::string> out;
  auto [b, e] = headers.equal_range(name);
  for (auto it = b; it != e; ++it) out.push_back(it->second);
  return out;
}

HttpClient::HttpClient(std::string base_url) : base_url_(std::move(base_url)) {
  InitCurl();
  curl_ = curl_easy_init();
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

HttpReply HttpClient::Send(const HttpRequest& r) {
  HttpReply reply;
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);
  std::string url = base_url_ + r.path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
  curl_easy_setopt(c, CURLOPT_PROXY, "");  // loopback only, whatever the environment says
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &reply.headers);
  if (r.method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else if (r.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  }
  if (!r.body.empty() || r.method == "POST" || r.method == "PATCH" || r.method == "PUT") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
  }
  curl_slist* headers = nullptr;
  // No "Expect: 100-continue" wait on large bodies; the server may answer 413 at once.
  headers = curl_slist_append(headers, "Expect:");
  for (const auto& h : r.headers) headers = curl_slist_append(headers, h.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    reply.error = curl_easy_strerror(rc);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    reply.status = code;  // a reply may have come before the connection broke (413)
    return reply;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply.status);
  return reply;
}

HttpReply HttpClient::Get(const std::string& path, const std::string& token) {
  HttpRequest r;
  r.path = path;
  if (!token.empty()) r.headers.push_back("Authorization: Bearer " + token);
  return Send(r);
}

HttpReply HttpClient::SendJson(const std::string& method, const std::string& path,
                               const std::string& json, const std::string& token) {
  HttpRequest r;
  r.method = method;
  r.path = path;
  r.body = json;
  r.headers.push_back("Content-Type: application/json");
  if (!token.empty()) r.headers.push_back("Authorization: Bearer " + token);
  return Send(r);
}

Service::Service(std::string binary) : binary_(std::move(binary)) {
  std::string tmpl = (fs::temp_directory_path() / "keyonce-serve-XXXXXX").string();
  if (char* d = mkdtemp(tmpl.data())) dir_ = d;
  fs::create_directories(recipes_dir());
}

Service::~Service() {
  Kill();
  std::error_code ec;
  if (!dir_.empty() && !std::getenv("KEYONCE_KEEP_TEST_DIRS")) fs::remove_all(dir_, ec);
}

void Service::WriteTokens(const std::vector<ServiceToken>& tokens) {
  std::ostringstream y;
  y << "tokens:\n";
  for (const auto& t : tokens) {
    y << "  - name: " << t.name << "\n    role: " << t.role << "\n";
    if (!t.recipes.empty()) {
      y << "    recipes: [";
      for (size_t i = 0; i < t.recipes.size(); ++i) y << (i ? ", " : "") << t.recipes[i];
      y << "]\n";
    }
    y << "    sha256: " << Sha256Hex(t.token) << "\n";
  }
  std::ofstream(tokens_file(), std::ios::binary) << y.str();
}

void Service::WriteRecipe(const std::string& file, const std::string& yaml) {
  fs::path p = recipes_dir() / file;
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << yaml;
}

bool Service::Start(const std::vector<std::string>& extra_args, std::string* why,
                    const std::map<std::string, std::string>& env) {
  if (Running()) {
    if (why) *why = "the service is already running";
    return false;
  }
  if (access(binary_.c_str(), X_OK) != 0) {
    if (why) *why = "the keyonce binary is missing: " + binary_;
    return false;
  }
  ++starts_;
  fs::path log = dir_ / ("serve-" + std::to_string(starts_) + ".log");
  std::vector<std::string> argv = {binary_,     "serve",
                                   "--recipes", recipes_dir().string(),
                                   "--state",   state_file().string(),
                                   "--tokens",  tokens_file().string(),
                                   "--listen",  "127.0.0.1:0"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  // The service dies with the test, even when the test is killed (a ctest timeout).
  pid_t pid = SpawnLogged(binary_, argv, log, env, dir_, true);
  if (pid < 0) {
    if (why) *why = "fork failed";
    return false;
  }
  pid_ = pid;
  port_ = 0;
  static const std::regex kListening(R"(listening on https?://127\.0\.0\.1:(\d+))");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch m;
    std::string text = Slurp(log);
    if (std::regex_search(text, m, kListening)) {
      port_ = std::stoi(m[1].str());
      client_.set_base_url(url());
      return true;
    }
    if (!Running()) {
      if (why) *why = "keyonce serve exited before listening:\n" + CurrentLog();
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (why) *why = "keyonce serve printed no 'listening on' line within 60 s:\n" + CurrentLog();
  Kill();
  return false;
}

bool Service::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || r < 0) {
    pid_ = -1;
    return false;
  }
  return true;
}

void Service::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

std::optional<int> Service::Stop(int sig, std::chrono::seconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  kill(pid_, sig);
  return Wait(timeout);
}

std::optional<int> Service::Wait(std::chrono::seconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_t group = pid_;
      pid_ = -1;
      kill(-group, SIGKILL);  // anything it left behind
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    if (r < 0) {
      pid_ = -1;
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill();
  return std::nullopt;
}

void Service::Kill() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

bool Service::WaitForLog(const std::string& text, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    if (CurrentLog().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

std::string Service::Log() const {
  std::string all;
  for (int i = 1; i <= starts_; ++i) all += Slurp(dir_ / ("serve-" + std::to_string(i) + ".log"));
  return all;
}

std::string Service::CurrentLog() const {
  return starts_ == 0 ? "" : Slurp(dir_ / ("serve-" + std::to_string(starts_) + ".log"));
}

}  // namespace keyonce::testing_util
