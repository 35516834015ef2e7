#include "connectors/postgres/pg_util.h"

#include "connectors/common/encoding.h"

#include <boost/json/parse.hpp>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "keyonce/privacy.h"

namespace keyonce::connectors::postgres {
namespace {

// Type OIDs (pg_type.dat); stable across PostgreSQL versions.
constexpr Oid kBool = 16, kBytea = 17, kInt8 = 20, kInt2 = 21, kInt4 = 23, kOid = 26, kJson = 114,
              kFloat4 = 700, kFloat8 = 701, kNumeric = 1700, kJsonb = 3802;

// Short, single-line excerpt of a server or libpq message.
std::string Tidy(std::string msg) {
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  for (char& c : msg) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  if (msg.size() > 200) msg = msg.substr(0, 197) + "...";
  return msg;
}

void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
}

}  // namespace

std::vector<FieldSpec> ConnectionFields() {
  FieldSpec password = FieldSpec::Tmpl("password")
                           .Roots(kRootsStatic)
                           .Describe(
                               "The password, from a secret. It overrides a password in "
                               "`connection` and never appears in any message.")
                           .Example("\"{{ secrets.hr_db_password }}\"");
  password.secret = true;
  auto path = [](const std::string& name, const std::string& what, const std::string& example) {
    return FieldSpec::Tmpl(name, TemplateContext::kText)
        .Roots(kRootsStatic)
        .Describe(what + " Relative paths are resolved against the recipe's folder.")
        .Example(example);
  };
  return {
      FieldSpec::Tmpl("connection", TemplateContext::kText)
          .Roots(kRootsStatic)
          .Required()
          .Describe(
              "The server, as a libpq connection string (host=... port=... dbname=... user=...) "
              "or a postgresql:// URI. Put the password in `password`, not here; messages name "
              "only host, port and database.")
          .Example("\"host=db.kommune.local port=5432 dbname=hr user=keyonce\""),
      password,
      FieldSpec::Int("connect_timeout_seconds")
          .Default("10")
          .Describe("How long to wait for the server when connecting; an unreachable server is a "
                    "transient error.")
          .Example("10"),
      FieldSpec::Enum("sslmode",
                      {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
          .Describe("TLS: libpq's sslmode. verify-full checks the server's certificate and name "
                    "against sslrootcert. Default: as in `connection`, else libpq's (prefer).")
          .Example("verify-full"),
      path("sslrootcert", "CA certificate(s) (PEM) that the server's certificate must chain to.",
           "certs/db-ca.pem"),
      path("sslcert", "Client certificate (PEM) for servers that ask for one.",
           "certs/keyonce.crt"),
      path("sslkey", "The client certificate's private key (PEM, mode 0600).", "certs/keyonce.key"),
  };
}

Status CheckConnectionSettings(const Settings& settings) {
  const Template* t = settings.Tmpl("connection");
  if (!t || !t->IsConstant()) return Status::OK();
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(t->source().c_str(), &err);
  if (err) PQfreemem(err);
  if (!opts) {
    return Status::Invalid(settings.where +
                           ": connection is not a libpq connection string (key=value ...) or "
                           "postgresql:// URI");
  }
  PQconninfoFree(opts);
  return Status::OK();
}

// ------------------------------------------------------------------ Connection

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

Result<std::unique_ptr<Connection>> Connection::Open(const Settings& settings, const Scope& scope,
                                                     Log* log) {
  std::unique_ptr<Connection> c(new Connection());
  const Template* ct = settings.Tmpl("connection");
  if (!ct) return Status::Invalid(settings.where + ": connection is missing");
  auto conninfo = ct->Render(scope);
  if (!conninfo.ok()) return conninfo.status().Wrap("rendering connection");
  c->conninfo_ = std::move(conninfo).value();
  if (const Template* pt = settings.Tmpl("password")) {
    auto pw = pt->Evaluate(scope);
    if (!pw.ok()) return pw.status().Wrap("rendering password");
    c->password_ = ToText(*pw);
  }

  // Where, for messages: host, port and database only.
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(c->conninfo_.c_str(), &err);
  if (err) PQfreemem(err);
  if (!opts) {
    return Status::Invalid(settings.where +
                           ": connection is not a libpq connection string (key=value ...) or "
                           "postgresql:// URI");
  }
  std::string host, hostaddr, port, dbname, user, inline_password;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (!o->val) continue;
    std::string k = o->keyword;
    if (k == "host") host = o->val;
    if (k == "hostaddr") hostaddr = o->val;
    if (k == "port") port = o->val;
    if (k == "dbname") dbname = o->val;
    if (k == "user") user = o->val;
    if (k == "password") inline_password = o->val;
  }
  PQconninfoFree(opts);
  if (host.empty()) host = hostaddr.empty() ? "localhost" : hostaddr;
  if (port.empty()) port = "5432";
  if (dbname.empty()) dbname = user;
  c->where_ = "PostgreSQL at " + host + ":" + port + (dbname.empty() ? "" : "/" + dbname);
  if (c->password_.empty()) c->password_ = inline_password;
  if (log && c->password_.size() >= 4) log->AddSecret(c->password_);

  // dbname first, expanded: later entries override what the string says.
  c->keys_ = {"dbname", "fallback_application_name", "client_encoding", "connect_timeout"};
  c->values_ = {c->conninfo_, "keyonce", "UTF8",
                std::to_string(settings.Int("connect_timeout_seconds").value_or(10))};
  if (!c->password_.empty()) {
    c->keys_.push_back("password");
    c->values_.push_back(c->password_);
  }
  if (auto mode = settings.String("sslmode")) {
    c->keys_.push_back("sslmode");
    c->values_.push_back(*mode);
  }
  for (const char* name : {"sslrootcert", "sslcert", "sslkey"}) {
    if (!settings.Tmpl(name)) continue;
    auto p = settings.ResolvePath(name, scope);
    if (!p.ok()) return p.status();
    c->keys_.push_back(name);
    c->values_.push_back(p->string());
  }
  KEYONCE_RETURN_IF_ERROR(c->Connect());
  return c;
}

Status Connection::Connect() {
  if (conn_) PQfinish(conn_);
  std::vector<const char*> k, v;
  for (size_t i = 0; i < keys_.size(); ++i) {
    k.push_back(keys_[i].c_str());
    v.push_back(values_[i].c_str());
  }
  k.push_back(nullptr);
  v.push_back(nullptr);
  conn_ = PQconnectdbParams(k.data(), v.data(), /*expand_dbname=*/1);
  if (!conn_) return Status::Internal("connecting to " + where_ + ": out of memory");
  if (PQstatus(conn_) == CONNECTION_OK) {
    // Notices ("relation already exists, skipping") would go to stderr.
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);
    // Dates and timestamps as ISO text, whatever the server's default.
    return Exec("SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'iso_8601'",
                "setting the date style");
  }
  // libpq says "connection to server at "h" (addr), port p failed: FATAL:  msg";
  // where_ already names the server: keep the last line's reason.
  std::string msg = PQerrorMessage(conn_);
  if (size_t f = msg.rfind("failed: "); f != std::string::npos) msg = msg.substr(f + 8);
  if (msg.rfind("FATAL:", 0) == 0) msg = msg.substr(6);
  while (!msg.empty() && (msg.front() == ' ' || msg.front() == '\n')) msg.erase(0, 1);
  msg = "connecting to " + where_ + ": " + Tidy(Scrub(msg));
  PQfinish(conn_);
  conn_ = nullptr;
  for (const char* refused : {"password authentication failed", "no password supplied",
                              "does not exist", "no pg_hba.conf entry", "permission denied",
                              "certificate", "SSL", "invalid", "authentication"}) {
    if (msg.find(refused) != std::string::npos) return Status::Invalid(msg);
  }
  return Status::Transient(msg);
}

Status Connection::Reconnect() { return Connect(); }

std::string Connection::Scrub(std::string msg) const {
  if (conninfo_.size() >= 4) ReplaceAll(msg, conninfo_, "[connection]");
  if (password_.size() >= 4) ReplaceAll(msg, password_, "[secret]");
  // password=... in an echoed fragment of a key=value string
  for (size_t pos = 0; (pos = msg.find("password=", pos)) != std::string::npos;) {
    size_t end = msg.find_first_of(" \"'", pos + 9);
    if (end == std::string::npos) end = msg.size();
    msg.replace(pos + 9, end - pos - 9, "[secret]");
    pos += 17;
  }
  // user:password@ of a URI
  for (size_t pos = 0; (pos = msg.find("://", pos)) != std::string::npos; pos += 3) {
    size_t at = msg.find('@', pos);
    size_t colon = msg.find(':', pos + 3);
    size_t stop = msg.find_first_of(" /\"'", pos + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at &&
        (stop == std::string::npos || at < stop)) {
      msg.replace(colon + 1, at - colon - 1, "[secret]");
    }
  }
  return msg;
}

Status Connection::Exec(const std::string& sql, const std::string& what) {
  ResultPtr r(PQexec(conn_, sql.c_str()));
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Status::OK();
  return StatementError(r.get(), what);
}

Status Connection::Prepare(const std::string& name, const std::string& sql, int params,
                           const std::string& what) {
  ResultPtr r(PQprepare(conn_, name.c_str(), sql.c_str(), params, nullptr));
  if (r && PQresultStatus(r.get()) == PGRES_COMMAND_OK) return Status::OK();
  return StatementError(r.get(), what);
}

bool Connection::LostConnection(const PGresult* r) const {
  if (Broken()) return true;
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  if (!state) return r == nullptr;
  std::string s = state;
  return s.rfind("08", 0) == 0 || s == "57P01" || s == "57P02" || s == "57P03";
}

Status::Code ClassifySqlState(const std::string& s) {
  auto cls = [&](const char* c) { return s.rfind(c, 0) == 0; };
  if (cls("08") || cls("53") || cls("57") || s == "40001" || s == "40P01" || s == "55P03" ||
      s == "55006" || s == "58000" || s == "58030") {
    return Status::Code::kTransient;
  }
  if (cls("42") || cls("0A") || cls("3F") || cls("3D") || s == "25006") {
    return Status::Code::kInvalid;
  }
  if (cls("XX")) return Status::Code::kIo;
  return Status::Code::kPermanent;  // 22 data, 23 integrity, P0 raise, 44 check option, ...
}

Status Connection::StatementError(const PGresult* r, const std::string& what,
                                  const std::vector<std::string>* values) const {
  std::string msg, state;
  if (r) {
    if (const char* m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)) msg = m;
    if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) state = s;
  }
  if (msg.empty() && conn_) msg = PQerrorMessage(conn_);
  if (msg.empty()) msg = "no answer from the server";
  // Values show up in data errors (invalid input syntax for type integer: "x"):
  // a quoted value is masked whatever its length, a bare one from 4 characters.
  if (values) {
    for (const auto& v : *values) {
      ReplaceAll(msg, "\"" + v + "\"", "\"<value>\"");
      if (v.size() >= 4) ReplaceAll(msg, v, "<value>");
    }
  }
  msg = Tidy(MaskCpr(Scrub(msg)));
  bool lost = LostConnection(r);
  std::string full = what + " on " + where_ + ": " + msg;
  if (!state.empty()) full += " (SQLSTATE " + state + ")";
  if (lost) {
    return Status::Transient(full + (state.empty() ? "" : "; the connection is gone"));
  }
  switch (ClassifySqlState(state)) {
    case Status::Code::kTransient:
      return Status::Transient(full);
    case Status::Code::kInvalid:
      return Status::Invalid(full);
    case Status::Code::kIo:
      return Status::Io(full);
    default:
      return Status::Permanent(full);
  }
}

// ------------------------------------------------------------------ values

Status Params::Set(const std::vector<Value>& values, const std::vector<std::string>* names) {
  text.resize(values.size());
  null.assign(values.size(), 0);
  for (size_t i = 0; i < values.size(); ++i) {
    const Value& v = values[i];
    std::string& t = text[i];
    switch (v.kind()) {
      case boost::json::kind::null:
        null[i] = 1;
        t.clear();
        break;
      case boost::json::kind::bool_:
        t = v.get_bool() ? "true" : "false";
        break;
      case boost::json::kind::string:
        t.assign(v.get_string().data(), v.get_string().size());
        break;
      default:
        t = v.is_number() ? ToText(v) : ToJson(v);
        break;
    }
    if (t.find('\0') != std::string::npos) {
      return Status::Permanent((names && i < names->size() ? "column " + (*names)[i]
                                                           : "value " + std::to_string(i + 1)) +
                               " holds a NUL character, which PostgreSQL text cannot store");
    }
  }
  Point();
  return Status::OK();
}

void Params::Point() {
  ptrs.resize(text.size());
  for (size_t i = 0; i < text.size(); ++i) ptrs[i] = null[i] ? nullptr : text[i].c_str();
}

Result<std::string> NumberPlaceholders(const std::string& sql, size_t binds) {
  std::string out;
  out.reserve(sql.size() + binds * 2);
  size_t n = 0, i = 0;
  const size_t len = sql.size();
  auto bad = [](const std::string& why) -> Status {
    return Status::Invalid("query: " + why + "; write values as {{ expression }}");
  };
  while (i < len) {
    char c = sql[i];
    if (c == '\'' || c == '"') {  // '...' (E'..\'..' too) and "ident"
      bool backslash = c == '\'' && i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e');
      size_t j = i + 1;
      for (; j < len; ++j) {
        if (backslash && sql[j] == '\\') {
          ++j;
          continue;
        }
        if (sql[j] == c) {
          if (j + 1 < len && sql[j + 1] == c) {
            ++j;
            continue;
          }
          break;
        }
      }
      out.append(sql, i, j + 1 - i);
      i = j + 1;
    } else if (c == '-' && i + 1 < len && sql[i + 1] == '-') {
      size_t j = sql.find('\n', i);
      if (j == std::string::npos) j = len;
      out.append(sql, i, j - i);
      i = j;
    } else if (c == '/' && i + 1 < len && sql[i + 1] == '*') {  // nested in PostgreSQL
      int depth = 0;
      size_t j = i;
      while (j < len) {
        if (sql.compare(j, 2, "/*") == 0) {
          ++depth;
          j += 2;
        } else if (sql.compare(j, 2, "*/") == 0) {
          j += 2;
          if (--depth == 0) break;
        } else {
          ++j;
        }
      }
      out.append(sql, i, j - i);
      i = j;
    } else if (c == '$') {
      // $n parameter, or a dollar quote $tag$...$tag$ (tag: letters, digits, _).
      size_t j = i + 1;
      if (j < len && sql[j] >= '0' && sql[j] <= '9') {
        return bad("it holds a $" + std::string(1, sql[j]) + " parameter of its own");
      }
      bool ident_before =
          i > 0 && (std::isalnum(static_cast<unsigned char>(sql[i - 1])) || sql[i - 1] == '_');
      while (j < len && (std::isalnum(static_cast<unsigned char>(sql[j])) || sql[j] == '_')) ++j;
      if (!ident_before && j < len && sql[j] == '$') {
        std::string tag = sql.substr(i, j + 1 - i);
        size_t end = sql.find(tag, j + 1);
        end = end == std::string::npos ? len : end + tag.size();
        out.append(sql, i, end - i);
        i = end;
      } else {
        out.append(sql, i, j - i);
        i = j;
      }
    } else if (c == '?') {
      ++n;
      out += '$';
      out += std::to_string(n);
      ++i;
    } else {
      out += c;
      ++i;
    }
  }
  if (n != binds) {
    return bad(
        "it holds a '?' of its own (PostgreSQL has no ? placeholders; for the jsonb ? "
        "operators use jsonb_exists() and its friends)");
  }
  return out;
}

Result<std::string> QuoteIdent(const std::string& name, const std::string& what) {
  if (name.empty()) return Status::Invalid(what + " is empty");
  if (name.size() > 63) {
    return Status::Invalid(what + " '" + name + "' is longer than PostgreSQL's 63 bytes");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7F)
      return Status::Invalid(what + " '" + name + "' holds a control character");
  }
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

namespace {

// numeric as a JSON number when a double holds it exactly enough: integers
// that fit int64, decimals with at most 15 significant digits; else text.
Value NumericValue(const char* s, size_t n) {
  std::string t(s, n);
  bool dot = t.find('.') != std::string::npos;
  if (t.find_first_not_of("+-0123456789.") != std::string::npos) return Value(t);  // NaN, Infinity
  if (!dot) {
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(t.c_str(), &end, 10);
    if (errno == 0 && end && *end == '\0') return Value(static_cast<int64_t>(v));
    return Value(t);
  }
  size_t first = t.find_first_not_of("+-0.");
  size_t last = t.find_last_not_of('0');
  size_t digits = 0;
  if (first != std::string::npos && last != std::string::npos) {
    for (size_t i = first; i <= last; ++i) digits += t[i] >= '0' && t[i] <= '9';
  }
  if (digits > 15) return Value(t);
  return Value(std::strtod(t.c_str(), nullptr));
}

}  // namespace

Value CellValue(const PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return Value(nullptr);
  const char* s = PQgetvalue(r, row, col);
  size_t n = static_cast<size_t>(PQgetlength(r, row, col));
  switch (PQftype(r, col)) {
    case kBool:
      return Value(n > 0 && s[0] == 't');
    case kInt2:
    case kInt4:
    case kInt8:
    case kOid:
      return Value(static_cast<int64_t>(std::strtoll(s, nullptr, 10)));
    case kFloat4:
    case kFloat8: {
      if (n == 0 || (s[0] != '-' && (s[0] < '0' || s[0] > '9'))) return Value(std::string(s, n));
      if (s[0] == '-' && n > 1 && (s[1] < '0' || s[1] > '9')) return Value(std::string(s, n));
      return Value(std::strtod(s, nullptr));
    }
    case kNumeric:
      return NumericValue(s, n);
    case kJson:
    case kJsonb: {
      boost::system::error_code ec;
      Value v = boost::json::parse(boost::json::string_view(s, n), ec);
      if (!ec) return v;
      return Value(std::string(s, n));
    }
    case kBytea: {
      size_t out_len = 0;
      unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(s), &out_len);
      if (!raw) return Value(nullptr);
      std::string b64 = Base64(std::string_view(reinterpret_cast<const char*>(raw), out_len));
      PQfreemem(raw);
      return Value(std::move(b64));
    }
    default:
      return Value(boost::json::string_view(s, n));
  }
}

Record RowRecord(const PGresult* r, int row) {
  Record rec;
  int n = PQnfields(r);
  rec.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) rec.insert_or_assign(PQfname(r, i), CellValue(r, row, i));
  return rec;
}

}  // namespace keyonce::connectors::postgres
