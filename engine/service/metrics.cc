#include "service/metrics.h"

#include <sstream>

#include "pipeline/runner.h"

namespace keyonce::service {

namespace {
std::string Esc(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}
}  // namespace

void Metrics::Finished(const std::string& recipe, const std::string& status, double seconds,
                       const RunSummary* s) {
  ++runs_[{recipe, status}];
  auto& h = duration_[recipe];
  for (size_t i = 0; i < std::size(kBuckets); ++i) {
    if (seconds <= kBuckets[i]) ++h.counts[i];
  }
  ++h.count;
  h.sum += seconds;
  if (!s) return;
  read_[recipe] += s->read;
  quarantined_[recipe] += s->quarantined;
  rejected_[recipe] += s->rejected;
  filtered_[recipe] += s->filtered;
  for (const auto& [target, c] : s->targets) {
    written_[{recipe, target}] += c.written;
    updated_[{recipe, target}] += c.updated;
    failed_[{recipe, target}] += c.failed;
  }
}

void Metrics::SchedulerLag(double seconds) {
  last_lag_ = seconds;
  if (seconds > max_lag_) max_lag_ = seconds;
  ++fires_;
}

std::string Metrics::Render(int running,
                            const std::vector<std::pair<std::string, int>>& queued) const {
  std::ostringstream o;
  auto head = [&](const char* name, const char* type, const char* help) {
    o << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
  };
  auto per_recipe = [&](const char* name, const char* help,
                        const std::map<std::string, uint64_t>& m) {
    head(name, "counter", help);
    for (const auto& [r, v] : m) o << name << "{recipe=\"" << Esc(r) << "\"} " << v << "\n";
  };
  auto per_target = [&](const char* name, const char* help,
                        const std::map<std::pair<std::string, std::string>, uint64_t>& m) {
    head(name, "counter", help);
    for (const auto& [k, v] : m) {
      o << name << "{recipe=\"" << Esc(k.first) << "\",target=\"" << Esc(k.second) << "\"} " << v
        << "\n";
    }
  };
  head("keyonce_runs_total", "counter", "Runs finished, by recipe and status.");
  for (const auto& [k, v] : runs_) {
    o << "keyonce_runs_total{recipe=\"" << Esc(k.first) << "\",status=\"" << Esc(k.second) << "\"} "
      << v << "\n";
  }
  per_recipe("keyonce_runs_started_total", "Runs started, by recipe.", started_);
  head("keyonce_runs_running", "gauge", "Runs in progress.");
  o << "keyonce_runs_running " << running << "\n";
  head("keyonce_runs_queued", "gauge", "Runs waiting to start, by recipe.");
  for (const auto& [r, n] : queued)
    o << "keyonce_runs_queued{recipe=\"" << Esc(r) << "\"} " << n << "\n";
  per_recipe("keyonce_records_read_total", "Records read from the source.", read_);
  per_recipe("keyonce_records_quarantined_total", "Records quarantined (in the inbox).",
             quarantined_);
  per_recipe("keyonce_records_rejected_total",
             "Source rows that could not be read (quarantined at the source).", rejected_);
  per_recipe("keyonce_records_filtered_total", "Records left out by filters.", filtered_);
  per_target("keyonce_records_written_total", "Records written (created) in a target.", written_);
  per_target("keyonce_records_updated_total", "Records updated in a target.", updated_);
  per_target("keyonce_records_failed_total", "Writes that failed for good.", failed_);
  head("keyonce_run_duration_seconds", "histogram", "Run duration.");
  for (const auto& [r, h] : duration_) {
    for (size_t i = 0; i < std::size(kBuckets); ++i) {
      o << "keyonce_run_duration_seconds_bucket{recipe=\"" << Esc(r) << "\",le=\"" << kBuckets[i]
        << "\"} " << h.counts[i] << "\n";
    }
    o << "keyonce_run_duration_seconds_bucket{recipe=\"" << Esc(r) << "\",le=\"+Inf\"} " << h.count
      << "\n";
    o << "keyonce_run_duration_seconds_sum{recipe=\"" << Esc(r) << "\"} " << h.sum << "\n";
    o << "keyonce_run_duration_seconds_count{recipe=\"" << Esc(r) << "\"} " << h.count << "\n";
  }
  head("keyonce_scheduler_lag_seconds", "gauge",
       "Delay between a schedule's fire time and its run being queued (last).");
  o << "keyonce_scheduler_lag_seconds " << last_lag_ << "\n";
  head("keyonce_scheduler_lag_max_seconds", "gauge", "Largest scheduler lag since start.");
  o << "keyonce_scheduler_lag_max_seconds " << max_lag_ << "\n";
  head("keyonce_scheduler_fires_total", "counter", "Scheduled fire times handled.");
  o << "keyonce_scheduler_fires_total " << fires_ << "\n";
  per_recipe("keyonce_scheduler_missed_total", "Fire times missed while the service was down.",
             missed_);
  per_recipe("keyonce_scheduler_skipped_total",
             "Fire times skipped because the recipe was still running.", skipped_);
  head("keyonce_http_requests_total", "counter", "HTTP requests answered.");
  o << "keyonce_http_requests_total " << http_requests_ << "\n";
  return o.str();
}

}  // namespace keyonce::service
