// The service's own tables in the state file: the run queue and history of
// `keyonce serve` (service_runs) and each schedule's last fire time
// (schedule_state). The engine's tables (runs, journal, quarantine, ...)
// are read through StateStore.
//
//   service_runs(id, recipe, trigger, started_by, status, params, params_masked,
//                retry, queued_at, started_at, finished_at, engine_run, summary,
//                error, log)
//     status: queued | running | completed | completed_with_errors | failed |
//             interrupted | cancelled. `params` holds the raw parameter values
//             (needed to resume) only until the run has finished.
//   schedule_state(recipe, last_fire, cron)
//     last_fire: the last fire time handled (run queued, skipped or refused),
//     UTC seconds; written in the same transaction as the queued run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "keyonce/status.h"

struct sqlite3;

namespace keyonce {
class StateStore;
}  // namespace keyonce

namespace keyonce::service {

struct RunRow {
  int64_t id = 0;
  std::string recipe, trigger, started_by, status, params, params_masked, retry;
  std::string queued_at, started_at, finished_at, summary, error, log;
  int64_t engine_run = 0;
};

class ServiceDb {
 public:
  explicit ServiceDb(StateStore& store);
  Status Init();

  // Queues a run; with fire_time, also records the schedule's last fire
  // time, atomically.
  Result<int64_t> Enqueue(const RunRow& row, std::optional<int64_t> fire_time = std::nullopt,
                          const std::string& cron = "");
  Status MarkStarted(int64_t id, const std::string& at);
  Status SetEngineRun(int64_t id, int64_t engine_run);
  Status Finish(const RunRow& row);  // status, finished_at, summary, error, log, params
  // Runs a crash or SIGTERM interrupted go back to the queue (trigger "resume").
  Result<int> RequeueInterrupted();
  Result<std::vector<RunRow>> Queued();
  // Runs marked running: at start, the ones the service died during.
  Result<std::vector<RunRow>> Running();
  Result<std::optional<RunRow>> Get(int64_t id);
  // Newest first; started_by "" = everyone's, recipe "" = all; before 0 = newest.
  Result<std::vector<RunRow>> List(const std::string& recipe, const std::string& started_by,
                                   int64_t before, int limit);

  Result<std::optional<std::pair<int64_t, std::string>>> LastFire(const std::string& recipe);
  Status SetLastFire(const std::string& recipe, int64_t fire_time, const std::string& cron);

 private:
  Status Exec(const char* sql);
  Status Error(const char* what);
  sqlite3* db_;
};

}  // namespace keyonce::service
