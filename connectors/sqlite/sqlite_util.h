// Shared pieces of the `sqlite` connector: handles, errors, identifiers,
// binding values and reading rows.
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "keyonce/connector.h"

namespace keyonce::connectors::sqlite {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Opens a database file. Read-only opens and opens without `create` fail
// with kNotFound when the file does not exist; `create` also creates the
// file's folder.
Result<DbPtr> OpenDb(const std::filesystem::path& path, bool read_only, bool create,
                     double busy_timeout_seconds);

// Prepares one statement (persistent: it is reused for every record).
// `what` names it in errors ("preparing the insert into payroll").
Result<StmtPtr> Prepare(sqlite3* db, const std::string& sql, const std::string& what);

// Runs statements that return no rows we need (PRAGMA, CREATE ...).
Status Exec(sqlite3* db, const std::string& sql, const std::string& what);

// The Status for a failed SQLite call: busy/locked → kTransient; constraint,
// datatype mismatch, too big → kPermanent; I/O, full, corrupt → kIo; SQL
// errors → kInvalid. The message is SQLite's (it names constraints and
// columns), with any of `values` that appears in it masked.
Status ErrorStatus(sqlite3* db, int rc, const std::string& what,
                   const std::vector<Value>* values = nullptr);

// Checks that `name` can be an identifier (non-empty, UTF-8, no control
// characters) and returns it quoted, with embedded quotes doubled.
Result<std::string> QuoteIdent(const std::string& name, const std::string& what);

// Binds `v` to parameter `index` (1-based). Strings are bound without a copy:
// `v` must live until the statement is reset. Booleans become 0/1, arrays and
// objects their JSON text.
int BindValue(sqlite3_stmt* stmt, int index, const Value& v);

// The value of column `i` of the current row, typed as SQLite stores it;
// blobs become base64 text.
Value ColumnValue(sqlite3_stmt* stmt, int i);

// The current row as a record (column name → value).
Record RowRecord(sqlite3_stmt* stmt);

}  // namespace keyonce::connectors::sqlite
