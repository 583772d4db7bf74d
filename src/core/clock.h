// Clock: the source of wall time, injected so tests can control it.
#ifndef DATASITE_CORE_CLOCK_H_
#define DATASITE_CORE_CLOCK_H_

#include <atomic>
#include <cstdint>
#include <string>

namespace datasite {

// Safe for concurrent use.
class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t NowMillis() const = 0;
  int64_t NowSeconds() const { return NowMillis() / 1000; }
};

// The real clock.
Clock& SystemClock();

// A clock that moves only when told. Safe for concurrent use.
class FakeClock : public Clock {
 public:
  explicit FakeClock(int64_t start_millis = 1'700'000'000'000) : now_(start_millis) {}
  int64_t NowMillis() const override { return now_.load(); }
  void AdvanceMillis(int64_t ms) { now_ += ms; }

 private:
  std::atomic<int64_t> now_;
};

// "2026-11-26T09:00:00Z" for a Unix time in seconds.
std::string FormatIsoTime(int64_t unix_seconds);
// "2026-11-26".
std::string FormatIsoDate(int64_t unix_seconds);

}  // namespace datasite

#endif  // DATASITE_CORE_CLOCK_H_
