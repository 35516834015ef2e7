// Hands work from one thread to another, one piece at a time: the run's
// reading stage puts batch N+1 while the writing stage works on batch N.
//
// Put waits until the taker has taken what it put, so besides the piece the
// taker works on at most one more exists (the one being handed over): memory
// stays at two batches however fast the producer is. Close (from either side)
// makes Put return false at once; what was put and never taken stays for
// Drain, so nothing read is lost silently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

namespace keyonce {

template <typename T>
class Handoff {
 public:
  // Puts `item` and waits until it is taken; false when the handoff is (or
  // gets) closed meanwhile (the item then waits for Drain).
  bool Put(T item) {
    std::unique_lock<std::mutex> lock(mu_);
    waiting_.push_back(std::move(item));
    if (closed_) return false;
    const uint64_t mine = ++put_;
    changed_.notify_all();
    changed_.wait(lock, [&] { return closed_ || taken_ >= mine; });
    return taken_ >= mine;
  }

  // The next item, or nullopt when none came within `wait` (or the handoff
  // is closed and empty).
  std::optional<T> Take(std::chrono::milliseconds wait) {
    std::unique_lock<std::mutex> lock(mu_);
    changed_.wait_for(lock, wait, [&] { return closed_ || !waiting_.empty(); });
    if (waiting_.empty() || closed_) return std::nullopt;
    T item = std::move(waiting_.front());
    waiting_.pop_front();
    ++taken_;
    changed_.notify_all();
    return item;
  }

  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    changed_.notify_all();
  }
  bool closed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

  // What was put and never taken (after Close), oldest first.
  std::vector<T> Drain() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<T> rest;
    for (auto& item : waiting_) rest.push_back(std::move(item));
    waiting_.clear();
    return rest;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<T> waiting_;
  uint64_t put_ = 0, taken_ = 0;
  bool closed_ = false;
};

}  // namespace keyonce
