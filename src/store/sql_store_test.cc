#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "store/store.h"
#include "store/sync_schema_test_util.h"
#include "store/test_database.h"

namespace datasite::store {
namespace {

// The schema version a store opened by this build has.
constexpr int64_t kLatestVersion = 32;

// Undoes schema version 31 (differential privacy), for tests that upgrade from before it.
constexpr const char* kUndoVersion31 =
    "DROP TABLE worker_pool_records; DROP TABLE dp_releases; DROP TABLE dp_budgets; DROP TABLE "
    "dp_policies; ";

// Undoes schema versions 31 and 30 (custom API endpoints), for tests that upgrade from before 30.
constexpr const char* kUndoVersion30 =
    "DROP TABLE worker_pool_records; DROP TABLE dp_releases; DROP TABLE dp_budgets; DROP TABLE "
    "dp_policies; "
    "DROP TABLE api_endpoints; ";

// Undoes schema versions 30 and 29 (output checks), for tests that upgrade from before 29.
constexpr const char* kUndoVersion29 =
    "DROP TABLE worker_pool_records; DROP TABLE dp_releases; DROP TABLE dp_budgets; DROP TABLE "
    "dp_policies; "
    "DROP TABLE api_endpoints; DROP TABLE output_checks; ALTER TABLE jobs DROP COLUMN "
    "held_reason; ";

// Undoes schema versions 29 and 28 (grants), for tests that upgrade from before 28.
constexpr const char* kUndoVersion28 =
    "DROP TABLE worker_pool_records; DROP TABLE dp_releases; DROP TABLE dp_budgets; DROP TABLE "
    "dp_policies; "
    "DROP TABLE api_endpoints; DROP TABLE output_checks; ALTER TABLE jobs DROP COLUMN held_reason; "
    "DROP INDEX jobs_grant; ALTER TABLE jobs DROP COLUMN grant_id; DROP TABLE grant_users; "
    "DROP TABLE grants; ";

// Undoes schema versions 29 to 27 (27: each user's job usage as running sums), for tests that
// upgrade from before 27 (those that undo an older version undo these first).
std::string UndoVersion27(bool postgres) {
  return std::string(kUndoVersion28) +
         (postgres ? "DROP FUNCTION count_job_usage() CASCADE; DROP TABLE job_usage; "
                   : "DROP TRIGGER job_usage_insert; DROP TRIGGER job_usage_update; "
                     "DROP TRIGGER job_usage_delete; DROP TABLE job_usage; ");
}

// Undoes schema version 26 (the idempotency answers' owner), for tests that upgrade from before it.
constexpr const char* kUndoVersion26 =
    "DROP INDEX idempotency_keys_owner; ALTER TABLE idempotency_keys DROP COLUMN owner; ";

// Each test gets a fresh database on the engine of the test run (see test_database.h): the same
// tests are the conformance suite of every engine.
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>();
    dir_ = db_->dir();
    path_ = db_->location();
    Open();
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

  bool postgres() const { return db_->postgres(); }

  // The integer `sql` selects, read behind the store's back (-1 when it selects nothing).
  int64_t RawInt(const std::string& sql) {
    int64_t out = -1;
    if (postgres()) {
      PGconn* c = PQconnectdb(path_.c_str());
      PGresult* r = PQexec(c, sql.c_str());
      EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
      if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
        out = std::stoll(PQgetvalue(r, 0, 0));
      }
      PQclear(r);
      PQfinish(c);
      return out;
    }
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    if (sqlite3_step(st) == SQLITE_ROW) out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  void RawSql(const std::string& sql) { db_->Run(sql); }

  static User MakeUser(const std::string& id, const std::string& email, const std::string& name,
                       int64_t created_at = 1000) {
    User u;
    u.id = id;
    u.email = email;
    u.name = name;
    u.role = 2;
    u.institution = "OpenMined";
    u.website = "https://example.org";
    u.password_hash = "$argon2id$fake";
    u.created_at = created_at;
    u.updated_at = created_at;
    return u;
  }

  static Session MakeSession(const std::string& token_hash, std::optional<std::string> user_id,
                             int64_t expires_at = 5000) {
    Session s;
    s.token_hash = token_hash;
    s.user_id = std::move(user_id);
    s.role = 2;
    s.created_at = 1000;
    s.expires_at = expires_at;
    return s;
  }

  bool SessionExists(const std::string& token_hash) {
    auto s = store_->GetSession(token_hash);
    EXPECT_TRUE(s.ok() || s.status().code() == StatusCode::kNotFound) << s.status().ToString();
    return s.ok();
  }

  std::unique_ptr<TestDatabase> db_;
  std::string dir_;
  std::string path_;  // the SQLite file or the PostgreSQL URL
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, InTransactionCommitsEveryChangeTogether) {
  Status st = store_->InTransaction([&](Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertUser(MakeUser("u1", "a@example.org", "A")));
    RETURN_IF_ERROR(tx.InsertUser(MakeUser("u2", "b@example.org", "B")));
    return tx.AppendAudit({1, "system", "user.create", "user:u1,u2", ""});
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(store_->GetUserById("u1").ok());
  EXPECT_TRUE(store_->GetUserById("u2").ok());
  EXPECT_EQ(store_->RecentAudit(10)->size(), 1u);
}

TEST_F(StoreTest, InTransactionRollsEverythingBackWhenTheBodyFails) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u0", "taken@example.org", "Zero")).ok());
  Status st = store_->InTransaction([&](Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertUser(MakeUser("u1", "a@example.org", "A")));
    RETURN_IF_ERROR(tx.AppendAudit({1, "system", "user.create", "user:u1", ""}));
    // A method with its own all-or-nothing block, nested in the caller's transaction.
    Dataset d;
    d.id = "d1";
    d.name = "one";
    d.uploader_id = "u1";
    RETURN_IF_ERROR(tx.InsertDataset(d));
    return tx.InsertUser(MakeUser("u2", "taken@example.org", "Clash"));
  });
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetUserById("u1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetDataset("d1").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->RecentAudit(10)->empty());
  // The store is usable afterwards, outside any transaction.
  EXPECT_TRUE(store_->InsertUser(MakeUser("u3", "c@example.org", "C")).ok());
}

TEST_F(StoreTest, AFailedCallInsideATransactionUndoesOnlyItsOwnPart) {
  Status st = store_->InTransaction([&](Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertUser(MakeUser("u1", "a@example.org", "A")));
    Dataset bad;  // the second asset's id repeats the first's: InsertDataset fails midway
    bad.id = "d1";
    bad.name = "bad";
    bad.uploader_id = "u1";
    Asset a;
    a.id = "a1";
    a.name = "x";
    bad.assets = {a, a};
    EXPECT_FALSE(tx.InsertDataset(bad).ok());
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(store_->GetUserById("u1").ok());
  EXPECT_EQ(store_->GetDataset("d1").status().code(), StatusCode::kNotFound);
}

// A body that goes on after a failed call: SQLite undoes the failed statement only and keeps the
// rest; PostgreSQL aborts the whole transaction. Either is acceptable; what no engine may do is
// answer OK and keep nothing (PostgreSQL answers a COMMIT of an aborted transaction "ROLLBACK").
TEST_F(StoreTest, ABodyThatIgnoresAFailedCallIsNeverToldItsWorkWasKeptWhenItWasNot) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u0", "taken@example.org", "Zero")).ok());
  Status st = store_->InTransaction([&](Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertUser(MakeUser("u1", "a@example.org", "A")));
    (void)tx.InsertUser(MakeUser("u2", "taken@example.org", "Clash"));  // fails, ignored
    (void)tx.InsertUser(MakeUser("u3", "c@example.org", "C"));
    return Status::Ok();
  });
  const bool kept = store_->GetUserById("u1").ok();
  if (st.ok()) {
    EXPECT_TRUE(kept);
  } else {
    EXPECT_FALSE(kept);
    EXPECT_FALSE(store_->GetUserById("u3").ok());
  }
  EXPECT_EQ(st.ok(), !postgres()) << st.ToString();
}

TEST_F(StoreTest, NestedTransactionsJoinTheOuterOne) {
  Status st = store_->InTransaction([&](Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertUser(MakeUser("u1", "a@example.org", "A")));
    (void)tx.InTransaction([&](Store& inner) -> Status {
      RETURN_IF_ERROR(inner.InsertUser(MakeUser("u2", "b@example.org", "B")));
      return InternalError("inner gives up");
    });
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(store_->GetUserById("u1").ok());
  EXPECT_EQ(store_->GetUserById("u2").status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, InsertedUserIsFoundById) {
  User u = MakeUser("u1", "jane@example.org", "Jane Doe");
  u.is_root = true;
  ASSERT_TRUE(store_->InsertUser(u).ok());
  auto got = store_->GetUserById("u1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->id, "u1");
  EXPECT_EQ(got->email, "jane@example.org");
  EXPECT_EQ(got->name, "Jane Doe");
  EXPECT_EQ(got->role, 2);
  EXPECT_EQ(got->institution, "OpenMined");
  EXPECT_EQ(got->website, "https://example.org");
  EXPECT_EQ(got->password_hash, "$argon2id$fake");
  EXPECT_TRUE(got->is_root);
  EXPECT_EQ(got->created_at, 1000);
  EXPECT_EQ(got->updated_at, 1000);
}

TEST_F(StoreTest, InsertedUserIsFoundByEmail) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "jane@example.org", "Jane")).ok());
  auto got = store_->GetUserByEmail("jane@example.org");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->id, "u1");
}

TEST_F(StoreTest, MissingUserIsNotFound) {
  EXPECT_EQ(store_->GetUserById("nobody").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetUserByEmail("nobody@example.org").status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, DuplicateEmailIsAlreadyExists) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "jane@example.org", "Jane")).ok());
  Status s = store_->InsertUser(MakeUser("u2", "jane@example.org", "Other Jane"));
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  EXPECT_EQ(store_->GetUserById("u2").status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, DuplicateIdIsAlreadyExists) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  EXPECT_EQ(store_->InsertUser(MakeUser("u1", "b@example.org", "B")).code(),
            StatusCode::kAlreadyExists);
}

TEST_F(StoreTest, UpdateUserChangesFields) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "jane@example.org", "Jane")).ok());
  User u = *store_->GetUserById("u1");
  u.email = "janet@example.org";
  u.name = "Janet";
  u.role = 32;
  u.institution = "Elsewhere";
  u.website = "";
  u.password_hash = "$argon2id$other";
  u.updated_at = 2000;
  ASSERT_TRUE(store_->UpdateUser(u).ok());
  auto got = store_->GetUserById("u1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->email, "janet@example.org");
  EXPECT_EQ(got->name, "Janet");
  EXPECT_EQ(got->role, 32);
  EXPECT_EQ(got->institution, "Elsewhere");
  EXPECT_EQ(got->website, "");
  EXPECT_EQ(got->password_hash, "$argon2id$other");
  EXPECT_EQ(got->created_at, 1000);
  EXPECT_EQ(got->updated_at, 2000);
  EXPECT_EQ(store_->GetUserByEmail("jane@example.org").status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, UpdateUserEmailClashIsAlreadyExists) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("u2", "b@example.org", "B")).ok());
  User u = *store_->GetUserById("u2");
  u.email = "a@example.org";
  u.name = "Changed";
  EXPECT_EQ(store_->UpdateUser(u).code(), StatusCode::kAlreadyExists);
  auto got = store_->GetUserById("u2");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->email, "b@example.org");
  EXPECT_EQ(got->name, "B");
}

TEST_F(StoreTest, UpdateMissingUserIsNotFound) {
  EXPECT_EQ(store_->UpdateUser(MakeUser("ghost", "ghost@example.org", "Ghost")).code(),
            StatusCode::kNotFound);
}

TEST_F(StoreTest, DeleteUserRemovesIt) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  ASSERT_TRUE(store_->DeleteUser("u1").ok());
  EXPECT_EQ(store_->GetUserById("u1").status().code(), StatusCode::kNotFound);
  // The email is free again.
  EXPECT_TRUE(store_->InsertUser(MakeUser("u2", "a@example.org", "A again")).ok());
}

TEST_F(StoreTest, DeleteMissingUserIsNotFound) {
  EXPECT_EQ(store_->DeleteUser("ghost").code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, ListUsersPagesOldestFirstWithTotal) {
  for (int i = 0; i < 5; ++i) {
    std::string n = std::to_string(i);
    // Inserted out of creation order: the list must follow created_at.
    ASSERT_TRUE(
        store_->InsertUser(MakeUser("u" + n, "user" + n + "@example.org", "User " + n, 1000 - i))
            .ok());
  }
  auto first = store_->ListUsers("", 0, 2);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->total, 5);
  ASSERT_EQ(first->items.size(), 2u);
  EXPECT_EQ(first->items[0].id, "u4");
  EXPECT_EQ(first->items[1].id, "u3");

  auto middle = store_->ListUsers("", 2, 2);
  ASSERT_TRUE(middle.ok());
  EXPECT_EQ(middle->total, 5);
  ASSERT_EQ(middle->items.size(), 2u);
  EXPECT_EQ(middle->items[0].id, "u2");
  EXPECT_EQ(middle->items[1].id, "u1");

  auto last = store_->ListUsers("", 4, 2);
  ASSERT_TRUE(last.ok());
  ASSERT_EQ(last->items.size(), 1u);
  EXPECT_EQ(last->items[0].id, "u0");

  auto beyond = store_->ListUsers("", 10, 2);
  ASSERT_TRUE(beyond.ok());
  EXPECT_TRUE(beyond->items.empty());
  EXPECT_EQ(beyond->total, 5);
}

TEST_F(StoreTest, ListUsersTiesKeepInsertionOrder) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("zz", "a@example.org", "A", 1000)).ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("aa", "b@example.org", "B", 1000)).ok());
  auto page = store_->ListUsers("", 0, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].id, "zz");
  EXPECT_EQ(page->items[1].id, "aa");
}

TEST_F(StoreTest, ListUsersOnEmptyStore) {
  auto page = store_->ListUsers("", 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 0);
  EXPECT_TRUE(page->items.empty());
}

TEST_F(StoreTest, ListUsersSearchesEmailCaseInsensitively) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "alice@example.org", "First")).ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("u2", "bob@example.org", "Second")).ok());
  auto page = store_->ListUsers("ALICE@", 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 1);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].id, "u1");
}

TEST_F(StoreTest, ListUsersSearchesNameCaseInsensitively) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "Jane Doe")).ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("u2", "b@example.org", "John Smith")).ok());
  auto page = store_->ListUsers("jAnE d", 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 1);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].id, "u1");
}

TEST_F(StoreTest, ListUsersSearchTotalCountsAllMatches) {
  for (int i = 0; i < 4; ++i) {
    std::string n = std::to_string(i);
    ASSERT_TRUE(
        store_->InsertUser(MakeUser("m" + n, "match" + n + "@example.org", "M", 1000 + i)).ok());
  }
  ASSERT_TRUE(store_->InsertUser(MakeUser("x", "other@example.org", "X")).ok());
  auto page = store_->ListUsers("match", 1, 2);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 4);
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].id, "m1");
  EXPECT_EQ(page->items[1].id, "m2");
}

TEST_F(StoreTest, ListUsersSearchTreatsPercentLiterally) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "100% sure")).ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("u2", "b@example.org", "100 sure")).ok());
  auto page = store_->ListUsers("%", 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 1);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].id, "u1");
}

TEST_F(StoreTest, ListUsersSearchTreatsUnderscoreLiterally) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a_b@example.org", "One")).ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("u2", "axb@example.org", "Two")).ok());
  auto page = store_->ListUsers("a_b", 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 1);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].id, "u1");
}

TEST_F(StoreTest, ListUsersSearchWithoutMatchIsEmpty) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  auto page = store_->ListUsers("zzz", 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 0);
  EXPECT_TRUE(page->items.empty());
}

TEST_F(StoreTest, SessionRoundTrips) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  // Token hashes are raw bytes, zeros included.
  std::string hash("\x00\x01\xff token", 9);
  ASSERT_TRUE(store_->InsertSession(MakeSession(hash, "u1", 7000)).ok());
  auto got = store_->GetSession(hash);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->token_hash, hash);
  EXPECT_EQ(got->user_id, std::optional<std::string>("u1"));
  EXPECT_EQ(got->role, 2);
  EXPECT_EQ(got->created_at, 1000);
  EXPECT_EQ(got->expires_at, 7000);
}

TEST_F(StoreTest, GuestSessionHasNoUser) {
  ASSERT_TRUE(store_->InsertSession(MakeSession("guest", std::nullopt)).ok());
  auto got = store_->GetSession("guest");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->user_id.has_value());
}

TEST_F(StoreTest, MissingSessionIsNotFound) {
  EXPECT_EQ(store_->GetSession("nope").status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, SessionForUnknownUserIsRefused) {
  EXPECT_FALSE(store_->InsertSession(MakeSession("t", "ghost")).ok());
  EXPECT_FALSE(SessionExists("t"));
}

TEST_F(StoreTest, DeleteSessionRemovesIt) {
  ASSERT_TRUE(store_->InsertSession(MakeSession("t1", std::nullopt)).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("t2", std::nullopt)).ok());
  ASSERT_TRUE(store_->DeleteSession("t1").ok());
  EXPECT_FALSE(SessionExists("t1"));
  EXPECT_TRUE(SessionExists("t2"));
}

TEST_F(StoreTest, AuthVersionMovesOnEveryUserOrSessionUpdateOrDelete) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("u2", "b@example.org", "B")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("a1", "u1")).ok());
  int64_t last = store_->AuthVersion();
  auto moved = [&] {
    int64_t now = store_->AuthVersion();
    bool changed = now != last;
    last = now;
    return changed;
  };
  User changed = MakeUser("u1", "a@example.org", "A");
  changed.role = 3;
  ASSERT_TRUE(store_->UpdateUser(changed).ok());
  EXPECT_TRUE(moved()) << "UpdateUser";
  ASSERT_TRUE(store_->DeleteSession("a1").ok());
  EXPECT_TRUE(moved()) << "DeleteSession";
  ASSERT_TRUE(store_->DeleteUserSessions("u1", "").ok());
  EXPECT_TRUE(moved()) << "DeleteUserSessions";
  ASSERT_TRUE(store_->DeleteExpiredSessions(0).ok());
  EXPECT_TRUE(moved()) << "DeleteExpiredSessions";
  ASSERT_TRUE(store_->DeleteUser("u2").ok());
  EXPECT_TRUE(moved()) << "DeleteUser";
}

TEST_F(StoreTest, AuthVersionMovesEvenWhenAnUpdateFails) {
  // The version moves before the change, so a failed write can only cost a cache miss.
  int64_t before = store_->AuthVersion();
  EXPECT_EQ(store_->UpdateUser(MakeUser("ghost", "g@example.org", "G")).code(),
            StatusCode::kNotFound);
  EXPECT_NE(store_->AuthVersion(), before);
}

TEST_F(StoreTest, DeletingUserDeletesItsSessions) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("u2", "b@example.org", "B")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("a1", "u1")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("a2", "u1")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("b1", "u2")).ok());
  ASSERT_TRUE(store_->DeleteUser("u1").ok());
  EXPECT_FALSE(SessionExists("a1"));
  EXPECT_FALSE(SessionExists("a2"));
  EXPECT_TRUE(SessionExists("b1"));
}

TEST_F(StoreTest, DeleteUserSessionsKeepsTheNamedOne) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("u2", "b@example.org", "B")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("keep", "u1")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("drop1", "u1")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("drop2", "u1")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("other", "u2")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("guest", std::nullopt)).ok());
  ASSERT_TRUE(store_->DeleteUserSessions("u1", "keep").ok());
  EXPECT_TRUE(SessionExists("keep"));
  EXPECT_FALSE(SessionExists("drop1"));
  EXPECT_FALSE(SessionExists("drop2"));
  EXPECT_TRUE(SessionExists("other"));
  EXPECT_TRUE(SessionExists("guest"));
}

TEST_F(StoreTest, DeleteUserSessionsWithEmptyKeepDeletesAll) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("s1", "u1")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("s2", "u1")).ok());
  ASSERT_TRUE(store_->DeleteUserSessions("u1", "").ok());
  EXPECT_FALSE(SessionExists("s1"));
  EXPECT_FALSE(SessionExists("s2"));
}

TEST_F(StoreTest, DeleteExpiredSessionsKeepsLiveOnes) {
  ASSERT_TRUE(store_->InsertSession(MakeSession("past", std::nullopt, 4000)).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("now", std::nullopt, 5000)).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("future", std::nullopt, 5001)).ok());
  ASSERT_TRUE(store_->DeleteExpiredSessions(5000).ok());
  EXPECT_FALSE(SessionExists("past"));
  EXPECT_FALSE(SessionExists("now"));  // expires_at == now counts as expired
  EXPECT_TRUE(SessionExists("future"));
}

TEST_F(StoreTest, CountGuestSessionsCountsLiveGuestsOnly) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("user", "u1", 9000)).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("expired", std::nullopt, 5000)).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("g1", std::nullopt, 9000)).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("g2", std::nullopt, 9000)).ok());
  EXPECT_EQ(*store_->CountGuestSessions(5000), 2);
}

TEST_F(StoreTest, SettingsAbsentAtFirst) {
  auto got = store_->GetSettings();
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(StoreTest, SettingsRoundTrip) {
  Settings s;
  s.id = "sid";
  s.name = "my_server";
  s.organization = "OpenMined";
  s.description = "desc";
  s.deployed_on = "2026-11-26";
  s.signup_enabled = true;
  s.notifications_enabled = true;
  s.admin_email = "info@example.org";
  s.server_type = "gateway";
  s.server_side_type = "low";
  s.association_request_auto_approval = true;
  s.allow_guest_sessions = false;
  s.welcome_markdown = "# Hi";
  ASSERT_TRUE(store_->PutSettings(s).ok());
  auto got = store_->GetSettings();
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  const Settings& g = **got;
  EXPECT_EQ(g.id, "sid");
  EXPECT_EQ(g.name, "my_server");
  EXPECT_EQ(g.organization, "OpenMined");
  EXPECT_EQ(g.description, "desc");
  EXPECT_EQ(g.deployed_on, "2026-11-26");
  EXPECT_TRUE(g.signup_enabled);
  EXPECT_TRUE(g.notifications_enabled);
  EXPECT_EQ(g.admin_email, "info@example.org");
  EXPECT_EQ(g.server_type, "gateway");
  EXPECT_EQ(g.server_side_type, "low");
  EXPECT_TRUE(g.association_request_auto_approval);
  EXPECT_FALSE(g.allow_guest_sessions);
  EXPECT_EQ(g.welcome_markdown, "# Hi");
}

TEST_F(StoreTest, PutSettingsReplacesTheRow) {
  Settings s;
  s.name = "first";
  ASSERT_TRUE(store_->PutSettings(s).ok());
  s.name = "second";
  s.signup_enabled = true;
  ASSERT_TRUE(store_->PutSettings(s).ok());
  auto got = store_->GetSettings();
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->name, "second");
  EXPECT_TRUE((*got)->signup_enabled);
}

TEST_F(StoreTest, IdentityAbsentAtFirst) {
  auto got = store_->GetIdentity();
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(StoreTest, IdentityRoundTripsRawKeys) {
  Identity id;
  id.server_id = "123e4567-e89b-42d3-a456-426614174000";
  id.verify_key = std::string("\x00\x01\x02\xff", 4) + std::string(28, '\x7f');
  id.signing_key = std::string(64, '\0');
  id.signing_key[10] = '\xee';
  id.created_at = 1234;
  ASSERT_TRUE(store_->PutIdentity(id).ok());
  auto got = store_->GetIdentity();
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->server_id, id.server_id);
  EXPECT_EQ((*got)->verify_key, id.verify_key);
  EXPECT_EQ((*got)->signing_key, id.signing_key);
  EXPECT_EQ((*got)->created_at, 1234);
}

TEST_F(StoreTest, RecentAuditIsTheNewestEventsOldestFirst) {
  ASSERT_TRUE(store_->AppendAudit({1, "system", "a", "t1", ""}).ok());
  ASSERT_TRUE(store_->AppendAudit({2, "user:u1", "b", "t2", "d"}).ok());
  ASSERT_TRUE(store_->AppendAudit({3, "guest", "c", "t3", ""}).ok());
  auto got = store_->RecentAudit(2);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].action, "b");
  EXPECT_EQ((*got)[0].actor, "user:u1");
  EXPECT_EQ((*got)[0].detail, "d");
  EXPECT_EQ((*got)[1].action, "c");
}

TEST_F(StoreTest, DataSurvivesReopen) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("s1", "u1")).ok());
  Settings s;
  s.name = "kept";
  ASSERT_TRUE(store_->PutSettings(s).ok());
  Identity id;
  id.server_id = "sid";
  id.verify_key = std::string(32, 'v');
  id.signing_key = std::string(64, 's');
  ASSERT_TRUE(store_->PutIdentity(id).ok());

  store_.reset();
  ASSERT_NO_FATAL_FAILURE(Open());

  auto user = store_->GetUserById("u1");
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  EXPECT_EQ(user->email, "a@example.org");
  EXPECT_TRUE(SessionExists("s1"));
  auto settings = store_->GetSettings();
  ASSERT_TRUE(settings.ok());
  ASSERT_TRUE(settings->has_value());
  EXPECT_EQ((*settings)->name, "kept");
  auto identity = store_->GetIdentity();
  ASSERT_TRUE(identity.ok());
  ASSERT_TRUE(identity->has_value());
  EXPECT_EQ((*identity)->verify_key, std::string(32, 'v'));
}

TEST_F(StoreTest, ForeignKeysStayOnAfterReopen) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  store_.reset();
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(store_->InsertSession(MakeSession("s1", "u1")).ok());
  ASSERT_TRUE(store_->DeleteUser("u1").ok());
  EXPECT_FALSE(SessionExists("s1"));
}

TEST_F(StoreTest, CheckIntegrityIsOk) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  Status s = store_->CheckIntegrity();
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(StoreTest, OpenInMissingDirectoryFails) {
  if (postgres()) GTEST_SKIP() << "a SQLite file";
  auto opened = OpenSqliteStore(dir_ + "/no/such/dir/datasite.db");
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().code(), StatusCode::kOk);
  EXPECT_FALSE(opened.status().message().empty());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/no"));
}

// The upgrade from PostgreSQL's baseline (version 18) on each engine: the shared versions (19),
// the rate events (20), the idempotency keys (21) and the outbox's expiry (22) are added, and the
// versions are bumped by its changes.
TEST_F(StoreTest, UpgradeFromTheVersionBeforeAddsTheSharedVersions) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  store_.reset();
  if (postgres()) {
    RawSql(
        UndoVersion27(true) +
        "DROP TABLE project_usage; DROP TABLE code_bytes; "
        "DROP FUNCTION bump_versions() CASCADE; DROP FUNCTION notify_jobs() CASCADE; "
        "DROP TABLE versions; DROP TABLE rate_events; DROP TABLE idempotency_keys; "
        "ALTER TABLE mail_outbox DROP COLUMN expires_at; UPDATE schema_version SET version = 18");
  } else {
    RawSql(
        UndoVersion27(false) +
        std::string("DROP TABLE project_usage; DROP TABLE code_bytes; "
                    "DROP TRIGGER version_users_update; DROP TRIGGER version_users_delete; "
                    "DROP TRIGGER version_sessions_update; DROP TRIGGER version_sessions_delete; "
                    "DROP TRIGGER version_datasets_insert; DROP TRIGGER version_datasets_update; "
                    "DROP TRIGGER version_datasets_delete; DROP TRIGGER version_assets_insert; "
                    "DROP TRIGGER version_assets_update; DROP TRIGGER version_assets_delete; "
                    "DROP TRIGGER version_settings_insert; DROP TRIGGER version_settings_update; "
                    "DROP TABLE versions; DROP TABLE rate_events; DROP TABLE idempotency_keys; "
                    "ALTER TABLE mail_outbox DROP COLUMN expires_at; PRAGMA user_version = 18"));
  }
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(RawInt(postgres() ? "SELECT version FROM schema_version" : "PRAGMA user_version"),
            kLatestVersion);
  EXPECT_EQ(RawInt("SELECT count(*) FROM idempotency_keys"), 0);
  EXPECT_TRUE(store_->GetUserById("u1").ok());  // the data is kept
  EXPECT_EQ(RawInt("SELECT value FROM versions WHERE name = 'auth'"), 0);
  User u = *store_->GetUserById("u1");
  u.name = "Ann";
  ASSERT_TRUE(store_->UpdateUser(u).ok());
  // Bumped in the update's transaction, as another process reads it.
  EXPECT_EQ(RawInt("SELECT value FROM versions WHERE name = 'auth'"), 1);
  EXPECT_EQ(RawInt("SELECT value FROM versions WHERE name = 'catalog'"), 1);
  EXPECT_EQ(RawInt("SELECT value FROM versions WHERE name = 'settings'"), 0);
}

// The upgrade to version 22 scrubs the reset tokens that the outbox kept in clear: sent mails lose
// their bodies, an unsent one lives until its user's last unused token expires.
TEST_F(StoreTest, UpgradeBlanksResetTokensTheOutboxKept) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  ASSERT_TRUE(store_->InsertPasswordReset({"hash1", "u1", "self", 100, 700}).ok());
  OutboxMail m;
  m.recipient = "a@example.org";
  m.user_id = "u1";
  m.kind = "password_reset";
  m.subject = "Reset";
  m.batchable = false;
  auto sent = store_->EnqueueMail(m);
  auto unsent = store_->EnqueueMail(m);
  ASSERT_TRUE(sent.ok() && unsent.ok());
  store_.reset();
  RawSql(
      "UPDATE mail_outbox SET body_text = 'Token: old', body_html = 'old'; "
      "UPDATE mail_outbox SET sent_at = 5 WHERE seq = " +
      std::to_string(*sent) + "; ALTER TABLE mail_outbox DROP COLUMN expires_at; " +
      "DROP TABLE project_usage; DROP TABLE code_bytes; " + UndoVersion27(postgres()) +
      kUndoVersion26 +
      (postgres() ? "UPDATE schema_version SET version = 21" : "PRAGMA user_version = 21"));
  ASSERT_NO_FATAL_FAILURE(Open());
  auto all = store_->ListOutbox(10);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].text, "");
  EXPECT_EQ((*all)[0].html, "");
  EXPECT_EQ((*all)[1].text, "Token: old");  // still to be sent
  EXPECT_EQ((*all)[1].expires_at, 700'000);
}

// Replicas share one PostgreSQL database: a change made through one store is seen by another
// store's versions (so by its caches) and wakes its job queue. SQLite has one server process per
// database file, whose own changes move its versions.
TEST_F(StoreTest, AnotherProcessSeesTheChangesThroughTheVersions) {
  if (!postgres()) GTEST_SKIP() << "one server process per SQLite database";
  auto other = db_->Open();
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  std::atomic<int> jobs_changed{0};
  (*other)->SetJobsChangedListener([&](JobsChange) { ++jobs_changed; });
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("s1", "u1")).ok());
  auto settled = [&](const std::function<bool()>& done) {
    for (int i = 0; i < 200 && !done(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return done();
  };
  const int64_t auth = (*other)->AuthVersion();
  const int64_t catalog = (*other)->CatalogVersion();
  const int64_t settings = (*other)->SettingsVersion();
  ASSERT_TRUE(store_->DeleteSession("s1").ok());  // a logout
  EXPECT_TRUE(settled([&] { return (*other)->AuthVersion() != auth; }));
  EXPECT_EQ((*other)->CatalogVersion(), catalog);  // a session is not the catalog
  const int64_t auth2 = (*other)->AuthVersion();
  User u = *store_->GetUserById("u1");
  u.role = 3;  // a role change
  ASSERT_TRUE(store_->UpdateUser(u).ok());
  EXPECT_TRUE(settled([&] { return (*other)->AuthVersion() != auth2; }));
  EXPECT_TRUE(settled([&] { return (*other)->CatalogVersion() != catalog; }));
  Settings st;
  st.id = "sid";
  st.name = "renamed";
  ASSERT_TRUE(store_->PutSettings(st).ok());
  EXPECT_TRUE(settled([&] { return (*other)->SettingsVersion() != settings; }));
  const int64_t catalog2 = (*other)->CatalogVersion();
  Dataset d;
  d.id = "d1";
  d.name = "one";
  d.uploader_id = "u1";
  d.created_at = d.updated_at = 1;
  ASSERT_TRUE(store_->InsertDataset(d).ok());  // a dataset change
  EXPECT_TRUE(settled([&] { return (*other)->CatalogVersion() != catalog2; }));
  EXPECT_EQ(jobs_changed.load(), 0);
  (*other)->SetJobsChangedListener(nullptr);
}

TEST_F(StoreTest, NewerSchemaIsFailedPrecondition) {
  store_.reset();
  RawSql(postgres() ? "UPDATE schema_version SET version = 99" : "PRAGMA user_version=99");

  auto opened = db_->Open();
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(opened.status().message().find("99"), std::string::npos) << opened.status().message();
}

// Regression (issue 11, "mocks tell the private data"): a database of schema version 5, whose
// generated mocks may reveal private data, is upgraded with those mocks flagged and the generated
// mocks no asset uses deleted; an uploaded mock is not flagged.
TEST_F(StoreTest, SidecarsAreRecordedOnTheBlobsOfANewDataset) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("owner", "owner@example.org", "Owner")).ok());
  ASSERT_TRUE(store_->InsertBlob({"data", "owner", 10, "00", "csv", "{}", 1000}).ok());
  ASSERT_TRUE(store_->InsertBlob({"mock", "owner", 10, "00", "csv", "{}", 1000}).ok());
  Dataset d;
  d.id = "ds";
  d.name = "census";
  d.uploader_id = "owner";
  d.created_at = d.updated_at = 1000;
  Asset a;
  a.id = "asset";
  a.name = "table";
  a.format = "csv";
  a.data_blob_id = "data";
  a.mock_blob_id = "mock";
  a.data_meta = R"({"private":1})";
  d.assets.push_back(a);
  ASSERT_TRUE(store_->InsertDataset(d).ok());
  auto read = store_->GetDataset("ds");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->assets[0].data_blob->meta, R"({"private":1})");
  EXPECT_EQ(read->assets[0].mock_blob->meta, "");
  EXPECT_EQ(store_->GetBlob("data")->meta, R"({"private":1})");
}

TEST_F(StoreTest, InsertAssetAppendsToALiveDataset) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("owner", "owner@example.org", "Owner")).ok());
  ASSERT_TRUE(store_->InsertBlob({"mock1", "owner", 10, "00", "csv", "{}", 1000}).ok());
  ASSERT_TRUE(store_->InsertBlob({"mock2", "owner", 10, "00", "csv", "{}", 1000}).ok());
  Dataset d;
  d.id = "ds";
  d.name = "census";
  d.uploader_id = "owner";
  d.created_at = d.updated_at = 1000;
  Asset first;
  first.id = "asset1";
  first.name = "table";
  first.format = "csv";
  first.mock_blob_id = "mock1";
  d.assets.push_back(first);
  ASSERT_TRUE(store_->InsertDataset(d).ok());

  Asset second;
  second.id = "asset2";
  second.name = "visits";
  second.format = "csv";
  second.mock_blob_id = "mock2";
  second.mock_meta = R"({"m":1})";
  ASSERT_TRUE(store_->InsertAsset("ds", second, 2000).ok());
  auto read = store_->GetDataset("ds");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_EQ(read->assets.size(), 2u);
  EXPECT_EQ(read->assets[1].id, "asset2");
  EXPECT_EQ(read->assets[1].mock_blob->meta, R"({"m":1})");
  EXPECT_EQ(read->updated_at, 2000);
  EXPECT_EQ(store_->GetDatasetByAsset("asset2")->id, "ds");

  // A name or a blob already used, or a dataset that is not live, changes nothing.
  Asset clash = second;
  clash.id = "asset3";
  clash.mock_blob_id.reset();
  EXPECT_EQ(store_->InsertAsset("ds", clash, 3000).code(), StatusCode::kFailedPrecondition);
  clash.name = "other";
  clash.mock_blob_id = "mock1";
  EXPECT_EQ(store_->InsertAsset("ds", clash, 3000).code(), StatusCode::kFailedPrecondition);
  clash.mock_blob_id.reset();
  EXPECT_EQ(store_->InsertAsset("nope", clash, 3000).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->SoftDeleteDataset("ds", 3000).ok());
  EXPECT_EQ(store_->InsertAsset("ds", clash, 3000).code(), StatusCode::kNotFound);
  EXPECT_FALSE(store_->GetDatasetByAsset("asset3").ok());
}

TEST_F(StoreTest, UpgradeFlagsMocksGeneratedBeforeVersion6) {
  if (postgres()) GTEST_SKIP() << "writes an old SQLite schema into the file";
  auto blob = [&](const std::string& id, bool audited, bool generated) {
    ASSERT_TRUE(store_->InsertBlob({id, "owner", 10, "00", "csv", "{}", 1000}).ok());
    // What the old server audited: every stored blob, and a generated mock's origin.
    if (audited) {
      ASSERT_TRUE(store_->AppendAudit({1000, "owner", "blob.upload", "blob:" + id, ""}).ok());
    }
    if (generated) {
      ASSERT_TRUE(
          store_->AppendAudit({1000, "owner", "blob.generate_mock", "blob:" + id, "from blob:x"})
              .ok());
    }
  };
  blob("data1", true, false);
  blob("generated1", true, true);
  blob("data2", true, false);
  blob("uploaded2", true, false);
  blob("data3", true, false);
  blob("unaudited3", false, false);
  blob("generated-unused", true, true);
  ASSERT_TRUE(store_->InsertUser(MakeUser("owner", "owner@example.org", "Owner")).ok());
  Dataset d;
  d.id = "ds";
  d.name = "census";
  d.uploader_id = "owner";
  d.created_at = d.updated_at = 1000;
  for (auto [name, data, mock] : {std::tuple{"generated", "data1", "generated1"},
                                  {"uploaded", "data2", "uploaded2"},
                                  {"unaudited", "data3", "unaudited3"}}) {
    Asset a;
    a.id = std::string("asset-") + name;
    a.name = name;
    a.format = "csv";
    a.data_blob_id = data;
    a.mock_blob_id = mock;
    d.assets.push_back(a);
  }
  ASSERT_TRUE(store_->InsertDataset(d).ok());
  // Back to version 5, as the old server left it.
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         (std::string(kDropJobCharges) + kDropSync +
                          "ALTER TABLE assets DROP COLUMN mock_needs_regeneration; "
                          "ALTER TABLE jobs DROP COLUMN failure; "
                          "ALTER TABLE jobs DROP COLUMN error_detail; "
                          "ALTER TABLE jobs DROP COLUMN error_released; "
                          "ALTER TABLE jobs DROP COLUMN deposited; "
                          "DROP INDEX code_requests_project; "
                          "ALTER TABLE code_requests DROP COLUMN project_id; "
                          "DROP TABLE project_events; "
                          "DROP TABLE project_members; "
                          "DROP TABLE projects; "
                          "DROP TABLE request_decisions; "
                          "DROP TABLE code_policies; "
                          "DROP TABLE data_subject_members; DROP TABLE data_subjects; "
                          "ALTER TABLE assets DROP COLUMN metadata; "
                          "ALTER TABLE blobs DROP COLUMN meta; "
                          "ALTER TABLE jobs DROP COLUMN result_meta; "
                          "DROP TABLE notifications; DROP TABLE mail_outbox; "
                          "DROP TABLE mail_settings; DROP TABLE mail_opt_outs; "
                          "DROP TABLE password_resets; "
                          "DROP TABLE audit_checkpoint; "
                          "ALTER TABLE audit_events DROP COLUMN prev_hash; "
                          "ALTER TABLE audit_events DROP COLUMN hash; "
                          "PRAGMA user_version = 5")
                             .c_str(),
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);

  Open();
  auto upgraded = store_->GetDataset("census");
  ASSERT_TRUE(upgraded.ok()) << upgraded.status().ToString();
  std::map<std::string, bool> flagged;
  for (const Asset& a : upgraded->assets) flagged[a.name] = a.mock_needs_regeneration;
  EXPECT_EQ(flagged, (std::map<std::string, bool>{
                         {"generated", true}, {"uploaded", false}, {"unaudited", true}}));
  EXPECT_EQ(store_->GetBlob("generated-unused").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetBlob("generated1").ok());
  EXPECT_TRUE(store_->GetBlob("data1").ok());

  // Replacing the mock clears the flag and gives back the old blob for deletion.
  ASSERT_TRUE(store_->InsertBlob({"fresh", "owner", 10, "00", "csv", "{}", 2000}).ok());
  auto old = store_->ReplaceAssetMock("asset-generated", "fresh", 3000);
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(*old, std::optional<std::string>("generated1"));
  auto after = store_->GetDataset("census");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->updated_at, 3000);
  EXPECT_FALSE(after->assets[0].mock_needs_regeneration);
  EXPECT_EQ(after->assets[0].mock_blob_id, std::optional<std::string>("fresh"));
  // A blob another asset uses can't be taken; an unknown asset is not found.
  EXPECT_EQ(store_->ReplaceAssetMock("asset-uploaded", "fresh", 3000).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->ReplaceAssetMock("nope", "fresh", 3000).status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, FreshDatabaseGetsCurrentSchemaVersion) {
  if (postgres()) GTEST_SKIP() << "writes an old SQLite schema into the file";
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_GE(sqlite3_column_int(stmt, 0), 1);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

}  // namespace
}  // namespace datasite::store

namespace datasite::store {
namespace {

// Statements are prepared once and reused: a reused statement must start afresh, with the new
// bindings, even when its last use stopped after the first row or failed.
TEST_F(StoreTest, ReusedStatementsStartAfreshWithNewBindings) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        store_
            ->InsertUser(MakeUser("u" + std::to_string(i), "u" + std::to_string(i) + "@example.org",
                                  "User " + std::to_string(i), 1000 + i))
            .ok());
  }
  for (int round = 0; round < 50; ++round) {
    for (int i = 4; i >= 0; --i) {
      auto u = store_->GetUserByEmail("u" + std::to_string(i) + "@example.org");
      ASSERT_TRUE(u.ok());
      EXPECT_EQ(u->id, "u" + std::to_string(i));
    }
    EXPECT_EQ(store_->GetUserById("nobody").status().code(), StatusCode::kNotFound);
    // A failed insert (constraint) must not poison the cached statement.
    EXPECT_EQ(store_->InsertUser(MakeUser("u0", "other@example.org", "x")).code(),
              StatusCode::kAlreadyExists);
    auto page = store_->ListUsers("", 1, 2);
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->items.size(), 2u);
    EXPECT_EQ(page->items[0].id, "u1");
    EXPECT_EQ(page->total, 5);
  }
}

}  // namespace
}  // namespace datasite::store

namespace datasite::store {
namespace {

// A run of job `id` that holds no lease (for the refusals).
Job JobNamed(const std::string& id) {
  Job j;
  j.id = id;
  return j;
}

// Jobs and the bytes they keep (per-user quotas, the retention of mock outputs).
class JobBytesTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    UserCode c;
    c.id = "code";
    c.user_id = "u";
    c.name = "f";
    c.source = "def f():\n    return 1\n";
    c.code_hash = "h";
    c.inputs = "{}";
    c.output_policy = "single_execution";
    ASSERT_TRUE(store_->InsertCode(c).ok());
  }

  // A job of the fixture's code, not stored.
  static Job NewJob(const std::string& id, const std::string& user, const std::string& kind) {
    Job j;
    j.id = id;
    j.code_id = "code";
    j.user_id = user;
    j.kind = kind;
    j.inputs = "{}";
    return j;
  }

  // Queues a job of `user` and leases it (nothing else is queued).
  Job Running(const std::string& user, const std::string& kind = "mock") {
    Job j = NewJob("job" + std::to_string(++jobs_), user, kind);
    j.created_at = jobs_;
    EXPECT_EQ(*store_->InsertJob(j, {}), JobAdmission::kInserted);
    auto leased = store_->LeaseNextJob(jobs_);
    EXPECT_TRUE(leased.ok() && leased->has_value() && (*leased)->id == j.id);
    if (leased.ok() && leased->has_value()) {  // the lease FinishJob checks
      j.lease_owner = (*leased)->lease_owner;
      j.attempts = (*leased)->attempts;
      // Read as GetJob reads it, with its code's name and author (for its end's notification).
      EXPECT_EQ((*leased)->status, "running");
      EXPECT_EQ((*leased)->code_name, "f");
      EXPECT_EQ((*leased)->code_author_id, "u");
      EXPECT_EQ((*leased)->inputs, "{}");
    }
    return j;
  }

  // A running job ended completed, with a result of `result_bytes` (kept in the database when
  // `in_row`) and logs.
  Job Finished(const std::string& user, int64_t result_bytes, const std::string& stdout_text,
               const std::string& kind = "mock", bool in_row = true) {
    Job j = Running(user, kind);
    j.status = "completed";
    j.result_format = "bytes";
    j.result_size = result_bytes;
    if (in_row) j.result_data = std::string(static_cast<size_t>(result_bytes), 'r');
    j.stdout_text = stdout_text;
    j.stderr_text = "e";
    j.finished_at = jobs_;
    // Charged as CodeService charges a run its user may read: all of a mock run, a private
    // run's result and stdout.
    const auto logs = static_cast<int64_t>(j.stdout_text.size() + j.stderr_text.size());
    const int64_t shown = result_bytes + static_cast<int64_t>(j.stdout_text.size()) +
                          (kind == "mock" ? static_cast<int64_t>(j.stderr_text.size()) : 0);
    EXPECT_TRUE(*store_->ChargeJobBytes(j, result_bytes, logs, shown, std::nullopt));
    EXPECT_TRUE(store_->FinishJob(j).ok());
    return j;
  }

  int jobs_ = 0;
};

TEST_F(JobBytesTest, FinishedJobKeepsItsResultAndLogs) {
  Finished("u", 100, "abc", "private");
  Finished("u", 10, "", "mock");
  Job failed = Running("u");
  failed.status = "errored";
  failed.result_size = 999;  // an errored job keeps no result, whatever it says
  failed.stdout_text = "1234";
  ASSERT_TRUE(store_->FinishJob(failed).ok());
  auto usage = store_->UserJobUsage("u");
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->result_bytes, 110);
  EXPECT_EQ(usage->log_bytes, (3 + 1) + (0 + 1) + 4);
  EXPECT_EQ(usage->mock_bytes, (10 + 1) + 4);
  EXPECT_EQ(usage->unfinished, 0);
  // The storage limit counts what ChargeJobBytes counted: not the failed job, never charged.
  EXPECT_EQ(*store_->TotalJobBytes(), 110 + 5);
  EXPECT_EQ(store_->UserJobUsage("nobody")->result_bytes, 0);
}

// Each user's job usage is kept as running sums by triggers (schema version 27): after every kind
// of change to their jobs, the sums equal a recount of the jobs, as UserJobUsage summed them
// before.
TEST_F(JobBytesTest, UsageSumsEqualARecountAfterEveryKindOfChange) {
  auto expect_recount = [&](const std::string& user, const std::string& after) {
    SCOPED_TRACE(after + ", user " + user);
    const std::string of = " FROM jobs WHERE user_id = '" + user + "'";
    auto usage = store_->UserJobUsage(user);
    ASSERT_TRUE(usage.ok()) << usage.status().ToString();
    EXPECT_EQ(usage->result_bytes, RawInt("SELECT coalesce(sum(kept_result_bytes), 0)" + of));
    EXPECT_EQ(usage->log_bytes, RawInt("SELECT coalesce(sum(kept_log_bytes), 0)" + of));
    EXPECT_EQ(usage->mock_bytes, RawInt("SELECT coalesce(sum(CASE WHEN kind = 'mock' THEN "
                                        "kept_result_bytes + kept_log_bytes ELSE 0 END), 0)" +
                                        of));
    EXPECT_EQ(usage->unfinished,
              RawInt("SELECT count(*)" + of + " AND status IN ('queued', 'running')"));
    EXPECT_EQ(usage->charged_bytes, RawInt("SELECT coalesce(sum(charged_bytes), 0)" + of));
  };
  Job queued = NewJob("queued", "u", "mock");
  ASSERT_EQ(*store_->InsertJob(queued, {}), JobAdmission::kInserted);
  expect_recount("u", "a job queued");
  RawSql("DELETE FROM jobs WHERE id = 'queued'");  // else the next lease takes it
  expect_recount("u", "a queued job deleted");
  Finished("u", 100, "abc", "private");
  Finished("u", 10, "xy", "mock");
  Finished("u", 20, "", "mock");
  expect_recount("u", "three ended");
  EXPECT_GT(store_->UserJobUsage("u")->mock_bytes, 0);
  Job running = Running("u", "private");
  ASSERT_TRUE(*store_->ChargeJobBytes(running, 7, 3, 10, std::nullopt));
  ASSERT_TRUE(store_->AppendJobStdout(running, "live", false).ok());
  expect_recount("u", "a charge and a live log");
  Job failed = Running("u", "private");
  failed.status = "errored";
  failed.stdout_text = "1234";
  ASSERT_TRUE(store_->FinishJob(failed).ok());
  expect_recount("u", "a failed end");
  ASSERT_TRUE(store_->ExpireMockOutputs("u", 1, 0, 99).ok());
  expect_recount("u", "mock outputs expired");
  Finished("v", 5, "", "mock");
  expect_recount("v", "another user's end");
  Job lost = Running("u", "private");
  ASSERT_TRUE(*store_->ChargeJobBytes(lost, 5, 5, 10, 1'000'000));  // under a quota
  ASSERT_TRUE(store_->SetJobChargedBytes(lost.id, 3).ok());
  expect_recount("u", "a charge under a quota and a charge set");
  Job held = Running("u", "private");
  held.status = "completed";
  held.result_format = "json";
  held.result_size = 2;
  held.result_data = "42";
  held.held = true;
  ASSERT_TRUE(store_->FinishJob(held).ok());
  expect_recount("u", "a held end");
  Job deposited = NewJob("deposited", "u", "private");
  deposited.result_format = "json";
  deposited.result_size = 2;
  deposited.result_data = "42";
  deposited.held = true;
  ASSERT_TRUE(store_->InsertDepositedJob(deposited).ok());
  expect_recount("u", "a deposited result");
  ASSERT_TRUE(store_->RecoverJobs(2, jobs_ + 1).ok());  // the running ones go back to the queue
  expect_recount("u", "runs recovered");
  ASSERT_TRUE(store_->KillJob(lost.id, jobs_ + 2).ok());  // queued again: it ends killed
  expect_recount("u", "a queued job killed");
  RawSql("DELETE FROM jobs WHERE id = '" + running.id + "'");
  expect_recount("u", "a running job deleted");
  RawSql("UPDATE jobs SET user_id = 'v' WHERE kind = 'private' AND status = 'completed'");
  expect_recount("u", "a job given to another user");
  expect_recount("v", "a job given to another user");
  RawSql("DELETE FROM expired_outputs; DELETE FROM jobs");
  expect_recount("u", "every job deleted");
  expect_recount("v", "every job deleted");
  EXPECT_EQ(store_->UserJobUsage("u")->unfinished, 0);
}

// The upgrade to version 27 sums the jobs stored before it.
TEST_F(JobBytesTest, UpgradeSumsTheJobsStoredBefore) {
  Finished("u", 100, "abc", "private");
  Finished("u", 10, "xy", "mock");
  Running("u");
  Finished("v", 5, "", "mock");
  auto before_u = store_->UserJobUsage("u");
  auto before_v = store_->UserJobUsage("v");
  ASSERT_TRUE(before_u.ok() && before_v.ok());
  store_.reset();
  RawSql(UndoVersion27(postgres()) +
         (postgres() ? "UPDATE schema_version SET version = 26" : "PRAGMA user_version = 26"));
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(RawInt(postgres() ? "SELECT version FROM schema_version" : "PRAGMA user_version"),
            kLatestVersion);
  EXPECT_EQ(RawInt("SELECT sum(charged_bytes) FROM job_usage"),
            RawInt("SELECT sum(charged_bytes) FROM jobs"));
  EXPECT_EQ(RawInt("SELECT sum(result_bytes + log_bytes) FROM job_usage"),
            RawInt("SELECT sum(kept_result_bytes + kept_log_bytes) FROM jobs"));
  for (const auto& [user, before] : {std::pair{"u", *before_u}, std::pair{"v", *before_v}}) {
    auto after = store_->UserJobUsage(user);
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    EXPECT_EQ(std::tie(after->result_bytes, after->log_bytes, after->mock_bytes, after->unfinished,
                       after->charged_bytes),
              std::tie(before.result_bytes, before.log_bytes, before.mock_bytes, before.unfinished,
                       before.charged_bytes))
        << user;
  }
  EXPECT_EQ(store_->UserJobUsage("u")->unfinished, 1);
}

TEST_F(JobBytesTest, KeptOutputsSplitWhatEachJobKeepsByPart) {
  Job completed = Finished("u", 100, "abc", "private");
  Job failed = Running("u", "private");
  failed.status = "errored";
  failed.stdout_text = "1234";
  failed.stderr_text = "trace";
  ASSERT_TRUE(store_->FinishJob(failed).ok());
  Job charged = Running("u");
  ASSERT_TRUE(*store_->ChargeJobBytes(charged, 7, 3, 7 + 3, std::nullopt));
  Running("u");                  // keeps nothing: not listed
  Finished("v", 5, "", "mock");  // another user's
  auto kept = store_->UserKeptOutputs("u");
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->size(), 3u);
  std::map<std::string, KeptOutput> by_id;
  for (const auto& k : *kept) by_id[k.job.id] = k;
  const KeptOutput& done = by_id.at(completed.id);
  EXPECT_EQ(done.job.kind, "private");
  EXPECT_EQ(done.job.status, "completed");
  EXPECT_EQ(done.job.user_id, "u");
  EXPECT_EQ(done.job.code_id, "code");
  EXPECT_EQ(std::tie(done.result_bytes, done.stdout_bytes, done.stderr_bytes),
            std::make_tuple(int64_t{100}, int64_t{3}, int64_t{1}));
  const KeptOutput& bad = by_id.at(failed.id);
  EXPECT_EQ(std::tie(bad.result_bytes, bad.stdout_bytes, bad.stderr_bytes),
            std::make_tuple(int64_t{0}, int64_t{4}, int64_t{5}));
  const KeptOutput& running = by_id.at(charged.id);
  EXPECT_EQ(running.job.status, "running");
  EXPECT_EQ(std::tie(running.result_bytes, running.stdout_bytes, running.stderr_bytes),
            std::make_tuple(int64_t{7}, int64_t{3}, int64_t{0}));
  // The parts sum to what UserJobUsage counts.
  auto usage = store_->UserJobUsage("u");
  EXPECT_EQ(usage->result_bytes + usage->log_bytes, 104 + 9 + 10);
}

TEST_F(JobBytesTest, ACsvResultKeepsItsSidecarAFailedJobNone) {
  Job j = Running("u");
  j.status = "completed";
  j.result_format = "csv";
  j.result_size = 4;
  j.result_data = "a\r\n1";
  j.result_meta = R"({"datasite":"pandas/1"})";
  ASSERT_TRUE(store_->FinishJob(j).ok());
  EXPECT_EQ(store_->GetJob(j.id)->result_meta, R"({"datasite":"pandas/1"})");
  Job failed = Running("u");
  failed.status = "errored";
  failed.result_meta = R"({"datasite":"pandas/1"})";
  ASSERT_TRUE(store_->FinishJob(failed).ok());
  EXPECT_EQ(store_->GetJob(failed.id)->result_meta, "");
}

TEST_F(JobBytesTest, UnfinishedJobsAreCounted) {
  Running("u");
  Job queued;
  queued.id = "queued";
  queued.code_id = "code";
  queued.user_id = "u";
  queued.kind = "mock";
  queued.inputs = "{}";
  ASSERT_EQ(*store_->InsertJob(queued, {}), JobAdmission::kInserted);
  EXPECT_EQ(store_->UserJobUsage("u")->unfinished, 2);
}

TEST_F(JobBytesTest, ChargeRefusesWhatWouldPassTheUserQuota) {
  Finished("u", 50, "");  // keeps 51
  Job a = Running("u");
  Job b = Running("u");
  Job other = Running("v");
  EXPECT_TRUE(*store_->ChargeJobBytes(a, 40, 0, 40, 100));
  // 51 + 40 are kept or counted: 10 more would pass 100, 9 not.
  EXPECT_FALSE(*store_->ChargeJobBytes(b, 5, 5, 5 + 5, 100));
  EXPECT_TRUE(*store_->ChargeJobBytes(b, 9, 0, 9, 100));
  // Charging again replaces the job's own count.
  EXPECT_TRUE(*store_->ChargeJobBytes(b, 0, 9, 9, 100));
  EXPECT_EQ(store_->UserJobUsage("u")->log_bytes, 1 + 9);
  // Another user's jobs don't count; without a quota nothing is refused.
  EXPECT_TRUE(*store_->ChargeJobBytes(other, 100, 0, 100, 100));
  EXPECT_TRUE(*store_->ChargeJobBytes(a, 1'000'000, 0, 1'000'000, std::nullopt));
  // Past the quota, nothing more is still allowed.
  EXPECT_TRUE(*store_->ChargeJobBytes(b, 0, 0, 0, 1));
  EXPECT_EQ(store_->ChargeJobBytes(JobNamed("job1"), 1, 0, 1, 100).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->ChargeJobBytes(JobNamed("missing"), 1, 0, 1, 100).status().code(),
            StatusCode::kFailedPrecondition);
}

// Inside the transaction that records a job's end (the worker's), the quota holds as alone, and
// a charge rolled back with it counts nothing.
TEST_F(JobBytesTest, ChargeInsideATransactionHoldsTheQuotaAndRollsBack) {
  Finished("u", 50, "");  // keeps 51
  Job a = Running("u");
  Job b = Running("u");
  ASSERT_TRUE(store_
                  ->InTransaction([&](Store& tx) -> Status {
                    // Metered at a ceiling of 55 (a part its user may not read).
                    EXPECT_TRUE(*tx.ChargeJobBytes(a, 40, 0, 40, 55, 100));
                    EXPECT_FALSE(*tx.ChargeJobBytes(b, 5, 5, 5 + 5, 100));
                    EXPECT_TRUE(*tx.ChargeJobBytes(b, 9, 0, 9, 100));
                    EXPECT_EQ(*tx.SetJobMeteredBytes(b.id, 77), 9);
                    EXPECT_EQ(tx.ChargeJobBytes(JobNamed("missing"), 1, 0, 1, 100).status().code(),
                              StatusCode::kFailedPrecondition);
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(store_->UserJobUsage("u")->charged_bytes, 51 + 40 + 9);
  EXPECT_EQ(*store_->TotalJobBytes(), 51 + 55 + 77);
  EXPECT_FALSE(store_
                   ->InTransaction([&](Store& tx) -> Status {
                     EXPECT_TRUE(*tx.ChargeJobBytes(b, 0, 0, 0, 100));
                     EXPECT_EQ(*tx.SetJobMeteredBytes(b.id, 5), 0);
                     return InvalidArgumentError("the end was not recorded");
                   })
                   .ok());
  EXPECT_EQ(store_->UserJobUsage("u")->charged_bytes, 51 + 40 + 9);
  EXPECT_EQ(*store_->TotalJobBytes(), 51 + 55 + 77);
}

// Regression (security): the quota at a job's end counted its user's outputs but not their code,
// so code submitted up to the quota and then outputs kept up to it again held twice the quota.
TEST_F(JobBytesTest, TheUserCodeCountsAgainstTheQuotaAtAJobsEnd) {
  UserCode big;
  big.id = "big";
  big.user_id = "u";
  big.name = "g";
  big.source = "def g():\n    return 2\n";
  big.code_hash = "big";
  big.inputs = "{}";
  big.output_policy = "single_execution";
  big.stored_bytes = 70;
  ASSERT_TRUE(store_->InsertCode(big).ok());
  EXPECT_EQ(store_->UserJobUsage("u")->code_bytes, 70);
  EXPECT_EQ(store_->UserJobUsage("v")->code_bytes, 0);
  Job a = Running("u");
  EXPECT_FALSE(*store_->ChargeJobBytes(a, 31, 0, 31, 100));
  EXPECT_TRUE(*store_->ChargeJobBytes(a, 30, 0, 30, 100));
  Job other = Running("v");
  EXPECT_TRUE(*store_->ChargeJobBytes(other, 100, 0, 100, 100));
}

// Regression (security): the quota counted every byte a user's jobs keep, those they may not read
// included, so a refusal, a "not kept" or a mock expiry told the size of a held output.
TEST_F(JobBytesTest, TheQuotaCountsOnlyWhatIsChargedNotWhatIsKept) {
  Job hidden = Running("u", "private");
  ASSERT_TRUE(*store_->ChargeJobBytes(hidden, 5000, 700, 0, 100));
  Job a = Running("u");
  EXPECT_TRUE(*store_->ChargeJobBytes(a, 60, 40, 100, 100));
  EXPECT_FALSE(*store_->ChargeJobBytes(a, 60, 41, 101, 100));
  auto usage = store_->UserJobUsage("u");
  EXPECT_EQ(usage->charged_bytes, 0 + 60 + 41 - 1);
  EXPECT_EQ(usage->result_bytes + usage->log_bytes, 5700 + 100);
  EXPECT_EQ(*store_->TotalJobBytes(), 5800);  // the disk still counts every byte
}

TEST_F(JobBytesTest, ARunHeldAtTheCommitChargesNothing) {
  Job j = Running("u", "private");
  Settings settings;
  settings.output_review = true;  // turned on while it runs, after the runner charged it
  ASSERT_TRUE(store_->PutSettings(settings).ok());
  ASSERT_TRUE(*store_->ChargeJobBytes(j, 10, 2, 12, std::nullopt));
  j.status = "completed";
  j.result_size = 10;
  j.result_data = std::string(10, 'r');
  j.stdout_text = "ok";
  ASSERT_TRUE(store_->FinishJob(j).ok());
  EXPECT_TRUE(store_->GetJob(j.id)->held);
  auto usage = store_->UserJobUsage("u");
  EXPECT_EQ(usage->charged_bytes, 0);
  EXPECT_EQ(usage->result_bytes + usage->log_bytes, 12);
  // Its release charges what it shows.
  ASSERT_TRUE(store_->SetJobChargedBytes(j.id, 12).ok());
  EXPECT_EQ(store_->UserJobUsage("u")->charged_bytes, 12);
  EXPECT_EQ(store_->SetJobChargedBytes("missing", 1).code(), StatusCode::kNotFound);
}

TEST_F(JobBytesTest, ExpiryAndRecoveryDropCharges) {
  Finished("u", 10, "");
  ASSERT_EQ(store_->UserJobUsage("u")->charged_bytes, 11);
  ASSERT_EQ(store_->ExpireMockOutputs("u", 0, 0, 5)->size(), 1u);
  EXPECT_EQ(store_->UserJobUsage("u")->charged_bytes, 0);
  Job a = Running("u");
  ASSERT_TRUE(*store_->ChargeJobBytes(a, 40, 2, 42, std::nullopt));
  ASSERT_TRUE(store_->RecoverJobs(2, 1).ok());
  EXPECT_EQ(store_->UserJobUsage("u")->charged_bytes, 0);
}

TEST_F(JobBytesTest, RecoveryDropsTheChargesOfJobsThatDidNotEnd) {
  Job a = Running("u");
  ASSERT_TRUE(*store_->ChargeJobBytes(a, 40, 2, 40 + 2, std::nullopt));
  ASSERT_EQ(*store_->TotalJobBytes(), 42);
  ASSERT_TRUE(store_->RecoverJobs(2, 1).ok());
  EXPECT_EQ(*store_->TotalJobBytes(), 0);
}

// The storage limit counts a job's metered_bytes: what it keeps until the service says otherwise
// (a part its requester may not read, at its ceiling).
TEST_F(JobBytesTest, MeteredBytesAreWhatTheLimitCounts) {
  Job a = Running("u", "private");
  ASSERT_TRUE(*store_->ChargeJobBytes(a, 40, 2, 0, std::nullopt));
  EXPECT_EQ(*store_->TotalJobBytes(), 42);
  EXPECT_EQ(*store_->SetJobMeteredBytes(a.id, 1000), 42);
  EXPECT_EQ(*store_->TotalJobBytes(), 1000);
  // A job that keeps nothing but is metered is among the kept outputs (to be metered anew).
  ASSERT_TRUE(*store_->ChargeJobBytes(a, 0, 0, 0, std::nullopt));
  EXPECT_EQ(*store_->SetJobMeteredBytes(a.id, 7), 0);
  auto outputs = store_->UserKeptOutputs("u");
  ASSERT_EQ(outputs->size(), 1u);
  EXPECT_EQ((*outputs)[0].metered_bytes, 7);
  EXPECT_EQ(store_->SetJobMeteredBytes("missing", 1).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->RecoverJobs(2, 1).ok());
  EXPECT_EQ(*store_->TotalJobBytes(), 0);
}

TEST_F(JobBytesTest, StdoutAppendedWhileRunningIsReadFromAnOffset) {
  Job a = Running("u", "private");
  ASSERT_TRUE(store_->AppendJobStdout(a, "first\n", true).ok());
  ASSERT_TRUE(store_->AppendJobStdout(a, std::string("\xc3\xa9x\0y", 5), true).ok());
  auto all = store_->ReadJobOutput(a.id, 0);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->stdout_text, std::string("first\n\xc3\xa9x\0y", 11));
  EXPECT_EQ(all->stdout_bytes, 11);
  EXPECT_EQ(all->status, "running");
  EXPECT_TRUE(all->held);
  auto tail = store_->ReadJobOutput(a.id, 7);  // byte offsets, not characters
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->stdout_text, std::string("\xa9x\0y", 4));
  EXPECT_EQ(tail->stdout_bytes, 11);
  EXPECT_EQ(store_->ReadJobOutput(a.id, 99)->stdout_text, "");
  EXPECT_EQ(store_->ReadJobOutput(a.id, -5)->stdout_text.size(), 11u);
  EXPECT_EQ(store_->ReadJobOutput("missing", 0).status().code(), StatusCode::kNotFound);
}

// A run held meanwhile (its request denied) stays held: the flag its chunks carry was read when the
// run started, and must not release it again.
TEST_F(JobBytesTest, AnAppendNeverClearsTheHeldFlag) {
  Job a = Running("u", "private");
  ASSERT_TRUE(store_->AppendJobStdout(a, "before\n", true).ok());
  ASSERT_TRUE(store_->AppendJobStdout(a, "after\n", false).ok());
  EXPECT_TRUE(store_->ReadJobOutput(a.id, 0)->held);
}

// Output review turned on while a job runs holds a private run's later writes, whatever the runner
// read from the settings before: the store reads the setting in the same update.
TEST_F(JobBytesTest, OutputReviewStoredBeforeAnUpdateHoldsAPrivateRun) {
  Job before = Running("u", "private");
  Job mock = Running("u", "mock");
  ASSERT_TRUE(store_->AppendJobStdout(before, "open\n", false).ok());
  EXPECT_FALSE(store_->ReadJobOutput(before.id, 0)->held);
  Settings s;
  s.output_review = true;
  ASSERT_TRUE(store_->PutSettings(s).ok());
  ASSERT_TRUE(store_->AppendJobStdout(before, "after\n", false).ok());
  EXPECT_TRUE(store_->ReadJobOutput(before.id, 0)->held);
  Job finished = Finished("u", 4, "out", "private");
  EXPECT_TRUE(store_->GetJob(finished.id)->held);
  // FinishJob says so (the worker's notification reads no row for it), though the run did not.
  Job unheld = Running("u", "private");
  unheld.status = "completed";
  unheld.finished_at = 1;
  ASSERT_FALSE(unheld.held);
  auto recorded = store_->FinishJob(unheld);
  ASSERT_TRUE(recorded.ok()) << recorded.status().ToString();
  EXPECT_TRUE(*recorded);
  mock.status = "completed";
  mock.finished_at = 1;
  recorded = store_->FinishJob(mock);
  ASSERT_TRUE(recorded.ok()) << recorded.status().ToString();
  EXPECT_FALSE(*recorded);
  EXPECT_FALSE(store_->GetJob(mock.id)->held);  // runs on the mocks are never held
  s.output_review = false;
  ASSERT_TRUE(store_->PutSettings(s).ok());
  EXPECT_FALSE(store_->GetJob(Finished("u", 4, "out", "private").id)->held);
}

// Each limit of InsertJob refuses with its own answer and inserts nothing; the first that refuses
// is the one told.
TEST_F(JobBytesTest, EachJobLimitRefusesWithItsOwnAnswer) {
  auto queue = [&](const std::string& id, const std::string& user, const std::string& kind,
                   const JobLimits& limits) {
    Job j;
    j.id = id;
    j.code_id = "code";
    j.user_id = user;
    j.kind = kind;
    j.inputs = "{}";
    j.created_at = 1;
    auto admitted = store_->InsertJob(j, limits);
    EXPECT_TRUE(admitted.ok()) << admitted.status().ToString();
    return admitted.ok() ? *admitted : JobAdmission::kInserted;
  };
  Finished("u", 1, "out", "private");  // one private run counted
  JobLimits used_up;
  used_up.max_private_runs = 1;
  EXPECT_EQ(queue("a", "u", "private", used_up), JobAdmission::kPolicyUsedUp);
  EXPECT_EQ(queue("b", "u", "mock", used_up), JobAdmission::kInserted);  // mocks don't count
  used_up.max_private_runs = 2;
  EXPECT_EQ(queue("c", "u", "private", used_up), JobAdmission::kInserted);
  JobLimits one;
  one.one_unfinished_private = true;
  EXPECT_EQ(queue("d", "u", "private", one), JobAdmission::kPrivateRunUnfinished);
  JobLimits unfinished;
  unfinished.max_unfinished = 2;  // "b" and "c" wait
  EXPECT_EQ(queue("e", "u", "mock", unfinished), JobAdmission::kTooManyUnfinished);
  EXPECT_EQ(queue("f", "v", "mock", unfinished), JobAdmission::kInserted);  // another user's
  // All three at once: the policy is told first, then the run in progress.
  JobLimits all = used_up;
  all.one_unfinished_private = true;
  all.max_unfinished = 2;
  all.max_private_runs = 1;
  EXPECT_EQ(queue("g", "u", "private", all), JobAdmission::kPolicyUsedUp);
  all.max_private_runs = 5;
  EXPECT_EQ(queue("h", "u", "private", all), JobAdmission::kPrivateRunUnfinished);
  for (const char* id : {"a", "d", "e", "g", "h"}) {
    EXPECT_EQ(store_->GetJob(id).status().code(), StatusCode::kNotFound) << id;
  }
  EXPECT_EQ(store_->GetJob("c")->status, "queued");
}

// A run reads its code without counting its runs (GetCodeToRun): the rest is GetCode's.
TEST_F(JobBytesTest, CodeToRunIsTheCodeWithoutItsRunsCounted) {
  Finished("u", 1, "out", "private");
  Finished("u", 1, "out", "private");
  auto counted = store_->GetCode("code");
  auto to_run = store_->GetCodeToRun("code");
  ASSERT_TRUE(counted.ok() && to_run.ok());
  EXPECT_EQ(counted->used, 2);
  EXPECT_EQ(to_run->used, 0);
  EXPECT_EQ(to_run->source, counted->source);
  EXPECT_EQ(to_run->name, "f");
  EXPECT_EQ(to_run->user_id, "u");
  EXPECT_EQ(to_run->inputs, counted->inputs);
  EXPECT_EQ(store_->GetCodeToRun("none").status().code(), StatusCode::kNotFound);
}

// The reads a job's admission, run and end share with other statements (one round trip each
// fewer on PostgreSQL) answer what the reads on their own answer.
TEST_F(JobBytesTest, ALeaseCarriesTheCodeToRunWhereItReadsIt) {
  ASSERT_EQ(*store_->InsertJob(NewJob("leased", "u", "private"), {}), JobAdmission::kInserted);
  auto leased = store_->LeaseNextJob(1);
  ASSERT_TRUE(leased.ok() && leased->has_value());
  const Job& run = **leased;
  auto to_run = store_->GetCodeToRun("code");
  ASSERT_TRUE(to_run.ok());
  // PostgreSQL's lease reads it; SQLite's leaves it to the runner (a read there costs no trip).
  ASSERT_EQ(run.code_to_run != nullptr, postgres());
  if (run.code_to_run) {
    EXPECT_EQ(run.code_to_run->id, to_run->id);
    EXPECT_EQ(run.code_to_run->source, to_run->source);
    EXPECT_EQ(run.code_to_run->name, to_run->name);
    EXPECT_EQ(run.code_to_run->user_id, to_run->user_id);
    EXPECT_EQ(run.code_to_run->inputs, to_run->inputs);
    EXPECT_EQ(run.code_to_run->output_policy, to_run->output_policy);
    EXPECT_EQ(run.code_to_run->request_status, to_run->request_status);
    EXPECT_EQ(run.code_to_run->policy_spec, to_run->policy_spec);
    EXPECT_EQ(run.code_to_run->used, 0);
  }
  EXPECT_EQ(run.code_name, "f");
}

TEST_F(JobBytesTest, AnInsertReadsTheJobBackAsGetJobDoes) {
  Job j = NewJob("inserted", "u", "mock");
  j.inputs = "{\"k\": 1}";
  j.timeout_ms = 5000;
  j.created_at = 42;
  Job stored;
  ASSERT_EQ(*store_->InsertJob(j, {}, &stored), JobAdmission::kInserted);
  auto read = store_->GetJob("inserted");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(stored.id, read->id);
  EXPECT_EQ(stored.status, "queued");
  EXPECT_EQ(stored.inputs, read->inputs);
  EXPECT_EQ(stored.timeout_ms, 5000);
  EXPECT_EQ(stored.created_at, 42);
  EXPECT_EQ(stored.code_name, read->code_name);
  EXPECT_EQ(stored.user_name, read->user_name);
  EXPECT_EQ(stored.user_email, read->user_email);
  EXPECT_EQ(stored.code_author_id, read->code_author_id);
  EXPECT_EQ(stored.priority, read->priority);
  // Refused by its limits: nothing inserted, nothing read.
  Job again = j;
  again.id = "refused";
  Job untouched;
  untouched.id = "as it was";
  ASSERT_EQ(*store_->InsertJob(again, {.max_unfinished = 1}, &untouched),
            JobAdmission::kTooManyUnfinished);
  EXPECT_EQ(untouched.id, "as it was");
}

TEST_F(JobBytesTest, AJobReadWithItsResultHasItOnlyWhenCompletedSmallAndInItsRow) {
  Job small = Finished("u", 10, "out");
  Job big = Finished("u", 100, "out");
  Job in_file = Finished("u", 10, "out", "mock", /*in_row=*/false);
  Job running = Running("u");
  auto with = [&](const Job& j, int64_t up_to) { return store_->GetJob(j.id, up_to); };
  ASSERT_TRUE(with(small, 50).ok());
  EXPECT_EQ(with(small, 50)->result_data, std::string(10, 'r'));
  EXPECT_EQ(with(small, 10)->result_data, std::string(10, 'r'));
  EXPECT_FALSE(with(big, 50)->result_data.has_value());
  EXPECT_FALSE(with(in_file, 50)->result_data.has_value());
  EXPECT_FALSE(with(running, 50)->result_data.has_value());
  EXPECT_EQ(with(big, 50)->result_size, 100);  // the rest as GetJob reads it
  EXPECT_EQ(with(big, 50)->status, store_->GetJob(big.id)->status);
  EXPECT_FALSE(store_->GetJob(small.id)->result_data.has_value());
  EXPECT_EQ(store_->GetJob("missing", 50).status().code(), StatusCode::kNotFound);
  // A held run's result is not read (its user may not see it; owners read it by GetJobResult).
  Settings settings;
  settings.output_review = true;
  ASSERT_TRUE(store_->PutSettings(settings).ok());
  Job held = Finished("u", 10, "out", "private");
  ASSERT_TRUE(store_->GetJob(held.id)->held);
  EXPECT_FALSE(with(held, 50)->result_data.has_value());
}

TEST_F(JobBytesTest, UsageReadWithAJobSaysWhetherItIsHeld) {
  Job j = Running("u", "private");
  auto usage = store_->UserJobUsage("u", j.id);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->job_held, false);
  EXPECT_EQ(usage->unfinished, store_->UserJobUsage("u")->unfinished);
  EXPECT_FALSE(store_->UserJobUsage("u")->job_held.has_value());
  EXPECT_FALSE(store_->UserJobUsage("u", "missing")->job_held.has_value());
  Settings settings;
  settings.output_review = true;
  ASSERT_TRUE(store_->PutSettings(settings).ok());
  j.status = "completed";
  j.result_size = 1;
  j.result_data = "r";
  ASSERT_TRUE(store_->FinishJob(j).ok());
  EXPECT_EQ(store_->UserJobUsage("u", j.id)->job_held, true);
}

TEST_F(JobBytesTest, StderrIsAppendedOnlyToRunningJobsAndDroppedByRecovery) {
  Job a = Running("u", "private");
  ASSERT_TRUE(store_->AppendJobStderr(a, "warn 1\n").ok());
  ASSERT_TRUE(store_->AppendJobStderr(a, "warn 2\n").ok());
  EXPECT_EQ(store_->ReadJobOutput(a.id, 0)->stderr_text, "warn 1\nwarn 2\n");
  EXPECT_FALSE(store_->ReadJobOutput(a.id, 0)->held);  // stderr is never the requester's here
  Job done = Finished("u", 1, "out");
  EXPECT_EQ(store_->AppendJobStderr(done, "late").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->ReadJobOutput(done.id, 0)->stderr_text, "e");
  ASSERT_TRUE(store_->RecoverJobs(2, 1).ok());
  EXPECT_EQ(store_->ReadJobOutput(a.id, 0)->stderr_text, "");
}

// On PostgreSQL every process hears what changed in the jobs: a job queued (idle slots lease),
// a kill asked (the running worker stops it), a job ended (waiters read it). A lease says
// nothing: no other slot or waiter has anything to do for it.
TEST_F(JobBytesTest, JobsNotificationsSayWhatChanged) {
  if (!postgres()) GTEST_SKIP() << "SQLite's one server hears no notification";
  auto other = db_->Open();
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  std::mutex mu;
  std::vector<JobsChange> heard;
  (*other)->SetJobsChangedListener([&](JobsChange c) {
    std::lock_guard lock(mu);
    heard.push_back(c);
  });
  auto heard_now = [&] {
    std::lock_guard lock(mu);
    return heard;
  };
  auto settle = [&](size_t n) {
    for (int i = 0; i < 300 && heard_now().size() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // and nothing more comes
    return heard_now();
  };
  Job j = Running("u");  // queued, then leased
  EXPECT_EQ(settle(1), std::vector<JobsChange>{JobsChange::kQueued});
  ASSERT_EQ(*store_->KillJob(j.id, 5), JobKill::kRequested);
  EXPECT_EQ(settle(2), (std::vector<JobsChange>{JobsChange::kQueued, JobsChange::kKill}));
  j.status = "killed";
  j.finished_at = 6;
  ASSERT_TRUE(store_->FinishJob(j).ok());
  EXPECT_EQ(settle(3),
            (std::vector<JobsChange>{JobsChange::kQueued, JobsChange::kKill, JobsChange::kEnded}));
  // A lease lost and the job queued again: queued, for whoever leases it next.
  Job k = Running("u");
  ASSERT_EQ(settle(4).back(), JobsChange::kQueued);
  ASSERT_EQ(store_->RecoverJobs(2, k.created_at + 31'000, std::nullopt)->first, 1);
  EXPECT_EQ(settle(5).back(), JobsChange::kQueued);
  (*other)->SetJobsChangedListener(nullptr);
}

TEST_F(JobBytesTest, JobsAreCountedByStatus) {
  EXPECT_TRUE(store_->CountJobsByStatus()->empty());
  Running("u");
  Finished("u", 1, "");
  Finished("v", 1, "");
  using Counts = std::vector<std::pair<std::string, int64_t>>;
  EXPECT_EQ(*store_->CountJobsByStatus(), (Counts{{"completed", 2}, {"running", 1}}));
}

TEST_F(JobBytesTest, StdoutIsAppendedOnlyToRunningJobs) {
  Job done = Finished("u", 1, "all of it");
  EXPECT_EQ(store_->AppendJobStdout(done, "late", false).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->ReadJobOutput(done.id, 0)->stdout_text, "all of it");
  EXPECT_EQ(store_->AppendJobStdout(JobNamed("missing"), "x", false).code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(JobBytesTest, RecoveryDropsTheStdoutOfRunsThatDidNotEnd) {
  Job a = Running("u");
  ASSERT_TRUE(store_->AppendJobStdout(a, "attempt 1\n", false).ok());
  ASSERT_TRUE(store_->RecoverJobs(2, 1).ok());
  EXPECT_EQ(store_->ReadJobOutput(a.id, 0)->stdout_text, "");
  EXPECT_EQ(store_->ReadJobOutput(a.id, 0)->status, "queued");
}

// A private run whose output its requester may have read as it ran is not run again (each crash
// would give more output for one use): it ends errored, which counts. One that wrote nothing, and
// other kinds, go back to the queue.
TEST_F(JobBytesTest, RecoveryEndsAPrivateRunThatWroteOutputAsAFailedRun) {
  Job spoke = Running("u", "private");
  ASSERT_TRUE(store_->AppendJobStdout(spoke, "a private value\n", false).ok());
  Job silent = Running("u", "private");
  Job mock = Running("u");
  ASSERT_TRUE(store_->AppendJobStdout(mock, "mock\n", false).ok());
  ASSERT_TRUE(store_->RecoverJobs(2, 1).ok());
  auto ended = store_->GetJob(spoke.id);
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(ended->status, "errored");
  EXPECT_NE(ended->error.find("counts as a run"), std::string::npos) << ended->error;
  EXPECT_EQ(store_->ReadJobOutput(spoke.id, 0)->stdout_text, "");
  EXPECT_EQ(store_->GetJob(silent.id)->status, "queued");
  EXPECT_EQ(store_->GetJob(mock.id)->status, "queued");
}

// A run whose worker was taken for gone (its lease expired, the job queued and leased again)
// writes nothing: not to the logs, not to the quota; only the run holding the lease does.
TEST_F(JobBytesTest, ARunWhoseLeaseWasTakenWritesNothing) {
  Job stale = Running("u");
  ASSERT_EQ(store_->RecoverJobs(2, stale.created_at + 31'000, std::nullopt)->first, 1);
  auto again =
      store_->LeaseNextJob(stale.created_at + 31'000, "worker-2", stale.created_at + 61'000);
  ASSERT_TRUE(again.ok() && again->has_value());
  EXPECT_EQ(store_->AppendJobStdout(stale, "stale\n", false).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->AppendJobStderr(stale, "stale\n").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->ChargeJobBytes(stale, 10, 0, 10, std::nullopt).status().code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->AppendJobStdout(**again, "current\n", false).ok());
  ASSERT_TRUE(*store_->ChargeJobBytes(**again, 0, 8, 8, std::nullopt));
  EXPECT_EQ(store_->ReadJobOutput(stale.id, 0)->stdout_text, "current\n");
  EXPECT_EQ(store_->UserJobUsage("u")->charged_bytes, 8);
}

TEST_F(JobBytesTest, OnlyTheNewestMockOutputsAreKept) {
  Job private_run = Finished("u", 7, "p", "private");
  std::vector<Job> mocks;
  for (int i = 0; i < 4; ++i) mocks.push_back(Finished("u", 10 * (i + 1), "o", "mock", i != 0));
  Finished("v", 5, "", "mock");
  auto expired = store_->ExpireMockOutputs("u", 2, 0, 99);
  ASSERT_TRUE(expired.ok()) << expired.status().ToString();
  ASSERT_EQ(expired->size(), 2u);
  EXPECT_EQ((*expired)[0].job_id, mocks[0].id);
  EXPECT_EQ((*expired)[0].freed_bytes, 10 + 2);
  EXPECT_TRUE((*expired)[0].result_in_file);
  EXPECT_EQ((*expired)[1].job_id, mocks[1].id);
  EXPECT_FALSE((*expired)[1].result_in_file);
  Job gone = *store_->GetJob(mocks[1].id);
  EXPECT_TRUE(gone.result_expired);
  EXPECT_EQ(gone.status, "completed");
  EXPECT_EQ(gone.stdout_text, "");
  EXPECT_FALSE(store_->GetJobResult(mocks[1].id)->has_value());
  EXPECT_FALSE(store_->GetJob(mocks[2].id)->result_expired);
  EXPECT_FALSE(store_->GetJob(private_run.id)->result_expired);
  auto usage = store_->UserJobUsage("u");
  EXPECT_EQ(usage->result_bytes, 7 + 30 + 40);
  EXPECT_EQ(usage->mock_bytes, 30 + 40 + 2 * 2);
  // Nothing more past the newest two; the other user's are theirs.
  EXPECT_TRUE(store_->ExpireMockOutputs("u", 2, 0, 100)->empty());
  EXPECT_EQ(store_->UserJobUsage("v")->result_bytes, 5);
}

TEST_F(JobBytesTest, MockOutputsExpireOldestFirstUntilEnoughIsFreed) {
  std::vector<Job> mocks;
  for (int i = 0; i < 3; ++i) mocks.push_back(Finished("u", 10, ""));
  auto expired = store_->ExpireMockOutputs("u", 10, 12, 99);
  ASSERT_TRUE(expired.ok());
  ASSERT_EQ(expired->size(), 2u);  // 11 freed by the oldest is not yet 12
  EXPECT_EQ((*expired)[0].job_id, mocks[0].id);
  EXPECT_EQ((*expired)[1].job_id, mocks[1].id);
  // A running mock job is never touched.
  Job running = Running("u");
  ASSERT_TRUE(*store_->ChargeJobBytes(running, 10, 0, 10, std::nullopt));
  expired = store_->ExpireMockOutputs("u", 0, 1000, 100);
  ASSERT_EQ(expired->size(), 1u);
  EXPECT_EQ((*expired)[0].job_id, mocks[2].id);
  EXPECT_EQ(store_->UserJobUsage("u")->result_bytes, 10);
}

// Listings of code, requests and jobs are oldest first (as PySyft's), in pages with a total.
class ListingOrderTest : public StoreTest {
 protected:
  // Code "c<i>" of user "u", named `name`; every row has the same created_at, so that the order
  // rests on insertion alone.
  void AddCode(int i, const std::string& name = "f") {
    UserCode c;
    c.id = "c" + std::to_string(i);
    c.user_id = "u";
    c.name = name;
    c.source = "def f():\n    return " + std::to_string(i) + "\n";
    c.code_hash = "h" + std::to_string(i);
    c.inputs = "{}";
    c.output_policy = "single_execution";
    c.created_at = 100;
    ASSERT_TRUE(store_->InsertCode(c).ok());
  }

  template <typename Page>
  static std::vector<std::string> Ids(const Page& page) {
    std::vector<std::string> out;
    for (const auto& item : page.items) out.push_back(item.id);
    return out;
  }
};

using IdList = std::vector<std::string>;
constexpr int64_t kWhole = std::numeric_limits<int64_t>::max();

TEST_F(ListingOrderTest, CodeIsOldestFirstAndPaged) {
  for (int i = 1; i <= 3; ++i) AddCode(i, i == 2 ? "g" : "f");
  auto all = store_->ListCode(std::nullopt, std::nullopt, 0, 10, kWhole);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Ids(*all), (IdList{"c1", "c2", "c3"}));
  EXPECT_EQ(all->total, 3);
  auto second = store_->ListCode(std::nullopt, std::nullopt, 1, 1, kWhole);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(Ids(*second), (IdList{"c2"}));
  EXPECT_EQ(second->total, 3);
  auto named = store_->ListCode(std::string("u"), std::string("f"), 0, 10, kWhole);
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(Ids(*named), (IdList{"c1", "c3"}));
  EXPECT_EQ(named->total, 2);
  auto other = store_->ListCode(std::string("v"), std::nullopt, 0, 10, kWhole);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->items.empty());
  EXPECT_EQ(other->total, 0);
}

// A page's sources are read up to its byte budget, counted from the page's first row (not the
// listing's); past it rows come without source or policies, marked so.
TEST_F(ListingOrderTest, CodePageLeavesSourcesPastItsBudgetOut) {
  for (int i = 1; i <= 4; ++i) AddCode(i);
  // A row's source and its inputs ("{}") count.
  const int64_t one = static_cast<int64_t>(std::string("def f():\n    return 1\n{}").size());
  auto page = store_->ListCode(std::nullopt, std::nullopt, 1, 3, 2 * one);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(Ids(*page), (IdList{"c2", "c3", "c4"}));
  EXPECT_EQ(page->total, 4);
  EXPECT_FALSE(page->items[0].source_omitted);
  EXPECT_EQ(page->items[0].source, "def f():\n    return 2\n");
  EXPECT_FALSE(page->items[1].source_omitted);
  EXPECT_TRUE(page->items[2].source_omitted);
  EXPECT_EQ(page->items[2].source, "");
  EXPECT_EQ(page->items[2].inputs, "");
  EXPECT_EQ(page->items[1].inputs, "{}");
  EXPECT_EQ(page->items[2].code_hash, "h4");  // the rest of the row is there
  // A page one row short of the budget reads them all whole.
  auto whole_page = store_->ListCode(std::nullopt, std::nullopt, 1, 3, 3 * one);
  ASSERT_TRUE(whole_page.ok());
  EXPECT_FALSE(whole_page->items[2].source_omitted);
  // A summary reads neither.
  auto summary = store_->GetCodeSummary("c4");
  ASSERT_TRUE(summary.ok()) << summary.status().ToString();
  EXPECT_TRUE(summary->source_omitted);
  EXPECT_EQ(summary->source, "");
  EXPECT_EQ(summary->inputs, "");
  EXPECT_EQ(summary->code_hash, "h4");
  auto whole = store_->GetCode("c4");
  ASSERT_TRUE(whole.ok());
  EXPECT_FALSE(whole->source_omitted);
  EXPECT_EQ(whole->source, "def f():\n    return 4\n");
}

TEST_F(ListingOrderTest, GetCodeAuthorReadsTheAuthorOrNotFound) {
  AddCode(1);
  auto author = store_->GetCodeAuthor("c1");
  ASSERT_TRUE(author.ok()) << author.status().ToString();
  EXPECT_EQ(*author, "u");
  EXPECT_EQ(store_->GetCodeAuthor("c2").status().code(), StatusCode::kNotFound);
}

TEST_F(ListingOrderTest, RequestsAreOldestFirstAndPaged) {
  for (int i = 1; i <= 3; ++i) {
    AddCode(i);
    CodeRequest r;
    r.id = "r" + std::to_string(i);
    r.code_id = "c" + std::to_string(i);
    r.user_id = "u";
    r.status = "pending";
    r.created_at = r.updated_at = 100;
    ASSERT_TRUE(store_->InsertRequest(r).ok());
  }
  auto all = store_->ListRequests(std::nullopt, std::nullopt, std::nullopt, 0, 10);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Ids(*all), (IdList{"r1", "r2", "r3"}));
  EXPECT_EQ(all->total, 3);
  auto last = store_->ListRequests(std::string("u"), std::string("pending"), std::nullopt, 2, 5);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(Ids(*last), (IdList{"r3"}));
  EXPECT_EQ(last->total, 3);
  auto none = store_->ListRequests(std::nullopt, std::string("approved"), std::nullopt, 0, 10);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->total, 0);
}

TEST_F(ListingOrderTest, JobsAreOldestFirstUnlessNewestFirstIsAsked) {
  AddCode(1);
  for (int i = 1; i <= 3; ++i) {
    Job j;
    j.id = "j" + std::to_string(i);
    j.code_id = "c1";
    j.user_id = "u";
    j.kind = "mock";
    j.inputs = "{}";
    j.created_at = 100;
    ASSERT_EQ(*store_->InsertJob(j, {}), JobAdmission::kInserted);
  }
  auto all = store_->ListJobs({});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Ids(*all), (IdList{"j1", "j2", "j3"}));
  EXPECT_EQ(all->total, 3);
  auto window = store_->ListJobs({.offset = 1, .limit = 1});
  ASSERT_TRUE(window.ok());
  EXPECT_EQ(Ids(*window), (IdList{"j2"}));
  EXPECT_EQ(window->total, 3);
  auto newest = store_->ListJobs({.newest_first = true, .limit = 2});
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(Ids(*newest), (IdList{"j3", "j2"}));
}

TEST_F(ListingOrderTest, DatasetsAreOldestFirst) {
  for (int i = 1; i <= 3; ++i) {
    Dataset d;
    d.id = "d" + std::to_string(i);
    d.name = "set" + std::to_string(i);
    d.uploader_id = "u";
    d.created_at = d.updated_at = 100;
    ASSERT_TRUE(store_->InsertDataset(d).ok());
  }
  auto page = store_->ListDatasets("", 0, 10, nullptr);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(Ids(*page), (IdList{"d1", "d2", "d3"}));
  auto second = store_->ListDatasets("", 1, 1, nullptr);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(Ids(*second), (IdList{"d2"}));
}

}  // namespace
}  // namespace datasite::store

namespace datasite::store {
namespace {

// Decisions on a request: changed while no result was released, each kept in its history.
class DecisionTest : public JobBytesTest {
 protected:
  void SetUp() override {
    JobBytesTest::SetUp();
    CodeRequest r;
    r.id = "req";
    r.code_id = "code";
    r.user_id = "u";
    r.status = "pending";
    ASSERT_TRUE(store_->InsertRequest(r).ok());
  }
  std::string Status() { return store_->GetRequest("req")->status; }
};

TEST_F(DecisionTest, ApproveAfterDenyAndDenyAfterApproveKeepTheHistory) {
  ASSERT_TRUE(store_->DecideRequest("req", "denied", "too broad", "owner", 10).ok());
  ASSERT_TRUE(store_->DecideRequest("req", "approved", std::nullopt, "owner", 11).ok());
  EXPECT_EQ(Status(), "approved");
  ASSERT_TRUE(store_->DecideRequest("req", "denied", "changed my mind", "owner", 12).ok());
  EXPECT_EQ(Status(), "denied");
  auto history = store_->RequestHistory("req");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].status, "denied");
  EXPECT_EQ((*history)[0].reason, std::optional<std::string>("too broad"));
  EXPECT_EQ((*history)[1].status, "approved");
  EXPECT_EQ((*history)[1].reason, std::nullopt);
  EXPECT_EQ((*history)[2].at, 12);
}

TEST_F(DecisionTest, TheSameDecisionTwiceIsRefused) {
  ASSERT_TRUE(store_->DecideRequest("req", "approved", std::nullopt, "owner", 10).ok());
  EXPECT_EQ(store_->DecideRequest("req", "approved", std::nullopt, "owner", 11).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->RequestHistory("req")->size(), 1u);
  EXPECT_EQ(store_->DecideRequest("nope", "approved", std::nullopt, "owner", 11).code(),
            StatusCode::kNotFound);
}

TEST_F(DecisionTest, DenyAfterApproveIsRefusedOnceAResultWasReleased) {
  ASSERT_TRUE(store_->DecideRequest("req", "approved", std::nullopt, "owner", 10).ok());
  Finished("u", 5, "", "private");
  EXPECT_EQ(store_->DecideRequest("req", "denied", "late", "owner", 11).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(Status(), "approved");
  EXPECT_EQ(store_->RequestHistory("req")->size(), 1u);
}

TEST_F(DecisionTest, DenyAfterApproveHoldsTheRunsStillGoing) {
  ASSERT_TRUE(store_->DecideRequest("req", "approved", std::nullopt, "owner", 10).ok());
  Job running = Running("u", "private");
  ASSERT_TRUE(store_->DecideRequest("req", "denied", "stop", "owner", 11).ok());
  // The run ends after the denial: its result stays held, whatever its runner said.
  running.status = "completed";
  running.result_format = "bytes";
  running.result_size = 1;
  running.result_data = "r";
  running.held = false;
  ASSERT_TRUE(store_->FinishJob(running).ok());
  EXPECT_TRUE(store_->GetJob(running.id)->held);
}

TEST_F(DecisionTest, DepositedResultIsHeldUntilApproved) {
  Job d;
  d.id = "dep";
  d.code_id = "code";
  d.user_id = "u";
  d.inputs = "{}";
  d.result_format = "json";
  d.result_size = 2;
  d.result_data = "42";
  d.held = true;
  ASSERT_TRUE(store_->InsertDepositedJob(d).ok());
  auto job = store_->GetJob("dep");
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->status, "completed");
  EXPECT_EQ(job->kind, "private");
  EXPECT_TRUE(job->deposited);
  EXPECT_TRUE(job->held);
  EXPECT_EQ(*store_->GetJobResult("dep"), std::optional<std::string>("42"));
  EXPECT_EQ(store_->UserJobUsage("u")->result_bytes, 2);
  ASSERT_TRUE(store_->DecideRequest("req", "approved", std::nullopt, "owner", 10).ok());
  EXPECT_FALSE(store_->GetJob("dep")->held);
  // Released now: the approval stands.
  EXPECT_EQ(store_->DecideRequest("req", "denied", "x", "owner", 11).code(),
            StatusCode::kFailedPrecondition);
}

// Regression: errors of private runs kept before version 8 held their code's words; the upgrade
// moves them where only data owners read them. A mock run's error stays its user's.
TEST_F(JobBytesTest, UpgradeMovesTheErrorsOfPrivateRunsOutOfSight) {
  if (postgres()) GTEST_SKIP() << "writes an old SQLite schema into the file";
  Job priv = Running("u", "private");
  priv.status = "errored";
  priv.error = "ValueError: oops 42";
  ASSERT_TRUE(store_->FinishJob(priv).ok());
  Job mock = Running("u", "mock");
  mock.status = "errored";
  mock.error = "ValueError: oops 7";
  ASSERT_TRUE(store_->FinishJob(mock).ok());
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         (std::string(kDropJobCharges) + kDropSync +
                          "ALTER TABLE jobs DROP COLUMN failure; "
                          "ALTER TABLE jobs DROP COLUMN error_detail; "
                          "ALTER TABLE jobs DROP COLUMN error_released; "
                          "ALTER TABLE jobs DROP COLUMN deposited; "
                          "DROP INDEX code_requests_project; "
                          "ALTER TABLE code_requests DROP COLUMN project_id; "
                          "DROP TABLE project_events; "
                          "DROP TABLE project_members; "
                          "DROP TABLE projects; "
                          "DROP TABLE request_decisions; "
                          "DROP TABLE code_policies; "
                          "DROP TABLE data_subject_members; DROP TABLE data_subjects; "
                          "DROP TABLE notifications; DROP TABLE mail_outbox; "
                          "DROP TABLE mail_settings; DROP TABLE mail_opt_outs; "
                          "DROP TABLE password_resets; "
                          "DROP TABLE audit_checkpoint; "
                          "ALTER TABLE audit_events DROP COLUMN prev_hash; "
                          "ALTER TABLE audit_events DROP COLUMN hash; "
                          "PRAGMA user_version = 8")
                             .c_str(),
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  Open();
  auto p = store_->GetJob(priv.id);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->error.find("oops"), std::string::npos);
  EXPECT_EQ(p->error_detail, "ValueError: oops 42");
  EXPECT_EQ(p->failure, "unknown");
  EXPECT_EQ(store_->GetJob(mock.id)->error, "ValueError: oops 7");
}

TEST_F(JobBytesTest, FailureAndErrorDetailRoundTripAndReleaseErrorShowsIt) {
  Job j = Running("u", "private");
  j.status = "errored";
  j.error = "the code failed";
  j.failure = "code_error";
  j.error_detail = "ValueError: oops 42";
  ASSERT_TRUE(store_->FinishJob(j).ok());
  auto got = store_->GetJob(j.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->error, "the code failed");
  EXPECT_EQ(got->failure, "code_error");
  EXPECT_EQ(got->error_detail, "ValueError: oops 42");
  EXPECT_FALSE(got->error_released);
  ASSERT_TRUE(store_->ReleaseJobError(j.id).ok());
  EXPECT_TRUE(store_->GetJob(j.id)->error_released);
  EXPECT_EQ(store_->ReleaseJobError("nope").code(), StatusCode::kNotFound);
}

// The bytes a user's code keeps (Store::UserCodeUsage), counted against their quota.
class CodeBytesTest : public StoreTest {
 protected:
  static UserCode MakeCode(const std::string& id, const std::string& user,
                           const std::string& source, int64_t stored_bytes) {
    UserCode c;
    c.id = id;
    c.user_id = user;
    c.name = "f";
    c.source = source;
    c.code_hash = "hash of " + id;
    c.inputs = "{}";
    c.output_policy = "single_execution";
    c.stored_bytes = stored_bytes;
    return c;
  }
};

// Regression: code submissions kept up to 1 MiB of source each and counted nowhere, so one data
// scientist filled the disk past their quota and the server's storage limit.
TEST_F(CodeBytesTest, InsertedCodeCountsItsBytesForItsAuthor) {
  auto none = store_->UserCodeUsage("u");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->bytes, 0);
  EXPECT_EQ(none->versions, 0);
  ASSERT_TRUE(store_->InsertCode(MakeCode("c1", "u", "def f(): return 1\n", 1000)).ok());
  ASSERT_TRUE(store_->InsertCode(MakeCode("c2", "u", "def f(): return 2\n", 234)).ok());
  ASSERT_TRUE(store_->InsertCode(MakeCode("c3", "v", "def f(): return 3\n", 50)).ok());
  auto u = store_->UserCodeUsage("u");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->bytes, 1234);
  EXPECT_EQ(u->versions, 2);
  EXPECT_EQ(store_->UserCodeUsage("v")->bytes, 50);
  EXPECT_EQ(*store_->TotalCodeBytes(), 1284);
}

TEST_F(CodeBytesTest, CodeRolledBackWithItsTransactionCountsNothing) {
  Status st = store_->InTransaction([&](Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertCode(MakeCode("c1", "u", "def f(): return 1\n", 1000)).status());
    return ResourceExhaustedError("the quota refused it");
  });
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(store_->UserCodeUsage("u")->bytes, 0);
  EXPECT_EQ(store_->UserCodeUsage("u")->versions, 0);
  EXPECT_EQ(*store_->TotalCodeBytes(), 0);
}

TEST_F(CodeBytesTest, ResubmittedSourceCountsOnce) {
  ASSERT_TRUE(store_->InsertCode(MakeCode("c1", "u", "def f(): return 1\n", 1000)).ok());
  UserCode again = MakeCode("c2", "u", "def f(): return 1\n", 1000);
  again.code_hash = "hash of c1";
  EXPECT_EQ(store_->InsertCode(again).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->UserCodeUsage("u")->bytes, 1000);
  EXPECT_EQ(store_->UserCodeUsage("u")->versions, 1);
}

// The upgrade to version 24 counts the code stored before it: its source, inputs and custom
// policies' spec, at their size in bytes.
TEST_F(CodeBytesTest, UpgradeCountsTheCodeStoredBefore) {
  UserCode plain = MakeCode("c1", "u", "def f():\n    return 'é'\n", 0);
  ASSERT_TRUE(store_->InsertCode(plain).ok());
  UserCode custom = MakeCode("c2", "u", "def f():\n    return 2\n", 0);
  custom.inputs = R"({"x": {"value": 1}})";
  ASSERT_TRUE(store_->InsertCode(custom).ok());
  const std::string spec = R"({"source": "class P: pass", "input": null})";
  ASSERT_TRUE(store_->PutCodePolicy("c2", spec).ok());
  store_.reset();
  RawSql(std::string("DROP TABLE project_usage; DROP TABLE code_bytes; ") +
         UndoVersion27(postgres()) + kUndoVersion26 +
         (postgres() ? "UPDATE schema_version SET version = 23" : "PRAGMA user_version = 23"));
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(RawInt(postgres() ? "SELECT version FROM schema_version" : "PRAGMA user_version"),
            kLatestVersion);
  auto u = store_->UserCodeUsage("u");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  // 'é' is two bytes.
  EXPECT_EQ(u->bytes,
            static_cast<int64_t>(plain.source.size() + plain.inputs.size() + custom.source.size() +
                                 custom.inputs.size() + spec.size()));
  EXPECT_EQ(u->versions, 2);
  EXPECT_EQ(*store_->TotalCodeBytes(), u->bytes);
}

// Projects: members, events in order, requests by project.
class ProjectStoreTest : public ListingOrderTest {
 protected:
  static Project MakeProject(const std::string& id, const std::string& creator,
                             const std::string& name, std::vector<std::string> members) {
    Project p;
    p.id = id;
    p.name = name;
    p.description = "about " + name;
    p.created_by = creator;
    p.created_at = 100;
    for (auto& m : members) p.members.push_back({m, "", ""});
    return p;
  }

  static ProjectEvent Event(const std::string& project, const std::string& id,
                            const std::string& kind, const std::string& text) {
    ProjectEvent e;
    e.id = id;
    e.project_id = project;
    e.kind = kind;
    e.actor_id = "u";
    e.text = text;
    e.at = 200;
    return e;
  }

  CodeRequest AddRequest(int i, std::optional<std::string> project) {
    AddCode(i);
    CodeRequest r;
    r.id = "r" + std::to_string(i);
    r.code_id = "c" + std::to_string(i);
    r.user_id = "u";
    r.status = "pending";
    r.created_at = r.updated_at = 100;
    r.project_id = std::move(project);
    EXPECT_TRUE(store_->InsertRequest(r).ok());
    return r;
  }
};

TEST_F(ProjectStoreTest, ProjectIsReadBackWithItsMembersOldestFirst) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u", "u@example.org", "Una")).ok());
  ASSERT_TRUE(store_->InsertProject(MakeProject("p1", "u", "one", {"u", "v", "u"})).ok());
  auto p = store_->GetProject("p1");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->name, "one");
  EXPECT_EQ(p->description, "about one");
  EXPECT_EQ(p->creator_name, "Una");
  ASSERT_EQ(p->members.size(), 2u);  // a member named twice is one member
  EXPECT_EQ(p->members[0].user_id, "u");
  EXPECT_EQ(p->members[0].email, "u@example.org");
  EXPECT_EQ(p->members[1].user_id, "v");
  EXPECT_EQ(store_->GetProject("p2").status().code(), StatusCode::kNotFound);
}

TEST_F(ProjectStoreTest, ANameIsUniquePerCreatorOnly) {
  ASSERT_TRUE(store_->InsertProject(MakeProject("p1", "u", "same", {"u"})).ok());
  EXPECT_EQ(store_->InsertProject(MakeProject("p2", "u", "same", {"u"})).code(),
            StatusCode::kAlreadyExists);
  // Nothing of the refused project was kept (its members were in the same transaction).
  EXPECT_EQ(store_->GetProject("p2").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->InsertProject(MakeProject("p3", "v", "same", {"v"})).ok());
}

TEST_F(ProjectStoreTest, ListingIsByMemberAndNameOldestFirst) {
  ASSERT_TRUE(store_->InsertProject(MakeProject("p1", "u", "a", {"u"})).ok());
  ASSERT_TRUE(store_->InsertProject(MakeProject("p2", "v", "b", {"v"})).ok());
  ASSERT_TRUE(store_->InsertProject(MakeProject("p3", "u", "b", {"u", "v"})).ok());
  auto all = store_->ListProjects(std::nullopt, std::nullopt, 0, 10);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Ids(*all), (IdList{"p1", "p2", "p3"}));
  auto of_v = store_->ListProjects(std::string("v"), std::nullopt, 0, 10);
  EXPECT_EQ(Ids(*of_v), (IdList{"p2", "p3"}));
  EXPECT_EQ(of_v->total, 2);
  auto named = store_->ListProjects(std::string("u"), std::string("b"), 0, 10);
  EXPECT_EQ(Ids(*named), (IdList{"p3"}));
  auto page = store_->ListProjects(std::nullopt, std::nullopt, 1, 1);
  EXPECT_EQ(Ids(*page), (IdList{"p2"}));
  EXPECT_EQ(page->total, 3);
  EXPECT_TRUE(store_->ListProjects(std::string("w"), std::nullopt, 0, 10)->items.empty());
}

TEST_F(ProjectStoreTest, EventsAreNumberedInOrderPerProject) {
  ASSERT_TRUE(store_->InsertProject(MakeProject("p1", "u", "a", {"u"})).ok());
  ASSERT_TRUE(store_->InsertProject(MakeProject("p2", "u", "b", {"u"})).ok());
  AddRequest(1, "p1");
  EXPECT_EQ(*store_->AppendProjectEvent(Event("p1", "e1", "message", "hello")), 1);
  EXPECT_EQ(*store_->AppendProjectEvent(Event("p2", "e2", "message", "other")), 1);
  ProjectEvent req = Event("p1", "e3", "request", "why");
  req.request_id = "r1";
  EXPECT_EQ(*store_->AppendProjectEvent(req), 2);
  ProjectEvent decision = Event("p1", "e4", "decision", "");
  decision.request_id = "r1";
  decision.status = "approved";
  EXPECT_EQ(*store_->AppendProjectEvent(decision), 3);
  auto events = store_->ProjectEvents("p1", 0, 100);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].text, "hello");
  EXPECT_FALSE((*events)[0].request_id.has_value());
  EXPECT_EQ((*events)[1].kind, "request");
  EXPECT_EQ((*events)[1].request_id, "r1");
  EXPECT_EQ((*events)[2].status, "approved");
  EXPECT_EQ((*events)[2].seq, 3);
}

// Regression (cold attack, "project flood"): projects and messages of up to 10 KB each were
// counted nowhere, so one data scientist kept 37 MB of them past a 100 kB quota. Each now counts
// for its author, at its size in bytes; request and decision events are bounded elsewhere.
TEST_F(ProjectStoreTest, ProjectsAndMessagesCountTheirBytesForTheirAuthor) {
  auto none = store_->UserProjectUsage("u");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->projects, 0);
  EXPECT_EQ(none->messages, 0);
  EXPECT_EQ(none->bytes, 0);
  ASSERT_TRUE(store_->InsertProject(MakeProject("p1", "u", "a", {"u", "v"})).ok());  // 1 + 7
  ASSERT_TRUE(store_->InsertProject(MakeProject("p2", "v", "bb", {"v"})).ok());      // 2 + 8
  ASSERT_TRUE(store_->AppendProjectEvent(Event("p1", "e1", "message", "hello")).ok());
  ProjectEvent theirs = Event("p1", "e2", "message", "héllo");  // six bytes
  theirs.actor_id = "v";
  ASSERT_TRUE(store_->AppendProjectEvent(theirs).ok());
  AddRequest(1, "p1");
  ProjectEvent req = Event("p1", "e3", "request", "why");
  req.request_id = "r1";
  ASSERT_TRUE(store_->AppendProjectEvent(req).ok());
  ProjectEvent decision = Event("p1", "e4", "decision", "no");
  decision.request_id = "r1";
  decision.status = "denied";
  ASSERT_TRUE(store_->AppendProjectEvent(decision).ok());

  auto u = store_->UserProjectUsage("u");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->projects, 1);
  EXPECT_EQ(u->messages, 1);
  EXPECT_EQ(u->bytes, 8 + 5);
  auto v = store_->UserProjectUsage("v");
  EXPECT_EQ(v->projects, 1);
  EXPECT_EQ(v->messages, 1);
  EXPECT_EQ(v->bytes, 10 + 6);
  // With the job usage the quota checks read.
  EXPECT_EQ(store_->UserJobUsage("u")->project_bytes, 13);
}

TEST_F(ProjectStoreTest, AProjectOrMessageRolledBackCountsNothing) {
  ASSERT_TRUE(store_->InsertProject(MakeProject("p1", "u", "a", {"u"})).ok());
  Status st = store_->InTransaction([&](Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertProject(MakeProject("p2", "u", "b", {"u"})));
    RETURN_IF_ERROR(tx.AppendProjectEvent(Event("p1", "e1", "message", "hello")).status());
    return ResourceExhaustedError("the quota refused it");
  });
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  auto u = store_->UserProjectUsage("u");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->projects, 1);
  EXPECT_EQ(u->messages, 0);
  EXPECT_EQ(u->bytes, 8);
  // A project refused as a duplicate counts nothing either.
  EXPECT_EQ(store_->InsertProject(MakeProject("p3", "u", "a", {"u"})).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->UserProjectUsage("u")->projects, 1);
}

// Regression (cold attack, "project events memory"): the events were read whole, 4000 messages
// of 10 KB per answer. They are read a page at a time, after a seq.
TEST_F(ProjectStoreTest, EventsAreReadAPageAfterASeq) {
  ASSERT_TRUE(store_->InsertProject(MakeProject("p1", "u", "a", {"u"})).ok());
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(store_
                    ->AppendProjectEvent(
                        Event("p1", "e" + std::to_string(i), "message", "m" + std::to_string(i)))
                    .ok());
  }
  auto first = store_->ProjectEvents("p1", 0, 2);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].seq, 1);
  EXPECT_EQ((*first)[1].seq, 2);
  auto next = store_->ProjectEvents("p1", 2, 2);
  ASSERT_EQ(next->size(), 2u);
  EXPECT_EQ((*next)[0].text, "m3");
  EXPECT_EQ((*next)[1].seq, 4);
  auto last = store_->ProjectEvents("p1", 4, 2);
  ASSERT_EQ(last->size(), 1u);
  EXPECT_EQ((*last)[0].seq, 5);
  EXPECT_TRUE(store_->ProjectEvents("p1", 5, 2)->empty());
}

// The upgrade to version 25 counts the projects and messages stored before it.
TEST_F(ProjectStoreTest, UpgradeCountsTheProjectsAndMessagesStoredBefore) {
  ASSERT_TRUE(store_->InsertProject(MakeProject("p1", "u", "a", {"u"})).ok());
  ASSERT_TRUE(store_->InsertProject(MakeProject("p2", "u", "bé", {"u"})).ok());
  ASSERT_TRUE(store_->AppendProjectEvent(Event("p1", "e1", "message", "hello")).ok());
  ASSERT_TRUE(store_->AppendProjectEvent(Event("p2", "e2", "decision", "no")).ok());
  auto before = store_->UserProjectUsage("u");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  store_.reset();
  RawSql(std::string("DROP TABLE project_usage; ") + UndoVersion27(postgres()) + kUndoVersion26 +
         (postgres() ? "UPDATE schema_version SET version = 24" : "PRAGMA user_version = 24"));
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(RawInt(postgres() ? "SELECT version FROM schema_version" : "PRAGMA user_version"),
            kLatestVersion);
  auto u = store_->UserProjectUsage("u");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->projects, 2);
  EXPECT_EQ(u->messages, 1);
  // 8 for p1, 3 + 9 for p2 (é is two bytes), 5 for the message.
  EXPECT_EQ(u->bytes, 8 + 12 + 5);
  EXPECT_EQ(u->bytes, before->bytes);
}

TEST_F(ProjectStoreTest, EventOfAnUnknownProjectIsRefused) {
  EXPECT_EQ(store_->AppendProjectEvent(Event("nope", "e1", "message", "x")).status().code(),
            StatusCode::kNotFound);
}

TEST_F(ProjectStoreTest, RequestsAreListedByProjectAndNameIt) {
  ASSERT_TRUE(store_->InsertProject(MakeProject("p1", "u", "alpha", {"u"})).ok());
  AddRequest(1, "p1");
  AddRequest(2, std::nullopt);
  AddRequest(3, "p1");
  auto in_p1 = store_->ListRequests(std::nullopt, std::nullopt, std::string("p1"), 0, 10);
  ASSERT_TRUE(in_p1.ok()) << in_p1.status().ToString();
  EXPECT_EQ(Ids(*in_p1), (IdList{"r1", "r3"}));
  EXPECT_EQ(in_p1->total, 2);
  auto r1 = store_->GetRequest("r1");
  EXPECT_EQ(r1->project_id, "p1");
  EXPECT_EQ(r1->project_name, "alpha");
  EXPECT_FALSE(store_->GetRequest("r2")->project_id.has_value());
}

TEST_F(ProjectStoreTest, ARequestJoinsOneProjectOnce) {
  ASSERT_TRUE(store_->InsertProject(MakeProject("p1", "u", "a", {"u"})).ok());
  ASSERT_TRUE(store_->InsertProject(MakeProject("p2", "u", "b", {"u"})).ok());
  AddRequest(1, std::nullopt);
  ASSERT_TRUE(store_->SetRequestProject("r1", "p1").ok());
  EXPECT_EQ(store_->GetRequest("r1")->project_id, "p1");
  EXPECT_EQ(store_->SetRequestProject("r1", "p2").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->SetRequestProject("nope", "p1").code(), StatusCode::kNotFound);
  AddRequest(2, std::nullopt);
  EXPECT_EQ(store_->SetRequestProject("r2", "nope").code(), StatusCode::kNotFound);
}

TEST_F(ProjectStoreTest, ARequestAndItsEventCommitTogetherOrNotAtAll) {
  ASSERT_TRUE(store_->InsertProject(MakeProject("p1", "u", "a", {"u"})).ok());
  AddCode(1);
  CodeRequest r;
  r.id = "r1";
  r.code_id = "c1";
  r.user_id = "u";
  r.status = "pending";
  r.project_id = "p1";
  Status st = store_->InTransaction([&](Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertRequest(r));
    ProjectEvent e = Event("p1", "e1", "request", "");
    e.request_id = "r1";
    RETURN_IF_ERROR(tx.AppendProjectEvent(e).status());
    return InternalError("fail after both");
  });
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_EQ(store_->GetRequest("r1").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->ProjectEvents("p1", 0, 100)->empty());
}

}  // namespace
}  // namespace datasite::store

namespace datasite::store {
namespace {

// A code's custom policies: the spec is stored once; the state only by the run that read the
// version it replaces (two runs that read the same state can't both write it).
TEST_F(JobBytesTest, CodePolicyStateIsWrittenOnlyOverTheVersionRead) {
  EXPECT_FALSE(store_->GetCodePolicy("code")->has_value());
  ASSERT_TRUE(store_->PutCodePolicy("code", R"({"source":"class P: pass"})").ok());
  EXPECT_EQ(store_->PutCodePolicy("code", "{}").code(), StatusCode::kAlreadyExists);
  auto p = store_->GetCodePolicy("code");
  ASSERT_TRUE(p.ok() && p->has_value());
  EXPECT_EQ((*p)->spec, R"({"source":"class P: pass"})");
  EXPECT_EQ((*p)->state, "");
  EXPECT_EQ((*p)->version, 0);
  EXPECT_TRUE(*store_->UpdateCodePolicyState("code", 0, R"({"n":1})"));
  EXPECT_FALSE(*store_->UpdateCodePolicyState("code", 0, R"({"n":9})"));
  p = store_->GetCodePolicy("code");
  EXPECT_EQ((*p)->state, R"({"n":1})");
  EXPECT_EQ((*p)->version, 1);
}

}  // namespace
}  // namespace datasite::store

namespace datasite::store {
namespace {

// The sync seams (issue 14): the change log, its origin, peers and the synced jobs.
class SyncStoreTest : public StoreTest {};

TEST_F(SyncStoreTest, ChangeLogRecordsEveryChangeOfASyncableTable) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  auto first = store_->LatestChange("user", "u1");
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->op, "insert");
  EXPECT_EQ((*first)->origin, "");
  User u = *store_->GetUserById("u1");
  u.name = "Renamed";
  ASSERT_TRUE(store_->UpdateUser(u).ok());
  auto second = store_->LatestChange("user", "u1");
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->op, "update");
  EXPECT_GT((*second)->seq, (*first)->seq);
  EXPECT_FALSE(store_->LatestChange("user", "nobody")->has_value());
}

TEST_F(SyncStoreTest, ChangeLogHeadMovesWithEveryChange) {
  EXPECT_EQ(*store_->ChangeLogHead(), 0);
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  const int64_t after_insert = *store_->ChangeLogHead();
  EXPECT_EQ(after_insert, (*store_->LatestChange("user", "u1"))->seq);
  User u = *store_->GetUserById("u1");
  u.name = "Renamed";
  ASSERT_TRUE(store_->UpdateUser(u).ok());
  EXPECT_GT(*store_->ChangeLogHead(), after_insert);
}

TEST_F(SyncStoreTest, RolledBackChangeLeavesNoChangeLogRow) {
  Status st = store_->InTransaction([&](Store& s) -> Status {
    RETURN_IF_ERROR(s.InsertUser(MakeUser("u1", "a@example.org", "A")));
    return InternalError("injected");
  });
  EXPECT_EQ(st.code(), StatusCode::kInternal);
  EXPECT_FALSE(store_->LatestChange("user", "u1")->has_value());
}

TEST_F(SyncStoreTest, OriginSetInTheTransactionIsRecordedThenCleared) {
  ASSERT_TRUE(store_
                  ->InTransaction([&](Store& s) -> Status {
                    RETURN_IF_ERROR(s.SetChangeOrigin("peerkey"));
                    RETURN_IF_ERROR(s.InsertUser(MakeUser("u1", "a@example.org", "A")));
                    return s.SetChangeOrigin("");
                  })
                  .ok());
  EXPECT_EQ((*store_->LatestChange("user", "u1"))->origin, "peerkey");
  ASSERT_TRUE(store_->InsertUser(MakeUser("u2", "b@example.org", "B")).ok());
  EXPECT_EQ((*store_->LatestChange("user", "u2"))->origin, "");
  // A failed apply rolls its origin back with everything else.
  EXPECT_FALSE(store_
                   ->InTransaction([&](Store& s) -> Status {
                     RETURN_IF_ERROR(s.SetChangeOrigin("other"));
                     return InternalError("injected");
                   })
                   .ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("u3", "c@example.org", "C")).ok());
  EXPECT_EQ((*store_->LatestChange("user", "u3"))->origin, "");
}

TEST_F(SyncStoreTest, PeersRotateAndRevokeKeepingOldKeysRevoked) {
  ASSERT_TRUE(store_->InsertSyncPeer({"high", "k1", "", 10}).ok());
  EXPECT_EQ(store_->InsertSyncPeer({"high", "k2", "", 10}).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->InsertSyncPeer({"other", "k1", "", 10}).code(), StatusCode::kAlreadyExists);
  SyncPeer p = *store_->GetSyncPeer("high");
  p.last_sent_seq = 3;
  p.side = "high";
  ASSERT_TRUE(store_->UpdateSyncPeerState(p).ok());
  ASSERT_TRUE(store_->RotateSyncPeerKey("high", "k2", 20).ok());
  EXPECT_TRUE(*store_->IsRevokedSyncKey("k1"));
  EXPECT_FALSE(*store_->IsRevokedSyncKey("k2"));
  auto rotated = store_->FindSyncPeerByKey("k2");
  ASSERT_TRUE(rotated.ok());
  EXPECT_EQ(rotated->last_sent_seq, 3);
  EXPECT_EQ(rotated->side, "high");
  EXPECT_EQ(store_->RotateSyncPeerKey("high", "k1", 30).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->InsertSyncPeer({"again", "k1", "", 10}).code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->RevokeSyncPeer("high", 40).ok());
  EXPECT_TRUE(*store_->IsRevokedSyncKey("k2"));
  EXPECT_EQ(store_->GetSyncPeer("high")->revoked_at, 40);
  EXPECT_EQ(store_->RevokeSyncPeer("high", 50).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->RevokeSyncPeer("nobody", 50).code(), StatusCode::kNotFound);
}

TEST_F(SyncStoreTest, LedgersInventoryIgnoredAndImports) {
  ASSERT_TRUE(store_->PutSyncObject(SyncLedger::kExchanged, "high", {"user", "u1", "h1"}).ok());
  ASSERT_TRUE(store_->PutSyncObject(SyncLedger::kExchanged, "high", {"user", "u1", "h2"}).ok());
  auto ex = store_->ListSyncObjects(SyncLedger::kExchanged, "high");
  ASSERT_TRUE(ex.ok());
  ASSERT_EQ(ex->size(), 1u);
  EXPECT_EQ((*ex)[0].hash, "h2");
  ASSERT_TRUE(
      store_->ReplaceSyncInventory("high", {{"code", "c1", "x"}, {"user", "u1", "y"}}).ok());
  ASSERT_TRUE(store_->ReplaceSyncInventory("high", {{"user", "u1", "z"}}).ok());
  auto inv = store_->ListSyncObjects(SyncLedger::kInventory, "high");
  ASSERT_EQ(inv->size(), 1u);
  EXPECT_EQ((*inv)[0].hash, "z");
  ASSERT_TRUE(store_->SetSyncIgnored("high", "request:r1", true).ok());
  ASSERT_TRUE(store_->SetSyncIgnored("high", "request:r1", true).ok());
  EXPECT_EQ(store_->ListSyncIgnored()->size(), 1u);
  ASSERT_TRUE(store_->SetSyncIgnored("high", "request:r1", false).ok());
  EXPECT_EQ(store_->SetSyncIgnored("high", "request:r1", false).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->PutSyncImport({"i1", "high", 2, 100, "pending"}).ok());
  EXPECT_EQ(store_->GetSyncImport("i1")->seq, 2);
  EXPECT_EQ(store_->GetSyncImport("i2").status().code(), StatusCode::kNotFound);
}

class SyncedJobTest : public JobBytesTest {};

// A synced job (origin set) is a record of a run on the high side: never leased, never re-run.
TEST_F(SyncedJobTest, SyncedJobsAreNeverLeasedNorRecovered) {
  Job j;
  j.id = "synced";
  j.code_id = "code";
  j.user_id = "u";
  j.status = "completed";
  j.inputs = "{}";
  j.result_format = "json";
  j.result_size = 2;
  j.result_data = "42";
  j.finished_at = 5;
  EXPECT_EQ(store_->PutSyncedJob(j, "").status().code(), StatusCode::kInvalidArgument);
  j.stdout_text = "hello";
  // A released run: its result and stdout are charged to its user and metered, at their size.
  EXPECT_EQ(*store_->PutSyncedJob(j, "peerkey"), 2 + 5);
  EXPECT_EQ(store_->UserJobUsage("u")->charged_bytes, 2 + 5);
  EXPECT_EQ(*store_->TotalJobBytes(), 2 + 5);
  j.stdout_text.clear();
  EXPECT_EQ(*store_->PutSyncedJob(j, "peerkey"), -5);  // replacing it
  EXPECT_EQ(*store_->TotalJobBytes(), 2);
  EXPECT_EQ(*store_->GetJobResult("synced"), std::optional<std::string>("42"));
  EXPECT_EQ(store_->LastSyncedJob("code")->id, "synced");
  j.status = "queued";
  EXPECT_EQ(store_->PutSyncedJob(j, "peerkey").status().code(), StatusCode::kInvalidArgument);
  // Even forced back to queued, then running (by hand, behind the store), the queue and
  // recovery leave it alone.
  auto set_status = [&](const char* sql) { RawSql(sql); };
  set_status("UPDATE jobs SET status = 'queued' WHERE id = 'synced'");
  EXPECT_FALSE(store_->LeaseNextJob(100)->has_value());
  set_status("UPDATE jobs SET status = 'running' WHERE id = 'synced'");
  auto recovered = store_->RecoverJobs(3, 100);
  ASSERT_TRUE(recovered.ok());
  EXPECT_EQ(recovered->first + recovered->second, 0);
  EXPECT_EQ(store_->GetJob("synced")->status, "running");
  // A local job's id is never taken over.
  Job local = Running("u", "private");
  local.status = "completed";
  EXPECT_EQ(store_->PutSyncedJob(local, "peerkey").status().code(), StatusCode::kAlreadyExists);
}

// Leases by workers at once, each with a store (a connection) of its own, as worker processes
// sharing one database lease.
class JobLeaseTest : public JobBytesTest {
 protected:
  // Queues job `id` of `user`; jobs queued later are leased later among one user's.
  JobAdmission Queue(const std::string& id, const std::string& user, Store& store,
                     const JobLimits& limits = {}) {
    Job j;
    j.id = id;
    j.code_id = "code";
    j.user_id = user;
    j.kind = "mock";
    j.inputs = "{}";
    j.created_at = ++jobs_;
    // As the job queue queues: inside a transaction, which holds the writers' lock.
    JobAdmission admission{};
    Status st = store.InTransaction([&](Store& tx) -> Status {
      ASSIGN_OR_RETURN(admission, tx.InsertJob(j, limits));
      return Status::Ok();
    });
    EXPECT_TRUE(st.ok()) << st.ToString();
    return admission;
  }
  void Queue(const std::string& id, const std::string& user) {
    EXPECT_EQ(Queue(id, user, *store_), JobAdmission::kInserted);
  }

  std::unique_ptr<Store> OpenAnother() {
    auto opened = db_->Open();
    EXPECT_TRUE(opened.ok()) << opened.status().ToString();
    return opened.ok() ? std::move(opened).value() : nullptr;
  }

  // `workers` threads, each with a store of its own, lease until nothing is left queued; returns
  // the ids each leased.
  std::vector<std::vector<std::string>> LeaseAllAtOnce(int workers) {
    std::vector<std::unique_ptr<Store>> stores;
    for (int w = 0; w < workers; ++w) stores.push_back(OpenAnother());
    std::vector<std::vector<std::string>> leased(workers);
    std::vector<std::string> errors(workers);
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w) {
      threads.emplace_back([&, w] {
        if (stores[w] == nullptr) return;
        const std::string owner = "worker" + std::to_string(w);
        for (;;) {
          auto job = stores[w]->LeaseNextJob(100, owner, 30'100);
          if (!job.ok()) {
            errors[w] = job.status().ToString();
            return;
          }
          if (!job->has_value()) return;
          leased[w].push_back((*job)->id);
        }
      });
    }
    for (std::thread& t : threads) t.join();
    for (const std::string& e : errors) EXPECT_EQ(e, "");
    return leased;
  }
};

// Runs one statement on a connection of the test's own; a failure fails the test.
void RunOn(PGconn* c, const std::string& sql) {
  PGresult* r = PQexec(c, sql.c_str());
  const ExecStatusType st = PQresultStatus(r);
  EXPECT_TRUE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
      << sql << ": " << PQresultErrorMessage(r);
  PQclear(r);
}

// Regression: on PostgreSQL a lease took the writers' lock and then waited for the first queued
// job's row while another transaction held it, stalling every worker; it now passes that row.
TEST_F(JobLeaseTest, ALeasePassesAJobAnotherTransactionHoldsInsteadOfWaiting) {
  if (!postgres()) GTEST_SKIP() << "SQLite has one writer at a time";
  Queue("first", "a");
  Queue("second", "b");
  PGconn* holder = PQconnectdb(path_.c_str());
  ASSERT_EQ(PQstatus(holder), CONNECTION_OK) << PQerrorMessage(holder);
  RunOn(holder, "BEGIN");
  RunOn(holder, "SELECT id FROM jobs WHERE id = 'first' FOR UPDATE");
  std::unique_ptr<Store> worker = OpenAnother();
  ASSERT_NE(worker, nullptr);
  auto lease =
      std::async(std::launch::async, [&] { return worker->LeaseNextJob(100, "w", 30'100); });
  // A generous bound, so a lease that waits fails the test instead of hanging it.
  const bool answered = lease.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  RunOn(holder, "ROLLBACK");  // a lease that waited goes on now
  PQfinish(holder);
  EXPECT_TRUE(answered) << "the lease waited for the row another transaction held";
  auto leased = lease.get();
  ASSERT_TRUE(leased.ok()) << leased.status().ToString();
  ASSERT_TRUE(leased->has_value());
  EXPECT_EQ((*leased)->id, "second");
  EXPECT_EQ(store_->GetJob("first")->status, "queued");
}

TEST_F(JobLeaseTest, WorkersLeasingAtOnceLeaseEveryJobExactlyOnce) {
  constexpr int kJobs = 60;
  for (int i = 0; i < kJobs; ++i) Queue("j" + std::to_string(i), "u" + std::to_string(i % 5));
  std::map<std::string, int> times;
  for (const auto& ids : LeaseAllAtOnce(4)) {
    for (const std::string& id : ids) ++times[id];
  }
  EXPECT_EQ(times.size(), static_cast<size_t>(kJobs));
  for (const auto& [id, n] : times) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(RawInt("SELECT count(*) FROM jobs WHERE status = 'running' AND attempts = 1"), kJobs);
}

// A user at the cap of unfinished jobs stays there while workers lease that user's jobs at once
// and the user queues more: a lease turns a queued job into a running one, both counted.
TEST_F(JobLeaseTest, ThePerUserCapHoldsWhileWorkersLeaseThatUsersJobsAtOnce) {
  JobLimits cap;
  cap.max_unfinished = 3;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Queue("mine" + std::to_string(i), "u", *store_, cap), JobAdmission::kInserted);
  }
  for (int i = 0; i < 6; ++i) Queue("other" + std::to_string(i), "o" + std::to_string(i % 2));
  std::unique_ptr<Store> api = OpenAnother();
  ASSERT_NE(api, nullptr);
  std::atomic<bool> leasing{true};
  std::map<JobAdmission, int> admissions;
  std::thread user([&] {
    int n = 0;
    do {
      ++admissions[Queue("more" + std::to_string(++n), "u", *api, cap)];
    } while (leasing);
  });
  std::map<std::string, int> times;
  for (const auto& ids : LeaseAllAtOnce(4)) {
    for (const std::string& id : ids) ++times[id];
  }
  leasing = false;
  user.join();
  EXPECT_EQ(admissions.count(JobAdmission::kInserted), 0u);
  EXPECT_GE(admissions[JobAdmission::kTooManyUnfinished], 1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(times["mine" + std::to_string(i)], 1);
  EXPECT_EQ(store_->UserJobUsage("u")->unfinished, 3);
  EXPECT_EQ(Queue("late", "u", *store_, cap), JobAdmission::kTooManyUnfinished);
}

}  // namespace
}  // namespace datasite::store

namespace datasite::store {
namespace {

// Under scope "user:u" (owner "owner:u") unless told.
Store::IdempotentRun RunOk(Store& store, const std::string& key,
                           const std::function<IdempotentAnswer()>& handler,
                           const std::string& scope = "user:u") {
  auto run = store.RunIdempotent(scope, key, "owner:u", handler);
  EXPECT_TRUE(run.ok()) << run.status().ToString();
  return run.ok() ? *run : Store::IdempotentRun::kNoChange;
}

IdempotentAnswer Answer(const std::string& body) {
  IdempotentAnswer a;
  a.fingerprint = "fp";
  a.status = 201;
  a.content_type = "application/json";
  a.body = body;
  a.created_at = 100;
  return a;
}

// A keyed request's changes are invisible to everyone else until its answer is kept with them,
// whether they were made in a transaction of their own (InsertUser) or by a single statement
// (InsertSession); then both and the answer are there at once.
TEST_F(StoreTest, IdempotentChangesCommitWithTheirAnswer) {
  int64_t users_seen = -1, sessions_seen = -1;
  auto run = RunOk(*store_, "k1", [&] {
    EXPECT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
    EXPECT_TRUE(store_->InsertSession(MakeSession("t1", "u1")).ok());
    EXPECT_TRUE(store_->GetUserById("u1").ok());  // its own changes it sees
    users_seen = RawInt("SELECT count(*) FROM users");
    sessions_seen = RawInt("SELECT count(*) FROM sessions");
    return Answer("{\"id\": \"u1\"}");
  });
  EXPECT_EQ(run, Store::IdempotentRun::kCommitted);
  EXPECT_EQ(users_seen, 0);
  EXPECT_EQ(sessions_seen, 0);
  EXPECT_EQ(RawInt("SELECT count(*) FROM users"), 1);
  EXPECT_EQ(RawInt("SELECT count(*) FROM sessions"), 1);
  auto kept = store_->GetIdempotentAnswer("user:u", "k1");
  ASSERT_TRUE(kept.ok() && kept->has_value());
  EXPECT_EQ((*kept)->status, 201);
  EXPECT_EQ((*kept)->fingerprint, "fp");
  EXPECT_EQ((*kept)->body, std::optional<std::string>("{\"id\": \"u1\"}"));
  // Keys are per scope.
  EXPECT_FALSE(store_->GetIdempotentAnswer("user:other", "k1")->has_value());
}

// idempotency_rows: every change sent with a new key kept its answer for 24 h, with no cap per
// user: a scientist grew the table at request rate. Then (cold review) the cap was per session, and
// a new login started a new count. An owner keeps its newest answers over all its scopes.
TEST_F(StoreTest, AnOwnerKeepsItsNewestIdempotentAnswersOverItsScopes) {
  const int64_t extra = 3;
  for (int64_t i = 0; i < kMaxIdempotentAnswersPerUser + extra; ++i) {
    const std::string id = "s" + std::to_string(i);
    auto run = RunOk(
        *store_, "k" + std::to_string(i),
        [&] {
          EXPECT_TRUE(store_->InsertUser(MakeUser(id, id + "@example.org", "S")).ok());
          IdempotentAnswer a = Answer("{}");
          a.created_at = 100 + i;
          return a;
        },
        i % 2 == 0 ? "session:a" : "session:b");
    ASSERT_EQ(run, Store::IdempotentRun::kCommitted) << i;
  }
  auto other = store_->RunIdempotent("session:c", "k0", "owner:other", [&] {
    EXPECT_TRUE(store_->InsertUser(MakeUser("o", "o@example.org", "O")).ok());
    return Answer("{}");
  });
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(RawInt("SELECT count(*) FROM idempotency_keys WHERE owner = 'owner:u'"),
            kMaxIdempotentAnswersPerUser);
  auto kept = [&](int64_t i) {
    return store_
        ->GetIdempotentAnswer(i % 2 == 0 ? "session:a" : "session:b", "k" + std::to_string(i))
        ->has_value();
  };
  for (int64_t i = 0; i < extra; ++i) EXPECT_FALSE(kept(i)) << i;
  EXPECT_TRUE(kept(extra));
  EXPECT_TRUE(kept(kMaxIdempotentAnswersPerUser + extra - 1));
  EXPECT_TRUE(store_->GetIdempotentAnswer("session:c", "k0")->has_value());
  EXPECT_EQ(RawInt("SELECT count(*) FROM users WHERE name IN ('S', 'O')"),
            kMaxIdempotentAnswersPerUser + extra + 1);
}

// The upgrade to version 26 keeps the answers kept before it (no owner: forgotten after their day).
// A transaction's BEGIN goes to PostgreSQL with its first statement (one round trip, not two):
// when the database dropped the connection meanwhile, that statement fails as unavailable, nothing
// of the transaction is kept, and the next call reconnects.
TEST_F(StoreTest, ATransactionWhoseConnectionWasDroppedFailsAndTheNextCallReconnects) {
  if (!postgres()) GTEST_SKIP() << "a connection to a database server";
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round == 0 ? "a statement prepared before" : "a statement never prepared");
    // This test's database only: other tests' servers share the PostgreSQL server.
    ASSERT_GE(RawInt("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                     "application_name = 'datasite' AND datname = current_database() AND pid <> "
                     "pg_backend_pid()"),
              1);
    const std::string id = "lost" + std::to_string(round);
    Status st = store_->InTransaction([&](Store& tx) -> Status {
      if (round == 0) return tx.InsertUser(MakeUser(id, id + "@example.org", "L"));
      return tx.DeleteUserSessions("u1", "");
    });
    EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
    EXPECT_EQ(RawInt("SELECT count(*) FROM users WHERE id = '" + id + "'"), 0);
    ASSERT_TRUE(store_->InsertUser(MakeUser(id + "b", id + "b@example.org", "B")).ok());
    EXPECT_EQ(RawInt("SELECT count(*) FROM users WHERE id = '" + id + "b'"), 1);
  }
}

// A transaction that runs no statement sends nothing, and one whose first statement fails keeps
// nothing: the store goes on as after any failed statement.
TEST_F(StoreTest, AnEmptyTransactionAndOneWhoseFirstStatementFailsLeaveTheStoreUsable) {
  ASSERT_TRUE(store_->InTransaction([](Store&) { return Status::Ok(); }).ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  Status dup = store_->InTransaction(
      [&](Store& tx) { return tx.InsertUser(MakeUser("u1", "b@example.org", "B")); });
  EXPECT_EQ(dup.code(), StatusCode::kAlreadyExists) << dup.ToString();
  ASSERT_TRUE(store_
                  ->InTransaction([&](Store& tx) {
                    return tx.InsertUser(MakeUser("u2", "c@example.org", "C"));
                  })
                  .ok());
  EXPECT_EQ(RawInt("SELECT count(*) FROM users"), 2);
}

TEST_F(StoreTest, UpgradeKeepsTheIdempotentAnswersKeptBefore) {
  ASSERT_EQ(RunOk(*store_, "k1",
                  [&] {
                    EXPECT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
                    return Answer("before");
                  }),
            Store::IdempotentRun::kCommitted);
  store_.reset();
  RawSql(UndoVersion27(postgres()) + kUndoVersion26 +
         (postgres() ? "UPDATE schema_version SET version = 25" : "PRAGMA user_version = 25"));
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(RawInt(postgres() ? "SELECT version FROM schema_version" : "PRAGMA user_version"),
            kLatestVersion);
  EXPECT_EQ((*store_->GetIdempotentAnswer("user:u", "k1"))->body,
            std::optional<std::string>("before"));
  EXPECT_EQ(RawInt("SELECT count(*) FROM idempotency_keys WHERE owner = ''"), 1);
}

// cold review: answers kept in the same second were ordered by their client-chosen keys, so the
// one just kept could be the one forgotten.
TEST_F(StoreTest, TheAnswerJustKeptIsNeverTheOneForgotten) {
  for (int64_t i = 0; i < kMaxIdempotentAnswersPerUser + 1; ++i) {
    const std::string id = "t" + std::to_string(i);
    // Keys that sort first, all in one second.
    auto run = RunOk(*store_, "a" + std::to_string(100000 - i), [&] {
      EXPECT_TRUE(store_->InsertUser(MakeUser(id, id + "@example.org", "T")).ok());
      return Answer("{}");
    });
    ASSERT_EQ(run, Store::IdempotentRun::kCommitted) << i;
    ASSERT_TRUE(
        store_->GetIdempotentAnswer("user:u", "a" + std::to_string(100000 - i))->has_value())
        << i;
  }
}

TEST_F(StoreTest, AnIdempotentRunThatChangesNothingKeepsNoAnswer) {
  auto run = RunOk(*store_, "k1", [&] {
    EXPECT_FALSE(store_->GetUserById("nobody").ok());
    return Answer("{}");
  });
  EXPECT_EQ(run, Store::IdempotentRun::kNoChange);
  EXPECT_FALSE(store_->GetIdempotentAnswer("user:u", "k1")->has_value());
}

// Two servers ran the same request: the one that kept its answer first stands, the other's
// changes are undone.
TEST_F(StoreTest, AnIdempotentRunWhoseKeyWasAnsweredMeanwhileIsUndone) {
  auto other = db_->Open();
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  auto run = RunOk(*store_, "k1", [&] {
    EXPECT_TRUE(store_->InsertUser(MakeUser("u2", "b@example.org", "B")).ok());
    return Answer("second");
  });
  ASSERT_EQ(run, Store::IdempotentRun::kCommitted);
  run = RunOk(**other, "k1", [&] {
    EXPECT_TRUE((*other)->InsertUser(MakeUser("u3", "c@example.org", "C")).ok());
    return Answer("third");
  });
  EXPECT_EQ(run, Store::IdempotentRun::kLostRace);
  EXPECT_EQ(RawInt("SELECT count(*) FROM users WHERE id = 'u3'"), 0);
  EXPECT_EQ((*store_->GetIdempotentAnswer("user:u", "k1"))->body,
            std::optional<std::string>("second"));
  // The store goes on as before, on both connections.
  EXPECT_TRUE((*other)->InsertUser(MakeUser("u4", "d@example.org", "D")).ok());
  EXPECT_EQ(RawInt("SELECT count(*) FROM users WHERE id = 'u4'"), 1);
}

TEST_F(StoreTest, AnIdempotentRunThatThrowsKeepsNothing) {
  EXPECT_THROW((void)store_->RunIdempotent(
                   "user:u", "k1", "owner:u",
                   [&]() -> IdempotentAnswer {
                     EXPECT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
                     throw std::runtime_error("handler failed");
                   }),
               std::runtime_error);
  EXPECT_EQ(RawInt("SELECT count(*) FROM users"), 0);
  EXPECT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  EXPECT_EQ(RawInt("SELECT count(*) FROM users"), 1);
}

// While a keyed request holds its changes, other threads wait for the store rather than write
// into its transaction.
TEST_F(StoreTest, OtherThreadsWaitForAnIdempotentRunsChanges) {
  std::thread other;
  auto run = RunOk(*store_, "k1", [&] {
    EXPECT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
    other = std::thread(
        [&] { EXPECT_TRUE(store_->InsertUser(MakeUser("u2", "b@example.org", "B")).ok()); });
    return Answer("{}");
  });
  other.join();
  EXPECT_EQ(run, Store::IdempotentRun::kCommitted);
  EXPECT_EQ(RawInt("SELECT count(*) FROM users"), 2);
}

// What must follow committed rows (a file deleted after its row) waits for the commit, and never
// happens for rows rolled back.
TEST_F(StoreTest, AfterCommitWaitsForTheCommitAndSkipsWhatIsRolledBack) {
  std::vector<std::string> ran;
  store_->AfterCommit([&] { ran.push_back("now"); });
  EXPECT_EQ(ran, std::vector<std::string>{"now"});
  ran.clear();
  ASSERT_TRUE(store_
                  ->InTransaction([&](Store& tx) -> Status {
                    RETURN_IF_ERROR(tx.InsertUser(MakeUser("u1", "a@example.org", "A")));
                    tx.AfterCommit([&] { ran.push_back("outer"); });
                    // A nested transaction that holds: what it asked for waits for the outer one.
                    EXPECT_TRUE(tx.InTransaction([&](Store& nested) -> Status {
                                    nested.AfterCommit([&] { ran.push_back("released"); });
                                    return Status::Ok();
                                  }).ok());
                    // A nested transaction that fails: what it asked for goes with it.
                    Status inner = tx.InTransaction([&](Store& nested) -> Status {
                      nested.AfterCommit([&] { ran.push_back("rolled back"); });
                      return InvalidArgumentError("no");
                    });
                    EXPECT_FALSE(inner.ok());
                    EXPECT_TRUE(ran.empty());
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(ran, (std::vector<std::string>{"outer", "released"}));
  ran.clear();
  EXPECT_FALSE(store_
                   ->InTransaction([&](Store& tx) -> Status {
                     tx.AfterCommit([&] { ran.push_back("failed"); });
                     return InvalidArgumentError("no");
                   })
                   .ok());
  EXPECT_TRUE(ran.empty());
  // In a keyed request: after its answer is committed with its changes, not before.
  RunOk(*store_, "k1", [&] {
    EXPECT_TRUE(store_->InsertUser(MakeUser("u2", "b@example.org", "B")).ok());
    store_->AfterCommit([&] { ran.push_back("answered"); });
    EXPECT_TRUE(ran.empty());
    return Answer("{}");
  });
  EXPECT_EQ(ran, std::vector<std::string>{"answered"});
  ran.clear();
  RunOk(*store_, "k1", [&] {  // the key is answered already: this run is undone
    EXPECT_TRUE(store_->InsertUser(MakeUser("u3", "c@example.org", "C")).ok());
    store_->AfterCommit([&] { ran.push_back("undone"); });
    return Answer("{}");
  });
  EXPECT_TRUE(ran.empty());
}

// What was taken ahead of a commit (space counted in memory) is given back when the changes are
// rolled back, and only then.
TEST_F(StoreTest, AfterRollbackRunsOnlyForWhatIsRolledBack) {
  std::vector<std::string> ran;
  store_->AfterRollback([&] { ran.push_back("no transaction"); });
  ASSERT_TRUE(store_
                  ->InTransaction([&](Store& tx) -> Status {
                    RETURN_IF_ERROR(tx.InsertUser(MakeUser("u1", "a@example.org", "A")));
                    tx.AfterRollback([&] { ran.push_back("committed"); });
                    // A nested transaction that fails: its own undo runs, at once.
                    Status inner = tx.InTransaction([&](Store& nested) -> Status {
                      nested.AfterRollback([&] { ran.push_back("inner"); });
                      return InvalidArgumentError("no");
                    });
                    EXPECT_FALSE(inner.ok());
                    EXPECT_EQ(ran, std::vector<std::string>{"inner"});
                    // One that holds: its undo now waits with the outer transaction.
                    EXPECT_TRUE(tx.InTransaction([&](Store& nested) -> Status {
                                    nested.AfterRollback([&] { ran.push_back("released"); });
                                    return Status::Ok();
                                  }).ok());
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(ran, std::vector<std::string>{"inner"});
  ran.clear();
  EXPECT_FALSE(store_
                   ->InTransaction([&](Store& tx) -> Status {
                     tx.AfterRollback([&] { ran.push_back("first"); });
                     EXPECT_TRUE(tx.InTransaction([&](Store& nested) -> Status {
                                     nested.AfterRollback([&] { ran.push_back("second"); });
                                     return Status::Ok();
                                   }).ok());
                     return InvalidArgumentError("no");
                   })
                   .ok());
  EXPECT_EQ(ran, (std::vector<std::string>{"second", "first"}));  // newest first
  ran.clear();
  // In a keyed request whose key was answered already: its run is undone.
  RunOk(*store_, "k1", [&] {
    EXPECT_TRUE(store_->InsertUser(MakeUser("u2", "b@example.org", "B")).ok());
    return Answer("{}");
  });
  EXPECT_TRUE(ran.empty());
  RunOk(*store_, "k1", [&] {
    EXPECT_TRUE(store_->InsertUser(MakeUser("u3", "c@example.org", "C")).ok());
    store_->AfterRollback([&] { ran.push_back("undone"); });
    return Answer("{}");
  });
  EXPECT_EQ(ran, std::vector<std::string>{"undone"});
}

TEST_F(StoreTest, OldIdempotentAnswersAreForgotten) {
  RunOk(*store_, "old", [&] {
    EXPECT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
    return Answer("{}");
  });
  auto deleted = store_->DeleteIdempotentAnswersBefore(101);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 1);
  EXPECT_FALSE(store_->GetIdempotentAnswer("user:u", "old")->has_value());
}

// Grants: a request approved for repeated use, and the jobs admitted under one.
class GrantStoreTest : public StoreTest {
 protected:
  static constexpr int64_t kNow = 1'800'000'000'000;
  static constexpr int64_t kMinute = 60'000;

  void SetUp() override {
    StoreTest::SetUp();
    for (const char* id : {"u", "v", "w"}) {
      ASSERT_TRUE(store_->InsertUser(MakeUser(id, std::string(id) + "@example.org", id)).ok());
    }
    UserCode c;
    c.id = "code";
    c.user_id = "u";
    c.name = "f";
    c.source = "def f(data):\n    return 1\n";
    c.code_hash = "h";
    c.inputs = R"({"data": {"asset_id": "a1"}})";
    c.output_policy = "single_execution";
    ASSERT_TRUE(store_->InsertCode(c).ok());
    CodeRequest r;
    r.id = "req";
    r.code_id = "code";
    r.user_id = "u";
    r.status = "approved";
    ASSERT_TRUE(store_->InsertRequest(r).ok());
  }

  static Grant NewGrant(const std::string& id, std::vector<std::string> users,
                        std::optional<int64_t> per_minute, int64_t created_at = kNow) {
    Grant g;
    g.id = id;
    g.request_id = "req";
    g.code_id = "code";
    g.code_hash = "h";
    g.inputs = R"({"data": {"asset_id": "a1"}})";
    g.per_minute = per_minute;
    g.per_day = 100;
    g.created_by = "owner";
    g.created_at = created_at;
    g.expires_at = created_at + 30 * 86'400'000LL;
    g.user_ids = std::move(users);
    return g;
  }

  // A private run of the fixture's code by `user` under grant `grant` at `at`, checked against
  // `windows`.
  Result<JobAdmission> RunUnder(const std::string& grant, const std::string& user, int64_t at,
                                std::vector<GrantWindow> windows) {
    Job j;
    j.id = "job" + std::to_string(++jobs_);
    j.code_id = "code";
    j.user_id = user;
    j.kind = "private";
    j.inputs = "{}";
    j.created_at = at;
    j.grant_id = grant;
    JobLimits limits;
    limits.grant_windows = std::move(windows);
    return store_->InsertJob(j, limits);
  }

  int jobs_ = 0;
};

TEST_F(GrantStoreTest, AGrantIsReadBackWithItsUsersInOrderAndItsRuns) {
  Grant g = NewGrant("g1", {"u", "w", "v"}, 2);
  ASSERT_TRUE(store_->InsertGrant(g).ok());
  auto read = store_->GetGrant("g1");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->user_ids, (std::vector<std::string>{"u", "w", "v"}));
  EXPECT_EQ(read->per_minute, 2);
  EXPECT_EQ(read->per_hour, std::nullopt);
  EXPECT_EQ(read->per_day, 100);
  EXPECT_EQ(read->inputs, g.inputs);
  EXPECT_EQ(read->code_name, "f");
  EXPECT_EQ(read->expires_at, g.expires_at);
  EXPECT_FALSE(read->revoked_at.has_value());
  EXPECT_EQ(read->runs, 0);
  ASSERT_EQ(*RunUnder("g1", "w", kNow, {{kMinute, 2}}), JobAdmission::kInserted);
  EXPECT_EQ(store_->GetGrant("g1")->runs, 1);
  EXPECT_EQ(store_->GetGrant("nope").status().code(), StatusCode::kNotFound);
}

TEST_F(GrantStoreTest, AGrantNamingAnUnknownUserIsNotKeptAtAll) {
  Grant g = NewGrant("g1", {"u", "ghost"}, 2);
  EXPECT_EQ(store_->InsertGrant(g).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetGrant("g1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(RawInt("SELECT count(*) FROM grant_users"), 0);
}

TEST_F(GrantStoreTest, EachWindowAdmitsItsLimitPerUserAndRoomReturnsAsRunsAgeOut) {
  ASSERT_TRUE(store_->InsertGrant(NewGrant("g1", {"u", "v"}, 2)).ok());
  const std::vector<GrantWindow> w = {{kMinute, 2}, {86'400'000, 3}};
  EXPECT_EQ(*RunUnder("g1", "u", kNow, w), JobAdmission::kInserted);
  EXPECT_EQ(*RunUnder("g1", "u", kNow + 1000, w), JobAdmission::kInserted);
  EXPECT_EQ(*RunUnder("g1", "u", kNow + 2000, w), JobAdmission::kGrantWindowFull);
  // Another user named on it has windows of their own.
  EXPECT_EQ(*RunUnder("g1", "v", kNow + 2000, w), JobAdmission::kInserted);
  // The first run leaves the minute exactly a minute after it was admitted.
  EXPECT_EQ(*RunUnder("g1", "u", kNow + kMinute - 1, w), JobAdmission::kGrantWindowFull);
  EXPECT_EQ(*RunUnder("g1", "u", kNow + kMinute, w), JobAdmission::kInserted);
  // The day's limit of 3 holds though the minute has room.
  EXPECT_EQ(*RunUnder("g1", "u", kNow + 10 * kMinute, w), JobAdmission::kGrantWindowFull);
  auto times = store_->GrantRunTimes("g1", "u", kNow - 1);
  ASSERT_TRUE(times.ok());
  EXPECT_EQ(*times, (std::vector<int64_t>{kNow, kNow + 1000, kNow + kMinute}));
  EXPECT_EQ(store_->GrantRunTimes("g1", "u", kNow)->size(), 2u);  // after `since` only
  // Refused runs left nothing behind.
  EXPECT_EQ(RawInt("SELECT count(*) FROM jobs"), 4);
  JobFilter f;
  f.grant_id = "g1";
  auto page = store_->ListJobs(f);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(page->total, 4);
  EXPECT_EQ(page->items.size(), 4u);
  EXPECT_EQ(page->items[0].grant_id, "g1");
  f.grant_id = "other";
  EXPECT_EQ(store_->ListJobs(f)->total, 0);
  f.grant_id.reset();
  EXPECT_EQ(store_->ListJobs(f)->total, 4);
}

TEST_F(GrantStoreTest, RunsOfOneGrantDoNotCountAgainstAnother) {
  ASSERT_TRUE(store_->InsertGrant(NewGrant("g1", {"u"}, 1)).ok());
  ASSERT_TRUE(store_->InsertGrant(NewGrant("g2", {"u"}, 1)).ok());
  EXPECT_EQ(*RunUnder("g1", "u", kNow, {{kMinute, 1}}), JobAdmission::kInserted);
  EXPECT_EQ(*RunUnder("g2", "u", kNow, {{kMinute, 1}}), JobAdmission::kInserted);
  EXPECT_EQ(*RunUnder("g1", "u", kNow, {{kMinute, 1}}), JobAdmission::kGrantWindowFull);
}

TEST_F(GrantStoreTest, ARevokedOrExpiredGrantAdmitsNothing) {
  Grant g = NewGrant("g1", {"u"}, std::nullopt);
  ASSERT_TRUE(store_->InsertGrant(g).ok());
  EXPECT_EQ(*RunUnder("g1", "u", g.expires_at - 1, {}), JobAdmission::kInserted);
  EXPECT_EQ(*RunUnder("g1", "u", g.expires_at, {}), JobAdmission::kGrantEnded);
  EXPECT_EQ(*RunUnder("missing", "u", kNow, {}), JobAdmission::kGrantEnded);
  ASSERT_TRUE(store_->RevokeGrant("g1", "owner", kNow + 5).ok());
  EXPECT_EQ(*RunUnder("g1", "u", kNow + 6, {}), JobAdmission::kGrantEnded);
  EXPECT_EQ(store_->RevokeGrant("g1", "owner", kNow + 7).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->RevokeGrant("nope", "owner", kNow).code(), StatusCode::kNotFound);
  auto read = store_->GetGrant("g1");
  EXPECT_EQ(read->revoked_at, kNow + 5);  // the first revocation stands
  EXPECT_EQ(read->revoked_by, "owner");
}

TEST_F(GrantStoreTest, AGrantOfADeniedRequestAdmitsNothing) {
  ASSERT_TRUE(store_->InsertGrant(NewGrant("g1", {"u"}, std::nullopt)).ok());
  EXPECT_EQ(*RunUnder("g1", "u", kNow, {}), JobAdmission::kInserted);
  // A denial that raced a second approval adding the grant: the grant itself stays unrevoked.
  ASSERT_TRUE(store_->DecideRequest("req", "denied", "no", "owner", 1).ok());
  EXPECT_EQ(*RunUnder("g1", "u", kNow + 1, {}), JobAdmission::kGrantEnded);
}

TEST_F(GrantStoreTest, RevocationsHoldTheRunsStillGoing) {
  ASSERT_TRUE(store_->InsertGrant(NewGrant("g1", {"u", "v"}, std::nullopt)).ok());
  ASSERT_TRUE(store_->InsertGrant(NewGrant("g2", {"u"}, std::nullopt)).ok());
  ASSERT_EQ(*RunUnder("g1", "v", kNow, {}), JobAdmission::kInserted);  // job1
  ASSERT_EQ(*RunUnder("g2", "u", kNow, {}), JobAdmission::kInserted);  // job2
  JobFilter f;
  f.grant_request_id = "req";
  EXPECT_EQ(store_->ListJobs(f)->total, 2);
  ASSERT_TRUE(store_->RevokeGrant("g1", "owner", kNow + 1).ok());
  EXPECT_TRUE(store_->GetJob("job1")->held);
  EXPECT_FALSE(store_->GetJob("job2")->held);
  ASSERT_TRUE(store_->RevokeRequestGrants("req", "owner", kNow + 2).ok());
  EXPECT_TRUE(store_->GetJob("job2")->held);
  f.grant_request_id = "other";
  EXPECT_EQ(store_->ListJobs(f)->total, 0);
}

TEST_F(GrantStoreTest, OutputChecksAreKeptPerDatasetAndAnUpgradeKeepsTheJobsUnheld) {
  Dataset d;
  d.id = "d1";
  d.name = "census";
  d.uploader_id = "u";
  ASSERT_TRUE(store_->InsertDataset(d).ok());
  EXPECT_EQ(*store_->GetOutputChecks("d1"), "");
  ASSERT_TRUE(store_->SetOutputChecks("d1", R"({"min_cell_count":10})", "owner", 5).ok());
  ASSERT_TRUE(store_->SetOutputChecks("d1", R"({"round_to":5})", "owner", 6).ok());
  EXPECT_EQ(*store_->GetOutputChecks("d1"), R"({"round_to":5})");
  ASSERT_EQ(*RunUnder("g-none", "u", kNow, {}), JobAdmission::kGrantEnded);
  Job j;
  j.id = "plain";
  j.code_id = "code";
  j.user_id = "u";
  j.kind = "mock";
  j.inputs = "{}";
  ASSERT_EQ(*store_->InsertJob(j, {}), JobAdmission::kInserted);
  store_.reset();
  RawSql(std::string(kUndoVersion29) +
         (postgres() ? "UPDATE schema_version SET version = 28" : "PRAGMA user_version = 28"));
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(*store_->GetOutputChecks("d1"), "");  // the table is new
  EXPECT_EQ(store_->GetJob("plain")->held_reason, "");
  ASSERT_TRUE(store_->SetOutputChecks("d1", "", "owner", 7).ok());
  EXPECT_EQ(*store_->GetOutputChecks("d1"), "");
}

TEST_F(GrantStoreTest, ListingsFilterByUserStatusAndHash) {
  ASSERT_TRUE(store_->InsertGrant(NewGrant("old", {"u"}, 1, kNow - 10)).ok());
  ASSERT_TRUE(store_->InsertGrant(NewGrant("new", {"u", "v"}, 1, kNow)).ok());
  Grant expired = NewGrant("expired", {"v"}, 1, kNow - 5);
  expired.expires_at = kNow - 1;
  ASSERT_TRUE(store_->InsertGrant(expired).ok());
  ASSERT_TRUE(store_->RevokeRequestGrants("req", "owner", kNow + 1).ok());  // revokes all three
  ASSERT_TRUE(store_->InsertGrant(NewGrant("live", {"w"}, 1, kNow + 2)).ok());
  auto ids = [](const Result<GrantPage>& page) {
    std::vector<std::string> out;
    for (const auto& g : page->items) out.push_back(g.id);
    return out;
  };
  auto all = store_->ListGrants(std::nullopt, std::nullopt, kNow + 3, 0, 10);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(ids(all), (std::vector<std::string>{"live", "new", "expired", "old"}));
  EXPECT_EQ(all->total, 4);
  EXPECT_EQ(ids(store_->ListGrants("v", std::nullopt, kNow + 3, 0, 10)),
            (std::vector<std::string>{"new", "expired"}));
  EXPECT_EQ(ids(store_->ListGrants(std::nullopt, "active", kNow + 3, 0, 10)),
            (std::vector<std::string>{"live"}));
  EXPECT_EQ(ids(store_->ListGrants(std::nullopt, "revoked", kNow + 3, 0, 10)).size(), 3u);
  // Revoked wins over expired; the live one expires in 30 days.
  EXPECT_TRUE(ids(store_->ListGrants(std::nullopt, "expired", kNow + 3, 0, 10)).empty());
  EXPECT_EQ(ids(store_->ListGrants(std::nullopt, "expired", kNow + 31 * 86'400'000LL, 0, 10)),
            (std::vector<std::string>{"live"}));
  auto second = store_->ListGrants(std::nullopt, std::nullopt, kNow + 3, 1, 2);
  EXPECT_EQ(ids(second), (std::vector<std::string>{"new", "expired"}));
  EXPECT_EQ(second->total, 4);
  auto for_v = store_->GrantsFor("h", "v");
  ASSERT_TRUE(for_v.ok());
  ASSERT_EQ(for_v->size(), 2u);
  EXPECT_EQ((*for_v)[0].id, "new");
  EXPECT_EQ((*for_v)[0].user_ids, (std::vector<std::string>{"u", "v"}));
  EXPECT_TRUE(store_->GrantsFor("other hash", "v")->empty());
}

TEST_F(GrantStoreTest, ADeletedUserLeavesTheGrantsThatNamedThem) {
  ASSERT_TRUE(store_->InsertGrant(NewGrant("g1", {"u", "v"}, 1)).ok());
  ASSERT_TRUE(store_->DeleteUser("v").ok());
  EXPECT_EQ(store_->GetGrant("g1")->user_ids, (std::vector<std::string>{"u"}));
  EXPECT_TRUE(store_->GrantsFor("h", "v")->empty());
}

TEST_F(GrantStoreTest, UpgradeKeepsTheJobsStoredBeforeWithoutAGrant) {
  Job j;
  j.id = "before";
  j.code_id = "code";
  j.user_id = "u";
  j.kind = "private";
  j.inputs = "{}";
  j.created_at = kNow;
  ASSERT_EQ(*store_->InsertJob(j, {}), JobAdmission::kInserted);
  store_.reset();
  RawSql(std::string(kUndoVersion28) +
         (postgres() ? "UPDATE schema_version SET version = 27" : "PRAGMA user_version = 27"));
  ASSERT_NO_FATAL_FAILURE(Open());
  EXPECT_EQ(RawInt(postgres() ? "SELECT version FROM schema_version" : "PRAGMA user_version"),
            kLatestVersion);
  auto read = store_->GetJob("before");
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read->grant_id.has_value());
  ASSERT_TRUE(store_->InsertGrant(NewGrant("g1", {"u"}, 1)).ok());
  EXPECT_EQ(*RunUnder("g1", "u", kNow, {{kMinute, 1}}), JobAdmission::kInserted);
}

TEST_F(StoreTest, ApiEndpointsAreStoredListedUpdatedAndDeleted) {
  ApiEndpoint e;
  e.path = "b.query";
  e.definition = R"({"description":"first"})";
  e.created_by = "owner";
  e.created_at = e.updated_at = 10;
  ASSERT_TRUE(store_->InsertApiEndpoint(e).ok());
  EXPECT_EQ(store_->InsertApiEndpoint(e).code(), StatusCode::kAlreadyExists);
  e.path = "a.query";
  e.created_at = e.updated_at = 20;
  ASSERT_TRUE(store_->InsertApiEndpoint(e).ok());
  auto listed = store_->ListApiEndpoints();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].path, "b.query");  // oldest first, not by name
  EXPECT_EQ((*listed)[1].mock_state, "{}");
  ASSERT_TRUE(store_->UpdateApiEndpoint("a.query", R"({"description":"second"})", 30).ok());
  auto got = store_->GetApiEndpoint("a.query");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->definition, R"({"description":"second"})");
  EXPECT_EQ(got->updated_at, 30);
  EXPECT_EQ(got->created_at, 20);
  EXPECT_EQ(store_->UpdateApiEndpoint("none", "{}", 1).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->DeleteApiEndpoint("b.query").ok());
  EXPECT_EQ(store_->DeleteApiEndpoint("b.query").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetApiEndpoint("b.query").status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, PoolRecordsArePutReplacedListedByKeyAndDeleted) {
  EXPECT_EQ(store_->GetPoolRecord("pool", "ml").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->PutPoolRecord({"pool", "ml", R"({"n":1})", 10}).ok());
  ASSERT_TRUE(store_->PutPoolRecord({"pool", "cpu", R"({"n":2})", 11}).ok());
  ASSERT_TRUE(store_->PutPoolRecord({"image", "ml", R"({"i":1})", 12}).ok());
  ASSERT_TRUE(store_->PutPoolRecord({"pool", "ml", R"({"n":3})", 13}).ok());
  auto got = store_->GetPoolRecord("pool", "ml");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->doc, R"({"n":3})");
  EXPECT_EQ(got->updated_at, 13);
  auto pools = store_->ListPoolRecords("pool");
  ASSERT_TRUE(pools.ok());
  ASSERT_EQ(pools->size(), 2u);
  EXPECT_EQ((*pools)[0].key, "cpu");
  EXPECT_EQ((*pools)[1].key, "ml");
  ASSERT_TRUE(store_->DeletePoolRecord("pool", "ml").ok());
  EXPECT_EQ(store_->GetPoolRecord("pool", "ml").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->GetPoolRecord("image", "ml").ok());
}

TEST_F(StoreTest, ADpPolicyIsSetReplacedAndKeepsItsBoundingKey) {
  EXPECT_EQ(store_->GetDpPolicy("a1").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->SetDpPolicy({"a1", R"({"v":1})", 42, "owner", 10}).ok());
  ASSERT_TRUE(store_->SetDpPolicy({"a1", R"({"v":2})", 99, "owner2", 20}).ok());
  auto got = store_->GetDpPolicy("a1");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->policy, R"({"v":2})");
  EXPECT_EQ(got->bounding_key, 42);  // fixed at first: the same rows count for every query
  EXPECT_EQ(got->updated_by, "owner2");
  EXPECT_EQ(got->updated_at, 20);
  ASSERT_TRUE(store_->DeleteDpPolicy("a1").ok());
  EXPECT_EQ(store_->GetDpPolicy("a1").status().code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, ADpChargeStaysWithinTheUsersAndTheTotalLimitOrWritesNothing) {
  auto release = [](const std::string& id, const std::string& user, int64_t rho, int64_t delta) {
    return DpRelease{id, "a1", user, "{}", R"({"value":1})", rho, delta, 5};
  };
  const DpLimits user{100, 10}, total{150, 1000};
  EXPECT_EQ(*store_->ChargeDpRelease(release("r1", "u1", 60, 1), user, total), true);
  EXPECT_EQ(*store_->ChargeDpRelease(release("r2", "u1", 41, 1), user, total), false);  // 101
  EXPECT_EQ(*store_->ChargeDpRelease(release("r3", "u1", 40, 9), user, total), true);   // 100, 10
  EXPECT_EQ(*store_->ChargeDpRelease(release("r4", "u1", 0, 1), user, total), false);   // delta
  // Another scientist has a budget of their own, but all of them share the total's.
  EXPECT_EQ(*store_->ChargeDpRelease(release("r5", "u2", 51, 1), user, total), false);  // 151
  EXPECT_EQ(*store_->ChargeDpRelease(release("r6", "u2", 50, 1), user, total), true);
  auto rows = store_->ListDpBudgets("a1", "u1");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);  // the all-scientists row, and u1's
  EXPECT_EQ((*rows)[0].user_id, kDpAllScientists);
  EXPECT_EQ((*rows)[0].rho_spent, 150);
  EXPECT_EQ((*rows)[1].rho_spent, 100);
  EXPECT_EQ((*rows)[1].delta_spent, 10);
  auto releases = store_->ListDpReleases("a1", 10);
  ASSERT_TRUE(releases.ok());
  ASSERT_EQ(releases->size(), 3u);  // refused charges left no release
  // An owner's extra raises a row's limit; a reset gives back what it spent.
  ASSERT_TRUE(store_->AdjustDpBudget("a1", "u1", 20, 0, false).ok());
  ASSERT_TRUE(store_->AdjustDpBudget("a1", kDpAllScientists, 20, 0, false).ok());
  EXPECT_EQ(*store_->ChargeDpRelease(release("r7", "u1", 20, 0), user, total), true);
  ASSERT_TRUE(store_->AdjustDpBudget("a1", "u2", 0, 0, true).ok());
  rows = store_->ListDpBudgets("a1", "u2");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->back().rho_spent, 0);
  EXPECT_EQ(rows->front().rho_spent, 170);  // the total is reset separately
}

TEST_F(StoreTest, ConcurrentDpChargesFromManyStoresNeverJointlyOverspend) {
  // 8 stores (processes, on PostgreSQL) race 25 charges each of 7 units for the last 100.
  constexpr int kStores = 8, kEach = 25;
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < kStores; ++i) {
    auto opened = db_->Open();
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    stores.push_back(std::move(opened).value());
  }
  std::atomic<int> charged{0}, failed{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kStores; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < kEach; ++k) {
        DpRelease r{"r" + std::to_string(i) + "-" + std::to_string(k),
                    "a1",
                    "u" + std::to_string(i % 3),
                    "{}",
                    "{}",
                    7,
                    0,
                    1};
        auto ok = stores[static_cast<size_t>(i)]->ChargeDpRelease(r, {1000, 0}, {100, 0});
        if (!ok.ok()) {
          ++failed;
        } else if (*ok) {
          ++charged;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(charged.load(), 14);  // floor(100 / 7)
  auto rows = store_->ListDpBudgets("a1", "");
  ASSERT_TRUE(rows.ok());
  int64_t users = 0;
  for (const auto& row : *rows) {
    if (row.user_id == kDpAllScientists) {
      EXPECT_EQ(row.rho_spent, 98);
    } else {
      users += row.rho_spent;
    }
  }
  EXPECT_EQ(users, 98);
  EXPECT_EQ(store_->ListDpReleases("a1", 100)->size(), 14u);
}

TEST_F(StoreTest, AnApiEndpointsStateIsWrittenOnlyOverTheVersionItWasReadAt) {
  ApiEndpoint e;
  e.path = "a.limit";
  e.definition = "{}";
  e.created_by = "owner";
  ASSERT_TRUE(store_->InsertApiEndpoint(e).ok());
  EXPECT_TRUE(*store_->UpdateApiEndpointState("a.limit", true, 0, R"({"n":1})"));
  // A second call that read version 0 too lost the race: its state is not written.
  EXPECT_FALSE(*store_->UpdateApiEndpointState("a.limit", true, 0, R"({"n":1})"));
  EXPECT_TRUE(*store_->UpdateApiEndpointState("a.limit", true, 1, R"({"n":2})"));
  // Each function keeps its own state and version.
  EXPECT_TRUE(*store_->UpdateApiEndpointState("a.limit", false, 0, R"({"m":1})"));
  auto got = store_->GetApiEndpoint("a.limit");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->private_state, R"({"n":2})");
  EXPECT_EQ(got->private_state_version, 2);
  EXPECT_EQ(got->mock_state, R"({"m":1})");
  EXPECT_EQ(got->mock_state_version, 1);
  EXPECT_FALSE(*store_->UpdateApiEndpointState("gone", true, 0, "{}"));
}

}  // namespace
}  // namespace datasite::store
