#include "auth/login_throttle.h"

#include <algorithm>

namespace datasite::auth {

namespace {

RateLimiter MakeLimiter(const Clock& clock, int max_events, int64_t window_ms,
                        SharedEventLog* shared, const char* name) {
  if (shared == nullptr) return RateLimiter(clock, max_events, window_ms);
  return RateLimiter(clock, max_events, window_ms, shared, name);
}

}  // namespace

LoginThrottle::LoginThrottle(const Clock& clock, const LoginLimits& limits, SharedEventLog* shared)
    : source_attempts_(MakeLimiter(clock, limits.attempts_per_source, limits.source_window_ms,
                                   shared, "login.source")),
      pair_failures_(MakeLimiter(clock, limits.failures_per_source_account,
                                 limits.failure_window_ms, shared, "login.pair")),
      account_failures_(MakeLimiter(clock, std::max(1, limits.failures_per_account),
                                    limits.failure_window_ms, shared, "login.account")),
      known_sources_(MakeLimiter(clock, 1, limits.known_source_ms, shared, "login.known")),
      account_limit_(limits.failures_per_account > 0) {}

std::string LoginThrottle::Pair(const std::string& source, const std::string& account) {
  // A newline is in neither an address nor a normalized email.
  return source + "\n" + account;
}

Status LoginThrottle::AdmitSource(const std::string& source) {
  ASSIGN_OR_RETURN(const int wait, source_attempts_.WaitSeconds(source));
  if (wait > 0) {
    return ResourceExhaustedError("too many attempts from this address; try again in " +
                                  std::to_string(wait) + " s")
        .WithRetryAfter(wait);
  }
  source_attempts_.Record(source);
  return Status::Ok();
}

Status LoginThrottle::Admit(const std::string& source, const std::string& account) {
  RETURN_IF_ERROR(AdmitSource(source));
  const std::string pair = Pair(source, account);
  ASSIGN_OR_RETURN(int wait, pair_failures_.WaitSeconds(pair));
  if (wait == 0 && account_limit_ && known_sources_.Count(pair) == 0) {
    ASSIGN_OR_RETURN(wait, account_failures_.WaitSeconds(account));
  }
  if (wait == 0) return Status::Ok();
  return ResourceExhaustedError(
             "too many failed logins for this account from this address; try "
             "again in " +
             std::to_string(wait) + " s")
      .WithRetryAfter(wait);
}

void LoginThrottle::Failed(const std::string& source, const std::string& account) {
  pair_failures_.Record(Pair(source, account));
  account_failures_.Record(account);
}

void LoginThrottle::Succeeded(const std::string& source, const std::string& account) {
  const std::string pair = Pair(source, account);
  pair_failures_.Reset(pair);
  known_sources_.Record(pair);
}

}  // namespace datasite::auth
