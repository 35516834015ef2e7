// The csv target: appends rows to a file (mode: append), or builds the new
// file beside the old one and swaps it in at the end of the run (mode:
// replace). Nothing lost, nothing twice: append commits return the file size
// as a token and recovery truncates back to it; replace recovery tells from
// the file's identity whether the final rename happened.
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>

#include "connectors/common/net/remote_file.h"
#include "connectors/common/text_file.h"
#include "connectors/csv/csv_connector.h"

namespace keyonce::connectors::csv {
namespace {

namespace fs = std::filesystem;

enum class Mode { kAppend, kReplace };

struct TargetConfig {
  Mode mode = Mode::kAppend;
  CsvWriteOptions write;
  bool bom = false;
  bool formula_guard = true;
  bool fsync = true;
  bool create_dirs = false;
  std::vector<std::string> column_names;  // from `columns`; empty: the record's fields
};

class CsvTarget : public Target {
 public:
  CsvTarget(Settings settings, TargetConfig config)
      : settings_(std::move(settings)), cfg_(std::move(config)) {}

  TargetTraits Traits() const override {
    TargetTraits t;
    t.supports_update = false;
    t.idempotent = false;
    return t;
  }

  Status Open(const RunContext& ctx) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status().Wrap(settings_.where);
    path_ = *path;
    marks_.Open(ctx);

    uint64_t size = 0;
    struct stat st;
    if (::stat(path_.c_str(), &st) == 0) {
      size = static_cast<uint64_t>(st.st_size);
    } else if (errno != ENOENT) {
      return Status::Io("reading size of " + path_.string() + ": " + std::strerror(errno));
    }
    std::vector<std::string> existing_header;
    if (size > 0) KEYONCE_RETURN_IF_ERROR(InspectExisting(size, &existing_header));
    // A new or empty file (or one holding only a BOM or blank lines) gets a header.
    header_pending_ = existing_header.empty();
    write_bom_ = size == 0 && cfg_.bom && cfg_.write.encoding == Encoding::kUtf8;

    if (!cfg_.column_names.empty()) {
      columns_ = cfg_.column_names;
      if (!existing_header.empty() && existing_header != columns_) {
        return Status::Invalid(settings_.where + ": " + path_.string() +
                               " already has a header that differs from `columns` (" +
                               HeaderDifference(existing_header, columns_) +
                               "); write to a new file or make `columns` match");
      }
    } else {
      columns_ = existing_header;  // empty for a new file: taken from the first record
    }

    if (cfg_.mode == Mode::kAppend) {
      auto f = AppendFile::Open(path_, cfg_.create_dirs);
      if (!f.ok()) return f.status();
      append_ = std::move(f).value();
      auto t = append_->Token();
      if (!t.ok()) return t.status();
      last_token_ = *t;
    } else {
      KEYONCE_RETURN_IF_ERROR(replace_.Begin(path_, /*keep_existing=*/true, cfg_.create_dirs));
    }
    opened_ = true;
    return Status::OK();
  }

  Result<Value> Render(const WriteOp& op) override {
    std::vector<std::string> names, values;
    KEYONCE_RETURN_IF_ERROR(RenderRow(op, &names, &values));
    // What Write would refuse, Render refuses too.
    std::string ignored;
    KEYONCE_RETURN_IF_ERROR(AppendRow(names, values, cfg_.write, &ignored));
    return Value(ToObject(names, values));
  }

  Result<std::string> Checkpoint() override {
    if (!opened_) return Status::Internal("csv target: Checkpoint before Open");
    if (append_) return append_->Token();
    return replace_.Checkpoint();
  }

  WriteResult Write(const WriteOp& op) override {
    WriteResult result;
    if (!opened_ || (!append_ && !replace_.file())) {
      result.status = Status::Internal("csv target: Write outside an open run");
      return result;
    }
    std::vector<std::string>& names = names_buf_;
    std::vector<std::string>& values = values_buf_;
    names.clear();
    values.clear();
    result.status = RenderRow(op, &names, &values);
    if (!result.status.ok()) return result;
    if (columns_.empty()) columns_ = names;  // a new file without `columns`

    out_.clear();
    if (header_pending_) {
      if (write_bom_) out_ += "\xEF\xBB\xBF";
      result.status = AppendRow(columns_, columns_, cfg_.write, &out_);
      if (!result.status.ok()) {
        result.status = result.status.Wrap("writing the header");
        return result;
      }
    } else if (need_newline_) {
      out_ += cfg_.write.line_ending;
    }
    result.status = AppendRow(names, values, cfg_.write, &out_);
    if (!result.status.ok()) return result;

    result.status = append_ ? append_->Write(out_) : replace_.file()->Write(out_);
    if (!result.status.ok()) return result;
    if (!append_) replace_.Wrote();
    header_pending_ = false;
    write_bom_ = false;
    need_newline_ = false;
    uncommitted_ = true;
    if (op.wants_reply) result.reply = Value(ToObject(names, values));
    return result;
  }

  Result<CommitResult> Commit(uint64_t batch, bool final) override {
    if (!opened_) return Status::Internal("csv target: Commit before Open");
    CommitResult c;
    if (cfg_.mode == Mode::kAppend) {
      if (!append_) return Status::Internal("csv target: Commit after Close");
      auto t = append_->Commit(cfg_.fsync);
      if (!t.ok()) return t.status();
      marks_.Keep(path_, batch);
      last_token_ = *t;
      uncommitted_ = false;
      c.durable = true;
      c.token = *t;
      return c;
    }
    // Kept in the temporary file until the rename at the end of the run.
    return replace_.Commit(batch, final, &marks_);
  }

  Result<std::optional<TargetMark>> Mark(const RunContext& ctx) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status().Wrap(settings_.where);
    return FileMarks::Read(*path, MarkKeeper::Key(ctx));
  }

  Result<RecoverResult> Recover(const RunContext& ctx, uint64_t first_pending,
                                const std::string& token) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status().Wrap(settings_.where);
    if (cfg_.mode == Mode::kReplace) return ReplaceRun::Recover(*path, first_pending, token);
    KEYONCE_RETURN_IF_ERROR(AppendFile::Recover(*path, token));
    RecoverResult r;
    r.known = true;
    r.applied_through = first_pending > 0 ? first_pending - 1 : 0;
    return r;
  }

  Status Close(bool /*success*/) override {
    Status st;
    replace_.Abort();
    if (append_) {
      append_.reset();  // drops bytes still buffered
      // Rows written since the last commit may have reached the file when
      // the buffer filled up: cut them off again.
      if (uncommitted_) st = AppendFile::Recover(path_, last_token_);
    }
    uncommitted_ = false;
    opened_ = false;
    return st;
  }

 private:
  // The text of each column for this write, formula-guarded.
  Status RenderRow(const WriteOp& op, std::vector<std::string>* names,
                   std::vector<std::string>* values) const {
    if (!cfg_.column_names.empty()) {
      if (!op.scope) return Status::Internal("csv target: write without a scope");
      for (const auto& [name, tmpl] : settings_.TmplMap("columns")) {
        auto text = tmpl.Render(*op.scope);
        if (!text.ok()) return text.status().Wrap("column '" + name + "'");
        names->push_back(name);
        values->push_back(Guard(std::move(text).value()));
      }
      return Status::OK();
    }
    if (!op.record) return Status::Internal("csv target: write without a record");
    const Record& rec = *op.record;
    if (columns_.empty()) {
      for (const auto& kv : rec) {
        names->emplace_back(kv.key());
        values->push_back(Guard(ToText(kv.value())));
      }
      return Status::OK();
    }
    // The file's columns are fixed (by its header): place the fields by name.
    // Usually the record has exactly those fields in that order.
    if (rec.size() == columns_.size()) {
      bool same = true;
      size_t i = 0;
      for (auto it = rec.begin(); same && it != rec.end(); ++it, ++i) same = it->key() == columns_[i];
      if (same) {
        for (const auto& kv : rec) {
          names->emplace_back(kv.key());
          values->push_back(Guard(ToText(kv.value())));
        }
        return Status::OK();
      }
    }
    for (const auto& kv : rec) {
      bool known = false;
      for (const std::string& c : columns_) known = known || c == kv.key();
      if (!known) {
        return Status::Permanent("field '" + std::string(kv.key()) + "' is not a column of " +
                                 path_.filename().string() +
                                 " (set `columns` to choose what is written)");
      }
    }
    for (const std::string& c : columns_) {
      names->push_back(c);
      auto it = rec.find(c);
      values->push_back(it == rec.end() ? std::string() : Guard(ToText(it->value())));
    }
    return Status::OK();
  }

  std::string Guard(std::string text) const {
    return cfg_.formula_guard ? GuardFormula(std::move(text)) : text;
  }

  static Record ToObject(const std::vector<std::string>& names,
                         const std::vector<std::string>& values) {
    Record obj;
    obj.reserve(names.size());
    for (size_t i = 0; i < names.size() && i < values.size(); ++i) obj[names[i]] = values[i];
    return obj;
  }

  static std::string HeaderDifference(const std::vector<std::string>& file,
                                      const std::vector<std::string>& cols) {
    for (size_t i = 0; i < file.size() && i < cols.size(); ++i) {
      if (file[i] != cols[i]) {
        return "column " + std::to_string(i + 1) + " is '" + file[i] + "' in the file, '" + cols[i] +
               "' in `columns`";
      }
    }
    return "the file has " + std::to_string(file.size()) + " columns, `columns` has " +
           std::to_string(cols.size());
  }

  // Reads the header of a non-empty existing file and whether it ends with a
  // line break.
  Status InspectExisting(uint64_t size, std::vector<std::string>* header) {
    CsvReaderOptions ro;
    ro.delimiter = cfg_.write.delimiter;
    ro.encoding = cfg_.write.encoding;
    ro.header = true;
    CsvReader reader(ro);
    Status st = reader.Open(path_);
    if (!st.ok()) {
      return Status::Invalid(settings_.where + ": cannot append to " + path_.string() +
                             ": its header cannot be read: " + st.message());
    }
    *header = reader.field_names();
    reader.Close();
    std::ifstream in(path_, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(size - 1));
    char last = 0;
    if (!in.get(last)) return Status::Io("reading " + path_.string());
    need_newline_ = last != '\n' && last != '\r';
    return Status::OK();
  }

  Settings settings_;
  TargetConfig cfg_;
  fs::path path_;
  bool opened_ = false;
  std::unique_ptr<AppendFile> append_;
  ReplaceRun replace_;  // mode replace
  std::vector<std::string> columns_;
  bool header_pending_ = false;
  bool write_bom_ = false;
  bool need_newline_ = false;
  bool uncommitted_ = false;
  std::string last_token_;  // append: size at the last commit
  MarkKeeper marks_;
  std::string out_;
  std::vector<std::string> names_buf_, values_buf_;  // reused by Write
};

Result<std::unique_ptr<Target>> MakeLocalTarget(const Settings& settings) {
  TargetConfig cfg;
  const std::string mode = settings.String("mode").value_or("append");
  if (mode == "append") {
    cfg.mode = Mode::kAppend;
  } else if (mode == "replace") {
    cfg.mode = Mode::kReplace;
  } else {
    return Status::Invalid(settings.where + ": mode '" + mode + "' is not one of append, replace");
  }
  auto delimiter = ParseCharSetting(settings, "delimiter", ",", false);
  if (!delimiter.ok()) return delimiter.status();
  if (*delimiter == '"') return Status::Invalid(settings.where + ": delimiter cannot be '\"'");
  cfg.write.delimiter = *delimiter;
  const std::string encoding = settings.String("encoding").value_or("utf-8");
  auto enc = ParseEncoding(encoding);
  if (!enc) {
    return Status::Invalid(settings.where + ": encoding '" + encoding +
                           "' is not one of utf-8, windows-1252, iso-8859-1");
  }
  cfg.write.encoding = *enc;
  cfg.bom = settings.Bool("bom").value_or(false);
  if (cfg.bom && cfg.write.encoding != Encoding::kUtf8) {
    return Status::Invalid(settings.where + ": bom: true needs encoding: utf-8");
  }
  const std::string line_ending = settings.String("line_ending").value_or("crlf");
  if (line_ending == "crlf") {
    cfg.write.line_ending = "\r\n";
  } else if (line_ending == "lf") {
    cfg.write.line_ending = "\n";
  } else {
    return Status::Invalid(settings.where + ": line_ending '" + line_ending +
                           "' is not one of crlf, lf");
  }
  cfg.formula_guard = settings.Bool("formula_guard").value_or(true);
  cfg.fsync = settings.Bool("fsync").value_or(true);
  cfg.create_dirs = settings.Bool("create_dirs").value_or(false);
  for (const auto& [name, tmpl] : settings.TmplMap("columns")) {
    if (name.empty()) return Status::Invalid(settings.where + ": columns: a column has no name");
    for (const std::string& seen : cfg.column_names) {
      if (seen == name) {
        return Status::Invalid(settings.where + ": columns: '" + name + "' is listed twice");
      }
    }
    cfg.column_names.push_back(name);
  }
  return std::unique_ptr<Target>(new CsvTarget(settings, std::move(cfg)));
}

}  // namespace

Result<std::unique_ptr<Target>> MakeTarget(const Settings& settings) {
  // sftp://, ftp://, ...: a local copy (with the file's rows, both modes keep
  // them) is written and uploaded whole at the end of the run.
  if (net::IsRemotePath(settings)) {
    return net::MakeRemoteTarget(settings, MakeLocalTarget, /*keep_existing=*/true);
  }
  return MakeLocalTarget(settings);
}

}  // namespace keyonce::connectors::csv
