#include "pipeline/runner.h"

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cmath>
#include <exception>
#include <fstream>
#include <future>
#include <iomanip>
#include <iostream>
#include <new>
#include <regex>
#include <sstream>
#include <thread>
#include <unordered_set>

#include "core/clock.h"
#include "pipeline/handoff.h"
#include "pipeline/planner.h"
#include "pipeline/retry.h"
#include "pipeline/run_log.h"
#include "pipeline/run_parts.h"
#include "recipe/spec_walk.h"
#include "recipe/steps.h"
#include "state/audit.h"
#include "state/journal.h"
#include "state/store.h"
#include "template/internal.h"

namespace keyonce {
namespace {

// About the size of a record as JSON: its names and texts, without walking
// it twice (ToJson) for every record just to check limits.record_bytes.
size_t ValueBytes(const Value& v);
size_t RecordBytes(const Record& r) {
  size_t n = 2;
  for (const auto& kv : r) n += kv.key().size() + 4 + ValueBytes(kv.value());
  return n;
}
size_t ValueBytes(const Value& v) {
  switch (v.kind()) {
    case boost::json::kind::string:
      return v.get_string().size() + 2;
    case boost::json::kind::object:
      return RecordBytes(v.get_object());
    case boost::json::kind::array: {
      size_t n = 2;
      for (const auto& e : v.get_array()) n += 1 + ValueBytes(e);
      return n;
    }
    default:
      return 8;
  }
}

// About the memory a value takes, for limits.batch_bytes: Boost.JSON's
// entries and the heap blocks of names and texts longer than fit inline.
// Estimated, not measured; within a few percent for records of texts.
size_t HeapBytes(size_t bytes) { return bytes ? (bytes + 8 + 15) & ~size_t{15} : 0; }
size_t ValueMemory(const Value& v) {
  switch (v.kind()) {
    case boost::json::kind::string: {
      const auto& s = v.get_string();
      constexpr size_t kInline = 14;  // Boost.JSON keeps up to 14 characters in the value
      return s.capacity() <= kInline ? 0 : HeapBytes(8 + s.capacity() + 1);
    }
    case boost::json::kind::array: {
      const auto& a = v.get_array();
      size_t n = HeapBytes(a.capacity() * sizeof(Value));
      for (const auto& e : a) n += ValueMemory(e);
      return n;
    }
    case boost::json::kind::object: {
      const auto& o = v.get_object();
      // The entries, and the hash index of a larger object.
      size_t n = HeapBytes(o.capacity() * (sizeof(boost::json::key_value_pair) + 4));
      for (const auto& kv : o) n += HeapBytes(kv.key().size() + 1) + ValueMemory(kv.value());
      return n;
    }
    default:
      return 0;
  }
}

using Clock = std::chrono::steady_clock;

// Rereads quarantined records in place of the source.
class QuarantineSource : public Source {
 public:
  explicit QuarantineSource(std::vector<StateStore::QuarantineRow> rows) : rows_(std::move(rows)) {}
  Status Open(const RunContext&) override { return Status::OK(); }
  Result<bool> Next(SourceItem* item) override {
    while (i_ < rows_.size()) {
      const auto& row = rows_[i_++];
      boost::system::error_code ec;
      Value v = boost::json::parse(row.record, ec);
      item->position = "quarantine #" + std::to_string(row.id);
      if (ec || !v.is_object()) {
        item->rejected = true;
        item->reason = "quarantined row " + std::to_string(row.id) +
                       " holds raw source text; fix it at the source and rerun";
        item->raw = row.record;
        item->record = {};
        return true;
      }
      item->rejected = false;
      item->record = std::move(v.as_object());
      return true;
    }
    return false;
  }

 private:
  std::vector<StateStore::QuarantineRow> rows_;
  size_t i_ = 0;
};

struct Item {
  Item() = default;
  // Takes the record with its memory (a Value assigned would be copied into
  // the default memory instead of the batch's arena).
  explicit Item(Value r) : record(std::move(r)) {}
  Value record;  // after steps
  // The record as read, for the quarantine (SourceJson): what the steps
  // replaced in it, or its JSON when they cannot be undone.
  StepUndo undo;
  std::string source_json;
  std::string position;
  std::string key;
  Digest key_hash{};
  Digest content{};
  std::string ref;
  std::string subject;  // the person's reference for the audit log, "" = none
  Value captures = boost::json::object();
  bool failed = false;
  bool quarantined_in_doubt = false;
  bool stopped = false;  // a target stopped the run (WriteResult::stop_run): not quarantined
  std::string fail_target, fail_reason;
};

// What an item holds in memory while it waits in a batch (limits.batch_bytes).
size_t ItemMemory(const Item& item) {
  size_t bytes = sizeof(Item) + ValueMemory(item.record) + HeapBytes(item.source_json.capacity()) +
                 ValueMemory(item.captures);
  const auto& originals = item.undo.originals();
  bytes += HeapBytes(originals.capacity() * sizeof(originals[0]));
  for (const auto& o : originals) bytes += ValueMemory(o.second);
  return bytes;
}

// The record as read, as JSON.
std::string SourceJson(const Item& item) {
  if (!item.source_json.empty()) return item.source_json;
  return ToJson(item.undo.Original(item.record.as_object()));
}

// kAdopt: a record the journal does not know, at a target being adopted
// (--adopt): asked like kCheck, written when the target cannot tell.
enum class Action { kNone, kUnchanged, kInsert, kUpdate, kCheck, kAdopt };

struct TargetRun {
  const TargetDef* def = nullptr;
  std::unique_ptr<Target> target;
  TargetTraits traits;
  int64_t id = -1;    // journal target id
  std::string token;  // state before the next batch
  int64_t last_batch = 0;
  std::vector<int64_t> deferred;  // committed but not yet durable
  TargetCounts counts;
  // The journal never wrote this target and it keeps no mark: the first
  // records it would insert are checked (Target::Check) first, and a record
  // already there means another journal wrote it.
  int probe = 0;
  // --adopt of a target another journal wrote: every record this journal
  // does not know is checked first and, if there, recorded, not written
  // (adopt_asks: until the target says it cannot tell).
  bool adopting = false;
  bool adopt_asks = true;
  // Writes a WriteMany call takes (WriteInOrder): 1 unless the target
  // writes_in_order and the audit log need not know whom each of its
  // templates' lookups was for.
  size_t writes_per_call = 1;
};

// Whether a target's templates may use the `lookup` filter (by their text:
// a false alarm only costs speed). A structured setting is not looked into.
bool MayLookUp(const TargetDef& def) {
  auto uses = [](const Template& t) { return t.source().find("lookup") != std::string::npos; };
  if (def.when && uses(*def.when)) return true;
  for (const auto& [_, e] : def.settings.entries) {
    if (e.structure || (e.tmpl && uses(*e.tmpl))) return true;
    for (const auto& [__, t] : e.tmpl_map) {
      if (uses(t)) return true;
    }
  }
  return false;
}

Value ParseCaptures(const std::string& json) {
  if (json.empty()) return boost::json::object();
  boost::system::error_code ec;
  Value v = boost::json::parse(json, ec);
  return ec ? Value(boost::json::object()) : v;
}

// The recipe's `subject` template, if it has one (see RecordSubject).
const Template* SubjectOf(const Recipe& r) { return r.subject ? &*r.subject : nullptr; }

}  // namespace

std::string RunSummary::ToJson() const {
  boost::json::object o;
  o["run"] = run;
  o["status"] = status;
  o["read"] = read;
  o["rejected"] = rejected;
  o["filtered"] = filtered;
  o["quarantined"] = quarantined;
  o["in_doubt"] = in_doubt;
  boost::json::object t;
  for (const auto& [name, c] : targets) {
    t[name] = {{"written", c.written},     {"updated", c.updated},
               {"unchanged", c.unchanged}, {"failed", c.failed},
               {"in_doubt", c.in_doubt},   {"not_applicable", c.not_applicable}};
  }
  o["targets"] = std::move(t);
  o["seconds"] = std::round(seconds * 1000) / 1000;
  o["exit_code"] = exit_code;
  if (!error.empty()) o["error"] = error;
  return ::keyonce::ToJson(o);
}

namespace {

// One parameter's text as its declared type; messages name it by `label`.
Result<Value> TypedParam(const ParamDecl& p, const std::string& text, const std::string& label) {
  static const std::regex int_re("^-?[0-9]+$");
  static const std::regex iso_re("^([0-9]{4})-([0-9]{2})-([0-9]{2})$");
  static const std::regex dk_re("^([0-9]{2})[-.]([0-9]{2})[-.]([0-9]{4})$");
  if (p.type == "int") {
    if (!std::regex_match(text, int_re)) return Status::Invalid(label + " must be a whole number");
    try {
      return Value(static_cast<int64_t>(std::stoll(text)));
    } catch (...) {
      return Status::Invalid(label + " is out of range");
    }
  }
  if (p.type == "bool") {
    std::string l = text;
    for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (l == "true" || l == "yes" || l == "ja" || l == "1") return Value(true);
    if (l == "false" || l == "no" || l == "nej" || l == "0") return Value(false);
    return Status::Invalid(label + " must be true or false");
  }
  if (p.type == "date") {
    std::smatch m;
    int y = 0, mo = 0, d = 0;
    if (std::regex_match(text, m, iso_re)) {
      y = std::stoi(m[1]);
      mo = std::stoi(m[2]);
      d = std::stoi(m[3]);
    } else if (std::regex_match(text, m, dk_re)) {
      d = std::stoi(m[1]);
      mo = std::stoi(m[2]);
      y = std::stoi(m[3]);
    } else {
      return Status::Invalid(label + " must be a date (YYYY-MM-DD or DD-MM-YYYY)");
    }
    if (!tmpl::IsValidDate(y, mo, d)) return Status::Invalid(label + " is not a valid date");
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", y, mo, d);
    return Value(std::string(buf));
  }
  if (p.type == "enum" && std::find(p.values.begin(), p.values.end(), text) == p.values.end()) {
    std::string list;
    for (const auto& v : p.values) list += (list.empty() ? "" : ", ") + v;
    return Status::Invalid(label + " must be one of: " + list);
  }
  return Value(text);
}

}  // namespace

Result<Value> ResolveParams(const Recipe& recipe, const std::map<std::string, std::string>& raw) {
  boost::json::object out;
  std::vector<std::string> names;
  for (const auto& p : recipe.params) names.push_back(p.name);
  for (const auto& [k, v] : raw) {
    if (std::find(names.begin(), names.end(), k) == names.end()) {
      // The given name is the caller's text (a CPR number, pasted in the wrong
      // box): never repeated, only the declared names offered.
      std::string hint = DidYouMean(k, names);
      if (hint.empty()) {
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "'" : ", '") + n + "'";
        hint = names.empty() ? " (the recipe takes none)" : "; the recipe's parameters are " + list;
      }
      return Status::Invalid("unknown parameter" + hint);
    }
  }
  for (const auto& p : recipe.params) {
    auto it = raw.find(p.name);
    std::optional<std::string> text;
    if (it != raw.end()) {
      text = it->second;
    } else if (p.default_value) {
      text = p.default_value;
    }
    std::string label =
        "parameter '" + p.name + "'" + (p.label != p.name ? " (" + p.label + ")" : "");
    if (!text || (text->empty() && p.type != "string")) {
      if (p.required) return Status::Invalid(label + " is required");
      out[p.name] = nullptr;
      continue;
    }
    if (p.required && text->empty()) return Status::Invalid(label + " is required");
    if (p.pattern_re && !std::regex_match(*text, *p.pattern_re)) {
      return Status::Invalid(label + " does not match the pattern " + p.pattern);
    }
    auto v = TypedParam(p, *text, label);
    if (!v.ok()) return v.status();
    out[p.name] = std::move(v).value();
  }
  return Value(std::move(out));
}

namespace {
// The parameters a quarantined record's run was given, with `overrides` on top.
std::map<std::string, std::string> ParamsOfRow(
    const StateStore::QuarantineRow& row, const std::map<std::string, std::string>& overrides) {
  std::map<std::string, std::string> out;
  boost::system::error_code ec;
  Value v = boost::json::parse(row.params, ec);
  if (!ec && v.is_object()) {
    for (const auto& kv : v.get_object()) {
      if (kv.value().is_string()) out[std::string(kv.key())] = std::string(kv.value().get_string());
    }
  }
  for (const auto& [k, val] : overrides) out[k] = val;
  return out;
}

// Removes the run folders under `root` not changed for `days` days; how many.
// Evidence holds personal data (screenshots of forms), so it is kept no
// longer than the audit log. Problems are left for the next run.
int PruneEvidence(const std::filesystem::path& root, int days) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (root.empty() || !fs::is_directory(root, ec)) return 0;
  const auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(24) * days;
  int removed = 0;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path p = it->path();
    if (p.filename().string().rfind("run-", 0) != 0 || !it->is_directory(ec)) continue;
    auto t = fs::last_write_time(p, ec);
    if (ec || t >= cutoff) {
      ec.clear();
      continue;
    }
    if (fs::remove_all(p, ec) != static_cast<std::uintmax_t>(-1) && !ec) ++removed;
    ec.clear();
  }
  return removed;
}
}  // namespace

Result<std::map<std::string, std::string>> RetryParams(
    const std::vector<StateStore::QuarantineRow>& rows,
    const std::map<std::string, std::string>& overrides) {
  std::map<std::string, std::string> first;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto p = ParamsOfRow(rows[i], overrides);
    if (i == 0) {
      first = std::move(p);
    } else if (p != first) {
      return Status::Invalid("quarantined records " + std::to_string(rows[0].id) + " and " +
                             std::to_string(rows[i].id) +
                             " come from runs with different parameters; retry them in separate "
                             "runs (keyonce quarantine --retry all does)");
    }
  }
  return first;
}

std::vector<std::vector<int64_t>> GroupRetries(
    const std::vector<StateStore::QuarantineRow>& rows,
    const std::map<std::string, std::string>& overrides) {
  std::vector<std::vector<int64_t>> groups;
  std::map<std::map<std::string, std::string>, size_t> index;
  for (const auto& row : rows) {
    auto [it, fresh] = index.emplace(ParamsOfRow(row, overrides), groups.size());
    if (fresh) groups.emplace_back();
    groups[it->second].push_back(row.id);
  }
  return groups;
}

Result<Value> ResolveSecrets(const Recipe& recipe, Redactor* redactor) {
  boost::json::object out;
  for (const auto& s : recipe.secrets) {
    std::string value;
    if (!s.env.empty()) {
      const char* v = std::getenv(s.env.c_str());
      if (!v || !*v) {
        return Status::Invalid("secret '" + s.name + "': environment variable " + s.env +
                               " is not set");
      }
      value = v;
    } else {
      std::ifstream in(s.file, std::ios::binary);
      if (!in) return Status::Invalid("secret '" + s.name + "': cannot read " + s.file);
      std::stringstream ss;
      ss << in.rdbuf();
      value = ss.str();
      while (!value.empty() && (value.back() == '\n' || value.back() == '\r')) value.pop_back();
    }
    if (redactor) redactor->AddSecret(value);
    out[s.name] = value;
  }
  return Value(std::move(out));
}

namespace {

// One batch on its way through the journal's protocol (Runner::ProcessBatch).
struct BatchRun {
  BatchRun(size_t targets, size_t items)
      : actions(targets, std::vector<Action>(items, Action::kNone)),
        batch_ids(targets, 0),
        audit(targets, items) {}
  std::vector<std::vector<Action>> actions;  // [target][item]
  // Per target: 0 = nothing written in this batch, < 0 = committed, to be confirmed.
  std::vector<int64_t> batch_ids;
  std::string audit_time;  // of the intents' transaction
  WriteAudit audit;
  std::vector<std::pair<size_t, size_t>> capture_saves;  // (target, item)
  std::vector<std::pair<size_t, size_t>> confirmed;      // found by Check: (target, item)
  Status stop;  // a target that cannot go on (WriteResult::stop_run): the run ends after it
};

// What one target writes of a batch.
struct TargetWrites {
  std::vector<WriteOp> ops;
  std::vector<size_t> items;                   // the item of each op
  std::vector<std::unique_ptr<Scope>> scopes;  // each op's scope (ops point at them)
  std::vector<size_t> forget, doubt;           // items whose write did not / may have happened
};

// What a stage of the run finds besides the records it passes on, in the
// order found: audit rows waiting for a transaction, quarantined records.
struct PendingAudit {
  const std::string* system;
  const char* operation;
  std::string subject, detail;
};
struct PendingQuarantine {
  StateStore::QuarantineRow row;
  std::string subject;  // for the audit log, "" = none
};
struct Findings {
  std::vector<PendingAudit> audit;
  std::vector<PendingQuarantine> quarantine;
};

// The memory of one batch's records: bump allocation from 256 KiB chunks,
// nothing given back until the batch goes (a record's fields are never freed
// one by one). Fixed-size chunks keep the overshoot under one chunk, where a
// doubling arena would hold up to twice the batch. Not thread-safe, and need
// not be: the reading stage allocates from it while it builds the batch, the
// writing stage (copies of fields its templates make) only after taking it.
class BatchArena : public boost::json::memory_resource {
 public:
  ~BatchArena() override {
    for (void* c : chunks_) std::free(c);
  }

 private:
  static constexpr size_t kChunk = 256 << 10;
  void* do_allocate(size_t n, size_t align) override {
    size_t at = (used_ + align - 1) & ~(align - 1);
    if (chunks_.empty() || at + n > size_) {
      const size_t size = std::max(kChunk, n + align);
      void* c = std::malloc(size);
      if (!c) throw std::bad_alloc();
      chunks_.push_back(c);
      size_ = size;
      at = (reinterpret_cast<uintptr_t>(c) % align) ? align - reinterpret_cast<uintptr_t>(c) % align
                                                    : 0;
    }
    used_ = at + n;
    return static_cast<char*>(chunks_.back()) + at;
  }
  void do_deallocate(void*, size_t, size_t) override {}
  bool do_is_equal(const memory_resource& other) const noexcept override { return this == &other; }

  std::vector<void*> chunks_;
  size_t used_ = 0, size_ = 0;
};

// What the reading stage hands the writing stage: a batch of planned records
// and what reading them found. The writing stage takes the counts into the
// run's summary and the findings into its own when it takes the batch.
struct ReadBatch {
  // The memory of the batch's records (SourceItem::storage): one arena,
  // given back at once when the last value made in it goes. Shared, not
  // owned by the batch: a copy of a field that outlives the batch (Boost.JSON
  // copies keep the memory of what they copy) keeps the arena, never points
  // into freed memory.
  boost::json::storage_ptr storage = boost::json::make_shared_resource<BatchArena>();
  std::vector<Item> items;
  Findings found;
  int64_t read = 0, rejected = 0, filtered = 0, quarantined = 0;
  bool last = false;         // the reading stage ends with this batch
  bool interrupted = false;  // ... because a stop was asked for or run_seconds passed
  bool over_time = false;
  Status error;                  // reading failed after `items`: the run fails
  std::exception_ptr exception;  // the reading stage threw (out of memory above all)
};

// The reading stage's own tools: it runs on a thread of its own, so nothing
// here is shared with the writing stage (the tables serialise their lookups).
struct ReadStage {
  ReadStage(const Recipe& recipe, std::string pseudonym_key, RecipeTables& tables, Scope base)
      : planner(recipe), pseudo(std::move(pseudonym_key)), tables(tables), scope(base) {
    scope.tables = &this->tables;
  }
  const RecordPlanner planner;
  Pseudonymizer pseudo;
  ContentHasher hasher;
  std::string json;      // a record's JSON, made here (the buffer kept) and copied where it stays
  template <typename R>  // Value or Record: never converted (a copy)
  const std::string& Json(const R& record) {
    json.clear();
    AppendJson(json, record);
    return json;
  }
  RecipeTables::View tables;
  Scope scope;  // what templates see of the run (tables: the stage's own view)

  // Batches written go back to the reading stage to be freed there: memory
  // is returned to the thread that allocated it, not contended for (glibc's
  // allocator locks the other thread's arena for every free).
  void Recycle(std::vector<Item> items) {
    std::lock_guard<std::mutex> lock(spent_mu);
    spent.push_back(std::move(items));
    ++written;
    spent_cv.notify_all();
  }
  // Frees the batches written; with `wait`, first waits until every batch
  // handed over is written (or the writing stage ended: Stop).
  void FreeSpent(bool wait) {
    std::vector<std::vector<Item>> done;
    std::unique_lock<std::mutex> lock(spent_mu);
    if (wait) spent_cv.wait(lock, [&] { return stopped || written >= handed; });
    done.swap(spent);
  }
  void Stop() {
    std::lock_guard<std::mutex> lock(spent_mu);
    stopped = true;
    spent_cv.notify_all();
  }
  std::mutex spent_mu;
  std::condition_variable spent_cv;
  std::vector<std::vector<Item>> spent;
  uint64_t handed = 0;   // batches with items handed over (the reading stage's count)
  uint64_t written = 0;  // of those, written and recycled
  bool stopped = false;
};

class Runner {
 public:
  Runner(const Recipe& recipe, const RunOptions& opt)
      : recipe_(recipe), opt_(opt), retry_(std::make_unique<RetryPolicy>(recipe.errors)) {}

  // The run, then its notifications (recipe `notify`). A run that throws
  // (out of memory above all) still ends as failed in the history.
  Result<RunSummary> Run() {
    Result<RunSummary> s = Status::Internal("the run did not finish");
    try {
      s = RunRecords();
    } catch (const std::bad_alloc&) {
      s = EndAfterException(
          "the run ran out of memory (an allocation failed) after reading " +
          std::to_string(sum_.read) +
          " records; lower batch_records or the recipe's limits, or give keyonce more memory");
    } catch (const std::exception& e) {
      s = EndAfterException(std::string("internal error: ") + e.what());
    }
    if (s.ok() && !opt_.dry_run && !recipe_.notify.empty()) Notify(*s);
    return s;
  }
  Result<RunSummary> RunRecords();
  Result<RunSummary> EndAfterException(const std::string& message);
  void Notify(const RunSummary& s);

 private:
  // The record notifications render: the run's summary, and *qfile (a CSV
  // of the open quarantine, removed after sending) when there is one.
  Value NotificationRecord(const RunSummary& s, std::filesystem::path* qfile);
  Status SendNotification(const NotifyDef& n, const Value& record, int64_t run);
  // The run's stages (RunRecords), in order.
  // Parameters (a retry's: those of the run that read its records) and secrets.
  Status ResolveInputs(std::vector<StateStore::QuarantineRow>* retry_rows);
  Status TakeRecipe();   // the recipe's lock; runs it left marked running are abandoned
  void PruneRetained();  // audit rows and evidence past their retention
  Status StartRun(const std::string& params_text);  // the run's row and its audit row
  Status SetUpScope();                              // what templates and connectors see of the run
  Status PrepareTargets();  // made, checked, recovered, opened; the journal merged
  Result<std::unique_ptr<Source>> OpenSource(std::vector<StateStore::QuarantineRow> retry_rows);
  // Reads the source to its end (or a stop), a batch at a time, in two
  // stages on two threads: one reads and plans batch N+1 (ReadBatches)
  // while the other journals and writes batch N (WriteBatches).
  // Reads on a thread of its own, while this one makes the targets ready
  // (PrepareTargets), marks the quarantined records `retried` and writes.
  Status ReadAll(Source& source, const std::vector<int64_t>& retried, bool* interrupted);
  void ReadBatches(Source& source, ReadStage& stage, Handoff<ReadBatch>& out);
  // Fills `b` up to a batch's size; true: the reading stage ends after it.
  bool FillBatch(Source& source, ReadStage& stage, ReadBatch& b, const Handoff<ReadBatch>& out,
                 bool* heavy);
  Status WriteBatches(Source& source, Handoff<ReadBatch>& in, ReadStage& stage, bool* interrupted);
  // Tells the source which items are safe (Source::Acknowledge) once every
  // target's commits are durable, keeping the quarantine and audit rows first.
  Status Acknowledge(Source& source, bool end);
  // The counts and findings of a batch read become the run's.
  void TakeFindings(ReadBatch& b);
  void Stopped(const ReadBatch& last, bool* interrupted);
  // A record read: planned into an item for the batch, or quarantined,
  // rejected or filtered (nullopt). Runs in the reading stage.
  Result<std::optional<Item>> Admit(ReadStage& stage, SourceItem& si, size_t bytes, ReadBatch& b);
  // `bytes`: RecordBytes(si.record).
  std::optional<std::string> RejectReason(const SourceItem& si, size_t bytes) const;
  void NoteWatermark(const Scope& scope);
  Status Housekeep();  // between batches: keep quarantined records, flush audit rows
  // The journal's spill of finished batches runs on a thread of its own while
  // the next batch is written to its targets, which never touch the state
  // store; until AwaitSpill the spill owns the journal and the state store.
  void StartSpill();
  Status AwaitSpill();
  Status FinishTargets(bool interrupted);  // final commits, merge, watermark
  Result<RunSummary> Summarize(bool interrupted);
  // Ends a run that cannot go on: what was found is kept, the history says why.
  Result<RunSummary> Fail(const Status& st);

  Status Recover(TargetRun& t);
  // Compares the target's mark (Target::Mark) with this journal: refuses a
  // target another state file wrote, or one that holds batches this journal
  // never started (a restored older state file), unless --adopt.
  Status CheckOwnership(TargetRun& t);
  // Checks the first records the journal would insert into a target it
  // never wrote (TargetRun::probe): refuses when one is already there.
  Status Probe(TargetRun& t, std::vector<Item>& items);
  // One batch through the journal's protocol: intents, writes, confirmation.
  Status ProcessBatch(std::vector<Item>& items);
  Status JournalIntents(std::vector<Item>& items, BatchRun& b);
  Status EnsureBatch(BatchRun& b, size_t ti);
  // Journals the intent to write item i to target ti, with its audit row
  // (own_row: stored now, not with the batch's chunk).
  Status IntendWrite(BatchRun& b, size_t ti, Item& item, size_t i, Action a, bool own_row);
  Status WriteTarget(size_t ti, std::vector<Item>& items, BatchRun& b);
  // Adds item i's write to `w`, or says why not; true: its intent must be forgotten.
  Result<bool> PrepareWrite(size_t ti, Item& item, size_t i, BatchRun& b, TargetWrites& w);
  // Asks the target about a write in doubt (or one to adopt); true: write it (again).
  Result<bool> CheckInDoubt(size_t ti, Item& item, size_t i, BatchRun& b, WriteOp& op);
  void ApplyResult(size_t ti, Item& item, size_t i, WriteResult& r, const Scope& scope, BatchRun& b,
                   TargetWrites& w);
  Status ConfirmBatch(std::vector<Item>& items, BatchRun& b);
  static void FailItem(Item& item, const TargetRun& t, std::string reason);
  Status DryRunBatch(std::vector<Item>& items);
  Result<Action> Plan(TargetRun& t, Item& item);
  // Writes `ops` (through Target::WriteMany), retrying transient failures
  // with backoff; results in the order of `ops`. `subjects` (aligned with
  // ops) names whom lookups made while writing are logged for.
  std::vector<WriteResult> WriteAll(TargetRun& t, const std::vector<WriteOp>& ops,
                                    const std::vector<const std::string*>& subjects);
  std::vector<WriteResult> WriteInOrder(TargetRun& t, const std::vector<WriteOp>& ops,
                                        const std::vector<const std::string*>& subjects);
  std::vector<WriteResult> WriteRounds(TargetRun& t, const std::vector<WriteOp>& ops,
                                       const std::vector<const std::string*>& subjects);
  // Logs that writes will be retried, then waits.
  void WarnRetry(const TargetRun& t, size_t records, const std::string& why, double wait);
  static WriteResult NoResult() {
    return WriteResult{Status::Internal("the target returned no result for this write"), {}};
  }
  // Keeps a record for a person (with this run's parameters for its retry);
  // `subject` (the person's reference, "" = none) gets an audit row.
  // Not counted here (sum_.quarantined, ReadBatch::quarantined: the caller's).
  void Quarantine(Findings& found, const std::string& stage, const std::string& target,
                  const std::string& position, const std::string& ref, const std::string& reason,
                  const std::string& record, const std::string& subject = "");
  Status FlushQuarantine();
  static Scope RecordScope(const Scope& base, Item& item) {
    Scope s = base;
    s.record = &item.record;
    s.captures = &item.captures;
    return s;
  }
  Scope RecordScope(Item& item) const { return RecordScope(base_scope_, item); }
  void Progress(bool final);

  // The audit log (real runs only): reads and lookups wait in
  // pending_.audit for the next state-store transaction; writes are logged
  // with their intents (ProcessBatch).
  Status StartAudit(const std::string& params_text);
  void AuditRead(Findings& found, RecipeTables::View& tables, const std::string& subject,
                 const std::string& position);
  // The lookups `tables` noted, as the subject's.
  static void AuditLookups(Findings& found, RecipeTables::View& tables, const std::string& subject);
  void AuditLookups(const std::string& subject) {  // the writing stage's
    AuditLookups(pending_, *write_tables_, subject);
  }
  Status FlushAudit(const std::string& time);  // inside a transaction
  Status FlushAuditNow();                      // in its own transaction
  const Recipe& recipe_;
  const RunOptions& opt_;
  Redactor redactor_;
  std::unique_ptr<RunLog> log_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<Journal> journal_;  // of store_
  std::future<Status> spill_;         // a spill in flight (StartSpill)
  std::unique_ptr<RecipeLock> lock_;  // released before the store closes
  std::unique_ptr<Pseudonymizer> pseudo_;
  Value params_, secrets_, run_, state_;
  Scope base_scope_;
  RunContext ctx_;
  std::unique_ptr<RecipeTables> tables_;
  std::unique_ptr<RecipeTables::View> write_tables_;  // the writing stage's
  std::vector<TargetRun> targets_;
  Findings pending_;  // the writing stage's, and those of the batches it took
  std::string run_params_json_, run_secrets_json_;  // kept with quarantined records
  std::unique_ptr<AuditWriter> audit_;
  std::string source_system_;
  std::atomic<int64_t> audit_no_subject_ = 0;
  std::atomic<int64_t> reading_ = 0;  // records the reading stage read and has not handed over
  bool audit_warned_ = false;
  RunSummary sum_;
  // Items the source was told are safe (Source::Acknowledge); kNoMoreAcks
  // after it failed to mark them.
  static constexpr int64_t kNoMoreAcks = -1;
  int64_t acknowledged_ = 0;
  std::optional<Value> watermark_;
  Clock::time_point start_, last_progress_;
  std::unique_ptr<RetryPolicy> retry_;
};

Result<RunSummary> Runner::RunRecords() {
  start_ = last_progress_ = Clock::now();
  log_ = std::make_unique<RunLog>(opt_.err ? opt_.err : &std::cerr, opt_.log_format, &redactor_);
  if (opt_.audit_retention_days < 1) {
    return Status::Invalid("the audit retention must be at least 1 day (got " +
                           std::to_string(opt_.audit_retention_days) + ")");
  }
  auto store = StateStore::Open(opt_.state_path, opt_.dry_run);
  if (!store.ok()) return store.status();
  store_ = std::move(store).value();
  journal_ = std::make_unique<Journal>(*store_);
  std::vector<StateStore::QuarantineRow> retry_rows;
  KEYONCE_RETURN_IF_ERROR(ResolveInputs(&retry_rows));
  if (!opt_.dry_run) KEYONCE_RETURN_IF_ERROR(TakeRecipe());
  pseudo_ = std::make_unique<Pseudonymizer>(store_->pseudonym_key());
  if (!opt_.dry_run) KEYONCE_RETURN_IF_ERROR(StartRun(log_->Redact(ToJson(params_))));
  KEYONCE_RETURN_IF_ERROR(SetUpScope());
  if (opt_.dry_run) {
    log_->Info("Dry run of " + recipe_.name +
               ": nothing is written and the journal is not touched.");
  } else {
    log_->Info("Run " + std::to_string(sum_.run) + " of " + recipe_.name + " started.");
  }
  std::vector<int64_t> retried;
  for (const auto& row : retry_rows) retried.push_back(row.id);
  auto source = OpenSource(std::move(retry_rows));
  if (!source.ok()) return Fail(source.status());
  bool interrupted = false;
  if (Status st = ReadAll(**source, retried, &interrupted); !st.ok()) return Fail(st);
  if (!opt_.dry_run) {
    if (Status st = FinishTargets(interrupted); !st.ok()) return Fail(st);
    if (!interrupted) {
      if (Status st = Acknowledge(**source, true); !st.ok()) return Fail(st);
    }
  }
  (*source)->Close();
  return Summarize(interrupted);
}

Status Runner::ResolveInputs(std::vector<StateStore::QuarantineRow>* retry_rows) {
  // A retry runs with the parameters of the run that read its records.
  std::map<std::string, std::string> raw_params = opt_.params;
  for (int64_t id : opt_.retry_quarantine) {
    auto row = store_->GetQuarantine(id);
    if (!row.ok()) return row.status();
    if (row->recipe != recipe_.name) {
      return Status::Invalid("quarantined record " + std::to_string(id) + " belongs to recipe " +
                             row->recipe);
    }
    retry_rows->push_back(std::move(row).value());
  }
  if (!retry_rows->empty()) {
    auto p = RetryParams(*retry_rows, opt_.params);
    if (!p.ok()) return p.status();
    raw_params = std::move(p).value();
  }
  auto params = ResolveParams(recipe_, raw_params);
  if (!params.ok()) return params.status();
  params_ = std::move(params).value();
  auto secrets = ResolveSecrets(recipe_, &redactor_);
  if (!secrets.ok()) return secrets.status();
  secrets_ = std::move(secrets).value();
  // What a quarantined record keeps of this run, for its retry.
  boost::json::object given;
  for (const auto& [k, v] : raw_params) given[k] = v;
  run_params_json_ = ToJson(given);
  boost::json::array names;
  for (const auto& sdef : recipe_.secrets) names.push_back(boost::json::string(sdef.name));
  run_secrets_json_ = names.empty() ? "" : ToJson(Value(std::move(names)));
  return Status::OK();
}

Status Runner::TakeRecipe() {
  // One run per recipe and state file, across processes.
  StateStore::LockOptions lo;
  lo.wait = opt_.wait;
  lo.stop = opt_.stop;
  lo.started_by = opt_.started_by.empty() ? LocalUserName() : opt_.started_by;
  lo.tell = [this](const std::string& m) { log_->Warn(m); };
  auto lock = store_->LockRecipe(recipe_.name, lo);
  if (!lock.ok()) return lock.status();
  lock_ = std::move(lock).value();
  // Holding the recipe, no other run of it can be going on: a run still
  // marked running was cut off (kill -9, the out-of-memory killer, a crash).
  auto cut = store_->AbandonRunsOf(
      recipe_.name,
      "this run ended without finishing (its process was killed, e.g. by kill -9 or the "
      "out-of-memory killer, or the machine stopped); the next run of the recipe completed "
      "its work");
  if (cut.ok()) {
    for (int64_t id : *cut) {
      log_->Warn("Run " + std::to_string(id) +
                 " ended without finishing; it is marked failed, and this run completes its "
                 "work.");
    }
  }
  return Status::OK();
}

void Runner::PruneRetained() {
  // Audit rows past their retention go first (at most once a day).
  int64_t pruned = 0;
  Status ps;
  if (auto tx = store_->Transact(); !tx.ok()) {
    ps = tx.status();
  } else {
    ps = PruneAuditIfDue(*store_, opt_.audit_retention_days, &pruned);
    if (ps.ok()) ps = tx->Commit();
  }
  if (!ps.ok()) log_->Warn("Pruning the audit log failed (the run goes on): " + ps.message());
  if (pruned) {
    log_->Info("Audit log: " + std::to_string(pruned) + " row(s) older than " +
               std::to_string(opt_.audit_retention_days) + " days deleted.");
  }
  // Evidence (screenshots, pages) holds personal data: kept as long as the audit log.
  int removed = PruneEvidence(EvidenceRoot(opt_.state_path), opt_.audit_retention_days);
  if (removed) {
    log_->Info("Evidence of " + std::to_string(removed) + " run(s) older than " +
               std::to_string(opt_.audit_retention_days) + " days deleted.");
  }
}

Status Runner::StartRun(const std::string& params_text) {
  PruneRetained();
  // The run and its audit row (who started it, with which parameters) together.
  auto tx = store_->Transact();
  if (!tx.ok()) return tx.status();
  auto run = store_->BeginRun(recipe_.name, params_text, opt_.trigger);
  if (!run.ok()) return run.status();
  sum_.run = *run;
  KEYONCE_RETURN_IF_ERROR(StartAudit(params_text));
  KEYONCE_RETURN_IF_ERROR(lock_->SetRun(sum_.run));
  KEYONCE_RETURN_IF_ERROR(tx->Commit());
  if (opt_.on_start) opt_.on_start(sum_.run);
  return Status::OK();
}

Status Runner::SetUpScope() {
  log_->set_context(recipe_.name, sum_.run);
  auto wm = store_->Watermark(recipe_.name);
  if (!wm.ok()) return wm.status();
  run_ = {{"id", sum_.run},
          {"recipe", recipe_.name},
          {"started_at", UtcTimestamp()},
          {"trigger", opt_.trigger}};
  boost::json::object state;
  state["watermark"] = wm->has_value() ? Value(**wm) : Value(nullptr);
  state_ = std::move(state);
  base_scope_.params = &params_;
  base_scope_.secrets = &secrets_;
  base_scope_.run = &run_;
  base_scope_.state = &state_;
  base_scope_.warnings = log_.get();
  base_scope_.max_text_bytes = recipe_.limits.template_bytes;
  ctx_.limits = recipe_.limits;
  ctx_.recipe = recipe_.name;
  ctx_.run_id = std::to_string(sum_.run);
  ctx_.state_id = store_->state_id();
  if (!opt_.dry_run) ctx_.evidence_dir = EvidenceDir(opt_.state_path, sum_.run).string();
  ctx_.scope = base_scope_;
  ctx_.log = log_.get();
  ctx_.dry_run = opt_.dry_run;
  tables_ = std::make_unique<RecipeTables>(recipe_, ctx_);
  if (audit_) tables_->EnableAudit();
  write_tables_ = std::make_unique<RecipeTables::View>(*tables_);
  base_scope_.tables = write_tables_.get();
  source_system_ = opt_.retry_quarantine.empty() ? "source:" + recipe_.source.type : "quarantine";
  return Status::OK();
}

Result<RunSummary> Runner::Fail(const Status& st) {
  const bool refused = st.code() == Status::Code::kRefused;
  sum_.status = refused ? "refused" : "failed";
  sum_.exit_code = refused ? kExitRefused : kExitFailed;
  sum_.error = log_->Redact(st.message());
  log_->Error((refused ? "The run was refused: " : "The run failed: ") + st.message());
  if (audit_) FlushAuditNow();  // what was read before the failure
  if (!opt_.dry_run && !pending_.quarantine.empty()) {
    // Records already found bad are kept for a person even though the run
    // failed (a rerun that meets them again moves them to its own run). If
    // the state file cannot take them, they are not counted as kept.
    if (Status qs = FlushQuarantine(); !qs.ok()) {
      log_->Error(std::to_string(pending_.quarantine.size()) +
                  " quarantined record(s) could not be kept (" + qs.message() +
                  "); the next run meets them again");
      sum_.quarantined -= static_cast<int64_t>(pending_.quarantine.size());
      pending_.quarantine.clear();
    }
  }
  for (auto& t : targets_) {
    if (t.target) t.target->Close(false);
  }
  sum_.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  if (!opt_.dry_run) store_->FinishRun(sum_.run, sum_.status, sum_.ToJson(), sum_.exit_code);
  return sum_;
}

Status Runner::PrepareTargets() {
  // Recover what a crash left pending, then open.
  for (const auto& def : recipe_.targets) {
    TargetRun t;
    t.def = &def;
    auto made = def.def->make_target(def.settings);
    if (!made.ok()) return made.status().Wrap("preparing target " + def.name);
    t.target = std::move(made).value();
    t.traits = t.target->Traits();
    if (t.traits.writes_in_order && !(audit_ && MayLookUp(def))) t.writes_per_call = 1024;
    auto id = journal_->TargetId(recipe_.name, def.name);
    if (!id.ok()) return id.status();
    t.id = *id;
    targets_.push_back(std::move(t));
  }
  if (!opt_.dry_run) {
    // Before anything is recovered or written: do the targets know this journal?
    for (auto& t : targets_) KEYONCE_RETURN_IF_ERROR(CheckOwnership(t));
    for (auto& t : targets_) {
      RunContext tctx = ctx_;
      tctx.target_name = t.def->name;
      KEYONCE_RETURN_IF_ERROR(Recover(t));
      Status st = t.target->Open(tctx);
      if (!st.ok()) return st.Wrap("opening target " + t.def->name);
      auto tok = t.target->Checkpoint();
      if (!tok.ok()) return tok.status().Wrap("reading the state of target " + t.def->name);
      t.token = *tok;
    }
    // What interrupted runs left joins the journal, then the key filters load.
    KEYONCE_RETURN_IF_ERROR(journal_->Spill());
  }
  for (auto& t : targets_) KEYONCE_RETURN_IF_ERROR(journal_->LoadFilter(t.id));
  return Status::OK();
}

Result<std::unique_ptr<Source>> Runner::OpenSource(
    std::vector<StateStore::QuarantineRow> retry_rows) {
  std::unique_ptr<Source> source;
  if (!opt_.retry_quarantine.empty()) {
    source = std::make_unique<QuarantineSource>(std::move(retry_rows));
  } else {
    auto made = recipe_.source.def->make_source(recipe_.source.settings);
    if (!made.ok()) return made.status().Wrap("preparing the source");
    source = std::move(made).value();
  }
  Status st = source->Open(ctx_);
  if (!st.ok()) return st.Wrap("opening the source");
  return source;
}

Status Runner::ReadAll(Source& source, const std::vector<int64_t>& retried, bool* interrupted) {
  Handoff<ReadBatch> handoff;
  ReadStage stage(recipe_, store_->pseudonym_key(), *tables_, base_scope_);
  std::thread reader([&] {
    try {
      ReadBatches(source, stage, handoff);
    } catch (...) {
      // Handing a batch over failed (out of memory): the writing stage
      // sees the handoff closed without a last batch.
      handoff.Close();
    }
  });
  // However the writing stage ends (an error, an exception), the reading
  // stage is told to stop and waited for before what it uses goes away.
  struct Join {
    Handoff<ReadBatch>& handoff;
    std::thread& reader;
    ReadStage& stage;
    void operator()() {
      handoff.Close();
      stage.Stop();
      if (reader.joinable()) reader.join();
    }
    ~Join() { (*this)(); }
  } join{handoff, reader, stage};
  // The targets get ready while the first batch is read: the reading stage
  // touches neither them nor the state store. If they cannot, what was read
  // is dropped unseen (the next run reads it again).
  if (Status st = PrepareTargets(); !st.ok()) {
    join();
    return st;
  }
  if (!opt_.dry_run) {
    for (int64_t id : retried) store_->SetQuarantineStatus(id, "retried");
  }
  Status st = WriteBatches(source, handoff, stage, interrupted);
  join();
  // Records read but never written: what reading them found (audit rows,
  // quarantined records) is still the run's.
  for (ReadBatch& rest : handoff.Drain()) TakeFindings(rest);
  return st;
}

void Runner::ReadBatches(Source& source, ReadStage& stage, Handoff<ReadBatch>& out) {
  bool heavy = false;  // the last batch was cut by its memory (limits.batch_bytes)
  for (bool last = false; !last;) {
    // After a batch of big records, the next is read once it is written:
    // memory holds one such batch, not two.
    stage.FreeSpent(heavy);
    ReadBatch b;
    try {
      last = FillBatch(source, stage, b, out, &heavy);
    } catch (...) {
      b.exception = std::current_exception();
      last = true;
    }
    b.last = last;
    if (!b.items.empty()) ++stage.handed;  // only this thread changes it
    if (!out.Put(std::move(b))) return;    // the writing stage ended
  }
}

bool Runner::FillBatch(Source& source, ReadStage& stage, ReadBatch& b,
                       const Handoff<ReadBatch>& out, bool* heavy) {
  *heavy = false;
  const auto batch_records = static_cast<size_t>(recipe_.batch_records);
  b.items.reserve(batch_records);
  // Two batches are in memory (one written, the next read), each within
  // half of limits.batch_bytes: wide or big records are held a few at a time.
  const size_t budget = std::max<size_t>(recipe_.limits.batch_bytes / 2, 1);
  size_t bytes = 0;  // the items' ItemMemory and the quarantined records
  for (;;) {
    if (out.closed()) return true;
    SourceItem si;
    si.storage = b.storage;
    auto more = source.Next(&si);
    if (!more.ok()) {
      b.error = more.status().Wrap("reading the source");
      return true;
    }
    if (*more) {
      ++b.read;
      ++reading_;
      const size_t quarantined = b.found.quarantine.size();
      const size_t record_bytes = RecordBytes(si.record);
      auto item = Admit(stage, si, record_bytes, b);
      if (!item.ok()) {
        b.error = item.status();
        return true;
      }
      if (*item) {
        b.items.push_back(std::move(**item));
        bytes += ItemMemory(b.items.back());
      } else {
        // A record not passed on still took its place in the batch's arena.
        bytes += HeapBytes(record_bytes);
        if (b.found.quarantine.size() > quarantined) {
          bytes += HeapBytes(b.found.quarantine.back().row.record.size());
        }
      }
    }
    const bool over_time =
        recipe_.limits.run_seconds > 0 &&
        Clock::now() - start_ >= std::chrono::seconds(recipe_.limits.run_seconds);
    if (!*more) return true;
    if ((opt_.stop && opt_.stop->load()) || over_time) {
      b.interrupted = true;
      b.over_time = over_time;
      return true;
    }
    // A batch is full; so is one of only filtered or quarantined records
    // after a while (their audit rows and records wait in memory).
    *heavy = bytes >= budget;
    if (b.items.size() >= batch_records || *heavy || b.found.quarantine.size() >= 1000 ||
        b.found.audit.size() >= 20000) {
      return false;
    }
  }
}

void Runner::TakeFindings(ReadBatch& b) {
  sum_.read += b.read;
  reading_ -= b.read;
  sum_.rejected += b.rejected;
  sum_.filtered += b.filtered;
  sum_.quarantined += b.quarantined;
  b.read = b.rejected = b.filtered = b.quarantined = 0;
  for (auto& a : b.found.audit) pending_.audit.push_back(std::move(a));
  for (auto& q : b.found.quarantine) pending_.quarantine.push_back(std::move(q));
  b.found = {};
}

Status Runner::WriteBatches(Source& source, Handoff<ReadBatch>& in, ReadStage& stage,
                            bool* interrupted) {
  for (;;) {
    std::optional<ReadBatch> b = in.Take(std::chrono::milliseconds(250));
    if (!b) {
      if (in.closed())
        return Status::Internal("the reading stage ended without handing over its last batch");
      Progress(false);  // still reading (a slow source): show how far it got
      continue;
    }
    TakeFindings(*b);
    if (b->exception) std::rethrow_exception(b->exception);
    KEYONCE_RETURN_IF_ERROR(b->error);
    if (!b->items.empty()) {
      KEYONCE_RETURN_IF_ERROR(opt_.dry_run ? DryRunBatch(b->items) : ProcessBatch(b->items));
      stage.Recycle(std::move(b->items));
    }
    KEYONCE_RETURN_IF_ERROR(Acknowledge(source, false));
    KEYONCE_RETURN_IF_ERROR(Housekeep());
    Progress(false);
    if (b->last) {
      if (b->interrupted) Stopped(*b, interrupted);
      return Status::OK();
    }
  }
}

void Runner::Stopped(const ReadBatch& last, bool* interrupted) {
  *interrupted = true;
  if (last.over_time) {
    sum_.error = "the run reached limits.run_seconds (" +
                 std::to_string(recipe_.limits.run_seconds) +
                 " s) and stopped after the batch in flight; the next run goes on from here";
    log_->Warn("The run reached limits.run_seconds (" + std::to_string(recipe_.limits.run_seconds) +
               " s): stopping after the batch in flight; the next run goes on from here.");
  } else {
    log_->Warn("Stopping on request after the batch in flight; the next run goes on from here.");
  }
}

void Runner::StartSpill() {
  if (opt_.dry_run || spill_.valid() || journal_->pending_intents() < opt_.spill_intents ||
      journal_->finished_intents() == 0) {
    return;
  }
  spill_ = std::async(std::launch::async, [this] { return journal_->Spill(); });
}

Status Runner::AwaitSpill() {
  if (!spill_.valid()) return Status::OK();
  return spill_.get();  // rethrows what the spill threw (out of memory)
}

Status Runner::Acknowledge(Source& source, bool end) {
  if (opt_.dry_run || acknowledged_ == kNoMoreAcks || (acknowledged_ == sum_.read && !end)) {
    return Status::OK();
  }
  for (const auto& t : targets_) {
    if (!t.deferred.empty()) return Status::OK();  // e.g. a file replaced at the run's end
  }
  // Nothing the items left is only in memory when the source marks them.
  KEYONCE_RETURN_IF_ERROR(AwaitSpill());
  KEYONCE_RETURN_IF_ERROR(FlushQuarantine());
  KEYONCE_RETURN_IF_ERROR(FlushAuditNow());
  Status st = source.Acknowledge(sum_.read, end);
  if (!st.ok()) {
    acknowledged_ = kNoMoreAcks;
    log_->Warn("The source could not mark what this run handled (" + st.message() +
               "); the next run reads it again, and the journal writes nothing twice.");
    return Status::OK();
  }
  acknowledged_ = sum_.read;
  return Status::OK();
}

Status Runner::Housekeep() {
  if (!opt_.dry_run && pending_.quarantine.size() >= 1000) {
    KEYONCE_RETURN_IF_ERROR(FlushQuarantine());
  }
  if (audit_ && pending_.audit.size() >= 20000) {  // e.g. a long run of filtered records
    KEYONCE_RETURN_IF_ERROR(FlushAuditNow());
  }
  return Status::OK();
}

std::optional<std::string> Runner::RejectReason(const SourceItem& si, size_t bytes) const {
  if (si.rejected) return si.reason;
  if (bytes > recipe_.limits.record_bytes) {
    return "the record is about " + std::to_string(bytes) +
           " bytes, more than limits.record_bytes (" + ByteSize(recipe_.limits.record_bytes) + ")";
  }
  if (static_cast<int64_t>(si.record.size()) > recipe_.limits.columns) {
    return "the record has " + std::to_string(si.record.size()) +
           " fields, more than limits.columns (" + std::to_string(recipe_.limits.columns) + ")";
  }
  return std::nullopt;
}

Result<std::optional<Item>> Runner::Admit(ReadStage& stage, SourceItem& si, size_t bytes,
                                          ReadBatch& b) {
  if (auto why = RejectReason(si, bytes)) {
    ++b.rejected;
    ++b.quarantined;
    // A record over the limits is not kept in the quarantine either: the
    // state file is no place for it.
    Quarantine(b.found, "source", "", si.position, "", *why, si.rejected ? si.raw : std::string());
    return std::optional<Item>();
  }
  // The record as read is kept for the quarantine: as the values the steps
  // replace (StepUndo), or as JSON when a step (map, drop) cannot be undone.
  const bool undo = stage.planner.Undoable();
  std::string source_json;
  if (!undo) source_json = stage.Json(si.record);
  // Made with the record, which keeps its memory (the batch's arena):
  // without naming it, Value would copy the record instead of moving it.
  boost::json::storage_ptr memory = si.record.storage();
  Item item(Value(std::move(si.record), std::move(memory)));
  item.source_json = std::move(source_json);
  item.position = std::move(si.position);
  if (audit_ && stage.tables.has_lookups()) stage.tables.TakeLookups();  // not this record's
  Scope ks = RecordScope(stage.scope, item);
  auto plan = stage.planner.Plan(&item.record, ks, undo ? &item.undo : nullptr);
  if (!plan.ok()) return plan.status();
  if (plan->kind == RecordPlan::Kind::kFiltered) {
    ++b.filtered;
    if (audit_) {
      auto key = recipe_.key.Evaluate(ks);
      AuditRead(b.found, stage.tables,
                RecordSubject(SubjectOf(recipe_), ks, key.ok() ? ToText(*key) : "", stage.pseudo),
                item.position);
    }
    return std::optional<Item>();
  }
  std::string subject;
  if (audit_) {
    subject = RecordSubject(SubjectOf(recipe_), ks, plan->key, stage.pseudo);
    AuditRead(b.found, stage.tables, subject, item.position);
  }
  if (plan->kind == RecordPlan::Kind::kQuarantined) {
    const bool step = std::string_view(plan->stage) == "step";
    // A reference helps a person find the record again, if the key can be had.
    std::string ref = step && !plan->key.empty()
                          ? Pseudonymizer::Reference(stage.pseudo.KeyHash(recipe_.name, plan->key))
                          : std::string();
    ++b.quarantined;
    Quarantine(b.found, step ? "step" : "key", "", item.position, ref, plan->reason,
               SourceJson(item), subject);
    return std::optional<Item>();
  }
  item.subject = std::move(subject);
  item.key = std::move(plan->key);
  item.key_hash = stage.pseudo.KeyHash(recipe_.name, item.key);
  item.ref = Pseudonymizer::Reference(item.key_hash);
  // Over the record's JSON, written into the stage's buffer: no string made per record.
  item.content = stage.hasher.Hash(stage.Json(item.record));
  if (recipe_.source.watermark) NoteWatermark(ks);
  return std::optional<Item>(std::move(item));
}

void Runner::NoteWatermark(const Scope& scope) {
  auto w = recipe_.source.watermark->Evaluate(scope);
  if (!w.ok() || w->is_null()) return;
  bool bigger = !watermark_;
  if (!bigger) {
    const Value& a = *w;
    const Value& b = *watermark_;
    if (a.is_number() && b.is_number()) {
      bigger = a.to_number<double>() > b.to_number<double>();
    } else {
      bigger = ToText(a) > ToText(b);
    }
  }
  // In the run's own memory: *w may be a copy of a field, made in the batch's arena.
  if (bigger) watermark_.emplace(*w, boost::json::storage_ptr());
}

Status Runner::FinishTargets(bool interrupted) {
  // Final commits: atomic file replacements become visible here.
  for (auto& t : targets_) {
    if (t.last_batch == 0) {  // nothing written: leave the target untouched
      t.target->Close(true);
      t.target.reset();
      continue;
    }
    auto cr = t.target->Commit(t.last_batch, true);
    if (!cr.ok()) return cr.status().Wrap("committing target " + t.def->name);
    auto tx = store_->Transact();
    if (!tx.ok()) return tx.status();
    if (cr->durable) {
      for (int64_t b : t.deferred) KEYONCE_RETURN_IF_ERROR(journal_->ConfirmBatch(b, cr->token));
      t.deferred.clear();
    }
    KEYONCE_RETURN_IF_ERROR(tx->Commit());
    t.target->Close(true);
    t.target.reset();
  }
  KEYONCE_RETURN_IF_ERROR(journal_->Spill());
  KEYONCE_RETURN_IF_ERROR(FlushQuarantine());
  KEYONCE_RETURN_IF_ERROR(FlushAuditNow());
  if (audit_no_subject_) {
    log_->Info("Audit log: " + std::to_string(audit_no_subject_) +
               " record(s) had no subject (the recipe's `subject`, else a CPR number in the "
               "key), so their operations are not in the audit log.");
  }
  if (watermark_ && !interrupted) {
    KEYONCE_RETURN_IF_ERROR(store_->SetWatermark(recipe_.name, ToText(*watermark_), sum_.run));
  }
  return Status::OK();
}

Result<RunSummary> Runner::Summarize(bool interrupted) {
  Progress(true);
  for (auto& t : targets_) sum_.targets.emplace_back(t.def->name, t.counts);
  sum_.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  if (opt_.dry_run) {
    sum_.status = "dry_run";
  } else if (interrupted) {
    sum_.status = "interrupted";
  } else {
    sum_.status = (sum_.quarantined || sum_.in_doubt) ? "completed_with_errors" : "completed";
  }
  sum_.exit_code = (sum_.quarantined || sum_.in_doubt) ? kExitQuarantined : kExitOk;
  if (interrupted) sum_.exit_code = kExitFailed;
  if (!opt_.dry_run) {
    Status fs = store_->FinishRun(sum_.run, sum_.status, sum_.ToJson(), sum_.exit_code);
    if (!fs.ok()) return fs;
  }
  return sum_;
}

namespace {

std::string CsvField(const std::string& v) {
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string o = "\"";
  for (char c : v) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

}  // namespace

void Runner::Notify(const RunSummary& s) {
  // Which of the `on` conditions this run meets.
  std::vector<std::string> met = {"always"};
  if (s.status == "failed") met.push_back("failed");
  if (s.status == "interrupted") met.push_back("interrupted");
  if (s.quarantined || s.in_doubt) met.push_back("quarantined");
  if (s.status == "completed") met.push_back("completed");
  std::vector<const NotifyDef*> due;
  for (const auto& n : recipe_.notify) {
    for (const auto& o : n.on) {
      if (std::find(met.begin(), met.end(), o) != met.end()) {
        due.push_back(&n);
        break;
      }
    }
  }
  if (due.empty()) return;
  std::filesystem::path qfile;
  Value record = NotificationRecord(s, &qfile);
  for (const NotifyDef* n : due) {
    Status st = SendNotification(*n, record, s.run);
    if (st.ok()) {
      log_->Info("Notification " + n->name + " sent.");
    } else {
      log_->Warn("Notification " + n->name + " was not sent: " + st.message());
    }
  }
  if (!qfile.empty()) {
    std::error_code ec;
    std::filesystem::remove(qfile, ec);
  }
}

Value Runner::NotificationRecord(const RunSummary& s, std::filesystem::path* qfile) {
  // The run's summary is the record; the open quarantine goes along as a CSV
  // of references and reasons (no field values).
  boost::json::object rec = boost::json::parse(s.ToJson()).as_object();
  rec["recipe"] = recipe_.name;
  int64_t written = 0, updated = 0, unchanged = 0;
  for (const auto& [name, c] : s.targets) {
    written += c.written;
    updated += c.updated;
    unchanged += c.unchanged;
  }
  rec["written"] = written;
  rec["updated"] = updated;
  rec["unchanged"] = unchanged;
  if (!rec.contains("error")) rec["error"] = "";
  rec["quarantine_file"] = "";
  if (store_ && (s.quarantined || s.in_doubt)) {
    auto rows = store_->ListQuarantine(recipe_.name, "open", 10000);
    if (rows.ok() && !rows->empty()) {
      *qfile = std::filesystem::absolute(opt_.state_path).parent_path() /
               ("keyonce-" + recipe_.name + "-run-" + std::to_string(s.run) + "-quarantine.csv");
      std::ofstream out(*qfile, std::ios::binary | std::ios::trunc);
      out << "id,reference,stage,target,position,reason,run\r\n";
      for (const auto& q : *rows) {
        out << q.id << ',' << CsvField(q.ref) << ',' << CsvField(q.stage) << ','
            << CsvField(q.target) << ',' << CsvField(q.position) << ','
            << CsvField(log_->Redact(q.reason)) << ',' << q.run << "\r\n";
      }
      if (out.good()) rec["quarantine_file"] = qfile->string();
    }
  }
  return Value(std::move(rec));
}

Status Runner::SendNotification(const NotifyDef& n, const Value& record, int64_t run) {
  auto made = n.def->make_target(n.settings);
  if (!made.ok()) return made.status().Wrap("preparing it");
  std::unique_ptr<Target> t = std::move(made).value();
  RunContext tctx = ctx_;
  tctx.target_name = n.name;
  Status st = t->Open(tctx);
  if (st.ok()) {
    Scope scope = base_scope_;
    scope.record = &record;
    WriteOp op;
    op.record = &record.as_object();
    op.scope = &scope;
    op.key = "run-" + std::to_string(run);
    op.batch = 1;
    WriteResult r = retry_->Run<WriteResult>(
        [&] { return t->Write(op); }, [](const WriteResult& w) { return w.status; },
        [&](const Status& failed, int attempts, double wait) {
          log_->Warn("Sending the notification '" + n.name + "' failed " +
                     retry_->AttemptText(attempts) + ": " + failed.message() + "; retrying in " +
                     std::to_string(static_cast<int>(wait * 1000)) + " ms.");
        },
        [](const WriteResult& w) { return w.retry_after_seconds; });
    st = r.status;
    if (st.ok()) {
      auto c = t->Commit(1, true);
      if (!c.ok()) st = c.status();
    }
  }
  t->Close(st.ok());
  return st;
}

Status Runner::Recover(TargetRun& t) {
  auto pending = journal_->PendingBatches(t.id);
  if (!pending.ok()) return pending.status();
  if (pending->empty()) return Status::OK();
  RunContext tctx = ctx_;
  tctx.target_name = t.def->name;
  const auto& first = pending->front();
  auto rr = t.target->Recover(tctx, static_cast<uint64_t>(first.id), first.token_before);
  if (!rr.ok()) return rr.status().Wrap("recovering target " + t.def->name);
  auto tx = store_->Transact();
  if (!tx.ok()) return tx.status();
  int applied = 0, rolled = 0, doubt = 0;
  for (const auto& b : *pending) {
    Journal::BatchState s;
    if (!rr->known) {
      s = Journal::BatchState::kInDoubt;
      ++doubt;
    } else if (static_cast<uint64_t>(b.id) <= rr->applied_through) {
      s = Journal::BatchState::kDone;
      ++applied;
    } else {
      s = Journal::BatchState::kRolledBack;
      ++rolled;
    }
    KEYONCE_RETURN_IF_ERROR(journal_->Settle(b.id, s));
    // The batch's writes did not happen: neither do their audit rows.
    if (audit_ && s == Journal::BatchState::kRolledBack) {
      KEYONCE_RETURN_IF_ERROR(audit_->DiscardBatch(b.id));
    }
  }
  KEYONCE_RETURN_IF_ERROR(tx->Commit());
  log_->Warn("Target " + t.def->name + " had " + std::to_string(pending->size()) +
             " batch(es) from an interrupted run: " + std::to_string(applied) + " arrived, " +
             std::to_string(rolled) + " did not and will be written again, " +
             std::to_string(doubt) + " in doubt.");
  return Status::OK();
}

Status Runner::CheckOwnership(TargetRun& t) {
  RunContext tctx = ctx_;
  tctx.target_name = t.def->name;
  auto last = journal_->LastBatch(t.id);
  if (!last.ok()) return last.status();
  auto mark = t.target->Mark(tctx);
  if (!mark.ok()) return mark.status().Wrap("opening target " + t.def->name);
  const std::string& ours = store_->state_id();
  std::string problem;
  if (mark->has_value()) {
    const TargetMark& m = **mark;
    if (!m.state_id.empty() && m.state_id != ours) {
      problem = "target " + t.def->name + " was last written by another state file (state id " +
                m.state_id.substr(0, 12) + "…, batch " + std::to_string(m.batch) +
                "); this one is " + ours.substr(0, 12) + "…";
    } else if (m.batch > static_cast<uint64_t>(*last)) {
      problem = "target " + t.def->name + " holds batch " + std::to_string(m.batch) +
                ", but the journal in this state file knows " +
                (*last ? "it only up to batch " + std::to_string(*last) : "no batch of it") +
                ": the state file is older than the target (restored from a backup, or copied "
                "without its -wal file?)";
    }
  } else if (*last == 0 && !t.traits.idempotent) {
    // Never written by this journal, and no mark to tell by: ask the target.
    if (opt_.adopt) {
      t.adopting = true;
    } else {
      t.probe = 3;
    }
  }
  if (problem.empty()) return Status::OK();
  if (opt_.adopt) {
    t.adopting = true;
    t.probe = 0;
    log_->Warn("Adopting: " + problem +
               ". With --adopt this journal takes the target over: records it does not know are "
               "checked at the target first where it can tell, and written otherwise.");
    return Status::OK();
  }
  return Status::Refused(problem +
                         ". Running on would write records again that the target "
                         "already holds. Use the state file that belongs to the target "
                         "(restore it from a backup), or, if you mean this state file "
                         "to take the target over, run with --adopt (see `keyonce state "
                         "check` and docs/reliability.md); nothing was written.");
}

Status Runner::Probe(TargetRun& t, std::vector<Item>& items) {
  for (Item& item : items) {
    if (t.probe <= 0) break;
    auto e = journal_->Lookup(t.id, item.key_hash);
    if (!e.ok()) return e.status();
    if (e->found) continue;
    Scope scope = RecordScope(item);
    if (RecordPlanner::ForTarget(*t.def, scope).kind != TargetPlan::Kind::kTakes) continue;
    WriteOp op;
    op.record = &item.record.as_object();
    op.scope = &scope;
    op.key = item.key;
    op.ref = item.ref;
    auto c = t.target->Check(op);
    if (audit_) AuditLookups(item.subject);
    --t.probe;
    if (!c.ok()) continue;  // the write itself will say what is wrong
    if (c->outcome == CheckResult::Outcome::kUnsupported) {
      t.probe = 0;
      break;
    }
    if (c->outcome == CheckResult::Outcome::kExists) {
      return Status::Refused(
          "target " + t.def->name + " already holds record " + item.ref + " (" + item.position +
          "), which the journal in this state file never wrote: the journal is not the one that "
          "wrote this target (a new or replaced state file?). Use the state file that belongs to "
          "the target, or run with --adopt to take over what it holds (records found there are "
          "recorded, not written again); nothing was written.");
    }
  }
  return Status::OK();
}

Result<Action> Runner::Plan(TargetRun& t, Item& item) {
  auto e = journal_->Lookup(t.id, item.key_hash);
  if (!e.ok()) return e.status();
  if (!e->found) return t.adopting && t.adopt_asks ? Action::kAdopt : Action::kInsert;
  if (!e->captures.empty()) item.captures.as_object()[t.def->name] = ParseCaptures(e->captures);
  if (e->pending) {
    // The same key twice in this run.
    if (e->pending_hash == item.content) return Action::kUnchanged;
    return t.def->on_change == OnChange::kSkip     ? Action::kUnchanged
           : t.def->on_change == OnChange::kUpdate ? Action::kUpdate
                                                   : Action::kInsert;
  }
  // A person retrying a record in doubt has checked the target: write it.
  if (e->in_doubt) return opt_.retry_quarantine.empty() ? Action::kCheck : Action::kInsert;
  if (!e->written) return Action::kInsert;
  if (*e->written == item.content) {
    // Written before, but its captures were lost in a crash: ask the target again.
    if (!t.def->capture.empty() && e->captures.empty()) return Action::kCheck;
    return Action::kUnchanged;
  }
  switch (t.def->on_change) {
    case OnChange::kSkip:
      return Action::kUnchanged;
    case OnChange::kUpdate:
      return Action::kUpdate;
    case OnChange::kInsertNew:
      return Action::kInsert;
  }
  return Action::kInsert;
}

std::vector<WriteResult> Runner::WriteAll(TargetRun& t, const std::vector<WriteOp>& ops,
                                          const std::vector<const std::string*>& subjects) {
  return t.traits.concurrent ? WriteRounds(t, ops, subjects) : WriteInOrder(t, ops, subjects);
}

void Runner::WarnRetry(const TargetRun& t, size_t records, const std::string& why, double wait) {
  log_->Warn("Writing to " + t.def->name + " failed for " + std::to_string(records) +
             (records == 1 ? " record: " : " records, e.g.: ") + why + "; retrying in " +
             std::to_string(static_cast<int>(wait * 1000)) + " ms.");
  std::this_thread::sleep_for(std::chrono::duration<double>(wait));
}

std::vector<WriteResult> Runner::WriteInOrder(TargetRun& t, const std::vector<WriteOp>& ops,
                                              const std::vector<const std::string*>& subjects) {
  // In order: a retried record keeps its place. A call takes one write, or
  // a run of them for a target that returns right after a failed write
  // (writes_per_call), so everything after the failure is tried again after it.
  std::vector<WriteResult> results(ops.size());
  std::vector<WriteOp> call;
  auto write = [&](size_t k, size_t n) {
    call.assign(ops.begin() + static_cast<std::ptrdiff_t>(k),
                ops.begin() + static_cast<std::ptrdiff_t>(k + n));
    std::vector<WriteResult> got = t.target->WriteMany(call);
    // Lookups made by the target's templates belong to the record written.
    if (audit_ && write_tables_->has_lookups() && k < subjects.size()) AuditLookups(*subjects[k]);
    if (got.empty()) got.push_back(NoResult());
    if (got.size() > n) got.resize(n);
    return got;
  };
  for (size_t k = 0; k < ops.size();) {
    std::vector<WriteResult> got = write(k, std::min(t.writes_per_call, ops.size() - k));
    const size_t last = k + got.size() - 1;  // the one that failed, or the run's end
    for (size_t j = k; j < last; ++j) results[j] = std::move(got[j - k]);
    WriteResult r = std::move(got.back());
    for (int attempts = 1; retry_->Retries(r.status, attempts); ++attempts) {
      WarnRetry(t, 1, r.status.message() + " " + retry_->AttemptText(attempts),
                retry_->Wait(attempts, r.retry_after_seconds));
      r = std::move(write(last, 1).front());
    }
    results[last] = std::move(r);
    k = last + 1;
  }
  return results;
}

std::vector<WriteResult> Runner::WriteRounds(TargetRun& t, const std::vector<WriteOp>& ops,
                                             const std::vector<const std::string*>& subjects) {
  std::vector<WriteResult> results(ops.size());
  std::vector<int> attempts(ops.size(), 0);
  std::vector<size_t> todo(ops.size());
  for (size_t k = 0; k < ops.size(); ++k) todo[k] = k;
  while (!todo.empty()) {
    // One call never holds the same key twice (its writes may run at the
    // same time); a key's second write waits for the next round.
    std::vector<size_t> round, later;
    std::unordered_set<std::string_view> keys;
    for (size_t k : todo) (keys.insert(ops[k].key).second ? round : later).push_back(k);
    std::vector<WriteOp> call;
    call.reserve(round.size());
    for (size_t k : round) call.push_back(ops[k]);
    std::vector<WriteResult> got = t.target->WriteMany(call);
    if (audit_ && write_tables_->has_lookups() && round.size() == 1 && round[0] < subjects.size()) {
      AuditLookups(*subjects[round[0]]);
    } else if (audit_ && write_tables_->has_lookups()) {
      // Lookups made by the target's templates cannot be told apart when
      // several writes were in flight.
      write_tables_->TakeLookups();
      if (!audit_warned_) {
        audit_warned_ = true;
        log_->Warn("Lookups made while writing to " + t.def->name +
                   " (several writes in flight) cannot be attributed to a person in the audit "
                   "log; do the lookup in a `lookup` or `set` step instead.");
      }
    }
    double wait = 0;
    std::string why;
    const size_t deferred = later.size();
    for (size_t j = 0; j < round.size(); ++j) {
      size_t k = round[j];
      WriteResult r = j < got.size() ? std::move(got[j]) : NoResult();
      ++attempts[k];
      if (retry_->Retries(r.status, attempts[k])) {
        wait = std::max(wait, retry_->Wait(attempts[k], r.retry_after_seconds));
        if (why.empty()) why = r.status.message() + " " + retry_->AttemptText(attempts[k]);
        later.push_back(k);
        continue;
      }
      results[k] = std::move(r);
    }
    if (!why.empty()) WarnRetry(t, later.size() - deferred, why, wait);
    // Retried writes go back to their place (only needed when there are some).
    if (later.size() != deferred) std::sort(later.begin(), later.end());
    todo = std::move(later);
  }
  return results;
}

Status Runner::ProcessBatch(std::vector<Item>& items) {
  for (auto& t : targets_) KEYONCE_RETURN_IF_ERROR(Probe(t, items));
  BatchRun b(targets_.size(), items.size());
  KEYONCE_RETURN_IF_ERROR(JournalIntents(items, b));
  // The spill of the batches before this one, while this one is written.
  // However this ends (an error, an exception), the spill is over before
  // anything else uses the state store.
  StartSpill();
  struct Await {
    std::future<Status>& spill;
    ~Await() {
      if (spill.valid()) spill.wait();
    }
  } await{spill_};
  for (size_t ti = 0; ti < targets_.size(); ++ti) {
    KEYONCE_RETURN_IF_ERROR(WriteTarget(ti, items, b));
  }
  KEYONCE_RETURN_IF_ERROR(ConfirmBatch(items, b));
  for (auto& item : items) {
    if (!item.failed || item.stopped) continue;
    if (item.quarantined_in_doubt) ++sum_.in_doubt;
    ++sum_.quarantined;
    Quarantine(pending_, item.quarantined_in_doubt ? "in_doubt" : "target", item.fail_target,
               item.position, item.ref, item.fail_reason, SourceJson(item), item.subject);
  }
  return b.stop;
}

Status Runner::EnsureBatch(BatchRun& b, size_t ti) {
  if (b.batch_ids[ti]) return Status::OK();
  auto id = journal_->NewBatch(targets_[ti].id, sum_.run, targets_[ti].token);
  if (!id.ok()) return id.status();
  b.batch_ids[ti] = *id;
  return Status::OK();
}

Status Runner::IntendWrite(BatchRun& b, size_t ti, Item& item, size_t i, Action a, bool own_row) {
  KEYONCE_RETURN_IF_ERROR(EnsureBatch(b, ti));
  const TargetRun& t = targets_[ti];
  KEYONCE_RETURN_IF_ERROR(journal_->Intend(t.id, item.key_hash, item.content, b.batch_ids[ti]));
  // The audit row goes with the intent (taken back if the write does not
  // happen; tied to its batch for a crash).
  if (!audit_ || item.subject.empty()) return Status::OK();
  return b.audit.Add(*audit_, b.audit_time, *t.def, b.batch_ids[ti], ti, i, a == Action::kUpdate,
                     item.subject, own_row);
}

Status Runner::JournalIntents(std::vector<Item>& items, BatchRun& b) {
  // Every target's intents in one transaction. Visiting the journal in key
  // order touches each of its pages once per batch instead of at random.
  std::vector<size_t> order(items.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t x, size_t y) { return items[x].key_hash < items[y].key_hash; });
  auto tx = store_->Transact();
  if (!tx.ok()) return tx.status();
  if (audit_) {
    b.audit_time = AuditTime();
    KEYONCE_RETURN_IF_ERROR(FlushAudit(b.audit_time));  // this batch's reads and lookups
  }
  for (size_t ti = 0; ti < targets_.size(); ++ti) {
    for (size_t i : order) {
      auto a = Plan(targets_[ti], items[i]);
      if (!a.ok()) return a.status();
      b.actions[ti][i] = *a;
      if (*a == Action::kInsert || *a == Action::kUpdate) {
        KEYONCE_RETURN_IF_ERROR(IntendWrite(b, ti, items[i], i, *a, false));
      }
    }
  }
  if (audit_) KEYONCE_RETURN_IF_ERROR(b.audit.Save(*audit_, b.audit_time));
  return tx->Commit();
}

void Runner::FailItem(Item& item, const TargetRun& t, std::string reason) {
  item.failed = true;
  item.fail_target = t.def->name;
  item.fail_reason = std::move(reason);
}

Result<bool> Runner::PrepareWrite(size_t ti, Item& item, size_t i, BatchRun& b, TargetWrites& w) {
  TargetRun& t = targets_[ti];
  Action a = b.actions[ti][i];
  const bool intends = a == Action::kInsert || a == Action::kUpdate;
  if (item.failed) return intends;  // an earlier target failed it: its intent goes
  if (a == Action::kUnchanged) {
    ++t.counts.unchanged;
    return false;
  }
  auto scope = std::make_unique<Scope>(RecordScope(item));
  if (t.def->when) {
    TargetPlan tp = RecordPlanner::ForTarget(*t.def, *scope);
    if (audit_) AuditLookups(item.subject);
    if (tp.kind == TargetPlan::Kind::kQuarantined) FailItem(item, t, std::move(tp.reason));
    if (tp.kind == TargetPlan::Kind::kNotApplicable) ++t.counts.not_applicable;
    if (tp.kind != TargetPlan::Kind::kTakes) return intends;
  }
  WriteOp op;
  op.kind = a == Action::kUpdate ? WriteOp::Kind::kUpdate : WriteOp::Kind::kInsert;
  op.record = &item.record.as_object();
  op.scope = scope.get();
  op.key = item.key;
  op.ref = item.ref;
  op.wants_reply = !t.def->capture.empty();
  if (a == Action::kCheck || a == Action::kAdopt) {
    auto write = CheckInDoubt(ti, item, i, b, op);
    if (!write.ok()) return write.status();
    if (!*write) return false;
  }
  op.batch = static_cast<uint64_t>(b.batch_ids[ti]);
  w.ops.push_back(std::move(op));
  w.items.push_back(i);
  w.scopes.push_back(std::move(scope));
  return false;
}

Result<bool> Runner::CheckInDoubt(size_t ti, Item& item, size_t i, BatchRun& b, WriteOp& op) {
  KEYONCE_RETURN_IF_ERROR(AwaitSpill());
  TargetRun& t = targets_[ti];
  const bool adopt = b.actions[ti][i] == Action::kAdopt;
  // A system that is briefly away is asked again, like a write.
  auto c = retry_->Run<Result<CheckResult>>(
      [&] { return t.target->Check(op); }, [](const Result<CheckResult>& r) { return r.status(); },
      [&](const Status& failed, int attempts, double wait) {
        log_->Warn("Checking a write in doubt at " + t.def->name + " failed " +
                   retry_->AttemptText(attempts) + ": " + failed.message() + "; retrying in " +
                   std::to_string(static_cast<int>(wait * 1000)) + " ms.");
      });
  if (audit_) AuditLookups(item.subject);
  if (!c.ok()) {
    FailItem(item, t, "checking a write in doubt: " + c.status().message());
    return false;
  }
  if (c->outcome == CheckResult::Outcome::kExists) {
    if (!t.def->capture.empty()) {
      item.captures.as_object()[t.def->name] = EvaluateCaptures(*t.def, *op.scope, c->reply);
    }
    b.confirmed.emplace_back(ti, i);
    ++t.counts.unchanged;
    return false;
  }
  // A target that cannot tell is written from the next batch on without
  // asking (asking costs a transaction per record).
  if (adopt && c->outcome == CheckResult::Outcome::kUnsupported) t.adopt_asks = false;
  const InDoubt policy = t.def->in_doubt;
  bool rewrite = c->outcome == CheckResult::Outcome::kAbsent || policy == InDoubt::kRewrite ||
                 (policy == InDoubt::kCheck && t.traits.idempotent) || adopt;
  if (!rewrite) {
    FailItem(item, t,
             "a write to " + t.def->name +
                 " was interrupted by a crash and the target cannot tell whether it arrived; "
                 "check the target, then retry or dismiss this record");
    item.quarantined_in_doubt = true;
    ++t.counts.in_doubt;
    return false;
  }
  // Rewrite: journal the intent first, in its own transaction.
  auto tx = store_->Transact();
  if (!tx.ok()) return tx.status();
  KEYONCE_RETURN_IF_ERROR(IntendWrite(b, ti, item, i, Action::kInsert, true));
  KEYONCE_RETURN_IF_ERROR(tx->Commit());
  b.actions[ti][i] = Action::kInsert;
  return true;
}

void Runner::ApplyResult(size_t ti, Item& item, size_t i, WriteResult& r, const Scope& scope,
                         BatchRun& b, TargetWrites& w) {
  TargetRun& t = targets_[ti];
  if (r.status.ok()) {
    ++(b.actions[ti][i] == Action::kUpdate ? t.counts.updated : t.counts.written);
    if (!t.def->capture.empty()) {
      item.captures.as_object()[t.def->name] =
          EvaluateCaptures(*t.def, scope, r.reply, log_.get(), item.ref);
      b.capture_saves.emplace_back(ti, i);
    }
    return;
  }
  std::string reason = "writing to " + t.def->name + ": " + r.status.message();
  if (!r.evidence.empty()) {
    reason += " (saved for a person:";
    for (const std::string& f : r.evidence) reason += " " + f;
    reason += ")";
  }
  FailItem(item, t, std::move(reason));
  if (r.stop_run) {
    // Not the record's fault: it is written by the next run.
    item.stopped = true;
    if (b.stop.ok()) b.stop = r.status.Wrap("writing to " + t.def->name);
    w.forget.push_back(i);
  } else if (r.in_doubt) {
    item.quarantined_in_doubt = true;
    item.fail_reason +=
        "; the write may have arrived, so it is not repeated: check the target, then retry or "
        "dismiss this record";
    ++t.counts.in_doubt;
    w.doubt.push_back(i);
  } else {
    ++t.counts.failed;
    w.forget.push_back(i);
  }
}

Status Runner::WriteTarget(size_t ti, std::vector<Item>& items, BatchRun& b) {
  TargetRun& t = targets_[ti];
  TargetWrites w;
  w.ops.reserve(items.size());
  w.items.reserve(items.size());
  w.scopes.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    auto forget = PrepareWrite(ti, items[i], i, b, w);
    if (!forget.ok()) return forget.status();
    if (*forget) w.forget.push_back(i);
  }
  // The writes themselves: the target may keep several in flight.
  std::vector<const std::string*> subjects;
  if (audit_) {
    subjects.reserve(w.ops.size());
    for (size_t i : w.items) subjects.push_back(&items[i].subject);
  }
  std::vector<WriteResult> results = WriteAll(t, w.ops, subjects);
  for (size_t k = 0; k < w.ops.size(); ++k) {
    ApplyResult(ti, items[w.items[k]], w.items[k], results[k], *w.scopes[k], b, w);
  }
  // Writes that did not happen must not be confirmed with the batch; those
  // that may have happened stay in doubt (their audit rows stay too).
  if (!w.forget.empty() || !w.doubt.empty()) {
    KEYONCE_RETURN_IF_ERROR(AwaitSpill());
    auto tx = store_->Transact();
    if (!tx.ok()) return tx.status();
    for (size_t i : w.forget) {
      KEYONCE_RETURN_IF_ERROR(journal_->Forget(t.id, items[i].key_hash));
      if (audit_) KEYONCE_RETURN_IF_ERROR(b.audit.Remove(*audit_, ti, i));
    }
    if (audit_) KEYONCE_RETURN_IF_ERROR(b.audit.Save(*audit_, b.audit_time));
    for (size_t i : w.doubt) {
      KEYONCE_RETURN_IF_ERROR(journal_->MarkInDoubt(t.id, items[i].key_hash, sum_.run));
    }
    KEYONCE_RETURN_IF_ERROR(tx->Commit());
  }
  if (!b.batch_ids[ti]) return Status::OK();
  auto cr = t.target->Commit(static_cast<uint64_t>(b.batch_ids[ti]), false);
  if (!cr.ok()) return cr.status().Wrap("committing target " + t.def->name);
  t.last_batch = b.batch_ids[ti];
  if (cr->durable) {
    t.token = cr->token;
    b.batch_ids[ti] = -b.batch_ids[ti];  // marks "confirm now"
  } else {
    t.deferred.push_back(b.batch_ids[ti]);
  }
  return Status::OK();
}

Status Runner::ConfirmBatch(std::vector<Item>& items, BatchRun& b) {
  KEYONCE_RETURN_IF_ERROR(AwaitSpill());
  // Writes confirmed by Check must be durable; batch marks need not be.
  auto tx = store_->Transact(!b.confirmed.empty());
  if (!tx.ok()) return tx.status();
  if (audit_ && !pending_.audit.empty()) KEYONCE_RETURN_IF_ERROR(FlushAudit(AuditTime()));
  for (size_t ti = 0; ti < targets_.size(); ++ti) {
    if (b.batch_ids[ti] < 0) {
      KEYONCE_RETURN_IF_ERROR(journal_->ConfirmBatch(-b.batch_ids[ti], targets_[ti].token));
    }
  }
  auto captures_of = [&](size_t ti, size_t i) -> std::string {
    const auto& caps = items[i].captures.as_object();
    auto it = caps.find(targets_[ti].def->name);
    return it != caps.end() ? ToJson(it->value()) : "";
  };
  for (auto [ti, i] : b.capture_saves) {
    if (items[i].failed && items[i].fail_target == targets_[ti].def->name) continue;
    std::string caps = captures_of(ti, i);
    if (!caps.empty()) {
      KEYONCE_RETURN_IF_ERROR(journal_->SetCaptures(targets_[ti].id, items[i].key_hash, caps));
    }
  }
  for (auto [ti, i] : b.confirmed) {
    KEYONCE_RETURN_IF_ERROR(journal_->ConfirmWrite(targets_[ti].id, items[i].key_hash,
                                                   items[i].content, captures_of(ti, i), sum_.run));
  }
  return tx->Commit();
}

Status Runner::DryRunBatch(std::vector<Item>& items) {
  std::ostream& out = opt_.out ? *opt_.out : std::cout;
  for (auto& item : items) {
    for (auto& t : targets_) {
      auto a = Plan(t, item);
      if (!a.ok()) return a.status();
      if (*a == Action::kUnchanged) {
        ++t.counts.unchanged;
        continue;
      }
      Scope scope = RecordScope(item);
      TargetPlan tp = RecordPlanner::ForTarget(*t.def, scope);
      if (tp.kind == TargetPlan::Kind::kNotApplicable) {
        ++t.counts.not_applicable;
        continue;
      }
      if (tp.kind == TargetPlan::Kind::kQuarantined) {
        item.failed = true;
        log_->Warn("Record " + item.ref + " (" + item.position + ") would fail at " + t.def->name +
                   ": " + tp.reason);
        ++t.counts.failed;
        break;
      }
      WriteOp op;
      op.kind = *a == Action::kUpdate ? WriteOp::Kind::kUpdate : WriteOp::Kind::kInsert;
      op.record = &item.record.as_object();
      op.scope = &scope;
      op.key = item.key;
      op.ref = item.ref;
      auto rendered = t.target->Render(op);
      std::string what = *a == Action::kUpdate  ? "update"
                         : *a == Action::kCheck ? "check"
                                                : "insert";
      if (!rendered.ok()) {
        item.failed = true;
        log_->Warn("Record " + item.ref + " (" + item.position + ") would fail at " + t.def->name +
                   ": " + rendered.status().message());
        ++t.counts.failed;
        break;
      }
      if (*a == Action::kUpdate)
        ++t.counts.updated;
      else
        ++t.counts.written;
      if (opt_.log_format == LogFormat::kJson) {
        boost::json::object o{{"target", t.def->name},
                              {"op", what},
                              {"ref", item.ref},
                              {"position", item.position},
                              {"write", *rendered}};
        out << log_->Redact(ToJson(o)) << "\n";
      } else {
        out << t.def->name << " " << what << " " << item.ref << " (" << item.position
            << "): " << log_->Redact(ToJson(*rendered)) << "\n";
      }
    }
    if (item.failed) ++sum_.quarantined;
  }
  return Status::OK();
}

void Runner::Quarantine(Findings& found, const std::string& stage, const std::string& target,
                        const std::string& position, const std::string& ref,
                        const std::string& reason, const std::string& record,
                        const std::string& subject) {
  std::string where = position.empty() ? "" : " (" + position + ")";
  log_->Warn("Quarantined " + (ref.empty() ? std::string("a record") : "record " + ref) + where +
             ": " + reason);
  if (opt_.dry_run) return;
  PendingQuarantine q;
  q.row.recipe = recipe_.name;
  q.row.run = sum_.run;
  q.row.ref = ref;
  q.row.stage = stage;
  q.row.target = target;
  q.row.position = position;
  q.row.reason = log_->Redact(reason);
  q.row.record = record;
  q.row.params = run_params_json_;
  q.row.secrets = run_secrets_json_;
  q.subject = subject;
  found.quarantine.push_back(std::move(q));
}

Status Runner::FlushQuarantine() {
  if (pending_.quarantine.empty()) return Status::OK();
  auto tx = store_->Transact();
  if (!tx.ok()) return tx.status();
  const std::string time = audit_ ? AuditTime() : std::string();
  if (audit_) KEYONCE_RETURN_IF_ERROR(FlushAudit(time));
  for (const auto& q : pending_.quarantine) {
    auto id = store_->AddQuarantine(q.row);
    if (!id.ok()) return id.status();
    // The quarantine keeps the person's record: the audit log says so, under
    // the record's subject (else the CPR number it holds, as the inbox's own
    // audit rows find it).
    const std::string subject =
        !audit_ || !q.subject.empty() ? q.subject : StoredRecordSubject(*pseudo_, q.row.record);
    if (!subject.empty()) {
      std::string detail = "quarantined record " + std::to_string(*id) +
                           (q.row.ref.empty() ? "" : " (" + q.row.ref + ")") + " at " +
                           q.row.stage + (q.row.target.empty() ? "" : " " + q.row.target);
      auto a = audit_->Append(time, "keyonce", kAuditQuarantine, subject, detail);
      if (!a.ok()) return a.status();
    }
  }
  KEYONCE_RETURN_IF_ERROR(tx->Commit());
  pending_.quarantine.clear();
  return Status::OK();
}

namespace {
// At most `max` bytes, cut at a character boundary.
std::string Shorten(std::string text, size_t max) {
  if (text.size() <= max) return text;
  size_t n = max - 3;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  text.resize(n);
  return text + "...";
}
}  // namespace

Status Runner::StartAudit(const std::string& params_text) {
  std::string actor = opt_.started_by.empty() ? LocalUserName() : opt_.started_by;
  auto w = AuditWriter::Open(*store_, opt_.robot, std::move(actor), recipe_.name, sum_.run);
  if (!w.ok()) return w.status();
  audit_ = std::move(w).value();
  // A run started for one person (a CPR number among its parameters) is about them.
  std::string subject;
  for (const auto& [name, raw] : opt_.params) {
    if (auto cpr = NormalizeSubjectCpr(raw)) {
      subject = SubjectReference(*pseudo_, *cpr);
      break;
    }
  }
  // params_text is already masked (CPR numbers, secrets).
  std::string detail = Shorten("trigger: " + opt_.trigger + "; params: " + params_text, 500);
  return audit_->Append(AuditTime(), "keyonce", kAuditStartRun, subject, MaskCpr(detail)).status();
}

void Runner::AuditRead(Findings& found, RecipeTables::View& tables, const std::string& subject,
                       const std::string& position) {
  if (subject.empty()) {
    ++audit_no_subject_;
    if (tables.has_lookups()) tables.TakeLookups();
    return;
  }
  found.audit.push_back({&source_system_, kAuditRead, subject, MaskCpr(position)});
  AuditLookups(found, tables, subject);
}

void Runner::AuditLookups(Findings& found, RecipeTables::View& tables, const std::string& subject) {
  if (!tables.has_lookups()) return;
  for (const auto& n : tables.TakeLookups()) {
    if (!subject.empty()) found.audit.push_back({n.table, kAuditLookup, subject, *n.detail});
  }
}

Status Runner::FlushAudit(const std::string& time) {
  // One chunk per system and operation (the source's reads, each table's lookups).
  std::vector<AuditChunk> chunks;
  for (const auto& a : pending_.audit) {
    auto c = std::find_if(chunks.begin(), chunks.end(), [&](const AuditChunk& c) {
      return c.system() == *a.system && c.operation() == a.operation;
    });
    if (c == chunks.end()) c = chunks.emplace(chunks.end(), *a.system, a.operation);
    if (c->Add(a.subject, a.detail) < 0) {
      auto id = audit_->Append(time, *a.system, a.operation, a.subject, a.detail);
      if (!id.ok()) return id.status();
    }
  }
  for (AuditChunk& c : chunks) KEYONCE_RETURN_IF_ERROR(audit_->Save(time, c));
  pending_.audit.clear();
  return Status::OK();
}

Status Runner::FlushAuditNow() {
  if (!audit_ || pending_.audit.empty()) return Status::OK();
  auto tx = store_->Transact();
  if (!tx.ok()) return tx.status();
  KEYONCE_RETURN_IF_ERROR(FlushAudit(AuditTime()));
  return tx->Commit();
}

void Runner::Progress(bool final) {
  if (opt_.on_progress && !final) {
    RunSummary snapshot = sum_;
    snapshot.read += reading_;
    snapshot.status = "running";
    snapshot.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    for (const auto& t : targets_) snapshot.targets.emplace_back(t.def->name, t.counts);
    opt_.on_progress(snapshot);
  }
  if (!opt_.progress) return;
  auto now = Clock::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  if (!final && (elapsed < 1.0 || now - last_progress_ < std::chrono::milliseconds(250))) return;
  if (final && elapsed < 1.0) return;
  last_progress_ = now;
  int64_t written = 0;
  for (const auto& t : targets_) written += t.counts.written + t.counts.updated;
  std::ostream& err = opt_.err ? *opt_.err : std::cerr;
  const int64_t read = sum_.read + reading_;
  err << "\r\033[Kread " << read << " · written " << written << " · quarantined "
      << sum_.quarantined << " · " << static_cast<int64_t>(read / std::max(elapsed, 1e-9))
      << " records/s" << (final ? "\n" : "") << std::flush;
}

}  // namespace

// RunRecords threw: the stack it unwound held the batch and the source, so
// there is memory again to record the failure. Targets are closed as after a
// crash (the next run recovers their pending batches); a transaction that was
// open has been rolled back by its guard (StateStore::Transaction) on the way.
Result<RunSummary> Runner::EndAfterException(const std::string& message) {
  if (!log_ || !store_ || (sum_.run == 0 && !opt_.dry_run)) return Status::Io(message);
  sum_.status = "failed";
  sum_.exit_code = kExitFailed;
  sum_.error = log_->Redact(message);
  try {
    log_->Error("The run failed: " + message);
    if (audit_) FlushAuditNow();  // what was read
    if (!opt_.dry_run && !pending_.quarantine.empty() && !FlushQuarantine().ok()) {
      sum_.quarantined -= static_cast<int64_t>(pending_.quarantine.size());
    }
  } catch (const std::exception&) {
    // Still short of memory: the run's row below matters more.
  }
  pending_.quarantine.clear();
  pending_.audit.clear();
  for (auto& t : targets_) {
    try {
      if (t.target) t.target->Close(false);
    } catch (const std::exception&) {
    }
    t.target.reset();
  }
  sum_.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  if (!opt_.dry_run) {
    Status fs = store_->FinishRun(sum_.run, sum_.status, sum_.ToJson(), sum_.exit_code);
    if (!fs.ok()) return fs;
  }
  return sum_;
}

Result<RunSummary> RunRecipe(const Recipe& recipe, const RunOptions& options) {
  Runner r(recipe, options);
  return r.Run();
}

std::filesystem::path EvidenceRoot(const std::filesystem::path& state) {
  if (state.empty() || state == ":memory:") return {};
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(state, ec);  // named in messages
  return (ec ? state : abs).string() + ".evidence";
}

std::filesystem::path EvidenceDir(const std::filesystem::path& state, int64_t run) {
  std::filesystem::path root = EvidenceRoot(state);
  return root.empty() ? root : root / ("run-" + std::to_string(run));
}

}  // namespace keyonce
