// Small helpers every user of the state file's SQLite connection shares
// (the state store, the audit log, the service's tables).
#pragma once

#include <sqlite3.h>

#include <string>

#include "keyonce/status.h"

namespace keyonce {

// Runs one or more statements; an error names `context` and SQLite's message.
inline Status ExecSql(sqlite3* db, const char* sql, const std::string& context) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return Status::Io(context + ": " + msg);
  }
  return Status::OK();
}

// Column i as text ("" for NULL).
inline std::string ColText(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? reinterpret_cast<const char*>(t) : "";
}

}  // namespace keyonce
