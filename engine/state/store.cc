#include "state/store.h"

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "core/clock.h"
#include "keyonce/value.h"
#include "state/sqlite_util.h"

namespace keyonce {
namespace {

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
  void Null(int i) { sqlite3_bind_null(s, i); }
};

}  // namespace

std::filesystem::path StateStore::DefaultPath() {
  if (const char* env = std::getenv("KEYONCE_STATE"); env && *env) return env;
  return "keyonce-state.db";
}

Status StateStore::Error(const char* what) { return StateFileError(db_, what, path_.string()); }

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
  if (store_->hook_) store_->hook_->RolledBack();
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
  KEYONCE_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  if (hook_) hook_->Began();
  return Status::OK();
}

Status StateStore::Commit() {
  // The hook's own statements belong to the transaction; if they fail, it
  // rolls back (Transaction::Commit).
  if (hook_) KEYONCE_RETURN_IF_ERROR(hook_->BeforeCommit());
  Status st = Exec("COMMIT");
  if (st.ok() && hook_) hook_->Committed();
  if (relaxed_) {
    relaxed_ = false;
    Status back = Exec("PRAGMA synchronous=FULL");
    if (st.ok()) st = back;
  }
  return st;
}
Status StateStore::Rollback() {
  Status st = Exec("ROLLBACK");
  if (hook_) hook_->RolledBack();
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
