// Pieces a real run (runner.cc) and `keyonce test` (test_runner.cc) share.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "keyonce/connector.h"
#include "pipeline/retry.h"
#include "recipe/recipe.h"
#include "state/audit.h"

namespace keyonce {

// The recipe's lookup tables, each opened when first used; every key is
// looked up once per run (up to 100,000 keys per table are remembered).
// Shared by the run's two stages (reading and writing, each on its own
// thread): Find is serialised, so a Lookup is only ever asked by one thread
// at a time. Each stage asks through its own View.
//
// For the audit log, once EnableAudit() was called every Find (answered
// from the cache or not: the record used the row either way) is noted in
// the View with its criterion until TakeLookups() hands the notes to the
// runner, which logs them with the record's subject.
class RecipeTables {
 public:
  RecipeTables(const Recipe& recipe, RunContext ctx)
      : recipe_(recipe), ctx_(std::move(ctx)), retry_(recipe.errors) {}
  void EnableAudit() { audit_ = true; }  // before the first Find

  struct LookupNote {
    const std::string* table;   // the table's name in the recipe
    const std::string* detail;  // the criterion, e.g. "key: {{ record.Afdeling }}"
  };
  // One stage's access to the tables (use it from one thread).
  class View : public TableResolver, public LookupAuditSink {
   public:
    explicit View(RecipeTables& tables) : tables_(tables) {}
    Result<std::optional<Record>> Find(std::string_view table, const Value& key) override {
      return tables_.Find(table, key, std::exchange(next_key_, nullptr), &notes_);
    }
    void NextCriterion(const Template* key) override { next_key_ = key; }
    bool has_lookups() const { return !notes_.empty(); }
    // The lookups noted since the last call, oldest first (pointers stay
    // valid for the run).
    std::vector<LookupNote> TakeLookups() { return std::exchange(notes_, {}); }

   private:
    RecipeTables& tables_;
    const Template* next_key_ = nullptr;
    std::vector<LookupNote> notes_;
  };

 private:
  struct Entry {
    std::unique_ptr<Lookup> lookup;
    std::unordered_map<std::string, std::optional<Record>> cache;
  };
  // `criterion`: the step's key template, for the note added to *notes.
  Result<std::optional<Record>> Find(std::string_view table, const Value& key,
                                     const Template* criterion, std::vector<LookupNote>* notes);
  const std::string* Detail(const std::string& table, const ComponentRef& def, const Template* key);

  const Recipe& recipe_;
  RunContext ctx_;
  RetryPolicy retry_;  // a system briefly away is asked again
  std::mutex mu_;      // the rest
  std::map<std::string, Entry> open_;
  bool audit_ = false;
  std::map<std::pair<std::string, const Template*>, std::string> details_;
};

// The audit rows of one batch's writes: per target a chunk of creates and
// one of updates, stored in the transaction of the batch's intents; a write
// that then does not happen is taken back before the batch is confirmed.
class WriteAudit {
 public:
  WriteAudit(size_t targets, size_t items) : chunks_(2 * targets), places_(targets) {
    for (auto& p : places_) p.resize(items);
  }
  // Logs the write of item `item` to target `ti` (in `batch`); own_row: as
  // a row of its own, stored now (a write decided after the intents).
  Status Add(AuditWriter& w, std::string_view time, const TargetDef& target, int64_t batch,
             size_t ti, size_t item, bool update, const std::string& subject, bool own_row);
  // The write did not happen (call Save after).
  Status Remove(AuditWriter& w, size_t ti, size_t item);
  // Stores the chunks added to or changed since the last Save.
  Status Save(AuditWriter& w, std::string_view time);

 private:
  struct Place {
    int64_t row = 0;  // its own row
    int chunk = -1;   // else its chunk (2 * target + update) and index there
    int index = -1;
  };
  std::vector<std::unique_ptr<AuditChunk>> chunks_;
  std::vector<std::vector<Place>> places_;  // [target][item]
};

// A target's `capture` templates evaluated against its reply, as an object.
// A capture that fails to evaluate is null; with a log, it is also reported
// as a warning naming the record's reference `ref`.
Value EvaluateCaptures(const TargetDef& target, const Scope& scope, const Value& reply,
                       Log* log = nullptr, const std::string& ref = "");

}  // namespace keyonce
