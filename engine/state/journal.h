// The journal: what keyonce wrote to each target, and the protocol that
// writes every record exactly once in effect, across retries, crashes and
// reruns.
//
// The protocol, in the order a batch goes through it:
//   1. Lookup each record's key (a keyed hash) and content hash: what the
//      target already holds decides insert, update, unchanged or check.
//   2. NewBatch + Intend for every record that needs a write, committed (one
//      StateStore transaction) before the target is touched.
//   3. The target writes. A write that did not happen is forgotten (Forget);
//      one that may or may not have happened is marked in doubt
//      (MarkInDoubt), so no run writes it again before Check or a person
//      decides.
//   4. ConfirmBatch once the target made the batch durable.
// A crash between 2 and 4 leaves batches pending; the next run asks the
// target which of them arrived (Target::Recover) and Settles each one as done,
// rolled back or in doubt. Merge folds finished batches into the journal.
//
// Storage, for speed: the journal proper is one row per target and key
// (table `journal`); the intents of a batch are one blob in its row of
// `batches` (32 bytes a record: key and content hash), kept in memory until
// the transaction commits; values captured from a target's reply wait in
// `intent_captures`. Merge visits the journal in key order, so each of its
// pages is written once per merge. A Bloom filter per target spares the
// lookups of keys it has never seen.
// Keys are keyed hashes, so a merge of many intents touches nearly every page
// of the journal: a long run merging into it every 100,000 intents would
// rewrite it whole each time and slow down as it grows. So a run's periodic
// merge (Spill) appends its intents, sorted, as a new run of rows to
// `journal_recent` (sequential pages, in proportion to what it merges), with a
// Bloom filter of its own; Lookup reads the journal and then the recent runs,
// oldest first, each row on top of what came before (the rule of Fold). Merge
// folds every recent run into the journal in key order, in one pass; Spill
// does when there are 16 recent runs holding as many rows as the journal, or
// 32 in all (so a run rewrites the journal O(log n) times, and a run's end
// does not). Recent runs stay between runs; a killed run leaves finished
// batches too, which the next run's first Spill takes. A direct write
// (MarkInDoubt, ConfirmWrite, SetCaptures without an intent) first folds the
// key's recent rows into the journal, takes this run's unmerged intents of the
// key out of their batches into the row it writes (Supersede: a later merge of
// those batches must not undo a doubt or a confirmed write), then changes the
// journal's row.
//
// Transactions: a StateStore transaction that commits stores the intents
// made since the last one. One that rolls back after the journal changed
// leaves the journal refusing further work (kInternal): the run stops, and
// the next run recovers from what was committed.
//
// Thread-safety: as the StateStore it belongs to.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "keyonce/status.h"
#include "state/privacy.h"
#include "state/store.h"

namespace keyonce {

class Journal final : private StateStore::TransactionHook {
 public:
  // The journal of `store`, which must outlive it. One per store.
  explicit Journal(StateStore& store);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  enum class BatchState { kPending = 0, kDone = 1, kRolledBack = 2, kInDoubt = 3 };

  // The id of a recipe's target (registered on first use; -1 in a read-only
  // store that never saw it).
  Result<int64_t> TargetId(const std::string& recipe, const std::string& target);
  // The newest batch this journal started for `target` (0: it never wrote to it).
  Result<int64_t> LastBatch(int64_t target);

  // --- 1. what the target holds ---
  struct Entry {
    bool found = false;
    std::optional<Digest> written;       // content hash last confirmed written
    bool in_doubt = false;               // a write may or may not have happened
    bool pending = false;                // intent in a batch of this run, not yet confirmed
    std::optional<Digest> pending_hash;  // its content hash
    std::string captures;                // JSON object, "" if none
  };
  Result<Entry> Lookup(int64_t target, const Digest& key);

  // --- 2. intents ---
  Result<int64_t> NewBatch(int64_t target, int64_t run, const std::string& token_before);
  // The intent to write `key` with content `hash` in `batch` (stored when
  // the transaction commits).
  Status Intend(int64_t target, const Digest& key, const Digest& hash, int64_t batch);

  // --- 3. after the write ---
  // The write did not happen (permanent failure): forget this run's intent.
  Status Forget(int64_t target, const Digest& key);
  // The write may or may not have happened and the target cannot tell now:
  // forgets the intent and marks the key in doubt.
  Status MarkInDoubt(int64_t target, const Digest& key, int64_t run);
  // Values captured from the reply to this run's write of `key`.
  Status SetCaptures(int64_t target, const Digest& key, const std::string& captures);
  // A write confirmed directly (a check found it there), with its captures.
  Status ConfirmWrite(int64_t target, const Digest& key, const Digest& hash,
                      const std::string& captures, int64_t run);

  // --- 4. the batch ---
  // The target made `batch` durable; token_after: its state after it.
  Status ConfirmBatch(int64_t batch, const std::string& token_after) {
    return Settle(batch, BatchState::kDone, token_after);
  }
  // The fate of a batch (after a crash: what the target says arrived).
  Status Settle(int64_t batch, BatchState state, const std::string& token_after = "");

  // --- recovery ---
  struct Batch {
    int64_t id = 0;
    std::string token_before;
  };
  // Batches of a target still pending (from an interrupted run), oldest first.
  Result<std::vector<Batch>> PendingBatches(int64_t target);

  // Folds the intents of finished batches, and every recent run, into the
  // journal (own transaction).
  Status Merge();
  // A run's periodic merge: appends the intents of finished batches as a new
  // recent run (own transaction), or Merges when the recent runs have grown
  // as large as the journal.
  Status Spill();
  // Loads the Bloom filter of `target`'s journaled keys (once per run, after
  // the start-up Merge).
  Status LoadFilter(int64_t target);
  // Intents of this run not yet merged.
  size_t pending_intents() const { return rows_; }
  // Those of them in batches already settled (what a Spill would move).
  size_t finished_intents() const;

  // Moves the intents of a state file of schema version 2 or older (table
  // `intents`, a row each) into their batches (inside the caller's transaction).
  static Status UpgradeIntents(StateStore& store);

 private:
  void Began() override;
  Status BeforeCommit() override;
  void Committed() override {
    changed_ = false;
    skip_journal_ = false;
  }
  void RolledBack() override;
  Status Usable() const;
  Result<BatchState> StateOf(int64_t batch);
  Status Error(const char* what);
  Status Prepare();

  // Where one of this run's intents is: its batch's slot in open_, its row there.
  struct Ref {
    static constexpr uint32_t kNone = UINT32_MAX;      // an empty index slot; a merged batch
    static constexpr uint32_t kGone = UINT32_MAX - 1;  // an index slot whose intent was forgotten
    uint32_t slot = kNone;
    uint32_t row = 0;
    bool live() const { return slot < kGone; }
    uint64_t packed() const { return uint64_t{slot} << 32 | row; }
  };
  // A batch of this run whose intents are not merged yet.
  struct OpenBatch {
    struct Row {
      Digest key, hash;
      bool forgotten = false;
    };
    int64_t id = 0, target = 0;
    std::vector<Row> rows;
    bool dirty = false;  // changed since last stored
  };
  // The intent a later one of the same key replaced (one level is all a
  // rollback needs); ref.slot is kNone once its batch was merged.
  struct Earlier {
    Ref ref;
    Digest hash;
  };
  const OpenBatch::Row& RowOf(Ref r) const { return open_[r.slot].rows[r.row]; }
  Ref* FindIntent(int64_t target, const Digest& key);
  void IndexIntent(int64_t target, const Digest& key, Ref ref);
  void Reindex(size_t live);
  Status DropMerged();
  class Bloom;

  // A journal row, as stored and as a change on top of an older one (Fold).
  struct Row {
    int64_t target = 0;
    Digest key{};
    std::optional<Digest> written;        // none: keeps the older row's
    bool doubt = false;
    std::optional<std::string> captures;  // none: keeps the older row's
    int64_t run = 0, updated_at = 0;
  };
  // The newer row on top of the older: its hash and captures where it has
  // them, its doubt, run and time.
  static void Fold(Row& older, Row&& newer);
  class RowWriter;
  Status MergeFinished(bool fold);
  Status FoldRecent();
  Status FoldKey(int64_t target, const Digest& key);
  Result<bool> FoldRecentRows(int64_t target, const Digest& key, Row* row, bool found, bool remove);
  Status Supersede(int64_t target, const Digest& key, Row* row);
  Status DropCaptures(const OpenBatch& b, Ref ref, std::optional<std::string>* keep);
  Status LoadRecent();
  // Reads the row `s` (already bound) finds into *row; false if none.
  Result<bool> ReadRow(sqlite3_stmt* s, Row* row);
  // A run of rows in `journal_recent` (its `merge` number); keys: a filter of
  // its keys, none for a run an earlier process left (always read).
  struct Recent {
    int64_t merge = 0;
    std::unique_ptr<Bloom> keys;
    size_t rows = 0;
  };
  std::vector<Recent> recent_;
  bool recent_loaded_ = false;
  size_t recent_rows_ = 0;   // rows of recent_
  size_t journal_rows_ = 0;  // rows of the journal the filters were loaded from, and merged since
  // Targets with no row in the journal when their filters loaded (their rows
  // are all in recent runs): a Lookup inside a transaction skips the journal
  // for them, unless another connection changed the file since (data_version).
  // Emptied when this journal writes to the journal.
  std::unordered_set<int64_t> journal_empty_;
  int64_t data_version_ = 0;
  bool skip_journal_ = false;  // in a transaction begun with data_version_ unchanged
  Result<int64_t> DataVersion();

  StateStore& store_;
  sqlite3* db_;
  std::map<const char*, sqlite3_stmt*> stmts_;
  sqlite3_stmt* Stmt(const char* sql);
  // This run's intents not merged yet: the rows of their batches, and the
  // newest intent of each target and key found by an open-addressing index
  // (8 bytes an entry) over them. What a few intents have (an earlier intent,
  // captures) is kept beside, by Ref::packed().
  std::vector<OpenBatch> open_;
  std::unordered_map<int64_t, uint32_t> slot_of_;  // batch id → slot in open_
  std::vector<Ref> index_;
  size_t live_ = 0, used_ = 0;  // index entries; entries and forgotten ones
  size_t rows_ = 0;             // rows of open_
  std::unordered_map<uint64_t, Earlier> earlier_;
  std::unordered_map<uint64_t, std::string> captures_;
  std::map<int64_t, std::unique_ptr<Bloom>> filters_;
  std::map<int64_t, BatchState> batch_cache_;
  bool changed_ = false;  // since the last commit
  bool broken_ = false;   // a transaction that changed it rolled back
};

const char* BatchStateName(Journal::BatchState s);

}  // namespace keyonce
