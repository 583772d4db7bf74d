#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "store/store.h"

namespace datasite::store {
namespace {

// Each test gets its own directory holding a fresh database file.
class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "sqlite_store_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/datasite.db";
    Open();
  }

  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void Open() {
    auto opened = OpenSqliteStore(path_);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

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

  std::string dir_;
  std::string path_;
  std::unique_ptr<Store> store_;
};

TEST_F(SqliteStoreTest, InsertedUserIsFoundById) {
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

TEST_F(SqliteStoreTest, InsertedUserIsFoundByEmail) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "jane@example.org", "Jane")).ok());
  auto got = store_->GetUserByEmail("jane@example.org");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->id, "u1");
}

TEST_F(SqliteStoreTest, MissingUserIsNotFound) {
  EXPECT_EQ(store_->GetUserById("nobody").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetUserByEmail("nobody@example.org").status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, DuplicateEmailIsAlreadyExists) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "jane@example.org", "Jane")).ok());
  Status s = store_->InsertUser(MakeUser("u2", "jane@example.org", "Other Jane"));
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists) << s.ToString();
  EXPECT_EQ(store_->GetUserById("u2").status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, DuplicateIdIsAlreadyExists) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  EXPECT_EQ(store_->InsertUser(MakeUser("u1", "b@example.org", "B")).code(),
            StatusCode::kAlreadyExists);
}

TEST_F(SqliteStoreTest, UpdateUserChangesFields) {
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

TEST_F(SqliteStoreTest, UpdateUserEmailClashIsAlreadyExists) {
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

TEST_F(SqliteStoreTest, UpdateMissingUserIsNotFound) {
  EXPECT_EQ(store_->UpdateUser(MakeUser("ghost", "ghost@example.org", "Ghost")).code(),
            StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, DeleteUserRemovesIt) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  ASSERT_TRUE(store_->DeleteUser("u1").ok());
  EXPECT_EQ(store_->GetUserById("u1").status().code(), StatusCode::kNotFound);
  // The email is free again.
  EXPECT_TRUE(store_->InsertUser(MakeUser("u2", "a@example.org", "A again")).ok());
}

TEST_F(SqliteStoreTest, DeleteMissingUserIsNotFound) {
  EXPECT_EQ(store_->DeleteUser("ghost").code(), StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, ListUsersPagesOldestFirstWithTotal) {
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

TEST_F(SqliteStoreTest, ListUsersTiesKeepInsertionOrder) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("zz", "a@example.org", "A", 1000)).ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("aa", "b@example.org", "B", 1000)).ok());
  auto page = store_->ListUsers("", 0, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].id, "zz");
  EXPECT_EQ(page->items[1].id, "aa");
}

TEST_F(SqliteStoreTest, ListUsersOnEmptyStore) {
  auto page = store_->ListUsers("", 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 0);
  EXPECT_TRUE(page->items.empty());
}

TEST_F(SqliteStoreTest, ListUsersSearchesEmailCaseInsensitively) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "alice@example.org", "First")).ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("u2", "bob@example.org", "Second")).ok());
  auto page = store_->ListUsers("ALICE@", 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 1);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].id, "u1");
}

TEST_F(SqliteStoreTest, ListUsersSearchesNameCaseInsensitively) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "Jane Doe")).ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("u2", "b@example.org", "John Smith")).ok());
  auto page = store_->ListUsers("jAnE d", 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 1);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].id, "u1");
}

TEST_F(SqliteStoreTest, ListUsersSearchTotalCountsAllMatches) {
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

TEST_F(SqliteStoreTest, ListUsersSearchTreatsPercentLiterally) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "100% sure")).ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("u2", "b@example.org", "100 sure")).ok());
  auto page = store_->ListUsers("%", 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 1);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].id, "u1");
}

TEST_F(SqliteStoreTest, ListUsersSearchTreatsUnderscoreLiterally) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a_b@example.org", "One")).ok());
  ASSERT_TRUE(store_->InsertUser(MakeUser("u2", "axb@example.org", "Two")).ok());
  auto page = store_->ListUsers("a_b", 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 1);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].id, "u1");
}

TEST_F(SqliteStoreTest, ListUsersSearchWithoutMatchIsEmpty) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  auto page = store_->ListUsers("zzz", 0, 10);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->total, 0);
  EXPECT_TRUE(page->items.empty());
}

TEST_F(SqliteStoreTest, SessionRoundTrips) {
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

TEST_F(SqliteStoreTest, GuestSessionHasNoUser) {
  ASSERT_TRUE(store_->InsertSession(MakeSession("guest", std::nullopt)).ok());
  auto got = store_->GetSession("guest");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->user_id.has_value());
}

TEST_F(SqliteStoreTest, MissingSessionIsNotFound) {
  EXPECT_EQ(store_->GetSession("nope").status().code(), StatusCode::kNotFound);
}

TEST_F(SqliteStoreTest, SessionForUnknownUserIsRefused) {
  EXPECT_FALSE(store_->InsertSession(MakeSession("t", "ghost")).ok());
  EXPECT_FALSE(SessionExists("t"));
}

TEST_F(SqliteStoreTest, DeleteSessionRemovesIt) {
  ASSERT_TRUE(store_->InsertSession(MakeSession("t1", std::nullopt)).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("t2", std::nullopt)).ok());
  ASSERT_TRUE(store_->DeleteSession("t1").ok());
  EXPECT_FALSE(SessionExists("t1"));
  EXPECT_TRUE(SessionExists("t2"));
}

TEST_F(SqliteStoreTest, AuthVersionMovesOnEveryUserOrSessionUpdateOrDelete) {
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

TEST_F(SqliteStoreTest, AuthVersionMovesEvenWhenAnUpdateFails) {
  // The version moves before the change, so a failed write can only cost a cache miss.
  int64_t before = store_->AuthVersion();
  EXPECT_EQ(store_->UpdateUser(MakeUser("ghost", "g@example.org", "G")).code(),
            StatusCode::kNotFound);
  EXPECT_NE(store_->AuthVersion(), before);
}

TEST_F(SqliteStoreTest, DeletingUserDeletesItsSessions) {
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

TEST_F(SqliteStoreTest, DeleteUserSessionsKeepsTheNamedOne) {
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

TEST_F(SqliteStoreTest, DeleteUserSessionsWithEmptyKeepDeletesAll) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("s1", "u1")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("s2", "u1")).ok());
  ASSERT_TRUE(store_->DeleteUserSessions("u1", "").ok());
  EXPECT_FALSE(SessionExists("s1"));
  EXPECT_FALSE(SessionExists("s2"));
}

TEST_F(SqliteStoreTest, DeleteExpiredSessionsKeepsLiveOnes) {
  ASSERT_TRUE(store_->InsertSession(MakeSession("past", std::nullopt, 4000)).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("now", std::nullopt, 5000)).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("future", std::nullopt, 5001)).ok());
  ASSERT_TRUE(store_->DeleteExpiredSessions(5000).ok());
  EXPECT_FALSE(SessionExists("past"));
  EXPECT_FALSE(SessionExists("now"));  // expires_at == now counts as expired
  EXPECT_TRUE(SessionExists("future"));
}

TEST_F(SqliteStoreTest, CountGuestSessionsCountsLiveGuestsOnly) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("user", "u1", 9000)).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("expired", std::nullopt, 5000)).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("g1", std::nullopt, 9000)).ok());
  ASSERT_TRUE(store_->InsertSession(MakeSession("g2", std::nullopt, 9000)).ok());
  EXPECT_EQ(*store_->CountGuestSessions(5000), 2);
}

TEST_F(SqliteStoreTest, SettingsAbsentAtFirst) {
  auto got = store_->GetSettings();
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(SqliteStoreTest, SettingsRoundTrip) {
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

TEST_F(SqliteStoreTest, PutSettingsReplacesTheRow) {
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

TEST_F(SqliteStoreTest, IdentityAbsentAtFirst) {
  auto got = store_->GetIdentity();
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(SqliteStoreTest, IdentityRoundTripsRawKeys) {
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

TEST_F(SqliteStoreTest, AuditIsReturnedNewestFirst) {
  ASSERT_TRUE(store_->AppendAudit({1, "system", "a", "t1", ""}).ok());
  ASSERT_TRUE(store_->AppendAudit({2, "user:u1", "b", "t2", "d"}).ok());
  ASSERT_TRUE(store_->AppendAudit({3, "guest", "c", "t3", ""}).ok());
  auto got = store_->RecentAudit(2);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].action, "c");
  EXPECT_EQ((*got)[1].action, "b");
  EXPECT_EQ((*got)[1].actor, "user:u1");
  EXPECT_EQ((*got)[1].detail, "d");
}

TEST_F(SqliteStoreTest, DataSurvivesReopen) {
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

TEST_F(SqliteStoreTest, ForeignKeysStayOnAfterReopen) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  store_.reset();
  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_TRUE(store_->InsertSession(MakeSession("s1", "u1")).ok());
  ASSERT_TRUE(store_->DeleteUser("u1").ok());
  EXPECT_FALSE(SessionExists("s1"));
}

TEST_F(SqliteStoreTest, CheckIntegrityIsOk) {
  ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "A")).ok());
  Status s = store_->CheckIntegrity();
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(SqliteStoreTest, OpenInMissingDirectoryFails) {
  auto opened = OpenSqliteStore(dir_ + "/no/such/dir/datasite.db");
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().code(), StatusCode::kOk);
  EXPECT_FALSE(opened.status().message().empty());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/no"));
}

TEST_F(SqliteStoreTest, NewerSchemaIsFailedPrecondition) {
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);

  auto opened = OpenSqliteStore(path_);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(opened.status().message().find("99"), std::string::npos) << opened.status().message();
}

TEST_F(SqliteStoreTest, FreshDatabaseGetsCurrentSchemaVersion) {
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
TEST_F(SqliteStoreTest, ReusedStatementsStartAfreshWithNewBindings) {
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
