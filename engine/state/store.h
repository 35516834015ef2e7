// The state store: one SQLite file holding runs, the per-record per-target
// journal, write batches, the quarantine and watermarks.
//
// The file knows itself: keyonce's application id and schema version in the
// SQLite header, and a random state id (meta) that targets keep in their
// checkpoints (TargetMark). Open refuses (Status::kRefused) anything that is
// not a whole keyonce state file rather than starting an empty journal in
// its place: a missing folder, an empty, foreign, damaged, cut short or
// incomplete file, or one made by a newer keyonce. A new file is only made
// when none is there, complete before it appears under its name (so two
// processes creating it at once agree on one). Files of the unversioned
// schema (keyonce 0.1) are upgraded in place.
//
// The journal's tables are kept by Journal (state/journal.h).
//
// Thread-safety: one StateStore per thread; SQLite serialises writers across
// processes (busy timeout 30 s).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "keyonce/status.h"
#include "state/privacy.h"

struct sqlite3;
struct sqlite3_stmt;

namespace keyonce {

// "KYO1" in the SQLite header's application id field.
inline constexpr int32_t kStateApplicationId = 0x4B594F31;
// The schema this keyonce writes (PRAGMA user_version). 1 was the
// unversioned schema of keyonce 0.1 (application id 0).
// 4 added journal_recent (rows a killed run merged there, which an older
// keyonce would not read).
inline constexpr int kStateSchemaVersion = 4;

class RecipeLock;
class StateSql;

class StateStore {
 public:
  // Opens the store, creating it if no file is at `path` and its folder
  // exists. read_only opens an existing file without changing it (dry runs,
  // listings); a missing file then yields an empty store. kRefused when the
  // file is not a whole keyonce state file (the message says what to do).
  static Result<std::unique_ptr<StateStore>> Open(const std::filesystem::path& path,
                                                  bool read_only = false);
  // Makes a new state file on purpose (`keyonce state init`): its folder
  // must exist, and nothing but an empty file may be at `path`.
  static Status Init(const std::filesystem::path& path);
  ~StateStore();

  const std::filesystem::path& path() const { return path_; }
  // The random id of this state file (hex), "" for an empty read-only store.
  const std::string& state_id() const { return state_id_; }

  // --- one run per recipe ---
  //
  // A recipe runs at most once at a time per state file, across processes
  // (command line runs, the service's runs): LockRecipe takes an advisory
  // lock (an open-file-description lock on the file "<state>.lock" beside
  // the state file, one byte per recipe) that the kernel releases when its
  // holder ends, even by kill -9, so a lock is never left behind and never
  // held twice. Who holds it (pid, host, since, who started it, run) is
  // kept in the table recipe_locks for the refusal message.
  struct LockHolder {
    int64_t pid = 0, run = 0;
    std::string host, since, started_by;
  };
  struct LockOptions {
    bool wait = false;                        // wait until the holder ends
    const std::atomic<bool>* stop = nullptr;  // stop waiting when set
    // Told once what it waits for, and about a lock taken over from a run that ended
    // without releasing it.
    std::function<void(const std::string&)> tell;
    std::string started_by;  // who asks ("" = the local user)
  };
  // kRefused naming the holder when another run holds the recipe (and wait
  // is false, or stop was set while waiting).
  Result<std::unique_ptr<RecipeLock>> LockRecipe(const std::string& recipe,
                                                 const LockOptions& options);
  // The holder recorded for `recipe`, if any (it may have ended since).
  Result<std::optional<LockHolder>> Holder(const std::string& recipe);

  // The default location: $KEYONCE_STATE, else ./keyonce-state.db.
  static std::filesystem::path DefaultPath();

  const std::string& pseudonym_key() const { return pseudonym_key_; }
  bool read_only() const { return read_only_; }

  // A transaction (BEGIN IMMEDIATE) that rolls back when it goes out of scope
  // without Commit: an early return can never leave one open. One at a time.
  class Transaction {
   public:
    Transaction(Transaction&& o) noexcept : store_(std::exchange(o.store_, nullptr)) {}
    Transaction(const Transaction&) = delete;
    Transaction& operator=(const Transaction&) = delete;
    Transaction& operator=(Transaction&&) = delete;
    ~Transaction();
    // Ends it; on failure it is rolled back.
    Status Commit();

   private:
    friend class StateStore;
    explicit Transaction(StateStore* store) : store_(store) {}
    StateStore* store_;
  };
  // durable=false: the commit does not wait for the disk. For transactions
  // whose loss in a power cut recovery repairs anyway (a batch's "done"
  // mark: the target is asked again).
  Result<Transaction> Transact(bool durable = true);

  // Told how each transaction ends: the journal (state/journal.h) stores
  // what it keeps in memory before a commit. RolledBack must not allocate
  // (it may run while an exception unwinds). One hook per store.
  class TransactionHook {
   public:
    virtual void Began() {}
    virtual Status BeforeCommit() = 0;
    virtual void Committed() = 0;
    virtual void RolledBack() = 0;

   protected:
    ~TransactionHook() = default;
  };
  void SetTransactionHook(TransactionHook* hook) { hook_ = hook; }

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
  // Marks run `run` failed with `reason` if it is still `running`: its
  // process died without finishing it (killed by the out-of-memory killer,
  // kill -9, a crash), so the history never shows it running forever.
  Status AbandonRun(int64_t run, const std::string& reason);
  // The same for every run of `recipe` still marked running: called by the
  // holder of the recipe's lock (LockRecipe), which no other run can hold,
  // so none of them is really running. Returns their ids.
  Result<std::vector<int64_t>> AbandonRunsOf(const std::string& recipe, const std::string& reason);

  // --- quarantine ---
  struct QuarantineRow {
    int64_t id = 0;
    std::string recipe, ref, stage, target, position, reason, record, status, created_at;
    int64_t run = 0;
    // The run's parameters as given (a JSON object of texts) and the names of
    // its secrets (a JSON array, never values): a retry runs with the same.
    // "" for records quarantined before keyonce kept them.
    std::string params, secrets;
  };
  Result<int64_t> AddQuarantine(const QuarantineRow& row);
  // recipe "" = all, status "" = any, run 0 = any run's.
  Result<std::vector<QuarantineRow>> ListQuarantine(const std::string& recipe,
                                                    const std::string& status, int limit,
                                                    int64_t run = 0);
  Result<QuarantineRow> GetQuarantine(int64_t id);
  Status SetQuarantineStatus(int64_t id, const std::string& status);
  // Replaces the stored record (a JSON object) after a person fixed its fields.
  Status SetQuarantineRecord(int64_t id, const std::string& record_json);

  // --- what `keyonce state check` reports ---
  struct Report {
    std::string state_id, created_at;
    int schema_version = 0;
    int64_t bytes = 0;
    std::string integrity;  // "ok", or what SQLite's integrity check found
    struct RecipeCounts {
      std::string recipe;
      int64_t runs = 0, journal = 0, pending_batches = 0, open_quarantine = 0;
      std::string last_run;                                  // "#12 completed 2026-..." or ""
      std::vector<std::pair<std::string, int64_t>> targets;  // name, journal rows
    };
    std::vector<RecipeCounts> recipes;
    int64_t audit_rows = 0;
  };
  Result<Report> Check();

  // --- watermarks ---
  Result<std::optional<std::string>> Watermark(const std::string& recipe);
  Status SetWatermark(const std::string& recipe, const std::string& value, int64_t run);

 private:
  friend class RecipeLock;
  // The state layer's own modules (audit, the service's tables) reach the
  // SQLite handle through StateSql (state/state_sql.h); nothing above
  // engine/state/ gets it.
  friend class StateSql;
  class StateSql;
  StateStore() = default;
  Status Begin(bool durable);
  Status Commit();
  Status Rollback();
  Status WriteHolder(const std::string& recipe, const std::string& token,
                     const std::string& started_by);
  Status SetHolderRun(const std::string& recipe, const std::string& token, int64_t run);
  void ForgetHolder(const std::string& recipe, const std::string& token);
  // Refuses what is not a whole keyonce state file; upgrades an older schema.
  Status Verify();
  Status Upgrade(int version);
  Status Exec(const char* sql);
  sqlite3_stmt* Prepare(const char* sql);
  std::string QuarantineColumns() const;
  Status Error(const char* what);

  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
  std::string state_id_;
  bool read_only_ = false;
  bool relaxed_ = false;  // synchronous=NORMAL for the open transaction
  bool empty_ = false;
  bool legacy_ = false;  // read-only, of an older schema (newer columns read as "")
  std::string pseudonym_key_;
  std::map<std::string, sqlite3_stmt*> stmts_;
  TransactionHook* hook_ = nullptr;
};

// A recipe held by this run (StateStore::LockRecipe); released when
// destroyed. Must not outlive the store that made it.
class RecipeLock {
 public:
  ~RecipeLock();
  RecipeLock(const RecipeLock&) = delete;
  RecipeLock& operator=(const RecipeLock&) = delete;
  // Records the run that holds it (for the message another run gets).
  Status SetRun(int64_t run);

 private:
  friend class StateStore;
  RecipeLock() = default;
  StateStore* store_ = nullptr;
  std::string recipe_, token_;
  int fd_ = -1;
};

}  // namespace keyonce
