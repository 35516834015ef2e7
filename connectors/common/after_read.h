// What a file source does with its file once every record of it is safe
// (Source::Acknowledge with end = true: every target committed the records
// or they are in quarantine): leave it (the default), move it into a folder
// (`move_to`), or remove it (`remove_after`). Declared once for the file
// sources (csv, jsonl, json, xml, xlsx), local and on a file drop.
//
// Nothing lost, nothing twice: the file is moved or removed only after the
// run's journal and quarantine hold every record, and only when the run read
// it to its end. A crash before or during the move leaves the file where it
// was; the next run reads it again, the journal writes nothing twice, and
// then moves it. A failed move is a warning: the run's records are safe.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "keyonce/connector.h"

namespace keyonce::connectors {

// move_to and remove_after, for a file source's settings.
std::vector<FieldSpec> AfterReadFields(bool remote);

struct AfterRead {
  enum class Kind { kKeep, kMove, kRemove };
  Kind kind = Kind::kKeep;
  std::string folder;  // kMove: move_to as rendered (a local folder is resolved)
};

// Whether the settings take the file away after the run (move_to or
// remove_after set).
bool HasAfterRead(const Settings& settings);

// For make_source: move_to and remove_after together are refused.
Status CheckAfterRead(const Settings& settings);

// The settings rendered against a run's scope. A local folder is resolved
// against the recipe's folder like `path`; for a file on a server
// (`remote`) it is kept as written.
Result<AfterRead> ReadAfterRead(const Settings& settings, const Scope& scope, bool remote);

// The name the file gets in the folder at the `attempt`-th try: its own
// (0), then its stem, the run's id and its extension (export.<run id>.csv),
// then export.<run id>-2.csv ..., so that nothing moved there before is
// replaced.
std::string MovedName(const std::string& name, const std::string& run_id, int attempt);
constexpr int kMoveAttempts = 100;

// Moves or removes the local file `path` as `after` says (after a run's
// end). Errors name the file and the folder.
Status ApplyAfterRead(const AfterRead& after, const std::filesystem::path& path,
                      const std::string& run_id);

// A local file source that does what `settings` say with its file when the
// run acknowledges every item; `inner` (a made source, or why it could not
// be made) reads the file. Checks the settings (CheckAfterRead); no I/O.
Result<std::unique_ptr<Source>> WithAfterRead(const Settings& settings,
                                              Result<std::unique_ptr<Source>> inner);

// For a local file source's connector: adds move_to and remove_after to
// `spec` and makes `make_source` give WithAfterRead of what it made.
void AddAfterRead(ComponentSpec& spec,
                  std::function<Result<std::unique_ptr<Source>>(const Settings&)>& make_source);

}  // namespace keyonce::connectors
