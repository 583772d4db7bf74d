#include "auth/rate_limiter.h"

#include <algorithm>
#include <utility>

namespace datasite::auth {

RateLimiter::RateLimiter(const Clock& clock, int max_events, int64_t window_ms, size_t max_keys)
    : clock_(clock), max_events_(max_events), window_ms_(window_ms), max_keys_(max_keys) {}

RateLimiter::RateLimiter(const Clock& clock, int max_events, int64_t window_ms,
                         SharedEventLog* shared, std::string name)
    : clock_(clock),
      shared_(shared),
      name_(std::move(name) + ":"),
      max_events_(max_events),
      window_ms_(window_ms),
      max_keys_(0) {}

void RateLimiter::Expire(std::deque<int64_t>& events, int64_t now) const {
  while (!events.empty() && events.front() <= now - window_ms_) events.pop_front();
}

int RateLimiter::SecondsUntilAllowed(const std::string& key) {
  auto wait = WaitSeconds(key);
  return wait.ok() ? *wait : 1;  // closed: a guesser gets nothing from a database outage
}

Result<int> RateLimiter::WaitSeconds(const std::string& key) {
  if (shared_ != nullptr) {
    const int64_t now = clock_.NowMillis();
    ASSIGN_OR_RETURN(auto since, shared_->Since(name_ + key, now - window_ms_));
    if (since.first < max_events_) return 0;
    const int64_t wait_ms = since.second + window_ms_ - now;
    return std::max<int>(1, static_cast<int>((wait_ms + 999) / 1000));
  }
  std::lock_guard lock(mu_);
  auto it = events_.find(key);
  if (it == events_.end()) return 0;
  int64_t now = clock_.NowMillis();
  Expire(it->second, now);
  if (static_cast<int>(it->second.size()) < max_events_) return 0;
  // The oldest event in the window must age out before another is allowed.
  int64_t wait_ms = it->second.front() + window_ms_ - now;
  return static_cast<int>((wait_ms + 999) / 1000) > 0 ? static_cast<int>((wait_ms + 999) / 1000)
                                                      : 1;
}

void RateLimiter::Record(const std::string& key) {
  if (shared_ != nullptr) {
    const int64_t now = clock_.NowMillis();
    (void)shared_->Add(name_ + key, now, now - window_ms_);
    return;
  }
  std::lock_guard lock(mu_);
  int64_t now = clock_.NowMillis();
  if (events_.size() >= max_keys_ && events_.find(key) == events_.end()) Prune(now);
  auto& events = events_[key];
  Expire(events, now);
  events.push_back(now);
  while (static_cast<int>(events.size()) > max_events_) events.pop_front();
}

void RateLimiter::Reset(const std::string& key) {
  if (shared_ != nullptr) {
    (void)shared_->Clear(name_ + key);
    return;
  }
  std::lock_guard lock(mu_);
  events_.erase(key);
}

int RateLimiter::Count(const std::string& key) {
  if (shared_ != nullptr) {
    auto since = shared_->Since(name_ + key, clock_.NowMillis() - window_ms_);
    return since.ok() ? static_cast<int>(since->first) : max_events_;
  }
  std::lock_guard lock(mu_);
  auto it = events_.find(key);
  if (it == events_.end()) return 0;
  Expire(it->second, clock_.NowMillis());
  return static_cast<int>(it->second.size());
}

void RateLimiter::Prune(int64_t now) {
  for (auto it = events_.begin(); it != events_.end();) {
    Expire(it->second, now);
    it = it->second.empty() ? events_.erase(it) : std::next(it);
  }
  if (events_.size() < max_keys_) return;
  // Still full of live keys: evict the key whose newest event is oldest.
  auto victim = events_.begin();
  for (auto it = events_.begin(); it != events_.end(); ++it) {
    if (it->second.back() < victim->second.back()) victim = it;
  }
  events_.erase(victim);
}

std::optional<ConcurrencyLimit::Slot> ConcurrencyLimit::TryAcquire() {
  std::lock_guard lock(mu_);
  if (free_ <= 0) return std::nullopt;
  --free_;
  return Slot(this);
}

ConcurrencyLimit::Slot::~Slot() {
  if (limit_ == nullptr) return;
  std::lock_guard lock(limit_->mu_);
  ++limit_->free_;
}

}  // namespace datasite::auth
