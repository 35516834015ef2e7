#include "connectors/common/loaded_table.h"

#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace keyonce::connectors {
namespace {

std::string_view TrimView(std::string_view v) {
  size_t a = 0, b = v.size();
  while (a < b && (v[a] == ' ' || v[a] == '\t')) ++a;
  while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t')) --b;
  return v.substr(a, b - a);
}

std::string KeyText(const Value& v) {
  if (v.is_string()) return std::string(TrimView(v.get_string()));
  if (v.is_null()) return "";
  return std::string(TrimView(ToText(v)));
}

// The file of a position ("afd.csv:12" -> "afd.csv", "afd.xlsx:Ark1!7" -> "afd.xlsx").
std::string FileOf(const std::string& position) {
  size_t colon = position.rfind(':');
  return colon == std::string::npos ? position : position.substr(0, colon);
}

// At most this many repeated-key warnings are logged one by one.
constexpr int kMaxDuplicateWarnings = 10;

struct LoadedTableOptions {
  std::string where;  // the table's place in the recipe
  std::string key;    // the column to match
  std::string what;   // "a csv table"
};

class LoadedTable : public Lookup {
 public:
  LoadedTable(LoadedTableOptions options,
              std::function<Result<std::unique_ptr<Source>>()> make_source)
      : options_(std::move(options)), make_source_(std::move(make_source)) {}

  Status Open(const RunContext& ctx) override {
    rows_.clear();
    map_.clear();
    auto source = make_source_();
    if (!source.ok()) return source.status().Wrap(options_.where);
    KEYONCE_RETURN_IF_ERROR((*source)->Open(ctx));
    Status st = Load(**source, ctx);
    Status closed = (*source)->Close();
    return st.ok() ? closed : st;
  }

  Result<std::optional<Record>> Find(const Value& key) override {
    auto it = map_.find(KeyText(key));
    if (it == map_.end()) return std::optional<Record>();
    return std::optional<Record>(rows_[it->second]);
  }

 private:
  Status Load(Source& source, const RunContext& ctx) {
    std::vector<std::string> positions;  // of each kept row, for the repeated-key warnings
    std::string file;
    int duplicates = 0;
    SourceItem item;
    for (;;) {
      auto more = source.Next(&item);
      if (!more.ok()) return more.status();
      if (!*more) break;
      if (item.rejected) {
        return Status::Invalid(options_.where + ": lookup table " + item.position + ": " +
                               item.reason);
      }
      const Value* v = item.record.if_contains(options_.key);
      if (!v) return MissingKey(item);
      if (file.empty()) file = FileOf(item.position);
      std::string k = KeyText(*v);
      auto it = map_.find(k);
      if (it != map_.end()) {
        if (++duplicates <= kMaxDuplicateWarnings && ctx.log) {
          // The key itself is not logged: it may be personal data.
          ctx.log->Warn(item.position + ": the key in column '" + options_.key + "' repeats " +
                        positions[it->second] + "; the first row is used");
        }
        continue;
      }
      if (static_cast<int64_t>(rows_.size()) >= ctx.limits.records_in_memory) {
        return Status::Invalid(options_.where + ": lookup table " + file +
                               " has more than limits.records_in_memory (" +
                               std::to_string(ctx.limits.records_in_memory) + ") rows; " +
                               options_.what +
                               " is held in memory whole, so raise the limit or keep a "
                               "table this large in sqlite or postgres");
      }
      map_.emplace(std::move(k), rows_.size());
      positions.push_back(item.position);
      rows_.push_back(std::move(item.record));
      item = SourceItem();
    }
    if (duplicates > kMaxDuplicateWarnings && ctx.log) {
      ctx.log->Warn(file + ": " + std::to_string(duplicates) + " rows repeat a key in column '" +
                    options_.key + "'; the first row of each is used");
    }
    return Status::OK();
  }

  Status MissingKey(const SourceItem& item) const {
    std::string list;
    for (const auto& field : item.record) {
      list += (list.empty() ? "'" : ", '") + std::string(field.key()) + "'";
    }
    return Status::Invalid(options_.where + ": key column '" + options_.key + "' is not in " +
                           FileOf(item.position) + " (its columns: " + list + ")");
  }

  LoadedTableOptions options_;
  std::function<Result<std::unique_ptr<Source>>()> make_source_;
  std::vector<Record> rows_;
  std::unordered_map<std::string, size_t> map_;
};

}  // namespace

Result<std::unique_ptr<Lookup>> MakeLoadedTable(
    const Settings& settings, const std::string& what,
    std::function<Result<std::unique_ptr<Source>>(const Settings&)> make_source) {
  auto source = make_source(settings);  // checks the reading settings now
  if (!source.ok()) return source.status();
  const std::string key = settings.String("key").value_or("");
  if (key.empty()) return Status::Invalid(settings.where + ": key is required");
  return std::unique_ptr<Lookup>(
      new LoadedTable({settings.where, key, what},
                      [settings, make = std::move(make_source)] { return make(settings); }));
}

FieldSpec LoadedTableKeyField(const std::string& example) {
  return FieldSpec::String("key")
      .Required()
      .Describe(
          "Column to match: a lookup finds the row whose value in this column equals "
          "the key's text (spaces around either are ignored). When a key repeats, "
          "the first row wins and a warning names the rows.")
      .Example(example);
}

}  // namespace keyonce::connectors
