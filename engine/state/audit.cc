#include "state/audit.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <tuple>

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
CREATE TABLE IF NOT EXISTS audit_chunks(
  id INTEGER PRIMARY KEY, time TEXT NOT NULL, robot TEXT NOT NULL, actor TEXT NOT NULL,
  recipe TEXT NOT NULL, run INTEGER, system TEXT NOT NULL, operation TEXT NOT NULL,
  batch INTEGER, n INTEGER NOT NULL, rows BLOB NOT NULL, details BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS audit_chunks_time ON audit_chunks(time);
CREATE INDEX IF NOT EXISTS audit_chunks_run ON audit_chunks(run, batch);
)sql";

// A chunk's rows blob: per row 6 bytes of subject (big-endian, so the blob
// sorts as the references do) and 4 of detail index (little-endian).
constexpr size_t kChunkRow = 10;

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

// Deletes rows older than `days` days; *rows: how many.
Status Prune(sqlite3* db, int days, int64_t* rows) {
  *rows = 0;
  if (days < 1) return Status::Invalid("the audit retention must be at least 1 day");
  if (!TableExists(db, "audit")) return Status::OK();
  const std::string before =
      FormatTime(std::chrono::system_clock::now() - std::chrono::hours(24) * days);
  auto run = [&](const char* sql) -> Status {
    OwnedStmt s;
    if (sqlite3_prepare_v2(db, sql, -1, &s.s, nullptr) != SQLITE_OK) {
      return DbError(db, "pruning the audit log");
    }
    BindText(s.s, 1, before);
    int rc;
    while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) *rows += sqlite3_column_int64(s.s, 0);
    if (rc != SQLITE_DONE) return DbError(db, "pruning the audit log");
    return Status::OK();
  };
  KEYONCE_RETURN_IF_ERROR(run("DELETE FROM audit WHERE time < ? RETURNING 1"));
  if (!TableExists(db, "audit_chunks")) return Status::OK();
  return run("DELETE FROM audit_chunks WHERE time < ? RETURNING n");
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

namespace {

// The state a row's batch gives it ("" certain, "pending", "in doubt");
// nullopt for a batch rolled back: the write did not happen.
std::optional<std::string> BatchStateText(sqlite3_stmt* s, int col, int64_t batch) {
  if (!batch || sqlite3_column_type(s, col) == SQLITE_NULL) return std::string();
  switch (sqlite3_column_int(s, col)) {
    case 0:
      return std::string("pending");
    case 2:
      return std::nullopt;
    case 3:
      return std::string("in doubt");
    default:
      return std::string();
  }
}

// Conditions shared by the row and chunk queries (table alias a), added only
// when given, so SQLite can pick an index.
std::string QueryConditions(const AuditQuery& q) {
  std::string cond;
  if (!q.recipe.empty()) cond += " AND a.recipe = :recipe";
  if (q.run) cond += " AND a.run = :run";
  if (!q.from.empty()) cond += " AND a.time >= :from";
  if (!q.to.empty()) cond += " AND a.time <= :to";
  return cond;
}

void BindQuery(sqlite3_stmt* s, const AuditQuery& q) {
  auto bind = [&](const char* name, const std::string& v) {
    if (int i = sqlite3_bind_parameter_index(s, name)) BindText(s, i, v);
  };
  bind(":subject", q.subject);
  bind(":recipe", q.recipe);
  if (int i = sqlite3_bind_parameter_index(s, ":run")) sqlite3_bind_int64(s, i, q.run);
  // A date alone covers its whole day.
  bind(":from", q.from.size() == 10 ? q.from + "T00:00:00.000Z" : q.from);
  bind(":to", q.to.size() == 10 ? q.to + "T23:59:59.999Z" : q.to);
}

// An entry and where it sorts: by time, then rows before chunks, then by id
// and place in the chunk.
struct Found {
  AuditEntry e;
  int64_t chunk = 0, id = 0;
};

// Rows of the table `audit`. `runs_of`: only the start_run rows of these
// runs that are about someone else (how a run that touched the subject began).
Status QueryRows(sqlite3* db, const AuditQuery& q, bool batches,
                 const std::vector<int64_t>* runs_of, std::vector<Found>* out) {
  std::string sql =
      "SELECT a.id, a.time, a.robot, a.actor, a.recipe, IFNULL(a.run,0), a.system, a.operation,"
      " IFNULL(a.subject,''), IFNULL(a.detail,''), IFNULL(a.batch,0), ";
  sql +=
      batches ? "b.state FROM audit a LEFT JOIN batches b ON b.id = a.batch" : "NULL FROM audit a";
  const std::string cond = QueryConditions(q);
  if (runs_of) {
    std::string in;
    for (int64_t r : *runs_of) in += (in.empty() ? "" : ",") + std::to_string(r);
    sql += " WHERE a.operation = 'start_run' AND a.subject IS NOT :subject AND a.run IN (" + in +
           ")" + cond;
  } else if (q.subject.empty()) {
    sql += " WHERE 1" + cond;
  } else {
    // The person's rows, found by skipping from one distinct time to the
    // next in (time, subject).
    std::string t = "WITH RECURSIVE t(x) AS (SELECT (SELECT min(time) FROM audit";
    if (!q.from.empty()) t += " WHERE time >= :from";
    t += ") UNION ALL SELECT (SELECT min(time) FROM audit WHERE time > t.x) FROM t"
         " WHERE t.x IS NOT NULL";
    if (!q.to.empty()) t += " AND t.x <= :to";
    t += "), s(id) AS (SELECT a.id FROM t JOIN audit a ON a.time = t.x AND a.subject = :subject) ";
    sql = t + sql + " WHERE a.id IN (SELECT id FROM s)" + cond;
  }
  OwnedStmt s;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s.s, nullptr) != SQLITE_OK) {
    return DbError(db, "reading the audit log");
  }
  BindQuery(s.s, q);
  int rc;
  while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
    Found f;
    AuditEntry& e = f.e;
    f.id = e.id = sqlite3_column_int64(s.s, 0);
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
    auto state = BatchStateText(s.s, 11, e.batch);
    if (!state) continue;  // a write whose batch was rolled back did not happen
    e.state = std::move(*state);
    out->push_back(std::move(f));
  }
  if (rc != SQLITE_DONE) return DbError(db, "reading the audit log");
  return Status::OK();
}

uint64_t RowSubject(const unsigned char* row) {
  uint64_t v = 0;
  for (int i = 0; i < 6; ++i) v = v << 8 | row[i];
  return v;
}
uint32_t Le32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}
void PutLe32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
uint32_t RowDetail(const unsigned char* row) { return Le32(row + 6); }

// The details blob: each detail as a 4-byte little-endian length and its bytes.
std::vector<std::string_view> DecodeDetails(const unsigned char* p, size_t n) {
  std::vector<std::string_view> out;
  size_t at = 0;
  while (at + 4 <= n) {
    uint32_t len = Le32(p + at);
    at += 4;
    if (len > n - at) break;
    out.emplace_back(reinterpret_cast<const char*>(p + at), len);
    at += len;
  }
  return out;
}

// Rows stored in chunks: all of them, or the subject's (a binary search in
// each chunk's sorted rows).
Status QueryChunks(sqlite3* db, const AuditQuery& q, bool batches, std::vector<Found>* out) {
  std::optional<uint64_t> subject;
  if (!q.subject.empty()) {
    subject = Pseudonymizer::ReferenceBits(q.subject);
    if (!subject) return Status::OK();  // not a reference: no chunk row is about it
  }
  std::string sql =
      "SELECT a.id, a.time, a.robot, a.actor, a.recipe, IFNULL(a.run,0), a.system, a.operation,"
      " IFNULL(a.batch,0), ";
  sql += batches ? "b.state" : "NULL";
  sql += ", a.rows, a.details FROM audit_chunks a";
  if (batches) sql += " LEFT JOIN batches b ON b.id = a.batch";
  sql += " WHERE 1" + QueryConditions(q);
  OwnedStmt s;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s.s, nullptr) != SQLITE_OK) {
    return DbError(db, "reading the audit log");
  }
  BindQuery(s.s, q);
  int rc;
  while ((rc = sqlite3_step(s.s)) == SQLITE_ROW) {
    const int64_t batch = sqlite3_column_int64(s.s, 8);
    auto state = BatchStateText(s.s, 9, batch);
    if (!state) continue;  // a write whose batch was rolled back did not happen
    const auto* rows = static_cast<const unsigned char*>(sqlite3_column_blob(s.s, 10));
    const size_t n = static_cast<size_t>(sqlite3_column_bytes(s.s, 10)) / kChunkRow;
    size_t first = 0, last = n;
    if (subject) {
      // The rows sort by subject: [first, last) are the subject's.
      size_t lo = 0, hi = n;
      while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (RowSubject(rows + mid * kChunkRow) < *subject)
          lo = mid + 1;
        else
          hi = mid;
      }
      first = last = lo;
      while (last < n && RowSubject(rows + last * kChunkRow) == *subject) ++last;
      if (first == last) continue;
    }
    const auto details =
        DecodeDetails(static_cast<const unsigned char*>(sqlite3_column_blob(s.s, 11)),
                      static_cast<size_t>(sqlite3_column_bytes(s.s, 11)));
    Found f;
    f.chunk = sqlite3_column_int64(s.s, 0);
    AuditEntry& e = f.e;
    e.time = ColText(s.s, 1);
    e.robot = ColText(s.s, 2);
    e.actor = ColText(s.s, 3);
    e.recipe = ColText(s.s, 4);
    e.run = sqlite3_column_int64(s.s, 5);
    e.system = ColText(s.s, 6);
    e.operation = ColText(s.s, 7);
    e.batch = batch;
    e.state = std::move(*state);
    for (size_t i = first; i < last; ++i) {
      const unsigned char* row = rows + i * kChunkRow;
      f.id = static_cast<int64_t>(i);
      e.subject = Pseudonymizer::ReferenceOfBits(RowSubject(row));
      uint32_t d = RowDetail(row);
      e.detail = d < details.size() ? std::string(details[d]) : std::string();
      out->push_back(f);
    }
  }
  if (rc != SQLITE_DONE) return DbError(db, "reading the audit log");
  return Status::OK();
}

}  // namespace

Result<std::vector<AuditEntry>> QueryAudit(StateStore& store, const AuditQuery& q) {
  sqlite3* db = StateSql::Of(store);
  std::vector<AuditEntry> out;
  if (!TableExists(db, "audit")) return out;
  const bool batches = TableExists(db, "batches");
  std::vector<Found> found;
  KEYONCE_RETURN_IF_ERROR(QueryRows(db, q, batches, nullptr, &found));
  if (TableExists(db, "audit_chunks")) KEYONCE_RETURN_IF_ERROR(QueryChunks(db, q, batches, &found));
  if (!q.subject.empty()) {
    // How each run that touched the person was started (who, with which parameters).
    std::vector<int64_t> runs;
    for (const Found& f : found) {
      if (f.e.run) runs.push_back(f.e.run);
    }
    std::sort(runs.begin(), runs.end());
    runs.erase(std::unique(runs.begin(), runs.end()), runs.end());
    if (!runs.empty()) KEYONCE_RETURN_IF_ERROR(QueryRows(db, q, batches, &runs, &found));
  }
  std::sort(found.begin(), found.end(), [](const Found& a, const Found& b) {
    return std::tie(a.e.time, a.chunk, a.id) < std::tie(b.e.time, b.chunk, b.id);
  });
  if (q.limit > 0 && found.size() > static_cast<size_t>(q.limit)) found.resize(q.limit);
  out.reserve(found.size());
  for (Found& f : found) out.push_back(std::move(f.e));
  return out;
}

Status PruneAudit(StateStore& store, int days) {
  int64_t rows = 0;
  return Prune(StateSql::Of(store), days, &rows);
}

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
  int64_t rows = 0;
  KEYONCE_RETURN_IF_ERROR(Prune(db, days, &rows));
  if (pruned) *pruned = rows;
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

int AuditChunk::Add(std::string_view subject, std::string_view detail) {
  auto bits = Pseudonymizer::ReferenceBits(subject);
  if (!bits) return -1;
  // Rows of one chunk share few details (a connector, a criterion) or none
  // (positions): only the last one is looked for.
  uint32_t d;
  if (!details_.empty() && details_.back() == detail) {
    d = static_cast<uint32_t>(details_.size() - 1);
  } else {
    d = static_cast<uint32_t>(details_.size());
    details_.emplace_back(detail);
  }
  rows_.push_back({*bits, d, false});
  ++live_;
  dirty_ = true;
  return static_cast<int>(rows_.size() - 1);
}

void AuditChunk::Remove(int index) {
  if (index < 0 || static_cast<size_t>(index) >= rows_.size() || rows_[index].removed) return;
  rows_[index].removed = true;
  --live_;
  dirty_ = true;
}

std::string AuditChunk::EncodeRows() const {
  std::vector<const Row*> sorted;
  sorted.reserve(live_);
  for (const Row& r : rows_) {
    if (!r.removed) sorted.push_back(&r);
  }
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Row* a, const Row* b) { return a->subject < b->subject; });
  std::string out;
  out.reserve(sorted.size() * kChunkRow);
  for (const Row* r : sorted) {
    for (int shift = 40; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>(r->subject >> shift));
    PutLe32(&out, r->detail);
  }
  return out;
}

std::string AuditChunk::EncodeDetails() const {
  std::string out;
  for (const std::string& d : details_) {
    PutLe32(&out, static_cast<uint32_t>(d.size()));
    out += d;
  }
  return out;
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
                         -1, flags, &w->discard_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3(db,
                         "INSERT INTO audit_chunks(time, robot, actor, recipe, run, system, "
                         "operation, batch, n, rows, details) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                         -1, flags, &w->insert_chunk_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3(db, "UPDATE audit_chunks SET n=?, rows=?, details=? WHERE id=?", -1, flags,
                         &w->update_chunk_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3(db, "DELETE FROM audit_chunks WHERE id=?", -1, flags, &w->delete_chunk_,
                         nullptr) != SQLITE_OK ||
      sqlite3_prepare_v3(db,
                         "DELETE FROM audit_chunks WHERE run = (SELECT run FROM batches WHERE "
                         "id = ?1) AND batch = ?1",
                         -1, flags, &w->discard_chunks_, nullptr) != SQLITE_OK) {
    return DbError(db, "preparing the audit log");
  }
  return w;
}

AuditWriter::~AuditWriter() {
  sqlite3_finalize(insert_);
  sqlite3_finalize(remove_);
  sqlite3_finalize(discard_);
  sqlite3_finalize(insert_chunk_);
  sqlite3_finalize(update_chunk_);
  sqlite3_finalize(delete_chunk_);
  sqlite3_finalize(discard_chunks_);
}

void AuditWriter::BindCommon(sqlite3_stmt* s, std::string_view time, std::string_view system,
                             std::string_view operation) {
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
}

Result<int64_t> AuditWriter::Append(std::string_view time, std::string_view system,
                                    std::string_view operation, std::string_view subject,
                                    std::string_view detail, int64_t batch) {
  sqlite3_stmt* s = insert_;
  BindCommon(s, time, system, operation);
  auto text = [&](int i, std::string_view v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  };
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

namespace {
// Steps a prepared statement once and resets it.
bool StepOnce(sqlite3_stmt* s) {
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return rc == SQLITE_DONE;
}
}  // namespace

Status AuditWriter::DiscardBatch(int64_t batch) {
  for (sqlite3_stmt* s : {discard_, discard_chunks_}) {
    sqlite3_bind_int64(s, 1, batch);
    if (!StepOnce(s)) return DbError(db_, "correcting the audit log");
  }
  return Status::OK();
}

Status AuditWriter::Save(std::string_view time, AuditChunk& chunk) {
  if (!chunk.dirty_) return Status::OK();
  const std::string rows = chunk.EncodeRows();
  auto blob = [](sqlite3_stmt* s, int i, const std::string& v) {
    sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  };
  bool ok;
  if (chunk.id_ && chunk.live_ == 0) {
    sqlite3_bind_int64(delete_chunk_, 1, chunk.id_);
    ok = StepOnce(delete_chunk_);
    chunk.id_ = 0;
  } else if (chunk.id_) {
    sqlite3_bind_int64(update_chunk_, 1, static_cast<int64_t>(chunk.live_));
    blob(update_chunk_, 2, rows);
    const std::string details = chunk.EncodeDetails();
    blob(update_chunk_, 3, details);
    sqlite3_bind_int64(update_chunk_, 4, chunk.id_);
    ok = StepOnce(update_chunk_);
  } else if (chunk.live_ == 0) {
    ok = true;
  } else {
    sqlite3_stmt* s = insert_chunk_;
    const std::string details = chunk.EncodeDetails();
    BindCommon(s, time, chunk.system_, chunk.operation_);
    BindIntOrNull(s, 8, chunk.batch_);
    sqlite3_bind_int64(s, 9, static_cast<int64_t>(chunk.live_));
    blob(s, 10, rows);
    blob(s, 11, details);
    ok = StepOnce(s);
    if (ok) chunk.id_ = sqlite3_last_insert_rowid(db_);
  }
  if (!ok) return DbError(db_, "appending to the audit log");
  chunk.dirty_ = false;
  return Status::OK();
}

}  // namespace keyonce
