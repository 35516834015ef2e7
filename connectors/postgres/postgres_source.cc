// The postgres source (a query, streamed in single-row mode) and lookup (a
// query with the key bound, prepared once).

#include "connectors/postgres/pg_util.h"
#include "connectors/postgres/postgres_internal.h"

namespace keyonce::connectors::postgres {
namespace {

class PostgresSource : public Source {
 public:
  explicit PostgresSource(Settings settings) : settings_(std::move(settings)) {}
  ~PostgresSource() override { Close(); }

  Status Open(const RunContext& ctx) override {
    const Template* query = settings_.Tmpl("query");
    if (!query) return Status::Invalid(settings_.where + ": query is missing");
    // Every {{ }} becomes a $n and its value a bound parameter: values never
    // become SQL text.
    std::vector<Value> binds;
    auto rendered = query->Render(ctx.scope, &binds);
    if (!rendered.ok()) return rendered.status().Wrap("rendering query");
    auto sql = NumberPlaceholders(*rendered, binds.size());
    if (!sql.ok()) return sql.status();
    KEYONCE_RETURN_IF_ERROR(params_.Set(binds).Wrap("binding query values"));

    auto conn = Connection::Open(settings_, ctx.scope, ctx.log);
    if (!conn.ok()) return conn.status();
    conn_ = std::move(conn).value();
    // The source only reads: a query that would write fails.
    KEYONCE_RETURN_IF_ERROR(
        conn_->Exec("SET default_transaction_read_only = on", "making the session read-only"));
    if (!PQsendQueryParams(conn_->get(), sql->c_str(), params_.size(), nullptr, params_.ptrs.data(),
                           nullptr, nullptr, 0)) {
      return conn_->StatementError(nullptr, "sending the query");
    }
    // Rows arrive one at a time: memory stays flat however many there are.
    if (!PQsetSingleRowMode(conn_->get())) {
      return Status::Internal("switching to single-row mode failed");
    }
    row_ = 0;
    done_ = false;
    return Status::OK();
  }

  Result<bool> Next(SourceItem* item) override {
    if (!conn_) return Status::Internal("postgres source read before Open");
    if (done_) return false;
    ResultPtr r(PQgetResult(conn_->get()));
    ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_SINGLE_TUPLE) {
      ++row_;
      *item = SourceItem();
      item->record = RowRecord(r.get(), 0);
      item->position = "row " + std::to_string(row_);
      return true;
    }
    done_ = true;
    Status out = Status::OK();
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
      out = conn_->StatementError(
          r.get(), row_ == 0 ? "running the query" : "reading row " + std::to_string(row_ + 1));
    }
    r.reset();
    while (PGresult* rest = PQgetResult(conn_->get())) PQclear(rest);
    if (!out.ok()) return out;
    return false;
  }

  Status Close() override {
    conn_.reset();
    return Status::OK();
  }

 private:
  Settings settings_;
  std::unique_ptr<Connection> conn_;
  Params params_;
  uint64_t row_ = 0;
  bool done_ = false;
};

class PostgresLookup : public Lookup {
 public:
  explicit PostgresLookup(Settings settings) : settings_(std::move(settings)) {}

  Status Open(const RunContext& ctx) override {
    scope_ = ctx.scope;
    log_ = ctx.log;
    auto conn = Connection::Open(settings_, scope_, log_);
    if (!conn.ok()) return conn.status();
    conn_ = std::move(conn).value();
    return Status::OK();
  }

  Result<std::optional<Record>> Find(const Value& key) override {
    if (!conn_) return Status::Internal("postgres lookup used before Open");
    Scope scope = scope_;
    scope.key = &key;
    std::vector<Value> binds;
    auto rendered = settings_.Tmpl("query")->Render(scope, &binds);
    if (!rendered.ok()) return rendered.status().Wrap("rendering query");
    KEYONCE_RETURN_IF_ERROR(params_.Set(binds).Wrap("binding the lookup key"));
    if (conn_->Broken()) {
      KEYONCE_RETURN_IF_ERROR(conn_->Reconnect());
      prepared_.clear();
    }
    if (prepared_ != *rendered) {
      auto sql = NumberPlaceholders(*rendered, binds.size());
      if (!sql.ok()) return sql.status();
      if (!prepared_.empty()) conn_->Exec("DEALLOCATE keyonce_lookup", "dropping the lookup");
      prepared_.clear();
      KEYONCE_RETURN_IF_ERROR(
          conn_->Prepare("keyonce_lookup", *sql, params_.size(), "preparing the lookup query"));
      prepared_ = *rendered;
    }
    ResultPtr r(PQexecPrepared(conn_->get(), "keyonce_lookup", params_.size(), params_.ptrs.data(),
                               nullptr, nullptr, 0));
    if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
      return conn_->StatementError(r.get(), "looking up a key", &params_.text);
    }
    std::optional<Record> out;
    if (PQntuples(r.get()) > 0) out = RowRecord(r.get(), 0);
    return out;
  }

 private:
  Settings settings_;
  Scope scope_;
  Log* log_ = nullptr;
  std::unique_ptr<Connection> conn_;
  Params params_;
  std::string prepared_;  // the rendered SQL of the prepared statement
};

}  // namespace

Result<std::unique_ptr<Source>> MakeSource(const Settings& settings) {
  KEYONCE_RETURN_IF_ERROR(CheckConnectionSettings(settings));
  return std::unique_ptr<Source>(new PostgresSource(settings));
}

Result<std::unique_ptr<Lookup>> MakeLookup(const Settings& settings) {
  KEYONCE_RETURN_IF_ERROR(CheckConnectionSettings(settings));
  return std::unique_ptr<Lookup>(new PostgresLookup(settings));
}

}  // namespace keyonce::connectors::postgres
