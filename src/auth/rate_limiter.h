// A sliding-window rate limiter keyed by string (an email, a client address).
#ifndef DATASITE_AUTH_RATE_LIMITER_H_
#define DATASITE_AUTH_RATE_LIMITER_H_

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/clock.h"
#include "core/status.h"

namespace datasite::auth {

// Allows at most `max_events` per key within any `window_ms`. Memory is bounded: keys whose events
// have all expired are dropped, and past `max_keys` live keys the oldest-seen are evicted. Safe for
// concurrent use.
// Where the limiters of servers sharing one database keep their events (the database: see
// services::StoreEventLog), so that a limit holds across replicas.
class SharedEventLog {
 public:
  virtual ~SharedEventLog() = default;
  // The events of `key` after `since_ms`: how many, and the oldest one's time.
  virtual Result<std::pair<int64_t, int64_t>> Since(const std::string& key, int64_t since_ms) = 0;
  // Counts one at `at_ms`, forgetting the key's events at or before `forget_before_ms`.
  virtual Status Add(const std::string& key, int64_t at_ms, int64_t forget_before_ms) = 0;
  virtual Status Clear(const std::string& key) = 0;
};

class RateLimiter {
 public:
  RateLimiter(const Clock& clock, int max_events, int64_t window_ms, size_t max_keys = 100'000);
  // Keeps its events in `shared` under keys prefixed with `name` (every server sharing it must
  // give each limiter the same name and limits). A failure of `shared` refuses (fails closed).
  RateLimiter(const Clock& clock, int max_events, int64_t window_ms, SharedEventLog* shared,
              std::string name);

  // 0 when another event for `key` is allowed now; otherwise the whole seconds to wait (>= 1).
  int SecondsUntilAllowed(const std::string& key);
  // The same, but a failure of the shared log is its error (kUnavailable when the database is
  // down) rather than a refusal, so that a caller can tell an outage from a limit.
  Result<int> WaitSeconds(const std::string& key);
  // Counts an event for `key`.
  void Record(const std::string& key);
  // Forgets `key` (e.g. after a successful login).
  void Reset(const std::string& key);
  // The events counted for `key` in the window now.
  int Count(const std::string& key);

 private:
  // REQUIRES: mu_ held.
  void Expire(std::deque<int64_t>& events, int64_t now) const;
  void Prune(int64_t now);

  const Clock& clock_;
  SharedEventLog* const shared_ = nullptr;
  const std::string name_;
  const int max_events_;
  const int64_t window_ms_;
  const size_t max_keys_;
  std::mutex mu_;
  std::unordered_map<std::string, std::deque<int64_t>> events_;  // Guarded by mu_.
};

// At most `slots` holders at once; a caller that finds none free is refused at once rather than
// queued, so that work which must wait here never holds a thread that other work needs. Safe for
// concurrent use.
class ConcurrencyLimit {
 public:
  explicit ConcurrencyLimit(int slots) : free_(slots) {}

  // Holds one slot until destroyed (or moved from).
  class Slot {
   public:
    Slot(Slot&& other) noexcept : limit_(other.limit_) { other.limit_ = nullptr; }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    Slot& operator=(Slot&&) = delete;
    ~Slot();

   private:
    friend class ConcurrencyLimit;
    explicit Slot(ConcurrencyLimit* limit) : limit_(limit) {}
    ConcurrencyLimit* limit_;
  };

  // A slot, or nullopt when all are taken.
  std::optional<Slot> TryAcquire();

 private:
  std::mutex mu_;
  int free_;  // Guarded by mu_.
};

}  // namespace datasite::auth

#endif  // DATASITE_AUTH_RATE_LIMITER_H_
