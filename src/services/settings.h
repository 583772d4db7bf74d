// Settings, server identity and public metadata.
#ifndef DATASITE_SERVICES_SETTINGS_H_
#define DATASITE_SERVICES_SETTINGS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "services/principal.h"
#include "store/store.h"

namespace datasite::services {

inline constexpr const char* kVersion = "0.1.0";

// What a launch says about the server; an empty optional keeps the stored value (or the default at
// first start).
struct LaunchSettings {
  // Unset keeps the stored name (`datasite serve` without --name: a replica of a datasite whose
  // name an admin may have changed since); a first start needs one.
  std::optional<std::string> name;
  std::optional<std::string> server_type;       // datasite | gateway | enclave
  std::optional<std::string> server_side_type;  // high | low
  std::optional<bool> signup_enabled;
  std::optional<bool> association_request_auto_approval;
  std::string admin_email;  // used at first start only
};

struct SettingsPatch {
  std::optional<std::string> name;
  std::optional<std::string> organization;
  std::optional<std::string> description;
  std::optional<bool> signup_enabled;
  std::optional<bool> notifications_enabled;
  std::optional<std::string> admin_email;
  std::optional<bool> association_request_auto_approval;
  std::optional<bool> allow_guest_sessions;
  std::optional<std::string> welcome_markdown;
  std::optional<bool> output_review;
};

// Keeps an in-memory copy of the settings row, read again when another process changed it;
// every write goes to the store first. Safe for concurrent use.
class SettingsService {
 public:
  SettingsService(store::Store& store, const Clock& clock);

  // Creates the identity (UUID + ed25519 key pair) and the settings at first start, applies
  // `launch` to them, and loads them.
  Status Bootstrap(const LaunchSettings& launch);
  // Loads the identity and settings a server made, writing nothing (for a process that shares its
  // database: `datasite worker`). kFailedPrecondition when no server has started on it yet.
  Status Load();

  store::Settings Get() const;
  // Moves on every change of the settings (when the new ones are published): a rendering of the
  // settings made after reading version() is at least as new as that version.
  int64_t version() const;
  const store::Identity& identity() const { return identity_; }
  // kPermissionDenied unless the caller is an admin.
  Result<store::Settings> Update(const Principal& caller, const SettingsPatch& patch);
  // Keeps admin_email in step with the root admin's email.
  Status SetAdminEmail(const std::string& email);

  // The stored welcome message, or the default one made from the settings.
  static std::string WelcomeMarkdown(const store::Settings& settings);

 private:
  // Reads the settings row again when the store says it may have changed (another process
  // sharing the database changed it: store::Store::SettingsVersion).
  void Refresh() const;
  // Writes `settings` and, in the same transaction, what `also` appends (its audit entry).
  Status Save(store::Settings settings, const std::function<Status(store::Store&)>& also = nullptr);
  // Makes `settings`, just committed, the copy served from memory.
  void Publish(store::Settings settings);

  store::Store& store_;
  const Clock& clock_;
  store::Identity identity_;  // Set once by Bootstrap.
  mutable std::mutex mu_;
  mutable store::Settings settings_;  // Guarded by mu_.
  // The store's SettingsVersion when settings_ was read from it. Guarded by mu_.
  mutable int64_t store_version_ = -1;
  mutable std::atomic<int64_t> version_{0};  // Moved only with mu_ held.
};

// "Datasite", "Gateway", "Enclave"; "High side", "Low side".
std::string ServerTypeTitle(const std::string& server_type);
std::string SideTitle(const std::string& side);

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_SETTINGS_H_
