// A sliding-window rate limiter keyed by string (an email, a client address).
#ifndef DATASITE_AUTH_RATE_LIMITER_H_
#define DATASITE_AUTH_RATE_LIMITER_H_

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>

#include "core/clock.h"

namespace datasite::auth {

// Allows at most `max_events` per key within any `window_ms`. Memory is bounded: keys whose events
// have all expired are dropped, and past `max_keys` live keys the oldest-seen are evicted. Safe for
// concurrent use.
class RateLimiter {
 public:
  RateLimiter(const Clock& clock, int max_events, int64_t window_ms, size_t max_keys = 100'000);

  // 0 when another event for `key` is allowed now; otherwise the whole seconds to wait (>= 1).
  int SecondsUntilAllowed(const std::string& key);
  // Counts an event for `key`.
  void Record(const std::string& key);
  // Forgets `key` (e.g. after a successful login).
  void Reset(const std::string& key);

 private:
  // REQUIRES: mu_ held.
  void Expire(std::deque<int64_t>& events, int64_t now) const;
  void Prune(int64_t now);

  const Clock& clock_;
  const int max_events_;
  const int64_t window_ms_;
  const size_t max_keys_;
  std::mutex mu_;
  std::unordered_map<std::string, std::deque<int64_t>> events_;  // Guarded by mu_.
};

}  // namespace datasite::auth

#endif  // DATASITE_AUTH_RATE_LIMITER_H_
