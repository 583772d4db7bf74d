// The audit log for its readers: data owners and admins verify the chain and page through it.
// Writers append through Store::AppendAudit inside their change's transaction (services/*.cc).
#ifndef DATASITE_SERVICES_AUDIT_H_
#define DATASITE_SERVICES_AUDIT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "services/principal.h"
#include "store/audit_log.h"
#include "store/store.h"

namespace datasite::services {

// Safe for concurrent use.
class AuditService {
 public:
  static constexpr int64_t kMaxPage = 1000;

  explicit AuditService(store::Store& store) : store_(store) {}

  // The chain's verdict (see store::VerifyAuditLog). Data owners and admins only.
  Result<store::AuditVerdict> Verify(const Principal& caller,
                                     const std::optional<std::string>& saved_head);
  // Entries with seq > after_seq, oldest first, 1 to kMaxPage of them. Data owners and admins.
  Result<std::vector<store::AuditEvent>> List(const Principal& caller, int64_t after_seq,
                                              int64_t limit);

 private:
  store::Store& store_;
};

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_AUDIT_H_
