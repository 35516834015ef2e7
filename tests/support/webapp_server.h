// Sagsportalen (tests/servers/webapp/server.js), the legacy web application
// the browser connector's tests, example and benchmark key records into: a
// login with a CSRF token and an account lock, sessions that run out, a case
// form, a confirmation page with the case number and a search page, served by
// node (standard library only) on a free loopback port. Cases live in memory;
// /_test/cases, /_test/state and /_test/control let a test read them and
// change the application's behaviour. tests/servers/webapp/README.md
// describes every page and control key.
//
// Not thread-safe: one test thread drives one server.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "tests/support/servers.h"

namespace keyonce::testing_util {

// How the application starts; POST /_test/control {"reset": true} returns to
// these values.
struct WebappOptions {
  std::string user = "robot";
  std::string password = "Sommer2026!";
  // A logged-in session serves this many page requests, then the next one is
  // redirected to /login?next=<path> (0: sessions never expire).
  int expire_every = 0;
  // Every slow_every-th valid case submit waits slow_ms (0: none).
  int slow_every = 0;
  int slow_ms = 0;
  // Any other setting of server.js by its name, e.g. {"lock_after", "5"},
  // {"slow_phase", "before"}, {"changed_page", "true"}.
  std::map<std::string, std::string> settings;
};

class WebappServer {
 public:
  WebappServer() = default;
  WebappServer(const WebappServer&) = delete;
  WebappServer& operator=(const WebappServer&) = delete;
  ~WebappServer() { Stop(); }

  // Starts node on a free port with its log in `dir`/webapp.log (the
  // password goes by environment, not argv). False with a clear reason in
  // *why when node is missing or the server does not come up.
  bool Start(const std::filesystem::path& dir, std::string* why, const WebappOptions& options = {});
  // Stops the server (SIGTERM, then SIGKILL); its cases are gone.
  void Stop() { process_.Stop(); }

  int port() const { return port_; }
  // http://127.0.0.1:PORT (no slash at the end).
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const WebappOptions& options() const { return options_; }

  // GET /_test/cases: every case as a JSON array ("" when the server did
  // not answer 200).
  std::string CasesJson() const;
  // GET /_test/state: settings, counters, lock and sessions as JSON ("" on
  // failure).
  std::string StateJson() const;
  // POST /_test/control with a JSON object, e.g. {"expire_every": 3} or
  // {"reset": true}. True when the server accepted it (200); its answer
  // (the state, or {"error": ...}) in *reply when given.
  bool Control(const std::string& json, std::string* reply = nullptr) const;
  // Everything the server wrote: one line per request, no field values.
  std::string Log() const;

 private:
  ServerProcess process_;
  std::filesystem::path log_;
  WebappOptions options_;
  int port_ = -1;
};

}  // namespace keyonce::testing_util
