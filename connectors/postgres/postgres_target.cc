// The postgres target: inserts or upserts one row per record, a transaction
// per batch committed with its checkpoint row, a savepoint per record.
//
// Connection loss mid-batch: the open transaction is gone with it. The
// target keeps the parameters (and replies) of the batch's writes so far; on
// the next call it reconnects, begins a new transaction and writes them
// again. When a rewritten row answers differently (RETURNING a new serial
// id, which an earlier capture already holds) or fails, the batch is marked
// lost: later writes and the commit fail, the run stops, and the next run's
// Recover finds the batch missing and writes it again. A commit whose answer
// was lost is settled by reading the checkpoint row back.

#include <algorithm>
#include <boost/json/object.hpp>
#include <chrono>
#include <thread>

#include "connectors/common/sql_table.h"
#include "connectors/postgres/pg_util.h"
#include "connectors/postgres/postgres_internal.h"

namespace keyonce::connectors::postgres {
namespace {

constexpr const char* kCheckpointTable = "keyonce_checkpoint";
constexpr const char* kWriteStmt = "keyonce_write";
constexpr const char* kCheckStmt = "keyonce_check";
constexpr const char* kCheckpointStmt = "keyonce_checkpoint";
constexpr int kCommitAttempts = 3;

struct Config : SqlTableShape {
  std::string schema_q;  // "\"payroll\"." or empty
  std::string table, table_q, checkpoint_q;
};

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

std::string WriteSql(const Config& c) {
  std::vector<std::string> params;
  for (size_t i = 0; i < c.columns.size(); ++i) params.push_back("$" + std::to_string(i + 1));
  std::string sql = "INSERT INTO " + c.table_q + " (" + Join(c.columns_q, ", ") + ") VALUES (" +
                    Join(params, ", ") + ")";
  if (c.upsert) {
    std::vector<std::string> keys, sets;
    for (size_t k : c.keys) keys.push_back(c.columns_q[k]);
    for (size_t i = 0; i < c.columns.size(); ++i) {
      if (std::find(c.keys.begin(), c.keys.end(), i) != c.keys.end()) continue;
      sets.push_back(c.columns_q[i] + " = EXCLUDED." + c.columns_q[i]);
    }
    // Only key columns: a no-op update, so RETURNING still reports the row.
    if (sets.empty()) sets.push_back(keys[0] + " = EXCLUDED." + keys[0]);
    sql += " ON CONFLICT (" + Join(keys, ", ") + ") DO UPDATE SET " + Join(sets, ", ");
  }
  if (!c.returning.empty()) sql += " RETURNING " + Join(c.returning_q, ", ");
  return sql;
}

std::string CheckSql(const Config& c) {
  std::string sql = "SELECT " +
                    (c.returning.empty() ? std::string("1") : Join(c.returning_q, ", ")) +
                    " FROM " + c.table_q + " WHERE ";
  for (size_t i = 0; i < c.keys.size(); ++i) {
    if (i) sql += " AND ";
    sql += c.columns_q[c.keys[i]] + " = $" + std::to_string(i + 1);
  }
  return sql + " LIMIT 1";
}

ExecStatusType StatusOf(const ResultPtr& r) {
  return r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
}

// The checkpoint row of `key` in keyonce_checkpoint; nullopt when there is none.
Result<std::optional<TargetMark>> ReadCheckpoint(Connection& conn, const Config& c,
                                                 const std::string& key) {
  std::optional<TargetMark> none;
  const char* reg[] = {c.checkpoint_q.c_str()};
  ResultPtr r(PQexecParams(conn.get(), "SELECT to_regclass($1) IS NOT NULL", 1, nullptr, reg,
                           nullptr, nullptr, 0));
  if (StatusOf(r) != PGRES_TUPLES_OK) return conn.StatementError(r.get(), "reading the schema");
  if (PQntuples(r.get()) < 1 || PQgetvalue(r.get(), 0, 0)[0] != 't') return none;
  // Tables made before state ids have no `state` column: to_jsonb reads it if it is there.
  const char* k[] = {key.c_str()};
  r.reset(PQexecParams(
      conn.get(),
      ("SELECT c.batch, to_jsonb(c) ->> 'state' FROM " + c.checkpoint_q + " c WHERE c.target = $1")
          .c_str(),
      1, nullptr, k, nullptr, nullptr, 0));
  if (StatusOf(r) != PGRES_TUPLES_OK) return conn.StatementError(r.get(), "reading the checkpoint");
  if (PQntuples(r.get()) < 1 || PQgetisnull(r.get(), 0, 0)) return none;
  TargetMark m;
  long long b = std::strtoll(PQgetvalue(r.get(), 0, 0), nullptr, 10);
  m.batch = b > 0 ? static_cast<uint64_t>(b) : uint64_t{0};
  if (!PQgetisnull(r.get(), 0, 1)) m.state_id = PQgetvalue(r.get(), 0, 1);
  return std::optional<TargetMark>(std::move(m));
}

class PostgresTarget : public Target {
 public:
  PostgresTarget(Settings settings, Config config)
      : settings_(std::move(settings)), c_(std::move(config)) {}
  ~PostgresTarget() override { Close(false); }

  TargetTraits Traits() const override {
    TargetTraits t;
    t.supports_update = c_.upsert;
    t.idempotent = c_.upsert;
    return t;
  }

  Status Open(const RunContext& ctx) override {
    log_ = ctx.log;
    checkpoint_key_ = ctx.recipe + "/" + ctx.target_name;
    auto conn = Connection::Open(settings_, ctx.scope, ctx.log);
    if (!conn.ok()) return conn.status();
    conn_ = std::move(conn).value();
    state_id_ = ctx.state_id;
    KEYONCE_RETURN_IF_ERROR(conn_->Exec("CREATE TABLE IF NOT EXISTS " + c_.checkpoint_q +
                                            " (target text PRIMARY KEY, batch bigint NOT NULL,"
                                            " state text)",
                                        "creating table keyonce_checkpoint"));
    KEYONCE_RETURN_IF_ERROR(AddStateColumn());
    if (c_.create_table) {
      std::vector<std::string> cols;
      for (const auto& q : c_.columns_q) cols.push_back(q + " text");
      KEYONCE_RETURN_IF_ERROR(
          conn_->Exec("CREATE TABLE IF NOT EXISTS " + c_.table_q + " (" + Join(cols, ", ") + ")",
                      "creating table " + c_.table));
      if (!c_.keys.empty()) {
        std::vector<std::string> keys;
        for (size_t k : c_.keys) keys.push_back(c_.columns_q[k]);
        auto index = QuoteIdent(c_.table.substr(0, 50) + "_keyonce_key", "index name");
        if (!index.ok()) return index.status();
        KEYONCE_RETURN_IF_ERROR(
            conn_->Exec("CREATE UNIQUE INDEX IF NOT EXISTS " + *index + " ON " + c_.table_q + " (" +
                            Join(keys, ", ") + ")",
                        "creating the unique index on key_columns of " + c_.table));
      }
    }
    KEYONCE_RETURN_IF_ERROR(PrepareStatements());
    // Planning the write (without running it) finds what would fail for every
    // record now: no unique index for ON CONFLICT, no privilege on the table.
    std::string nulls;
    for (size_t i = 0; i < c_.columns.size(); ++i) nulls += i ? ", NULL" : "NULL";
    Status s = conn_->Exec(
        std::string("EXPLAIN EXECUTE ") + kWriteStmt + " (" + nulls + ")",
        "checking the " + std::string(c_.upsert ? "upsert" : "insert") + " into " + c_.table);
    return UpsertHint(s);
  }

  Result<Value> Render(const WriteOp& op) override {
    KEYONCE_RETURN_IF_ERROR(RenderValues(op));
    return RenderSqlWrite(c_.table, c_, values_);
  }

  WriteResult Write(const WriteOp& op) override {
    WriteResult res;
    if (!conn_) {
      res.status = Status::Internal("postgres target written before Open");
      return res;
    }
    if (!broken_.ok()) {
      res.status = broken_;
      return res;
    }
    res.status = RenderValues(op);
    if (res.status.ok()) res.status = params_.Set(values_, &c_.columns);
    if (res.status.ok()) res.status = EnsureSession();
    if (res.status.ok()) res.status = BeginIfNeeded();
    if (!res.status.ok()) return res;
    return WriteInSavepoint();
  }

  Result<CommitResult> Commit(uint64_t batch, bool /*final*/) override {
    if (!conn_) return Status::Internal("postgres target committed before Open");
    if (!broken_.ok()) return broken_;
    const std::string what = "committing batch " + std::to_string(batch) + " to table " + c_.table;
    Status s;
    for (int attempt = 1;; ++attempt) {
      s = EnsureSession();
      if (s.ok()) s = BeginIfNeeded();
      if (s.ok()) {
        bool lost = false;
        s = CommitOnce(batch, &lost);
        if (s.ok()) break;
        if (lost) {
          // Did the COMMIT arrive before the connection went? The checkpoint says.
          NoteLost();
          Status rs = conn_->Reconnect();
          if (rs.ok()) {
            auto cp = ReadCheckpoint(*conn_, c_, checkpoint_key_);
            if (cp.ok() && cp->has_value() && (*cp)->batch == batch) {
              s = PrepareStatements();
              if (s.ok()) {
                lost_ = false;
                break;
              }
            }
          }
        }
      }
      if (!s.ok() && !s.IsTransient()) return s.Wrap(what);
      if (attempt >= kCommitAttempts) {
        return Status::Transient(what + ": " + s.message() +
                                 "; the batch did not arrive and the next run writes it again");
      }
      std::this_thread::sleep_for(std::chrono::seconds(attempt));
    }
    journal_.clear();
    in_txn_ = false;
    CommitResult out;
    out.durable = true;
    out.token = std::to_string(batch);
    return out;
  }

  Result<RecoverResult> Recover(const RunContext& ctx, uint64_t /*first_pending*/,
                                const std::string& /*token*/) override {
    auto conn = Connection::Open(settings_, ctx.scope, ctx.log);
    if (!conn.ok()) return conn.status();
    auto cp = ReadCheckpoint(**conn, c_, ctx.recipe + "/" + ctx.target_name);
    if (!cp.ok()) return cp.status();
    RecoverResult out;
    out.known = true;
    if (cp->has_value()) out.applied_through = (*cp)->batch;
    return out;
  }

  Result<std::optional<TargetMark>> Mark(const RunContext& ctx) override {
    auto conn = Connection::Open(settings_, ctx.scope, ctx.log);
    if (!conn.ok()) return conn.status();
    return ReadCheckpoint(**conn, c_, ctx.recipe + "/" + ctx.target_name);
  }

  Result<CheckResult> Check(const WriteOp& op) override {
    CheckResult out;
    if (c_.keys.empty()) return out;  // unsupported without key_columns
    if (!conn_) return Status::Internal("postgres target checked before Open");
    if (!broken_.ok()) return broken_;
    KEYONCE_RETURN_IF_ERROR(RenderValues(op));
    std::vector<Value> keys;
    std::vector<std::string> names;
    for (size_t k : c_.keys) {
      keys.push_back(values_[k]);
      names.push_back(c_.columns[k]);
    }
    Params p;
    KEYONCE_RETURN_IF_ERROR(p.Set(keys, &names));
    KEYONCE_RETURN_IF_ERROR(EnsureSession());
    ResultPtr r(
        PQexecPrepared(conn_->get(), kCheckStmt, p.size(), p.ptrs.data(), nullptr, nullptr, 0));
    if (StatusOf(r) != PGRES_TUPLES_OK) {
      if (conn_->LostConnection(r.get())) NoteLost();
      return conn_->StatementError(r.get(), "reading table " + c_.table + " by key", &p.text);
    }
    if (PQntuples(r.get()) == 0) {
      out.outcome = CheckResult::Outcome::kAbsent;
    } else {
      out.outcome = CheckResult::Outcome::kExists;
      out.reply =
          c_.returning.empty() ? Value(boost::json::object()) : Value(RowRecord(r.get(), 0));
    }
    return out;
  }

  Status Close(bool /*success*/) override {
    // Writes after the last commit are discarded.
    if (conn_ && in_txn_ && !conn_->Broken()) conn_->Exec("ROLLBACK", "rolling back");
    in_txn_ = false;
    journal_.clear();
    conn_.reset();
    return Status::OK();
  }

 private:
  // A write of the open transaction, kept to be written again if the
  // connection is lost before the commit.
  struct Written {
    std::vector<std::string> text;
    std::vector<char> null;
    Value reply;
  };

  Status RenderValues(const WriteOp& op) {
    if (!op.scope) return Status::Internal("write without a scope");
    const auto& tmpls = settings_.TmplMap("columns");
    values_.resize(tmpls.size());
    for (size_t i = 0; i < tmpls.size(); ++i) {
      auto v = tmpls[i].second.Evaluate(*op.scope);
      if (!v.ok()) return v.status().Wrap("rendering column " + tmpls[i].first);
      values_[i] = std::move(v).value();
    }
    return Status::OK();
  }

  Status UpsertHint(const Status& s) const {
    if (c_.upsert && s.message().find("42P10") != std::string::npos) {
      return Status::Invalid(s.message() +
                             " (mode upsert needs a unique index or primary key on exactly "
                             "key_columns; create_table: true makes one)");
    }
    return s;
  }

  Status PrepareStatements() {
    Status s = conn_->Prepare(
        kWriteStmt, WriteSql(c_), static_cast<int>(c_.columns.size()),
        std::string("preparing the ") + (c_.upsert ? "upsert" : "insert") + " into " + c_.table);
    KEYONCE_RETURN_IF_ERROR(UpsertHint(s));
    if (!c_.keys.empty()) {
      KEYONCE_RETURN_IF_ERROR(conn_->Prepare(kCheckStmt, CheckSql(c_),
                                             static_cast<int>(c_.keys.size()),
                                             "preparing the check of table " + c_.table));
    }
    return conn_->Prepare(
        kCheckpointStmt,
        "INSERT INTO " + c_.checkpoint_q +
            (has_state_ ? " (target, batch, state) VALUES ($1, $2, $3) ON CONFLICT "
                          "(target) DO UPDATE SET batch = EXCLUDED.batch, state = "
                          "EXCLUDED.state"
                        : " (target, batch) VALUES ($1, $2) ON CONFLICT (target) DO "
                          "UPDATE SET batch = EXCLUDED.batch"),
        has_state_ ? 3 : 2, "preparing the checkpoint update");
  }

  // A checkpoint table made before state ids gets the column. If keyonce's
  // user may not change it (a DBA made it), checkpoints go on without the
  // state id, and the guard against another state file is weaker: say so.
  Status AddStateColumn() {
    const char* reg[] = {c_.checkpoint_q.c_str()};
    ResultPtr r(PQexecParams(conn_->get(),
                             "SELECT count(*) FROM pg_attribute WHERE attrelid = $1::regclass "
                             "AND attname = 'state' AND NOT attisdropped",
                             1, nullptr, reg, nullptr, nullptr, 0));
    if (StatusOf(r) != PGRES_TUPLES_OK) {
      return conn_->StatementError(r.get(), "reading table keyonce_checkpoint");
    }
    has_state_ = PQntuples(r.get()) == 1 && std::string(PQgetvalue(r.get(), 0, 0)) != "0";
    if (has_state_) return Status::OK();
    Status st =
        conn_->Exec("ALTER TABLE " + c_.checkpoint_q + " ADD COLUMN IF NOT EXISTS state text",
                    "adding the state id to table keyonce_checkpoint");
    if (st.ok()) {
      has_state_ = true;
    } else if (log_) {
      log_->Warn(st.message() +
                 "; checkpoints are kept without the state file's id, so another state file "
                 "meeting this table is not recognised. Let keyonce's database user own "
                 "keyonce_checkpoint, or add the column: ALTER TABLE keyonce_checkpoint ADD "
                 "COLUMN state text.");
    }
    return Status::OK();
  }

  void NoteLost() {
    lost_ = true;
    in_txn_ = false;
  }

  Status BeginIfNeeded() {
    if (in_txn_) return Status::OK();
    ResultPtr r(PQexec(conn_->get(), "BEGIN"));
    if (StatusOf(r) != PGRES_COMMAND_OK) {
      if (conn_->LostConnection(r.get())) NoteLost();
      return conn_->StatementError(r.get(), "starting a transaction");
    }
    in_txn_ = true;
    return Status::OK();
  }

  // After a lost connection: reconnects and writes the batch's earlier
  // records again in a new transaction.
  Status EnsureSession() {
    if (!lost_ && !conn_->Broken()) return Status::OK();
    NoteLost();
    KEYONCE_RETURN_IF_ERROR(conn_->Reconnect());
    KEYONCE_RETURN_IF_ERROR(PrepareStatements());
    lost_ = false;
    if (journal_.empty()) return Status::OK();
    KEYONCE_RETURN_IF_ERROR(BeginIfNeeded());
    for (const Written& w : journal_) {
      std::vector<const char*> ptrs(w.text.size());
      for (size_t i = 0; i < w.text.size(); ++i) ptrs[i] = w.null[i] ? nullptr : w.text[i].c_str();
      ResultPtr r(PQexecPrepared(conn_->get(), kWriteStmt, static_cast<int>(ptrs.size()),
                                 ptrs.data(), nullptr, nullptr, 0));
      ExecStatusType st = StatusOf(r);
      if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        Status s = conn_->StatementError(r.get(), "writing the batch again", &w.text);
        if (conn_->LostConnection(r.get())) {
          NoteLost();
          return s;
        }
        return Lose("a record written earlier in the batch failed when written again: " +
                    s.message());
      }
      if (!c_.returning.empty() && PQntuples(r.get()) > 0 && RowRecord(r.get(), 0) != w.reply) {
        return Lose(
            "a record written earlier in the batch answered with other `returning` "
            "values when written again");
      }
    }
    if (log_) {
      log_->Warn("Reconnected to " + conn_->where() + " and wrote the batch's " +
                 std::to_string(journal_.size()) + " earlier record(s) to " + c_.table +
                 " again in a new transaction.");
    }
    return Status::OK();
  }

  Status Lose(const std::string& why) {
    if (conn_ && in_txn_ && !conn_->Broken()) conn_->Exec("ROLLBACK", "rolling back");
    in_txn_ = false;
    journal_.clear();
    broken_ = Status::Transient("the connection to " + conn_->where() + " was lost mid-batch and " +
                                why + "; the batch fails and the next run writes it again");
    return broken_;
  }

  // One round trip: SAVEPOINT, the write, RELEASE SAVEPOINT. A failed write
  // is rolled back to the savepoint, so the batch's other records stay.
  WriteResult WriteInSavepoint() {
    WriteResult res;
    PGconn* c = conn_->get();
    const std::string what = "writing to table " + c_.table;
    if (!PQenterPipelineMode(c)) {
      res.status = Status::Internal("entering pipeline mode failed");
      return res;
    }
    bool sent = PQsendQueryParams(c, "SAVEPOINT keyonce_record", 0, nullptr, nullptr, nullptr,
                                  nullptr, 0) &&
                PQsendQueryPrepared(c, kWriteStmt, params_.size(), params_.ptrs.data(), nullptr,
                                    nullptr, 0) &&
                PQsendQueryParams(c, "RELEASE SAVEPOINT keyonce_record", 0, nullptr, nullptr,
                                  nullptr, nullptr, 0) &&
                PQpipelineSync(c);
    ResultPtr results[3];
    bool lost = !sent;
    for (int i = 0; i < 3 && !lost; ++i) {
      results[i].reset(PQgetResult(c));
      if (!results[i]) {
        lost = true;
        break;
      }
      // Each command's results end with a null.
      for (int guard = 0; guard < 4; ++guard) {
        PGresult* extra = PQgetResult(c);
        if (!extra) break;
        PQclear(extra);
      }
      if (StatusOf(results[i]) == PGRES_FATAL_ERROR && conn_->LostConnection(results[i].get())) {
        lost = true;
      }
    }
    if (!lost) {
      ResultPtr sync(PQgetResult(c));
      if (StatusOf(sync) != PGRES_PIPELINE_SYNC) lost = conn_->Broken();
    }
    PQexitPipelineMode(c);

    const PGresult* failed = nullptr;
    for (const auto& r : results) {
      if (r && PQresultStatus(r.get()) == PGRES_FATAL_ERROR) {
        failed = r.get();
        break;
      }
    }
    if (lost) {
      NoteLost();
      Status s = conn_->StatementError(failed, what, &params_.text);
      res.status =
          Status::Transient(s.message() + " (connection lost; " + std::to_string(journal_.size()) +
                            " earlier record(s) of the batch are written again)");
      return res;
    }
    ExecStatusType s0 = StatusOf(results[0]), s1 = StatusOf(results[1]);
    if (s0 != PGRES_COMMAND_OK) {
      res.status = Lose("the transaction could not take a savepoint: " +
                        conn_->StatementError(results[0].get(), what).message());
      return res;
    }
    if (s1 == PGRES_COMMAND_OK || s1 == PGRES_TUPLES_OK) {
      if (StatusOf(results[2]) != PGRES_COMMAND_OK) {
        res.status = Lose("releasing the savepoint failed");
        return res;
      }
      res.reply = !c_.returning.empty() && PQntuples(results[1].get()) > 0
                      ? Value(RowRecord(results[1].get(), 0))
                      : Value(boost::json::object());
      journal_.push_back(Written{params_.text, params_.null, res.reply});
      return res;
    }
    // The record's own failure (or a transient one such as a deadlock): undo it alone.
    res.status = conn_->StatementError(results[1].get(), what, &params_.text);
    ResultPtr rb(
        PQexec(c, "ROLLBACK TO SAVEPOINT keyonce_record; RELEASE SAVEPOINT keyonce_record"));
    if (StatusOf(rb) != PGRES_COMMAND_OK) {
      if (conn_->LostConnection(rb.get())) {
        NoteLost();
        res.status = Status::Transient(res.status.message() + " (then the connection was lost)");
      } else {
        res.status = Lose("rolling back to the savepoint failed");
      }
    }
    return res;
  }

  Status CommitOnce(uint64_t batch, bool* lost) {
    std::string b = std::to_string(batch);
    const char* p[] = {checkpoint_key_.c_str(), b.c_str(), state_id_.c_str()};
    ResultPtr r(
        PQexecPrepared(conn_->get(), kCheckpointStmt, has_state_ ? 3 : 2, p, nullptr, nullptr, 0));
    if (StatusOf(r) != PGRES_COMMAND_OK) {
      *lost = conn_->LostConnection(r.get());
      Status s = conn_->StatementError(r.get(), "updating the checkpoint");
      if (!*lost) return Lose(s.message());
      return s;
    }
    r.reset(PQexec(conn_->get(), "COMMIT"));
    if (StatusOf(r) != PGRES_COMMAND_OK) {
      *lost = conn_->LostConnection(r.get());
      Status s = conn_->StatementError(r.get(), "committing");
      if (!*lost) return Lose(s.message());
      return s;
    }
    if (std::string(PQcmdStatus(r.get())) != "COMMIT") {
      return Lose("the server rolled the transaction back instead of committing it");
    }
    return Status::OK();
  }

  Settings settings_;
  Config c_;
  Log* log_ = nullptr;
  std::unique_ptr<Connection> conn_;
  std::string checkpoint_key_;
  std::string state_id_;   // the journal's, kept in the checkpoint row
  bool has_state_ = true;  // keyonce_checkpoint has the `state` column
  std::vector<Value> values_;
  Params params_;
  std::vector<Written> journal_;  // this batch's writes, for a reconnect
  bool in_txn_ = false;
  bool lost_ = false;  // the connection went; reconnect (and write the batch again) first
  Status broken_;      // the batch cannot be committed any more
};

}  // namespace

Result<std::unique_ptr<Target>> MakeTarget(const Settings& settings) {
  KEYONCE_RETURN_IF_ERROR(CheckConnectionSettings(settings));
  Config c;
  auto fail = [&](const std::string& msg) { return Status::Invalid(settings.where + ": " + msg); };
  if (auto schema = settings.String("schema"); schema && !schema->empty()) {
    auto q = QuoteIdent(*schema, "schema");
    if (!q.ok()) return fail(q.status().message());
    c.schema_q = *q + ".";
  }
  c.table = settings.String("table").value_or("");
  auto tq = QuoteIdent(c.table, "table");
  if (!tq.ok()) return fail(tq.status().message());
  c.table_q = c.schema_q + *tq;
  c.checkpoint_q = c.schema_q + "\"" + kCheckpointTable + "\"";
  if (c.table == kCheckpointTable) return fail("table keyonce_checkpoint is keyonce's own");
  if (Status st = ReadSqlTableShape(settings, QuoteIdent, &c); !st.ok()) return fail(st.message());
  return std::unique_ptr<Target>(new PostgresTarget(settings, std::move(c)));
}

}  // namespace keyonce::connectors::postgres
