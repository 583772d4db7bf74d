// Audit entries that later issues write, named here so that every writer uses the same action
// and shape. Call them through the Store& of the transaction that makes the change (see
// Store::InTransaction), so the change and its entry commit together.
#ifndef DATASITE_SERVICES_AUDIT_HOOKS_H_
#define DATASITE_SERVICES_AUDIT_HOOKS_H_

#include <cstdint>
#include <string>

#include "core/status.h"
#include "services/principal.h"
#include "store/store.h"

namespace datasite::services {

// A sync with another server (low <-> high side): `peer` is the other server's id, `what` names
// the kinds and counts moved ("3 requests, 1 result"), never their contents.
inline Status AuditSync(store::Store& tx, int64_t now, const Principal& actor,
                        const std::string& peer, const std::string& what) {
  return tx.AppendAudit({now, actor.AuditName(), "sync", "server:" + peer, what});
}

// Privacy budget spent by a run: `amount` as text (e.g. "epsilon 0.5"), on `job_id`.
inline Status AuditBudgetSpend(store::Store& tx, int64_t now, const Principal& actor,
                               const std::string& job_id, const std::string& amount) {
  return tx.AppendAudit({now, actor.AuditName(), "budget.spend", "job:" + job_id, amount});
}

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_AUDIT_HOOKS_H_
