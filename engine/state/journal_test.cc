// The journal's exactly-once protocol, and what a crash at each step leaves
// for the next run. A crash is a store closed without the step that follows
// (what SQLite committed survives kill -9: tests/crash_test.cc and the
// connectors' kill tests run the real thing).
#include "state/journal.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <random>

#include "state/sqlite_util.h"
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

TEST_F(JournalTest, AWriteInDoubtOfAKeyWrittenEarlierInTheRunStaysInDoubtThroughTheMerge) {
  int64_t first = Intend({1});
  ASSERT_TRUE(journal_->ConfirmBatch(first, "").ok());
  int64_t second = Intend({1});  // the key again, later in the same run
  {
    auto tx = store_->Transact();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(journal_->MarkInDoubt(target_, D(1), 1).ok());  // its write timed out
    ASSERT_TRUE(tx->Commit().ok());
  }
  auto e = Lookup(1);
  EXPECT_TRUE(e.in_doubt) << "a later record with this key must not write it again";
  EXPECT_EQ(e.written, D(101)) << "the first write still counts";
  Reopen();  // kill -9 before any merge: the next run merges the first batch
  ASSERT_TRUE(journal_->Settle(second, State::kDone).ok());
  ASSERT_TRUE(journal_->Merge().ok());
  EXPECT_TRUE(Lookup(1).in_doubt) << "after the next run's merge";
  EXPECT_EQ(Lookup(1).written, D(101));
}

TEST_F(JournalTest, AWriteACheckConfirmsIsNotUndoneByTheMergeOfAnEarlierIntentOfTheRun) {
  int64_t first = Intend({1, 2});
  ASSERT_TRUE(journal_->ConfirmBatch(first, "").ok());
  {
    auto tx = store_->Transact();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(journal_->SetCaptures(target_, D(2), "{\"id\":2}").ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  // A later record with key 1: a check found its content there already.
  ASSERT_TRUE(journal_->ConfirmWrite(target_, D(1), D(77), "", 1).ok());
  EXPECT_EQ(Lookup(1).written, D(77));
  ASSERT_TRUE(journal_->Merge().ok());
  EXPECT_EQ(Lookup(1).written, D(77)) << "after the merge";
  EXPECT_EQ(Lookup(2).captures, "{\"id\":2}");
  Reopen();
  EXPECT_EQ(Lookup(1).written, D(77)) << "in the next run";
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

// A run's periodic merge must cost what it merges, not what the journal
// already holds: merged into a large journal on random keys, every merge would
// rewrite nearly every page of it, and a long run slows down as it goes.
TEST_F(JournalTest, ARunsPeriodicMergeWritesPagesForWhatItMergesNotForTheWholeJournal) {
  auto batch = [&](uint32_t from, uint32_t n) {
    auto tx = store_->Transact();
    ASSERT_TRUE(tx.ok());
    auto b = journal_->NewBatch(target_, 1, "");
    ASSERT_TRUE(b.ok());
    for (uint32_t i = from; i < from + n; ++i)
      ASSERT_TRUE(journal_->Intend(target_, K(i), H(i, 1), *b).ok());
    ASSERT_TRUE(tx->Commit().ok());
    ASSERT_TRUE(journal_->ConfirmBatch(*b, "").ok());
  };
  batch(0, 40000);
  ASSERT_TRUE(journal_->Merge().ok());
  ASSERT_TRUE(journal_->LoadFilter(target_).ok());  // as a run starts
  sqlite3* db = StateSql::Of(*store_);
  int pages = 0, high = 0;
  for (uint32_t round = 0; round < 3; ++round) {
    batch(100000 + round * 1000, 1000);
    sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_WRITE, &pages, &high, 1);
    ASSERT_TRUE(journal_->Spill().ok());
    sqlite3_db_status(db, SQLITE_DBSTATUS_CACHE_WRITE, &pages, &high, 1);
    // 1,000 rows of ~50 bytes are ~15 pages; the journal's 40,000 rows ~700.
    EXPECT_LT(pages, 80) << "merge " << round << " wrote " << pages << " pages";
  }
  for (uint32_t i : {0u, 39999u, 100000u, 101500u, 102999u}) {
    auto e = journal_->Lookup(target_, K(i));
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->written, H(i, 1)) << i;
  }
  EXPECT_FALSE(journal_->Lookup(target_, K(103000))->found);
  ASSERT_TRUE(journal_->Merge().ok());
  EXPECT_EQ(Count("SELECT count(*) FROM journal"), 43000);
}

TEST_F(JournalTest, AKilledRunsRecentRowsAreFoundAndCountedUntilTheNextMergeFoldsThem) {
  auto batch = [&](uint32_t from, uint32_t to, uint8_t n) {
    auto tx = store_->Transact();
    ASSERT_TRUE(tx.ok());
    auto b = journal_->NewBatch(target_, 1, "");
    ASSERT_TRUE(b.ok());
    for (uint32_t i = from; i < to; ++i)
      ASSERT_TRUE(journal_->Intend(target_, K(i), H(i, n), *b).ok());
    ASSERT_TRUE(tx->Commit().ok());
    ASSERT_TRUE(journal_->ConfirmBatch(*b, "").ok());
  };
  batch(0, 1000, 1);
  ASSERT_TRUE(journal_->Merge().ok());
  ASSERT_TRUE(journal_->LoadFilter(target_).ok());
  batch(950, 1050, 2);  // 50 keys the journal has, 50 new
  ASSERT_TRUE(journal_->Spill().ok());
  EXPECT_EQ(Count("SELECT count(*) FROM journal_recent"), 100) << "a recent run, not a fold";
  Reopen();  // kill -9: the recent run stays, with no filter in memory
  EXPECT_EQ(Lookup(0).written, std::optional<Digest>(H(0, 1)));
  auto moved = journal_->Lookup(target_, K(960));
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved->written, H(960, 2));
  auto added = journal_->Lookup(target_, K(1049));
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->written, H(1049, 2));
  auto report = store_->Check();
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->recipes.size(), 1u);
  EXPECT_EQ(report->recipes[0].journal, 1050) << "keys, not rows";
  ASSERT_TRUE(journal_->Merge().ok());
  EXPECT_EQ(Count("SELECT count(*) FROM journal_recent"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM journal"), 1050);
  auto again = journal_->Lookup(target_, K(960));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->written, H(960, 2));
}

// Two runs of different recipes share a state file (two processes, or two
// runs of `keyonce serve`): one's fold must neither lose nor take the other's
// recent runs.
TEST_F(JournalTest, TwoRunsOnOneStateFileKeepEachOthersRecentRuns) {
  auto other_store = StateStore::Open(path_);
  ASSERT_TRUE(other_store.ok());
  Journal other(**other_store);
  const int64_t theirs = other.TargetId("other-recipe", "erp").value();
  auto batch = [&](StateStore& store, Journal& j, int64_t t, uint32_t from, uint32_t to) {
    auto tx = store.Transact();
    ASSERT_TRUE(tx.ok());
    auto b = j.NewBatch(t, 1, "");
    ASSERT_TRUE(b.ok());
    for (uint32_t i = from; i < to; ++i) ASSERT_TRUE(j.Intend(t, K(i), H(i, 1), *b).ok());
    ASSERT_TRUE(tx->Commit().ok());
    ASSERT_TRUE(j.ConfirmBatch(*b, "").ok());
  };
  // Each has a journal, so that its spills append recent runs.
  batch(*store_, *journal_, target_, 0, 1000);
  ASSERT_TRUE(journal_->Merge().ok());
  ASSERT_TRUE(journal_->LoadFilter(target_).ok());
  batch(**other_store, other, theirs, 0, 1000);
  ASSERT_TRUE(other.Merge().ok());
  ASSERT_TRUE(other.LoadFilter(theirs).ok());
  batch(**other_store, other, theirs, 2000, 2100);
  ASSERT_TRUE(other.Spill().ok());
  batch(**other_store, other, theirs, 3000, 3100);
  ASSERT_TRUE(other.Spill().ok());
  batch(*store_, *journal_, target_, 2000, 2100);
  ASSERT_TRUE(journal_->Spill().ok());
  EXPECT_EQ(Count("SELECT count(*) FROM journal_recent"), 300) << "three recent runs";
  ASSERT_TRUE(journal_->Merge().ok());  // this run ends
  for (uint32_t i : {0u, 2050u, 3050u}) {
    auto e = other.Lookup(theirs, K(i));
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->written, H(i, 1)) << "the other run's key " << i;
  }
  ASSERT_TRUE(other.Merge().ok());
  EXPECT_EQ(Count("SELECT count(*) FROM journal"), 1100 + 1200);
  EXPECT_EQ(Count("SELECT count(*) FROM journal_recent"), 0);
  // A run's number is never used again, though every run was folded.
  batch(*store_, *journal_, target_, 4000, 4100);
  ASSERT_TRUE(journal_->Spill().ok());
  EXPECT_EQ(Count("SELECT merge FROM journal_recent LIMIT 1"), 4);
}

// A merge's 64-row statements run inside its transaction, so SQLite journals
// the pages each one changes; past 64 KiB that statement journal is a
// temporary file, and a merge on spread keys changes a page per row. It must
// stay in memory (PRAGMA temp_store=MEMORY): on files it was more bytes than
// the journal itself.
TEST_F(JournalTest, AMergeKeepsItsStatementJournalsOutOfTemporaryFiles) {
  struct Seen {
    int most = 0;
  } seen;
  // SQLite keeps a statement journal's file open until the transaction ends.
  sqlite3_commit_hook(
      StateSql::Of(*store_),
      [](void* arg) {
        int n = 0;
        for (const auto& fd : fs::directory_iterator("/proc/self/fd")) {
          std::error_code ec;
          if (fs::read_symlink(fd.path(), ec).string().find("etilqs_") != std::string::npos) ++n;
        }
        auto* s = static_cast<Seen*>(arg);
        s->most = std::max(s->most, n);
        return 0;
      },
      &seen);
  // A journal larger than the page cache, as in a long run (8 MiB there).
  ASSERT_EQ(sqlite3_exec(StateSql::Of(*store_), "PRAGMA cache_size=-256", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  for (uint8_t round = 1; round <= 2; ++round) {
    auto tx = store_->Transact();
    ASSERT_TRUE(tx.ok());
    auto b = journal_->NewBatch(target_, 1, "");
    ASSERT_TRUE(b.ok());
    for (uint32_t i = 0; i < 40000; ++i)
      ASSERT_TRUE(journal_->Intend(target_, K(i * 2 + round), H(i, round), *b).ok());
    ASSERT_TRUE(tx->Commit().ok());
    ASSERT_TRUE(journal_->ConfirmBatch(*b, "").ok());
    ASSERT_TRUE(journal_->Merge().ok());
  }
  sqlite3_commit_hook(StateSql::Of(*store_), nullptr, nullptr);
  EXPECT_EQ(seen.most, 0) << "temporary files open at a commit";
  EXPECT_EQ(Count("SELECT count(*) FROM journal"), 80000);
}

// Spilled runs must answer as the journal they are folded into would: the
// same operations on two state files, one merged with Spill (recent runs,
// folds, kills that leave recent rows) and one with Merge only, must give the
// same Lookup for every key after every step, and the same journal at the end.
TEST(JournalSpill, RecentRunsAnswerAsTheMergedJournalThroughDoubtsCapturesAndKills) {
  struct Side {
    fs::path path;
    std::unique_ptr<StateStore> store;
    std::unique_ptr<Journal> journal;
    int64_t target = 0;
    void Open() {
      journal.reset();
      store.reset();
      auto s = StateStore::Open(path);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      store = std::move(s).value();
      journal = std::make_unique<Journal>(*store);
      target = journal->TargetId("recipe", "crm").value();
      ASSERT_TRUE(journal->LoadFilter(target).ok());
    }
    void Tx(const std::function<void(Journal&)>& f) {
      auto tx = store->Transact();
      ASSERT_TRUE(tx.ok());
      f(*journal);
      ASSERT_TRUE(tx->Commit().ok());
    }
  };
  const fs::path dir = fs::path(::testing::TempDir()) / "keyonce_journal_spill";
  fs::remove_all(dir);
  fs::create_directories(dir);
  Side spill, merge;
  spill.path = dir / "spill.db";
  merge.path = dir / "merge.db";
  Side* sides[] = {&spill, &merge};
  for (Side* s : sides) s->Open();
  std::mt19937 rng(20261207);
  auto pick = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };
  constexpr uint32_t kKeys = 300;
  std::vector<int64_t> pending;  // batch ids, the same on both sides
  int spills = 0, folds_seen = 0;
  auto text = [](Side& side, const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    std::string out = "(failed)";
    if (sqlite3_prepare_v2(StateSql::Of(*side.store), sql.c_str(), -1, &st, nullptr) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      out = ColText(st, 0);
    }
    sqlite3_finalize(st);
    return out;
  };
  auto recent_rows = [&](Side& side) {
    return std::stoll(text(side, "SELECT count(*) FROM journal_recent"));
  };
  auto same = [&](int step) {
    for (uint32_t k = 0; k < kKeys; ++k) {
      auto a = spill.journal->Lookup(spill.target, K(k));
      auto b = merge.journal->Lookup(merge.target, K(k));
      ASSERT_TRUE(a.ok() && b.ok());
      ASSERT_EQ(a->found, b->found) << "step " << step << " key " << k;
      ASSERT_EQ(a->written, b->written) << "step " << step << " key " << k;
      ASSERT_EQ(a->in_doubt, b->in_doubt) << "step " << step << " key " << k;
      ASSERT_EQ(a->pending, b->pending) << "step " << step << " key " << k;
      ASSERT_EQ(a->pending_hash, b->pending_hash) << "step " << step << " key " << k;
      ASSERT_EQ(a->captures, b->captures) << "step " << step << " key " << k;
    }
  };
  for (int step = 0; step < 400; ++step) {
    const uint32_t op = pick(100);
    const uint32_t key = pick(kKeys);
    const std::string cap = "{\"n\":" + std::to_string(step) + "}";
    if (op < 45) {  // a batch; some of its writes fail, some capture
      std::vector<uint32_t> keys(20 + pick(60));
      for (auto& k : keys) k = pick(kKeys);
      const uint32_t forget = keys[pick(keys.size())], captured = keys[pick(keys.size())];
      const uint32_t fate = pick(10);
      int64_t id = 0;
      for (Side* s : sides) {
        s->Tx([&](Journal& j) {
          id = j.NewBatch(s->target, 1, "").value();
          for (uint32_t k : keys)
            ASSERT_TRUE(j.Intend(s->target, K(k), H(k, static_cast<uint8_t>(step)), id).ok());
        });
        s->Tx([&](Journal& j) {
          ASSERT_TRUE(j.Forget(s->target, K(forget)).ok());
          if (captured != forget) {
            ASSERT_TRUE(j.SetCaptures(s->target, K(captured), cap).ok());
          }
        });
        Status settled = Status::OK();
        if (fate < 6) settled = s->journal->ConfirmBatch(id, "");
        if (fate == 6) settled = s->journal->Settle(id, State::kInDoubt);
        if (fate == 7) settled = s->journal->Settle(id, State::kRolledBack);
        ASSERT_TRUE(settled.ok()) << settled.ToString();
      }
      if (fate >= 8) pending.push_back(id);
    } else if (op < 52) {  // a write in doubt
      for (Side* s : sides)
        s->Tx([&](Journal& j) { ASSERT_TRUE(j.MarkInDoubt(s->target, K(key), 2).ok()); });
    } else if (op < 60) {  // a check found it written, with or without captures
      for (Side* s : sides) {
        ASSERT_TRUE(s->journal->ConfirmWrite(s->target, K(key), H(key, 200), op % 2 ? cap : "", 3)
                        .ok());
      }
    } else if (op < 66) {  // captures for a key without an intent of this run
      for (Side* s : sides)
        s->Tx([&](Journal& j) { ASSERT_TRUE(j.SetCaptures(s->target, K(key), cap).ok()); });
    } else if (op < 70 && !pending.empty()) {  // a pending batch settles
      const int64_t id = pending.front();
      pending.erase(pending.begin());
      for (Side* s : sides) ASSERT_TRUE(s->journal->ConfirmBatch(id, "").ok());
    } else if (op < 97) {  // the periodic merge
      ASSERT_TRUE(spill.journal->Spill().ok());
      ASSERT_TRUE(merge.journal->Merge().ok());
      ++spills;
      if (recent_rows(spill) == 0) ++folds_seen;
    } else {  // kill -9 of both: what was committed stays, recent rows too
      for (Side* s : sides) s->Open();
    }
    if (HasFatalFailure()) return;
    same(step);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(spills - folds_seen, 20) << "most spills must leave recent runs";
  EXPECT_GT(folds_seen, 2);
  for (int64_t id : pending)
    for (Side* s : sides) ASSERT_TRUE(s->journal->ConfirmBatch(id, "").ok());
  for (Side* s : sides) ASSERT_TRUE(s->journal->Merge().ok());
  same(-1);
  const std::string rows =
      "SELECT group_concat(hex(key) || ':' || IFNULL(hex(written), '-') || ':' || doubt || ':' || "
      "IFNULL(captures, '-') || ':' || run, ' ') FROM (SELECT * FROM journal ORDER BY target, key)";
  EXPECT_EQ(text(spill, rows), text(merge, rows));
  EXPECT_EQ(recent_rows(spill), 0);
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
