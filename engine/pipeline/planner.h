// The record planner: what happens to one record before the journal has its
// say, decided in one place for a run, a dry run and `keyonce test`, so that
// they cannot disagree.
//
//   record --steps--> filtered, or quarantined with the step's reason
//          --key----> quarantined: "the key is empty", "evaluating the key: ..."
//          --each target's `when`--> the target takes it, does not apply, or
//            the record is quarantined at it: "evaluating `when` of T: ..."
//
// What follows (unchanged / update / insert by the journal, the write) is the
// runner's. The planner has no state of its own and writes nothing.
#pragma once

#include <string>

#include "keyonce/status.h"
#include "keyonce/template.h"
#include "recipe/recipe.h"
#include "recipe/steps.h"

namespace keyonce {

struct RecordPlan {
  enum class Kind { kFiltered, kQuarantined, kKeyed };
  Kind kind = Kind::kKeyed;
  const char* stage = "";  // kQuarantined: "step" or "key"
  std::string reason;      // kQuarantined: what a person reads
  // kKeyed: the record's key. kQuarantined at a step: the key, when the
  // record as it stands yields one (a reference helps a person find it).
  std::string key;
};

// Whether a target takes a record.
struct TargetPlan {
  enum class Kind { kTakes, kNotApplicable, kQuarantined };
  Kind kind = Kind::kTakes;
  std::string reason;  // kQuarantined
};

class RecordPlanner {
 public:
  explicit RecordPlanner(const Recipe& recipe) : recipe_(recipe), steps_(recipe) {}

  // Runs the steps on *record (changed in place), then the key, in `scope`
  // (its record is set to `record`). A non-OK Status means the run cannot go
  // on (a table the steps need failed after its retries).
  // `undo`: as StepRunner::Apply.
  Result<RecordPlan> Plan(Value* record, Scope scope, StepUndo* undo = nullptr) const;
  // Whether a StepUndo can give back the record as read.
  bool Undoable() const { return steps_.Undoable(); }

  // The target's `when` in `scope` (the record's).
  static TargetPlan ForTarget(const TargetDef& target, const Scope& scope);

 private:
  const Recipe& recipe_;
  StepRunner steps_;
};

}  // namespace keyonce
