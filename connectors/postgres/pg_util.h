// Shared pieces of the `postgres` connector: connecting (the settings every
// part shares), errors without secrets or field values, identifiers, `{{ }}`
// binds as $n parameters, and rows as records.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <vector>

#include "keyonce/connector.h"

namespace keyonce::connectors::postgres {

struct ResultClear {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultClear>;

// The connection settings every part declares (connection, password,
// connect_timeout_seconds, sslmode, sslrootcert, sslcert, sslkey).
std::vector<FieldSpec> ConnectionFields();

// Checks what can be checked without connecting (a constant `connection`
// parses as a libpq connection string or URI).
Status CheckConnectionSettings(const Settings& settings);

// One libpq connection, made from the connection settings rendered once per
// run. Messages name the server as "PostgreSQL at host:port/dbname" and never
// contain the password or the connection string.
class Connection {
 public:
  ~Connection();
  // Renders the settings against `scope` (params, secrets, run, state) and
  // connects. Registers the password with `log` as a secret. kTransient when
  // the server cannot be reached, kInvalid for a bad setting or refused
  // credentials.
  static Result<std::unique_ptr<Connection>> Open(const Settings& settings, const Scope& scope,
                                                  Log* log);
  // Connects again with the same parameters (after the server went away).
  Status Reconnect();

  PGconn* get() const { return conn_; }
  bool Broken() const { return !conn_ || PQstatus(conn_) == CONNECTION_BAD; }
  // "PostgreSQL at 127.0.0.1:5432/hr"
  const std::string& where() const { return where_; }

  // Runs a statement without parameters or rows of interest (SET, CREATE,
  // BEGIN, ...); `what` names it in errors ("creating table absence").
  Status Exec(const std::string& sql, const std::string& what);
  // Prepares a named statement.
  Status Prepare(const std::string& name, const std::string& sql, int params,
                 const std::string& what);

  // The Status for a failed statement (r may be null: then the connection's
  // message). `values` are masked in the message. See ClassifySqlState.
  Status StatementError(const PGresult* r, const std::string& what,
                        const std::vector<std::string>* values = nullptr) const;
  // True when a failed statement means the connection (and with it an open
  // transaction) is gone.
  bool LostConnection(const PGresult* r) const;
  // Removes the password and the connection string from a libpq message.
  std::string Scrub(std::string msg) const;

 private:
  Connection() = default;
  Status Connect();

  PGconn* conn_ = nullptr;
  std::vector<std::string> keys_, values_;  // PQconnectdbParams arguments
  std::string conninfo_, password_, where_;
};

// Status code for a SQLSTATE: connection loss, serialization failure,
// deadlock, lock timeout, cancel, shutdown and lack of resources are
// kTransient; integrity and data errors (a record's own fault) kPermanent;
// SQL errors (unknown column, syntax) kInvalid.
Status::Code ClassifySqlState(const std::string& sqlstate);

// Text parameters for libpq, made from bound values: null -> SQL NULL,
// true/false, numbers in JSON form, strings as they are, lists and objects
// as JSON text.
struct Params {
  std::vector<std::string> text;
  std::vector<char> null;
  std::vector<const char*> ptrs;
  // kPermanent when a string holds a NUL byte (PostgreSQL text cannot).
  Status Set(const std::vector<Value>& values, const std::vector<std::string>* names = nullptr);
  void Point();  // refreshes ptrs after text/null changed
  int size() const { return static_cast<int>(ptrs.size()); }
};

// Turns the `?` placeholders a kSql template renders into $1..$n, skipping
// quoted text, comments and dollar-quoted strings. kInvalid when the query
// holds its own `?` or $n (values belong in {{ }}).
Result<std::string> NumberPlaceholders(const std::string& sql, size_t binds);

// Checks that `name` can be an identifier and returns it quoted.
Result<std::string> QuoteIdent(const std::string& name, const std::string& what);

// The value of a result cell, typed by its column type (see postgres.cc).
Value CellValue(const PGresult* r, int row, int col);
Record RowRecord(const PGresult* r, int row);

}  // namespace keyonce::connectors::postgres
