#include "tests/support/http_servers.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace keyonce::testing_util::http {
namespace fs = std::filesystem;

namespace {

void Write(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

std::string Node(std::string* why) {
  std::string node = FindProgram("node");
  if (node.empty() && why) *why = "node is not installed (needed for the test servers)";
  return node;
}

fs::path HttpServersDir() { return TestsDir() / "servers" / "http"; }

}  // namespace

ScratchDir::ScratchDir() {
  std::string tmpl = (fs::temp_directory_path() / "keyonce-http-XXXXXX").string();
  if (char* d = mkdtemp(tmpl.data())) path_ = d;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  if (!path_.empty()) fs::remove_all(path_, ec);
}

bool MakeTestCerts(const fs::path& dir, TestCerts* c, std::string* why) {
  std::string openssl = FindProgram("openssl");
  if (openssl.empty()) {
    *why = "openssl is not installed";
    return false;
  }
  fs::create_directories(dir);
  auto p = [&](const char* name) { return (dir / name).string(); };
  Write(dir / "server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  Write(dir / "client.ext", "extendedKeyUsage=clientAuth\n");
  const std::vector<std::vector<std::string>> steps = {
      {openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
       "/CN=keyonce test CA", "-keyout", p("ca.key"), "-out", p("ca.pem")},
      {openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
       "/CN=keyonce other CA", "-keyout", p("other_ca.key"), "-out", p("other_ca.pem")},
      {openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
       p("server.key"), "-out", p("server.csr")},
      {openssl, "x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
       "-CAcreateserial", "-days", "2", "-extfile", p("server.ext"), "-out", p("server.pem")},
      {openssl, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=keyonce client", "-keyout",
       p("client.key"), "-out", p("client.csr")},
      {openssl, "x509", "-req", "-in", p("client.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
       "-CAcreateserial", "-days", "2", "-extfile", p("client.ext"), "-out", p("client.pem")},
      {openssl, "pkey", "-in", p("client.key"), "-aes256", "-passout",
       std::string("pass:") + kClientKeyPassword, "-out", p("client_enc.key")},
  };
  for (const auto& argv : steps) {
    std::string out;
    if (RunProgram(argv, &out) != 0) {
      *why = "openssl " + argv[1] + " failed: " + out;
      return false;
    }
  }
  c->ca = dir / "ca.pem";
  c->other_ca = dir / "other_ca.pem";
  c->server_cert = dir / "server.pem";
  c->server_key = dir / "server.key";
  c->client_cert = dir / "client.pem";
  c->client_key = dir / "client.key";
  c->client_key_enc = dir / "client_enc.key";
  return true;
}

bool Nginx::Start(const fs::path& dir, const std::string& http_body, int wait_port,
                  std::string* why) {
  dir_ = dir;
  std::string nginx = FindProgram("nginx", {"/usr/sbin"});
  if (nginx.empty()) {
    *why = "nginx is not installed (Debian package nginx-light)";
    return false;
  }
  fs::create_directories(dir / "tmp");
  std::string body = http_body;
  for (size_t pos; (pos = body.find("{dir}")) != std::string::npos;) {
    body.replace(pos, 5, dir.string());
  }
  std::string conf;
  if (geteuid() == 0) conf += "user root;\n";
  conf += "worker_processes 1;\n";
  conf += "pid " + (dir / "nginx.pid").string() + ";\n";
  conf += "error_log " + (dir / "error.log").string() + " info;\n";
  conf += "events { worker_connections 256; }\n";
  conf += "http {\n";
  conf += "  log_format timing '$msec $request_time $status $request_method $uri';\n";
  conf += "  access_log " + (dir / "access.log").string() + " timing;\n";
  for (const char* t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"}) {
    conf += std::string("  ") + t + "_temp_path " + (dir / "tmp" / t).string() + ";\n";
  }
  conf += "  keepalive_requests 100000;\n";
  conf += body + "\n}\n";
  Write(dir / "nginx.conf", conf);
  return proc_.StartAndWait({nginx, "-p", dir.string(), "-e", (dir / "error.log").string(), "-c",
                             (dir / "nginx.conf").string(), "-g", "daemon off;"},
                            wait_port, dir / "nginx.out", why);
}

bool JsonServer::Start(const fs::path& dir, const std::string& db, std::string* why) {
  dir_ = dir;
  fs::path bin = NodeModules() / ".bin" / "json-server";
  if (!fs::exists(bin)) {
    *why = "json-server is not installed: run npm ci in tests/ (" + bin.string() + ")";
    return false;
  }
  if (Node(why).empty()) return false;
  fs::create_directories(dir);
  Write(dir / "db.json", db);
  port_ = FreePort();
  return proc_.StartAndWait({bin.string(), "--port", std::to_string(port_), "--host", "127.0.0.1",
                             "--quiet", (dir / "db.json").string()},
                            port_, dir / "json-server.log", why, {}, dir);
}

bool OAuthApi::Start(const fs::path& dir, const std::string& secret, const std::string& user,
                     const std::string& password, int expires_in, std::string* why) {
  std::string node = Node(why);
  if (node.empty()) return false;
  if (!fs::exists(NodeModules() / "oauth2-mock-server")) {
    *why = "oauth2-mock-server is not installed: run npm ci in tests/";
    return false;
  }
  oauth_port_ = FreePort();
  api_port_ = FreePort();
  while (api_port_ == oauth_port_) api_port_ = FreePort();
  std::map<std::string, std::string> env = {{"NODE_MODULES", NodeModules().string()},
                                            {"OAUTH_CLIENT_ID", "keyonce"},
                                            {"OAUTH_CLIENT_SECRET", secret},
                                            {"OAUTH_USERNAME", user},
                                            {"OAUTH_PASSWORD", password},
                                            {"OAUTH_EXPIRES_IN", std::to_string(expires_in)},
                                            {"OAUTH_MAILBOX", mailbox}};
  if (!proc_.StartAndWait({node, (HttpServersDir() / "oauth_api.js").string(),
                           std::to_string(oauth_port_), std::to_string(api_port_)},
                          api_port_, dir / "oauth.log", why, env)) {
    return false;
  }
  if (!WaitForPort(oauth_port_)) {
    *why = "the OAuth2 token endpoint did not start: " + proc_.Log();
    return false;
  }
  return true;
}

bool TruncatingServer::Start(const fs::path& dir, std::string* why) {
  std::string node = Node(why);
  if (node.empty()) return false;
  port_ = FreePort();
  return proc_.StartAndWait(
      {node, (HttpServersDir() / "truncating_server.js").string(), std::to_string(port_)}, port_,
      dir / "truncating.log", why);
}

}  // namespace keyonce::testing_util::http
