// The arithmetic of grants (store::Grant): a data owner's approval of code for repeated runs, at
// most so many per user in each sliding window, until it expires or is revoked. Pure functions
// of a grant, its user's run times and the time: CodeService reads those from the store.
#ifndef DATASITE_SERVICES_GRANT_RULES_H_
#define DATASITE_SERVICES_GRANT_RULES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "store/store.h"

namespace datasite::services {

inline constexpr int64_t kMinuteMs = 60'000;
inline constexpr int64_t kHourMs = 3'600'000;
inline constexpr int64_t kDayMs = 86'400'000;
// The most runs a window may allow, and the longest a grant may last.
inline constexpr int64_t kMaxGrantRuns = 1'000'000;
inline constexpr double kMaxGrantDays = 3650;

// "active", "revoked" or "expired" at `now_ms`.
std::string GrantStatus(const store::Grant& grant, int64_t now_ms);

// The grant's windows that limit it, shortest first.
std::vector<store::GrantWindow> GrantWindows(const store::Grant& grant);

// What one user may still do under a grant at `now_ms`, given when each of their runs under it
// in the last day was created (unix ms, oldest first; older ones are ignored).
struct GrantUse {
  // Runs left in each window; nullopt where the grant sets no limit.
  std::optional<int64_t> minute;
  std::optional<int64_t> hour;
  std::optional<int64_t> day;
  // When none is left in some window: the first moment every window has room again (unix ms),
  // and the window that is full the longest ("minute", "hour" or "day") with its limit.
  std::optional<int64_t> next_run_at;
  std::string full_window;
  int64_t full_limit = 0;
};
GrantUse UseOfGrant(const store::Grant& grant, const std::vector<int64_t>& run_times,
                    int64_t now_ms);

// The first argument whose binding differs between two codes' input policies (UserCode::inputs:
// {arg: {"asset_id": id, ...} | {"value": v}}), compared by asset id or value; "" when they bind
// the same arguments to the same data. A binding that is neither compares unequal.
std::string FirstDifferentBinding(const nlohmann::json& a, const nlohmann::json& b);

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_GRANT_RULES_H_
