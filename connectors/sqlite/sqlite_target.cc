// The sqlite target: inserts or upserts one row per record (many rows a
// statement when nothing is read back), a transaction per batch, with its
// checkpoint row committed in the same transaction.

#include <algorithm>
#include <boost/json/object.hpp>

#include "connectors/common/sql_table.h"
#include "connectors/sqlite/sqlite_internal.h"
#include "connectors/sqlite/sqlite_util.h"

namespace keyonce::connectors::sqlite {
namespace {

constexpr const char* kCheckpointTable = "keyonce_checkpoint";

struct Config : SqlTableShape {
  std::string table, table_q;
  double busy_seconds = 10;
  bool sync_full = true;
};

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

// RETURNING makes SQLite buffer rows in a temporary table per statement
// (about 40% of an insert's cost), so it is used only when columns are asked
// for; the rowid alone comes from sqlite3_last_insert_rowid.
std::string ReturningClause(const Config& c) {
  if (c.returning.empty()) return "";
  std::string out = " RETURNING rowid";
  for (const auto& r : c.returning_q) out += ", " + r;
  return out;
}

// The insert (or upsert) of `rows` rows in one statement.
std::string WriteSql(const Config& c, size_t rows = 1) {
  std::vector<std::string> tuples;
  for (size_t r = 0; r < rows; ++r) {
    std::vector<std::string> params;
    for (size_t i = 0; i < c.columns.size(); ++i) {
      params.push_back("?" + std::to_string(r * c.columns.size() + i + 1));
    }
    tuples.push_back("(" + Join(params, ", ") + ")");
  }
  std::string sql = "INSERT INTO " + c.table_q + " (" + Join(c.columns_q, ", ") + ") VALUES " +
                    Join(tuples, ", ");
  if (c.upsert) {
    std::vector<std::string> keys, sets;
    for (size_t k : c.keys) keys.push_back(c.columns_q[k]);
    for (size_t i = 0; i < c.columns.size(); ++i) {
      if (std::find(c.keys.begin(), c.keys.end(), i) != c.keys.end()) continue;
      sets.push_back(c.columns_q[i] + " = excluded." + c.columns_q[i]);
    }
    // Only key columns: a no-op update, so RETURNING still reports the row.
    if (sets.empty()) sets.push_back(keys[0] + " = excluded." + keys[0]);
    sql += " ON CONFLICT (" + Join(keys, ", ") + ") DO UPDATE SET " + Join(sets, ", ");
  }
  return sql + ReturningClause(c);
}

std::string CheckSql(const Config& c) {
  std::string sql = "SELECT rowid";
  for (const auto& r : c.returning_q) sql += ", " + r;
  sql += " FROM " + c.table_q + " WHERE ";
  for (size_t i = 0; i < c.keys.size(); ++i) {
    if (i) sql += " AND ";
    sql += c.columns_q[c.keys[i]] + " = ?" + std::to_string(i + 1);
  }
  return sql + " LIMIT 1";
}

// rowid and the `returning` columns of the current row.
Value Reply(sqlite3_stmt* stmt, const Config& c) {
  boost::json::object o;
  o.reserve(1 + c.returning.size());
  o.emplace("rowid", ColumnValue(stmt, 0));
  for (size_t i = 0; i < c.returning.size(); ++i) {
    o.insert_or_assign(c.returning[i], ColumnValue(stmt, static_cast<int>(i + 1)));
  }
  return Value(std::move(o));
}

class SqliteTarget : public Target {
 public:
  SqliteTarget(Settings settings, Config config)
      : settings_(std::move(settings)), c_(std::move(config)) {}
  ~SqliteTarget() override { Close(false); }

  TargetTraits Traits() const override {
    TargetTraits t;
    t.supports_update = c_.upsert;
    t.idempotent = c_.upsert;
    t.writes_in_order = true;
    return t;
  }

  Status Open(const RunContext& ctx) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status();
    checkpoint_key_ = ctx.recipe + "/" + ctx.target_name;
    auto db = OpenDb(*path, false, /*create=*/c_.create_table, c_.busy_seconds);
    if (!db.ok()) return db.status();
    db_ = std::move(db).value();
    sqlite3* db_raw = db_.get();

    KEYONCE_RETURN_IF_ERROR(Exec(db_raw, "PRAGMA journal_mode=WAL", "setting journal_mode"));
    KEYONCE_RETURN_IF_ERROR(
        Exec(db_raw, c_.sync_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
             "setting synchronous"));
    // A batch touches index pages all over the table; SQLite's 2 MiB default
    // cache spills them mid-transaction.
    KEYONCE_RETURN_IF_ERROR(Exec(db_raw, "PRAGMA cache_size=-8192", "setting cache_size"));
    // A chunk of rows (WriteChunk) runs inside a savepoint, so SQLite keeps the
    // pages it changes in a statement journal: past 64 KiB that is a temporary
    // file, written and truncated for every chunk (486 MB of writes for
    // 100,000 rows, 12% of the run's CPU). In memory it is one chunk's pages.
    KEYONCE_RETURN_IF_ERROR(Exec(db_raw, "PRAGMA temp_store=MEMORY", "setting temp_store"));
    // Checkpoints every 64 MiB of WAL, not SQLite's 4 MiB: a batch of upserts
    // changes index pages all over a large table, and every checkpoint copies
    // each changed page back into the file once, however often batches changed
    // it since. 1,000,000 rows in batches of 10,000: 31 -> 22 us a row. The WAL
    // file may reach 64 MiB during a run; it is removed when the run ends.
    KEYONCE_RETURN_IF_ERROR(
        Exec(db_raw, "PRAGMA wal_autocheckpoint=16384", "setting wal_autocheckpoint"));
    KEYONCE_RETURN_IF_ERROR(Exec(db_raw,
                                 std::string("CREATE TABLE IF NOT EXISTS ") + kCheckpointTable +
                                     " (target TEXT PRIMARY KEY, batch INTEGER, state TEXT)",
                                 "creating the checkpoint table"));
    state_id_ = ctx.state_id;
    {
      // A checkpoint table from before state ids gets its column.
      auto probe = Prepare(db_raw,
                           std::string("SELECT 1 FROM pragma_table_info('") + kCheckpointTable +
                               "') WHERE name = 'state'",
                           "reading the checkpoint table");
      if (!probe.ok()) return probe.status();
      if (sqlite3_step(probe->get()) != SQLITE_ROW) {
        KEYONCE_RETURN_IF_ERROR(
            Exec(db_raw, std::string("ALTER TABLE ") + kCheckpointTable + " ADD COLUMN state TEXT",
                 "adding the state id to the checkpoint table"));
      }
    }
    if (c_.create_table) {
      KEYONCE_RETURN_IF_ERROR(
          Exec(db_raw,
               "CREATE TABLE IF NOT EXISTS " + c_.table_q + " (" + Join(c_.columns_q, ", ") + ")",
               "creating table " + c_.table));
      if (!c_.keys.empty()) {
        std::vector<std::string> keys;
        for (size_t k : c_.keys) keys.push_back(c_.columns_q[k]);
        auto index = QuoteIdent(c_.table + "_keyonce_key", "index name");
        if (!index.ok()) return index.status();
        KEYONCE_RETURN_IF_ERROR(Exec(db_raw,
                                     "CREATE UNIQUE INDEX IF NOT EXISTS " + *index + " ON " +
                                         c_.table_q + " (" + Join(keys, ", ") + ")",
                                     "creating the unique index on key_columns of " + c_.table));
      }
    }

    const std::string where = " of table " + c_.table;
    auto write = Prepare(
        db_raw, WriteSql(c_),
        std::string("preparing the ") + (c_.upsert ? "upsert" : "insert") + " into " + c_.table);
    if (!write.ok()) {
      Status s = write.status();
      if (c_.upsert && s.message().find("ON CONFLICT") != std::string::npos) {
        return Status::Invalid(s.message() +
                               " (mode upsert needs a UNIQUE index or PRIMARY KEY on exactly "
                               "key_columns; create_table: true makes one)");
      }
      return s;
    }
    write_ = std::move(write).value();
    if (!c_.keys.empty()) {
      auto check = Prepare(db_raw, CheckSql(c_), "preparing the check" + where);
      if (!check.ok()) return check.status();
      check_ = std::move(check).value();
    }
    auto cp = Prepare(db_raw,
                      std::string("INSERT INTO ") + kCheckpointTable +
                          " (target, batch, state) VALUES (?1, ?2, ?3) ON CONFLICT (target) DO "
                          "UPDATE SET batch = excluded.batch, state = excluded.state",
                      "preparing the checkpoint update");
    if (!cp.ok()) return cp.status();
    checkpoint_ = std::move(cp).value();
    for (auto [stmt, sql] : {std::pair{&begin_, "BEGIN IMMEDIATE"}, std::pair{&commit_, "COMMIT"},
                             std::pair{&rollback_, "ROLLBACK"}}) {
      auto s = Prepare(db_raw, sql, std::string("preparing ") + sql);
      if (!s.ok()) return s.status();
      *stmt = std::move(s).value();
    }
    return Status::OK();
  }

  Result<Value> Render(const WriteOp& op) override {
    KEYONCE_RETURN_IF_ERROR(RenderValues(op));
    return RenderSqlWrite(c_.table, c_, Bound());
  }

  WriteResult Write(const WriteOp& op) override {
    WriteResult res;
    if (!write_) {
      res.status = Status::Internal("sqlite target written before Open");
      return res;
    }
    if (!broken_.ok()) {
      res.status = broken_;
      return res;
    }
    res.status = RenderValues(op);
    if (!res.status.ok()) return res;
    res.status = BeginIfNeeded();
    if (!res.status.ok()) return res;

    sqlite3_stmt* s = write_.get();
    const bool returning = !c_.returning.empty();
    if (!returning) sqlite3_set_last_insert_rowid(db_.get(), 0);
    for (size_t i = 0; i < bound_.size(); ++i) {
      int rc = BindValue(s, static_cast<int>(i + 1), *bound_[i]);
      if (rc != SQLITE_OK) {
        const auto values = Bound();
        res.status = ErrorStatus(db_.get(), rc, "binding column " + c_.columns[i], &values);
        sqlite3_reset(s);
        return res;
      }
    }
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      res.reply = Reply(s, c_);
      while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      }
    }
    if (rc != SQLITE_DONE) {
      const auto values = Bound();
      res.status = ErrorStatus(db_.get(), rc, "writing to table " + c_.table, &values);
      sqlite3_reset(s);
      NoteLostTransaction();
      return res;
    }
    sqlite3_reset(s);
    if (!returning && op.wants_reply) {
      sqlite3_int64 rowid = sqlite3_last_insert_rowid(db_.get());
      if (rowid == 0 && c_.upsert) {
        // The upsert updated an existing row (an update leaves the insert
        // rowid alone): find it by key.
        auto found = FindByKey();
        if (!found.ok()) {
          res.status = found.status();
          return res;
        }
        res.reply = std::move(found).value();
      } else {
        boost::json::object o;
        o.emplace("rowid", static_cast<int64_t>(rowid));
        res.reply = std::move(o);
      }
    }
    if (res.reply.is_null()) res.reply = boost::json::object();
    return res;
  }

  // Writes that nothing reads a reply of go ChunkRows() rows to a statement:
  // a statement's own cost (its statement journal, its end) is then shared,
  // which halves the cost of a row. A chunk that fails is rolled back to a
  // savepoint (whatever the table's conflict clauses: FAIL keeps earlier
  // rows of a statement), and its rows are written again one at a time, so
  // each failure is told apart and reported as Write reports it.
  std::vector<WriteResult> WriteMany(const std::vector<WriteOp>& ops) override {
    std::vector<WriteResult> out;
    out.reserve(ops.size());
    const size_t chunk = ChunkRows();
    for (size_t i = 0; i < ops.size();) {
      size_t end = i;
      while (end < ops.size() && end - i < chunk && !ops[end].wants_reply) ++end;
      if (chunk > 1 && end - i == chunk && WriteChunk(ops, i, chunk)) {
        for (; i < end; ++i) out.emplace_back().reply = boost::json::object();
        continue;
      }
      // One at a time, returning after the first failure (writes_in_order).
      for (end = std::max(end, i + 1); i < end; ++i) {
        out.push_back(Write(ops[i]));
        if (!out.back().status.ok()) return out;
      }
    }
    return out;
  }

  Result<CommitResult> Commit(uint64_t batch, bool /*final*/) override {
    if (!db_) return Status::Internal("sqlite target committed before Open");
    if (!broken_.ok()) return broken_;
    KEYONCE_RETURN_IF_ERROR(BeginIfNeeded());
    sqlite3_stmt* cp = checkpoint_.get();
    sqlite3_bind_text(cp, 1, checkpoint_key_.data(), static_cast<int>(checkpoint_key_.size()),
                      SQLITE_STATIC);
    sqlite3_bind_int64(cp, 2, static_cast<sqlite3_int64>(batch));
    sqlite3_bind_text(cp, 3, state_id_.data(), static_cast<int>(state_id_.size()), SQLITE_STATIC);
    int rc = sqlite3_step(cp);
    sqlite3_reset(cp);
    if (rc != SQLITE_DONE) {
      Status s = ErrorStatus(db_.get(), rc, "updating the checkpoint");
      NoteLostTransaction();
      return s;
    }
    rc = sqlite3_step(commit_.get());
    sqlite3_reset(commit_.get());
    if (rc != SQLITE_DONE) {
      // A busy COMMIT leaves the transaction open: it can be tried again.
      Status s = ErrorStatus(db_.get(), rc, "committing batch " + std::to_string(batch));
      NoteLostTransaction();
      return s;
    }
    in_txn_ = false;
    CommitResult out;
    out.durable = true;
    out.token = std::to_string(batch);
    return out;
  }

  Result<RecoverResult> Recover(const RunContext& ctx, uint64_t /*first_pending*/,
                                const std::string& /*token*/) override {
    auto mark = ReadCheckpoint(ctx);
    if (!mark.ok()) return mark.status();
    RecoverResult out;
    out.known = true;  // no checkpoint row: no batch reached it
    if (mark->has_value()) out.applied_through = (*mark)->batch;
    return out;
  }

  Result<std::optional<TargetMark>> Mark(const RunContext& ctx) override {
    return ReadCheckpoint(ctx);
  }

  // The checkpoint row of this recipe's target, if the database has one
  // (read without creating or changing anything).
  Result<std::optional<TargetMark>> ReadCheckpoint(const RunContext& ctx) {
    std::optional<TargetMark> none;
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status();
    auto db = OpenDb(*path, false, false, c_.busy_seconds);
    if (!db.ok()) {
      if (db.status().code() == Status::Code::kNotFound) return none;
      return db.status();
    }
    // Tables made before state ids have no `state` column.
    auto columns = Prepare(
        db->get(), std::string("SELECT name FROM pragma_table_info('") + kCheckpointTable + "')",
        "reading the schema");
    if (!columns.ok()) return columns.status();
    bool table = false, has_state = false;
    int rc;
    while ((rc = sqlite3_step(columns->get())) == SQLITE_ROW) {
      table = true;
      const unsigned char* n = sqlite3_column_text(columns->get(), 0);
      has_state = has_state || (n && std::string(reinterpret_cast<const char*>(n)) == "state");
    }
    if (rc != SQLITE_DONE) return ErrorStatus(db->get(), rc, "reading the schema");
    if (!table) return none;
    auto q = Prepare(db->get(),
                     std::string("SELECT batch, ") + (has_state ? "IFNULL(state, '')" : "''") +
                         " FROM " + kCheckpointTable + " WHERE target = ?1",
                     "reading the checkpoint");
    if (!q.ok()) return q.status();
    std::string key = ctx.recipe + "/" + ctx.target_name;
    sqlite3_bind_text(q->get(), 1, key.data(), static_cast<int>(key.size()), SQLITE_STATIC);
    rc = sqlite3_step(q->get());
    if (rc == SQLITE_DONE) return none;
    if (rc != SQLITE_ROW) return ErrorStatus(db->get(), rc, "reading the checkpoint");
    TargetMark m;
    sqlite3_int64 b = sqlite3_column_int64(q->get(), 0);
    m.batch = b > 0 ? static_cast<uint64_t>(b) : 0;
    const unsigned char* st = sqlite3_column_text(q->get(), 1);
    m.state_id = st ? reinterpret_cast<const char*>(st) : "";
    return std::optional<TargetMark>(std::move(m));
  }

  Result<CheckResult> Check(const WriteOp& op) override {
    CheckResult out;
    if (c_.keys.empty()) return out;  // unsupported without key_columns
    if (!check_) return Status::Internal("sqlite target checked before Open");
    KEYONCE_RETURN_IF_ERROR(RenderValues(op));
    auto found = FindByKey();
    if (!found.ok()) return found.status();
    if (found->is_null()) {
      out.outcome = CheckResult::Outcome::kAbsent;
    } else {
      out.outcome = CheckResult::Outcome::kExists;
      out.reply = std::move(found).value();
    }
    return out;
  }

  Status Close(bool /*success*/) override {
    // Writes after the last commit are discarded.
    if (db_ && in_txn_ && !sqlite3_get_autocommit(db_.get())) {
      sqlite3_step(rollback_.get());
      sqlite3_reset(rollback_.get());
    }
    in_txn_ = false;
    write_.reset();
    write_many_.reset();
    savepoint_.reset();
    undo_.reset();
    release_.reset();
    check_.reset();
    checkpoint_.reset();
    begin_.reset();
    commit_.reset();
    rollback_.reset();
    db_.reset();
    return Status::OK();
  }

 private:
  // Each column's value, in bound_: pointing into the record where the
  // template names a field, else at what the template made (values_).
  Status RenderValues(const WriteOp& op) {
    if (!op.scope) return Status::Internal("write without a scope");
    const auto& tmpls = settings_.TmplMap("columns");
    values_.resize(tmpls.size());
    bound_.resize(tmpls.size());
    for (size_t i = 0; i < tmpls.size(); ++i) {
      Status st = tmpls[i].second.EvaluateInto(*op.scope, &values_[i], &bound_[i]);
      if (!st.ok()) return st.Wrap("rendering column " + tmpls[i].first);
    }
    return Status::OK();
  }
  // Rows a chunk statement takes: none (1) with `returning`; fewer for wide
  // tables, within SQLite's 32,766 parameters.
  size_t ChunkRows() const {
    if (!c_.returning.empty() || c_.columns.empty()) return 1;
    return std::min<size_t>(32, 32766 / c_.columns.size());
  }

  // ops[at, at + rows) in one statement; false (nothing written) when a
  // value cannot be rendered or bound, or the statement fails.
  bool WriteChunk(const std::vector<WriteOp>& ops, size_t at, size_t rows) {
    if (!write_ || !broken_.ok() || !BeginIfNeeded().ok()) return false;
    if (!write_many_) {
      for (auto [stmt, sql] : {std::pair{&write_many_, WriteSql(c_, rows)},
                               std::pair{&savepoint_, std::string("SAVEPOINT keyonce_rows")},
                               std::pair{&undo_, std::string("ROLLBACK TO keyonce_rows")},
                               std::pair{&release_, std::string("RELEASE keyonce_rows")}}) {
        auto st = Prepare(db_.get(), sql, "preparing the insert of many rows");
        if (!st.ok()) {
          write_many_.reset();
          return false;
        }
        *stmt = std::move(st).value();
      }
    }
    const size_t n = c_.columns.size();
    chunk_values_.resize(rows * n);
    sqlite3_stmt* s = write_many_.get();
    bool ok = true;
    for (size_t r = 0; ok && r < rows; ++r) {
      ok = RenderValues(ops[at + r]).ok();
      for (size_t i = 0; ok && i < n; ++i) {
        // A value a template made lives in values_ until the next record:
        // the chunk keeps it until the statement ran.
        const Value* v = bound_[i];
        if (v == &values_[i]) v = &(chunk_values_[r * n + i] = std::move(values_[i]));
        ok = BindValue(s, static_cast<int>(r * n + i + 1), *v) == SQLITE_OK;
      }
    }
    auto run = [&](sqlite3_stmt* st) {
      const int rc = sqlite3_step(st);
      sqlite3_reset(st);
      return rc;
    };
    int rc = ok ? run(savepoint_.get()) : SQLITE_OK;
    if (ok && rc == SQLITE_DONE) {
      rc = run(s);
      if (rc == SQLITE_DONE) rc = run(release_.get());
      if (rc != SQLITE_DONE && !sqlite3_get_autocommit(db_.get())) {
        run(undo_.get());
        run(release_.get());
      }
    }
    sqlite3_clear_bindings(s);
    if (!ok) return false;
    NoteLostTransaction();  // then every row's Write reports the lost batch
    return rc == SQLITE_DONE;
  }

  // A copy of the bound values (for a dry run's rendering, and for error
  // messages, which must not repeat them).
  std::vector<Value> Bound() const {
    std::vector<Value> out;
    out.reserve(bound_.size());
    for (const Value* v : bound_) out.push_back(*v);
    return out;
  }

  // The reply (rowid and returning columns) of the row whose key columns
  // hold the bound keys; null when there is none.
  Result<Value> FindByKey() {
    sqlite3_stmt* s = check_.get();
    for (size_t i = 0; i < c_.keys.size(); ++i) {
      int rc = BindValue(s, static_cast<int>(i + 1), *bound_[c_.keys[i]]);
      if (rc != SQLITE_OK) {
        sqlite3_reset(s);
        const auto values = Bound();
        return ErrorStatus(db_.get(), rc, "binding key column", &values);
      }
    }
    int rc = sqlite3_step(s);
    Value out;
    if (rc == SQLITE_ROW) {
      out = Reply(s, c_);
    } else if (rc != SQLITE_DONE) {
      const auto values = Bound();
      Status st = ErrorStatus(db_.get(), rc, "reading table " + c_.table + " by key", &values);
      sqlite3_reset(s);
      return st;
    }
    sqlite3_reset(s);
    return out;
  }

  Status BeginIfNeeded() {
    if (in_txn_) return Status::OK();
    int rc = sqlite3_step(begin_.get());
    sqlite3_reset(begin_.get());
    if (rc != SQLITE_DONE) return ErrorStatus(db_.get(), rc, "starting a transaction");
    in_txn_ = true;
    return Status::OK();
  }

  // Some errors (I/O, full disk) make SQLite roll back the whole transaction:
  // earlier writes of the batch are gone, so the batch must not be committed.
  void NoteLostTransaction() {
    if (in_txn_ && sqlite3_get_autocommit(db_.get())) {
      in_txn_ = false;
      broken_ = Status::Io("SQLite rolled back the transaction of table " + c_.table +
                           " after an error; the batch is lost and will be redone");
    }
  }

  Settings settings_;
  Config c_;
  DbPtr db_;
  StmtPtr write_, check_, checkpoint_, begin_, commit_, rollback_;
  StmtPtr write_many_, savepoint_, undo_, release_;  // WriteChunk's
  std::string checkpoint_key_;
  std::string state_id_;             // the journal's, kept in the checkpoint row
  std::vector<Value> values_;        // values the column templates made
  std::vector<const Value*> bound_;  // each column's value (RenderValues)
  std::vector<Value> chunk_values_;  // values made for the rows of a chunk (WriteChunk)
  bool in_txn_ = false;
  Status broken_;
};

}  // namespace

Result<std::unique_ptr<Target>> MakeTarget(const Settings& settings) {
  Config c;
  auto fail = [&](const std::string& msg) { return Status::Invalid(settings.where + ": " + msg); };
  c.table = settings.String("table").value_or("");
  auto tq = QuoteIdent(c.table, "table");
  if (!tq.ok()) return fail(tq.status().message());
  c.table_q = *tq;
  if (c.table.rfind("sqlite_", 0) == 0)
    return fail("table names starting with sqlite_ are SQLite's own");
  if (c.table == kCheckpointTable) return fail("table keyonce_checkpoint is keyonce's own");
  if (Status st = ReadSqlTableShape(settings, QuoteIdent, &c); !st.ok()) return fail(st.message());
  c.busy_seconds = settings.Number("busy_timeout_seconds").value_or(10.0);
  c.sync_full = settings.String("synchronous").value_or("full") == "full";
  return std::unique_ptr<Target>(new SqliteTarget(settings, std::move(c)));
}

}  // namespace keyonce::connectors::sqlite
