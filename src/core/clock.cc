#include "core/clock.h"

#include <chrono>
#include <ctime>

namespace datasite {

namespace {
class RealClock : public Clock {
 public:
  int64_t NowMillis() const override {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }
};

std::string Format(int64_t unix_seconds, const char* fmt) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  size_t n = std::strftime(buf, sizeof(buf), fmt, &tm);
  return std::string(buf, n);
}
}  // namespace

Clock& SystemClock() {
  static RealClock clock;
  return clock;
}

std::string FormatIsoTime(int64_t unix_seconds) {
  return Format(unix_seconds, "%Y-%m-%dT%H:%M:%SZ");
}
std::string FormatIsoDate(int64_t unix_seconds) { return Format(unix_seconds, "%Y-%m-%d"); }

}  // namespace datasite
