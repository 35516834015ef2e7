#include "connectors/common/text_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>

namespace keyonce::connectors {
namespace {

namespace fs = std::filesystem;

constexpr size_t kBufferBytes = size_t{1} << 20;  // 1 MiB
constexpr const char* kTmpInfix = ".keyonce-tmp-";

Status Errno(const std::string& what, const fs::path& path, int err) {
  return Status::Io(what + " " + path.string() + ": " + std::strerror(err));
}

// Writes all of `data` at `offset`, retrying on short writes and EINTR.
Status PWriteAll(int fd, const char* data, size_t n, uint64_t offset, const fs::path& path) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Errno("writing", path, errno);
    }
    data += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return Status::OK();
}

Status FsyncDir(const fs::path& dir) {
  fs::path d = dir.empty() ? fs::path(".") : dir;
  int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("opening folder", d, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems do not support fsync on folders; that is not an error.
  if (rc != 0 && err != EINVAL && err != ENOTSUP) return Errno("syncing folder", d, err);
  return Status::OK();
}

Status MakeDirs(const fs::path& path) {
  fs::path parent = path.parent_path();
  if (parent.empty()) return Status::OK();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) return Status::Io("creating folder " + parent.string() + ": " + ec.message());
  return Status::OK();
}

std::optional<uint64_t> ParseSize(const std::string& token) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
  if (ec != std::errc() || ptr != token.data() + token.size()) return std::nullopt;
  return v;
}

}  // namespace

// ---------------------------------------------------------------------------
// AppendFile. size_ is the logical size: bytes on the OS plus buffer_.

Result<std::unique_ptr<AppendFile>> AppendFile::Open(const std::filesystem::path& path,
                                                     bool create_dirs) {
  if (create_dirs) KEYONCE_RETURN_IF_ERROR(MakeDirs(path));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("folder of " + path.string() + " does not exist");
    return Errno("opening", path, errno);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Errno("reading size of", path, err);
  }
  std::unique_ptr<AppendFile> f(new AppendFile());
  f->path_ = path;
  f->fd_ = fd;
  f->size_ = static_cast<uint64_t>(st.st_size);
  f->buffer_.reserve(kBufferBytes);
  return f;
}

AppendFile::~AppendFile() {
  // Buffered bytes were never committed: they are dropped.
  if (fd_ >= 0) ::close(fd_);
}

Status AppendFile::FlushBuffer() {
  if (buffer_.empty()) return Status::OK();
  uint64_t offset = size_ - buffer_.size();
  KEYONCE_RETURN_IF_ERROR(PWriteAll(fd_, buffer_.data(), buffer_.size(), offset, path_));
  buffer_.clear();
  return Status::OK();
}

Status AppendFile::Write(std::string_view bytes) {
  if (fd_ < 0) return Status::Internal("writing to a closed file");
  if (buffer_.size() + bytes.size() > kBufferBytes) {
    KEYONCE_RETURN_IF_ERROR(FlushBuffer());
    if (bytes.size() >= kBufferBytes) {
      KEYONCE_RETURN_IF_ERROR(PWriteAll(fd_, bytes.data(), bytes.size(), size_, path_));
      size_ += bytes.size();
      return Status::OK();
    }
  }
  buffer_.append(bytes);
  size_ += bytes.size();
  return Status::OK();
}

Result<std::string> AppendFile::Commit(bool fsync) {
  if (fd_ < 0) return Status::Internal("committing a closed file");
  KEYONCE_RETURN_IF_ERROR(FlushBuffer());
  if (fsync) {
    if (::fdatasync(fd_) != 0) return Errno("syncing", path_, errno);
    // The folder entry too, in case the file was just created.
    KEYONCE_RETURN_IF_ERROR(FsyncDir(path_.parent_path()));
  }
  return std::to_string(size_);
}

Result<std::string> AppendFile::Token() const { return std::to_string(size_); }

Status AppendFile::Recover(const std::filesystem::path& path, const std::string& token) {
  if (token.empty()) return Status::OK();
  auto want = ParseSize(token);
  if (!want) return Status::Invalid("recovery token of " + path.string() + " is not a file size");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::OK();
    return Errno("reading size of", path, errno);
  }
  if (static_cast<uint64_t>(st.st_size) <= *want) return Status::OK();
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Errno("opening", path, errno);
  if (::ftruncate(fd, static_cast<off_t>(*want)) != 0) {
    int err = errno;
    ::close(fd);
    return Errno("truncating", path, err);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    return Errno("syncing", path, err);
  }
  ::close(fd);
  return Status::OK();
}

// ---------------------------------------------------------------------------
// ReplaceFile.

Result<std::unique_ptr<ReplaceFile>> ReplaceFile::Open(const std::filesystem::path& path,
                                                       bool keep_existing, bool create_dirs) {
  if (create_dirs) KEYONCE_RETURN_IF_ERROR(MakeDirs(path));
  fs::path tmp = path;
  tmp += kTmpInfix + std::to_string(::getpid());
  // A temporary file of ours left from an earlier attempt in this process.
  std::error_code ec;
  fs::remove(tmp, ec);

  std::unique_ptr<ReplaceFile> rf(new ReplaceFile());
  rf->path_ = path;
  rf->tmp_ = tmp;
  auto out = AppendFile::Open(tmp, false);
  if (!out.ok()) return out.status();
  rf->out_ = std::move(out).value();

  int src = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (src < 0 && errno != ENOENT) {
    int err = errno;
    rf->Abort();
    return Errno("opening", path, err);
  }
  if (src >= 0) {
    struct stat st;
    if (::fstat(src, &st) == 0) {
      // The new file gets the old one's permissions.
      (void)::chmod(tmp.c_str(), st.st_mode & 07777);
    }
    if (keep_existing) {
      std::string buf(256 * 1024, '\0');
      while (true) {
        ssize_t n = ::read(src, buf.data(), buf.size());
        if (n < 0) {
          if (errno == EINTR) continue;
          int err = errno;
          ::close(src);
          rf->Abort();
          return Errno("reading", path, err);
        }
        if (n == 0) break;
        Status s = rf->out_->Write(std::string_view(buf.data(), static_cast<size_t>(n)));
        if (!s.ok()) {
          ::close(src);
          rf->Abort();
          return s;
        }
      }
    }
    ::close(src);
  }
  return rf;
}

Result<std::unique_ptr<ReplaceFile>> ReplaceFile::OpenForWriter(const std::filesystem::path& path,
                                                                bool create_dirs) {
  if (create_dirs) KEYONCE_RETURN_IF_ERROR(MakeDirs(path));
  std::unique_ptr<ReplaceFile> rf(new ReplaceFile());
  rf->path_ = path;
  rf->tmp_ = path;
  rf->tmp_ += kTmpInfix + std::to_string(::getpid());
  rf->external_ = true;
  std::error_code ec;
  fs::remove(rf->tmp_, ec);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    rf->mode_ = static_cast<int>(st.st_mode & 07777);
  } else if (errno != ENOENT) {
    return Errno("reading status of", path, errno);
  }
  // Created now, so that a missing folder or a read-only share fails at the
  // start of the run, not at its end.
  int fd = ::open(rf->tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return Errno("opening", rf->tmp_, errno);
  ::close(fd);
  return rf;
}

ReplaceFile::~ReplaceFile() {
  if (!finished_) Abort();
}

Status ReplaceFile::Write(std::string_view bytes) {
  if (!out_) return Status::Internal("writing to a finished replacement of " + path_.string());
  KEYONCE_RETURN_IF_ERROR(out_->Write(bytes));
  bytes_written_ += bytes.size();
  return Status::OK();
}

Status ReplaceFile::Finish() {
  if (finished_) return Status::OK();
  if (external_) {
    // Content durable before the rename makes it visible.
    int fd = ::open(tmp_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Errno("opening", tmp_, errno);
    int rc = ::fdatasync(fd);
    int err = errno;
    if (rc == 0 && mode_ >= 0) (void)::fchmod(fd, static_cast<mode_t>(mode_));
    ::close(fd);
    if (rc != 0) return Errno("syncing", tmp_, err);
  } else {
    if (!out_) return Status::Internal("finishing an aborted replacement of " + path_.string());
    // Content durable before the rename makes it visible.
    auto c = out_->Commit(/*fsync=*/true);
    if (!c.ok()) return c.status();
    out_.reset();
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) return Errno("renaming over", path_, errno);
  finished_ = true;
  return FsyncDir(path_.parent_path());
}

void ReplaceFile::Abort() {
  out_.reset();
  if (!tmp_.empty() && !finished_) {
    std::error_code ec;
    fs::remove(tmp_, ec);
  }
}

Result<std::string> ReplaceFile::Token(const std::filesystem::path& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::string("absent");
    return Errno("reading status of", path, errno);
  }
  uint64_t mtime_ns = static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull +
                      static_cast<uint64_t>(st.st_mtim.tv_nsec);
  return std::to_string(static_cast<uint64_t>(st.st_dev)) + ":" +
         std::to_string(static_cast<uint64_t>(st.st_ino)) + ":" +
         std::to_string(static_cast<uint64_t>(st.st_size)) + ":" + std::to_string(mtime_ns);
}

Result<bool> ReplaceFile::Replaced(const std::filesystem::path& path, const std::string& token) {
  // Remove temporary files of earlier, interrupted replacements.
  fs::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  std::string prefix = path.filename().string() + kTmpInfix;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (!ec) {
    for (; it != end; it.increment(ec)) {
      if (ec) break;
      std::string name = it->path().filename().string();
      if (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0) {
        std::error_code rec;
        fs::remove(it->path(), rec);
        if (rec) return Status::Io("removing " + it->path().string() + ": " + rec.message());
      }
    }
  } else if (ec != std::errc::no_such_file_or_directory) {
    return Status::Io("listing folder " + dir.string() + ": " + ec.message());
  }
  auto now = Token(path);
  if (!now.ok()) return now.status();
  return *now != token;
}

// ---------------------------------------------------------------------------
// ReplaceRun

Status ReplaceRun::Begin(const std::filesystem::path& path, bool keep_existing, bool create_dirs) {
  path_ = path;
  auto t = ReplaceFile::Token(path);
  if (!t.ok()) return t.status();
  base_token_ = *t;
  auto f = ReplaceFile::Open(path, keep_existing, create_dirs);
  if (!f.ok()) return f.status();
  file_ = std::move(f).value();
  records_ = 0;
  begun_ = true;
  finished_ = false;
  return Status::OK();
}

Status ReplaceRun::BeginForWriter(const std::filesystem::path& path, bool create_dirs) {
  path_ = path;
  auto t = ReplaceFile::Token(path);
  if (!t.ok()) return t.status();
  base_token_ = *t;
  auto f = ReplaceFile::OpenForWriter(path, create_dirs);
  if (!f.ok()) return f.status();
  file_ = std::move(f).value();
  records_ = 0;
  begun_ = true;
  finished_ = false;
  return Status::OK();
}

Result<std::string> ReplaceRun::Checkpoint() const {
  if (!begun_) return Status::Internal("Checkpoint called before Open");
  return base_token_;
}

Result<CommitResult> ReplaceRun::Commit(uint64_t batch, bool final, MarkKeeper* marks) {
  if (!begun_) return Status::Internal("Commit called before Open");
  CommitResult out;
  out.token = base_token_;
  if (finished_) {  // a commit after the final one: nothing new
    out.durable = true;
    return out;
  }
  if (!final) {
    out.durable = false;  // becomes durable with the rename at the final commit
    return out;
  }
  if (records_ == 0) {
    if (file_) file_->Abort();  // nothing written: the file is left untouched
  } else {
    if (!file_) return Status::Internal("committing an aborted replacement of " + path_.string());
    KEYONCE_RETURN_IF_ERROR(file_->Finish());
    if (marks) marks->Keep(path_, batch);
  }
  file_.reset();
  finished_ = true;
  auto t = ReplaceFile::Token(path_);
  if (!t.ok()) return t.status();
  base_token_ = *t;
  out.durable = true;
  out.token = *t;
  return out;
}

void ReplaceRun::Abort() {
  if (file_) file_->Abort();
  file_.reset();
}

Result<RecoverResult> ReplaceRun::Recover(const std::filesystem::path& path, uint64_t first_pending,
                                          const std::string& token) {
  RecoverResult out;
  if (token.empty()) return out;  // no identity of the old file: cannot tell
  auto replaced = ReplaceFile::Replaced(path, token);
  if (!replaced.ok()) return replaced.status();
  out.known = true;
  const uint64_t before = first_pending > 0 ? first_pending - 1 : 0;
  out.applied_through = *replaced ? UINT64_MAX : before;
  return out;
}

// ---------------------------------------------------------------------------
// FileMarks

std::filesystem::path FileMarks::PathFor(const std::filesystem::path& file) {
  return file.parent_path() / ("." + file.filename().string() + ".keyonce");
}

namespace {
boost::json::object ReadMarks(const fs::path& marks) {
  int fd = ::open(marks.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < (1u << 20)) text.append(buf, n);
  ::close(fd);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return {};
  return std::move(v.as_object());
}
}  // namespace

std::optional<TargetMark> FileMarks::Read(const std::filesystem::path& file,
                                          const std::string& key) {
  boost::json::object all = ReadMarks(PathFor(file));
  const boost::json::value* e = all.if_contains(key);
  if (!e || !e->is_object()) return std::nullopt;
  const auto& o = e->as_object();
  TargetMark m;
  if (const auto* st = o.if_contains("state"); st && st->is_string()) m.state_id = st->as_string();
  if (const auto* b = o.if_contains("batch"); b && b->is_int64() && b->as_int64() > 0) {
    m.batch = static_cast<uint64_t>(b->as_int64());
  }
  return m;
}

Status FileMarks::Write(const std::filesystem::path& file, const std::string& key,
                        const TargetMark& mark) {
  const fs::path marks = PathFor(file);
  boost::json::object all = ReadMarks(marks);
  all[key] = {{"state", mark.state_id}, {"batch", static_cast<int64_t>(mark.batch)}};
  const std::string text = boost::json::serialize(all) + "\n";
  fs::path tmp = marks;
  tmp += kTmpInfix + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("writing the mark", tmp, errno);
  Status st = PWriteAll(fd, text.data(), text.size(), 0, tmp);
  ::close(fd);
  if (st.ok() && ::rename(tmp.c_str(), marks.c_str()) != 0)
    st = Errno("writing the mark", marks, errno);
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

void MarkKeeper::Keep(const std::filesystem::path& file, uint64_t batch) {
  if (key_.empty() || batch == 0) return;
  Status st = FileMarks::Write(file, key_, TargetMark{state_id_, batch});
  if (!st.ok() && !warned_ && log_) {
    warned_ = true;
    log_->Warn("Could not keep the journal's mark beside " + file.string() + " (" + st.message() +
               "); the data is written, but another state file would not be recognised there.");
  }
}

}  // namespace keyonce::connectors
