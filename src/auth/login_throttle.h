// LoginThrottle: how many password guesses a source and an account get, such that a stranger's
// failures never lock a user out of their own account from their own source. A source is what its
// caller keys it by: the server keys it by core::AddressKey, so an IPv6 source is a whole /64 (one
// holder's addresses, which a guesser could otherwise rotate through) and someone on the same /64
// (a LAN) counts as the same source, as everyone behind one IPv4 NAT does.
#ifndef DATASITE_AUTH_LOGIN_THROTTLE_H_
#define DATASITE_AUTH_LOGIN_THROTTLE_H_

#include <cstdint>
#include <string>

#include "auth/rate_limiter.h"
#include "core/clock.h"
#include "core/status.h"

namespace datasite::auth {

struct LoginLimits {
  // Every attempt from one source (any account, right or wrong): spraying, and the hashing cost.
  int attempts_per_source = 60;
  int64_t source_window_ms = 60 * 1000;
  // Failures of one source on one account. Only that source is then refused for that account.
  int failures_per_source_account = 5;
  int64_t failure_window_ms = 5 * 60 * 1000;
  // Failures on one account from all sources together (within failure_window_ms); 0: no such
  // limit (the default). Past it, only sources the account has not logged in from within
  // known_source_ms are refused. Off by default: known sources are kept in memory only, so after a
  // restart, or for a user on a new address, failures from a handful of addresses would lock the
  // account out (found by an attack); the per-source limits bound a guesser instead.
  int failures_per_account = 0;
  int64_t known_source_ms = 30LL * 24 * 3600 * 1000;
};

// Keys are a source (the client's AddressKey: an IPv6 /64 is one source) and an account (a
// normalized email, whether or not such a user exists, so refusals never tell). Memory is bounded
// (see RateLimiter). Safe for concurrent use.
class LoginThrottle {
 public:
  // With `shared`, its counts are those of every server sharing it (replicas on one database).
  LoginThrottle(const Clock& clock, const LoginLimits& limits, SharedEventLog* shared = nullptr);

  // OK and counts an attempt of `source`, or kResourceExhausted with a Retry-After when `source`
  // has spent its attempts.
  Status AdmitSource(const std::string& source);
  // AdmitSource, then the account limits of this source on `account`.
  Status Admit(const std::string& source, const std::string& account);
  // A wrong password of `source` for `account`.
  void Failed(const std::string& source, const std::string& account);
  // A right password: this source's failures on the account are forgotten and the source is
  // known to the account from now on.
  void Succeeded(const std::string& source, const std::string& account);

 private:
  static std::string Pair(const std::string& source, const std::string& account);

  RateLimiter source_attempts_;
  RateLimiter pair_failures_;
  RateLimiter account_failures_;
  RateLimiter known_sources_;  // one event per (source, account) that logged in
  const bool account_limit_;   // failures_per_account > 0
};

}  // namespace datasite::auth

#endif  // DATASITE_AUTH_LOGIN_THROTTLE_H_
