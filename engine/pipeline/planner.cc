#include "pipeline/planner.h"

namespace keyonce {

Result<RecordPlan> RecordPlanner::Plan(Value* record, Scope scope, StepUndo* undo) const {
  scope.record = record;
  auto outcome = steps_.Apply(record, scope, undo);
  if (!outcome.ok()) return outcome.status();
  RecordPlan p;
  if (outcome->kind == StepOutcome::Kind::kFilter) {
    p.kind = RecordPlan::Kind::kFiltered;
    return p;
  }
  auto key = recipe_.key.Evaluate(scope);
  std::string key_text = key.ok() ? ToText(*key) : "";
  if (outcome->kind == StepOutcome::Kind::kQuarantine) {
    p.kind = RecordPlan::Kind::kQuarantined;
    p.stage = "step";
    p.reason = outcome->reason;
    p.key = std::move(key_text);
    return p;
  }
  if (!key.ok() || key_text.empty()) {
    p.kind = RecordPlan::Kind::kQuarantined;
    p.stage = "key";
    p.reason = key.ok() ? "the key is empty" : "evaluating the key: " + key.status().message();
    return p;
  }
  p.key = std::move(key_text);
  return p;
}

TargetPlan RecordPlanner::ForTarget(const TargetDef& target, const Scope& scope) {
  TargetPlan t;
  if (!target.when) return t;
  auto w = target.when->Evaluate(scope);
  if (!w.ok()) {
    t.kind = TargetPlan::Kind::kQuarantined;
    t.reason = "evaluating `when` of " + target.name + ": " + w.status().message();
  } else if (!IsTruthy(*w)) {
    t.kind = TargetPlan::Kind::kNotApplicable;
  }
  return t;
}

}  // namespace keyonce
