#include "pipeline/handoff.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace keyonce {
namespace {

using std::chrono::milliseconds;

TEST(Handoff, PassesItemsInOrderAndPutWaitsUntilTaken) {
  Handoff<int> h;
  std::atomic<int> put{0};
  std::thread producer([&] {
    for (int i = 1; i <= 3; ++i) {
      ASSERT_TRUE(h.Put(i));
      put = i;
    }
  });
  // A Put returns only once its item is taken: the producer is never
  // more than the item being handed over ahead.
  std::vector<int> got;
  while (got.size() < 3) {
    EXPECT_LE(put.load(), static_cast<int>(got.size()));
    if (auto v = h.Take(milliseconds(1000))) got.push_back(*v);
  }
  producer.join();
  EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(put.load(), 3);
}

TEST(Handoff, TakeGivesUpAfterItsWait) {
  Handoff<int> h;
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(h.Take(milliseconds(20)).has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(20));
}

TEST(Handoff, CloseReleasesAWaitingPutAndKeepsWhatWasNotTaken) {
  Handoff<int> h;
  std::atomic<bool> result{true};
  std::thread producer([&] { result = h.Put(7); });
  h.Close();  // from the taking side, before or while the producer waits
  producer.join();
  EXPECT_FALSE(result.load());
  EXPECT_FALSE(h.Put(8)) << "a closed handoff takes nothing more in";
  EXPECT_FALSE(h.Take(milliseconds(1)).has_value());
  EXPECT_EQ(h.Drain(), (std::vector<int>{7, 8}));
  EXPECT_TRUE(h.closed());
}

}  // namespace
}  // namespace keyonce
