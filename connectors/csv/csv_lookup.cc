// The csv lookup table: the whole file is loaded at Open into a hash map
// keyed by the `key` column (tables are small: departments, cost centres).
#include <string_view>
#include <unordered_map>
#include <utility>

#include "connectors/csv/csv_connector.h"

namespace keyonce::connectors::csv {
namespace {

std::string_view TrimView(std::string_view v) {
  size_t a = 0, b = v.size();
  while (a < b && (v[a] == ' ' || v[a] == '\t')) ++a;
  while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t')) --b;
  return v.substr(a, b - a);
}

// At most this many duplicate-key warnings are logged one by one.
constexpr int kMaxDuplicateWarnings = 10;

class CsvLookup : public Lookup {
 public:
  CsvLookup(Settings settings, CsvReaderOptions options, std::string key)
      : settings_(std::move(settings)), options_(std::move(options)), key_(std::move(key)) {}

  Status Open(const RunContext& ctx) override {
    auto path = settings_.ResolvePath("path", ctx.scope);
    if (!path.ok()) return path.status().Wrap(settings_.where);
    CsvReader reader(options_);
    reader.SetLimits(ctx.limits);
    KEYONCE_RETURN_IF_ERROR(reader.Open(*path, ctx.log));
    const auto& names = reader.field_names();
    bool has_key = false;
    for (const std::string& n : names) has_key = has_key || n == key_;
    if (!has_key) {
      std::string list;
      for (const std::string& n : names) list += (list.empty() ? "'" : ", '") + n + "'";
      return Status::Invalid(settings_.where + ": key column '" + key_ + "' is not in " +
                             reader.file_name() + " (its columns: " + list + ")");
    }
    rows_.clear();
    map_.clear();
    std::vector<std::string> positions;  // of each kept row, for duplicate warnings
    SourceItem item;
    int duplicates = 0;
    for (;;) {
      auto more = reader.Next(&item);
      if (!more.ok()) return more.status();
      if (!*more) break;
      if (item.rejected) {
        return Status::Invalid(settings_.where + ": lookup table " + item.position + ": " +
                               item.reason);
      }
      const Value* v = item.record.if_contains(key_);
      std::string k(TrimView(v && v->is_string() ? std::string_view(v->get_string()) : ""));
      auto it = map_.find(k);
      if (it != map_.end()) {
        if (++duplicates <= kMaxDuplicateWarnings && ctx.log) {
          // The key itself is not logged: it may be personal data.
          ctx.log->Warn(item.position + ": the key in column '" + key_ + "' repeats " +
                        positions[it->second] + "; the first row is used");
        }
        continue;
      }
      if (static_cast<int64_t>(rows_.size()) >= ctx.limits.records_in_memory) {
        return Status::Invalid(settings_.where + ": lookup table " + reader.file_name() +
                               " has more than limits.records_in_memory (" +
                               std::to_string(ctx.limits.records_in_memory) +
                               ") rows; a csv table is held in memory whole, so raise the limit "
                               "or keep a table this large in sqlite or postgres");
      }
      map_.emplace(std::move(k), rows_.size());
      positions.push_back(item.position);
      rows_.push_back(std::move(item.record));
    }
    if (duplicates > kMaxDuplicateWarnings && ctx.log) {
      ctx.log->Warn(reader.file_name() + ": " + std::to_string(duplicates) +
                    " rows repeat a key in column '" + key_ + "'; the first row of each is used");
    }
    return Status::OK();
  }

  Result<std::optional<Record>> Find(const Value& key) override {
    const std::string text = ToText(key);
    auto it = map_.find(std::string(TrimView(text)));
    if (it == map_.end()) return std::optional<Record>();
    return std::optional<Record>(rows_[it->second]);
  }

 private:
  Settings settings_;
  CsvReaderOptions options_;
  std::string key_;
  std::vector<Record> rows_;
  std::unordered_map<std::string, size_t> map_;
};

}  // namespace

Result<std::unique_ptr<Lookup>> MakeLookup(const Settings& settings) {
  auto options = ReaderOptionsFromSettings(settings);
  if (!options.ok()) return options.status();
  const std::string key = settings.String("key").value_or("");
  if (key.empty()) return Status::Invalid(settings.where + ": key is required");
  return std::unique_ptr<Lookup>(
      new CsvLookup(settings, std::move(options).value(), key));
}

}  // namespace keyonce::connectors::csv
