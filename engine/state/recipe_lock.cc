// One run per recipe and state file, across processes (see store.h).
//
// The lock is an open-file-description lock (F_OFD_SETLK) on one byte of
// "<state>.lock", at an offset derived from the recipe's name. Such a lock
// belongs to the open file, not the process: two runs in one process (the
// service's threads) exclude each other like two processes do, and closing
// the descriptor (or the process ending, by kill -9 too) releases it. The
// lock file is separate from the state file because closing any descriptor
// of a file drops all POSIX locks the process holds on it, SQLite's own
// included.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/clock.h"
#include "state/sqlite_util.h"
#include "state/store.h"

namespace keyonce {
namespace {

namespace fs = std::filesystem;

// FNV-1a: stable across builds and machines, so every keyonce agrees.
uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// One byte per recipe, in [2^40, 2^62): far from offset 0, inside off_t.
off_t LockOffset(const std::string& recipe) {
  constexpr uint64_t kBase = uint64_t{1} << 40, kSpan = (uint64_t{1} << 62) - kBase;
  return static_cast<off_t>(kBase + Fnv1a(recipe) % kSpan);
}

// Tries to take the byte; false when another open file description holds it.
Result<bool> TryLock(int fd, off_t at) {
  struct flock fl;
  std::memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = at;
  fl.l_len = 1;
  for (;;) {
    if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) return true;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EACCES) return false;
    return Status::Io(std::string("locking the recipe: ") + std::strerror(errno));
  }
}

std::string HostName() {
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = 0;
  return host;
}

std::string Describe(const std::string& recipe, const std::optional<StateStore::LockHolder>& h) {
  std::string who = "recipe " + recipe + " is already running";
  if (!h) return who + " (in another process that is just starting)";
  who += " (";
  if (h->run) who += "run " + std::to_string(h->run) + ", ";
  who += "pid " + std::to_string(h->pid) + " on host " + h->host + " since " + h->since;
  if (!h->started_by.empty()) who += ", started by " + h->started_by;
  return who + ")";
}

}  // namespace

Result<std::unique_ptr<RecipeLock>> StateStore::LockRecipe(const std::string& recipe,
                                                           const LockOptions& options) {
  fs::path file = path_;
  std::error_code ec;
  if (fs::path real = fs::canonical(path_, ec); !ec) file = real;  // one lock file per state file
  file += ".lock";
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::Io("opening the lock file " + file.string() + ": " + std::strerror(errno));
  }
  std::unique_ptr<RecipeLock> lock(new RecipeLock());
  lock->fd_ = fd;  // closed (and the lock released) with `lock` on every path
  lock->store_ = this;
  lock->recipe_ = recipe;
  const off_t at = LockOffset(recipe);
  bool told = false;
  for (;;) {
    auto got = TryLock(fd, at);
    if (!got.ok()) return got.status();
    if (*got) break;
    auto holder = Holder(recipe);
    std::string held = Describe(recipe, holder.ok() ? *holder : std::nullopt);
    if (!options.wait) {
      return Status::Refused(held +
                             ". Wait for it to finish, or start this run with --wait to "
                             "run after it; nothing was done.");
    }
    if (options.stop && options.stop->load()) {
      return Status::Refused(held + "; stopped while waiting for it, nothing was done.");
    }
    if (!told && options.tell) {
      options.tell(held + ": waiting for it to finish.");
      told = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // Who holds it, for the message a second run gets. A row left by a run
  // that was killed is simply replaced.
  lock->token_ = RandomHex(8);
  auto before = Holder(recipe);
  if (before.ok() && before->has_value() && options.tell) {
    // A holder releases its row with the lock: this one ended without (killed, a power cut).
    const LockHolder& h = **before;
    options.tell("The previous run of " + recipe + " (pid " + std::to_string(h.pid) + " on host " +
                 h.host + ", since " + h.since +
                 ") ended without finishing; its lock was taken over and this run completes its "
                 "work.");
  }
  KEYONCE_RETURN_IF_ERROR(WriteHolder(recipe, lock->token_, options.started_by));
  return lock;
}

Status StateStore::WriteHolder(const std::string& recipe, const std::string& token,
                               const std::string& started_by) {
  if (read_only_) return Status::OK();
  sqlite3_stmt* s = Prepare(
      "INSERT INTO recipe_locks(recipe, token, pid, host, since, started_by, run) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, 0) ON CONFLICT(recipe) DO UPDATE SET token=excluded.token, "
      "pid=excluded.pid, host=excluded.host, since=excluded.since, "
      "started_by=excluded.started_by, run=0");
  if (!s) return Error("recording who runs the recipe");
  std::string host = HostName(), since = UtcTimestamp();
  sqlite3_bind_text(s, 1, recipe.data(), static_cast<int>(recipe.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 2, token.data(), static_cast<int>(token.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(s, 3, ::getpid());
  sqlite3_bind_text(s, 4, host.data(), static_cast<int>(host.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 5, since.data(), static_cast<int>(since.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 6, started_by.data(), static_cast<int>(started_by.size()), SQLITE_TRANSIENT);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (rc != SQLITE_DONE) return Error("recording who runs the recipe");
  return Status::OK();
}

Status StateStore::SetHolderRun(const std::string& recipe, const std::string& token, int64_t run) {
  if (read_only_) return Status::OK();
  sqlite3_stmt* s = Prepare("UPDATE recipe_locks SET run=?1 WHERE recipe=?2 AND token=?3");
  if (!s) return Error("recording the run that holds the recipe");
  sqlite3_bind_int64(s, 1, run);
  sqlite3_bind_text(s, 2, recipe.data(), static_cast<int>(recipe.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 3, token.data(), static_cast<int>(token.size()), SQLITE_TRANSIENT);
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (rc != SQLITE_DONE) return Error("recording the run that holds the recipe");
  return Status::OK();
}

void StateStore::ForgetHolder(const std::string& recipe, const std::string& token) {
  if (read_only_) return;
  sqlite3_stmt* s = Prepare("DELETE FROM recipe_locks WHERE recipe=?1 AND token=?2");
  if (!s) return;
  sqlite3_bind_text(s, 1, recipe.data(), static_cast<int>(recipe.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 2, token.data(), static_cast<int>(token.size()), SQLITE_TRANSIENT);
  sqlite3_step(s);  // best effort: a row left behind is replaced by the next holder
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
}

Result<std::optional<StateStore::LockHolder>> StateStore::Holder(const std::string& recipe) {
  sqlite3_stmt* s = Prepare(
      "SELECT pid, IFNULL(host,''), IFNULL(since,''), IFNULL(started_by,''), IFNULL(run,0) "
      "FROM recipe_locks WHERE recipe=?1");
  if (!s) return std::optional<LockHolder>();  // an older read-only file has no such table
  sqlite3_bind_text(s, 1, recipe.data(), static_cast<int>(recipe.size()), SQLITE_TRANSIENT);
  std::optional<LockHolder> out;
  if (sqlite3_step(s) == SQLITE_ROW) {
    LockHolder h;
    h.pid = sqlite3_column_int64(s, 0);
    h.host = ColText(s, 1);
    h.since = ColText(s, 2);
    h.started_by = ColText(s, 3);
    h.run = sqlite3_column_int64(s, 4);
    out = std::move(h);
  }
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return out;
}

Status RecipeLock::SetRun(int64_t run) { return store_->SetHolderRun(recipe_, token_, run); }

RecipeLock::~RecipeLock() {
  if (store_ && !token_.empty()) store_->ForgetHolder(recipe_, token_);
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace keyonce
