// The store's notifications, mail outbox, mail settings and password resets.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "store/store.h"
#include "store/test_database.h"

namespace datasite::store {
namespace {

class NotificationStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<TestDatabase>();
    auto opened = db_->Open();
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
    ASSERT_TRUE(store_->InsertUser(MakeUser("u1", "a@example.org", "Ann")).ok());
    ASSERT_TRUE(store_->InsertUser(MakeUser("u2", "b@example.org", "Bob")).ok());
  }
  void TearDown() override {
    store_.reset();
    db_.reset();
  }

  static User MakeUser(const std::string& id, const std::string& email, const std::string& name) {
    User u;
    u.id = id;
    u.email = email;
    u.name = name;
    u.role = 2;
    u.password_hash = "$argon2id$fake";
    return u;
  }
  static Notification MakeNote(const std::string& id, const std::string& user_id) {
    Notification n;
    n.id = id;
    n.user_id = user_id;
    n.from_id = "u2";
    n.kind = "request.new";
    n.subject = "New request";
    n.link_kind = "request";
    n.link_id = "r-" + id;
    n.created_at = 100;
    return n;
  }
  static OutboxMail MakeMail(const std::string& to, int64_t not_before, bool batchable = true) {
    OutboxMail m;
    m.recipient = to;
    m.kind = "request.new";
    m.subject = "s";
    m.text = "t";
    m.html = "h";
    m.batchable = batchable;
    m.created_at = not_before;
    m.not_before = not_before;
    return m;
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<Store> store_;
};

TEST_F(NotificationStoreTest, NotificationsListOldestFirstPerUser) {
  ASSERT_TRUE(store_->InsertNotification(MakeNote("n1", "u1")).ok());
  ASSERT_TRUE(store_->InsertNotification(MakeNote("n2", "u2")).ok());
  ASSERT_TRUE(store_->InsertNotification(MakeNote("n3", "u1")).ok());
  auto page = store_->ListNotifications("u1", 0, 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->total, 2);
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].id, "n1");
  EXPECT_EQ(page->items[1].id, "n3");
  EXPECT_EQ(page->items[0].from_name, "Bob");
  EXPECT_FALSE(page->items[0].read);
}

TEST_F(NotificationStoreTest, MarkReadOnlyOwnNotification) {
  ASSERT_TRUE(store_->InsertNotification(MakeNote("n1", "u1")).ok());
  EXPECT_EQ(store_->SetNotificationRead("u2", "n1", true).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetNotification("u2", "n1").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->SetNotificationRead("u1", "n1", true).ok());
  EXPECT_TRUE(store_->GetNotification("u1", "n1")->read);
  ASSERT_TRUE(store_->SetNotificationRead("u1", "n1", false).ok());
  EXPECT_FALSE(store_->GetNotification("u1", "n1")->read);
}

TEST_F(NotificationStoreTest, NotificationRolledBackWithItsTransaction) {
  Status st = store_->InTransaction([&](Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertNotification(MakeNote("n1", "u1")));
    RETURN_IF_ERROR(tx.EnqueueMail(MakeMail("a@example.org", 0)).status());
    return InternalError("the change failed");
  });
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(store_->ListNotifications("u1", 0, 10)->total, 0);
  EXPECT_TRUE(store_->ListOutbox(10)->empty());
}

TEST_F(NotificationStoreTest, DueMailTakesEveryUnsentMailOfADueRecipient) {
  ASSERT_TRUE(store_->EnqueueMail(MakeMail("a@example.org", 1000)).ok());
  ASSERT_TRUE(store_->EnqueueMail(MakeMail("a@example.org", 5000)).ok());
  ASSERT_TRUE(store_->EnqueueMail(MakeMail("b@example.org", 5000)).ok());
  EXPECT_TRUE(store_->DueMail(999, 100)->empty());
  auto due = store_->DueMail(1000, 100);
  ASSERT_TRUE(due.ok());
  ASSERT_EQ(due->size(), 2u);  // both of a@, none of b@
  EXPECT_EQ((*due)[0].recipient, "a@example.org");
  EXPECT_EQ((*due)[1].recipient, "a@example.org");
  ASSERT_TRUE(store_->MarkMailSent({(*due)[0].seq, (*due)[1].seq}, 1001).ok());
  EXPECT_TRUE(store_->DueMail(1001, 100)->empty());
  EXPECT_EQ(store_->DueMail(5000, 100)->size(), 1u);
}

TEST_F(NotificationStoreTest, FailedMailWaitsUntilItsRetry) {
  auto seq = store_->EnqueueMail(MakeMail("a@example.org", 0));
  ASSERT_TRUE(seq.ok());
  ASSERT_TRUE(store_->MarkMailFailed({*seq}, 2000, "connection refused").ok());
  EXPECT_TRUE(store_->DueMail(1999, 100)->empty());
  auto due = store_->DueMail(2000, 100);
  ASSERT_EQ(due->size(), 1u);
  EXPECT_EQ((*due)[0].attempts, 1);
  EXPECT_EQ((*due)[0].last_error, "connection refused");
}

TEST_F(NotificationStoreTest, MailSettingsRoundTripAndDelete) {
  EXPECT_FALSE(store_->GetMailSettings()->has_value());
  MailSettings m{"smtp.example.org",      465, "tls", "user", "s3cret", "ds@example.org",
                 "https://ds.example.org"};
  ASSERT_TRUE(store_->PutMailSettings(m).ok());
  auto got = store_->GetMailSettings();
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->password, "s3cret");
  EXPECT_EQ((*got)->port, 465);
  ASSERT_TRUE(store_->DeleteMailSettings().ok());
  EXPECT_FALSE(store_->GetMailSettings()->has_value());
}

TEST_F(NotificationStoreTest, UserOptOut) {
  EXPECT_TRUE(*store_->UserWantsMail("u1"));
  ASSERT_TRUE(store_->SetUserWantsMail("u1", false).ok());
  ASSERT_TRUE(store_->SetUserWantsMail("u1", false).ok());
  EXPECT_FALSE(*store_->UserWantsMail("u1"));
  EXPECT_TRUE(*store_->UserWantsMail("u2"));
  ASSERT_TRUE(store_->SetUserWantsMail("u1", true).ok());
  EXPECT_TRUE(*store_->UserWantsMail("u1"));
}

TEST_F(NotificationStoreTest, ResetTokenIsSingleUse) {
  ASSERT_TRUE(store_->InsertPasswordReset({"hash1", "u1", "self", 100, 200}).ok());
  auto pending = store_->PendingPasswordResets(150);
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].user_email, "a@example.org");
  auto used = store_->ConsumePasswordReset("hash1", 150);
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(used->user_id, "u1");
  EXPECT_EQ(store_->ConsumePasswordReset("hash1", 151).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->PendingPasswordResets(151)->empty());
}

TEST_F(NotificationStoreTest, ExpiredOrWrongResetTokenIsRefused) {
  ASSERT_TRUE(store_->InsertPasswordReset({"hash1", "u1", "self", 100, 200}).ok());
  EXPECT_EQ(store_->ConsumePasswordReset("hash1", 200).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ConsumePasswordReset("other", 150).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->PendingPasswordResets(200)->empty());
}

TEST_F(NotificationStoreTest, DeletingPendingResetsEndsEveryUnusedTokenOfTheUserOnly) {
  ASSERT_TRUE(store_->InsertPasswordReset({"hash1", "u1", "self", 100, 200}).ok());
  ASSERT_TRUE(store_->InsertPasswordReset({"hash2", "u1", "admin", 110, 200}).ok());
  ASSERT_TRUE(store_->InsertPasswordReset({"hash3", "u2", "self", 100, 200}).ok());
  ASSERT_TRUE(store_->DeletePendingPasswordResets("u1").ok());
  EXPECT_EQ(store_->ConsumePasswordReset("hash1", 150).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ConsumePasswordReset("hash2", 150).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->ConsumePasswordReset("hash3", 150).ok());
  EXPECT_TRUE(store_->DeletePendingPasswordResets("nobody").ok());
}

// A reset mail carries its token in clear: the outbox keeps it only until it is sent, the token
// dies or the user's tokens are revoked, whichever comes first.
OutboxMail ResetMail(const std::string& user_id, int64_t expires_at_ms) {
  OutboxMail m;
  m.recipient = user_id + "@example.org";
  m.user_id = user_id;
  m.kind = "password_reset";
  m.subject = "Reset";
  m.text = "Token: secret-token-text";
  m.html = "<code>secret-token-html</code>";
  m.batchable = false;
  m.expires_at = expires_at_ms;
  return m;
}

TEST_F(NotificationStoreTest, SentResetMailKeepsNoToken) {
  auto reset = store_->EnqueueMail(ResetMail("u1", 200'000));
  auto plain = store_->EnqueueMail(MakeMail("a@example.org", 0));
  ASSERT_TRUE(reset.ok() && plain.ok());
  auto due = store_->DueMail(1000, 100);
  ASSERT_EQ(due->size(), 2u);
  EXPECT_EQ((*due)[0].text, "Token: secret-token-text");  // kept until sent
  EXPECT_EQ((*due)[0].expires_at, 200'000);
  ASSERT_TRUE(store_->MarkMailSent({*reset, *plain}, 1001).ok());
  auto all = store_->ListOutbox(10);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].text, "");
  EXPECT_EQ((*all)[0].html, "");
  EXPECT_EQ((*all)[0].subject, "Reset");
  EXPECT_EQ((*all)[0].sent_at, 1001);
  EXPECT_EQ((*all)[1].text, "t");  // a mail without a secret keeps its body
}

TEST_F(NotificationStoreTest, UnsentResetMailIsDroppedWhenItsTokenDies) {
  ASSERT_TRUE(store_->EnqueueMail(ResetMail("u1", 5000)).ok());
  ASSERT_TRUE(store_->EnqueueMail(ResetMail("u2", 9000)).ok());
  ASSERT_TRUE(store_->EnqueueMail(MakeMail("a@example.org", 0)).ok());
  ASSERT_TRUE(store_->DropExpiredMail(4999).ok());
  EXPECT_EQ(store_->ListOutbox(10)->size(), 3u);
  ASSERT_TRUE(store_->DropExpiredMail(5000).ok());
  auto left = store_->ListOutbox(10);
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[0].user_id, "u2");
  EXPECT_EQ((*left)[1].kind, "request.new");
}

TEST_F(NotificationStoreTest, RevokingResetsDropsTheirUnsentMailsOnly) {
  auto sent = store_->EnqueueMail(ResetMail("u1", 9000));
  ASSERT_TRUE(sent.ok());
  ASSERT_TRUE(store_->MarkMailSent({*sent}, 10).ok());
  ASSERT_TRUE(store_->EnqueueMail(ResetMail("u1", 9000)).ok());
  ASSERT_TRUE(store_->EnqueueMail(ResetMail("u2", 9000)).ok());
  ASSERT_TRUE(store_->DeletePendingPasswordResets("u1").ok());
  auto left = store_->ListOutbox(10);
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[0].seq, *sent);  // the record that it went out stays, blank
  EXPECT_EQ((*left)[0].text, "");
  EXPECT_EQ((*left)[1].user_id, "u2");
}

TEST_F(NotificationStoreTest, DeletingAUserDeletesTheirNotificationsAndResets) {
  ASSERT_TRUE(store_->InsertNotification(MakeNote("n1", "u1")).ok());
  ASSERT_TRUE(store_->InsertPasswordReset({"hash1", "u1", "self", 100, 200}).ok());
  ASSERT_TRUE(store_->DeleteUser("u1").ok());
  EXPECT_EQ(store_->ListNotifications("u1", 0, 10)->total, 0);
  EXPECT_EQ(store_->ConsumePasswordReset("hash1", 150).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace datasite::store
