// One retry policy for everything that talks to another system: writes,
// checks of writes in doubt, lookups and notifications, from the recipe's
// `errors` block (ErrorPolicy).
//
// A failure is tried again when it is transient (a timeout, a 503, a lost
// connection), does not match one of the recipe's `permanent` patterns, and
// fewer than retry_attempts attempts were made in all. The wait before the
// next attempt doubles from backoff_seconds up to backoff_max_seconds, times
// a random 50-100 % (so robots that failed together do not come back in
// step), and is never shorter than the system's own Retry-After, which is
// honoured up to kMaxRetryAfterSeconds.
#pragma once

#include <functional>
#include <random>
#include <string>

#include "keyonce/status.h"
#include "recipe/recipe.h"

namespace keyonce {

class RetryPolicy {
 public:
  static constexpr double kMaxRetryAfterSeconds = 600;

  explicit RetryPolicy(const ErrorPolicy& policy, uint64_t seed = std::random_device{}())
      : p_(policy), rng_(seed) {}

  int max_attempts() const { return p_.retry_attempts; }
  // Whether a failure with `st` after `attempts` attempts (1 = the first)
  // is tried again.
  bool Retries(const Status& st, int attempts) const;
  // The wait before the next attempt, in seconds.
  double Wait(int attempts, double retry_after_seconds = 0);

  // Called before each wait: the failure, the attempts made so far and the
  // wait in seconds (for a warning in the run's log).
  using Tell = std::function<void(const Status& failure, int attempts, double wait_seconds)>;

  // Calls `attempt` until it succeeds, fails for good or the attempts are
  // spent; returns the last result. `retry_after` reads a result's
  // Retry-After in seconds (0 = none).
  template <typename R>
  R Run(const std::function<R()>& attempt, const std::function<Status(const R&)>& status_of,
        const Tell& tell, const std::function<double(const R&)>& retry_after = nullptr) {
    R r = attempt();
    for (int attempts = 1;; ++attempts) {
      const Status st = status_of(r);
      if (!Retries(st, attempts)) return r;
      const double wait = Wait(attempts, retry_after ? retry_after(r) : 0);
      if (tell) tell(st, attempts, wait);
      Sleep(wait);
      r = attempt();
    }
  }

  // "(attempt 1 of 3)", for messages.
  std::string AttemptText(int attempts) const;

 private:
  static void Sleep(double seconds);

  const ErrorPolicy p_;  // a copy: a policy never outlives what made it
  std::mt19937_64 rng_;
};

}  // namespace keyonce
