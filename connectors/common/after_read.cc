#include "connectors/common/after_read.h"

#include <cerrno>
#include <cstring>
#include <system_error>

namespace keyonce::connectors {

namespace fs = std::filesystem;

std::vector<FieldSpec> AfterReadFields(bool remote) {
  std::string where =
      remote ? " Relative paths are resolved against the recipe's folder for a local file; "
               "for a file on a server (sftp://, ftp://) the folder is on the same server, "
               "relative to the file's folder unless it starts with /, made if missing."
             : " Relative paths are resolved against the recipe's folder.";
  return {
      FieldSpec::Tmpl("move_to", TemplateContext::kText)
          .Roots(kRootsStatic)
          .Describe(
              "A folder the file is moved into once the run has read it to its end and every "
              "record is written to every target or kept in quarantine (never before: after a "
              "crash the file is still where it was, is read again, and the journal writes "
              "nothing twice). A file of the same name already there is kept: the moved file "
              "gets the run's id before its extension (export.<run id>.csv). It may use params, "
              "run and state, e.g. done/{{ run.date }}." +
              where + " A move that fails is a warning; the next run reads the file again.")
          .Example("done"),
      FieldSpec::Bool("remove_after")
          .Default("false")
          .Describe(
              "true: the file is removed once the run has read it to its end and every record is "
              "written to every target or kept in quarantine (never before). Not with move_to.")
          .Example("true"),
  };
}

bool HasAfterRead(const Settings& settings) {
  return settings.Tmpl("move_to") || settings.Bool("remove_after").value_or(false);
}

Status CheckAfterRead(const Settings& settings) {
  if (settings.Tmpl("move_to") && settings.Bool("remove_after").value_or(false)) {
    return Status::Invalid(settings.where +
                           ": move_to and remove_after cannot both be set: the file is either "
                           "moved or removed after the run");
  }
  return Status::OK();
}

Result<AfterRead> ReadAfterRead(const Settings& settings, const Scope& scope, bool remote) {
  AfterRead a;
  if (settings.Bool("remove_after").value_or(false)) {
    a.kind = AfterRead::Kind::kRemove;
    return a;
  }
  if (!settings.Tmpl("move_to")) return a;
  a.kind = AfterRead::Kind::kMove;
  if (remote) {
    auto r = settings.Tmpl("move_to")->Render(scope);
    if (!r.ok()) return r.status().Wrap(settings.where + ": rendering move_to");
    a.folder = std::move(r).value();
  } else {
    auto p = settings.ResolvePath("move_to", scope);
    if (!p.ok()) return p.status().Wrap(settings.where);
    a.folder = p->string();
  }
  if (a.folder.empty()) return Status::Invalid(settings.where + ": move_to names no folder");
  return a;
}

std::string MovedName(const std::string& name, const std::string& run_id, int attempt) {
  if (attempt == 0) return name;
  const std::string tag = "." + run_id + (attempt > 1 ? "-" + std::to_string(attempt) : "");
  const size_t dot = name.rfind('.');
  if (dot == std::string::npos || dot == 0) return name + tag;
  return name.substr(0, dot) + tag + name.substr(dot);
}

Status ApplyAfterRead(const AfterRead& after, const fs::path& path, const std::string& run_id) {
  std::error_code ec;
  if (after.kind == AfterRead::Kind::kRemove) {
    if (!fs::remove(path, ec) && ec) {
      return Status::Io("removing " + path.string() + " after the run: " + ec.message());
    }
    return Status::OK();
  }
  if (after.kind != AfterRead::Kind::kMove) return Status::OK();
  const fs::path folder(after.folder);
  fs::create_directories(folder, ec);
  if (ec) return Status::Io("creating the folder " + folder.string() + ": " + ec.message());
  const std::string name = path.filename().string();
  fs::path dest;
  for (int attempt = 0;; ++attempt) {
    if (attempt == kMoveAttempts) {
      return Status::Io("moving " + path.string() + ": " + folder.string() + " holds " +
                        std::to_string(kMoveAttempts) + " files named like it already");
    }
    dest = folder / MovedName(name, run_id, attempt);
    if (!fs::exists(dest, ec) && !fs::exists(dest.string() + ".part", ec)) break;
  }
  if (::rename(path.c_str(), dest.c_str()) == 0) return Status::OK();
  if (errno != EXDEV) {
    return Status::Io("moving " + path.string() + " to " + folder.string() + ": " +
                      std::strerror(errno));
  }
  // Another file system: a complete copy under a temporary name, renamed,
  // then the original removed (a crash in between leaves both: the next
  // run reads the original again and writes nothing twice).
  const fs::path part = dest.string() + ".part";
  fs::copy_file(path, part, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::rename(part, dest, ec);
  if (!ec) fs::remove(path, ec);
  if (ec) {
    fs::remove(part);
    return Status::Io("moving " + path.string() + " to " + folder.string() + ": " + ec.message());
  }
  return Status::OK();
}

namespace {

class AfterReadSource : public Source {
 public:
  AfterReadSource(Settings settings, std::unique_ptr<Source> inner)
      : settings_(std::move(settings)), inner_(std::move(inner)) {}

  Status Open(const RunContext& ctx) override {
    auto after = ReadAfterRead(settings_, ctx.scope, false);
    if (!after.ok()) return after.status();
    after_ = std::move(after).value();
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status().Wrap(settings_.where);
    path_ = *path;
    run_id_ = ctx.run_id;
    return inner_->Open(ctx);
  }
  Result<bool> Next(SourceItem* item) override { return inner_->Next(item); }
  Status Acknowledge(uint64_t items, bool end) override {
    KEYONCE_RETURN_IF_ERROR(inner_->Acknowledge(items, end));
    if (!end) return Status::OK();
    // The reader lets go of the file first.
    Status closed = inner_->Close();
    closed_ = true;
    KEYONCE_RETURN_IF_ERROR(closed);
    return ApplyAfterRead(after_, path_, run_id_);
  }
  Status Close() override { return closed_ ? Status::OK() : inner_->Close(); }

 private:
  Settings settings_;
  std::unique_ptr<Source> inner_;
  AfterRead after_;
  fs::path path_;
  std::string run_id_;
  bool closed_ = false;
};

}  // namespace

Result<std::unique_ptr<Source>> WithAfterRead(const Settings& settings,
                                              Result<std::unique_ptr<Source>> inner) {
  if (!inner.ok()) return inner.status();
  KEYONCE_RETURN_IF_ERROR(CheckAfterRead(settings));
  if (!HasAfterRead(settings)) return inner;
  return std::unique_ptr<Source>(
      std::make_unique<AfterReadSource>(settings, std::move(inner).value()));
}

void AddAfterRead(ComponentSpec& spec,
                  std::function<Result<std::unique_ptr<Source>>(const Settings&)>& make_source) {
  for (auto& f : AfterReadFields(/*remote=*/false)) spec.fields.push_back(std::move(f));
  make_source = [make = std::move(make_source)](const Settings& s) {
    return WithAfterRead(s, make(s));
  };
}

}  // namespace keyonce::connectors
