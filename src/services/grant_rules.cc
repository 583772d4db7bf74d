#include "services/grant_rules.h"

#include <algorithm>

namespace datasite::services {

std::string GrantStatus(const store::Grant& grant, int64_t now_ms) {
  if (grant.revoked_at) return "revoked";
  return now_ms < grant.expires_at ? "active" : "expired";
}

std::vector<store::GrantWindow> GrantWindows(const store::Grant& grant) {
  std::vector<store::GrantWindow> windows;
  if (grant.per_minute) windows.push_back({kMinuteMs, *grant.per_minute});
  if (grant.per_hour) windows.push_back({kHourMs, *grant.per_hour});
  if (grant.per_day) windows.push_back({kDayMs, *grant.per_day});
  return windows;
}

GrantUse UseOfGrant(const store::Grant& grant, const std::vector<int64_t>& run_times,
                    int64_t now_ms) {
  GrantUse use;
  struct Window {
    std::optional<int64_t> limit;
    int64_t ms;
    const char* name;
    std::optional<int64_t>* left;
  };
  const Window windows[] = {{grant.per_minute, kMinuteMs, "minute", &use.minute},
                            {grant.per_hour, kHourMs, "hour", &use.hour},
                            {grant.per_day, kDayMs, "day", &use.day}};
  for (const Window& w : windows) {
    if (!w.limit) continue;
    // The runs in the window: those created after now - window (as InsertJob counts them).
    std::vector<int64_t> in;
    for (int64_t t : run_times) {
      if (t > now_ms - w.ms) in.push_back(t);
    }
    const auto n = static_cast<int64_t>(in.size());
    *w.left = std::max<int64_t>(*w.limit - n, 0);
    if (n < *w.limit) continue;
    // Room again once all but limit - 1 of them have left: the (n - limit)-th oldest leaves at
    // its time + window, and the window counts times strictly after now - window.
    // A run admitted a moment after `now` was read (a concurrent admission's clock) would put
    // the time past one window from now: no window is full longer than its own length.
    const int64_t free_at = std::min(in[static_cast<size_t>(n - *w.limit)] + w.ms, now_ms + w.ms);
    if (!use.next_run_at || free_at > *use.next_run_at) {
      use.next_run_at = free_at;
      use.full_window = w.name;
      use.full_limit = *w.limit;
    }
  }
  return use;
}

std::string FirstDifferentBinding(const nlohmann::json& a, const nlohmann::json& b) {
  if (!a.is_object() || !b.is_object()) return "(the input policy)";
  auto same = [](const nlohmann::json& x, const nlohmann::json& y) {
    if (!x.is_object() || !y.is_object()) return false;
    if (x.contains("asset_id")) return y.contains("asset_id") && x["asset_id"] == y["asset_id"];
    // By their exact JSON text: nlohmann's == calls -1 and 18446744073709551615, or 2 and 2.0,
    // equal, which Python tells apart.
    if (x.contains("value")) return y.contains("value") && x["value"].dump() == y["value"].dump();
    return false;
  };
  for (const auto& [arg, binding] : a.items()) {
    if (!b.contains(arg) || !same(binding, b[arg])) return arg;
  }
  for (const auto& [arg, binding] : b.items()) {
    if (!a.contains(arg)) return arg;
  }
  return "";
}

}  // namespace datasite::services
