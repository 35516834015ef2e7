// The state store's transactions: a guard that rolls back what it did not
// commit, so an early return can never leave a transaction open.
#include "state/store.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace keyonce {
namespace {

namespace fs = std::filesystem;

fs::path FreshState(const std::string& name) {
  fs::path dir = fs::path(::testing::TempDir()) / ("keyonce_store_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir / "state.db";
}

size_t Runs(StateStore& s) {
  auto runs = s.ListRuns("r", 10);
  return runs.ok() ? runs->size() : 99;
}

TEST(StateStoreTransaction, WhatIsNotCommittedIsRolledBackAndTheNextTransactionBegins) {
  auto store = StateStore::Open(FreshState("tx"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  StateStore& s = **store;
  {
    auto tx = s.Transact();
    ASSERT_TRUE(tx.ok()) << tx.status().ToString();
    ASSERT_TRUE(s.BeginRun("r", "{}", "cli").ok());
    // Leaves without Commit, as an early return on an error does.
  }
  EXPECT_EQ(Runs(s), 0u) << "rolled back";
  {
    auto tx = s.Transact(/*durable=*/false);
    ASSERT_TRUE(tx.ok()) << "a transaction was left open: " << tx.status().ToString();
    ASSERT_TRUE(s.BeginRun("r", "{}", "cli").ok());
    ASSERT_TRUE(tx->Commit().ok());
    EXPECT_FALSE(tx->Commit().ok()) << "committed twice";
  }
  EXPECT_EQ(Runs(s), 1u);
  // A guard moved elsewhere ends once.
  {
    auto tx = s.Transact();
    ASSERT_TRUE(tx.ok());
    StateStore::Transaction moved = std::move(tx).value();
    ASSERT_TRUE(s.BeginRun("r", "{}", "cli").ok());
    ASSERT_TRUE(moved.Commit().ok());
  }
  EXPECT_EQ(Runs(s), 2u);
  // And the store still takes transactions from its other users.
  auto again = s.Transact();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->Commit().ok());
}

}  // namespace
}  // namespace keyonce
