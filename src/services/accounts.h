// Accounts: login, sessions, registration and the user rules of PySyft 0.9 (see docs/API.md).
#ifndef DATASITE_SERVICES_ACCOUNTS_H_
#define DATASITE_SERVICES_ACCOUNTS_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/login_throttle.h"
#include "auth/password.h"
#include "auth/rate_limiter.h"
#include "core/clock.h"
#include "core/status.h"
#include "services/principal.h"
#include "store/store.h"

namespace datasite::services {

inline constexpr const char* kDefaultRootEmail = "info@example.org";
inline constexpr const char* kDefaultRootPassword = "changethis";

struct AccountsOptions {
  int64_t session_ttl_seconds = 24 * 3600;
  // Logins (see auth::LoginThrottle); anonymous sign-ups spend the per-source attempts too.
  auth::LoginLimits login;
  // New guest sessions per client address per minute, and guest sessions alive at once. One
  // client address (an IPv6 /64) may have started a sixty-fourth of the live ones, one network
  // (an IPv4 /24, an IPv6 /48) a thirty-second, so that a caller with many addresses can't take
  // them all for a day (counted by this server process until the sessions expire, logged out or
  // not).
  int guest_sessions_per_minute = 30;
  int64_t max_guest_sessions = 10'000;
  // Expired sessions are deleted at most this often, by the next request that starts a session.
  int64_t session_sweep_interval_ms = 5 * 60 * 1000;
  // Wrong old passwords in a password change, per account and per client address, within 5 min.
  int password_change_failures = 5;
  // Password hashing outside logins (password changes, registrations, user creations) at once;
  // more is refused with a retry, so logins keep the rest of the hashing threads.
  int hashing_slots = 1;
  // The rules for new passwords: kDevelopment only on a loopback-only development server (see
  // auth::PasswordRules); the app decides.
  auth::PasswordRules password_rules = auth::PasswordRules::kStandard;
  // Where the login limits keep their counts when servers share a database (replicas on
  // PostgreSQL); null: in memory.
  auth::SharedEventLog* shared_events = nullptr;
};

// The store as the login limits' shared event log (auth::SharedEventLog). Keys are stored hex
// encoded: they hold what a client sent (an email), which may be any bytes.
class StoreEventLog : public auth::SharedEventLog {
 public:
  explicit StoreEventLog(store::Store& store) : store_(store) {}
  Result<std::pair<int64_t, int64_t>> Since(const std::string& key, int64_t since_ms) override {
    return store_.RateEventsSince(Hex(key), since_ms);
  }
  Status Add(const std::string& key, int64_t at_ms, int64_t forget_before_ms) override {
    return store_.AddRateEvent(Hex(key), at_ms, forget_before_ms);
  }
  Status Clear(const std::string& key) override { return store_.ClearRateEvents(Hex(key)); }

 private:
  static std::string Hex(const std::string& key) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(key.size() * 2);
    for (unsigned char c : key) {
      out += kDigits[c >> 4];
      out += kDigits[c & 0xf];
    }
    return out;
  }

  store::Store& store_;
};

struct LoginResult {
  std::string token;
  int64_t expires_at = 0;
  std::optional<store::User> user;  // empty for guests
  bool default_password = false;
};

struct NewUser {
  std::string name;
  std::string email;
  std::string password;
  std::optional<std::string> password_verify;
  std::optional<auth::Role> role;
  std::string institution;
  std::string website;
};

// Each field present is changed.
struct UserPatch {
  std::optional<std::string> name;
  std::optional<std::string> email;
  std::optional<std::string> institution;
  std::optional<std::string> website;
  std::optional<auth::Role> role;
  std::optional<std::string> password;
};

struct RegisterResult {
  std::string message;
  std::optional<store::User> user;  // only for data owners and admins
};

class Notifications;

// Safe for concurrent use.
class Accounts {
 public:
  Accounts(store::Store& store, const Clock& clock, AccountsOptions options);
  // Where new accounts are announced (none until set). Call before serving.
  void SetNotifications(Notifications* notifications) { notifications_ = notifications; }

  // True when the database has no user yet, so the root admin must be made.
  Result<bool> NeedsRootAdmin();
  // Creates the root admin with an already computed password hash (see auth::HashPassword; hashing
  // takes ~100 ms, so start-up computes it while it does other work). The root password is exempt
  // from the strength rules: the documented default is "changethis".
  Status CreateRootAdmin(const std::string& email, const std::string& password_hash);
  // NeedsRootAdmin, then HashPassword and CreateRootAdmin.
  Status EnsureRootAdmin(const std::string& email, const std::string& password);
  // Whether the root admin's password is still kDefaultRootPassword (the check Login uses to warn);
  // hashes once (~100 ms).
  Result<bool> RootHasDefaultPassword();
  // The warning to show with an answer that set `password` for `email` (a development server's
  // leniency, see auth::PasswordRules), or "" when there is none.
  std::string PasswordWarning(std::string_view password, std::string_view email) const;
  // Emails of the users whose password was accepted only under development rules (at most
  // `limit`): a server reachable beyond loopback refuses to start while there are any.
  Result<std::vector<std::string>> UsersWithDevelopmentPasswords(size_t limit);

  Result<LoginResult> Login(const std::string& email, const std::string& password,
                            const std::string& client_address);
  // kFailedPrecondition when guest sessions are disabled; kResourceExhausted (with a Retry-After)
  // past the guest sessions of `client_address` per minute or the live guest sessions cap.
  Result<LoginResult> LoginAsGuest(bool guests_allowed, const std::string& client_address);
  Status Logout(const Principal& caller);
  // An anonymous Principal for an empty header; kUnauthenticated for a bad or expired token.
  // A token that passed is remembered (by its hash) until its session expires or any user or
  // session is updated or deleted (see store::Store::AuthVersion), so a repeated call usually skips
  // the database while logout, revocation, deletion, role and password changes still apply at once.
  Result<Principal> Authenticate(const std::string& authorization_header);
  // The principal of a remembered, still valid session for this header, found without touching
  // the database (so it never blocks); nullopt when only Authenticate can tell.
  std::optional<Principal> RememberedPrincipal(const std::string& authorization_header);
  // How many Authenticate calls were answered from the remembered sessions.
  int64_t SessionCacheHitsForTest() const;

  Result<RegisterResult> Register(const Principal& caller, const NewUser& input,
                                  bool signup_enabled, const std::string& client_address);
  Result<store::User> CreateUser(const Principal& caller, const NewUser& input);
  Result<store::UserPage> ListUsers(const Principal& caller, const std::string& search,
                                    int64_t page, int64_t page_size);
  Result<store::User> GetUser(const Principal& caller, const std::string& id);
  // On an email change of the root admin, `*root_email_changed` is set to the new email. Only data
  // owners and admins change an email (their own, or as admins anyone's): a data scientist would
  // learn from the answer whether an address is taken, which those roles can read anyway.
  Result<store::User> UpdateUser(const Principal& caller, const std::string& id,
                                 const UserPatch& patch,
                                 std::optional<std::string>* root_email_changed);
  Status DeleteUser(const Principal& caller, const std::string& id);
  // Checks the old password, sets the new one and revokes the user's other sessions. Wrong old
  // passwords are limited per account and per `client_address` (kResourceExhausted).
  Status ChangePassword(const Principal& caller, const std::string& old_password,
                        const std::string& new_password, const std::string& client_address);
  // Deletes expired sessions if the last sweep is older than the sweep interval.
  void MaybeSweepSessions();
  // For a password reset: checks `password` against the rules for new passwords of `email` and
  // hashes it, on a hashing slot (kResourceExhausted asks to retry when none is free).
  Result<std::string> HashPasswordForReset(std::string_view password, std::string_view email);

 private:
  Status Validate(const NewUser& input) const;
  // Hashes the password, then inserts the user and appends the audit entry `audit` makes for it,
  // in one transaction.
  Result<store::User> Insert(const NewUser& input, auth::Role role,
                             const std::function<Status(store::Store&, const store::User&)>& audit);
  // The hash to store for a new password that passed the checks; marked (auth::MarkDevelopmentHash)
  // when only the development rules let it pass, and the acceptance logged.
  Result<std::string> HashNewPassword(std::string_view password, std::string_view email);
  // A hashing slot for work other than logins, or kResourceExhausted asking to retry.
  Result<auth::ConcurrencyLimit::Slot> HashingSlot();
  // Inserts the session through `tx` (the caller's transaction, or store_).
  Result<LoginResult> StartSession(store::Store& tx, std::optional<store::User> user,
                                   auth::Role role);
  // Appends an audit entry through `tx`: inside the transaction of the change it records.
  Status Audit(store::Store& tx, const Principal& actor, const std::string& action,
               const std::string& target, const std::string& detail = "");
  // The remembered principal for `token_hash`, if it is still valid now.
  std::optional<Principal> CachedPrincipal(const std::string& token_hash);
  // Remembers a check that passed; `auth_version` is the store's AuthVersion read before the
  // session and user were read.
  void RememberSession(int64_t auth_version, int64_t expires_at, const Principal& principal);

  // A session check that passed, valid while the store's AuthVersion is still `auth_version` and
  // the session has not expired.
  struct CachedSession {
    int64_t auth_version = 0;
    int64_t expires_at = 0;
    Principal principal;
  };

  store::Store& store_;
  const Clock& clock_;
  const AccountsOptions options_;
  Notifications* notifications_ = nullptr;  // Set once before serving.
  auth::LoginThrottle login_throttle_;
  auth::RateLimiter guest_sessions_;  // by client address
  // Whether `source` (an AddressKey) and its `network` (a NetworkKey) may start another guest
  // session, and if so counts it until `expires_at`; else the seconds until one of theirs expires.
  std::optional<int64_t> TakeGuestPlace(const std::string& source, const std::string& network,
                                        int64_t now, int64_t expires_at);
  // Undoes a TakeGuestPlace whose session was not started.
  void GiveGuestPlaceBack(const std::string& source, const std::string& network,
                          int64_t expires_at);
  std::mutex guests_mu_;
  // The expiries of the guest sessions each source and network started (oldest first), while any
  // lives; guarded by guests_mu_.
  std::unordered_map<std::string, std::deque<int64_t>> guest_expiries_;
  int64_t guest_entries_ = 0;   // in guest_expiries_; guarded by guests_mu_
  int64_t guest_swept_at_ = 0;  // when expired ones were last dropped; guarded by guests_mu_
  auth::RateLimiter password_change_failures_;  // by "user:<id>" and "address:<address>"
  auth::ConcurrencyLimit hashing_;
  std::atomic<int64_t> next_sweep_ms_{0};
  mutable std::mutex cache_mu_;
  std::unordered_map<std::string, CachedSession> sessions_;  // by token hash; guarded by cache_mu_
  int64_t cache_hits_ = 0;                                   // guarded by cache_mu_
};

// Lower-cased, trimmed email; kInvalidArgument when it is not local@domain.tld.
Result<std::string> NormalizeEmail(const std::string& email);

// The password hash of an account a sync peer sent: no password matches it, and no reset gives
// it one (the account is managed on the side it came from; docs/SYNC.md).
inline constexpr char kSyncedPasswordHash[] = "!synced";
inline constexpr char kSyncedAccountNoLogin[] =
    "this account came from a sync peer and can't log in on this side: it is managed on the side "
    "it came from";
inline bool IsSyncedAccount(const store::User& user) {
  return user.password_hash == kSyncedPasswordHash;
}

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_ACCOUNTS_H_
