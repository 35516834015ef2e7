#include "pipeline/run_parts.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

namespace keyonce {

Result<std::optional<Record>> RecipeTables::Find(std::string_view table, const Value& key) {
  auto it = open_.find(std::string(table));
  if (it == open_.end()) {
    const ComponentRef* def = nullptr;
    for (const auto& t : recipe_.tables) {
      if (t.name == table) def = &t;
    }
    if (!def) return Status::Invalid("no table named '" + std::string(table) + "'");
    auto made = def->def->make_lookup(def->settings);
    if (!made.ok()) return made.status();
    Status st = (*made)->Open(ctx_);
    if (!st.ok()) return st.Wrap("opening table '" + def->name + "'");
    it = open_.emplace(std::string(table), Entry{std::move(made).value(), {}}).first;
  }
  std::string k = ToText(key);
  auto& cache = it->second.cache;
  auto c = cache.find(k);
  if (c != cache.end()) return c->second;
  // A system that is briefly away (timeouts, 503) is asked again with the
  // recipe's retry policy; after that the run stops rather than quarantine
  // every record.
  const ErrorPolicy& p = recipe_.errors;
  Result<std::optional<Record>> r = it->second.lookup->Find(key);
  for (int attempt = 1; !r.ok() && r.status().IsTransient() && attempt < p.retry_attempts;
       ++attempt) {
    double wait = p.Backoff(attempt);
    if (ctx_.log) {
      ctx_.log->Warn("Looking up in table '" + std::string(table) + "' failed (attempt " +
                     std::to_string(attempt) + " of " + std::to_string(p.retry_attempts) +
                     "): " + r.status().message() + "; retrying in " +
                     std::to_string(static_cast<int>(wait * 1000)) + " ms.");
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    r = it->second.lookup->Find(key);
  }
  if (!r.ok()) return r.status();
  if (cache.size() < 100000) cache.emplace(k, *r);
  return r;
}

Value EvaluateCaptures(const TargetDef& target, const Scope& scope, const Value& reply, Log* log,
                       const std::string& ref) {
  Scope cs = scope;
  cs.reply = &reply;
  boost::json::object caps;
  for (const auto& [name, tmpl] : target.capture) {
    auto v = tmpl.Evaluate(cs);
    if (v.ok()) {
      caps[name] = std::move(v).value();
      continue;
    }
    if (log) {
      log->Warn("Capture '" + name + "' from " + target.name + " failed for " + ref + ": " +
                v.status().message());
    }
    caps[name] = nullptr;
  }
  return caps;
}

}  // namespace keyonce
