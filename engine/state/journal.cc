#include "state/journal.h"

#include <algorithm>
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

// The merge's upsert of `rows` journal rows (1 or kUpsertRows) in one
// statement: many rows share a statement's cost (its savepoint, its halt).
constexpr int kUpsertRows = 64;
constexpr int kUpsertColumns = 7;
const char* Upsert(int rows) {
  auto make = [](int n) {
    std::string sql =
        "INSERT INTO journal(target, key, written, doubt, captures, run, updated_at) VALUES";
    for (int i = 0; i < n; ++i) sql += i ? ",(?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?)";
    return sql +
           " ON CONFLICT(target, key) DO UPDATE SET "
           "written = CASE WHEN excluded.doubt THEN journal.written ELSE excluded.written END, "
           "doubt = excluded.doubt, captures = COALESCE(excluded.captures, journal.captures), "
           "run = excluded.run, updated_at = excluded.updated_at";
  };
  static const std::string one = make(1), many = make(kUpsertRows);
  return rows == 1 ? one.c_str() : many.c_str();
}

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
  explicit Bloom(size_t bits) : bits_((bits + 63) / 64, 0), nbits_(((bits + 63) / 64) * 64) {}
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
    for (int i = 0; i < 7; ++i) {
      if (!visit((h1 + static_cast<uint64_t>(i) * h2) % nbits_)) return false;
    }
    return true;
  }
  std::vector<uint64_t> bits_;
  size_t nbits_;
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
  KEYONCE_STMT(s, "SELECT written, doubt, captures FROM journal WHERE target=? AND key=?");
  s.Int(1, target);
  s.Digest16(2, key);
  int rc = s.Step();
  if (rc == SQLITE_DONE) return e;
  if (rc != SQLITE_ROW) return Error("reading the journal");
  e.found = true;
  Digest d{};
  if (ColDigest(s.s, 0, &d)) e.written = d;
  e.in_doubt = sqlite3_column_int(s.s, 1) != 0;
  e.captures = ColText(s.s, 2);
  return e;
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
  if (auto c = captures_.find(at->packed()); c != captures_.end()) {
    KEYONCE_STMT(s, "DELETE FROM intent_captures WHERE batch=? AND key=?");
    s.Int(1, b.id);
    s.Digest16(2, key);
    if (s.Step() != SQLITE_DONE) return Error("clearing a write intent");
    captures_.erase(c);
  }
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

Status Journal::MarkInDoubt(int64_t target, const Digest& key, int64_t run) {
  KEYONCE_RETURN_IF_ERROR(Forget(target, key));
  KEYONCE_STMT(s,
               "INSERT INTO journal(target, key, doubt, run, updated_at) VALUES(?1,?2,1,?3,?4) "
               "ON CONFLICT(target, key) DO UPDATE SET doubt=1, run=excluded.run, "
               "updated_at=excluded.updated_at");
  s.Int(1, target);
  s.Digest16(2, key);
  s.Int(3, run);
  s.Int(4, NowUnix());
  if (s.Step() != SQLITE_DONE) return Error("journaling a write in doubt");
  if (auto f = filters_.find(target); f != filters_.end()) f->second->Add(key);
  return Status::OK();
}

Status Journal::ConfirmWrite(int64_t target, const Digest& key, const Digest& hash,
                             const std::string& captures, int64_t run) {
  KEYONCE_RETURN_IF_ERROR(Usable());
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
  if (changed_) broken_ = true;
}

Status Journal::Merge() {
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
  auto row = [&](const At& a) -> const OpenBatch::Row& {
    return finished[a.finished].batch->rows[a.row];
  };
  std::sort(order.begin(), order.end(), [&](const At& a, const At& b) {
    const int64_t ta = finished[a.finished].batch->target;
    const int64_t tb = finished[b.finished].batch->target;
    if (ta != tb) return ta < tb;
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    if (row(a).key != row(b).key) return row(a).key < row(b).key;
    return std::tie(a.finished, a.row) < std::tie(b.finished, b.row);  // batches by id
  });
  const int64_t now = NowUnix();
  auto bind = [&](Use& s, int at, const At& a) {
    const Finished& f = finished[a.finished];
    const OpenBatch::Row& r = row(a);
    s.Int(at + 1, f.batch->target);
    s.Digest16(at + 2, r.key);
    if (f.doubt) {
      s.Null(at + 3);
    } else {
      s.Digest16(at + 3, r.hash);
    }
    s.Int(at + 4, f.doubt ? 1 : 0);
    auto c = captures.empty() ? captures.end() : captures.find({f.batch->id, r.key});
    if (c != captures.end()) {
      s.Text(at + 5, c->second);
    } else {
      s.Null(at + 5);
    }
    s.Int(at + 6, f.run);
    s.Int(at + 7, now);
  };
  // Rows of the same key stay in order within a statement: the newest wins.
  for (size_t i = 0; i < order.size();) {
    const int n = order.size() - i >= kUpsertRows ? kUpsertRows : 1;
    sqlite3_stmt* upsert = Stmt(Upsert(n));
    if (!upsert) return Error("preparing a journal statement");
    Use s(upsert);
    for (int k = 0; k < n; ++k) bind(s, k * kUpsertColumns, order[i + k]);
    if (s.Step() != SQLITE_DONE) return Error("merging the journal");
    i += n;
  }
  // Whole batches at once, never a row at a time.
  for (const char* sql :
       {"DELETE FROM intent_captures WHERE batch IN (SELECT id FROM batches WHERE state <> 0)",
        "UPDATE batches SET intents = NULL WHERE state <> 0 AND intents IS NOT NULL"}) {
    KEYONCE_STMT(s, sql);
    if (s.Step() != SQLITE_DONE) return Error("merging the journal");
  }
  KEYONCE_RETURN_IF_ERROR(tx->Commit());
  return DropMerged();
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
  KEYONCE_STMT(s, "SELECT key FROM journal WHERE target=?");
  s.Int(1, target);
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    Digest d{};
    if (ColDigest(s.s, 0, &d)) bloom->Add(d);
  }
  if (rc != SQLITE_DONE) return Error("reading the journal");
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
