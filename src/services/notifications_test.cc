#include "services/notifications.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace datasite::services {
namespace {

// Records what it is asked to send; fails while `down`.
class RecordingTransport : public net::MailTransport {
 public:
  Status Send(const net::SmtpServer&, const net::MailMessage& m) override {
    std::lock_guard lock(mu);
    if (down) return UnavailableError("smtp: connection refused");
    sent.push_back(m);
    return Status::Ok();
  }
  std::mutex mu;
  bool down = false;
  std::vector<net::MailMessage> sent;
};

class NotificationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "notifications_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    store_ = std::move(store::OpenSqliteStore(dir_ + "/datasite.db")).value();
    settings_ = std::make_unique<SettingsService>(*store_, clock_);
    LaunchSettings launch;
    launch.name = "test-site";
    launch.admin_email = "root@example.org";
    ASSERT_TRUE(settings_->Bootstrap(launch).ok());
    NotificationsOptions options;
    options.batch_window_ms = 1000;
    options.retry_base_ms = 1000;
    options.retry_max_ms = 4000;
    notes_ = std::make_unique<Notifications>(*store_, clock_, *settings_, transport_, options);
    owner_ = AddUser("o1", "owner@example.org", "Olive", 32);
    scientist_ = AddUser("s1", "sci@example.org", "Sam", 2);
    admin_.role = auth::Role::kAdmin;
    admin_.user_id = "admin";
    admin_.email = "root@example.org";
    MailConfig c;
    c.host = "127.0.0.1";
    c.port = 2525;
    c.security = "none";
    c.password = "hunter2-secret";
    c.sender = "ds@example.org";
    c.base_url = "https://ds.example.org/";
    ASSERT_TRUE(notes_->EnableMail(admin_, c).ok());
  }
  void TearDown() override {
    notes_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  store::User AddUser(const std::string& id, const std::string& email, const std::string& name,
                      int role) {
    store::User u;
    u.id = id;
    u.email = email;
    u.name = name;
    u.role = role;
    u.password_hash = "x";
    EXPECT_TRUE(store_->InsertUser(u).ok());
    return u;
  }
  Status NewRequest(const std::string& id) {
    store::CodeRequest r;
    r.id = id;
    r.user_id = scientist_.id;
    return store_->InTransaction(
        [&](store::Store& tx) { return notes_->OnNewRequest(tx, r, "my_func"); });
  }
  void Pump() {  // the sender's one pass, with the fake clock (no thread)
    notes_->SendDueForTest();
  }

  std::string dir_;
  FakeClock clock_;
  RecordingTransport transport_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<SettingsService> settings_;
  std::unique_ptr<Notifications> notes_;
  store::User owner_, scientist_;
  Principal admin_;
};

TEST_F(NotificationsTest, ManyRequestsInOneWindowMakeOneMail) {
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(NewRequest("r" + std::to_string(i)).ok());
  EXPECT_EQ(store_->ListNotifications(owner_.id, 0, 1000)->total, 100);
  Pump();
  EXPECT_TRUE(transport_.sent.empty());  // the window is still open
  clock_.AdvanceMillis(1000);
  Pump();
  ASSERT_EQ(transport_.sent.size(), 1u);
  EXPECT_EQ(transport_.sent[0].to, "owner@example.org");
  EXPECT_NE(transport_.sent[0].subject.find("100 notifications"), std::string::npos);
  EXPECT_NE(transport_.sent[0].text.find("https://ds.example.org/api/v1/requests/r0"),
            std::string::npos);
  clock_.AdvanceMillis(60'000);
  Pump();
  EXPECT_EQ(transport_.sent.size(), 1u);  // sent once
}

TEST_F(NotificationsTest, DownServerLosesNothingAndBacksOff) {
  transport_.down = true;
  ASSERT_TRUE(NewRequest("r1").ok());
  clock_.AdvanceMillis(1000);
  Pump();
  auto outbox = store_->ListOutbox(10);
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_EQ((*outbox)[0].attempts, 1);
  EXPECT_EQ((*outbox)[0].sent_at, 0);
  EXPECT_EQ((*outbox)[0].last_error.find("hunter2"), std::string::npos);
  clock_.AdvanceMillis(1000);
  Pump();
  EXPECT_EQ((*store_->ListOutbox(10))[0].attempts, 2);
  transport_.down = false;
  clock_.AdvanceMillis(1000);
  Pump();
  EXPECT_TRUE(transport_.sent.empty());  // the second retry waits 2 s
  clock_.AdvanceMillis(1000);
  Pump();
  ASSERT_EQ(transport_.sent.size(), 1u);
  EXPECT_NE((*store_->ListOutbox(10))[0].sent_at, 0);
}

TEST_F(NotificationsTest, OptedOutUserGetsNoMailButTheInAppNote) {
  Principal owner;
  owner.role = auth::Role::kDataOwner;
  owner.user_id = owner_.id;
  ASSERT_TRUE(notes_->SetWantsMail(owner, false).ok());
  ASSERT_TRUE(NewRequest("r1").ok());
  EXPECT_EQ(store_->ListNotifications(owner_.id, 0, 10)->total, 1);
  EXPECT_TRUE(store_->ListOutbox(10)->empty());
}

TEST_F(NotificationsTest, MailSettingsNeverShowThePassword) {
  auto view = notes_->GetMailConfig(admin_);
  ASSERT_TRUE(view.ok());
  EXPECT_TRUE(view->password_set);
  EXPECT_TRUE(view->settings->password.empty());
  Principal owner;
  owner.role = auth::Role::kDataOwner;
  owner.user_id = owner_.id;
  EXPECT_EQ(notes_->GetMailConfig(owner).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(NotificationsTest, PlainSmtpOnlyToLoopback) {
  MailConfig c;
  c.host = "smtp.example.org";
  c.security = "none";
  c.sender = "ds@example.org";
  EXPECT_EQ(notes_->EnableMail(admin_, c).status().code(), StatusCode::kInvalidArgument);
  c.security = "starttls";
  EXPECT_TRUE(notes_->EnableMail(admin_, c).ok());
}

TEST_F(NotificationsTest, NamesAreEscapedInHtml) {
  store::User evil = AddUser("e1", "evil@example.org", "<script>x</script>", 2);
  ASSERT_TRUE(
      store_->InTransaction([&](store::Store& tx) { return notes_->OnNewAccount(tx, evil); }).ok());
  auto outbox = store_->ListOutbox(10);
  ASSERT_EQ(outbox->size(), 1u);
  EXPECT_EQ((*outbox)[0].html.find("<script>"), std::string::npos);
  EXPECT_NE((*outbox)[0].html.find("&lt;script&gt;"), std::string::npos);
}

}  // namespace
}  // namespace datasite::services
