// `keyonce serve`: one long-running service that runs recipes on their cron
// schedules and on demand, and answers the JSON API and the caseworkers' page.
//
// Threads: one io_context thread does all HTTP, scheduling and bookkeeping
// (the state store connection of the service lives there); each run of a
// recipe gets a thread of its own for its duration (at most
// max_concurrent_runs at once) and reports back by posting to the
// io_context. Runs, the queue and the schedules' last fire times are kept in
// the state file, so a restart never runs a schedule twice, never loses a
// queued run, and resumes runs a crash or SIGTERM interrupted.
#pragma once

#include <filesystem>
#include <string>

#include "keyonce/status.h"
#include "service/http_limits.h"

namespace keyonce::service {

struct ServiceConfig {
  std::filesystem::path recipes_dir;
  std::filesystem::path state_path;
  std::filesystem::path tokens_path;
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  std::string timezone = "Europe/Copenhagen";
  int max_concurrent_runs = 4;
  std::string identity;  // the robot identity in the audit log; "" = keyonce@host
  std::filesystem::path tls_cert, tls_key;
  int audit_retention_days = 180;
  bool json_logs = false;
  HttpLimits http;  // `http:` in the config file: timeouts and connection caps
};

// Reads a config file (YAML) into *config; settings given on the command line
// are applied by the caller afterwards. Unknown keys are errors with
// file:line:column.
Status LoadServiceConfig(const std::filesystem::path& file, ServiceConfig* config);

// Checks everything serve would load (config, tokens, every recipe) and
// prints what it found; the exit code for `keyonce serve --check`.
int CheckService(const ServiceConfig& config);

// Runs until SIGTERM/SIGINT; returns the process exit code.
int RunService(const ServiceConfig& config);

}  // namespace keyonce::service
