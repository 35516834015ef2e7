// Pieces a real run (runner.cc) and `keyonce test` (test_runner.cc) share.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "keyonce/connector.h"
#include "recipe/recipe.h"

namespace keyonce {

// The recipe's lookup tables, each opened when first used; every key is
// looked up once per run (up to 100,000 keys per table are remembered).
class RecipeTables : public TableResolver {
 public:
  RecipeTables(const Recipe& recipe, RunContext ctx) : recipe_(recipe), ctx_(std::move(ctx)) {}
  Result<std::optional<Record>> Find(std::string_view table, const Value& key) override;

 private:
  struct Entry {
    std::unique_ptr<Lookup> lookup;
    std::unordered_map<std::string, std::optional<Record>> cache;
  };
  const Recipe& recipe_;
  RunContext ctx_;
  std::map<std::string, Entry> open_;
};

// A target's `capture` templates evaluated against its reply, as an object.
// A capture that fails to evaluate is null; with a log, it is also reported
// as a warning naming the record's reference `ref`.
Value EvaluateCaptures(const TargetDef& target, const Scope& scope, const Value& reply,
                       Log* log = nullptr, const std::string& ref = "");

}  // namespace keyonce
