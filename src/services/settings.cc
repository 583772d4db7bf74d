#include "services/settings.h"

#include <sodium.h>

#include "core/random.h"
#include "services/accounts.h"

namespace datasite::services {
namespace {

constexpr size_t kMaxNameLength = 64;
constexpr size_t kMaxShortText = 256;
constexpr size_t kMaxDescription = 10'000;
constexpr size_t kMaxWelcome = 100'000;

Status CheckLength(const char* field, const std::string& value, size_t max, bool required) {
  if (required && value.empty())
    return InvalidArgumentError(std::string(field) + " must not be empty");
  if (value.size() > max) {
    return InvalidArgumentError(std::string(field) + " must be at most " + std::to_string(max) +
                                " characters");
  }
  return Status::Ok();
}

Status CheckServerType(const std::string& t) {
  if (t == "datasite" || t == "gateway" || t == "enclave") return Status::Ok();
  return InvalidArgumentError("server type must be datasite, gateway or enclave, not '" + t + "'");
}

Status CheckSide(const std::string& s) {
  if (s == "high" || s == "low") return Status::Ok();
  return InvalidArgumentError("server side must be high or low, not '" + s + "'");
}

}  // namespace

std::string ServerTypeTitle(const std::string& t) {
  if (t == "gateway") return "Gateway";
  if (t == "enclave") return "Enclave";
  return "Datasite";
}

std::string SideTitle(const std::string& s) { return s == "low" ? "Low side" : "High side"; }

SettingsService::SettingsService(store::Store& store, const Clock& clock)
    : store_(store), clock_(clock) {}

Status SettingsService::Bootstrap(const LaunchSettings& launch) {
  if (launch.server_type) RETURN_IF_ERROR(CheckServerType(*launch.server_type));
  if (launch.server_side_type) RETURN_IF_ERROR(CheckSide(*launch.server_side_type));

  ASSIGN_OR_RETURN(auto identity, store_.GetIdentity());
  if (!identity) {
    store::Identity id;
    id.server_id = NewUuid();
    id.verify_key.resize(crypto_sign_PUBLICKEYBYTES);
    id.signing_key.resize(crypto_sign_SECRETKEYBYTES);
    crypto_sign_keypair(reinterpret_cast<unsigned char*>(id.verify_key.data()),
                        reinterpret_cast<unsigned char*>(id.signing_key.data()));
    id.created_at = clock_.NowSeconds();
    RETURN_IF_ERROR(store_.PutIdentity(id));
    identity = id;
  }
  identity_ = *identity;

  ASSIGN_OR_RETURN(auto stored, store_.GetSettings());
  if (!stored && !launch.name) {
    return FailedPreconditionError("no datasite has started on this database yet: give it a name");
  }
  store::Settings s;
  if (stored) {
    s = *stored;
  } else {
    s.id = identity_.server_id;
    s.organization = "OpenMined";
    s.description = "This is the default description for a Datasite Server.";
    s.deployed_on = FormatIsoDate(clock_.NowSeconds());
    s.admin_email = launch.admin_email;
    s.server_type = "datasite";
    s.server_side_type = "high";
  }
  if (launch.name) s.name = *launch.name;
  if (launch.server_type) s.server_type = *launch.server_type;
  if (launch.server_side_type) s.server_side_type = *launch.server_side_type;
  if (launch.signup_enabled) s.signup_enabled = *launch.signup_enabled;
  if (launch.association_request_auto_approval) {
    s.association_request_auto_approval = *launch.association_request_auto_approval;
  }
  // Enclaves take sign-ups by design, as in PySyft.
  if (s.server_type == "enclave") s.signup_enabled = true;
  return Save(std::move(s));
}

Status SettingsService::Load() {
  ASSIGN_OR_RETURN(auto identity, store_.GetIdentity());
  ASSIGN_OR_RETURN(auto stored, store_.GetSettings());
  if (!identity || !stored) {
    return FailedPreconditionError("no datasite has started on this database yet");
  }
  identity_ = *identity;
  std::lock_guard lock(mu_);
  settings_ = std::move(*stored);
  ++version_;
  return Status::Ok();
}

Status SettingsService::Save(store::Settings settings,
                             const std::function<Status(store::Store&)>& also) {
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.PutSettings(settings));
    return also ? also(tx) : Status::Ok();
  }));
  Publish(std::move(settings));
  return Status::Ok();
}

void SettingsService::Publish(store::Settings settings) {
  std::lock_guard lock(mu_);
  settings_ = std::move(settings);
  ++version_;
}

void SettingsService::Refresh() const {
  // Read before the row: a change committed after this read moves it again.
  const int64_t stored = store_.SettingsVersion();
  {
    std::lock_guard lock(mu_);
    if (stored == store_version_) return;
  }
  auto fresh = store_.GetSettings();
  // On a read error the copy in memory stays (the database is down: requests fail anyway), and
  // the next call reads again.
  if (!fresh.ok() || !*fresh) return;
  std::lock_guard lock(mu_);
  settings_ = std::move(**fresh);
  store_version_ = stored;
  ++version_;
}

int64_t SettingsService::version() const {
  Refresh();
  return version_.load();
}

store::Settings SettingsService::Get() const {
  Refresh();
  std::lock_guard lock(mu_);
  return settings_;
}

Result<store::Settings> SettingsService::Update(const Principal& caller, const SettingsPatch& p) {
  if (caller.role != auth::Role::kAdmin)
    return PermissionDeniedError("only admins can change settings");
  if (p.name) RETURN_IF_ERROR(CheckLength("name", *p.name, kMaxNameLength, true));
  if (p.organization)
    RETURN_IF_ERROR(CheckLength("organization", *p.organization, kMaxShortText, true));
  if (p.description)
    RETURN_IF_ERROR(CheckLength("description", *p.description, kMaxDescription, false));
  if (p.welcome_markdown) {
    RETURN_IF_ERROR(CheckLength("welcome_markdown", *p.welcome_markdown, kMaxWelcome, false));
  }
  std::optional<std::string> admin_email;
  if (p.admin_email) {
    ASSIGN_OR_RETURN(admin_email, NormalizeEmail(*p.admin_email));
  }
  if (!p.name && !p.organization && !p.description && !p.signup_enabled &&
      !p.notifications_enabled && !p.admin_email && !p.association_request_auto_approval &&
      !p.allow_guest_sessions && !p.welcome_markdown && !p.output_review) {
    return Get();  // nothing to change
  }
  // Read, modify and write in one transaction (the database serialises them, across replicas
  // too), holding no lock of ours while the store works: a request that holds the store (an
  // idempotent change, see store::Store::RunIdempotent) may call this after its first write.
  auto apply = [&](store::Settings& s) {
    if (p.name) s.name = *p.name;
    if (p.organization) s.organization = *p.organization;
    if (p.description) s.description = *p.description;
    if (p.signup_enabled) s.signup_enabled = *p.signup_enabled;
    if (p.notifications_enabled) s.notifications_enabled = *p.notifications_enabled;
    if (admin_email) s.admin_email = *admin_email;
    if (p.association_request_auto_approval) {
      s.association_request_auto_approval = *p.association_request_auto_approval;
    }
    if (p.allow_guest_sessions) s.allow_guest_sessions = *p.allow_guest_sessions;
    if (p.welcome_markdown) s.welcome_markdown = *p.welcome_markdown;
    if (p.output_review) s.output_review = *p.output_review;
  };
  // Which settings changed, by name; never their values.
  std::string what;
  for (auto [set, name] :
       {std::pair{p.name.has_value(), "name"},
        {p.organization.has_value(), "organization"},
        {p.description.has_value(), "description"},
        {p.signup_enabled.has_value(), "signup_enabled"},
        {p.notifications_enabled.has_value(), "notifications_enabled"},
        {p.admin_email.has_value(), "admin_email"},
        {p.association_request_auto_approval.has_value(), "association_request_auto_approval"},
        {p.allow_guest_sessions.has_value(), "allow_guest_sessions"},
        {p.welcome_markdown.has_value(), "welcome_markdown"},
        {p.output_review.has_value(), "output_review"}}) {
    if (set) what += what.empty() ? name : std::string(",") + name;
  }
  store::Settings s;
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    ASSIGN_OR_RETURN(auto stored, tx.GetSettings());
    if (!stored) return FailedPreconditionError("no datasite has started on this database yet");
    s = std::move(*stored);
    apply(s);
    RETURN_IF_ERROR(tx.PutSettings(s));
    return tx.AppendAudit(
        {clock_.NowSeconds(), caller.AuditName(), "settings.update", "settings", what});
  }));
  Publish(s);
  return s;
}

Status SettingsService::SetAdminEmail(const std::string& email) {
  store::Settings s = Get();
  s.admin_email = email;
  return Save(std::move(s));
}

std::string SettingsService::WelcomeMarkdown(const store::Settings& s) {
  if (!s.welcome_markdown.empty()) return s.welcome_markdown;
  return "### Welcome to " + s.name + "\n\n" + "**Server Description:** " + s.description + "  \n" +
         "**Server Type:** " + ServerTypeTitle(s.server_type) + "  \n" + "**Server Side Type:** " +
         SideTitle(s.server_side_type) + "  \n" + "**Organization:** " + s.organization + "  \n" +
         "**Datasite Version:** " + kVersion + "\n\n" +
         "#### Commands to Get Started\n\n"
         "- `<your_client>.datasets` - list datasets\n"
         "- `<your_client>.code` - list code\n"
         "- `<your_client>.projects` - list projects\n"
         "- `<your_client>.requests` - list requests\n"
         "- `<your_client>.users` - list users\n"
         "- `<your_client>.settings` - show the server's settings\n"
         "- `<your_client>.account` - your account\n";
}

}  // namespace datasite::services
