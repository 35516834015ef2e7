// Connectors: sources, targets and lookup tables.
//
// A connector lives wholly in connectors/<name>/ and registers itself with
// one line at the bottom of its registration file:
//
//   KEYONCE_REGISTER_CONNECTOR(CsvConnector());
//
// where CsvConnector() returns a ConnectorDef. The engine knows connectors
// only through these interfaces and the Registry.
//
// Threading: the engine calls one instance from one thread at a time. A new
// instance is made per run. A run reads its source on one thread while its
// targets write on another (and lookup tables are asked from both, one call
// at a time), so a source and a target must not share unsynchronised state.
//
// Nothing lost, nothing twice: the engine journals each write intent before
// calling Target::Write, and marks a batch as done only after Target::Commit
// says it is durable. After a crash the engine asks Target::Recover what
// became of the batches that were pending; a target that cannot tell is "in
// doubt" and the recipe's in_doubt policy (or Target::Check) decides.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "keyonce/settings.h"
#include "keyonce/spec.h"
#include "keyonce/status.h"
#include "keyonce/template.h"
#include "keyonce/value.h"

namespace keyonce {

// Logger handed to connectors. Messages are redacted (CPR numbers masked,
// secret values removed) before they reach any output, but connectors must
// still not log field values.
class Log {
 public:
  virtual ~Log() = default;
  virtual void Info(const std::string& msg) = 0;
  virtual void Warn(const std::string& msg) = 0;
  // A value learnt during the run that must never appear in any output
  // (e.g. an OAuth2 access token): from now on it is removed from every log
  // line, error message and quarantine reason like a declared secret.
  virtual void AddSecret(const std::string& /*value*/) {}
};

// The resource limits of a run: the recipe's `limits:` (docs/recipes.md,
// "Resource limits"). Connectors that hold data in memory keep to them.
struct Limits {
  size_t record_bytes = 16u << 20;     // one record as read (a CSV row, an XML element, a line)
  size_t reply_bytes = 16u << 20;      // one reply from a server, unless its max_reply_bytes says
  int64_t records_in_memory = 100000;  // a batch, a lookup table loaded whole
  size_t template_bytes = 16u << 20;   // one rendered template or filter result
  int64_t run_seconds = 0;             // wall time of a run; 0 = no limit
  int64_t columns = 16384;             // fields of one record (a CSV header or row)
  size_t batch_bytes = 64u << 20;      // the records of one batch, as held in memory
};

struct RunContext {
  std::string recipe;         // recipe name
  std::string run_id;         // unique per run
  std::string state_id;       // the journal's id (the state file's); targets keep it in their
                              // checkpoint so that another journal is recognised (TargetMark)
  std::string target_name;    // for targets: the recipe's name of this target
  Scope scope;                // params, secrets, run and state roots (no record)
  Log* log = nullptr;         // never null during a run
  bool dry_run = false;       // sources still read; targets are never opened in a dry run
  Limits limits;              // the recipe's limits (scope.max_text_bytes is template_bytes)
  // Where a target may save evidence for the person who must fix a failed
  // record (a screenshot, the page it failed on): this run's own folder beside
  // the state file, created by whoever saves the first file, removed with the
  // audit retention. "" when nothing may be saved (a dry run). The files hold
  // personal data: name them by WriteOp::ref, never by a key or a value.
  std::string evidence_dir;
};

// One item read by a source: a record, or a row that could not be read
// (malformed), which the engine quarantines while the run goes on.
struct SourceItem {
  Record record;
  // Where the engine wants the record's memory: the batch's arena, freed
  // with the batch at once instead of field by field. A source that builds
  // its record there (Record(item->storage), boost::json::parse(text, ec,
  // item->storage)) and hands it over with SetRecord saves a malloc and a
  // free per field; one that does not still works.
  boost::json::storage_ptr storage;
  // Makes `r` the record, keeping r's memory (plain assignment would copy
  // it into the memory of the record it replaces).
  void SetRecord(Record&& r) {
    std::destroy_at(&record);
    std::construct_at(&record, std::move(r));
  }
  std::string position;  // where it came from, e.g. "absence.csv:12" or "row 7"
  bool rejected = false;
  std::string reason;    // for a rejected item: what is wrong, without field values
  std::string raw;       // for a rejected item: the raw text (stored in quarantine only)
};

class Source {
 public:
  virtual ~Source() = default;
  // Prepares reading (opens files, runs the query). Templates in settings
  // may be evaluated against ctx.scope. Fails with kNotFound/kIo/kInvalid.
  virtual Status Open(const RunContext& ctx) = 0;
  // Reads the next item. Returns true with *item filled, false at the end,
  // or an error status when reading cannot go on (the run fails). Must
  // stream: memory must not grow with the number of records.
  virtual Result<bool> Next(SourceItem* item) = 0;
  // The acknowledgement, for a source that marks what it handed over (a mail
  // flagged or moved, a file moved away): the first `items` items Next gave
  // out (rejected ones included) are safe now: every target committed them
  // durably, or the journal knew them unchanged, or they were filtered out,
  // or they are in quarantine for a person. `items` only grows between calls.
  // `end`: the run read the source to its end and every item is safe; the
  // last call, after the targets' final commits and before Close.
  //
  // Crash contract: the engine calls it only after the journal and the
  // quarantine have recorded those items, so whatever a crash interrupts
  // (before, during or after Acknowledge), the next run reads the unmarked
  // items again and the journal writes none of them twice. Hence a source
  // must mark idempotently, and must expect that it is never called: a dry
  // run, a failed run, and everything after an item a run leaves for the next
  // run (a target that stopped the run) are not acknowledged.
  //
  // Threading: called on the run's writing thread, possibly while Next runs
  // on the reading thread; a source that marks must synchronise the two. An
  // error is a warning in the run's log (the items are safe; marking them is
  // left to the next run), and no later call comes.
  virtual Status Acknowledge(uint64_t /*items*/, bool /*end*/) { return Status::OK(); }
  virtual Status Close() { return Status::OK(); }
};

// What the engine asks a target to write.
struct WriteOp {
  enum class Kind { kInsert, kUpdate };
  Kind kind = Kind::kInsert;     // kUpdate: this key was written before with other content
  const Record* record = nullptr;
  const Scope* scope = nullptr;  // record, captures, params, secrets, run, state
  std::string key;               // the record's key (identity); never log it
  std::string ref;               // pseudonymous reference (ref-...): safe to log, names files
  uint64_t batch = 0;            // the journal batch this write belongs to
  // False when nothing reads WriteResult::reply (the target has no
  // `capture`): a target may then leave it empty instead of building it.
  bool wants_reply = true;
};

struct WriteResult {
  Status status;  // kTransient: retry; kPermanent or other: quarantine
  Value reply;    // what the system answered (for capture templates)
  double retry_after_seconds = 0;  // for kTransient: the system asked to wait this long (Retry-After)
  // With a failed status: the write may have happened (a submit whose answer
  // was lost) and the target cannot tell now. The record is journaled in
  // doubt and quarantined as such: no run writes it again until Check (at
  // the next run) or a person decides.
  bool in_doubt = false;
  // With a failed status: the target cannot go on at all (e.g. its login was
  // refused, and trying again could lock the account). The write did not
  // happen and the record is not quarantined; the run ends failed after this
  // batch, and the next run writes the record.
  bool stop_run = false;
  // With a failed status: files saved under RunContext::evidence_dir for the
  // person who handles the quarantined record (paths); named in its reason.
  std::vector<std::string> evidence{};
};

struct CommitResult {
  bool durable = false;  // false: kept until a later commit (e.g. an atomic file rename at the end)
  std::string token;     // checkpoint to hand to Recover after a crash
};

struct RecoverResult {
  bool known = false;           // false: the target cannot tell (writes are in doubt)
  uint64_t applied_through = 0;  // batches <= this id reached the target; later ones did not
};

// What a target's own checkpoint says about the journal that wrote it last:
// the state file's id (RunContext::state_id) and the last batch committed.
// The engine compares it with its journal before writing, so that a new,
// replaced or restored state file cannot make it write everything again.
struct TargetMark {
  std::string state_id;  // "" when the checkpoint predates state ids
  uint64_t batch = 0;
};

struct CheckResult {
  enum class Outcome { kUnsupported, kExists, kAbsent };
  Outcome outcome = Outcome::kUnsupported;
  Value reply;  // for kExists: what the system holds (captures are taken from it)
};

struct TargetTraits {
  bool supports_update = false;  // can replace an earlier write of the same key
  bool idempotent = false;       // writing the same record twice leaves one copy (upsert)
  bool concurrent = false;       // WriteMany may run writes at the same time (their order is
                                 // not kept); otherwise the engine passes one write per call,
  bool writes_in_order = false;  // unless WriteMany writes in order and returns right after the
                                 // first write that failed (the rest untried): then many
};

class Target {
 public:
  virtual ~Target() = default;
  virtual TargetTraits Traits() const = 0;
  // Prepares writing. Called after Recover (if any) in a real run; never in
  // a dry run.
  virtual Status Open(const RunContext& ctx) = 0;
  // What this write would send, as a JSON value (dry run, `keyonce test`).
  // Must not touch the target and must work without Open (a dry run never
  // opens targets). The same rendering Write uses.
  virtual Result<Value> Render(const WriteOp& op) = 0;
  // The target's state now, before this run writes anything (e.g. a file's
  // size, or an empty string for a target that has no such notion). The
  // engine stores it with the run's first batch; after a crash it comes back
  // to Recover as `token`.
  virtual Result<std::string> Checkpoint() { return std::string(); }
  // Writes one record. Transient failures are retried by the engine.
  virtual WriteResult Write(const WriteOp& op) = 0;
  // Writes several records of one batch; results in the order of `ops`. A
  // target that can keep several requests in flight (e.g. HTTP with curl
  // multi) overrides this. The engine never passes the same key twice in one
  // call to a concurrent target, and retries the transient failures in a
  // later call. A target with writes_in_order returns after the first failed
  // write (its result last). Default: Write for each op in turn.
  virtual std::vector<WriteResult> WriteMany(const std::vector<WriteOp>& ops) {
    std::vector<WriteResult> out;
    out.reserve(ops.size());
    for (const auto& op : ops) out.push_back(Write(op));
    return out;
  }
  // Makes every write since the last commit durable, tagged with batch id
  // `batch` (ids grow). `final` is true for the last commit of the run.
  virtual Result<CommitResult> Commit(uint64_t batch, bool final) = 0;
  // After a crash: batches from `first_pending` on were journaled as intents
  // but not confirmed. `token` is the state before `first_pending` (the
  // CommitResult::token of the batch before it, or the Checkpoint() taken
  // before it). Restores the target to a consistent point (e.g. truncates a
  // file) and says which batches reached it (applied_through = UINT64_MAX:
  // all of them). Called before Open, on a fresh instance.
  virtual Result<RecoverResult> Recover(const RunContext& ctx, uint64_t first_pending,
                                        const std::string& token) = 0;
  // The mark this target's checkpoint holds for ctx.recipe/ctx.target_name
  // (a checkpoint row, a file's mark beside it), read without changing
  // anything; nullopt when there is none (never written, or the target keeps
  // no checkpoint: the engine then asks Check about the first records). A
  // target that keeps a mark writes ctx.state_id and the batch with every
  // Commit. Called before Recover and Open, on a fresh instance.
  virtual Result<std::optional<TargetMark>> Mark(const RunContext& /*ctx*/) {
    return std::optional<TargetMark>();
  }
  // Asks the system whether this record's write already happened (used for
  // records in doubt, and for the first records a new journal writes to a
  // target that keeps no mark). Default: unsupported.
  virtual Result<CheckResult> Check(const WriteOp& /*op*/) { return CheckResult{}; }
  // Ends the run; `success` false after a fatal error. Uncommitted writes
  // are discarded.
  virtual Status Close(bool /*success*/) { return Status::OK(); }
};

class Lookup {
 public:
  virtual ~Lookup() = default;
  virtual Status Open(const RunContext& ctx) = 0;
  // The row whose key equals `key`, nullopt when none does. A lookup whose
  // settings are templates declares them with roots kRootsStatic | kRootKey
  // and evaluates them with Scope::key = &key (written `{{ key }}`).
  // Transient errors (kTransient) are retried by the engine; others
  // quarantine the record. The engine caches answers per run.
  virtual Result<std::optional<Record>> Find(const Value& key) = 0;
};

// The make_* functions build an instance from validated settings. They must
// not touch files, databases or the network: `keyonce validate` calls them to
// check settings that depend on each other, and returns their kInvalid
// message as a diagnostic.
struct ConnectorDef {
  std::string name;     // the recipe's `type:`
  std::string summary;  // one sentence for docs and `keyonce connectors`
  std::optional<ComponentSpec> source, target, lookup;
  std::function<Result<std::unique_ptr<Source>>(const Settings&)> make_source;
  std::function<Result<std::unique_ptr<Target>>(const Settings&)> make_target;
  std::function<Result<std::unique_ptr<Lookup>>(const Settings&)> make_lookup;
};

class Registry {
 public:
  static Registry& Global();
  void Add(ConnectorDef def);
  const ConnectorDef* Find(const std::string& name) const;
  std::vector<const ConnectorDef*> All() const;  // sorted by name

 private:
  std::vector<std::unique_ptr<ConnectorDef>> defs_;
};

}  // namespace keyonce

#define KEYONCE_CONCAT_INNER(a, b) a##b
#define KEYONCE_CONCAT(a, b) KEYONCE_CONCAT_INNER(a, b)
#define KEYONCE_REGISTER_CONNECTOR(def_expr)                                     \
  static const bool KEYONCE_CONCAT(keyonce_registered_, __LINE__) [[maybe_unused]] = \
      (::keyonce::Registry::Global().Add(def_expr), true)
