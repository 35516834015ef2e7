// Opening, creating, checking and upgrading the state file (see store.h):
// what makes a state file one that the journal may trust.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include "core/clock.h"
#include "state/journal.h"
#include "state/sqlite_util.h"
#include "state/store.h"

namespace keyonce {
namespace {

namespace fs = std::filesystem;

// The current schema. Every statement is idempotent: it makes a new file and
// completes an older one (Upgrade).
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs(
  id INTEGER PRIMARY KEY, recipe TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
  status TEXT NOT NULL, trigger TEXT, params TEXT, counts TEXT, exit_code INTEGER);
CREATE INDEX IF NOT EXISTS runs_recipe ON runs(recipe, id);
CREATE TABLE IF NOT EXISTS targets(
  id INTEGER PRIMARY KEY, recipe TEXT NOT NULL, name TEXT NOT NULL, UNIQUE(recipe, name));
CREATE TABLE IF NOT EXISTS journal(
  target INTEGER NOT NULL, key BLOB NOT NULL, written BLOB, doubt INTEGER NOT NULL DEFAULT 0,
  captures TEXT, run INTEGER, updated_at INTEGER, PRIMARY KEY(target, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal_recent(
  merge INTEGER NOT NULL, target INTEGER NOT NULL, key BLOB NOT NULL, written BLOB,
  doubt INTEGER NOT NULL DEFAULT 0, captures TEXT, run INTEGER, updated_at INTEGER,
  PRIMARY KEY(merge, target, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS batches(
  id INTEGER PRIMARY KEY, target INTEGER NOT NULL, run INTEGER NOT NULL, state INTEGER NOT NULL,
  token_before TEXT, token_after TEXT, created_at INTEGER, intents BLOB);
CREATE TABLE IF NOT EXISTS intent_captures(
  batch INTEGER NOT NULL, key BLOB NOT NULL, captures TEXT NOT NULL,
  PRIMARY KEY(batch, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS batches_open ON batches(target, id) WHERE state = 0;
CREATE INDEX IF NOT EXISTS batches_target ON batches(target, id);
CREATE TABLE IF NOT EXISTS quarantine(
  id INTEGER PRIMARY KEY, recipe TEXT NOT NULL, run INTEGER, ref TEXT, stage TEXT NOT NULL,
  target TEXT, position TEXT, reason TEXT NOT NULL, record TEXT, status TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT, params TEXT, secrets TEXT);
CREATE INDEX IF NOT EXISTS quarantine_recipe ON quarantine(recipe, status, id);
CREATE TABLE IF NOT EXISTS watermarks(recipe TEXT PRIMARY KEY, value TEXT, run INTEGER);
CREATE TABLE IF NOT EXISTS recipe_locks(
  recipe TEXT PRIMARY KEY, token TEXT NOT NULL, pid INTEGER, host TEXT, since TEXT,
  started_by TEXT, run INTEGER);
)sql";

// The tables without which the journal cannot answer for what was written.
const char* const kCoreTables[] = {"meta",    "runs",       "targets",   "journal",
                                   "batches", "quarantine", "watermarks"};

// Columns later versions added to tables that already existed.
struct AddedColumn {
  const char* table;
  const char* column;
  const char* type;
};
const AddedColumn kAddedColumns[] = {{"quarantine", "params", "TEXT"},
                                     {"quarantine", "secrets", "TEXT"},
                                     {"batches", "intents", "BLOB"}};

// What to do, said once for every refusal of a file that is there.
std::string Remedy(const fs::path& path) {
  return " Restore the state file from a backup (with its -wal file, if it has one), or check it "
         "with `keyonce state check " +
         path.string() +
         "`. To start a new journal on purpose, move the file away and run `keyonce state init " +
         path.string() + "`; targets written before are then refused until a run with --adopt.";
}

uint32_t BigEndian(const unsigned char* p, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

// The SQLite header of an existing file: refuses empty files, other kinds of
// file, and copies cut short of the size the header promises.
Status CheckHeader(const fs::path& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) return Status::Io("reading the state file " + path.string() + ": " + ec.message());
  if (size == 0) {
    return Status::Refused("the state file " + path.string() +
                           " is empty (0 bytes): a copy or restore that failed, or a full disk?" +
                           Remedy(path));
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Status::Io("opening the state file " + path.string() + ": " + std::strerror(errno));
  }
  unsigned char h[100] = {};
  ssize_t n = ::pread(fd, h, sizeof h, 0);
  ::close(fd);
  static const char kMagic[] = "SQLite format 3";  // with its NUL: 16 bytes
  if (n < 100 || std::memcmp(h, kMagic, 16) != 0) {
    return Status::Refused("the state file " + path.string() +
                           " is not a SQLite database (damaged, or another kind of file)." +
                           Remedy(path));
  }
  uint64_t page_size = BigEndian(h + 16, 2);
  if (page_size == 1) page_size = 65536;
  // The page count in the header is valid when written by SQLite >= 3.7.0
  // (its "version valid for" equals the change counter).
  uint64_t pages = BigEndian(h + 28, 4);
  // A WAL with frames beside it: the file may be shorter than its header says
  // after a kill during a checkpoint (SQLite copies page 1 first); the WAL
  // still holds the rest, and SQLite finishes the checkpoint on open.
  fs::path wal = path;
  wal += "-wal";
  const auto wal_size = fs::file_size(wal, ec);
  const bool wal_has_frames = !ec && wal_size > 32;  // 32: the WAL's own header
  if (!wal_has_frames && BigEndian(h + 92, 4) == BigEndian(h + 24, 4) && pages > 0 &&
      size < pages * page_size) {
    return Status::Refused("the state file " + path.string() +
                           " is cut short: " + std::to_string(size) + " bytes of the " +
                           std::to_string(pages * page_size) +
                           " its header promises (an interrupted copy?)." + Remedy(path));
  }
  return Status::OK();
}

// The state file's folder must exist: a typo or a disk that is not mounted
// must not become a new, empty journal.
Status CheckFolder(const fs::path& path) {
  fs::path folder = path.parent_path();
  if (folder.empty()) return Status::OK();
  std::error_code ec;
  if (fs::is_directory(folder, ec)) return Status::OK();
  return Status::Refused("the folder " + folder.string() + " of the state file " + path.string() +
                         " does not exist (a typo, or a disk that is not mounted?). Create it "
                         "first if it is the right place, or give the right --state; keyonce does "
                         "not make it, so that a mistyped path never becomes a new, empty journal "
                         "(see `keyonce state init`).");
}

int64_t PidOf(const std::string& leftover, const std::string& prefix) {
  char* end = nullptr;
  long long pid = std::strtoll(leftover.c_str() + prefix.size(), &end, 10);
  return end && *end == '-' ? pid : 0;
}

// Removes what a creator killed halfway left (its pid is gone).
void RemoveLeftovers(const fs::path& path) {
  std::error_code ec;
  fs::path folder = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  const std::string prefix = path.filename().string() + ".init-";
  for (const auto& e : fs::directory_iterator(folder, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    int64_t pid = PidOf(name, prefix);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      fs::remove(e.path(), ec);
    }
  }
}

// Builds a complete new state file under a temporary name, then links it to
// `path`: the file never appears half made, and when two processes create it
// at once exactly one link succeeds (the other opens the winner's file).
// Returns false in *created when a file was already there.
Status CreateFile(const fs::path& path, bool* created) {
  *created = false;
  RemoveLeftovers(path);
  fs::path tmp = path;
  tmp += ".init-" + std::to_string(::getpid()) + "-" + RandomHex(6);
  sqlite3* db = nullptr;
  auto fail = [&](const std::string& what) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    if (db) sqlite3_close(db);
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      fs::path p = tmp;
      p += suffix;
      fs::remove(p, ec);
    }
    return Status::Io(what + " " + path.string() + ": " + msg);
  };
  if (sqlite3_open_v2(tmp.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    return fail("creating the state file");
  }
  std::string init = "PRAGMA application_id=" + std::to_string(kStateApplicationId) +
                     "; PRAGMA user_version=" + std::to_string(kStateSchemaVersion) +
                     "; PRAGMA journal_mode=WAL; BEGIN; " + kSchema +
                     "INSERT INTO meta(k, v) VALUES('state_id', '" + RandomHex(16) +
                     "'), ('pseudonym_key', '" + RandomHex(32) + "'), ('created_at', '" +
                     UtcTimestamp() + "'); COMMIT;";
  if (sqlite3_exec(db, init.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    return fail("creating the state file");
  }
  // Closing checkpoints the WAL into the file and removes it.
  if (sqlite3_close(db) != SQLITE_OK) return fail("creating the state file");
  db = nullptr;
  int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  int rc = ::link(tmp.c_str(), path.c_str());
  int err = errno;
  std::error_code ec;
  fs::remove(tmp, ec);
  if (rc != 0 && err != EEXIST) {
    return Status::Io("creating the state file " + path.string() + ": " + std::strerror(err));
  }
  *created = rc == 0;
  fs::path folder = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  int dfd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // the new name survives a power cut
    ::close(dfd);
  }
  return Status::OK();
}

}  // namespace

Result<std::unique_ptr<StateStore>> StateStore::Open(const fs::path& path, bool read_only) {
  std::unique_ptr<StateStore> st(new StateStore());
  st->read_only_ = read_only;
  st->path_ = path;
  std::error_code ec;
  bool exists = fs::exists(path, ec);
  if (!exists && !read_only) {
    KEYONCE_RETURN_IF_ERROR(CheckFolder(path));
    bool created = false;
    KEYONCE_RETURN_IF_ERROR(CreateFile(path, &created));
    exists = true;
  }
  if (!exists) {
    // Nothing recorded yet: an in-memory store answers every question with "never".
    if (sqlite3_open(":memory:", &st->db_) != SQLITE_OK) return Status::Io("cannot open memory db");
    st->empty_ = true;
    KEYONCE_RETURN_IF_ERROR(st->Exec(kSchema).Wrap("creating the state store schema"));
  } else {
    if (!fs::is_regular_file(path, ec)) {
      return Status::Refused("the state file " + path.string() + " is not a regular file.");
    }
    KEYONCE_RETURN_IF_ERROR(CheckHeader(path));
    int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
    if (sqlite3_open_v2(path.c_str(), &st->db_, flags | SQLITE_OPEN_NOMUTEX, nullptr) !=
        SQLITE_OK) {
      std::string msg = st->db_ ? sqlite3_errmsg(st->db_) : "out of memory";
      return Status::Io("opening state store " + path.string() + ": " + msg);
    }
    sqlite3_busy_timeout(st->db_, 30000);
    KEYONCE_RETURN_IF_ERROR(st->Verify());
  }
  if (sqlite3_stmt* meta =
          st->Prepare("SELECT k, v FROM meta WHERE k IN ('pseudonym_key', 'state_id')")) {
    while (sqlite3_step(meta) == SQLITE_ROW) {
      (ColText(meta, 0) == "state_id" ? st->state_id_ : st->pseudonym_key_) = ColText(meta, 1);
    }
    sqlite3_reset(meta);
  }
  if (const char* env = std::getenv("KEYONCE_PSEUDONYM_KEY"); env && *env) {
    st->pseudonym_key_ = env;
  } else if (st->pseudonym_key_.empty()) {
    st->pseudonym_key_ = RandomHex(32);  // an empty read-only store: nothing to find anyway
  }
  return st;
}

Status StateStore::Verify() {
  const std::string where = "the state file " + path_.string();
  auto pragma = [&](const char* sql, int64_t* out) -> Status {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql, -1, &s, nullptr);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) *out = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    if (rc == SQLITE_ROW) return Status::OK();
    if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) {
      return Status::Refused(where + " is damaged (" + sqlite3_errstr(rc) + ")." + Remedy(path_));
    }
    return Error("reading the state file's header");
  };
  int64_t app = 0, version = 0;
  KEYONCE_RETURN_IF_ERROR(pragma("PRAGMA application_id", &app));
  KEYONCE_RETURN_IF_ERROR(pragma("PRAGMA user_version", &version));
  std::set<std::string> tables;
  {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db_, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &s,
                                nullptr);
    if (rc == SQLITE_OK) {
      while ((rc = sqlite3_step(s)) == SQLITE_ROW) tables.insert(ColText(s, 0));
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE) {
      return Status::Refused(where + " is damaged (" + sqlite3_errmsg(db_) + ")." + Remedy(path_));
    }
  }
  std::string missing;
  for (const char* t : kCoreTables) {
    if (!tables.count(t)) missing += std::string(missing.empty() ? "" : ", ") + t;
  }
  if (app == 0) {
    // keyonce 0.1 wrote no application id: its files have the core tables
    // (a few missing make it incomplete, not foreign).
    int core = 0;
    for (const char* t : kCoreTables) core += tables.count(t) ? 1 : 0;
    bool ours = tables.count("meta") && core >= 3;
    if (!ours) {
      std::string theirs;
      int n = 0;
      for (const auto& t : tables) {
        if (t.rfind("sqlite_", 0) == 0 || ++n > 5) continue;
        theirs += (theirs.empty() ? "" : ", ") + t;
      }
      return Status::Refused(
          where + " is not a keyonce state file (" +
          (tables.empty() ? std::string("an empty SQLite database")
                          : "another application's SQLite database, with the tables " + theirs) +
          "); it was left as it is. Give the path of keyonce's state file, or start a new one "
          "with `keyonce state init NEW-FILE`.");
    }
    version = 1;
  } else if (app != kStateApplicationId) {
    return Status::Refused(where +
                           " is not a keyonce state file (another application's SQLite "
                           "database); it was left as it is. Give the path of keyonce's "
                           "state file, or start a new one with `keyonce state init "
                           "NEW-FILE`.");
  }
  if (version > kStateSchemaVersion) {
    return Status::Refused(where + " was written by a newer keyonce (schema version " +
                           std::to_string(version) + "; this keyonce knows up to " +
                           std::to_string(kStateSchemaVersion) +
                           "). Run the newer keyonce, or restore a backup made with this one; "
                           "`keyonce state check` tells more.");
  }
  if (!missing.empty()) {
    return Status::Refused(where + " is incomplete: the table(s) " + missing +
                           " are missing, so the journal cannot tell what was written." +
                           Remedy(path_));
  }
  if (read_only_) {
    legacy_ = version < kStateSchemaVersion;
    return Status::OK();
  }
  // WAL with FULL sync: a committed intent survives a power cut, not only kill -9.
  // A larger cache and fewer checkpoints: journal pages are revisited every batch.
  // Statement journals in memory: a merge's 64-row statements change a page a
  // row, and on temporary files they were more bytes than the journal itself
  // (no query of the state file sorts or builds temporary tables of its size).
  KEYONCE_RETURN_IF_ERROR(
      Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-8192;"
           " PRAGMA wal_autocheckpoint=4096; PRAGMA temp_store=MEMORY;"));
  if (app != kStateApplicationId || version < kStateSchemaVersion ||
      !tables.count("recipe_locks")) {
    KEYONCE_RETURN_IF_ERROR(Upgrade(static_cast<int>(version)));
  }
  return Status::OK();
}

Status StateStore::Upgrade(int version) {
  auto tx = Transact();
  if (!tx.ok()) return tx.status();
  auto fail = [&](Status st) {
    return st.Wrap("upgrading the state file " + path_.string() + " from schema version " +
                   std::to_string(version));
  };
  // Another process may have upgraded it meanwhile: the statements below are
  // idempotent, and the columns are added only where they are missing.
  Status st = Exec(kSchema);
  if (!st.ok()) return fail(st);
  for (const auto& c : kAddedColumns) {
    std::string probe = std::string("SELECT 1 FROM pragma_table_info('") + c.table +
                        "') WHERE name = '" + c.column + "'";
    sqlite3_stmt* s = nullptr;
    bool has = sqlite3_prepare_v2(db_, probe.c_str(), -1, &s, nullptr) == SQLITE_OK &&
               sqlite3_step(s) == SQLITE_ROW;
    sqlite3_finalize(s);
    if (has) continue;
    std::string add =
        std::string("ALTER TABLE ") + c.table + " ADD COLUMN " + c.column + " " + c.type;
    st = Exec(add.c_str());
    if (!st.ok()) return fail(st);
  }
  // Schema 3 keeps a batch's intents in its row (a blob) instead of a row each.
  st = Journal::UpgradeIntents(*this);
  if (!st.ok()) return fail(st);
  std::string meta = "INSERT OR IGNORE INTO meta(k, v) VALUES('state_id', '" + RandomHex(16) +
                     "'), ('pseudonym_key', '" + RandomHex(32) + "'), ('created_at', '" +
                     UtcTimestamp() +
                     "'); PRAGMA application_id=" + std::to_string(kStateApplicationId) +
                     "; PRAGMA user_version=" + std::to_string(kStateSchemaVersion) + ";";
  st = Exec(meta.c_str());
  if (!st.ok()) return fail(st);
  return tx->Commit();
}

Status StateStore::Init(const fs::path& path) {
  std::error_code ec;
  if (fs::exists(path, ec)) {
    if (!fs::is_regular_file(path, ec) || fs::file_size(path, ec) != 0) {
      return Status::Refused(path.string() +
                             " is already there; `keyonce state init` never replaces a file "
                             "that holds anything. Move it away first if you mean to start a "
                             "new journal.");
    }
    // An empty file (a failed copy) holds nothing to lose: a new journal replaces it.
    fs::remove(path, ec);
  }
  KEYONCE_RETURN_IF_ERROR(CheckFolder(path));
  bool created = false;
  KEYONCE_RETURN_IF_ERROR(CreateFile(path, &created));
  if (!created) return Status::Refused(path.string() + " was made by another process meanwhile.");
  return Status::OK();
}

Result<StateStore::Report> StateStore::Check() {
  Report r;
  r.state_id = state_id_;
  std::error_code ec;
  r.bytes = static_cast<int64_t>(fs::file_size(path_, ec));
  auto one_text = [&](const char* sql) {
    std::string out;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql, -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
      out = ColText(s, 0);
    sqlite3_finalize(s);
    return out;
  };
  auto one_int = [&](const std::string& sql, const std::string& arg = "") -> int64_t {
    sqlite3_stmt* s = nullptr;
    int64_t v = 0;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK) {
      if (!arg.empty())
        sqlite3_bind_text(s, 1, arg.data(), static_cast<int>(arg.size()), SQLITE_TRANSIENT);
      if (sqlite3_step(s) == SQLITE_ROW) v = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return v;
  };
  r.schema_version = static_cast<int>(one_int("PRAGMA user_version"));
  r.created_at = one_text("SELECT v FROM meta WHERE k = 'created_at'");
  {
    std::string problems;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, "PRAGMA integrity_check(20)", -1, &s, nullptr) == SQLITE_OK) {
      while (sqlite3_step(s) == SQLITE_ROW)
        problems += (problems.empty() ? "" : "; ") + ColText(s, 0);
    } else {
      problems = sqlite3_errmsg(db_);
    }
    sqlite3_finalize(s);
    r.integrity = problems;
  }
  std::set<std::string> recipes;
  {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, "SELECT recipe FROM runs UNION SELECT recipe FROM targets", -1, &s,
                           nullptr) == SQLITE_OK) {
      while (sqlite3_step(s) == SQLITE_ROW) recipes.insert(ColText(s, 0));
    }
    sqlite3_finalize(s);
  }
  for (const auto& name : recipes) {
    Report::RecipeCounts c;
    c.recipe = name;
    c.runs = one_int("SELECT count(*) FROM runs WHERE recipe = ?1", name);
    c.open_quarantine =
        one_int("SELECT count(*) FROM quarantine WHERE recipe = ?1 AND status = 'open'", name);
    c.pending_batches = one_int(
        "SELECT count(*) FROM batches b JOIN targets t ON t.id = b.target WHERE t.recipe = ?1 AND "
        "b.state = 0",
        name);
    // Keys a killed run left in journal_recent count too (a file older than
    // that table has none: the second statement).
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_,
                           "SELECT t.name, (SELECT count(*) FROM journal j WHERE j.target = t.id) + "
                           "(SELECT count(DISTINCT r.key) FROM journal_recent r WHERE r.target = "
                           "t.id AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.target = r.target "
                           "AND j.key = r.key)) FROM targets t WHERE t.recipe = ?1 ORDER BY t.id",
                           -1, &s, nullptr) == SQLITE_OK ||
        sqlite3_prepare_v2(db_,
                           "SELECT t.name, (SELECT count(*) FROM journal j WHERE j.target = t.id) "
                           "FROM targets t WHERE t.recipe = ?1 ORDER BY t.id",
                           -1, &s, nullptr) == SQLITE_OK) {
      sqlite3_bind_text(s, 1, name.data(), static_cast<int>(name.size()), SQLITE_TRANSIENT);
      while (sqlite3_step(s) == SQLITE_ROW) {
        c.targets.emplace_back(ColText(s, 0), sqlite3_column_int64(s, 1));
        c.journal += sqlite3_column_int64(s, 1);
      }
    }
    sqlite3_finalize(s);
    auto runs = ListRuns(name, 1);
    if (runs.ok() && !runs->empty()) {
      const auto& last = runs->front();
      c.last_run = "#" + std::to_string(last.id) + " " + last.status + " " + last.started_at;
    }
    r.recipes.push_back(std::move(c));
  }
  // Rows of their own and rows kept in chunks (0 where a table is missing).
  r.audit_rows =
      one_int("SELECT count(*) FROM audit") + one_int("SELECT IFNULL(sum(n), 0) FROM audit_chunks");
  return r;
}

}  // namespace keyonce
