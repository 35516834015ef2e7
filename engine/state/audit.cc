#include "state/audit.h"

#include <pwd.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdlib>
#include <ctime>

#include "keyonce/template.h"
#include "state/privacy.h"
#include "state/sqlite_util.h"
#include "state/state_sql.h"
#include "template/cpr.h"

namespace keyonce {
namespace {

// Both indexes grow at their end, so appending stays cheap however large
// the log gets: rows are appended a transaction at a time, all with the same
// time, and time and run only increase. An index led by the subject would
// instead be written at random places, rewriting most of its pages in every
// batch. A person's rows are found through (time, subject) with one seek per
// distinct time (one per transaction; see QueryAudit).
constexpr const char* kAuditSchema = R"sql(
CREATE TABLE IF NOT EXISTS audit(
  id INTEGER PRIMARY KEY, time TEXT NOT NULL, robot TEXT NOT NULL, actor TEXT NOT NULL,
  recipe TEXT NOT NULL, run INTEGER, system TEXT NOT NULL, operation TEXT NOT NULL,
  subject TEXT, detail TEXT, batch INTEGER);
CREATE INDEX IF NOT EXISTS audit_time_subject ON audit(time, subject);
CREATE INDEX IF NOT EXISTS audit_run ON audit(run, batch);
)sql";

constexpr const char* kInsert =
    "INSERT INTO audit(time, robot, actor, recipe, run, system, operation, subject, detail, batch)"
    " VALUES(?,?,?,?,?,?,?,?,?,?)";

Status DbError(sqlite3* db, const std::string& what) {
  int code = sqlite3_errcode(db);
  std::string msg = what + ": " + sqlite3_errmsg(db);
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return Status::Transient(msg);
  return Status::Io(msg);
}

// Finalizes a statement prepared for one call.
struct OwnedStmt {
  sqlite3_stmt* s = nullptr;
  ~OwnedStmt() { sqlite3_finalize(s); }
};

void BindText(sqlite3_stmt* s, int i, std::string_view v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
void BindTextOrNull(sqlite3_stmt* s, int i, std::string_view v) {
  if (v.empty()) {
    sqlite3_bind_null(s, i);
  } else {
    BindText(s, i, v);
  }
}
void BindIntOrNull(sqlite3_stmt* s, int i, int64_t v) {
  if (v == 0) {
    sqlite3_bind_null(s, i);
  } else {
    sqlite3_bind_int64(s, i, v);
  }
}

std::string FormatTime(std::chrono::system_clock::time_point tp) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
  return buf;
}

bool TableExists(sqlite3* db, const char* name) {
  OwnedStmt q;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", -1, &q.s,
                         nullptr) != SQLITE_OK) {
    return false;
  }
  sqlite3_bind_text(q.s, 1, name, -1, SQLITE_STATIC);
  return sqlite3_step(q.s) == SQLITE_ROW;
}

Status EnsureSchema(sqlite3* db) { return ExecSql(db, kAuditSchema, "creating the audit log"); }

Status Prune(sqlite3* db, int days) {
  if (days < 1) return Status::Invalid("the audit retention must be at least 1 day");
  if (!TableExists(db, "audit")) return Status::OK();
  OwnedStmt s;
  if (sqlite3_prepare_v2(db, "DELETE FROM audit WHERE time < ?", -1, &s.s, nullptr) != SQLITE_OK) {
    return DbError(db, "pruning the audit log");
  }
  BindText(s.s, 1, FormatTime(std::chrono::system_clock::now() - std::chrono::hours(24) * days));
  if (sqlite3_step(s.s) != SQLITE_DONE) return DbError(db, "pruning the audit log");
  return Status::OK();
}

}  // namespace

std::string StoredRecordSubject(Pseudonymizer& pseudonymizer, std::string_view record_json) {
  boost::system::error_code ec;
  boost::json::value record = boost::json::parse(record_json, ec);
  if (ec || !record.is_object()) return "";
  for (const auto& [k, v] : record.as_object()) {
    if (!v.is_string()) continue;
    if (auto cpr = NormalizeSubjectCpr(v.as_string())) return SubjectReference(pseudonymizer, *cpr);
  }
  return "";
}

std::string AuditTime() { return FormatTime(std::chrono::system_clock::now()); }

Status EnsureAuditSchema(StateStore& store) { return EnsureSchema(StateSql::Of(store)); }

Status AppendAudit(StateStore& store, const AuditEntry& e) {
  sqlite3* db = StateSql::Of(store);
  KEYONCE_RETURN_IF_ERROR(EnsureSchema(db));
  OwnedStmt s;
  if (sqlite3_prepare_v2(db, kInsert, -1, &s.s, nullptr) != SQLITE_OK) {
    return DbError(db, "appending to the audit log");
  }
  BindText(s.s, 1, e.time.empty() ? AuditTime() : e.time);
  BindText(s.s, 2, e.robot.empty() ? DefaultRobotName() : e.robot);
  BindText(s.s, 3, e.actor);
  BindText(s.s, 4, e.recipe);
  BindIntOrNull(s.s, 5, e.run);
  BindText(s.s, 6, e.system);
  BindText(s.s, 7, e.operation);
  BindTextOrNull(s.s, 8, e.subject);
  BindTextOrNull(s.s, 9, MaskCpr(e.detail));
  BindIntOrNull(s.s, 10, e.batch);
  if (sqlite3_step(s.s) != SQLITE_DONE) return DbError(db, "appending to the audit log");
  return Status::OK();
}

Result<std::vector<AuditEntry>> QueryAudit(StateStore& store, const AuditQuery& q) {
  sqlite3* db = StateSql::Of(store);
  std::vector<AuditEntry> out;
  if (!TableExists(db, "audit")) return out;
  const bool batches = TableExists(db, "batches");
  // Conditions are added only when given, so SQLite can pick the index.
  std::string select =
      "SELECT a.id, a.time, a.robot, a.actor, a.recipe, IFNULL(a.run,0), a.system, a.operation,"
      " IFNULL(a.subject,''), IFNULL(a.detail,''), IFNULL(a.batch,0), ";
  select +=
      batches ? "b.state FROM audit a LEFT JOIN batches b ON b.id = a.batch" : "NULL FROM audit a";
  std::string cond;
  if (!q.recipe.empty()) cond += " AND a.recipe = :recipe";
  if (q.run) cond += " AND a.run = :run";
  if (!q.from.empty()) cond += " AND a.time >= :from";
  if (!q.to.empty()) cond += " AND a.time <= :to";
  // A write whose batch was rolled back did not happen.
  if (batches) cond += " AND (a.batch IS NULL OR b.state IS NULL OR b.state <> 2)";
  std::string sql;
  if (q.subject.empty()) {
    sql = select + " WHERE 1" + cond;
  } else {
    // The person's rows, found by skipping from one distinct time to the
    // next in (time, subject), and how each run that touched them was
    // started (who, with which parameters).
    sql = "WITH RECURSIVE t(x) AS (SELECT (SELECT min(time) FROM audit";
    if (!q.from.empty()) sql += " WHERE time >= :from";
    sql +=
        ") UNION ALL SELECT (SELECT min(time) FROM audit WHERE time > t.x) FROM t"
        " WHERE t.x IS NOT NULL";
    if (!q.to.empty()) sql += " AND t.x <= :to";
    sql +=
        "), s(id, run) AS (SELECT a.id, a.run FROM t JOIN audit a"
        " ON a.time = t.x AND a.subject = :subject) ";
    sql += select + " WHERE a.id IN (SELECT id FROM s)" + cond + " UNION ALL " + select +
           " WHERE a.operation = 'start_run' AND a.subject IS NOT :subject"
           " AND a.run IN (SELECT run FROM s)" +
           cond;
  }
  sql += " ORDER BY 2, 1";
  if (q.limit > 0) sql += " LIMIT :limit";
  OwnedStmt s;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s.s, nullptr) != SQLITE_OK) {
    return DbError(db, "reading the audit log");
  }
  auto bind = [&](const char* name, const std::string& v) {
    if (int i = sqlite3_bind_parameter_index(s.s, name)) BindText(s.s, i, v);
  };
  bind(":subject", q.subject);
  bind(":recipe", q.recipe);
  if (int i = sqlite3_bind_parameter_index(s.s, ":run")) sqlite3_bind_int64(s.s, i, q.run);
  // A date alone covers its whole day.
  bind(":from", q.from.size() == 10 ? q.from + "T00:00:00.000Z" : q.from);
  bind(":to", q.to.size() == 10 ? q.to + "T23:59:59.999Z" : q.to);
  if (int i = sqlite3_bind_parameter_index(s.s, ":limit")) sqlite3_bind_int(s.s, i, q.limit);
  int rc;
  while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
    AuditEntry e;
    e.id = sqlite3_column_int64(s.s, 0);
    e.time = ColText(s.s, 1);
    e.robot = ColText(s.s, 2);
    e.actor = ColText(s.s, 3);
    e.recipe = ColText(s.s, 4);
    e.run = sqlite3_column_int64(s.s, 5);
    e.system = ColText(s.s, 6);
    e.operation = ColText(s.s, 7);
    e.subject = ColText(s.s, 8);
    e.detail = ColText(s.s, 9);
    e.batch = sqlite3_column_int64(s.s, 10);
    if (e.batch && sqlite3_column_type(s.s, 11) != SQLITE_NULL) {
      int state = sqlite3_column_int(s.s, 11);
      if (state == 0) e.state = "pending";
      if (state == 3) e.state = "in doubt";
    }
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return DbError(db, "reading the audit log");
  return out;
}

Status PruneAudit(StateStore& store, int days) { return Prune(StateSql::Of(store), days); }

Status PruneAuditIfDue(StateStore& store, int days, int64_t* pruned) {
  sqlite3* db = StateSql::Of(store);
  if (pruned) *pruned = 0;
  if (days < 1) return Status::Invalid("the audit retention must be at least 1 day");
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  // meta: "audit_pruned" = "<unix time> <days>".
  if (TableExists(db, "meta")) {
    OwnedStmt q;
    if (sqlite3_prepare_v2(db, "SELECT v FROM meta WHERE k='audit_pruned'", -1, &q.s, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(q.s) == SQLITE_ROW) {
      long long at = 0;
      int was = 0;
      if (std::sscanf(ColText(q.s, 0).c_str(), "%lld %d", &at, &was) == 2 && was == days &&
          now - at < 86400 && now >= at) {
        return Status::OK();
      }
    }
  } else {
    char* err = nullptr;
    if (sqlite3_exec(db, "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL)",
                     nullptr, nullptr, &err) != SQLITE_OK) {
      sqlite3_free(err);
      return DbError(db, "pruning the audit log");
    }
  }
  // Counted as a difference: without an audit table PruneAudit runs no
  // DELETE, and sqlite3_changes() would report the last statement's count.
  const int64_t before = sqlite3_total_changes64(db);
  KEYONCE_RETURN_IF_ERROR(Prune(db, days));
  if (pruned) *pruned = sqlite3_total_changes64(db) - before;
  OwnedStmt u;
  if (sqlite3_prepare_v2(db,
                         "INSERT INTO meta(k, v) VALUES('audit_pruned', ?) "
                         "ON CONFLICT(k) DO UPDATE SET v=excluded.v",
                         -1, &u.s, nullptr) != SQLITE_OK) {
    return DbError(db, "pruning the audit log");
  }
  BindText(u.s, 1, std::to_string(now) + " " + std::to_string(days));
  if (sqlite3_step(u.s) != SQLITE_DONE) return DbError(db, "pruning the audit log");
  return Status::OK();
}

std::optional<std::string> NormalizeSubjectCpr(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n' ||
                           text.back() == '\r')) {
    text.remove_suffix(1);
  }
  auto ten = cpr::Normalize(text);
  if (!ten || !cpr::Birthdate(*ten)) return std::nullopt;
  return ten;
}

std::optional<std::string> FindCpr(std::string_view text) {
  // The masking's reading of free text (every spelling), then the stricter
  // test of a subject: a real birth date by the century rule.
  for (auto m = cpr::FindInText(text); m; m = cpr::FindInText(text, m->end)) {
    if (auto ten = NormalizeSubjectCpr(m->Digits(text))) return ten;
  }
  return std::nullopt;
}

std::string SubjectReference(Pseudonymizer& p, std::string_view cpr10) {
  return Pseudonymizer::Reference(p.KeyHash("subject", cpr10));
}

std::string RecordSubject(const Template* subject, const Scope& scope, std::string_view key,
                          Pseudonymizer& p) {
  std::optional<std::string> cpr;
  if (subject) {
    auto v = subject->Evaluate(scope);
    if (v.ok() && !v->is_null()) cpr = NormalizeSubjectCpr(ToText(*v));
  } else {
    cpr = FindCpr(key);
  }
  return cpr ? SubjectReference(p, *cpr) : std::string();
}

std::string LocalUserName() {
  struct passwd pw;
  struct passwd* found = nullptr;
  char buf[4096];
  if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &found) == 0 && found && found->pw_name) {
    return found->pw_name;
  }
  if (const char* u = std::getenv("USER"); u && *u) return u;
  return "uid " + std::to_string(geteuid());
}

std::string DefaultRobotName() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || !host[0]) return "keyonce";
  return std::string("keyonce@") + host;
}

Result<std::unique_ptr<AuditWriter>> AuditWriter::Open(StateStore& store, std::string robot,
                                                       std::string actor, std::string recipe,
                                                       int64_t run) {
  sqlite3* db = StateSql::Of(store);
  KEYONCE_RETURN_IF_ERROR(EnsureSchema(db));
  std::unique_ptr<AuditWriter> w(new AuditWriter());
  w->db_ = db;
  w->robot_ = robot.empty() ? DefaultRobotName() : std::move(robot);
  w->actor_ = std::move(actor);
  w->recipe_ = std::move(recipe);
  w->run_ = run;
  const unsigned flags = SQLITE_PREPARE_PERSISTENT;
  if (sqlite3_prepare_v3(db, kInsert, -1, flags, &w->insert_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3(db, "DELETE FROM audit WHERE id=?", -1, flags, &w->remove_, nullptr) !=
          SQLITE_OK ||
      sqlite3_prepare_v3(db,
                         "DELETE FROM audit WHERE run = (SELECT run FROM batches WHERE id = ?1) "
                         "AND batch = ?1",
                         -1, flags, &w->discard_, nullptr) != SQLITE_OK) {
    return DbError(db, "preparing the audit log");
  }
  return w;
}

AuditWriter::~AuditWriter() {
  sqlite3_finalize(insert_);
  sqlite3_finalize(remove_);
  sqlite3_finalize(discard_);
}

Result<int64_t> AuditWriter::Append(std::string_view time, std::string_view system,
                                    std::string_view operation, std::string_view subject,
                                    std::string_view detail, int64_t batch) {
  sqlite3_stmt* s = insert_;
  auto text = [&](int i, std::string_view v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  };
  text(1, time);
  text(2, robot_);
  text(3, actor_);
  text(4, recipe_);
  BindIntOrNull(s, 5, run_);
  text(6, system);
  text(7, operation);
  if (subject.empty()) {
    sqlite3_bind_null(s, 8);
  } else {
    text(8, subject);
  }
  if (detail.empty()) {
    sqlite3_bind_null(s, 9);
  } else {
    text(9, detail);
  }
  BindIntOrNull(s, 10, batch);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (rc != SQLITE_DONE) return DbError(db_, "appending to the audit log");
  return sqlite3_last_insert_rowid(db_);
}

Status AuditWriter::Remove(int64_t id) {
  sqlite3_bind_int64(remove_, 1, id);
  int rc = sqlite3_step(remove_);
  sqlite3_reset(remove_);
  if (rc != SQLITE_DONE) return DbError(db_, "correcting the audit log");
  return Status::OK();
}

Status AuditWriter::DiscardBatch(int64_t batch) {
  sqlite3_bind_int64(discard_, 1, batch);
  int rc = sqlite3_step(discard_);
  sqlite3_reset(discard_);
  if (rc != SQLITE_DONE) return DbError(db_, "correcting the audit log");
  return Status::OK();
}

}  // namespace keyonce
