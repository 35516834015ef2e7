// Servers for the http connector's tests: test certificates made with the
// openssl command, nginx with a given http{} body, json-server on a db, the
// OAuth2 token endpoint (oauth2-mock-server) with a protected API, and a
// server that cuts its replies short. Each lives in a fresh temp folder that
// is removed with it; every server listens on 127.0.0.1 on a free port.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "tests/support/servers.h"

namespace keyonce::testing_util::http {

// A fresh temp folder, removed (with everything in it) by the destructor.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A CA, a server certificate for 127.0.0.1/localhost and a client
// certificate signed by it, and an unrelated CA (for "wrong CA" tests).
// PEM files; the client key is also written encrypted (client_enc.key,
// passphrase kClientKeyPassword).
struct TestCerts {
  std::filesystem::path ca, server_cert, server_key, client_cert, client_key, client_key_enc,
      other_ca;
};
inline constexpr const char* kClientKeyPassword = "kodeord-til-noeglen";
bool MakeTestCerts(const std::filesystem::path& dir, TestCerts* out, std::string* why);

// nginx in the foreground with `http_body` inside http{} (server blocks;
// "{dir}" is replaced by the nginx folder). Access log: {dir}/access.log
// with "$msec $request_time $status $request_method $uri".
class Nginx {
 public:
  bool Start(const std::filesystem::path& dir, const std::string& http_body, int wait_port,
             std::string* why);
  std::filesystem::path access_log() const { return dir_ / "access.log"; }
  ServerProcess& process() { return proc_; }

 private:
  std::filesystem::path dir_;
  ServerProcess proc_;
};

// json-server 0.17 on `db` (a JSON document), its db file in `dir`.
class JsonServer {
 public:
  bool Start(const std::filesystem::path& dir, const std::string& db, std::string* why);
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // The db file as json-server keeps it (rewritten after each change).
  std::filesystem::path db_file() const { return dir_ / "db.json"; }

 private:
  std::filesystem::path dir_;
  int port_ = 0;
  ServerProcess proc_;
};

// tests/servers/http/oauth_api.js: a token endpoint (POST {token_url()}) that
// accepts client_id "keyonce" with `secret` (client credentials) or
// `user`/`password` (password grant), tokens valid for `expires_in`
// seconds; and an API at api_url() that answers 201 to a valid bearer
// token and 401 otherwise; GET {api_url()}/stats, POST {api_url()}/revoke.
class OAuthApi {
 public:
  bool Start(const std::filesystem::path& dir, const std::string& secret, const std::string& user,
             const std::string& password, int expires_in, std::string* why);
  std::string token_url() const {
    return "http://127.0.0.1:" + std::to_string(oauth_port_) + "/token";
  }
  std::string api_url() const { return "http://127.0.0.1:" + std::to_string(api_port_); }
  // RFC 7662 token introspection of the tokens it issued (for Dovecot's
  // XOAUTH2 logins): {active, email: mailbox}. Set mailbox before Start.
  std::string introspection_url() const { return api_url() + "/introspect"; }
  std::string mailbox;

 private:
  int oauth_port_ = 0, api_port_ = 0;
  ServerProcess proc_;
};

// tests/servers/http/truncating_server.js.
class TruncatingServer {
 public:
  bool Start(const std::filesystem::path& dir, std::string* why);
  int port() const { return port_; }

 private:
  int port_ = 0;
  ServerProcess proc_;
};

}  // namespace keyonce::testing_util::http
