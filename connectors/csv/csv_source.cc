// The csv source: settings → CsvReader.
#include <utility>

#include "connectors/common/net/remote_file.h"
#include "connectors/csv/csv_connector.h"

namespace keyonce::connectors::csv {

Result<char> ParseCharSetting(const Settings& settings, const std::string& name,
                              std::string_view fallback, bool allow_empty) {
  const std::string text = settings.String(name).value_or(std::string(fallback));
  if (text.empty()) {
    if (allow_empty) return '\0';
    return Status::Invalid(settings.where + ": " + name + " must not be empty");
  }
  if (text == "\\t" || text == "tab" || text == "TAB") return '\t';
  if (text.size() != 1 || static_cast<unsigned char>(text[0]) >= 0x80) {
    return Status::Invalid(settings.where + ": " + name +
                           " must be a single ASCII character (e.g. \",\" \";\" \"|\" or \"\\t\")");
  }
  if (text[0] == '\n' || text[0] == '\r') {
    return Status::Invalid(settings.where + ": " + name + " cannot be a line break");
  }
  return text[0];
}

Result<CsvReaderOptions> ReaderOptionsFromSettings(const Settings& settings) {
  CsvReaderOptions opt;
  auto delimiter = ParseCharSetting(settings, "delimiter", ",", false);
  if (!delimiter.ok()) return delimiter.status();
  opt.delimiter = *delimiter;
  auto quote = ParseCharSetting(settings, "quote", "\"", true);
  if (!quote.ok()) return quote.status();
  opt.quote = *quote == '\0' ? std::nullopt : std::optional<char>(*quote);
  if (opt.quote && *opt.quote == opt.delimiter) {
    return Status::Invalid(settings.where + ": quote and delimiter must differ");
  }
  const std::string encoding = settings.String("encoding").value_or("auto");
  if (encoding != "auto") {
    opt.encoding = ParseEncoding(encoding);
    if (!opt.encoding) {
      return Status::Invalid(settings.where + ": encoding '" + encoding +
                             "' is not one of auto, utf-8, windows-1252, iso-8859-1");
    }
  }
  opt.header = settings.Bool("header").value_or(true);
  opt.columns = settings.StringList("columns");
  opt.skip_rows = settings.Int("skip_rows").value_or(0);
  if (opt.skip_rows < 0) return Status::Invalid(settings.where + ": skip_rows must be 0 or more");
  opt.trim = settings.Bool("trim").value_or(false);
  opt.max_record_lines = settings.Int("max_record_lines").value_or(1000);
  if (opt.max_record_lines < 1) {
    return Status::Invalid(settings.where + ": max_record_lines must be 1 or more");
  }
  if (!opt.header && opt.columns.empty()) {
    return Status::Invalid(settings.where + ": header: false needs `columns` to name the fields");
  }
  return opt;
}

namespace {

class CsvSource : public Source {
 public:
  CsvSource(Settings settings, CsvReaderOptions options)
      : settings_(std::move(settings)), reader_(std::move(options)) {}

  Status Open(const RunContext& ctx) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status().Wrap(settings_.where);
    reader_.SetLimits(ctx.limits);
    return reader_.Open(*path, ctx.log);
  }

  Result<bool> Next(SourceItem* item) override { return reader_.Next(item); }

  Status Close() override {
    reader_.Close();
    return Status::OK();
  }

 private:
  Settings settings_;
  CsvReader reader_;
};

}  // namespace

Result<std::unique_ptr<Source>> MakeLocalSource(const Settings& settings) {
  auto options = ReaderOptionsFromSettings(settings);
  if (!options.ok()) return options.status();
  return std::unique_ptr<Source>(new CsvSource(settings, std::move(options).value()));
}

Result<std::unique_ptr<Source>> MakeSource(const Settings& settings) {
  // sftp://, ftp://, ...: the file is downloaded, then read like a local one.
  return net::MakeFileSource(settings, MakeLocalSource);
}

}  // namespace keyonce::connectors::csv
