#include "service/service.h"

#include <date/tz.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "core/clock.h"
#include "pipeline/runner.h"
#include "recipe/loader.h"
#include "schedule/cron.h"
#include "service/auth.h"
#include "service/http_server.h"
#include "service/metrics.h"
#include "service/request_util.h"
#include "service/web_assets.h"
#include "state/audit.h"
#include "state/privacy.h"
#include "state/service_db.h"
#include "state/sqlite_util.h"
#include "state/store.h"

namespace keyonce::service {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using std::chrono::sys_seconds;

constexpr const char* kVersion = "0.1.0";

// ---------------------------------------------------------------------------
// Configuration

namespace {

// `http:` of the config file: each key a whole number within its range.
template <class Where>
Status LoadHttpLimits(const YAML::Node& node, const Where& where, HttpLimits* limits) {
  if (!node.IsMap()) return Status::Invalid(where(node) + ": http is a mapping of limits");
  struct Key {
    const char* name;
    long min, max;
    std::function<void(long)> set;
  };
  const std::vector<Key> keys = {
      {"header_timeout_seconds", 1, 300,
       [&](long v) { limits->header_seconds = static_cast<int>(v); }},
      {"idle_timeout_seconds", 1, 3600,
       [&](long v) { limits->idle_seconds = static_cast<int>(v); }},
      {"request_timeout_seconds", 1, 3600,
       [&](long v) { limits->request_seconds = static_cast<int>(v); }},
      {"max_connections", 1, 100000,
       [&](long v) { limits->max_connections = static_cast<size_t>(v); }},
      {"max_connections_per_client", 1, 100000,
       [&](long v) { limits->max_connections_per_client = static_cast<size_t>(v); }},
      {"reserve_connections", 0, 1000,
       [&](long v) { limits->reserve_connections = static_cast<size_t>(v); }},
  };
  std::vector<std::string> names;
  for (const auto& k : keys) names.push_back(k.name);
  for (const auto& kv : node) {
    const std::string name = kv.first.Scalar();
    auto k = std::find_if(keys.begin(), keys.end(), [&](const Key& k) { return name == k.name; });
    if (k == keys.end()) {
      return Status::Invalid(where(kv.first) + ": unknown key 'http." + name + "'" +
                             DidYouMean(name, names));
    }
    long v = 0;
    try {
      v = kv.second.as<long>();
    } catch (const std::exception&) {
      return Status::Invalid(where(kv.second) + ": 'http." + name + "' is a whole number");
    }
    if (v < k->min || v > k->max) {
      return Status::Invalid(where(kv.second) + ": 'http." + name + "' is " +
                             std::to_string(k->min) + "-" + std::to_string(k->max));
    }
    k->set(v);
  }
  return Status::OK();
}

}  // namespace

Status LoadServiceConfig(const std::filesystem::path& file, ServiceConfig* c) {
  auto loaded = LoadYamlFile(file, "the config file");
  if (!loaded.ok()) return loaded.status();
  YAML::Node root = *loaded;
  auto where = [&](const YAML::Node& n) {
    return file.string() + ":" + std::to_string(n.Mark().line + 1) + ":" +
           std::to_string(n.Mark().column + 1);
  };
  if (!root.IsMap()) return Status::Invalid(where(root) + ": expected a mapping of settings");
  const std::filesystem::path base = file.parent_path();
  auto path_of = [&](const YAML::Node& n) {
    std::filesystem::path p = n.Scalar();
    return p.is_absolute() ? p : base / p;
  };
  static const std::vector<std::string> kKeys = {"recipes",    "state",    "listen",
                                                 "tokens",     "timezone", "max_concurrent_runs",
                                                 "identity",   "tls",      "audit_retention_days",
                                                 "log_format", "http"};
  for (const auto& kv : root) {
    std::string k = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    try {
      if (k == "recipes")
        c->recipes_dir = path_of(v);
      else if (k == "state")
        c->state_path = path_of(v);
      else if (k == "tokens")
        c->tokens_path = path_of(v);
      else if (k == "timezone")
        c->timezone = v.Scalar();
      else if (k == "identity")
        c->identity = v.Scalar();
      else if (k == "max_concurrent_runs")
        c->max_concurrent_runs = v.as<int>();
      else if (k == "audit_retention_days")
        c->audit_retention_days = v.as<int>();
      else if (k == "log_format")
        c->json_logs = v.Scalar() == "json";
      else if (k == "listen") {
        std::string s = v.Scalar();
        auto colon = s.rfind(':');
        if (colon == std::string::npos) return Status::Invalid(where(v) + ": listen is HOST:PORT");
        c->listen_host = s.substr(0, colon);
        c->listen_port = static_cast<uint16_t>(std::stoi(s.substr(colon + 1)));
      } else if (k == "tls") {
        if (!v.IsMap()) return Status::Invalid(where(v) + ": tls has cert and key");
        for (const auto& t : v) {
          std::string tk = t.first.Scalar();
          if (tk == "cert")
            c->tls_cert = path_of(t.second);
          else if (tk == "key")
            c->tls_key = path_of(t.second);
          else
            return Status::Invalid(where(t.first) + ": unknown key 'tls." + tk + "' (cert, key)");
        }
      } else if (k == "http") {
        if (Status st = LoadHttpLimits(v, where, &c->http); !st.ok()) return st;
      } else {
        return Status::Invalid(where(kv.first) + ": unknown setting '" + k + "'" +
                               DidYouMean(k, kKeys));
      }
    } catch (const std::exception&) {
      return Status::Invalid(where(v) + ": '" + k + "' has the wrong type");
    }
  }
  return Status::OK();
}

namespace {

// ---------------------------------------------------------------------------
// Logging: the service's own lines, and the runs' lines echoed.

class ServiceLog {
 public:
  explicit ServiceLog(bool json) : json_(json) {}
  void Info(const std::string& msg) { Line("info", msg); }
  void Warn(const std::string& msg) { Line("warn", msg); }
  void Error(const std::string& msg) { Line("error", msg); }
  // A line a run's log already formatted (and redacted).
  void Raw(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    std::cerr << line << "\n" << std::flush;
  }

 private:
  void Line(const char* level, const std::string& msg) {
    std::string text = MaskCpr(msg);
    std::lock_guard<std::mutex> lock(mu_);
    if (json_) {
      std::cerr << json::serialize(
          json::object{{"time", UtcTimestamp()}, {"level", level}, {"msg", text}});
    } else {
      std::cerr << UtcTimestamp() << " " << level << (std::string(level).size() == 4 ? "  " : " ")
                << text;
    }
    std::cerr << "\n" << std::flush;
  }
  bool json_;
  std::mutex mu_;
};

// A run's log: lines are kept (the last kMaxLines) and echoed to the service log.
class RunLines : public std::streambuf {
 public:
  static constexpr size_t kMaxLines = 2000;
  RunLines(ServiceLog* log, std::string prefix) : log_(log), prefix_(std::move(prefix)) {}
  std::vector<std::string> Lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return {lines_.begin(), lines_.end()};
  }

 protected:
  int overflow(int c) override {
    if (c == EOF) return 0;
    char ch = static_cast<char>(c);
    if (ch == '\n') {
      Flush();
    } else if (ch != '\r' && partial_.size() < 64 * 1024) {
      partial_ += ch;
    }
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    for (std::streamsize i = 0; i < n; ++i) overflow(static_cast<unsigned char>(s[i]));
    return n;
  }

 private:
  void Flush() {
    // Progress lines (terminal escapes) are not log lines.
    if (partial_.empty() || partial_[0] == '\033') {
      partial_.clear();
      return;
    }
    log_->Raw(prefix_ + partial_);
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(std::move(partial_));
    if (lines_.size() > kMaxLines) lines_.pop_front();
    partial_.clear();
  }
  ServiceLog* log_;
  std::string prefix_, partial_;
  std::mutex mu_;
  std::deque<std::string> lines_;
};

// ---------------------------------------------------------------------------
// Small helpers for the API.

std::string UtcIso(sys_seconds t) { return date::format("%FT%TZ", t); }

// The quarantine ids a queued run retries (service_runs.retry, a JSON array).
std::vector<int64_t> RetryIds(const std::string& json_text) {
  std::vector<int64_t> ids;
  json::value v = ParseOr(json_text, json::array{});
  if (v.is_array()) {
    for (const auto& id : v.as_array()) {
      if (id.is_int64()) ids.push_back(id.as_int64());
    }
  }
  return ids;
}

const char* Plural(int64_t n, const char* one, const char* many) { return n == 1 ? one : many; }

// What a run did, in a sentence or two a caseworker can read.
std::string Outcome(const std::string& status, const json::object& counts, const std::string& error,
                    int64_t open_quarantined) {
  if (status == "queued") return "Waiting to start.";
  if (status == "refused") {
    return "The run did not start and wrote nothing: " +
           (error.empty() ? std::string("see the log") : error) + ".";
  }
  if (status == "failed") {
    return "The run failed and wrote nothing more: " +
           (error.empty() ? std::string("see the log") : error) +
           ". IT has the details in the log.";
  }
  auto num = [&](const json::object& o, const char* k) -> int64_t {
    auto it = o.find(k);
    return it != o.end() && it->value().is_int64() ? it->value().as_int64() : 0;
  };
  std::ostringstream s;
  int64_t read = num(counts, "read");
  s << (status == "running" ? "So far " : "") << read << " "
    << Plural(read, "record was", "records were") << " read.";
  if (auto t = counts.find("targets"); t != counts.end() && t->value().is_object()) {
    for (const auto& [name, v] : t->value().as_object()) {
      if (!v.is_object()) continue;
      const auto& c = v.as_object();
      int64_t w = num(c, "written"), u = num(c, "updated"), same = num(c, "unchanged"),
              f = num(c, "failed");
      s << " " << std::string(name) << ": " << w << " written, " << u << " updated";
      if (same) s << ", " << same << " already up to date";
      if (f) s << ", " << f << " failed";
      s << ".";
    }
  }
  int64_t q = num(counts, "quarantined");
  if (q) {
    s << " " << q << " " << Plural(q, "record needs", "records need")
      << " a person's attention (in the inbox)";
    if (open_quarantined >= 0 && open_quarantined != q)
      s << "; " << open_quarantined << " still open";
    s << ".";
  }
  int64_t filtered = num(counts, "filtered");
  if (filtered)
    s << " " << filtered << " " << Plural(filtered, "record was", "records were")
      << " left out by the recipe's rules.";
  if (status == "interrupted") s << " The run was interrupted and will continue where it stopped.";
  if (status == "cancelled") s << " The run was cancelled; what was written stays written.";
  if (status == "completed") s << " Everything was delivered.";
  return s.str();
}

// ---------------------------------------------------------------------------

class Service {
 public:
  explicit Service(ServiceConfig cfg)
      : cfg_(std::move(cfg)), log_(cfg_.json_logs), signals_(io_), tick_(io_) {}

  int Run();

 private:
  struct LoadedRecipe {
    std::shared_ptr<const Recipe> recipe;
    std::filesystem::path file;
    std::optional<CronSchedule> cron;
    const date::time_zone* tz = nullptr;
    std::optional<sys_seconds> next_fire;  // the next scheduled run
  };
  struct ActiveRun {
    int64_t id = 0;
    std::string recipe;
    std::thread thread;
    std::atomic<bool> stop{false};
    bool cancelled = false;
    std::atomic<int64_t> engine_run{0};
    std::mutex mu;
    std::string progress;  // RunSummary JSON so far
    std::unique_ptr<RunLines> lines;
    std::chrono::steady_clock::time_point started;
  };

  // Start-up and reload.
  Status OpenState();
  void LoadTokens(bool initial);
  json::object LoadRecipes(bool initial);
  void SetUpSchedule(LoadedRecipe& lr, bool changed);
  void HandleMissed();

  // Scheduling and runs.
  void Tick();
  Result<int64_t> Enqueue(const std::string& recipe, const std::string& trigger,
                          const std::string& started_by,
                          const std::map<std::string, std::string>& params,
                          const std::vector<int64_t>& retry,
                          std::optional<sys_seconds> fire_time = std::nullopt);
  bool Running(const std::string& recipe) const;
  int QueuedCount(const std::string& recipe) const;
  bool Busy(const std::string& recipe) const;  // running or queued
  // Identifies a schedule in schedule_state: "<normalised cron> <zone>".
  static std::string ScheduleKey(const LoadedRecipe& lr) {
    return lr.cron->ToString() + " " + (lr.tz ? lr.tz->name() : "UTC");
  }
  void Pump();
  void StartRun(const RunRow& row);
  void Finished(std::shared_ptr<ActiveRun> run, Result<RunSummary> result);
  void Shutdown(const char* why);

  // HTTP.
  Response Handle(const Request& req);
  Response Api(const Request& req, const Principal& who, const std::vector<std::string>& parts,
               const std::map<std::string, std::string>& query);
  Response Login(const Request& req);
  Response Static(const Request& req, std::string_view path);
  json::object RecipeJson(const LoadedRecipe& lr);
  json::object RunJson(const RunRow& row);
  Response StartRunApi(const Request& req, const Principal& who, const std::string& name);
  Response QuarantineApi(const Request& req, const Principal& who,
                         const std::vector<std::string>& parts,
                         const std::map<std::string, std::string>& query);
  std::optional<Principal> Authenticate(const Request& req);
  void PruneAudit();
  void AuditQuarantine(const char* operation, const Principal& who,
                       const StateStore::QuarantineRow& row, const std::string& detail);

  ServiceConfig cfg_;
  ServiceLog log_;
  asio::io_context io_;
  asio::signal_set signals_;
  asio::steady_timer tick_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<ServiceDb> db_;
  TokenStore tokens_;
  Sessions sessions_;
  const date::time_zone* default_tz_ = nullptr;
  std::map<std::string, LoadedRecipe> recipes_;               // by recipe name
  std::map<std::filesystem::path, std::string> file_recipe_;  // file -> recipe name
  std::deque<int64_t> queue_;                                 // queued service runs, FIFO
  std::set<int64_t> retry_queued_;                // quarantined records a queued run will retry
  std::map<int64_t, std::string> queued_recipe_;  // id -> recipe
  std::map<int64_t, std::shared_ptr<ActiveRun>> active_;
  Metrics metrics_;
  bool shutting_down_ = false;
  std::string robot_;
  bool tls_ = false;
  uint64_t ticks_ = 0;
};

Status Service::OpenState() {
  auto store = StateStore::Open(cfg_.state_path);
  if (!store.ok()) return store.status();
  store_ = std::move(store).value();
  db_ = std::make_unique<ServiceDb>(*store_);
  if (Status st = EnsureAuditSchema(*store_); !st.ok()) return st;
  return db_->Init();
}

void Service::PruneAudit() {
  int64_t pruned = 0;
  Status st = PruneAuditIfDue(*store_, cfg_.audit_retention_days, &pruned);
  if (!st.ok())
    log_.Warn("pruning the audit log: " + st.message());
  else if (pruned)
    log_.Info("audit log: removed " + std::to_string(pruned) + " entries older than " +
              std::to_string(cfg_.audit_retention_days) + " days");
}

void Service::AuditQuarantine(const char* operation, const Principal& who,
                              const StateStore::QuarantineRow& row, const std::string& detail) {
  AuditEntry e;
  e.robot = robot_;
  e.actor = who.name;
  e.recipe = row.recipe;
  e.run = row.run;
  e.system = "keyonce";
  e.operation = operation;
  Pseudonymizer pseudonymizer(store_->pseudonym_key());
  e.subject = StoredRecordSubject(pseudonymizer, row.record);
  e.detail = "quarantined record " + std::to_string(row.id) +
             (row.ref.empty() ? "" : " (" + row.ref + ")") + (detail.empty() ? "" : "; " + detail);
  if (Status st = AppendAudit(*store_, e); !st.ok())
    log_.Error("writing the audit log: " + st.message());
}

void Service::LoadTokens(bool initial) {
  if (cfg_.tokens_path.empty()) {
    if (initial) log_.Warn("no tokens file (--tokens): every request but /health will be refused");
    return;
  }
  auto t = TokenStore::Load(cfg_.tokens_path);
  if (!t.ok()) {
    log_.Error("loading tokens: " + t.status().message() +
               (initial ? "" : "; keeping the previous tokens"));
    return;
  }
  tokens_ = std::move(t).value();
  sessions_.Revalidate(tokens_);
  log_.Info("loaded " + std::to_string(tokens_.size()) + " token(s) from " +
            cfg_.tokens_path.string());
}

void Service::SetUpSchedule(LoadedRecipe& lr, bool changed) {
  lr.cron.reset();
  lr.next_fire.reset();
  const Recipe& r = *lr.recipe;
  if (!r.schedule) return;
  auto cron = CronSchedule::Parse(r.schedule->cron);
  if (!cron.ok()) return;  // the loader already rejected it
  lr.cron = *cron;
  lr.tz = default_tz_;
  if (!r.schedule->timezone.empty()) {
    try {
      lr.tz = date::locate_zone(r.schedule->timezone);
    } catch (const std::exception&) {
    }
  }
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  auto last = db_->LastFire(r.name);
  sys_seconds from = now;
  std::string key = ScheduleKey(lr);
  if (last.ok() && last->has_value() && (*last)->second == key && !changed) {
    from = sys_seconds(std::chrono::seconds((*last)->first));
  } else {
    // A new schedule, or one whose time changed: it starts from now, with no catch-up.
    db_->SetLastFire(r.name, now.time_since_epoch().count(), key);
  }
  lr.next_fire = lr.cron->Next(from, lr.tz);
}

json::object Service::LoadRecipes(bool initial) {
  json::array loaded, rejected;
  std::set<std::filesystem::path> seen;
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(cfg_.recipes_dir, ec)) {
    auto p = e.path();
    if (!e.is_regular_file() || (p.extension() != ".yaml" && p.extension() != ".yml")) continue;
    std::string stem = p.stem().string();
    if (stem.size() > 5 && stem.substr(stem.size() - 5) == "_test") continue;
    files.push_back(p);
  }
  if (ec)
    log_.Error("reading the recipes folder " + cfg_.recipes_dir.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());
  std::map<std::string, LoadedRecipe> next;
  std::map<std::filesystem::path, std::string> next_files;
  for (const auto& f : files) {
    Diagnostics diags;
    auto r = LoadRecipe(f, &diags);
    std::string errors;
    for (const auto& d : diags.items()) {
      if (!d.warning) errors += (errors.empty() ? "" : "; ") + d.ToString();
    }
    auto old = file_recipe_.find(f);
    if (!r) {
      std::string keep;
      if (old != file_recipe_.end() && recipes_.count(old->second)) {
        next[old->second] = recipes_[old->second];
        next_files[f] = old->second;
        keep = "; keeping the previous version";
      }
      log_.Error("loading recipe " + f.filename().string() + ": " + errors + keep);
      rejected.push_back(json::object{{"file", f.filename().string()}, {"error", errors}});
      continue;
    }
    if (next.count(r->name)) {
      std::string msg = f.string() + ": recipe '" + r->name + "' is already defined in " +
                        next[r->name].file.filename().string();
      log_.Error("loading recipe " + f.filename().string() + ": " + msg);
      rejected.push_back(json::object{{"file", f.filename().string()}, {"error", msg}});
      continue;
    }
    LoadedRecipe lr;
    lr.recipe = r;
    lr.file = f;
    bool changed = false;
    if (auto prev = recipes_.find(r->name); prev != recipes_.end() && !initial) {
      const auto& ps = prev->second.recipe->schedule;
      changed = ps.has_value() != r->schedule.has_value() ||
                (ps && (ps->cron != r->schedule->cron || ps->timezone != r->schedule->timezone));
      if (!changed) {
        lr.cron = prev->second.cron;
        lr.tz = prev->second.tz;
        lr.next_fire = prev->second.next_fire;
      }
    }
    if (!lr.cron || changed || initial) SetUpSchedule(lr, changed);
    next_files[f] = r->name;
    loaded.push_back(json::value(r->name));
    next[r->name] = std::move(lr);
  }
  recipes_ = std::move(next);
  file_recipe_ = std::move(next_files);
  log_.Info("loaded " + std::to_string(recipes_.size()) + " recipe(s) from " +
            cfg_.recipes_dir.string() +
            (rejected.empty() ? "" : "; " + std::to_string(rejected.size()) + " rejected"));
  return json::object{{"loaded", std::move(loaded)}, {"rejected", std::move(rejected)}};
}

void Service::HandleMissed() {
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  for (auto& [name, lr] : recipes_) {
    if (!lr.cron || !lr.next_fire || *lr.next_fire > now) continue;
    // Count what was missed (bounded) and find the latest missed fire time.
    int missed = 0;
    sys_seconds last = *lr.next_fire;
    for (auto t = lr.next_fire; t && *t <= now && missed < 100000; t = lr.cron->Next(*t, lr.tz)) {
      last = *t;
      ++missed;
    }
    std::string key = ScheduleKey(lr);
    if (lr.recipe->schedule->run_missed_once) {
      log_.Info("recipe " + name + ": " + std::to_string(missed) +
                " scheduled run(s) were missed while the "
                "service was down; running once now (missed: run_once)");
      auto id = Enqueue(name, "missed", "", {}, {}, last);
      if (!id.ok()) log_.Error("queuing the missed run of " + name + ": " + id.status().message());
      metrics_.Missed(name, missed);
    } else {
      log_.Info("recipe " + name + ": skipping " + std::to_string(missed) +
                " scheduled run(s) missed while the service was down (missed: skip)");
      db_->SetLastFire(name, last.time_since_epoch().count(), key);
      metrics_.Missed(name, missed);
    }
    lr.next_fire = lr.cron->Next(last, lr.tz);
  }
}

bool Service::Running(const std::string& recipe) const {
  for (const auto& [id, a] : active_) {
    if (a->recipe == recipe) return true;
  }
  return false;
}

int Service::QueuedCount(const std::string& recipe) const {
  int n = 0;
  for (const auto& [id, r] : queued_recipe_) n += (r == recipe);
  return n;
}

bool Service::Busy(const std::string& recipe) const {
  return Running(recipe) || QueuedCount(recipe) > 0;
}

void Service::Tick() {
  if (shutting_down_) return;
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  for (auto& [name, lr] : recipes_) {
    if (!lr.cron || !lr.next_fire || *lr.next_fire > now) continue;
    // After a stall (suspend, a clock jump) several fire times may have
    // passed: they make one run, never a burst.
    sys_seconds fire = *lr.next_fire;
    for (auto t = lr.cron->Next(fire, lr.tz); t && *t <= now;) {
      fire = *t;
      t = lr.cron->Next(fire, lr.tz);
    }
    double lag =
        std::chrono::duration<double>(std::chrono::system_clock::now() - *lr.next_fire).count();
    metrics_.SchedulerLag(lag);
    std::string key = ScheduleKey(lr);
    bool busy = Busy(name);
    bool queued_schedule = QueuedCount(name) > 0;
    if (busy && (lr.recipe->refuse_overlap || queued_schedule)) {
      log_.Warn("recipe " + name + ": the scheduled run at " + UtcIso(fire) + " was skipped: " +
                (queued_schedule ? "a run is already waiting"
                                 : "the previous run is still going (overlap: refuse)"));
      db_->SetLastFire(name, fire.time_since_epoch().count(), key);
      metrics_.Skipped(name);
    } else {
      auto id = Enqueue(name, "schedule", "", {}, {}, fire);
      if (!id.ok()) {
        log_.Error("queuing the scheduled run of " + name + ": " + id.status().message());
        continue;  // try again at the next tick
      }
      log_.Info("recipe " + name + ": scheduled run " + std::to_string(*id) +
                " queued (fire time " + UtcIso(fire) + ", lag " +
                std::to_string(static_cast<int>(lag * 1000)) + " ms)");
    }
    lr.next_fire = lr.cron->Next(fire, lr.tz);
  }
  if (++ticks_ % 3600 == 0) PruneAudit();  // hourly; prunes at most once a day
  Pump();
  tick_.expires_after(
      std::chrono::milliseconds(1000 -
                                std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                        .count() %
                                    1000 +
                                5));
  tick_.async_wait([this](boost::system::error_code ec) {
    if (!ec) Tick();
  });
}

Result<int64_t> Service::Enqueue(const std::string& recipe, const std::string& trigger,
                                 const std::string& started_by,
                                 const std::map<std::string, std::string>& params,
                                 const std::vector<int64_t>& retry,
                                 std::optional<sys_seconds> fire_time) {
  RunRow row;
  row.recipe = recipe;
  row.trigger = trigger;
  row.started_by = started_by;
  json::object p, masked;
  for (const auto& [k, v] : params) {
    p[k] = v;
    masked[k] = MaskCpr(v);
  }
  row.params = json::serialize(p);
  row.params_masked = json::serialize(masked);
  if (!retry.empty()) {
    json::array a;
    for (int64_t id : retry) a.push_back(id);
    row.retry = json::serialize(a);
  }
  row.queued_at = UtcTimestamp();
  std::string key;
  if (fire_time) key = ScheduleKey(recipes_.at(recipe));
  auto id = db_->Enqueue(
      row, fire_time ? std::optional<int64_t>(fire_time->time_since_epoch().count()) : std::nullopt,
      key);
  if (!id.ok()) return id;
  queue_.push_back(*id);
  queued_recipe_[*id] = recipe;
  retry_queued_.insert(retry.begin(), retry.end());
  asio::post(io_, [this] { Pump(); });
  return id;
}

void Service::Pump() {
  if (shutting_down_) return;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (static_cast<int>(active_.size()) >= cfg_.max_concurrent_runs) return;
    int64_t id = *it;
    const std::string recipe = queued_recipe_[id];
    if (Running(recipe)) {
      ++it;
      continue;
    }
    it = queue_.erase(it);
    queued_recipe_.erase(id);
    auto row = db_->Get(id);
    if (!row.ok() || !row->has_value()) {
      log_.Error("run " + std::to_string(id) + " vanished from the queue");
      continue;
    }
    StartRun(**row);
  }
}

void Service::StartRun(const RunRow& row) {
  auto lr = recipes_.find(row.recipe);
  if (lr == recipes_.end()) {
    RunRow done = row;
    done.status = "failed";
    done.finished_at = UtcTimestamp();
    done.error = "the recipe '" + row.recipe + "' is no longer loaded";
    done.params.clear();
    db_->Finish(done);
    log_.Error("run " + std::to_string(row.id) + ": " + done.error);
    return;
  }
  std::shared_ptr<const Recipe> recipe = lr->second.recipe;
  RunOptions opt;
  opt.state_path = cfg_.state_path;
  json::value params = ParseOr(row.params, json::object{});
  if (params.is_object()) {
    for (const auto& [k, v] : params.as_object()) {
      if (v.is_string()) opt.params[std::string(k)] = std::string(v.as_string());
    }
  }
  for (int64_t id : RetryIds(row.retry)) {
    opt.retry_quarantine.push_back(id);
    retry_queued_.erase(id);
  }
  auto run = std::make_shared<ActiveRun>();
  run->id = row.id;
  run->recipe = row.recipe;
  run->started = std::chrono::steady_clock::now();
  run->lines = std::make_unique<RunLines>(&log_, "");
  opt.trigger = row.trigger;
  opt.started_by = row.started_by;
  opt.robot = robot_;
  opt.audit_retention_days = cfg_.audit_retention_days;
  opt.log_format = cfg_.json_logs ? LogFormat::kJson : LogFormat::kText;
  opt.stop = &run->stop;
  db_->MarkStarted(row.id, UtcTimestamp());
  active_[row.id] = run;
  metrics_.Started(row.recipe);
  log_.Info("run " + std::to_string(row.id) + " of " + row.recipe + " started (" + row.trigger +
            (row.started_by.empty() ? "" : ", by " + row.started_by) + ")");
  run->thread = std::thread([this, run, recipe, opt = std::move(opt)]() mutable {
    std::ostream err(run->lines.get());
    std::ostringstream out;
    opt.err = &err;
    opt.out = &out;
    std::weak_ptr<ActiveRun> weak = run;
    opt.on_start = [this, weak](int64_t engine_run) {
      if (auto r = weak.lock()) {
        r->engine_run = engine_run;
        asio::post(io_, [this, id = r->id, engine_run] { db_->SetEngineRun(id, engine_run); });
      }
    };
    opt.on_progress = [weak](const RunSummary& s) {
      if (auto r = weak.lock()) {
        std::lock_guard<std::mutex> lock(r->mu);
        r->progress = s.ToJson();
      }
    };
    Result<RunSummary> result = Status::Internal("the run did not finish");
    try {
      result = RunRecipe(*recipe, opt);
    } catch (const std::exception& e) {
      result = Status::Internal(std::string("unexpected error: ") + e.what());
    }
    asio::post(io_, [this, run, result = std::move(result)]() mutable {
      Finished(run, std::move(result));
    });
  });
}

void Service::Finished(std::shared_ptr<ActiveRun> run, Result<RunSummary> result) {
  if (run->thread.joinable()) run->thread.join();
  active_.erase(run->id);
  RunRow row;
  row.id = run->id;
  row.finished_at = UtcTimestamp();
  row.engine_run = run->engine_run;
  if (result.ok()) {
    row.status = result->status;
    row.summary = result->ToJson();
    row.error = result->error;
  } else {
    // Refused: another run of the recipe holds it (e.g. one started from the
    // command line), or the state file does not belong to the targets.
    row.status = result.status().code() == Status::Code::kRefused ? "refused" : "failed";
    row.error = MaskCpr(result.status().message());
    row.summary = json::serialize(json::object{{"error", row.error}});
  }
  bool resume = false;
  if (row.status == "interrupted") {
    if (run->cancelled)
      row.status = "cancelled";
    else
      resume = true;  // SIGTERM: resumed at the next start
  }
  if (resume) {
    auto old = db_->Get(run->id);
    if (old.ok() && old->has_value()) row.params = (*old)->params;
  }
  std::string log;
  for (const auto& l : run->lines->Lines()) {
    if (log.size() > (1 << 20)) break;
    log += l + "\n";
  }
  row.log = log;
  if (Status st = db_->Finish(row); !st.ok())
    log_.Error("recording run " + std::to_string(run->id) + ": " + st.message());
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - run->started).count();
  metrics_.Finished(run->recipe, row.status, seconds, result.ok() ? &*result : nullptr);
  log_.Info("run " + std::to_string(run->id) + " of " + run->recipe + " finished: " + row.status +
            (row.error.empty() ? "" : " (" + row.error + ")"));
  if (shutting_down_) {
    if (active_.empty()) {
      http_->Stop();
      io_.stop();
    }
    return;
  }
  Pump();
}

void Service::Shutdown(const char* why) {
  if (shutting_down_) return;
  shutting_down_ = true;
  log_.Info(std::string("stopping (") + why + "): no new runs; " + std::to_string(active_.size()) +
            " run(s) stop after the batch in flight; queued runs wait for the next start");
  tick_.cancel();
  for (auto& [id, r] : active_) r->stop = true;
  if (active_.empty()) {
    http_->Stop();
    io_.stop();
  }
}

int Service::Run() {
  try {
    default_tz_ = date::locate_zone(cfg_.timezone);
  } catch (const std::exception&) {
    log_.Error("unknown time zone '" + cfg_.timezone +
               "' (an IANA name such as Europe/Copenhagen)");
    return 2;
  }
  if (Status st = OpenState(); !st.ok()) {
    log_.Error("opening the state store " + cfg_.state_path.string() + ": " + st.message());
    return 1;
  }
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  robot_ = cfg_.identity.empty() ? std::string("keyonce@") + host : cfg_.identity;
  LoadTokens(true);
  LoadRecipes(true);
  // Runs still marked running were cut off when the service died (the
  // out-of-memory killer under MemoryMax=, kill -9, a crash). Each is resumed
  // as a new engine run below; the engine run it had begun is marked failed,
  // so the history never shows it running forever.
  if (auto died = db_->Running(); died.ok()) {
    for (const auto& r : *died) {
      if (r.engine_run <= 0) continue;
      Status st = store_->AbandonRun(
          r.engine_run,
          "the service stopped during this run without finishing it (killed, e.g. by the "
          "out-of-memory killer or kill -9, or it crashed); it is resumed as a new run");
      if (!st.ok())
        log_.Warn("marking run " + std::to_string(r.engine_run) + " failed: " + st.message());
    }
  }
  auto resumed = db_->RequeueInterrupted();
  if (resumed.ok() && *resumed)
    log_.Info(std::to_string(*resumed) + " interrupted run(s) will resume");
  auto queued = db_->Queued();
  if (queued.ok()) {
    for (const auto& r : *queued) {
      queue_.push_back(r.id);
      queued_recipe_[r.id] = r.recipe;
      for (int64_t id : RetryIds(r.retry)) retry_queued_.insert(id);
    }
  }
  HandleMissed();
  PruneAudit();

  std::shared_ptr<asio::ssl::context> tls;
  if (!cfg_.tls_cert.empty() || !cfg_.tls_key.empty()) {
    tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    tls->use_certificate_chain_file(cfg_.tls_cert.string(), ec);
    if (!ec) tls->use_private_key_file(cfg_.tls_key.string(), asio::ssl::context::pem, ec);
    if (ec) {
      log_.Error("loading the TLS certificate and key (" + cfg_.tls_cert.string() + ", " +
                 cfg_.tls_key.string() + "): " + ec.message());
      return 2;
    }
    tls_ = true;
  }
  if (uint64_t files = RaiseOpenFilesLimit(cfg_.http); files < OpenFilesNeeded(cfg_.http)) {
    log_.Warn("the open-files limit is " + std::to_string(files) + ", below the " +
              std::to_string(OpenFilesNeeded(cfg_.http)) +
              " that http.max_connections needs: raise LimitNOFILE= (or ulimit -n)");
  }
  http_ = std::make_unique<HttpServer>(
      io_, [this](const Request& r) { return Handle(r); }, cfg_.http, tls);
  if (Status st = http_->Listen(cfg_.listen_host, cfg_.listen_port); !st.ok()) {
    log_.Error(st.message());
    return 1;
  }
  log_.Info(std::string("listening on ") + (tls_ ? "https" : "http") + "://" + cfg_.listen_host +
            ":" + std::to_string(http_->port()));

  signals_.add(SIGTERM);
  signals_.add(SIGINT);
  signals_.add(SIGHUP);
  std::function<void(boost::system::error_code, int)> on_signal = [&](boost::system::error_code ec,
                                                                      int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      log_.Info("SIGHUP: reloading recipes and tokens");
      LoadTokens(false);
      LoadRecipes(false);
      Pump();
      signals_.async_wait(on_signal);
    } else {
      Shutdown(sig == SIGTERM ? "SIGTERM" : "SIGINT");
      signals_.async_wait(on_signal);
    }
  };
  signals_.async_wait(on_signal);
  Tick();
  io_.run();
  for (auto& [id, r] : active_) {
    if (r->thread.joinable()) r->thread.join();
  }
  log_.Info("stopped");
  return 0;
}

// ---------------------------------------------------------------------------
// HTTP

std::optional<Principal> Service::Authenticate(const Request& req) {
  auto auth = req[http::field::authorization];
  if (auth.size() > 7 && (auth.substr(0, 7) == "Bearer " || auth.substr(0, 7) == "bearer ")) {
    return tokens_.Find(std::string(auth.substr(7)));
  }
  std::string sid = CookieValue(req[http::field::cookie], "keyonce_session");
  if (!sid.empty()) return sessions_.Find(sid);
  return std::nullopt;
}

Response Service::Static(const Request& req, std::string_view path) {
  const WebAsset* a = FindWebAsset(path == "/" ? "/static/index.html" : path);
  if (!a) return ErrorResponse(404, "no such page", req);
  Response res{http::status::ok, req.version()};
  res.set(http::field::content_type, a->content_type);
  res.set(http::field::cache_control, "no-cache");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
  res.set("Content-Security-Policy",
          "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
          "frame-ancestors 'none'; form-action 'self'; base-uri 'none'");
  res.keep_alive(req.keep_alive());
  if (req.method() != http::verb::head) res.body() = std::string(a->body);
  res.prepare_payload();
  return res;
}

Response Service::Login(const Request& req) {
  auto redirect = [&](const std::string& to, const std::string& cookie) {
    Response res{http::status::see_other, req.version()};
    res.set(http::field::location, to);
    res.set(http::field::cache_control, "no-store");
    if (!cookie.empty()) res.set(http::field::set_cookie, cookie);
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
  };
  auto form = ParseForm(req.body());
  auto who = tokens_.Find(form["token"]);
  if (!who) {
    log_.Warn("a login with an unknown token was refused");
    return redirect("/?login=failed", "");
  }
  std::string sid = sessions_.Create(*who);
  log_.Info("login: " + who->name + " (" + RoleName(who->role) + ")");
  return redirect("/", "keyonce_session=" + sid + "; HttpOnly; SameSite=Strict; Path=/" +
                           (tls_ ? "; Secure" : ""));
}

Response Service::Handle(const Request& req) {
  metrics_.Request();
  std::string_view target = req.target();
  size_t qpos = target.find('?');
  std::string_view path = target.substr(0, qpos);
  auto query = qpos == std::string_view::npos ? std::map<std::string, std::string>{}
                                              : ParseForm(target.substr(qpos + 1));
  const auto method = req.method();
  const bool get = method == http::verb::get || method == http::verb::head;

  if (path == "/health") {
    if (!get) return ErrorResponse(405, "use GET", req);
    return JsonResponse(shutting_down_ ? 503 : 200,
                        json::serialize(json::object{{"status", shutting_down_ ? "stopping" : "ok"},
                                                     {"version", kVersion}}),
                        req.version(), req.keep_alive());
  }
  if (path == "/" || path.substr(0, 8) == "/static/") {
    if (!get) return ErrorResponse(405, "use GET", req);
    return Static(req, path);
  }
  if (path == "/login") {
    if (method != http::verb::post) return ErrorResponse(405, "use POST", req);
    return Login(req);
  }

  auto who = Authenticate(req);
  if (!who) {
    Response res = ErrorResponse(401, "a token is required", req);
    res.set(http::field::www_authenticate, "Bearer realm=\"keyonce\"");
    return res;
  }
  if (who->session && !get) {
    std::string csrf(req["X-CSRF-Token"]);
    if (csrf.empty() && path == "/logout") csrf = ParseForm(req.body())["csrf"];
    if (!SafeEquals(csrf, who->csrf)) return ErrorResponse(403, "missing or wrong CSRF token", req);
  }
  if (path == "/logout") {
    if (method != http::verb::post) return ErrorResponse(405, "use POST", req);
    sessions_.Remove(CookieValue(req[http::field::cookie], "keyonce_session"));
    Response res{http::status::see_other, req.version()};
    res.set(http::field::location, "/");
    res.set(http::field::set_cookie,
            "keyonce_session=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/");
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
  }
  if (path == "/metrics") {
    if (!get) return ErrorResponse(405, "use GET", req);
    if (!who->IsStaff()) return ErrorResponse(403, "metrics are for operators and admins", req);
    std::vector<std::pair<std::string, int>> queued;
    for (const auto& [name, lr] : recipes_) queued.emplace_back(name, QueuedCount(name));
    Response res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.keep_alive(req.keep_alive());
    res.body() = metrics_.Render(static_cast<int>(active_.size()), queued);
    res.prepare_payload();
    return res;
  }
  auto parts = SplitPath(path);
  if (parts.size() >= 2 && parts[0] == "api" && parts[1] == "v1") {
    parts.erase(parts.begin(), parts.begin() + 2);
    return Api(req, *who, parts, query);
  }
  return ErrorResponse(404, "no such page", req);
}

json::object Service::RecipeJson(const LoadedRecipe& lr) {
  const Recipe& r = *lr.recipe;
  json::array params;
  for (const auto& p : r.params) {
    json::object o{{"name", p.name},
                   {"type", p.type},
                   {"label", p.label.empty() ? p.name : p.label},
                   {"help", p.help},
                   {"required", p.required}};
    o["default"] = p.default_value ? json::value(*p.default_value) : json::value(nullptr);
    o["pattern"] = p.pattern.empty() ? json::value(nullptr) : json::value(p.pattern);
    json::array values;
    for (const auto& v : p.values) values.push_back(json::value(v));
    o["values"] = std::move(values);
    params.push_back(std::move(o));
  }
  json::object o{{"name", r.name},
                 {"label", !r.label.empty()         ? r.label
                           : !r.description.empty() ? r.description
                                                    : r.name},
                 {"description", r.description},
                 {"params", std::move(params)},
                 {"overlap", r.refuse_overlap ? "refuse" : "queue"}};
  if (r.schedule) {
    o["schedule"] =
        json::object{{"cron", r.schedule->cron},
                     {"timezone", lr.tz ? lr.tz->name() : cfg_.timezone},
                     {"missed", r.schedule->run_missed_once ? "run_once" : "skip"},
                     {"next_run", lr.next_fire ? json::value(FormatInZone(*lr.next_fire, lr.tz))
                                               : json::value(nullptr)}};
  } else {
    o["schedule"] = nullptr;
  }
  o["running"] = Running(r.name);
  o["queued"] = QueuedCount(r.name);
  return o;
}

json::object Service::RunJson(const RunRow& row) {
  json::object o{{"id", row.id}, {"recipe", row.recipe}, {"trigger", row.trigger}};
  o["started_by"] = row.started_by.empty() ? json::value(nullptr) : json::value(row.started_by);
  o["status"] = row.status;
  o["queued_at"] = row.queued_at;
  o["started_at"] = row.started_at.empty() ? json::value(nullptr) : json::value(row.started_at);
  o["finished_at"] = row.finished_at.empty() ? json::value(nullptr) : json::value(row.finished_at);
  o["params"] = ParseOr(row.params_masked, json::object{});
  std::string summary = row.summary;
  if (auto a = active_.find(row.id); a != active_.end()) {
    std::lock_guard<std::mutex> lock(a->second->mu);
    summary = a->second->progress;
  }
  json::value counts = ParseOr(summary, json::object{});
  json::object c;
  if (counts.is_object()) {
    for (const char* k :
         {"read", "rejected", "filtered", "quarantined", "in_doubt", "targets", "seconds"}) {
      if (auto it = counts.as_object().find(k); it != counts.as_object().end()) c[k] = it->value();
    }
  }
  // This run's quarantined records (reference and reason only).
  json::array quarantined;
  int64_t open = -1;
  int64_t engine_run = row.engine_run;
  if (auto a = active_.find(row.id); a != active_.end()) engine_run = a->second->engine_run;
  if (engine_run) {
    auto rows = store_->ListQuarantine(row.recipe, "", 200, engine_run);
    if (rows.ok()) {
      open = 0;
      for (const auto& q : *rows) {
        open += q.status == "open";
        quarantined.push_back(json::object{{"id", q.id},
                                           {"ref", q.ref},
                                           {"reason", q.reason},
                                           {"stage", q.stage},
                                           {"target", q.target},
                                           {"status", q.status},
                                           {"position", q.position}});
      }
    }
  }
  o["outcome"] = Outcome(row.status, c, row.error, open);
  o["counts"] = std::move(c);
  o["quarantined"] = std::move(quarantined);
  o["error"] = row.error.empty() ? json::value(nullptr) : json::value(row.error);
  return o;
}

Response Service::StartRunApi(const Request& req, const Principal& who, const std::string& name) {
  auto lr = recipes_.find(name);
  if (lr == recipes_.end() || !who.MayStart(name)) {
    // Named only when it is a loaded recipe: never the caller's text.
    if (lr != recipes_.end())
      return ErrorResponse(403, "you may not start the recipe '" + name + "'", req);
    return ErrorResponse(404, "no such recipe", req);
  }
  if (shutting_down_) return ErrorResponse(503, "the service is stopping; try again shortly", req);
  std::map<std::string, std::string> raw;
  if (!req.body().empty()) {
    auto ct = req[http::field::content_type];
    if (ct.substr(0, 16) != "application/json") {
      return ErrorResponse(415, "send the parameters as application/json", req);
    }
    boost::system::error_code ec;
    json::value body = json::parse(req.body(), ec);
    if (ec) return ErrorResponse(400, "the body is not valid JSON: " + ec.message(), req);
    if (!body.is_object())
      return ErrorResponse(400, "the body must be a JSON object: {\"params\": {...}}", req);
    for (const auto& [k, v] : body.as_object()) {
      if (k != "params")
        return ErrorResponse(400, "the body holds an unknown key (only \"params\")", req);
    }
    if (auto p = body.as_object().find("params"); p != body.as_object().end()) {
      if (!p->value().is_object())
        return ErrorResponse(400, "\"params\" must be an object", req, "params");
      const auto& declared = lr->second.recipe->params;
      for (const auto& [k, v] : p->value().as_object()) {
        std::string key(k);
        if (std::none_of(declared.begin(), declared.end(),
                         [&](const auto& d) { return d.name == key; })) {
          // ResolveParams refuses it whatever its value, without repeating the name.
          raw[key] = "";
          continue;
        }
        if (v.is_string())
          raw[key] = std::string(v.as_string());
        else if (v.is_bool())
          raw[key] = v.as_bool() ? "true" : "false";
        else if (v.is_int64())
          raw[key] = std::to_string(v.as_int64());
        else if (v.is_uint64())
          raw[key] = std::to_string(v.as_uint64());
        else if (v.is_double()) {
          char buf[64];
          auto r = std::to_chars(buf, buf + sizeof buf, v.as_double());
          raw[key] = std::string(buf, r.ptr);
        } else if (v.is_null())
          continue;
        else
          return ErrorResponse(400, "parameter '" + key + "' must be a string, number or boolean",
                               req, key);
      }
    }
  }
  auto checked = ResolveParams(*lr->second.recipe, raw);
  if (!checked.ok())
    return ErrorResponse(400, checked.status().message(), req, FieldOf(checked.status().message()));
  if (lr->second.recipe->refuse_overlap && Busy(name)) {
    return ErrorResponse(
        409, "the recipe '" + name + "' is already running or waiting (overlap: refuse)", req);
  }
  auto id = Enqueue(name, "api", who.name, raw, {});
  if (!id.ok()) return ErrorResponse(503, "could not queue the run: " + id.status().message(), req);
  log_.Info(who.name + " started " + name + " (run " + std::to_string(*id) + ")");
  return JsonResponse(202, json::serialize(json::object{{"id", *id}, {"status", "queued"}}),
                      req.version(), req.keep_alive());
}

Response Service::QuarantineApi(const Request& req, const Principal& who,
                                const std::vector<std::string>& parts,
                                const std::map<std::string, std::string>& query) {
  auto ok = [&](unsigned status, const json::value& v) {
    return JsonResponse(status, json::serialize(v), req.version(), req.keep_alive());
  };
  // Evidence a target saved for this record (a browser's screenshot and page):
  // the files of its run's evidence folder named after its reference.
  auto evidence_of = [&](const StateStore::QuarantineRow& q) {
    std::vector<std::filesystem::path> files;
    if (q.ref.empty()) return files;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(EvidenceDir(cfg_.state_path, q.run), ec), end;
         !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      const std::string ext = it->path().extension().string();
      if (name.rfind(q.ref + "-", 0) == 0 && (ext == ".png" || ext == ".html")) {
        files.push_back(it->path());
      }
    }
    std::sort(files.begin(), files.end());
    return files;
  };
  auto item_json = [&](const StateStore::QuarantineRow& q, bool with_record) {
    json::object o{{"id", q.id},         {"recipe", q.recipe}, {"ref", q.ref},
                   {"stage", q.stage},   {"target", q.target}, {"position", q.position},
                   {"reason", q.reason}, {"status", q.status}, {"created_at", q.created_at},
                   {"run", q.run}};
    if (with_record) {
      o["record"] = ParseOr(q.record, json::object{});
      json::array ev;
      for (const auto& f : evidence_of(q)) ev.push_back(json::string(f.filename().string()));
      o["evidence"] = std::move(ev);
    }
    return o;
  };
  const auto method = req.method();
  if (parts.size() == 1) {
    if (method != http::verb::get) return ErrorResponse(405, "use GET", req);
    std::string status = query.count("status") ? query.at("status") : "open";
    if (status == "all") status = "";
    int limit = 200;
    if (query.count("limit")) {
      auto l = ToId(query.at("limit"));
      if (!l || *l < 1 || *l > 1000)
        return ErrorResponse(400, "limit must be 1-1000", req, "limit");
      limit = static_cast<int>(*l);
    }
    auto rows =
        store_->ListQuarantine(query.count("recipe") ? query.at("recipe") : "", status, limit);
    if (!rows.ok()) return ErrorResponse(503, "the state store is busy; try again", req);
    json::array a;
    for (const auto& q : *rows) a.push_back(item_json(q, false));
    return ok(200, a);
  }
  // Not found is said without the id: it is the caller's text.
  auto id = ToId(parts[1]);
  if (!id) return ErrorResponse(404, "no such quarantined record", req);
  auto row = store_->GetQuarantine(*id);
  if (!row.ok()) return ErrorResponse(404, "no such quarantined record", req);
  if (parts.size() == 4 && parts[2] == "evidence") {
    // A screenshot or page a target saved: only a file this record's listing
    // names (the caller's name is compared, never used as a path).
    if (method != http::verb::get) return ErrorResponse(405, "use GET", req);
    for (const auto& f : evidence_of(*row)) {
      if (f.filename().string() != parts[3]) continue;
      std::ifstream in(f, std::ios::binary);
      std::ostringstream body;
      body << in.rdbuf();
      if (!in && !in.eof()) return ErrorResponse(503, "the evidence cannot be read", req);
      Response res{http::status::ok, req.version()};
      const bool png = f.extension() == ".png";
      // The saved page is shown as text, never as a page of this site.
      res.set(http::field::content_type, png ? "image/png" : "text/plain; charset=utf-8");
      if (!png) res.set(http::field::content_disposition, "attachment");
      res.set(http::field::cache_control, "no-store");
      res.set("X-Content-Type-Options", "nosniff");
      res.set("Content-Security-Policy", "sandbox; default-src 'none'");
      res.keep_alive(req.keep_alive());
      res.body() = std::move(body).str();
      res.prepare_payload();
      return res;
    }
    return ErrorResponse(404, "no such evidence for this record", req);
  }
  if (parts.size() == 2) {
    if (method == http::verb::get) return ok(200, item_json(*row, true));
    if (method != http::verb::patch) return ErrorResponse(405, "use GET or PATCH", req);
    if (row->status != "open")
      return ErrorResponse(409, "the record is " + row->status + ", not open", req);
    if (req[http::field::content_type].substr(0, 16) != "application/json") {
      return ErrorResponse(415, "send the fields as application/json", req);
    }
    boost::system::error_code ec;
    json::value body = json::parse(req.body(), ec);
    if (ec) return ErrorResponse(400, "the body is not valid JSON: " + ec.message(), req);
    if (!body.is_object() || !body.as_object().contains("fields") ||
        !body.as_object().at("fields").is_object()) {
      return ErrorResponse(400, "the body must be {\"fields\": {\"name\": \"value\"}}", req,
                           "fields");
    }
    json::value record = ParseOr(row->record, json::object{});
    if (!record.is_object()) return ErrorResponse(409, "this record has no editable fields", req);
    for (const auto& [k, v] : body.as_object().at("fields").as_object()) {
      if (!record.as_object().contains(k)) {
        // A name the record does not have is the caller's text: not repeated.
        return ErrorResponse(400, "the record has no field of that name", req);
      }
      if (v.is_object() || v.is_array()) {
        return ErrorResponse(
            400, "field '" + std::string(k) + "' must be a string, number, boolean or null", req,
            std::string(k));
      }
      record.as_object()[k] = v;
    }
    if (Status st = store_->SetQuarantineRecord(*id, json::serialize(record)); !st.ok()) {
      return ErrorResponse(503, "the state store is busy; try again", req);
    }
    std::string names;
    for (const auto& [k, v] : body.as_object().at("fields").as_object())
      names += (names.empty() ? "" : ", ") + std::string(k);
    AuditQuarantine(kAuditQuarantineEdit, who, *row, "fields: " + names);
    log_.Info(who.name + " edited quarantined record " + std::to_string(*id) + " (" + row->ref +
              ")");
    auto fresh = store_->GetQuarantine(*id);
    return ok(200, item_json(fresh.ok() ? *fresh : *row, true));
  }
  if (parts.size() == 3 && (parts[2] == "retry" || parts[2] == "dismiss")) {
    if (method != http::verb::post) return ErrorResponse(405, "use POST", req);
    if (row->status != "open")
      return ErrorResponse(409, "the record is " + row->status + ", not open", req);
    if (parts[2] == "dismiss") {
      if (Status st = store_->SetQuarantineStatus(*id, "dismissed"); !st.ok()) {
        return ErrorResponse(503, "the state store is busy; try again", req);
      }
      AuditQuarantine(kAuditQuarantineDismiss, who, *row, "");
      log_.Info(who.name + " dismissed quarantined record " + std::to_string(*id) + " (" +
                row->ref + ")");
      row->status = "dismissed";
      return ok(200, item_json(*row, false));
    }
    if (!recipes_.count(row->recipe))
      return ErrorResponse(409, "the recipe '" + row->recipe + "' is not loaded", req);
    if (retry_queued_.count(*id)) {
      return ErrorResponse(409, "a retry of this record is already waiting to run", req);
    }
    if (shutting_down_)
      return ErrorResponse(503, "the service is stopping; try again shortly", req);
    // The retry runs with the parameters of the run that read the record; an
    // operator may override some: {"params": {"name": "value"}}.
    std::map<std::string, std::string> overrides;
    if (!req.body().empty()) {
      boost::system::error_code ec;
      json::value body = json::parse(req.body(), ec);
      const json::value* p =
          !ec && body.is_object() ? body.as_object().if_contains("params") : nullptr;
      if (ec || !body.is_object() || (p && !p->is_object())) {
        return ErrorResponse(400, "the body must be empty or {\"params\": {\"name\": \"value\"}}",
                             req, "params");
      }
      if (p) {
        for (const auto& [k, v] : p->as_object()) {
          if (v.is_object() || v.is_array()) {
            return ErrorResponse(400, "parameter values must be texts, numbers or booleans", req,
                                 "params");
          }
          overrides[std::string(k)] =
              v.is_string() ? std::string(v.as_string()) : json::serialize(v);
        }
      }
    }
    auto run = Enqueue(row->recipe, "retry", who.name, overrides, {*id});
    if (!run.ok())
      return ErrorResponse(503, "could not queue the run: " + run.status().message(), req);
    AuditQuarantine(kAuditQuarantineRetry, who, *row, "in service run " + std::to_string(*run));
    log_.Info(who.name + " retried quarantined record " + std::to_string(*id) + " (" + row->ref +
              ") in run " + std::to_string(*run));
    return ok(202, json::object{{"id", *run}, {"status", "queued"}});
  }
  return ErrorResponse(404, "no such endpoint", req);
}

Response Service::Api(const Request& req, const Principal& who,
                      const std::vector<std::string>& parts,
                      const std::map<std::string, std::string>& query) {
  auto ok = [&](unsigned status, const json::value& v) {
    return JsonResponse(status, json::serialize(v), req.version(), req.keep_alive());
  };
  const auto method = req.method();
  const bool get = method == http::verb::get || method == http::verb::head;
  if (parts.empty()) return ErrorResponse(404, "no such endpoint", req);
  const std::string& what = parts[0];

  if (what == "session" && parts.size() == 1) {
    if (!get) return ErrorResponse(405, "use GET", req);
    json::object o{{"name", who.name}, {"role", RoleName(who.role)}};
    if (who.role == Role::kCaseworker) {
      json::array a;
      for (const auto& r : who.recipes) a.push_back(json::value(r));
      o["recipes"] = std::move(a);
    } else {
      o["recipes"] = nullptr;
    }
    o["csrf"] = who.csrf.empty() ? json::value(nullptr) : json::value(who.csrf);
    return ok(200, o);
  }
  if (what == "recipes") {
    if (parts.size() == 1) {
      if (!get) return ErrorResponse(405, "use GET", req);
      json::array a;
      for (const auto& [name, lr] : recipes_) {
        if (who.MayStart(name)) a.push_back(RecipeJson(lr));
      }
      return ok(200, a);
    }
    const std::string& name = parts[1];
    if (parts.size() == 2) {
      if (!get) return ErrorResponse(405, "use GET", req);
      auto lr = recipes_.find(name);
      if (lr == recipes_.end()) return ErrorResponse(404, "no such recipe", req);
      if (!who.MayStart(name))
        return ErrorResponse(403, "you may not use the recipe '" + name + "'", req);
      return ok(200, RecipeJson(lr->second));
    }
    if (parts.size() == 3 && parts[2] == "runs") {
      if (method != http::verb::post) return ErrorResponse(405, "use POST", req);
      return StartRunApi(req, who, name);
    }
    return ErrorResponse(404, "no such endpoint", req);
  }
  if (what == "runs") {
    if (parts.size() == 1) {
      if (!get) return ErrorResponse(405, "use GET", req);
      int limit = 50;
      int64_t before = 0;
      if (query.count("limit")) {
        auto l = ToId(query.at("limit"));
        if (!l || *l < 1 || *l > 500)
          return ErrorResponse(400, "limit must be 1-500", req, "limit");
        limit = static_cast<int>(*l);
      }
      if (query.count("before")) {
        auto b = ToId(query.at("before"));
        if (!b) return ErrorResponse(400, "before must be a run id", req, "before");
        before = *b;
      }
      auto rows = db_->List(query.count("recipe") ? query.at("recipe") : "",
                            who.IsStaff() ? "" : who.name, before, limit);
      if (!rows.ok()) return ErrorResponse(503, "the state store is busy; try again", req);
      json::array a;
      for (const auto& r : *rows) a.push_back(RunJson(r));
      return ok(200, a);
    }
    // A caseworker may cancel no run: refused before the run is looked up,
    // so the answer is the same for every id and tells nothing about others' runs.
    if (parts.size() == 3 && parts[2] == "cancel" && method == http::verb::post && !who.IsStaff()) {
      return ErrorResponse(403, "only operators and admins cancel runs", req);
    }
    auto id = ToId(parts[1]);
    std::optional<RunRow> row;
    if (id) {
      auto r = db_->Get(*id);
      if (r.ok()) row = *r;
    }
    // A caseworker is told nothing about runs that are not theirs; nobody is
    // shown the id they sent (the caller's text).
    if (!row || (!who.IsStaff() && row->started_by != who.name)) {
      return ErrorResponse(404, "no such run", req);
    }
    if (parts.size() == 2) {
      if (!get) return ErrorResponse(405, "use GET", req);
      return ok(200, RunJson(*row));
    }
    if (parts.size() == 3 && parts[2] == "log") {
      if (!get) return ErrorResponse(405, "use GET", req);
      json::array lines;
      if (auto a = active_.find(row->id); a != active_.end()) {
        for (auto& l : a->second->lines->Lines()) lines.push_back(json::value(l));
      } else {
        std::istringstream in(row->log);
        for (std::string l; std::getline(in, l);) lines.push_back(json::value(l));
      }
      return ok(200, json::object{{"lines", std::move(lines)}});
    }
    if (parts.size() == 3 && parts[2] == "cancel") {
      if (method != http::verb::post) return ErrorResponse(405, "use POST", req);
      if (auto a = active_.find(row->id); a != active_.end()) {
        a->second->cancelled = true;
        a->second->stop = true;
        log_.Info(who.name + " cancelled run " + std::to_string(row->id));
        return ok(202, json::object{{"id", row->id}, {"status", "cancelling"}});
      }
      if (queued_recipe_.erase(row->id)) {
        queue_.erase(std::remove(queue_.begin(), queue_.end(), row->id), queue_.end());
        for (int64_t id : RetryIds(row->retry)) retry_queued_.erase(id);
        RunRow done = *row;
        done.status = "cancelled";
        done.finished_at = UtcTimestamp();
        done.params.clear();
        db_->Finish(done);
        log_.Info(who.name + " cancelled queued run " + std::to_string(row->id));
        return ok(202, json::object{{"id", row->id}, {"status", "cancelled"}});
      }
      return ErrorResponse(409, "run " + std::to_string(row->id) + " has already finished", req);
    }
    return ErrorResponse(404, "no such endpoint", req);
  }
  if (what == "schedule" && parts.size() == 1) {
    if (!get) return ErrorResponse(405, "use GET", req);
    if (!who.IsStaff()) return ErrorResponse(403, "the schedule is for operators and admins", req);
    json::array a;
    for (const auto& [name, lr] : recipes_) {
      if (!lr.recipe->schedule) continue;
      json::object o{{"recipe", name},
                     {"cron", lr.recipe->schedule->cron},
                     {"timezone", lr.tz ? lr.tz->name() : cfg_.timezone},
                     {"missed", lr.recipe->schedule->run_missed_once ? "run_once" : "skip"}};
      o["next_run"] =
          lr.next_fire ? json::value(FormatInZone(*lr.next_fire, lr.tz)) : json::value(nullptr);
      auto last = db_->LastFire(name);
      o["last_fire"] =
          last.ok() && last->has_value()
              ? json::value(FormatInZone(sys_seconds(std::chrono::seconds((*last)->first)), lr.tz))
              : json::value(nullptr);
      a.push_back(std::move(o));
    }
    return ok(200, a);
  }
  if (what == "quarantine") {
    if (!who.IsStaff())
      return ErrorResponse(403, "the quarantine inbox is for operators and admins", req);
    return QuarantineApi(req, who, parts, query);
  }
  if (what == "reload" && parts.size() == 1) {
    if (method != http::verb::post) return ErrorResponse(405, "use POST", req);
    if (who.role != Role::kAdmin) return ErrorResponse(403, "only admins reload", req);
    log_.Info(who.name + " asked for a reload");
    LoadTokens(false);
    json::object result = LoadRecipes(false);
    Pump();
    return ok(200, result);
  }
  return ErrorResponse(404, "no such endpoint", req);
}

}  // namespace

int RunService(const ServiceConfig& config) {
  Service s(config);
  return s.Run();
}

int CheckService(const ServiceConfig& config) {
  int problems = 0;
  std::cout << "state file: " << config.state_path.string() << "\n";
  std::cout << "listen: " << config.listen_host << ":" << config.listen_port
            << (config.tls_cert.empty() ? "" : " (TLS)") << "\n";
  const HttpLimits& h = config.http;
  std::cout << "http: headers within " << h.header_seconds << " s, keep-alive " << h.idle_seconds
            << " s, at most " << h.max_connections << " connections ("
            << h.max_connections_per_client << " per client address, " << h.reserve_connections
            << " more for /health)\n";
  try {
    date::locate_zone(config.timezone);
    std::cout << "time zone: " << config.timezone << "\n";
  } catch (const std::exception&) {
    std::cout << "error: unknown time zone '" << config.timezone << "'\n";
    ++problems;
  }
  if (config.tokens_path.empty()) {
    std::cout << "tokens: none configured (every request but /health is refused)\n";
  } else {
    auto t = TokenStore::Load(config.tokens_path);
    if (t.ok()) {
      std::cout << "tokens: " << t->size() << " in " << config.tokens_path.string() << "\n";
    } else {
      std::cout << "error: " << t.status().message() << "\n";
      ++problems;
    }
  }
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(config.recipes_dir, ec)) {
    auto p = e.path();
    std::string stem = p.stem().string();
    if ((p.extension() == ".yaml" || p.extension() == ".yml") &&
        !(stem.size() > 5 && stem.substr(stem.size() - 5) == "_test")) {
      files.push_back(p);
    }
  }
  if (ec) {
    std::cout << "error: reading the recipes folder " << config.recipes_dir.string() << ": "
              << ec.message() << "\n";
    ++problems;
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    Diagnostics diags;
    auto r = LoadRecipe(f, &diags);
    for (const auto& d : diags.items()) std::cout << d.ToString() << "\n";
    if (!r) {
      ++problems;
      continue;
    }
    std::cout << "recipe " << r->name;
    if (r->schedule)
      std::cout << ": " << r->schedule->cron << " ("
                << (r->schedule->timezone.empty() ? config.timezone : r->schedule->timezone) << ")";
    std::cout << "\n";
  }
  std::cout << (problems ? std::to_string(problems) + " problem(s)" : std::string("ok")) << "\n";
  return problems ? 2 : 0;
}

}  // namespace keyonce::service
