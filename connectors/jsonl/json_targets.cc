// Targets: `jsonl` (one JSON value per line, append or replace) and `json`
// (a JSON array file, replaced atomically at the end of the run).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json/basic_parser_impl.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "connectors/common/text_file.h"
#include "connectors/jsonl/json_internal.h"

namespace keyonce::connectors::json {
namespace {

namespace fs = std::filesystem;

Status ErrnoStatus(const std::string& what, const fs::path& path) {
  return Status::Io(what + " " + path.string() + ": " + std::strerror(errno));
}

// Reads bytes [0, n) of an open file into `out`.
Status CopyPrefix(int fd, uint64_t n, const fs::path& path, ReplaceFile* out) {
  std::string buf(256 * 1024, '\0');
  uint64_t done = 0;
  while (done < n) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), n - done));
    ssize_t r = ::pread(fd, buf.data(), want, static_cast<off_t>(done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("reading", path);
    }
    if (r == 0) return Status::Io("reading " + path.string() + ": the file shrank while copied");
    KEYONCE_RETURN_IF_ERROR(out->Write(std::string_view(buf.data(), static_cast<size_t>(r))));
    done += static_cast<uint64_t>(r);
  }
  return Status::OK();
}

// Validates a JSON array without building it and counts its elements.
class ShapeHandler {
 public:
  static constexpr size_t max_object_size = boost::json::object::max_size();
  static constexpr size_t max_array_size = boost::json::array::max_size();
  static constexpr size_t max_key_size = boost::json::string::max_size();
  static constexpr size_t max_string_size = boost::json::string::max_size();

  uint64_t elements = 0;
  bool not_array = false;

  bool on_document_begin(boost::json::error_code&) { return true; }
  bool on_document_end(boost::json::error_code&) { return true; }
  bool on_object_begin(boost::json::error_code& ec) {
    if (depth_ == 0) return NotArray(ec);
    ++depth_;
    return true;
  }
  bool on_object_end(size_t, boost::json::error_code&) { return End(); }
  bool on_array_begin(boost::json::error_code&) {
    ++depth_;
    return true;
  }
  bool on_array_end(size_t, boost::json::error_code&) { return End(); }
  bool on_key_part(boost::json::string_view, size_t, boost::json::error_code&) { return true; }
  bool on_key(boost::json::string_view, size_t, boost::json::error_code&) { return true; }
  bool on_string_part(boost::json::string_view, size_t, boost::json::error_code&) { return true; }
  bool on_string(boost::json::string_view, size_t, boost::json::error_code& ec) {
    return ScalarDone(ec);
  }
  bool on_number_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_int64(int64_t, boost::json::string_view, boost::json::error_code& ec) {
    return ScalarDone(ec);
  }
  bool on_uint64(uint64_t, boost::json::string_view, boost::json::error_code& ec) {
    return ScalarDone(ec);
  }
  bool on_double(double, boost::json::string_view, boost::json::error_code& ec) {
    return ScalarDone(ec);
  }
  bool on_bool(bool, boost::json::error_code& ec) { return ScalarDone(ec); }
  bool on_null(boost::json::error_code& ec) { return ScalarDone(ec); }
  bool on_comment_part(boost::json::string_view, boost::json::error_code&) { return true; }
  bool on_comment(boost::json::string_view, boost::json::error_code&) { return true; }

 private:
  bool NotArray(boost::json::error_code& ec) {
    not_array = true;
    ec = boost::json::error::exception;
    return false;
  }
  bool End() {
    --depth_;
    if (depth_ == 1) ++elements;
    return true;
  }
  bool ScalarDone(boost::json::error_code& ec) {
    if (depth_ == 0) return NotArray(ec);
    if (depth_ == 1) ++elements;
    return true;
  }
  int depth_ = 0;
};

// An existing JSON array file: how many elements it has and where the bytes
// to keep end (just after its last element).
struct ExistingArray {
  uint64_t elements = 0;
  uint64_t keep_bytes = 0;
};

Result<ExistingArray> ScanExistingArray(int fd, const fs::path& path) {
  boost::json::parse_options opt;
  opt.max_depth = 128;
  boost::json::basic_parser<ShapeHandler> parser(opt);
  std::string buf(256 * 1024, '\0');
  uint64_t offset = 0, line = 1;
  int64_t last = -1, before_last = -1;  // offsets of the last two non-space bytes
  bool any = false;
  auto invalid = [&](const std::string& why) {
    return Status::Invalid(path.string() + " exists but is not a JSON array (line " +
                           std::to_string(line) + "): " + why +
                           "; mode replace of the json target keeps its elements");
  };
  while (true) {
    ssize_t r = ::read(fd, buf.data(), buf.size());
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("reading", path);
    }
    if (r == 0) break;
    std::string_view data(buf.data(), static_cast<size_t>(r));
    for (size_t i = 0; i < data.size(); ++i) {
      char c = data[i];
      if (c == '\n') ++line;
      if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
        before_last = last;
        last = static_cast<int64_t>(offset + i);
        any = true;
      }
    }
    if (!parser.done()) {
      boost::json::error_code ec;
      size_t n = parser.write_some(true, data.data(), data.size(), ec);
      if (ec) return invalid(parser.handler().not_array ? "it holds another JSON value" : ec.message());
      if (n < data.size()) return invalid("unexpected text after the JSON document");
    } else if (any && last >= 0 && static_cast<uint64_t>(last) >= offset) {
      return invalid("unexpected text after the JSON document");
    }
    offset += data.size();
  }
  ExistingArray out;
  if (!any) return out;  // empty file: as if absent
  if (!parser.done()) {
    boost::json::error_code ec;
    parser.write_some(false, nullptr, 0, ec);
    if (ec) return invalid(ec.message());
  }
  out.elements = parser.handler().elements;
  out.keep_bytes = out.elements > 0 ? static_cast<uint64_t>(before_last + 1) : 0;
  return out;
}

class FileTarget : public Target {
 public:
  FileTarget(Settings settings, TargetFormat format, bool replace, bool fsync, bool create_dirs)
      : settings_(std::move(settings)),
        format_(format),
        replace_mode_(replace),
        fsync_(fsync),
        create_dirs_(create_dirs) {}

  ~FileTarget() override { Discard(); }

  TargetTraits Traits() const override { return TargetTraits{}; }

  Status Open(const RunContext& ctx) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status();
    path_ = *path;
    marks_.Open(ctx);
    if (!replace_mode_) return OpenAppend();
    return OpenReplace();
  }

  Result<std::optional<TargetMark>> Mark(const RunContext& ctx) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status();
    return FileMarks::Read(*path, MarkKeeper::Key(ctx));
  }

  Result<Value> Render(const WriteOp& op) override { return RenderBody(settings_, op); }

  Result<std::string> Checkpoint() override {
    if (append_) return append_->Token();
    return replace_.Checkpoint();
  }

  WriteResult Write(const WriteOp& op) override {
    WriteResult res;
    text_.clear();
    if (format_ == TargetFormat::kJsonArray && elements_ > 0) text_ = ",\n";
    if (need_newline_) text_ += "\n";
    if (settings_.Structure("body") == nullptr && op.record != nullptr) {
      AppendJson(text_, *op.record);
    } else {
      auto v = RenderBody(settings_, op);
      if (!v.ok()) {
        res.status = v.status();
        return res;
      }
      AppendJson(text_, *v);
    }
    if (format_ == TargetFormat::kJsonLines) text_ += '\n';
    Status s = append_           ? append_->Write(text_)
               : replace_.file() ? replace_.file()->Write(text_)
                                 : Status::Internal("Write called before Open");
    if (!s.ok()) {
      res.status = s;
      return res;
    }
    if (!append_) replace_.Wrote();
    need_newline_ = false;
    ++elements_;
    res.reply = boost::json::object();
    return res;
  }

  Result<CommitResult> Commit(uint64_t batch, bool final) override {
    CommitResult out;
    if (append_) {
      auto tok = append_->Commit(fsync_);
      if (!tok.ok()) return tok.status();
      committed_ = *tok;
      marks_.Keep(path_, batch);
      out.durable = true;
      out.token = *tok;
      return out;
    }
    if (final && format_ == TargetFormat::kJsonArray && replace_.records() > 0 &&
        replace_.file() != nullptr) {
      KEYONCE_RETURN_IF_ERROR(replace_.file()->Write("\n]\n"));
    }
    return replace_.Commit(batch, final, &marks_);
  }

  Result<RecoverResult> Recover(const RunContext& ctx, uint64_t first_pending,
                                const std::string& token) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status();
    if (replace_mode_) return ReplaceRun::Recover(*path, first_pending, token);
    KEYONCE_RETURN_IF_ERROR(AppendFile::Recover(*path, token));
    RecoverResult out;
    out.known = true;
    out.applied_through = first_pending > 0 ? first_pending - 1 : 0;
    return out;
  }

  Status Close(bool /*success*/) override { return Discard(); }

 private:
  Status OpenAppend() {
    auto f = AppendFile::Open(path_, create_dirs_);
    if (!f.ok()) return f.status();
    append_ = std::move(f).value();
    auto tok = append_->Token();
    if (!tok.ok()) return tok.status();
    committed_ = *tok;
    // Text that does not end in a newline gets one before the first line.
    need_newline_ = false;
    if (append_->size() > 0) {
      int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return ErrnoStatus("opening", path_);
      char c = '\n';
      ssize_t r = ::pread(fd, &c, 1, static_cast<off_t>(append_->size() - 1));
      ::close(fd);
      if (r < 0) return ErrnoStatus("reading", path_);
      need_newline_ = r == 1 && c != '\n';
    }
    return Status::OK();
  }

  Status OpenReplace() {
    ExistingArray existing;
    int fd = -1;
    if (format_ == TargetFormat::kJsonArray) {
      fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 && errno != ENOENT) return ErrnoStatus("opening", path_);
      if (fd >= 0) {
        auto scan = ScanExistingArray(fd, path_);
        if (!scan.ok()) {
          ::close(fd);
          return scan.status();
        }
        existing = *scan;
      }
    }
    Status s = replace_.Begin(path_, /*keep_existing=*/false, create_dirs_);
    if (!s.ok()) {
      if (fd >= 0) ::close(fd);
      return s;
    }
    if (format_ == TargetFormat::kJsonArray) {
      if (existing.elements > 0) {
        s = CopyPrefix(fd, existing.keep_bytes, path_, replace_.file());
      } else {
        s = replace_.file()->Write("[\n");
      }
      elements_ = existing.elements;
    }
    if (fd >= 0) ::close(fd);
    return s;
  }

  // Drops whatever was not committed.
  Status Discard() {
    Status s;
    if (append_) {
      bool pending = std::to_string(append_->size()) != committed_;
      append_.reset();  // drops the buffer
      if (pending) s = AppendFile::Recover(path_, committed_);
    }
    replace_.Abort();
    return s;
  }

  Settings settings_;
  TargetFormat format_;
  bool replace_mode_;
  bool fsync_;
  bool create_dirs_;
  fs::path path_;
  std::unique_ptr<AppendFile> append_;
  ReplaceRun replace_;     // replace mode
  std::string committed_;  // append: size at the last commit
  bool need_newline_ = false;
  uint64_t elements_ = 0;  // json: elements in the array so far (kept + written)
  std::string text_;       // reused serialisation buffer
  MarkKeeper marks_;
};

}  // namespace

Result<std::unique_ptr<Target>> MakeFileTarget(const Settings& settings, TargetFormat format) {
  bool replace = format == TargetFormat::kJsonArray ||
                 settings.String("mode").value_or("append") == "replace";
  bool fsync = settings.Bool("fsync").value_or(true);
  bool create_dirs = settings.Bool("create_dirs").value_or(true);
  return std::unique_ptr<Target>(new FileTarget(settings, format, replace, fsync, create_dirs));
}

}  // namespace keyonce::connectors::json
