#include "state/service_db.h"

#include <sqlite3.h>

#include "state/sqlite_util.h"
#include "state/state_sql.h"

namespace keyonce::service {

ServiceDb::ServiceDb(StateStore& store) : db_(StateSql::Of(store)) {}

namespace {

const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS service_runs(
  id INTEGER PRIMARY KEY, recipe TEXT NOT NULL, trigger TEXT NOT NULL, started_by TEXT,
  status TEXT NOT NULL, params TEXT, params_masked TEXT, retry TEXT,
  queued_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, engine_run INTEGER,
  summary TEXT, error TEXT, log TEXT);
CREATE INDEX IF NOT EXISTS service_runs_status ON service_runs(status);
CREATE INDEX IF NOT EXISTS service_runs_recipe ON service_runs(recipe, id);
CREATE TABLE IF NOT EXISTS schedule_state(
  recipe TEXT PRIMARY KEY, last_fire INTEGER NOT NULL, cron TEXT NOT NULL DEFAULT '');
)";

struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &s, nullptr); }
  ~Stmt() { sqlite3_finalize(s); }
  void Text(int i, const std::string& v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void NullableText(int i, const std::string& v) {
    if (v.empty())
      sqlite3_bind_null(s, i);
    else
      Text(i, v);
  }
  void Int(int i, int64_t v) { sqlite3_bind_int64(s, i, v); }
};

constexpr const char* kCols =
    "id, recipe, trigger, IFNULL(started_by,''), status, IFNULL(params,''), "
    "IFNULL(params_masked,''),"
    " IFNULL(retry,''), queued_at, IFNULL(started_at,''), IFNULL(finished_at,''), "
    "IFNULL(engine_run,0),"
    " IFNULL(summary,''), IFNULL(error,''), IFNULL(log,'')";

RunRow Read(sqlite3_stmt* s) {
  RunRow r;
  r.id = sqlite3_column_int64(s, 0);
  r.recipe = ColText(s, 1);
  r.trigger = ColText(s, 2);
  r.started_by = ColText(s, 3);
  r.status = ColText(s, 4);
  r.params = ColText(s, 5);
  r.params_masked = ColText(s, 6);
  r.retry = ColText(s, 7);
  r.queued_at = ColText(s, 8);
  r.started_at = ColText(s, 9);
  r.finished_at = ColText(s, 10);
  r.engine_run = sqlite3_column_int64(s, 11);
  r.summary = ColText(s, 12);
  r.error = ColText(s, 13);
  r.log = ColText(s, 14);
  return r;
}

}  // namespace

Status ServiceDb::Error(const char* what) {
  return Status::Io(std::string(what) + ": " + sqlite3_errmsg(db_));
}

Status ServiceDb::Exec(const char* sql) { return ExecSql(db_, sql, "state store"); }

Status ServiceDb::Init() { return Exec(kSchema); }

Result<int64_t> ServiceDb::Enqueue(const RunRow& r, std::optional<int64_t> fire_time,
                                   const std::string& cron) {
  if (Status st = Exec("BEGIN IMMEDIATE"); !st.ok()) return st;
  Stmt s(db_,
         "INSERT INTO service_runs(recipe, trigger, started_by, status, params, params_masked,"
         " retry, queued_at) VALUES(?,?,?,'queued',?,?,?,?)");
  s.Text(1, r.recipe);
  s.Text(2, r.trigger);
  s.NullableText(3, r.started_by);
  s.NullableText(4, r.params);
  s.NullableText(5, r.params_masked);
  s.NullableText(6, r.retry);
  s.Text(7, r.queued_at);
  if (sqlite3_step(s.s) != SQLITE_DONE) {
    Status st = Error("queuing a run");
    Exec("ROLLBACK");
    return st;
  }
  int64_t id = sqlite3_last_insert_rowid(db_);
  if (fire_time) {
    if (Status st = SetLastFire(r.recipe, *fire_time, cron); !st.ok()) {
      Exec("ROLLBACK");
      return st;
    }
  }
  if (Status st = Exec("COMMIT"); !st.ok()) return st;
  return id;
}

Status ServiceDb::MarkStarted(int64_t id, const std::string& at) {
  Stmt s(db_, "UPDATE service_runs SET status='running', started_at=? WHERE id=?");
  s.Text(1, at);
  s.Int(2, id);
  return sqlite3_step(s.s) == SQLITE_DONE ? Status::OK() : Error("marking a run started");
}

Status ServiceDb::SetEngineRun(int64_t id, int64_t engine_run) {
  Stmt s(db_, "UPDATE service_runs SET engine_run=? WHERE id=?");
  s.Int(1, engine_run);
  s.Int(2, id);
  return sqlite3_step(s.s) == SQLITE_DONE ? Status::OK() : Error("recording a run's id");
}

Status ServiceDb::Finish(const RunRow& r) {
  Stmt s(db_,
         "UPDATE service_runs SET status=?, finished_at=?, summary=?, error=?, log=?, params=?,"
         " engine_run=COALESCE(NULLIF(?,0), engine_run) WHERE id=?");
  s.Text(1, r.status);
  s.NullableText(2, r.finished_at);
  s.NullableText(3, r.summary);
  s.NullableText(4, r.error);
  s.NullableText(5, r.log);
  s.NullableText(6, r.params);
  s.Int(7, r.engine_run);
  s.Int(8, r.id);
  return sqlite3_step(s.s) == SQLITE_DONE ? Status::OK() : Error("recording a finished run");
}

Result<int> ServiceDb::RequeueInterrupted() {
  Stmt s(db_,
         "UPDATE service_runs SET status='queued', trigger='resume', started_at=NULL"
         " WHERE status IN ('running','interrupted')");
  if (sqlite3_step(s.s) != SQLITE_DONE) return Error("requeuing interrupted runs");
  return sqlite3_changes(db_);
}

Result<std::vector<RunRow>> ServiceDb::Queued() {
  static const std::string sql =
      std::string("SELECT ") + kCols + " FROM service_runs WHERE status='queued' ORDER BY id";
  Stmt s(db_, sql.c_str());
  std::vector<RunRow> out;
  while (sqlite3_step(s.s) == SQLITE_ROW) out.push_back(Read(s.s));
  return out;
}

Result<std::vector<RunRow>> ServiceDb::Running() {
  static const std::string sql =
      std::string("SELECT ") + kCols + " FROM service_runs WHERE status='running' ORDER BY id";
  Stmt s(db_, sql.c_str());
  std::vector<RunRow> out;
  while (sqlite3_step(s.s) == SQLITE_ROW) out.push_back(Read(s.s));
  return out;
}

Result<std::optional<RunRow>> ServiceDb::Get(int64_t id) {
  static const std::string sql = std::string("SELECT ") + kCols + " FROM service_runs WHERE id=?";
  Stmt s(db_, sql.c_str());
  s.Int(1, id);
  if (sqlite3_step(s.s) == SQLITE_ROW) return std::optional<RunRow>(Read(s.s));
  return std::optional<RunRow>();
}

Result<std::vector<RunRow>> ServiceDb::List(const std::string& recipe,
                                            const std::string& started_by, int64_t before,
                                            int limit) {
  static const std::string sql =
      std::string("SELECT ") + kCols +
      " FROM service_runs WHERE (?1='' OR recipe=?1) AND (?2='' OR started_by=?2)"
      " AND (?3=0 OR id<?3) ORDER BY id DESC LIMIT ?4";
  Stmt s(db_, sql.c_str());
  s.Text(1, recipe);
  s.Text(2, started_by);
  s.Int(3, before);
  s.Int(4, limit);
  std::vector<RunRow> out;
  while (sqlite3_step(s.s) == SQLITE_ROW) out.push_back(Read(s.s));
  return out;
}

Result<std::optional<std::pair<int64_t, std::string>>> ServiceDb::LastFire(
    const std::string& recipe) {
  Stmt s(db_, "SELECT last_fire, cron FROM schedule_state WHERE recipe=?");
  s.Text(1, recipe);
  if (sqlite3_step(s.s) == SQLITE_ROW) {
    return std::optional<std::pair<int64_t, std::string>>(
        std::make_pair(sqlite3_column_int64(s.s, 0), ColText(s.s, 1)));
  }
  return std::optional<std::pair<int64_t, std::string>>();
}

Status ServiceDb::SetLastFire(const std::string& recipe, int64_t fire_time,
                              const std::string& cron) {
  Stmt s(db_,
         "INSERT INTO schedule_state(recipe, last_fire, cron) VALUES(?,?,?) "
         "ON CONFLICT(recipe) DO UPDATE SET last_fire=excluded.last_fire, cron=excluded.cron");
  s.Text(1, recipe);
  s.Int(2, fire_time);
  s.Text(3, cron);
  return sqlite3_step(s.s) == SQLITE_DONE ? Status::OK()
                                          : Error("recording a schedule's fire time");
}

}  // namespace keyonce::service
