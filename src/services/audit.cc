#include "services/audit.h"

#include "auth/role.h"

namespace datasite::services {
namespace {

Status NeedOwner(const Principal& caller) {
  if (!auth::AtLeast(caller.role, auth::Role::kDataOwner)) {
    return PermissionDeniedError("only data owners and admins can read the audit log");
  }
  return Status::Ok();
}

}  // namespace

Result<store::AuditVerdict> AuditService::Verify(const Principal& caller,
                                                 const std::optional<std::string>& saved_head) {
  RETURN_IF_ERROR(NeedOwner(caller));
  return store::VerifyAuditLog(store_, saved_head);
}

Result<std::vector<store::AuditEvent>> AuditService::List(const Principal& caller,
                                                          int64_t after_seq, int64_t limit) {
  RETURN_IF_ERROR(NeedOwner(caller));
  if (after_seq < 0) return InvalidArgumentError("after_seq must be 0 or more");
  if (limit < 1 || limit > kMaxPage) {
    return InvalidArgumentError("limit must be between 1 and " + std::to_string(kMaxPage));
  }
  return store_.ListAudit(after_seq, limit);
}

}  // namespace datasite::services
