#include "tests/support/soap_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace keyonce::testing_util {
namespace fs = std::filesystem;

int PlainHttp(int port, const std::string& method, const std::string& path, const std::string& body,
              std::string* reply_body) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval tv{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  std::string req = method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n";
  if (!body.empty()) {
    req +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  for (size_t sent = 0; sent < req.size();) {
    ssize_t n = send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      close(fd);
      return -1;
    }
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[65536];
  for (ssize_t n; (n = recv(fd, buf, sizeof(buf), 0)) > 0;)
    reply.append(buf, static_cast<size_t>(n));
  close(fd);
  size_t sp = reply.find(' ');
  size_t end = reply.find("\r\n\r\n");
  if (sp == std::string::npos || end == std::string::npos) return -1;
  if (reply_body) *reply_body = reply.substr(end + 4);
  return std::atoi(reply.c_str() + sp + 1);
}

bool CaseSystemServer::Start(const fs::path& dir, std::string* why, const std::string& wsse) {
  if (FindProgram("node").empty()) {
    *why = "node (Node.js) is not installed: the SOAP tests need it (bash .ci/install-deps.sh)";
    return false;
  }
  if (!fs::exists(NodeModules() / "soap" / "package.json")) {
    *why = "the npm package soap is not installed in " + NodeModules().string() +
           " (run bash .ci/install-deps.sh, or npm ci in tests/)";
    return false;
  }
  port_ = FreePort();
  std::vector<std::string> argv = {"node", (TestsDir() / "servers" / "soap" / "server.js").string(),
                                   "--port", std::to_string(port_)};
  if (!wsse.empty()) {
    argv.push_back("--wsse");
    argv.push_back(wsse);
  }
  return process_.StartAndWait(argv, port_, dir / "casesystem.log", why,
                               {{"NODE_PATH", NodeModules().string()}});
}

std::string CaseSystemServer::Url(bool soap12) const {
  return "http://127.0.0.1:" + std::to_string(port_) + (soap12 ? "/case12" : "/case11");
}

std::string CaseSystemServer::CasesJson() const {
  std::string body;
  if (PlainHttp(port_, "GET", "/cases", "", &body) != 200) return "";
  return body;
}

bool CaseSystemServer::Control(const std::string& json) const {
  return PlainHttp(port_, "POST", "/control", json) == 200;
}

bool CannedServer::Start(const fs::path& dir, const std::vector<CannedReply>& replies,
                         std::string* why) {
  std::string nginx = FindProgram("nginx", {"/usr/sbin"});
  if (nginx.empty()) {
    *why =
        "nginx is not installed: the SOAP tests need it for canned replies (apt-get install "
        "nginx-light)";
    return false;
  }
  fs::create_directories(dir / "_f");
  port_ = FreePort();
  std::ofstream conf(dir / "nginx.conf");
  conf << "daemon off;\nmaster_process off;\n";
  if (geteuid() == 0) conf << "user root;\n";
  conf << "pid " << (dir / "nginx.pid").string() << ";\n"
       << "error_log " << (dir / "error.log").string() << ";\n"
       << "events {}\nhttp {\n  access_log off;\n";
  for (const char* t : {"client_body", "proxy", "fastcgi", "uwsgi", "scgi"}) {
    conf << "  " << t << "_temp_path " << (dir / t).string() << ";\n";
  }
  conf << "  server {\n    listen 127.0.0.1:" << port_ << ";\n";
  for (const auto& r : replies) {
    std::ofstream(dir / "_f" / r.name, std::ios::binary) << r.body;
    // nginx serves files to GET only; a POST is redirected to the file by
    // error_page (which turns it into a GET) with the wanted status.
    conf << "    location = /" << r.name << " { error_page 405 =" << r.status << " /_f/" << r.name
         << "; return 405; }\n"
         << "    location = /_f/" << r.name << " { internal; types {} default_type \""
         << r.content_type << "\"; root " << dir.string() << "; }\n";
  }
  conf << "  }\n}\n";
  conf.close();
  return process_.StartAndWait({nginx, "-c", (dir / "nginx.conf").string(), "-p", dir.string()},
                               port_, dir / "nginx.log", why);
}

std::string CannedServer::Url(const std::string& name) const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/" + name;
}

}  // namespace keyonce::testing_util
