// The journal's exactly-once protocol, and what a crash at each step leaves
// for the next run. A crash is a store closed without the step that follows
// (what SQLite committed survives kill -9: tests/crash_test.cc and the
// connectors' kill tests run the real thing).
#include "state/journal.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <memory>

#include "state/state_sql.h"

namespace keyonce {
namespace {

namespace fs = std::filesystem;
using State = Journal::BatchState;

Digest D(uint8_t b) {
  Digest d{};
  d.fill(b);
  return d;
}

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::path dir = fs::path(::testing::TempDir()) /
                   ("keyonce_journal_" +
                    std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    path_ = dir / "state.db";
    Reopen();
  }
  // A new process on the same state file.
  void Reopen() {
    journal_.reset();
    store_.reset();
    auto s = StateStore::Open(path_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
    journal_ = std::make_unique<Journal>(*store_);
    auto t = journal_->TargetId("recipe", "crm");
    ASSERT_TRUE(t.ok());
    target_ = *t;
  }
  Journal::Entry Lookup(uint8_t key) {
    auto e = journal_->Lookup(target_, D(key));
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? *e : Journal::Entry{};
  }
  // Steps 1-2: a batch with intents for `keys` (content = key + 100), committed.
  int64_t Intend(std::initializer_list<uint8_t> keys) {
    auto tx = store_->Transact();
    EXPECT_TRUE(tx.ok());
    auto b = journal_->NewBatch(target_, 1, "token");
    EXPECT_TRUE(b.ok());
    for (uint8_t k : keys) {
      EXPECT_TRUE(journal_->Intend(target_, D(k), D(static_cast<uint8_t>(k + 100)), *b).ok());
    }
    EXPECT_TRUE(tx->Commit().ok());
    return *b;
  }
  int64_t Count(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    int64_t n = -1;
    if (sqlite3_prepare_v2(StateSql::Of(*store_), sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      n = sqlite3_column_int64(s, 0);
    }
    sqlite3_finalize(s);
    return n;
  }

  fs::path path_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<Journal> journal_;
  int64_t target_ = 0;
};

TEST_F(JournalTest, AConfirmedBatchIsWrittenAfterTheMergeAndAnUnchangedRecordIsKnown) {
  EXPECT_FALSE(Lookup(1).found);
  int64_t b = Intend({1, 2});
  auto pending = Lookup(1);
  EXPECT_TRUE(pending.found && pending.pending);
  EXPECT_EQ(pending.pending_hash, D(101));
  EXPECT_FALSE(pending.written);
  ASSERT_TRUE(journal_->ConfirmBatch(b, "after").ok());
  EXPECT_EQ(Lookup(1).written, D(101)) << "confirmed, before the merge";
  ASSERT_TRUE(journal_->Merge().ok());
  EXPECT_EQ(Lookup(2).written, D(102));
  EXPECT_EQ(journal_->pending_intents(), 0u);
  EXPECT_EQ(Count("SELECT count(*) FROM journal"), 2);
  EXPECT_EQ(Count("SELECT count(*) FROM batches WHERE intents IS NOT NULL"), 0)
      << "merged intents are dropped a batch at a time";
  Reopen();
  EXPECT_EQ(Lookup(1).written, D(101));
  EXPECT_FALSE(Lookup(1).pending);
  EXPECT_EQ(journal_->LastBatch(target_).value(), b);
}

TEST_F(JournalTest, ACrashBeforeTheIntentsCommitLeavesNothing) {
  {
    auto tx = store_->Transact();
    ASSERT_TRUE(tx.ok());
    auto b = journal_->NewBatch(target_, 1, "");
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE(journal_->Intend(target_, D(1), D(101), *b).ok());
  }  // no commit
  EXPECT_FALSE(journal_->Intend(target_, D(2), D(102), 1).ok())
      << "after a rolled-back change the journal refuses more work";
  EXPECT_EQ(journal_->Merge().code(), Status::Code::kInternal);
  Reopen();
  EXPECT_FALSE(Lookup(1).found);
  EXPECT_TRUE(journal_->PendingBatches(target_)->empty());
}

TEST_F(JournalTest, ACrashAfterTheIntentsLeavesAPendingBatchThatRecoverySettles) {
  int64_t done = Intend({1});
  int64_t lost = Intend({2});
  int64_t doubt = Intend({3});
  // An earlier run wrote 3 with other content: in doubt, that still counts.
  ASSERT_TRUE(journal_->ConfirmWrite(target_, D(3), D(7), "", 1).ok());
  Reopen();  // the crash: nothing confirmed
  auto pending = journal_->PendingBatches(target_);
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 3u);
  EXPECT_EQ((*pending)[0].id, done);
  EXPECT_EQ((*pending)[0].token_before, "token");
  EXPECT_FALSE(Lookup(1).found) << "not merged: the journal does not know yet";
  // What the target says arrived.
  ASSERT_TRUE(journal_->Settle(done, State::kDone).ok());
  ASSERT_TRUE(journal_->Settle(lost, State::kRolledBack).ok());
  ASSERT_TRUE(journal_->Settle(doubt, State::kInDoubt).ok());
  ASSERT_TRUE(journal_->Merge().ok());
  EXPECT_EQ(Lookup(1).written, D(101));
  EXPECT_FALSE(Lookup(2).found) << "rolled back: written again by this run";
  auto e3 = Lookup(3);
  EXPECT_TRUE(e3.in_doubt);
  EXPECT_EQ(e3.written, D(7)) << "what was written before the doubtful write still counts";
  EXPECT_TRUE(journal_->PendingBatches(target_)->empty());
  // A check found it there after all.
  ASSERT_TRUE(journal_->ConfirmWrite(target_, D(3), D(103), "{\"id\":3}", 2).ok());
  EXPECT_FALSE(Lookup(3).in_doubt);
  EXPECT_EQ(Lookup(3).captures, "{\"id\":3}");
}

TEST_F(JournalTest, AForgottenIntentIsNotWrittenAndAWriteInDoubtIsNeverRepeated) {
  int64_t b = Intend({1, 2, 3});
  {
    auto tx = store_->Transact();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(journal_->Forget(target_, D(1)).ok());
    ASSERT_TRUE(journal_->MarkInDoubt(target_, D(2), 1).ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  EXPECT_FALSE(Lookup(1).found);
  EXPECT_TRUE(Lookup(2).in_doubt);
  Reopen();  // a crash before the batch was confirmed: the forgotten intent stays forgotten
  ASSERT_TRUE(journal_->Settle(b, State::kDone).ok());
  ASSERT_TRUE(journal_->Merge().ok());
  EXPECT_FALSE(Lookup(1).found);
  EXPECT_TRUE(Lookup(2).in_doubt);
  EXPECT_FALSE(Lookup(2).written);
  EXPECT_EQ(Lookup(3).written, D(103));
}

TEST_F(JournalTest, TheSameKeyTwiceInARunAndCapturesKeptWithTheIntent) {
  int64_t first = Intend({1});
  ASSERT_TRUE(journal_->ConfirmBatch(first, "").ok());
  ASSERT_TRUE(journal_->SetCaptures(target_, D(1), "{\"case\":\"A\"}").ok());
  // The key again, with other content, in a later batch of the same run.
  auto tx = store_->Transact();
  ASSERT_TRUE(tx.ok());
  auto second = journal_->NewBatch(target_, 1, "");
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(journal_->Intend(target_, D(1), D(55), *second).ok());
  ASSERT_TRUE(tx->Commit().ok());
  auto e = Lookup(1);
  EXPECT_TRUE(e.pending);
  EXPECT_EQ(e.pending_hash, D(55));
  EXPECT_EQ(e.written, D(101)) << "the first write still counts until the second is confirmed";
  // The second write fails: the first intent is what the key has again.
  auto tx2 = store_->Transact();
  ASSERT_TRUE(tx2.ok());
  ASSERT_TRUE(journal_->Forget(target_, D(1)).ok());
  ASSERT_TRUE(tx2->Commit().ok());
  EXPECT_EQ(Lookup(1).written, D(101));
  EXPECT_EQ(Lookup(1).captures, "{\"case\":\"A\"}");
  ASSERT_TRUE(journal_->Settle(*second, State::kDone).ok());
  ASSERT_TRUE(journal_->Merge().ok());
  Reopen();
  EXPECT_EQ(Lookup(1).written, D(101));
  EXPECT_EQ(Lookup(1).captures, "{\"case\":\"A\"}");
  EXPECT_EQ(Count("SELECT count(*) FROM intent_captures"), 0);
}

// Keys over the whole digest, and a content hash told apart per batch.
Digest K(uint32_t i) {
  Digest d{};
  for (size_t b = 0; b < d.size(); ++b)
    d[b] = static_cast<uint8_t>((i * 2654435761u) >> (b % 4 * 8));
  d[15] = static_cast<uint8_t>(i);
  d[14] = static_cast<uint8_t>(i >> 8);
  return d;
}
Digest H(uint32_t i, uint8_t batch) {
  Digest d = K(i);
  d[0] ^= batch;
  return d;
}

TEST_F(JournalTest, ThousandsOfIntentsOfTwoTargetsStayFoundAcrossForgetsAndAPartialMerge) {
  auto other = journal_->TargetId("recipe", "erp");
  ASSERT_TRUE(other.ok());
  // Batch a (done): keys 0..2999 of both targets. Batch b (pending): 2000..4999 of
  // the first target, so 2000..2999 have an earlier intent in a.
  auto tx = store_->Transact();
  ASSERT_TRUE(tx.ok());
  auto a = journal_->NewBatch(target_, 1, "");
  auto a2 = journal_->NewBatch(*other, 1, "");
  ASSERT_TRUE(a.ok() && a2.ok());
  for (uint32_t i = 0; i < 3000; ++i) {
    ASSERT_TRUE(journal_->Intend(target_, K(i), H(i, 1), *a).ok());
    ASSERT_TRUE(journal_->Intend(*other, K(i), H(i, 2), *a2).ok());
  }
  EXPECT_EQ(journal_->Intend(*other, K(1), H(1, 2), *a).code(), Status::Code::kInternal)
      << "a batch belongs to one target";
  ASSERT_TRUE(tx->Commit().ok());
  ASSERT_TRUE(journal_->ConfirmBatch(*a, "").ok());
  ASSERT_TRUE(journal_->ConfirmBatch(*a2, "").ok());
  auto tx2 = store_->Transact();
  ASSERT_TRUE(tx2.ok());
  auto b = journal_->NewBatch(target_, 1, "");
  ASSERT_TRUE(b.ok());
  for (uint32_t i = 2000; i < 5000; ++i)
    ASSERT_TRUE(journal_->Intend(target_, K(i), H(i, 3), *b).ok());
  // Two writes of b fail: one had an earlier intent (it comes back), one not.
  ASSERT_TRUE(journal_->Forget(target_, K(2500)).ok());
  ASSERT_TRUE(journal_->Forget(target_, K(4500)).ok());
  ASSERT_TRUE(journal_->SetCaptures(target_, K(4000), "{\"id\":4000}").ok());
  ASSERT_TRUE(tx2->Commit().ok());
  EXPECT_EQ(journal_->pending_intents(), 9000u);

  auto check = [&](const char* when) {
    SCOPED_TRACE(when);
    for (uint32_t i : {2000u, 2999u, 3000u, 4999u}) {
      auto e = journal_->Lookup(target_, K(i));
      ASSERT_TRUE(e.ok());
      EXPECT_TRUE(e->found && e->pending) << i;
      EXPECT_EQ(e->pending_hash, H(i, 3)) << i;
      // What an earlier intent wrote still counts, merged or not.
      EXPECT_EQ(e->written, i < 3000 ? std::optional<Digest>(H(i, 1)) : std::nullopt) << i;
    }
    auto back = journal_->Lookup(target_, K(2500));
    ASSERT_TRUE(back.ok());
    EXPECT_TRUE(back->found && !back->pending);
    EXPECT_EQ(back->written, H(2500, 1)) << "the forgotten write's earlier intent counts again";
    auto gone = journal_->Lookup(target_, K(4500));
    ASSERT_TRUE(gone.ok());
    EXPECT_FALSE(gone->found);
    auto captured = journal_->Lookup(target_, K(4000));
    ASSERT_TRUE(captured.ok());
    EXPECT_EQ(captured->captures, "{\"id\":4000}");
    auto theirs = journal_->Lookup(*other, K(2500));
    ASSERT_TRUE(theirs.ok());
    EXPECT_EQ(theirs->written, H(2500, 2)) << "the other target's intent for the same key";
  };
  auto not_pending = [&](uint32_t i) {
    auto e = journal_->Lookup(target_, K(i));
    ASSERT_TRUE(e.ok());
    EXPECT_TRUE(e->found && !e->pending);
    EXPECT_EQ(e->written, H(i, 1));
  };
  not_pending(0);
  not_pending(1999);
  check("before the merge");
  ASSERT_TRUE(journal_->Merge().ok());
  EXPECT_EQ(journal_->pending_intents(), 3000u) << "only the pending batch stays in memory";
  not_pending(0);
  check("after a merge that left b pending");
  ASSERT_TRUE(journal_->Settle(*b, State::kDone).ok());
  ASSERT_TRUE(journal_->Merge().ok());
  Reopen();
  ASSERT_TRUE(journal_->LoadFilter(target_).ok());
  auto e = journal_->Lookup(target_, K(2001));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->written, H(2001, 3));
  auto forgotten = journal_->Lookup(target_, K(4500));
  ASSERT_TRUE(forgotten.ok());
  EXPECT_FALSE(forgotten->found);
  EXPECT_EQ(Count("SELECT count(*) FROM journal"), 3000 + 3000 + 2000 - 1);
}

TEST_F(JournalTest, OneMergeOfTwoBatchesWithTheSameKeysKeepsTheNewestAndEarlierCaptures) {
  // More rows than one merge statement takes, each key in both batches.
  auto batch = [&](uint8_t n) {
    auto tx = store_->Transact();
    EXPECT_TRUE(tx.ok());
    auto b = journal_->NewBatch(target_, 1, "");
    EXPECT_TRUE(b.ok());
    for (uint32_t i = 0; i < 300; ++i) {
      EXPECT_TRUE(journal_->Intend(target_, K(i), H(i, n), *b).ok());
    }
    if (n == 1) {
      EXPECT_TRUE(journal_->SetCaptures(target_, K(5), "{\"id\":5}").ok());
    }
    EXPECT_TRUE(tx->Commit().ok());
    EXPECT_TRUE(journal_->ConfirmBatch(*b, "").ok());
  };
  batch(1);
  batch(2);
  ASSERT_TRUE(journal_->Merge().ok());
  Reopen();
  for (uint32_t i : {0u, 5u, 63u, 64u, 150u, 299u}) {
    auto e = journal_->Lookup(target_, K(i));
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->written, H(i, 2)) << i;
  }
  auto e = journal_->Lookup(target_, K(5));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->captures, "{\"id\":5}")
      << "the newer intent captured nothing: the earlier captures stay";
  EXPECT_EQ(Count("SELECT count(*) FROM journal"), 300);
}

TEST_F(JournalTest, IntentsOfAnOlderStateFileAreMovedIntoTheirBatches) {
  // Schema 2 kept an intent per row.
  sqlite3* db = StateSql::Of(*store_);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE intents(id INTEGER PRIMARY KEY, target INTEGER NOT NULL,"
                         " key BLOB NOT NULL, hash BLOB NOT NULL, batch INTEGER NOT NULL,"
                         " run INTEGER, captures TEXT);"
                         "INSERT INTO batches(id, target, run, state) VALUES(5, 1, 1, 1), "
                         "(6, 1, 1, 0);"
                         "INSERT INTO intents(target, key, hash, batch, run, captures) VALUES"
                         " (1, zeroblob(16), randomblob(16), 5, 1, '{\"n\":1}'),"
                         " (1, x'01010101010101010101010101010101', zeroblob(16), 6, 1, NULL);",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  ASSERT_EQ(target_, 1);
  ASSERT_TRUE(Journal::UpgradeIntents(*store_).ok());
  EXPECT_EQ(Count("SELECT count(*) FROM sqlite_master WHERE name = 'intents'"), 0);
  EXPECT_EQ(Count("SELECT length(intents) FROM batches WHERE id = 6"), 32);
  ASSERT_TRUE(journal_->Merge().ok());
  EXPECT_EQ(Lookup(0).captures, "{\"n\":1}");
  EXPECT_TRUE(Lookup(0).written);
  EXPECT_FALSE(Lookup(1).found) << "batch 6 is still pending";
  ASSERT_TRUE(journal_->Settle(6, State::kDone).ok());
  ASSERT_TRUE(journal_->Merge().ok());
  EXPECT_EQ(Lookup(1).written, D(0));
}

}  // namespace
}  // namespace keyonce
