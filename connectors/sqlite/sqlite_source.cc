// The sqlite source (a query, streamed row by row) and lookup (a row by key).

#include "connectors/sqlite/sqlite_internal.h"
#include "connectors/sqlite/sqlite_util.h"

namespace keyonce::connectors::sqlite {
namespace {

double BusySeconds(const Settings& s) { return s.Number("busy_timeout_seconds").value_or(10.0); }

class SqliteSource : public Source {
 public:
  explicit SqliteSource(Settings settings) : settings_(std::move(settings)) {}

  Status Open(const RunContext& ctx) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status();
    auto db = OpenDb(*path, /*read_only=*/true, /*create=*/false, BusySeconds(settings_));
    if (!db.ok()) return db.status();
    db_ = std::move(db).value();

    const Template* query = settings_.Tmpl("query");
    if (!query) return Status::Invalid(settings_.where + ": query is missing");
    // Every {{ }} becomes a `?` and its value a bound parameter: values never
    // become SQL text.
    binds_.clear();
    auto sql = query->Render(ctx.scope, &binds_);
    if (!sql.ok()) return sql.status().Wrap("rendering query");
    auto stmt = Prepare(db_.get(), *sql, "preparing query");
    if (!stmt.ok()) return stmt.status();
    stmt_ = std::move(stmt).value();
    if (!sqlite3_stmt_readonly(stmt_.get())) {
      return Status::Invalid("query must only read (a SELECT), it would change the database");
    }
    int params = sqlite3_bind_parameter_count(stmt_.get());
    if (params != static_cast<int>(binds_.size())) {
      return Status::Invalid("query has " + std::to_string(params) + " parameters but " +
                             std::to_string(binds_.size()) +
                             " {{ }} values; write values as {{ }}, not as ? or :name");
    }
    for (size_t i = 0; i < binds_.size(); ++i) {
      int rc = BindValue(stmt_.get(), static_cast<int>(i + 1), binds_[i]);
      if (rc != SQLITE_OK) return ErrorStatus(db_.get(), rc, "binding query value " + std::to_string(i + 1));
    }
    row_ = 0;
    done_ = false;
    return Status::OK();
  }

  Result<bool> Next(SourceItem* item) override {
    if (!stmt_) return Status::Internal("sqlite source read before Open");
    if (done_) return false;
    int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_DONE) {
      done_ = true;
      return false;
    }
    if (rc != SQLITE_ROW) return ErrorStatus(db_.get(), rc, "reading row " + std::to_string(row_ + 1));
    ++row_;
    *item = SourceItem();
    item->record = RowRecord(stmt_.get());
    item->position = "row " + std::to_string(row_);
    return true;
  }

  Status Close() override {
    stmt_.reset();
    db_.reset();
    return Status::OK();
  }

 private:
  Settings settings_;
  DbPtr db_;
  StmtPtr stmt_;
  std::vector<Value> binds_;  // bound without copies: kept while the query runs
  uint64_t row_ = 0;
  bool done_ = false;
};

class SqliteLookup : public Lookup {
 public:
  explicit SqliteLookup(Settings settings) : settings_(std::move(settings)) {}

  Status Open(const RunContext& ctx) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status();
    auto table = QuoteIdent(settings_.String("table").value_or(""), "table");
    if (!table.ok()) return table.status();
    auto key = QuoteIdent(settings_.String("key").value_or(""), "key");
    if (!key.ok()) return key.status();
    auto db = OpenDb(*path, /*read_only=*/true, /*create=*/false, BusySeconds(settings_));
    if (!db.ok()) return db.status();
    db_ = std::move(db).value();
    auto stmt = Prepare(db_.get(), "SELECT * FROM " + *table + " WHERE " + *key + " = ?1 LIMIT 1",
                        "preparing the lookup in " + *table);
    if (!stmt.ok()) return stmt.status();
    stmt_ = std::move(stmt).value();
    return Status::OK();
  }

  Result<std::optional<Record>> Find(const Value& key) override {
    if (!stmt_) return Status::Internal("sqlite lookup used before Open");
    sqlite3_stmt* s = stmt_.get();
    sqlite3_reset(s);
    key_ = key;
    int rc = BindValue(s, 1, key_);
    if (rc != SQLITE_OK) return ErrorStatus(db_.get(), rc, "binding the lookup key");
    rc = sqlite3_step(s);
    std::optional<Record> out;
    if (rc == SQLITE_ROW) {
      out = RowRecord(s);
    } else if (rc != SQLITE_DONE) {
      std::vector<Value> values{key_};
      Status st = ErrorStatus(db_.get(), rc, "looking up a key", &values);
      sqlite3_reset(s);
      return st;
    }
    sqlite3_reset(s);
    return out;
  }

 private:
  Settings settings_;
  DbPtr db_;
  StmtPtr stmt_;
  Value key_;
};

}  // namespace

Result<std::unique_ptr<Source>> MakeSource(const Settings& settings) {
  return std::unique_ptr<Source>(new SqliteSource(settings));
}

Result<std::unique_ptr<Lookup>> MakeLookup(const Settings& settings) {
  for (const char* name : {"table", "key"}) {
    auto q = QuoteIdent(settings.String(name).value_or(""), name);
    if (!q.ok()) return q.status().Wrap(settings.where);
  }
  return std::unique_ptr<Lookup>(new SqliteLookup(settings));
}

}  // namespace keyonce::connectors::sqlite
