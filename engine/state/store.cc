#include "state/store.h"

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "core/clock.h"
#include "keyonce/value.h"
#include "state/sqlite_util.h"

namespace keyonce {
namespace {

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

// Resets a cached statement when the scope ends.
struct Stmt {
  sqlite3_stmt* s;
  explicit Stmt(sqlite3_stmt* st) : s(st) {}
  ~Stmt() {
    if (s) {
      sqlite3_reset(s);
      sqlite3_clear_bindings(s);
    }
  }
  void Text(int i, const std::string& v) {
    sqlite3_bind_text(s, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
  }
  void Int(int i, int64_t v) { sqlite3_bind_int64(s, i, v); }
  void Blob(int i, const Digest& d) {
    sqlite3_bind_blob(s, i, d.data(), int(d.size()), SQLITE_STATIC);
  }
  void Null(int i) { sqlite3_bind_null(s, i); }
};

}  // namespace

const char* BatchStateName(StateStore::BatchState s) {
  switch (s) {
    case StateStore::BatchState::kPending:
      return "pending";
    case StateStore::BatchState::kDone:
      return "done";
    case StateStore::BatchState::kRolledBack:
      return "rolled back";
    case StateStore::BatchState::kInDoubt:
      return "in doubt";
  }
  return "?";
}

std::filesystem::path StateStore::DefaultPath() {
  if (const char* env = std::getenv("KEYONCE_STATE"); env && *env) return env;
  return "keyonce-state.db";
}

Status StateStore::Error(const char* what) {
  int code = sqlite3_errcode(db_);
  std::string msg = std::string(what) + ": " + sqlite3_errmsg(db_);
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return Status::Transient(msg);
  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) {
    return Status::Io(msg + " (the state file is damaged: see `keyonce state check " +
                      path_.string() + "` and restore a backup)");
  }
  return Status::Io(msg);
}

Status StateStore::Exec(const char* sql) { return ExecSql(db_, sql, "state store"); }

sqlite3_stmt* StateStore::Prepare(const char* sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
    return nullptr;
  }
  stmts_[sql] = s;
  return s;
}

StateStore::~StateStore() {
  for (auto& [_, s] : stmts_) sqlite3_finalize(s);
  if (db_) sqlite3_close(db_);
}

StateStore::Transaction::~Transaction() {
  // Also while an exception (std::bad_alloc) unwinds: nothing here allocates.
  if (!store_) return;
  sqlite3_exec(store_->db_, "ROLLBACK", nullptr, nullptr, nullptr);
  if (store_->relaxed_) {
    store_->relaxed_ = false;
    sqlite3_exec(store_->db_, "PRAGMA synchronous=FULL", nullptr, nullptr, nullptr);
  }
}

Status StateStore::Transaction::Commit() {
  StateStore* s = std::exchange(store_, nullptr);
  if (!s) return Status::Internal("a state store transaction committed twice");
  Status st = s->Commit();
  if (!st.ok()) s->Rollback();
  return st;
}

Result<StateStore::Transaction> StateStore::Transact(bool durable) {
  KEYONCE_RETURN_IF_ERROR(Begin(durable));
  return Transaction(this);
}

Status StateStore::Begin(bool durable) {
  if (!durable && !read_only_) {
    KEYONCE_RETURN_IF_ERROR(Exec("PRAGMA synchronous=NORMAL"));
    relaxed_ = true;
  }
  return Exec("BEGIN IMMEDIATE");
}

Status StateStore::Commit() {
  Status st = Exec("COMMIT");
  if (relaxed_) {
    relaxed_ = false;
    Status back = Exec("PRAGMA synchronous=FULL");
    if (st.ok()) st = back;
  }
  return st;
}
Status StateStore::Rollback() {
  Status st = Exec("ROLLBACK");
  if (relaxed_) {
    relaxed_ = false;
    Exec("PRAGMA synchronous=FULL");
  }
  return st;
}

Result<int64_t> StateStore::BeginRun(const std::string& recipe, const std::string& params,
                                     const std::string& trigger) {
  Stmt s(
      Prepare("INSERT INTO runs(recipe, started_at, status, trigger, params) "
              "VALUES(?, ?, 'running', ?, ?)"));
  s.Text(1, recipe);
  s.Text(2, UtcTimestamp());
  s.Text(3, trigger);
  s.Text(4, params);
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("recording the run");
  return sqlite3_last_insert_rowid(db_);
}

Status StateStore::FinishRun(int64_t run, const std::string& status, const std::string& counts,
                             int exit_code) {
  Stmt s(Prepare("UPDATE runs SET finished_at=?, status=?, counts=?, exit_code=? WHERE id=?"));
  s.Text(1, UtcTimestamp());
  s.Text(2, status);
  s.Text(3, counts);
  s.Int(4, exit_code);
  s.Int(5, run);
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("finishing the run");
  return Status::OK();
}

Status StateStore::AbandonRun(int64_t run, const std::string& reason) {
  const Value counts =
      boost::json::object{{"run", run}, {"status", "failed"}, {"exit_code", 1}, {"error", reason}};
  Stmt s(
      Prepare("UPDATE runs SET finished_at=?, status='failed', counts=?, exit_code=1"
              " WHERE id=? AND status='running'"));
  s.Text(1, UtcTimestamp());
  s.Text(2, ToJson(counts));
  s.Int(3, run);
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("finishing an abandoned run");
  return Status::OK();
}

Result<std::vector<int64_t>> StateStore::AbandonRunsOf(const std::string& recipe,
                                                       const std::string& reason) {
  std::vector<int64_t> ids;
  {
    Stmt q(Prepare("SELECT id FROM runs WHERE recipe=? AND status='running'"));
    q.Text(1, recipe);
    while (sqlite3_step(q.s) == SQLITE_ROW) ids.push_back(sqlite3_column_int64(q.s, 0));
  }
  for (int64_t id : ids) KEYONCE_RETURN_IF_ERROR(AbandonRun(id, reason));
  return ids;
}

Result<std::vector<StateStore::RunRow>> StateStore::ListRuns(const std::string& recipe, int limit) {
  Stmt s(
      Prepare("SELECT id, recipe, started_at, IFNULL(finished_at,''), status, IFNULL(params,''),"
              " IFNULL(counts,''), IFNULL(exit_code,0), IFNULL(trigger,'') FROM runs"
              " WHERE (?1 = '' OR recipe = ?1) ORDER BY id DESC LIMIT ?2"));
  s.Text(1, recipe);
  s.Int(2, limit);
  std::vector<RunRow> out;
  while (sqlite3_step(s.s) == SQLITE_ROW) {
    RunRow r;
    r.id = sqlite3_column_int64(s.s, 0);
    r.recipe = ColText(s.s, 1);
    r.started_at = ColText(s.s, 2);
    r.finished_at = ColText(s.s, 3);
    r.status = ColText(s.s, 4);
    r.params = ColText(s.s, 5);
    r.counts = ColText(s.s, 6);
    r.exit_code = sqlite3_column_int(s.s, 7);
    r.trigger = ColText(s.s, 8);
    out.push_back(std::move(r));
  }
  return out;
}

Result<int64_t> StateStore::TargetId(const std::string& recipe, const std::string& target) {
  if (!read_only_) {
    // INSERT OR IGNORE first: two processes registering the same target at
    // once both end up with the one row.
    Stmt ins(Prepare("INSERT OR IGNORE INTO targets(recipe, name) VALUES(?, ?)"));
    ins.Text(1, recipe);
    ins.Text(2, target);
    if (sqlite3_step(ins.s) != SQLITE_DONE) return Error("registering target");
  }
  Stmt s(Prepare("SELECT id FROM targets WHERE recipe=? AND name=?"));
  s.Text(1, recipe);
  s.Text(2, target);
  if (sqlite3_step(s.s) == SQLITE_ROW) return sqlite3_column_int64(s.s, 0);
  if (read_only_) return int64_t{-1};
  return Error("registering target");
}

Result<int64_t> StateStore::LastBatch(int64_t target) {
  if (target < 0) return int64_t{0};
  Stmt s(Prepare("SELECT IFNULL(MAX(id), 0) FROM batches WHERE target=?"));
  s.Int(1, target);
  if (sqlite3_step(s.s) != SQLITE_ROW) return Error("reading the journal's batches");
  return static_cast<int64_t>(sqlite3_column_int64(s.s, 0));
}

Result<StateStore::BatchState> StateStore::StateOf(int64_t batch) {
  auto it = batch_cache_.find(batch);
  if (it != batch_cache_.end()) return it->second;
  Stmt s(Prepare("SELECT state FROM batches WHERE id=?"));
  s.Int(1, batch);
  if (sqlite3_step(s.s) != SQLITE_ROW) return BatchState::kRolledBack;
  auto st = static_cast<BatchState>(sqlite3_column_int(s.s, 0));
  if (st != BatchState::kPending) batch_cache_[batch] = st;
  return st;
}

Result<StateStore::Entry> StateStore::Get(int64_t target, const Digest& key) {
  Entry e;
  if (target < 0) return e;
  // This run's own intents first: they are newer than the journal.
  if (auto it = intents_.find({target, key}); it != intents_.end()) {
    const Intent* in = &it->second;
    auto st = StateOf(in->batch);
    if (!st.ok()) return st.status();
    e.found = true;
    e.captures = in->captures;
    if (*st == BatchState::kPending) {
      e.pending = true;
      e.pending_hash = in->hash;
      // What was written before this intent, if anything, still counts.
      if (in->earlier) e.written = in->earlier->hash;
      return e;
    }
    if (*st == BatchState::kDone) {
      e.written = in->hash;
      return e;
    }
  }
  if (auto f = filters_.find(target); f != filters_.end() && !f->second->MayContain(key)) return e;
  Stmt s(Prepare("SELECT written, doubt, captures FROM journal WHERE target=? AND key=?"));
  s.Int(1, target);
  s.Blob(2, key);
  int rc = sqlite3_step(s.s);
  if (rc == SQLITE_DONE) return e;
  if (rc != SQLITE_ROW) return Error("reading the journal");
  e.found = true;
  Digest d{};
  if (ColDigest(s.s, 0, &d)) e.written = d;
  e.in_doubt = sqlite3_column_int(s.s, 1) != 0;
  e.captures = ColText(s.s, 2);
  return e;
}

Result<int64_t> StateStore::NewBatch(int64_t target, int64_t run, const std::string& token_before) {
  Stmt s(
      Prepare("INSERT INTO batches(target, run, state, token_before, created_at) "
              "VALUES(?, ?, 0, ?, ?)"));
  s.Int(1, target);
  s.Int(2, run);
  s.Text(3, token_before);
  s.Int(4, NowUnix());
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("starting a batch");
  return sqlite3_last_insert_rowid(db_);
}

Status StateStore::AddIntent(int64_t target, const Digest& key, const Digest& hash, int64_t batch,
                             int64_t run) {
  Stmt s(Prepare("INSERT INTO intents(target, key, hash, batch, run) VALUES(?,?,?,?,?)"));
  s.Int(1, target);
  s.Blob(2, key);
  s.Blob(3, hash);
  s.Int(4, batch);
  s.Int(5, run);
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("journaling a write intent");
  if (intents_.empty()) intents_.reserve(1 << 17);
  Intent in;
  in.hash = hash;
  in.batch = batch;
  in.rowid = sqlite3_last_insert_rowid(db_);
  auto it = intents_.find({target, key});
  if (it != intents_.end()) {
    in.earlier = std::make_shared<Intent>(std::move(it->second));
    in.earlier->earlier.reset();  // one level is all a rollback needs
    it->second = std::move(in);
  } else {
    intents_.emplace(TargetKey{target, key}, std::move(in));
  }
  return Status::OK();
}

Status StateStore::ClearIntent(int64_t target, const Digest& key) {
  auto it = intents_.find({target, key});
  if (it == intents_.end()) return Status::OK();
  Stmt s(Prepare("DELETE FROM intents WHERE id=?"));
  s.Int(1, it->second.rowid);
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("clearing a write intent");
  if (it->second.earlier) {
    Intent prev = std::move(*it->second.earlier);
    it->second = std::move(prev);
  } else {
    intents_.erase(it);
  }
  return Status::OK();
}

Status StateStore::SetInDoubt(int64_t target, const Digest& key, int64_t run) {
  KEYONCE_RETURN_IF_ERROR(ClearIntent(target, key));
  Stmt s(
      Prepare("INSERT INTO journal(target, key, doubt, run, updated_at) VALUES(?1,?2,1,?3,?4) "
              "ON CONFLICT(target, key) DO UPDATE SET doubt=1, run=excluded.run, "
              "updated_at=excluded.updated_at"));
  s.Int(1, target);
  s.Blob(2, key);
  s.Int(3, run);
  s.Int(4, NowUnix());
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("journaling a write in doubt");
  if (auto f = filters_.find(target); f != filters_.end()) f->second->Add(key);
  return Status::OK();
}

Status StateStore::SetWritten(int64_t target, const Digest& key, const Digest& hash,
                              const std::string& captures, int64_t run) {
  Stmt s(
      Prepare("INSERT INTO journal(target, key, written, captures, run, updated_at) "
              "VALUES(?1,?2,?3,?4,?5,?6) "
              "ON CONFLICT(target, key) DO UPDATE SET written=excluded.written, doubt=0, "
              "captures=excluded.captures, run=excluded.run, updated_at=excluded.updated_at"));
  s.Int(1, target);
  s.Blob(2, key);
  s.Blob(3, hash);
  if (captures.empty())
    s.Null(4);
  else
    s.Text(4, captures);
  s.Int(5, run);
  s.Int(6, NowUnix());
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("journaling a confirmed write");
  // A later record of this run with the same key must find it.
  if (auto f = filters_.find(target); f != filters_.end()) f->second->Add(key);
  return Status::OK();
}

Status StateStore::SetCaptures(int64_t target, const Digest& key, const std::string& captures) {
  auto it = intents_.find({target, key});
  if (it == intents_.end()) {
    Stmt s(Prepare("UPDATE journal SET captures=? WHERE target=? AND key=?"));
    s.Text(1, captures);
    s.Int(2, target);
    s.Blob(3, key);
    if (sqlite3_step(s.s) != SQLITE_DONE) return Error("journaling captured values");
    return Status::OK();
  }
  Stmt s(Prepare("UPDATE intents SET captures=? WHERE id=?"));
  s.Text(1, captures);
  s.Int(2, it->second.rowid);
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("journaling captured values");
  it->second.captures = captures;
  return Status::OK();
}

Status StateStore::SetBatchState(int64_t batch, BatchState state, const std::string& token_after) {
  Stmt s(Prepare("UPDATE batches SET state=?, token_after=? WHERE id=?"));
  s.Int(1, static_cast<int>(state));
  s.Text(2, token_after);
  s.Int(3, batch);
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("updating a batch");
  if (state == BatchState::kPending) {
    batch_cache_.erase(batch);
  } else {
    batch_cache_[batch] = state;
  }
  return Status::OK();
}

Result<std::vector<StateStore::Batch>> StateStore::PendingBatches(int64_t target) {
  std::vector<Batch> out;
  Stmt s(Prepare(
      "SELECT id, IFNULL(token_before,'') FROM batches WHERE target=? AND state=0 ORDER BY id"));
  s.Int(1, target);
  while (sqlite3_step(s.s) == SQLITE_ROW) {
    out.push_back({sqlite3_column_int64(s.s, 0), ColText(s.s, 1)});
  }
  return out;
}

Status StateStore::Merge() {
  auto tx = Transact();
  if (!tx.ok()) return tx.status();
  // In key order, oldest intent first, so the newest intent for a key wins
  // and each journal page is visited once.
  Stmt m(Prepare(
      "INSERT INTO journal(target, key, written, doubt, captures, run, updated_at) "
      "SELECT i.target, i.key, CASE WHEN b.state = 1 THEN i.hash END, b.state = 3, i.captures, "
      "i.run, ?1 FROM intents i JOIN batches b ON b.id = i.batch WHERE b.state IN (1, 3) "
      "ORDER BY i.target, i.key, i.id "
      "ON CONFLICT(target, key) DO UPDATE SET "
      "written = CASE WHEN excluded.doubt THEN journal.written ELSE excluded.written END, "
      "doubt = excluded.doubt, captures = COALESCE(excluded.captures, journal.captures), "
      "run = excluded.run, updated_at = excluded.updated_at"));
  m.Int(1, NowUnix());
  Stmt d(Prepare(
      "DELETE FROM intents WHERE batch IN (SELECT id FROM batches WHERE state IN (1, 2, 3))"));
  for (sqlite3_stmt* step : {m.s, d.s}) {
    if (sqlite3_step(step) != SQLITE_DONE) return Error("merging the journal");
  }
  KEYONCE_RETURN_IF_ERROR(tx->Commit());
  for (auto it = intents_.begin(); it != intents_.end();) {
    auto st = StateOf(it->second.batch);
    if (!st.ok()) return st.status();
    if (*st == BatchState::kPending) {
      ++it;
      continue;
    }
    if (auto f = filters_.find(it->first.target); f != filters_.end())
      f->second->Add(it->first.key);
    it = intents_.erase(it);
  }
  return Status::OK();
}

// Seven probes from the digest's two halves (double hashing); the digest is
// already a keyed hash, so its bits are well spread.
template <typename F>
static bool Probe(const Digest& d, size_t nbits, F&& visit) {
  uint64_t h1, h2;
  std::memcpy(&h1, d.data(), 8);
  std::memcpy(&h2, d.data() + 8, 8);
  for (int i = 0; i < 7; ++i) {
    if (!visit((h1 + static_cast<uint64_t>(i) * h2) % nbits)) return false;
  }
  return true;
}

void StateStore::Bloom::Add(const Digest& d) {
  Probe(d, nbits_, [&](uint64_t bit) {
    bits_[bit / 64] |= uint64_t{1} << (bit % 64);
    return true;
  });
}

bool StateStore::Bloom::MayContain(const Digest& d) const {
  return Probe(d, nbits_, [&](uint64_t bit) { return (bits_[bit / 64] >> (bit % 64)) & 1; });
}

Status StateStore::LoadFilter(int64_t target) {
  if (target < 0) return Status::OK();
  // 16 Mbit (2 MiB): under 0.1% false positives up to a million keys per target.
  auto bloom = std::make_unique<Bloom>(size_t{1} << 24);
  Stmt s(Prepare("SELECT key FROM journal WHERE target=?"));
  s.Int(1, target);
  int rc;
  while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
    Digest d{};
    if (ColDigest(s.s, 0, &d)) bloom->Add(d);
  }
  if (rc != SQLITE_DONE) return Error("reading the journal");
  filters_[target] = std::move(bloom);
  return Status::OK();
}

Result<int64_t> StateStore::AddQuarantine(const QuarantineRow& r) {
  {
    // The same record failing the same way again (a rerun) stays one open entry.
    Stmt q(
        Prepare("SELECT id FROM quarantine WHERE recipe=? AND status='open' AND stage=? AND "
                "IFNULL(ref,'')=? AND IFNULL(target,'')=? AND IFNULL(position,'')=? AND reason=? "
                "AND IFNULL(record,'')=? LIMIT 1"));
    q.Text(1, r.recipe);
    q.Text(2, r.stage);
    q.Text(3, r.ref);
    q.Text(4, r.target);
    q.Text(5, r.position);
    q.Text(6, r.reason);
    q.Text(7, r.record);
    if (sqlite3_step(q.s) == SQLITE_ROW) {
      int64_t id = sqlite3_column_int64(q.s, 0);
      Stmt u(Prepare("UPDATE quarantine SET run=?, updated_at=? WHERE id=?"));
      u.Int(1, r.run);
      u.Text(2, UtcTimestamp());
      u.Int(3, id);
      if (sqlite3_step(u.s) != SQLITE_DONE) return Error("updating a quarantined record");
      return id;
    }
  }
  Stmt s(
      Prepare("INSERT INTO quarantine(recipe, run, ref, stage, target, position, reason, record,"
              " status, created_at, params, secrets) VALUES(?,?,?,?,?,?,?,?,'open',?,?,?)"));
  s.Text(1, r.recipe);
  s.Int(2, r.run);
  s.Text(3, r.ref);
  s.Text(4, r.stage);
  s.Text(5, r.target);
  s.Text(6, r.position);
  s.Text(7, r.reason);
  s.Text(8, r.record);
  s.Text(9, UtcTimestamp());
  if (r.params.empty())
    s.Null(10);
  else
    s.Text(10, r.params);
  if (r.secrets.empty())
    s.Null(11);
  else
    s.Text(11, r.secrets);
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("quarantining a record");
  return sqlite3_last_insert_rowid(db_);
}

namespace {
StateStore::QuarantineRow ReadQuarantine(sqlite3_stmt* s) {
  StateStore::QuarantineRow r;
  r.id = sqlite3_column_int64(s, 0);
  r.recipe = ColText(s, 1);
  r.run = sqlite3_column_int64(s, 2);
  r.ref = ColText(s, 3);
  r.stage = ColText(s, 4);
  r.target = ColText(s, 5);
  r.position = ColText(s, 6);
  r.reason = ColText(s, 7);
  r.record = ColText(s, 8);
  r.status = ColText(s, 9);
  r.created_at = ColText(s, 10);
  r.params = ColText(s, 11);
  r.secrets = ColText(s, 12);
  return r;
}
}  // namespace

std::string StateStore::QuarantineColumns() const {
  return std::string(
             "id, recipe, IFNULL(run,0), IFNULL(ref,''), stage, IFNULL(target,''), "
             "IFNULL(position,''), reason, IFNULL(record,''), status, created_at, ") +
         (legacy_ ? "'', ''" : "IFNULL(params,''), IFNULL(secrets,'')");
}

Result<std::vector<StateStore::QuarantineRow>> StateStore::ListQuarantine(const std::string& recipe,
                                                                          const std::string& status,
                                                                          int limit, int64_t run) {
  const std::string sql = "SELECT " + QuarantineColumns() +
                          " FROM quarantine WHERE (?1='' OR recipe=?1) AND (?2='' OR status=?2)"
                          " AND (?4=0 OR run=?4) ORDER BY id LIMIT ?3";
  Stmt s(Prepare(sql.c_str()));
  s.Text(1, recipe);
  s.Text(2, status);
  s.Int(3, limit);
  s.Int(4, run);
  std::vector<QuarantineRow> out;
  while (sqlite3_step(s.s) == SQLITE_ROW) out.push_back(ReadQuarantine(s.s));
  return out;
}

Result<StateStore::QuarantineRow> StateStore::GetQuarantine(int64_t id) {
  const std::string sql = "SELECT " + QuarantineColumns() + " FROM quarantine WHERE id=?";
  Stmt s(Prepare(sql.c_str()));
  s.Int(1, id);
  if (sqlite3_step(s.s) != SQLITE_ROW) {
    return Status::NotFound("no quarantined record with id " + std::to_string(id));
  }
  return ReadQuarantine(s.s);
}

Status StateStore::SetQuarantineStatus(int64_t id, const std::string& status) {
  Stmt s(Prepare("UPDATE quarantine SET status=?, updated_at=? WHERE id=?"));
  s.Text(1, status);
  s.Text(2, UtcTimestamp());
  s.Int(3, id);
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("updating a quarantined record");
  return Status::OK();
}

Status StateStore::SetQuarantineRecord(int64_t id, const std::string& record_json) {
  Stmt s(Prepare("UPDATE quarantine SET record=?, updated_at=? WHERE id=?"));
  s.Text(1, record_json);
  s.Text(2, UtcTimestamp());
  s.Int(3, id);
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("updating a quarantined record");
  return Status::OK();
}

Result<std::optional<std::string>> StateStore::Watermark(const std::string& recipe) {
  Stmt s(Prepare("SELECT value FROM watermarks WHERE recipe=?"));
  s.Text(1, recipe);
  if (sqlite3_step(s.s) == SQLITE_ROW) return std::optional<std::string>(ColText(s.s, 0));
  return std::optional<std::string>();
}

Status StateStore::SetWatermark(const std::string& recipe, const std::string& value, int64_t run) {
  Stmt s(
      Prepare("INSERT INTO watermarks(recipe, value, run) VALUES(?,?,?) "
              "ON CONFLICT(recipe) DO UPDATE SET value=excluded.value, run=excluded.run"));
  s.Text(1, recipe);
  s.Text(2, value);
  s.Int(3, run);
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("storing the watermark");
  return Status::OK();
}

}  // namespace keyonce
