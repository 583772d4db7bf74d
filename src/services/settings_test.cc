#include "services/settings.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "auth/role.h"
#include "core/clock.h"
#include "core/random.h"
#include "store/store.h"

namespace datasite::services {
namespace {

using auth::Role;

// Each test gets its own SQLite database in a fresh temp directory and a fake clock.
class SettingsServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(InitCrypto()); }

  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "settings_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto opened = store::OpenSqliteStore(dir_ + "/datasite.db");
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  void TearDown() override {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  static LaunchSettings Launch(const std::string& name = "my_server") {
    LaunchSettings l;
    l.name = name;
    l.admin_email = "info@example.org";
    return l;
  }

  static Principal As(Role role) {
    Principal p;
    p.role = role;
    p.user_id = "00000000-0000-4000-8000-000000000000";
    return p;
  }

  store::Settings StoredSettings() {
    auto s = store_->GetSettings();
    EXPECT_TRUE(s.ok());
    EXPECT_TRUE(s.ok() && s->has_value());
    return s.ok() && s->has_value() ? **s : store::Settings{};
  }

  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(SettingsServiceTest, BootstrapCreatesIdentity) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch()).ok());
  const store::Identity& id = service.identity();
  EXPECT_TRUE(IsUuid(id.server_id)) << id.server_id;
  EXPECT_EQ(id.verify_key.size(), 32u);
  EXPECT_EQ(id.signing_key.size(), 64u);
  EXPECT_EQ(id.created_at, clock_.NowSeconds());
  // libsodium's ed25519 secret key ends with the public key.
  EXPECT_EQ(id.signing_key.substr(32), id.verify_key);
  auto stored = store_->GetIdentity();
  ASSERT_TRUE(stored.ok());
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ((*stored)->server_id, id.server_id);
  EXPECT_EQ((*stored)->verify_key, id.verify_key);
  EXPECT_EQ((*stored)->signing_key, id.signing_key);
}

TEST_F(SettingsServiceTest, BootstrapCreatesDefaultSettings) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch("my_server")).ok());
  store::Settings s = service.Get();
  EXPECT_EQ(s.id, service.identity().server_id);
  EXPECT_EQ(s.name, "my_server");
  EXPECT_EQ(s.organization, "OpenMined");
  EXPECT_EQ(s.description, "This is the default description for a Datasite Server.");
  EXPECT_EQ(s.server_type, "datasite");
  EXPECT_EQ(s.server_side_type, "high");
  EXPECT_EQ(s.admin_email, "info@example.org");
  EXPECT_EQ(s.deployed_on, FormatIsoDate(clock_.NowSeconds()));
  EXPECT_FALSE(s.signup_enabled);
  EXPECT_FALSE(s.association_request_auto_approval);
  EXPECT_TRUE(s.allow_guest_sessions);
  EXPECT_TRUE(s.welcome_markdown.empty());
  // What the service holds is what the store holds.
  store::Settings stored = StoredSettings();
  EXPECT_EQ(stored.name, s.name);
  EXPECT_EQ(stored.organization, s.organization);
  EXPECT_EQ(stored.id, s.id);
}

TEST_F(SettingsServiceTest, SecondBootstrapKeepsIdentity) {
  store::Identity first;
  {
    SettingsService service(*store_, clock_);
    ASSERT_TRUE(service.Bootstrap(Launch()).ok());
    first = service.identity();
  }
  clock_.AdvanceMillis(86'400'000);
  SettingsService again(*store_, clock_);
  ASSERT_TRUE(again.Bootstrap(Launch()).ok());
  EXPECT_EQ(again.identity().server_id, first.server_id);
  EXPECT_EQ(again.identity().verify_key, first.verify_key);
  EXPECT_EQ(again.identity().signing_key, first.signing_key);
  EXPECT_EQ(again.identity().created_at, first.created_at);
  EXPECT_EQ(again.Get().id, first.server_id);
}

TEST_F(SettingsServiceTest, SecondBootstrapKeepsAdminChanges) {
  {
    SettingsService service(*store_, clock_);
    ASSERT_TRUE(service.Bootstrap(Launch()).ok());
    SettingsPatch patch;
    patch.organization = "Acme";
    patch.description = "Ours";
    patch.signup_enabled = true;
    ASSERT_TRUE(service.Update(As(Role::kAdmin), patch).ok());
  }
  clock_.AdvanceMillis(86'400'000);
  SettingsService again(*store_, clock_);
  LaunchSettings launch = Launch();
  launch.admin_email = "someone-else@example.org";  // used at first start only
  ASSERT_TRUE(again.Bootstrap(launch).ok());
  store::Settings s = again.Get();
  EXPECT_EQ(s.organization, "Acme");
  EXPECT_EQ(s.description, "Ours");
  EXPECT_TRUE(s.signup_enabled);
  EXPECT_EQ(s.admin_email, "info@example.org");
  EXPECT_EQ(s.deployed_on, FormatIsoDate(clock_.NowSeconds() - 86'400));
}

TEST_F(SettingsServiceTest, LaunchOverridesApplyWhenGiven) {
  SettingsService service(*store_, clock_);
  LaunchSettings launch = Launch();
  launch.server_type = "gateway";
  launch.server_side_type = "low";
  launch.signup_enabled = true;
  launch.association_request_auto_approval = true;
  ASSERT_TRUE(service.Bootstrap(launch).ok());
  store::Settings s = service.Get();
  EXPECT_EQ(s.server_type, "gateway");
  EXPECT_EQ(s.server_side_type, "low");
  EXPECT_TRUE(s.signup_enabled);
  EXPECT_TRUE(s.association_request_auto_approval);
}

TEST_F(SettingsServiceTest, AbsentLaunchOverridesKeepStoredValues) {
  {
    SettingsService service(*store_, clock_);
    LaunchSettings launch = Launch();
    launch.server_type = "gateway";
    launch.server_side_type = "low";
    launch.signup_enabled = true;
    launch.association_request_auto_approval = true;
    ASSERT_TRUE(service.Bootstrap(launch).ok());
  }
  SettingsService again(*store_, clock_);
  ASSERT_TRUE(again.Bootstrap(Launch()).ok());
  store::Settings s = again.Get();
  EXPECT_EQ(s.server_type, "gateway");
  EXPECT_EQ(s.server_side_type, "low");
  EXPECT_TRUE(s.signup_enabled);
  EXPECT_TRUE(s.association_request_auto_approval);
}

TEST_F(SettingsServiceTest, GivenLaunchOverridesReplaceStoredValues) {
  {
    SettingsService service(*store_, clock_);
    LaunchSettings launch = Launch();
    launch.signup_enabled = true;
    ASSERT_TRUE(service.Bootstrap(launch).ok());
  }
  SettingsService again(*store_, clock_);
  LaunchSettings launch = Launch("renamed");
  launch.signup_enabled = false;
  ASSERT_TRUE(again.Bootstrap(launch).ok());
  EXPECT_FALSE(again.Get().signup_enabled);
  EXPECT_EQ(again.Get().name, "renamed");
  EXPECT_FALSE(StoredSettings().signup_enabled);
}

// `datasite serve` without --name: a replica keeps the name an admin gave the datasite.
TEST_F(SettingsServiceTest, LaunchWithoutNameKeepsTheStoredName) {
  {
    SettingsService service(*store_, clock_);
    ASSERT_TRUE(service.Bootstrap(Launch("first")).ok());
    ASSERT_TRUE(service.Update(As(Role::kAdmin), SettingsPatch{.name = "renamed"}).ok());
  }
  SettingsService replica(*store_, clock_);
  LaunchSettings launch = Launch();
  launch.name.reset();
  ASSERT_TRUE(replica.Bootstrap(launch).ok());
  EXPECT_EQ(replica.Get().name, "renamed");
  EXPECT_EQ(StoredSettings().name, "renamed");
}

TEST_F(SettingsServiceTest, FirstStartWithoutNameIsRefused) {
  SettingsService service(*store_, clock_);
  LaunchSettings launch = Launch();
  launch.name.reset();
  Status st = service.Bootstrap(launch);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  auto stored = store_->GetSettings();
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored->has_value());
}

TEST_F(SettingsServiceTest, BootstrapRefusesUnknownServerType) {
  SettingsService service(*store_, clock_);
  LaunchSettings launch = Launch();
  launch.server_type = "mainframe";
  EXPECT_EQ(service.Bootstrap(launch).code(), StatusCode::kInvalidArgument);
  launch.server_type.reset();
  launch.server_side_type = "middle";
  EXPECT_EQ(service.Bootstrap(launch).code(), StatusCode::kInvalidArgument);
}

TEST_F(SettingsServiceTest, EnclaveForcesSignup) {
  SettingsService service(*store_, clock_);
  LaunchSettings launch = Launch();
  launch.server_type = "enclave";
  launch.signup_enabled = false;
  ASSERT_TRUE(service.Bootstrap(launch).ok());
  EXPECT_TRUE(service.Get().signup_enabled);
  EXPECT_TRUE(StoredSettings().signup_enabled);
}

TEST_F(SettingsServiceTest, UpdateByNonAdminDenied) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch()).ok());
  SettingsPatch patch;
  patch.organization = "Acme";
  for (Role role : {Role::kNone, Role::kGuest, Role::kDataScientist, Role::kDataOwner}) {
    EXPECT_EQ(service.Update(As(role), patch).status().code(), StatusCode::kPermissionDenied)
        << auth::RoleName(role);
  }
  EXPECT_EQ(service.Get().organization, "OpenMined");
  EXPECT_EQ(StoredSettings().organization, "OpenMined");
}

TEST_F(SettingsServiceTest, UpdateByAdminChangesEveryField) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch()).ok());
  SettingsPatch patch;
  patch.name = "new_name";
  patch.organization = "Acme";
  patch.description = "Described";
  patch.signup_enabled = true;
  patch.notifications_enabled = true;
  patch.admin_email = " Boss@Example.org ";
  patch.association_request_auto_approval = true;
  patch.allow_guest_sessions = false;
  patch.welcome_markdown = "# Hello";
  auto r = service.Update(As(Role::kAdmin), patch);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (const store::Settings& s : {*r, service.Get(), StoredSettings()}) {
    EXPECT_EQ(s.name, "new_name");
    EXPECT_EQ(s.organization, "Acme");
    EXPECT_EQ(s.description, "Described");
    EXPECT_TRUE(s.signup_enabled);
    EXPECT_TRUE(s.notifications_enabled);
    EXPECT_EQ(s.admin_email, "boss@example.org");
    EXPECT_TRUE(s.association_request_auto_approval);
    EXPECT_FALSE(s.allow_guest_sessions);
    EXPECT_EQ(s.welcome_markdown, "# Hello");
  }
}

TEST_F(SettingsServiceTest, UpdateLeavesAbsentFieldsAlone) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch()).ok());
  SettingsPatch patch;
  patch.description = "Only this";
  ASSERT_TRUE(service.Update(As(Role::kAdmin), patch).ok());
  store::Settings s = service.Get();
  EXPECT_EQ(s.description, "Only this");
  EXPECT_EQ(s.name, "my_server");
  EXPECT_EQ(s.organization, "OpenMined");
  EXPECT_TRUE(s.allow_guest_sessions);
}

TEST_F(SettingsServiceTest, EmptyPatchAnswersCurrentSettings) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch()).ok());
  auto r = service.Update(As(Role::kAdmin), SettingsPatch{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->name, "my_server");
  EXPECT_EQ(r->organization, "OpenMined");
  EXPECT_EQ(r->id, service.identity().server_id);
}

TEST_F(SettingsServiceTest, EmptyPatchByNonAdminDenied) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch()).ok());
  EXPECT_EQ(service.Update(As(Role::kDataOwner), SettingsPatch{}).status().code(),
            StatusCode::kPermissionDenied);
}

TEST_F(SettingsServiceTest, UpdateRefusesEmptyName) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch()).ok());
  SettingsPatch patch;
  patch.organization = "Acme";  // valid, but must not be applied either
  patch.name = "";
  EXPECT_EQ(service.Update(As(Role::kAdmin), patch).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service.Get().name, "my_server");
  EXPECT_EQ(service.Get().organization, "OpenMined");
  EXPECT_EQ(StoredSettings().organization, "OpenMined");
}

TEST_F(SettingsServiceTest, UpdateRefusesBadAdminEmail) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch()).ok());
  SettingsPatch patch;
  patch.organization = "Acme";
  patch.admin_email = "not-an-email";
  EXPECT_EQ(service.Update(As(Role::kAdmin), patch).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service.Get().admin_email, "info@example.org");
  EXPECT_EQ(service.Get().organization, "OpenMined");
  EXPECT_EQ(StoredSettings().organization, "OpenMined");
}

TEST_F(SettingsServiceTest, UpdateRefusesTooLongDescription) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch()).ok());
  SettingsPatch patch;
  patch.organization = "Acme";
  patch.description = std::string(10'001, 'd');
  EXPECT_EQ(service.Update(As(Role::kAdmin), patch).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service.Get().description, "This is the default description for a Datasite Server.");
  EXPECT_EQ(service.Get().organization, "OpenMined");
  EXPECT_EQ(StoredSettings().organization, "OpenMined");
}

TEST_F(SettingsServiceTest, UpdateAcceptsLongestDescription) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch()).ok());
  SettingsPatch patch;
  patch.description = std::string(10'000, 'd');
  EXPECT_TRUE(service.Update(As(Role::kAdmin), patch).ok());
}

TEST_F(SettingsServiceTest, UpdateRefusesTooLongName) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch()).ok());
  SettingsPatch patch;
  patch.name = std::string(65, 'n');
  EXPECT_EQ(service.Update(As(Role::kAdmin), patch).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(service.Get().name, "my_server");
}

TEST_F(SettingsServiceTest, SetAdminEmailPersists) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch()).ok());
  ASSERT_TRUE(service.SetAdminEmail("root@example.org").ok());
  EXPECT_EQ(service.Get().admin_email, "root@example.org");
  EXPECT_EQ(StoredSettings().admin_email, "root@example.org");
}

TEST_F(SettingsServiceTest, VersionMovesOnEveryChange) {
  SettingsService service(*store_, clock_);
  int64_t last = service.version();
  auto moved = [&] {
    int64_t now = service.version();
    bool changed = now != last;
    last = now;
    return changed;
  };
  ASSERT_TRUE(service.Bootstrap(Launch()).ok());
  EXPECT_TRUE(moved()) << "Bootstrap";
  SettingsPatch patch;
  patch.description = "Changed";
  ASSERT_TRUE(service.Update(As(Role::kAdmin), patch).ok());
  EXPECT_TRUE(moved()) << "Update";
  ASSERT_TRUE(service.SetAdminEmail("root@example.org").ok());
  EXPECT_TRUE(moved()) << "SetAdminEmail";
}

TEST_F(SettingsServiceTest, VersionStaysWhenNothingChanges) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch()).ok());
  const int64_t before = service.version();
  SettingsPatch patch;
  patch.organization = "Acme";
  EXPECT_FALSE(service.Update(As(Role::kDataOwner), patch).ok());
  patch.organization = "";
  EXPECT_FALSE(service.Update(As(Role::kAdmin), patch).ok());
  EXPECT_TRUE(service.Update(As(Role::kAdmin), SettingsPatch{}).ok());
  EXPECT_EQ(service.version(), before);
  EXPECT_EQ(service.Get().organization, "OpenMined");
}

TEST_F(SettingsServiceTest, DefaultWelcomeMarkdownDescribesServerAndListsCommands) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch("my_server")).ok());
  std::string md = SettingsService::WelcomeMarkdown(service.Get());
  EXPECT_NE(md.find("### Welcome to my_server"), std::string::npos) << md;
  EXPECT_NE(md.find("This is the default description for a Datasite Server."), std::string::npos);
  EXPECT_NE(md.find("Datasite"), std::string::npos);
  EXPECT_NE(md.find("High side"), std::string::npos);
  EXPECT_NE(md.find("OpenMined"), std::string::npos);
  EXPECT_NE(md.find(kVersion), std::string::npos);
  for (const char* command :
       {".datasets", ".code", ".projects", ".requests", ".users", ".settings", ".account"}) {
    EXPECT_NE(md.find(std::string("`<your_client>") + command + "`"), std::string::npos) << command;
  }
}

TEST_F(SettingsServiceTest, DefaultWelcomeMarkdownFollowsServerType) {
  store::Settings s;
  s.name = "gw";
  s.server_type = "gateway";
  s.server_side_type = "low";
  std::string md = SettingsService::WelcomeMarkdown(s);
  EXPECT_NE(md.find("Gateway"), std::string::npos) << md;
  EXPECT_NE(md.find("Low side"), std::string::npos) << md;
}

TEST_F(SettingsServiceTest, CustomWelcomeMarkdownReplacesDefault) {
  SettingsService service(*store_, clock_);
  ASSERT_TRUE(service.Bootstrap(Launch()).ok());
  SettingsPatch patch;
  patch.welcome_markdown = "# Our own welcome";
  ASSERT_TRUE(service.Update(As(Role::kAdmin), patch).ok());
  EXPECT_EQ(SettingsService::WelcomeMarkdown(service.Get()), "# Our own welcome");
}

TEST(ServerTitleTest, NamesTypesAndSides) {
  EXPECT_EQ(ServerTypeTitle("datasite"), "Datasite");
  EXPECT_EQ(ServerTypeTitle("gateway"), "Gateway");
  EXPECT_EQ(ServerTypeTitle("enclave"), "Enclave");
  EXPECT_EQ(SideTitle("high"), "High side");
  EXPECT_EQ(SideTitle("low"), "Low side");
}

}  // namespace
}  // namespace datasite::services
