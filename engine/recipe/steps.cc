#include "recipe/steps.h"

#include <cmath>
#include <regex>

#include "recipe/user_regex.h"
#include "state/audit.h"
#include "template/cpr.h"
#include "template/internal.h"

namespace keyonce {

namespace {
// A number as people write it here: 1234.5, "1234.5", "1.234,50" or "7,5".
std::optional<double> AsNumber(const Value& v) {
  if (auto n = tmpl::NumericValue(v)) return n->AsDouble();
  if (!v.is_string()) return std::nullopt;
  std::string_view s = v.get_string();
  if (auto n = tmpl::ParseLocaleNumber(s, ',')) return n->AsDouble();
  if (auto n = tmpl::ParseLocaleNumber(s, '.')) return n->AsDouble();
  return std::nullopt;
}

}  // namespace

void StepUndo::Start(const Record& record, size_t most) {
  fields_ = record.size();
  originals_.clear();
  originals_.reserve(std::min(most, fields_));  // one allocation, not one per growth
}

void StepUndo::Replaced(size_t index, Value old) {
  if (index >= fields_) return;  // a field a step added
  for (const auto& o : originals_) {
    if (o.first == index) return;  // replaced before: the first value is the original
  }
  originals_.emplace_back(index, std::move(old));
}

Record StepUndo::Original(const Record& now) const {
  const size_t n = std::min(fields_, now.size());
  Record out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.emplace(now.begin()[i].key(), now.begin()[i].value());
  for (const auto& [i, v] : originals_) out.begin()[i].value() = v;
  return out;
}

// rec[key] = v: a field that is there is replaced in its place (operator[]
// would grow a full object before it looks the key up), the value it had
// noted in *undo; a new one goes at the end.
void StepRunner::Put(Record& rec, boost::json::string_view key, Value&& v, StepUndo* undo) {
  if (auto it = rec.find(key); it != rec.end()) {
    if (undo) undo->Replaced(static_cast<size_t>(it - rec.begin()), std::move(it->value()));
    it->value() = std::move(v);
  } else {
    rec.emplace(key, std::move(v));
  }
}

struct StepRunner::Compiled {
  const StepDef* def = nullptr;
  struct Rule {
    std::string field;
    bool required = false;
    std::string type;
    std::optional<std::regex> pattern;
    std::optional<double> min, max;
    std::optional<int64_t> max_length;
    std::vector<std::string> one_of;
    std::string message;
  };
  std::vector<Rule> rules;
};

StepRunner::StepRunner(const Recipe& recipe) {
  for (const auto& s : recipe.steps) {
    auto c = std::make_shared<Compiled>();
    c->def = &s;
    if (s.kind == "map" || s.kind == "drop") undoable_ = false;
    if (s.kind == "set" || s.kind == "lookup") settable_ += s.settings.TmplMap("set").size();
    for (const auto& [field, rs] : s.rules) {
      Compiled::Rule r;
      r.field = field;
      r.required = rs.Bool("required").value_or(false);
      r.type = rs.String("type").value_or("");
      // The loader has said what is wrong with a pattern that does not compile.
      std::regex re;
      if (auto p = rs.String("pattern"); p && !CompileUserRegex(*p, &re)) r.pattern = std::move(re);
      r.min = rs.Number("min");
      r.max = rs.Number("max");
      r.max_length = rs.Int("max_length");
      r.one_of = rs.StringList("one_of");
      r.message = rs.String("message").value_or("");
      c->rules.push_back(std::move(r));
    }
    steps_.push_back(std::move(c));
  }
}

Result<StepOutcome> StepRunner::Apply(Value* record, Scope scope, StepUndo* undo) const {
  scope.record = record;
  if (!undoable_) undo = nullptr;
  if (undo) undo->Start(record->as_object(), settable_);
  for (const auto& c : steps_) {
    const StepDef& s = *c->def;
    const std::string& kind = s.kind;
    auto quarantine = [&](const std::string& why) {
      return StepOutcome{StepOutcome::Kind::kQuarantine, "step " + kind + " (" + s.where + "): " + why};
    };
    if (kind == "set" || kind == "map") {
      boost::json::object out;
      const auto& m = s.settings.TmplMap(kind);
      out.reserve(m.size());
      for (const auto& [field, t] : m) {
        auto v = t.Evaluate(scope);
        if (!v.ok()) return quarantine("field '" + field + "': " + v.status().message());
        out[field] = std::move(v).value();
      }
      if (kind == "map") {
        *record = std::move(out);
      } else {
        auto& rec = record->as_object();
        for (auto& kv : out) Put(rec, kv.key(), std::move(kv.value()), undo);
      }
    } else if (kind == "drop") {
      auto& rec = record->as_object();
      for (const auto& f : s.settings.StringList("drop")) rec.erase(f);
    } else if (kind == "filter") {
      auto v = s.settings.Tmpl("when")->Evaluate(scope);
      if (!v.ok()) return quarantine(v.status().message());
      if (!IsTruthy(*v)) {
        return StepOutcome{StepOutcome::Kind::kFilter,
                           s.settings.String("reason").value_or("filtered at " + s.where)};
      }
    } else if (kind == "validate") {
      const auto& rec = record->as_object();
      for (const auto& r : c->rules) {
        auto fail = [&](const std::string& why) {
          return quarantine("field '" + r.field + "' " + (r.message.empty() ? why : r.message));
        };
        auto it = rec.find(r.field);
        bool empty = it == rec.end() || it->value().is_null() ||
                     (it->value().is_string() && it->value().get_string().empty());
        if (empty) {
          if (r.required) return fail("is required but empty");
          continue;
        }
        const Value& v = it->value();
        std::string text = ToText(v);
        if (!r.type.empty()) {
          bool ok = true;
          if (r.type == "int") {
            static const std::regex re("^-?[0-9]+$");
            ok = v.is_int64() || v.is_uint64() || std::regex_match(text, re);
          } else if (r.type == "number") {
            ok = AsNumber(v).has_value();
          } else if (r.type == "date") {
            static const std::regex re("^[0-9]{4}-[0-9]{2}-[0-9]{2}$");
            ok = std::regex_match(text, re);
          } else if (r.type == "cpr") {
            ok = cpr::IsValid(text);
          } else if (r.type == "email") {
            static const std::regex re("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$");
            ok = std::regex_match(text, re);
          }
          if (!ok) return fail("is not a valid " + r.type);
        }
        if (r.pattern && !std::regex_match(text, *r.pattern)) return fail("does not match the pattern");
        if (r.min || r.max) {
          auto n = AsNumber(v);
          if (!n) return fail("is not a number");
          if (r.min && *n < *r.min) return fail("is below the minimum");
          if (r.max && *n > *r.max) return fail("is above the maximum");
        }
        if (r.max_length && static_cast<int64_t>(tmpl::CodePoints(text)) > *r.max_length) {
          return fail("is longer than " + std::to_string(*r.max_length) + " characters");
        }
        if (!r.one_of.empty() &&
            std::find(r.one_of.begin(), r.one_of.end(), text) == r.one_of.end()) {
          return fail("is not one of the allowed values");
        }
      }
    } else if (kind == "lookup") {
      if (!scope.tables) return Status::Internal("lookup step without tables");
      auto key = s.settings.Tmpl("key")->Evaluate(scope);
      if (!key.ok()) return quarantine(key.status().message());
      std::string table = *s.settings.String("table");
      // The audit log names the lookup's criterion: this step's key template.
      if (auto* sink = dynamic_cast<LookupAuditSink*>(scope.tables)) {
        sink->NextCriterion(s.settings.Tmpl("key"));
      }
      auto row = scope.tables->Find(table, *key);
      if (!row.ok()) {
        if (row.status().IsTransient()) return row.status();
        return quarantine("table '" + table + "': " + row.status().message());
      }
      if (!row->has_value()) {
        std::string on_missing = s.settings.String("on_missing").value_or("quarantine");
        if (on_missing == "keep") continue;
        if (on_missing == "skip") {
          return StepOutcome{StepOutcome::Kind::kFilter, "no row in table '" + table + "'"};
        }
        return quarantine("no row in table '" + table + "' for the key");
      }
      Value found(std::move(**row));
      Scope inner = scope;
      inner.lookup = &found;
      if (const Template* require = s.settings.Tmpl("require")) {
        auto ok = require->Evaluate(inner);
        if (!ok.ok()) return quarantine("require: " + ok.status().message());
        if (!IsTruthy(*ok)) {
          std::string why = s.settings.String("reason").value_or(
              "the row in table '" + table + "' does not meet `require`");
          if (s.settings.String("otherwise").value_or("quarantine") == "skip") {
            return StepOutcome{StepOutcome::Kind::kFilter, why};
          }
          return quarantine(why);
        }
      }
      boost::json::object out;
      for (const auto& [field, t] : s.settings.TmplMap("set")) {
        auto v = t.Evaluate(inner);
        if (!v.ok()) return quarantine("field '" + field + "': " + v.status().message());
        out[field] = std::move(v).value();
      }
      auto& rec = record->as_object();
      for (auto& kv : out) Put(rec, kv.key(), std::move(kv.value()), undo);
    }
  }
  return StepOutcome{};
}

}  // namespace keyonce
