#include "services/password_reset.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "auth/token.h"

namespace datasite::services {
namespace {

constexpr int64_t kHourMs = 3600 * 1000;
constexpr const char* kBadToken = "the reset token is wrong, expired or already used";

Status Audit(store::Store& tx, int64_t now, const std::string& actor, const std::string& action,
             const std::string& target, const std::string& detail = "") {
  return tx.AppendAudit({now, actor, action, target, detail});
}

// Whoever holds a token or asks for one by address is not signed in: they are named as failed
// logins name them (Principal{}.AuditName()), with the address they came from.
const std::string& Anonymous() {
  static const std::string name = Principal{}.AuditName();
  return name;
}

// Names a refused token in the audit log without revealing it: the start of its hash, so
// repeated tries of one token can be told apart from many guesses.
std::string TokenTarget(const std::string& hash) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "reset_token:";
  for (size_t i = 0; i < hash.size() && i < 6; ++i) {
    out += kHex[static_cast<unsigned char>(hash[i]) >> 4];
    out += kHex[static_cast<unsigned char>(hash[i]) & 15];
  }
  return out;
}

}  // namespace

PasswordResets::PasswordResets(store::Store& store, const Clock& clock, Accounts& accounts,
                               Notifications& notifications, PasswordResetOptions options)
    : store_(store),
      clock_(clock),
      accounts_(accounts),
      notifications_(notifications),
      options_(options),
      per_email_(clock, options.per_email_per_hour, kHourMs),
      per_client_(clock, options.per_client_per_hour, kHourMs),
      wrong_tokens_(clock, 20, kHourMs) {}

Result<std::string> PasswordResets::Create(const store::User& user, const std::string& requested_by,
                                           const std::string& client_address) {
  // Every way to a reset (the anonymous one and an admin's) comes here.
  if (IsSyncedAccount(user)) {
    return FailedPreconditionError(kSyncedAccountNoLogin);
  }
  const std::string token = auth::NewToken();
  store::PasswordReset reset;
  reset.token_hash = auth::HashToken(token);
  reset.user_id = user.id;
  reset.requested_by = requested_by;
  reset.created_at = clock_.NowSeconds();
  reset.expires_at = reset.created_at + options_.token_ttl_seconds;
  RETURN_IF_ERROR(store_.InTransaction([&](store::Store& tx) -> Status {
    RETURN_IF_ERROR(tx.InsertPasswordReset(reset));
    const bool self = requested_by == "self";
    RETURN_IF_ERROR(Audit(tx, reset.created_at, self ? Anonymous() : "user:" + requested_by,
                          "user.password_reset_request", "user:" + user.id,
                          self ? "from " + client_address : ""));
    return notifications_.OnPasswordReset(tx, user, token, reset.expires_at);
  }));
  notifications_.Wake();
  return token;
}

Status PasswordResets::Forgot(const std::string& email, const std::string& client_address) {
  auto normalized = NormalizeEmail(email);
  if (!normalized.ok()) return normalized.status();  // a malformed address: no account either way
  const std::string email_key = "email:" + *normalized;
  const std::string client_key = "client:" + client_address;
  int wait = std::max(per_email_.SecondsUntilAllowed(email_key),
                      per_client_.SecondsUntilAllowed(client_key));
  if (wait > 0) {
    return ResourceExhaustedError("too many password reset requests; try again in " +
                                  std::to_string(wait) + " s")
        .WithRetryAfter(wait);
  }
  per_email_.Record(email_key);
  per_client_.Record(client_key);
  auto user = store_.GetUserByEmail(*normalized);
  if (!user.ok()) {
    if (user.status().code() != StatusCode::kNotFound) {
      spdlog::error("password reset: {}", user.status().ToString());
      return Status::Ok();
    }
    // No account: the request is still recorded (as a failed login for an unknown address is), in
    // a write transaction of its own, so the answer takes about as long as for a real account and
    // its time does not tell whether the address has one.
    Status st = store_.InTransaction([&](store::Store& tx) -> Status {
      return Audit(tx, clock_.NowSeconds(), Anonymous(), "user.password_reset_request",
                   "email:" + *normalized, "from " + client_address + "; no such account");
    });
    if (!st.ok()) spdlog::error("password reset: {}", st.ToString());
    return Status::Ok();
  }
  auto created = Create(*user, "self", client_address);
  if (!created.ok()) spdlog::error("password reset: {}", created.status().ToString());
  return Status::Ok();
}

Status PasswordResets::Reset(const std::string& token, const std::string& new_password,
                             const std::string& client_address) {
  const std::string client_key = "client:" + client_address;
  if (int wait = wrong_tokens_.SecondsUntilAllowed(client_key); wait > 0) {
    return ResourceExhaustedError("too many wrong reset tokens; try again in " +
                                  std::to_string(wait) + " s")
        .WithRetryAfter(wait);
  }
  const std::string hash = auth::HashToken(token);
  const int64_t now = clock_.NowSeconds();
  // Find the user first (without using the token up), so a password the rules refuse leaves it.
  ASSIGN_OR_RETURN(auto pending, store_.PendingPasswordResets(now));
  auto it = std::find_if(pending.begin(), pending.end(),
                         [&](const store::PasswordReset& r) { return r.token_hash == hash; });
  auto refuse = [&]() -> Status {
    wrong_tokens_.Record(client_key);
    RETURN_IF_ERROR(Audit(store_, now, Anonymous(), "user.password_reset_failed", TokenTarget(hash),
                          "from " + client_address));
    return InvalidArgumentError(kBadToken);
  };
  if (token.empty() || it == pending.end()) return refuse();
  ASSIGN_OR_RETURN(std::string password_hash,
                   accounts_.HashPasswordForReset(new_password, it->user_email));
  Status st = store_.InTransaction([&](store::Store& tx) -> Status {
    ASSIGN_OR_RETURN(store::PasswordReset used, tx.ConsumePasswordReset(hash, now));
    ASSIGN_OR_RETURN(store::User user, tx.GetUserById(used.user_id));
    if (IsSyncedAccount(user)) return InvalidArgumentError(kBadToken);  // a token from before
    user.password_hash = password_hash;
    user.updated_at = now;
    RETURN_IF_ERROR(tx.UpdateUser(user));
    RETURN_IF_ERROR(tx.DeleteUserSessions(user.id, ""));
    // Every other token of the user dies with this one.
    RETURN_IF_ERROR(tx.DeletePendingPasswordResets(user.id));
    return Audit(tx, now, Anonymous(), "user.password_reset", "user:" + user.id,
                 "from " + client_address);
  });
  if (st.code() == StatusCode::kNotFound) return refuse();
  return st;
}

Result<std::string> PasswordResets::Request(const Principal& caller, const std::string& user_id) {
  if (caller.role != auth::Role::kAdmin || !caller.user_id) {
    return PermissionDeniedError("only admins request a password reset for a user");
  }
  ASSIGN_OR_RETURN(store::User user, store_.GetUserById(user_id));
  return Create(user, *caller.user_id, "");
}

Result<std::vector<store::PasswordReset>> PasswordResets::Pending(const Principal& caller) {
  if (caller.role != auth::Role::kAdmin) {
    return PermissionDeniedError("only admins see pending password resets");
  }
  return store_.PendingPasswordResets(clock_.NowSeconds());
}

}  // namespace datasite::services
