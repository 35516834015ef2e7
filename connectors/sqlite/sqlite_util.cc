#include "connectors/sqlite/sqlite_util.h"

#include "connectors/common/encoding.h"

#include <sys/stat.h>

#include <cmath>
#include <limits>

namespace keyonce::connectors::sqlite {

Result<DbPtr> OpenDb(const std::filesystem::path& path, bool read_only, bool create,
                     double busy_timeout_seconds) {
  if (read_only || !create) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      return Status::NotFound("database not found: " + path.string());
    }
  }
  if (create && !read_only && path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) return Status::Io("creating folder " + path.parent_path().string() + ": " + ec.message());
  }
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (create) flags |= SQLITE_OPEN_CREATE;
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    return Status::Io("opening database " + path.string() + ": " + msg);
  }
  sqlite3_extended_result_codes(db.get(), 1);
  double ms = busy_timeout_seconds * 1000.0;
  if (!(ms >= 0)) ms = 0;
  if (ms > std::numeric_limits<int>::max()) ms = std::numeric_limits<int>::max();
  sqlite3_busy_timeout(db.get(), static_cast<int>(ms));
  return db;
}

Result<StmtPtr> Prepare(sqlite3* db, const std::string& sql, const std::string& what) {
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &raw, &tail);
  StmtPtr stmt(raw);
  if (rc != SQLITE_OK) return ErrorStatus(db, rc, what);
  if (!stmt) return Status::Invalid(what + ": the SQL holds no statement");
  for (const char* p = tail; p && *p; ++p) {
    if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r' && *p != ';') {
      return Status::Invalid(what + ": the SQL holds more than one statement");
    }
  }
  return stmt;
}

Status Exec(sqlite3* db, const std::string& sql, const std::string& what) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  if (err) sqlite3_free(err);
  if (rc != SQLITE_OK) return ErrorStatus(db, rc, what);
  return Status::OK();
}

namespace {

// Masks values that SQLite might echo (e.g. a RAISE() message built by a
// trigger). Short values are left: they would match column names.
std::string Mask(std::string msg, const std::vector<Value>* values) {
  if (!values) return msg;
  for (const Value& v : *values) {
    std::string text;
    if (v.is_string()) {
      text = std::string(v.get_string());
      if (text.size() < 3) continue;
    } else if (v.is_int64() || v.is_uint64() || v.is_double()) {
      text = ToText(v);
      if (text.size() < 4) continue;
    } else {
      continue;
    }
    size_t pos = 0;
    while ((pos = msg.find(text, pos)) != std::string::npos) {
      msg.replace(pos, text.size(), "<value>");
      pos += 7;
    }
  }
  return msg;
}

}  // namespace

Status ErrorStatus(sqlite3* db, int rc, const std::string& what, const std::vector<Value>* values) {
  std::string msg = Mask(db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), values);
  std::string full = what + ": " + msg;
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Transient(full);
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return Status::Permanent(full);
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_NOLFS:
    case SQLITE_PROTOCOL:
      return Status::Io(full);
    case SQLITE_NOMEM:
    case SQLITE_INTERNAL:
    case SQLITE_MISUSE:
      return Status::Internal(full);
    default:
      return Status::Invalid(full);
  }
}

Result<std::string> QuoteIdent(const std::string& name, const std::string& what) {
  if (name.empty()) return Status::Invalid(what + " is empty");
  if (name.size() > 200) return Status::Invalid(what + " is longer than 200 bytes");
  const auto* p = reinterpret_cast<const unsigned char*>(name.data());
  for (size_t i = 0; i < name.size(); ++i) {
    if (p[i] < 0x20 || p[i] == 0x7F) {
      return Status::Invalid(what + " '" + name + "' holds a control character");
    }
  }
  // UTF-8 check (SQLite compares identifiers as UTF-8 text).
  for (size_t i = 0; i < name.size();) {
    unsigned char c = p[i];
    size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                            : (c & 0xF8) == 0xF0   ? 4
                                                   : 0;
    if (len == 0 || i + len > name.size()) return Status::Invalid(what + " is not UTF-8");
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return Status::Invalid(what + " is not UTF-8");
    }
    i += len;
  }
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

int BindValue(sqlite3_stmt* stmt, int index, const Value& v) {
  switch (v.kind()) {
    case boost::json::kind::null: return sqlite3_bind_null(stmt, index);
    case boost::json::kind::bool_: return sqlite3_bind_int(stmt, index, v.get_bool() ? 1 : 0);
    case boost::json::kind::int64: return sqlite3_bind_int64(stmt, index, v.get_int64());
    case boost::json::kind::uint64: {
      uint64_t u = v.get_uint64();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return sqlite3_bind_int64(stmt, index, static_cast<int64_t>(u));
      }
      std::string s = std::to_string(u);
      return sqlite3_bind_text(stmt, index, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    }
    case boost::json::kind::double_: return sqlite3_bind_double(stmt, index, v.get_double());
    case boost::json::kind::string: {
      const auto& s = v.get_string();
      return sqlite3_bind_text(stmt, index, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
    }
    case boost::json::kind::array:
    case boost::json::kind::object: {
      std::string s = ToJson(v);
      return sqlite3_bind_text(stmt, index, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    }
  }
  return SQLITE_MISUSE;
}

Value ColumnValue(sqlite3_stmt* stmt, int i) {
  switch (sqlite3_column_type(stmt, i)) {
    case SQLITE_INTEGER: return Value(static_cast<int64_t>(sqlite3_column_int64(stmt, i)));
    case SQLITE_FLOAT: return Value(sqlite3_column_double(stmt, i));
    case SQLITE_TEXT: {
      const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
      int n = sqlite3_column_bytes(stmt, i);
      return Value(boost::json::string_view(t ? t : "", static_cast<size_t>(n)));
    }
    case SQLITE_BLOB: {
      const auto* b = static_cast<const unsigned char*>(sqlite3_column_blob(stmt, i));
      int n = sqlite3_column_bytes(stmt, i);
      return Value(Base64(std::string_view(reinterpret_cast<const char*>(b), static_cast<size_t>(n))));
    }
    default: return Value(nullptr);
  }
}

Record RowRecord(sqlite3_stmt* stmt) {
  Record r;
  int n = sqlite3_column_count(stmt);
  r.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const char* name = sqlite3_column_name(stmt, i);
    r.insert_or_assign(name ? name : "", ColumnValue(stmt, i));
  }
  return r;
}

}  // namespace keyonce::connectors::sqlite
