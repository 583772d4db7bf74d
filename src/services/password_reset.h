// Password reset by a one-time token: asked for by the user (forgot password) or by an admin.
#ifndef DATASITE_SERVICES_PASSWORD_RESET_H_
#define DATASITE_SERVICES_PASSWORD_RESET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "auth/rate_limiter.h"
#include "core/clock.h"
#include "core/status.h"
#include "services/accounts.h"
#include "services/notifications.h"
#include "services/principal.h"
#include "store/store.h"

namespace datasite::services {

struct PasswordResetOptions {
  int64_t token_ttl_seconds = 3600;
  // Requests per email address, and per client address, within an hour.
  int per_email_per_hour = 3;
  int per_client_per_hour = 20;
};

// Tokens are 256 random bits, kept only as their SHA-256, valid once and until they expire. A
// reset sets the new password (checked by the rules for new passwords) and ends every session of
// the user. Safe for concurrent use.
class PasswordResets {
 public:
  PasswordResets(store::Store& store, const Clock& clock, Accounts& accounts,
                 Notifications& notifications, PasswordResetOptions options);

  // Anyone: mails a token to the account with `email`, if there is one. The answer is the same
  // whether or not there is (kResourceExhausted past the limits, for any address).
  Status Forgot(const std::string& email, const std::string& client_address);
  // Anyone with the token. kInvalidArgument for a wrong, expired or used token (one message for
  // all three) and for a password the rules refuse (the token stays valid then).
  Status Reset(const std::string& token, const std::string& new_password,
               const std::string& client_address);
  // Admins: a token for the user, returned to the admin (and mailed to the user when mail is on).
  Result<std::string> Request(const Principal& caller, const std::string& user_id);
  // Admins: the resets not used and not expired.
  Result<std::vector<store::PasswordReset>> Pending(const Principal& caller);

 private:
  // `requested_by` is an admin's id, or "self" for a request by address from `client_address`.
  Result<std::string> Create(const store::User& user, const std::string& requested_by,
                             const std::string& client_address);

  store::Store& store_;
  const Clock& clock_;
  Accounts& accounts_;
  Notifications& notifications_;
  const PasswordResetOptions options_;
  auth::RateLimiter per_email_;
  auth::RateLimiter per_client_;
  auth::RateLimiter wrong_tokens_;  // by client address
};

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_PASSWORD_RESET_H_
