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

class StepRunner {
 public:
  explicit StepRunner(const Recipe& recipe);
  // Applies every step in order to *record (scope.record must point at it;
  // scope.tables serves lookups). Errors from templates quarantine the
  // record; a non-OK Status means the run cannot go on (e.g. a table failed).
  Result<StepOutcome> Apply(Value* record, Scope scope) const;

 private:
  struct Compiled;
  std::vector<std::shared_ptr<Compiled>> steps_;
};

}  // namespace keyonce
