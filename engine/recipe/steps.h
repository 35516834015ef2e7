// Applying a recipe's steps to one record.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "keyonce/status.h"
#include "keyonce/template.h"
#include "recipe/recipe.h"

namespace keyonce {

struct StepOutcome {
  enum class Kind { kKeep, kFilter, kQuarantine };
  Kind kind = Kind::kKeep;
  std::string reason;  // for kFilter/kQuarantine: which step and why, without values
};

// What the steps replaced in a record: the number of fields it had and the
// values they had, so that the record as read can be had again (for the
// quarantine) without keeping a copy of every record. Steps that keep each
// field in its place (set, lookup, filter, validate) can be undone this way;
// map and drop cannot (StepRunner::Undoable).
class StepUndo {
 public:
  // The record as read, given the record as the steps left it.
  Record Original(const Record& now) const;
  // The values replaced, by their field's index.
  const std::vector<std::pair<size_t, Value>>& originals() const { return originals_; }

 private:
  friend class StepRunner;
  void Start(const Record& record, size_t most);
  void Replaced(size_t index, Value old);

  size_t fields_ = SIZE_MAX;  // no step ran: the record is as read
  std::vector<std::pair<size_t, Value>> originals_;
};

class StepRunner {
 public:
  explicit StepRunner(const Recipe& recipe);
  // Applies every step in order to *record (scope.record must point at it;
  // scope.tables serves lookups). Errors from templates quarantine the
  // record; a non-OK Status means the run cannot go on (e.g. a table failed).
  // `undo`, when given and Undoable(): what the steps replaced.
  Result<StepOutcome> Apply(Value* record, Scope scope, StepUndo* undo = nullptr) const;
  // Whether StepUndo can give back the record as read (no map, no drop).
  bool Undoable() const { return undoable_; }

 private:
  struct Compiled;
  static void Put(Record& rec, boost::json::string_view key, Value&& v, StepUndo* undo);

  std::vector<std::shared_ptr<Compiled>> steps_;
  bool undoable_ = true;
  size_t settable_ = 0;  // fields the steps set: the most a StepUndo holds
};

}  // namespace keyonce
