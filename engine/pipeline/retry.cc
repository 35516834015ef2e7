#include "pipeline/retry.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

namespace keyonce {

bool RetryPolicy::Retries(const Status& st, int attempts) const {
  if (st.ok() || !st.IsTransient() || attempts >= p_.retry_attempts) return false;
  for (const auto& re : p_.permanent) {
    if (std::regex_search(st.message(), re)) return false;
  }
  return true;
}

double RetryPolicy::Wait(int attempts, double retry_after_seconds) {
  double wait = std::min(p_.backoff_max_seconds, p_.backoff_seconds * std::pow(2.0, attempts - 1));
  wait *= std::uniform_real_distribution<double>(0.5, 1.0)(rng_);
  return std::max(wait, std::min(retry_after_seconds, kMaxRetryAfterSeconds));
}

std::string RetryPolicy::AttemptText(int attempts) const {
  return "(attempt " + std::to_string(attempts) + " of " + std::to_string(p_.retry_attempts) + ")";
}

void RetryPolicy::Sleep(double seconds) {
  if (seconds > 0) std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
}

}  // namespace keyonce
