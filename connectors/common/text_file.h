// Durable, recoverable writing of text files, shared by the file targets.
//
// AppendFile appends in place: Commit() flushes (and fdatasyncs when asked)
// and returns a token, the file's size; RecoverAppend() truncates the file
// back to a token, undoing writes that were never journaled as done.
//
// ReplaceFile builds the new content in a temporary file next to the target
// (same folder, so rename is atomic) and renames it over the target in
// Finish(): readers never see a half-written file. Its token identifies the
// file that was there before (device, inode, size, mtime); if the file at
// the path is no longer that one, the rename happened.
//
// ReplaceRun is the whole replace-mode protocol of a file target around a
// ReplaceFile (checkpoint token, commit at the end of the run, recovery), so
// that csv, jsonl/json and xlsx keep one copy of it.
//
// FileMarks keeps a file target's TargetMark (the journal that wrote it and
// its last batch) beside the file, so that another state file meeting the
// file is recognised (Target::Mark).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "keyonce/connector.h"
#include "keyonce/status.h"

namespace keyonce::connectors {

class AppendFile {
 public:
  // Opens (creating the file and, if create_dirs, its folders) for appending.
  static Result<std::unique_ptr<AppendFile>> Open(const std::filesystem::path& path,
                                                  bool create_dirs);
  ~AppendFile();
  // Buffers bytes; may write to the OS when the buffer is full.
  Status Write(std::string_view bytes);
  // Flushes to the OS (and to disk if fsync); returns the size as a token.
  Result<std::string> Commit(bool fsync);
  // Size of the file now (as a token), for Target::Checkpoint.
  Result<std::string> Token() const;
  uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // Truncates `path` to the size in `token` (no-op if the file is shorter or
  // missing). An empty token means "nothing of ours": the file is left as is.
  static Status Recover(const std::filesystem::path& path, const std::string& token);

 private:
  AppendFile() = default;
  Status FlushBuffer();
  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string buffer_;
};

class ReplaceFile {
 public:
  // Starts a replacement of `path`. If keep_existing, the current content is
  // copied into the temporary file first (appending atomically).
  static Result<std::unique_ptr<ReplaceFile>> Open(const std::filesystem::path& path,
                                                   bool keep_existing, bool create_dirs);
  // Starts a replacement whose temporary file (temp_path()) is written by a
  // library that takes a file name (libxlsxwriter); Write is not used. The
  // library must have closed the file before Finish.
  static Result<std::unique_ptr<ReplaceFile>> OpenForWriter(const std::filesystem::path& path,
                                                            bool create_dirs);
  ~ReplaceFile();  // removes the temporary file unless Finish() succeeded
  Status Write(std::string_view bytes);
  bool empty_run() const { return bytes_written_ == 0; }
  // Flushes, fsyncs and renames the temporary file over the target.
  Status Finish();
  const std::filesystem::path& temp_path() const { return tmp_; }
  // Discards the temporary file.
  void Abort();

  // Identity of whatever is at `path` now ("absent" if nothing).
  static Result<std::string> Token(const std::filesystem::path& path);
  // True when the file at `path` is no longer the one `token` describes.
  // Also removes leftover temporary files of `path`.
  static Result<bool> Replaced(const std::filesystem::path& path, const std::string& token);

 private:
  ReplaceFile() = default;
  std::filesystem::path path_, tmp_;
  std::unique_ptr<AppendFile> out_;
  uint64_t bytes_written_ = 0;
  bool external_ = false;  // OpenForWriter: the temporary file is written by name
  int mode_ = -1;          // permissions of the file replaced (external_), -1: none
  bool finished_ = false;
};

class MarkKeeper;

// One run of a replace-mode file target: Begin remembers the identity of the
// file now (the checkpoint token of every batch of the run) and starts a
// ReplaceFile; the target writes its records into file() and counts them
// with Wrote(); the final Commit renames the temporary file over the target
// (only when records were written: a run that wrote nothing leaves the file
// untouched) and makes every batch durable at once. After a crash Recover
// tells from the file's identity whether that rename happened: all the
// run's batches arrived, or none did.
//
// Not thread-safe; one per target instance.
class ReplaceRun {
 public:
  // keep_existing: the file's current bytes are copied first (see ReplaceFile).
  Status Begin(const std::filesystem::path& path, bool keep_existing, bool create_dirs);
  // As Begin, for a temporary file written by name (ReplaceFile::OpenForWriter).
  Status BeginForWriter(const std::filesystem::path& path, bool create_dirs);
  // The open replacement; null before Begin and after the final commit.
  ReplaceFile* file() { return file_.get(); }
  // One more record in the temporary file.
  void Wrote() { ++records_; }
  uint64_t records() const { return records_; }
  // Target::Checkpoint: the identity of the file before the run.
  Result<std::string> Checkpoint() const;
  // Target::Commit. Not final: nothing is durable yet (the token is the
  // file before the run). Final: the rename (if records were written), the
  // mark kept by `marks`, and the new file's identity as the token. A
  // failed rename leaves the temporary file for Abort.
  Result<CommitResult> Commit(uint64_t batch, bool final, MarkKeeper* marks);
  // Drops the temporary file unless the final commit renamed it.
  void Abort();
  // Target::Recover for a replace-mode target writing `path`: also removes
  // temporary files left by the interrupted run. An empty token (no identity
  // was journaled) cannot tell: known is false.
  static Result<RecoverResult> Recover(const std::filesystem::path& path, uint64_t first_pending,
                                       const std::string& token);

 private:
  std::filesystem::path path_;
  std::unique_ptr<ReplaceFile> file_;
  std::string base_token_;
  uint64_t records_ = 0;
  bool begun_ = false;
  bool finished_ = false;
};

// The marks of the targets that write a file, in ".<file name>.keyonce" in
// the same folder: a JSON object with one entry per "recipe/target".
class FileMarks {
 public:
  static std::filesystem::path PathFor(const std::filesystem::path& file);
  // The mark of `key`; nullopt when there is none (or the marks file is
  // unreadable: a mark is a guard, its loss must not stop a run).
  static std::optional<TargetMark> Read(const std::filesystem::path& file, const std::string& key);
  // Sets the mark of `key`, keeping the others (replaced atomically).
  static Status Write(const std::filesystem::path& file, const std::string& key,
                      const TargetMark& mark);
};

// What a file target does with FileMarks: remembers the journal's id at
// Open, writes the mark after each durable commit. A mark that cannot be
// written is a warning (once), not a failed commit: the data is safe, only
// the guard against another state file is missing.
class MarkKeeper {
 public:
  static std::string Key(const RunContext& ctx) { return ctx.recipe + "/" + ctx.target_name; }
  void Open(const RunContext& ctx) {
    key_ = Key(ctx);
    state_id_ = ctx.state_id;
    log_ = ctx.log;
  }
  void Keep(const std::filesystem::path& file, uint64_t batch);

 private:
  std::string key_, state_id_;
  Log* log_ = nullptr;
  bool warned_ = false;
};

}  // namespace keyonce::connectors
