#include "pipeline/run_parts.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "state/privacy.h"

namespace keyonce {

const std::string* RecipeTables::Detail(const std::string& table, const ComponentRef& def,
                                        const Template* key) {
  auto [it, added] = details_.try_emplace({table, key});
  if (!added) return &it->second;
  // What was asked: the step's key template, then the table's own settings
  // that place the key (an http lookup's url, a query) or name its column.
  std::string d;
  auto add = [&](const std::string& part) { d += (d.empty() ? "" : "; ") + part; };
  if (key) add("key: " + key->source());
  for (const auto& [name, e] : def.settings.entries) {
    auto reads_key = [](const Template& t) {
      for (const auto& r : t.References()) {
        if (r.root == "key") return true;
      }
      return false;
    };
    if (e.tmpl && reads_key(*e.tmpl)) add(name + ": " + e.tmpl->source());
    for (const auto& [k, t] : e.tmpl_map) {
      if (reads_key(t)) add(name + "." + k + ": " + t.source());
    }
    if (name == "key" && e.literal.is_string()) {
      add("column: " + std::string(e.literal.get_string()));
    }
  }
  if (d.empty()) d = "by key";
  // Recipe text, but keep it short and free of anything CPR-shaped.
  if (d.size() > 300) d = d.substr(0, 297) + "...";
  it->second = MaskCpr(d);
  return &it->second;
}

Result<std::optional<Record>> RecipeTables::Find(std::string_view table, const Value& key,
                                                 const Template* criterion,
                                                 std::vector<LookupNote>* notes) {
  std::lock_guard<std::mutex> lock(mu_);
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
  if (audit_) {
    for (const auto& t : recipe_.tables) {
      if (t.name == table) notes->push_back({&it->first, Detail(it->first, t, criterion)});
    }
  }
  std::string k = ToText(key);
  auto& cache = it->second.cache;
  auto c = cache.find(k);
  if (c != cache.end()) return c->second;
  // A system that is briefly away (timeouts, 503) is asked again with the
  // recipe's retry policy; after that the run stops rather than quarantine
  // every record.
  Lookup& lookup = *it->second.lookup;
  auto r = retry_.Run<Result<std::optional<Record>>>(
      [&] { return lookup.Find(key); },
      [](const Result<std::optional<Record>>& f) { return f.status(); },
      [&](const Status& failed, int attempts, double wait) {
        if (!ctx_.log) return;
        ctx_.log->Warn("Looking up in table '" + std::string(table) + "' failed " +
                       retry_.AttemptText(attempts) + ": " + failed.message() + "; retrying in " +
                       std::to_string(static_cast<int>(wait * 1000)) + " ms.");
      });
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

Status WriteAudit::Add(AuditWriter& w, std::string_view time, const TargetDef& target,
                       int64_t batch, size_t ti, size_t item, bool update,
                       const std::string& subject, bool own_row) {
  Place& p = places_[ti][item];
  const char* op = update ? kAuditUpdate : kAuditCreate;
  if (!own_row) {
    const int c = static_cast<int>(2 * ti + (update ? 1 : 0));
    auto& chunk = chunks_[c];
    if (!chunk) chunk = std::make_unique<AuditChunk>(target.name, op, batch);
    p.index = chunk->Add(subject, target.type);
    if (p.index >= 0) {
      p.chunk = c;
      return Status::OK();
    }
  }
  auto id = w.Append(time, target.name, op, subject, target.type, batch);
  if (!id.ok()) return id.status();
  p.row = *id;
  return Status::OK();
}

Status WriteAudit::Remove(AuditWriter& w, size_t ti, size_t item) {
  Place& p = places_[ti][item];
  if (p.row) KEYONCE_RETURN_IF_ERROR(w.Remove(p.row));
  if (p.chunk >= 0) chunks_[p.chunk]->Remove(p.index);
  p = Place{};
  return Status::OK();
}

Status WriteAudit::Save(AuditWriter& w, std::string_view time) {
  for (auto& c : chunks_) {
    if (c) KEYONCE_RETURN_IF_ERROR(w.Save(time, *c));
  }
  return Status::OK();
}

}  // namespace keyonce
