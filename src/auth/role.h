// Roles, ordered as in PySyft 0.9: guest < data_scientist < data_owner < admin.
#ifndef DATASITE_AUTH_ROLE_H_
#define DATASITE_AUTH_ROLE_H_

#include <optional>
#include <string_view>

namespace datasite::auth {

enum class Role : int { kNone = 0, kGuest = 1, kDataScientist = 2, kDataOwner = 32, kAdmin = 128 };

// "guest", "data_scientist", "data_owner", "admin" ("none" for kNone).
std::string_view RoleName(Role role);
// The inverse of RoleName; nullopt for anything else (including "none").
std::optional<Role> ParseRole(std::string_view name);
// Role from its stored integer; kNone for an unknown value.
Role RoleFromInt(int value);

inline bool AtLeast(Role have, Role need) {
  return static_cast<int>(have) >= static_cast<int>(need);
}

}  // namespace datasite::auth

#endif  // DATASITE_AUTH_ROLE_H_
