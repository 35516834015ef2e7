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

// The last failure on the state file's connection as a Status naming `what`:
// busy or locked is transient (worth a retry); a damaged file says how to
// check it (`keyonce state check <state>`).
inline Status StateFileError(sqlite3* db, const char* what, const std::string& state) {
  const int code = sqlite3_errcode(db);
  std::string msg = std::string(what) + ": " + sqlite3_errmsg(db);
  if (code == SQLITE_BUSY || code == SQLITE_LOCKED) return Status::Transient(msg);
  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) {
    return Status::Io(msg + " (the state file is damaged: see `keyonce state check " + state +
                      "` and restore a backup)");
  }
  return Status::Io(msg);
}

// Column i as text ("" for NULL).
inline std::string ColText(sqlite3_stmt* s, int i) {
  const unsigned char* t = sqlite3_column_text(s, i);
  return t ? reinterpret_cast<const char*>(t) : "";
}

}  // namespace keyonce
