#include "state/journal.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <deque>
#include <tuple>

#include "state/sqlite_util.h"
#include "state/state_sql.h"

namespace keyonce {
namespace {

constexpr size_t kIntentBytes = 32;  // key and content hash

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool ColDigest(sqlite3_stmt* s, int i, Digest* d) {
  if (sqlite3_column_type(s, i) != SQLITE_BLOB) return false;
  if (sqlite3_column_bytes(s, i) != static_cast<int>(d->size())) return false;
  std::memcpy(d->data(), sqlite3_column_blob(s, i), d->size());
  return true;
}

// Binds and steps a cached statement; resets it when the scope ends.
struct Use {
  sqlite3_stmt* s;
  explicit Use(sqlite3_stmt* st) : s(st) {}
  ~Use() {
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
  }
  void Text(int i, const std::string& v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void Int(int i, int64_t v) { sqlite3_bind_int64(s, i, v); }
  void Blob(int i, const void* p, size_t n) {
    sqlite3_bind_blob(s, i, p, static_cast<int>(n), SQLITE_STATIC);
  }
  void Digest16(int i, const Digest& d) { Blob(i, d.data(), d.size()); }
  void Null(int i) { sqlite3_bind_null(s, i); }
  int Step() { return sqlite3_step(s); }
};

// Rows written with one statement (1 or kWriteRows): many rows share a
// statement's cost (its savepoint, its halt). Into the journal an upsert, each
// row on top of the journal's (the rule of Journal::Fold); into a recent run a
// plain insert (its keys are new to it).
constexpr int kWriteRows = 64;
const char* WriteSql(bool recent, int rows) {
  auto make = [](bool recent, int n) {
    std::string sql = recent ? "INSERT INTO journal_recent(merge, target, key, written, doubt, "
                               "captures, run, updated_at) VALUES"
                             : "INSERT INTO journal(target, key, written, doubt, captures, run, "
                               "updated_at) VALUES";
    for (int i = 0; i < n; ++i) {
      if (i) sql += ',';
      sql += recent ? "(?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?)";
    }
    if (recent) return sql;
    return sql +
           " ON CONFLICT(target, key) DO UPDATE SET "
           "written = COALESCE(excluded.written, journal.written), doubt = excluded.doubt, "
           "captures = COALESCE(excluded.captures, journal.captures), "
           "run = excluded.run, updated_at = excluded.updated_at";
  };
  static const std::string sql[4] = {make(false, 1), make(false, kWriteRows), make(true, 1),
                                     make(true, kWriteRows)};
  return sql[(recent ? 2 : 0) + (rows == 1 ? 0 : 1)].c_str();
}

// The columns Journal::ReadRow reads, in its order.
#define KEYONCE_JOURNAL_COLUMNS "target, key, written, doubt, captures, run, updated_at"

// A recent run at most this many: a Lookup of a key the journal knows reads
// the filter of each. Below kFoldRuns they are not folded into the journal
// (a fold rewrites it), however large they are.
constexpr size_t kMaxRecentRuns = 32;
constexpr size_t kFoldRuns = 16;

}  // namespace

const char* BatchStateName(Journal::BatchState s) {
  switch (s) {
    case Journal::BatchState::kPending:
      return "pending";
    case Journal::BatchState::kDone:
      return "done";
    case Journal::BatchState::kRolledBack:
      return "rolled back";
    case Journal::BatchState::kInDoubt:
      return "in doubt";
  }
  return "?";
}

// Seven probes from the digest's two halves (double hashing); the digest is
// already a keyed hash, so its bits are well spread.
class Journal::Bloom {
 public:
  // At least `bits` bits, a power of two (a bit's place is a mask, not a division).
  explicit Bloom(size_t bits) : bits_(std::bit_ceil(std::max<size_t>(bits, 64)) / 64, 0) {}
  void Add(const Digest& d) {
    Probe(d, [&](uint64_t bit) {
      bits_[bit / 64] |= uint64_t{1} << (bit % 64);
      return true;
    });
  }
  bool MayContain(const Digest& d) const {
    return Probe(d, [&](uint64_t bit) { return (bits_[bit / 64] >> (bit % 64)) & 1; });
  }

 private:
  template <typename F>
  bool Probe(const Digest& d, F&& visit) const {
    uint64_t h1, h2;
    std::memcpy(&h1, d.data(), 8);
    std::memcpy(&h2, d.data() + 8, 8);
    const uint64_t mask = bits_.size() * 64 - 1;
    for (int i = 0; i < 7; ++i) {
      if (!visit((h1 + static_cast<uint64_t>(i) * h2) & mask)) return false;
    }
    return true;
  }
  std::vector<uint64_t> bits_;
};

Journal::Journal(StateStore& store) : store_(store), db_(StateSql::Of(store)) {
  store_.SetTransactionHook(this);
}

Journal::~Journal() {
  store_.SetTransactionHook(nullptr);
  for (auto& [_, s] : stmts_) sqlite3_finalize(s);
}

sqlite3_stmt* Journal::Stmt(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
    sqlite3_finalize(s);
    return nullptr;
  }
  stmts_[sql] = s;
  return s;
}

Status Journal::Error(const char* what) {
  return StateFileError(db_, what, store_.path().string());
}

Status Journal::Usable() const {
  if (!broken_) return Status::OK();
  return Status::Internal(
      "the journal's last transaction was rolled back, so this run stops here; the next run "
      "recovers from what the journal committed");
}

// Run with every statement below: a statement that failed to prepare says so.
#define KEYONCE_STMT(var, sql)                                    \
  sqlite3_stmt* var##_stmt = Stmt(sql);                           \
  if (!var##_stmt) return Error("preparing a journal statement"); \
  Use var(var##_stmt)

Result<int64_t> Journal::TargetId(const std::string& recipe, const std::string& target) {
  if (!store_.read_only()) {
    // INSERT OR IGNORE first: two processes registering the same target at
    // once both end up with the one row.
    KEYONCE_STMT(ins, "INSERT OR IGNORE INTO targets(recipe, name) VALUES(?, ?)");
    ins.Text(1, recipe);
    ins.Text(2, target);
    if (ins.Step() != SQLITE_DONE) return Error("registering target");
  }
  if (store_.state_id().empty()) return int64_t{-1};  // an empty read-only store
  KEYONCE_STMT(s, "SELECT id FROM targets WHERE recipe=? AND name=?");
  s.Text(1, recipe);
  s.Text(2, target);
  if (s.Step() == SQLITE_ROW) return sqlite3_column_int64(s.s, 0);
  if (store_.read_only()) return int64_t{-1};
  return Error("registering target");
}

Result<int64_t> Journal::LastBatch(int64_t target) {
  if (target < 0) return int64_t{0};
  KEYONCE_STMT(s, "SELECT IFNULL(MAX(id), 0) FROM batches WHERE target=?");
  s.Int(1, target);
  if (s.Step() != SQLITE_ROW) return Error("reading the journal's batches");
  return static_cast<int64_t>(sqlite3_column_int64(s.s, 0));
}

Result<Journal::BatchState> Journal::StateOf(int64_t batch) {
  auto it = batch_cache_.find(batch);
  if (it != batch_cache_.end()) return it->second;
  KEYONCE_STMT(s, "SELECT state FROM batches WHERE id=?");
  s.Int(1, batch);
  if (s.Step() != SQLITE_ROW) return BatchState::kRolledBack;
  auto st = static_cast<BatchState>(sqlite3_column_int(s.s, 0));
  if (st != BatchState::kPending) batch_cache_[batch] = st;
  return st;
}

size_t Journal::finished_intents() const {
  size_t n = 0;
  for (const OpenBatch& b : open_) {
    if (batch_cache_.count(b.id)) n += b.rows.size();  // only settled batches are cached
  }
  return n;
}

Result<Journal::Entry> Journal::Lookup(int64_t target, const Digest& key) {
  Entry e;
  if (target < 0) return e;
  // This run's own intents first: they are newer than the journal.
  if (const Ref* in = FindIntent(target, key)) {
    auto st = StateOf(open_[in->slot].id);
    if (!st.ok()) return st.status();
    e.found = true;
    if (auto c = captures_.find(in->packed()); c != captures_.end()) e.captures = c->second;
    if (*st == BatchState::kPending) {
      e.pending = true;
      e.pending_hash = RowOf(*in).hash;
      // What was written before this intent, if anything, still counts.
      if (auto er = earlier_.find(in->packed()); er != earlier_.end()) e.written = er->second.hash;
      return e;
    }
    if (*st == BatchState::kDone) {
      e.written = RowOf(*in).hash;
      return e;
    }
  }
  if (auto f = filters_.find(target); f != filters_.end() && !f->second->MayContain(key)) return e;
  KEYONCE_RETURN_IF_ERROR(LoadRecent());
  Row row;
  if (!skip_journal_ || !journal_empty_.count(target)) {
    KEYONCE_STMT(s, "SELECT " KEYONCE_JOURNAL_COLUMNS " FROM journal WHERE target=? AND key=?");
    s.Int(1, target);
    s.Digest16(2, key);
    auto found = ReadRow(s.s, &row);
    if (!found.ok()) return found.status();
    e.found = *found;
  }
  auto found = FoldRecentRows(target, key, &row, e.found, /*remove=*/false);
  if (!found.ok()) return found.status();
  e.found = *found;
  if (!e.found) return e;
  e.written = row.written;
  e.in_doubt = row.doubt;
  if (row.captures) e.captures = std::move(*row.captures);
  return e;
}

void Journal::Fold(Row& older, Row&& newer) {
  if (newer.written) older.written = newer.written;
  older.doubt = newer.doubt;
  if (newer.captures) older.captures = std::move(newer.captures);
  older.run = newer.run;
  older.updated_at = newer.updated_at;
}

Result<bool> Journal::ReadRow(sqlite3_stmt* s, Row* row) {
  const int rc = sqlite3_step(s);
  if (rc == SQLITE_DONE) return false;
  if (rc != SQLITE_ROW) return Error("reading the journal");
  row->target = sqlite3_column_int64(s, 0);
  if (!ColDigest(s, 1, &row->key)) return Error("reading the journal (a key that is no digest)");
  Digest d{};
  row->written.reset();
  if (ColDigest(s, 2, &d)) row->written = d;
  row->doubt = sqlite3_column_int(s, 3) != 0;
  row->captures.reset();
  if (sqlite3_column_type(s, 4) != SQLITE_NULL) row->captures = ColText(s, 4);
  row->run = sqlite3_column_int64(s, 5);
  row->updated_at = sqlite3_column_int64(s, 6);
  return true;
}

// The runs of rows an earlier process left in `journal_recent` (none in a
// state file older than the table: a read-only one not upgraded).
Status Journal::LoadRecent() {
  if (recent_loaded_) return Status::OK();
  KEYONCE_STMT(t, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='journal_recent'");
  if (t.Step() != SQLITE_ROW) return Error("reading the journal");
  if (sqlite3_column_int(t.s, 0) > 0) {
    KEYONCE_STMT(s, "SELECT merge, count(*) FROM journal_recent GROUP BY merge ORDER BY merge");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      const auto rows = static_cast<size_t>(sqlite3_column_int64(s.s, 1));
      recent_.push_back({sqlite3_column_int64(s.s, 0),
                         std::make_unique<Bloom>(std::max<size_t>(rows * 10, 1024)), rows});
      recent_rows_ += rows;
    }
    if (rc != SQLITE_DONE) return Error("reading the journal");
    // Each run's filter, as its Spill made it.
    KEYONCE_STMT(k, "SELECT merge, key FROM journal_recent ORDER BY merge");
    size_t at = 0;
    while ((rc = k.Step()) == SQLITE_ROW) {
      const int64_t merge = sqlite3_column_int64(k.s, 0);
      while (at < recent_.size() && recent_[at].merge < merge) ++at;
      Digest d{};
      if (at < recent_.size() && recent_[at].merge == merge && ColDigest(k.s, 1, &d)) {
        recent_[at].keys->Add(d);
      }
    }
    if (rc != SQLITE_DONE) return Error("reading the journal");
  }
  recent_loaded_ = true;
  return Status::OK();
}

// Writes journal rows, kWriteRows a statement: into the journal (merge 0),
// each row on top of the journal's, or as the rows of a new recent run.
class Journal::RowWriter {
 public:
  RowWriter(Journal& journal, int64_t merge) : j_(journal), merge_(merge) {
    rows_.reserve(kWriteRows);
  }
  Status Add(Row&& row) {
    rows_.push_back(std::move(row));
    return rows_.size() == kWriteRows ? Flush() : Status::OK();
  }
  Status Flush() {
    const bool recent = merge_ != 0;
    if (!recent && !rows_.empty()) j_.journal_empty_.clear();
    const int columns = recent ? 8 : 7;
    for (size_t i = 0; i < rows_.size();) {
      const int n = rows_.size() - i >= kWriteRows ? kWriteRows : 1;
      sqlite3_stmt* stmt = j_.Stmt(WriteSql(recent, n));
      if (!stmt) return j_.Error("preparing a journal statement");
      Use s(stmt);
      for (int k = 0; k < n; ++k) {
        const Row& r = rows_[i + k];
        int at = k * columns;
        if (recent) s.Int(++at, merge_);
        s.Int(at + 1, r.target);
        s.Digest16(at + 2, r.key);
        if (r.written) {
          s.Digest16(at + 3, *r.written);
        } else {
          s.Null(at + 3);
        }
        s.Int(at + 4, r.doubt ? 1 : 0);
        if (r.captures) {
          s.Text(at + 5, *r.captures);
        } else {
          s.Null(at + 5);
        }
        s.Int(at + 6, r.run);
        s.Int(at + 7, r.updated_at);
      }
      if (s.Step() != SQLITE_DONE) return j_.Error("merging the journal");
      i += n;
    }
    rows_.clear();
    return Status::OK();
  }

 private:
  Journal& j_;
  const int64_t merge_;
  std::vector<Row> rows_;
};

// Folds the rows of `key` in the recent runs, oldest first, onto *row
// (`found`: it holds a row already); with `remove`, deletes them. True if
// *row holds a row after.
Result<bool> Journal::FoldRecentRows(int64_t target, const Digest& key, Row* row, bool found,
                                     bool remove) {
  for (const Recent& run : recent_) {
    if (run.keys && !run.keys->MayContain(key)) continue;
    Row newer;
    {
      KEYONCE_STMT(s, "SELECT " KEYONCE_JOURNAL_COLUMNS
                      " FROM journal_recent WHERE merge=? AND target=? AND key=?");
      s.Int(1, run.merge);
      s.Int(2, target);
      s.Digest16(3, key);
      auto got = ReadRow(s.s, &newer);
      if (!got.ok()) return got.status();
      if (!*got) continue;
    }
    if (remove) {
      KEYONCE_STMT(d, "DELETE FROM journal_recent WHERE merge=? AND target=? AND key=?");
      d.Int(1, run.merge);
      d.Int(2, target);
      d.Digest16(3, key);
      if (d.Step() != SQLITE_DONE) return Error("merging the journal");
    }
    if (found) {
      Fold(*row, std::move(newer));
    } else {
      *row = std::move(newer);
    }
    found = true;
  }
  return found;
}

// Folds the recent rows of one key into the journal (before a direct write).
Status Journal::FoldKey(int64_t target, const Digest& key) {
  KEYONCE_RETURN_IF_ERROR(LoadRecent());
  Row row;
  auto found = FoldRecentRows(target, key, &row, false, /*remove=*/true);
  if (!found.ok()) return found.status();
  if (!*found) return Status::OK();
  RowWriter w(*this, 0);
  KEYONCE_RETURN_IF_ERROR(w.Add(std::move(row)));
  return w.Flush();
}

Result<int64_t> Journal::NewBatch(int64_t target, int64_t run, const std::string& token_before) {
  KEYONCE_RETURN_IF_ERROR(Usable());
  KEYONCE_STMT(s,
               "INSERT INTO batches(target, run, state, token_before, created_at) "
               "VALUES(?, ?, 0, ?, ?)");
  s.Int(1, target);
  s.Int(2, run);
  s.Text(3, token_before);
  s.Int(4, NowUnix());
  if (s.Step() != SQLITE_DONE) return Error("starting a batch");
  const int64_t id = sqlite3_last_insert_rowid(db_);
  slot_of_[id] = static_cast<uint32_t>(open_.size());
  open_.push_back({id, target, {}, false});
  changed_ = true;
  return id;
}

Status Journal::Intend(int64_t target, const Digest& key, const Digest& hash, int64_t batch) {
  KEYONCE_RETURN_IF_ERROR(Usable());
  auto slot = slot_of_.find(batch);
  if (slot == slot_of_.end() || open_[slot->second].target != target) {
    return Status::Internal("an intent for a batch this run did not start");
  }
  OpenBatch& b = open_[slot->second];
  const Ref ref{slot->second, static_cast<uint32_t>(b.rows.size())};
  b.rows.push_back({key, hash, false});
  b.dirty = true;
  ++rows_;
  changed_ = true;
  if (Ref* at = FindIntent(target, key)) {
    earlier_.erase(at->packed());  // one level is all a rollback needs
    earlier_[ref.packed()] = {*at, RowOf(*at).hash};
    *at = ref;
  } else {
    IndexIntent(target, key, ref);
  }
  return Status::OK();
}

Status Journal::Forget(int64_t target, const Digest& key) {
  KEYONCE_RETURN_IF_ERROR(Usable());
  Ref* at = FindIntent(target, key);
  if (!at) return Status::OK();
  OpenBatch& b = open_[at->slot];
  b.rows[at->row].forgotten = true;
  b.dirty = true;
  KEYONCE_RETURN_IF_ERROR(DropCaptures(b, *at, nullptr));
  changed_ = true;
  auto er = earlier_.find(at->packed());
  // An earlier intent whose batch is merged is in the journal proper.
  const Ref back = er != earlier_.end() ? er->second.ref : Ref{};
  if (er != earlier_.end()) earlier_.erase(er);
  if (back.live()) {
    *at = back;
  } else {
    at->slot = Ref::kGone;
    --live_;
  }
  return Status::OK();
}

// Drops what a reply captured for the intent at `ref` of batch `b`, into
// *keep if given.
Status Journal::DropCaptures(const OpenBatch& b, Ref ref, std::optional<std::string>* keep) {
  auto c = captures_.find(ref.packed());
  if (c == captures_.end()) return Status::OK();
  KEYONCE_STMT(s, "DELETE FROM intent_captures WHERE batch=? AND key=?");
  s.Int(1, b.id);
  s.Digest16(2, b.rows[ref.row].key);
  if (s.Step() != SQLITE_DONE) return Error("clearing a write intent");
  if (keep) *keep = std::move(c->second);
  captures_.erase(c);
  return Status::OK();
}

// A direct write of `key` replaces what this run's intents of it say, so a
// merge of their batches must not apply them after it (a doubt would be lost,
// a confirmed write undone). Their rows leave their batches (stored again at
// the commit, with the direct write), and what they said goes into *row:
// the newest write that happened (a done batch), with its captures; a batch
// in doubt or pending makes it a doubt. Rare: only when the key has an intent
// of this run in memory, and only this target's batches are visited.
Status Journal::Supersede(int64_t target, const Digest& key, Row* row) {
  Ref* at = FindIntent(target, key);
  if (!at) return Status::OK();
  for (uint32_t slot = 0; slot < open_.size(); ++slot) {
    OpenBatch& b = open_[slot];
    if (b.target != target) continue;
    std::optional<BatchState> state;
    for (uint32_t i = 0; i < b.rows.size(); ++i) {
      OpenBatch::Row& r = b.rows[i];
      if (r.forgotten || r.key != key) continue;
      if (!state) {
        auto st = StateOf(b.id);
        if (!st.ok()) return st.status();
        state = *st;
      }
      const Ref ref{slot, i};
      if (*state == BatchState::kDone) {
        row->written = r.hash;
        row->doubt = false;
      } else if (*state != BatchState::kRolledBack) {
        row->doubt = true;
      }
      KEYONCE_RETURN_IF_ERROR(
          DropCaptures(b, ref, *state == BatchState::kDone ? &row->captures : nullptr));
      earlier_.erase(ref.packed());
      r.forgotten = true;
      b.dirty = true;
    }
  }
  at->slot = Ref::kGone;
  --live_;
  changed_ = true;
  return Status::OK();
}

Status Journal::MarkInDoubt(int64_t target, const Digest& key, int64_t run) {
  KEYONCE_RETURN_IF_ERROR(Forget(target, key));
  KEYONCE_RETURN_IF_ERROR(LoadRecent());
  // One row on top of the journal's: the key's recent rows (taken out of
  // their runs), an earlier write of this run not merged yet (it still
  // counts), then the doubt.
  Row row;
  auto recent = FoldRecentRows(target, key, &row, false, /*remove=*/true);
  if (!recent.ok()) return recent.status();
  KEYONCE_RETURN_IF_ERROR(Supersede(target, key, &row));
  row.target = target;
  row.key = key;
  row.doubt = true;
  row.run = run;
  row.updated_at = NowUnix();
  RowWriter w(*this, 0);
  KEYONCE_RETURN_IF_ERROR(w.Add(std::move(row)));
  KEYONCE_RETURN_IF_ERROR(w.Flush());
  if (auto f = filters_.find(target); f != filters_.end()) f->second->Add(key);
  return Status::OK();
}

Status Journal::ConfirmWrite(int64_t target, const Digest& key, const Digest& hash,
                             const std::string& captures, int64_t run) {
  KEYONCE_RETURN_IF_ERROR(Usable());
  KEYONCE_RETURN_IF_ERROR(FoldKey(target, key));
  Row earlier;  // what this confirmation replaces
  KEYONCE_RETURN_IF_ERROR(Supersede(target, key, &earlier));
  KEYONCE_STMT(s,
               "INSERT INTO journal(target, key, written, captures, run, updated_at) "
               "VALUES(?1,?2,?3,?4,?5,?6) "
               "ON CONFLICT(target, key) DO UPDATE SET written=excluded.written, doubt=0, "
               "captures=excluded.captures, run=excluded.run, updated_at=excluded.updated_at");
  s.Int(1, target);
  s.Digest16(2, key);
  s.Digest16(3, hash);
  if (captures.empty()) {
    s.Null(4);
  } else {
    s.Text(4, captures);
  }
  s.Int(5, run);
  s.Int(6, NowUnix());
  if (s.Step() != SQLITE_DONE) return Error("journaling a confirmed write");
  // A later record of this run with the same key must find it.
  if (auto f = filters_.find(target); f != filters_.end()) f->second->Add(key);
  return Status::OK();
}

Status Journal::SetCaptures(int64_t target, const Digest& key, const std::string& captures) {
  KEYONCE_RETURN_IF_ERROR(Usable());
  const Ref* at = FindIntent(target, key);
  if (!at) {
    KEYONCE_RETURN_IF_ERROR(FoldKey(target, key));
    KEYONCE_STMT(s, "UPDATE journal SET captures=? WHERE target=? AND key=?");
    s.Text(1, captures);
    s.Int(2, target);
    s.Digest16(3, key);
    if (s.Step() != SQLITE_DONE) return Error("journaling captured values");
    return Status::OK();
  }
  KEYONCE_STMT(s, "INSERT OR REPLACE INTO intent_captures(batch, key, captures) VALUES(?,?,?)");
  s.Int(1, open_[at->slot].id);
  s.Digest16(2, key);
  s.Text(3, captures);
  if (s.Step() != SQLITE_DONE) return Error("journaling captured values");
  captures_[at->packed()] = captures;
  changed_ = true;
  return Status::OK();
}

Status Journal::Settle(int64_t batch, BatchState state, const std::string& token_after) {
  KEYONCE_RETURN_IF_ERROR(Usable());
  KEYONCE_STMT(s, "UPDATE batches SET state=?, token_after=? WHERE id=?");
  s.Int(1, static_cast<int>(state));
  s.Text(2, token_after);
  s.Int(3, batch);
  if (s.Step() != SQLITE_DONE) return Error("updating a batch");
  if (state == BatchState::kPending) {
    batch_cache_.erase(batch);
  } else {
    batch_cache_[batch] = state;
  }
  changed_ = true;
  return Status::OK();
}

Result<std::vector<Journal::Batch>> Journal::PendingBatches(int64_t target) {
  std::vector<Batch> out;
  KEYONCE_STMT(
      s, "SELECT id, IFNULL(token_before,'') FROM batches WHERE target=? AND state=0 ORDER BY id");
  s.Int(1, target);
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW)
    out.push_back({sqlite3_column_int64(s.s, 0), ColText(s.s, 1)});
  if (rc != SQLITE_DONE) return Error("reading the journal's batches");
  return out;
}

Result<int64_t> Journal::DataVersion() {
  KEYONCE_STMT(s, "PRAGMA data_version");
  if (s.Step() != SQLITE_ROW) return Error("reading the state file's version");
  return sqlite3_column_int64(s.s, 0);
}

// No other connection can change the file until this transaction ends: if
// none did since the filters loaded, the journal has no rows of the targets
// it had none of then (this journal's own writes empty journal_empty_).
void Journal::Began() {
  skip_journal_ = false;
  if (journal_empty_.empty()) return;
  auto version = DataVersion();
  if (!version.ok() || *version != data_version_) {
    journal_empty_.clear();
    return;
  }
  skip_journal_ = true;
}

Status Journal::BeforeCommit() {
  // Each batch changed since the last commit is stored whole: its rows that
  // were not forgotten, 32 bytes each.
  std::string blob;
  for (auto& b : open_) {
    if (!b.dirty) continue;
    blob.clear();
    blob.reserve(b.rows.size() * kIntentBytes);
    for (const auto& r : b.rows) {
      if (r.forgotten) continue;
      blob.append(reinterpret_cast<const char*>(r.key.data()), r.key.size());
      blob.append(reinterpret_cast<const char*>(r.hash.data()), r.hash.size());
    }
    KEYONCE_STMT(s, "UPDATE batches SET intents=? WHERE id=?");
    s.Blob(1, blob.data(), blob.size());
    s.Int(2, b.id);
    if (s.Step() != SQLITE_DONE) return Error("journaling write intents");
    b.dirty = false;
  }
  return Status::OK();
}

void Journal::RolledBack() {
  // Nothing here allocates: it may run while an exception unwinds.
  skip_journal_ = false;
  if (changed_) broken_ = true;
}

Status Journal::Merge() {
  KEYONCE_RETURN_IF_ERROR(LoadRecent());
  return MergeFinished(/*fold=*/true);
}

Status Journal::Spill() {
  KEYONCE_RETURN_IF_ERROR(LoadRecent());
  return MergeFinished(recent_.size() >= kMaxRecentRuns ||
                       (recent_.size() >= kFoldRuns && recent_rows_ + rows_ >= journal_rows_));
}

// The intents of every finished batch, into the journal (with the recent
// runs, older than they) or as a new recent run.
Status Journal::MergeFinished(bool fold) {
  KEYONCE_RETURN_IF_ERROR(Usable());
  auto tx = store_.Transact();
  if (!tx.ok()) return tx.status();
  KEYONCE_RETURN_IF_ERROR(BeforeCommit());
  // The intents of every finished batch: this run's from memory, an
  // interrupted run's from their rows in `batches`.
  struct Finished {
    const OpenBatch* batch;
    int64_t run;
    bool doubt;
  };
  std::vector<Finished> finished;
  std::deque<OpenBatch> loaded;
  std::map<std::pair<int64_t, Digest>, std::string> captures;
  {
    KEYONCE_STMT(s,
                 "SELECT id, target, run, state, intents FROM batches "
                 "WHERE state IN (1, 3) AND intents IS NOT NULL ORDER BY id");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      const int64_t id = sqlite3_column_int64(s.s, 0);
      const OpenBatch* b = nullptr;
      if (auto slot = slot_of_.find(id); slot != slot_of_.end()) {
        b = &open_[slot->second];
      } else {
        OpenBatch& l = loaded.emplace_back();
        l.id = id;
        l.target = sqlite3_column_int64(s.s, 1);
        const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(s.s, 4));
        l.rows.resize(static_cast<size_t>(sqlite3_column_bytes(s.s, 4)) / kIntentBytes);
        for (size_t i = 0; i < l.rows.size(); ++i) {
          std::memcpy(l.rows[i].key.data(), p + i * kIntentBytes, 16);
          std::memcpy(l.rows[i].hash.data(), p + i * kIntentBytes + 16, 16);
        }
        b = &l;
      }
      finished.push_back({b, sqlite3_column_int64(s.s, 2), sqlite3_column_int(s.s, 3) == 3});
    }
    if (rc != SQLITE_DONE) return Error("merging the journal");
  }
  {
    KEYONCE_STMT(s,
                 "SELECT c.batch, c.key, c.captures FROM intent_captures c JOIN batches b "
                 "ON b.id = c.batch WHERE b.state IN (1, 3)");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      Digest key{};
      if (ColDigest(s.s, 1, &key)) captures[{sqlite3_column_int64(s.s, 0), key}] = ColText(s.s, 2);
    }
    if (rc != SQLITE_DONE) return Error("merging the journal");
  }
  // In target and key order, so each journal page is visited once; for a key
  // in several batches, oldest first, so the newest intent wins. 16 bytes a
  // row: where it is, and the key's first 8 bytes as a number (most
  // comparisons end there).
  struct At {
    uint64_t prefix;
    uint32_t finished, row;
  };
  std::vector<At> order;
  {
    size_t n = 0;
    for (const Finished& f : finished) n += f.batch->rows.size();
    order.reserve(n);
  }
  for (uint32_t f = 0; f < finished.size(); ++f) {
    const auto& rows = finished[f].batch->rows;
    for (uint32_t i = 0; i < rows.size(); ++i) {
      if (rows[i].forgotten) continue;
      uint64_t prefix = 0;
      for (int k = 0; k < 8; ++k) prefix = prefix << 8 | rows[i].key[k];
      order.push_back({prefix, f, i});
    }
  }
  auto intent = [&](const At& a) -> const OpenBatch::Row& {
    return finished[a.finished].batch->rows[a.row];
  };
  auto target = [&](const At& a) { return finished[a.finished].batch->target; };
  std::sort(order.begin(), order.end(), [&](const At& a, const At& b) {
    if (target(a) != target(b)) return target(a) < target(b);
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    if (intent(a).key != intent(b).key) return intent(a).key < intent(b).key;
    return std::tie(a.finished, a.row) < std::tie(b.finished, b.row);  // batches by id
  });
  const int64_t now = NowUnix();
  auto row = [&](const At& a) {
    const Finished& f = finished[a.finished];
    Row r;
    r.target = f.batch->target;
    r.key = intent(a).key;
    if (!f.doubt) r.written = intent(a).hash;
    r.doubt = f.doubt;
    auto c = captures.empty() ? captures.end() : captures.find({f.batch->id, r.key});
    if (c != captures.end()) r.captures = c->second;
    r.run = f.run;
    r.updated_at = now;
    return r;
  };
  // The recent runs are older than these intents: folded first.
  if (fold) KEYONCE_RETURN_IF_ERROR(FoldRecent());
  // A new run's number: never used before in this file (a counter in
  // `meta`), as another run (of another recipe) may add, and fold, runs too;
  // a number used twice could fold one run's rows before its older ones.
  int64_t merge = 0;
  if (!fold) {
    KEYONCE_STMT(m,
                 "INSERT INTO meta(k, v) VALUES('journal_recent_merge', '1') ON CONFLICT(k) "
                 "DO UPDATE SET v = CAST(v AS INTEGER) + 1 RETURNING CAST(v AS INTEGER)");
    if (m.Step() != SQLITE_ROW) return Error("merging the journal");
    merge = sqlite3_column_int64(m.s, 0);
    if (m.Step() != SQLITE_DONE) return Error("merging the journal");
  }
  std::unique_ptr<Bloom> keys;
  if (!fold) keys = std::make_unique<Bloom>(std::max<size_t>(order.size() * 10, 1024));
  RowWriter w(*this, merge);
  size_t rows = 0;
  for (size_t i = 0; i < order.size();) {
    Row r = row(order[i]);
    size_t j = i + 1;
    for (; j < order.size() && target(order[j]) == r.target && intent(order[j]).key == r.key; ++j)
      Fold(r, row(order[j]));
    if (keys) keys->Add(r.key);
    KEYONCE_RETURN_IF_ERROR(w.Add(std::move(r)));
    ++rows;
    i = j;
  }
  KEYONCE_RETURN_IF_ERROR(w.Flush());
  // Whole batches at once, never a row at a time.
  for (const char* sql :
       {"DELETE FROM intent_captures WHERE batch IN (SELECT id FROM batches WHERE state <> 0)",
        "UPDATE batches SET intents = NULL WHERE state <> 0 AND intents IS NOT NULL"}) {
    KEYONCE_STMT(s, sql);
    if (s.Step() != SQLITE_DONE) return Error("merging the journal");
  }
  KEYONCE_RETURN_IF_ERROR(tx->Commit());
  if (fold) {
    journal_rows_ += recent_rows_ + rows;
    recent_.clear();
    recent_rows_ = 0;
  } else if (rows) {
    recent_.push_back({merge, std::move(keys), rows});
    recent_rows_ += rows;
  }
  return DropMerged();
}

// Every recent run this journal knows into the journal, in one pass in key
// order (a k-way merge of the runs, each read in its key order); then their
// rows leave `journal_recent`. A run another process adds meanwhile (another
// recipe's) stays for that process to fold.
Status Journal::FoldRecent() {
  if (recent_.empty()) return Status::OK();
  struct Cursor {
    sqlite3_stmt* s = nullptr;
    Row row;
  };
  std::vector<Cursor> cursors(recent_.size());
  struct Finalize {
    std::vector<Cursor>& c;
    ~Finalize() {
      for (auto& x : c) sqlite3_finalize(x.s);
    }
  } finalize{cursors};
  // A min-heap of the cursors with a row, by key, then oldest run first.
  auto after = [&](size_t a, size_t b) {
    const Row& x = cursors[a].row;
    const Row& y = cursors[b].row;
    return std::tie(x.target, x.key, a) > std::tie(y.target, y.key, b);
  };
  std::vector<size_t> heap;
  auto advance = [&](size_t i) -> Status {
    auto got = ReadRow(cursors[i].s, &cursors[i].row);
    if (!got.ok()) return got.status();
    if (*got) {
      heap.push_back(i);
      std::push_heap(heap.begin(), heap.end(), after);
    }
    return Status::OK();
  };
  for (size_t i = 0; i < recent_.size(); ++i) {
    if (sqlite3_prepare_v2(db_,
                           "SELECT " KEYONCE_JOURNAL_COLUMNS
                           " FROM journal_recent WHERE merge=? ORDER BY target, key",
                           -1, &cursors[i].s, nullptr) != SQLITE_OK) {
      return Error("preparing a journal statement");
    }
    sqlite3_bind_int64(cursors[i].s, 1, recent_[i].merge);
    KEYONCE_RETURN_IF_ERROR(advance(i));
  }
  RowWriter w(*this, 0);
  auto next = [&](Row* out) -> Status {
    std::pop_heap(heap.begin(), heap.end(), after);
    const size_t i = heap.back();
    heap.pop_back();
    *out = std::move(cursors[i].row);
    return advance(i);
  };
  while (!heap.empty()) {
    Row r;
    KEYONCE_RETURN_IF_ERROR(next(&r));
    while (!heap.empty() && cursors[heap.front()].row.target == r.target &&
           cursors[heap.front()].row.key == r.key) {
      Row newer;
      KEYONCE_RETURN_IF_ERROR(next(&newer));
      Fold(r, std::move(newer));
    }
    KEYONCE_RETURN_IF_ERROR(w.Add(std::move(r)));
  }
  KEYONCE_RETURN_IF_ERROR(w.Flush());
  for (auto& c : cursors) {
    sqlite3_finalize(c.s);
    c.s = nullptr;
  }
  // Only the runs folded: another run's recent runs stay its own. When the
  // table holds no other (the usual case: one distinct number a seek), it is
  // emptied at once, pages not rows (SQLite's truncation); this transaction
  // holds the write lock, so no run can be added meanwhile.
  bool only_ours = true;
  for (int64_t at = 0;;) {
    KEYONCE_STMT(q, "SELECT merge FROM journal_recent WHERE merge > ? ORDER BY merge LIMIT 1");
    q.Int(1, at);
    const int rc = q.Step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return Error("merging the journal");
    at = sqlite3_column_int64(q.s, 0);
    if (std::none_of(recent_.begin(), recent_.end(),
                     [&](const Recent& r) { return r.merge == at; })) {
      only_ours = false;
      break;
    }
  }
  if (only_ours) {
    KEYONCE_STMT(d, "DELETE FROM journal_recent");
    if (d.Step() != SQLITE_DONE) return Error("merging the journal");
    return Status::OK();
  }
  for (const Recent& run : recent_) {
    KEYONCE_STMT(d, "DELETE FROM journal_recent WHERE merge=?");
    d.Int(1, run.merge);
    if (d.Step() != SQLITE_DONE) return Error("merging the journal");
  }
  return Status::OK();
}

// This run's finished intents are in the journal now: only those of pending
// batches stay in memory (renumbered), and the filters learn the others' keys.
Status Journal::DropMerged() {
  std::vector<uint32_t> new_slot(open_.size(), Ref::kNone);
  uint32_t kept = 0;
  for (uint32_t i = 0; i < open_.size(); ++i) {
    auto st = StateOf(open_[i].id);
    if (!st.ok()) return st.status();
    if (*st == BatchState::kPending) new_slot[i] = kept++;
  }
  auto moved = [&](Ref r) { return r.live() ? Ref{new_slot[r.slot], r.row} : Ref{}; };
  std::vector<Ref> live;
  for (const Ref& r : index_) {
    if (!r.live()) continue;
    if (moved(r).live()) {
      live.push_back(moved(r));
    } else if (auto f = filters_.find(open_[r.slot].target); f != filters_.end()) {
      f->second->Add(RowOf(r).key);
    }
  }
  std::unordered_map<uint64_t, Earlier> earlier;
  for (const auto& [at, e] : earlier_) {
    const Ref r = moved({static_cast<uint32_t>(at >> 32), static_cast<uint32_t>(at)});
    if (r.live()) earlier[r.packed()] = {moved(e.ref), e.hash};
  }
  std::unordered_map<uint64_t, std::string> captures;
  for (auto& [at, c] : captures_) {
    const Ref r = moved({static_cast<uint32_t>(at >> 32), static_cast<uint32_t>(at)});
    if (r.live()) captures[r.packed()] = std::move(c);
  }
  std::vector<OpenBatch> pending;
  for (uint32_t i = 0; i < open_.size(); ++i) {
    if (new_slot[i] != Ref::kNone) pending.push_back(std::move(open_[i]));
  }
  open_ = std::move(pending);
  earlier_ = std::move(earlier);
  captures_ = std::move(captures);
  slot_of_.clear();
  rows_ = 0;
  for (uint32_t i = 0; i < open_.size(); ++i) {
    slot_of_[open_[i].id] = i;
    rows_ += open_[i].rows.size();
  }
  index_.clear();  // its entries name the old slots: Reindex starts empty
  Reindex(live.size());
  for (Ref r : live) IndexIntent(open_[r.slot].target, RowOf(r).key, r);
  return Status::OK();
}

namespace {
size_t IndexHome(int64_t target, const Digest& key) {
  uint64_t h;
  std::memcpy(&h, key.data(), sizeof h);  // already a keyed hash: well spread
  return static_cast<size_t>(h ^ static_cast<uint64_t>(target) * 0x9E3779B97F4A7C15ull);
}
}  // namespace

Journal::Ref* Journal::FindIntent(int64_t target, const Digest& key) {
  if (index_.empty()) return nullptr;
  const size_t mask = index_.size() - 1;
  for (size_t i = IndexHome(target, key) & mask;; i = (i + 1) & mask) {
    Ref& r = index_[i];
    if (r.slot == Ref::kNone) return nullptr;
    if (r.live() && open_[r.slot].target == target && RowOf(r).key == key) return &r;
  }
}

// Adds an intent the index does not have yet; at most half of it in use.
void Journal::IndexIntent(int64_t target, const Digest& key, Ref ref) {
  if ((used_ + 1) * 2 > index_.size()) Reindex(live_ + 1);
  const size_t mask = index_.size() - 1;
  size_t i = IndexHome(target, key) & mask;
  while (index_[i].slot != Ref::kNone) i = (i + 1) & mask;
  index_[i] = ref;
  ++live_;
  ++used_;
}

// Rebuilds the index with room for `live` entries, without forgotten ones.
void Journal::Reindex(size_t live) {
  size_t capacity = 1024;
  while (capacity < live * 4) capacity *= 2;
  std::vector<Ref> old;
  old.swap(index_);
  index_.assign(capacity, Ref{});
  live_ = used_ = 0;
  for (Ref r : old) {
    if (r.live()) IndexIntent(open_[r.slot].target, RowOf(r).key, r);
  }
}

Status Journal::LoadFilter(int64_t target) {
  if (target < 0) return Status::OK();
  // 16 Mbit (2 MiB): under 0.1% false positives up to a million keys per target.
  auto bloom = std::make_unique<Bloom>(size_t{1} << 24);
  KEYONCE_RETURN_IF_ERROR(LoadRecent());
  auto add = [&](Use& s, size_t* rows) -> Status {
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      Digest d{};
      if (ColDigest(s.s, 0, &d)) bloom->Add(d);
      ++*rows;
    }
    return rc == SQLITE_DONE ? Status::OK() : Error("reading the journal");
  };
  {
    // The file's version before its journal is read: a change after it shows.
    auto version = DataVersion();
    if (!version.ok()) return version.status();
    if (*version != data_version_) journal_empty_.clear();
    data_version_ = *version;
    KEYONCE_STMT(s, "SELECT key FROM journal WHERE target=?");
    s.Int(1, target);
    size_t rows = 0;
    KEYONCE_RETURN_IF_ERROR(add(s, &rows));
    journal_rows_ += rows;
    if (rows == 0) journal_empty_.insert(target);
  }
  for (const Recent& run : recent_) {  // a range of the table's key each
    KEYONCE_STMT(s, "SELECT key FROM journal_recent WHERE merge=? AND target=?");
    s.Int(1, run.merge);
    s.Int(2, target);
    size_t rows = 0;
    KEYONCE_RETURN_IF_ERROR(add(s, &rows));
  }
  filters_[target] = std::move(bloom);
  return Status::OK();
}

Status Journal::UpgradeIntents(StateStore& store) {
  sqlite3* db = StateSql::Of(store);
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT batch, key, hash, captures FROM intents ORDER BY batch, id",
                         -1, &s, nullptr) != SQLITE_OK) {
    sqlite3_finalize(s);
    return Status::OK();  // no such table: nothing to move
  }
  sqlite3_stmt* put = nullptr;
  sqlite3_stmt* cap = nullptr;
  auto done = [&](Status st) {
    sqlite3_finalize(s);
    sqlite3_finalize(put);
    sqlite3_finalize(cap);
    return st;
  };
  if (sqlite3_prepare_v2(db, "UPDATE batches SET intents=? WHERE id=?", -1, &put, nullptr) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(db,
                         "INSERT OR REPLACE INTO intent_captures(batch, key, captures) "
                         "VALUES(?,?,?)",
                         -1, &cap, nullptr) != SQLITE_OK) {
    return done(Status::Io(std::string("moving write intents: ") + sqlite3_errmsg(db)));
  }
  std::string blob;
  int64_t batch = 0;
  auto flush = [&]() -> bool {
    if (!batch) return true;
    sqlite3_bind_blob(put, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
    sqlite3_bind_int64(put, 2, batch);
    int rc = sqlite3_step(put);
    sqlite3_reset(put);
    blob.clear();
    return rc == SQLITE_DONE;
  };
  int rc;
  while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
    const int64_t b = sqlite3_column_int64(s, 0);
    if (b != batch && !flush()) break;
    batch = b;
    if (sqlite3_column_bytes(s, 1) != 16 || sqlite3_column_bytes(s, 2) != 16) continue;
    blob.append(static_cast<const char*>(sqlite3_column_blob(s, 1)), 16);
    blob.append(static_cast<const char*>(sqlite3_column_blob(s, 2)), 16);
    if (sqlite3_column_type(s, 3) != SQLITE_NULL) {
      sqlite3_bind_int64(cap, 1, b);
      sqlite3_bind_blob(cap, 2, sqlite3_column_blob(s, 1), 16, SQLITE_TRANSIENT);
      sqlite3_bind_text(cap, 3, reinterpret_cast<const char*>(sqlite3_column_text(s, 3)), -1,
                        SQLITE_TRANSIENT);
      int crc = sqlite3_step(cap);
      sqlite3_reset(cap);
      if (crc != SQLITE_DONE) break;
    }
  }
  if (rc != SQLITE_DONE || !flush()) {
    return done(Status::Io(std::string("moving write intents: ") + sqlite3_errmsg(db)));
  }
  done(Status::OK());
  return ExecSql(db, "DROP TABLE intents", "moving write intents");
}

}  // namespace keyonce
