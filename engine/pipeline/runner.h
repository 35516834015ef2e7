// Running a recipe: read once, shape, write to every target exactly once.
//
// The order of operations per batch is what makes reruns and crashes safe:
//   1. one state-store transaction journals a write intent for every record
//      and target that needs a write (key hash, content hash, batch id);
//   2. each target writes its records in recipe order (later targets see
//      earlier targets' captures) and Commit()s; failed writes' intents are
//      cleared before that commit;
//   3. one transaction marks the batches the targets confirmed as done.
// A crash between 1 and 3 leaves batches pending; the next run asks each
// target (Target::Recover) which of them arrived, so nothing is written twice
// and nothing is lost. A target that cannot tell leaves its records in doubt:
// Target::Check or the target's in_doubt policy decides for each record.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <map>
#include <string>
#include <vector>

#include "keyonce/status.h"
#include "recipe/recipe.h"
#include "state/privacy.h"
#include "state/store.h"

namespace keyonce {

enum class LogFormat { kText, kJson };

// Exit codes of `keyonce run` (documented in docs/cli.md).
enum ExitCode {
  kExitOk = 0,           // every record reached every target (or was unchanged/filtered)
  kExitFailed = 1,       // the run could not complete (source, target or state store failed)
  kExitUsage = 2,        // bad command line, invalid recipe, bad parameter, missing secret
  kExitQuarantined = 3,  // the run completed, but records were quarantined or are in doubt
  kExitRefused = 4,      // refused, nothing written: the recipe is running elsewhere, or the
                         // state file is not a whole one or not the one the targets know
};

struct RunSummary;

// Where targets keep evidence of failed records for a person (a browser's
// screenshot and page): `<state file>.evidence/`, one `run-<id>/` folder per
// run, removed with the audit retention. Empty for a state without a file.
std::filesystem::path EvidenceRoot(const std::filesystem::path& state);
std::filesystem::path EvidenceDir(const std::filesystem::path& state, int64_t run);

struct RunOptions {
  std::filesystem::path state_path;
  std::map<std::string, std::string> params;  // raw values as given
  bool dry_run = false;
  std::string trigger = "cli";
  LogFormat log_format = LogFormat::kText;
  std::ostream* out = nullptr;  // dry-run renderings and the summary
  std::ostream* err = nullptr;  // log lines and progress
  bool progress = false;        // a progress line (terminals, runs over a second)
  // Rerun these quarantined records instead of the source, with the
  // parameters of the run that read them (all must share them); `params`
  // given here override theirs.
  std::vector<int64_t> retry_quarantine;
  bool wait = false;   // another run holds the recipe: wait for it instead of refusing
  bool adopt = false;  // take over targets another journal wrote (see docs/reliability.md)
  const std::atomic<bool>* stop = nullptr;  // set to stop after the batch in flight
  std::string started_by;  // who asked for the run (a token's name); "" for the command line
  std::string robot;       // the identity the run acts as (audit log); "" = keyonce@host
  int audit_retention_days = 180;  // audit rows older than this are pruned (at most daily)
  // Intents gathered in memory before the journal spills the finished ones,
  // beside the next batch's writes (about 100 bytes each; two batches of
  // 10,000 records to two targets). Tests make it small.
  size_t spill_intents = 40000;
  // Called from the run's thread: once the run has its id, and after every
  // batch with the counts so far (summary.targets filled, status "running").
  std::function<void(int64_t run)> on_start;
  std::function<void(const RunSummary&)> on_progress;
};

struct TargetCounts {
  int64_t written = 0, updated = 0, unchanged = 0, failed = 0, in_doubt = 0, not_applicable = 0;
};

struct RunSummary {
  int64_t run = 0;
  std::string status;  // completed | completed_with_errors | failed | refused | interrupted |
                       // dry_run
  int64_t read = 0, rejected = 0, filtered = 0, quarantined = 0, in_doubt = 0;
  std::vector<std::pair<std::string, TargetCounts>> targets;
  double seconds = 0;
  int exit_code = kExitOk;
  std::string error;  // for failed runs
  std::string ToJson() const;
};

// Checks raw parameter values against the recipe's declarations and returns
// them typed. Messages name the parameter, never the value.
Result<Value> ResolveParams(const Recipe& recipe, const std::map<std::string, std::string>& raw);

// Reads the recipe's secrets from the environment or files; adds each value
// to *redactor.
Result<Value> ResolveSecrets(const Recipe& recipe, Redactor* redactor);

// Runs the recipe. Always returns a summary unless the run could not start:
// invalid parameters or missing secrets (kInvalid), the state store refused
// or the recipe running elsewhere (kRefused), the state store unusable.
Result<RunSummary> RunRecipe(const Recipe& recipe, const RunOptions& options);

// The parameters a retry of these quarantined records runs with: those of
// the run that read them, overridden by `overrides`. kInvalid when the
// records come from runs with different parameters (retry them apart:
// GroupRetries).
Result<std::map<std::string, std::string>> RetryParams(
    const std::vector<StateStore::QuarantineRow>& rows,
    const std::map<std::string, std::string>& overrides);
// Quarantined records grouped by the parameters their retry runs with, in
// the order of their first record.
std::vector<std::vector<int64_t>> GroupRetries(const std::vector<StateStore::QuarantineRow>& rows,
                                               const std::map<std::string, std::string>& overrides);

}  // namespace keyonce
