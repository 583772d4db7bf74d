// A small server world for the targets that need one: a SQLite store and blob store in a scratch
// directory, the settings, accounts and datasets services on a fake clock, one user per role, and
// sessions whose bearer tokens are fixed, so that corpus inputs can carry them. Fuzzing only.
#ifndef DATASITE_FUZZ_WORLD_H_
#define DATASITE_FUZZ_WORLD_H_

#include <array>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "auth/password.h"
#include "auth/role.h"
#include "auth/token.h"
#include "blob/blob_store.h"
#include "core/clock.h"
#include "core/random.h"
#include "fuzz_util.h"
#include "services/accounts.h"
#include "services/code.h"
#include "services/datasets.h"
#include "services/settings.h"
#include "store/store.h"

namespace datasite::fuzz {

// The fixed bearer tokens of the world's sessions. "fuzz-expired" names a session that expired.
struct FixedSession {
  const char* token;
  auth::Role role;
  const char* email;  // nullptr for the guest session
};
inline constexpr std::array<FixedSession, 4> kSessions = {{
    {"fuzz-admin", auth::Role::kAdmin, "info@example.org"},
    {"fuzz-owner", auth::Role::kDataOwner, "owner@example.org"},
    {"fuzz-scientist", auth::Role::kDataScientist, "scientist@example.org"},
    {"fuzz-guest", auth::Role::kGuest, nullptr},
}};
inline constexpr const char* kExpiredToken = "fuzz-expired";
// A session whose stored role is no role at all.
inline constexpr const char* kBadRoleToken = "fuzz-badrole";

// Not thread-safe. Everything lives in a fresh directory under ScratchDir(), removed with the
// world.
class World {
 public:
  explicit World(services::AccountsOptions accounts_options = {}) {
    Check(InitCrypto(), "initialize libsodium");
    spdlog::set_level(spdlog::level::off);  // the services' log lines would drown libFuzzer's
    static int generation = 0;
    dir_ = ScratchDir() + "/world" + std::to_string(++generation);
    std::filesystem::create_directories(dir_);
    store_ = Must(store::OpenSqliteStore(dir_ + "/datasite.db"), "open the store");
    settings_ = std::make_unique<services::SettingsService>(*store_, clock_);
    services::LaunchSettings launch;
    launch.name = "fuzz";
    launch.signup_enabled = true;
    launch.admin_email = "info@example.org";
    Check(settings_->Bootstrap(launch).ok(), "bootstrap the settings");
    accounts_ = std::make_unique<services::Accounts>(*store_, clock_, accounts_options);
    Check(accounts_->CreateRootAdmin("info@example.org", PasswordHash()).ok(), "make the root");
    blobs_ = Must(blob::NewFileBlobStore(dir_ + "/blobs"), "open the blob store");
    datasets_ = std::make_unique<services::Datasets>(*store_, *blobs_, *settings_, clock_,
                                                     services::DatasetsOptions{});
    results_ = Must(blob::NewFileBlobStore(results_dir()), "open the results store");
    int64_t now = clock_.NowSeconds();
    for (const FixedSession& s : kSessions) {
      if (s.email == nullptr || s.role == auth::Role::kAdmin) continue;
      store::User u{NewUuid(),
                    s.email,
                    std::string(auth::RoleName(s.role)),
                    static_cast<int>(s.role),
                    "",
                    "",
                    PasswordHash(),
                    false,
                    now,
                    now};
      Check(store_->InsertUser(u).ok(), "insert a user");
    }
    RestoreSessions();
  }

  ~World() {
    datasets_.reset();
    results_.reset();
    blobs_.reset();
    accounts_.reset();
    settings_.reset();
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Puts back the fixed sessions a request may have ended (a logout, an expired token seen).
  void RestoreSessions() {
    int64_t now = clock_.NowSeconds();
    auto put = [&](std::string_view token, std::optional<std::string> user_id, int role,
                   int64_t expires_at) {
      std::string hash = auth::HashToken(token);
      if (store_->GetSession(hash).ok()) return;
      Check(store_->InsertSession({hash, std::move(user_id), role, now - 10, expires_at}).ok(),
            "insert a session");
    };
    for (const FixedSession& s : kSessions) {
      put(s.token, s.email ? std::optional(UserId(s.email)) : std::nullopt,
          static_cast<int>(s.role), now + 3600);
    }
    put(kExpiredToken, UserId("owner@example.org"), static_cast<int>(auth::Role::kDataOwner),
        now - 1);
    put(kBadRoleToken, std::nullopt, 7, now + 3600);
  }

  // The id of the user with `email`; empty when there is none.
  std::string UserId(const std::string& email) {
    auto u = store_->GetUserByEmail(email);
    return u.ok() ? u->id : "";
  }

  // The caller a fixed token stands for.
  services::Principal As(std::string_view token) {
    auto p = accounts_->Authenticate("Bearer " + std::string(token));
    Check(p.ok(), "authenticate a fixed token");
    return *p;
  }

  const std::string& dir() const { return dir_; }
  FakeClock& clock() { return clock_; }
  store::Store& store() { return *store_; }
  services::SettingsService& settings() { return *settings_; }
  services::Accounts& accounts() { return *accounts_; }
  services::Datasets& datasets() { return *datasets_; }
  blob::BlobStore& blobs() { return *blobs_; }
  blob::BlobStore& results() { return *results_; }
  // Options for a CodeService on this world: results over 1 MiB go to the results store of
  // results/, as the server keeps them.
  services::CodeOptions code_options() {
    services::CodeOptions options;
    options.results = results_.get();
    options.results_dir = results_dir();
    return options;
  }

 private:
  std::string results_dir() const { return dir_ + "/results"; }

  // The argon2id hash of "changethis", computed once per process (it takes ~100 ms).
  static const std::string& PasswordHash() {
    static const std::string hash = [] {
      auto h = auth::HashPassword(services::kDefaultRootPassword);
      Check(h.ok(), "hash a password");
      return *h;
    }();
    return hash;
  }

  template <typename T>
  static T Must(Result<T> r, std::string_view what) {
    Check(r.ok(), std::string(what) + ": " + (r.ok() ? "" : r.status().ToString()));
    return std::move(r).value();
  }

  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<services::SettingsService> settings_;
  std::unique_ptr<services::Accounts> accounts_;
  std::unique_ptr<blob::BlobStore> blobs_;
  std::unique_ptr<blob::BlobStore> results_;
  std::unique_ptr<services::Datasets> datasets_;
};

}  // namespace datasite::fuzz

#endif  // DATASITE_FUZZ_WORLD_H_
