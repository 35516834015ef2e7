// The state store: one SQLite file holding runs, the per-record per-target
// journal, write batches, the quarantine and watermarks.
//
// The journal identifies a record by a keyed hash of its key (never the key
// itself) and a content hash. A write intent names the batch it belongs to;
// a batch is "done" once its target confirmed it durable. The effective state
// of a journal row is therefore read through its batch: see Entry.
//
// Thread-safety: one StateStore per thread; SQLite serialises writers across
// processes (busy timeout 30 s).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keyonce/status.h"
#include "state/privacy.h"

namespace keyonce {

class StateStore {
 public:
  // Opens or creates the store. read_only opens an existing file without
  // changing it (dry runs); a missing file then yields an empty store.
  static Result<std::unique_ptr<StateStore>> Open(const std::filesystem::path& path,
                                                  bool read_only = false);
  ~StateStore();

  // The default location: $KEYONCE_STATE, else ./keyonce-state.db.
  static std::filesystem::path DefaultPath();

  const std::string& pseudonym_key() const { return pseudonym_key_; }
  bool read_only() const { return read_only_; }

  Status Begin();
  Status Commit();
  Status Rollback();

  // --- runs ---
  struct RunRow {
    int64_t id = 0;
    std::string recipe, started_at, finished_at, status, params, counts, trigger;
    int exit_code = 0;
  };
  Result<int64_t> BeginRun(const std::string& recipe, const std::string& params_masked,
                           const std::string& trigger);
  Status FinishRun(int64_t run, const std::string& status, const std::string& counts_json,
                   int exit_code);
  Result<std::vector<RunRow>> ListRuns(const std::string& recipe, int limit);

  // --- journal ---
  Result<int64_t> TargetId(const std::string& recipe, const std::string& target);
  enum class BatchState { kPending, kDone, kRolledBack, kInDoubt };
  struct Entry {
    bool found = false;
    std::optional<Digest> written;  // content hash last confirmed written
    bool in_doubt = false;          // a write may or may not have happened
    bool pending = false;           // intent in a batch of this run, not yet confirmed
    std::optional<Digest> pending_hash;  // its content hash
    std::string captures;           // JSON object, "" if none
  };
  Result<Entry> Get(int64_t target, const Digest& key);
  Result<int64_t> NewBatch(int64_t target, int64_t run, const std::string& token_before);
  // Inserts an intent for a key the journal has never seen; false (and no
  // change) when the key has a row already.
  Result<bool> TryNewIntent(int64_t target, const Digest& key, const Digest& hash, int64_t batch,
                            int64_t run);
  Status PutIntent(int64_t target, const Digest& key, const Digest& hash, int64_t batch,
                   int64_t run);
  // The write did not happen (permanent failure): forget the intent.
  Status ClearIntent(int64_t target, const Digest& key);
  // Confirms a write directly (e.g. Check found it) with captured values.
  Status SetWritten(int64_t target, const Digest& key, const Digest& hash,
                    const std::string& captures, int64_t run);
  Status SetCaptures(int64_t target, const Digest& key, const std::string& captures);
  Status SetBatchState(int64_t batch, BatchState state, const std::string& token_after = "");
  struct Batch {
    int64_t id = 0;
    std::string token_before;
  };
  // Batches of a target still pending (from an interrupted run), oldest first.
  Result<std::vector<Batch>> PendingBatches(int64_t target);
  // Folds done batches into the rows (keeps lookups cheap); run at the end.
  Status Compact(int64_t target);

  // --- quarantine ---
  struct QuarantineRow {
    int64_t id = 0;
    std::string recipe, ref, stage, target, position, reason, record, status, created_at;
    int64_t run = 0;
  };
  Result<int64_t> AddQuarantine(const QuarantineRow& row);
  Result<std::vector<QuarantineRow>> ListQuarantine(const std::string& recipe,
                                                    const std::string& status, int limit);
  Result<QuarantineRow> GetQuarantine(int64_t id);
  Status SetQuarantineStatus(int64_t id, const std::string& status);

  // --- watermarks ---
  Result<std::optional<std::string>> Watermark(const std::string& recipe);
  Status SetWatermark(const std::string& recipe, const std::string& value, int64_t run);

  sqlite3* db() { return db_; }

 private:
  StateStore() = default;
  Status Exec(const char* sql);
  sqlite3_stmt* Prepare(const char* sql);
  Result<BatchState> StateOf(int64_t batch);
  Status Error(const char* what);

  sqlite3* db_ = nullptr;
  bool read_only_ = false;
  bool empty_ = false;
  std::string pseudonym_key_;
  std::map<std::string, sqlite3_stmt*> stmts_;
  std::map<int64_t, BatchState> batch_cache_;
};

const char* BatchStateName(StateStore::BatchState s);

}  // namespace keyonce
