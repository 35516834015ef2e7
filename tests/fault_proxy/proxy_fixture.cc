#include "tests/fault_proxy/proxy_fixture.h"

#include <stdlib.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace keyonce::fault_proxy_test {
namespace fs = std::filesystem;
using testing_util::FreePort;

TempDir::TempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + ".XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (std::getenv("KEYONCE_KEEP_TEST_DIRS")) {
    std::fprintf(stderr, "kept %s\n", path_.c_str());
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

bool JsonServer::Start(const fs::path& dir, std::string* why, const fs::path& post_log) {
  fs::path bin = testing_util::NodeModules() / ".bin" / "json-server";
  if (!fs::exists(bin)) {
    *why = "json-server is not installed at " + bin.string() +
           " (run `npm ci` in tests/, as .ci/install-deps.sh does)";
    return false;
  }
  {
    std::ofstream db(dir / "db.json");
    db << "{\"cases\": []}\n";
  }
  port_ = FreePort();
  std::vector<std::string> argv = {bin.string(), "--port",    std::to_string(port_),
                                   "--host",     "127.0.0.1", "db.json"};
  std::map<std::string, std::string> env;
  if (!post_log.empty()) {
    argv.push_back("--middlewares");
    argv.push_back((testing_util::TestsDir() / "fault_proxy" / "post_log.js").string());
    env["KEYONCE_POST_LOG"] = post_log.string();
  }
  return process_.StartAndWait(argv, port_, dir / ("json-server-" + std::to_string(port_) + ".log"),
                               why, env, dir);
}

std::string ProxyBinary() {
  const char* b = std::getenv("KEYONCE_FAULT_PROXY");
  return b && *b ? b : KEYONCE_FAULT_PROXY;
}

bool FaultProxy::Start(const fs::path& dir, int upstream_port, const std::vector<std::string>& args,
                       std::string* why) {
  port_ = FreePort();
  decisions_ = dir / ("proxy-" + std::to_string(port_) + ".jsonl");
  std::vector<std::string> argv = {ProxyBinary(),
                                   "--listen",
                                   std::to_string(port_),
                                   "--upstream",
                                   "127.0.0.1:" + std::to_string(upstream_port),
                                   "--log",
                                   decisions_.string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return process_.StartAndWait(argv, port_, dir / ("proxy-" + std::to_string(port_) + ".log"), why);
}

namespace {
size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t CollectHeader(char* data, size_t size, size_t n, void* out) {
  std::string line(data, size * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(0, 1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    (*static_cast<std::map<std::string, std::string>*>(out))[name] = value;
  }
  return size * n;
}
}  // namespace

Client::Client() : curl_(curl_easy_init()) {}
Client::~Client() { curl_easy_cleanup(curl_); }

Reply Client::Call(const std::string& method, const std::string& url, const std::string& json_body,
                   long timeout_ms) {
  Reply r;
  curl_easy_reset(curl_);  // keeps the connection cache
  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &r.headers);
  curl_slist* headers = nullptr;
  if (!json_body.empty()) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, json_body.c_str());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(json_body.size()));
  }
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
  auto t0 = std::chrono::steady_clock::now();
  r.code = curl_easy_perform(curl_);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &r.new_connections);
  curl_slist_free_all(headers);
  return r;
}

std::vector<std::map<std::string, std::string>> ReadDecisions(const fs::path& file) {
  std::vector<std::map<std::string, std::string>> out;
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    std::map<std::string, std::string> m;
    if (ec || !v.is_object()) {
      m["unparsable"] = line;
    } else {
      for (const auto& [k, x] : v.as_object()) {
        m[std::string(k)] = x.is_string() ? std::string(x.as_string()) : boost::json::serialize(x);
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace keyonce::fault_proxy_test
