// Principal: who is calling, as established from a bearer token.
#ifndef DATASITE_SERVICES_PRINCIPAL_H_
#define DATASITE_SERVICES_PRINCIPAL_H_

#include <optional>
#include <string>

#include "auth/role.h"

namespace datasite::services {

struct Principal {
  auth::Role role = auth::Role::kNone;
  std::optional<std::string> user_id;  // empty for guests and anonymous callers
  std::string email;
  bool is_root = false;
  std::string token_hash;  // the session's token hash; empty for anonymous callers

  bool authenticated() const { return role != auth::Role::kNone; }
  bool IsSelf(const std::string& id) const { return user_id && *user_id == id; }
  // A data owner or an admin: who reviews, approves and manages a datasite's data and workers.
  bool IsDataOwner() const { return role >= auth::Role::kDataOwner; }
  // "user:<id>", "guest" or "anonymous": who the audit log names.
  std::string AuditName() const {
    if (user_id) return "user:" + *user_id;
    return authenticated() ? "guest" : "anonymous";
  }
};

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_PRINCIPAL_H_
