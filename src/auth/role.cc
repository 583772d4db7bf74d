#include "auth/role.h"

namespace datasite::auth {

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kGuest:
      return "guest";
    case Role::kDataScientist:
      return "data_scientist";
    case Role::kDataOwner:
      return "data_owner";
    case Role::kAdmin:
      return "admin";
    case Role::kNone:
      break;
  }
  return "none";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kGuest, Role::kDataScientist, Role::kDataOwner, Role::kAdmin}) {
    if (RoleName(r) == name) return r;
  }
  return std::nullopt;
}

Role RoleFromInt(int value) {
  for (Role r : {Role::kGuest, Role::kDataScientist, Role::kDataOwner, Role::kAdmin}) {
    if (static_cast<int>(r) == value) return r;
  }
  return Role::kNone;
}

}  // namespace datasite::auth
