#include "pipeline/test_runner.h"

#include <yaml-cpp/yaml.h>

#include <boost/json/serialize.hpp>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "pipeline/planner.h"
#include "pipeline/run_log.h"
#include "pipeline/run_parts.h"
#include "pipeline/runner.h"
#include "recipe/loader.h"
#include "recipe/steps.h"

namespace keyonce {
namespace {

std::string Show(const Value& v, const Redactor& r) { return r.Apply(ToJson(v)); }

}  // namespace

int RunRecipeTest(const std::filesystem::path& test_file, std::ostream& out, std::ostream& err) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(test_file.string());
  } catch (const YAML::Exception& e) {
    err << test_file.string() << ":" << e.mark.line + 1 << ":" << e.mark.column + 1
        << ": error: " << e.msg << "\n";
    return 2;
  }
  auto fail_usage = [&](const YAML::Node& n, const std::string& msg) {
    err << test_file.string() << ":" << n.Mark().line + 1 << ":" << n.Mark().column + 1
        << ": error: " << msg << "\n";
    return 2;
  };
  if (!root.IsMap() || !root["recipe"] || !root["cases"] || !root["cases"].IsSequence()) {
    return fail_usage(root, "a test file needs `recipe:` (path) and `cases:` (a list)");
  }
  static const std::set<std::string> kTop = {"recipe", "params", "secrets", "state", "cases"};
  for (const auto& kv : root) {
    if (!kTop.count(kv.first.Scalar()))
      return fail_usage(kv.first, "unknown key '" + kv.first.Scalar() + "'");
  }
  std::filesystem::path base = test_file.parent_path();
  std::filesystem::path recipe_path = base / root["recipe"].Scalar();
  Diagnostics diags;
  auto recipe = LoadRecipe(recipe_path, &diags);
  for (const auto& d : diags.items()) err << d.ToString() << "\n";
  if (!recipe) return 2;

  Redactor redactor;
  std::map<std::string, std::string> raw_params;
  if (root["params"]) {
    for (const auto& kv : root["params"]) raw_params[kv.first.Scalar()] = kv.second.Scalar();
  }
  auto params = ResolveParams(*recipe, raw_params);
  if (!params.ok())
    return fail_usage(root["params"] ? root["params"] : root, params.status().message());
  boost::json::object secrets;
  for (const auto& s : recipe->secrets) {
    if (!root["secrets"] || !root["secrets"][s.name]) {
      return fail_usage(root, "give a dummy value for secret '" + s.name + "' under secrets:");
    }
    std::string v = root["secrets"][s.name].Scalar();
    redactor.AddSecret(v);
    secrets[s.name] = v;
  }
  Value secrets_v(std::move(secrets));
  Value run = {{"id", 0},
               {"recipe", recipe->name},
               {"started_at", "2026-01-01T00:00:00Z"},
               {"trigger", "test"}};
  Value state = boost::json::object{{"watermark", nullptr}};
  if (root["state"] && root["state"]["watermark"])
    state.as_object()["watermark"] = root["state"]["watermark"].Scalar();

  std::ostringstream logbuf;
  RunLog log(&logbuf, LogFormat::kText, &redactor);
  Scope base_scope;
  base_scope.params = &*params;
  base_scope.secrets = &secrets_v;
  base_scope.run = &run;
  base_scope.state = &state;
  base_scope.warnings = &log;
  RunContext ctx;
  ctx.recipe = recipe->name;
  ctx.scope = base_scope;
  ctx.log = &log;
  ctx.dry_run = true;
  RecipeTables tables(*recipe, ctx);
  RecipeTables::View table_view(tables);
  base_scope.tables = &table_view;

  std::vector<std::unique_ptr<Target>> targets;
  for (const auto& t : recipe->targets) {
    auto made = t.def->make_target(t.settings);
    if (!made.ok()) {
      err << "preparing target " << t.name << ": " << made.status().message() << "\n";
      return 2;
    }
    targets.push_back(std::move(made).value());
  }
  const RecordPlanner planner(*recipe);
  int failed_cases = 0, passed_cases = 0;
  size_t ci = 0;
  for (const auto& c : root["cases"]) {
    std::string name = c["name"] ? c["name"].Scalar() : "case " + std::to_string(ci + 1);
    ++ci;
    std::vector<std::string> problems;
    std::map<std::string, std::vector<Value>> actual;
    std::map<std::string, size_t> reply_index;
    std::vector<std::string> quarantined;
    int filtered = 0;
    for (const auto& in : c["input"]) {
      Value record = SpecWalker::ToValue(in);
      // Inputs are what a source reads: text fields.
      if (!record.is_object()) {
        problems.push_back("an input is not a mapping");
        continue;
      }
      for (auto& kv : record.as_object()) {
        if (!kv.value().is_string() && !kv.value().is_null() && !kv.value().is_object() &&
            !kv.value().is_array()) {
          kv.value() = ToText(kv.value());
        }
      }
      // The same planner as a run: steps, key, each target's `when`.
      Value captures = boost::json::object();
      Scope scope = base_scope;
      scope.record = &record;
      scope.captures = &captures;
      auto plan = planner.Plan(&record, scope);
      if (!plan.ok()) {
        problems.push_back("step failed: " + plan.status().message());
        continue;
      }
      if (plan->kind == RecordPlan::Kind::kFiltered) {
        ++filtered;
        continue;
      }
      if (plan->kind == RecordPlan::Kind::kQuarantined) {
        quarantined.push_back(plan->reason);
        continue;
      }
      for (size_t ti = 0; ti < recipe->targets.size(); ++ti) {
        const auto& td = recipe->targets[ti];
        TargetPlan tp = RecordPlanner::ForTarget(td, scope);
        if (tp.kind == TargetPlan::Kind::kNotApplicable) continue;
        if (tp.kind == TargetPlan::Kind::kQuarantined) {
          quarantined.push_back(tp.reason);
          break;
        }
        WriteOp op;
        op.record = &record.as_object();
        op.scope = &scope;
        op.key = plan->key;
        auto r = targets[ti]->Render(op);
        if (!r.ok()) {
          quarantined.push_back("writing to " + td.name + ": " + r.status().message());
          break;
        }
        actual[td.name].push_back(*r);
        if (!td.capture.empty()) {
          Value reply = boost::json::object();
          if (c["replies"] && c["replies"][td.name]) {
            size_t& k = reply_index[td.name];
            YAML::Node rs = c["replies"][td.name];
            if (k < rs.size()) reply = SpecWalker::ToValue(rs[k]);
            ++k;
          }
          captures.as_object()[td.name] = EvaluateCaptures(td, scope, reply);
        }
      }
    }
    if (c["expect"]) {
      for (const auto& kv : c["expect"]) {
        std::string tname = kv.first.Scalar();
        bool known = false;
        for (const auto& t : recipe->targets) known |= t.name == tname;
        if (!known) {
          problems.push_back("expect names no target of the recipe: " + tname);
          continue;
        }
        std::vector<Value> want;
        for (const auto& w : kv.second) want.push_back(SpecWalker::ToValue(w));
        const auto& got = actual[tname];
        if (got.size() != want.size()) {
          problems.push_back(tname + ": expected " + std::to_string(want.size()) +
                             " write(s), got " + std::to_string(got.size()));
        }
        for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
          if (got[i] != want[i]) {
            problems.push_back(tname + " write " + std::to_string(i + 1) + ":\n      expected " +
                               Show(want[i], redactor) + "\n      got      " +
                               Show(got[i], redactor));
          }
        }
      }
    }
    size_t want_q = 0;
    if (c["expect_quarantined"]) {
      want_q = c["expect_quarantined"].size();
      size_t i = 0;
      for (const auto& q : c["expect_quarantined"]) {
        std::string sub = q["reason"] ? q["reason"].Scalar() : "";
        if (i < quarantined.size() && quarantined[i].find(sub) == std::string::npos) {
          problems.push_back("quarantine reason " + std::to_string(i + 1) +
                             ": expected it to contain '" + sub + "', got '" +
                             redactor.Apply(quarantined[i]) + "'");
        }
        ++i;
      }
    }
    if (quarantined.size() != want_q) {
      std::string list;
      for (const auto& q : quarantined) list += "\n      " + redactor.Apply(q);
      problems.push_back("expected " + std::to_string(want_q) + " quarantined record(s), got " +
                         std::to_string(quarantined.size()) + list);
    }
    if (c["expect_filtered"] && c["expect_filtered"].as<int>() != filtered) {
      problems.push_back("expected " + c["expect_filtered"].Scalar() + " filtered record(s), got " +
                         std::to_string(filtered));
    }
    if (problems.empty()) {
      ++passed_cases;
      out << "PASS " << name << "\n";
    } else {
      ++failed_cases;
      out << "FAIL " << name << "\n";
      for (const auto& p : problems) out << "    " << p << "\n";
    }
  }
  out << test_file.filename().string() << ": " << passed_cases << " passed, " << failed_cases
      << " failed\n";
  return failed_cases ? 1 : 0;
}

}  // namespace keyonce
