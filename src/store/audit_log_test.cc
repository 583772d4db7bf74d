#include "store/audit_log.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "store/sync_schema_test_util.h"
#include "store/test_database.h"

namespace datasite::store {
namespace {

// Each test gets a fresh database with an identity; the tamper tests edit it with sqlite3 directly,
// as someone with the file would.
class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GE(sodium_init(), 0);
    db_ = std::make_unique<TestDatabase>();
    path_ = db_->location();
    Open();
    Identity id;
    id.server_id = "11111111-2222-3333-4444-555555555555";
    id.verify_key.resize(crypto_sign_PUBLICKEYBYTES);
    id.signing_key.resize(crypto_sign_SECRETKEYBYTES);
    crypto_sign_keypair(reinterpret_cast<unsigned char*>(id.verify_key.data()),
                        reinterpret_cast<unsigned char*>(id.signing_key.data()));
    ASSERT_TRUE(store_->PutIdentity(id).ok());
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
  }
  void Open() {
    auto opened = db_->Open();
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }
  void Append(int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(store_
                      ->AppendAudit({100 + i, "user:u1", "user.login", "user:u" + std::to_string(i),
                                     "from 127.0.0.1"})
                      .ok());
    }
  }
  // Runs SQL on the database through a second connection, as someone with access to it would.
  void Sql(const std::string& sql) { db_->Run(sql); }

  AuditVerdict Verify(const std::optional<std::string>& head = std::nullopt) {
    auto v = VerifyAuditLog(*store_, head);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : AuditVerdict{};
  }

  std::unique_ptr<TestDatabase> db_;
  std::string path_;  // the SQLite file or the PostgreSQL URL
  std::unique_ptr<Store> store_;
};

TEST_F(AuditLogTest, EachEntryCommitsToTheOneBefore) {
  Append(3);
  auto all = store_->ListAudit(0, 10);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].seq, 1);
  EXPECT_EQ((*all)[0].prev_hash, AuditGenesisHash("11111111-2222-3333-4444-555555555555"));
  EXPECT_EQ((*all)[1].prev_hash, (*all)[0].hash);
  EXPECT_EQ((*all)[2].prev_hash, (*all)[1].hash);
  EXPECT_EQ((*all)[2].hash, AuditEntryHash((*all)[2]));
  EXPECT_EQ((*all)[2].hash.size(), 64u);
}

// PostgreSQL hashes an entry in SQL (one round trip per append): the same bytes as
// AuditEntryHash, whatever the fields hold.
TEST_F(AuditLogTest, EntriesWithAnyTextChainAsTheVerifierHashesThem) {
  const std::vector<AuditEvent> odd = {
      {0, "user:u1", "a", "", ""},
      {-5, "user:\u00e9l\u00e8ve", "dataset.upload", "dataset:\u6570\u636e",
       "line 1\nline 2\t\"q\" '"},
      {1'800'000'000'000, "user:u2", "x", "\xf0\x9f\x94\x91", std::string(70'000, 'd')},
      {7, "user:u3", "job.create", "job:j", "\\ backslash %s ?1 $1"},
  };
  for (const AuditEvent& e : odd) ASSERT_TRUE(store_->AppendAudit(e).ok());
  auto all = store_->ListAudit(0, 10);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), odd.size());
  for (size_t i = 0; i < odd.size(); ++i) {
    EXPECT_EQ((*all)[i].seq, static_cast<int64_t>(i) + 1);
    EXPECT_EQ((*all)[i].at, odd[i].at);
    EXPECT_EQ((*all)[i].detail, odd[i].detail);
    EXPECT_EQ((*all)[i].hash, AuditEntryHash((*all)[i])) << i;
  }
  AuditVerdict v = Verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.entries, 4);
}

TEST_F(AuditLogTest, GenesisDependsOnTheServer) {
  EXPECT_NE(AuditGenesisHash("a"), AuditGenesisHash("b"));
}

TEST_F(AuditLogTest, AnIntactChainVerifiesAndShowsItsHead) {
  Append(5);
  AuditVerdict v = Verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.entries, 5);
  EXPECT_EQ(v.head_seq, 5);
  EXPECT_EQ(v.head, (*store_->RecentAudit(1))[0].hash);
}

TEST_F(AuditLogTest, AnEmptyLogVerifiesWithTheGenesisAsHead) {
  AuditVerdict v = Verify();
  EXPECT_TRUE(v.ok);
  EXPECT_EQ(v.entries, 0);
  EXPECT_EQ(v.head, AuditGenesisHash("11111111-2222-3333-4444-555555555555"));
}

TEST_F(AuditLogTest, AnAppendInsideARolledBackTransactionLeavesNoEntry) {
  Append(1);
  Status st = store_->InTransaction([](Store& tx) -> Status {
    RETURN_IF_ERROR(tx.AppendAudit({1, "system", "x", "t", ""}));
    return InternalError("the change failed");
  });
  EXPECT_FALSE(st.ok());
  Append(1);
  AuditVerdict v = Verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.entries, 2);
}

TEST_F(AuditLogTest, AnEditedEntryIsNamed) {
  Append(5);
  Sql("UPDATE audit_events SET detail = 'from 10.0.0.9' WHERE seq = 3");
  AuditVerdict v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 3);
  EXPECT_NE(v.reason.find("seq 3"), std::string::npos) << v.reason;
}

TEST_F(AuditLogTest, AnEditedAndRehashedEntryBreaksTheNextLink) {
  Append(5);
  auto e = (*store_->ListAudit(2, 1))[0];
  e.actor = "user:someone_else";
  Sql("UPDATE audit_events SET actor = 'user:someone_else', hash = '" + AuditEntryHash(e) +
      "' WHERE seq = 3");
  AuditVerdict v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 4);
}

TEST_F(AuditLogTest, ADeletedEntryIsNamed) {
  Append(5);
  Sql("DELETE FROM audit_events WHERE seq = 2");
  AuditVerdict v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 2);
  EXPECT_NE(v.reason.find("missing"), std::string::npos) << v.reason;
}

TEST_F(AuditLogTest, ADeletedFirstEntryIsNamed) {
  Append(3);
  Sql("DELETE FROM audit_events WHERE seq = 1");
  AuditVerdict v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 1);
}

TEST_F(AuditLogTest, SwappedEntriesAreNamed) {
  Append(5);
  // Swap the whole rows of seq 2 and 4 (their numbers stay in place).
  Sql("UPDATE audit_events SET seq = -2 WHERE seq = 2;"
      "UPDATE audit_events SET seq = 2 WHERE seq = 4;"
      "UPDATE audit_events SET seq = 4 WHERE seq = -2;");
  AuditVerdict v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 2);
}

TEST_F(AuditLogTest, ACutTailIsFoundAgainstASavedHead) {
  Append(5);
  const std::string saved = Verify().head;
  Sql("DELETE FROM audit_events WHERE seq >= 4");
  EXPECT_TRUE(Verify().ok);  // what is left is a valid chain...
  AuditVerdict v = Verify(saved);
  EXPECT_FALSE(v.ok);  // ...but not the one whose head was saved
  EXPECT_NE(v.reason.find("cut"), std::string::npos) << v.reason;
  EXPECT_EQ(v.head_seq, 3);
}

TEST_F(AuditLogTest, ASavedHeadStaysValidAsTheLogGrows) {
  Append(3);
  const std::string saved = Verify().head;
  Append(3);
  EXPECT_TRUE(Verify(saved).ok);
}

TEST_F(AuditLogTest, PruneRemovesAPrefixAndTheRestChainsFromTheCheckpoint) {
  Append(6);
  const auto third = (*store_->ListAudit(2, 1))[0];
  auto removed = PruneAuditLog(*store_, 4, 500);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, 3);
  auto cp = store_->GetAuditCheckpoint();
  ASSERT_TRUE(cp.ok() && cp->has_value());
  EXPECT_EQ((*cp)->seq, 3);
  EXPECT_EQ((*cp)->hash, third.hash);
  EXPECT_EQ((*store_->ListAudit(0, 10))[0].seq, 4);
  AuditVerdict v = Verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.entries, 3);
  Append(1);  // new entries follow the remaining ones
  EXPECT_TRUE(Verify().ok);
  EXPECT_EQ(Verify().head_seq, 7);
}

TEST_F(AuditLogTest, PruningEverythingKeepsTheChainGoingFromTheCheckpoint) {
  Append(3);
  ASSERT_EQ(*PruneAuditLog(*store_, 100, 500), 3);
  AuditVerdict v = Verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.head_seq, 3);
  Append(2);
  v = Verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.head_seq, 5);
}

TEST_F(AuditLogTest, PruneRefusesADamagedLog) {
  Append(4);
  Sql("UPDATE audit_events SET action = 'nothing' WHERE seq = 2");
  auto removed = PruneAuditLog(*store_, 4, 500);
  EXPECT_EQ(removed.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->ListAudit(0, 10)->size(), 4u);
}

TEST_F(AuditLogTest, PruneBeforeTimeKeepsLaterEntries) {
  Append(5);  // at 100..104
  auto seq = AuditSeqAtTime(*store_, 102);
  ASSERT_TRUE(seq.ok());
  EXPECT_EQ(*seq, 3);
  EXPECT_EQ(*PruneAuditLog(*store_, *seq, 500), 2);
}

TEST_F(AuditLogTest, AForgedCheckpointIsFound) {
  Append(5);
  ASSERT_EQ(*PruneAuditLog(*store_, 3, 500), 2);
  // Hide two more entries by moving the checkpoint over them, without the server's key.
  auto fourth = (*store_->ListAudit(3, 1))[0];
  Sql("DELETE FROM audit_events WHERE seq <= 4; UPDATE audit_checkpoint SET seq = 4, hash = '" +
      fourth.hash + "'");
  AuditVerdict v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.reason.find("checkpoint"), std::string::npos) << v.reason;
}

TEST_F(AuditLogTest, AnEntryInsertedBeforeTheCheckpointIsFound) {
  Append(4);
  ASSERT_EQ(*PruneAuditLog(*store_, 3, 500), 2);
  Sql("INSERT INTO audit_events (seq, at, actor, action, target, detail, prev_hash, hash) "
      "VALUES (1, 1, 'system', 'x', 'y', '', '', '')");
  AuditVerdict v = Verify();
  EXPECT_FALSE(v.ok);
  EXPECT_EQ(v.first_bad_seq, 1);
}

TEST_F(AuditLogTest, EntriesFromBeforeTheChainAreChainedByItsMigration) {
  if (db_->postgres()) GTEST_SKIP() << "an old SQLite schema";
  Append(3);
  store_.reset();
  // Back to the schema before the chain: no hash columns, no checkpoint table.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  const int version = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  // The sync migration, the quota charges', the storage meter's, the leases', the versions', the
  // rate events', the idempotency keys', the outbox expiry's, the jobs notifications', the code
  // bytes', the project usage's, the idempotency owners', the job usage's and the grants' came
  // after the chain's: undone first (the last with the idempotency keys' table).
  Sql(std::string(kDropJobCharges) + kDropSync +
      "ALTER TABLE mail_outbox DROP COLUMN expires_at; "
      "DROP TABLE audit_checkpoint; ALTER TABLE audit_events DROP COLUMN prev_hash;"
      "ALTER TABLE audit_events DROP COLUMN hash; PRAGMA user_version = " +
      std::to_string(version - 19));
  Open();
  AuditVerdict v = Verify();
  EXPECT_TRUE(v.ok) << v.reason;
  EXPECT_EQ(v.entries, 3);
  EXPECT_EQ((*store_->ListAudit(0, 10))[2].target, "user:u2");
}

TEST_F(AuditLogTest, TheReadOnlyStoreVerifiesAndCannotWrite) {
  Append(2);
  auto ro = db_->postgres() ? OpenPostgresStoreReadOnly(path_) : OpenSqliteStoreReadOnly(path_);
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  auto v = VerifyAuditLog(**ro, std::nullopt);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->ok);
  EXPECT_EQ(v->entries, 2);
  EXPECT_EQ((*ro)->AppendAudit({1, "system", "x", "t", ""}).code(), StatusCode::kUnavailable);
  Settings s;
  s.name = "changed";
  EXPECT_EQ((*ro)->PutSettings(s).code(), StatusCode::kUnavailable);
  EXPECT_EQ(store_->ListAudit(0, 10)->size(), 2u);
  auto stored = store_->GetSettings();
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(!stored->has_value() || (*stored)->name != "changed");
}

}  // namespace
}  // namespace datasite::store
