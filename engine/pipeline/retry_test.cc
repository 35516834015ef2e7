// The one retry policy of writes, checks, lookups and notifications.
#include "pipeline/retry.h"

#include <gtest/gtest.h>

namespace keyonce {
namespace {

ErrorPolicy Policy(int attempts, double backoff, double max) {
  ErrorPolicy p;
  p.retry_attempts = attempts;
  p.backoff_seconds = backoff;
  p.backoff_max_seconds = max;
  return p;
}

TEST(RetryPolicy, RetriesTransientFailuresUntilTheAttemptsAreSpent) {
  ErrorPolicy p = Policy(3, 1, 60);
  p.permanent.emplace_back("account locked");
  RetryPolicy r(p, 7);
  EXPECT_TRUE(r.Retries(Status::Transient("503 Service Unavailable"), 1));
  EXPECT_TRUE(r.Retries(Status::Transient("timeout"), 2));
  EXPECT_FALSE(r.Retries(Status::Transient("timeout"), 3)) << "3 attempts in all";
  EXPECT_FALSE(r.Retries(Status::Permanent("400 Bad Request"), 1));
  EXPECT_FALSE(r.Retries(Status::OK(), 1));
  EXPECT_FALSE(r.Retries(Status::Transient("503: account locked for 10 minutes"), 1))
      << "a `permanent` pattern is never retried, whatever the class";
}

TEST(RetryPolicy, WaitsDoubleWithJitterUpToTheCapAndHonourRetryAfter) {
  RetryPolicy r(Policy(10, 1, 8), 42);
  for (int i = 0; i < 200; ++i) {
    const double w1 = r.Wait(1), w3 = r.Wait(3), w9 = r.Wait(9);
    EXPECT_GE(w1, 0.5);
    EXPECT_LE(w1, 1.0);
    EXPECT_GE(w3, 2.0);
    EXPECT_LE(w3, 4.0);
    EXPECT_GE(w9, 4.0) << "capped at backoff_max_seconds, then jittered";
    EXPECT_LE(w9, 8.0);
  }
  EXPECT_EQ(r.Wait(1, 30), 30) << "the system's Retry-After";
  EXPECT_EQ(r.Wait(1, 86400), RetryPolicy::kMaxRetryAfterSeconds) << "but not a day";
  // Not all the same: robots that failed together come back apart.
  double first = r.Wait(2);
  bool differs = false;
  for (int i = 0; i < 20 && !differs; ++i) differs = r.Wait(2) != first;
  EXPECT_TRUE(differs);
}

TEST(RetryPolicy, RunTriesAgainAndTellsEachWait) {
  RetryPolicy r(Policy(4, 0.001, 0.002), 1);
  int calls = 0;
  std::vector<int> told;
  auto result = r.Run<Result<int>>(
      [&]() -> Result<int> {
        ++calls;
        if (calls < 3) return Status::Transient("connection reset");
        return calls;
      },
      [](const Result<int>& x) { return x.status(); },
      [&](const Status& failed, int attempts, double wait) {
        EXPECT_EQ(failed.message(), "connection reset");
        EXPECT_GT(wait, 0);
        told.push_back(attempts);
      });
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, 3);
  EXPECT_EQ(told, (std::vector<int>{1, 2}));

  calls = 0;
  auto gone = r.Run<Result<int>>(
      [&]() -> Result<int> {
        ++calls;
        return Status::Transient("timeout");
      },
      [](const Result<int>& x) { return x.status(); }, nullptr);
  EXPECT_FALSE(gone.ok());
  EXPECT_EQ(calls, 4) << "retry_attempts is the number of attempts in all";

  calls = 0;
  auto refused = r.Run<Result<int>>(
      [&]() -> Result<int> {
        ++calls;
        return Status::Permanent("422");
      },
      [](const Result<int>& x) { return x.status(); }, nullptr);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(r.AttemptText(2), "(attempt 2 of 4)");
}

}  // namespace
}  // namespace keyonce
