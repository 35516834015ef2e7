// Prometheus metrics of `keyonce serve` (text exposition format 0.0.4).
// Counters count since the service started. Used on the io thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace keyonce {
struct RunSummary;
}

namespace keyonce::service {

class Metrics {
 public:
  void Request() { ++http_requests_; }
  void Started(const std::string& recipe) { ++started_[recipe]; }
  // summary is null when the run could not start.
  void Finished(const std::string& recipe, const std::string& status, double seconds,
                const RunSummary* summary);
  void SchedulerLag(double seconds);
  void Missed(const std::string& recipe, int n) { missed_[recipe] += n; }
  void Skipped(const std::string& recipe) { ++skipped_[recipe]; }
  std::string Render(int running, const std::vector<std::pair<std::string, int>>& queued) const;

  static constexpr double kBuckets[] = {1, 5, 15, 60, 300, 900, 3600, 14400};

 private:
  struct Histogram {
    std::vector<uint64_t> counts = std::vector<uint64_t>(std::size(kBuckets), 0);
    uint64_t count = 0;
    double sum = 0;
  };
  uint64_t http_requests_ = 0;
  std::map<std::string, uint64_t> started_, missed_, skipped_;
  std::map<std::pair<std::string, std::string>, uint64_t> runs_;  // (recipe, status)
  std::map<std::string, uint64_t> read_, quarantined_, rejected_, filtered_;
  std::map<std::pair<std::string, std::string>, uint64_t> written_, updated_,
      failed_;  // (recipe, target)
  std::map<std::string, Histogram> duration_;
  double last_lag_ = 0, max_lag_ = 0;
  uint64_t fires_ = 0;
};

}  // namespace keyonce::service
